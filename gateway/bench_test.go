package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testgw"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/pki"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// benchGateway is a gateway in this process on loopback for a benchmark,
// logging at info level to nowhere (the events are built, as in
// production), with the routes echo and discard built in and one TCP echo
// backend route "techo".
type benchGateway struct {
	srv    *gateway.Server
	addr   string
	p      *testpki.PKI
	server testpki.Pair // the gateway's certificate
	cli    testpki.Pair // a client certificate of the same key type
}

func newBenchGateway(b *testing.B, kt pki.KeyType) *benchGateway {
	b.Helper()
	p := testpki.New(b)
	srvPair := p.Server
	cli := p.Client
	if kt != "" && kt != pki.ECDSAP256 {
		srvPair = p.Issue(b, "server-"+string(kt), pki.Request{Kind: pki.Server, Name: "gateway", KeyType: kt,
			DNS: []string{"localhost"}, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
		cli = p.Issue(b, "client-"+string(kt), pki.Request{Kind: pki.Client, Name: "bench", KeyType: kt,
			URIs: []string{"spiffe://test/app/bench"}})
	}
	cfg := testgw.Config(p,
		config.Route{Name: "echo", Backend: gateway.BuiltinEcho},
		config.Route{Name: "discard", Backend: gateway.BuiltinDiscard},
		config.Route{Name: "techo", Backend: testnet.EchoServer(b)})
	cfg.Cert, cfg.Key = srvPair.Cert, srvPair.Key
	cfg.DefaultRoute = "echo"
	cfg.MaxConns, cfg.MaxHandshakes, cfg.MaxStreams = 10000, 256, 10000
	srv, addr := testgw.Serve(b, cfg, zerolog.New(io.Discard).Level(zerolog.InfoLevel))
	return &benchGateway{srv: srv, addr: addr, p: p, server: srvPair, cli: cli}
}

func (g *benchGateway) creds(b *testing.B) *conn.ClientCreds {
	c, err := conn.NewClientCreds(conn.ClientFiles{Cert: g.cli.Cert, Key: g.cli.Key, CA: g.p.CAFile})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

var benchMsg = bytes.Repeat([]byte("portcullis"), 7)[:64]

func benchRoundTrip(b *testing.B, c net.Conn, buf []byte) {
	if _, err := c.Write(benchMsg); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:len(benchMsg)]); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHandshake measures one full mTLS connection, client and server
// in this process (so ns/op is roughly both sides' CPU), per key type of
// the server and client certificates:
//
//	conn    the floor: a bare TLS handshake between conn.ServerState and
//	        conn.ClientCreds configurations, then one 64-byte round trip
//	direct  through the gateway, direct mode: handshake + round trip via
//	        builtin:echo
//	mux     through the gateway, mux mode: handshake + yamux session +
//	        stream request + round trip via builtin:echo, as the tunnel does
func BenchmarkHandshake(b *testing.B) {
	for _, kt := range []pki.KeyType{pki.ECDSAP256, pki.Ed25519, pki.RSA2048} {
		b.Run(string(kt), func(b *testing.B) {
			g := newBenchGateway(b, kt)
			creds := g.creds(b)
			b.Run("conn", func(b *testing.B) { benchBareHandshake(b, g) })
			b.Run("direct", func(b *testing.B) {
				b.ReportAllocs()
				buf := make([]byte, 64)
				for b.Loop() {
					cfg := creds.TLSConfig(conn.ClientOptions{ServerName: "localhost", SNI: "echo"})
					c, err := tls.Dial("tcp", g.addr, cfg)
					if err != nil {
						b.Fatal(err)
					}
					benchRoundTrip(b, c, buf)
					c.Close()
				}
			})
			b.Run("mux", func(b *testing.B) {
				b.ReportAllocs()
				ycfg := mux.Config(zerolog.Nop())
				buf := make([]byte, 64)
				for b.Loop() {
					cfg := creds.TLSConfig(conn.ClientOptions{ServerName: "localhost", ALPN: []string{mux.ALPN}})
					c, err := tls.Dial("tcp", g.addr, cfg)
					if err != nil {
						b.Fatal(err)
					}
					sess, err := yamux.Client(c, ycfg)
					if err != nil {
						b.Fatal(err)
					}
					ys, err := sess.OpenStream()
					if err != nil {
						b.Fatal(err)
					}
					st := mux.Wrap(ys)
					if err := mux.WriteRequest(st, mux.Request{Route: "echo"}); err != nil {
						b.Fatal(err)
					}
					if resp, err := mux.ReadResponse(st); err != nil || resp.Status != mux.StatusOK {
						b.Fatalf("stream refused: %v %v", resp, err)
					}
					benchRoundTrip(b, st, buf)
					st.Close()
					sess.Close()
				}
			})
		})
	}
}

// benchBareHandshake runs TLS handshakes between the configurations of
// package conn over loopback, without the gateway.
func benchBareHandshake(b *testing.B, g *benchGateway) {
	st, err := conn.LoadServer(conn.ServerFiles{Cert: g.server.Cert, Key: g.server.Key, CA: g.p.CAFile}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	scfg := st.ServerConfig()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, scfg)
			buf := make([]byte, 64)
			if _, err := io.ReadFull(tc, buf); err == nil {
				_, _ = tc.Write(buf)
			}
			tc.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	creds := g.creds(b)
	b.ReportAllocs()
	buf := make([]byte, 64)
	for b.Loop() {
		c, err := tls.Dial("tcp", ln.Addr().String(), creds.TLSConfig(conn.ClientOptions{ServerName: "localhost"}))
		if err != nil {
			b.Fatal(err)
		}
		benchRoundTrip(b, c, buf)
		c.Close()
	}
}

// BenchmarkStreamOpen measures stream open + 64-byte round trip + close
// over one mux session to the gateway (tunnel.Dialer), through the builtin
// echo and through a TCP echo backend.
func BenchmarkStreamOpen(b *testing.B) {
	g := newBenchGateway(b, "")
	for _, route := range []string{"echo", "techo"} {
		b.Run(route, func(b *testing.B) {
			d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{g.addr}, Creds: g.creds(b), ServerName: "localhost"})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				c, err := d.Dial(ctx, route)
				if err != nil {
					b.Fatal(err)
				}
				benchRoundTrip(b, c, buf)
				c.Close()
			}
		})
	}
}

// BenchmarkThroughput measures one stream to builtin:discard through the
// gateway, in writes of a ladder of sizes (SetBytes: MB/s is the payload
// rate).
func BenchmarkThroughput(b *testing.B) {
	g := newBenchGateway(b, "")
	for _, size := range []int{1 << 10, 16 << 10, 32 << 10, 256 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{g.addr}, Creds: g.creds(b), ServerName: "localhost"})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			c, err := d.Dial(context.Background(), "discard")
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			chunk := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			// Count the time until the gateway has read everything.
			_ = c.(interface{ CloseWrite() error }).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// BenchmarkDeny measures one connection from a denied address (127.0.0.2):
// connect, see the reset, as the network gate closes it in Accept.
func BenchmarkDeny(b *testing.B) {
	g := newBenchGateway(b, "")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	var one [1]byte
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.Dial("tcp", g.addr)
		if err != nil {
			continue // reset before connect returned: denied too
		}
		_, _ = c.Read(one[:])
		c.Close()
	}
	b.StopTimer()
	if st := g.srv.Stats(); st.Denied == 0 || st.HandshakesOK != 0 {
		b.Fatalf("gateway stats %+v: want denied connections and no handshakes", st)
	}
}

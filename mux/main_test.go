package mux

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testPKI is a CA, a server certificate for the loopback addresses and a
// client certificate, made once per test binary.
type testPKI struct {
	server, client *tls.Config
}

var getPKI = sync.OnceValue(func() testPKI {
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mux test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		panic(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, eku x509.ExtKeyUsage) tls.Certificate {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		server: &tls.Config{
			Certificates: []tls.Certificate{leaf(2, "gateway", x509.ExtKeyUsageServerAuth)},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool,
			NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13,
		},
		client: &tls.Config{
			Certificates: []tls.Certificate{leaf(3, "client", x509.ExtKeyUsageClientAuth)},
			RootCAs:      pool, ServerName: "127.0.0.1", NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13,
		},
	}
})

// testConfig is the yamux config of tests: quiet, and with a short stream
// close timeout so half-closed leftovers do not outlive a test.
func testConfig() *yamux.Config {
	c := Config(zerolog.Nop())
	c.StreamCloseTimeout = 2 * time.Second
	return c
}

// listen returns a loopback TCP listener closed at the end of the test.
func listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln := listen(t, "tcp", "127.0.0.1:0")
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-ch
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// sessionPair returns a yamux client and server session over loopback TCP
// (or TLS), closed at the end of the test, and the server's raw TCP conn.
func sessionPair(t testing.TB, useTLS bool) (client, server *yamux.Session, serverRaw net.Conn) {
	t.Helper()
	return sessionPairOpts(t, useTLS, nil)
}

// sessionPairOpts is sessionPair with wrap (when not nil) around the
// connection under each end.
func sessionPairOpts(t testing.TB, useTLS bool, wrap func(net.Conn) net.Conn) (client, server *yamux.Session, serverRaw net.Conn) {
	t.Helper()
	var cc, sc, s net.Conn
	if useTLS {
		tc, ts := tlsPair(t)
		cc, sc, s = tc, ts, ts.NetConn()
	} else {
		c, ts := tcpPair(t)
		cc, sc, s = c, ts, ts
	}
	if wrap != nil {
		cc, sc = wrap(cc), wrap(sc)
	}
	cs, err := yamux.Client(cc, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := yamux.Server(sc, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	return cs, ss, s
}

// streamPair opens a stream on client and accepts it on server.
func streamPair(t testing.TB, client, server *yamux.Session) (c, s *Stream) {
	t.Helper()
	ys, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	as, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	return Wrap(ys), Wrap(as)
}

// backend is a loopback TCP server whose accepted connections are handed
// to handle, each in a goroutine the backend waits for on Close.
type backend struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startBackend(t testing.TB, handle func(c *net.TCPConn)) *backend {
	t.Helper()
	b := &backend{ln: listen(t, "tcp", "127.0.0.1:0")}
	b.wg.Go(func() {
		for {
			c, err := b.ln.Accept()
			if err != nil {
				return
			}
			b.wg.Go(func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() { b.ln.Close(); b.wg.Wait() })
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// echo copies everything back, then half-closes.
func echo(c *net.TCPConn) {
	if _, err := io.Copy(c, c); err == nil {
		c.CloseWrite()
		io.Copy(io.Discard, c)
	}
}

// gateway is a test mux server: TLS (or TCP) listener, a yamux server
// session per connection, ServeStream per stream with decide.
type gateway struct {
	t      testing.TB
	ln     net.Listener
	useTLS bool
	decide func(Request) (Response, net.Conn)
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions []*yamux.Session
	raws     []net.Conn
	results  []StreamResult
	errs     []error

	conns atomic.Int32 // connections accepted
}

func startGateway(t testing.TB, useTLS bool, decide func(Request) (Response, net.Conn)) *gateway {
	t.Helper()
	g := &gateway{t: t, ln: listen(t, "tcp", "127.0.0.1:0"), useTLS: useTLS, decide: decide}
	g.wg.Go(g.acceptLoop)
	t.Cleanup(g.close)
	return g
}

// routeTo returns a decide function sending every known route to its
// backend address; other routes are unknown.
func routeTo(routes map[string]string) func(Request) (Response, net.Conn) {
	return func(req Request) (Response, net.Conn) {
		addr, ok := routes[req.Route]
		if !ok {
			return Response{Status: StatusUnknownRoute, Reason: "no route " + req.Route}, nil
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return Response{Status: StatusUnreachable, Reason: err.Error()}, nil
		}
		return Response{Status: StatusOK}, c
	}
}

func (g *gateway) acceptLoop() {
	for {
		raw, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.conns.Add(1)
		var c net.Conn = raw
		if g.useTLS {
			tc := tls.Server(raw, getPKI().server.Clone())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := tc.HandshakeContext(ctx)
			cancel()
			if err != nil {
				raw.Close()
				continue
			}
			c = tc
		}
		sess, err := yamux.Server(NewSessionConn(c), testConfig()) // as the gateway does
		if err != nil {
			raw.Close()
			continue
		}
		g.mu.Lock()
		g.sessions = append(g.sessions, sess)
		g.raws = append(g.raws, raw)
		g.mu.Unlock()
		g.wg.Go(func() { g.serveSession(sess) })
	}
}

func (g *gateway) serveSession(sess *yamux.Session) {
	for {
		ys, err := sess.AcceptStream()
		if err != nil {
			return
		}
		g.wg.Go(func() {
			res, err := ServeStream(Wrap(ys), 2*time.Second, g.decide)
			g.mu.Lock()
			g.results = append(g.results, res)
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		})
	}
}

// kill drops every session's TCP connection without a goodbye.
func (g *gateway) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.raws {
		r.(*net.TCPConn).SetLinger(0)
		r.Close()
	}
}

func (g *gateway) close() {
	g.ln.Close()
	g.mu.Lock()
	for _, s := range g.sessions {
		s.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// dialer returns a DialFunc to g that counts its calls.
func (g *gateway) dialer(count *atomic.Int32) DialFunc {
	return func(ctx context.Context) (net.Conn, error) {
		count.Add(1)
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", g.ln.Addr().String())
		if err != nil {
			return nil, err
		}
		if !g.useTLS {
			return c, nil
		}
		tc := tls.Client(c, getPKI().client.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != ALPN {
			tc.Close()
			return nil, fmt.Errorf("gateway negotiated ALPN %q, want %q", p, ALPN)
		}
		return tc, nil
	}
}

// newClient returns a client of g, closed at the end of the test.
func newClient(t testing.TB, g *gateway, count *atomic.Int32) *Client {
	t.Helper()
	if count == nil {
		count = new(atomic.Int32)
	}
	c := NewClient(ClientConfig{Dial: g.dialer(count), Yamux: testConfig(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond every few milliseconds for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errTestDial = errors.New("test dial refused")

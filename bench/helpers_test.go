package bench_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/bench"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testgw"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/rs/zerolog"
)

// gw is a gateway running on loopback for one test.
type gw struct {
	pki  *testpki.PKI
	srv  *gateway.Server
	addr string
}

// startGateway runs a gateway that admits 127.0.0.1 and ::1 (so 127.0.0.2
// is denied) and any client of the test CA, with the routes echo
// (builtin:echo), discard (builtin:discard) and those given.
func startGateway(t testing.TB, extra ...config.Route) *gw {
	t.Helper()
	p := testpki.New(t)
	cfg := testgw.Config(p, append([]config.Route{
		{Name: "echo", Backend: gateway.BuiltinEcho},
		{Name: "discard", Backend: gateway.BuiltinDiscard},
	}, extra...)...)
	cfg.DefaultRoute = "echo"
	cfg.AllowIDs = []conn.Pattern{conn.MustPattern("any")}
	cfg.LogLevel = "error"
	srv, addr := testgw.Serve(t, cfg, zerolog.Nop())
	return &gw{pki: p, srv: srv, addr: addr}
}

// settings returns settings for a run against g in mode with a small count.
func (g *gw) settings(mode bench.Mode, count int) *bench.Settings {
	s := &bench.Settings{Mode: mode, Count: count, Concurrency: 4, Duration: 20 * time.Second}
	s.Gateways = []string{g.addr}
	s.Cert, s.Key, s.CA = g.pki.Client.Cert, g.pki.Client.Key, g.pki.CAFile
	s.ServerName = "localhost"
	s.ConnectTimeout = 5 * time.Second
	s.OpTimeout = 5 * time.Second
	return s
}

func (g *gw) creds(t testing.TB) *conn.ClientCreds {
	t.Helper()
	c, err := conn.NewClientCreds(conn.ClientFiles{Cert: g.pki.Client.Cert, Key: g.pki.Client.Key, CA: g.pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// sourceServer sends zeros to every client until it goes away.
func sourceServer(t testing.TB) string {
	return testnet.Serve(t, listen(t), func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for range 1 << 20 {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
}

// tlsEchoServer is a TLS 1.3 echo server that requires client certificates
// of the test CA, with one config for every connection, so that sessions
// can be resumed.
func tlsEchoServer(t testing.TB, p *testpki.PKI) string {
	t.Helper()
	st, err := conn.LoadServer(conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.ServerConfig()
	return testnet.Serve(t, tls.NewListener(listen(t), cfg), func(c net.Conn) { _, _ = io.Copy(c, c) })
}

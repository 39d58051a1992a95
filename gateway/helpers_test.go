package gateway_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// env is a running gateway on loopback with a fresh PKI.
type env struct {
	pki  *testpki.PKI
	cfg  *config.Gateway
	srv  *gateway.Server
	addr string
	logs *testnet.SyncBuffer
}

func mustRules(t testing.TB, s string) []acl.Rule {
	t.Helper()
	r, err := acl.ParseList(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustPatterns(t testing.TB, ps ...string) []conn.Pattern {
	t.Helper()
	var out []conn.Pattern
	for _, p := range ps {
		out = append(out, conn.MustPattern(p))
	}
	return out
}

// baseConfig is a gateway allowing 127.0.0.1 and ::1 and the test client.
func baseConfig(p *testpki.PKI, routes ...config.Route) *config.Gateway {
	return &config.Gateway{
		Listen: "127.0.0.1:0", Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile,
		Allow:            []acl.Rule{},
		Routes:           routes,
		AllowIDs:         []conn.Pattern{conn.MustPattern("uri:spiffe://test/app/*")},
		LogLevel:         "debug",
		LogFormat:        "json",
		HandshakeTimeout: 2 * time.Second,
		DialTimeout:      2 * time.Second,
		DrainTimeout:     2 * time.Second,
		MaxConns:         1000,
		MaxHandshakes:    64,
		MaxStreams:       1024,
	}
}

// start runs a gateway for cfg until the test ends.
func start(t testing.TB, p *testpki.PKI, cfg *config.Gateway) *env {
	t.Helper()
	if len(cfg.Allow) == 0 && cfg.AllowFile == "" && cfg.Policy == "" {
		cfg.Allow = mustRules(t, "127.0.0.1,::1")
	}
	logs := &testnet.SyncBuffer{}
	srv, err := gateway.New(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return &env{pki: p, cfg: cfg, srv: srv, addr: ln.Addr().String(), logs: logs}
}

// dialer returns a tunnel dialer for the gateway with the given client pair.
func (e *env) dialer(t testing.TB, pair testpki.Pair, direct bool) *tunnel.Dialer {
	t.Helper()
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: pair.Cert, Key: pair.Key, CA: e.pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{e.addr}, Creds: creds, ServerName: "localhost",
		ConnectTimeout: 3 * time.Second, Direct: direct})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// echoBackend is a TCP echo server on loopback that half-closes after EOF.
func echoBackend(t testing.TB) string { return testnet.EchoServer(t) }

// roundTrip sends n random bytes through c and checks the echo.
func roundTrip(c net.Conn, n int) error { return testnet.RoundTrip(c, n) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

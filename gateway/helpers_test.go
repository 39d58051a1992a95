package gateway_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testgw"
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

// baseConfig is a gateway allowing 127.0.0.1 and ::1 and the test client.
func baseConfig(p *testpki.PKI, routes ...config.Route) *config.Gateway {
	return testgw.Config(p, routes...)
}

// start runs a gateway for cfg until the test ends, logging into env.logs.
func start(t testing.TB, p *testpki.PKI, cfg *config.Gateway) *env {
	t.Helper()
	logs := &testnet.SyncBuffer{}
	srv, addr := testgw.Serve(t, cfg, zerolog.New(logs))
	return &env{pki: p, cfg: cfg, srv: srv, addr: addr, logs: logs}
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

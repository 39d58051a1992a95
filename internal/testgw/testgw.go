// Package testgw runs a real gateway.Server on loopback for the tests and
// benchmarks of other packages, with settings they can adjust.
package testgw

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/rs/zerolog"
)

// Config returns gateway settings for a test: listen on 127.0.0.1 port 0,
// p's server certificate and CA, network rules admitting 127.0.0.1 and ::1,
// identities uri:spiffe://test/app/* (p's client), the given routes, and
// short timeouts. Callers change what their test needs.
func Config(p *testpki.PKI, routes ...config.Route) *config.Gateway {
	rules, err := acl.ParseList("127.0.0.1,::1")
	if err != nil {
		panic(err) // a constant: cannot fail
	}
	return &config.Gateway{
		Listen: "127.0.0.1:0", Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile,
		Allow:            rules,
		Routes:           routes,
		AllowIDs:         []conn.Pattern{conn.MustPattern("uri:spiffe://test/app/*")},
		LogLevel:         "info",
		LogFormat:        "json",
		HandshakeTimeout: 5 * time.Second,
		DialTimeout:      2 * time.Second,
		DrainTimeout:     time.Second,
		MaxConns:         1000,
		MaxHandshakes:    64,
		MaxStreams:       4096,
		HelloTimeout:     5 * time.Second,
		MaxSessionMemory: 8 << 20,
		AbuseHold:        time.Second, AbuseHoldMax: time.Minute,
		MaxPending: 1024, MaxPendingPerAddr: 64, MaxPendingPerPrefix: 256, PrefixV4: 24, PrefixV6: 64,
	}
}

// Serve runs a gateway for cfg on a listener at cfg.Listen until the test
// ends, then closes it and checks that Serve ended as it should. It returns
// the server and its address.
func Serve(t testing.TB, cfg *config.Gateway, log zerolog.Logger) (*gateway.Server, string) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("gateway settings: %v", err)
	}
	srv, err := gateway.New(cfg.ServerConfig(&log))
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
			t.Errorf("gateway Serve returned %v", err)
		}
	})
	return srv, ln.Addr().String()
}

package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/pki"
	"github.com/portcullis-gw/portcullis/policy"
	"github.com/portcullis-gw/portcullis/tunnel"
)

// A complete gateway embedded in a Go program, and a client that dials a
// route through tunnel.Dialer as a database driver would (DialContext with
// "tcp" and "route:port"). The certificates come from a throwaway CA; a
// real deployment loads its own files with conn.ServerFiles.
func Example() {
	dir, _ := os.MkdirTemp("", "portcullis-example-")
	defer os.RemoveAll(dir)
	ca, _ := pki.NewCA(pki.CAOptions{Name: "example CA"})
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		_ = os.WriteFile(path, data, 0o600)
		return path
	}
	issue := func(name string, req pki.Request) (cert, key string) {
		is, err := ca.Issue(req)
		if err != nil {
			panic(err)
		}
		k, _ := is.KeyPEM()
		return write(name+".crt", is.CertPEM()), write(name+".key", k)
	}
	caFile := write("ca.crt", ca.RootPEM())
	gwCert, gwKey := issue("gw", pki.Request{Kind: pki.Server, Name: "gw", DNS: []string{"localhost"},
		IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	appCert, appKey := issue("app", pki.Request{Kind: pki.Client, Name: "app", URIs: []string{"spiffe://example/app"}})

	// The policy: loopback may connect; identity spiffe://example/app may
	// use route "db", served here by the built-in echo backend.
	gate, _ := acl.ParseList("127.0.0.1")
	pol, err := policy.Build(policy.Spec{
		Gate:        []policy.Rules{{Source: "example", Rules: gate}},
		Routes:      []policy.RouteSpec{{Name: "db", Backend: policy.BuiltinEcho, Identities: []conn.Pattern{conn.MustPattern("uri:spiffe://example/app")}, Source: "example"}},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	srv, err := gateway.New(gateway.Config{
		Credentials: conn.ServerFiles{Cert: gwCert, Key: gwKey, CA: caFile},
		Policy:      policy.Static{P: pol},
	})
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	// The client side.
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: appCert, Key: appKey, CA: caFile})
	if err != nil {
		panic(err)
	}
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{ln.Addr().String()}, Creds: creds, ServerName: "localhost"})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", "db:5432") // what a driver's dialer is called with
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "SELECT 1")
	buf := make([]byte, len("SELECT 1"))
	_, _ = io.ReadFull(c, buf)
	fmt.Printf("%s\n", buf)
	// Output: SELECT 1
}

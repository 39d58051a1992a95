package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

// A Go program reaching a private HTTP API through a gateway: the
// tunnel.Dialer is the transport's DialContext, so every request rides a
// stream of one mTLS session, and the address's host part names the
// route ("api:80" goes to route api). A database driver with a dialer hook
// (pgx's DialFunc, go-sql-driver/mysql's RegisterDialContext, redis'
// Dialer) takes d.DialContext the same way. The gateway runs in the same
// program here only to make the example complete.
func ExampleDialer() {
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

	// The private API, and a gateway with a route to it.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	defer api.Close()
	gate, _ := acl.ParseList("127.0.0.1")
	pol, err := policy.Build(policy.Spec{
		Gate: []policy.Rules{{Source: "example", Rules: gate}},
		Routes: []policy.RouteSpec{{Name: "api", Backend: api.Listener.Addr().String(),
			Identities: []conn.Pattern{conn.MustPattern("uri:spiffe://example/*")}, Source: "example"}},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	srv, err := gateway.New(gateway.Config{Credentials: conn.ServerFiles{Cert: gwCert, Key: gwKey, CA: caFile},
		Policy: policy.Static{P: pol}})
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	// The client.
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: appCert, Key: appKey, CA: caFile})
	if err != nil {
		panic(err)
	}
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{ln.Addr().String()}, Creds: creds, ServerName: "localhost"})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	transport := &http.Transport{DialContext: d.DialContext}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api/v1/status", nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK hello from /v1/status
}

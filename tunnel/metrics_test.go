package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// A forwarder with one stream carried and one that the gateway refuses,
// scraped over HTTP: streams, failures, bytes, the session and the
// certificate's expiry have the values the traffic made, and promtool finds
// the exposition valid.
func TestForwardMetrics(t *testing.T) {
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	f, err := tunnel.Listen(d, []tunnel.Local{{Bind: "127.0.0.1:0", Route: "echo"}, {Bind: "127.0.0.1:0", Route: "nosuch"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h, err := f.AdminHandler()
	if err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(h)
	defer admin.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	c, err := net.Dial("tcp", f.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if err := echoCheck(c, 1000); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The gateway refuses the route and the forwarder resets the local
	// connection, possibly before the connect returns.
	if c, err = net.Dial("tcp", f.Addrs()[1].String()); err == nil {
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}

	want := map[string]float64{
		`portcullis_tunnel_streams_total{route="echo"}`:                 1,
		`portcullis_tunnel_sent_bytes_total{route="echo"}`:              1000,
		`portcullis_tunnel_received_bytes_total{route="echo"}`:          1000,
		`portcullis_tunnel_streams_open{route="echo"}`:                  0,
		`portcullis_tunnel_stream_failures_total{route="nosuch"}`:       1,
		`portcullis_tunnel_stream_failures_total{route="echo"}`:         0,
		`portcullis_tunnel_session_up`:                                  1,
		`portcullis_tunnel_sessions_total`:                              1,
		fmt.Sprintf(`portcullis_tunnel_gateway_info{gateway=%q}`, addr): 1,
		`portcullis_tunnel_client_cert_expiry_timestamp_seconds`:        float64(p.Client.Issued.Cert.NotAfter.Unix()),
	}
	var body string
	var wrong []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(admin.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		wrong = wrong[:0]
		for series, v := range want {
			if got, ok := testnet.Sample(body, series); !ok || got != v {
				wrong = append(wrong, fmt.Sprintf("%s = %v (present: %v), want %v", series, got, ok, v))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range wrong {
		t.Error(w)
	}
	for _, name := range []string{"portcullis_build_info{", "go_goroutines ", "process_start_time_seconds "} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	testnet.PromtoolCheck(t, body)
}

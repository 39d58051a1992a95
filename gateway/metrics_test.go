package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
)

// metricsPolicy has a builtin route, a TCP backend, a dead backend and a
// route that admits only carol (the test client is alice).
const metricsPolicy = `allow: ["127.0.0.1", "::1"]
routes:
  echo:
    backend: builtin:echo
    identities: ["uri:spiffe://test/app/*"]
  tcpecho:
    backend: %s
    identities: ["uri:spiffe://test/app/*"]
  dead:
    backend: %s
    identities: ["uri:spiffe://test/app/*"]
    dial_timeout: 1s
  carol:
    backend: builtin:echo
    identities: ["uri:spiffe://test/app/carol"]
`

// startWithPolicy runs a gateway whose routes come from a policy file,
// returned with it, and serves its admin handler over HTTP on loopback.
func startWithPolicy(t *testing.T, p *testpki.PKI, policyText string, ready bool) (*env, string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, file, policyText)
	cfg := baseConfig(p)
	cfg.Allow, cfg.AllowIDs, cfg.Policy = nil, nil, file
	cfg.ReadyDespiteReloadFailure = ready
	e := start(t, p, cfg)
	admin := httptest.NewServer(e.srv.AdminHandler())
	t.Cleanup(admin.Close)
	return e, file, admin.URL
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A real gateway with accepted and refused streams, failed handshakes and a
// denied connection, scraped over HTTP: each counter has the value the
// traffic made, and promtool finds the exposition valid.
func TestMetricsScrape(t *testing.T) {
	p := testpki.New(t)
	e, _, admin := startWithPolicy(t, p, fmt.Sprintf(metricsPolicy, echoBackend(t), deadAddr(t)), false)
	d := e.dialer(t, p.Client, false)
	for _, route := range []string{"echo", "tcpecho"} {
		c, err := d.Dial(ctxT(t), route)
		if err != nil {
			t.Fatal(err)
		}
		if err := roundTrip(c, 1000); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for route, want := range map[string]mux.Status{"nosuch": mux.StatusUnknownRoute, "dead": mux.StatusUnreachable, "carol": mux.StatusForbidden} {
		_, err := d.Dial(ctxT(t), route)
		var re *mux.RefusedError
		if !errors.As(err, &re) || re.Status != want {
			t.Fatalf("stream to %s: %v; want refused with %v", route, err, want)
		}
	}
	// Not TLS.
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = raw.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	_, _ = io.Copy(io.Discard, raw)
	raw.Close()
	// TLS without a client certificate.
	roots := x509.NewCertPool()
	roots.AddCert(p.CA.Cert)
	tc, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{mux.ALPN}})
	if err == nil {
		_, _ = tc.Read(make([]byte, 1)) // TLS 1.3: the server's verdict comes after the client's handshake
		tc.Close()
	}
	// Denied by the network gate.
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	if c, err := dl.Dial("tcp", e.addr); err == nil {
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}

	unix := func(t time.Time) float64 { return float64(t.Unix()) }
	want := map[string]float64{
		`portcullis_streams_total{route="echo"}`:                              1,
		`portcullis_streams_total{route="tcpecho"}`:                           1,
		`portcullis_stream_received_bytes_total{route="echo"}`:                1000,
		`portcullis_stream_sent_bytes_total{route="tcpecho"}`:                 1000,
		`portcullis_stream_duration_seconds_count{route="tcpecho"}`:           1,
		`portcullis_streams_open{route="echo"}`:                               0,
		`portcullis_streams_refused_total{route="",status="unknown_route"}`:   1,
		`portcullis_streams_refused_total{route="dead",status="unreachable"}`: 1,
		`portcullis_streams_refused_total{route="carol",status="forbidden"}`:  1,
		`portcullis_streams_refused_total{route="echo",status="overloaded"}`:  0,
		`portcullis_backend_dial_duration_seconds_count{route="tcpecho"}`:     1,
		`portcullis_backend_dial_duration_seconds_count{route="dead"}`:        1,
		`portcullis_handshakes_total`:                                         1,
		`portcullis_handshake_duration_seconds_count{mode="mux"}`:             1,
		`portcullis_handshake_failures_total{reason="not_tls"}`:               1,
		`portcullis_handshake_failures_total{reason="bad_certificate"}`:       1,
		`portcullis_handshake_failures_total{reason="timeout"}`:               0,
		`portcullis_connections_denied_total`:                                 1,
		`portcullis_connections_allowed_total`:                                3,
		`portcullis_connections_open`:                                         1,
		`portcullis_connections_shed_total{kind="silent"}`:                    0,
		`portcullis_connections_shed_total{kind="conn_rate"}`:                 0,
		`portcullis_connections_shed_total{kind="preempted"}`:                 0,
		`portcullis_connections_shed_total{kind="held"}`:                      0,
		`portcullis_sessions_open`:                                            1,
		`portcullis_max_conns`:                                                float64(e.cfg.MaxConns),
		`portcullis_max_pending{scope="addr"}`:                                float64(e.cfg.MaxPendingPerAddr),
		`portcullis_reloads_total`:                                            0,
		`portcullis_reload_failures_total`:                                    0,
		`portcullis_server_cert_expiry_timestamp_seconds`:                     unix(p.Server.Issued.Cert.NotAfter),
		`portcullis_client_ca_expiry_timestamp_seconds`:                       unix(p.CA.Cert.NotAfter),
		`portcullis_client_cert_soonest_expiry_timestamp_seconds`:             unix(p.Client.Issued.Cert.NotAfter),
		`portcullis_backend_up{route="tcpecho"}`:                              1,
		`portcullis_backend_up{route="dead"}`:                                 0,
		`portcullis_backend_up{route="echo"}`:                                 1,
	}
	// Bytes are counted when a stream ends on the gateway's side, and the
	// backend check runs in the background: scrape until all are in.
	var body string
	var wrong []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		var code int
		code, body = httpGet(t, admin+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d\n%s", code, body)
		}
		wrong = wrong[:0]
		for series, v := range want {
			if got, ok := testnet.Sample(body, series); !ok || got != v {
				wrong = append(wrong, fmt.Sprintf("%s = %v (present: %v), want %v", series, got, ok, v))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range wrong {
		t.Error(w)
	}
	for _, name := range []string{"portcullis_build_info{", "go_goroutines ", "process_start_time_seconds ",
		`portcullis_handshake_duration_seconds_bucket{mode="mux",le="+Inf"} 1`} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if st := e.srv.Stats(); st.StreamsOK != 2 || st.StreamsRefused != 3 || st.HandshakesFailed != 2 {
		t.Errorf("Stats() = %+v; want 2 streams, 3 refused, 2 failed handshakes", st)
	}
	for _, leak := range []string{"127.0.0.2", "alice", "spiffe"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics names %q: no address or identity belongs in a label", leak)
		}
	}
	testnet.PromtoolCheck(t, body)
}

// After a failed reload /readyz answers 503 with the reason, /status and
// the metrics say so, until a reload succeeds; with
// ReadyDespiteReloadFailure it stays ready.
func TestReadyzAfterFailedReload(t *testing.T) {
	p := testpki.New(t)
	good := fmt.Sprintf(reloadPolicy, `"uri:spiffe://test/app/*"`)
	for _, despite := range []bool{false, true} {
		t.Run(fmt.Sprintf("despite=%v", despite), func(t *testing.T) {
			e, file, admin := startWithPolicy(t, p, good, despite)
			if code, body := httpGet(t, admin+"/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz %d %q before any reload; want 200", code, body)
			}
			writeFile(t, file, "routes:\n  echo:\n    backnd: builtin:echo\n")
			if err := e.srv.Reload(); err == nil {
				t.Fatal("Reload of a broken policy succeeded")
			}
			code, body := httpGet(t, admin+"/readyz")
			if despite {
				if code != http.StatusOK {
					t.Errorf("/readyz %d %q after a failed reload with ReadyDespiteReloadFailure; want 200", code, body)
				}
			} else if code != http.StatusServiceUnavailable || !strings.Contains(body, "reload failed") || !strings.Contains(body, "backnd") {
				t.Errorf("/readyz %d %q after a failed reload; want 503 naming the reload and its error", code, body)
			}
			st := status(t, admin)
			if st.LastReload.OK || !strings.Contains(st.LastReload.Error, "backnd") || st.Ready != despite {
				t.Errorf("/status after a failed reload: %+v", st)
			}
			_, metrics := httpGet(t, admin+"/metrics")
			if v, _ := testnet.Sample(metrics, "portcullis_reload_failures_total"); v != 1 {
				t.Errorf("portcullis_reload_failures_total = %v, want 1", v)
			}
			writeFile(t, file, good)
			if err := e.srv.Reload(); err != nil {
				t.Fatal(err)
			}
			if code, body := httpGet(t, admin+"/readyz"); code != http.StatusOK {
				t.Errorf("/readyz %d %q after a good reload; want 200", code, body)
			}
			if st := status(t, admin); !st.LastReload.OK || st.LastReload.Error != "" || !st.Ready {
				t.Errorf("/status after a good reload: %+v", st)
			}
			_, metrics = httpGet(t, admin+"/metrics")
			if v, _ := testnet.Sample(metrics, "portcullis_reloads_total"); v != 1 {
				t.Errorf("portcullis_reloads_total = %v, want 1", v)
			}
		})
	}
}

func status(t *testing.T, admin string) gateway.Status {
	t.Helper()
	code, body := httpGet(t, admin+"/status")
	var st gateway.Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/status: %d %v\n%s", code, err, body)
	}
	return st
}

// /status reports the state, the certificates and, from the background
// check, one reachable and one dead backend (and a builtin, always
// reachable).
func TestStatusBackends(t *testing.T) {
	p := testpki.New(t)
	_, _, admin := startWithPolicy(t, p, fmt.Sprintf(metricsPolicy, echoBackend(t), deadAddr(t)), false)
	var st gateway.Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st = status(t, admin); len(st.Backends) == 4 || time.Now().After(deadline) {
			break
		}
	}
	got := map[string]gateway.BackendStatus{}
	for _, b := range st.Backends {
		got[b.Route] = b
	}
	if b := got["tcpecho"]; !b.Reachable || b.Error != "" || b.CheckedAt.IsZero() {
		t.Errorf("tcpecho: %+v; want reachable", b)
	}
	if b := got["dead"]; b.Reachable || !strings.Contains(b.Error, "refused") {
		t.Errorf("dead: %+v; want unreachable, connection refused", b)
	}
	if b := got["echo"]; !b.Reachable || b.Backend != gateway.BuiltinEcho {
		t.Errorf("echo: %+v; want reachable (builtin)", b)
	}
	if st.State != "serving" || !st.Ready || !st.LastReload.OK ||
		!st.Certificates.ServerNotAfter.Equal(p.Server.Issued.Cert.NotAfter.Truncate(time.Second)) ||
		!st.Certificates.ClientCANotAfter.Equal(p.CA.Cert.NotAfter.Truncate(time.Second)) {
		t.Errorf("/status: %+v", st)
	}
}

// Every metric the Grafana dashboard queries is one the server describes.
func TestDashboardNamesMetrics(t *testing.T) {
	p := testpki.New(t)
	e := start(t, p, baseConfig(p, config.Route{Name: "echo", Backend: "builtin:echo"}))
	names := map[string]bool{}
	ch := make(chan *prometheus.Desc, 16)
	go func() { e.srv.Registry().Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	b, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`portcullis_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) < 10 {
		t.Fatalf("the dashboard queries %d portcullis metrics; want a dozen or more", len(used))
	}
	for _, n := range used {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
		if !names[n] && !names[base] {
			t.Errorf("docs/grafana-dashboard.json queries %s, which the gateway does not export", n)
		}
	}
}

// A program's own registry gets the server's metrics; one that has the Go
// collector already keeps it; a second server on the same registry is an
// error from New, not a panic.
func TestConfigRegistry(t *testing.T) {
	p := testpki.New(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	log := zerolog.Nop()
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: "builtin:echo"})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gc := cfg.ServerConfig(&log)
	gc.Registry = reg
	srv, err := gateway.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Registry() != reg {
		t.Error("Registry() is not Config.Registry")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
	}
	for _, n := range []string{"portcullis_handshakes_total", "portcullis_build_info", "go_goroutines", "portcullis_max_conns"} {
		if !found[n] {
			t.Errorf("the registry has no %s", n)
		}
	}
	if srv2, err := gateway.New(gc); err == nil {
		srv2.Close()
		t.Error("a second server on the same registry: New succeeded")
	} else if !strings.Contains(err.Error(), "metrics") {
		t.Errorf("a second server on the same registry: %v; want an error about the metrics", err)
	}
}

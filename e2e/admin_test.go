package e2e_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAdminEndpoints checks the --admin listener of the command-line
// contract: /healthz, /readyz, /status (JSON) and /metrics (Prometheus
// text) over plain HTTP on the address given.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	admin := closedAddr(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo", "--admin", admin)...)
	r := tunnel(t, strings.NewReader("count me\n"), append([]string{"nc", "echo"}, ca.clientArgs(gw.addr, ca.alice)...)...)
	wantExit(t, "tunnel nc echo", r, exitOK)
	r = tunnel(t, nil, append([]string{"nc", "nosuch"}, ca.clientArgs(gw.addr, ca.alice)...)...)
	wantExit(t, "tunnel nc nosuch", r, exitRefused)

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://" + admin + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(body), err
	}
	// The admin listener may come up just after the main one.
	var lastErr error
	if !waitUntil(5*time.Second, func() bool {
		code, _, err := get("/healthz")
		lastErr = err
		return err == nil && code == http.StatusOK
	}) {
		t.Fatalf("GET http://%s/healthz did not answer 200 within 5s (--admin %s): %v", admin, admin, lastErr)
	}
	if code, body, err := get("/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("GET /readyz: %d %q %v; want 200", code, body, err)
	}
	code, body, err := get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v; want 200", code, err)
	}
	if !strings.Contains(body, "# TYPE") {
		t.Errorf("/metrics is not Prometheus text (no # TYPE line):\n%s", body)
	}
	// One stream carried and one refused, on two connections.
	for name, want := range map[string]float64{
		`portcullis_streams_total{route="echo"}`:                            1,
		`portcullis_streams_refused_total{route="",status="unknown_route"}`: 1,
		"portcullis_handshakes_total":                                       2,
	} {
		got, ok := metricValue(body, name)
		if !ok || got != want {
			t.Errorf("/metrics %s = %v (found: %v), want %v", name, got, ok, want)
		}
	}
	if !strings.Contains(body, "\nportcullis_build_info{") {
		t.Errorf("/metrics has no portcullis_build_info:\n%s", body)
	}
	// The builtin route's check is in the background check's first round.
	var status string
	if !waitUntil(5*time.Second, func() bool {
		code, b, err := get("/status")
		status = b
		return err == nil && code == http.StatusOK && strings.Contains(b, `"state": "serving"`) && strings.Contains(b, `"route": "echo"`)
	}) {
		t.Errorf("GET /status: want state serving and the echo route's check:\n%s", status)
	}
}

// metricValue returns the value of a series in Prometheus text, named as
// the gateway writes it (labels in name order).
func metricValue(body, name string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		v, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f, err == nil
	}
	return 0, false
}

// TestForwardAdmin checks "tunnel forward --admin": /healthz and /metrics
// with the session up and a carried stream counted by route.
func TestForwardAdmin(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	admin := closedAddr(t)
	locals := startForward(t, append(ca.clientArgs(gw.addr, ca.alice), "--admin", admin), "127.0.0.1:0=echo")
	if err := roundTrip(locals["echo"], 7, 4096, time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	ok := waitUntil(10*time.Second, func() bool {
		resp, err := client.Get("http://" + admin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		body = string(b)
		streams, _ := metricValue(body, `portcullis_tunnel_streams_total{route="echo"}`)
		sent, _ := metricValue(body, `portcullis_tunnel_sent_bytes_total{route="echo"}`)
		up, _ := metricValue(body, "portcullis_tunnel_session_up")
		return resp.StatusCode == http.StatusOK && streams == 1 && sent == 4096 && up == 1
	})
	if !ok {
		t.Errorf("tunnel forward --admin %s: /metrics lacks one echo stream of 4096 bytes on a session that is up:\n%s", admin, body)
	}
}

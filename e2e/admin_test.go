package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminEndpoints checks the --admin listener of the command-line
// contract: /healthz, /readyz and /metrics (Prometheus text) over plain
// HTTP on the address given.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	admin := closedAddr(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo", "--admin", admin)...)
	r := tunnel(t, strings.NewReader("count me\n"), append([]string{"nc", "echo"}, ca.clientArgs(gw.addr, ca.alice)...)...)
	wantExit(t, "tunnel nc echo", r, exitOK)

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
}

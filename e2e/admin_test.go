package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"
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
		got, ok := testnet.Sample(body, name)
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
		streams, _ := testnet.Sample(body, `portcullis_tunnel_streams_total{route="echo"}`)
		sent, _ := testnet.Sample(body, `portcullis_tunnel_sent_bytes_total{route="echo"}`)
		up, _ := testnet.Sample(body, "portcullis_tunnel_session_up")
		return resp.StatusCode == http.StatusOK && streams == 1 && sent == 4096 && up == 1
	})
	if !ok {
		t.Errorf("tunnel forward --admin %s: /metrics lacks one echo stream of 4096 bytes on a session that is up:\n%s", admin, body)
	}
}

// TestReadyzAfterFailedReload breaks the --allow-file under a running
// gateway and sends SIGHUP: /readyz answers 503 until a good file is
// reloaded; with --ready-despite-reload-failure it stays 200.
func TestReadyzAfterFailedReload(t *testing.T) {
	t.Parallel()
	for _, despite := range []bool{false, true} {
		t.Run(fmt.Sprintf("despite=%v", despite), func(t *testing.T) {
			t.Parallel()
			ca := getCA(t)
			file := filepath.Join(t.TempDir(), "allow.txt")
			write := func(content string) {
				t.Helper()
				if err := os.WriteFile(file+".new", []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(file+".new", file); err != nil {
					t.Fatal(err)
				}
			}
			write("127.0.0.1\n")
			admin := closedAddr(t)
			args := ca.gatewayArgs("--allow-file", file, "--allow-id", allowAlice, "--route", "echo=builtin:echo",
				"--admin", admin, "--watch-interval", "0")
			if despite {
				args = append(args, "--ready-despite-reload-failure")
			}
			gw := startGateway(t, args...)
			client := &http.Client{Timeout: 5 * time.Second}
			readyz := func() (int, string) {
				resp, err := client.Get("http://" + admin + "/readyz")
				if err != nil {
					return 0, err.Error()
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
				return resp.StatusCode, string(b)
			}
			if !waitUntil(5*time.Second, func() bool { code, _ := readyz(); return code == http.StatusOK }) {
				code, body := readyz()
				t.Fatalf("/readyz %d %q at start; want 200", code, body)
			}
			hup := func(event string) {
				t.Helper()
				mark := gw.stderr.mark()
				gw.signal(t, syscall.SIGHUP)
				gw.waitEvent(t, mark, eventTimeout, isEvent(event))
			}
			write("127.0.0.1\nnot-an-address\n")
			hup("reload_failed")
			code, body := readyz()
			switch {
			case despite && code != http.StatusOK:
				t.Errorf("/readyz %d %q after a failed reload with --ready-despite-reload-failure; want 200", code, body)
			case !despite && (code != http.StatusServiceUnavailable || !strings.Contains(body, "not-an-address")):
				t.Errorf("/readyz %d %q after a failed reload; want 503 naming the bad rule", code, body)
			}
			write("127.0.0.1\n")
			hup("reloaded")
			if code, body := readyz(); code != http.StatusOK {
				t.Errorf("/readyz %d %q after a good reload; want 200", code, body)
			}
		})
	}
}

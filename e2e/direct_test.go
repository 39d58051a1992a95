package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"
)

// lookTool finds a program on PATH or skips the test.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found on PATH: install it to run this test", name)
	}
	return p
}

// TestDirectOpenSSL talks to the gateway's echo route with openssl
// s_client, a TLS client that knows nothing of portcullis: the route is the
// SNI. Without a client certificate it must fail.
func TestDirectOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := lookTool(t, "openssl")
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)

	base := []string{"s_client", "-connect", gw.addr, "-servername", "echo", "-CAfile", ca.caFile,
		"-verify_return_error", "-quiet", "-no_ign_eof", "-nocommands"}

	t.Run("echo", func(t *testing.T) {
		mark := gw.stderr.mark()
		data := randomBytes(4, 256<<10)
		stdinR, stdinW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdinW.Close()
		var stdout testnet.SyncBuffer
		p := startProc(t, "openssl s_client", nil, stdinR, &stdout, openssl,
			append(base, "-cert", ca.alice.cert, "-key", ca.alice.key)...)
		stdinR.Close()
		wrote := make(chan error, 1)
		go func() {
			_, err := stdinW.Write(data)
			wrote <- err
		}()
		if !waitUntil(runTimeout, func() bool { return stdout.Len() >= len(data) || p.exited() }) {
			t.Fatalf("s_client: %d of %d bytes echoed after %v", stdout.Len(), len(data), runTimeout)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("writing to s_client: %v", err)
		}
		stdinW.Close() // s_client sends close_notify and exits
		if code := p.wait(t, runTimeout); code != 0 {
			t.Errorf("s_client exit status %d, want 0", code)
		}
		if err := sameBytes(stdout.Bytes(), data); err != nil {
			t.Errorf("s_client stdout: %v", err)
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("stream_close", "route", "echo", "mode", "direct"))
		checkBytes(t, ev, int64(len(data)), int64(len(data)))
	})

	t.Run("no-client-certificate", func(t *testing.T) {
		mark := gw.stderr.mark()
		// stdin stays open: s_client keeps reading from the gateway and
		// gets its alert (in TLS 1.3 the client's side of the handshake is
		// over before the server has looked at the client's certificate).
		stdinR, stdinW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdinW.Close()
		var stdout testnet.SyncBuffer
		p := startProc(t, "openssl s_client (no certificate)", nil, stdinR, &stdout, openssl, base...)
		stdinR.Close()
		if _, err := stdinW.Write([]byte("hello\n")); err != nil {
			t.Logf("writing to s_client: %v", err) // it may be gone already
		}
		if code := p.wait(t, runTimeout); code == 0 {
			t.Errorf("s_client without a certificate: exit status 0, want a failure; stderr:\n%s", p.stderr.String())
		}
		if bytes.Contains(stdout.Bytes(), []byte("hello")) {
			t.Errorf("s_client without a certificate got an echo: %q", stdout.Bytes())
		}
		if !strings.Contains(strings.ToLower(p.stderr.String()), "certificate required") {
			t.Errorf("s_client does not report the gateway's alert \"certificate required\":\n%s", p.stderr.String())
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("handshake_failed"))
		if !strings.Contains(strings.ToLower(ev.str("reason")), "certificate") {
			t.Errorf("handshake_failed event does not say a certificate is missing: %v", ev)
		}
	})
}

// TestDirectCurl fetches a page from an HTTP server of the test behind the
// route gw.test with curl, a standard TLS client, in direct mode; and the
// default route serves a client whose SNI names no route.
func TestDirectCurl(t *testing.T) {
	t.Parallel()
	curl := lookTool(t, "curl")
	ca := getCA(t)

	token, web := startHTTPBackend(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "gw.test="+web, "--route", "echo=builtin:echo", "--default-route", "gw.test")...)
	_, port, _ := net.SplitHostPort(gw.addr)
	curlArgs := func(id *pair, extra ...string) []string {
		args := []string{"-sS", "--max-time", "20", "--cacert", ca.caFile, "--resolve", "gw.test:" + port + ":127.0.0.1"}
		if id != nil {
			args = append(args, "--cert", id.cert, "--key", id.key)
		}
		return append(args, extra...)
	}

	t.Run("get", func(t *testing.T) {
		r := run(t, runTimeout, nil, nil, curl, curlArgs(&ca.alice, "--fail", "https://gw.test:"+port+"/e2e/alice")...)
		if r.code != 0 {
			t.Fatalf("curl: %v", r)
		}
		want := fmt.Sprintf("hello alice, host gw.test:%s, %s\n", port, token)
		if string(r.stdout) != want {
			t.Errorf("curl got %q, want %q", r.stdout, want)
		}
	})

	t.Run("post", func(t *testing.T) {
		body := randomBytes(5, 512<<10)
		file := filepath.Join(t.TempDir(), "body")
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
		r := run(t, runTimeout, nil, nil, curl, curlArgs(&ca.alice, "--fail", "--data-binary", "@"+file,
			"-H", "Content-Type: application/octet-stream", "https://gw.test:"+port+"/sum")...)
		if r.code != 0 {
			t.Fatalf("curl: %v", r)
		}
		sum := sha256.Sum256(body)
		if want := fmt.Sprintf("%d %s\n", len(body), hex.EncodeToString(sum[:])); string(r.stdout) != want {
			t.Errorf("the backend received %q, want %q", r.stdout, want)
		}
	})

	t.Run("default-route", func(t *testing.T) {
		// SNI "localhost" names no route: the default route (gw.test) serves it.
		r := run(t, runTimeout, nil, nil, curl, curlArgs(&ca.alice, "--fail", "https://localhost:"+port+"/e2e/default")...)
		if r.code != 0 {
			t.Fatalf("curl: %v", r)
		}
		if want := fmt.Sprintf("hello default, host localhost:%s, %s\n", port, token); string(r.stdout) != want {
			t.Errorf("curl got %q, want %q", r.stdout, want)
		}
	})

	t.Run("no-client-certificate", func(t *testing.T) {
		r := run(t, runTimeout, nil, nil, curl, curlArgs(nil, "https://gw.test:"+port+"/e2e/nobody")...)
		if r.code == 0 || strings.Contains(string(r.stdout), token) {
			t.Errorf("curl without a client certificate was served: %v\n%s", r, r.stdout)
		}
	})

	t.Run("identity-not-allowed", func(t *testing.T) {
		mark := gw.stderr.mark()
		r := run(t, runTimeout, nil, nil, curl, curlArgs(&ca.bob, "https://gw.test:"+port+"/e2e/bob")...)
		if r.code == 0 || strings.Contains(string(r.stdout), token) {
			t.Errorf("curl with an identity that no rule allows was served: %v\n%s", r, r.stdout)
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("stream_refused", "mode", "direct"))
		if !strings.Contains(ev.String(), "spiffe://outsider/bob") || ev.str("route") != "gw.test" {
			t.Errorf("stream_refused event does not name the identity and the route: %v", ev)
		}
	})
}

// startHTTPBackend serves on 127.0.0.1 until the test ends:
//
//	GET /e2e/NAME   "hello NAME, host HOST, TOKEN\n"
//	POST /sum       "LENGTH SHA256\n" of the body
//
// It returns the token (unique to the server) and the address.
func startHTTPBackend(t *testing.T) (token, addr string) {
	t.Helper()
	token = fmt.Sprintf("token-%d", time.Now().UnixNano())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /e2e/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s, host %s, %s\n", r.PathValue("name"), r.Host, token)
	})
	mux.HandleFunc("POST /sum", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x\n", n, h.Sum(nil))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return token, ln.Addr().String()
}

// TestNetworkGateBySource uses curl's and openssl's choice of source
// address (127.0.0.2 vs 127.0.0.1) against a gateway whose rules admit
// 127.0.0.0/8 but deny 127.0.0.1: the most specific rule wins, and a
// denied client is closed before any TLS byte (the gateway logs the deny
// with the rule).
func TestNetworkGateBySource(t *testing.T) {
	t.Parallel()
	curl := lookTool(t, "curl")
	openssl := lookTool(t, "openssl")
	ca := getCA(t)
	token, web := startHTTPBackend(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.0/8,!127.0.0.1", "--allow-id", allowAlice, "--route", "gw.test="+web)...)
	_, port, _ := net.SplitHostPort(gw.addr)
	get := func(source string) result {
		return run(t, runTimeout, nil, nil, curl, "-sS", "--max-time", "20", "--interface", source,
			"--cacert", ca.caFile, "--cert", ca.alice.cert, "--key", ca.alice.key,
			"--resolve", "gw.test:"+port+":127.0.0.1", "https://gw.test:"+port+"/e2e/"+source)
	}

	r := get("127.0.0.2")
	if r.code != 0 || !strings.Contains(string(r.stdout), token) {
		t.Errorf("curl from 127.0.0.2 (admitted by 127.0.0.0/8): %v\n%s", r, r.stdout)
	}
	mark := gw.stderr.mark()
	r = get("127.0.0.1")
	if r.code == 0 || strings.Contains(string(r.stdout), token) {
		t.Errorf("curl from 127.0.0.1 (denied by !127.0.0.1) was served: %v\n%s", r, r.stdout)
	}
	ev := gw.waitEvent(t, mark, eventTimeout, isEvent("deny"))
	if !strings.HasPrefix(ev.str("peer"), "127.0.0.1") || !strings.Contains(ev.str("rule"), "127.0.0.1") {
		t.Errorf("deny event does not name the peer 127.0.0.1 and the rule !127.0.0.1: %v", ev)
	}
	for _, e := range gw.stderr.events(mark) {
		if isEvent("handshake_failed")(e) {
			t.Errorf("a denied connection reached the TLS handshake: %v", e)
		}
	}

	// openssl s_client from 127.0.0.2: admitted, and it gets the page.
	req := "GET /e2e/openssl HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
	r = run(t, runTimeout, strings.NewReader(req), nil, openssl, "s_client", "-bind", "127.0.0.2:0", "-connect", gw.addr,
		"-servername", "gw.test", "-cert", ca.alice.cert, "-key", ca.alice.key, "-CAfile", ca.caFile,
		"-verify_return_error", "-quiet", "-nocommands")
	if !strings.Contains(string(r.stdout), "hello openssl, host gw.test, "+token) {
		t.Errorf("openssl s_client from 127.0.0.2: %v\n%s", r, r.stdout)
	}
}

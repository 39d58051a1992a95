package e2e_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"
)

// heldNC is a "tunnel nc" whose stdin the test writes to, a bit at a time.
type heldNC struct {
	*proc
	stdin  *os.File
	stdout *testnet.SyncBuffer
	sent   []byte
}

func startHeldNC(t *testing.T, args ...string) *heldNC {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	h := &heldNC{stdin: w, stdout: &testnet.SyncBuffer{}}
	h.proc = startProc(t, "tunnel nc (held open)", nil, r, h.stdout, tunnelBin, append([]string{"nc"}, args...)...)
	r.Close()
	return h
}

// echo writes data and waits until everything sent so far has come back.
func (h *heldNC) echo(t *testing.T, data []byte) {
	t.Helper()
	h.sent = append(h.sent, data...)
	if _, err := h.stdin.Write(data); err != nil {
		t.Fatalf("writing to nc: %v", err)
	}
	if !waitUntil(runTimeout, func() bool { return h.stdout.Len() >= len(h.sent) || h.exited() }) {
		t.Fatalf("nc: %d of %d bytes echoed after %v", h.stdout.Len(), len(h.sent), runTimeout)
	}
	if err := sameBytes(h.stdout.Bytes(), h.sent); err != nil {
		t.Fatalf("nc echo: %v; stderr:\n%s", err, h.stderr.String())
	}
}

// finish closes stdin and checks that nc exits 0 with everything echoed.
func (h *heldNC) finish(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if code := h.wait(t, runTimeout); code != exitOK {
		t.Errorf("nc exit status %d, want 0; stderr:\n%s", code, h.stderr.String())
	}
	if err := sameBytes(h.stdout.Bytes(), h.sent); err != nil {
		t.Errorf("nc stdout: %v", err)
	}
}

// TestSIGTERMDrains checks that on SIGTERM the gateway stops accepting at
// once, lets an open stream carry on to its end, and then exits 0.
func TestSIGTERMDrains(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "echo=builtin:echo", "--drain-timeout", "60s")...)
	client := ca.clientArgs(gw.addr, ca.alice)

	open := startHeldNC(t, append([]string{"echo"}, client...)...)
	open.echo(t, []byte("before SIGTERM\n"))

	mark := gw.stderr.mark()
	gw.signal(t, syscall.SIGTERM)
	gw.waitEvent(t, mark, eventTimeout, isEvent("draining"))

	// No new connections: the listener is closed.
	if c, err := net.DialTimeout("tcp", gw.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("a TCP connection to the draining gateway succeeded")
	}
	r := tunnel(t, strings.NewReader("late\n"), append([]string{"nc", "echo"}, client...)...)
	wantExit(t, "tunnel nc to a draining gateway", r, exitUnreachable, "cannot connect")

	// The open stream goes on, both ways.
	open.echo(t, randomBytes(7, 256<<10))
	if gw.exited() {
		t.Fatalf("the gateway exited while a stream was open")
	}
	open.finish(t)
	if code := gw.wait(t, stopTimeout); code != exitOK {
		t.Errorf("gateway exit status %d after draining, want 0", code)
	}
	ev := gw.waitEvent(t, mark, eventTimeout, isEvent("stream_close", "route", "echo"))
	checkBytes(t, ev, int64(len(open.sent)), int64(len(open.sent)))
}

// TestSIGTERMIdleSession checks that an idle tunnel session (a "tunnel
// forward" with no stream open) does not hold a draining gateway until the
// drain timeout: the gateway exits promptly.
func TestSIGTERMIdleSession(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "echo=builtin:echo", "--drain-timeout", "60s")...)
	locals := startForward(t, ca.clientArgs(gw.addr, ca.alice), "127.0.0.1:0=echo")
	// One stream, to open the session, then none.
	if err := roundTrip(locals["echo"], 8, 1024, time.Now().Add(runTimeout)); err != nil {
		t.Fatal(err)
	}
	gw.waitEvent(t, 0, eventTimeout, isEvent("stream_close", "route", "echo"))
	start := time.Now()
	gw.signal(t, syscall.SIGTERM)
	if code := gw.wait(t, 15*time.Second); code != exitOK {
		t.Errorf("gateway exit status %d, want 0", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the gateway took %v to exit with only an idle session open; want well under its 60s drain timeout", d)
	}
}

// TestSIGHUPReloadsAllowFile changes the --allow-file under a running
// gateway: an invalid file keeps the old rules (the log says why), a file
// without 127.0.0.1 refuses new connections from it after SIGHUP while a
// stream already open carries on, and restoring the file lets them in again.
func TestSIGHUPReloadsAllowFile(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	file := filepath.Join(t.TempDir(), "allow.txt")
	write := func(content string) {
		t.Helper()
		// Replaced by rename, as configuration tools do.
		tmp := file + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("# the test client\n127.0.0.1\n")
	gw := startGateway(t, ca.gatewayArgs("--allow-file", file, "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	client := append([]string{"nc", "echo"}, ca.clientArgs(gw.addr, ca.alice)...)
	ncEcho := func(t *testing.T, code int, words ...string) {
		t.Helper()
		r := tunnel(t, strings.NewReader("ping\n"), client...)
		wantExit(t, "tunnel nc echo", r, code, words...)
		if code == exitOK && string(r.stdout) != "ping\n" {
			t.Errorf("stdout = %q, want %q", r.stdout, "ping\n")
		}
	}
	hup := func(t *testing.T, match func(event) bool) event {
		t.Helper()
		mark := gw.stderr.mark()
		gw.signal(t, syscall.SIGHUP)
		return gw.waitEvent(t, mark, eventTimeout, match)
	}

	ncEcho(t, exitOK)
	held := startHeldNC(t, client[1:]...)
	held.echo(t, []byte("opened before the reloads\n"))

	t.Run("invalid-file-keeps-old-rules", func(t *testing.T) {
		write("127.0.0.1\nnot-an-address\n")
		ev := hup(t, isEvent("reload_failed"))
		msg := strings.ToLower(ev.String())
		for _, w := range []string{"allow-file", "not-an-address", "keeping"} {
			if !strings.Contains(msg, w) {
				t.Errorf("reload_failed event does not say %q: %v", w, ev)
			}
		}
		ncEcho(t, exitOK)
	})

	t.Run("address-removed", func(t *testing.T) {
		write("# 127.0.0.1 removed\n10.0.0.0/8\n")
		hup(t, isEvent("reloaded"))
		mark := gw.stderr.mark()
		ncEcho(t, exitUnreachable, "gateway")
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("deny"))
		if !strings.HasPrefix(ev.str("peer"), "127.0.0.1") {
			t.Errorf("deny event for the wrong peer: %v", ev)
		}
		// The stream opened before the change carries on.
		held.echo(t, []byte("still open after the reload\n"))
	})

	t.Run("address-restored", func(t *testing.T) {
		write("127.0.0.1\n")
		hup(t, isEvent("reloaded"))
		ncEcho(t, exitOK)
	})

	held.finish(t)
	if !bytes.HasPrefix(held.stdout.Bytes(), []byte("opened before")) {
		t.Errorf("held stream output: %q", held.stdout.Bytes())
	}
}

// TestSIGHUPReloadsCertificate replaces the gateway's certificate (new
// names) and sends SIGHUP: new handshakes present the new certificate.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	gatewayPKI(t, "init", "--dir", dir)
	gatewayPKI(t, "issue", "--dir", dir, "--server", "--name", "gw", "--dns", "old.test")
	gatewayPKI(t, "issue", "--dir", dir, "--client", "--name", "carol", "--uri", "spiffe://e2e/carol")
	p := func(name string) string { return filepath.Join(dir, name) }
	gw := startGateway(t, "--listen", "127.0.0.1:0", "--cert", p("gw.crt"), "--key", p("gw.key"), "--ca", p("ca.crt"),
		"--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")
	nc := func(t *testing.T, serverName string, code int, words ...string) {
		t.Helper()
		r := tunnel(t, strings.NewReader("ping\n"), "nc", "echo", "--gateway", gw.addr, "--server-name", serverName,
			"--cert", p("carol.crt"), "--key", p("carol.key"), "--ca", p("ca.crt"))
		wantExit(t, "tunnel nc --server-name "+serverName, r, code, words...)
	}
	nc(t, "old.test", exitOK)
	nc(t, "new.test", exitUnreachable, "new.test")

	gatewayPKI(t, "issue", "--dir", dir, "--server", "--name", "gw", "--dns", "new.test", "--force")
	mark := gw.stderr.mark()
	gw.signal(t, syscall.SIGHUP)
	gw.waitEvent(t, mark, eventTimeout, isEvent("reloaded"))
	nc(t, "new.test", exitOK)
	nc(t, "old.test", exitUnreachable, "old.test")
}

// TestDrainTimeoutCuts checks that --drain-timeout bounds the drain: a
// stream still open when it passes is cut, and the gateway exits 0.
func TestDrainTimeoutCuts(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "echo=builtin:echo", "--drain-timeout", "1s")...)
	held := startHeldNC(t, append([]string{"echo"}, ca.clientArgs(gw.addr, ca.alice)...)...)
	held.echo(t, []byte("open across the drain\n"))
	start := time.Now()
	gw.signal(t, syscall.SIGTERM)
	if code := gw.wait(t, stopTimeout); code != exitOK {
		t.Errorf("gateway exit status %d, want 0", code)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("the gateway exited %v after SIGTERM with a stream open; want about its --drain-timeout of 1s", d)
	}
	// The cut stream ends nc, although its stdin is still open, and it
	// says so by its status.
	if code := held.wait(t, stopTimeout); code != exitUnreachable {
		t.Errorf("nc exit status %d after its stream was cut, want %d; stderr:\n%s", code, exitUnreachable, held.stderr.String())
	}
}

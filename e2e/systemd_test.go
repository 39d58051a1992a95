package e2e_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a unixgram socket the test listens on, standing in for
// systemd's NOTIFY_SOCKET.
type notifySocket struct {
	path string
	c    *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{path: path, c: c}
}

// next returns the next notification, or fails the test after eventTimeout.
func (n *notifySocket) next(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := n.c.SetReadDeadline(time.Now().Add(eventTimeout)); err != nil {
		t.Fatal(err)
	}
	k, err := n.c.Read(buf)
	if err != nil {
		t.Fatalf("no notification from the gateway: %v", err)
	}
	return string(buf[:k])
}

// want reads notifications until one whose first line is first (skipping
// WATCHDOG=1 keep-alives), bounded by 10 reads.
func (n *notifySocket) want(t *testing.T, first string) string {
	t.Helper()
	for range 10 {
		msg := n.next(t)
		if strings.SplitN(msg, "\n", 2)[0] == first {
			return msg
		}
		if msg != "WATCHDOG=1" {
			t.Fatalf("notification %q, want %s", msg, first)
		}
	}
	t.Fatalf("no %s among 10 notifications", first)
	return ""
}

// TestSystemdNotify runs the gateway with a NOTIFY_SOCKET and a watchdog:
// it says READY=1 once listening, RELOADING=1 (with MONOTONIC_USEC) then
// READY=1 around a SIGHUP reload, WATCHDOG=1 while it runs, and STOPPING=1
// on SIGTERM, then exits 0.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	ns := newNotifySocket(t)
	// WATCHDOG_PID is left out: systemd sets it only when the notifying
	// process is not the main one.
	gw := startGatewayEnv(t, []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=400000"},
		ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	if got := ns.next(t); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := ns.next(t); got != "WATCHDOG=1" { // 200 ms on
		t.Errorf("notification after READY=1: %q, want WATCHDOG=1", got)
	}

	mark := gw.stderr.mark()
	gw.signal(t, syscall.SIGHUP)
	msg := ns.want(t, "RELOADING=1")
	if !strings.Contains(msg, "\nMONOTONIC_USEC=") {
		t.Errorf("reload notification %q has no MONOTONIC_USEC", msg)
	}
	ns.want(t, "READY=1")
	gw.waitEvent(t, mark, eventTimeout, isEvent("reloaded"))

	gw.signal(t, syscall.SIGTERM)
	ns.want(t, "STOPPING=1")
	if code := gw.wait(t, stopTimeout); code != exitOK {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// TestSocketActivation passes the gateway a listening socket as fd 3 with
// LISTEN_FDS=1 and LISTEN_PID set to its own pid (by a shell that execs
// it), as systemd does: the gateway serves on that socket, says that
// --listen is ignored, and a tunnel gets through.
func TestSocketActivation(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not installed: it sets LISTEN_PID to the gateway's pid")
	}
	ca := getCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // the duplicate in f stays open
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr := ln.Addr().String()

	args := append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, gatewayBin, "run"},
		ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	cmd := exec.Command(sh, args...)
	cmd.Env = append(cleanEnv(), "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	gw := startCmd(t, "gateway (socket activated)", cmd)
	f.Close() // the child holds it now
	ev := gw.waitEvent(t, 0, startTimeout, isEvent("socket_activation"))
	if ev.str("addr") != addr {
		t.Errorf("socket_activation event %v: want addr %s", ev, addr)
	}
	if ev.str("ignored_listen") != "127.0.0.1:0" {
		t.Errorf("socket_activation event %v: want ignored_listen 127.0.0.1:0", ev)
	}
	if ev := gw.waitEvent(t, 0, startTimeout, isEvent("listening")); ev.str("addr") != addr {
		t.Errorf("listening event %v: want addr %s", ev, addr)
	}

	want := []byte("through the activated socket\n")
	r := tunnel(t, bytes.NewReader(want), append([]string{"nc", "echo"}, ca.clientArgs(addr, ca.alice)...)...)
	wantExit(t, "tunnel nc", r, exitOK)
	if !bytes.Equal([]byte(r.stdout), want) {
		t.Errorf("echo through the activated socket: got %q, want %q", r.stdout, want)
	}
}

// TestSystemdSocketActivate starts the gateway through systemd's own
// systemd-socket-activate, which binds the port, waits for the first
// connection and then runs the gateway with the socket, as a .socket unit
// does (the first connection is the test's probe); a tunnel gets through.
func TestSystemdSocketActivate(t *testing.T) {
	t.Parallel()
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian package systemd)")
	}
	ca := getCA(t)
	addr := closedAddr(t) // a free port on 127.0.0.1 that systemd-socket-activate binds
	args := append([]string{"--listen", addr, gatewayBin, "run"},
		ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	gw := startCmd(t, "systemd-socket-activate gateway", exec.Command(activate, args...))
	// It listens before the gateway runs: wait until it accepts.
	if !waitUntil(startTimeout, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil || gw.exited()
	}) || gw.exited() {
		t.Fatalf("systemd-socket-activate did not listen on %s:\n%s", addr, gw.stderr.tail(20))
	}
	want := []byte("through systemd-socket-activate\n")
	r := tunnel(t, bytes.NewReader(want), append([]string{"nc", "echo"}, ca.clientArgs(addr, ca.alice)...)...)
	wantExit(t, "tunnel nc", r, exitOK)
	if !bytes.Equal(r.stdout, want) {
		t.Errorf("echo: got %q, want %q", r.stdout, want)
	}
	if ev := gw.waitEvent(t, 0, eventTimeout, isEvent("socket_activation")); ev.str("addr") != addr {
		t.Errorf("socket_activation event %v: want addr %s", ev, addr)
	}
}

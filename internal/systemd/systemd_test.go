package systemd_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/systemd"
)

// notifySocket listens on a unixgram socket and points NOTIFY_SOCKET at it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifications(t *testing.T) {
	c := notifySocket(t)
	var n systemd.Notifier
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1" {
		t.Errorf("Ready sent %q", got)
	}
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	got := recv(t, c)
	lines := strings.Split(got, "\n")
	if lines[0] != "RELOADING=1" {
		t.Errorf("Reloading sent %q", got)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Errorf("Reloading sent %q, want a MONOTONIC_USEC line", got)
	} else if us, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us == 0 {
		t.Errorf("MONOTONIC_USEC %q: %v", lines[1], err)
	}
	if err := n.Stopping(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "STOPPING=1" {
		t.Errorf("Stopping sent %q", got)
	}
}

func TestNoSocketIsQuiet(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var n systemd.Notifier
	if err := n.Ready(); err != nil {
		t.Errorf("Ready without a notify socket: %v", err)
	}
	if err := n.Watchdog(context.Background(), nil); err != nil {
		t.Errorf("Watchdog without WATCHDOG_USEC: %v", err)
	}
}

func TestWatchdog(t *testing.T) {
	c := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000") // 200 ms: a keep-alive every 100 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d, err := systemd.WatchdogInterval(); err != nil || d != 200*time.Millisecond {
		t.Fatalf("WatchdogInterval = %v, %v; want 200ms", d, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- systemd.Notifier{}.Watchdog(ctx, nil) }()
	for range 2 {
		if got := recv(t, c); got != "WATCHDOG=1" {
			t.Errorf("watchdog sent %q", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestWatchdogOtherPid(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if d, err := systemd.WatchdogInterval(); err != nil || d != 0 {
		t.Errorf("WatchdogInterval for another pid = %v, %v; want 0", d, err)
	}
}

func TestNoActivation(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	t.Setenv("LISTEN_PID", "")
	ln, n, err := systemd.Listener()
	if ln != nil || n != 0 || err != nil {
		t.Errorf("Listener without LISTEN_FDS = %v, %d, %v", ln, n, err)
	}
}

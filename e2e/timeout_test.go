package e2e_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSlowAndForeignClients checks the gateway against clients that do not
// play along: one that connects and says nothing (cut at
// --handshake-timeout), one that speaks plain HTTP to the TLS port, and
// a stream left idle past --idle-timeout. The gateway logs each and keeps
// serving.
func TestSlowAndForeignClients(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo",
		"--handshake-timeout", "1s", "--hello-timeout", "1s", "--idle-timeout", "1s")...)

	t.Run("silent", func(t *testing.T) {
		mark := gw.stderr.mark()
		c, err := net.DialTimeout("tcp", gw.addr, eventTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(eventTimeout))
		n, err := c.Read(make([]byte, 1))
		d := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the gateway kept a silent connection open for %v; want it closed after --hello-timeout 1s", eventTimeout)
		}
		if n != 0 || d < 900*time.Millisecond || d > 5*time.Second {
			t.Errorf("silent connection: read %d bytes, %v after connecting (%v); want it closed after about 1s", n, d, err)
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("shed"))
		if ev.str("kind") != "silent" {
			t.Errorf("shed event does not say the connection was silent: %v", ev)
		}
	})

	t.Run("partial-hello", func(t *testing.T) {
		// The first bytes of a ClientHello, then nothing: the handshake
		// deadline runs from the first byte.
		mark := gw.stderr.mark()
		c, err := net.DialTimeout("tcp", gw.addr, eventTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00, 0x01}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(eventTimeout))
		_, err = c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the gateway kept a stalled handshake open for %v; want it closed after --handshake-timeout 1s", eventTimeout)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
			t.Errorf("stalled handshake closed %v after its first bytes; want about 1s", d)
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("handshake_failed"))
		if !strings.Contains(ev.str("reason"), "timed out") {
			t.Errorf("handshake_failed event does not say the handshake timed out: %v", ev)
		}
	})

	t.Run("plain-http", func(t *testing.T) {
		mark := gw.stderr.mark()
		c, err := net.DialTimeout("tcp", gw.addr, eventTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(eventTimeout))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(c)
		if strings.Contains(string(answer), "HTTP/1.1 200") {
			t.Errorf("plain HTTP to the TLS port got an HTTP answer: %q", answer)
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("handshake_failed"))
		if !strings.Contains(strings.ToLower(ev.str("reason")), "not tls") {
			t.Errorf("handshake_failed event does not say the client does not speak TLS: %v", ev)
		}
	})

	t.Run("idle-stream", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: waits for the idle timeout")
		}
		held := startHeldNC(t, append([]string{"echo"}, ca.clientArgs(gw.addr, ca.alice)...)...)
		held.echo(t, []byte("then silence\n"))
		start := time.Now()
		// nc's stdin stays open: only the gateway's idle timeout ends it.
		// The gateway ends an idle stream by closing it: a clean end.
		if code := held.wait(t, eventTimeout); code != exitOK {
			t.Errorf("nc exit status %d after the idle timeout, want 0; stderr:\n%s", code, held.stderr.String())
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("the idle stream ended after %v, before --idle-timeout 1s", d)
		}
	})

	t.Run("still-serving", func(t *testing.T) {
		r := tunnel(t, strings.NewReader("ping\n"), append([]string{"nc", "echo"}, ca.clientArgs(gw.addr, ca.alice)...)...)
		wantExit(t, "tunnel nc echo", r, exitOK)
		if string(r.stdout) != "ping\n" {
			t.Errorf("stdout = %q", r.stdout)
		}
	})
}

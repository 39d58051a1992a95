package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// TestForwardConcurrent runs 100 connections at once through one "tunnel
// forward" (two local ports: the gateway's echo and a TCP echo server of
// the test), 1 MiB of random bytes each way on each, every byte checked.
// With -short: 10 connections of 64 KiB.
func TestForwardConcurrent(t *testing.T) {
	ca := getCA(t)
	be := startEchoBackend(t, nil)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "echo=builtin:echo", "--route", "tcp="+be.addr)...)
	// --lazy: the check at start would open one more backend connection.
	locals := startForward(t, append(ca.clientArgs(gw.addr, ca.alice), "--lazy"), "127.0.0.1:0=echo", "127.0.0.1:0=tcp")
	addrs := []string{locals["echo"], locals["tcp"]}

	conns, size := 100, int64(1<<20)
	if testing.Short() {
		conns, size = 10, 64<<10
	}
	mark := gw.stderr.mark()
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	var g errgroup.Group
	for i := range conns {
		addr := addrs[i%len(addrs)]
		g.Go(func() error {
			if err := roundTrip(addr, uint64(1000+i), size, deadline); err != nil {
				return fmt.Errorf("connection %d via %s: %w", i, addr, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("%d connections x %d bytes each way in %v (%.1f MiB/s each way)",
		conns, size, elapsed.Round(time.Millisecond), float64(int64(conns)*size)/(1<<20)/elapsed.Seconds())

	// The gateway's audit log has one stream_close per connection, with the
	// byte counts of each.
	closed := func() int {
		n := 0
		for _, e := range gw.stderr.events(mark) {
			if isEvent("stream_close")(e) && e["bytes_in"] == float64(size) && e["bytes_out"] == float64(size) {
				n++
			}
		}
		return n
	}
	if !waitUntil(eventTimeout, func() bool { return closed() == conns }) {
		t.Errorf("gateway logged %d stream_close events with %d bytes each way, want %d", closed(), size, conns)
	}
	if got := be.eofs.Load(); got != int64(conns/2) {
		t.Errorf("the TCP backend saw %d half-closes, want %d", got, conns/2)
	}
}

// roundTrip connects to addr, sends randomStream(seed, size) then
// half-closes, and checks that exactly the same bytes come back.
func roundTrip(addr string, seed uint64, size int64, deadline time.Time) error {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, randomStream(seed, size))
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sent <- err
	}()
	rerr := compareStream(c, seed, size)
	if rerr != nil {
		c.Close() // unblocks the writer
	}
	werr := <-sent
	if rerr != nil {
		return fmt.Errorf("reading the echo: %w", rerr)
	}
	if werr != nil {
		return fmt.Errorf("sending: %w", werr)
	}
	return nil
}

// startForward runs "tunnel forward" with one -L per local (BIND=ROUTE)
// and returns the address it listens on for each route.
func startForward(t *testing.T, client []string, locals ...string) map[string]string {
	t.Helper()
	_, addrs := startForwardProc(t, client, locals...)
	return addrs
}

// startForwardProc is startForward that also returns the process.
func startForwardProc(t *testing.T, client []string, locals ...string) (*proc, map[string]string) {
	t.Helper()
	args := []string{"forward", "--log-format", "json"}
	for _, l := range locals {
		args = append(args, "-L", l)
	}
	p := startProc(t, "tunnel forward", nil, nil, nil, tunnelBin, append(args, client...)...)
	addrs := map[string]string{}
	for _, l := range locals {
		route := routeOf(l)
		ev := p.waitEvent(t, 0, startTimeout, isEvent("listening", "route", route))
		addrs[route] = ev.str("addr")
	}
	return p, addrs
}

// routeOf returns the ROUTE of "[BIND:]PORT=ROUTE".
func routeOf(local string) string {
	for i := len(local) - 1; i >= 0; i-- {
		if local[i] == '=' {
			return local[i+1:]
		}
	}
	return local
}

// TestForwardRefusedRoute checks what an application sees when the gateway
// refuses the stream behind a forwarded port: its connection ends at once
// with nothing read, the tunnel logs the gateway's reason, keeps serving
// the other ports, and exits 0 on SIGTERM.
func TestForwardRefusedRoute(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	fw, locals := startForwardProc(t, ca.clientArgs(gw.addr, ca.alice), "127.0.0.1:0=nosuch", "127.0.0.1:0=echo")

	c, err := net.DialTimeout("tcp", locals["nosuch"], eventTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(eventTimeout))
	n, err := c.Read(make([]byte, 16))
	if n != 0 || err == nil {
		t.Errorf("read from a refused forward: %d bytes, error %v; want 0 bytes and an error", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the local connection stayed open after the gateway refused the route")
	}
	ev := fw.waitEvent(t, 0, eventTimeout, isEvent("stream_failed", "route", "nosuch"))
	if !strings.Contains(ev.String(), "no route") {
		t.Errorf("stream_failed event does not carry the gateway's reason: %v", ev)
	}
	if err := roundTrip(locals["echo"], 9, 4096, time.Now().Add(runTimeout)); err != nil {
		t.Errorf("the other port after a refusal: %v", err)
	}
	fw.signal(t, syscall.SIGTERM)
	if code := fw.wait(t, stopTimeout); code != exitOK {
		t.Errorf("tunnel forward exit status %d after SIGTERM, want 0", code)
	}
}

// TestForwardHalfClose checks that a half-close by the application
// travels through "tunnel forward" to the backend, and that the backend's
// answer after it still comes back.
func TestForwardHalfClose(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	trailer := []byte("-- sent after the client's half-close --\n")
	be := startEchoBackend(t, trailer)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "late="+be.addr)...)
	// --lazy: the check at start would open one more backend connection.
	locals := startForward(t, append(ca.clientArgs(gw.addr, ca.alice), "--lazy"), "127.0.0.1:0=late")

	c, err := net.DialTimeout("tcp", locals["late"], eventTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(runTimeout))
	data := randomBytes(10, 100<<10)
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sent <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-sent; werr != nil {
		t.Fatalf("sending: %v", werr)
	}
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if err := sameBytes(got, append(append([]byte(nil), data...), trailer...)); err != nil {
		t.Errorf("through the forward (the data, then the backend's trailer): %v", err)
	}
	if be.eofs.Load() != 1 {
		t.Errorf("the backend saw %d half-closes, want 1", be.eofs.Load())
	}
}

// TestForwardSurvivesGatewayRestart restarts the gateway (same address)
// under a running "tunnel forward": the tunnel dials a new session and the
// next connection goes through without restarting the tunnel.
func TestForwardSurvivesGatewayRestart(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	addr := closedAddr(t)
	args := ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo", "--listen", addr)
	gw := startGateway(t, args...)
	locals := startForward(t, ca.clientArgs(addr, ca.alice), "127.0.0.1:0=echo")
	if err := roundTrip(locals["echo"], 11, 8<<10, time.Now().Add(runTimeout)); err != nil {
		t.Fatalf("before the restart: %v", err)
	}
	gw.signal(t, syscall.SIGTERM)
	if code := gw.wait(t, stopTimeout); code != exitOK {
		t.Fatalf("gateway exit status %d, want 0", code)
	}
	startGateway(t, args...)
	// The first connection after the restart may meet the dead session;
	// within a few seconds a new one must carry it.
	var last error
	ok := waitUntil(15*time.Second, func() bool {
		last = roundTrip(locals["echo"], 12, 8<<10, time.Now().Add(5*time.Second))
		return last == nil
	})
	if !ok {
		t.Errorf("no connection through the forward within 15s of the gateway's restart: %v", last)
	}
}

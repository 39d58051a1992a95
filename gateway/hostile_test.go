package gateway_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testpki"
)

// A client that opens stream after stream to a route it may not use gets
// each refused, and counted, but its refusals do not flood the log: the
// connection's stream_refused events stop at a burst, and the next one
// logged says how many were left out.
func TestRefusalFloodIsRateLimited(t *testing.T) {
	p := testpki.New(t)
	e := start(t, p, baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho}))
	d := e.dialer(t, p.Client, false)
	const n = 300
	for i := range n {
		if _, err := d.Dial(ctxT(t), "nosuch"); err == nil {
			t.Fatalf("stream %d to an unknown route was accepted", i)
		}
	}
	waitFor(t, func() bool { return e.srv.Stats().StreamsRefused == n })
	time.Sleep(1100 * time.Millisecond) // a few tokens come back
	if _, err := d.Dial(ctxT(t), "nosuch"); err == nil {
		t.Fatal("accepted")
	}
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"suppressed":`) })
	lines := strings.Count(e.logs.String(), `"event":"stream_refused"`)
	if lines >= n/2 {
		t.Fatalf("%d stream_refused lines for %d refusals: not rate-limited", lines, n+1)
	}
	// The session is still good for what it may use.
	c, err := d.Dial(ctxT(t), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, 1000); err != nil {
		t.Fatal(err)
	}
}

// A backend that fails in the middle of a stream (a reset) reaches the
// client as a reset of its stream, not as a clean end of data.
func TestBackendFailureResetsStream(t *testing.T) {
	p := testpki.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 5)
			_, _ = io.ReadFull(c, buf)
			_, _ = c.Write(buf) // some data, then the backend dies
			time.Sleep(50 * time.Millisecond)
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	e := start(t, p, baseConfig(p, config.Route{Name: "db", Backend: ln.Addr().String()}))
	for _, direct := range []bool{false, true} {
		c, err := e.dialer(t, p.Client, direct).Dial(ctxT(t), "db")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if string(got) != "hello" {
			t.Errorf("direct=%v: read %q before the failure, want hello", direct, got)
		}
		if err == nil || errors.Is(err, io.EOF) || isTimeout(err) {
			t.Errorf("direct=%v: the stream ended with %v; want a reset, not a clean end", direct, err)
		}
	}
}

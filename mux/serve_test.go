package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// rawStream opens a stream on the client's session without the request,
// so a test can send anything.
func rawStream(t *testing.T, c *Client) *Stream {
	t.Helper()
	sess := c.Session()
	if sess == nil {
		t.Fatal("no session")
	}
	ys, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st := Wrap(ys)
	st.SetDeadline(time.Now().Add(10 * time.Second))
	return st
}

func TestServeStreamMalformedKeepsSession(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, true, routeTo(map[string]string{"echo": be.addr()}))
	c := newClient(t, g, nil)
	first, err := c.Open(context.Background(), "echo") // brings the session up
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	tests := []struct {
		name   string
		send   []byte
		reason string
	}{
		{"bad version", []byte{9, 2, 'p', 'g'}, "version byte is 9"},
		{"zero length", []byte{1, 0}, "route length is 0"},
		{"bad chars", []byte{1, 3, 'a', ' ', 'b'}, "want 1..255 bytes of [A-Za-z0-9._:-]"},
		{"truncated", []byte{1, 9, 'a'}, "got 1 of 9 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := rawStream(t, c)
			defer st.Close()
			if _, err := st.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.name == "truncated" {
				st.CloseWrite()
			}
			resp, err := ReadResponse(st)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != StatusBadRequest || !strings.Contains(resp.Reason, tt.reason) {
				t.Fatalf("response %+v; want bad request mentioning %q", resp, tt.reason)
			}
			// The refusal resets the stream: nothing of it stays at the
			// gateway, and the client sees the reset after the answer.
			if rest, err := io.ReadAll(st); len(rest) != 0 || !errors.Is(err, yamux.ErrConnectionReset) {
				t.Fatalf("after the refusal: read %q, %v; want nothing, then the reset", rest, err)
			}
			// The session still serves streams, and the first stream too.
			st2, err := c.Open(context.Background(), "echo")
			if err != nil {
				t.Fatalf("Open after a malformed request: %v", err)
			}
			roundTrip(t, st2, "still here")
			st2.Close()
		})
	}
	roundTrip(t, first, "first")
	if g.conns.Load() != 1 {
		t.Fatalf("%d gateway connections, want 1", g.conns.Load())
	}
}

func TestServeStreamRequestTimeout(t *testing.T) {
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer a.Close()
	called := false
	start := time.Now()
	res, err := ServeStream(b, 100*time.Millisecond, func(Request) (Response, net.Conn) {
		called = true
		return Response{}, nil
	})
	if called || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ServeStream = %v (decide called %v); want a deadline error", err, called)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("ServeStream took %v with a 100ms request timeout", d)
	}
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, rerr := ReadResponse(a)
	if rerr != nil || resp.Status != StatusBadRequest || resp.Reason != "no complete stream request within 100ms" || res.Response != resp {
		t.Fatalf("client read %+v, %v; result %+v", resp, rerr, res)
	}
}

func TestServeStreamRefusalClosesBackend(t *testing.T) {
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer a.Close()
	be, other := tcpPair(t)
	go WriteRequest(a, Request{Route: "pg"})
	res, err := ServeStream(b, time.Second, func(req Request) (Response, net.Conn) {
		return Response{Status: StatusOverloaded, Reason: "too many\nstreams"}, be
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Status: StatusOverloaded, Reason: "too many streams"}
	if res.Request.Route != "pg" || res.Response != want {
		t.Fatalf("result %+v", res)
	}
	if resp, err := ReadResponse(a); err != nil || resp != want {
		t.Fatalf("client read %+v, %v; want %+v", resp, err, want)
	}
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := other.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the refused backend conn was not closed: %v", err)
	}
}

func TestServeStreamOKWithoutBackend(t *testing.T) {
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer a.Close()
	go WriteRequest(a, Request{Route: "pg"})
	res, err := ServeStream(b, time.Second, func(Request) (Response, net.Conn) { return Response{Status: StatusOK}, nil })
	if err == nil || res.Response.Status != StatusUnreachable {
		t.Fatalf("ServeStream = %+v, %v; want StatusUnreachable and an error", res, err)
	}
	if resp, _ := ReadResponse(a); resp.Status != StatusUnreachable {
		t.Fatalf("client read %+v", resp)
	}
}

func TestServeStreamEOFBeforeRequest(t *testing.T) {
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	a.Close()
	_, err := ServeStream(b, time.Second, func(Request) (Response, net.Conn) {
		t.Error("decide called")
		return Response{}, nil
	})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("ServeStream on an empty stream: %v, want io.EOF", err)
	}
}

// TestBadRequestReason: protocol errors are told as they are, timeouts as
// the bound, and any other read error without its detail (addresses).
func TestBadRequestReason(t *testing.T) {
	opErr := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443},
		Err: syscall.ECONNRESET}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("reading stream request: %w", os.ErrDeadlineExceeded), "no complete stream request within 10s"},
		{fmt.Errorf("reading stream request: %w: version byte is 9, want 1", ErrVersion), "version byte is 9"},
		{fmt.Errorf("reading stream request route: %w", ErrTruncated), "truncated"},
		{fmt.Errorf("reading stream request header: %w", opErr), "the stream request could not be read"},
	} {
		got := BadRequestReason(tt.err, 10*time.Second)
		if !strings.Contains(got, tt.want) || strings.Contains(got, "10.1.2.3") {
			t.Errorf("BadRequestReason(%v) = %q, want it to say %q and no address", tt.err, got, tt.want)
		}
	}
}

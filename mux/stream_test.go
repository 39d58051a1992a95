package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

func TestStreamConformance(t *testing.T) {
	for _, tt := range []struct {
		name   string
		useTLS bool
		wrap   func(net.Conn) net.Conn
	}{{"tcp", false, nil}, {"tls", true, nil}, {"tls-sessionconn", true, sessionConn}} {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				cs, ss, _ := sessionPairOpts(t, tt.useTLS, tt.wrap)
				a, b := streamPair(t, cs, ss)
				return a, b, func() { a.Close(); b.Close(); cs.Close(); ss.Close() }, nil
			})
		})
	}
}

func TestStreamHalfClose(t *testing.T) {
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer a.Close()
	defer b.Close()

	if _, err := a.Write([]byte("question")); err != nil {
		t.Fatal(err)
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatalf("second CloseWrite: %v", err)
	}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "question" {
		t.Fatalf("peer read %q, %v; want %q then EOF", got, err, "question")
	}
	// The peer can still answer, and a still reads.
	if _, err := b.Write([]byte("answer")); err != nil {
		t.Fatalf("write after the peer's half-close: %v", err)
	}
	b.CloseWrite()
	got, err = io.ReadAll(a)
	if err != nil || string(got) != "answer" {
		t.Fatalf("half-closed side read %q, %v; want %q then EOF", got, err, "answer")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("Write after CloseWrite succeeded")
	}
}

func TestStreamCloseUnblocksRead(t *testing.T) {
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer b.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Read returned %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
	if err := a.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetDeadline after Close: %v, want net.ErrClosed", err)
	}
	// The peer sees the FIN.
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer Read after Close = %d, %v; want 0, EOF", n, err)
	}
}

func TestStreamDeadlineIsTimeout(t *testing.T) {
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer a.Close()
	defer b.Close()
	a.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := a.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v; want a net.Error timeout wrapping os.ErrDeadlineExceeded", err)
	}
}

func TestStreamSessionDeath(t *testing.T) {
	cs, ss, raw := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer a.Close()
	defer b.Close()
	if _, err := b.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(a, buf); err != nil {
		t.Fatal(err)
	}
	raw.(*net.TCPConn).SetLinger(0)
	raw.Close() // the server side vanishes
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := a.Read(buf)
	if !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Read after the session died: %v, want ErrSessionClosed", err)
	}
	if _, err := a.Write(buf); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Write after the session died: %v, want ErrSessionClosed", err)
	}
}

func TestWrapNil(t *testing.T) {
	if Wrap(nil) != nil {
		t.Fatal("Wrap(nil) != nil")
	}
}

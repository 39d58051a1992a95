// Package testnet holds the loopback helpers the tests of several packages
// share: a TCP echo backend, a checked round trip through a connection, a
// buffer that concurrent writers (loggers) can share, and a reader and a
// checker of Prometheus expositions.
package testnet

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Bytes returns a copy of what was written.
func (s *SyncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// Len returns the number of bytes written.
func (s *SyncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// Serve runs handle, in its own goroutine, for each connection accepted on
// ln until the test ends; then it closes ln and the connections still open
// and waits for the handlers. A connection is closed when its handler
// returns. It returns ln's address.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns { // a client that never closed
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// EchoServer runs a TCP echo server on 127.0.0.1 until the test ends and
// returns its address. Each connection gets back what it sends and, after
// its half-close, a half-close.
func EchoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, ln, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
}

// RoundTrip writes n random bytes to c and half-closes it while reading
// everything back, and checks that exactly those bytes came back. c must
// have a CloseWrite method (TCP, TLS and mux streams do).
func RoundTrip(c net.Conn, n int) error {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("%T cannot half-close", c)
	}
	data := make([]byte, n)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = cw.CloseWrite()
		}
		if err != nil {
			c.Close() // the reader below would wait for an end that never comes
		}
		errc <- err
	}()
	h := sha256.New()
	got, err := io.Copy(h, c)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("writing: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if got != int64(n) {
		return fmt.Errorf("short echo: got %d bytes, want %d", got, n)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("echoed bytes differ from the %d sent", n)
	}
	return nil
}

// InOrder checks that s contains each of subs, in order (an error message
// that must name several things, or help that must list them in order).
func InOrder(t testing.TB, s string, subs []string) {
	t.Helper()
	rest := s
	for _, sub := range subs {
		i := strings.Index(rest, sub)
		if i < 0 {
			t.Errorf("missing %q (in order) in:\n%s", sub, s)
			return
		}
		rest = rest[i+len(sub):]
	}
}

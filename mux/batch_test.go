package mux

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatchWritesCloseBounded: a peer that reads nothing holds Close for
// about batchCloseFlush; then the connection is closed, and later writes
// fail with net.ErrClosed.
func TestBatchWritesCloseBounded(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := BatchWrites(c)
	if _, err := b.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.Close()
	took := time.Since(start)
	if took < batchCloseFlush/2 || took > batchCloseFlush+4*time.Second {
		t.Fatalf("Close took %v, want about %v", took, batchCloseFlush)
	}
	if _, err := peer.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("peer read %v after Close, want EOF", err)
	}
	if _, err := b.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestBatchWritesCloseFlushes: Close sends what is pending, then closes.
func TestBatchWritesCloseFlushes(t *testing.T) {
	c, peer := tcpPair(t)
	b := BatchWrites(c)
	for range 100 {
		if _, err := b.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(peer)
	if err != nil || len(data) != 1000 {
		t.Fatalf("peer read %d bytes, %v; want 1000 and EOF", len(data), err)
	}
}

// TestBatchWritesCloseStuckTLS: over TLS, Close with a write blocked on a
// peer that reads nothing returns after the flush bound, without waiting
// for close_notify to time out.
func TestBatchWritesCloseStuckTLS(t *testing.T) {
	c, s := tcpPair(t)
	tc, ts := tls.Client(c, getPKI().client.Clone()), tls.Server(s, getPKI().server.Clone())
	errc := make(chan error, 1)
	go func() { errc <- ts.Handshake() }()
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	b := BatchWrites(tc)
	// Write until the socket buffers are full and the writer waits for
	// room; the peer never reads.
	wrote := make(chan error, 1)
	var writes atomic.Int64
	go func() {
		chunk := make([]byte, 16<<10)
		for range 64 << 10 { // at most 1 GiB
			if _, err := b.Write(chunk); err != nil {
				wrote <- err
				return
			}
			writes.Add(1)
		}
		wrote <- nil
	}()
	// Wait until the writer is held: a write is blocked on the full socket
	// and the pending bytes have reached their limit.
	last := int64(-1)
	for i := 0; i < 100 && (writes.Load() == 0 || writes.Load() != last); i++ {
		last = writes.Load()
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	b.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with a peer that reads nothing", took)
	}
	if err := <-wrote; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the blocked Write returned %v, want net.ErrClosed", err)
	}
}

package mux

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// TestSessionConnCloseBounded: a peer that reads nothing holds Close for
// about sessionCloseFlush; then the connection is closed, and later writes
// fail with net.ErrClosed.
func TestSessionConnCloseBounded(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := NewSessionConn(c)
	// The Write goes out from the caller's goroutine: it waits inside the
	// connection's Write once the peer has read its first byte and no more.
	wrote := make(chan error, 1)
	go func() { _, err := b.Write([]byte("never read")); wrote <- err }()
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.Close()
	took := time.Since(start)
	if took < sessionCloseFlush/2 || took > sessionCloseFlush+4*time.Second {
		t.Fatalf("Close took %v, want about %v", took, sessionCloseFlush)
	}
	select {
	case err := <-wrote:
		// The connection failed under it: SessionConn drops the bytes
		// (the session ends on the read side).
		if err != nil {
			t.Fatalf("the Write under way returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Write under way did not return within 5s of Close")
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

// TestSessionConnCloseFlushes: Close sends what is pending, then closes.
func TestSessionConnCloseFlushes(t *testing.T) {
	c, peer := tcpPair(t)
	b := NewSessionConn(c)
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

// TestSessionConnCloseStuckTLS: over TLS, Close with a write blocked on a
// peer that reads nothing returns after the flush bound, without waiting
// for close_notify to time out.
func TestSessionConnCloseStuckTLS(t *testing.T) {
	tc, ts := tlsPair(t)
	defer ts.Close()
	b := NewSessionConn(tc)
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

// sessionConn is NewSessionConn as a func(net.Conn) net.Conn.
func sessionConn(c net.Conn) net.Conn { return NewSessionConn(c) }

// TestSessionConnEndsWaits: when the connection under a session fails,
// the reads waiting on its tracked streams end with ErrSessionClosed while
// the session is still up (so none is left looping in yamux once it
// closes), and the session then closes.
func TestSessionConnEndsWaits(t *testing.T) {
	c, s := tcpPair(t)
	sc := NewSessionConn(s)
	cs, err := yamux.Client(c, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := yamux.Server(sc, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	const n = 200
	type result struct {
		err        error
		sessClosed bool
	}
	results := make(chan result, n)
	var closed sync.WaitGroup
	for range n {
		_, b := streamPair(t, cs, ss)
		sc.Track(b)
		b.SetReadDeadline(time.Now().Add(time.Hour)) // as an idle timeout does
		closed.Go(func() {
			_, err := b.Read(make([]byte, 1))
			results <- result{err, ss.IsClosed()}
			b.Close()
		})
	}
	if got := sc.Tracked(); got != n {
		t.Fatalf("%d streams tracked, want %d", got, n)
	}
	time.Sleep(50 * time.Millisecond) // the reads wait
	cs.Close()                        // the peer goes away
	for i := range n {
		select {
		case r := <-results:
			if !errors.Is(r.err, ErrSessionClosed) {
				t.Fatalf("read %d on a dead session: %v, want ErrSessionClosed", i, r.err)
			}
			if r.sessClosed {
				t.Errorf("read %d ended after the session closed", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d reads still waiting 10s after the peer left", n-i)
		}
	}
	select {
	case <-ss.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("session still open 10s after the peer left")
	}
	closed.Wait()
	if got := sc.Tracked(); got != 0 {
		t.Errorf("%d streams still tracked", got)
	}
}

// TestKeepAlive: a peer that stops answering pings gets fail called, and
// KeepAlive returns; on a session that closes, it returns without.
func TestKeepAlive(t *testing.T) {
	c, s := tcpPair(t)
	cfg := testConfig()
	cfg.EnableKeepAlive = false
	cfg.ConnectionWriteTimeout = 200 * time.Millisecond
	stalled := &stallReads{Conn: s, stop: make(chan struct{}), closed: make(chan struct{})}
	cs, err := yamux.Client(NewSessionConn(c), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ss, err := yamux.Server(stalled, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	close(stalled.stop) // the server reads nothing more: no pong
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		KeepAlive(cs, 20*time.Millisecond, func(err error) { failed <- err })
		close(done)
	}()
	select {
	case err := <-failed:
		if !errors.Is(err, yamux.ErrTimeout) {
			t.Errorf("fail got %v, want yamux.ErrTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no failure 10s after the peer stopped answering")
	}
	<-done

	// A healthy session: KeepAlive returns when it closes, fail uncalled.
	cs2, ss2, _ := sessionPair(t, false)
	done2 := make(chan struct{})
	go func() {
		KeepAlive(cs2, 10*time.Millisecond, func(err error) { t.Errorf("fail on a healthy session: %v", err) })
		close(done2)
	}()
	time.Sleep(100 * time.Millisecond) // some pings answered
	ss2.Close()
	select {
	case <-done2:
	case <-time.After(10 * time.Second):
		t.Fatal("KeepAlive still running 10s after its session closed")
	}
}

// stallReads stops reading once stop is closed: its Read then waits for
// Close.
type stallReads struct {
	net.Conn
	stop      chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *stallReads) Read(p []byte) (int, error) {
	select {
	case <-c.stop:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Read(p)
	}
}

func (c *stallReads) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

package yamux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests cover the write path: a frame written from the caller's
// goroutine in one conn.Write when nothing is queued (writeDirect), the
// send loop's batches otherwise.

// watchConn wraps a connection: it counts the Writes, records whether
// each came from the send loop, and can hold them (gate).
type watchConn struct {
	net.Conn
	writes, fromLoop atomic.Int64
	sizes            chan int // the size of each Write, when not nil

	mu   sync.Mutex
	gate chan struct{} // when not nil, Write waits until it is closed
}

func (w *watchConn) Write(p []byte) (int, error) {
	w.writes.Add(1)
	var st [4096]byte
	if strings.Contains(string(st[:runtime.Stack(st[:], false)]), "sendLoop") {
		w.fromLoop.Add(1)
	}
	if w.sizes != nil {
		select {
		case w.sizes <- len(p):
		default:
		}
	}
	w.mu.Lock()
	g := w.gate
	w.mu.Unlock()
	if g != nil {
		<-g
	}
	return w.Conn.Write(p)
}

func (w *watchConn) hold() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate = make(chan struct{})
	return w.gate
}

func (w *watchConn) release(g chan struct{}) {
	w.mu.Lock()
	w.gate = nil
	w.mu.Unlock()
	close(g)
}

// directPair returns a client session over a watchConn and a server
// session, on loopback TCP, closed at the end of the test.
func directPair(t *testing.T) (*Session, *Session, *watchConn) {
	t.Helper()
	c, s := loopbackPair(t)
	wc := &watchConn{Conn: c}
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = 10 * time.Second
	client, err := Client(wc, conf)
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(s, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server, wc
}

// busyLoop keeps a goroutine spinning until stop is called (at most 30s),
// so that the scheduler has a running goroutine beside the test's.
func busyLoop() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; ; i++ {
			if i%1024 == 0 {
				select {
				case <-done:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// TestDirectWriteOneWrite: on an idle session a stream's small Write is one
// conn.Write (header and body together), made from the caller's goroutine,
// not from the send loop.
func TestDirectWriteOneWrite(t *testing.T) {
	client, server, wc := directPair(t)
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("x")); err != nil { // the SYN has gone out with the window update
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	wc.sizes = make(chan int, 16)
	writes, loop := wc.writes.Load(), wc.fromLoop.Load()
	msg := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	for i := 0; i < 10; i++ {
		if _, err := st.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(peer, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != string(msg) {
			t.Fatalf("peer read %q, want %q", buf, msg)
		}
	}
	if n := wc.writes.Load() - writes; n != 10 {
		t.Errorf("10 Writes of 64 bytes made %d conn.Writes, want 10 (one per frame)", n)
	}
	if n := wc.fromLoop.Load() - loop; n != 0 {
		t.Errorf("%d of them came from the send loop, want 0 (the caller writes on an idle session)", n)
	}
	for i := 0; i < 10; i++ {
		if n := <-wc.sizes; n != headerSize+len(msg) {
			t.Fatalf("a conn.Write of %d bytes, want %d (header and body in one write)", n, headerSize+len(msg))
		}
	}
}

// TestDirectWriteQueuedWhileBusy: frames that find a write under way are
// queued and the send loop writes them, joined, once the write is done; no
// sender is left waiting (no lost wake-up), and each stream's bytes arrive
// whole and in order.
func TestDirectWriteQueuedWhileBusy(t *testing.T) {
	client, server, wc := directPair(t)
	const streams = 8
	var locals, peers []*Stream
	for i := 0; i < streams; i++ {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
		p, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		locals, peers = append(locals, st), append(peers, p)
	}
	gate := wc.hold()
	first := make(chan error, 1)
	go func() { _, err := locals[0].Write([]byte("first")); first <- err }()
	// Wait until the first Write is inside conn.Write (holding the lock).
	deadline := time.Now().Add(5 * time.Second)
	for !client.writeLockHeld() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !client.writeLockHeld() {
		t.Fatal("the first Write did not reach conn.Write within 5s")
	}
	writes := wc.writes.Load()
	errs := make(chan error, streams-1)
	for i := 1; i < streams; i++ {
		i := i
		go func() { _, err := locals[i].Write([]byte(fmt.Sprintf("stream %d", i))); errs <- err }()
	}
	// The others queue: wait until they all sit in sendCh, or the loop
	// took one of them (it then waits for the lock) and the rest sit there.
	queued := func() bool {
		n := len(client.sendCh)
		return n == streams-1 || (n == streams-2 && client.loopWants.Load())
	}
	for deadline := time.Now().Add(5 * time.Second); !queued() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !queued() {
		t.Fatalf("%d of %d Writes queued within 5s", len(client.sendCh), streams-1)
	}
	wc.release(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < streams-1; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a queued Write did not return within 10s of the connection's write")
		}
	}
	if n := wc.writes.Load() - writes; n >= streams-1 {
		t.Errorf("7 queued frames took %d conn.Writes, want fewer (the send loop joins them)", n)
	}
	for i, p := range peers {
		want := "first"
		if i > 0 {
			want = fmt.Sprintf("stream %d", i)
		}
		buf := make([]byte, len(want))
		p.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p, buf); err != nil || string(buf) != want {
			t.Fatalf("stream %d read %q, %v; want %q", i, buf, err, want)
		}
	}
}

// writeLockHeld reports, for tests, whether a write to conn is under way.
func (s *Session) writeLockHeld() bool {
	if s.writeLock.TryLock() {
		s.writeLock.Unlock()
		return false
	}
	return true
}

// TestDirectWriteOrderUnderLoad: many streams write numbered records at
// once, directly or queued as they find the connection, with a goroutine
// spinning beside; every stream's records arrive complete and in order.
func TestDirectWriteOrderUnderLoad(t *testing.T) {
	stop := busyLoop()
	defer stop()
	client, server, wc := directPair(t)
	const streams, records = 16, 300
	var wg sync.WaitGroup
	errs := make(chan error, 2*streams)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < streams; i++ {
			p, err := server.AcceptStream()
			if err != nil {
				errs <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer p.Close()
				p.SetReadDeadline(time.Now().Add(20 * time.Second))
				rec := make([]byte, 8+100)
				var id uint32
				for i := 0; i < records; i++ {
					if _, err := io.ReadFull(p, rec); err != nil {
						errs <- fmt.Errorf("stream %d, record %d: %w", p.StreamID(), i, err)
						return
					}
					if i == 0 {
						id = binary.BigEndian.Uint32(rec)
					}
					if got, seq := binary.BigEndian.Uint32(rec), binary.BigEndian.Uint32(rec[4:]); got != id || seq != uint32(i) {
						errs <- fmt.Errorf("stream %d: record %d is (%d, %d), want (%d, %d)", p.StreamID(), i, got, seq, id, i)
						return
					}
				}
				if n, err := p.Read(rec); err != io.EOF {
					errs <- fmt.Errorf("stream %d: after the records, %d bytes, %v; want io.EOF", p.StreamID(), n, err)
				}
			}()
		}
	}()
	for w := 0; w < streams; w++ {
		w := w
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := client.OpenStream()
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			rec := make([]byte, 8+100)
			for i := 0; i < records; i++ {
				binary.BigEndian.PutUint32(rec, uint32(w))
				binary.BigEndian.PutUint32(rec[4:], uint32(i))
				if _, err := st.Write(rec); err != nil {
					errs <- fmt.Errorf("writer %d, record %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		client.Close()
		server.Close()
		<-done
		t.Fatal("the streams did not finish within 30s")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	frames := int64(streams * records)
	t.Logf("%d frames of data in %d conn.Writes, %d from the send loop", frames, wc.writes.Load(), wc.fromLoop.Load())
}

// TestDirectWriteClosedWhileWriting: a session closed while a caller is
// inside conn.Write, with another frame queued behind it: both Writes
// return (an error, or success for bytes that went out) and the session's
// goroutines end.
func TestDirectWriteClosedWhileWriting(t *testing.T) {
	stop := busyLoop()
	defer stop()
	client, server, wc := directPair(t)
	a, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := server.AcceptStream(); err != nil {
			t.Fatal(err)
		}
	}
	gate := wc.hold()
	res := make(chan error, 2)
	go func() { _, err := a.Write([]byte("held")); res <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for !client.writeLockHeld() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := b.Write([]byte("queued")); res <- err }()
	time.Sleep(20 * time.Millisecond)
	closed := make(chan struct{})
	go func() { client.Close(); close(closed) }()
	select {
	case err := <-res:
		// The queued one gives up at once: the session is shut down.
		if !errors.Is(err, ErrSessionShutdown) {
			t.Errorf("the queued Write returned %v, want ErrSessionShutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the queued Write did not return within 5s of Close")
	}
	wc.release(gate) // the held write now fails on the closed connection
	select {
	case err := <-res:
		if err == nil {
			t.Error("the Write held in conn.Write succeeded on a closed connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held Write did not return within 5s")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	if _, err := a.Write([]byte("after")); err == nil {
		t.Error("a Write after Close succeeded")
	}
}

// TestDirectWriteTimeout: a direct write to a connection whose peer reads
// nothing fails after ConnectionWriteTimeout with ErrConnectionWriteTimeout
// and ends the session, as the Config comment has it.
func TestDirectWriteTimeout(t *testing.T) {
	c, peer := loopbackPair(t) // peer never reads
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = 300 * time.Millisecond
	client, err := Client(c, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_ = peer
	chunk := make([]byte, initialStreamWindow)
	start := time.Now()
	var werr error
	for i := 0; i < 256 && werr == nil; i++ { // 64 MiB at most: more than the socket buffers hold
		st, err := client.OpenStream()
		if err != nil {
			werr = err
			break
		}
		_, werr = st.Write(chunk)
	}
	if !errors.Is(werr, ErrConnectionWriteTimeout) {
		t.Fatalf("writing to a peer that reads nothing: %v, want ErrConnectionWriteTimeout", werr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the write took %v to time out", d)
	}
	waitClosed(t, client, 5*time.Second)
}

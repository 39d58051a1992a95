package mux

import (
	"net"
	"sync"
	"time"
)

const (
	// batchDirect: a Write at least this large goes out from the caller's
	// goroutine (after what is pending), not through the buffer.
	batchDirect = 32 << 10
	// batchMax: pending bytes at which Write waits for the flusher.
	batchMax = 256 << 10
	// batchKeep: buffers up to this capacity are kept for reuse; larger
	// ones go back to the garbage collector, so an idle session holds
	// little.
	batchKeep = 16 << 10
	// batchRecord: one TLS record's payload; a large Write tops up what is
	// pending to this size before it goes out.
	batchRecord = 16 << 10
	// batchCloseFlush bounds how long Close waits to flush what is pending.
	batchCloseFlush = time.Second
)

// BatchWrites wraps the connection under a yamux session so that frames
// written while an earlier write is still under way leave together, in one
// Write to c: over TLS, one record and one system call for what would
// otherwise be two per frame (yamux writes a frame's 12-byte header and its
// body separately). Nothing waits for more data to arrive: a frame written
// to an idle connection goes out at once, from a goroutine the wrapper runs
// until Close or the first write error.
//
// Write copies small writes and returns; the error of a failed write to c
// is returned by the writes after it. A Write of batchDirect bytes or more
// goes out from the caller's goroutine, behind what is pending. Close
// flushes what is pending (waiting at most a second) and closes c. Read and
// the other methods are c's.
func BatchWrites(c net.Conn) net.Conn {
	b := &batchConn{Conn: c, done: make(chan struct{})}
	b.cond.L = &b.mu
	go b.flushLoop()
	return b
}

type batchConn struct {
	net.Conn

	mu      sync.Mutex
	cond    sync.Cond // on mu: the buffer, busy, closing or err changed
	buf     []byte    // pending bytes, in order
	spare   []byte    // an empty buffer to swap in, or nil
	busy    bool      // a Write to Conn is under way
	direct  int       // large Writes waiting to go out; they take the pending bytes along
	closing bool
	err     error // the first write error; sticky

	done      chan struct{} // closed when flushLoop returns
	closeOnce sync.Once
	closeErr  error
}

// stateErr is why a Write cannot be taken, or nil. Called with mu held.
func (b *batchConn) stateErr() error {
	if b.err != nil {
		return b.err
	}
	if b.closing {
		return net.ErrClosed
	}
	return nil
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if len(p) >= batchDirect {
		return b.writeDirect(p)
	}
	for b.err == nil && !b.closing && len(b.buf) >= batchMax {
		b.cond.Wait()
	}
	if err := b.stateErr(); err != nil {
		b.mu.Unlock()
		return 0, err
	}
	if len(b.buf) == 0 {
		b.cond.Broadcast() // the flusher waits for data
	}
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	return len(p), nil
}

// writeDirect writes what is pending, topped up with the start of p to one
// record, then the rest of p, from the caller's goroutine. Called with mu
// held; returns with it released.
func (b *batchConn) writeDirect(p []byte) (int, error) {
	b.direct++
	for b.err == nil && !b.closing && b.busy {
		b.cond.Wait()
	}
	b.direct--
	if err := b.stateErr(); err != nil {
		b.mu.Unlock()
		return 0, err
	}
	pending := b.take()
	b.mu.Unlock()

	n := 0
	var err error
	if len(pending) > 0 {
		k := max(0, min(len(p), batchRecord-len(pending)))
		pending = append(pending, p[:k]...)
		if _, err = b.Conn.Write(pending); err == nil {
			n = k
		}
	}
	if err == nil {
		var m int
		m, err = b.Conn.Write(p[n:])
		n += m
	}

	b.mu.Lock()
	b.done1(pending, err)
	b.mu.Unlock()
	return n, err
}

// take hands the pending bytes to a writer and marks the connection busy.
// Called with mu held.
func (b *batchConn) take() []byte {
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.busy = true
	return out
}

// done1 ends a write of out that returned err. Called with mu held.
func (b *batchConn) done1(out []byte, err error) {
	b.busy = false
	if cap(out) <= batchKeep && b.spare == nil {
		b.spare = out[:0]
	}
	if err != nil && b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
}

// flushLoop writes what is pending whenever no write is under way or
// waiting to go out from a large Write, until
// Close has been called and nothing is left, or a write fails.
func (b *batchConn) flushLoop() {
	defer close(b.done)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for b.err == nil && (b.busy || b.direct > 0 || (len(b.buf) == 0 && !b.closing)) {
			b.cond.Wait()
		}
		if b.err != nil || len(b.buf) == 0 {
			return
		}
		out := b.take()
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.done1(out, err)
	}
}

// Close flushes what is pending, waiting at most batchCloseFlush for the
// peer to take it, then closes the connection. Writes after Close fail
// with net.ErrClosed.
func (b *batchConn) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		pending := b.busy || len(b.buf) > 0
		b.cond.Broadcast()
		b.mu.Unlock()
		if pending {
			b.Conn.SetWriteDeadline(time.Now().Add(batchCloseFlush))
		}
		<-b.done
		b.closeErr = b.Conn.Close()
	})
	return b.closeErr
}

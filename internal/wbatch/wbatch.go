// Package wbatch joins the writes made to a writer while an earlier write
// is still under way into one write: the next one. Nothing waits for more
// data to arrive, so a write to an idle writer goes out at once; under load,
// many small writes (yamux frames, log lines) share one system call.
package wbatch

import (
	"errors"
	"io"
	"sync"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("wbatch: writer closed")

// Options tune a Writer; zero fields take the defaults.
type Options struct {
	// Direct: a Write at least this large goes out from the caller's
	// goroutine (behind what is pending) instead of being copied; default
	// 32 KiB.
	Direct int
	// TopUp: what is pending goes out with the first bytes of such a large
	// Write, up to this many bytes in all (one TLS record's payload, 16 KiB,
	// by default).
	TopUp int
	// Max: pending bytes at which Write waits for the writer to take them;
	// default 256 KiB. Nothing is dropped.
	Max int
	// Keep: buffers up to this capacity are kept for reuse, larger ones go
	// back to the garbage collector; default 4 KiB. An idle Writer holds at
	// most two such buffers.
	Keep int
}

func (o *Options) defaults() {
	if o.Direct <= 0 {
		o.Direct = 32 << 10
	}
	if o.TopUp <= 0 {
		o.TopUp = 16 << 10
	}
	if o.Max <= 0 {
		o.Max = 256 << 10
	}
	if o.Keep <= 0 {
		o.Keep = 4 << 10
	}
}

// Writer batches writes to an io.Writer from a goroutine it runs until
// Close or the first write error. Write copies p (unless it is large) and
// returns; the error of a failed write to the writer underneath is
// returned by the Writes after it. Writes may come from several goroutines;
// the bytes of one Write stay together and keep their order with respect to
// the Writes of the same goroutine.
type Writer struct {
	w   io.Writer
	opt Options

	mu      sync.Mutex
	cond    sync.Cond // on mu: buf, busy, direct, closing or err changed
	buf     []byte    // pending bytes, in order
	spare   []byte    // an empty buffer to swap in, or nil
	busy    bool      // a write to w is under way
	direct  int       // large Writes waiting for their turn; they take the pending bytes along
	closing bool
	err     error // the first write error; sticky

	done chan struct{} // closed when the flusher returns
}

// New starts a Writer on w.
func New(w io.Writer, opt Options) *Writer {
	opt.defaults()
	b := &Writer{w: w, opt: opt, done: make(chan struct{})}
	b.cond.L = &b.mu
	go b.flushLoop()
	return b
}

// stateErr is why a Write cannot be taken, or nil. Called with mu held.
func (b *Writer) stateErr() error {
	if b.closing {
		return ErrClosed
	}
	return b.err
}

// Write queues p, or for a large p writes it after what is pending.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if len(p) >= b.opt.Direct {
		return b.writeDirect(p)
	}
	for b.err == nil && !b.closing && len(b.buf) >= b.opt.Max {
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

// writeDirect writes what is pending, topped up with the start of p, then
// the rest of p, from the caller's goroutine. Called with mu held; returns
// with it released.
func (b *Writer) writeDirect(p []byte) (int, error) {
	b.direct++
	for b.err == nil && !b.closing && b.busy {
		b.cond.Wait()
	}
	b.direct--
	if err := b.stateErr(); err != nil {
		// The flusher may be waiting for this Write to go first: wake it
		// (or Close waits for it forever).
		b.cond.Broadcast()
		b.mu.Unlock()
		return 0, err
	}
	pending := b.take()
	b.mu.Unlock()

	n := 0
	var err error
	if len(pending) > 0 {
		k := max(0, min(len(p), b.opt.TopUp-len(pending)))
		pending = append(pending, p[:k]...)
		if _, err = b.w.Write(pending); err == nil {
			n = k
		}
	}
	if err == nil {
		var m int
		m, err = b.w.Write(p[n:])
		n += m
	}

	b.mu.Lock()
	b.finish(pending, err)
	b.mu.Unlock()
	return n, err
}

// take hands the pending bytes to a writer and marks the Writer busy.
// Called with mu held.
func (b *Writer) take() []byte {
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.busy = true
	return out
}

// finish ends a write of out that returned err. Called with mu held.
func (b *Writer) finish(out []byte, err error) {
	b.busy = false
	if cap(out) <= b.opt.Keep && b.spare == nil {
		b.spare = out[:0]
	}
	if err != nil && b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
}

// flushLoop writes what is pending whenever no write is under way or
// waiting to go out from a large Write, until Close has been called and
// nothing is left, or a write fails.
func (b *Writer) flushLoop() {
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
		_, err := b.w.Write(out)
		b.mu.Lock()
		b.finish(out, err)
	}
}

// Close stops taking writes and waits until what is pending has been
// written or a write has failed. Before it waits, and only when something
// is pending or being written, it calls unblock (when not nil): a writer
// that can block for long (a network connection) bounds the wait there,
// with a write deadline. Close does not close the writer underneath. It
// returns the first write error, if any; calling it again is harmless.
func (b *Writer) Close(unblock func()) error {
	b.mu.Lock()
	b.closing = true
	pending := b.busy || len(b.buf) > 0
	b.cond.Broadcast()
	b.mu.Unlock()
	if pending && unblock != nil {
		unblock()
	}
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// state reports, for tests, whether a write is under way and how many
// large Writes wait for their turn.
func (b *Writer) state() (busy bool, direct int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.busy, b.direct
}

// isClosing reports, for tests, whether Close has begun.
func (b *Writer) isClosing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closing
}

package mux

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// BufferSize is the size of the pooled copy buffers of [Pipe]: 64 KiB less
// a yamux frame header, so that a full buffer written to a stream is a
// header and a body that fill four TLS records exactly (see [SessionConn]).
const BufferSize = 64<<10 - yamuxHeaderSize

// yamuxHeaderSize is the size of a yamux frame header.
const yamuxHeaderSize = 12

// probeSize is the small per-direction buffer a Pipe reads into while the
// source is idle, so that an idle direction holds no pooled buffer.
const probeSize = 512

var bufPool = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }

// Pipe copies a to b and b to a until both directions are done, then closes
// both connections and returns the byte counts and the first error.
//
// When one direction's source ends cleanly (io.EOF), Pipe half-closes that
// direction's destination (CloseWrite on *net.TCPConn, *tls.Conn, *Stream
// and other types that have it; Close on a bare *yamux.Stream, which is a
// half-close) and keeps the other direction running. A destination that
// cannot half-close stays open until the other direction ends.
//
// When a direction fails with anything but a clean end (a reset, a write
// error, [ErrSessionClosed]), Pipe aborts: it resets the TCP connections
// among a and b (SetLinger(0) then Close, also under a *tls.Conn) so their
// peers see an error rather than a clean end of data, closes both, waits for
// the other direction and returns the first error. A yamux stream that ends
// because its session died counts as such a failure, not as io.EOF.
//
// Pipe reads and writes through a and b as given. A wrapper type (adding
// idle timeouts, metrics...) that returns the connection it wraps from a
// NetConn() net.Conn method, as *tls.Conn does, lets Pipe see what is under
// it: the TCP connection to reset, the yamux stream whose session to check
// and whose idle receive buffer to release.
//
// Copy buffers of [BufferSize] bytes come from a pool and are held only
// while data moves: a *net.TCPConn source (on Unix) is waited on for
// readability without a buffer, and other sources are read into a small
// per-direction buffer first.
//
// Pipe runs one direction in a goroutine it owns and waits for it. The
// caller stops a Pipe early by closing a or b.
func Pipe(a, b net.Conn) (aToB, bToA int64, err error) {
	p := &piper{a: a, b: b}
	var wg sync.WaitGroup
	wg.Go(func() { aToB = p.copy(b, a) })
	bToA = p.copy(a, b)
	wg.Wait()
	p.closeAll()
	return aToB, bToA, p.err
}

type piper struct {
	a, b    net.Conn
	errOnce sync.Once
	err     error
}

// fail records err as the first error and aborts both sides.
func (p *piper) fail(err error) {
	p.errOnce.Do(func() {
		p.err = err
		reset(p.a)
		reset(p.b)
		p.closeAll()
	})
}

func (p *piper) closeAll() {
	_ = p.a.Close()
	_ = p.b.Close()
}

// copy moves bytes from src to dst until src ends or an error; it returns
// the number of bytes written to dst.
//
// When src is a yamux stream and dst a TCP or Unix socket, the session's
// receive loop writes the stream's data to dst itself while this copy waits in Read with nothing buffered, as far as
// the socket buffer takes it without blocking (see
// yamux.Stream.SetDirectReceiver): a request crosses the relay with no
// goroutine wake-up. What the socket does not take at once, and whatever
// arrives while this copy is writing, goes through the loop below, in
// order.
func (p *piper) copy(dst, src net.Conn) int64 {
	r := newReader(src)
	defer r.stop()
	if r.ystream == nil || !r.observed {
		return p.copyLoop(dst, r)
	}
	w := newDirectWriter(dst)
	if w == nil {
		return p.copyLoop(dst, r)
	}
	var direct int64 // under the stream's receive lock, read once it is unset
	r.ystream.SetDirectReceiver(func(b []byte) int {
		n := w.write(b)
		if n > 0 {
			direct += int64(n)
			for _, o := range r.observers {
				o.Delivered(n)
			}
			if directHook != nil {
				directHook(n)
			}
		}
		return n
	})
	total := p.copyLoop(dst, r)
	r.ystream.SetDirectReceiver(nil)
	return total + direct
}

// directHook, when set (by tests, before any Pipe), sees the size of each
// direct write.
var directHook func(n int)

// DeliveryObserver is implemented by a wrapper around a Pipe's yamux
// stream that must know of the bytes read through the stream but not
// through it: the session's receive loop may write them to the other side
// directly (an idle timer counts them as activity). Pipe lets the receive
// loop do so only when every wrapper that it sees through (NetConn) is one.
type DeliveryObserver interface {
	Delivered(n int)
}

func (p *piper) copyLoop(dst net.Conn, r *reader) int64 {
	var total int64
	for {
		data, err := r.read()
		if len(data) > 0 {
			n, werr := dst.Write(data)
			total += int64(n)
			if werr == nil && n < len(data) {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				r.release()
				p.fail(werr)
				return total
			}
		}
		r.release()
		if err == io.EOF {
			halfClose(dst)
			return total
		}
		if err != nil {
			p.fail(err)
			return total
		}
	}
}

// reader reads from one source, holding a pooled buffer only while data
// flows.
type reader struct {
	src     net.Conn
	ystream *yamux.Stream // set when src is (or wraps) a yamux stream
	raw     rawReader     // set for sources read with readiness waits
	buf     *[]byte       // pooled buffer in use, or nil
	bulk    bool          // raw source: the last read filled the buffer, keep it
	next    bool          // other sources: the last read filled its buffer; read the next in bulk
	shrink  *time.Timer   // yamux source: releases its receive buffer when idle
	probe   []byte        // probeSize bytes, made on first use: raw sources never need it

	// observers are the wrappers between src and its yamux stream; observed
	// reports that each of them is a DeliveryObserver.
	observers []DeliveryObserver
	observed  bool
}

func newReader(src net.Conn) *reader {
	r := &reader{src: src}
	if s, ok := src.(*net.TCPConn); ok {
		r.raw = newRawReader(s)
	}
	// Reads go through src; a yamux stream under wrappers is found for
	// Shrink and for the session check.
	c := src
	observed := true
	for range 4 {
		switch s := c.(type) {
		case *Stream:
			r.ystream = s.Stream
			r.observed = observed
			return r
		case *yamux.Stream:
			r.ystream = s
			r.observed = observed
			return r
		case interface{ NetConn() net.Conn }:
			if o, ok := s.(DeliveryObserver); ok {
				r.observers = append(r.observers, o)
			} else {
				observed = false
			}
			c = s.NetConn()
		default:
			return r
		}
	}
	return r
}

// read returns the next chunk of data, valid until release, and io.EOF at a
// clean end.
func (r *reader) read() ([]byte, error) {
	if r.raw != nil {
		// The poller waits for readability without a buffer; a buffer
		// that a read filled is kept for the next (likely immediate) read.
		buf, n, err := r.raw.read(r.buf)
		r.buf = buf
		if buf == nil {
			return nil, err
		}
		r.bulk = n == len(*buf)
		return (*buf)[:n], err
	}
	if r.next {
		return r.readBulk()
	}
	// Other sources cannot tell whether a read would block, so a read
	// after a short one starts small: an idle source blocks on the probe,
	// never on a pooled buffer.
	if r.ystream != nil && shrinkIdle {
		// yamux keeps a stream's receive buffer at its peak size. Dropping
		// it before every read costs a new buffer per frame in bulk, so
		// drop it only when this read waits longer than idleShrinkDelay.
		if r.shrink == nil {
			r.shrink = time.AfterFunc(idleShrinkDelay, r.ystream.Shrink)
		} else {
			r.shrink.Reset(idleShrinkDelay)
		}
	}
	if r.probe == nil {
		r.probe = make([]byte, probeSize)
	}
	n, err := r.src.Read(r.probe)
	if r.shrink != nil {
		r.shrink.Stop()
	}
	// A full probe means more data is probably waiting: the next read goes
	// to a pooled buffer. This one returns at once all the same, since a
	// second Read here could wait for data that only comes after the peer
	// gets an answer to what the probe holds (a 512-byte query).
	r.next = n == len(r.probe) && err == nil
	return r.probe[:n], r.check(err)
}

// readBulk reads into a pooled buffer; a read that fills it keeps the next
// one in bulk too, a short one goes back to the probe.
func (r *reader) readBulk() ([]byte, error) {
	if r.buf == nil {
		r.buf = getBuf()
	}
	n, err := r.src.Read(*r.buf)
	r.next = n == len(*r.buf) && err == nil
	return (*r.buf)[:n], r.check(err)
}

// shrinkIdle enables Stream.Shrink on idle yamux sources, after
// idleShrinkDelay without data.
var (
	shrinkIdle      = true
	idleShrinkDelay = time.Second
)

// stop ends the reader's timer.
func (r *reader) stop() {
	if r.shrink != nil {
		r.shrink.Stop()
	}
}

// release returns the pooled buffer unless a raw read filled it.
func (r *reader) release() {
	if r.buf != nil && !(r.raw != nil && r.bulk) && !r.next {
		putBuf(r.buf)
		r.buf = nil
	}
}

// check turns the io.EOF of a bare yamux stream whose session died into
// ErrSessionClosed (a *Stream does so itself).
func (r *reader) check(err error) error {
	if err == io.EOF && r.ystream != nil && r.ystream.Session().IsClosed() {
		return ErrSessionClosed
	}
	return err
}

// rawReader reads a socket after waiting for readability without a buffer.
type rawReader interface {
	// read fills buf (taken from the pool if nil, once data is ready) and
	// returns the buffer in use (nil when none) and the byte count.
	read(buf *[]byte) (*[]byte, int, error)
}

// halfClose ends the write side of c if c supports it.
func halfClose(c net.Conn) {
	switch c := c.(type) {
	case interface{ CloseWrite() error }:
		_ = c.CloseWrite()
	case *yamux.Stream:
		_ = c.Close()
	}
}

// reset resets a stream (yamux RST), or closes the TCP connection that is
// or is under c with SetLinger(0), so the peer gets an RST. The TCP connection under a *tls.Conn is closed
// directly: closing the tls.Conn would first send close_notify, which the
// peer would read as a clean end.
func reset(c net.Conn) {
	for range 4 { // unwrap a few layers at most
		switch t := c.(type) {
		case interface{ Reset() error }: // a stream: RST, not a FIN
			_ = t.Reset()
			return
		case interface{ SetLinger(int) error }:
			_ = t.SetLinger(0)
			_ = c.Close()
			return
		case *tls.Conn:
			c = t.NetConn()
		case interface{ NetConn() net.Conn }:
			c = t.NetConn()
		default:
			return
		}
	}
}

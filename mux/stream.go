package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// Stream is a yamux stream with the half-close of a TCP connection and
// net.Conn semantics for Close:
//
//   - CloseWrite sends FIN: the peer reads io.EOF, this side keeps reading.
//   - Close sends FIN if not sent yet and ends this side: pending and later
//     Read and Write calls fail with an error wrapping net.ErrClosed.
//   - Read returns [ErrSessionClosed] instead of io.EOF when the stream ended
//     because its session died rather than because the peer closed it.
//     yamux does not tell the two apart, so this looks at the session when
//     the stream ends: a peer that half-closes and then closes the whole
//     session at once can, rarely, make a complete stream end in
//     ErrSessionClosed.
//
// Reset aborts a stream instead: it sends RST, frees what the stream
// buffered at once and drops what arrives later. A server refuses a stream
// with [Refuse] (the answer, then Reset), so that a peer that keeps writing
// costs nothing; Close would keep the stream and its buffer until the peer
// closes too or StreamCloseTimeout fires.
//
// Create one with [Wrap]. Like net.Conn, a Stream is safe for one reader and
// one writer at a time plus concurrent Close and deadline calls.
type Stream struct {
	*yamux.Stream
	closed atomic.Bool
	reset  atomic.Bool
	// Deadlines as Unix nanoseconds, 0 for none: yamux checks its own
	// only when a call has to wait, but a net.Conn call must fail at once
	// when its deadline has passed.
	readDeadline, writeDeadline atomic.Int64
	sc                          *SessionConn // set by SessionConn.Track
}

var _ net.Conn = (*Stream)(nil)

// Wrap returns s as a *Stream; nil gives nil.
func Wrap(s *yamux.Stream) *Stream {
	if s == nil {
		return nil
	}
	return &Stream{Stream: s}
}

// Read reads stream data; see [Stream] for how it ends.
func (s *Stream) Read(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, s.opErr("read", net.ErrClosed)
	}
	if passed(&s.readDeadline) {
		return 0, s.opErr("read", os.ErrDeadlineExceeded)
	}
	n, err := s.Stream.Read(b)
	if err != nil {
		switch {
		case s.closed.Load():
			return n, s.opErr("read", net.ErrClosed)
		case (err == io.EOF || errors.Is(err, yamux.ErrTimeout)) && s.sessionDead():
			return n, s.opErr("read", ErrSessionClosed)
		case errors.Is(err, yamux.ErrTimeout):
			return n, s.opErr("read", os.ErrDeadlineExceeded)
		}
	}
	return n, err
}

// Write writes stream data. After CloseWrite or Close it fails.
func (s *Stream) Write(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, s.opErr("write", net.ErrClosed)
	}
	if passed(&s.writeDeadline) {
		return 0, s.opErr("write", os.ErrDeadlineExceeded)
	}
	n, err := s.Stream.Write(b)
	if err != nil {
		switch {
		case s.closed.Load():
			return n, s.opErr("write", net.ErrClosed)
		case errors.Is(err, yamux.ErrSessionShutdown),
			// yamux marks the streams of a closed session closed,
			// and SessionConn expires them when their connection
			// fails: either way the session died, not this stream.
			(errors.Is(err, yamux.ErrStreamClosed) || errors.Is(err, yamux.ErrTimeout)) && s.sessionDead():
			return n, s.opErr("write", ErrSessionClosed)
		case errors.Is(err, yamux.ErrTimeout):
			return n, s.opErr("write", os.ErrDeadlineExceeded)
		}
	}
	return n, err
}

// CloseWrite half-closes the stream: it sends FIN, so the peer reads io.EOF
// once it has read everything written before; this side can still read.
// Writes after it fail. Calling it again, or after Close, does nothing.
func (s *Stream) CloseWrite() error {
	return s.Stream.Close() // yamux Close is a half-close
}

// Close closes the stream: it sends FIN unless CloseWrite already did, and
// unblocks pending Read and Write calls, which then return an error wrapping
// net.ErrClosed. The stream's resources are freed once the peer closes its
// side too, or after the session's StreamCloseTimeout. Close is idempotent;
// calls after the first return nil.
func (s *Stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.Stream.Close()
	// Wake a Read blocked in yamux; the closed flag turns the timeout
	// into net.ErrClosed. Writers are woken by yamux's own Close.
	_ = s.Stream.SetReadDeadline(time.Unix(1, 0))
	if s.sc != nil {
		s.sc.untrack(s.Stream)
	}
	return err
}

// Reset aborts the stream: it sends RST, so the peer's Read and Write fail
// with yamux.ErrConnectionReset once it has read the data sent before;
// what this side buffered is freed at once and what arrives later is
// dropped. Pending and later Read and Write calls fail with an error
// wrapping net.ErrClosed. Unlike Close it waits for nothing from the peer:
// the stream leaves the session (and [yamux.Session.NumAcceptedStreams])
// at once. Reset after Close is allowed (it turns the half-closed stream
// into a reset one); calls after the first Reset return nil.
func (s *Stream) Reset() error {
	s.closed.Store(true)
	if s.reset.Swap(true) {
		return nil
	}
	err := s.Stream.Reset()
	_ = s.Stream.SetReadDeadline(time.Unix(1, 0))
	if s.sc != nil {
		s.sc.untrack(s.Stream)
	}
	return err
}

// Refuse answers a stream with resp (a refusal) and resets it: the peer
// reads the answer, then the reset; this side keeps nothing of the stream,
// and data the peer sends on it is dropped. Set a write deadline first, as
// the answer waits for room in the peer's window and the connection like
// any write. The answer's error, if any, is returned; the stream is reset
// either way.
func Refuse(st *Stream, resp Response) error {
	err := WriteResponse(st, resp)
	if rerr := st.Reset(); err == nil {
		err = rerr
	}
	return err
}

// sessionDead reports whether the stream's session is closed, or its
// connection failed (SessionConn then expired the stream's deadlines, just
// before yamux closes the session).
func (s *Stream) sessionDead() bool {
	return s.Stream.Session().IsClosed() || (s.sc != nil && s.sc.isDead())
}

// SetDeadline sets the read and write deadlines, like net.Conn.
func (s *Stream) SetDeadline(t time.Time) error {
	if s.closed.Load() {
		return s.opErr("set deadline", net.ErrClosed)
	}
	store(&s.readDeadline, t)
	store(&s.writeDeadline, t)
	return s.Stream.SetDeadline(t)
}

// SetReadDeadline sets the read deadline, like net.Conn.
func (s *Stream) SetReadDeadline(t time.Time) error {
	if s.closed.Load() {
		return s.opErr("set deadline", net.ErrClosed)
	}
	store(&s.readDeadline, t)
	return s.Stream.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline, like net.Conn.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	if s.closed.Load() {
		return s.opErr("set deadline", net.ErrClosed)
	}
	store(&s.writeDeadline, t)
	return s.Stream.SetWriteDeadline(t)
}

func (s *Stream) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mux", Source: s.Stream.LocalAddr(), Addr: s.Stream.RemoteAddr(), Err: err}
}

func store(d *atomic.Int64, t time.Time) {
	if t.IsZero() {
		d.Store(0)
	} else {
		d.Store(t.UnixNano())
	}
}

// passed reports whether the deadline d is set and in the past.
func passed(d *atomic.Int64) bool {
	v := d.Load()
	return v != 0 && time.Now().UnixNano() >= v
}

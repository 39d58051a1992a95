package mux

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// sessionCloseFlush bounds how long Close waits to flush what is pending.
const sessionCloseFlush = 250 * time.Millisecond

// SessionConn is the connection under one yamux session, on either end; the
// gateway and [Client] put one under every session. It does two things.
//
// It writes from the caller's goroutine, with nothing in between: the yamux
// of this module (third_party/yamux) writes a frame's header and body in
// one Write, from the stream's writer when nothing is queued, and joins the
// frames queued meanwhile into one Write itself, one Write at a time.
//
// It ends the waits of its streams when the connection fails, before yamux
// learns of it (a failed write closes the connection, so that yamux learns
// of it from a read, and the writes until then are dropped). hashicorp/yamux v0.1.2 closes a session's shutdown channel
// before it marks the session's streams closed, and a Read or Write waiting
// on a stream meanwhile loops without blocking (hashicorp/yamux#176): with
// 10,000 such streams a gateway whose client vanished kept both cores busy
// for more than 20 seconds. So when a Read of the connection fails (yamux's
// receive loop is the only reader: the peer is gone, or the connection was
// closed under the session), every stream registered with
// [SessionConn.Track] gets a past read and write deadline first: its waits
// end the ordinary way, with yamux.ErrTimeout, which [Stream] reports as
// [ErrSessionClosed]. Close does the same, for sessions that end another
// way. Sessions that die on a keepalive failure should instead close the
// connection under the session ([KeepAlive] does).
//
// Close lets a write under way finish (waiting at most 250ms for a peer that
// does not read) and closes the connection: gracefully when the writes went
// out (a *tls.Conn then sends close_notify, which waits up to 5s for room in
// a full socket buffer), or, when one failed or timed out, by closing what
// the connection's NetConn method returns (the TCP connection under a
// *tls.Conn). Writes after Close fail with net.ErrClosed. The other methods
// are the connection's.
type SessionConn struct {
	net.Conn

	wmu     sync.Mutex  // held by a Write; Close takes it to wait for the one under way
	wclosed bool        // under wmu: Close has taken it, writes fail
	failed  atomic.Bool // a write failed: the connection was aborted

	mu      sync.Mutex
	streams map[*yamux.Stream]struct{}
	dead    bool          // the connection failed or was closed: tracked streams were expired
	drained chan struct{} // closed when dead and every tracked stream is closed

	closing   atomic.Bool // Close has begun: its flush deadline stands
	closeOnce sync.Once
	closeErr  error
}

// NewSessionConn wraps c; hand the result to yamux.Client or yamux.Server.
func NewSessionConn(c net.Conn) *SessionConn {
	return &SessionConn{Conn: c, streams: map[*yamux.Stream]struct{}{}, drained: make(chan struct{})}
}

// sessionDrainWait bounds how long a failed Read waits for the expired
// streams to be closed before it reports the failure to yamux.
const sessionDrainWait = time.Second

func (c *SessionConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		// Let the streams' owners see their waits end and close them
		// while the session is still up: once yamux closes it, a stream
		// still waiting loops until the session marks it closed.
		c.expire()
		t := time.NewTimer(sessionDrainWait)
		select {
		case <-c.drained:
		case <-t.C:
		}
		t.Stop()
	}
	return n, err
}

func (c *SessionConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.wclosed:
		return 0, net.ErrClosed
	case c.failed.Load():
		return len(p), nil // dropped: the peer is gone (see below)
	}
	if _, err := c.Conn.Write(p); err != nil {
		// The connection failed under a write. yamux would close the
		// session now, with streams still waiting; instead make the
		// read side fail too, so that the session ends on the read
		// path (see Read), and drop what is written until then: the
		// peer is gone.
		c.failed.Store(true)
		c.abort()
	}
	return len(p), nil
}

// SetWriteDeadline sets the connection's write deadline (yamux bounds the
// frames it writes from a stream's goroutine with one), except once Close
// has begun: the deadline that bounds its flush then stands.
func (c *SessionConn) SetWriteDeadline(t time.Time) error {
	if c.closing.Load() {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// abort closes the connection under the session without a goodbye: the
// transport under TLS when there is one.
func (c *SessionConn) abort() {
	if nc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
		_ = nc.NetConn().Close()
		return
	}
	_ = c.Conn.Close()
}

// Track registers a stream of this connection's session until the stream
// is closed. A stream tracked after the connection failed gets its past
// deadlines at once.
func (c *SessionConn) Track(s *Stream) {
	s.sc = c
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		expire(s.Stream)
		return
	}
	c.streams[s.Stream] = struct{}{}
	c.mu.Unlock()
}

// untrack forgets a stream (on its Close).
func (c *SessionConn) untrack(st *yamux.Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.streams[st]; !ok {
		return
	}
	delete(c.streams, st)
	if c.dead && len(c.streams) == 0 {
		close(c.drained)
	}
}

// Tracked returns how many streams are registered.
func (c *SessionConn) Tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

// isDead reports whether the connection failed or was closed.
func (c *SessionConn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// expire marks the connection dead and ends the waits of its streams.
func (c *SessionConn) expire() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	streams := make([]*yamux.Stream, 0, len(c.streams))
	for st := range c.streams {
		streams = append(streams, st)
	}
	if len(streams) == 0 {
		close(c.drained)
	}
	c.mu.Unlock()
	for _, st := range streams {
		expire(st)
	}
}

// expire ends the waits of st's Read and Write.
func expire(st *yamux.Stream) {
	past := time.Unix(1, 0)
	_ = st.SetReadDeadline(past)
	_ = st.SetWriteDeadline(past)
}

// Close expires the tracked streams, waits for the write under way and
// closes the connection; see [SessionConn].
func (c *SessionConn) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.expire()
		// Bound the write under way, then wait for it.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(sessionCloseFlush))
		c.wmu.Lock()
		c.wclosed = true
		c.wmu.Unlock()
		if _, ok := c.Conn.(interface{ NetConn() net.Conn }); ok && c.failed.Load() {
			// A write failed or timed out, and the transport under TLS
			// was closed: the peer is gone or not reading. Closing the
			// tls.Conn would send close_notify, which would wait up to
			// 5s more on a full socket buffer.
			return
		}
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// KeepAlive pings sess every interval until it closes; when a ping fails
// it calls fail, which should close the connection under the session (so
// that its SessionConn ends the streams' waits before yamux closes the
// session). Use it instead of yamux's own keepalive (EnableKeepAlive
// false), which closes the session directly. It returns when sess closes.
func KeepAlive(sess *yamux.Session, interval time.Duration, fail func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-sess.CloseChan():
			return
		case <-t.C:
			if _, err := sess.Ping(); err != nil {
				select {
				case <-sess.CloseChan():
				default:
					fail(err)
				}
				return
			}
		}
	}
}

package gateway

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// echo sends back everything it reads, then half-closes when the client
// does, so a client can tell the echo is complete.
func echo(c net.Conn) (in, out int64, err error) {
	buf := make([]byte, 32<<10)
	for {
		n, rerr := c.Read(buf)
		if n > 0 {
			in += int64(n)
			w, werr := c.Write(buf[:n])
			out += int64(w)
			if werr != nil {
				c.Close()
				return in, out, werr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				rerr = nil
				if cw, ok := c.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
			}
			c.Close()
			return in, out, rerr
		}
	}
}

// idleConn closes itself when neither direction has moved a byte for d.
type idleConn struct {
	net.Conn
	last  atomic.Int64 // unix nanoseconds of the last read or write
	timer *time.Timer
	d     time.Duration
}

func newIdleConn(c net.Conn, d time.Duration) *idleConn {
	ic := &idleConn{Conn: c, d: d}
	ic.last.Store(time.Now().UnixNano())
	ic.timer = time.AfterFunc(d, ic.check)
	return ic
}

func (c *idleConn) check() {
	idle := time.Since(time.Unix(0, c.last.Load()))
	if idle >= c.d {
		c.Conn.Close()
		return
	}
	c.timer.Reset(c.d - idle)
}

func (c *idleConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.last.Store(time.Now().UnixNano())
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.last.Store(time.Now().UnixNano())
	return n, err
}

func (c *idleConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func (c *idleConn) Close() error {
	c.timer.Stop()
	return c.Conn.Close()
}

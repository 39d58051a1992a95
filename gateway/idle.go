package gateway

import (
	"net"
	"sync/atomic"
	"time"
)

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
	ic.timer = time.AfterFunc(time.Hour, ic.check) // armed below, once assigned
	ic.timer.Reset(d)
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

// Delivered counts bytes that Pipe moved from the wrapped stream without
// reading through c (mux.DeliveryObserver) as activity.
func (c *idleConn) Delivered(int) { c.last.Store(time.Now().UnixNano()) }

// NetConn returns the wrapped connection, so Pipe can see through to it.
func (c *idleConn) NetConn() net.Conn { return c.Conn }

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

package mux

import (
	"encoding/binary"
	"net"
)

// coalesceMax is the largest yamux data frame body Coalesce joins with its
// header: one TLS record holds 16 KiB.
const coalesceMax = 16<<10 - yamuxHeaderSize

const yamuxHeaderSize = 12

// Coalesce wraps the connection under a yamux session so that the 12-byte
// header of a small data frame and the body yamux writes right after it
// leave in one Write: over TLS that is one record and one system call
// instead of two. Other writes pass through unchanged.
//
// The wrapper relies on yamux writing from one goroutine (its send loop),
// as hashicorp/yamux does; Read and the other methods are c's.
func Coalesce(c net.Conn) net.Conn { return &coalesceConn{Conn: c} }

type coalesceConn struct {
	net.Conn
	pending int    // bytes of a held header in buf, 0 or yamuxHeaderSize
	want    int    // body length announced by the held header
	buf     []byte // header + body, reused
}

func (c *coalesceConn) Write(p []byte) (int, error) {
	if c.pending > 0 {
		if len(p) == c.want {
			c.buf = append(c.buf[:c.pending], p...)
			c.pending = 0
			n, err := c.Conn.Write(c.buf)
			return max(n-yamuxHeaderSize, 0), err
		}
		// Not the body announced: send the header alone, then p.
		c.pending = 0
		if _, err := c.Conn.Write(c.buf[:yamuxHeaderSize]); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	// A yamux data frame header: version 0, type 0 (data), then flags,
	// stream id and the body length.
	if len(p) == yamuxHeaderSize && p[0] == 0 && p[1] == 0 {
		if l := binary.BigEndian.Uint32(p[8:12]); l > 0 && l <= coalesceMax {
			if cap(c.buf) < yamuxHeaderSize+int(l) {
				c.buf = make([]byte, 0, yamuxHeaderSize+coalesceMax)
			}
			c.buf = append(c.buf[:0], p...)
			c.pending, c.want = yamuxHeaderSize, int(l)
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

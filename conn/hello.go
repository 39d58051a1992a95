package conn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// TLS record framing, as far as ReadHello needs it.
const (
	recordHeaderLen     = 5
	recordTypeHandshake = 0x16
	// maxHelloRecord is the largest first record ReadHello buffers: a TLS
	// plaintext record holds at most 2^14 bytes. A header announcing more
	// is not a ClientHello; ReadHello stops there and lets the TLS stack
	// refuse it.
	maxHelloRecord = 1 << 14
)

// ErrSilent is returned by ReadHello for a connection that sent no byte
// before its hello timeout.
var ErrSilent = errors.New("no byte sent within the hello timeout")

// ReadHello waits for the first TLS record of c (a ClientHello) before any
// handshake resource is spent on it. It waits at most helloTimeout for the
// first byte, returning ErrSilent when none came; from that first byte on,
// the rest of the record, and the handshake after it, share one deadline,
// first byte + handshakeTimeout, which it returns: a client that trickles
// one byte at a time is bounded from its first byte, not reset by each.
//
// firstByte, when not nil, is called once the first byte is in.
//
// The returned connection replays the bytes read, then reads c; it leaves
// the read deadline of c set to the returned deadline. A first record that
// is not a handshake record, or announces more than a record can hold, is
// not read further: the handshake that follows refuses it with its own
// error. Errors other than ErrSilent wrap what the read returned
// (os.ErrDeadlineExceeded when the client ran out of time mid-record).
//
// Nothing is allocated for a silent connection; a speaking one costs one
// buffer the size of its first record (at most 16 KiB + 5 bytes).
func ReadHello(c net.Conn, helloTimeout, handshakeTimeout time.Duration, firstByte func()) (net.Conn, time.Time, error) {
	var hdr [recordHeaderLen]byte
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	n, err := c.Read(hdr[:])
	if n == 0 {
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, time.Time{}, ErrSilent
		}
		return nil, time.Time{}, err
	}
	if firstByte != nil {
		firstByte()
	}
	deadline := time.Now().Add(handshakeTimeout)
	_ = c.SetReadDeadline(deadline)
	if hdr[0] != recordTypeHandshake {
		return &replayConn{Conn: c, buf: append([]byte(nil), hdr[:n]...)}, deadline, nil
	}
	if _, err := io.ReadFull(c, hdr[n:]); err != nil {
		return nil, deadline, fmt.Errorf("reading the ClientHello's record header: %w", err)
	}
	size := int(hdr[3])<<8 | int(hdr[4])
	if size > maxHelloRecord {
		return &replayConn{Conn: c, buf: append([]byte(nil), hdr[:]...)}, deadline, nil
	}
	buf := make([]byte, recordHeaderLen+size)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(c, buf[recordHeaderLen:]); err != nil {
		return nil, deadline, fmt.Errorf("reading the ClientHello (%d bytes): %w", size, err)
	}
	return &replayConn{Conn: c, buf: buf}, deadline, nil
}

// replayConn reads buf first, then Conn. Only one goroutine reads it (the
// TLS stack's).
type replayConn struct {
	net.Conn
	buf    []byte
	remote net.Addr // when set (a PROXY header's client), what RemoteAddr says
}

// RemoteAddr is the client's address: the one a trusted proxy's header
// gave, else the connection's peer. The TLS handshake's callbacks
// (ClientHelloInfo.Conn) see it, so a decision taken there judges the
// client, not the proxy.
func (r *replayConn) RemoteAddr() net.Addr {
	if r.remote != nil {
		return r.remote
	}
	return r.Conn.RemoteAddr()
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		return r.Conn.Read(p)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	if len(r.buf) == 0 {
		r.buf = nil // the ClientHello's buffer is garbage now
	}
	return n, nil
}

// NetConn returns the connection under r, for code that looks for the TCP
// connection under a TLS one (resets, half-close, poller waits).
func (r *replayConn) NetConn() net.Conn { return r.Conn }

// CloseWrite half-closes the connection under r when it can.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("connection does not support half-close")
}

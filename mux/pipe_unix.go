//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package mux

import (
	"io"
	"net"
	"os"
	"syscall"
)

type tcpRawReader struct {
	c  *net.TCPConn
	rc syscall.RawConn
	fn func(fd uintptr) bool // r.tryRead, bound once to spare an allocation per read

	// State of the read in progress, shared with fn.
	buf  *[]byte
	n    int
	serr error
}

func newRawReader(c *net.TCPConn) rawReader {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	r := &tcpRawReader{c: c, rc: rc}
	r.fn = r.tryRead
	return r
}

// read waits for readability through the runtime poller without holding a
// buffer; it takes one from the pool only when a read can proceed.
func (r *tcpRawReader) read(buf *[]byte) (*[]byte, int, error) {
	r.buf, r.n, r.serr = buf, 0, nil
	err := r.rc.Read(r.fn)
	buf, n, serr := r.buf, r.n, r.serr
	r.buf = nil
	if err != nil { // deadline, or the connection was closed: a *net.OpError
		return buf, 0, err
	}
	if serr != nil {
		return buf, 0, r.opErr(os.NewSyscallError("read", serr))
	}
	if n == 0 {
		return buf, 0, io.EOF
	}
	return buf, n, nil
}

// tryRead is called by the poller: it reads if data is there, and returns
// false (after giving the buffer back) to wait for readability.
func (r *tcpRawReader) tryRead(fd uintptr) bool {
	if r.buf == nil {
		r.buf = getBuf()
	}
	for {
		r.n, r.serr = syscall.Read(int(fd), *r.buf)
		if r.serr != syscall.EINTR {
			break
		}
	}
	if r.serr == syscall.EAGAIN {
		putBuf(r.buf)
		r.buf = nil
		return false
	}
	return true
}

func (r *tcpRawReader) opErr(err error) error {
	return &net.OpError{Op: "read", Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: err}
}

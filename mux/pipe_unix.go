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
}

func newRawReader(c *net.TCPConn) rawReader {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return &tcpRawReader{c: c, rc: rc}
}

// read waits for readability through the runtime poller without holding a
// buffer; it takes one from the pool only when a read can proceed.
func (r *tcpRawReader) read(buf *[]byte) (*[]byte, int, error) {
	var n int
	var serr error
	err := r.rc.Read(func(fd uintptr) bool {
		if buf == nil {
			buf = getBuf()
		}
		for {
			n, serr = syscall.Read(int(fd), *buf)
			if serr != syscall.EINTR {
				break
			}
		}
		if serr == syscall.EAGAIN {
			putBuf(buf)
			buf = nil
			return false // wait for readability, then try again
		}
		return true
	})
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

func (r *tcpRawReader) opErr(err error) error {
	return &net.OpError{Op: "read", Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: err}
}

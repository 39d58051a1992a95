package mux

import (
	"io"
	"net"
)

// Echo writes back everything it reads from c until c's read side ends,
// then half-closes c's write side and closes c. It holds no pooled buffer
// while c is idle, as Pipe does. It returns the bytes echoed and the first
// error other than a clean end.
func Echo(c net.Conn) (int64, error) {
	r := newReader(c)
	var total int64
	for {
		data, err := r.read()
		if len(data) > 0 {
			n, werr := c.Write(data)
			total += int64(n)
			if werr != nil {
				r.release()
				_ = c.Close()
				return total, werr
			}
		}
		r.release()
		if err == io.EOF {
			halfClose(c)
			_ = c.Close()
			return total, nil
		}
		if err != nil {
			_ = c.Close()
			return total, err
		}
	}
}

// Discard reads c until its read side ends and drops what it reads, then
// closes c. Like Echo, it holds no pooled buffer while c is idle.
func Discard(c net.Conn) (int64, error) {
	r := newReader(c)
	var total int64
	for {
		data, err := r.read()
		total += int64(len(data))
		r.release()
		if err != nil {
			_ = c.Close()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
	}
}

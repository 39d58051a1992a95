//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package mux

import (
	"net"
	"syscall"
)

// directWriter writes a stream's data to a socket from the session's
// receive loop, without blocking: what the socket buffer takes goes out at
// once, the rest is left to the Pipe's own copy (see
// yamux.Stream.SetDirectReceiver). The receive loop calls write with the
// stream's receive lock held, so its fields need no lock of their own.
type directWriter struct {
	rc syscall.RawConn
	fn func(fd uintptr) bool // w.tryWrite, bound once

	p []byte // the bytes of the write in progress
	n int    // how many of them the socket took
}

// newDirectWriter returns a directWriter for a TCP or Unix socket, nil for
// anything else (a TLS connection, a wrapper: their writes must go through
// them).
func newDirectWriter(dst net.Conn) *directWriter {
	var sc syscall.Conn
	switch c := dst.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &directWriter{rc: rc}
	w.fn = w.tryWrite
	return w
}

// write writes what of p the socket takes now and returns the count; an
// error (the socket closed or reset) takes nothing, so the Pipe's copy
// writes those bytes itself and gets the error.
func (w *directWriter) write(p []byte) int {
	w.p, w.n = p, 0
	err := w.rc.Write(w.fn)
	n := w.n
	w.p = nil
	if err != nil {
		return 0
	}
	return n
}

// tryWrite is called once by the poller and never asks it to wait.
func (w *directWriter) tryWrite(fd uintptr) bool {
	for w.n < len(w.p) {
		k, err := syscall.Write(int(fd), w.p[w.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || k <= 0 {
			break
		}
		w.n += k
	}
	return true
}

package main

import (
	"io"
	"net"
	"sync"
)

// backends are the TCP servers behind every target: echo, discard, and
// source (sends zeros until the client goes away). They run in the suite's
// own process; their CPU is not counted for any target.
type backends struct {
	echo, discard, source string

	lns  []net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

func startBackends() (*backends, error) {
	b := &backends{open: map[net.Conn]struct{}{}}
	for _, s := range []struct {
		addr   *string
		handle func(net.Conn)
	}{
		{&b.echo, echo},
		{&b.discard, discard},
		{&b.source, source},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.close()
			return nil, err
		}
		b.lns = append(b.lns, ln)
		*s.addr = ln.Addr().String()
		b.wg.Go(func() { b.serve(ln, s.handle) })
	}
	return b, nil
}

func (b *backends) serve(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.open[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Go(func() {
			handle(c)
			c.Close()
			b.mu.Lock()
			delete(b.open, c)
			b.mu.Unlock()
		})
	}
}

func (b *backends) close() {
	for _, ln := range b.lns {
		ln.Close()
	}
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// bufPool lends 32 KiB buffers only while data moves, so that 10,000 idle
// echo connections hold none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// echo sends back what it reads and half-closes after the client's EOF.
func echo(c net.Conn) {
	var probe [512]byte
	for {
		n, err := c.Read(probe[:])
		if n > 0 {
			if _, werr := c.Write(probe[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if cw, ok := c.(*net.TCPConn); ok && err == io.EOF {
				_ = cw.CloseWrite()
			}
			return
		}
		if n == len(probe) { // bulk: copy with a pooled buffer until it ends
			bp := bufPool.Get().(*[]byte)
			_, err := io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, *bp)
			bufPool.Put(bp)
			if err == nil {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			return
		}
	}
}

// discard reads and drops everything, then closes.
func discard(c net.Conn) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	_, _ = io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, *bp)
}

// source writes zeros until the write fails.
func source(c net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
	defer wg.Wait()
	defer c.Close() // ends the reader
	buf := make([]byte, 32<<10)
	for range 1 << 30 {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

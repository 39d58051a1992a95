package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/tunnel"
)

// runThroughput opens Streams streams (or connections), then moves data
// through them until the run is over, and reports the bytes per second of
// the elapsed time, from the first write to the last byte read back (up,
// both) or to the end of the run (down).
func (r *runner) runThroughput(res *Result, progress io.Writer) error {
	var clients []*tunnel.Dialer
	if r.s.mux() {
		var err error
		if clients, err = r.newClients(); err != nil {
			return err
		}
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
	}
	conns := make([]net.Conn, r.s.Streams)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := r.openData(clients, i)
		if err != nil {
			return fmt.Errorf("opening stream %d of %d: %w", i+1, len(conns), r.public(err))
		}
		conns[i] = c
	}

	r.begin()
	stop := r.startProgress(progress)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { r.moveData(i, c) })
	}
	wg.Wait()
	res.Elapsed = time.Since(r.start)
	if r.s.Direction == DirDown {
		// Data still arriving after the end is not counted; neither is
		// the time spent closing.
		res.Elapsed = min(res.Elapsed, r.deadline.Sub(r.start))
	}
	stop()
	return nil
}

// openData opens the i-th data stream: a mux stream over session i mod
// Sessions, or a connection of its own with Direct or UnsafePlaintext.
func (r *runner) openData(clients []*tunnel.Dialer, i int) (net.Conn, error) {
	ctx, cancel := r.opContext()
	defer cancel()
	addr := r.gateway(i)
	switch {
	case r.s.UnsafePlaintext:
		return r.dialTCP(ctx, addr)
	case r.s.Direct:
		d, err := tunnel.NewDialer(r.options(addr, true, nil))
		if err != nil {
			return nil, err
		}
		defer d.Close() // in direct mode it holds nothing the connection needs
		c, err := d.Dial(ctx, r.s.Route)
		if err != nil {
			return nil, dialFailed(addr, err)
		}
		return c, nil
	}
	c := clients[i%len(clients)]
	st, err := c.Dial(ctx, r.s.Route)
	if err != nil {
		return nil, dialFailed(r.gateway(i%len(clients)), err)
	}
	return st, nil
}

// moveData runs the writer and the reader of one stream.
func (r *runner) moveData(i int, c net.Conn) {
	addr := c.RemoteAddr().String()
	if r.s.Direction == DirDown {
		r.readChunks(i, c, addr)
		c.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.drain(c, addr) })
	r.writeChunks(i, c, addr)
	wg.Wait()
	c.Close()
}

// writeChunks writes chunks of Size bytes until the run is over, then
// half-closes c and gives the reader OpTimeout to see the end.
func (r *runner) writeChunks(i int, c net.Conn, addr string) {
	chunk := r.message()
	for r.claim() {
		start := time.Now()
		_ = c.SetWriteDeadline(start.Add(r.s.OpTimeout))
		n, err := c.Write(chunk)
		r.up.Add(int64(n))
		if err != nil {
			r.fail(&opError{phase: phaseWrite, addr: addr, err: err})
			_ = c.SetReadDeadline(time.Unix(1, 0))
			return
		}
		r.record(i, time.Since(start))
	}
	_ = c.SetReadDeadline(time.Now().Add(r.s.OpTimeout))
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !r.ended() {
			r.fail(&opError{phase: phaseClose, addr: addr, err: err})
		}
	}
}

// drain reads everything that comes back until the end of the stream.
func (r *runner) drain(c net.Conn, addr string) {
	buf := make([]byte, 64<<10)
	for range maxReads {
		n, err := c.Read(buf)
		r.down.Add(int64(n))
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if !r.ended() && !errors.Is(err, net.ErrClosed) {
				r.fail(&opError{phase: phaseRead, addr: addr, err: err})
			}
			return
		}
	}
}

// maxReads bounds a read loop: at 64 KiB a read, more than any run moves.
const maxReads = 1 << 40

// readChunks reads chunks of Size bytes until the run is over.
func (r *runner) readChunks(i int, c net.Conn, addr string) {
	buf := make([]byte, r.size)
	for r.claim() {
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(r.s.OpTimeout))
		n, err := io.ReadFull(c, buf)
		r.down.Add(int64(n))
		if err != nil {
			r.fail(&opError{phase: phaseRead, addr: addr, err: err})
			return
		}
		r.record(i, time.Since(start))
	}
}

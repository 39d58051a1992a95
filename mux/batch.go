package mux

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/wbatch"
)

// batchCloseFlush bounds how long Close waits to flush what is pending.
const batchCloseFlush = 250 * time.Millisecond

// BatchWrites wraps the connection under a yamux session so that frames
// written while an earlier write is still under way leave together, in one
// Write to c: over TLS, one record and one system call for what would
// otherwise be two per frame (yamux writes a frame's 12-byte header and its
// body separately). Nothing waits for more data to arrive: a frame written
// to an idle connection goes out at once, from a goroutine the wrapper runs
// until Close or the first write error.
//
// Write copies small writes and returns; the error of a failed write to c
// is returned by the writes after it. A Write of 32 KiB or more goes out
// from the caller's goroutine, behind what is pending and topped up with
// its first bytes to one 16 KiB record. Close flushes what is pending
// (waiting at most 250ms for the peer) and closes c: gracefully when the
// writes went out (a *tls.Conn then sends close_notify, which waits up to
// 5s for room in a full socket buffer), or, when one failed or
// timed out, by closing what c's NetConn method returns (the TCP connection
// under a *tls.Conn). Writes after Close fail with net.ErrClosed. Read and
// the other methods are c's.
func BatchWrites(c net.Conn) net.Conn {
	return &batchConn{Conn: c, w: wbatch.New(c, wbatch.Options{})}
}

type batchConn struct {
	net.Conn
	w *wbatch.Writer

	closeOnce sync.Once
	closeErr  error
}

func (b *batchConn) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	if errors.Is(err, wbatch.ErrClosed) {
		err = net.ErrClosed
	}
	return n, err
}

func (b *batchConn) Close() error {
	b.closeOnce.Do(func() {
		err := b.w.Close(func() { _ = b.Conn.SetWriteDeadline(time.Now().Add(batchCloseFlush)) })
		if nc, ok := b.Conn.(interface{ NetConn() net.Conn }); ok && err != nil {
			// A write failed or timed out: the peer is gone or not
			// reading. Close the transport under TLS, as tls.Conn.Close
			// itself does when a write is in flight, instead of sending
			// close_notify, which would wait up to 5s more on a full
			// socket buffer.
			b.closeErr = nc.NetConn().Close()
			return
		}
		b.closeErr = b.Conn.Close()
	})
	return b.closeErr
}

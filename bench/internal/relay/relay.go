package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Serve accepts connections on ln and runs handle for each in its own
// goroutine, until ln is closed. It then closes the connections still open,
// waits for their handlers and returns nil. Temporary accept errors (out
// of file descriptors) are retried after a short backoff.
func Serve(ln net.Listener, handle func(net.Conn)) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open = map[net.Conn]struct{}{}
	)
	defer func() {
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		mu.Lock()
		open[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				c.Close()
				mu.Lock()
				delete(open, c)
				mu.Unlock()
			}()
			handle(c)
		})
	}
}

// Pipe copies a to b and b to a with io.Copy until both directions end,
// half-closing each destination when its source ends, then closes both.
func Pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(b, a) })
	copyHalf(a, b)
	wg.Wait()
	a.Close()
	b.Close()
}

func copyHalf(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		// Abort both: the peer of each sees the failure.
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		dst.Close()
	}
}

package mux

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tunnelApp connects an "application" TCP connection to a stream opened by
// client for route, the way the tunnel does: Pipe(local, stream). It
// returns the application's end and a channel with Pipe's result.
type pipeResult struct {
	aToB, bToA int64
	err        error
}

func tunnelApp(t testing.TB, client *Client, route string) (app *net.TCPConn, done <-chan pipeResult) {
	t.Helper()
	app, local := tcpPair(t)
	st, err := client.Open(context.Background(), route)
	if err != nil {
		t.Fatalf("Open(%q): %v", route, err)
	}
	return app, startPipe(local, st)
}

// startPipe runs Pipe(a, b) in a goroutine; its result comes on the
// channel.
func startPipe(a, b net.Conn) <-chan pipeResult {
	ch := make(chan pipeResult, 1)
	go func() {
		x, y, err := Pipe(a, b)
		ch <- pipeResult{x, y, err}
	}()
	return ch
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipeHalfCloseMiB sends 1 MiB from the app; the backend reads it to
// EOF (the app half-closed) and only then sends 1 MiB back, which the app
// still receives. Both checksums must match, over TCP and over TLS.
func TestPipeHalfCloseMiB(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[useTLS], func(t *testing.T) {
			up, down := randomBytes(t, 1<<20), randomBytes(t, 1<<20)
			var backendSum [32]byte
			var backendErr error
			be := startBackend(t, func(c *net.TCPConn) {
				h := sha256.New()
				if _, err := io.Copy(h, c); err != nil { // until the app's FIN
					backendErr = err
					return
				}
				copy(backendSum[:], h.Sum(nil))
				if _, err := c.Write(down); err != nil {
					backendErr = err
					return
				}
				backendErr = c.CloseWrite()
			})
			g := startGateway(t, useTLS, routeTo(map[string]string{"echo": be.addr()}))
			client := newClient(t, g, nil)
			app, done := tunnelApp(t, client, "echo")

			if _, err := app.Write(up); err != nil {
				t.Fatal(err)
			}
			if err := app.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			app.SetReadDeadline(time.Now().Add(20 * time.Second))
			h := sha256.New()
			n, err := io.Copy(h, app)
			if err != nil || n != int64(len(down)) {
				t.Fatalf("app read %d bytes, %v; want %d then EOF", n, err, len(down))
			}
			if [32]byte(h.Sum(nil)) != sha256.Sum256(down) {
				t.Fatal("checksum of the bytes the app received differs")
			}
			res := <-done
			if res.err != nil || res.aToB != int64(len(up)) || res.bToA != int64(len(down)) {
				t.Fatalf("tunnel Pipe = %+v; want %d/%d bytes and no error", res, len(up), len(down))
			}
			be.ln.Close()
			be.wg.Wait()
			if backendErr != nil || backendSum != sha256.Sum256(up) {
				t.Fatalf("backend: err %v, checksum match %v", backendErr, backendSum == sha256.Sum256(up))
			}
			client.Close()
			g.close()
			g.mu.Lock()
			defer g.mu.Unlock()
			if len(g.results) != 1 || g.errs[0] != nil || g.results[0].BytesIn != int64(len(up)) || g.results[0].BytesOut != int64(len(down)) {
				t.Fatalf("gateway results %+v, errors %v", g.results, g.errs)
			}
		})
	}
}

// TestPipeBothWaysConcurrently sends 1 MiB each way at the same time, to a
// backend that reads and writes concurrently.
func TestPipeBothWaysConcurrently(t *testing.T) {
	down := randomBytes(t, 1<<20)
	up := randomBytes(t, 1<<20)
	sums := make(chan [32]byte, 1)
	be := startBackend(t, func(c *net.TCPConn) {
		var wg sync.WaitGroup
		wg.Go(func() {
			c.Write(down)
			c.CloseWrite()
		})
		h := sha256.New()
		io.Copy(h, c)
		wg.Wait()
		sums <- [32]byte(h.Sum(nil))
	})
	g := startGateway(t, true, routeTo(map[string]string{"b": be.addr()}))
	client := newClient(t, g, nil)
	app, done := tunnelApp(t, client, "b")
	app.SetDeadline(time.Now().Add(20 * time.Second))
	var wg sync.WaitGroup
	wg.Go(func() {
		app.Write(up)
		app.CloseWrite()
	})
	got, err := io.ReadAll(app)
	wg.Wait()
	if err != nil || sha256.Sum256(got) != sha256.Sum256(down) {
		t.Fatalf("app got %d bytes (%v); checksum mismatch or error", len(got), err)
	}
	if s := <-sums; s != sha256.Sum256(up) {
		t.Fatal("backend checksum mismatch")
	}
	if res := <-done; res.err != nil {
		t.Fatalf("Pipe: %v", res.err)
	}
}

// TestPipeManyStreams runs 100 streams at once over one session, each
// echoing 64 KiB.
func TestPipeManyStreams(t *testing.T) {
	const streams = 100
	size := 64 << 10
	if testing.Short() {
		size = 8 << 10
	}
	be := startBackend(t, echo)
	g := startGateway(t, true, routeTo(map[string]string{"echo": be.addr()}))
	var dials atomic.Int32
	client := newClient(t, g, &dials)
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			st, err := client.Open(context.Background(), "echo")
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			st.SetDeadline(time.Now().Add(30 * time.Second))
			data := make([]byte, size)
			rand.Read(data)
			go func() {
				st.Write(data)
				st.CloseWrite()
			}()
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- err
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				errs <- errors.New("echo checksum mismatch")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := dials.Load(); d != 1 {
		t.Errorf("%d dials for %d streams, want 1 shared session", d, streams)
	}
	if n := g.conns.Load(); n != 1 {
		t.Errorf("gateway accepted %d connections, want 1", n)
	}
}

// TestPipeSessionKilled kills the gateway's side of the session in the
// middle of a stream: the app and the backend must see a reset, not a
// clean end of data, and Pipe must report ErrSessionClosed.
func TestPipeSessionKilled(t *testing.T) {
	backendErr := make(chan error, 1)
	be := startBackend(t, func(c *net.TCPConn) {
		c.Write([]byte("hello"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c)
		backendErr <- err
	})
	g := startGateway(t, false, routeTo(map[string]string{"b": be.addr()}))
	client := newClient(t, g, nil)
	app, done := tunnelApp(t, client, "b")
	app.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(app, buf); err != nil {
		t.Fatal(err)
	}
	g.kill()
	_, err := app.Read(buf)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("app Read after the session died: %v, want ECONNRESET", err)
	}
	res := <-done
	if !errors.Is(res.err, ErrSessionClosed) {
		t.Fatalf("tunnel-side Pipe error %v, want ErrSessionClosed", res.err)
	}
	if err := <-backendErr; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("backend read %v after the session died, want ECONNRESET", err)
	}
}

// TestPipeTCP pipes two plain TCP connections, exercising the raw
// readiness path on both sides, with half-close.
func TestPipeTCP(t *testing.T) {
	a, a2 := tcpPair(t)
	b2, b := tcpPair(t)
	done := startPipe(a2, b2)
	data := randomBytes(t, 3<<20+17)
	go func() {
		a.Write(data)
		a.CloseWrite()
	}()
	b.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("read %d of %d bytes, %v", len(got), len(data), err)
	}
	// The other direction still works after the half-close.
	if _, err := b.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	b.CloseWrite()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	back, err := io.ReadAll(a)
	if err != nil || string(back) != "back" {
		t.Fatalf("reverse direction read %q, %v", back, err)
	}
	res := <-done
	if res.err != nil || res.aToB != int64(len(data)) || res.bToA != 4 {
		t.Fatalf("Pipe = %+v", res)
	}
}

// TestPipeResetPropagates: when one TCP side is reset, Pipe fails and
// resets the other.
func TestPipeResetPropagates(t *testing.T) {
	a, a2 := tcpPair(t)
	b2, b := tcpPair(t)
	done := startPipe(a2, b2)
	a.Write([]byte("x"))
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	a.SetLinger(0)
	a.Close()
	res := <-done
	if !errors.Is(res.err, syscall.ECONNRESET) {
		t.Fatalf("Pipe error %v, want ECONNRESET", res.err)
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("other side read %v, want ECONNRESET", err)
	}
}

// TestPipeCloseStops: closing one side from outside ends Pipe.
func TestPipeCloseStops(t *testing.T) {
	_, a2 := tcpPair(t)
	b2, _ := tcpPair(t)
	done := startPipe(a2, b2)
	time.Sleep(20 * time.Millisecond)
	b2.Close()
	select {
	case res := <-done:
		if !errors.Is(res.err, net.ErrClosed) {
			t.Fatalf("Pipe error %v, want net.ErrClosed", res.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not return after Close")
	}
}

// tlsPair returns both ends of a loopback TLS connection, handshake done.
func tlsPair(t testing.TB) (client, server *tls.Conn) {
	t.Helper()
	c, s := tcpPair(t)
	tc, ts := tls.Client(c, getPKI().client.Clone()), tls.Server(s, getPKI().server.Clone())
	errc := make(chan error, 1)
	go func() { errc <- ts.Handshake() }()
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return tc, ts
}

// TestPipeTLS pipes a TLS connection to TCP, as direct mode does: TLS
// half-close (close_notify) and reset propagation.
func TestPipeTLS(t *testing.T) {
	t.Run("half-close", func(t *testing.T) {
		app, front := tlsPair(t)
		back, be := tcpPair(t)
		done := startPipe(front, back)
		data := randomBytes(t, 200<<10)
		go func() {
			app.Write(data)
			app.CloseWrite()
		}()
		be.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(be)
		if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("backend read %d of %d bytes, %v", len(got), len(data), err)
		}
		be.Write([]byte("reply"))
		be.CloseWrite()
		app.SetDeadline(time.Now().Add(10 * time.Second))
		reply, err := io.ReadAll(app)
		if err != nil || string(reply) != "reply" {
			t.Fatalf("app read %q, %v after its half-close", reply, err)
		}
		if res := <-done; res.err != nil || res.aToB != int64(len(data)) || res.bToA != 5 {
			t.Fatalf("Pipe = %+v", res)
		}
	})
	t.Run("reset", func(t *testing.T) {
		app, front := tlsPair(t)
		back, be := tcpPair(t)
		done := startPipe(front, back)
		be.SetLinger(0)
		be.Close()
		if res := <-done; !errors.Is(res.err, syscall.ECONNRESET) {
			t.Fatalf("Pipe error %v, want ECONNRESET", res.err)
		}
		app.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := app.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("TLS app read %v, want ECONNRESET", err)
		}
	})
}

// wrapped is a net.Conn wrapper that exposes what it wraps, and counts
// reads to prove Pipe reads through it.
type wrapped struct {
	net.Conn
	reads atomic.Int32
}

func (w *wrapped) Read(b []byte) (int, error) { w.reads.Add(1); return w.Conn.Read(b) }
func (w *wrapped) NetConn() net.Conn          { return w.Conn }
func (w *wrapped) CloseWrite() error          { return w.Conn.(interface{ CloseWrite() error }).CloseWrite() }

// TestPipeLooksThroughWrappers: a wrapped stream whose session dies still
// makes Pipe reset the (wrapped) TCP side, and reads go through wrappers.
func TestPipeLooksThroughWrappers(t *testing.T) {
	cs, ss, raw := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	defer b.Close()
	app, local := tcpPair(t)
	ws, wl := &wrapped{Conn: a}, &wrapped{Conn: local}
	if r := newReader(ws); r.ystream != a.Stream {
		t.Fatal("newReader did not find the stream under the wrapper")
	}
	done := startPipe(wl, ws)
	b.Write([]byte("hi"))
	app.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(app, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	raw.(*net.TCPConn).SetLinger(0)
	raw.Close()
	if _, err := app.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("app read %v, want ECONNRESET through the wrapper", err)
	}
	if res := <-done; !errors.Is(res.err, ErrSessionClosed) {
		t.Fatalf("Pipe error %v, want ErrSessionClosed", res.err)
	}
	if ws.reads.Load() == 0 || wl.reads.Load() == 0 {
		t.Fatalf("reads through wrappers: stream %d, tcp %d", ws.reads.Load(), wl.reads.Load())
	}
}

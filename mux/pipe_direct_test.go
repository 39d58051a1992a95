package mux

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// directBytes counts what the receive loops wrote straight to a Pipe's
// socket, in every test of the package (set once, before any Pipe).
var directBytes atomic.Int64

func init() { directHook = func(n int) { directBytes.Add(int64(n)) } }

func skipWithoutDirect(t *testing.T) {
	t.Helper()
	a, _ := tcpPair(t)
	if newDirectWriter(a) == nil {
		t.Skip("no direct writes to sockets on this system")
	}
}

// TestPipeDirectDelivery: on a Pipe from a stream to a TCP socket, small
// messages sent one at a time (a request, then its answer) go from the
// session's receive loop straight to the socket, in order; Pipe's count
// includes them and the stream still ends with the application's EOF.
func TestPipeDirectDelivery(t *testing.T) {
	skipWithoutDirect(t)
	stop := busyLoop(t)
	defer stop()
	cs, ss, _ := sessionPair(t, true)
	a, b := streamPair(t, cs, ss)
	app, local := tcpPair(t)
	done := startPipe(local, a)
	before := directBytes.Load()
	const rounds = 300
	buf := make([]byte, 64)
	app.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := 0; i < rounds; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i%64)
		if _, err := b.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(app, buf[:len(msg)]); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if !bytes.Equal(buf[:len(msg)], msg) {
			t.Fatalf("round %d: the application read %v, want %v", i, buf[:len(msg)], msg)
		}
	}
	direct := directBytes.Load() - before
	b.Close()
	if n, err := app.Read(buf); err != io.EOF {
		t.Fatalf("after the stream's FIN the application read %d bytes, %v; want io.EOF", n, err)
	}
	app.Close()
	res := <-done
	want := int64(0)
	for i := 0; i < rounds; i++ {
		want += int64(1 + i%64)
	}
	if res.bToA != want {
		t.Errorf("Pipe counted %d bytes from the stream, want %d (the direct writes too)", res.bToA, want)
	}
	if direct < want/2 {
		t.Errorf("%d of %d bytes went straight to the socket; want most (a request at a time finds the Pipe waiting)", direct, want)
	}
}

// TestPipeDirectSlowConsumer: when the application does not read, the
// socket buffer fills and the rest waits in the stream for Pipe's own copy;
// nothing is lost or reordered, and the receive loop never blocks (other
// streams of the session go on meanwhile).
func TestPipeDirectSlowConsumer(t *testing.T) {
	skipWithoutDirect(t)
	cs, ss, _ := sessionPair(t, false)
	a, b := streamPair(t, cs, ss)
	a2, b2 := streamPair(t, cs, ss)
	app, local := tcpPair(t)
	done := startPipe(local, a)

	data := randomBytes(t, 8<<20)
	wrote := make(chan error, 1)
	go func() {
		// Frames of at most BufferSize, as a Pipe on the other end writes.
		for rest := data; len(rest) > 0; {
			n := min(len(rest), BufferSize)
			if _, err := b.Write(rest[:n]); err != nil {
				wrote <- err
				return
			}
			rest = rest[n:]
		}
		wrote <- b.Close()
	}()
	// The application reads nothing for a while: the socket fills up.
	time.Sleep(200 * time.Millisecond)
	// The receive loop is not stuck on that socket: another stream of the
	// same session still carries data.
	if _, err := b2.Write([]byte("other stream")); err != nil {
		t.Fatal(err)
	}
	a2.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 12)
	if _, err := io.ReadFull(a2, got); err != nil || string(got) != "other stream" {
		t.Fatalf("another stream of the session read %q, %v while the application was not reading", got, err)
	}
	h := sha256.New()
	app.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(h, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || !bytes.Equal(h.Sum(nil), sum(data)) {
		t.Fatalf("the application read %d bytes, want %d with the same checksum", n, len(data))
	}
	app.Close()
	if res := <-done; res.bToA != int64(len(data)) {
		t.Errorf("Pipe counted %d bytes from the stream, want %d", res.bToA, len(data))
	}
}

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// observed wraps a stream and sees the bytes delivered past it.
type observed struct {
	net.Conn
	delivered atomic.Int64
}

func (o *observed) NetConn() net.Conn { return o.Conn }
func (o *observed) Delivered(n int)   { o.delivered.Add(int64(n)) }

// TestPipeDirectWrappers: a wrapper that is a DeliveryObserver is told of
// the bytes written past it; under a wrapper that is not (it may count or
// time its reads), Pipe reads everything through it.
func TestPipeDirectWrappers(t *testing.T) {
	skipWithoutDirect(t)
	cs, ss, _ := sessionPair(t, false)
	run := func(src net.Conn, peer *Stream) int64 {
		app, local := tcpPair(t)
		done := startPipe(local, src)
		before := directBytes.Load()
		buf := make([]byte, 5)
		app.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < 50; i++ {
			if _, err := peer.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(app, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("read %q, %v", buf, err)
			}
		}
		direct := directBytes.Load() - before
		app.Close()
		peer.Close()
		<-done
		return direct
	}
	a, b := streamPair(t, cs, ss)
	o := &observed{Conn: a}
	if direct := run(o, b); direct == 0 || o.delivered.Load() != direct {
		t.Errorf("observer saw %d bytes, %d went directly; want the same, not 0", o.delivered.Load(), direct)
	}
	a, b = streamPair(t, cs, ss)
	w := &wrapped{Conn: a}
	if direct := run(w, b); direct != 0 {
		t.Errorf("%d bytes went past a wrapper that cannot be told", direct)
	}
	if w.reads.Load() == 0 {
		t.Error("no read went through the wrapper")
	}
}

// busyLoop keeps a goroutine spinning until stop is called (at most 30s),
// so that the scheduler has a running goroutine beside the test's.
func busyLoop(t *testing.T) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; ; i++ {
			if i%1024 == 0 {
				select {
				case <-done:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

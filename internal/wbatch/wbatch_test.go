package wbatch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portcullis-gw/portcullis/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitBusy waits until b's flusher (or a large Write) is inside a write
// to the writer underneath.
func waitBusy(t *testing.T, b *Writer) {
	t.Helper()
	waitFor(t, "a write to the writer underneath", func() bool { busy, _ := b.state(); return busy })
}

// waitDirect waits until a large Write waits for its turn.
func waitDirect(t *testing.T, b *Writer) {
	t.Helper()
	waitFor(t, "a large Write waiting", func() bool { _, n := b.state(); return n > 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no %s after 5s", what)
}

const (
	direct     = 32 << 10 // the default Options
	record     = 16 << 10
	maxPending = 256 << 10
)

// readN reads exactly n bytes from c, in the pieces c delivers them.
func readN(t *testing.T, c net.Conn, n int) (data []byte, pieces []int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<20)
	for len(data) < n {
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(data), n, err)
		}
		data = append(data, buf[:m]...)
		pieces = append(pieces, m)
	}
	return data, pieces
}

// TestBatchJoinsWrites: writes made while a write is under way leave
// together in the next one. net.Pipe delivers each Write whole to the
// reader (one Read per Write when the read buffer is large enough).
func TestBatchJoinsWrites(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := New(c, Options{})
	defer b.Close(nil)

	mustWrite(t, b, "first")
	waitBusy(t, b) // the flusher is blocked until the peer reads
	for _, s := range []string{"-a", "-b", "-c"} {
		mustWrite(t, b, s)
	}
	data, pieces := readN(t, peer, len("first-a-b-c"))
	if string(data) != "first-a-b-c" {
		t.Fatalf("peer read %q", data)
	}
	if len(pieces) != 2 || pieces[0] != len("first") {
		t.Fatalf("peer read pieces %v, want [5 6]: the three writes behind the first should leave as one", pieces)
	}
}

// TestBatchLargeWrite: a large Write goes out behind what is pending, the
// pending bytes topped up from it to one TLS record.
func TestBatchLargeWrite(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := New(c, Options{})
	defer b.Close(nil)

	large := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes
	mustWrite(t, b, "head")
	waitBusy(t, b)
	mustWrite(t, b, "tail")
	done := make(chan error, 1)
	go func() {
		n, err := b.Write(large)
		if err == nil && n != len(large) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	waitDirect(t, b)
	want := append([]byte("headtail"), large...)
	data, pieces := readN(t, peer, len(want))
	if err := <-done; err != nil {
		t.Fatalf("large Write: %v", err)
	}
	if !bytes.Equal(data, want) {
		t.Fatal("the peer read other bytes than were written, or in another order")
	}
	if len(pieces) != 3 || pieces[1] != record {
		t.Fatalf("peer read pieces %v, want [4 %d %d]", pieces, record, len(want)-4-record)
	}
}

// TestBatchOrder: many writes of mixed sizes arrive whole and in order.
func TestBatchOrder(t *testing.T) {
	c, peer := net.Pipe()
	b := New(c, Options{})
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(peer)
		got <- data
	}()
	for i := range 2000 {
		size := 1 + i%97
		if i%250 == 0 {
			size = direct + i
		}
		p := bytes.Repeat([]byte{byte(i)}, size)
		want.Write(p)
		if n, err := b.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := b.Close(nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if data := <-got; !bytes.Equal(data, want.Bytes()) {
		t.Fatalf("peer read %d bytes, want %d, or other bytes", len(data), want.Len())
	}
}

// TestBatchConcurrentWriters: lines written from several goroutines come
// out whole, each goroutine's in its order.
func TestBatchConcurrentWriters(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, Options{})
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				line := fmt.Sprintf("w%d %d %s\n", w, i, strings.Repeat("x", i%50))
				if _, err := b.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := b.Close(nil); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	n := 0
	for line := range strings.Lines(out.String()) {
		var w, i int
		var pad string
		if _, err := fmt.Sscanf(line, "w%d %d %s\n", &w, &i, &pad); err != nil && i%50 != 0 {
			t.Fatalf("line %q is not whole: %v", line, err)
		}
		if w < 0 || w >= writers || i != next[w] || len(pad) != i%50 {
			t.Fatalf("line %q: want writer %d's line %d next", line, w, next[w])
		}
		next[w]++
		n++
	}
	if n != writers*lines {
		t.Fatalf("%d lines, want %d", n, writers*lines)
	}
}

// TestBatchCloseFlushes: Close returns once what is pending is written.
func TestBatchCloseFlushes(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := New(c, Options{})
	mustWrite(t, b, "one")
	waitBusy(t, b)
	mustWrite(t, b, "two")
	unblocked := false
	closed := make(chan error, 1)
	go func() { closed <- b.Close(func() { unblocked = true }) }()
	waitFor(t, "Close to begin", b.isClosing) // with "one" still being written
	data, _ := readN(t, peer, len("onetwo"))
	if string(data) != "onetwo" {
		t.Fatalf("peer read %q", data)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !unblocked {
		t.Error("Close did not call unblock with writes pending")
	}
	if _, err := b.Write([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Write(make([]byte, direct)); !errors.Is(err, ErrClosed) {
		t.Fatalf("large Write after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(nil); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestBatchCloseIdle: Close with nothing pending returns at once, without
// calling unblock.
func TestBatchCloseIdle(t *testing.T) {
	var out testnet.SyncBuffer
	b := New(&out, Options{})
	mustWrite(t, b, "x")
	waitFor(t, "the write", func() bool { busy, _ := b.state(); return !busy && out.String() == "x" })
	if err := b.Close(func() { t.Error("unblock called with nothing pending") }); err != nil {
		t.Fatal(err)
	}
}

// TestBatchCloseUnblock: a write that would block forever is ended by what
// unblock does (here: a past write deadline), and Close returns its error.
func TestBatchCloseUnblock(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := New(c, Options{})
	mustWrite(t, b, "never read")
	waitBusy(t, b)
	err := b.Close(func() { c.SetWriteDeadline(time.Now()) })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Close: %v, want the write's deadline error", err)
	}
}

// TestBatchWriteError: the error of a failed write to the connection is
// returned by the writes after it, and the flusher ends.
func TestBatchWriteError(t *testing.T) {
	c, peer := net.Pipe()
	b := New(c, Options{})
	defer b.Close(nil)
	mustWrite(t, b, "lost")
	waitBusy(t, b)
	peer.Close() // the blocked write fails
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the flusher did not end after a write error")
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write after a failed write: %v, want the failure (io.ErrClosedPipe)", err)
	}
	if _, err := b.Write(make([]byte, direct)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("large Write after a failed write: %v, want io.ErrClosedPipe", err)
	}
}

// TestBatchBackpressure: Write waits while maxPending bytes are pending,
// and goes on once the peer reads.
func TestBatchBackpressure(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := New(c, Options{})
	defer b.Close(nil)
	mustWrite(t, b, "x")
	waitBusy(t, b)
	chunk := make([]byte, direct-1)
	total := 1
	for total < 1+maxPending {
		mustWrite(t, b, string(chunk))
		total += len(chunk)
	}
	wrote := make(chan struct{})
	go func() {
		b.Write([]byte("y"))
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatalf("Write returned with %d bytes pending", total-1)
	case <-time.After(50 * time.Millisecond):
	}
	data, _ := readN(t, peer, total+1)
	<-wrote
	if data[len(data)-1] != 'y' {
		t.Fatal("the last byte read is not the last written")
	}
}

func mustWrite(t *testing.T, c io.Writer, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
	}
}

// gateWriter's writes wait until release is closed.
type gateWriter struct{ release chan struct{} }

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.release
	return len(p), nil
}

// TestBatchCloseRacesLargeWrite: Close coming as a write ends and a large
// Write waits for its turn never leaves the flusher asleep (the large
// Write that gives up must wake it). The interleaving is rare: many tries.
func TestBatchCloseRacesLargeWrite(t *testing.T) {
	large := make([]byte, direct)
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
		g := &gateWriter{release: make(chan struct{})}
		b := New(g, Options{})
		mustWrite(t, b, "abc")
		spin(t, func() bool { busy, _ := b.state(); return busy })
		wrote := make(chan struct{})
		go func() {
			b.Write(large)
			close(wrote)
		}()
		spin(t, func() bool { _, n := b.state(); return n > 0 })
		close(g.release)
		closed := make(chan struct{})
		go func() {
			b.Close(nil)
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("try %d: Close still waiting after 5s", i)
		}
		<-wrote
	}
}

// spin waits, without sleeping, until cond holds (at most 5s).
func spin(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		runtime.Gosched()
	}
}

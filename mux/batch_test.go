package mux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// waitBusy waits until b's flusher (or a direct Write) is inside a Write
// to the connection underneath.
func waitBusy(t *testing.T, b *batchConn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		busy := b.busy
		b.mu.Unlock()
		if busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no write to the connection began")
}

// waitDirect waits until a large Write waits for its turn.
func waitDirect(t *testing.T, b *batchConn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		n := b.direct
		b.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the large Write did not begin to wait")
}

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
	b := BatchWrites(c).(*batchConn)
	defer b.Close()

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
	b := BatchWrites(c).(*batchConn)
	defer b.Close()

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
	if len(pieces) != 3 || pieces[1] != batchRecord {
		t.Fatalf("peer read pieces %v, want [4 %d %d]", pieces, batchRecord, len(want)-4-batchRecord)
	}
}

// TestBatchOrder: many writes of mixed sizes arrive whole and in order
// over TCP.
func TestBatchOrder(t *testing.T) {
	c, peer := tcpPair(t)
	b := BatchWrites(c)
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(peer)
		got <- data
	}()
	for i := range 2000 {
		size := 1 + i%97
		if i%250 == 0 {
			size = batchDirect + i
		}
		p := bytes.Repeat([]byte{byte(i)}, size)
		want.Write(p)
		if n, err := b.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if data := <-got; !bytes.Equal(data, want.Bytes()) {
		t.Fatalf("peer read %d bytes, want %d, or other bytes", len(data), want.Len())
	}
}

// TestBatchCloseFlushes: Close sends what is pending before closing.
func TestBatchCloseFlushes(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := BatchWrites(c).(*batchConn)
	mustWrite(t, b, "one")
	waitBusy(t, b)
	mustWrite(t, b, "two")
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	data, _ := readN(t, peer, len("onetwo"))
	if string(data) != "onetwo" {
		t.Fatalf("peer read %q", data)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after Close: %v, want EOF", err)
	}
	if _, err := b.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestBatchCloseBounded: a peer that reads nothing holds Close for at
// most batchCloseFlush.
func TestBatchCloseBounded(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := BatchWrites(c).(*batchConn)
	mustWrite(t, b, "never read")
	waitBusy(t, b)
	start := time.Now()
	b.Close()
	if took := time.Since(start); took > batchCloseFlush+4*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if _, err := peer.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("peer read %v after Close, want EOF", err)
	}
}

// TestBatchWriteError: the error of a failed write to the connection is
// returned by the writes after it, and the flusher ends.
func TestBatchWriteError(t *testing.T) {
	c, peer := net.Pipe()
	b := BatchWrites(c).(*batchConn)
	defer b.Close()
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
	if _, err := b.Write(make([]byte, batchDirect)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("large Write after a failed write: %v, want io.ErrClosedPipe", err)
	}
}

// TestBatchBackpressure: Write waits while batchMax bytes are pending,
// and goes on once the peer reads.
func TestBatchBackpressure(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	b := BatchWrites(c).(*batchConn)
	defer b.Close()
	mustWrite(t, b, "x")
	waitBusy(t, b)
	chunk := make([]byte, batchDirect-1)
	total := 1
	for total < 1+batchMax {
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

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
	}
}

package yamux

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"time"
)

// These tests cover the receive path's direct delivery: the receive loop
// hands a frame to the stream's direct receiver while a Read waits with
// nothing buffered (SetDirectReceiver).

// receivePair returns a client and a server session on loopback TCP, with a
// receive budget when budget is not 0, closed at the end of the test.
func receivePair(t *testing.T, budget uint32) (*Session, *Session) {
	t.Helper()
	c, s := loopbackPair(t)
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = 10 * time.Second
	conf.SessionReceiveBudget = budget
	client, err := Client(c, conf)
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(s, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// openPair opens a stream from client, sends one byte so that the server
// accepts it (the SYN frame is never delivered directly), and returns both
// ends with that byte read.
func openPair(t *testing.T, client, server *Session) (*Stream, *Stream) {
	t.Helper()
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return st, peer
}

// pattern returns n bytes of a sequence no shift of which matches itself
// over 64 KiB, so a reordering shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// relay consumes a stream as a relay does: a direct receiver that takes a
// random part of each frame (sometimes none, sometimes all), and a loop
// that Reads and appends in turn. It deliberately shares out between the
// two without a lock of its own: the stream's receive lock must order them,
// and the race detector checks that it does.
type relay struct {
	out      []byte
	direct   int // bytes the receiver took
	calls    int
	rng      *rand.Rand
	takeAll  bool
	readErr  error
	readByte int // bytes Read returned
}

func (r *relay) receive(p []byte) int {
	r.calls++
	n := len(p)
	if !r.takeAll {
		switch r.rng.Intn(4) {
		case 0:
			n = 0
		case 1:
			n = r.rng.Intn(len(p) + 1)
		}
	}
	r.out = append(r.out, p[:n]...)
	r.direct += n
	return n
}

func (r *relay) run(st *Stream) {
	buf := make([]byte, 4096)
	for {
		n, err := st.Read(buf)
		r.out = append(r.out, buf[:n]...)
		r.readByte += n
		if err != nil {
			r.readErr = err
			return
		}
	}
}

// TestDirectReceiveOrder: 6 MiB written in pieces of 1 byte to 70 KiB reach
// the relay whole and in order, whether the direct receiver takes a frame,
// part of it or none, with and without a receive budget, with a busy
// goroutine beside; the stream ends with io.EOF.
func TestDirectReceiveOrder(t *testing.T) {
	for _, budget := range []uint32{0, 1 << 20} {
		t.Run(map[bool]string{true: "budget", false: "no budget"}[budget != 0], func(t *testing.T) {
			stop := busyLoop()
			defer stop()
			client, server := receivePair(t, budget)
			st, peer := openPair(t, client, server)
			r := &relay{rng: rand.New(rand.NewSource(1))}
			peer.SetDirectReceiver(r.receive)
			done := make(chan struct{})
			go func() { defer close(done); r.run(peer) }()

			want := pattern(6 << 20)
			rng := rand.New(rand.NewSource(2))
			for rest := want; len(rest) > 0; {
				n := 1 + rng.Intn(70<<10)
				if rng.Intn(3) == 0 {
					n = 1 + rng.Intn(200) // small frames, as queries are
				}
				n = minInt(n, len(rest))
				if _, err := st.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			st.Close()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the relay did not reach the end of the stream within 20s")
			}
			if r.readErr != io.EOF {
				t.Fatalf("the stream ended with %v, want io.EOF", r.readErr)
			}
			if !bytes.Equal(r.out, want) {
				i := 0
				for i < len(r.out) && i < len(want) && r.out[i] == want[i] {
					i++
				}
				t.Fatalf("relay got %d bytes, want %d; first difference at byte %d", len(r.out), len(want), i)
			}
			if r.direct == 0 || r.readByte == 0 {
				t.Errorf("direct receiver took %d bytes and Read returned %d; want both > 0 (the test must cover both ways)", r.direct, r.readByte)
			}
			if budget != 0 {
				if used := server.recvUsed.Load(); used != 0 {
					t.Errorf("session receive budget shows %d bytes used after everything was read, want 0", used)
				}
			}
		})
	}
}

// TestDirectReceiveWindow: a receiver that takes everything still gets the
// window updates sent (by the waiting Read): 8 MiB in 16 KiB writes flow
// through a 256 KiB window without the writer stalling.
func TestDirectReceiveWindow(t *testing.T) {
	client, server := receivePair(t, 0)
	st, peer := openPair(t, client, server)
	r := &relay{takeAll: true}
	peer.SetDirectReceiver(r.receive)
	done := make(chan struct{})
	go func() { defer close(done); r.run(peer) }()
	want := pattern(8 << 20)
	wrote := make(chan error, 1)
	go func() {
		for rest := want; len(rest) > 0; rest = rest[16<<10:] {
			if _, err := st.Write(rest[:16<<10]); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- st.Close()
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the writer stalled: no window update reached it within 20s")
	}
	<-done
	if !bytes.Equal(r.out, want) {
		t.Fatalf("relay got %d bytes, want %d (or in another order)", len(r.out), len(want))
	}
	// Frames that come while the relay is between two Reads (appending,
	// sending the update) are buffered: most, not all, go directly.
	if r.direct == 0 {
		t.Errorf("direct receiver took nothing of %d bytes", len(want))
	}
}

// TestDirectReceiveReset: what was delivered before a reset by the peer
// stays delivered, and the waiting Read returns ErrConnectionReset.
func TestDirectReceiveReset(t *testing.T) {
	client, server := receivePair(t, 0)
	st, peer := openPair(t, client, server)
	r := &relay{takeAll: true}
	peer.SetDirectReceiver(r.receive)
	done := make(chan struct{})
	go func() { defer close(done); r.run(peer) }()
	if _, err := st.Write([]byte("before the reset")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return taken(peer, 16) })
	if err := st.Reset(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the Read did not wake on the reset within 5s")
	}
	if !errors.Is(r.readErr, ErrConnectionReset) {
		t.Errorf("Read returned %v, want ErrConnectionReset", r.readErr)
	}
	if string(r.out) != "before the reset" {
		t.Errorf("relay got %q", r.out)
	}
}

// TestDirectReceiveOnlyWhileReading: data that comes while no Read waits
// (after a deadline expired, after the receiver was removed) is buffered
// and read as usual; the receiver is not called.
func TestDirectReceiveOnlyWhileReading(t *testing.T) {
	client, server := receivePair(t, 0)
	st, peer := openPair(t, client, server)
	r := &relay{takeAll: true}
	peer.SetDirectReceiver(r.receive)

	peer.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := peer.Read(make([]byte, 10)); err != ErrTimeout {
		t.Fatalf("Read with an expired deadline returned %v, want ErrTimeout", err)
	}
	peer.SetReadDeadline(time.Time{})
	if _, err := st.Write([]byte("buffered")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return bufferedLen(peer) == 8 })
	if r.calls != 0 {
		t.Fatalf("the receiver was called %d times while no Read waited", r.calls)
	}
	buf := make([]byte, 64)
	if n, err := peer.Read(buf); err != nil || string(buf[:n]) != "buffered" {
		t.Fatalf("Read = %q, %v; want the buffered bytes", buf[:n], err)
	}

	// A Read waits; the receiver is removed meanwhile: the next frame
	// wakes the Read instead.
	got := make(chan string, 1)
	go func() {
		n, _ := peer.Read(buf)
		got <- string(buf[:n])
	}()
	waitFor(t, func() bool { return armed(peer) })
	peer.SetDirectReceiver(nil)
	if _, err := st.Write([]byte("after removal")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "after removal" {
			t.Fatalf("Read returned %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Read did not wake within 5s: a lost wake-up")
	}
	if r.calls != 0 {
		t.Errorf("the receiver was called %d times, want 0", r.calls)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func bufferedLen(s *Stream) int {
	s.recvLock.Lock()
	defer s.recvLock.Unlock()
	return s.recvBuf.Len()
}

func armed(s *Stream) bool {
	s.recvLock.Lock()
	defer s.recvLock.Unlock()
	return s.directArmed
}

// taken reports whether st's receive window shows n bytes received since
// the stream opened (the byte openPair read aside).
func taken(st *Stream, n uint32) bool {
	st.recvLock.Lock()
	defer st.recvLock.Unlock()
	return initialStreamWindow-st.recvWindow >= n+1
}

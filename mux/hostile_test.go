package mux

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// A client with a valid certificate that speaks raw yamux frames, against
// a server session set up as the gateway sets it up (Config, SessionConn,
// refusals with Refuse, a per-session cap on accepted streams).

// yamux frame types and flags (the wire protocol, spec.md of yamux).
const (
	frameData, frameWindowUpdate, framePing = 0, 1, 2
	flagSYN, flagACK, flagFIN, flagRST      = 1, 2, 4, 8
	yamuxHeader                             = 12
	initialWindow                           = 256 << 10
)

func appendFrame(b []byte, typ byte, flags uint16, id, length uint32) []byte {
	var h [yamuxHeader]byte
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	return append(b, h[:]...)
}

// syncWriter is a log destination safe for concurrent use.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) lines(substr string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, l := range strings.Split(w.b.String(), "\n") {
		if l != "" && strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// hostileTarget is the server end: it holds up to maxStreams accepted
// streams without reading them (a backend that does not read) and refuses
// the others as the gateway does.
type hostileTarget struct {
	sess *yamux.Session
	logs *syncWriter
	mu   sync.Mutex
	held []*Stream
	wg   sync.WaitGroup
	// maxAccepted is the most accepted streams seen at once.
	maxAccepted int
}

func startHostileTarget(t testing.TB, maxStreams int) (*hostileTarget, *hostilePeer) {
	t.Helper()
	tc, ts := tlsPair(t)
	h := &hostileTarget{logs: new(syncWriter)}
	conf := Config(zerolog.New(h.logs).Level(zerolog.DebugLevel))
	conf.EnableKeepAlive = false // the gateway runs KeepAlive instead
	sc := NewSessionConn(ts)
	sess, err := yamux.Server(sc, conf)
	if err != nil {
		t.Fatal(err)
	}
	h.sess = sess
	h.wg.Go(func() {
		for {
			ys, err := sess.AcceptStream()
			if err != nil {
				return
			}
			st := Wrap(ys)
			sc.Track(st)
			n := sess.NumAcceptedStreams()
			h.mu.Lock()
			h.maxAccepted = max(h.maxAccepted, n)
			if n <= maxStreams {
				h.held = append(h.held, st)
				h.mu.Unlock()
				continue
			}
			h.mu.Unlock()
			h.wg.Go(func() {
				_ = st.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_ = Refuse(st, Response{Status: StatusOverloaded, Reason: "too many streams on this connection"})
			})
		}
	})
	t.Cleanup(func() {
		sess.Close()
		h.mu.Lock()
		for _, st := range h.held {
			st.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h, &hostilePeer{t: t, conn: tc, pongs: make(chan uint32, 64), resets: map[uint32]bool{}}
}

type hostilePeer struct {
	t      testing.TB
	conn   *tls.Conn
	pongs  chan uint32
	mu     sync.Mutex
	resets map[uint32]bool
}

func (p *hostilePeer) write(b []byte) error {
	_ = p.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	_, err := p.conn.Write(b)
	return err
}

// read reads the server's frames until the connection ends: it answers
// pings, records RSTs and passes ping answers on.
func (p *hostilePeer) read() {
	go func() {
		defer close(p.pongs)
		h := make([]byte, yamuxHeader)
		for {
			if _, err := io.ReadFull(p.conn, h); err != nil {
				return
			}
			typ, flags := h[1], binary.BigEndian.Uint16(h[2:])
			id, length := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
			switch {
			case typ == frameData:
				if _, err := io.CopyN(io.Discard, p.conn, int64(length)); err != nil {
					return
				}
			case typ == framePing && flags&flagSYN != 0:
				go p.write(appendFrame(nil, framePing, flagACK, 0, length))
			case typ == framePing && flags&flagACK != 0:
				p.pongs <- length
			}
			if flags&flagRST != 0 {
				p.mu.Lock()
				p.resets[id] = true
				p.mu.Unlock()
			}
		}
	}()
}

func (p *hostilePeer) numResets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.resets)
}

// sync pings the server and waits for the answer: every frame written
// before has been handled.
func (p *hostilePeer) sync() {
	p.t.Helper()
	if err := p.write(appendFrame(nil, framePing, flagSYN, 0, 0xfeed)); err != nil {
		p.t.Fatalf("sync: %v", err)
	}
	select {
	case id := <-p.pongs:
		if id != 0xfeed {
			p.t.Fatalf("sync: answer %d", id)
		}
	case <-time.After(20 * time.Second):
		p.t.Fatal("sync: no answer")
	}
}

type memUsage struct {
	goroutines int
	heap, rss  uint64
}

func memNow() memUsage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memUsage{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse, rss: rss()}
}

// rss is the resident set of this process (Linux), 0 elsewhere.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func checkGrowth(t testing.TB, what string, before memUsage, goroutines int, heap uint64) {
	t.Helper()
	after := memNow()
	t.Logf("%s: goroutines %d -> %d, heap in use %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB", what,
		before.goroutines, after.goroutines, float64(before.heap)/(1<<20), float64(after.heap)/(1<<20),
		float64(before.rss)/(1<<20), float64(after.rss)/(1<<20))
	if d := after.goroutines - before.goroutines; d > goroutines {
		t.Errorf("%s: goroutines grew by %d, want at most %d", what, d, goroutines)
	}
	if after.heap > before.heap && after.heap-before.heap > heap {
		t.Errorf("%s: heap in use grew by %.1f MiB, want at most %d MiB", what, float64(after.heap-before.heap)/(1<<20), heap>>20)
	}
}

// peakHeap samples HeapInuse every few milliseconds until stop is called,
// which returns the highest value seen.
func peakHeap() (stop func() uint64) {
	done := make(chan struct{})
	peak := make(chan uint64, 1)
	go func() {
		var m runtime.MemStats
		var most uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			most = max(most, m.HeapInuse)
			select {
			case <-done:
				peak <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

func checkPeak(t testing.TB, what string, before memUsage, peak, limit uint64) {
	t.Helper()
	t.Logf("%s: peak heap in use %.1f MiB (%.1f before)", what, float64(peak)/(1<<20), float64(before.heap)/(1<<20))
	if peak > before.heap && peak-before.heap > limit {
		t.Errorf("%s: heap in use peaked %.1f MiB above the start, want at most %d MiB", what, float64(peak-before.heap)/(1<<20), limit>>20)
	}
}

// checkStillServed runs a well-behaved client session through the mux
// test gateway in the same process.
func checkStillServed(t testing.TB) {
	t.Helper()
	be := startBackend(t, echo)
	g := startGateway(t, true, routeTo(map[string]string{"echo": be.addr()}))
	c := newClient(t, g, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Open(ctx, "echo")
	if err != nil {
		t.Fatalf("a well-behaved session: %v", err)
	}
	defer st.Close()
	roundTrip(t, st, "still served")
}

// TestHostileRefusedStreamsBounded: data sent on streams the server
// refuses, or that wait in the backlog, does not pile up: 50 streams and
// then 1,000 streams with their whole initial window, then 4 MiB more on
// each of the first 50 once refused.
func TestHostileRefusedStreamsBounded(t *testing.T) {
	before := memNow()
	stopPeak := peakHeap()
	const maxStreams = 4
	h, p := startHostileTarget(t, maxStreams)
	p.read()

	body := make([]byte, initialWindow)
	var id uint32 = 1
	open := func(n int, size int) (first uint32) {
		first = id
		for i := 0; i < n; i++ {
			b := appendFrame(make([]byte, 0, yamuxHeader+size), frameData, flagSYN, id, uint32(size))
			if err := p.write(append(b, body[:size]...)); err != nil {
				t.Fatalf("stream %d: %v", id, err)
			}
			id += 2
		}
		return first
	}
	first := open(50, initialWindow)
	p.sync()
	eventually(t, 10*time.Second, "50 streams refused or reset", func() bool { return p.numResets() >= 50-maxStreams })
	// 4 MiB more on each refused stream: the server dropped them, the
	// data is read and thrown away.
	chunk := appendFrame(nil, frameData, 0, 0, 64<<10)
	chunk = append(chunk, make([]byte, 64<<10)...)
	for sid := first; sid < first+2*50; sid += 2 {
		p.mu.Lock()
		reset := p.resets[sid]
		p.mu.Unlock()
		if !reset {
			continue
		}
		binary.BigEndian.PutUint32(chunk[4:], sid)
		for n := 0; n < 4<<20; n += 64 << 10 {
			if err := p.write(chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	open(1000, 255<<10)
	p.sync()
	eventually(t, 20*time.Second, "the streams over the cap refused or reset", func() bool {
		return p.numResets() >= 1050-maxStreams && h.sess.NumStreams() == maxStreams
	})
	if h.sess.IsClosed() {
		t.Fatal("session closed: a refused stream's data must not end the session")
	}
	if n := h.sess.NumAcceptedStreams(); n != maxStreams {
		t.Fatalf("NumAcceptedStreams %d, want the %d held", n, maxStreams)
	}
	h.mu.Lock()
	most := h.maxAccepted
	h.mu.Unlock()
	t.Logf("up to %d accepted streams at once (the held ones and those being refused)", most)
	// Everything the peer sent is dropped but the held streams' windows:
	// well under the budget in use, far from the 1 GiB sent.
	checkPeak(t, "1,050 refused streams", before, stopPeak(), 64<<20)
	checkGrowth(t, "1,050 refused streams", before, 40, 3*SessionReceiveBudget)
	if n := h.logs.lines("yamux"); n > 10 {
		t.Errorf("%d yamux log lines", n)
	}
	checkStillServed(t)
}

// TestHostilePingFlood: 200,000 pings whose answers are never read close
// the session (one log line), with no goroutine per ping.
func TestHostilePingFlood(t *testing.T) {
	before := memNow()
	stopPeak := peakHeap()
	h, p := startHostileTarget(t, 4)
	batch := make([]byte, 0, 1000*yamuxHeader)
	sent := 0
	for ; sent < 200_000; sent += 1000 {
		batch = batch[:0]
		for i := 0; i < 1000; i++ {
			batch = appendFrame(batch, framePing, flagSYN, 0, uint32(sent+i))
		}
		if err := p.write(batch); err != nil {
			break
		}
	}
	select {
	case <-h.sess.CloseChan():
	case <-time.After(20 * time.Second):
		t.Fatalf("session still open after %d pings whose answers were not read", sent)
	}
	checkPeak(t, "ping flood", before, stopPeak(), 64<<20)
	checkGrowth(t, "ping flood", before, 10, 32<<20)
	if n := h.logs.lines("flooding"); n != 1 {
		t.Errorf("%d flood lines in the log, want 1", n)
	}
	if n := h.logs.lines("yamux"); n > 3 {
		t.Errorf("%d yamux log lines, want at most 3", n)
	}
	checkStillServed(t)
}

// TestHostileUnknownStreamFrames: 20,000 frames for streams that do not
// exist are dropped, logged a few times, not once each.
func TestHostileUnknownStreamFrames(t *testing.T) {
	before := memNow()
	h, p := startHostileTarget(t, 4)
	p.read()
	var batch []byte
	for i := 0; i < 1000; i++ {
		id := uint32(100_001 + 2*i)
		batch = appendFrame(batch, frameWindowUpdate, 0, id, 1<<20)
		batch = appendFrame(batch, frameData, 0, id, 4)
		batch = append(batch, "data"...)
	}
	for i := 0; i < 10; i++ {
		if err := p.write(batch); err != nil {
			t.Fatal(err)
		}
	}
	p.sync()
	if h.sess.IsClosed() {
		t.Fatal("session closed")
	}
	checkGrowth(t, "unknown-stream frames", before, 10, 16<<20)
	if n := h.logs.lines("yamux"); n > 2 {
		t.Errorf("%d yamux log lines for 20,000 frames, want at most 2", n)
	}
}

// TestRefuseDeliversReason: a client of this package reads the refusal's
// reason although the stream is reset right after it.
func TestRefuseDeliversReason(t *testing.T) {
	g := startGateway(t, true, func(Request) (Response, net.Conn) {
		return Response{Status: StatusForbidden, Reason: "not for you"}, nil
	})
	c := newClient(t, g, nil)
	for i := 0; i < 50; i++ {
		_, err := c.Open(context.Background(), "any")
		var re *RefusedError
		if !errors.As(err, &re) || re.Status != StatusForbidden || re.Reason != "not for you" {
			t.Fatalf("open %d: %v, want the refusal with its reason", i, err)
		}
	}
}

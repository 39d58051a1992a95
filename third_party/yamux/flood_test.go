package yamux

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests play a hostile peer that writes raw frames to a session and
// check what the session may hold: goroutines, heap, buffered bytes, log
// lines.

const testBudget = 1 << 20

func budgetConf() *Config {
	conf := testConfNoKeepAlive()
	conf.AcceptBacklog = 256
	conf.ConnectionWriteTimeout = 10 * time.Second
	conf.MaxStreamWindowSize = 1 << 20
	conf.SessionReceiveBudget = testBudget
	conf.MaxQueuedReplies = 64
	return conf
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func withLog(conf *Config) (*Config, *lockedBuffer) {
	buf := new(lockedBuffer)
	conf.LogOutput = nil
	conf.Logger = log.New(buf, "", 0)
	return conf, buf
}

func frame(msgType uint8, flags uint16, id, length uint32) []byte {
	h := header(make([]byte, headerSize))
	h.encode(msgType, flags, id, length)
	return h
}

// rawPeer is the hostile end of a net.Pipe or TCP connection.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
}

func (p rawPeer) write(b []byte) error {
	_ = p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := p.conn.Write(b)
	return err
}

// readFrames reads frames (skipping data bodies) until fn returns true,
// the connection fails or the deadline passes.
func (p rawPeer) readFrames(d time.Duration, fn func(h header) bool) error {
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	defer p.conn.SetReadDeadline(time.Time{})
	h := header(make([]byte, headerSize))
	for {
		if _, err := io.ReadFull(p.conn, h); err != nil {
			return err
		}
		if h.MsgType() == typeData && h.Length() > 0 {
			if _, err := io.CopyN(io.Discard, p.conn, int64(h.Length())); err != nil {
				return err
			}
		}
		if fn(h) {
			return nil
		}
	}
}

// serve reads what the session writes until the connection closes: it
// answers pings, counts RSTs and passes ping answers to sync.
func (p rawPeer) serve() *peerState {
	ps := &peerState{pongs: make(chan uint32, 16)}
	go func() {
		_ = p.readFrames(time.Hour, func(h header) bool {
			switch {
			case h.MsgType() == typePing && h.Flags()&flagSYN != 0:
				go p.write(frame(typePing, flagACK, 0, h.Length()))
			case h.MsgType() == typePing && h.Flags()&flagACK != 0:
				ps.pongs <- h.Length()
			case h.Flags()&flagRST != 0:
				ps.mu.Lock()
				ps.resets = append(ps.resets, h.StreamID())
				ps.mu.Unlock()
			}
			return false
		})
		close(ps.pongs)
	}()
	return ps
}

type peerState struct {
	pongs  chan uint32
	mu     sync.Mutex
	resets []uint32
}

func (ps *peerState) numResets() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.resets)
}

// sync sends a ping and waits for its answer: the session has then
// handled every frame written before.
func (p rawPeer) sync(ps *peerState) {
	p.t.Helper()
	if err := p.write(frame(typePing, flagSYN, 0, 0xfeed)); err != nil {
		p.t.Fatalf("sync: %v", err)
	}
	select {
	case id, ok := <-ps.pongs:
		if !ok || id != 0xfeed {
			p.t.Fatalf("sync: no answer to the ping")
		}
	case <-time.After(10 * time.Second):
		p.t.Fatalf("sync: no answer to the ping")
	}
}

func serverWithRawPeer(t testing.TB, conf *Config) (*Session, rawPeer) {
	t.Helper()
	a, b := net.Pipe()
	server, err := Server(b, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); a.Close() })
	return server, rawPeer{t: t, conn: a}
}

type usage struct {
	goroutines int
	heap       uint64
}

func measure() usage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse}
}

// checkBounded fails when goroutines or heap grew by more than allowed
// since before.
func checkBounded(t testing.TB, before usage, goroutines int, heap uint64) {
	t.Helper()
	after := measure()
	if d := after.goroutines - before.goroutines; d > goroutines {
		t.Errorf("goroutines grew by %d (%d -> %d), want at most %d", d, before.goroutines, after.goroutines, goroutines)
	}
	if after.heap > before.heap && after.heap-before.heap > heap {
		t.Errorf("heap in use grew by %d MiB, want at most %d MiB", (after.heap-before.heap)>>20, heap>>20)
	}
	t.Logf("goroutines %d -> %d, heap in use %.1f -> %.1f MiB", before.goroutines, after.goroutines,
		float64(before.heap)/(1<<20), float64(after.heap)/(1<<20))
}

func waitClosed(t testing.TB, s *Session, d time.Duration) {
	t.Helper()
	select {
	case <-s.CloseChan():
	case <-time.After(d):
		t.Fatalf("session still open after %v", d)
	}
}

// checkServed opens a well-behaved session in the same process and
// round-trips data on a stream and a ping.
func checkServed(t testing.TB) {
	t.Helper()
	conf := budgetConf()
	conf.LogOutput = io.Discard
	c, sc := loopbackPair(t)
	client, server := testClientServerConfig(t, c, sc, conf, conf.Clone())
	done := make(chan error, 1)
	go func() {
		st, err := server.AcceptStream()
		if err != nil {
			done <- err
			return
		}
		defer st.Close()
		_, err = io.Copy(st, io.LimitReader(st, 3<<20))
		done <- err
	}()
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	go func() { _, _ = st.Write(want) }()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(st, got); err != nil {
		t.Fatalf("second session: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("second session: data differs")
	}
	if err := <-done; err != nil {
		t.Fatalf("second session: %v", err)
	}
	if _, err := client.Ping(); err != nil {
		t.Fatalf("second session ping: %v", err)
	}
}

// loopbackPair is a TCP connection on 127.0.0.1.
func loopbackPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); sc.Close() })
	return c, sc
}

// TestPingFloodNotRead: a peer that sends pings without reading the answers
// makes the session close once MaxQueuedReplies answers wait, with one log
// line, no goroutine per ping and bounded memory.
func TestPingFloodNotRead(t *testing.T) {
	conf, logs := withLog(budgetConf())
	before := measure()
	server, peer := serverWithRawPeer(t, conf)

	batch := make([]byte, 0, 1000*headerSize)
	for i := 0; i < 1000; i++ {
		batch = append(batch, frame(typePing, flagSYN, 0, uint32(i))...)
	}
	sent := 0
	for sent < 200_000 {
		if err := peer.write(batch); err != nil {
			break
		}
		sent += 1000
	}
	waitClosed(t, server, 5*time.Second)
	if sent >= 200_000 {
		t.Errorf("all %d pings were taken although none of the answers was read", sent)
	}
	checkBounded(t, before, 8, 16<<20)
	var flood int
	for _, l := range logs.lines() {
		if strings.Contains(l, "flooding") {
			flood++
		}
	}
	if flood != 1 {
		t.Errorf("%d flood lines in the log, want 1: %q", flood, logs.lines())
	}
	if n := len(logs.lines()); n > 3 {
		t.Errorf("%d log lines, want at most 3: %q", n, logs.lines())
	}
	checkServed(t)
}

// TestPingFloodRead: a peer that reads the answers gets every ping
// answered, with no goroutine per ping.
func TestPingFloodRead(t *testing.T) {
	conf, logs := withLog(budgetConf())
	before := measure()
	server, peer := serverWithRawPeer(t, conf)

	// 200,000 pings, at most 32 unanswered at a time.
	const pings, window = 200_000, 32
	ps := peer.serve()
	batch := make([]byte, 0, window*headerSize)
	for sent := 0; sent < pings; sent += window {
		batch = batch[:0]
		for i := 0; i < window; i++ {
			batch = append(batch, frame(typePing, flagSYN, 0, uint32(sent+i))...)
		}
		if err := peer.write(batch); err != nil {
			t.Fatalf("after %d pings: %v", sent, err)
		}
		for i := 0; i < window; i++ {
			if id, ok := <-ps.pongs; !ok || id != uint32(sent+i) {
				t.Fatalf("answer %d: got %d (%v)", sent+i, id, ok)
			}
		}
	}
	if server.IsClosed() {
		t.Fatal("session closed for a peer that reads its answers")
	}
	checkBounded(t, before, 8, 16<<20)
	if n := len(logs.lines()); n != 0 {
		t.Errorf("log lines: %q", logs.lines())
	}
}

// TestUnknownStreamFlood: frames for streams that do not exist are dropped,
// and logged a few times, not once each.
func TestUnknownStreamFlood(t *testing.T) {
	conf, logs := withLog(budgetConf())
	before := measure()
	server, peer := serverWithRawPeer(t, conf)
	ps := peer.serve()

	var batch []byte
	for i := 0; i < 1000; i++ {
		id := uint32(1001 + 2*i)
		batch = append(batch, frame(typeWindowUpdate, 0, id, 1<<20)...)
		batch = append(batch, frame(typeData, 0, id, 4)...)
		batch = append(batch, "data"...)
	}
	for i := 0; i < 10; i++ { // 20,000 frames
		if err := peer.write(batch); err != nil {
			t.Fatal(err)
		}
	}
	peer.sync(ps)
	if server.IsClosed() {
		t.Fatal("session closed")
	}
	checkBounded(t, before, 8, 16<<20)
	if n := len(logs.lines()); n > 2 {
		t.Errorf("%d log lines for 20,000 frames, want at most 2: %q", n, logs.lines())
	}
}

// TestWindowUpdateFlood: window updates (with stray ACKs) on a known stream
// cost no goroutine, memory or log line, and do not release another
// stream's open slot.
func TestWindowUpdateFlood(t *testing.T) {
	conf, logs := withLog(budgetConf())
	before := measure()
	server, peer := serverWithRawPeer(t, conf)
	ps := peer.serve()

	if err := peer.write(frame(typeWindowUpdate, flagSYN, 1, 0)); err != nil {
		t.Fatal(err)
	}
	st, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var batch []byte
	for i := 0; i < 1000; i++ {
		batch = append(batch, frame(typeWindowUpdate, flagACK, 1, 0)...)
	}
	for i := 0; i < 100; i++ { // 100,000 frames
		if err := peer.write(batch); err != nil {
			t.Fatal(err)
		}
	}
	peer.sync(ps)
	if server.IsClosed() {
		t.Fatal("session closed")
	}
	checkBounded(t, before, 8, 16<<20)
	if n := len(logs.lines()); n != 0 {
		t.Errorf("log lines: %q", logs.lines())
	}
}

// TestStrayACKKeepsOpenSlots: ACKs for an established stream must not free
// the open slot of a stream still in flight.
func TestStrayACKKeepsOpenSlots(t *testing.T) {
	a, b := net.Pipe()
	conf := budgetConf()
	conf.LogOutput = io.Discard
	client, err := Client(b, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer a.Close()
	peer := rawPeer{t: t, conn: a}
	ps := peer.serve()

	s1, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if err := peer.write(frame(typeWindowUpdate, flagACK, s1.id, 0)); err != nil {
		t.Fatal(err)
	}
	s2, err := client.OpenStream() // in flight: the peer never ACKs it
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := 0; i < 10; i++ {
		if err := peer.write(frame(typeWindowUpdate, flagACK, s1.id, 0)); err != nil {
			t.Fatal(err)
		}
	}
	peer.sync(ps) // the ACKs were processed
	if n := len(client.synCh); n != 1 {
		t.Fatalf("open slots taken: %d, want 1 (the stream in flight)", n)
	}
}

// openAndFill opens stream id from the raw peer and sends n bytes on it.
func openAndFill(peer rawPeer, id uint32, n int) error {
	b := frame(typeData, flagSYN, id, uint32(n))
	b = append(b, make([]byte, n)...)
	return peer.write(b)
}

// TestResetFreesBuffer: Reset frees what the stream buffered at once,
// sends an RST, and data arriving after it is dropped.
func TestResetFreesBuffer(t *testing.T) {
	conf := budgetConf()
	conf.LogOutput = io.Discard
	server, peer := serverWithRawPeer(t, conf)
	ps := peer.serve()
	if err := openAndFill(peer, 1, 200<<10); err != nil {
		t.Fatal(err)
	}
	st, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if got := server.recvUsed.Load(); got != 200<<10 {
		t.Fatalf("buffered %d, want %d", got, 200<<10)
	}
	if err := st.Reset(); err != nil {
		t.Fatal(err)
	}
	if got := server.recvUsed.Load(); got != 0 {
		t.Fatalf("buffered after Reset: %d, want 0", got)
	}
	if err := peer.write(append(frame(typeData, 0, 1, 50<<10), make([]byte, 50<<10)...)); err != nil {
		t.Fatal(err)
	}
	peer.sync(ps)
	if ps.numResets() != 1 || ps.resets[0] != 1 {
		t.Fatalf("RSTs for streams %v, want [1]", ps.resets)
	}
	if got := server.recvUsed.Load(); got != 0 {
		t.Fatalf("buffered after data for the reset stream: %d, want 0", got)
	}
	if _, err := st.Read(make([]byte, 10)); err != ErrConnectionReset {
		t.Fatalf("Read after Reset: %v, want ErrConnectionReset", err)
	}
	if _, err := st.Write([]byte("x")); err != ErrConnectionReset {
		t.Fatalf("Write after Reset: %v, want ErrConnectionReset", err)
	}
	if n := server.NumStreams(); n != 0 {
		t.Fatalf("NumStreams after Reset: %d", n)
	}
}

// TestReceiveBudget: a peer that fills the initial window of many streams
// and never sees them read gets streams reset past the budget; the
// session's buffered bytes never exceed it and the session goes on.
func TestReceiveBudget(t *testing.T) {
	conf, logs := withLog(budgetConf())
	before := measure()
	server, peer := serverWithRawPeer(t, conf)
	ps := peer.serve()
	const streams = 200
	for i := 0; i < streams; i++ {
		if err := openAndFill(peer, uint32(1+2*i), int(initialStreamWindow)); err != nil {
			t.Fatal(err)
		}
		if used := server.recvUsed.Load(); used > testBudget {
			t.Fatalf("buffered %d bytes, over the budget %d", used, testBudget)
		}
	}
	peer.sync(ps)
	used := server.recvUsed.Load()
	if used > testBudget || used < testBudget-int64(initialStreamWindow) {
		t.Fatalf("buffered %d bytes, want the budget (%d) nearly full", used, testBudget)
	}
	got := ps.numResets()
	if want := streams - testBudget/int(initialStreamWindow); got != want {
		t.Errorf("%d streams reset, want %d", got, want)
	}
	checkBounded(t, before, 8, 32<<20)
	if n := len(logs.lines()); n > 2 {
		t.Errorf("%d log lines: %q", n, logs.lines())
	}

	// Resetting the accepted streams gives the whole budget back.
	for server.NumStreams() > 0 {
		st, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		st.Reset()
	}
	if used := server.recvUsed.Load(); used != 0 {
		t.Fatalf("buffered after resetting every stream: %d", used)
	}
	if used := server.backlogUsed.Load(); used != 0 {
		t.Fatalf("backlog share after resetting every stream: %d", used)
	}
}

// TestRemoteResetDeliversData: what was written before a Reset is read by
// the peer before it sees ErrConnectionReset; Close frees the rest.
func TestRemoteResetDeliversData(t *testing.T) {
	conf := budgetConf()
	conf.LogOutput = io.Discard
	c, sc := loopbackPair(t)
	client, server := testClientServerConfig(t, c, sc, conf, conf.Clone())

	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	sst, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sst.Write([]byte("refused: too many streams")); err != nil {
		t.Fatal(err)
	}
	if err := sst.Reset(); err != nil {
		t.Fatal(err)
	}
	// The RST follows the answer on the wire: wait until the client has
	// taken both in, so that the reset is seen before the Read.
	deadline := time.Now().Add(5 * time.Second)
	for client.NumStreams() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("no RST at the client")
		}
		time.Sleep(time.Millisecond)
	}
	got, err := io.ReadAll(st)
	if string(got) != "refused: too many streams" || err != ErrConnectionReset {
		t.Fatalf("read %q, %v; want the answer, then ErrConnectionReset", got, err)
	}

	// Unread data of a stream this side opened and the peer reset leaves
	// the budget with the stream, and stays readable.
	st2, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	sst2, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sst2.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if err := sst2.Reset(); err != nil {
		t.Fatal(err)
	}
	for client.NumStreams() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("no RST at the client")
		}
		time.Sleep(time.Millisecond)
	}
	if used := client.recvUsed.Load(); used != 0 {
		t.Fatalf("client budget holds %d for a stream gone from the session", used)
	}
	got, err = io.ReadAll(st2)
	if len(got) != 100<<10 || err != ErrConnectionReset {
		t.Fatalf("read %d bytes, %v; want %d, then ErrConnectionReset", len(got), err, 100<<10)
	}
}

// TestPeerResetFreesData: what the peer sent on a stream it opened and
// then reset is freed at once, accepted or not.
func TestPeerResetFreesData(t *testing.T) {
	conf := budgetConf()
	conf.LogOutput = io.Discard
	server, peer := serverWithRawPeer(t, conf)
	ps := peer.serve()
	for _, id := range []uint32{1, 3} {
		if err := openAndFill(peer, id, 100<<10); err != nil {
			t.Fatal(err)
		}
	}
	st, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{1, 3} { // 3 is still in the backlog
		if err := peer.write(frame(typeWindowUpdate, flagRST, id, 0)); err != nil {
			t.Fatal(err)
		}
	}
	peer.sync(ps)
	if used := server.recvUsed.Load(); used != 0 {
		t.Fatalf("buffered %d after the peer reset its streams", used)
	}
	if n, err := st.Read(make([]byte, 10)); n != 0 || err != ErrConnectionReset {
		t.Fatalf("Read: %d, %v; want ErrConnectionReset", n, err)
	}
	st3, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st3.Read(make([]byte, 10)); n != 0 || err != ErrConnectionReset {
		t.Fatalf("Read of the stream reset in the backlog: %d, %v; want ErrConnectionReset", n, err)
	}
}

// TestClosedStreamLeavesBudget: a stream closed on both sides with unread
// data gives its bytes back to the budget (they stay readable), and data
// the peer sends after its FIN is dropped.
func TestClosedStreamLeavesBudget(t *testing.T) {
	conf := budgetConf()
	conf.LogOutput = io.Discard
	server, peer := serverWithRawPeer(t, conf)
	ps := peer.serve()
	if err := openAndFill(peer, 1, 100<<10); err != nil {
		t.Fatal(err)
	}
	st, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // FIN from this side
	if err := peer.write(frame(typeWindowUpdate, flagFIN, 1, 0)); err != nil {
		t.Fatal(err)
	}
	peer.sync(ps)
	if n := server.NumStreams(); n != 0 {
		t.Fatalf("NumStreams %d after both FINs", n)
	}
	if used := server.recvUsed.Load(); used != 0 {
		t.Fatalf("budget holds %d for a closed stream", used)
	}
	got, err := io.ReadAll(st)
	if len(got) != 100<<10 || err != nil {
		t.Fatalf("read %d bytes, %v; want %d, then EOF", len(got), err, 100<<10)
	}
}

// TestBudgetStarvedStreamWakes: a window update held back because the
// budget is spent goes out once bytes are read elsewhere.
func TestBudgetStarvedStreamWakes(t *testing.T) {
	conf := budgetConf()
	conf.LogOutput = io.Discard
	c, sc := loopbackPair(t)
	client, server := testClientServerConfig(t, c, sc, conf, conf.Clone())

	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := st.Write(make([]byte, 2*initialStreamWindow))
		wrote <- err
	}()
	sst, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer sst.Close()
	buf := make([]byte, initialStreamWindow)
	if _, err := io.ReadFull(sst, buf[:1]); err != nil {
		t.Fatal(err)
	}
	// Pretend other streams hold the whole budget, then read the first
	// window: its update cannot go out.
	server.recvUsed.Add(testBudget)
	if _, err := io.ReadFull(sst, buf[1:]); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		t.Fatalf("write done (%v) although no window could be granted", err)
	case <-time.After(100 * time.Millisecond):
	}
	if n := server.numStarved.Load(); n != 1 {
		t.Fatalf("%d starved streams, want 1", n)
	}
	// The other streams' bytes are read: the update goes out.
	server.releaseRecv(testBudget)
	if _, err := io.ReadFull(sst, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// TestBudgetWindowGrows: a stream read as fast as it comes grows its
// window past the initial 256 KiB, up to MaxStreamWindowSize.
func TestBudgetWindowGrows(t *testing.T) {
	conf := budgetConf()
	conf.LogOutput = io.Discard
	conf.SessionReceiveBudget = 8 << 20
	conf.MaxStreamWindowSize = 4 << 20
	c, sc := loopbackPair(t)
	client, server := testClientServerConfig(t, c, sc, conf, conf.Clone())

	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const total = 64 << 20
	go func() {
		buf := make([]byte, 32<<10)
		for n := 0; n < total; n += len(buf) {
			if _, err := st.Write(buf); err != nil {
				return
			}
		}
	}()
	sst, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer sst.Close()
	if _, err := io.CopyN(io.Discard, sst, total); err != nil {
		t.Fatal(err)
	}
	sst.controlHdrLock.Lock()
	target := sst.recvTarget
	sst.controlHdrLock.Unlock()
	if target <= initialStreamWindow || target > conf.MaxStreamWindowSize {
		t.Fatalf("window %d, want more than %d and at most %d", target, initialStreamWindow, conf.MaxStreamWindowSize)
	}
	t.Logf("window grew to %d KiB", target>>10)
}

// TestNumAcceptedStreams: only accepted streams count, until they are
// closed on both sides or reset.
func TestNumAcceptedStreams(t *testing.T) {
	server, peer := serverWithRawPeer(t, budgetConf())
	ps := peer.serve()
	for i := 0; i < 10; i++ {
		if err := openAndFill(peer, uint32(1+2*i), 16); err != nil {
			t.Fatal(err)
		}
	}
	var accepted []*Stream
	for i := 0; i < 3; i++ {
		st, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, st)
	}
	peer.sync(ps)
	if n, a := server.NumStreams(), server.NumAcceptedStreams(); n != 10 || a != 3 {
		t.Fatalf("NumStreams %d NumAcceptedStreams %d, want 10 and 3", n, a)
	}
	_ = accepted[0].Reset()
	if a := server.NumAcceptedStreams(); a != 2 {
		t.Fatalf("after Reset: %d accepted, want 2", a)
	}
	_ = accepted[1].Close() // FIN from this side: still open
	if a := server.NumAcceptedStreams(); a != 2 {
		t.Fatalf("after a half-close: %d accepted, want 2", a)
	}
	if err := peer.write(frame(typeWindowUpdate, flagFIN, accepted[1].id, 0)); err != nil {
		t.Fatal(err)
	}
	if err := peer.write(frame(typeWindowUpdate, flagRST, accepted[2].id, 0)); err != nil {
		t.Fatal(err)
	}
	peer.sync(ps)
	if a := server.NumAcceptedStreams(); a != 0 {
		t.Fatalf("after FIN and RST from the peer: %d accepted, want 0", a)
	}
	if n := server.NumStreams(); n != 7 {
		t.Fatalf("NumStreams %d, want the 7 in the backlog", n)
	}
}

// TestBudgetManyBusyStreams: a well-behaved peer writing on many accepted
// streams at once, more than the budget in flight, is slowed down, never
// reset, and every byte arrives. (Streams still in the backlog would be
// reset past the budget: that is the bound on what a peer can make the
// backlog hold.)
func TestBudgetManyBusyStreams(t *testing.T) {
	conf := budgetConf()
	conf.LogOutput = io.Discard
	c, sc := loopbackPair(t)
	client, server := testClientServerConfig(t, c, sc, conf, conf.Clone())

	const streams, size = 64, 1 << 20 // 64 MiB, 16 MiB of initial windows, 1 MiB budget
	errs := make(chan error, 2*streams)
	var opened, accepted []*Stream
	for i := 0; i < streams; i++ {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, st)
		sst, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, sst)
	}
	var wg sync.WaitGroup
	for _, st := range opened {
		st := st
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.Close()
			b := bytes.Repeat([]byte{byte(st.id)}, size)
			if _, err := st.Write(b); err != nil {
				errs <- err
			}
		}()
	}
	for _, st := range accepted {
		st := st
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.Close()
			time.Sleep(50 * time.Millisecond) // let the initial windows fill
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, bytes.Repeat([]byte{byte(st.id)}, size)) {
				errs <- errors.New("data differs")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A FIN that crosses this side's RST (the peer closed its end while this
// side reset the stream, before the stream left the session) is no protocol
// error: the stream stays reset and the session goes on.
func TestFINCrossingLocalReset(t *testing.T) {
	client, server := testClientServer(t)
	defer client.Close()
	defer server.Close()
	cs, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	ss, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	ss.stateLock.Lock()
	ss.state = streamReset // as abort leaves it, just before closeStream
	ss.stateLock.Unlock()
	if err := ss.processFlags(flagFIN); err != nil {
		t.Fatalf("FIN on a stream reset here: %v; want it ignored", err)
	}
	if server.IsClosed() {
		t.Fatal("the session closed")
	}
}

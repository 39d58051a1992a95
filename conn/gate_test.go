package conn_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/rs/zerolog"
)

// rules returns a Holder with the rules of list (the --allow syntax).
func rules(t *testing.T, list string) *acl.Holder {
	t.Helper()
	rs, err := acl.ParseList(list)
	if err != nil {
		t.Fatal(err)
	}
	set, err := acl.New(rs)
	if err != nil {
		t.Fatal(err)
	}
	h := new(acl.Holder)
	h.Store(set)
	return h
}

// logBuf collects log lines; safe for concurrent use.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// events returns the log lines, decoded.
func (b *logBuf) events(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var evs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// spyListener records the connections it accepts and what is done to them.
type spyListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*spyConn
}

func (l *spyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &spyConn{Conn: c}
	sc.linger.Store(-2)
	l.mu.Lock()
	l.conns = append(l.conns, sc)
	l.mu.Unlock()
	return sc, nil
}

func (l *spyListener) accepted() []*spyConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*spyConn(nil), l.conns...)
}

type spyConn struct {
	net.Conn
	reads, closes atomic.Int32
	linger        atomic.Int32 // -2: SetLinger not called
}

func (c *spyConn) Read(p []byte) (int, error) { c.reads.Add(1); return c.Conn.Read(p) }
func (c *spyConn) Close() error               { c.closes.Add(1); return c.Conn.Close() }
func (c *spyConn) CloseWrite() error          { return c.Conn.(*net.TCPConn).CloseWrite() }
func (c *spyConn) SetLinger(sec int) error {
	c.linger.Store(int32(sec))
	return c.Conn.(*net.TCPConn).SetLinger(sec)
}

// listen listens on addr (loopback) and wraps the listener in a spy and a
// Gate; the Gate is closed at the end of the test.
func listen(t *testing.T, network, addr string, cfg conn.GateConfig) (*conn.Gate, *spyListener) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyListener{Listener: ln}
	g := conn.NewGate(spy, cfg)
	t.Cleanup(func() { _ = g.Close() })
	return g, spy
}

// dialFrom connects to addr from the local address from (port 0).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type accepted struct {
	c   net.Conn
	err error
}

// acceptAsync runs one Accept; the result arrives on the channel.
func acceptAsync(g *conn.Gate) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := g.Accept()
		ch <- accepted{c, err}
	}()
	return ch
}

// waitAccept waits for an Accept started by acceptAsync.
func waitAccept(t *testing.T, ch <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-ch:
		if a.c != nil {
			t.Cleanup(func() { _ = a.c.Close() })
		}
		return a
	case <-time.After(ioTimeout):
		t.Fatal("Accept did not return")
	}
	return accepted{}
}

// notYet checks that the Accept has not returned within d.
func notYet(t *testing.T, ch <-chan accepted, d time.Duration, why string) {
	t.Helper()
	select {
	case a := <-ch:
		if a.c != nil {
			_ = a.c.Close()
		}
		t.Fatalf("%s: Accept returned %v, %v", why, a.c, a.err)
	case <-time.After(d):
	}
}

// waitDenied waits until the gate has denied n connections.
func waitDenied(t *testing.T, g *conn.Gate, n uint64) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		if _, d := g.Counts(); d >= n {
			if d > n {
				t.Fatalf("denied %d, want %d", d, n)
			}
			return
		}
		if time.Now().After(deadline) {
			_, d := g.Counts()
			t.Fatalf("denied %d after %v, want %d", d, ioTimeout, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// denied is a connection from an address the gate denies: the dial itself
// may already see the reset.
type denied struct {
	c   net.Conn // nil when the dial was reset
	err error
}

// dialDenied connects from the local address from to addr, where the gate
// denies the connection at once: the reset arrives either as the dial's
// error or on the connection.
func dialDenied(t *testing.T, from, addr string) denied {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial %s from %s: %v, want success or a reset", addr, from, err)
		}
		return denied{err: err}
	}
	t.Cleanup(func() { _ = c.Close() })
	return denied{c: c}
}

// expectReset checks that the gate reset the connection without sending
// any byte.
func expectReset(t *testing.T, d denied) {
	t.Helper()
	if d.c == nil {
		return // reset during the dial
	}
	_ = d.c.SetReadDeadline(time.Now().Add(ioTimeout))
	n, err := d.c.Read(make([]byte, 16))
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("denied connection: read %d bytes, %v; want a reset", n, err)
	}
}

func TestGateDenies(t *testing.T) {
	var logs logBuf
	g, spy := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: rules(t, "127.0.0.1"), Log: zerolog.New(&logs)})
	addr := g.Addr().String()
	ch := acceptAsync(g)

	den := dialDenied(t, "127.0.0.2", addr)
	waitDenied(t, g, 1)
	expectReset(t, den)
	notYet(t, ch, 50*time.Millisecond, "a denied connection")

	sc := spy.accepted()
	if len(sc) != 1 {
		t.Fatalf("the listener accepted %d connections, want 1", len(sc))
	}
	if r, cl, l := sc[0].reads.Load(), sc[0].closes.Load(), sc[0].linger.Load(); r != 0 || cl != 1 || l != 0 {
		t.Errorf("denied connection: %d reads, %d closes, linger %d; want 0 reads, closed once with linger 0", r, cl, l)
	}

	allowed := dialFrom(t, "127.0.0.1", addr)
	a := waitAccept(t, ch)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if got, want := conn.RemoteAddrPort(a.c), allowed.LocalAddr().(*net.TCPAddr).AddrPort(); got != want {
		t.Errorf("Accept returned the connection from %v, want %v", got, want)
	}
	// The allowed connection is usable both ways.
	if _, err := allowed.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = a.c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(a.c, buf); err != nil || string(buf) != "ping" {
		t.Errorf("read %q, %v", buf, err)
	}
	if al, de := g.Counts(); al != 1 || de != 1 {
		t.Errorf("Counts() = %d allowed, %d denied; want 1, 1", al, de)
	}

	evs := logs.events(t)
	if len(evs) != 1 {
		t.Fatalf("%d log events, want 1: %v", len(evs), evs)
	}
	ev := evs[0]
	peer, _ := ev["peer"].(string)
	if den.c != nil && peer != den.c.LocalAddr().String() {
		t.Errorf("deny event peer %q, want %v", peer, den.c.LocalAddr())
	}
	if ev["event"] != "deny" || !strings.HasPrefix(peer, "127.0.0.2:") || ev["rule"] != "denied: no rule matches" || ev["level"] != "info" {
		t.Errorf("deny event %v", ev)
	}
	if _, ok := ev["suppressed"]; ok {
		t.Errorf("deny event %v has a suppressed count", ev)
	}
}

func TestGateDenyRule(t *testing.T) {
	var logs logBuf
	g, _ := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: rules(t, "127.0.0.0/8,!127.0.0.3"), Log: zerolog.New(&logs)})
	ch := acceptAsync(g)
	c := dialDenied(t, "127.0.0.3", g.Addr().String())
	waitDenied(t, g, 1)
	expectReset(t, c)
	allowed := dialFrom(t, "127.0.0.4", g.Addr().String())
	if a := waitAccept(t, ch); a.err != nil || conn.RemoteAddrPort(a.c).Addr() != netip.MustParseAddr("127.0.0.4") {
		t.Errorf("Accept = %v, %v; want the connection from 127.0.0.4", a.c, a.err)
	}
	_ = allowed
	if evs := logs.events(t); len(evs) != 1 || evs[0]["rule"] != "denied by !127.0.0.3/32 (line 2)" {
		t.Errorf("events %v, want one naming the deny rule", evs)
	}
}

func TestGateNoRulesDeniesAll(t *testing.T) {
	for name, h := range map[string]*acl.Holder{"nil": nil, "empty": new(acl.Holder)} {
		t.Run(name, func(t *testing.T) {
			g, _ := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: h, Log: zerolog.Nop()})
			ch := acceptAsync(g)
			c := dialDenied(t, "127.0.0.1", g.Addr().String())
			waitDenied(t, g, 1)
			expectReset(t, c)
			_ = g.Close()
			if a := waitAccept(t, ch); !errors.Is(a.err, net.ErrClosed) {
				t.Errorf("Accept after Close: %v, want net.ErrClosed", a.err)
			}
		})
	}
}

func TestGateDenyLogRateLimit(t *testing.T) {
	var logs logBuf
	g, _ := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: rules(t, "127.0.0.1"), Log: zerolog.New(&logs),
		DenyLogBurst: 3, DenyLogPerSec: 1})
	var offset atomic.Int64
	base := time.Now()
	conn.SetGateClock(g, func() time.Time { return base.Add(time.Duration(offset.Load())) })
	ch := acceptAsync(g)
	var n uint64
	deny := func(count int) {
		t.Helper()
		for range count {
			n++
			dialDenied(t, "127.0.0.2", g.Addr().String())
			waitDenied(t, g, n)
		}
	}
	suppressed := func() []float64 {
		var s []float64
		for _, ev := range logs.events(t) {
			v, _ := ev["suppressed"].(float64)
			s = append(s, v)
		}
		return s
	}
	check := func(want ...float64) {
		t.Helper()
		if got := suppressed(); !equalFloats(got, want) {
			t.Fatalf("suppressed counts of the events: %v, want %v", got, want)
		}
	}

	deny(5) // a burst of 3, then 2 left out
	check(0, 0, 0)
	offset.Add(int64(time.Second)) // one token
	deny(1)
	check(0, 0, 0, 2)
	deny(1) // no token left
	check(0, 0, 0, 2)
	offset.Add(int64(500 * time.Millisecond)) // half a token
	deny(1)
	check(0, 0, 0, 2)
	offset.Add(int64(time.Hour)) // refills to the burst, no more
	deny(4)
	check(0, 0, 0, 2, 2, 0, 0)

	notYet(t, ch, 0, "only denied connections")
	_ = g.Close()
	if a := waitAccept(t, ch); !errors.Is(a.err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", a.err)
	}
	if al, de := g.Counts(); al != 0 || de != 12 {
		t.Errorf("Counts() = %d, %d; want 0, 12", al, de)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGateMaxConns(t *testing.T) {
	g, _ := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: rules(t, "127.0.0.1"), MaxConns: 1, Log: zerolog.Nop()})
	addr := g.Addr().String()

	c1 := dialFrom(t, "127.0.0.1", addr)
	a1 := waitAccept(t, acceptAsync(g))
	if a1.err != nil {
		t.Fatal(a1.err)
	}
	ch := acceptAsync(g)
	c2 := dialFrom(t, "127.0.0.1", addr)
	notYet(t, ch, 300*time.Millisecond, "MaxConns 1 with one open")

	_ = a1.c.Close()
	_ = a1.c.Close() // a second Close gives back nothing more
	a2 := waitAccept(t, ch)
	if a2.err != nil {
		t.Fatal(a2.err)
	}
	if got, want := conn.RemoteAddrPort(a2.c), c2.LocalAddr().(*net.TCPAddr).AddrPort(); got != want {
		t.Errorf("second Accept: connection from %v, want %v", got, want)
	}
	_ = c1

	// The conn from a capped Gate still half-closes.
	cw, ok := a2.c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("the accepted connection has no CloseWrite")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(ioTimeout))
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after CloseWrite the peer read %d, %v; want EOF", n, err)
	}

	// One slot, held by a2: the next Accept blocks until Close.
	ch = acceptAsync(g)
	dialFrom(t, "127.0.0.1", addr)
	notYet(t, ch, 200*time.Millisecond, "the slot is held by the second connection")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if a := waitAccept(t, ch); !errors.Is(a.err, net.ErrClosed) {
		t.Errorf("Accept blocked on MaxConns after Close: %v, want net.ErrClosed", a.err)
	}
}

func TestGateMaxConnsDeniedDoNotCount(t *testing.T) {
	g, _ := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: rules(t, "127.0.0.1"), MaxConns: 1, Log: zerolog.Nop()})
	ch := acceptAsync(g)
	for i := range 3 {
		dialDenied(t, "127.0.0.2", g.Addr().String())
		waitDenied(t, g, uint64(i+1))
	}
	dialFrom(t, "127.0.0.1", g.Addr().String())
	if a := waitAccept(t, ch); a.err != nil {
		t.Fatalf("after 3 denied, the allowed connection: %v", a.err)
	}
}

func TestGateCloseUnblocksAccept(t *testing.T) {
	g, _ := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: rules(t, "127.0.0.1"), Log: zerolog.Nop()})
	ch := acceptAsync(g)
	notYet(t, ch, 50*time.Millisecond, "nothing to accept")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if a := waitAccept(t, ch); !errors.Is(a.err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", a.err)
	}
	if _, err := g.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed Gate: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	// The port is free again.
	ln, err := net.Listen("tcp", g.Addr().String())
	if err != nil {
		t.Fatalf("listening again on the closed Gate's address: %v", err)
	}
	_ = ln.Close()
}

func TestGateIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = ln.Close()
	for _, tt := range []struct {
		rules string
		allow bool
	}{{"::1", true}, {"::/0", true}, {"127.0.0.1,!::1", false}, {"127.0.0.1", false}} {
		t.Run(tt.rules, func(t *testing.T) {
			g, _ := listen(t, "tcp6", "[::1]:0", conn.GateConfig{Rules: rules(t, tt.rules), Log: zerolog.Nop()})
			ch := acceptAsync(g)
			if !tt.allow {
				c := dialDenied(t, "::1", g.Addr().String())
				waitDenied(t, g, 1)
				expectReset(t, c)
				return
			}
			c := dialFrom(t, "::1", g.Addr().String())
			a := waitAccept(t, ch)
			if a.err != nil {
				t.Fatal(a.err)
			}
			if got := conn.RemoteAddrPort(a.c); got.Addr() != netip.IPv6Loopback() || got != c.LocalAddr().(*net.TCPAddr).AddrPort() {
				t.Errorf("RemoteAddrPort = %v", got)
			}
		})
	}
}

// fakeListener hands out the connections of its channel.
type fakeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *fakeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// addrConn is a net.Conn with a chosen remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
	closed atomic.Bool
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }
func (c *addrConn) Close() error         { c.closed.Store(true); return nil }

func TestGateUnmapsAddresses(t *testing.T) {
	fl := &fakeListener{conns: make(chan net.Conn, 4), done: make(chan struct{})}
	g := conn.NewGate(fl, conn.GateConfig{Rules: rules(t, "127.0.0.1,::ffff:10.0.0.0/104"), Log: zerolog.Nop()})
	defer g.Close()
	// net.ParseIP gives the 16-byte form: its AddrPort is ::ffff:127.0.0.1.
	mapped := &addrConn{remote: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000}}
	if ap := mapped.remote.(*net.TCPAddr).AddrPort(); !ap.Addr().Is4In6() {
		t.Fatalf("test setup: %v is not IPv4-mapped", ap)
	}
	denied := &addrConn{remote: &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 5001}}
	tenNet := &addrConn{remote: &net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 5002}}
	fl.conns <- denied
	fl.conns <- mapped
	fl.conns <- tenNet
	c, err := g.Accept()
	if err != nil || c != mapped {
		t.Fatalf("Accept = %v, %v; want the mapped 127.0.0.1 connection", c, err)
	}
	if got := conn.RemoteAddrPort(c); got != netip.MustParseAddrPort("127.0.0.1:5000") {
		t.Errorf("RemoteAddrPort = %v, want 127.0.0.1:5000", got)
	}
	if !denied.closed.Load() || mapped.closed.Load() {
		t.Error("the denied connection is not closed, or the allowed one is")
	}
	if c, err = g.Accept(); err != nil || c != tenNet {
		t.Fatalf("Accept = %v, %v; want the ::ffff:10.1.2.3 connection", c, err)
	}
}

func TestRemoteAddrPort(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, "127.0.0.1:1"},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 2}, "10.0.0.1:2"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 3}, "[::1]:3"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 4}, "192.0.2.1:4"},
		{&net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 5}, "192.0.2.1:5"},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, "invalid AddrPort"},
		{nil, "invalid AddrPort"},
	}
	for _, tt := range tests {
		if got := conn.RemoteAddrPort(&addrConn{remote: tt.addr}); got.String() != tt.want {
			t.Errorf("RemoteAddrPort(%v) = %v, want %s", tt.addr, got, tt.want)
		}
	}
	if got := conn.RemoteAddrPort(&addrConn{remote: (*net.TCPAddr)(nil)}); got.IsValid() {
		t.Errorf("nil *TCPAddr: %v", got)
	}
}

func TestGateAcceptError(t *testing.T) {
	fl := &fakeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	g := conn.NewGate(fl, conn.GateConfig{Rules: rules(t, "127.0.0.1"), MaxConns: 1, Log: zerolog.Nop()})
	_ = fl.Close() // the inner listener fails: Accept reports it and frees its slot
	for range 3 {
		if _, err := g.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept: %v", err)
		}
	}
	_ = g.Close()
}

// A tunnel that the gate turns away learns that the gateway closed the
// connection before the handshake said anything.
func TestGateDeniedClientExplanation(t *testing.T) {
	p := testpki.New(t)
	g, _ := listen(t, "tcp", "127.0.0.1:0", conn.GateConfig{Rules: rules(t, "127.0.0.1"), Log: zerolog.Nop()})
	ch := acceptAsync(g)
	creds := clientCreds(t, p.Client, p.CAFile)
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}},
		Config: creds.TLSConfig(conn.ClientOptions{ServerName: "localhost"})}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", g.Addr().String())
	if err == nil {
		_ = c.Close()
		t.Fatal("the handshake through a denying gate succeeded")
	}
	if got := conn.ExplainClientError(err, "localhost"); !strings.Contains(got, "the gateway closed the connection during the TLS handshake") {
		t.Errorf("ExplainClientError(%v) = %q", err, got)
	}
	waitDenied(t, g, 1)
	notYet(t, ch, 0, "a denied TLS client")
}

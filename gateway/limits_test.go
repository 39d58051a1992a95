package gateway_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
	"github.com/portcullis-gw/portcullis/tunnel"
)

// clientHello returns the first record a TLS client sends: a complete
// ClientHello, which a slow handshake sends and then goes quiet.
func clientHello(t testing.TB) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		_ = tls.Client(a, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}).Handshake()
	}()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// slowHandshakes keeps n connections from src in their handshake until
// ctx ends: each sends a whole ClientHello, then nothing, holding a
// handshake slot until the gateway gives up on it; then it dials again.
func slowHandshakes(ctx context.Context, addr, src string, n int, hello []byte) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					stop := context.AfterFunc(ctx, func() { c.Close() })
					if _, err := c.Write(hello); err == nil {
						_, _ = io.Copy(io.Discard, c) // until the gateway closes it
					}
					stop()
					c.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
}

// TestFairHandshakeSlots: slow handshakes from one address hold every
// handshake slot (8 here, and the pending caps raised so that they can);
// a client from another address still gets its handshakes through, by
// taking slots from the flood, and does not fail. Without the fair
// sharing it would wait for a slot until the flood's handshakes time out
// (10 s), past its own 3 s connect timeout.
func TestFairHandshakeSlots(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of slow handshakes: not in -short")
	}
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.Allow = must(acl.ParseList("127.0.0.0/8"))
	cfg.MaxHandshakes = 8
	cfg.MaxPending, cfg.MaxPendingPerAddr, cfg.MaxPendingPerPrefix = 4000, 2000, 2000
	cfg.HandshakeTimeout = 10 * time.Second
	e := start(t, p, cfg)
	baseG := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		slowHandshakes(ctx, e.addr, "127.0.0.5", 100, clientHello(t))
	}()
	defer func() { cancel(); <-flooded }()
	waitFor(t, func() bool { return e.srv.Stats().Pending >= 50 })

	took, _, err := goodClient(t, e, 10, 0)
	st := e.srv.Stats()
	cancel()
	<-flooded
	if err != nil {
		t.Fatalf("good client failed during the flood: %v", err)
	}
	if st.ShedPreempted == 0 {
		t.Errorf("no handshake was preempted: the good client cannot have taken a slot from the flood (stats %+v)", st)
	}
	t.Logf("10 handshakes+round trips under 100 slow handshakes: p50 %v max %v; %d flood handshakes preempted",
		quantile(took, .5), quantile(took, 1), st.ShedPreempted)
	if !strings.Contains(e.logs.String(), `"kind":"preempted"`) {
		t.Error("no shed event of kind preempted in the log")
	}
	waitFor(t, func() bool { return e.srv.Stats().Pending == 0 })
	waitFor(t, func() bool { return runtime.NumGoroutine() <= baseG+10 })
}

// TestSourceRates: over --conn-rate-per-addr, connections from that
// address are reset before a byte is read; another address is not
// affected. Over --handshake-rate-per-addr, handshakes are.
func TestSourceRates(t *testing.T) {
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.Allow = must(acl.ParseList("127.0.0.0/8"))
	cfg.ConnRatePerAddr = conn.Rate{PerSec: 0.1, Burst: 3}
	cfg.HandshakeRatePerAddr = conn.Rate{PerSec: 0.1, Burst: 2}
	e := start(t, p, cfg)

	// Connections from 127.0.0.2: three pass, the rest are reset.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: time.Second}
	var kept []net.Conn
	resetAtDial := 0
	defer func() {
		for _, c := range kept {
			c.Close()
		}
	}()
	for range 10 {
		c, err := d.Dial("tcp", e.addr)
		if err != nil { // reset at once, before the dial returned
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatal(err)
			}
			resetAtDial++
			continue
		}
		kept = append(kept, c)
	}
	waitFor(t, func() bool { return e.srv.Stats().ShedConnRate == 7 })
	reset := resetAtDial
	for _, c := range kept {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			reset++
		}
	}
	if reset != 7 {
		t.Errorf("%d of 10 connections over a burst of 3 were closed, want 7", reset)
	}
	if !strings.Contains(e.logs.String(), `"kind":"conn_rate"`) ||
		!strings.Contains(e.logs.String(), "over the connection rate of its source address") {
		t.Error("no shed event of kind conn_rate naming the source address in the log")
	}

	// Handshakes from 127.0.0.1 (whose connections are under their rate):
	// two go through, the third is reset.
	for i := range 3 {
		dl := e.dialer(t, e.pki.Client, false)
		c, err := dl.Dial(ctxT(t), "echo")
		if i < 2 {
			if err != nil {
				t.Fatalf("handshake %d within the burst: %v", i+1, err)
			}
			if err := roundTrip(c, 64); err != nil {
				t.Fatal(err)
			}
			c.Close()
			continue
		}
		if err == nil {
			c.Close()
			t.Fatal("a third handshake at once passed a handshake rate with a burst of 2")
		}
	}
	if n := e.srv.Stats().ShedHandshakeRate; n == 0 {
		t.Error("no handshake counted as over the handshake rate")
	}
}

// TestIdentityLimits: per identity, streams open at once, stream opens a
// second and sessions are limited over the whole gateway, each refusal
// with its reason; another identity is not affected.
func TestIdentityLimits(t *testing.T) {
	p := testpki.New(t)
	bob := p.Issue(t, "bob", pki.Request{Kind: pki.Client, Name: "bob", URIs: []string{"spiffe://test/app/bob"}})
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.MaxStreamsPerIdentity = 2
	cfg.MaxSessionsPerIdentity = 1
	cfg.StreamRatePerIdentity = conn.Rate{PerSec: 0.1, Burst: 4}
	e := start(t, p, cfg)

	d := e.dialer(t, e.pki.Client, false)
	var open []net.Conn
	for range 2 {
		c, err := d.Dial(ctxT(t), "echo")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	if _, err := d.Dial(ctxT(t), "echo"); err == nil || !strings.Contains(err.Error(), "streams open, its limit") {
		t.Fatalf("a third stream with max 2 per identity: %v", err)
	}
	// Another identity has its own count.
	if c, err := e.dialer(t, bob, false).Dial(ctxT(t), "echo"); err != nil {
		t.Fatalf("bob's stream while alice is at her limit: %v", err)
	} else {
		c.Close()
	}
	// A second session of alice's is over her session limit: refused with
	// the reason.
	if _, err := e.dialer(t, e.pki.Client, false).Dial(ctxT(t), "echo"); err == nil ||
		!strings.Contains(err.Error(), "sessions open, its limit") {
		t.Fatalf("a second session with max 1 per identity: %v", err)
	}
	// Streams end. Of the burst of 4, the two streams opened took two (a
	// stream refused by the cap takes none), so of the next opens the
	// third at the latest is over the rate (one token in 10 s).
	for _, c := range open {
		c.Close()
	}
	waitFor(t, func() bool { return openStreams(e) == 0 })
	var rateErr error
	for i := range 4 {
		c, err := d.Dial(ctxT(t), "echo")
		if err != nil {
			rateErr = err
			break
		}
		if i == 3 {
			t.Fatal("a fifth stream open at once passed a stream rate with a burst of 4")
		}
		c.Close()
		waitFor(t, func() bool { return openStreams(e) == 0 })
	}
	if rateErr == nil || !strings.Contains(rateErr.Error(), "faster than its limit") {
		t.Fatalf("over the stream rate: %v", rateErr)
	}
	// The refusal is answered first and logged after: wait for the line.
	for _, rule := range []string{"--max-streams-per-identity 2", "--max-sessions-per-identity 1", "--stream-rate-per-identity 0.1:4"} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(e.logs.String(), rule) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if !strings.Contains(e.logs.String(), rule) {
			t.Errorf("no refusal in the log names the rule %q", rule)
		}
	}
}

// echoOnce writes 64 bytes to an echo stream and reads them back, leaving
// it open.
func echoOnce(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := []byte(strings.Repeat("x", 64))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err := io.ReadFull(c, make([]byte, len(msg)))
	return err
}

// openStreams is the number of streams the gateway counts open.
func openStreams(e *env) uint64 {
	st := e.srv.Stats()
	return st.StreamsOK - closedStreams(e)
}

// closedStreams counts the stream_close events in the log.
func closedStreams(e *env) uint64 {
	return uint64(strings.Count(e.logs.String(), `"event":"stream_close"`))
}

// TestMaxConnLifetime: a session past --max-conn-lifetime takes no new
// stream (the tunnel opens a new session for it) while its open stream
// carries on, until the drain time has passed too.
func TestMaxConnLifetime(t *testing.T) {
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.MaxConnLifetime = 500 * time.Millisecond
	cfg.DrainTimeout = 1500 * time.Millisecond
	e := start(t, p, cfg)
	d := e.dialer(t, e.pki.Client, false)
	c, err := d.Dial(ctxT(t), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"event":"lifetime_reached"`) })
	if err := echoOnce(c); err != nil {
		t.Fatalf("the open stream after the lifetime, within the drain time: %v", err)
	}
	c2, err := d.Dial(ctxT(t), "echo")
	if err != nil {
		t.Fatalf("a new stream after the lifetime: %v", err)
	}
	defer c2.Close()
	if err := roundTrip(c2, 64); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Stats().HandshakesOK; n < 2 {
		t.Errorf("%d handshakes: the new stream should have come on a new session", n)
	}
	if err := echoOnce(c); err != nil {
		t.Fatalf("the old stream after a new session was opened: %v", err)
	}
	// After the drain time the old session is closed, its stream with it.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatal("the old stream was still open 5 s after the lifetime and drain time")
	}
	if !strings.Contains(e.logs.String(), `"event":"lifetime_closed"`) {
		t.Errorf("no lifetime_closed event (copy: %v):\n%s", err, e.logs.String())
	}
}

// BenchmarkFairAdmission reports a good client's handshake (plus one
// stream and a 64-byte round trip) from 127.0.0.1, one every 100 ms,
// unloaded and while 2,000 slow handshakes from 127.0.0.5 hold every
// handshake slot (--max-handshakes 64, the pending caps raised so that
// they can): the p50 and p99 of 50 rounds, in ms, and the rounds that
// failed. Run it with -benchtime 1x:
//
//	go test -run '^$' -bench FairAdmission -benchtime 1x ./gateway
func BenchmarkFairAdmission(b *testing.B) {
	p := testpki.New(b)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.Allow = must(acl.ParseList("127.0.0.0/8"))
	cfg.MaxHandshakes = 64
	cfg.MaxPending, cfg.MaxPendingPerAddr, cfg.MaxPendingPerPrefix = 4000, 4000, 4000
	cfg.MaxConns = 5000
	cfg.HandshakeTimeout = 10 * time.Second
	e := start(b, p, cfg)
	hello := clientHello(b)
	for _, flood := range []int{0, 2000} {
		b.Run(map[int]string{0: "unloaded", 2000: "flood-2000"}[flood], func(b *testing.B) {
			for range b.N {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); slowHandshakes(ctx, e.addr, "127.0.0.5", flood, hello) }()
				if flood > 0 {
					deadline := time.Now().Add(20 * time.Second)
					for e.srv.Stats().Pending < flood/2 && time.Now().Before(deadline) {
						time.Sleep(50 * time.Millisecond)
					}
				}
				before := e.srv.Stats()
				took, _, err := goodClient(b, e, 50, 0)
				st := e.srv.Stats()
				cancel()
				<-done
				if err != nil {
					b.Fatalf("good client: %v", err)
				}
				b.ReportMetric(float64(quantile(took, .5))/1e6, "p50-ms")
				b.ReportMetric(float64(quantile(took, .99))/1e6, "p99-ms")
				b.ReportMetric(float64(st.ShedPreempted-before.ShedPreempted), "preempted")
				b.ReportMetric(float64(st.Pending), "pending")
			}
		})
	}
}

// TestIdentityLimitsAcrossSessions: an identity's session slot comes back
// when its session ends (one session at a time, three in turn), and its
// stream rate is not reset by reconnecting: the fourth session's stream is
// over a burst of 3.
func TestIdentityLimitsAcrossSessions(t *testing.T) {
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.MaxSessionsPerIdentity = 1
	cfg.StreamRatePerIdentity = conn.Rate{PerSec: 0.1, Burst: 3}
	e := start(t, p, cfg)
	for i := range 4 {
		var c net.Conn
		var err error
		var d *tunnel.Dialer
		deadline := time.Now().Add(5 * time.Second)
		for {
			d = e.dialer(t, p.Client, false)
			c, err = d.Dial(ctxT(t), "echo")
			if err == nil || !strings.Contains(err.Error(), "sessions open, its limit") || time.Now().After(deadline) {
				break
			}
			d.Close() // the last session's end may not have reached the gateway yet
			time.Sleep(20 * time.Millisecond)
		}
		if i < 3 {
			if err != nil {
				t.Fatalf("session %d, one at a time: %v (its slot or its token was not given back)", i+1, err)
			}
			if err := roundTrip(c, 64); err != nil {
				t.Fatal(err)
			}
			c.Close()
			d.Close() // ends the session: its slot must come back
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "faster than its limit") {
			t.Fatalf("a fourth stream within 10 s, on a new session, with a burst of 3: %v; want refused over the stream rate", err)
		}
	}
}

// TestConfigRejectsBadRates: a rate with no burst would refuse everything;
// New says which setting is wrong.
func TestConfigRejectsBadRates(t *testing.T) {
	_, err := gateway.New(gateway.Config{ConnRate: gateway.SourceLimit{PerAddr: conn.Rate{PerSec: 5}},
		HandshakeRate: gateway.SourceLimit{PerPrefix: conn.Rate{PerSec: 2, Burst: -1}}, AbuseHold: time.Minute, AbuseHoldMax: time.Second})
	for _, want := range []string{"Config.ConnRate.PerAddr 5 a second: its burst 0 must be at least 1",
		"Config.HandshakeRate.PerPrefix 2 a second", "Config.AbuseHoldMax 1s: must be at least AbuseHold 1m0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v; want %q", err, want)
		}
	}
}

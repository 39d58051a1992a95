package mux

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/internal/testnet"
)

// roundTrip sends msg on st, half-closes and expects the echo back.
func roundTrip(t testing.TB, st *Stream, msg string) {
	t.Helper()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != msg {
		t.Fatalf("echo returned %q, %v; want %q", got, err, msg)
	}
}

func TestClientLazyDialAndReuse(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, true, routeTo(map[string]string{"echo": be.addr()}))
	var dials atomic.Int32
	c := newClient(t, g, &dials)
	if c.Session() != nil || dials.Load() != 0 {
		t.Fatalf("NewClient dialed: session %v, %d dials", c.Session(), dials.Load())
	}
	var first any
	for i := range 20 {
		st, err := c.Open(context.Background(), "echo")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, st, "ping")
		st.Close()
		if i == 0 {
			first = c.Session()
		} else if any(c.Session()) != first {
			t.Fatal("the session changed between Opens")
		}
	}
	if dials.Load() != 1 || g.conns.Load() != 1 {
		t.Fatalf("%d dials, %d gateway connections for 20 Opens; want 1 and 1", dials.Load(), g.conns.Load())
	}
}

func TestClientRedialsAfterSessionDeath(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, false, routeTo(map[string]string{"echo": be.addr()}))
	var dials atomic.Int32
	c := newClient(t, g, &dials)
	st, err := c.Open(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	sess := c.Session()
	g.kill()
	// A stream on the dead session fails with an error, not EOF.
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Read on a stream of the killed session: %v, want ErrSessionClosed", err)
	}
	st.Close()
	eventually(t, 5*time.Second, "the client session to notice", sess.IsClosed)
	st, err = c.Open(context.Background(), "echo")
	if err != nil {
		t.Fatalf("Open after the session died: %v", err)
	}
	roundTrip(t, st, "again")
	st.Close()
	if dials.Load() != 2 || c.Session() == sess {
		t.Fatalf("%d dials (want 2), new session %v", dials.Load(), c.Session() != sess)
	}
}

func TestClientBackoff(t *testing.T) {
	const (
		minB   = 20 * time.Millisecond
		maxB   = 80 * time.Millisecond
		period = 600 * time.Millisecond
	)
	var (
		mu    sync.Mutex
		times []time.Time
	)
	c := NewClient(ClientConfig{
		Dial: func(ctx context.Context) (net.Conn, error) {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			return nil, errTestDial
		},
		MinBackoff: minB, MaxBackoff: maxB,
	})
	defer c.Close()
	start := time.Now()
	var lastErr error
	for opens := 0; time.Since(start) < period && opens < 1000; opens++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, lastErr = c.Open(ctx, "pg")
		cancel()
		if !errors.Is(lastErr, errTestDial) {
			t.Fatalf("Open error %v, want it to wrap the dial error", lastErr)
		}
	}
	if !strings.HasPrefix(lastErr.Error(), "dialing gateway: ") {
		t.Errorf("error %q does not start with %q", lastErr, "dialing gateway: ")
	}
	mu.Lock()
	defer mu.Unlock()
	n := len(times)
	// At least MinBackoff between dials: at most 1+period/minB attempts;
	// and retries keep happening.
	if n < 4 || n > 1+int(period/minB) {
		t.Fatalf("%d dial attempts in %v; want between 4 and %d", n, period, 1+int(period/minB))
	}
	for i := 1; i < n; i++ {
		gap := times[i].Sub(times[i-1])
		if gap < minB-2*time.Millisecond {
			t.Errorf("dial %d came %v after the previous one, want >= %v", i, gap, minB)
		}
		if gap > maxB+100*time.Millisecond {
			t.Errorf("dial %d came %v after the previous one, want about <= %v", i, gap, maxB)
		}
	}
}

func TestClientOpenWaitsOutBackoffWithinContext(t *testing.T) {
	var dials atomic.Int32
	c := NewClient(ClientConfig{
		Dial: func(ctx context.Context) (net.Conn, error) {
			dials.Add(1)
			return nil, errTestDial
		},
		MinBackoff: 5 * time.Second, MaxBackoff: 5 * time.Second,
	})
	defer c.Close()
	if _, err := c.Open(context.Background(), "pg"); !errors.Is(err, errTestDial) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Open(ctx, "pg")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errTestDial) || time.Since(start) > 2*time.Second {
		t.Fatalf("Open during the backoff: %v after %v; want the deadline and the last dial error, quickly", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "to retry after") {
		t.Errorf("error %q does not say it waited to retry", err)
	}
	if dials.Load() != 1 {
		t.Fatalf("%d dials, want 1 (the second Open waits out the backoff)", dials.Load())
	}
}

func TestClientConcurrentOpensShareOneDial(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, true, routeTo(map[string]string{"echo": be.addr()}))
	var dials atomic.Int32
	inner := g.dialer(&dials)
	release := make(chan struct{})
	c := NewClient(ClientConfig{
		Dial: func(ctx context.Context) (net.Conn, error) {
			<-release // hold the dial until every Open is waiting
			return inner(ctx)
		},
		Yamux: testConfig(),
	})
	defer c.Close()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		wg.Go(func() {
			started.Done()
			st, err := c.Open(context.Background(), "echo")
			if err != nil {
				errs <- err
				return
			}
			roundTrip(t, st, "x")
			st.Close()
		})
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := dials.Load(); d != 1 {
		t.Fatalf("%d dials for %d concurrent Opens, want 1", d, n)
	}
}

func TestClientRefused(t *testing.T) {
	g := startGateway(t, true, func(req Request) (Response, net.Conn) {
		return Response{Status: StatusForbidden, Reason: "identity cn:bob not allowed"}, nil
	})
	c := newClient(t, g, nil)
	st, err := c.Open(context.Background(), "pg")
	var re *RefusedError
	if !errors.As(err, &re) || st != nil {
		t.Fatalf("Open = %v, %v; want a *RefusedError", st, err)
	}
	if re.Route != "pg" || re.Status != StatusForbidden || re.Reason != "identity cn:bob not allowed" {
		t.Fatalf("RefusedError %+v", re)
	}
	if got, want := err.Error(), `gateway refused route "pg": forbidden: identity cn:bob not allowed`; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	// Refusals do not hurt the session.
	if _, err := c.Open(context.Background(), "pg"); !errors.As(err, &re) || g.conns.Load() != 1 {
		t.Fatalf("second Open: %v, %d connections", err, g.conns.Load())
	}
}

func TestClientUnknownRoute(t *testing.T) {
	g := startGateway(t, false, routeTo(nil))
	c := newClient(t, g, nil)
	_, err := c.Open(context.Background(), "nope")
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != StatusUnknownRoute || re.Reason != "no route nope" {
		t.Fatalf("Open = %v; want unknown route", err)
	}
	if _, err := c.Open(context.Background(), "bad route"); !errors.Is(err, ErrRoute) {
		t.Fatalf("Open with an invalid route: %v, want ErrRoute", err)
	}
}

func TestClientClose(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, false, routeTo(map[string]string{"echo": be.addr()}))
	c := newClient(t, g, nil)
	st, err := c.Open(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Open(context.Background(), "echo"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Open after Close: %v, want net.ErrClosed", err)
	}
	if c.Session() != nil {
		t.Fatal("Session() after Close is not nil")
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Read on a stream after Close: %v, want ErrSessionClosed", err)
	}
	st.Close()
}

func TestClientCloseDuringDial(t *testing.T) {
	started := make(chan struct{})
	c := NewClient(ClientConfig{Dial: func(ctx context.Context) (net.Conn, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Open(context.Background(), "pg")
		errc <- err
	}()
	<-started
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Open interrupted by Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Open")
	}
}

// A gateway that accepts streams but never answers: Open gives up at its
// context deadline.
func TestClientOpenSilentGateway(t *testing.T) {
	ln := listen(t, "tcp", "127.0.0.1:0")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		defer raw.Close()
		io.Copy(io.Discard, raw) // reads yamux frames, answers nothing
	})
	c := NewClient(ClientConfig{Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}, Yamux: testConfig()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Open(ctx, "pg")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Open = %v after %v; want the deadline, promptly", err, time.Since(start))
	}
	ln.Close()
}

func TestClientGoAway(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, false, routeTo(map[string]string{"echo": be.addr()}))
	var dials atomic.Int32
	c := newClient(t, g, &dials)
	old, err := c.Open(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	g.mu.Lock()
	g.sessions[0].GoAway()
	g.mu.Unlock()
	eventually(t, 5*time.Second, "a new session after GoAway", func() bool {
		st, err := c.Open(context.Background(), "echo")
		if err != nil {
			t.Fatalf("Open after GoAway: %v", err)
		}
		defer st.Close()
		roundTrip(t, st, "new")
		return dials.Load() == 2
	})
	// The stream on the drained session keeps working.
	roundTrip(t, old, "old")
}

func TestNewClientWithoutDialPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "Dial is nil") {
			t.Fatalf("recover() = %v", r)
		}
	}()
	NewClient(ClientConfig{})
}

func TestClientDefaultsAndBackoffRange(t *testing.T) {
	c := NewClient(ClientConfig{Dial: func(context.Context) (net.Conn, error) { return nil, errTestDial }})
	defer c.Close()
	if c.cfg.MinBackoff != DefaultMinBackoff || c.cfg.MaxBackoff != DefaultMaxBackoff || c.ycfg.AcceptBacklog != 1024 {
		t.Fatalf("defaults: %+v, backlog %d", c.cfg, c.ycfg.AcceptBacklog)
	}
	for n := 1; n < 20; n++ {
		ceil := min(DefaultMinBackoff<<n, DefaultMaxBackoff)
		for range 50 {
			if d := c.backoff(n); d < DefaultMinBackoff || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, DefaultMinBackoff, ceil)
			}
		}
	}
}

// TestClientOpenDuringClose: Opens racing with Close either work or fail
// with net.ErrClosed (or the closed session), and never start a goroutine
// that Close's wait does not cover (the race detector and goleak check the
// WaitGroup's use).
func TestClientOpenDuringClose(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, false, routeTo(map[string]string{"echo": be.addr()}))
	for range 30 {
		c := NewClient(ClientConfig{Dial: g.dialer(new(atomic.Int32)), Yamux: testConfig(), MinBackoff: time.Millisecond})
		st, err := c.Open(context.Background(), "echo")
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				<-start
				for range 100 {
					st, err := c.Open(context.Background(), "echo")
					if err != nil {
						if !errors.Is(err, net.ErrClosed) && !errors.Is(err, ErrSessionClosed) &&
							!strings.Contains(err.Error(), "session shutdown") {
							t.Errorf("Open during Close: %v", err)
						}
						return
					}
					st.Close()
				}
			})
		}
		close(start)
		c.Close()
		wg.Wait()
	}
}

// TestClientDialFailureLog: a failed dial is logged with the wait before
// the next one as retry_in_ms, a number of milliseconds.
func TestClientDialFailureLog(t *testing.T) {
	var buf testnet.SyncBuffer
	c := NewClient(ClientConfig{
		Dial:       func(context.Context) (net.Conn, error) { return nil, errTestDial },
		Logger:     zerolog.New(&buf),
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
	})
	defer c.Close()
	if _, err := c.Open(context.Background(), "pg"); !errors.Is(err, errTestDial) {
		t.Fatalf("Open: %v, want the dial error", err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	ms, ok := line["retry_in_ms"].(float64)
	if !ok || ms < 150 || ms > 400 {
		t.Fatalf("retry_in_ms = %v in %v; want a number of milliseconds, about 200 to 400", line["retry_in_ms"], line)
	}
	if _, ok := line["retry_in"]; ok {
		t.Errorf("a field without its unit: %v", line)
	}
}

// TestClientProbeCutsBackoffShort: while a dial waits out a long backoff,
// a Probe that answers nil lets it go ahead at once; one that fails does
// not.
func TestClientProbeCutsBackoffShort(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, false, routeTo(map[string]string{"echo": be.addr()}))
	var (
		gatewayUp atomic.Bool
		probes    atomic.Int32
	)
	dial := g.dialer(new(atomic.Int32))
	c := NewClient(ClientConfig{
		Dial: func(ctx context.Context) (net.Conn, error) {
			if !gatewayUp.Load() {
				return nil, errTestDial
			}
			return dial(ctx)
		},
		Probe: func(context.Context) error {
			probes.Add(1)
			if !gatewayUp.Load() {
				return errTestDial
			}
			return nil
		},
		ProbeInterval: 20 * time.Millisecond,
		MinBackoff:    time.Minute, MaxBackoff: time.Minute,
	})
	defer c.Close()
	if _, err := c.Open(context.Background(), "echo"); !errors.Is(err, errTestDial) {
		t.Fatalf("first Open: %v, want the dial error", err)
	}
	// The next dial waits a minute, probing.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := c.Open(ctx, "echo")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || probes.Load() < 2 {
		t.Fatalf("Open during the backoff: %v after %d probes; want a deadline error after several", err, probes.Load())
	}
	gatewayUp.Store(true)
	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Open(ctx, "echo")
	if err != nil {
		t.Fatalf("Open once the probe succeeds: %v", err)
	}
	roundTrip(t, st, "ping")
	st.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Open took %v with a probe that succeeds, want well under the minute of backoff", took)
	}
}

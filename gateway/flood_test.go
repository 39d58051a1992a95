package gateway_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testpki"
)

// flood keeps n connections open to addr from the given source addresses
// (round robin) until ctx ends: silent ones send nothing; trickling ones
// send the start of a TLS record, one byte a second, never a whole
// ClientHello. A connection the gateway closes is dialed again a second
// later (a flood that dials as fast as it can is a connection-rate flood,
// for the per-source rate limits). It returns when every connection is closed, with the
// number of dials made.
func flood(ctx context.Context, addr string, sources []string, n int, trickle bool) (dials int64) {
	var wg sync.WaitGroup
	var count atomic.Int64
	for i := range n {
		src := &net.TCPAddr{IP: net.ParseIP(sources[i%len(sources)])}
		wg.Go(func() {
			d := net.Dialer{LocalAddr: src, Timeout: time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					select { // the port is busy: try again shortly
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				count.Add(1)
				done := make(chan struct{})
				go func() { // closes c when the flood ends
					select {
					case <-ctx.Done():
					case <-done:
					}
					c.Close()
				}()
				if trickle {
					hdr := []byte{0x16, 0x03, 0x01, 0x02, 0x00}
					for j := 0; ctx.Err() == nil; j++ {
						if _, err := c.Write(hdr[j%len(hdr) : j%len(hdr)+1]); err != nil {
							break
						}
						select {
						case <-ctx.Done():
						case <-time.After(time.Second):
						}
					}
				} else {
					_, _ = c.Read(make([]byte, 1)) // until the gateway closes it
				}
				close(done)
				select { // and dials again a second later
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		})
	}
	wg.Wait()
	return count.Load()
}

// goodClient makes rounds handshakes, each a fresh tunnel session with one
// stream and a 64-byte round trip, every 100 ms, and returns how long each
// took. A failed round is retried until retryFor has passed since its start
// (0: no retry); the error is the first round that failed for good.
func goodClient(t testing.TB, e *env, rounds int, retryFor time.Duration) (took []time.Duration, retries int, err error) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range rounds {
		<-tick.C
		start := time.Now()
		for {
			err = func() error {
				d := e.dialer(t, e.pki.Client, false)
				defer d.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := d.Dial(ctx, "echo")
				if err != nil {
					return err
				}
				defer c.Close()
				return roundTrip(c, 64)
			}()
			if err == nil || time.Since(start) > retryFor {
				break
			}
			retries++
		}
		if err != nil {
			return took, retries, fmt.Errorf("round %d after %v: %w", i, time.Since(start), err)
		}
		took = append(took, time.Since(start))
	}
	return took, retries, nil
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// TestSilentSocketsDoNotStallClients: hundreds of connections that send
// nothing, or trickle, hold no handshake slot, so a good client's
// handshakes go through while they sit there, whether the flood comes from
// one address, from many, or from the good client's own address. The
// handshake slots are fewer than the flood (64 against 500), so a slot
// held by a silent socket would stall the good client until the 5 s
// handshake timeout.
func TestSilentSocketsDoNotStallClients(t *testing.T) {
	if testing.Short() {
		t.Skip("a 500-connection flood: not in -short")
	}
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.Allow = must(acl.ParseList("127.0.0.0/8"))
	cfg.HelloTimeout = 2 * time.Second
	e := start(t, p, cfg)

	// Unloaded first, for the figures in the log.
	base, _, err := goodClient(t, e, 10, 0)
	if err != nil {
		t.Fatalf("unloaded: %v", err)
	}
	t.Logf("unloaded: handshake+round trip p50 %v p99 %v", quantile(base, .5), quantile(base, .99))
	baseG := runtime.NumGoroutine()

	spread := make([]string, 0, 51)
	for i := 10; i <= 60; i++ {
		spread = append(spread, fmt.Sprintf("127.0.0.%d", i))
	}
	for _, tc := range []struct {
		name     string
		sources  []string
		trickle  bool
		retryFor time.Duration
	}{
		{"silent, one other address", []string{"127.0.0.2"}, false, 0},
		{"silent, 51 addresses", spread, false, 0},
		{"trickling, one other address", []string{"127.0.0.3"}, true, 0},
		// From the client's own address it may be slowed (its connection
		// can be the one replaced), but every round trip completes within
		// the handshake timeout.
		{"silent, the client's own address", []string{"127.0.0.1"}, false, cfg.HandshakeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.srv.Stats()
			ctx, cancel := context.WithCancel(context.Background())
			dials := make(chan int64, 1)
			go func() { dials <- flood(ctx, e.addr, tc.sources, 500, tc.trickle) }()
			waitFor(t, func() bool { return e.srv.Stats().Pending >= 60 })
			took, retries, err := goodClient(t, e, 20, tc.retryFor)
			st := e.srv.Stats()
			g := runtime.NumGoroutine()
			cancel()
			n := <-dials
			if err != nil {
				t.Fatalf("good client failed during the flood: %v", err)
			}
			for i, d := range took {
				if d >= cfg.HandshakeTimeout {
					t.Errorf("round %d took %v, not within the %v handshake timeout", i, d, cfg.HandshakeTimeout)
				}
			}
			// Bounded: per source, at most the pending caps; goroutines
			// of the gateway, the flood (two each) and the test.
			if st.Pending > cfg.MaxPending {
				t.Errorf("%d pending, over --max-pending %d", st.Pending, cfg.MaxPending)
			}
			if len(tc.sources) == 1 && st.Pending > cfg.MaxPendingPerAddr+1 {
				t.Errorf("%d pending from one address, over --max-pending-per-addr %d (+1 for the client)",
					st.Pending, cfg.MaxPendingPerAddr)
			}
			t.Logf("flood of 500 (%d dials): good client p50 %v p99 %v max %v (%d retries); gateway: %d pending, "+
				"%d goroutines in the process; shed: %d silent, %d replaced, %d refused",
				n, quantile(took, .5), quantile(took, .99), slices.Max(took), retries, st.Pending, g,
				st.ShedSilent-before.ShedSilent, st.ShedReplaced-before.ShedReplaced, st.ShedRefused-before.ShedRefused)
			// After the flood, the pending set and the goroutines return
			// to the baseline.
			waitFor(t, func() bool { return e.srv.Stats().Pending == 0 })
			waitFor(t, func() bool { return runtime.NumGoroutine() <= baseG+10 })
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

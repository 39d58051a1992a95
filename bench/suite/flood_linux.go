package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/bench/proc"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// floodTarget is a server under the flood, started afresh for each run so
// that its memory and goroutines before the flood are its own.
type floodTarget struct {
	t      *target
	direct bool   // the good client uses direct mode
	admin  string // the gateway's admin address; "" for a baseline
}

// floodRuns measures every target under each kind of flood.
func (s *suite) floodRuns(ctx context.Context) {
	kinds := []string{floodSilent, floodTrickle}
	if s.o.quick {
		kinds = kinds[:1]
	}
	names := []string{tGatewayMux, tGatewayDir}
	for _, b := range splitList(s.o.baselines) {
		if b == "haproxy" || b == "stunnel" {
			names = append(names, b)
		}
	}
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: s.files.clientCert, Key: s.files.clientKey, CA: s.files.ca})
	if err != nil {
		s.notes = append(s.notes, fmt.Sprintf("flood: client credentials: %v", err))
		return
	}
	for _, kind := range kinds {
		for _, name := range names {
			if ctx.Err() != nil {
				return
			}
			r := s.floodOne(ctx, creds, name, kind)
			s.flood = append(s.flood, r)
			if r.err != nil {
				if r.skipped {
					s.notes = append(s.notes, fmt.Sprintf("flood, %s: not measured: %v", name, r.err))
				}
				s.logf("flood (%s), %s: %v", kind, name, r.err)
				continue
			}
			s.logf("flood (%d %s), %s: p50 %s p99 %s ms unloaded, p50 %s p99 %s ms under the flood; failures %d, %d; %d flood dials",
				r.conns, kind, name, ms(quantile(r.unloaded, .5)), ms(quantile(r.unloaded, .99)),
				ms(quantile(r.flooded, .5)), ms(quantile(r.flooded, .99)), r.failUnl, r.failFlood, r.dials)
			if a0, a1 := r.before.metric("portcullis_connections_allowed_total"), r.end.metric("portcullis_connections_allowed_total"); a0 >= 0 && a1 >= 0 {
				s.logf("flood (%s), %s: the gateway admitted %.0f connections", kind, name, a1-a0)
			}
		}
	}
}

// startFloodTarget starts the server of one flood row.
func (s *suite) startFloodTarget(name string) (*floodTarget, error) {
	switch name {
	case tGatewayMux, tGatewayDir:
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		admin, err := freePort()
		if err != nil {
			return nil, err
		}
		bin := s.exe("gateway")
		if s.o.floodGateway != "" {
			bin = s.o.floodGateway
		}
		c, err := start(s.dir, "gateway-flood", bin, floodGatewayArgs(addr, admin, s.files, s.back, s.o.logLevel), nil)
		if err != nil {
			return nil, err
		}
		if err := waitTCP(c, addr, admin); err != nil {
			return nil, err
		}
		t := &target{name: name, proc: c, addrs: map[string]string{"echo": addr}}
		return &floodTarget{t: t, direct: name == tGatewayDir, admin: admin}, nil
	}
	t, err := s.startBaseline(name)
	if err != nil {
		return nil, err
	}
	return &floodTarget{t: t, direct: true}, nil
}

// floodOne starts the target, runs the good client unloaded, then under
// the flood, and reads the target before, during and after the flood.
func (s *suite) floodOne(ctx context.Context, creds *conn.ClientCreds, name, kind string) floodResult {
	r := floodResult{target: name, kind: kind, conns: s.o.floodConns}
	ft, err := s.startFloodTarget(name)
	if err != nil {
		r.err, r.skipped = err, true
		return r
	}
	defer ft.t.proc.stop()
	addr := ft.t.addr("echo")
	// One operation first, not counted: the first handshake of a process
	// pays for loading its certificates and warming its code.
	if _, err := s.goodOp(ctx, creds, addr, ft.direct); err != nil {
		r.err = fmt.Errorf("first operation: %w", err)
		return r
	}
	time.Sleep(500 * time.Millisecond)
	r.before = s.sample(ft)

	s.logf("flood (%s), %s: %d operations unloaded", kind, name, s.o.floodOps)
	r.unloaded, r.failUnl, r.firstFail = s.goodClient(ctx, creds, addr, ft.direct, s.o.floodOps)

	fctx, stop := context.WithCancel(ctx)
	fl := &flooder{}
	var wg sync.WaitGroup
	wg.Go(func() { fl.run(fctx, addr, s.o.floodConns, kind == floodTrickle) })
	// Under way once every socket has connected at least once (and the
	// server had a moment with them all).
	for deadline := time.Now().Add(10 * time.Second); fl.dials.Load() < int64(s.o.floodConns) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	s.logf("flood (%s), %s: %d operations under the flood (%d sockets connected, %d dials so far)",
		kind, name, s.o.floodOps, fl.open.Load(), fl.dials.Load())
	var firstFail string
	r.flooded, r.failFlood, firstFail = s.goodClient(ctx, creds, addr, ft.direct, s.o.floodOps)
	if r.firstFail == "" {
		r.firstFail = firstFail
	}
	r.during = s.sample(ft)
	stop()
	wg.Wait()
	r.dials = fl.dials.Load()
	// After: the flood's sockets are closed; give the server a moment.
	time.Sleep(3 * time.Second)
	r.end = s.sample(ft)
	return r
}

// sample reads the target's memory and threads, and the gateway's metrics.
func (s *suite) sample(ft *floodTarget) procSample {
	var p procSample
	pid := ft.t.proc.pid()
	p.rss, _ = proc.RSS(pid)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		p.threads, _ = parseStatusCount(b, "Threads")
	}
	if ft.admin != "" {
		hc := http.Client{Timeout: 5 * time.Second}
		if resp, err := hc.Get("http://" + ft.admin + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p.metrics = parseMetrics(string(b))
		}
	}
	return p
}

// goodClient makes n operations, one every floodEvery (or right after the
// previous one when it took longer), and returns the latencies of those
// that succeeded, the number that failed and the first failure.
func (s *suite) goodClient(ctx context.Context, creds *conn.ClientCreds, addr string, direct bool, n int) ([]time.Duration, int, string) {
	var took []time.Duration
	failed, first := 0, ""
	tick := time.NewTicker(floodEvery)
	defer tick.Stop()
	for range n {
		select {
		case <-ctx.Done():
			return took, failed, first
		case <-tick.C:
		}
		d, err := s.goodOp(ctx, creds, addr, direct)
		if err != nil {
			failed++
			if first == "" {
				first = fmt.Sprintf("after %v: %v", d.Round(time.Millisecond), err)
			}
			continue
		}
		took = append(took, d)
	}
	return took, failed, first
}

// goodOp is one operation of the good client: a fresh tunnel client (so a
// full mTLS handshake), a stream to the echo route (in direct mode, the TLS
// connection itself), a 64-byte round trip, close. It returns how long it
// took.
func (s *suite) goodOp(ctx context.Context, creds *conn.ClientCreds, addr string, direct bool) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, floodOpTimeout)
	defer cancel()
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{addr}, Creds: creds, ServerName: "localhost",
		ConnectTimeout: floodOpTimeout, Direct: direct, Log: zerolog.Nop()})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	c, err := d.Dial(ctx, "echo")
	if err != nil {
		return time.Since(start), err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	msg, buf := make([]byte, 64), make([]byte, 64)
	_, _ = rand.Read(msg)
	if _, err := c.Write(msg); err != nil {
		return time.Since(start), err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return time.Since(start), err
	}
	if string(buf) != string(msg) {
		return time.Since(start), fmt.Errorf("echo returned other bytes")
	}
	return time.Since(start), nil
}

// flooder holds sockets open from floodSource.
type flooder struct {
	dials atomic.Int64 // connections made (those reset before the connect returned too)
	open  atomic.Int64 // connected now, as far as the flood knows
}

// run keeps n connections open to addr from floodSource until ctx ends:
// silent ones send nothing; trickling ones send a TLS record header
// (handshake, 512 bytes announced), one byte a second, over and over,
// never a whole ClientHello. A connection the server closes is dialed
// again a second later. It returns when every connection is closed.
func (f *flooder) run(ctx context.Context, addr string, n int, trickle bool) {
	var wg sync.WaitGroup
	src := &net.TCPAddr{IP: net.ParseIP(floodSource)}
	for range n {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: src, Timeout: time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					if errors.Is(err, syscall.ECONNRESET) {
						// Accepted and reset (replaced) before the
						// connect returned: a connection all the same.
						f.dials.Add(1)
					}
					wait(ctx, 10*time.Millisecond) // a busy port or a full backlog: again shortly
					continue
				}
				f.dials.Add(1)
				f.open.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				if trickle {
					hdr := []byte{0x16, 0x03, 0x01, 0x02, 0x00}
					for j := 0; ctx.Err() == nil; j++ {
						if _, err := c.Write(hdr[j%len(hdr) : j%len(hdr)+1]); err != nil {
							break
						}
						wait(ctx, time.Second)
					}
				} else {
					_, _ = c.Read(make([]byte, 1)) // until the server closes it
				}
				stop()
				c.Close()
				f.open.Add(-1)
				wait(ctx, time.Second)
			}
		})
	}
	wg.Wait()
}

// wait sleeps for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/bench/proc"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// hostileRuns measures every mode against the gateway built and the
// baseline build, interleaved by round.
func (s *suite) hostileRuns(ctx context.Context) {
	builds := []hostileBuild{{name: "this build", bin: s.exe("gateway")}}
	if ref := s.o.hostileBaseline; ref != "" {
		bin, err := s.buildAt(ctx, ref)
		if err != nil {
			s.notes = append(s.notes, fmt.Sprintf("authenticated-client floods: the gateway at %s: %v", ref, err))
			s.logf("hostile: building the gateway at %s: %v", ref, err)
		} else {
			builds = append(builds, hostileBuild{name: ref, bin: bin})
		}
	}
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: s.files.clientCert, Key: s.files.clientKey, CA: s.files.ca})
	if err != nil {
		s.notes = append(s.notes, fmt.Sprintf("authenticated-client floods: client credentials: %v", err))
		return
	}
	modes := splitList(s.o.hostileModes)
	for round := 1; round <= s.o.hostileRounds; round++ {
		for i, mode := range modes {
			order := builds
			if (round+i)%2 == 0 && len(builds) == 2 {
				order = []hostileBuild{builds[1], builds[0]}
			}
			for _, b := range order {
				if ctx.Err() != nil {
					return
				}
				r := s.hostileOne(ctx, creds, mode, b, round)
				s.hostile = append(s.hostile, r)
				if r.err != nil {
					s.logf("hostile %s, %s, round %d: %v", mode, b.name, round, r.err)
					continue
				}
				s.logf("hostile %s, %s, round %d: round trips p99 %s → %s ms (%s), stream opens p99 %s → %s ms (%s); peak RSS %s → %s MiB; %d log lines; %s",
					mode, b.name, round, p(r.unlRTT, .99), p(r.floRTT, .99), ratioOf(r.floRTT, r.unlRTT),
					p(r.unlOpen, .99), p(r.floOpen, .99), ratioOf(r.floOpen, r.unlOpen),
					mib(r.hwmBefore), mib(r.hwmPeak), r.logLines, hostileOutcome(r.rep))
			}
		}
	}
}

// buildAt builds ./cmd/gateway as it was at the git ref, in a temporary
// worktree of the repository that is removed afterwards.
func (s *suite) buildAt(ctx context.Context, ref string) (string, error) {
	src := filepath.Join(s.dir, "src-"+strings.ReplaceAll(ref, "/", "_"))
	bin := filepath.Join(s.bin, "gateway-"+strings.ReplaceAll(ref, "/", "_"))
	s.logf("hostile: building the gateway at %s (git worktree in %s)", ref, src)
	if _, err := runCmd(ctx, s.root, "git", "worktree", "add", "--detach", src, ref); err != nil {
		return "", err
	}
	defer func() {
		if _, err := runCmd(context.Background(), s.root, "git", "worktree", "remove", "--force", src); err != nil {
			s.logf("hostile: %v", err)
		}
	}()
	if _, err := runCmd(ctx, src, "go", "build", "-o", bin, "./cmd/gateway"); err != nil {
		return "", err
	}
	return bin, nil
}

// hostileSample is what the suite reads of the gateway at one moment.
type hostileSample struct {
	hwm, rss   int64
	goroutines float64
	cpu        time.Duration
	logSize    int64
}

func (s *suite) hostileSample(ft *floodTarget) hostileSample {
	h := hostileSample{goroutines: -1}
	pid := ft.t.proc.pid()
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		h.hwm, _ = proc.ParseStatusKB(b, "VmHWM")
		h.rss, _ = proc.ParseStatusKB(b, "VmRSS")
	}
	h.cpu, _ = proc.CPU(pid)
	if fi, err := os.Stat(ft.t.proc.log); err == nil {
		h.logSize = fi.Size()
	}
	if m := s.sample(ft).metrics; m != nil {
		if v, ok := m["go_goroutines"]; ok {
			h.goroutines = v
		}
	}
	return h
}

// lineWriter collects a child's stdout and signals the first line equal
// to mark.
type lineWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	mark string
	seen chan struct{}
	once sync.Once
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if strings.Contains(w.buf.String(), w.mark+"\n") {
		w.once.Do(func() { close(w.seen) })
	}
	return len(b), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// hostileOne runs one row: a fresh gateway, the good client unloaded,
// then under the hostile client's flood.
func (s *suite) hostileOne(ctx context.Context, creds *conn.ClientCreds, mode string, b hostileBuild, round int) hostileResult {
	r := hostileResult{mode: mode, build: b.name, round: round, gorBefore: -1, gorDuring: -1, gorEnd: -1}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(la)); len(f) > 0 {
			r.load = f[0]
		}
	}
	addr, err := freePort()
	if err != nil {
		r.err = err
		return r
	}
	admin, err := freePort()
	if err != nil {
		r.err = err
		return r
	}
	name := fmt.Sprintf("gateway-hostile-%s-%s-%d", mode, strings.ReplaceAll(b.name, " ", "-"), round)
	c, err := start(s.dir, name, b.bin, floodGatewayArgs(addr, admin, s.files, s.back, s.o.logLevel), nil)
	if err != nil {
		r.err = err
		return r
	}
	defer c.stop()
	if err := waitTCP(c, addr, admin); err != nil {
		r.err = err
		return r
	}
	ft := &floodTarget{t: &target{name: b.name, proc: c, addrs: map[string]string{"echo": addr}}, admin: admin}

	g, err := newGoodClient(ctx, creds, addr)
	if err != nil {
		r.err = fmt.Errorf("good client: %w", err)
		return r
	}
	defer g.close()
	g.ops(ctx, 10, nil) // warm-up, not counted
	r.unlRTT, r.unlOpen, r.failUnl, r.firstFail = g.ops(ctx, s.o.hostileOps, nil)
	time.Sleep(300 * time.Millisecond)
	before := s.hostileSample(ft)
	r.hwmBefore, r.gorBefore = before.hwm, before.goroutines

	out := &lineWriter{mark: "flooding", seen: make(chan struct{})}
	args := append([]string{"-gateway", addr, "-cert", s.files.clientCert, "-key", s.files.clientKey, "-ca", s.files.ca,
		"-server-name", "localhost", "-source", floodSource}, hostileArgs(mode, s.o.hostileDuration)...)
	h, err := start(s.dir, name+"-client", s.exe("hostile"), args, out)
	if err != nil {
		r.err = err
		return r
	}
	defer h.stop()
	select {
	case <-out.seen:
	case <-h.done:
		r.err = fmt.Errorf("hostile exited before flooding: %v: %s %s", h.err, out.String(), h.tail())
		return r
	case <-time.After(15 * time.Second):
		r.err = fmt.Errorf("hostile did not start flooding in 15s: %s", h.tail())
		return r
	}
	var firstFail string
	r.floRTT, r.floOpen, r.failFlood, firstFail = g.ops(ctx, s.o.hostileOps, h.done)
	if r.firstFail == "" {
		r.firstFail = firstFail
	}
	r.gorDuring = s.hostileSample(ft).goroutines
	select {
	case <-h.done:
	case <-time.After(s.o.hostileDuration + time.Minute):
		h.stop()
		r.err = fmt.Errorf("hostile did not end within a minute of its -duration %v", s.o.hostileDuration)
		return r
	}
	if h.cmd.ProcessState != nil {
		r.hostileCPU = h.cmd.ProcessState.UserTime() + h.cmd.ProcessState.SystemTime()
	}
	if r.rep, err = parseHostileReport(out.String()); err != nil {
		r.err = fmt.Errorf("%w (exit: %v; %s)", err, h.err, h.tail())
		return r
	}
	afterFlood := s.hostileSample(ft)
	r.hwmPeak, r.gatewayCPU = afterFlood.hwm, afterFlood.cpu-before.cpu
	time.Sleep(2 * time.Second)
	end := s.hostileSample(ft)
	r.rssAfter, r.gorEnd = end.rss, end.goroutines
	ls, err := readLogStats(c.log, before.logSize)
	if err != nil {
		r.err = fmt.Errorf("reading the gateway's log: %w", err)
		return r
	}
	r.logLines, r.logBytes, r.suppressed, r.floodEvents = ls.lines, ls.bytes, ls.suppressed, ls.floods
	return r
}

// goodClient is the other client of the floods: one session, a stream it
// keeps for round trips, and streams it opens and closes.
type goodClient struct {
	d    *tunnel.Dialer
	keep net.Conn
	msg  []byte
	buf  []byte
}

func newGoodClient(ctx context.Context, creds *conn.ClientCreds, addr string) (*goodClient, error) {
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{addr}, Creds: creds, ServerName: "localhost",
		ConnectTimeout: floodOpTimeout, Log: zerolog.Nop()})
	if err != nil {
		return nil, err
	}
	g := &goodClient{d: d, msg: make([]byte, 64), buf: make([]byte, 64)}
	_, _ = rand.Read(g.msg)
	if err := g.reopen(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return g, nil
}

func (g *goodClient) reopen(ctx context.Context) error {
	if g.keep != nil {
		g.keep.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, floodOpTimeout)
	defer cancel()
	c, err := g.d.Dial(ctx, hostileRoute)
	if err != nil {
		g.keep = nil
		return err
	}
	g.keep = c
	return nil
}

func (g *goodClient) close() {
	if g.keep != nil {
		g.keep.Close()
	}
	g.d.Close()
}

// roundTrip sends 64 bytes on c and reads them back, within the bound of
// an operation.
func (g *goodClient) roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(floodOpTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(g.msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, g.buf); err != nil {
		return err
	}
	if string(g.buf) != string(g.msg) {
		return errors.New("echo returned other bytes")
	}
	return nil
}

// ops makes n pairs of operations, one every hostileEvery, until stop is
// closed (nil: never): a round trip on the kept stream, then a stream
// open. It returns the latencies of the successful ones, the failures and
// the first failure.
func (g *goodClient) ops(ctx context.Context, n int, stop <-chan struct{}) (rtt, open []time.Duration, failed int, first string) {
	fail := func(what string, d time.Duration, err error) {
		failed++
		if first == "" {
			first = fmt.Sprintf("%s, after %v: %v", what, d.Round(time.Millisecond), err)
		}
	}
	tick := time.NewTicker(hostileEvery)
	defer tick.Stop()
	for range n {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
		}
		if g.keep == nil {
			if err := g.reopen(ctx); err != nil {
				fail("reopening the kept stream", 0, err)
				continue
			}
		}
		t0 := time.Now()
		if err := g.roundTrip(g.keep); err != nil {
			fail("round trip", time.Since(t0), err)
			g.keep.Close()
			g.keep = nil
		} else {
			rtt = append(rtt, time.Since(t0))
		}
		t0 = time.Now()
		octx, cancel := context.WithTimeout(ctx, floodOpTimeout)
		c, err := g.d.Dial(octx, hostileRoute)
		cancel()
		if err == nil {
			err = g.roundTrip(c)
			c.Close()
		}
		if err != nil {
			fail("stream open", time.Since(t0), err)
			continue
		}
		open = append(open, time.Since(t0))
	}
	return
}

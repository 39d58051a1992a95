package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/bench"
)

// The latency section: what one request on one connection costs, through a
// local forwarder and the gateway to a TCP server, serially. Every path has
// two hops, like the tunnel: a client-side program on a local port and a
// server-side program in front of the server.
//
//	relay pair   tcprelay -> tcprelay (plain TCP, io.Copy): the floor of any two-hop proxy
//	direct       tunnel forward --direct -> gateway (one TLS connection per connection)
//	mux          tunnel forward -> gateway (one TLS connection, a yamux stream per connection)
//	before       the same as mux with the binaries of -latency-before (an earlier build)
//	ghostunnel   ghostunnel client -> ghostunnel server, when ghostunnel is on PATH
//
// The ping-pong is 64 bytes written and read back through the TCP echo
// backend, one at a time, on one connection per burst; the bursts of the
// targets are interleaved, round after round. pgbench -S runs against a
// throwaway PostgreSQL cluster when its server programs are installed.

const (
	lRelay  = "relay pair"
	lDirect = "tunnel --direct"
	lMux    = "tunnel (mux)"
	lBefore = "tunnel (mux), before"
	lGhost  = "ghostunnel pair"
)

// latTarget is one two-hop path: local addresses to connect to (echo, pg).
type latTarget struct {
	name  string
	echo  string
	pg    string
	procs []*child
}

func (t *latTarget) stop() {
	for _, p := range slices.Backward(t.procs) {
		p.stop()
	}
}

// latResult holds what was measured through one target.
type latResult struct {
	name   string
	hist   bench.Histogram
	rounds []time.Duration // mean per burst
	tps    map[int][]float64
	err    error
}

// latency runs the latency section; it fills s.latency and s.latNotes.
func (s *suite) latencyRuns(ctx context.Context) {
	var pg *pgCluster
	if bin := pgBinDir(); bin == "" {
		s.latNotes = append(s.latNotes, "pgbench -S: not measured: PostgreSQL server programs (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PATH (apt-get install postgresql)")
	} else if lookPath("pgbench") == "" && !isExec(filepath.Join(bin, "pgbench")) {
		s.latNotes = append(s.latNotes, "pgbench -S: not measured: pgbench not found")
	} else {
		var err error
		pg, err = startPG(ctx, bin, s.dir)
		if err != nil {
			s.latNotes = append(s.latNotes, fmt.Sprintf("pgbench -S: not measured: %v", err))
			s.logf("latency: %v", err)
		} else {
			defer pg.stop()
		}
	}
	pgAddr := ""
	if pg != nil {
		pgAddr = pg.addr
	}
	targets, err := s.startLatencyTargets(pgAddr)
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	if err != nil {
		s.latNotes = append(s.latNotes, fmt.Sprintf("latency: %v", err))
		s.logf("latency: %v", err)
		if len(targets) == 0 {
			return
		}
	}
	res := make([]*latResult, len(targets))
	for i, t := range targets {
		res[i] = &latResult{name: t.name, tps: map[int][]float64{}}
	}
	for r := range s.o.latRounds {
		for k := range targets {
			i := (k + r) % len(targets) // rotate the order: no target always runs first
			if ctx.Err() != nil {
				return
			}
			mean, err := pingPong(targets[i].echo, s.o.latPings, &res[i].hist)
			if err != nil {
				res[i].err = err
				s.logf("latency: %s: %v", targets[i].name, err)
				continue
			}
			res[i].rounds = append(res[i].rounds, mean)
		}
	}
	s.logf("latency: ping-pong done (%d rounds × %d round trips)", s.o.latRounds, s.o.latPings)
	if pg != nil {
		for r := range s.o.latRounds {
			for _, clients := range []int{1, 8} {
				for k := range targets {
					i := (k + r) % len(targets)
					if ctx.Err() != nil {
						return
					}
					tps, err := pgbenchS(ctx, pg, targets[i].pg, clients, s.o.pgDuration)
					if err != nil {
						s.logf("latency: pgbench %s, %d clients: %v", targets[i].name, clients, err)
						res[i].err = err
						continue
					}
					s.logf("latency: pgbench -S %s, %d clients: %.0f tps", targets[i].name, clients, tps)
					res[i].tps[clients] = append(res[i].tps[clients], tps)
				}
			}
		}
	}
	s.latency = res
	s.latPG = pg != nil
}

// startLatencyTargets starts the two-hop paths to the echo backend (and to
// pgAddr when not empty). It returns those that started.
func (s *suite) startLatencyTargets(pgAddr string) ([]*latTarget, error) {
	var out []*latTarget
	var errs []error
	// The relay pair: one pair per backend, as tcprelay has one -to.
	relay := &latTarget{name: lRelay}
	out = append(out, relay)
	for _, b := range []struct {
		to   string
		addr *string
	}{{s.back.echo, &relay.echo}, {pgAddr, &relay.pg}} {
		if b.to == "" {
			continue
		}
		inner, innerAddr, err := startListening(s.dir, "latency-relay-inner", s.exe("tcprelay"), []string{"-listen", "127.0.0.1:0", "-to", b.to})
		if err != nil {
			return out, err
		}
		relay.procs = append(relay.procs, inner)
		outer, outerAddr, err := startListening(s.dir, "latency-relay-outer", s.exe("tcprelay"), []string{"-listen", "127.0.0.1:0", "-to", innerAddr})
		if err != nil {
			return out, err
		}
		relay.procs = append(relay.procs, outer)
		*b.addr = outerAddr
	}

	tunnels := []struct {
		name, bin string
		direct    bool
	}{{lDirect, s.bin, true}, {lMux, s.bin, false}}
	if s.o.latBefore != "" {
		tunnels = append(tunnels, struct {
			name, bin string
			direct    bool
		}{lBefore, s.o.latBefore, false})
	}
	gws := map[string]string{} // binary directory -> gateway address
	for _, tu := range tunnels {
		t := &latTarget{name: tu.name}
		gwAddr, ok := gws[tu.bin]
		if !ok {
			gwName := "latency-gateway"
			if tu.bin != s.bin {
				gwName = "latency-gateway-before"
			}
			gw, addr, err := s.startLatencyGateway(filepath.Join(tu.bin, "gateway"), gwName, pgAddr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", tu.name, err))
				continue
			}
			gws[tu.bin], gwAddr = addr, addr
			// Stopped with the relay target, which is always returned:
			// whatever fails below, no gateway is left running.
			relay.procs = append(relay.procs, gw)
		}
		echoL, err := freePort()
		if err != nil {
			return out, err
		}
		args := []string{"forward", "--gateway", gwAddr, "--cert", s.files.clientCert, "--key", s.files.clientKey,
			"--ca", s.files.ca, "--server-name", "localhost", "--log-level", "warn", "-L", echoL + "=echo"}
		wait := []string{echoL}
		if pgAddr != "" {
			pgL, err := freePort()
			if err != nil {
				return out, err
			}
			args = append(args, "-L", pgL+"=pg")
			wait = append(wait, pgL)
			t.pg = pgL
		}
		if tu.direct {
			args = append(args, "--direct")
		}
		c, err := start(s.dir, "latency-"+strings.NewReplacer(" ", "-", "(", "", ")", "", ",", "").Replace(tu.name),
			filepath.Join(tu.bin, "tunnel"), args, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := waitTCP(c, wait...); err != nil {
			c.stop()
			errs = append(errs, err)
			continue
		}
		t.procs = append([]*child{c}, t.procs...)
		t.echo = echoL
		out = append(out, t)
	}
	if g, err := s.startGhostunnel(pgAddr); err != nil {
		s.latNotes = append(s.latNotes, "ghostunnel: not measured: "+err.Error())
	} else {
		out = append(out, g)
	}
	return out, errors.Join(errs...)
}

// startLatencyGateway starts a gateway with the echo route (and pg).
func (s *suite) startLatencyGateway(bin, name, pgAddr string) (*child, string, error) {
	addr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	args := []string{"run", "--listen", addr, "--cert", s.files.serverCert, "--key", s.files.serverKey, "--ca", s.files.ca,
		"--allow", "127.0.0.1", "--allow-id", "any", "--route", "echo=" + s.back.echo,
		"--log-level", "warn", "--log-format", "json"}
	if pgAddr != "" {
		args = append(args, "--route", "pg="+pgAddr)
	}
	c, err := start(s.dir, name, bin, args, nil)
	if err != nil {
		return nil, "", err
	}
	if err := waitTCP(c, addr); err != nil {
		return nil, "", err
	}
	return c, addr, nil
}

// startGhostunnel starts a ghostunnel client and server pair per backend
// when ghostunnel is on PATH.
func (s *suite) startGhostunnel(pgAddr string) (*latTarget, error) {
	bin := lookPath("ghostunnel")
	if bin == "" {
		return nil, errors.New("ghostunnel is not on PATH")
	}
	t := &latTarget{name: lGhost}
	for _, b := range []struct {
		to   string
		addr *string
	}{{s.back.echo, &t.echo}, {pgAddr, &t.pg}} {
		if b.to == "" {
			continue
		}
		srv, err := freePort()
		if err != nil {
			return nil, err
		}
		cli, err := freePort()
		if err != nil {
			return nil, err
		}
		sp, err := start(s.dir, "latency-ghostunnel-server", bin, []string{"server", "--listen", srv, "--target", b.to,
			"--cert", s.files.serverCert, "--key", s.files.serverKey, "--cacert", s.files.ca, "--allow-all", "--quiet=all"}, nil)
		if err != nil {
			t.stop()
			return nil, err
		}
		t.procs = append(t.procs, sp)
		cp, err := start(s.dir, "latency-ghostunnel-client", bin, []string{"client", "--listen", cli, "--target", srv,
			"--cert", s.files.clientCert, "--key", s.files.clientKey, "--cacert", s.files.ca, "--override-server-name", "localhost", "--quiet=all"}, nil)
		if err != nil {
			t.stop()
			return nil, err
		}
		t.procs = append(t.procs, cp)
		if err := waitTCP(cp, cli); err != nil {
			t.stop()
			return nil, err
		}
		*b.addr = cli
	}
	return t, nil
}

// pingPong connects to addr and makes n serial 64-byte round trips (after
// a few unrecorded ones), recording each in h; it returns their mean.
func pingPong(addr string, n int, h *bench.Histogram) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		return 0, err
	}
	msg, buf := make([]byte, 64), make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	var total time.Duration
	for i := range n + 20 {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, fmt.Errorf("round trip %d: %w", i, err)
		}
		d := time.Since(t0)
		if string(buf) != string(msg) {
			return 0, fmt.Errorf("round trip %d: the echo differs from what was sent", i)
		}
		if i >= 20 {
			h.Record(d)
			total += d
		}
	}
	return total / time.Duration(n), nil
}

// pgCluster is a throwaway PostgreSQL server on loopback.
type pgCluster struct {
	bin, dir, data, addr string
	proc                 *child
	prefix               []string // runuser -u postgres -- when the suite runs as root
}

func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// startPG creates a cluster (trust authentication, user postgres) in a
// directory of its own and starts it on 127.0.0.1 and a free port, then
// initialises pgbench's tables (scale 1). As root, the server runs as the
// postgres user through runuser: PostgreSQL refuses to run as root.
func startPG(ctx context.Context, bin, workDir string) (*pgCluster, error) {
	dir, err := os.MkdirTemp("/tmp", "portcullis-bench-pg-")
	if err != nil {
		return nil, err
	}
	p := &pgCluster{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, PostgreSQL must run as another user, and there is no user postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		runuser := lookPath("runuser")
		if runuser == "" {
			os.RemoveAll(dir)
			return nil, errors.New("running as root, PostgreSQL must run as user postgres, and runuser is not found")
		}
		p.prefix = []string{runuser, "-u", "postgres", "--"}
	}
	cmd := func(name string, args ...string) (string, []string) {
		all := append(append(slices.Clone(p.prefix), filepath.Join(bin, name)), args...)
		return all[0], all[1:]
	}
	exe, args := cmd("initdb", "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if _, err := runCmd(ctx, dir, exe, args...); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if p.addr, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	_, port, _ := net.SplitHostPort(p.addr)
	exe, args = cmd("postgres", "-D", p.data, "-k", dir, "-p", port, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB", "-c", "max_connections=60")
	if p.proc, err = start(workDir, "postgres", exe, args, nil); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := waitTCP(p.proc, p.addr); err != nil {
		p.stop()
		return nil, err
	}
	host, _, _ := net.SplitHostPort(p.addr)
	// The port accepts before the server takes sessions ("the database
	// system is starting up"): retry for up to 30s.
	for i := 0; ; i++ {
		out, err := runCmd(ctx, dir, p.pgbench(), "-i", "-q", "-s", "1", "-h", host, "-p", port, "-U", "postgres", "postgres")
		if err == nil {
			return p, nil
		}
		if !strings.Contains(out, "starting up") || i >= 150 || ctx.Err() != nil {
			p.stop()
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *pgCluster) pgbench() string {
	if b := filepath.Join(p.bin, "pgbench"); isExec(b) {
		return b
	}
	return lookPath("pgbench")
}

// stop asks the postmaster for a fast shutdown (SIGINT to the pid in
// postmaster.pid: runuser does not pass signals on), waits, and removes the
// cluster.
func (p *pgCluster) stop() {
	if b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil && pid > 1 {
			interrupt(pid)
		}
	}
	select {
	case <-p.proc.done:
	case <-time.After(10 * time.Second):
	}
	p.proc.stop()
	os.RemoveAll(p.dir)
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbenchS runs pgbench -S (select only, prepared statements) with clients
// connections against addr for d, and returns its TPS.
func pgbenchS(ctx context.Context, p *pgCluster, addr string, clients int, d time.Duration) (float64, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	c := strconv.Itoa(clients)
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	out, err := runCmd(ctx, p.dir, p.pgbench(), "-n", "-S", "-M", "prepared", "-c", c, "-j", c, "-T", secs,
		"-h", host, "-p", port, "-U", "postgres", "postgres")
	if err != nil {
		return 0, err
	}
	m := tpsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps line: %q", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// median returns the median of v (0 when empty).
func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// latencyResult returns the result of target name, or nil.
func (s *suite) latencyResult(name string) *latResult {
	for _, r := range s.latency {
		if r.name == name {
			return r
		}
	}
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }

// latencySection renders the latency tables.
func (s *suite) latencySection() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Latency: one request at a time\n\n")
	w("Every path has two hops, like the tunnel: a program on a local port, then one in front of the server. `relay pair` is two plain Go io.Copy relays (tcprelay → tcprelay, no TLS): the floor of any two-hop proxy; `tunnel --direct` and `tunnel (mux)` are `tunnel forward` → gateway (one TLS connection per connection, or one yamux stream per connection on one TLS connection)%s. Ping-pong: 64 bytes written and read back through the TCP echo backend, serially on one connection; %d rounds of %d round trips per target, interleaved (the order rotates each round); p50/p99 over all round trips, mean = median of the rounds' means. Ratios are to the relay pair; for latency lower is better.\n\n",
		map[bool]string{true: "; `tunnel (mux), before` is the same with the binaries in " + "`-latency-before`", false: ""}[s.o.latBefore != ""],
		s.o.latRounds, s.o.latPings)
	relay := s.latencyResult(lRelay)
	var rp50, rp99, rmean time.Duration
	if relay != nil && relay.hist.Count() > 0 {
		rp50, rp99, rmean = relay.hist.Quantile(0.5), relay.hist.Quantile(0.99), median(relay.rounds)
	}
	lr := func(a, b time.Duration) string { return ratio(float64(a), float64(b)) }
	t := table{head: []string{"path", "p50 µs", "p99 µs", "mean µs", "p50 / relay pair", "p99 / relay pair", "mean / relay pair", "round trips"}}
	for _, r := range s.latency {
		if r.hist.Count() == 0 {
			t.add(r.name, "–", "–", "–", "–", "–", "–", "failed: "+strings.ReplaceAll(firstLine(fmt.Sprint(r.err)), "|", "/"))
			continue
		}
		p50, p99, mean := r.hist.Quantile(0.5), r.hist.Quantile(0.99), median(r.rounds)
		t.add(r.name, us(p50), us(p99), us(mean), lr(p50, rp50), lr(p99, rp99), lr(mean, rmean), fmt.Sprint(r.hist.Count()))
	}
	w("%s\n", t.String())
	if s.latPG {
		w("pgbench -S (select only, `-M prepared`, scale 1, a throwaway PostgreSQL cluster on loopback with fsync off), %v per run, %d rounds interleaved; TPS is the median of the rounds; ratios to the relay pair (higher is better).\n\n", s.o.pgDuration, s.o.latRounds)
		pt := table{head: []string{"path", "1 client TPS", "÷ relay pair", "8 clients TPS", "÷ relay pair", "runs (1 / 8)"}}
		r1, r8 := 0.0, 0.0
		if relay != nil {
			r1, r8 = median(relay.tps[1]), median(relay.tps[8])
		}
		for _, r := range s.latency {
			t1, t8 := median(r.tps[1]), median(r.tps[8])
			pt.add(r.name, f0(t1), ratio(t1, r1), f0(t8), ratio(t8, r8), fmt.Sprintf("%d / %d", len(r.tps[1]), len(r.tps[8])))
		}
		w("%s\n", pt.String())
	}
	for _, n := range s.latNotes {
		w("- %s\n", strings.ReplaceAll(n, "\n", " "))
	}
	if len(s.latNotes) > 0 {
		w("\n")
	}
	return b.String()
}

// latencyChecks are the latency targets for the Targets table.
func (s *suite) latencyChecks(add func(name, want string, value, bound float64, unit string, lowerIsBetter bool)) {
	relay, mux := s.latencyResult(lRelay), s.latencyResult(lMux)
	if relay == nil || mux == nil || relay.hist.Count() == 0 || mux.hist.Count() == 0 {
		return
	}
	add("ping-pong p50, mux ≤ 1.1× relay pair", "≤ 1.10× relay pair",
		float64(mux.hist.Quantile(0.5))/float64(relay.hist.Quantile(0.5)), 1.1, "× relay pair", true)
	add("ping-pong p99, mux ≤ 1.1× relay pair", "≤ 1.10× relay pair",
		float64(mux.hist.Quantile(0.99))/float64(relay.hist.Quantile(0.99)), 1.1, "× relay pair", true)
	for _, c := range []int{1, 8} {
		if r, m := median(relay.tps[c]), median(mux.tps[c]); r > 0 && m > 0 {
			add(fmt.Sprintf("pgbench -S, %d client(s), mux ≥ relay pair", c), "≥ 1.00× relay pair", m/r, 1, "× relay pair", false)
		}
	}
}

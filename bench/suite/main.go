package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/bench"
	"github.com/portcullis-gw/portcullis/bench/internal/hostile"
	"github.com/portcullis-gw/portcullis/bench/proc"
)

// options are the suite's flags.
type options struct {
	duration    time.Duration
	rounds      int
	concurrency int
	idle        int
	micro       bool
	benchtime   string
	baselines   string
	out         string
	logLevel    string
	keep        bool
	quick       bool

	flood        bool   // the silent-socket flood runs
	floodConns   int    // sockets of the flood
	floodOps     int    // operations of the good client, unloaded and under the flood
	floodGateway string // the gateway binary of the flood runs; "" is the one built

	latency    bool          // the latency section (ping-pong, pgbench -S)
	latOnly    bool          // only the latency section
	latRounds  int           // interleaved rounds of the latency section
	latPings   int           // round trips per ping-pong burst
	pgDuration time.Duration // length of each pgbench run
	latBefore  string        // directory of an earlier build's gateway and tunnel, measured beside

	hostile         bool          // the authenticated-client floods run
	hostileModes    string        // their modes, comma separated
	hostileRounds   int           // rounds of every mode against every build
	hostileOps      int           // operations of the good client, unloaded and under each flood
	hostileDuration time.Duration // length of each flood
	hostileBaseline string        // git ref of the older gateway; "" measures only the one built
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "suite: %v\n", err)
		os.Exit(1)
	}
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "length of each load run")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds of the runs that the targets compare (handshakes, streams, 1-stream throughput), interleaved; the best round of each counts")
	fs.IntVar(&o.concurrency, "concurrency", 32, "workers of the handshake, streams and deny runs")
	fs.IntVar(&o.idle, "idle", 10000, "idle streams held open for the memory measurement (0 skips it)")
	fs.BoolVar(&o.micro, "micro", true, "also run the Go microbenchmarks (mux, gateway, acl, bench)")
	fs.StringVar(&o.benchtime, "benchtime", "200ms", "-benchtime of the microbenchmarks")
	fs.StringVar(&o.baselines, "baselines", "tcprelay,tlsterm,haproxy,stunnel", "baselines to measure, comma separated (haproxy and stunnel are skipped when not installed)")
	fs.StringVar(&o.out, "out", "", `results file (default bench/RESULTS.md in the repository; "-" writes none)`)
	fs.StringVar(&o.logLevel, "log-level", "info", "the gateway's --log-level during the runs (its log goes to a file)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (binaries, PKI, logs)")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: 1s runs, 1,000 idle streams, no microbenchmarks, a short flood (silent sockets only, 20 operations), results not written unless -out is given")
	fs.BoolVar(&o.flood, "flood", true, "also measure a good client's handshakes under a flood of silent (and trickling) sockets from 127.0.0.2")
	fs.IntVar(&o.floodConns, "flood-conns", 500, "sockets of the flood")
	fs.IntVar(&o.floodOps, "flood-ops", 100, "operations of the good client, one every 100 ms, unloaded and again under the flood (-quick: 20)")
	fs.StringVar(&o.floodGateway, "flood-gateway", "", "gateway binary to measure under the flood instead of the one built (an older build, for a before/after)")
	fs.BoolVar(&o.latency, "latency", true, "also measure one request at a time: a 64-byte ping-pong, and pgbench -S when PostgreSQL is installed, through a relay pair, tunnel --direct and tunnel (mux)")
	fs.BoolVar(&o.latOnly, "latency-only", false, "run only the latency section (results not written unless -out is given)")
	fs.IntVar(&o.latRounds, "latency-rounds", 5, "interleaved rounds of the latency section")
	fs.IntVar(&o.latPings, "latency-pings", 2000, "64-byte round trips per target and round")
	fs.DurationVar(&o.pgDuration, "pgbench-duration", 5*time.Second, "length of each pgbench -S run (whole seconds)")
	fs.StringVar(&o.latBefore, "latency-before", "", "directory holding the gateway and tunnel binaries of an earlier build, measured beside in the latency section (a before/after)")
	fs.BoolVar(&o.hostile, "hostile", true, "also measure a good client's round trips and stream opens while bench/cmd/hostile, with a valid certificate, floods its own session from 127.0.0.2")
	fs.StringVar(&o.hostileModes, "hostile-modes", strings.Join(hostile.Modes, ","), "floods of -hostile, comma separated")
	fs.IntVar(&o.hostileRounds, "hostile-rounds", 2, "rounds of every flood against every gateway build, interleaved (-quick: 1)")
	fs.IntVar(&o.hostileOps, "hostile-ops", 300, "round trips and stream opens of the good client, one of each every 20 ms, unloaded and under each flood (-quick: 50)")
	fs.DurationVar(&o.hostileDuration, "hostile-duration", 10*time.Second, "length of each flood (-quick: 3s)")
	fs.StringVar(&o.hostileBaseline, "hostile-baseline", "e353568", `git ref of the gateway to compare under the floods (built in a temporary git worktree); "" compares none`)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: the suite takes flags only", fs.Arg(0))
	}
	if o.quick {
		o.duration, o.idle, o.micro, o.rounds = time.Second, min(o.idle, 1000), false, 1
		if !set["flood-ops"] {
			o.floodOps = 20
		}
		if !set["hostile-rounds"] {
			o.hostileRounds = 1
		}
		if !set["hostile-ops"] {
			o.hostileOps = 50
		}
		if !set["hostile-duration"] {
			o.hostileDuration = 3 * time.Second
		}
		if o.out == "" {
			o.out = "-"
		}
		if !set["latency-rounds"] {
			o.latRounds = 1
		}
		if !set["latency-pings"] {
			o.latPings = 200
		}
		if !set["pgbench-duration"] {
			o.pgDuration = time.Second
		}
	}
	if o.latOnly {
		o.latency = true
		if o.out == "" {
			o.out = "-"
		}
	}
	switch {
	case o.duration <= 0:
		return o, fmt.Errorf("-duration %v: want a positive duration such as 4s", o.duration)
	case o.concurrency < 1:
		return o, fmt.Errorf("-concurrency %d: want at least 1", o.concurrency)
	case o.rounds < 1 || o.rounds > 10:
		return o, fmt.Errorf("-rounds %d: want 1 to 10", o.rounds)
	case o.idle < 0:
		return o, fmt.Errorf("-idle %d: want 0 (skip) or a number of streams", o.idle)
	case o.floodConns < 1 || o.floodConns > 20000:
		return o, fmt.Errorf("-flood-conns %d: want 1 to 20000", o.floodConns)
	case o.floodOps < 1:
		return o, fmt.Errorf("-flood-ops %d: want at least 1", o.floodOps)
	case o.latRounds < 1 || o.latRounds > 50:
		return o, fmt.Errorf("-latency-rounds %d: want 1 to 50", o.latRounds)
	case o.latPings < 1:
		return o, fmt.Errorf("-latency-pings %d: want at least 1", o.latPings)
	case o.pgDuration < time.Second:
		return o, fmt.Errorf("-pgbench-duration %v: want at least 1s", o.pgDuration)
	case o.hostileRounds < 1 || o.hostileRounds > 10:
		return o, fmt.Errorf("-hostile-rounds %d: want 1 to 10", o.hostileRounds)
	case o.hostileOps < 1:
		return o, fmt.Errorf("-hostile-ops %d: want at least 1", o.hostileOps)
	case o.hostileDuration < time.Second || o.hostileDuration > 5*time.Minute:
		return o, fmt.Errorf("-hostile-duration %v: want 1s to 5m", o.hostileDuration)
	}
	if o.latBefore != "" {
		for _, b := range []string{"gateway", "tunnel"} {
			if fi, err := os.Stat(filepath.Join(o.latBefore, b)); err != nil || fi.IsDir() {
				return o, fmt.Errorf("-latency-before %s: want a directory holding the gateway and tunnel binaries of an earlier build (go build -o DIR/ ./cmd/gateway ./cmd/tunnel): no %s there", o.latBefore, b)
			}
		}
	}
	for _, m := range splitList(o.hostileModes) {
		if !slices.Contains(hostile.Modes, m) {
			return o, fmt.Errorf("-hostile-modes: unknown flood %q; want some of %s", m, strings.Join(hostile.Modes, ","))
		}
	}
	for _, b := range splitList(o.baselines) {
		if !slices.Contains([]string{"tcprelay", "tlsterm", "haproxy", "stunnel"}, b) {
			return o, fmt.Errorf("-baselines: unknown baseline %q; want tcprelay, tlsterm, haproxy or stunnel", b)
		}
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// suite is one run of the whole benchmark.
type suite struct {
	o        options
	root     string
	dir      string // work directory
	bin      string // built binaries
	files    files
	back     *backends
	stderr   io.Writer
	results  []*measure
	memory   []memResult
	micro    string
	flood    []floodResult
	hostile  []hostileResult
	latency  []*latResult
	latNotes []string
	latPG    bool     // pgbench ran
	notes    []string // skipped baselines and other remarks
	started  time.Time
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "RESULTS.md")
	}
	raiseFileLimit()
	dir, err := os.MkdirTemp("", "portcullis-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(stderr, "work directory: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	s := &suite{o: o, root: root, dir: dir, bin: filepath.Join(dir, "bin"), stderr: stderr, started: time.Now()}

	s.logf("building gateway, tunnel, tlsterm, tcprelay, hostile")
	if _, err := runCmd(ctx, root, "go", "build", "-o", s.bin+"/",
		"./cmd/gateway", "./cmd/tunnel", "./bench/cmd/tlsterm", "./bench/cmd/tcprelay", "./bench/cmd/hostile"); err != nil {
		return err
	}
	if s.files, err = makePKI(s.exe("gateway"), dir); err != nil {
		return err
	}
	if s.back, err = startBackends(); err != nil {
		return err
	}
	defer s.back.close()

	if o.latOnly {
		s.latencyRuns(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		out := s.latencySection()
		fmt.Fprint(stdout, out)
		if o.out != "-" {
			if err := os.WriteFile(o.out, []byte(out), 0o644); err != nil {
				return err
			}
			s.logf("wrote %s", o.out)
		}
		return nil
	}
	if err := s.loadRuns(ctx); err != nil {
		return err
	}
	if o.latency && ctx.Err() == nil {
		s.latencyRuns(ctx)
	}
	if o.idle > 0 && ctx.Err() == nil {
		for _, route := range []string{"echo", "becho"} {
			m, err := s.idleMemory(ctx, route, o.idle)
			if err != nil {
				s.notes = append(s.notes, fmt.Sprintf("idle memory through %s: %v", route, err))
				s.logf("idle memory through %s: %v", route, err)
				continue
			}
			s.memory = append(s.memory, m)
		}
	}
	if o.flood && ctx.Err() == nil {
		s.floodRuns(ctx)
	}
	if o.hostile && ctx.Err() == nil {
		s.hostileRuns(ctx)
	}
	if o.micro && ctx.Err() == nil {
		s.micro = s.runMicro(ctx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	report := s.report()
	fmt.Fprint(stdout, report.summary)
	if o.out != "-" {
		if err := writeResults(o.out, report.markdown); err != nil {
			return err
		}
		s.logf("wrote %s", o.out)
	}
	return nil
}

func (s *suite) exe(name string) string { return filepath.Join(s.bin, name) }

func (s *suite) logf(format string, a ...any) {
	fmt.Fprintf(s.stderr, "[%5.1fs] %s\n", time.Since(s.started).Seconds(), fmt.Sprintf(format, a...))
}

// measure is one `tunnel bench` run against one target.
type measure struct {
	group  string // what is compared
	target string
	res    *bench.JSON
	cpu    time.Duration // the target's CPU time during the run
	err    error
}

// ok reports whether the run produced a result with successes.
func (m *measure) ok() bool { return m != nil && m.err == nil && m.res != nil && m.res.Ops > 0 }

// Groups of runs, each compared across targets.
const (
	gHandshake  = "full handshakes"
	gResume     = "resumed handshakes"
	gStreams    = "stream opens"
	gUp1        = "throughput up, 1 stream"
	gDown1      = "throughput down, 1 stream"
	gBoth1      = "throughput both, 1 stream"
	gBoth8      = "throughput both, 8 streams"
	gDeny       = "denied connections"
	tGatewayMux = "gateway (mux)"
	tGatewayDir = "gateway (direct)"
	tGatewayB   = "gateway (mux, builtin:echo)"
)

// loadRuns starts the targets and runs each group of loads.
func (s *suite) loadRuns(ctx context.Context) error {
	gw, err := startGateway(s.exe("gateway"), s.dir, s.files, s.back, s.o.logLevel, "gateway")
	if err != nil {
		return err
	}
	defer gw.proc.stop()
	targets := map[string]*target{}
	for _, name := range splitList(s.o.baselines) {
		t, err := s.startBaseline(name)
		if err != nil {
			s.notes = append(s.notes, fmt.Sprintf("%s: not measured: %v", name, err))
			s.logf("%s: not measured: %v", name, err)
			continue
		}
		defer t.proc.stop()
		targets[name] = t
	}
	base := func(names ...string) []*target {
		var out []*target
		for _, n := range names {
			if t := targets[n]; t != nil {
				out = append(out, t)
			}
		}
		return out
	}
	c := strconv.Itoa(s.o.concurrency)
	type step struct {
		group, label string
		t            *target
		route        string
		args         []string
	}
	var steps []step
	add := func(group, label string, t *target, route string, args ...string) {
		steps = append(steps, step{group, label, t, route, args})
	}
	hs := []string{"--mode", "handshake", "--concurrency", c}
	add(gHandshake, tGatewayMux, gw, "echo", hs...)
	add(gHandshake, tGatewayDir, gw, "echo", append(hs, "--direct")...)
	add(gHandshake, tGatewayB, gw, "becho", hs...)
	for _, t := range base("tlsterm", "haproxy", "stunnel", "tcprelay") {
		add(gHandshake, t.name, t, "echo", hs...)
	}
	add(gResume, tGatewayMux, gw, "echo", append(hs, "--resume")...)
	for _, t := range base("tlsterm", "haproxy") {
		add(gResume, t.name, t, "echo", append(hs, "--resume")...)
	}
	add(gStreams, tGatewayMux, gw, "echo", "--mode", "streams", "--concurrency", c)
	add(gStreams, tGatewayB, gw, "becho", "--mode", "streams", "--concurrency", c)
	tp := func(dir string, streams int) []string {
		return []string{"--mode", "throughput", "--direction", dir, "--streams", strconv.Itoa(streams)}
	}
	add(gBoth1, tGatewayMux, gw, "echo", tp("both", 1)...)
	add(gBoth1, tGatewayDir, gw, "echo", append(tp("both", 1), "--direct")...)
	for _, t := range base("tlsterm", "haproxy", "stunnel", "tcprelay") {
		add(gBoth1, t.name, t, "echo", tp("both", 1)...)
	}
	add(gUp1, tGatewayMux, gw, "discard", tp("up", 1)...)
	for _, t := range base("tlsterm", "haproxy") {
		add(gUp1, t.name, t, "discard", tp("up", 1)...)
	}
	add(gDown1, tGatewayMux, gw, "source", tp("down", 1)...)
	for _, t := range base("tlsterm", "haproxy") {
		add(gDown1, t.name, t, "source", tp("down", 1)...)
	}
	add(gBoth8, tGatewayMux, gw, "echo", tp("both", 8)...)
	for _, t := range base("tlsterm") {
		add(gBoth8, t.name, t, "echo", tp("both", 8)...)
	}
	add(gDeny, tGatewayMux, gw, "echo", "--mode", "deny", "--concurrency", c, "--source", "127.0.0.2")

	// More rounds of the groups the targets compare, interleaved so that a
	// burst of load elsewhere on the machine hits one round, not one target.
	first := steps
	for range s.o.rounds - 1 {
		for _, st := range first {
			if slices.Contains([]string{gHandshake, gStreams, gBoth1, gUp1, gDown1}, st.group) {
				steps = append(steps, st)
			}
		}
	}
	for i, st := range steps {
		if ctx.Err() != nil {
			break
		}
		m := s.measure(ctx, st.group, st.label, st.t, st.route, st.args)
		s.results = append(s.results, m)
		if m.err != nil {
			s.logf("[%d/%d] %s, %s: %v", i+1, len(steps), st.group, st.label, m.err)
			continue
		}
		s.logf("[%d/%d] %s, %s: %.0f/s %.1f MB/s p50 %.3fms p99 %.3fms errors %d, server CPU %v",
			i+1, len(steps), st.group, st.label, m.res.RatePerSec, m.res.MBPerSec, m.res.P50Ms, m.res.P99Ms,
			m.res.Errors, m.cpu.Round(time.Millisecond))
	}
	s.results = best(s.results)
	return nil
}

// best keeps one measure per group and target, in the order they first
// appear: the one with the highest rate (MB/s in throughput groups), or the
// first when none succeeded.
func best(all []*measure) []*measure {
	var out []*measure
	index := map[[2]string]int{}
	score := func(m *measure) float64 {
		if !m.ok() {
			return -1
		}
		if m.res.Mode == bench.ModeThroughput {
			return m.res.MBPerSec
		}
		return m.res.RatePerSec
	}
	for _, m := range all {
		k := [2]string{m.group, m.target}
		i, seen := index[k]
		switch {
		case !seen:
			index[k] = len(out)
			out = append(out, m)
		case score(m) > score(out[i]):
			out[i] = m
		}
	}
	return out
}

func (s *suite) startBaseline(name string) (*target, error) {
	switch name {
	case "tlsterm":
		return startTLSTerm(s.exe("tlsterm"), s.dir, s.files, s.back)
	case "tcprelay":
		return startTCPRelay(s.exe("tcprelay"), s.dir, s.back)
	case "haproxy":
		bin := lookPath("haproxy")
		if bin == "" {
			return nil, errors.New("haproxy is not installed (apt-get install haproxy)")
		}
		return startHAProxy(bin, s.dir, s.files, s.back)
	case "stunnel":
		bin := lookPath("stunnel4", "stunnel")
		if bin == "" {
			return nil, errors.New("stunnel is not installed (apt-get install stunnel4)")
		}
		return startStunnel(bin, s.dir, s.files, s.back)
	}
	return nil, fmt.Errorf("unknown baseline %q", name)
}

// measure runs `tunnel bench --json` once against t and reads the target's
// CPU time around it.
func (s *suite) measure(ctx context.Context, group, label string, t *target, route string, args []string) *measure {
	m := &measure{group: group, target: label}
	full := []string{"bench", "--gateway", t.addr(route), "--cert", s.files.clientCert, "--key", s.files.clientKey,
		"--ca", s.files.ca, "--server-name", "localhost", "--json", "--route", route,
		"--duration", s.o.duration.String()}
	full = append(full, t.args...)
	full = append(full, args...)
	rctx, cancel := context.WithTimeout(ctx, s.o.duration+2*time.Minute)
	defer cancel()
	before, err := proc.CPU(t.proc.pid())
	if err != nil {
		m.err = fmt.Errorf("reading the CPU time of %s: %w", t.name, err)
		return m
	}
	cmd := exec.CommandContext(rctx, s.exe("tunnel"), full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	after, err := proc.CPU(t.proc.pid())
	if err != nil {
		m.err = fmt.Errorf("reading the CPU time of %s: %w (did it crash? %s)", t.name, err, t.proc.tail())
		return m
	}
	m.cpu = after - before
	var j bench.JSON
	if jerr := json.Unmarshal(out.Bytes(), &j); jerr == nil && out.Len() > 0 {
		m.res = &j
	}
	switch {
	case runErr != nil:
		m.err = fmt.Errorf("tunnel %s: %w: %s", strings.Join(full, " "), runErr, strings.TrimSpace(errb.String()))
	case m.res == nil:
		m.err = fmt.Errorf("tunnel bench printed no JSON result: %q", out.String())
	}
	return m
}

// goVersion returns the toolchain version the binaries were built with.
func goVersion() string { return runtime.Version() }

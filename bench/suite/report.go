package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/portcullis-gw/portcullis/bench/proc"
)

// notesHeading starts the hand-written part of RESULTS.md that a new run
// keeps.
const notesHeading = "## Notes"

type report struct {
	markdown string // the whole RESULTS.md, without the kept notes
	summary  string // what the suite prints
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// find returns the run of group against target, or nil.
func (s *suite) find(group, target string) *measure {
	for _, m := range s.results {
		if m.group == group && m.target == target {
			return m
		}
	}
	return nil
}

// table renders a markdown table.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for range t.head {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// cpuPerOp returns the target's CPU time per successful operation, in µs.
func cpuPerOp(m *measure) float64 {
	if !m.ok() {
		return 0
	}
	return float64(m.cpu.Microseconds()) / float64(m.res.Ops)
}

// cpuPerGB returns the target's CPU seconds per 10^9 payload bytes.
func cpuPerGB(m *measure) float64 {
	if !m.ok() {
		return 0
	}
	bytes := m.res.BytesDown
	if m.res.Direction == "up" {
		bytes = m.res.BytesUp
	}
	if bytes <= 0 {
		return 0
	}
	return m.cpu.Seconds() / (float64(bytes) / 1e9)
}

func rate(m *measure) float64 {
	if !m.ok() {
		return 0
	}
	return m.res.RatePerSec
}

func mbps(m *measure) float64 {
	if !m.ok() {
		return 0
	}
	return m.res.MBPerSec
}

func errText(m *measure) string {
	switch {
	case m == nil:
		return "–"
	case m.err != nil:
		return "failed: " + strings.ReplaceAll(firstLine(m.err.Error()), "|", "/")
	case m.res.Errors == 0:
		return "0"
	}
	var kinds []string
	for _, k := range sortedKeys(m.res.ErrorsByKind) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, m.res.ErrorsByKind[k]))
	}
	return fmt.Sprintf("%d (%s)", m.res.Errors, strings.Join(kinds, ", "))
}

// connTable renders a group measured in connections or streams per second.
func (s *suite) connTable(group string) string {
	t := table{head: []string{"target", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU µs/op",
		"gateway (mux) / this", "gateway (direct) / this", "CPU ratio (mux)", "errors", "TLS"}}
	for _, m := range s.results {
		if m.group != group {
			continue
		}
		row := []string{m.target, "–", "–", "–", "–", "–", "", "", "", errText(m), ""}
		if m.ok() {
			row[1], row[2], row[3], row[4] = f0(m.res.RatePerSec), f3(m.res.P50Ms), f3(m.res.P99Ms), f3(m.res.P999Ms)
			row[5] = f0(cpuPerOp(m))
			row[10] = strings.TrimSpace(m.res.TLSVersion + " " + m.res.TLSGroup)
			if m.res.Resume {
				row[10] += fmt.Sprintf(", %d resumed", m.res.Resumed)
			}
		}
		if !strings.HasPrefix(m.target, "gateway") {
			row[6] = ratio(rate(s.find(group, tGatewayMux)), rate(m))
			row[7] = ratio(rate(s.find(group, tGatewayDir)), rate(m))
			row[8] = ratio(cpuPerOp(s.find(group, tGatewayMux)), cpuPerOp(m))
		}
		t.add(row...)
	}
	return t.String()
}

// throughputTable renders a throughput group.
func (s *suite) throughputTable(group string) string {
	t := table{head: []string{"target", "MB/s", "GiB/s", "server CPU s/GB", "gateway (mux) / this", "CPU ratio (mux)", "errors"}}
	for _, m := range s.results {
		if m.group != group {
			continue
		}
		row := []string{m.target, "–", "–", "–", "", "", errText(m)}
		if m.ok() {
			row[1], row[2], row[3] = f0(mbps(m)), fmt.Sprintf("%.2f", mbps(m)*1e6/(1<<30)), fmt.Sprintf("%.2f", cpuPerGB(m))
		}
		if !strings.HasPrefix(m.target, "gateway") {
			row[4] = ratio(mbps(s.find(group, tGatewayMux)), mbps(m))
			row[5] = ratio(cpuPerGB(s.find(group, tGatewayMux)), cpuPerGB(m))
		}
		t.add(row...)
	}
	return t.String()
}

// check is one target of the project.
type check struct {
	name, want, got string
	met             bool
	known           bool
	missedBy        string
}

func (s *suite) checks() []check {
	var out []check
	hsMux := rate(s.find(gHandshake, tGatewayMux))
	hsDir := rate(s.find(gHandshake, tGatewayDir))
	add := func(name, want string, value, bound float64, unit string, lowerIsBetter bool) {
		c := check{name: name, want: want}
		if value <= 0 || bound <= 0 {
			c.got = "not measured"
			out = append(out, c)
			return
		}
		c.known = true
		c.got = fmt.Sprintf("%.2f%s", value, unit)
		if lowerIsBetter {
			c.met = value <= bound
			if !c.met {
				c.missedBy = fmt.Sprintf("%.0f%% over", (value/bound-1)*100)
			}
		} else {
			c.met = value >= bound
			if !c.met {
				c.missedBy = fmt.Sprintf("%.0f%% short", (1-value/bound)*100)
			}
		}
		out = append(out, c)
	}
	if tl := rate(s.find(gHandshake, "tlsterm")); tl > 0 {
		add("full handshakes/s, mux ≥ bare crypto/tls terminator", "≥ 1.00× tlsterm", hsMux/tl, 1, "× tlsterm", false)
		add("full handshakes/s, direct ≥ bare crypto/tls terminator", "≥ 1.00× tlsterm", hsDir/tl, 1, "× tlsterm", false)
	}
	if hp := rate(s.find(gHandshake, "haproxy")); hp > 0 {
		add("full handshakes/s, mux > haproxy", "> 1.00× haproxy", hsMux/hp, 1.0000001, "× haproxy", false)
	}
	for _, t := range []struct{ label, backend string }{{tGatewayMux, "TCP backend"}, {tGatewayB, "builtin:echo"}} {
		hs, st := s.find(gHandshake, t.label), s.find(gStreams, t.label)
		if rate(st) > 0 && rate(hs) > 0 {
			add("stream opens/s ≥ 20× handshakes/s ("+t.backend+")", "≥ 20×", rate(st)/rate(hs), 20, "×", false)
		}
		if cpuPerOp(st) > 0 && cpuPerOp(hs) > 0 {
			add("the same by gateway CPU per op ("+t.backend+")", "≥ 20×", cpuPerOp(hs)/cpuPerOp(st), 20, "×", false)
		}
	}
	for _, g := range []struct{ group, dir string }{{gBoth1, "both"}, {gUp1, "up"}, {gDown1, "down"}} {
		if tl := mbps(s.find(g.group, "tlsterm")); tl > 0 {
			add("1-stream throughput ("+g.dir+") ≥ 60% of the bare TLS terminator's", "≥ 0.60× tlsterm",
				mbps(s.find(g.group, tGatewayMux))/tl, 0.6, "× tlsterm", false)
		}
	}
	if dn := rate(s.find(gDeny, tGatewayMux)); dn > 0 && hsMux > 0 {
		add("denied connections/s ≥ 10× handshakes/s", "≥ 10×", dn/hsMux, 10, "×", false)
	}
	if dn, hs := cpuPerOp(s.find(gDeny, tGatewayMux)), cpuPerOp(s.find(gHandshake, tGatewayMux)); dn > 0 && hs > 0 {
		add("the same by gateway CPU per op", "≥ 10×", hs/dn, 10, "×", false)
	}
	s.latencyChecks(add)
	for _, m := range s.memory {
		if m.route == "echo" {
			add("idle memory per stream (TCP backend) ≤ 16 KiB", "≤ 16 KiB", m.perStream/1024, 16, " KiB", true)
		}
	}
	return out
}

func (s *suite) report() report {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	cpu, _ := proc.Machine()
	load, _ := os.ReadFile("/proc/loadavg")
	w("# Benchmark results\n\n")
	by := "`" + strings.TrimSpace("go run ./bench/suite "+strings.Join(os.Args[1:], " ")) + "`"
	if len(os.Args) == 1 {
		by += " (`make bench`)"
	}
	w("Generated by %s on %s.\n\n", by, s.started.UTC().Format("2006-01-02 15:04 MST"))
	w("- machine: %d CPUs, %s; load average at start %s\n", cpu.CPUs, cpu.Model, strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	w("- %s; %s; %s\n", goVersion(), versionOf("haproxy", "-v"), versionOf("stunnel4", "-version"))
	w("- every run: loopback, `tunnel bench` as the client (a separate process on the same 2 cores), %v per run, %d workers where workers apply; TLS 1.3 with ECDSA P-256 certificates from `gateway pki`; backends (echo, discard, source) in the suite's process\n", s.o.duration, s.o.concurrency)
	w("- the runs that the targets compare (full handshakes, stream opens, 1-stream throughput) ran %d rounds, interleaved; each row is the round with the best rate\n", s.o.rounds)
	w("- server CPU is the target process's own utime+stime (from /proc/PID/stat) during the run, divided by the operations or the bytes: it varies far less than the rates, which depend on what else the 2 cores do\n")
	w("- the ACL lookup microbenchmarks and their comparison with other libraries: [bench/acl/RESULTS.md](acl/RESULTS.md) (## ACL lookup)\n\n")

	w("## Targets\n\n")
	tt := table{head: []string{"target", "want", "measured", "result"}}
	for _, c := range s.checks() {
		res := "not measured"
		if c.known {
			res = "met"
			if !c.met {
				res = "**missed** (" + c.missedBy + ")"
			}
		}
		tt.add(c.name, c.want, c.got, res)
	}
	w("%s\n", tt.String())

	w("## Full mTLS handshakes\n\nEach operation: TCP connect, full TLS 1.3 handshake with a client certificate, one 64-byte round trip through the TCP echo backend (so one backend connection per operation, for every target), close. `gateway (mux)` also starts a yamux session and opens one stream (the tunnel's path); `gateway (direct)` and the baselines carry the bytes on the TLS connection itself; `gateway (mux, builtin:echo)` answers inside the gateway, without a backend connection. tcprelay is plain TCP (no TLS): the ceiling of connection handling.\n\n%s\n", s.connTable(gHandshake))
	w("## Resumed handshakes\n\nThe same with `--resume`: the workers share one TLS session cache.\n\n%s\n", s.connTable(gResume))
	w("## Stream opens over one session\n\nOpen a stream, 64-byte round trip, close; %d workers on one mux session; through the TCP echo backend (a backend connection per stream) or builtin:echo.\n\n%s\n", s.o.concurrency, s.connTable(gStreams))
	w("## Throughput\n\nPayload MB/s (10^6 bytes) through the TCP backends: `both` counts the bytes echoed back (each went up first), `up` the bytes sent to the discard backend, `down` the bytes read from the source backend. Server CPU s/GB is per GB of that payload.\n\n")
	for _, g := range []string{gBoth1, gUp1, gDown1, gBoth8} {
		w("### %s\n\n%s\n", strings.TrimPrefix(g, "throughput "), s.throughputTable(g))
	}
	w("## Denied connections\n\nConnections from 127.0.0.2, which the network rules deny: connect, wait for the reset, count.\n\n%s\n", s.connTable(gDeny))
	if hs := rate(s.find(gHandshake, tGatewayMux)); hs > 0 {
		w("Stream opens / full handshakes (mux): %s. Denied connections / full handshakes (mux): %s.\n\n",
			ratio(rate(s.find(gStreams, tGatewayMux)), hs), ratio(rate(s.find(gDeny, tGatewayMux)), hs))
	}
	if len(s.latency) > 0 || len(s.latNotes) > 0 {
		w("%s", s.latencySection())
	}
	w("## Idle memory\n\nThe gateway's VmRSS (from /proc/PID/status) after one session and one stream, then with N streams open on that session, idle, after one byte went each way on each; per stream = (with − before) / N.\n\n")
	mt := table{head: []string{"backend", "streams", "RSS before MiB", "RSS with MiB", "KiB per stream", "open time s", "server CPU µs per stream open"}}
	for _, m := range s.memory {
		mt.add(m.backend, fmt.Sprint(m.streams), f1(float64(m.before)/(1<<20)), f1(float64(m.with)/(1<<20)),
			f1(m.perStream/1024), fmt.Sprintf("%.2f", m.openTime.Seconds()), f0(m.cpuPerStreamUS))
	}
	w("%s\n", mt.String())
	if len(s.flood) > 0 {
		w("%s", s.floodSection())
	}
	if len(s.hostile) > 0 {
		w("%s", s.hostileSection())
	}
	if len(s.notes) > 0 {
		w("## Not measured\n\n")
		for _, n := range s.notes {
			w("- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
		w("\n")
	}
	summary := b.String()
	if s.micro != "" {
		w("## Microbenchmarks\n\nBeside the hot code, run as\n\n```\n%s\n```\n\n(benchstat reads the block below as it is):\n\n```\n%s\n```\n\n",
			microCommand(s.o.benchtime), s.micro)
	}
	return report{markdown: b.String(), summary: summary}
}

// versionOf returns the first line a program prints about its version.
func versionOf(name string, arg string) string {
	p := lookPath(name)
	if p == "" {
		return name + " not installed"
	}
	out, _ := exec.Command(p, arg).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(strings.ToLower(l), name[:4]) && strings.ContainsAny(l, "0123456789") {
			return strings.TrimSpace(l)
		}
	}
	return name
}

// writeResults writes markdown to path, keeping the notes section of the
// file already there.
func writeResults(path, markdown string) error {
	old, err := os.ReadFile(path)
	if err == nil {
		if i := strings.Index(string(old), "\n"+notesHeading+"\n"); i >= 0 {
			markdown += string(old[i+1:])
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(markdown), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

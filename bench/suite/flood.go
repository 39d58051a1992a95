package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The silent-socket flood: a good client's handshakes, one at a time, with
// and without floodConns sockets held open from another loopback address
// that send nothing (silent) or one byte of a TLS record header a second
// (trickle).

// Kinds of flood.
const (
	floodSilent  = "silent"
	floodTrickle = "trickling"
)

// floodSource is the address the flood connects from; the good client
// connects from 127.0.0.1.
const floodSource = "127.0.0.2"

// floodEvery is the good client's pace: one operation every 100 ms, or
// right after the previous one when that took longer.
const floodEvery = 100 * time.Millisecond

// floodOpTimeout bounds one operation of the good client: longer than the
// gateway's 10 s handshake timeout, so that a stall shows as a latency.
const floodOpTimeout = 15 * time.Second

// procSample is what the suite reads of a target at one moment: from
// /proc (every target) and, for the gateway, from its admin /metrics.
type procSample struct {
	rss     int64 // VmRSS, bytes; 0 unknown
	threads int   // Threads of /proc/PID/status; 0 unknown
	metrics map[string]float64
}

// metric returns a gateway metric, or -1 when not read.
func (p procSample) metric(name string) float64 {
	if v, ok := p.metrics[name]; ok {
		return v
	}
	return -1
}

// floodResult is one target under one kind of flood.
type floodResult struct {
	target, kind string
	conns        int
	// Latencies of the good client's successful operations.
	unloaded, flooded   []time.Duration
	failUnl, failFlood  int
	firstFail           string
	dials               int64 // connections the flood made
	before, during, end procSample
	err                 error // the run could not be made
	skipped             bool  // err is that the target could not be started
}

// quantile returns the q-quantile of d by the nearest-rank method (the
// smallest value with at least q of the values at or below it), or 0 for
// no values. d is not modified.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// parseMetrics reads the samples of Prometheus text: "name value" and
// `name{label="v"} value` lines (keyed by the text before the value, as the
// gateway writes it: labels sorted, no spaces); comments, blank lines and
// values that are not numbers are skipped.
func parseMetrics(body string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		out[f[0]] = v
	}
	return out
}

// parseStatusCount returns the value of a "Name:\t123" line of
// /proc/PID/status (Threads, ...).
func parseStatusCount(b []byte, name string) (int, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("status: %s: %q is not a count", name, strings.TrimSpace(v))
		}
		return n, nil
	}
	return 0, fmt.Errorf("status: no %s line", name)
}

// floodGatewayArgs are gatewayArgs with the whole of 127.0.0.0/8 allowed
// (the flood comes from 127.0.0.2, which the gateway of the other runs
// denies) and the admin endpoint on admin, for its metrics.
func floodGatewayArgs(addr, admin string, f files, b *backends, logLevel string) []string {
	args := gatewayArgs(addr, f, b, logLevel)
	for i := range len(args) - 1 {
		if args[i] == "--allow" {
			args[i+1] = "127.0.0.0/8"
		}
	}
	return append(args, "--admin", admin)
}

func ms(d time.Duration) string { return f1(float64(d) / float64(time.Millisecond)) }

// arrow renders before → during → after, "–" for what is unknown.
func arrow(vals ...string) string {
	for i, v := range vals {
		if v == "" {
			vals[i] = "–"
		}
	}
	return strings.Join(vals, " → ")
}

func mib(n int64) string {
	if n <= 0 {
		return ""
	}
	return f1(float64(n) / (1 << 20))
}

func count(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func metricText(p procSample, name string) string {
	v := p.metric(name)
	if v < 0 {
		return ""
	}
	return f0(v)
}

// countAtLeast returns how many of d are at least least.
func countAtLeast(d []time.Duration, least time.Duration) int {
	n := 0
	for _, x := range d {
		if x >= least {
			n++
		}
	}
	return n
}

// clip shortens s to at most n runes, marking a cut with "…".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// floodTable renders the flood results.
func floodTable(rs []floodResult) string {
	t := table{head: []string{"target", "flood", "p50 ms", "p99 ms", "p50 ms, flood", "p99 ms, flood",
		"p99 flood / unloaded", "ops ≥ 1 s, flood", "failures (unloaded, flood)", "flood dials",
		"RSS MiB (before → flood → after)", "threads", "goroutines", "pending (flood → after)",
		"shed silent / replaced / refused"}}
	for _, r := range rs {
		kind := fmt.Sprintf("%d %s", r.conns, r.kind)
		if r.err != nil {
			t.add(r.target, kind, "–", "–", "–", "–", "–", "–", "failed: "+strings.ReplaceAll(firstLine(r.err.Error()), "|", "/"),
				"", "", "", "", "", "")
			continue
		}
		u99, f99 := quantile(r.unloaded, .99), quantile(r.flooded, .99)
		fails := fmt.Sprintf("%d, %d", r.failUnl, r.failFlood)
		if r.firstFail != "" {
			fails += " (" + strings.ReplaceAll(clip(r.firstFail, 100), "|", "/") + ")"
		}
		row := []string{r.target, kind, ms(quantile(r.unloaded, .5)), ms(u99), ms(quantile(r.flooded, .5)), ms(f99),
			ratio(float64(f99), float64(u99)), strconv.Itoa(countAtLeast(r.flooded, time.Second)), fails, strconv.FormatInt(r.dials, 10),
			arrow(mib(r.before.rss), mib(r.during.rss), mib(r.end.rss)),
			arrow(count(r.before.threads), count(r.during.threads), count(r.end.threads)), "–", "–", "–"}
		const gor, pend, shed = 12, 13, 14 // columns
		if r.during.metrics != nil {
			row[gor] = arrow(metricText(r.before, "go_goroutines"), metricText(r.during, "go_goroutines"), metricText(r.end, "go_goroutines"))
			row[pend] = arrow(metricText(r.during, "portcullis_connections_pending"), metricText(r.end, "portcullis_connections_pending"))
			delta := func(n string) string {
				a, b := r.before.metric(n), r.end.metric(n)
				if a < 0 || b < 0 {
					return "–"
				}
				return f0(b - a)
			}
			row[shed] = delta(`portcullis_connections_shed_total{kind="silent"}`) + " / " +
				delta(`portcullis_connections_shed_total{kind="replaced"}`) + " / " + delta(`portcullis_connections_shed_total{kind="refused"}`)
		}
		if len(r.unloaded) == 0 {
			row[2], row[3], row[6] = "–", "–", "–"
		}
		if len(r.flooded) == 0 {
			row[4], row[5], row[6], row[7] = "–", "–", "–", "–"
		}
		t.add(row...)
	}
	return t.String()
}

// floodSection is the report's part on the flood.
func (s *suite) floodSection() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Silent-socket flood\n\n")
	fmt.Fprintf(&b, "A good client from 127.0.0.1 makes %d operations, one every %v (or right after the previous one when it took longer), "+
		"each a fresh client: TCP connect, full mTLS handshake, one stream to the echo route (mux), or the TLS connection itself "+
		"(gateway --direct, haproxy, stunnel), a 64-byte round trip, close; each operation is bounded by %v. "+
		"It does so unloaded, then while %d sockets from %s are held open: silent ones send nothing; trickling ones send one byte "+
		"of a TLS record header a second, never a whole ClientHello. A flood socket the server closes is dialed again a second later. "+
		"Each row is a fresh server process; the gateway admits 127.0.0.0/8 here, with its defaults otherwise "+
		"(--hello-timeout 5s, --max-pending-per-addr 64; --max-handshakes 256 as in the other runs). "+
		"Before: after one uncounted warm-up operation, before the unloaded run; flood: at the end of the client's run under the flood; "+
		"after: 3 s after the flood closed its sockets. Flood dials counts the flood's connections, those reset before their connect returned too. "+
		"RSS and threads from /proc/PID/status; goroutines (`go_goroutines`), pending (`portcullis_connections_pending`) and shed counts "+
		"(`portcullis_connections_shed_total` by kind, during the row) from the gateway's /metrics. Latencies include the client's own work.\n\n",
		s.o.floodOps, floodEvery, floodOpTimeout, s.o.floodConns, floodSource)
	fmt.Fprintf(&b, "Measured by `%s` on %s (the flood runs: `-flood`, on by default, with `-flood-conns %d -flood-ops %d`; "+
		"they start their own servers, so the other flags do not change them).\n\n",
		strings.TrimSpace("go run ./bench/suite "+strings.Join(os.Args[1:], " ")), s.started.UTC().Format("2006-01-02 15:04 MST"),
		s.o.floodConns, s.o.floodOps)
	if s.o.floodGateway != "" {
		fmt.Fprintf(&b, "The gateway under the flood is %s, not the one built.\n\n", s.o.floodGateway)
	}
	b.WriteString(floodTable(s.flood))
	b.WriteString("\n")
	return b.String()
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/bench/internal/hostile"
)

// Authenticated-client floods: bench/cmd/hostile, a client with a valid
// certificate, floods its own session from 127.0.0.2 in one of the modes
// of package hostile, while a good client from the suite's process makes
// round trips on a stream of its own session and opens new streams. Each
// mode runs against the gateway built here and against an older build
// (before the bounds on what a session can hold), on a fresh process each.

// hostileEvery is the good client's pace: a round trip and a stream open
// every 20 ms (or right after the previous pair when it took longer).
const hostileEvery = 20 * time.Millisecond

// hostileRoute is the route of the good client: builtin:echo, so that no
// backend of the suite's process is in its path.
const hostileRoute = "becho"

// hostileResult is one mode against one build, in one round.
type hostileResult struct {
	mode, build string
	round       int
	load        string // 1-minute load average when the row started

	// The good client's successful operations: round trips on the stream
	// it keeps, and stream opens (open, round trip, close).
	unlRTT, unlOpen, floRTT, floOpen []time.Duration
	failUnl, failFlood               int
	firstFail                        string

	hwmBefore, hwmPeak, rssAfter int64   // bytes
	gorBefore, gorDuring, gorEnd float64 // go_goroutines; -1 unknown
	logLines, logBytes           int64   // the gateway's log during the flood and after it
	suppressed                   int64   // sum of the "suppressed" counts in those lines
	floodEvents                  int64   // session_flood lines
	gatewayCPU, hostileCPU       time.Duration

	rep *hostile.Report
	err error
}

// hostileBuild is a gateway binary the floods run against.
type hostileBuild struct{ name, bin string }

// hostileArgs are the hostile client's flags for a mode, beside the
// connection's.
func hostileArgs(mode string, d time.Duration) []string {
	args := []string{"-mode", mode, "-duration", d.String()}
	if mode == hostile.ModeRefused {
		// 1 GiB at most over the run: the old build keeps up to 4 MiB of
		// each refused stream.
		args = append(args, "-max-bytes", strconv.Itoa(1<<30))
	}
	return args
}

// logStats are the lines and bytes of a gateway log from offset on.
type logStats struct {
	lines, bytes, suppressed, floods int64
}

var suppressedRE = regexp.MustCompile(`"suppressed":([0-9]+)`)

func readLogStats(path string, offset int64) (logStats, error) {
	var st logStats
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return st, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		st.lines++
		st.bytes += int64(len(line)) + 1
		if m := suppressedRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			st.suppressed += n
		}
		if strings.Contains(line, `"event":"session_flood"`) {
			st.floods++
		}
	}
	return st, sc.Err()
}

// parseHostileReport reads the JSON line hostile prints last.
func parseHostileReport(out string) (*hostile.Report, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			var r hostile.Report
			if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
				return nil, fmt.Errorf("hostile's report %q: %w", lines[i], err)
			}
			return &r, nil
		}
	}
	return nil, fmt.Errorf("hostile printed no report: %q", clip(out, 200))
}

func gor(v float64) string {
	if v < 0 {
		return ""
	}
	return f0(v)
}

func p(d []time.Duration, q float64) string {
	if len(d) == 0 {
		return "–"
	}
	return ms(quantile(d, q))
}

func ratioOf(flood, unl []time.Duration) string {
	if len(flood) == 0 || len(unl) == 0 {
		return "–"
	}
	return ratio(float64(quantile(flood, .99)), float64(quantile(unl, .99)))
}

// hostileOutcome says what the gateway did to the hostile sessions.
func hostileOutcome(r *hostile.Report) string {
	if r == nil {
		return "–"
	}
	sent := ""
	switch r.Mode {
	case hostile.ModePings:
		sent = fmt.Sprintf("%d pings", r.Pings)
	case hostile.ModeUnknown:
		sent = fmt.Sprintf("%d frames", r.Frames)
	default:
		sent = fmt.Sprintf("%d streams, %s MiB", r.Streams, f0(float64(r.DataBytes)/(1<<20)))
	}
	s := fmt.Sprintf("%d sessions, %d closed by the gateway", r.Sessions, r.ClosedByGateway)
	if r.ClosedByGateway > 0 {
		s += fmt.Sprintf(" (first after %s ms)", f1(r.FirstCloseMs))
	}
	if r.Stalled > 0 {
		s += fmt.Sprintf(", %d stalled", r.Stalled)
	}
	if r.Refused > 0 {
		s += fmt.Sprintf(", %d connections reset while its address was held", r.Refused)
	}
	s += "; " + sent
	if r.Resets > 0 {
		s += fmt.Sprintf("; %d streams reset", r.Resets)
	}
	return s
}

// hostileTable renders the rows.
func hostileTable(rs []hostileResult) string {
	t := table{head: []string{"flood", "gateway", "round", "load", "round trip p50 / p99 ms", "under the flood", "p99 ratio",
		"stream open p50 / p99 ms", "under the flood", "p99 ratio", "failures (unloaded, flood)",
		"peak RSS MiB (before → flood)", "RSS after MiB", "goroutines (before → flood → after)",
		"log lines (KiB)", "suppressed", "session_flood", "gateway CPU s", "hostile CPU s", "hostile client"}}
	for _, r := range rs {
		if r.err != nil {
			t.add(r.mode, r.build, strconv.Itoa(r.round), r.load, "failed: "+strings.ReplaceAll(clip(firstLine(r.err.Error()), 120), "|", "/"),
				"", "", "", "", "", "", "", "", "", "", "", "", "", "", "")
			continue
		}
		fails := fmt.Sprintf("%d, %d", r.failUnl, r.failFlood)
		if r.firstFail != "" {
			fails += " (" + strings.ReplaceAll(clip(r.firstFail, 80), "|", "/") + ")"
		}
		gors := "–"
		if r.gorBefore >= 0 {
			gors = arrow(gor(r.gorBefore), gor(r.gorDuring), gor(r.gorEnd))
		}
		t.add(r.mode, r.build, strconv.Itoa(r.round), r.load,
			p(r.unlRTT, .5)+" / "+p(r.unlRTT, .99), p(r.floRTT, .5)+" / "+p(r.floRTT, .99), ratioOf(r.floRTT, r.unlRTT),
			p(r.unlOpen, .5)+" / "+p(r.unlOpen, .99), p(r.floOpen, .5)+" / "+p(r.floOpen, .99), ratioOf(r.floOpen, r.unlOpen),
			fails, arrow(mib(r.hwmBefore), mib(r.hwmPeak)), mib(r.rssAfter), gors,
			fmt.Sprintf("%d (%s)", r.logLines, f0(float64(r.logBytes)/1024)), strconv.FormatInt(r.suppressed, 10),
			strconv.FormatInt(r.floodEvents, 10),
			fmt.Sprintf("%.2f", r.gatewayCPU.Seconds()), fmt.Sprintf("%.2f", r.hostileCPU.Seconds()),
			strings.ReplaceAll(hostileOutcome(r.rep), "|", "/"))
	}
	return t.String()
}

// hostileSummary gives, per mode and gateway, the worst p99 ratio over
// the rounds, of round trips and of stream opens.
func hostileSummary(rs []hostileResult) string {
	type key struct{ mode, build string }
	var order []key
	worst := map[key][2]float64{}
	peak := map[key]int64{}
	for _, r := range rs {
		if r.err != nil {
			continue
		}
		k := key{r.mode, r.build}
		if _, ok := worst[k]; !ok {
			order = append(order, k)
		}
		w := worst[k]
		for i, pair := range [][2][]time.Duration{{r.floRTT, r.unlRTT}, {r.floOpen, r.unlOpen}} {
			if len(pair[0]) > 0 && len(pair[1]) > 0 {
				w[i] = max(w[i], float64(quantile(pair[0], .99))/float64(quantile(pair[1], .99)))
			}
		}
		worst[k] = w
		peak[k] = max(peak[k], r.hwmPeak)
	}
	t := table{head: []string{"flood", "gateway", "worst p99 ratio, round trips", "worst p99 ratio, stream opens", "highest peak RSS MiB"}}
	for _, k := range order {
		w := worst[k]
		t.add(k.mode, k.build, fmt.Sprintf("%.2f×", w[0]), fmt.Sprintf("%.2f×", w[1]), mib(peak[k]))
	}
	return t.String()
}

// hostileSection is the report's part on the authenticated-client floods.
func (s *suite) hostileSection() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Authenticated-client floods\n\n")
	fmt.Fprintf(&b, "`bench/cmd/hostile`, a separate process with the suite's valid client certificate, speaks yamux frames of its own "+
		"making over mTLS from %s and floods its own session for %v: **refused**: streams to a route that does not exist "+
		"(refused), each pushed with up to 4 MiB within the window the gateway grants, 256 a session (1 GiB at most over the run); "+
		"**pings**: 500,000 pings a session, answers never read; **unknown**: 20,000 16-byte data frames a session for streams never opened; "+
		"**logs**: 40,000 refused streams a session (request and close, 64 unanswered at most); **window**: 16 streams a session, "+
		"1 MiB sent on each at once whatever the window. A session the gateway closes is replaced by a new one (full handshake) while "+
		"time is left (at most 1,000 sessions for pings, 200 for window, 100 refused, 50 unknown, 10 logs); a connection the gateway "+
		"resets before the handshake ends (its address held after abuse) is dialed again 5 ms later. "+
		"Meanwhile a good client in the suite's process (from 127.0.0.1, a session of its own) makes, every %v, a 64-byte round trip on "+
		"a stream it keeps open and a stream open (open, 64-byte round trip, close), on builtin:echo (`%s`), %d of each unloaded and "+
		"again under the flood (fewer when the flood ends first). "+
		"Each row is a fresh gateway process (127.0.0.0/8 admitted, its defaults otherwise); the rows are interleaved by round, "+
		"the two builds in alternating order. Peak RSS is VmHWM of /proc/PID/status (before: after the unloaded run; flood: after the flood), "+
		"RSS after is VmRSS 2 s after the flood; goroutines from `go_goroutines` of the admin endpoint (the older build does not "+
		"export it); log lines, bytes, the `suppressed` counts and `session_flood` events are the gateway's log from the flood's start to 2 s "+
		"after its end; CPU is utime+stime of each process during the flood. The p99 ratio is the p99 under the flood over the p99 unloaded "+
		"of the same process. Latencies include the good client's own work.\n\n",
		floodSource, s.o.hostileDuration, hostileEvery, hostileRoute, s.o.hostileOps)
	fmt.Fprintf(&b, "Measured by `%s` on %s (the floods: `-hostile`, on by default, with `-hostile-rounds %d -hostile-ops %d -hostile-duration %v -hostile-baseline %s`).\n\n",
		strings.TrimSpace("go run ./bench/suite "+strings.Join(os.Args[1:], " ")), s.started.UTC().Format("2006-01-02 15:04 MST"),
		s.o.hostileRounds, s.o.hostileOps, s.o.hostileDuration, s.o.hostileBaseline)
	b.WriteString(hostileSummary(s.hostile))
	b.WriteString("\n")
	b.WriteString(hostileTable(s.hostile))
	b.WriteString("\n")
	return b.String()
}

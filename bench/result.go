package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Result is what a run measured. Its fields are set by Run; the methods
// derive rates. A Result is not changed after Run returns and may be read
// concurrently.
type Result struct {
	// Settings are those of the run, with defaults filled in.
	Settings Settings
	// Ops counts successful operations: connections (handshake), streams
	// (streams), writes or reads of Size bytes (throughput), denied
	// connections (deny).
	Ops uint64
	// Errors counts failed operations; ErrorsByKind splits them by kind
	// (see Kind) and ErrorSamples holds the first message of each kind.
	Errors       uint64
	ErrorsByKind map[string]uint64
	ErrorSamples map[string]string
	// Aborted says why the run stopped early, or is empty.
	Aborted string
	// Elapsed is the measured time: from the start of the first operation
	// to the end of the last (throughput: of the data phase only).
	Elapsed time.Duration
	// BytesUp and BytesDown count payload bytes written and read.
	BytesUp, BytesDown int64
	// Resumed counts TLS connections that resumed a session.
	Resumed uint64
	// TLSVersion and TLSGroup describe the first TLS connection
	// ("TLS 1.3", "X25519MLKEM768"); empty without TLS.
	TLSVersion, TLSGroup string
	// Latency holds the duration of each successful operation.
	Latency Histogram
}

// RatePerSec returns successful operations per second of Elapsed.
func (r *Result) RatePerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Bytes returns the payload bytes that count for throughput: those written
// for DirUp, those read back for DirDown and DirBoth (in DirBoth every byte
// read back went up first).
func (r *Result) Bytes() int64 {
	if r.Settings.Direction == DirUp {
		return r.BytesUp
	}
	return r.BytesDown
}

// MBPerSec returns throughput in megabytes (10^6 bytes) per second of
// Elapsed; 0 outside throughput mode.
func (r *Result) MBPerSec() float64 {
	if r.Elapsed <= 0 || r.Settings.Mode != ModeThroughput {
		return 0
	}
	return float64(r.Bytes()) / 1e6 / r.Elapsed.Seconds()
}

// JSON is the machine-readable form of a Result, as --json prints it.
// Durations are in milliseconds (keys ending in _ms) or seconds (_s).
type JSON struct {
	Mode         Mode              `json:"mode"`
	Target       []string          `json:"target"`
	Route        string            `json:"route"`
	Transport    string            `json:"transport"` // mux, direct or plaintext
	Resume       bool              `json:"resume"`
	Concurrency  int               `json:"concurrency"`
	Sessions     int               `json:"sessions"`
	Streams      int               `json:"streams"`
	Direction    Direction         `json:"direction,omitempty"`
	Size         int               `json:"size"`
	Ops          uint64            `json:"ops"`
	Errors       uint64            `json:"errors"`
	ErrorsByKind map[string]uint64 `json:"errors_by_kind"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	Aborted      string            `json:"aborted,omitempty"`
	DurationS    float64           `json:"duration_s"`
	RatePerSec   float64           `json:"rate_per_sec"`
	MBPerSec     float64           `json:"mb_per_sec"`
	BytesUp      int64             `json:"bytes_up"`
	BytesDown    int64             `json:"bytes_down"`
	P50Ms        float64           `json:"p50_ms"`
	P90Ms        float64           `json:"p90_ms"`
	P99Ms        float64           `json:"p99_ms"`
	P999Ms       float64           `json:"p999_ms"`
	MinMs        float64           `json:"min_ms"`
	MeanMs       float64           `json:"mean_ms"`
	MaxMs        float64           `json:"max_ms"`
	Resumed      uint64            `json:"resumed"`
	TLSVersion   string            `json:"tls_version,omitempty"`
	TLSGroup     string            `json:"tls_group,omitempty"`
}

// transport names how operations reach the server.
func (s *Settings) transport() string {
	switch {
	case s.UnsafePlaintext:
		return "plaintext"
	case s.Mode == ModeDeny:
		return "tcp"
	case s.Direct:
		return "direct"
	}
	return "mux"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// JSON returns the machine-readable form of r.
func (r *Result) JSON() JSON {
	s := &r.Settings
	j := JSON{
		Mode: s.Mode, Target: s.Gateways, Route: s.Route, Transport: s.transport(), Resume: s.Resume,
		Concurrency: s.Concurrency, Sessions: s.Sessions, Streams: s.Streams, Size: s.size(),
		Ops: r.Ops, Errors: r.Errors, ErrorsByKind: r.ErrorsByKind, ErrorSamples: r.ErrorSamples, Aborted: r.Aborted,
		DurationS: r.Elapsed.Seconds(), RatePerSec: r.RatePerSec(), MBPerSec: r.MBPerSec(),
		BytesUp: r.BytesUp, BytesDown: r.BytesDown,
		P50Ms: ms(r.Latency.Quantile(0.50)), P90Ms: ms(r.Latency.Quantile(0.90)),
		P99Ms: ms(r.Latency.Quantile(0.99)), P999Ms: ms(r.Latency.Quantile(0.999)),
		MinMs: ms(r.Latency.Min()), MeanMs: ms(r.Latency.Mean()), MaxMs: ms(r.Latency.Max()),
		Resumed: r.Resumed, TLSVersion: r.TLSVersion, TLSGroup: r.TLSGroup,
	}
	if j.ErrorsByKind == nil {
		j.ErrorsByKind = map[string]uint64{}
	}
	if s.Mode == ModeThroughput {
		j.Direction = s.Direction
	}
	return j
}

// WriteJSON writes r as one JSON object on one line.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r.JSON())
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes r as a small table for people.
func (r *Result) WriteText(w io.Writer) error {
	s := &r.Settings
	var b strings.Builder
	row := func(k, format string, a ...any) { fmt.Fprintf(&b, "%-10s %s\n", k, fmt.Sprintf(format, a...)) }
	what := map[Mode]string{
		ModeHandshake: "connections", ModeStreams: "streams", ModeThroughput: "writes", ModeDeny: "denied connections",
	}[s.Mode]
	if s.Mode == ModeThroughput && s.Direction == DirDown {
		what = "reads"
	}
	desc := fmt.Sprintf("%s, %s, route %q", s.Mode, s.transport(), s.Route)
	switch s.Mode {
	case ModeHandshake:
		if s.Resume {
			desc += ", resumed sessions"
		} else if !s.UnsafePlaintext {
			desc += ", full handshakes"
		}
		desc += fmt.Sprintf(", %d workers, %d-byte round trip", s.Concurrency, s.size())
	case ModeStreams:
		desc += fmt.Sprintf(", %d workers, %d session(s), %d-byte round trip", s.Concurrency, s.Sessions, s.size())
	case ModeThroughput:
		desc += fmt.Sprintf(", %s, %d stream(s), %d-byte writes", s.Direction, s.Streams, s.size())
	case ModeDeny:
		desc = fmt.Sprintf("deny, %d workers, from %s", s.Concurrency, sourceText(s))
	}
	row("mode", "%s", desc)
	row("target", "%s", strings.Join(s.Gateways, ", "))
	if r.TLSVersion != "" {
		row("tls", "%s %s", r.TLSVersion, r.TLSGroup)
	}
	row("duration", "%.2f s", r.Elapsed.Seconds())
	row("ops", "%d %s, %d errors", r.Ops, what, r.Errors)
	row("rate", "%.1f /s", r.RatePerSec())
	if s.Mode == ModeThroughput {
		row("throughput", "%.1f MB/s (%.2f GiB/s); %d bytes up, %d down", r.MBPerSec(),
			float64(r.Bytes())/(1<<30)/max(r.Elapsed.Seconds(), 1e-9), r.BytesUp, r.BytesDown)
	}
	if s.Resume {
		row("resumed", "%d of %d", r.Resumed, r.Ops+r.Errors)
	}
	if r.Latency.Count() > 0 {
		h := &r.Latency
		row("latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s",
			fmtDur(h.Quantile(.5)), fmtDur(h.Quantile(.9)), fmtDur(h.Quantile(.99)), fmtDur(h.Quantile(.999)),
			fmtDur(h.Max()), fmtDur(h.Mean()))
	}
	if len(r.ErrorsByKind) == 0 {
		row("errors", "none")
	} else {
		for i, k := range slices.Sorted(maps.Keys(r.ErrorsByKind)) {
			label := ""
			if i == 0 {
				label = "errors"
			}
			row(label, "%-28s %8d  e.g. %s", k, r.ErrorsByKind[k], r.ErrorSamples[k])
		}
	}
	if r.Aborted != "" {
		row("stopped", "%s", r.Aborted)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sourceText(s *Settings) string {
	if s.Source.IsValid() {
		return s.Source.String()
	}
	return "the default source address"
}

// fmtDur prints a latency with 3 significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

// progressEvery is the period of the progress line.
const progressEvery = 500 * time.Millisecond

// startProgress prints a progress line to w until the returned function is
// called, which clears the line. A nil w prints nothing.
func (r *runner) startProgress(w io.Writer) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				el := time.Since(r.start).Seconds()
				ok, failed := r.ok.Load(), r.failed.Load()
				line := fmt.Sprintf("\r\033[K%6.1fs  %d ok  %.0f/s  %d errors", el, ok, float64(ok)/max(el, 1e-9), failed)
				if r.s.Mode == ModeThroughput {
					n := r.down.Load()
					if r.s.Direction == DirUp {
						n = r.up.Load()
					}
					line += fmt.Sprintf("  %.1f MB/s", float64(n)/1e6/max(el, 1e-9))
				}
				fmt.Fprint(w, line)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

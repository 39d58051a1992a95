package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // 100 ms .. 1 ms, unsorted
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	orig := slices.Clone(d)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{.5, 50 * time.Millisecond}, {.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := quantile(d, tc.q); got != tc.want {
			t.Errorf("quantile(1..100 ms, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if !slices.Equal(d, orig) {
		t.Error("quantile sorted its argument")
	}
	if got := quantile(nil, .99); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
	// Few values: p99 is the largest, p50 the lower middle.
	few := []time.Duration{3, 1, 2, 4}
	if quantile(few, .99) != 4 || quantile(few, .5) != 2 {
		t.Errorf("p99, p50 of 1..4 = %v, %v", quantile(few, .99), quantile(few, .5))
	}
}

func TestParseMetrics(t *testing.T) {
	body := "# HELP portcullis_connections_pending Connections.\n# TYPE portcullis_connections_pending gauge\n" +
		"portcullis_connections_pending 63\n\ngo_goroutines 1234\nlabelled{a=\"b\"} 5\nbroken x\nportcullis_x_total 1e3\n"
	got := parseMetrics(body)
	want := map[string]float64{"portcullis_connections_pending": 63, "go_goroutines": 1234, `labelled{a="b"}`: 5, "portcullis_x_total": 1000}
	if len(got) != len(want) {
		t.Errorf("parseMetrics = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	p := procSample{metrics: got}
	if p.metric("go_goroutines") != 1234 || p.metric("absent") != -1 || (procSample{}).metric("go_goroutines") != -1 {
		t.Error("procSample.metric")
	}
}

func TestParseStatusCount(t *testing.T) {
	status := []byte("Name:\tgateway\nVmRSS:\t   1536 kB\nThreads:\t7\n")
	if n, err := parseStatusCount(status, "Threads"); n != 7 || err != nil {
		t.Errorf("Threads = %d, %v", n, err)
	}
	for _, b := range []string{"Name:\tx\n", "Threads:\tmany\n", "Threads:\t-1\n"} {
		if _, err := parseStatusCount([]byte(b), "Threads"); err == nil {
			t.Errorf("%q: no error", b)
		}
	}
}

func TestFloodGatewayArgs(t *testing.T) {
	args := floodGatewayArgs("127.0.0.1:1", "127.0.0.1:2", files{}, &backends{}, "info")
	j := strings.Join(args, " ")
	if !strings.Contains(j, "--allow 127.0.0.0/8 ") || strings.Contains(j, "--allow 127.0.0.1 ") ||
		!strings.HasSuffix(j, "--admin 127.0.0.1:2") || !strings.Contains(j, "--listen 127.0.0.1:1 ") {
		t.Errorf("flood gateway args: %s", j)
	}
	// The gateway of the other runs still admits 127.0.0.1 only: the deny
	// runs connect from 127.0.0.2.
	if j := strings.Join(gatewayArgs("127.0.0.1:1", files{}, &backends{}, "info"), " "); !strings.Contains(j, "--allow 127.0.0.1 ") {
		t.Errorf("gateway args: %s", j)
	}
}

func TestFloodOptions(t *testing.T) {
	o, err := parseOptions(nil, nil)
	if err != nil || !o.flood || o.floodConns != 500 || o.floodOps != 100 || o.floodGateway != "" {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	if o, err = parseOptions([]string{"-quick"}, nil); err != nil || !o.flood || o.floodOps != 20 {
		t.Errorf("-quick: %+v, %v", o, err)
	}
	if o, err = parseOptions([]string{"-quick", "-flood-ops", "50", "-flood=false"}, nil); err != nil || o.flood || o.floodOps != 50 {
		t.Errorf("-quick -flood-ops 50 -flood=false: %+v, %v", o, err)
	}
	for _, args := range [][]string{{"-flood-conns", "0"}, {"-flood-ops", "0"}} {
		if _, err := parseOptions(args, nil); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: error %v", args, err)
		}
	}
}

func TestFloodTable(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	gw := func(g, pending, silent float64) procSample {
		return procSample{rss: 20 << 20, threads: 8, metrics: map[string]float64{"go_goroutines": g,
			"portcullis_connections_pending": pending, `portcullis_connections_shed_total{kind="silent"}`: silent,
			`portcullis_connections_shed_total{kind="replaced"}`: 0, `portcullis_connections_shed_total{kind="refused"}`: 0}}
	}
	rs := []floodResult{
		{target: tGatewayMux, kind: floodSilent, conns: 500, unloaded: ms(2, 3, 4), flooded: ms(3, 4, 8), failFlood: 1,
			firstFail: "after 15s: timeout", dials: 900, before: gw(20, 0, 0), during: gw(150, 64, 10), end: gw(21, 0, 40)},
		{target: "haproxy", kind: floodTrickle, conns: 500, unloaded: ms(1, 2), flooded: ms(1, 3), dials: 500,
			before: procSample{rss: 10 << 20, threads: 2}, during: procSample{rss: 12 << 20, threads: 2}, end: procSample{rss: 11 << 20}},
		{target: "stunnel", kind: floodSilent, conns: 500, err: errors.New("stunnel is not installed"), skipped: true},
	}
	got := floodTable(rs)
	for _, want := range []string{
		"| gateway (mux) | 500 silent | 3.0 | 4.0 | 4.0 | 8.0 | 2.00× | 0 | 0, 1 (after 15s: timeout) | 900 | 20.0 → 20.0 → 20.0 | 8 → 8 → 8 | 20 → 150 → 21 | 64 → 0 | 40 / 0 / 0 |",
		"| haproxy | 500 trickling | 1.0 | 2.0 | 1.0 | 3.0 | 1.50× | 0 | 0, 0 | 500 | 10.0 → 12.0 → 11.0 | 2 → 2 → – | – | – | – |",
		"| stunnel | 500 silent | – | – | – | – | – | – | failed: stunnel is not installed |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks\n%s\n in:\n%s", want, got)
		}
	}
	s := &suite{o: options{floodConns: 500, floodOps: 100}, flood: rs}
	if sec := s.floodSection(); !strings.Contains(sec, "## Silent-socket flood") || !strings.Contains(sec, "`go run ./bench/suite") ||
		!strings.Contains(sec, got) {
		t.Errorf("section:\n%s", sec)
	}
}

func TestCountAtLeastAndClip(t *testing.T) {
	d := []time.Duration{time.Millisecond, time.Second, 10 * time.Second}
	if n := countAtLeast(d, time.Second); n != 2 {
		t.Errorf("countAtLeast = %d, want 2", n)
	}
	if got := clip("abcdef", 4); got != "abc…" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("abc", 4); got != "abc" {
		t.Errorf("clip = %q", got)
	}
}

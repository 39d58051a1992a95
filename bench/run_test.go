package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/bench"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/tunnel"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sane checks what every successful run must show.
func sane(t *testing.T, res *bench.Result, err error, wantOps uint64) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Ops != wantOps {
		t.Errorf("ops = %d, want %d", res.Ops, wantOps)
	}
	if res.Errors != 0 {
		t.Errorf("errors = %d (%v), want 0; samples %v", res.Errors, res.ErrorsByKind, res.ErrorSamples)
	}
	if res.RatePerSec() <= 0 || res.Elapsed <= 0 {
		t.Errorf("rate %v over %v, want > 0", res.RatePerSec(), res.Elapsed)
	}
	h := &res.Latency
	if h.Count() != res.Ops {
		t.Errorf("latency histogram holds %d values, want %d", h.Count(), res.Ops)
	}
	p50, p99 := h.Quantile(0.5), h.Quantile(0.99)
	if p50 <= 0 || p99 < p50 || h.Max() < p99 || h.Min() > p50 || h.Max() > res.Elapsed {
		t.Errorf("latency min %v p50 %v p99 %v max %v over %v: not ordered", h.Min(), p50, p99, h.Max(), res.Elapsed)
	}
}

func TestHandshake(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(map[bool]string{false: "mux", true: "direct"}[direct], func(t *testing.T) {
			g := startGateway(t)
			s := g.settings(bench.ModeHandshake, 40)
			s.Direct = direct
			res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
			sane(t, res, err, 40)
			st := g.srv.Stats()
			if st.HandshakesOK != 40 || st.StreamsOK != 40 {
				t.Errorf("gateway counted %d handshakes and %d streams, want 40 and 40", st.HandshakesOK, st.StreamsOK)
			}
			if res.TLSVersion != "TLS 1.3" {
				t.Errorf("TLS version %q, want TLS 1.3", res.TLSVersion)
			}
			if res.Resumed != 0 {
				t.Errorf("%d sessions resumed without --resume", res.Resumed)
			}
		})
	}
}

func TestHandshakeSizes(t *testing.T) {
	g := startGateway(t)
	for _, size := range []int{1, 100 << 10} { // the second one is written while the echo is read
		s := g.settings(bench.ModeHandshake, 4)
		s.Size = size
		res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
		sane(t, res, err, 4)
	}
}

// TestResume checks that --resume resumes sessions, against a plain TLS
// server and against the gateway in both modes.
func TestResume(t *testing.T) {
	g := startGateway(t)
	plain := tlsEchoServer(t, g.pki)
	for _, tc := range []struct {
		name   string
		addr   string
		direct bool
	}{{"plain", plain, true}, {"gateway-mux", g.addr, false}, {"gateway-direct", g.addr, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := g.settings(bench.ModeHandshake, 40)
			s.Gateways = []string{tc.addr}
			s.Direct = tc.direct
			s.Resume = true
			s.Concurrency = 2
			res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
			sane(t, res, err, 40)
			// The first connection of each worker cannot resume, and a
			// worker may start before a ticket arrived; most of the rest
			// must.
			if res.Resumed < 30 {
				t.Errorf("%d of 40 connections resumed, want at least 30", res.Resumed)
			}
		})
	}
}

func TestStreams(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeStreams, 300)
	s.Concurrency = 8
	s.Sessions = 2
	res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
	sane(t, res, err, 300)
	st := g.srv.Stats()
	if st.HandshakesOK != 2 {
		t.Errorf("gateway counted %d handshakes, want 2 (one per session)", st.HandshakesOK)
	}
	if st.StreamsOK != 300+2 { // and one warm-up stream per session
		t.Errorf("gateway counted %d streams, want 302", st.StreamsOK)
	}
}

func TestThroughput(t *testing.T) {
	src := sourceServer(t)
	g := startGateway(t, config.Route{Name: "source", Backend: src})
	const chunks, size = 64, 32 << 10
	for _, tc := range []struct {
		name    string
		dir     bench.Direction
		route   string
		direct  bool
		streams int
	}{
		{"up", bench.DirUp, "discard", false, 1},
		{"both", bench.DirBoth, "echo", false, 1},
		{"both-4", bench.DirBoth, "echo", false, 4},
		{"down", bench.DirDown, "source", false, 1},
		{"up-direct", bench.DirUp, "discard", true, 2},
		{"both-direct", bench.DirBoth, "echo", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := g.settings(bench.ModeThroughput, chunks)
			s.Direction, s.Route, s.Direct, s.Streams = tc.dir, tc.route, tc.direct, tc.streams
			res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
			sane(t, res, err, chunks)
			switch tc.dir {
			case bench.DirUp:
				if res.BytesUp != chunks*size || res.BytesDown != 0 {
					t.Errorf("bytes up %d down %d, want %d and 0", res.BytesUp, res.BytesDown, chunks*size)
				}
			case bench.DirBoth:
				if res.BytesUp != chunks*size || res.BytesDown != res.BytesUp {
					t.Errorf("bytes up %d down %d, want %d both", res.BytesUp, res.BytesDown, chunks*size)
				}
			case bench.DirDown:
				if res.BytesDown != chunks*size || res.BytesUp != 0 {
					t.Errorf("bytes up %d down %d, want 0 and %d", res.BytesUp, res.BytesDown, chunks*size)
				}
			}
			if res.MBPerSec() <= 0 {
				t.Errorf("%v MB/s", res.MBPerSec())
			}
		})
	}
}

func TestDeny(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeDeny, 200)
	s.Cert, s.Key, s.CA = "", "", "" // deny mode needs no TLS
	s.Source = netip.MustParseAddr("127.0.0.2")
	res, err := bench.Run(ctxT(t), s, nil, nil)
	sane(t, res, err, 200)
	st := g.srv.Stats()
	if st.Denied != 200 {
		t.Errorf("gateway denied %d connections, want 200", st.Denied)
	}
	if st.HandshakesOK+st.HandshakesFailed != 0 {
		t.Errorf("gateway started %d handshakes for denied connections", st.HandshakesOK+st.HandshakesFailed)
	}
}

func TestDenyAllowedSource(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeDeny, 3)
	s.Source = netip.MustParseAddr("127.0.0.1") // allowed: the gateway waits for a handshake
	s.OpTimeout = 200 * time.Millisecond
	res, err := bench.Run(ctxT(t), s, nil, nil)
	if !errors.Is(err, bench.ErrAllFailed) || !errors.Is(err, bench.ErrNotDenied) {
		t.Fatalf("Run: %v, want ErrAllFailed and ErrNotDenied", err)
	}
	if res.Ops != 0 || res.ErrorsByKind["deny/not_denied"] != 3 {
		t.Errorf("ops %d, errors %v; want 0 and 3 deny/not_denied", res.Ops, res.ErrorsByKind)
	}
}

func TestPlaintext(t *testing.T) {
	addr := testnet.EchoServer(t)
	for _, mode := range []bench.Mode{bench.ModeHandshake, bench.ModeThroughput} {
		s := &bench.Settings{Mode: mode, Count: 20, Concurrency: 2, UnsafePlaintext: true}
		s.Gateways = []string{addr}
		res, err := bench.Run(ctxT(t), s, nil, nil)
		sane(t, res, err, 20)
		if res.TLSVersion != "" {
			t.Errorf("plaintext run reports TLS %q", res.TLSVersion)
		}
	}
}

func TestRefusedRoute(t *testing.T) {
	g := startGateway(t)
	for _, mode := range []bench.Mode{bench.ModeHandshake, bench.ModeStreams} {
		s := g.settings(mode, 5)
		s.Route = "nope"
		res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
		var re *mux.RefusedError
		if !errors.As(err, &re) || re.Status != mux.StatusUnknownRoute {
			t.Fatalf("%s: Run: %v, want a *mux.RefusedError with unknown route", mode, err)
		}
		if mode == bench.ModeHandshake && res.ErrorsByKind["open/refused_unknown_route"] != 5 {
			t.Errorf("errors %v, want 5 open/refused_unknown_route", res.ErrorsByKind)
		}
	}
}

// TestWrongCA: a client that does not trust the gateway's CA fails with a
// *tunnel.DialError (exit status 2) and the run stops early.
func TestWrongCA(t *testing.T) {
	g := startGateway(t)
	other := startGateway(t) // another PKI
	s := g.settings(bench.ModeHandshake, 0)
	s.Duration = 30 * time.Second
	s.Cert, s.Key, s.CA = other.pki.Client.Cert, other.pki.Client.Key, other.pki.CAFile
	start := time.Now()
	res, err := bench.Run(ctxT(t), s, other.creds(t), nil)
	var de *tunnel.DialError
	if !errors.As(err, &de) || !errors.Is(err, bench.ErrAllFailed) {
		t.Fatalf("Run: %v, want ErrAllFailed and a *tunnel.DialError", err)
	}
	if !strings.Contains(de.Explanation, "--ca") {
		t.Errorf("explanation %q does not point at --ca", de.Explanation)
	}
	if time.Since(start) > 10*time.Second || res.Aborted == "" {
		t.Errorf("run took %v, aborted %q: want an early stop", time.Since(start), res.Aborted)
	}
	if res.ErrorsByKind["handshake/server_cert"] == 0 {
		t.Errorf("errors %v, want handshake/server_cert", res.ErrorsByKind)
	}
}

func TestNoGateway(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	g := startGateway(t)
	s := g.settings(bench.ModeStreams, 5)
	s.Gateways = []string{addr}
	_, err := bench.Run(ctxT(t), s, g.creds(t), nil)
	var de *tunnel.DialError
	if !errors.As(err, &de) || de.Gateway != addr {
		t.Fatalf("Run: %v, want a *tunnel.DialError for %s", err, addr)
	}
}

// TestDuration: without --count, the run stops at --duration.
func TestDuration(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeStreams, 0)
	s.Duration = 300 * time.Millisecond
	start := time.Now()
	res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 300ms run took %v", took)
	}
	if res.Ops == 0 || res.Elapsed < 300*time.Millisecond {
		t.Errorf("%d ops in %v", res.Ops, res.Elapsed)
	}
}

// TestCanceled: a run ends when its context does, with what was done.
func TestCanceled(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeHandshake, 0)
	s.Duration = time.Minute
	ctx, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
	defer cancel()
	res, err := bench.Run(ctx, s, g.creds(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors != 0 || res.Elapsed > 5*time.Second {
		t.Errorf("%d ops, %d errors %v in %v", res.Ops, res.Errors, res.ErrorSamples, res.Elapsed)
	}
}

func TestProgress(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeStreams, 0)
	s.Duration = 1200 * time.Millisecond
	var out testnet.SyncBuffer
	if _, err := bench.Run(ctxT(t), s, g.creds(t), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, " ok ") || !strings.Contains(got, "/s") || !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("progress output %q: want live lines and a cleared line at the end", got)
	}
}

func TestOutput(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeThroughput, 8)
	res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
	sane(t, res, err, 8)

	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("JSON output is not one line: %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, buf.String())
	}
	for _, k := range []string{"mode", "rate_per_sec", "mb_per_sec", "p50_ms", "p99_ms", "errors", "duration_s"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON output lacks %q: %s", k, buf.String())
		}
	}
	if m["mode"] != "throughput" || m["mb_per_sec"].(float64) <= 0 || m["errors"].(float64) != 0 {
		t.Errorf("JSON output: mode %v, mb_per_sec %v, errors %v", m["mode"], m["mb_per_sec"], m["errors"])
	}

	buf.Reset()
	if err := res.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"throughput, mux", "MB/s", "p99", "errors     none"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestNoALPN: mux mode against a TLS server that is no gateway (it
// negotiates no ALPN) fails every operation as handshake/no_alpn, with a
// *tunnel.DialError that wraps bench.ErrALPN.
func TestNoALPN(t *testing.T) {
	g := startGateway(t)
	s := g.settings(bench.ModeHandshake, 5)
	s.Gateways = []string{tlsEchoServer(t, g.pki)}
	res, err := bench.Run(ctxT(t), s, g.creds(t), nil)
	var de *tunnel.DialError
	if !errors.As(err, &de) || !errors.Is(err, bench.ErrALPN) {
		t.Fatalf("Run: %v, want a *tunnel.DialError wrapping ErrALPN", err)
	}
	if res.ErrorsByKind["handshake/no_alpn"] != 5 {
		t.Errorf("errors %v, want 5 handshake/no_alpn", res.ErrorsByKind)
	}
}

package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/bench"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil || o.duration != 4*time.Second || o.idle != 10000 || !o.micro || o.concurrency != 32 || o.rounds != 2 {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	o, err = parseOptions([]string{"-quick"}, io.Discard)
	if err != nil || o.duration != time.Second || o.idle != 1000 || o.micro || o.out != "-" {
		t.Errorf("-quick: %+v, %v", o, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-duration", "0s"}, "-duration"},
		{[]string{"-concurrency", "0"}, "-concurrency"},
		{[]string{"-idle", "-1"}, "-idle"},
		{[]string{"-rounds", "0"}, "-rounds"},
		{[]string{"-baselines", "tlsterm,nginx"}, `"nginx"`},
		{[]string{"extra"}, `"extra"`},
	} {
		if _, err := parseOptions(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

// measured returns a measure with the given rate, MB/s and server CPU.
func measured(group, target string, rate, mbps float64, ops uint64, cpu time.Duration) *measure {
	return &measure{group: group, target: target, cpu: cpu, res: &bench.JSON{
		Ops: ops, RatePerSec: rate, MBPerSec: mbps, BytesDown: int64(mbps * 1e6), Direction: "both",
		ErrorsByKind: map[string]uint64{},
	}}
}

func TestChecksAndReport(t *testing.T) {
	s := &suite{o: options{duration: time.Second, concurrency: 32}, started: time.Now()}
	s.results = []*measure{
		measured(gHandshake, tGatewayMux, 1500, 0, 1500, 1500*time.Millisecond),
		measured(gHandshake, tGatewayDir, 1800, 0, 1800, 1500*time.Millisecond),
		measured(gHandshake, "tlsterm", 1600, 0, 1600, 1200*time.Millisecond),
		measured(gHandshake, "haproxy", 900, 0, 900, 900*time.Millisecond),
		measured(gStreams, tGatewayMux, 36000, 0, 36000, time.Second),
		measured(gHandshake, tGatewayB, 2000, 0, 2000, 1500*time.Millisecond),
		measured(gStreams, tGatewayB, 30000, 0, 30000, 3*time.Second),
		measured(gBoth1, tGatewayMux, 0, 700, 10, time.Second),
		measured(gBoth1, "tlsterm", 0, 1000, 10, time.Second),
		measured(gDeny, tGatewayMux, 16000, 0, 16000, 200*time.Millisecond),
		{group: gUp1, target: "haproxy", err: errors.New("exit status 2")},
	}
	s.memory = []memResult{{route: "echo", backend: "TCP echo backend", streams: 10000, before: 10 << 20, with: 10<<20 + 10000*20<<10, perStream: 20 << 10}}
	got := map[string]check{}
	for _, c := range s.checks() {
		got[c.name] = c
	}
	for name, want := range map[string]struct {
		met      bool
		missedBy string
	}{
		"full handshakes/s, mux ≥ bare crypto/tls terminator":           {false, "6% short"},
		"full handshakes/s, direct ≥ bare crypto/tls terminator":        {true, ""},
		"full handshakes/s, mux > haproxy":                              {true, ""},
		"stream opens/s ≥ 20× handshakes/s (TCP backend)":               {true, ""},
		"the same by gateway CPU per op (TCP backend)":                  {true, ""},
		"the same by gateway CPU per op":                                {true, ""},
		"1-stream throughput (both) ≥ 60% of the bare TLS terminator's": {true, ""},
		"denied connections/s ≥ 10× handshakes/s":                       {true, ""},
		"idle memory per stream (TCP backend) ≤ 16 KiB":                 {false, "25% over"},
		"stream opens/s ≥ 20× handshakes/s (builtin:echo)":              {false, "25% short"},
		"the same by gateway CPU per op (builtin:echo)":                 {false, "62% short"},
	} {
		c, ok := got[name]
		if !ok || !c.known || c.met != want.met || c.missedBy != want.missedBy {
			t.Errorf("check %q: %+v, want met=%v missed by %q", name, c, want.met, want.missedBy)
		}
	}
	r := s.report()
	for _, want := range []string{
		"| full handshakes/s, mux ≥ bare crypto/tls terminator | ≥ 1.00× tlsterm | 0.94× tlsterm | **missed** (6% short) |",
		"| tlsterm | 1600 |", "| 0.94× | 1.12× |", // gateway/this ratios of the tlsterm row
		"| haproxy | – | – | – | – | – | failed: exit status 2 |",
		"| TCP echo backend | 10000 | 10.0 | 205.3 | 20.0 |",
		"[bench/acl/RESULTS.md](acl/RESULTS.md)",
	} {
		if !strings.Contains(r.markdown, want) {
			t.Errorf("report lacks %q:\n%s", want, r.markdown)
		}
	}
	if cpu := cpuPerOp(s.find(gHandshake, tGatewayMux)); cpu != 1000 {
		t.Errorf("CPU per handshake %v µs, want 1000", cpu)
	}
	if cpu := cpuPerGB(s.find(gBoth1, "tlsterm")); cpu != 1 {
		t.Errorf("CPU per GB %v s, want 1", cpu)
	}
}

func TestWriteResultsKeepsNotes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := writeResults(path, "# Benchmark results\n\nold\n"); err != nil {
		t.Fatal(err)
	}
	old := "# Benchmark results\n\nold\n\n## Notes\n\nprofiles say X\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeResults(path, "# Benchmark results\n\nnew\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "# Benchmark results\n\nnew\n## Notes\n\nprofiles say X\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}

// TestHAProxyConfig checks the generated configuration with haproxy -c
// when haproxy is installed.
func TestHAProxyConfig(t *testing.T) {
	dir := t.TempDir()
	f := files{ca: filepath.Join(dir, "ca.crt"), serverPEM: filepath.Join(dir, "gw.pem")}
	front := map[string]string{"echo": "127.0.0.1:1", "discard": "127.0.0.1:2"}
	back := map[string]string{"echo": "127.0.0.1:3", "discard": "127.0.0.1:4"}
	cfg := haproxyConfig(f, front, back)
	for _, want := range []string{"mode tcp", "verify required ca-file " + f.ca, "bind 127.0.0.1:1 ssl crt " + f.serverPEM,
		"server s1 127.0.0.1:4", "ssl-min-ver TLSv1.3"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy config lacks %q:\n%s", want, cfg)
		}
	}
	bin := lookPath("haproxy")
	if bin == "" {
		t.Skip("haproxy not installed")
	}
	// Real files for the check.
	p := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := genCert(t, dir, f); err != nil {
		t.Skip(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", p).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
}

// genCert writes a self-signed certificate and key as gw.pem and ca.crt with
// openssl, for haproxy -c.
func genCert(t *testing.T, dir string, f files) error {
	key, crt := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", key, "-out", crt, "-subj", "/CN=localhost", "-days", "1").CombinedOutput(); err != nil {
		return errors.New("openssl: " + string(out))
	}
	k, _ := os.ReadFile(key)
	c, _ := os.ReadFile(crt)
	if err := os.WriteFile(f.serverPEM, append(c, k...), 0o600); err != nil {
		return err
	}
	return os.WriteFile(f.ca, c, 0o600)
}

func TestStunnelConfig(t *testing.T) {
	f := files{ca: "/p/ca.crt", serverCert: "/p/gw.crt", serverKey: "/p/gw.key"}
	cfg := stunnelConfig(f, map[string]string{"echo": "127.0.0.1:1"}, map[string]string{"echo": "127.0.0.1:3"}, "/p/s.log")
	for _, want := range []string{"foreground = yes", "[echo]\naccept = 127.0.0.1:1\nconnect = 127.0.0.1:3",
		"CAfile = /p/ca.crt", "requireCert = yes", "verifyChain = yes", "sslVersionMin = TLSv1.3", "output = /p/s.log"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("stunnel config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestBest(t *testing.T) {
	a := measured(gHandshake, tGatewayMux, 500, 0, 500, time.Second)
	b := measured(gHandshake, "tlsterm", 600, 0, 600, time.Second)
	c := measured(gHandshake, tGatewayMux, 700, 0, 700, time.Second)
	failed := &measure{group: gHandshake, target: "tlsterm", err: errors.New("x")}
	got := best([]*measure{a, b, failed, c})
	if len(got) != 2 || got[0] != c || got[1] != b {
		t.Errorf("best = %v, want the 700/s gateway run then the tlsterm run", got)
	}
	if got := best([]*measure{failed}); len(got) != 1 || got[0] != failed {
		t.Errorf("best of a failed run = %v", got)
	}
}

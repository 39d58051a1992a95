package bench_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/bench"
	"github.com/portcullis-gw/portcullis/config"
)

// files writes readable dummy cert, key and CA files (Parse checks only
// that they can be read).
func files(t *testing.T) []string {
	dir := t.TempDir()
	var args []string
	for _, n := range []string{"cert", "key", "ca"} {
		p := filepath.Join(dir, n+".pem")
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--"+n, p)
	}
	return args
}

func noEnv(string) (string, bool) { return "", false }

func TestParseSettingsDefaults(t *testing.T) {
	s, err := bench.ParseSettings(append(files(t), "--gateway", "gw.example.com:8443"), noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode != bench.ModeHandshake || s.Route != "echo" || s.Concurrency != 32 || s.Count != 0 ||
		s.Sessions != 1 || s.Streams != 1 || s.Direction != bench.DirBoth || s.ServerName != "gw.example.com" ||
		s.OpTimeout != 10*time.Second || s.Source.IsValid() || s.JSON || s.Resume {
		t.Errorf("defaults: %+v", s)
	}
}

func TestParseSettingsEnv(t *testing.T) {
	env := map[string]string{
		"TUNNEL_MODE": "Streams", "TUNNEL_CONCURRENCY": "7", "TUNNEL_GATEWAY": "127.0.0.1:1",
		"TUNNEL_SESSIONS": "3", "TUNNEL_JSON": "true", "TUNNEL_DURATION": "2s",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	s, err := bench.ParseSettings(append(files(t), "--concurrency", "9"), lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode != bench.ModeStreams || s.Concurrency != 9 || s.Sessions != 3 || !s.JSON || s.Duration != 2*time.Second {
		t.Errorf("from the environment (and a flag that wins): %+v", s)
	}
}

func TestParseSettingsDenyNeedsNoFiles(t *testing.T) {
	s, err := bench.ParseSettings([]string{"--gateway", "127.0.0.1:8443", "--mode", "deny", "--source", "127.0.0.2"}, noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.NeedsTLS() || s.Source.String() != "127.0.0.2" {
		t.Errorf("deny settings: %+v", s)
	}
}

func TestParseSettingsHelp(t *testing.T) {
	var out strings.Builder
	_, err := bench.ParseSettings([]string{"--help"}, noEnv, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"tunnel bench", "--mode", "TUNNEL_MODE", "--concurrency", "--unsafe-plaintext", "--resume", "--direction"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestParseSettingsErrors(t *testing.T) {
	base := append(files(t), "--gateway", "127.0.0.1:8443")
	for _, tc := range []struct {
		args []string
		want []string // in the message
	}{
		{[]string{"--mode", "fast"}, []string{"--mode", "TUNNEL_MODE", `"fast"`, "handshake, streams"}},
		{[]string{"--direction", "sideways"}, []string{"--direction", "up, down or both"}},
		{[]string{"--concurrency", "0"}, []string{"--concurrency", "out of range 1..10000", `"0"`}},
		{[]string{"--concurrency", "many"}, []string{"--concurrency", "not a whole number"}},
		{[]string{"--size", "-1"}, []string{"--size", "out of range"}},
		{[]string{"--count", "-5"}, []string{"--count", "must not be negative"}},
		{[]string{"--duration", "soon"}, []string{"--duration", "not a duration"}},
		{[]string{"--source", "127.0.0.2:80"}, []string{"--source", "TUNNEL_SOURCE", "127.0.0.2:80"}},
		{[]string{"--route", "a b"}, []string{"--route", "invalid route name"}},
		{[]string{"--mode", "streams", "--direct"}, []string{"--direct", "streams mode needs mux sessions"}},
		{[]string{"--mode", "streams", "--resume"}, []string{"--resume", "only handshake mode"}},
		{[]string{"--direct", "--unsafe-plaintext"}, []string{"--unsafe-plaintext", "cannot be combined with --direct"}},
		{[]string{"--direct", "--sessions", "2"}, []string{"--sessions", "mux mode only"}},
		{[]string{"--op-timeout", "-1s"}, []string{"--op-timeout", "greater than 0"}},
		{[]string{"extra"}, []string{"no positional arguments", `"extra"`}},
		{[]string{"--bogus"}, []string{"bogus"}},
	} {
		_, err := bench.ParseSettings(append(append([]string(nil), base...), tc.args...), noEnv, nil)
		if !errors.Is(err, config.ErrInvalid) {
			t.Errorf("%v: error %v, want one wrapping config.ErrInvalid", tc.args, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.args, err, w)
			}
		}
	}
	// Without files, TLS modes name the missing ones.
	_, err := bench.ParseSettings([]string{"--gateway", "127.0.0.1:8443"}, noEnv, nil)
	for _, w := range []string{"--cert", "--key", "--ca"} {
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), w) {
			t.Errorf("no files: error %v lacks %s", err, w)
		}
	}
	// No gateway at all.
	_, err = bench.ParseSettings([]string{"--mode", "deny"}, noEnv, nil)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "--gateway") {
		t.Errorf("no gateway: error %v", err)
	}
}

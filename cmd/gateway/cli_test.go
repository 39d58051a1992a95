package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

// runMain runs the gateway command line and returns its exit status,
// stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpPrintsOverview(t *testing.T) {
	for _, arg := range []string{"help", "--help", "-h", "-help"} {
		code, out, errOut := runMain(t, arg)
		if code != 0 || out != usage || errOut != "" {
			t.Errorf("gateway %s: exit %d, stderr %q, stdout is the overview: %v", arg, code, errOut, out == usage)
		}
	}
	for _, want := range []string{"explain", "pki", "version"} {
		if !strings.Contains(usage, want) {
			t.Errorf("the overview does not mention %q", want)
		}
	}
	code, out, _ := runMain(t, "run", "--help")
	if code != 0 || !strings.HasPrefix(out, "Usage: gateway run") || !strings.Contains(out, "--allow-file") {
		t.Errorf("gateway run --help: exit %d, want the run help:\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		code, out, errOut := runMain(t, arg)
		if code != 0 || errOut != "" {
			t.Errorf("gateway %s: exit %d, stderr %q", arg, code, errOut)
		}
		if !strings.HasPrefix(out, "gateway ") || !strings.Contains(out, runtime.Version()) ||
			!strings.Contains(out, "commit ") || strings.Count(out, "\n") != 1 {
			t.Errorf("gateway %s printed %q, want one line with the version, commit and %s", arg, out, runtime.Version())
		}
	}
}

func TestWarnUnknownEnv(t *testing.T) {
	environ := []string{
		"GATEWAY_ALLOWID=any",           // misspelled run setting
		"GATEWAY_LISTEN=:8443",          // run
		"GATEWAY_DIR=./ca",              // pki
		"GATEWAY_KEY_TYPE=ed25519",      // pki
		"GATEWAY_SERIAL=01",             // pki revoke
		"GATEWAY_EXPLAIN_FROM=10.0.0.1", // explain
		"GATEWAY_EXPLAIN_FORM=10.0.0.1", // misspelled explain setting
		"TUNNEL_GATEWAYS=gw:8443",       // another program's
		"HOME=/root",
	}
	var b bytes.Buffer
	warnUnknownEnv(&b, environ)
	want := "gateway: warning: GATEWAY_ALLOWID is not a setting (ignored); did you mean GATEWAY_ALLOW_ID?\n" +
		"gateway: warning: GATEWAY_EXPLAIN_FORM is not a setting (ignored); did you mean GATEWAY_EXPLAIN_FROM?\n"
	if b.String() != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestMisspelledVariableWarnedAtStart: the commands print the warning on
// stderr before they do their work.
func TestMisspelledVariableWarnedAtStart(t *testing.T) {
	t.Setenv("GATEWAY_ALLOWID", "any")
	for _, args := range [][]string{{"run", "--help"}, {"pki", "show", "--help"}, {"explain", "--help"}} {
		code, _, errOut := runMain(t, args...)
		if code != 0 || !strings.Contains(errOut, "GATEWAY_ALLOWID is not a setting (ignored); did you mean GATEWAY_ALLOW_ID?") {
			t.Errorf("gateway %v: exit %d, stderr %q: want the warning", args, code, errOut)
		}
	}
	if _, _, errOut := runMain(t, "--version"); errOut != "" {
		t.Errorf("gateway --version warns: %q", errOut)
	}
}

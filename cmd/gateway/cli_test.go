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

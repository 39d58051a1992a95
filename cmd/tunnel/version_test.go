package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

func TestVersionAndHelp(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{arg}, strings.NewReader(""), &out, &errOut)
		if code != 0 || errOut.Len() != 0 {
			t.Errorf("tunnel %s: exit %d, stderr %q", arg, code, errOut.String())
		}
		if s := out.String(); !strings.HasPrefix(s, "tunnel ") || !strings.Contains(s, runtime.Version()) || !strings.Contains(s, "commit ") {
			t.Errorf("tunnel %s printed %q, want the version, commit and %s", arg, s, runtime.Version())
		}
	}
	for _, arg := range []string{"help", "--help", "-h"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{arg}, strings.NewReader(""), &out, &errOut); code != 0 || out.String() != usage {
			t.Errorf("tunnel %s: exit %d, stdout is the overview: %v", arg, code, out.String() == usage)
		}
	}
	if !strings.Contains(usage, "--version") {
		t.Errorf("the overview does not mention --version")
	}
}

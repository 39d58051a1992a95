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

func TestWarnUnknownEnv(t *testing.T) {
	var b bytes.Buffer
	warnUnknownEnv(&b, []string{"TUNNEL_GATEWAYS=gw:8443", "TUNNEL_GATEWAY=gw:8443", "TUNNEL_LOCAL=5432=pg",
		"TUNNEL_MODE=handshake", "TUNNEL_SERVERNAME=x", "GATEWAY_ALLOWID=any"})
	want := "tunnel: warning: TUNNEL_GATEWAYS is not a setting (ignored); did you mean TUNNEL_GATEWAY?\n" +
		"tunnel: warning: TUNNEL_SERVERNAME is not a setting (ignored); did you mean TUNNEL_SERVER_NAME?\n"
	if b.String() != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestMisspelledVariableWarnedAtStart(t *testing.T) {
	t.Setenv("TUNNEL_GATEWAYS", "gw:8443")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"nc", "--help"}, strings.NewReader(""), &out, &errOut)
	if code != 0 || !strings.Contains(errOut.String(), "TUNNEL_GATEWAYS is not a setting (ignored); did you mean TUNNEL_GATEWAY?") {
		t.Errorf("tunnel nc --help: exit %d, stderr %q: want the warning", code, errOut.String())
	}
}

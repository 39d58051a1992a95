package testnet

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Sample returns the value of one series of a Prometheus text exposition,
// written as client_golang writes it (labels in name order: `name{a="x",b="y"}`),
// and whether it is there.
func Sample(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// PromtoolCheck validates an exposition with promtool, the Prometheus
// project's own checker and linter; it skips the test, saying why, when
// promtool is not installed.
func PromtoolCheck(t testing.TB, body string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus): the exposition is not checked")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

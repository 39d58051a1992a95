// Command testreport reads `go test -json` on standard input and writes
// what a person needs from a long run: the output of every test that
// failed (and of packages that did not build), the tests that were skipped
// with the reason each gave, and one closing line of counts. It exits 1
// when anything failed, so `go test -json ./... | testreport` fails as go
// test would. Lines that are not JSON (build errors on some versions) are
// passed through.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() { os.Exit(run(os.Stdin, os.Stdout)) }

// key names a test, or a package when Test is empty.
type key struct{ pkg, test string }

func run(in io.Reader, out io.Writer) int {
	var (
		output            = map[key]*strings.Builder{}
		passed, failed    int
		skips             []string
		failures          []string
		pkgFailed, pkgRun = map[string]bool{}, map[string]bool{}
		buildFailed       bool
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(out, string(line))
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output", "build-output":
			b := output[k]
			if b == nil {
				b = new(strings.Builder)
				output[k] = b
			}
			if b.Len() < 1<<20 { // a runaway test's output is cut
				b.WriteString(e.Output)
			}
		case "build-fail":
			buildFailed = true
		case "pass":
			if e.Test != "" {
				passed++
			} else {
				pkgRun[e.Package] = true
			}
			delete(output, k)
		case "skip":
			if e.Test != "" {
				skips = append(skips, fmt.Sprintf("%s %s: %s", short(e.Package), e.Test, skipReason(output[k])))
			}
			delete(output, k)
		case "fail":
			if e.Test != "" {
				failed++
				failures = append(failures, fmt.Sprintf("--- FAIL: %s %s (%.2fs)\n%s", short(e.Package), e.Test, e.Elapsed, text(output[k])))
			} else {
				pkgFailed[e.Package] = true
				failures = append(failures, fmt.Sprintf("FAIL %s\n%s", e.Package, text(output[k])))
			}
			delete(output, k)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testreport: reading the test output: %v\n", err)
		return 1
	}
	for _, f := range failures {
		fmt.Fprintln(out, strings.TrimRight(f, "\n"))
	}
	if len(skips) > 0 {
		slices.Sort(skips)
		fmt.Fprintf(out, "skipped (%d):\n", len(skips))
		for _, s := range skips {
			fmt.Fprintln(out, "  "+s)
		}
	}
	fmt.Fprintf(out, "packages: %d passed, %d failed\n", len(pkgRun), len(pkgFailed))
	fmt.Fprintf(out, "tests: %d passed, %d failed, %d skipped\n", passed, failed, len(skips))
	if failed > 0 || len(pkgFailed) > 0 || buildFailed {
		return 1
	}
	return 0
}

// skipReason is the message t.Skip gave: the test's output without the
// "=== RUN" and "--- SKIP" lines.
func skipReason(b *strings.Builder) string {
	var keep []string
	for _, l := range strings.Split(text(b), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		keep = append(keep, t)
	}
	if len(keep) == 0 {
		return "(no reason given)"
	}
	return strings.Join(keep, " ")
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

// short drops the module path from a package name.
func short(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/portcullis-gw/portcullis/")
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// micro lists the microbenchmarks beside the hot code that the suite
// runs: a package and a -bench pattern. mux's BenchmarkIdleStreamMemory is
// left out: the suite measures idle memory end to end, and that benchmark
// sets up 500 streams whatever -benchtime says.
var micro = []struct{ pkg, pattern string }{
	{"./acl", "."},
	{"./mux", "^Benchmark(StreamOpen|StreamOpenParallel|PingPong|RoundTrip|Pipe)$"},
	{"./gateway", "."},
	{"./bench", "."},
}

// runMicro runs the Go microbenchmarks once each and returns their output
// lines (benchstat-friendly: feed two such outputs to benchstat).
func (s *suite) runMicro(ctx context.Context) string {
	var keep []string
	for _, m := range micro {
		s.logf("microbenchmarks: go test -bench '%s' %s", m.pattern, m.pkg)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		out, err := runCmd(ctx, s.root, "go", "test", "-run", "^$", "-bench", m.pattern, "-benchmem",
			"-count", "1", "-benchtime", s.o.benchtime, "-timeout", "5m", m.pkg)
		cancel()
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			l := sc.Text()
			for _, p := range []string{"Benchmark", "goos:", "goarch:", "pkg:", "cpu:"} {
				if strings.HasPrefix(l, p) && !(p != "Benchmark" && p != "pkg:" && slices.Contains(keep, l)) {
					keep = append(keep, l)
					break
				}
			}
		}
		if err != nil {
			keep = append(keep, fmt.Sprintf("# %s: go test failed: %v", m.pkg, firstLine(err.Error())))
			s.notes = append(s.notes, fmt.Sprintf("microbenchmarks of %s: %s", m.pkg, firstLine(err.Error())))
		}
	}
	return strings.Join(keep, "\n")
}

// microCommand describes the microbenchmark runs for the report.
func microCommand(benchtime string) string {
	var parts []string
	for _, m := range micro {
		parts = append(parts, fmt.Sprintf("go test -run '^$' -bench '%s' -benchmem -count 1 -benchtime %s %s", m.pattern, benchtime, m.pkg))
	}
	return strings.Join(parts, "\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

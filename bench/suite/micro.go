package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"
)

// microPackages hold the microbenchmarks beside the hot code.
var microPackages = []string{"./acl", "./mux", "./gateway", "./bench"}

// runMicro runs the Go microbenchmarks once each and returns their output
// lines (benchstat-friendly: feed two such outputs to benchstat).
func (s *suite) runMicro(ctx context.Context) string {
	s.logf("microbenchmarks: go test -bench %s", strings.Join(microPackages, " "))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", "-benchtime", s.o.benchtime},
		microPackages...)
	out, err := runCmd(ctx, s.root, "go", args...)
	var keep []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		for _, p := range []string{"Benchmark", "goos:", "goarch:", "pkg:", "cpu:"} {
			if strings.HasPrefix(l, p) {
				keep = append(keep, l)
				break
			}
		}
	}
	if err != nil {
		keep = append(keep, fmt.Sprintf("# go test failed: %v", firstLine(err.Error())))
		s.notes = append(s.notes, "microbenchmarks: "+firstLine(err.Error()))
	}
	return strings.Join(keep, "\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

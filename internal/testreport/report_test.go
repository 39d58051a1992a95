package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOK","Elapsed":0.1}`,
		`{"Action":"run","Package":"p/a","Test":"TestPG"}`,
		`{"Action":"output","Package":"p/a","Test":"TestPG","Output":"=== RUN   TestPG\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestPG","Output":"    pg_test.go:12: postgres not installed (apt-get install postgresql)\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestPG","Output":"--- SKIP: TestPG (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/a","Test":"TestPG"}`,
		`{"Action":"run","Package":"p/a","Test":"TestBad"}`,
		`{"Action":"output","Package":"p/a","Test":"TestBad","Output":"    bad_test.go:3: got 1, want 2\n"}`,
		`{"Action":"fail","Package":"p/a","Test":"TestBad","Elapsed":0.2}`,
		`{"Action":"fail","Package":"p/a","Elapsed":0.3}`,
		`{"Action":"pass","Package":"p/b","Elapsed":0.3}`,
		`# p/c`,
	}, "\n")
	var out strings.Builder
	code := run(strings.NewReader(in), &out)
	got := out.String()
	if code != 1 {
		t.Errorf("exit %d with a failed test, want 1", code)
	}
	for _, want := range []string{
		"--- FAIL: p/a TestBad (0.20s)", "got 1, want 2", "FAIL p/a",
		"skipped (1):\n  p/a TestPG: pg_test.go:12: postgres not installed (apt-get install postgresql)",
		"packages: 1 passed, 1 failed", "tests: 1 passed, 1 failed, 1 skipped", "# p/c",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestOK") {
		t.Errorf("a passing test's output is in the report:\n%s", got)
	}
	var clean strings.Builder
	if code := run(strings.NewReader(`{"Action":"pass","Package":"p/a","Test":"TestOK"}`), &clean); code != 0 {
		t.Errorf("exit %d when everything passed:\n%s", code, clean.String())
	}
}

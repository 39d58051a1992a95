package proc

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseStat(t *testing.T) {
	const tail = " S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 4 0 100 200 300"
	for _, tc := range []struct {
		in      string
		want    Times
		wantErr string
	}{
		{"42 (gateway)" + tail, Times{250, 75}, ""},
		{"42 (a) b (c))" + tail, Times{250, 75}, ""}, // parentheses and spaces in the name
		{"42 gateway" + tail, Times{}, "no ')'"},
		{"42 (gateway) S 1 2", Times{}, "fields after the command name"},
		{"42 (g) S 1 2 3 4 5 6 7 8 9 10 x 75", Times{}, "utime \"x\""},
		{"42 (g) S 1 2 3 4 5 6 7 8 9 10 1 -5", Times{}, "stime \"-5\""},
	} {
		got, err := ParseStat([]byte(tc.in))
		if tc.wantErr != "" {
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseStat(%q) error %v, want ErrFormat with %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStat(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if d := (Times{User: 3, System: 2}).Total(); d != 50*time.Millisecond {
		t.Errorf("Total = %v, want 50ms", d)
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tgateway\nVmHWM:\t   2048 kB\nVmRSS:\t   1536 kB\nThreads:\t5\n"
	if n, err := ParseStatusKB([]byte(status), "VmRSS"); err != nil || n != 1536<<10 {
		t.Errorf("VmRSS = %d, %v; want %d", n, err, 1536<<10)
	}
	for _, tc := range []struct{ in, field, wantErr string }{
		{status, "VmSwap", "no VmSwap line"},
		{"VmRSS:\t12 MB\n", "VmRSS", `want "N kB"`},
		{"VmRSS:\tx kB\n", "VmRSS", "want a number"},
		{"VmRSS:\t-4 kB\n", "VmRSS", "want a number"},
		{"Threads:\t5\n", "Threads", `want "N kB"`},
	} {
		_, err := ParseStatusKB([]byte(tc.in), tc.field)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseStatusKB(%q, %s) error %v, want ErrFormat with %q", tc.in, tc.field, err, tc.wantErr)
		}
	}
}

func TestParseCPUInfo(t *testing.T) {
	in := "processor\t: 0\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got := ParseCPUInfo([]byte(in)); got != (CPUInfo{Model: "AMD EPYC 7B13", CPUs: 2}) {
		t.Errorf("ParseCPUInfo = %+v", got)
	}
	if got := ParseCPUInfo([]byte("processor : 0\n")); got != (CPUInfo{Model: "unknown", CPUs: 1}) {
		t.Errorf("ParseCPUInfo without model = %+v", got)
	}
}

// TestSelf reads this process: CPU time grows with work, RSS is plausible.
func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	pid := os.Getpid()
	before, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the CPU time has grown by 100ms: on a busy machine that
	// takes longer than 100ms of wall time, but never more than 5s.
	start := time.Now()
	var after time.Duration
	x := 0
	for time.Since(start) < 5*time.Second {
		for range 1 << 16 {
			x++
		}
		if after, err = CPU(pid); err != nil {
			t.Fatal(err)
		}
		if after-before >= 100*time.Millisecond {
			break
		}
	}
	wall := time.Since(start)
	if grew := after - before; grew < 100*time.Millisecond || grew > wall+2*ClockTick {
		t.Errorf("CPU grew by %v over %v of wall time spinning (%d loops)", grew, wall, x)
	}
	rss, err := RSS(pid)
	if err != nil || rss < 1<<20 || rss > 8<<30 {
		t.Errorf("RSS = %d, %v", rss, err)
	}
	if _, err := CPU(-1); err == nil {
		t.Error("CPU(-1) did not fail")
	}
	m, err := Machine()
	if err != nil || m.CPUs < 1 {
		t.Errorf("Machine = %+v, %v", m, err)
	}
}

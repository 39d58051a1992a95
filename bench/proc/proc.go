package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrFormat is wrapped when a /proc file does not have the expected form.
var ErrFormat = errors.New("unexpected /proc format")

// ClockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ), 1/100
// s on every Linux architecture Go supports.
const ClockTick = 10 * time.Millisecond

// Times are the CPU times of a process, in ClockTick units.
type Times struct {
	User, System uint64
}

// Total returns user + system time.
func (t Times) Total() time.Duration { return time.Duration(t.User+t.System) * ClockTick }

// ParseStat parses the contents of /proc/PID/stat. The command name (field
// 2) is in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from its last ')'; utime and stime are fields 14 and
// 15.
func ParseStat(b []byte) (Times, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Times{}, fmt.Errorf("%w: stat: no ')' closing the command name in %q", ErrFormat, short(b))
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime (14) is f[11], stime (15) f[12].
	if len(f) < 13 {
		return Times{}, fmt.Errorf("%w: stat: %d fields after the command name, want at least 13", ErrFormat, len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return Times{}, fmt.Errorf("%w: stat: utime %q: %w", ErrFormat, f[11], err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return Times{}, fmt.Errorf("%w: stat: stime %q: %w", ErrFormat, f[12], err)
	}
	return Times{User: u, System: s}, nil
}

// ParseStatusKB returns the value of a "Name:   123 kB" line of
// /proc/PID/status (VmRSS, VmHWM, ...) in bytes.
func ParseStatusKB(b []byte, name string) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%w: status: %s is %q, want \"N kB\"", ErrFormat, name, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0, fmt.Errorf("%w: status: %s is %q, want a number of kB", ErrFormat, name, f[0])
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("%w: status: no %s line", ErrFormat, name)
}

// CPUInfo is what the suite reports of the machine.
type CPUInfo struct {
	Model string // "model name" of the first processor; "unknown" when absent
	CPUs  int    // processor entries
}

// ParseCPUInfo parses the contents of /proc/cpuinfo.
func ParseCPUInfo(b []byte) CPUInfo {
	ci := CPUInfo{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			ci.CPUs++
		case "model name":
			if ci.Model == "" {
				ci.Model = strings.TrimSpace(v)
			}
		}
	}
	if ci.Model == "" {
		ci.Model = "unknown"
	}
	return ci
}

// CPU returns the CPU time process pid has used so far.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := ParseStat(b)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return t.Total(), nil
}

// RSS returns the resident memory of process pid in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	n, err := ParseStatusKB(b, "VmRSS")
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return n, nil
}

// Machine describes this machine from /proc/cpuinfo.
func Machine() (CPUInfo, error) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return CPUInfo{Model: "unknown"}, err
	}
	return ParseCPUInfo(b), nil
}

func short(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

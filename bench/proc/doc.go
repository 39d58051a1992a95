// Package proc reads what the benchmark suite measures of a process from
// Linux's /proc: its CPU time (utime + stime of /proc/PID/stat) and its
// resident memory (VmRSS of /proc/PID/status), and describes the machine
// from /proc/cpuinfo. The parsers take the file contents, so they can be
// tested and fuzzed without a process. Errors wrap ErrFormat and name the
// file, the field and what was found.
package proc

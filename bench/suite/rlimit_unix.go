//go:build unix

package main

import "syscall"

// raiseFileLimit lifts the soft limit on open files to the hard one: the
// idle-memory run holds 10,000 streams, each a backend connection. The
// servers started later inherit it.
func raiseFileLimit() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

// interrupt sends SIGINT to process pid, best effort.
func interrupt(pid int) { _ = syscall.Kill(pid, syscall.SIGINT) }

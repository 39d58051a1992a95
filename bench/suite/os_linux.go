package main

import "syscall"

// childAttr makes a child process receive SIGKILL when the suite dies, so
// that no server outlives it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

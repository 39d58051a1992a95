//go:build !unix

package main

// raiseFileLimit does nothing where there is no RLIMIT_NOFILE.
func raiseFileLimit() {}

// interrupt does nothing where there are no signals to send by pid; the
// caller's wait then ends by its timeout.
func interrupt(pid int) {}

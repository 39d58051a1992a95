//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package mux

import "net"

// newRawReader returns nil: on this system a TCP source is read like any
// other connection.
func newRawReader(*net.TCPConn) rawReader { return nil }

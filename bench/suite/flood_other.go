//go:build !linux

package main

import "context"

// floodRuns needs Linux: the flood connects from 127.0.0.2, an address
// other systems do not give the loopback interface by default, and the
// targets are read from /proc.
func (s *suite) floodRuns(context.Context) {
	s.notes = append(s.notes, "silent-socket flood: not measured (Linux only)")
}

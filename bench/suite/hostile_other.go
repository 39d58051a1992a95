//go:build !linux

package main

import "context"

// hostileRuns needs Linux: the flood comes from 127.0.0.2, and the gateway
// is read from /proc.
func (s *suite) hostileRuns(context.Context) {
	s.notes = append(s.notes, "authenticated-client floods: not measured (Linux only)")
}

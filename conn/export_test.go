package conn

import "time"

// SetGateClock replaces the clock of g's deny-log rate limit. Call it
// before g is used.
func SetGateClock(g *Gate, now func() time.Time) { g.now = now }

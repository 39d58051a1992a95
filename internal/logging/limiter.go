package logging

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter rate-limits one class of log events that a peer can trigger
// (denied connections, shed sockets, ...): Allow says whether the next
// event is logged, and how many were left out since the last one logged,
// for its "suppressed" field. The zero value is not usable; NewLimiter
// builds one. Safe for concurrent use.
type Limiter struct {
	lim        *rate.Limiter
	mu         sync.Mutex
	suppressed uint64
}

// NewLimiter allows burst events at once and perSec a second after that.
func NewLimiter(perSec float64, burst int) *Limiter {
	return &Limiter{lim: rate.NewLimiter(rate.Limit(perSec), burst)}
}

// Allow reports whether an event happening now may be logged and, when it
// may, how many events were suppressed before it.
func (l *Limiter) Allow() (ok bool, suppressed uint64) { return l.AllowAt(time.Now()) }

// AllowAt is Allow for an event at t (tests use their own clock).
func (l *Limiter) AllowAt(t time.Time) (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lim.AllowN(t, 1) {
		l.suppressed++
		return false, 0
	}
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

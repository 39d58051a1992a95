package yamux

import (
	"sync"
	"time"
)

// Logger is a abstract of *log.Logger
type Logger interface {
	Print(v ...interface{})
	Printf(format string, v ...interface{})
	Println(v ...interface{})
}

var (
	timerPool = &sync.Pool{
		New: func() interface{} {
			timer := time.NewTimer(time.Hour * 1e6)
			timer.Stop()
			return timer
		},
	}
)

// asyncSendErr is used to try an async send of an error
func asyncSendErr(ch chan error, err error) {
	if ch == nil {
		return
	}
	select {
	case ch <- err:
	default:
	}
}

// asyncNotify is used to signal a waiting goroutine
func asyncNotify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// min computes the minimum of two values
func min(a, b uint32) uint32 {
	if a < b {
		return a
	}
	return b
}

// Log lines a peer can cause once per frame, rate-limited per session.
const (
	logMissing    = iota // frame for a missing stream
	logDiscard           // data for a missing stream
	logBacklog           // stream beyond the accept backlog
	logOverBudget        // stream reset over the receive budget
	numLogLimited
)

// logLimitInterval is the least time between two lines of one kind.
const logLimitInterval = 10 * time.Second

// logLimiter lets one line of a kind through per logLimitInterval and
// counts the others, reported with the next line of that kind.
type logLimiter struct {
	mu         sync.Mutex
	last       [numLogLimited]time.Time
	suppressed [numLogLimited]int
}

// logLimited logs like logger.Printf, at most once per logLimitInterval
// for kind.
func (s *Session) logLimited(kind int, format string, v ...interface{}) {
	l := &s.logLimit
	now := time.Now()
	l.mu.Lock()
	if !l.last[kind].IsZero() && now.Sub(l.last[kind]) < logLimitInterval {
		l.suppressed[kind]++
		l.mu.Unlock()
		return
	}
	l.last[kind] = now
	n := l.suppressed[kind]
	l.suppressed[kind] = 0
	l.mu.Unlock()
	if n > 0 {
		format += " (and %d more like it since the last one)"
		v = append(v, n)
	}
	s.logger.Printf(format, v...)
}

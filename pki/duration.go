package pki

import (
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a validity period: a Go duration ("18h", "90m",
// "1h30m") or a whole number of days ("90d"), or a sum such as "1d12h".
// The result must be positive. Errors wrap ErrInvalidRequest and show the
// accepted forms.
func ParseDuration(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, valueErrorf(ErrInvalidRequest, "duration %q: %s (accepted: 90d, 18h, 1d12h, 30m)", s, why)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return bad("empty")
	}
	var total time.Duration
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		days, err := strconv.ParseUint(t[:i], 10, 32)
		if err != nil || i == 0 {
			return bad("the days before 'd' must be a whole number")
		}
		if days > 100*366 {
			return bad("more than 100 years")
		}
		total = time.Duration(days) * 24 * time.Hour
		t = t[i+1:]
	}
	if t != "" {
		if t[0] == '-' || t[0] == '+' {
			return bad("must be positive and unsigned")
		}
		d, err := time.ParseDuration(t)
		if err != nil {
			return bad("not a duration")
		}
		if d > 100*366*24*time.Hour {
			return bad("more than 100 years")
		}
		total += d
	}
	if total <= 0 {
		return bad("must be positive")
	}
	return total, nil
}

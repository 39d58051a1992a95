package conn

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket's setting: PerSec events a second on average, up
// to Burst at once. The zero Rate is no limit.
type Rate struct {
	PerSec float64
	Burst  int
}

// RateForms says how a Rate is written, for messages and --help.
const RateForms = `RATE or RATE:BURST, events per second, e.g. 20 (burst 40, twice the rate) or 20:100 or 0.5:3; 0 or "off" is no limit`

// maxRate bounds what ParseRate accepts: far above what any limit would be
// set to, and small enough that the bucket's arithmetic stays exact.
const maxRate = 1e6

// ParseRate reads a Rate written as RateForms says. Without a burst, the
// burst is twice the rate (at least 1). An error says what is wrong with
// s; the caller names the setting and the forms (RateForms).
func ParseRate(s string) (Rate, error) {
	bad := func(why string) (Rate, error) { return Rate{}, errors.New(why) }
	if s == "0" || s == "off" {
		return Rate{}, nil
	}
	r, b, hasBurst := strings.Cut(s, ":")
	perSec, err := strconv.ParseFloat(r, 64)
	switch {
	case err != nil || strings.ContainsAny(r, "xXpP_") || math.IsNaN(perSec) || math.IsInf(perSec, 0):
		return bad("the rate is not a number")
	case perSec < 0:
		return bad("the rate is negative")
	case perSec > maxRate:
		return bad(fmt.Sprintf("the rate is over %g a second", float64(maxRate)))
	case perSec == 0 && hasBurst:
		return bad("a burst with a rate of 0 (no limit) means nothing")
	case perSec == 0:
		return Rate{}, nil
	}
	burst := min(max(1, int(math.Ceil(2*perSec))), maxRate)
	if hasBurst {
		n, err := strconv.Atoi(b)
		switch {
		case err != nil:
			return bad("the burst is not a whole number")
		case n < 1:
			return bad("the burst is less than 1")
		case n > maxRate:
			return bad(fmt.Sprintf("the burst is over %g", float64(maxRate)))
		}
		burst = n
	}
	return Rate{PerSec: perSec, Burst: burst}, nil
}

// IsZero reports whether r sets no limit.
func (r Rate) IsZero() bool { return r.PerSec <= 0 }

// String writes r in the form ParseRate reads.
func (r Rate) String() string {
	if r.IsZero() {
		return "off"
	}
	return strconv.FormatFloat(r.PerSec, 'g', -1, 64) + ":" + strconv.Itoa(r.Burst)
}

// NewLimiter returns a token bucket for r, full; nil for the zero Rate.
func (r Rate) NewLimiter() *rate.Limiter {
	if r.IsZero() {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r.PerSec), r.Burst)
}

// SourceRatesConfig configures a SourceRates.
type SourceRatesConfig struct {
	PerAddr   Rate // per source address
	PerPrefix Rate // per source network (PrefixV4 / PrefixV6 bits)
	// PrefixV4 and PrefixV6 are the networks' lengths; defaults 24 and 64.
	PrefixV4, PrefixV6 int
	// MaxTracked bounds the buckets kept (addresses and networks each);
	// default 65,536. A source whose bucket is full again is forgotten
	// first; when every bucket is in use, the oldest are, which gives
	// their sources a full bucket again: a flood of distinct sources costs
	// memory up to this bound and no more.
	MaxTracked int
}

// SourcePrefix is the network of addr for prefix lengths v4 and v6 (zero
// or out of range: 24 and 64).
func SourcePrefix(addr netip.Addr, v4, v6 int) netip.Prefix {
	if v4 <= 0 || v4 > 32 {
		v4 = 24
	}
	if v6 <= 0 || v6 > 128 {
		v6 = 64
	}
	bits := v6
	if addr.Is4() {
		bits = v4
	}
	p, _ := addr.Prefix(bits)
	return p
}

// SourceRates holds token buckets per source address and per source
// network: Allow takes a token from both. It is safe for concurrent use; a
// nil *SourceRates allows everything.
type SourceRates struct {
	cfg      SourceRatesConfig
	addrs    buckets[netip.Addr]
	prefixes buckets[netip.Prefix]
}

// NewSourceRates returns the buckets of cfg, or nil when cfg sets no
// limit.
func NewSourceRates(cfg SourceRatesConfig) *SourceRates {
	if cfg.PerAddr.IsZero() && cfg.PerPrefix.IsZero() {
		return nil
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 1 << 16
	}
	s := &SourceRates{cfg: cfg}
	s.addrs.init(cfg.PerAddr, cfg.MaxTracked)
	s.prefixes.init(cfg.PerPrefix, cfg.MaxTracked)
	return s
}

// Allow takes one token for addr from its address's and its network's
// buckets, at now. When either is empty it takes none and says which
// ("source address" or "source network").
func (s *SourceRates) Allow(addr netip.Addr, now time.Time) (ok bool, scope string) {
	if s == nil {
		return true, ""
	}
	prefix := SourcePrefix(addr, s.cfg.PrefixV4, s.cfg.PrefixV6)
	// A refusal by the network gives the address's token back: a refused
	// connection costs its address nothing.
	ra, ok := s.addrs.reserve(addr, now)
	if !ok {
		return false, "source address"
	}
	if _, ok := s.prefixes.reserve(prefix, now); !ok {
		if ra != nil {
			ra.CancelAt(now)
		}
		return false, "source network"
	}
	return true, ""
}

// buckets is one level of a SourceRates: a token bucket per key, bounded
// in number.
type buckets[K comparable] struct {
	r   Rate
	max int

	mu sync.Mutex
	m  map[K]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // of the last token asked for
}

func (b *buckets[K]) init(r Rate, max int) {
	b.r, b.max, b.m = r, max, map[K]*bucket{}
}

// reserve takes a token from k's bucket if it has one now (ok false
// otherwise, and nothing taken); the reservation gives it back.
func (b *buckets[K]) reserve(k K, now time.Time) (res *rate.Reservation, ok bool) {
	if b.r.IsZero() {
		return nil, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[k]
	if e == nil {
		if len(b.m) >= b.max {
			b.shrinkLocked(now)
		}
		e = &bucket{lim: b.r.NewLimiter()}
		b.m[k] = e
	}
	e.last = now
	res = e.lim.ReserveN(now, 1)
	if !res.OK() || res.DelayFrom(now) > 0 {
		res.CancelAt(now)
		return nil, false
	}
	return res, true
}

// shrinkLocked makes room: it forgets the buckets that are full again (as
// good as new), and when none is, the older half by last use.
func (b *buckets[K]) shrinkLocked(now time.Time) {
	for k, e := range b.m {
		if e.lim.TokensAt(now) >= float64(b.r.Burst) {
			delete(b.m, k)
		}
	}
	if len(b.m) < b.max {
		return
	}
	times := make([]time.Time, 0, len(b.m))
	for _, e := range b.m {
		times = append(times, e.last)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/2]
	for k, e := range b.m {
		if !e.last.After(cut) {
			delete(b.m, k)
		}
	}
}

// tracked is how many buckets are kept now, for tests.
func (b *buckets[K]) tracked() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// MarshalText writes r as String does.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads r as ParseRate does.
func (r *Rate) UnmarshalText(text []byte) error {
	v, err := ParseRate(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

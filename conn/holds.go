package conn

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Holds keeps sources whose sessions were closed for abusing the protocol
// (a ping flood, data past the window, frames no client sends) away for a
// while: a client that floods its session would otherwise reconnect at
// once, and each reconnection costs the gateway a full handshake, which no
// per-session bound can limit. The first hold of an address lasts Base; each
// new abuse within MaxHold of the last doubles it, up to MaxHold; an
// address with no abuse for MaxHold starts again from Base.
//
// Only abusers are held, so unlike a connection rate it costs nothing to
// the clients that share an address with them (NAT) unless they abuse too,
// and then only for the hold. At most maxHolds addresses are kept; when
// full, expired holds go first, then the one that ends soonest.
type Holds struct {
	base, max time.Duration
	n         atomic.Int64 // len(m), read without the lock on every accept
	mu        sync.Mutex
	m         map[netip.Addr]hold
}

type hold struct {
	until time.Time     // refused until then
	last  time.Time     // the last abuse
	d     time.Duration // the length of the last hold
}

const maxHolds = 1 << 16

// NewHolds returns Holds with the first hold base long and the longest
// maxHold; nil (no holds) when base is 0.
func NewHolds(base, maxHold time.Duration) *Holds {
	if base <= 0 {
		return nil
	}
	maxHold = max(maxHold, base)
	return &Holds{base: base, max: maxHold, m: make(map[netip.Addr]hold)}
}

// Hold records an abuse by addr at now and returns how long it is held.
func (h *Holds) Hold(addr netip.Addr, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	addr = addr.Unmap()
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[addr]
	d := h.base
	if ok && now.Sub(e.last) < h.max {
		d = min(2*e.d, h.max)
	}
	if !ok && len(h.m) >= maxHolds {
		h.evictLocked(now)
	}
	h.m[addr] = hold{until: now.Add(d), last: now, d: d}
	h.n.Store(int64(len(h.m)))
	return d
}

// Held reports whether addr is held at now, and until when.
func (h *Holds) Held(addr netip.Addr, now time.Time) (time.Time, bool) {
	if h == nil || h.n.Load() == 0 {
		return time.Time{}, false
	}
	addr = addr.Unmap()
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[addr]
	if !ok {
		return time.Time{}, false
	}
	if now.Before(e.until) {
		return e.until, true
	}
	if now.Sub(e.last) >= h.max {
		delete(h.m, addr) // forgiven: the next abuse starts from Base
		h.n.Store(int64(len(h.m)))
	}
	return time.Time{}, false
}

// Len is the number of addresses remembered (held now or recently).
func (h *Holds) Len() int {
	if h == nil {
		return 0
	}
	return int(h.n.Load())
}

// evictLocked makes room: it drops the forgiven entries, or else the hold
// that ends soonest.
func (h *Holds) evictLocked(now time.Time) {
	var soonest netip.Addr
	var end time.Time
	for a, e := range h.m {
		if now.Sub(e.last) >= h.max {
			delete(h.m, a)
			continue
		}
		if end.IsZero() || e.until.Before(end) {
			soonest, end = a, e.until
		}
	}
	if len(h.m) >= maxHolds {
		delete(h.m, soonest)
	}
}

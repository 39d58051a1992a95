package gateway

import (
	"context"
	"net/netip"
	"sync"

	"github.com/portcullis-gw/portcullis/conn"
)

// fairSlots are the handshake slots (--max-handshakes), shared fairly
// between sources. While a slot is free, anyone takes it. When all are
// held, a newcomer from a source that holds fewer slots than the heaviest
// one takes a slot from it: the newest handshake of the heaviest source
// network, or of the heaviest address within the newcomer's own network,
// is cut (its connection closed) and its slot handed over. A newcomer from
// the heaviest source waits, first come first served, until a slot is
// given back or its handshake deadline passes. So a flood of slow
// handshakes from one network holds at most what nobody else asks for:
// it cannot starve a client from elsewhere, nor one from another address
// of its own network.
type fairSlots struct {
	max        int
	v4, v6     int // prefix lengths of a source network
	mu         sync.Mutex
	holders    []*slot // the slots held, at most max
	byAddr     map[netip.Addr]int
	byPrefix   map[netip.Prefix]int
	waiters    []*slotWaiter // first come first served
	nextSerial uint64
}

// slot is one handshake's hold on a slot.
type slot struct {
	s         *fairSlots
	addr      netip.Addr
	prefix    netip.Prefix
	serial    uint64 // order of taking: the highest is the newest
	cut       func() // closes the handshake's connection
	index     int    // in s.holders; -1 once given back or taken away
	preempted bool
}

type slotWaiter struct {
	addr   netip.Addr
	prefix netip.Prefix
	cut    func()
	ready  chan *slot // the slot handed over, buffered
}

func newFairSlots(max, v4, v6 int) *fairSlots {
	return &fairSlots{max: max, v4: v4, v6: v6, byAddr: map[netip.Addr]int{}, byPrefix: map[netip.Prefix]int{}}
}

// acquire takes a slot for a handshake from addr, whose connection cut
// closes, waiting at most until ctx is done (then nil). victim is the
// connection whose slot was taken for this one, to be cut by the caller
// (outside any lock), or nil.
func (s *fairSlots) acquire(ctx context.Context, addr netip.Addr, cut func()) (sl *slot, victim *slot) {
	prefix := conn.SourcePrefix(addr, s.v4, s.v6)
	s.mu.Lock()
	if len(s.holders) < s.max {
		sl = s.holdLocked(addr, prefix, cut)
		s.mu.Unlock()
		return sl, nil
	}
	if v := s.victimLocked(addr, prefix); v != nil {
		s.dropLocked(v)
		v.preempted = true
		sl = s.holdLocked(addr, prefix, cut)
		s.mu.Unlock()
		return sl, v
	}
	w := &slotWaiter{addr: addr, prefix: prefix, cut: cut, ready: make(chan *slot, 1)}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	select {
	case sl = <-w.ready:
		return sl, nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			s.mu.Unlock()
			return nil, nil
		}
	}
	s.mu.Unlock()
	// Handed a slot at the last moment: give it on.
	(<-w.ready).release()
	return nil, nil
}

// release gives the slot back, to the first waiter if there is one. It
// reports whether the slot had been taken away by a preemption (whose
// connection is being closed): the handshake lost it, whatever its outcome.
func (sl *slot) release() (preempted bool) {
	s := sl.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.preempted {
		return true
	}
	if sl.index < 0 {
		return false
	}
	s.dropLocked(sl)
	if len(s.waiters) > 0 {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		w.ready <- s.holdLocked(w.addr, w.prefix, w.cut)
	}
	return false
}

func (s *fairSlots) holdLocked(addr netip.Addr, prefix netip.Prefix, cut func()) *slot {
	s.nextSerial++
	sl := &slot{s: s, addr: addr, prefix: prefix, serial: s.nextSerial, cut: cut, index: len(s.holders)}
	s.holders = append(s.holders, sl)
	s.byAddr[addr]++
	s.byPrefix[prefix]++
	return sl
}

func (s *fairSlots) dropLocked(sl *slot) {
	last := len(s.holders) - 1
	s.holders[sl.index] = s.holders[last]
	s.holders[sl.index].index = sl.index
	s.holders[last] = nil
	s.holders = s.holders[:last]
	sl.index = -1
	decr(s.byAddr, sl.addr)
	decr(s.byPrefix, sl.prefix)
}

func decr[K comparable](m map[K]int, k K) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// victimLocked picks the slot a newcomer from addr (in prefix) may take,
// or nil: the newest holder of the network that holds the most slots when
// that network holds at least two more than the newcomer's; else the
// newest holder of the address that holds the most within the newcomer's
// own network when it holds at least two more than the newcomer's address.
// (Two more: after the transfer the victim's source must still hold no
// fewer than the newcomer's, or two sources would take turns.)
func (s *fairSlots) victimLocked(addr netip.Addr, prefix netip.Prefix) *slot {
	var heavyP netip.Prefix
	for p, n := range s.byPrefix {
		if n > s.byPrefix[heavyP] {
			heavyP = p
		}
	}
	if s.byPrefix[heavyP] >= s.byPrefix[prefix]+2 {
		return s.newestLocked(func(sl *slot) bool { return sl.prefix == heavyP })
	}
	var heavyA netip.Addr
	for _, sl := range s.holders {
		if sl.prefix == prefix && s.byAddr[sl.addr] > s.byAddr[heavyA] {
			heavyA = sl.addr
		}
	}
	if s.byAddr[heavyA] >= s.byAddr[addr]+2 {
		return s.newestLocked(func(sl *slot) bool { return sl.addr == heavyA })
	}
	return nil
}

func (s *fairSlots) newestLocked(match func(*slot) bool) *slot {
	var v *slot
	for _, sl := range s.holders {
		if match(sl) && (v == nil || sl.serial > v.serial) {
			v = sl
		}
	}
	return v
}

// inFlight is the number of slots held.
func (s *fairSlots) inFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.holders)
}

package acl

import (
	"net/netip"
	"sync/atomic"
)

// Holder holds the current Set for readers while a reload swaps in a new
// one. The zero Holder is ready to use and denies every address until
// Store; a nil *Holder denies everything too. All methods are safe for
// concurrent use; a Holder must not be copied after first use.
type Holder struct {
	p atomic.Pointer[Set]
}

// Load returns the current Set, or nil if none was stored (or h is nil).
func (h *Holder) Load() *Set {
	if h == nil {
		return nil
	}
	return h.p.Load()
}

// Store makes s the current Set. Lookups already running finish with the
// Set they loaded. Storing nil makes the Holder deny everything. Unlike the
// other methods, Store needs a non-nil Holder.
func (h *Holder) Store(s *Set) { h.p.Store(s) }

// Decide answers with the current Set; see Set.Decide.
func (h *Holder) Decide(a netip.Addr) Decision { return h.Load().Decide(a) }

// Allowed answers with the current Set; see Set.Allowed.
func (h *Holder) Allowed(a netip.Addr) bool { return h.Load().Allowed(a) }

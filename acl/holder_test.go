package acl

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHolderZeroAndNil(t *testing.T) {
	var h Holder
	var nilHolder *Holder
	a := netip.MustParseAddr("10.0.0.1")
	if h.Load() != nil || nilHolder.Load() != nil {
		t.Fatal("Load of a zero or nil Holder is not nil")
	}
	if d := h.Decide(a); d != (Decision{}) || h.Allowed(a) {
		t.Errorf("zero Holder: Decide = %+v, Allowed = %v; want denied", d, h.Allowed(a))
	}
	if d := nilHolder.Decide(a); d != (Decision{}) || nilHolder.Allowed(a) {
		t.Errorf("nil Holder: Decide = %+v; want denied", d)
	}
	s := mustSet(t, mustList(t, "10.0.0.0/8"))
	h.Store(s)
	if h.Load() != s || !h.Decide(a).Allowed || !h.Allowed(a) {
		t.Fatal("after Store the Holder does not answer with the stored Set")
	}
	h.Store(nil)
	if h.Allowed(a) {
		t.Error("after Store(nil) the Holder still allows")
	}
}

// TestHolderConcurrentSwap has readers decide while a writer swaps Sets;
// every answer must come from one of the Sets (or from none, while nil is
// stored). Run with -race.
func TestHolderConcurrentSwap(t *testing.T) {
	allowRules := mustList(t, "10.0.0.0/8,2001:db8::/32")
	denyRules := mustList(t, "!10.0.0.0/8,!2001:db8::/32")
	// Pad both to use the direct table too.
	for i := range directMin {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>8), byte(i), 0}), 24)
		allowRules = append(allowRules, Rule{Prefix: p})
		denyRules = append(denyRules, Rule{Prefix: p})
	}
	allow, deny := mustSet(t, allowRules), mustSet(t, denyRules)
	addrs := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::7")}
	valid := map[Decision]bool{{}: true}
	for _, s := range []*Set{allow, deny} {
		for _, a := range addrs {
			valid[s.Decide(a)] = true
		}
	}
	if len(valid) != 5 {
		t.Fatalf("expected 5 distinct decisions, got %v", valid)
	}

	var h Holder
	h.Store(allow)
	const readers, perReader, swaps = 4, 20000, 2000
	deadline := time.Now().Add(5 * time.Second)
	var stop atomic.Bool
	var wg sync.WaitGroup
	seen := make([]map[Decision]int, readers)
	for r := range readers {
		seen[r] = map[Decision]int{}
		wg.Go(func() {
			for i := 0; i < perReader && !stop.Load(); i++ {
				d := h.Decide(addrs[i%len(addrs)])
				if !valid[d] {
					t.Errorf("reader %d: Decide = %+v, from no stored Set", r, d)
					stop.Store(true)
					return
				}
				seen[r][d]++
				if i%1024 == 0 && time.Now().After(deadline) {
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < swaps && !stop.Load() && time.Now().Before(deadline); i++ {
			switch i % 3 {
			case 0:
				h.Store(deny)
			case 1:
				h.Store(nil)
			default:
				h.Store(allow)
			}
		}
	})
	wg.Wait()
	total := 0
	for _, m := range seen {
		for _, n := range m {
			total += n
		}
	}
	if total == 0 {
		t.Fatal("no decisions were made")
	}
}

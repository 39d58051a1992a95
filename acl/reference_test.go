package acl

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refDecide is the specification: scan every rule, keep the most specific
// one that contains the address (IPv4-mapped addresses unmapped, zones
// ignored). Duplicates resolve to the first, as New keeps the first.
func refDecide(rules []Rule, a netip.Addr) Decision {
	a = a.Unmap().WithZone("")
	best := -1
	for i, r := range rules {
		if r.Prefix.Contains(a) && (best < 0 || r.Prefix.Bits() > rules[best].Prefix.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return Decision{}
	}
	return Decision{Allowed: !rules[best].Deny, Rule: rules[best], Matched: true}
}

// randomRules returns n random rules whose prefixes cluster, so that they
// nest and share paths at every depth; deny is random. Conflicting
// duplicates are avoided, identical duplicates are kept.
func randomRules(r *rand.Rand, n int, v6 bool) []Rule {
	// A few base addresses; each rule is a base with some low bits changed.
	bases := make([][16]byte, 1+r.IntN(4))
	for i := range bases {
		for j := range bases[i] {
			bases[i][j] = byte(r.Uint32())
		}
	}
	seen := map[netip.Prefix]bool{}
	rules := make([]Rule, 0, n)
	for len(rules) < n {
		b := bases[r.IntN(len(bases))]
		var p netip.Prefix
		if v6 {
			bits := r.IntN(129)
			flip := r.IntN(129)
			setBit(b[:], flip)
			if r.IntN(2) == 0 {
				setBit(b[:], r.IntN(128))
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
		} else {
			bits := r.IntN(33)
			var a [4]byte
			copy(a[:], b[:4])
			setBit(a[:], r.IntN(33))
			if r.IntN(2) == 0 {
				setBit(a[:], r.IntN(32))
			}
			p = netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked()
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			continue // would be converted to IPv4; covered elsewhere
		}
		deny := r.IntN(3) == 0
		if seen[p] {
			// Repeat with the same action as the first occurrence.
			for _, old := range rules {
				if old.Prefix == p {
					deny = old.Deny
				}
			}
		}
		seen[p] = true
		rules = append(rules, Rule{Prefix: p, Deny: deny, Line: len(rules) + 1})
	}
	return rules
}

// setBit flips bit i of b (big-endian bit order); i == len(b)*8 is a no-op.
func setBit(b []byte, i int) {
	if i < len(b)*8 {
		b[i/8] ^= 0x80 >> (i % 8)
	}
}

// probes returns addresses worth asking about: the first and last address
// of every rule, their neighbours, and random addresses near the rules.
func probes(r *rand.Rand, rules []Rule, extra int) []netip.Addr {
	var out []netip.Addr
	for i := range min(len(rules), 300) {
		rule := rules[i]
		if len(rules) > 300 {
			rule = rules[r.IntN(len(rules))]
		}
		first := rule.Prefix.Addr()
		last := lastAddr(rule.Prefix)
		out = append(out, first, last, first.Prev(), last.Next())
	}
	for range extra {
		if len(rules) == 0 {
			break
		}
		p := rules[r.IntN(len(rules))].Prefix
		out = append(out, randomIn(r, p))
	}
	kept := out[:0]
	for _, a := range out {
		if a.IsValid() {
			kept = append(kept, a)
		}
	}
	// The same IPv4 addresses in IPv4-mapped IPv6 form, some with a zone.
	for i, a := range kept {
		if a.Is4() {
			m := netip.AddrFrom16(a.As16())
			if i%2 == 0 {
				m = m.WithZone("eth0")
			}
			kept = append(kept, m)
		}
	}
	return kept
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	b := a.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return last
}

func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 0 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// checkAgainstReference builds rules with and without the direct table and
// compares Decide and Allowed with refDecide.
func checkAgainstReference(t testing.TB, rules []Rule, addrs []netip.Addr) {
	t.Helper()
	for _, directFrom := range []int{directMin, 0} {
		s, err := newSet(rules, directFrom)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		for _, a := range addrs {
			want := refDecide(rules, a)
			got := s.Decide(a)
			if got != want {
				t.Fatalf("direct table from %d rules: Decide(%v) = %v, want %v (%d rules)", directFrom, a, got, want, len(rules))
			}
			if s.Allowed(a) != want.Allowed {
				t.Fatalf("direct table from %d rules: Allowed(%v) = %v, want %v", directFrom, a, !want.Allowed, want.Allowed)
			}
		}
	}
}

func TestRandomAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 2, 3, 5, 10, 50, 300, 1500}
	if testing.Short() {
		sizes = sizes[:6]
	}
	for _, n := range sizes {
		for _, v6 := range []bool{false, true} {
			for round := range 3 {
				rules := randomRules(r, n, v6)
				if round == 2 {
					// Mixed families in one Set.
					rules = append(rules, randomRules(r, n/2+1, !v6)...)
				}
				addrs := probes(r, rules, 1000)
				// Unrelated addresses of both families.
				for range 100 {
					var b [16]byte
					binary.BigEndian.PutUint64(b[:8], r.Uint64())
					binary.BigEndian.PutUint64(b[8:], r.Uint64())
					addrs = append(addrs, netip.AddrFrom16(b), netip.AddrFrom16(b).WithZone("x"),
						netip.AddrFrom4([4]byte(b[:4])))
				}
				checkAgainstReference(t, rules, addrs)
			}
		}
	}
}

package acl

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
)

// Set is an immutable, compiled list of rules that answers, for any
// address, whether it is allowed and by which rule.
//
// A Set is safe for any number of concurrent Decide and Allowed calls; it
// is never modified after New returns. A nil *Set, the zero Set and a Set
// built from no rules deny every address.
type Set struct {
	v4, v6 table
	recs4  []rec4
	recs6  []rec6
	// is6 has bit i set if the i-th rule, in input order, is IPv6: recs4
	// and recs6 are each in input order, is6 interleaves them for Rules.
	is6 []uint64
	// sources are the distinct Rule.Source values, in order of first use.
	sources []string
}

// MaxSources is the most distinct Rule.Source values one Set keeps.
const MaxSources = 255

// New compiles rules into a Set.
//
// Each Rule.Prefix must be valid and canonical (Masked); IPv4-mapped IPv6
// prefixes of length 96 or more are converted to IPv4, as ParseRule does.
// Rule.Line must be between 0 and math.MaxInt32. The same prefix given
// twice with the same action is a harmless duplicate: the first one is
// kept, the later one dropped (Rules and Len do not show it). The same
// prefix given as allow and as deny is an error (*ConflictError). At most
// MaxRules rules are accepted.
//
// Errors wrap ErrInvalidRule (and ErrNotCanonical where that applies),
// ErrConflict or ErrTooManyRules, and name the rule by line or position.
// New does not keep a reference to rules.
func New(rules []Rule) (*Set, error) {
	return newSet(rules, directMin)
}

// newSet is New with the rule count per family from which the direct table
// is used (tests lower it to exercise both layouts with small sets).
func newSet(rules []Rule, directFrom int) (*Set, error) {
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("%w: %d rules, at most %d", ErrTooManyRules, len(rules), MaxRules)
	}
	keys := make([]bkey, len(rules))
	for i, r := range rules {
		p := r.Prefix
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: %s: the prefix is not valid (unset?)", ErrInvalidRule, where(r, i))
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if m := p.Masked(); m != p {
			return nil, fmt.Errorf("%w: %s: %q: %w: use %s", ErrInvalidRule, where(r, i), p, ErrNotCanonical, m)
		}
		if r.Line < 0 || r.Line > math.MaxInt32 {
			return nil, fmt.Errorf("%w: %s: line %d out of range 0-%d", ErrInvalidRule, where(r, i), r.Line, math.MaxInt32)
		}
		k := bkey{bits: uint8(p.Bits()), deny: r.Deny, pos: uint32(i)}
		if a := p.Addr(); a.Is4() {
			b := a.As4()
			k.hi = uint64(binary.BigEndian.Uint32(b[:])) << 32
		} else {
			b := a.As16()
			k.hi, k.lo, k.v6 = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), true
		}
		keys[i] = k
	}
	slices.SortFunc(keys, cmpKey)

	// Drop duplicates, refuse conflicts; the first of equal keys is the
	// earliest in input order.
	keep := make([]bool, len(rules))
	out := keys[:0]
	for i := range keys {
		if n := len(out); n > 0 {
			if last := &out[n-1]; last.v6 == keys[i].v6 && last.hi == keys[i].hi && last.lo == keys[i].lo && last.bits == keys[i].bits {
				if last.deny != keys[i].deny {
					return nil, &ConflictError{
						First: rules[last.pos], FirstPos: int(last.pos),
						Second: rules[keys[i].pos], SecondPos: int(keys[i].pos),
					}
				}
				continue
			}
		}
		keep[keys[i].pos] = true
		out = append(out, keys[i])
	}
	keys = out

	// Records in input order.
	s := &Set{is6: make([]uint64, (len(keys)+63)/64)}
	recOf := make([]uint32, len(rules))
	var n4 int
	for i := range keys {
		if !keys[i].v6 {
			n4++
		}
	}
	s.recs4 = make([]rec4, 0, n4)
	s.recs6 = make([]rec6, 0, len(keys)-n4)
	outPos := 0
	srcOf := map[string]uint8{}
	for i, r := range rules {
		if !keep[i] {
			continue
		}
		var src uint8
		if r.Source != "" {
			if src = srcOf[r.Source]; src == 0 {
				if len(s.sources) == MaxSources {
					return nil, fmt.Errorf("%w: %s: more than %d sources", ErrInvalidRule, where(r, i), MaxSources)
				}
				s.sources = append(s.sources, r.Source)
				src = uint8(len(s.sources))
				srcOf[r.Source] = src
			}
		}
		p := r.Prefix
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		a := p.Addr()
		if a.Is4() {
			b := a.As4()
			recOf[i] = uint32(len(s.recs4))
			s.recs4 = append(s.recs4, rec4{addr: binary.BigEndian.Uint32(b[:]), line: uint32(r.Line), bits: uint8(p.Bits()), deny: r.Deny, src: src})
		} else {
			b := a.As16()
			recOf[i] = uint32(len(s.recs6))
			s.is6[outPos/64] |= 1 << (outPos % 64)
			s.recs6 = append(s.recs6, rec6{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]),
				line: uint32(r.Line), bits: uint8(p.Bits()), deny: r.Deny, src: src})
		}
		outPos++
	}
	for i := range keys {
		keys[i].rec = recOf[keys[i].pos]
	}

	var parent []uint32
	var pbits []uint8
	s.v4, parent, pbits = buildTable(keys[:n4], 4, len(s.recs4), directFrom)
	for i := range s.recs4 {
		s.recs4[i].parent, s.recs4[i].pbits = parent[i], pbits[i]
	}
	s.v6, parent, pbits = buildTable(keys[n4:], 16, len(s.recs6), directFrom)
	for i := range s.recs6 {
		s.recs6[i].parent, s.recs6[i].pbits = parent[i], pbits[i]
	}
	return s, nil
}

// Len returns the number of rules in the Set, duplicates not counted.
// It is 0 for a nil Set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.recs4) + len(s.recs6)
}

// Rules returns a copy of the rules in input order, duplicates dropped,
// prefixes in canonical form. It returns nil for a nil or empty Set.
func (s *Set) Rules() []Rule {
	if s.Len() == 0 {
		return nil
	}
	out := make([]Rule, 0, s.Len())
	var i4, i6 int
	for i := range s.Len() {
		if s.is6[i/64]&(1<<(i%64)) != 0 {
			out = append(out, s.rule6(i6))
			i6++
		} else {
			out = append(out, s.rule4(i4))
			i4++
		}
	}
	return out
}

func (s *Set) rule4(i int) Rule {
	rc := &s.recs4[i]
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], rc.addr)
	return Rule{Prefix: netip.PrefixFrom(netip.AddrFrom4(b), int(rc.bits)), Deny: rc.deny, Line: int(rc.line), Source: s.source(rc.src)}
}

func (s *Set) rule6(i int) Rule {
	rc := &s.recs6[i]
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], rc.hi)
	binary.BigEndian.PutUint64(b[8:], rc.lo)
	return Rule{Prefix: netip.PrefixFrom(netip.AddrFrom16(b), int(rc.bits)), Deny: rc.deny, Line: int(rc.line), Source: s.source(rc.src)}
}

// Allowed reports whether a is allowed: an allow rule is its most specific
// match. It is Decide(a).Allowed without building the Decision, and does
// not allocate. A nil Set and an invalid address give false.
func (s *Set) Allowed(a netip.Addr) bool {
	if s == nil {
		return false
	}
	e, _ := s.find(a)
	return e&allowBit != 0
}

// Decide returns the decision for a and the rule that made it: the most
// specific rule whose prefix contains a, or no rule (denied). IPv4-mapped
// IPv6 addresses (::ffff:10.1.2.3) are matched as IPv4, zones are ignored.
// A nil or empty Set and an invalid address give a denial with Matched
// false. Decide does not allocate.
func (s *Set) Decide(a netip.Addr) Decision {
	if s == nil {
		return Decision{}
	}
	e, v6 := s.find(a)
	i := int(e&idxMask) - 1
	if i < 0 {
		return Decision{}
	}
	var r Rule
	if v6 {
		r = s.rule6(i)
	} else {
		r = s.rule4(i)
	}
	return Decision{Allowed: !r.Deny, Rule: r, Matched: true}
}

func (s *Set) source(i uint8) string {
	if i == 0 {
		return ""
	}
	return s.sources[i-1]
}

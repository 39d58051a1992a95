package acl

import (
	"math/bits"
	"net/netip"
)

// Entries are the uint32 values stored in the direct table and in the leaf
// arrays. The top two bits give the kind:
//
//	final: the answer. Bits 0-28 hold the deciding record's index + 1 (0: no
//	       rule matches); allowBit is set if that rule allows.
//	check: bits 0-28 hold a record index r. The subtree below this slot holds
//	       only rules that form one nested chain ending in r: test r, then
//	       r's parent, and so on (see rec4.parent).
//	node:  bits 0-28 hold a node index (direct table only; inside a node the
//	       child bitmap says where children are).
const (
	kindMask  uint32 = 3 << 30
	kindFinal uint32 = 0 << 30
	kindCheck uint32 = 1 << 30
	kindNode  uint32 = 2 << 30
	allowBit  uint32 = 1 << 29
	idxMask   uint32 = 1<<29 - 1
)

// directMin is the number of rules of one family from which the first 16
// bits are resolved by a directly indexed table of 65,536 entries (256 KiB)
// instead of two levels of nodes. Below it the table would cost more memory
// than the whole tree and save no measurable time, as small trees stay in
// the CPU caches anyway.
const directMin = 2048

// node is one 8-bit stride of the multibit trie: it resolves one octet of
// the address. For octet value o:
//
//   - child bit o set: o continues in a child node. The children are stored
//     consecutively in octet order, so the child for o is at the node's
//     child base + (number of child bits below o).
//   - else alt bit o clear: the answer is def, the most common answer in
//     this node, with no further memory access.
//   - else the answer is in the leaf array. The answers of the alt octets are
//     run-length compressed: runs bit o marks an alt octet whose answer
//     differs from the previous alt octet's, and the answer for o is
//     leaves[leaf base + (number of runs bits up to and including o) - 1].
//
// A node is 128 bytes: two halves of one cache line each (the Go allocator
// aligns every slice of nodes to 64 bytes). A half holds the bits of 128
// octet values, with the node's default and bases (pre-offset by the
// ranks of the lower half) repeated, so a lookup touches one cache line per
// node.
type node struct {
	h [2]half
}

// half covers octet values 128*i to 128*i+127 of a node.
type half struct {
	w         [2]nodeWord
	childBase uint32   // child index of the first child in this half
	leafBase  uint32   // leaf index of the first run in this half
	def       uint32   // the node's default answer
	childRank [2]uint8 // children in the words of this half before word j
	leafRank  [2]uint8 // runs in the words of this half before word j
}

// nodeWord holds the bits of 64 consecutive octet values.
type nodeWord struct {
	child, alt, runs uint64
}

// table is the trie of one address family.
type table struct {
	// direct, if not nil, has 65,536 entries indexed by the first 16 bits;
	// a kindNode entry points into nodes, to a node for the third octet.
	direct []uint32
	// nodes[0] is the root (the node for the first octet) when direct is
	// nil. Never empty.
	nodes  []node
	leaves []uint32
}

// rec4 is the compact form of an IPv4 rule.
type rec4 struct {
	addr uint32
	line uint32
	// parent is the final entry of the most specific rule that strictly
	// contains this one (0: none), and pbits that rule's prefix length. Set
	// only for rules reached through check entries.
	parent uint32
	bits   uint8
	pbits  uint8
	deny   bool
	src    uint8 // 1 + index in Set.sources; 0: none
}

// rec6 is the compact form of an IPv6 rule; hi and lo are the address bytes
// 0-7 and 8-15 as big-endian integers.
type rec6 struct {
	hi, lo uint64
	line   uint32
	parent uint32
	bits   uint8
	pbits  uint8
	deny   bool
	src    uint8 // 1 + index in Set.sources; 0: none
}

// finalEntry returns the final entry naming record i.
func finalEntry(i int, deny bool) uint32 {
	e := uint32(i+1) | kindFinal
	if !deny {
		e |= allowBit
	}
	return e
}

// find returns the final entry for a and whether it names an IPv6 record
// (else IPv4, or no rule). IPv4-mapped IPv6 addresses are looked up as
// IPv4; zones are ignored; the invalid address matches nothing.
func (s *Set) find(a netip.Addr) (e uint32, v6 bool) {
	hi, lo := addrWords(&a)
	// Both loops are here rather than in functions of their own, to save a
	// call. Both descents are bounded: the builder puts no children below
	// the last octet.
	if a.Is4() || hi == 0 && lo>>32 == 0xffff {
		a4 := uint32(lo)
		t := &s.v4
		var ni uint32
		shift := 24 // of the octet resolved next
		if t.direct != nil {
			e = t.direct[a4>>16]
			switch e & kindMask {
			case kindFinal:
				return e, false
			case kindCheck:
				return s.check4(e, 16, a4), false
			}
			ni, shift = e&idxMask, 8
		}
		nodes := t.nodes
		if len(nodes) == 0 {
			return 0, false // the zero Set
		}
		for ; shift >= 0; shift -= 8 {
			o := uint64(a4>>uint(shift)) & 0xff
			h := &nodes[ni].h[o>>7]
			j := (o >> 6) & 1
			nw := &h.w[j]
			m := uint64(1) << (o & 63)
			if nw.child&m != 0 {
				ni = h.childBase + uint32(h.childRank[j]) + uint32(bits.OnesCount64(nw.child&(m-1)))
				continue
			}
			e = h.def
			if nw.alt&m != 0 {
				e = t.leaves[h.leafBase+uint32(h.leafRank[j])+uint32(bits.OnesCount64(nw.runs&(m<<1-1)))-1]
			}
			if e&kindMask == kindCheck {
				e = s.check4(e, 32-shift, uint32(lo))
			}
			return e, false
		}
		return 0, false
	}
	if hi|lo == 0 && !a.IsValid() {
		return 0, false // the zero Addr reads as ::
	}
	t := &s.v6
	var ni uint32
	k0, k1 := hi, lo // the address, consumed octet by octet from the top
	level := 0
	if t.direct != nil {
		e = t.direct[hi>>48]
		switch e & kindMask {
		case kindFinal:
			return e, true
		case kindCheck:
			return s.check6(e, 16, hi, lo), true
		}
		ni, level = e&idxMask, 2
		k0, k1 = k0<<16|k1>>48, k1<<16
	}
	nodes := t.nodes
	if len(nodes) == 0 {
		return 0, false // the zero Set
	}
	for ; level < 16; level++ {
		o := k0 >> 56
		k0, k1 = k0<<8|k1>>56, k1<<8
		h := &nodes[ni].h[o>>7]
		j := (o >> 6) & 1
		nw := &h.w[j]
		m := uint64(1) << (o & 63)
		if nw.child&m != 0 {
			ni = h.childBase + uint32(h.childRank[j]) + uint32(bits.OnesCount64(nw.child&(m-1)))
			continue
		}
		e = h.def
		if nw.alt&m != 0 {
			e = t.leaves[h.leafBase+uint32(h.leafRank[j])+uint32(bits.OnesCount64(nw.runs&(m<<1-1)))-1]
		}
		if e&kindMask == kindCheck {
			// Read the address again rather than keep it in registers
			// through the loop.
			hi, lo := addrWords(&a)
			e = s.check6(e, 8*level+8, hi, lo)
		}
		return e, true
	}
	return 0, false
}

// check4 resolves the check entry e found at a slot depth bits deep for
// IPv4 address a. It handles the usual chain of one rule itself and leaves
// longer chains to resolve.
func (s *Set) check4(e uint32, depth int, a uint32) uint32 {
	rc := &s.recs4[e&idxMask]
	// A shift by 32 yields 0 in Go, so /0 contains everything.
	if (a^rc.addr)&(^uint32(0)<<(32-uint(rc.bits))) == 0 {
		return finalEntry(int(e&idxMask), rc.deny)
	}
	if int(rc.pbits) <= depth { // also when there is no parent: pbits 0
		return rc.parent
	}
	return s.resolve(kindCheck|(rc.parent&idxMask-1), depth, uint64(a)<<32, 0, false)
}

// check6 is check4 for IPv6.
func (s *Set) check6(e uint32, depth int, hi, lo uint64) uint32 {
	rc := &s.recs6[e&idxMask]
	if contains6(rc, hi, lo) {
		return finalEntry(int(e&idxMask), rc.deny)
	}
	if int(rc.pbits) <= depth {
		return rc.parent
	}
	return s.resolve(kindCheck|(rc.parent&idxMask-1), depth, hi, lo, true)
}

// resolve turns the check entry e found at a slot depth bits deep into a
// final entry by testing the chain of rules below the slot from the most
// specific up.
func (s *Set) resolve(e uint32, depth int, hi, lo uint64, v6 bool) uint32 {
	r := e & idxMask
	if !v6 {
		a := uint32(hi >> 32)
		for range 34 {
			rc := &s.recs4[r]
			// A shift by 32 yields 0 in Go, so /0 contains everything.
			if (a^rc.addr)&(^uint32(0)<<(32-uint(rc.bits))) == 0 {
				return finalEntry(int(r), rc.deny)
			}
			if int(rc.pbits) <= depth { // also when there is no parent: pbits 0
				return rc.parent
			}
			r = rc.parent&idxMask - 1
		}
		return 0
	}
	for range 130 {
		rc := &s.recs6[r]
		if contains6(rc, hi, lo) {
			return finalEntry(int(r), rc.deny)
		}
		if int(rc.pbits) <= depth {
			return rc.parent
		}
		r = rc.parent&idxMask - 1
	}
	return 0
}

// contains6 reports whether the rule contains the address.
func contains6(rc *rec6, hi, lo uint64) bool {
	b := uint(rc.bits)
	if b <= 64 {
		return (hi^rc.hi)&(^uint64(0)<<(64-b)) == 0 // 0 for /0
	}
	return hi == rc.hi && (lo^rc.lo)&(^uint64(0)<<(128-b)) == 0
}

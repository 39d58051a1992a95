package acl

import (
	"math/bits"
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
// the address. Bit o of child says that octet value o continues in a child
// node; the children are stored consecutively from childBase, in octet
// order, so the child for o is at childBase + (number of child bits below o).
// The octets without a child get their answer from the leaf array: the
// answers of consecutive octets are run-length compressed, bit o of leaf
// marks the start of a new run (octets with a child do not interrupt a run),
// and the answer for o is leaves[leafBase + (number of leaf bits up to and
// including o) - 1]. childRank and leafRank hold the bit counts of the
// preceding 64-bit words, so a rank costs one POPCNT.
type node struct {
	child     [4]uint64
	leaf      [4]uint64
	childBase uint32
	leafBase  uint32
	childRank [4]uint8
	leafRank  [4]uint8
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
}

// finalEntry returns the final entry naming record i.
func finalEntry(i int, deny bool) uint32 {
	e := uint32(i+1) | kindFinal
	if !deny {
		e |= allowBit
	}
	return e
}

// walk descends the trie for an address given as two big-endian halves
// (IPv4: the address in the top 32 bits of hi). It returns either a final
// entry or a check entry together with the depth, in bits, of the slot that
// held it. levels is 4 for IPv4 and 16 for IPv6.
//
// The loop is bounded by levels: the builder never puts children below the
// last octet.
func (t *table) walk(hi, lo uint64, levels int) (e uint32, depth int) {
	var ni uint32
	level := 0
	if t.direct != nil {
		e = t.direct[hi>>48]
		if e&kindMask != kindNode {
			return e, 16
		}
		ni = e & idxMask
		level = 2
	}
	nodes, leaves := t.nodes, t.leaves
	if len(nodes) == 0 {
		return 0, 0 // the zero Set
	}
	for ; level < levels; level++ {
		var o uint64
		if level < 8 {
			o = (hi >> (56 - 8*uint(level))) & 0xff
		} else {
			o = (lo >> (120 - 8*uint(level))) & 0xff
		}
		n := &nodes[ni]
		w := o >> 6
		m := uint64(1) << (o & 63)
		if cw := n.child[w&3]; cw&m != 0 {
			ni = n.childBase + uint32(n.childRank[w&3]) + uint32(bits.OnesCount64(cw&(m-1)))
			continue
		}
		r := n.leafBase + uint32(n.leafRank[w&3]) + uint32(bits.OnesCount64(n.leaf[w&3]&(m<<1-1)))
		return leaves[r-1], 8*level + 8
	}
	return 0, 0
}

// find4 returns the final entry for an IPv4 address.
func (s *Set) find4(a uint32) uint32 {
	e, depth := s.v4.walk(uint64(a)<<32, 0, 4)
	if e&kindMask == kindFinal {
		return e
	}
	// A check entry: test the chain of rules from the most specific up.
	r := e & idxMask
	for range 34 {
		rc := &s.recs4[r]
		// A shift by 32 yields 0 in Go, so /0 contains everything.
		if (a^rc.addr)&(^uint32(0)<<(32-uint(rc.bits))) == 0 {
			return finalEntry(int(r), rc.deny)
		}
		if int(rc.pbits) <= depth || rc.parent&idxMask == 0 {
			return rc.parent
		}
		r = rc.parent&idxMask - 1
	}
	return 0
}

// find6 returns the final entry for an IPv6 address.
func (s *Set) find6(hi, lo uint64) uint32 {
	e, depth := s.v6.walk(hi, lo, 16)
	if e&kindMask == kindFinal {
		return e
	}
	r := e & idxMask
	for range 130 {
		rc := &s.recs6[r]
		if contains6(rc, hi, lo) {
			return finalEntry(int(r), rc.deny)
		}
		if int(rc.pbits) <= depth || rc.parent&idxMask == 0 {
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

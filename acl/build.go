package acl

import (
	"math/bits"
)

// bkey is a rule as the builder sees it. For IPv4 the address is in the top
// 32 bits of hi.
type bkey struct {
	hi, lo uint64
	bits   uint8
	deny   bool
	v6     bool
	pos    uint32 // position in New's input
	rec    uint32 // record index within the family
}

func (k *bkey) final() uint32 { return finalEntry(int(k.rec), k.deny) }

// octet returns the address byte resolved at the given trie level.
func (k *bkey) octet(level int) int {
	if level < 8 {
		return int(k.hi>>(56-8*uint(level))) & 0xff
	}
	return int(k.lo>>(120-8*uint(level))) & 0xff
}

// contains reports whether k's prefix strictly contains c's.
func (k *bkey) contains(c *bkey) bool {
	if k.bits >= c.bits {
		return false
	}
	b := uint(k.bits)
	if b <= 64 {
		return (k.hi^c.hi)&(^uint64(0)<<(64-b)) == 0
	}
	return k.hi == c.hi && (k.lo^c.lo)&(^uint64(0)<<(128-b)) == 0
}

// cmpKey orders keys by family, address, prefix length, then input
// position. A prefix sorts before every prefix it contains, so filling
// answers in this order lets the more specific rule win.
func cmpKey(a, b bkey) int {
	switch {
	case a.v6 != b.v6:
		if b.v6 {
			return -1
		}
		return 1
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo != b.lo:
		if a.lo < b.lo {
			return -1
		}
		return 1
	case a.bits != b.bits:
		return int(a.bits) - int(b.bits)
	}
	return int(a.pos) - int(b.pos)
}

// group is a run of keys [a, b) below one slot that needs a child node.
type group struct {
	slot int
	a, b int
}

// builder builds the table of one family from sorted, duplicate-free keys.
type builder struct {
	keys   []bkey
	levels int // octets per address: 4 or 16
	nodes  []node
	leaves []uint32
	stack  []group
	// parent and pbits are indexed by record: see rec4.parent.
	parent []uint32
	pbits  []uint8
}

func buildTable(keys []bkey, levels, nrec, directFrom int) (table, []uint32, []uint8) {
	b := &builder{
		keys:   keys,
		levels: levels,
		parent: make([]uint32, nrec),
		pbits:  make([]uint8, nrec),
	}
	var t table
	if len(keys) >= directFrom {
		t.direct = b.buildDirect()
	} else {
		b.nodes = append(b.nodes, node{})
		b.buildNode(0, 0, 0, len(keys), 0, 0)
	}
	// Exact-size copies: the append slack would otherwise stay allocated
	// for the life of the Set.
	t.nodes = append(make([]node, 0, len(b.nodes)), b.nodes...)
	t.leaves = append(make([]uint32, 0, len(b.leaves)), b.leaves...)
	if len(t.nodes) == 0 {
		t.nodes = []node{{}}
	}
	return t, b.parent, b.pbits
}

// chain reports whether keys[a:b) form one nested chain, each containing
// the next (the keys are sorted, so it suffices to check neighbours).
func (b *builder) chain(a, z int) bool {
	for i := a; i+1 < z; i++ {
		if !b.keys[i].contains(&b.keys[i+1]) {
			return false
		}
	}
	return true
}

// makeCheck turns the chain keys[a:z) below a slot whose answer is inh
// (from a rule of length inhBits) into a check entry, recording each
// rule's parent.
func (b *builder) makeCheck(a, z int, inh uint32, inhBits uint8) uint32 {
	b.parent[b.keys[a].rec] = inh
	b.pbits[b.keys[a].rec] = inhBits
	for i := a + 1; i < z; i++ {
		b.parent[b.keys[i].rec] = b.keys[i-1].final()
		b.pbits[b.keys[i].rec] = b.keys[i-1].bits
	}
	return kindCheck | b.keys[z-1].rec
}

// buildDirect fills the 16-bit direct table and builds the nodes below it.
func (b *builder) buildDirect() []uint32 {
	direct := make([]uint32, 1<<16)
	vbits := make([]uint8, 1<<16)
	keys := b.keys
	for i := range keys {
		k := &keys[i]
		if k.bits > 16 {
			continue
		}
		start := int(k.hi >> 48)
		span := 1 << (16 - k.bits)
		e := k.final()
		for p := start; p < start+span; p++ {
			direct[p] = e
			vbits[p] = k.bits
		}
	}
	for i := 0; i < len(keys); {
		if keys[i].bits <= 16 {
			i++
			continue
		}
		slot := int(keys[i].hi >> 48)
		j := i + 1
		for j < len(keys) && keys[j].bits > 16 && int(keys[j].hi>>48) == slot {
			j++
		}
		if b.chain(i, j) {
			direct[slot] = b.makeCheck(i, j, direct[slot], vbits[slot])
		} else {
			b.stack = append(b.stack, group{slot, i, j})
		}
		i = j
	}
	base := len(b.nodes)
	b.nodes = append(b.nodes, make([]node, len(b.stack))...)
	groups := b.stack
	b.stack = nil
	for gi, g := range groups {
		ni := base + gi
		inh, inhBits := direct[g.slot], vbits[g.slot]
		direct[g.slot] = kindNode | uint32(ni)
		b.buildNode(ni, 2, g.a, g.b, inh, inhBits)
	}
	return direct
}

// buildNode builds node ni at the given level from keys[lo:hi) (the rules
// below the node's slot), where inh is the answer inherited from above, by
// a rule of length inhBits.
func (b *builder) buildNode(ni, level, lo, hi int, inh uint32, inhBits uint8) {
	var vals [256]uint32
	var vbits [256]uint8
	for i := range vals {
		vals[i] = inh
		vbits[i] = inhBits
	}
	limit := 8*level + 8
	keys := b.keys
	// Rules ending within this stride set the answers of the octets they
	// cover; sorted order puts containers first, so the specific one wins.
	for i := lo; i < hi; i++ {
		k := &keys[i]
		if int(k.bits) > limit {
			continue
		}
		start := k.octet(level)
		span := 1 << (limit - int(k.bits))
		e := k.final()
		for p := start; p < start+span; p++ {
			vals[p] = e
			vbits[p] = k.bits
		}
	}
	// Longer rules go below the octet slot: a check entry if they form a
	// chain, else a child node.
	var words [4]nodeWord
	gstart := len(b.stack)
	for i := lo; i < hi; {
		if int(keys[i].bits) <= limit {
			i++
			continue
		}
		slot := keys[i].octet(level)
		j := i + 1
		for j < hi && int(keys[j].bits) > limit && keys[j].octet(level) == slot {
			j++
		}
		if b.chain(i, j) {
			vals[slot] = b.makeCheck(i, j, vals[slot], vbits[slot])
		} else {
			words[slot>>6].child |= 1 << (slot & 63)
			b.stack = append(b.stack, group{slot, i, j})
		}
		i = j
	}
	// The default answer is the one covering the most octets without a
	// child; the others go to the leaf array, run-length compressed.
	def := mostCommon(&vals, &words)
	leafBase := uint32(len(b.leaves))
	first := true
	var prev uint32
	for p := 0; p < 256; p++ {
		w, m := &words[p>>6], uint64(1)<<(p&63)
		if w.child&m != 0 || vals[p] == def {
			continue
		}
		w.alt |= m
		if first || vals[p] != prev {
			w.runs |= m
			b.leaves = append(b.leaves, vals[p])
			prev, first = vals[p], false
		}
	}
	gend := len(b.stack)
	childBase := uint32(len(b.nodes))
	b.nodes = append(b.nodes, make([]node, gend-gstart)...)
	b.nodes[ni] = packNode(&words, def, childBase, leafBase)
	for gi := gstart; gi < gend; gi++ {
		g := b.stack[gi]
		b.buildNode(int(childBase)+gi-gstart, level+1, g.a, g.b, vals[g.slot], vbits[g.slot])
	}
	b.stack = b.stack[:gstart]
}

// packNode lays out a node from its four words of bits.
func packNode(words *[4]nodeWord, def, childBase, leafBase uint32) node {
	var n node
	for i := range n.h {
		h := &n.h[i]
		h.w = [2]nodeWord{words[2*i], words[2*i+1]}
		h.def = def
		h.childBase, h.leafBase = childBase, leafBase
		h.childRank[1] = uint8(bits.OnesCount64(words[2*i].child))
		h.leafRank[1] = uint8(bits.OnesCount64(words[2*i].runs))
		childBase += uint32(bits.OnesCount64(words[2*i].child) + bits.OnesCount64(words[2*i+1].child))
		leafBase += uint32(bits.OnesCount64(words[2*i].runs) + bits.OnesCount64(words[2*i+1].runs))
	}
	return n
}

// mostCommon returns the answer held by the most octets of vals that have
// no child (0 if all have one).
func mostCommon(vals *[256]uint32, words *[4]nodeWord) uint32 {
	var es [256]uint32
	var cs [256]int
	k, last := 0, 0
	for p := 0; p < 256; p++ {
		if words[p>>6].child&(1<<(p&63)) != 0 {
			continue
		}
		v := vals[p]
		if k == 0 || es[last] != v {
			last = 0
			for last < k && es[last] != v {
				last++
			}
			if last == k {
				es[k] = v
				k++
			}
		}
		cs[last]++
	}
	best := 0
	for j := 1; j < k; j++ {
		if cs[j] > cs[best] {
			best = j
		}
	}
	return es[best]
}

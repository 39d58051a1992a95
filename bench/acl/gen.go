package aclbench

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// weighted is a prefix length and its relative frequency.
type weighted struct {
	bits   int
	weight int
}

// lengths4 models an IPv4 allow-list: mostly /16 to /24, some hosts and
// small subnets, few short prefixes (which would otherwise cover the
// whole space at n=100,000 and leave no address to miss).
var lengths4 = []weighted{
	{8, 1}, {9, 1}, {10, 1}, {11, 2}, {12, 2}, {13, 2}, {14, 3}, {15, 4},
	{16, 800},
	{17, 300}, {18, 300}, {19, 400}, {20, 500}, {21, 500}, {22, 700}, {23, 700},
	{24, 3000},
	{25, 150}, {26, 150}, {27, 150}, {28, 200}, {29, 200}, {30, 150}, {31, 50},
	{32, 1500},
}

// lengths6 models an IPv6 allow-list: mostly /16 to /64 with the usual
// allocation sizes most frequent, and some single hosts.
var lengths6 = []weighted{
	{16, 5}, {20, 10}, {24, 10}, {28, 20}, {29, 30},
	{32, 800}, {36, 200}, {40, 300}, {44, 300},
	{48, 2500}, {52, 200}, {56, 1500}, {60, 300},
	{64, 2000},
	{128, 1000},
}

func pick(r *rand.Rand, ws []weighted) int {
	total := 0
	for _, w := range ws {
		total += w.weight
	}
	x := r.IntN(total)
	for _, w := range ws {
		if x < w.weight {
			return w.bits
		}
		x -= w.weight
	}
	return ws[len(ws)-1].bits
}

// Prefixes4 returns n distinct random canonical IPv4 prefixes drawn with
// the lengths of lengths4, reproducibly for a given seed.
func Prefixes4(n int, seed uint64) []netip.Prefix {
	r := rand.New(rand.NewPCG(seed, 4))
	seen := make(map[netip.Prefix]bool, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], r.Uint32())
		p := netip.PrefixFrom(netip.AddrFrom4(b), pick(r, lengths4)).Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Prefixes6 returns n distinct random canonical IPv6 prefixes inside
// 2000::/3 (global unicast) drawn with the lengths of lengths6.
func Prefixes6(n int, seed uint64) []netip.Prefix {
	r := rand.New(rand.NewPCG(seed, 6))
	seen := make(map[netip.Prefix]bool, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		p := netip.PrefixFrom(random6(r), pick(r, lengths6)).Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// random6 returns a random address in 2000::/3.
func random6(r *rand.Rand) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], r.Uint64()>>3|1<<61)
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	return netip.AddrFrom16(b)
}

// RandomIn returns a random address inside p.
func RandomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:])
		if bits := p.Bits(); bits < 32 {
			v |= r.Uint32() >> bits
		}
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	switch bits := p.Bits(); {
	case bits < 64:
		hi |= r.Uint64() >> bits
		lo = r.Uint64()
	case bits < 128:
		lo |= r.Uint64() >> (bits - 64)
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// Queries returns n addresses: for hit, each inside a random prefix of ps;
// otherwise random addresses of the family (IPv6: in 2000::/3) for which
// covered reports false. It panics if it cannot find enough misses.
func Queries(ps []netip.Prefix, n int, hit bool, seed uint64, covered func(netip.Addr) bool) []netip.Addr {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]netip.Addr, 0, n)
	v4 := ps[0].Addr().Is4()
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			panic("aclbench: the prefixes cover almost everything; no misses found")
		}
		if hit {
			out = append(out, RandomIn(r, ps[r.IntN(len(ps))]))
			continue
		}
		var a netip.Addr
		if v4 {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], r.Uint32())
			a = netip.AddrFrom4(b)
		} else {
			a = random6(r)
		}
		if !covered(a) {
			out = append(out, a)
		}
	}
	return out
}

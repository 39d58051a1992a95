package acl

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

// benchRules returns n distinct random rules of one family, lengths mostly
// /16 to /24 (IPv4) or /32 to /64 (IPv6), one in ten a deny.
func benchRules(n int, v6 bool) []Rule {
	r := rand.New(rand.NewPCG(uint64(n), 99))
	seen := map[netip.Prefix]bool{}
	rules := make([]Rule, 0, n)
	for len(rules) < n {
		var p netip.Prefix
		if v6 {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], r.Uint64()>>3|1<<61) // 2000::/3
			binary.BigEndian.PutUint64(b[8:], r.Uint64())
			bits := []int{32, 40, 48, 48, 56, 64, 64, 128}[r.IntN(8)]
			p = netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
		} else {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], r.Uint32())
			bits := []int{12, 16, 18, 20, 22, 24, 24, 24, 28, 32}[r.IntN(10)]
			p = netip.PrefixFrom(netip.AddrFrom4(b), bits).Masked()
		}
		if !seen[p] {
			seen[p] = true
			rules = append(rules, Rule{Prefix: p, Deny: r.IntN(10) == 0, Line: len(rules) + 1})
		}
	}
	return rules
}

type benchData struct {
	set       *Set
	hit, miss []netip.Addr // hit: some rule matches; miss: none does
}

var (
	benchMu    sync.Mutex
	benchCache = map[string]*benchData{}
)

func getBenchData(b *testing.B, n int, v6 bool) *benchData {
	key := fmt.Sprint(n, v6)
	benchMu.Lock()
	defer benchMu.Unlock()
	if d := benchCache[key]; d != nil {
		return d
	}
	rules := benchRules(n, v6)
	s, err := New(rules)
	if err != nil {
		b.Fatal(err)
	}
	d := &benchData{set: s}
	r := rand.New(rand.NewPCG(7, 7))
	for len(d.hit) < 4096 {
		d.hit = append(d.hit, randomIn(r, rules[r.IntN(len(rules))].Prefix))
	}
	for tries := 0; len(d.miss) < 4096 && tries < 1e7; tries++ {
		var a netip.Addr
		if v6 {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], r.Uint64()>>3|1<<61)
			a = netip.AddrFrom16(b)
		} else {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], r.Uint32())
			a = netip.AddrFrom4(b)
		}
		if !s.Decide(a).Matched {
			d.miss = append(d.miss, a)
		}
	}
	if len(d.miss) < 4096 {
		b.Fatal("could not find addresses outside the rules")
	}
	benchCache[key] = d
	return d
}

// BenchmarkDecide looks up a pre-built slice of 4,096 random addresses in
// turn: inside some rule (hit) or outside all (miss).
func BenchmarkDecide(b *testing.B) {
	benchLookups(b, func(s *Set, a netip.Addr) bool { return s.Decide(a).Matched })
}

// BenchmarkAllowed is BenchmarkDecide without building the Decision.
func BenchmarkAllowed(b *testing.B) {
	benchLookups(b, func(s *Set, a netip.Addr) bool { return s.Allowed(a) || s == nil })
}

func benchLookups(b *testing.B, lookup func(*Set, netip.Addr) bool) {
	for _, family := range []string{"v4", "v6"} {
		for _, n := range []int{1000, 100000} {
			for _, kind := range []string{"hit", "miss"} {
				b.Run(fmt.Sprintf("family=%s/n=%d/%s", family, n, kind), func(b *testing.B) {
					d := getBenchData(b, n, family == "v6")
					qs := d.hit
					if kind == "miss" {
						qs = d.miss
					}
					b.ReportAllocs()
					i, matched := 0, 0
					for b.Loop() {
						if lookup(d.set, qs[i&4095]) {
							matched++
						}
						i++
					}
					if kind == "miss" && matched != 0 {
						b.Fatalf("%d misses matched", matched)
					}
				})
			}
		}
	}
}

// BenchmarkNew builds a Set; B/prefix is the heap it keeps per rule.
func BenchmarkNew(b *testing.B) {
	for _, family := range []string{"v4", "v6"} {
		for _, n := range []int{1000, 100000} {
			b.Run(fmt.Sprintf("family=%s/n=%d", family, n), func(b *testing.B) {
				rules := benchRules(n, family == "v6")
				b.ReportAllocs()
				for b.Loop() {
					if _, err := New(rules); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

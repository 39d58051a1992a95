package aclbench

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"testing"
)

var impls = rotate([]string{"acl", "bart", "bartlite", "netipx", "linear"}, os.Getenv("ACLBENCH_ROUND"))

// rotate starts the list of implementations at position round, so that
// run.sh can vary the order in which they run from round to round and no
// implementation always runs first (right after the data are built) or
// last.
func rotate(list []string, round string) []string {
	n, err := strconv.Atoi(round)
	if err != nil || n <= 0 {
		return list
	}
	n %= len(list)
	return append(list[n:len(list):len(list)], list[:n]...)
}

// BenchmarkContains measures one membership lookup: is the address inside
// an allowed prefix. Every implementation holds the same allow-only set.
// Each iteration takes the next address of a pre-built slice of 16,384
// random queries, so the whole structure is exercised, caches included.
func BenchmarkContains(b *testing.B) {
	for _, impl := range impls {
		b.Run("impl="+impl, func(b *testing.B) {
			for _, family := range []string{"v4", "v6"} {
				b.Run("family="+family, func(b *testing.B) {
					for _, n := range sizes {
						b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
							d := getData(family, n)
							b.Run("hit", func(b *testing.B) { benchContains(b, impl, d, d.hit, true) })
							b.Run("miss", func(b *testing.B) { benchContains(b, impl, d, d.miss, false) })
						})
					}
				})
			}
		})
	}
}

// benchContains runs one loop per implementation so that every call is a
// direct method call, and checks every answer by counting them.
func benchContains(b *testing.B, impl string, d *data, qs []netip.Addr, want bool) {
	b.ReportAllocs()
	const mask = nQueries - 1
	i, yes := 0, 0
	switch impl {
	case "acl":
		s := d.acl
		for b.Loop() {
			if s.Allowed(qs[i&mask]) {
				yes++
			}
			i++
		}
	case "bart":
		t := d.fast
		for b.Loop() {
			if t.Contains(qs[i&mask]) {
				yes++
			}
			i++
		}
	case "bartlite":
		t := d.lite
		for b.Loop() {
			if t.Contains(qs[i&mask]) {
				yes++
			}
			i++
		}
	case "netipx":
		t := d.ipset
		for b.Loop() {
			if t.Contains(qs[i&mask]) {
				yes++
			}
			i++
		}
	case "linear":
		t := d.linear
		for b.Loop() {
			if t.Contains(qs[i&mask]) {
				yes++
			}
			i++
		}
	default:
		b.Fatalf("unknown impl %q", impl)
	}
	if wantYes := map[bool]int{true: i, false: 0}[want]; yes != wantYes {
		b.Fatalf("%s: %d of %d lookups answered true, want %d", impl, yes, i, wantYes)
	}
}

// BenchmarkBuild measures building a structure from 100,000 prefixes and
// reports the heap it keeps per prefix (B/prefix).
func BenchmarkBuild(b *testing.B) {
	const n = 100000
	for _, impl := range impls {
		b.Run("impl="+impl, func(b *testing.B) {
			for _, family := range []string{"v4", "v6"} {
				b.Run("family="+family, func(b *testing.B) {
					b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
						ps := prefixes(family, n)
						rules := allowRules(ps)
						var build func() any
						switch impl {
						case "acl":
							build = func() any { return buildACL(rules) }
						case "bart":
							build = func() any { return buildFast(ps) }
						case "bartlite":
							build = func() any { return buildLite(ps) }
						case "netipx":
							build = func() any { return buildIPSet(ps) }
						case "linear":
							build = func() any { return buildLinear(rules) }
						}
						perPrefix := heapBytes(build) / n
						b.ReportAllocs()
						for b.Loop() {
							build()
						}
						b.ReportMetric(perPrefix, "B/prefix")
					})
				})
			}
		})
	}
}

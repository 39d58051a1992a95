package aclbench

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkRatio measures acl against bart (Fast) in the same loop: each
// iteration times one pass over all 16,384 queries with each of them, in
// alternating order, and the benchmark reports the median over iterations
// of acl's time divided by bart's (acl/bart, below 1 means acl is faster)
// and the median time per lookup of each (acl-ns/op, bart-ns/op). Noise
// from other work on the machine hits both sides of a pair alike, so the
// ratio is steadier than a comparison of separate benchmarks.
func BenchmarkRatio(b *testing.B) {
	for _, family := range []string{"v4", "v6"} {
		for _, n := range sizes {
			for _, kind := range []string{"hit", "miss"} {
				b.Run(fmt.Sprintf("family=%s/n=%d/%s", family, n, kind), func(b *testing.B) {
					d := getData(family, n)
					qs := d.hit
					if kind == "miss" {
						qs = d.miss
					}
					var ratios, aclNs, bartNs []float64
					yes := 0
					timeACL := func() float64 {
						start := time.Now()
						for _, q := range qs {
							if d.acl.Allowed(q) {
								yes++
							}
						}
						return float64(time.Since(start).Nanoseconds()) / float64(len(qs))
					}
					timeBart := func() float64 {
						start := time.Now()
						for _, q := range qs {
							if d.fast.Contains(q) {
								yes--
							}
						}
						return float64(time.Since(start).Nanoseconds()) / float64(len(qs))
					}
					for b.Loop() {
						var a, t float64
						if len(ratios)%2 == 0 {
							a, t = timeACL(), timeBart()
						} else {
							t, a = timeBart(), timeACL()
						}
						ratios, aclNs, bartNs = append(ratios, a/t), append(aclNs, a), append(bartNs, t)
					}
					if yes != 0 {
						b.Fatalf("acl and bart disagree on %d lookups", yes)
					}
					b.ReportMetric(median(ratios), "acl/bart")
					b.ReportMetric(median(aclNs), "acl-ns/op")
					b.ReportMetric(median(bartNs), "bart-ns/op")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

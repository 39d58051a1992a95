package aclbench

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/portcullis-gw/portcullis/acl"
)

// TestAgrees checks that acl answers like bart (Fast and Lite) and netipx
// on every benchmark query, and on random addresses, for every data set.
func TestAgrees(t *testing.T) {
	for _, family := range []string{"v4", "v6"} {
		for _, n := range sizes {
			if n > 1000 && testing.Short() {
				continue
			}
			t.Run(fmt.Sprintf("family=%s/n=%d", family, n), func(t *testing.T) {
				d := getData(family, n)
				r := rand.New(rand.NewPCG(uint64(n), 1))
				random := make([]netip.Addr, 0, 20000)
				for range cap(random) {
					if family == "v4" {
						random = append(random, netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}))
					} else {
						random = append(random, random6(r))
					}
				}
				check := func(kind string, qs []netip.Addr, want int) {
					for _, q := range qs {
						got := d.acl.Allowed(q)
						if b := d.fast.Contains(q); got != b {
							t.Fatalf("%s %v: acl %v, bart %v", kind, q, got, b)
						}
						if b := d.lite.Contains(q); got != b {
							t.Fatalf("%s %v: acl %v, bart.Lite %v", kind, q, got, b)
						}
						if b := d.ipset.Contains(q); got != b {
							t.Fatalf("%s %v: acl %v, netipx %v", kind, q, got, b)
						}
						if want >= 0 && got != (want == 1) {
							t.Fatalf("%s %v: acl says %v", kind, q, got)
						}
					}
				}
				check("hit", d.hit, 1)
				check("miss", d.miss, 0)
				check("random", random, -1)
			})
		}
	}
}

// TestAgreesWithDenies checks acl against the linear scan on rule sets with
// deny rules, which the membership structures cannot express.
func TestAgreesWithDenies(t *testing.T) {
	for _, family := range []string{"v4", "v6"} {
		ps := prefixes(family, 2000)
		r := rand.New(rand.NewPCG(5, 5))
		rules := allowRules(ps)
		for i := range rules {
			rules[i].Deny = r.IntN(4) == 0
		}
		s, err := acl.New(rules)
		if err != nil {
			t.Fatal(err)
		}
		lin := buildLinear(rules)
		qs := Queries(ps, 5000, true, 9, nil)
		allowed := 0
		for _, q := range qs {
			got, want := s.Allowed(q), lin.Contains(q)
			if got != want {
				t.Fatalf("%s %v: acl %v (%v), linear %v", family, q, got, s.Decide(q), want)
			}
			if got {
				allowed++
			}
		}
		if allowed == 0 || allowed == len(qs) {
			t.Fatalf("%s: %d of %d allowed: the test does not exercise both answers", family, allowed, len(qs))
		}
	}
}

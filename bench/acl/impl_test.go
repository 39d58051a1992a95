package aclbench

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"

	"github.com/gaissmai/bart"
	"github.com/portcullis-gw/portcullis/acl"
	"go4.org/netipx"
)

// Sizes and seeds of the data sets.
var sizes = []int{10, 1000, 100000}

const (
	seed     = 20250101
	nQueries = 1 << 14 // per data set; a power of two
)

// linear is the baseline: a scan for the most specific matching rule.
type linear []acl.Rule

func (l linear) Contains(a netip.Addr) bool {
	best, allow := -1, false
	for _, r := range l {
		if b := r.Prefix.Bits(); b > best && r.Prefix.Contains(a) {
			best, allow = b, !r.Deny
		}
	}
	return allow
}

// data is one family and size: prefixes, queries and every structure built.
type data struct {
	prefixes  []netip.Prefix
	rules     []acl.Rule
	hit, miss []netip.Addr

	acl    *acl.Set
	fast   *bart.Fast[struct{}]
	lite   *bart.Lite
	ipset  *netipx.IPSet
	linear linear
}

var (
	dataMu    sync.Mutex
	dataCache = map[string]*data{}
)

func prefixes(family string, n int) []netip.Prefix {
	if family == "v4" {
		return Prefixes4(n, seed)
	}
	return Prefixes6(n, seed)
}

func allowRules(ps []netip.Prefix) []acl.Rule {
	rules := make([]acl.Rule, len(ps))
	for i, p := range ps {
		rules[i] = acl.Rule{Prefix: p, Line: i + 1}
	}
	return rules
}

func buildACL(rules []acl.Rule) *acl.Set {
	s, err := acl.New(rules)
	if err != nil {
		panic(err)
	}
	return s
}

func buildFast(ps []netip.Prefix) *bart.Fast[struct{}] {
	t := new(bart.Fast[struct{}])
	for _, p := range ps {
		t.Insert(p, struct{}{})
	}
	return t
}

func buildLite(ps []netip.Prefix) *bart.Lite {
	t := new(bart.Lite)
	for _, p := range ps {
		t.Insert(p)
	}
	return t
}

func buildIPSet(ps []netip.Prefix) *netipx.IPSet {
	var sb netipx.IPSetBuilder
	for _, p := range ps {
		sb.AddPrefix(p)
	}
	s, err := sb.IPSet()
	if err != nil {
		panic(err)
	}
	return s
}

func buildLinear(rules []acl.Rule) linear {
	return append(linear(nil), rules...)
}

// getData builds (once per process) the data set of a family and size.
func getData(family string, n int) *data {
	key := fmt.Sprint(family, n)
	dataMu.Lock()
	defer dataMu.Unlock()
	if d := dataCache[key]; d != nil {
		return d
	}
	d := &data{prefixes: prefixes(family, n)}
	d.rules = allowRules(d.prefixes)
	d.acl = buildACL(d.rules)
	d.fast = buildFast(d.prefixes)
	d.lite = buildLite(d.prefixes)
	d.ipset = buildIPSet(d.prefixes)
	d.linear = buildLinear(d.rules)
	d.hit = Queries(d.prefixes, nQueries, true, seed+uint64(n), d.ipset.Contains)
	d.miss = Queries(d.prefixes, nQueries, false, seed+uint64(n), d.ipset.Contains)
	dataCache[key] = d
	// Building leaves garbage behind; collect it now rather than let the
	// collector run concurrently with the first benchmark.
	runtime.GC()
	return d
}

// heapBytes returns the live heap bytes that build's result holds.
func heapBytes(build func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(x)
	return float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
}

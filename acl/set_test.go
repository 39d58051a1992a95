package acl

import (
	"errors"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"unsafe"
)

func mustList(t testing.TB, s string) []Rule {
	t.Helper()
	rules, err := ParseList(s)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func mustSet(t testing.TB, rules []Rule) *Set {
	t.Helper()
	s, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkDecisions compares the answers with cases, which map an address to
// "allow N" or "deny N" (decided by list item N) or "none".
func checkDecisions(t *testing.T, s *Set, cases map[string]string) {
	t.Helper()
	for addr, want := range cases {
		a := netip.MustParseAddr(addr)
		d := s.Decide(a)
		var got string
		switch {
		case !d.Matched:
			got = "none"
		case d.Allowed:
			got = "allow " + strconv.Itoa(d.Rule.Line)
		default:
			got = "deny " + strconv.Itoa(d.Rule.Line)
		}
		if got != want {
			t.Errorf("Decide(%s) = %s (%v), want %s", addr, got, d, want)
		}
		if d.Allowed != s.Allowed(a) {
			t.Errorf("Allowed(%s) = %v, Decide says %v", addr, s.Allowed(a), d.Allowed)
		}
		if d.Allowed && (!d.Matched || d.Rule.Deny) {
			t.Errorf("Decide(%s) = %+v: allowed without a matching allow rule", addr, d)
		}
	}
}

func TestDecideSemantics(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		cases map[string]string
	}{
		{"most specific wins", "10.0.0.0/8,!10.9.0.0/16,10.9.8.7", map[string]string{
			"10.1.2.3":        "allow 1",
			"10.9.1.1":        "deny 2",
			"10.9.8.7":        "allow 3",
			"10.9.8.6":        "deny 2",
			"10.9.8.8":        "deny 2",
			"10.10.0.0":       "allow 1",
			"10.255.255.255":  "allow 1",
			"10.0.0.0":        "allow 1",
			"9.255.255.255":   "none",
			"11.0.0.0":        "none",
			"::ffff:10.9.8.7": "allow 3",
			"::ffff:10.9.1.1": "deny 2",
			"::ffff:11.0.0.0": "none",
			"::a09:807":       "none", // IPv4-compatible, not mapped: IPv6
			"2001:db8::1":     "none",
		}},
		{"order of rules does not matter", "10.9.8.7,!10.9.0.0/16,10.0.0.0/8", map[string]string{
			"10.1.2.3": "allow 3",
			"10.9.1.1": "deny 2",
			"10.9.8.7": "allow 1",
		}},
		{"deny inside allow inside deny", "!0.0.0.0/0,192.168.0.0/16,!192.168.1.0/24,192.168.1.128/25,!192.168.1.200", map[string]string{
			"8.8.8.8":       "deny 1",
			"192.168.0.1":   "allow 2",
			"192.168.1.1":   "deny 3",
			"192.168.1.129": "allow 4",
			"192.168.1.200": "deny 5",
			"192.168.1.201": "allow 4",
			"2001:db8::1":   "none",
		}},
		{"/0 of each family", "0.0.0.0/0,!::/0", map[string]string{
			"1.2.3.4":         "allow 1",
			"255.255.255.255": "allow 1",
			"::ffff:1.2.3.4":  "allow 1",
			"::1":             "deny 2",
			"fe80::1%eth0":    "deny 2",
		}},
		{"/32 and /128", "192.0.2.1/32,2001:db8::1/128,!2001:db8::2", map[string]string{
			"192.0.2.1":        "allow 1",
			"192.0.2.0":        "none",
			"192.0.2.2":        "none",
			"2001:db8::1":      "allow 2",
			"2001:db8::1%eth0": "allow 2",
			"2001:db8::2":      "deny 3",
			"2001:db8::3":      "none",
			"::ffff:192.0.2.1": "allow 1",
		}},
		{"IPv6 nesting", "2001:db8::/32,!2001:db8:1::/48,2001:db8:1:2::/64,!2001:db8:1:2::5", map[string]string{
			"2001:db8::1":        "allow 1",
			"2001:db8:1::1":      "deny 2",
			"2001:db8:1:2::1":    "allow 3",
			"2001:db8:1:2::5":    "deny 4",
			"2001:db8:1:3::5":    "deny 2",
			"2001:db9::":         "none",
			"fe80::1%eth0":       "none",
			"2001:db8:1:2::5%lo": "deny 4",
		}},
		{"IPv4 rules do not match IPv6 addresses", "::/0", map[string]string{
			"1.2.3.4":        "none",
			"::ffff:1.2.3.4": "none",
			"::1":            "allow 1",
		}},
		{"mapped rule is IPv4", "::ffff:10.0.0.0/104", map[string]string{
			"10.1.1.1":        "allow 1",
			"::ffff:10.1.1.1": "allow 1",
			"11.1.1.1":        "none",
		}},
		{"duplicates keep the first", "10.0.0.0/8,10.0.0.0/8,!10.1.0.0/16,!10.1.0.0/16", map[string]string{
			"10.0.0.1": "allow 1",
			"10.1.0.1": "deny 3",
		}},
		{"prefixes not on octet boundaries", "10.0.0.0/9,!10.64.0.0/10,10.96.0.0/11,!10.100.0.0/14,10.101.2.0/23", map[string]string{
			"10.0.0.1":    "allow 1",
			"10.127.0.1":  "allow 3",
			"10.64.0.1":   "deny 2",
			"10.95.255.1": "deny 2",
			"10.96.0.1":   "allow 3",
			"10.100.0.1":  "deny 4",
			"10.101.3.1":  "allow 5",
			"10.101.4.1":  "deny 4",
			"10.128.0.1":  "none",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := mustList(t, tt.rules)
			for _, directFrom := range []int{directMin, 0} {
				s, err := newSet(rules, directFrom)
				if err != nil {
					t.Fatal(err)
				}
				checkDecisions(t, s, tt.cases)
			}
		})
	}
}

func TestEmptyAndNilSets(t *testing.T) {
	empty := mustSet(t, nil)
	var zero Set
	var nilSet *Set
	for name, s := range map[string]*Set{"empty": empty, "zero": &zero, "nil": nilSet} {
		for _, a := range []string{"0.0.0.0", "10.0.0.1", "::", "::1", "::ffff:1.2.3.4", "fe80::1%eth0"} {
			if d := s.Decide(netip.MustParseAddr(a)); d != (Decision{}) {
				t.Errorf("%s Set: Decide(%s) = %+v, want the zero Decision", name, a, d)
			}
			if s.Allowed(netip.MustParseAddr(a)) {
				t.Errorf("%s Set: Allowed(%s) = true", name, a)
			}
		}
		if s.Len() != 0 || s.Rules() != nil {
			t.Errorf("%s Set: Len %d, Rules %v; want 0, nil", name, s.Len(), s.Rules())
		}
	}
}

func TestInvalidAddress(t *testing.T) {
	s := mustSet(t, mustList(t, "0.0.0.0/0,::/0"))
	if d := s.Decide(netip.Addr{}); d != (Decision{}) {
		t.Errorf("Decide(invalid) = %+v, want denied, unmatched", d)
	}
	if s.Allowed(netip.Addr{}) {
		t.Error("Allowed(invalid) = true")
	}
}

func TestRulesAndLen(t *testing.T) {
	in := mustList(t, "2001:db8::/32, 10.0.0.0/8, !10.9.0.0/16, 10.0.0.0/8, ::1, !2001:db8:1::/48, 10.9.8.7")
	s := mustSet(t, in)
	want := slices.Delete(slices.Clone(in), 3, 4) // the duplicate of item 2
	if got := s.Rules(); !slices.Equal(got, want) {
		t.Fatalf("Rules() =\n %v\nwant\n %v", got, want)
	}
	if s.Len() != len(want) {
		t.Errorf("Len() = %d, want %d", s.Len(), len(want))
	}
	got := s.Rules()
	got[0].Deny = true
	if s.Rules()[0].Deny {
		t.Error("Rules returned the Set's own storage")
	}
	in[1].Deny = true
	if s.Rules()[1].Deny {
		t.Error("New kept a reference to its input")
	}
}

func TestRulesManyInOrder(t *testing.T) {
	// More than 64 rules, both families interleaved: exercises is6 words.
	var rules []Rule
	for i := range 300 {
		var p netip.Prefix
		if i%3 == 0 {
			p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, byte(i >> 8), byte(i)}), 32)
		} else {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		}
		rules = append(rules, Rule{Prefix: p, Deny: i%5 == 0, Line: i + 1})
	}
	s := mustSet(t, rules)
	if got := s.Rules(); !slices.Equal(got, rules) {
		t.Fatalf("Rules() differs from the input")
	}
}

func TestNewConvertsMapped(t *testing.T) {
	s := mustSet(t, []Rule{{Prefix: mustPrefix("::ffff:10.0.0.0/104"), Line: 4}})
	want := Rule{Prefix: mustPrefix("10.0.0.0/8"), Line: 4}
	if got := s.Rules(); len(got) != 1 || got[0] != want {
		t.Fatalf("Rules() = %v, want [%v]", got, want)
	}
	if d := s.Decide(netip.MustParseAddr("10.2.3.4")); !d.Allowed || d.Rule != want {
		t.Errorf("Decide(10.2.3.4) = %v", d)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		rules   []Rule
		want    []error
		message string
	}{
		{"conflict", []Rule{
			{Prefix: mustPrefix("10.0.0.0/8"), Line: 3},
			{Prefix: mustPrefix("10.1.0.0/16"), Line: 5},
			{Prefix: mustPrefix("10.0.0.0/8"), Deny: true, Line: 7},
		}, []error{ErrConflict},
			"conflicting rules: 10.0.0.0/8 (line 3) and !10.0.0.0/8 (line 7) name the same prefix with opposite actions: keep one"},
		{"conflict after a duplicate", []Rule{
			{Prefix: mustPrefix("::1/128"), Deny: true},
			{Prefix: mustPrefix("::1/128"), Deny: true},
			{Prefix: mustPrefix("::1/128")},
		}, []error{ErrConflict},
			"conflicting rules: !::1/128 (rules[0]) and ::1/128 (rules[2]) name the same prefix with opposite actions: keep one"},
		{"conflict through mapping", []Rule{
			{Prefix: mustPrefix("10.0.0.0/8"), Line: 1},
			{Prefix: mustPrefix("::ffff:10.0.0.0/104"), Deny: true, Line: 2},
		}, []error{ErrConflict}, ""},
		{"zero prefix", []Rule{{Line: 9}}, []error{ErrInvalidRule},
			"invalid rule: line 9: the prefix is not valid (unset?)"},
		{"not canonical", []Rule{{Prefix: netip.PrefixFrom(netip.MustParseAddr("10.1.2.3"), 8)}},
			[]error{ErrInvalidRule, ErrNotCanonical},
			`invalid rule: rules[0]: "10.1.2.3/8": not a canonical prefix: use 10.0.0.0/8`},
		{"negative line", []Rule{{Prefix: mustPrefix("10.0.0.0/8"), Line: -1}}, []error{ErrInvalidRule}, ""},
	}
	if math.MaxInt > math.MaxInt32 {
		tests = append(tests, struct {
			name    string
			rules   []Rule
			want    []error
			message string
		}{"huge line", []Rule{{Prefix: mustPrefix("10.0.0.0/8"), Line: math.MaxInt32 + 1}}, []error{ErrInvalidRule}, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.rules)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want an error", s, err)
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("error %q does not wrap %v", err, want)
				}
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Errorf("error:\n got %s\nwant %s", err, tt.message)
			}
		})
	}
	var ce *ConflictError
	_, err := New(tests[0].rules)
	if !errors.As(err, &ce) || ce.FirstPos != 0 || ce.SecondPos != 2 || ce.First.Line != 3 || ce.Second.Line != 7 {
		t.Errorf("conflict error = %#v, want positions 0 and 2, lines 3 and 7", err)
	}
}

func TestNewTooManyRules(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million rules")
	}
	_, err := New(make([]Rule, MaxRules+1))
	if !errors.Is(err, ErrTooManyRules) {
		t.Fatalf("New(%d rules) error = %v, want ErrTooManyRules", MaxRules+1, err)
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		r    Rule
		want string
	}{
		{Rule{Prefix: mustPrefix("10.0.0.0/8")}, "10.0.0.0/8"},
		{Rule{Prefix: mustPrefix("10.9.0.0/16"), Deny: true, Line: 2}, "!10.9.0.0/16"},
		{Rule{Prefix: mustPrefix("10.9.8.7/32")}, "10.9.8.7/32"},
		{Rule{Prefix: mustPrefix("::1/128"), Deny: true}, "!::1/128"},
		{Rule{Prefix: mustPrefix("::/0")}, "::/0"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
		back, err := ParseRule(tt.r.String())
		if err != nil || back.Prefix != tt.r.Prefix || back.Deny != tt.r.Deny {
			t.Errorf("ParseRule(%q) = %+v, %v; want the rule back", tt.r.String(), back, err)
		}
	}
}

func TestDecisionString(t *testing.T) {
	tests := []struct {
		d    Decision
		want string
	}{
		{Decision{}, "denied: no rule matches"},
		{Decision{Allowed: true, Matched: true, Rule: Rule{Prefix: mustPrefix("10.0.0.0/8"), Line: 3}}, "allowed by 10.0.0.0/8 (line 3)"},
		{Decision{Matched: true, Rule: Rule{Prefix: mustPrefix("10.9.0.0/16"), Deny: true, Line: 2}}, "denied by !10.9.0.0/16 (line 2)"},
		{Decision{Allowed: true, Matched: true, Rule: Rule{Prefix: mustPrefix("::1/128")}}, "allowed by ::1/128"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestLookupsDoNotAllocate(t *testing.T) {
	s := mustSet(t, mustList(t, "10.0.0.0/8,!10.9.0.0/16,10.9.8.7,2001:db8::/32,!2001:db8:1::/48,2001:db8:1::5"))
	addrs := []netip.Addr{
		netip.MustParseAddr("10.9.8.7"), netip.MustParseAddr("10.9.1.1"), netip.MustParseAddr("1.1.1.1"),
		netip.MustParseAddr("2001:db8:1::5"), netip.MustParseAddr("2001:db8:1::6%eth0"),
		netip.MustParseAddr("::ffff:10.9.8.7"), {},
	}
	var sink bool
	allocs := testing.AllocsPerRun(100, func() {
		for _, a := range addrs {
			d := s.Decide(a)
			sink = sink != d.Allowed != s.Allowed(a)
		}
	})
	if allocs != 0 {
		t.Errorf("Decide and Allowed allocate %.1f times per run, want 0", allocs)
	}
	_ = sink
}

func TestLayout(t *testing.T) {
	if unsafe.Sizeof(node{}) != 128 || unsafe.Sizeof(half{}) != 64 {
		t.Errorf("node is %d bytes and half %d, want 128 and 64", unsafe.Sizeof(node{}), unsafe.Sizeof(half{}))
	}
	if !wordsLayoutOK && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
		// The fast path reads netip.Addr's two words; a Go release that
		// changes the layout would silently make every lookup slower.
		t.Errorf("netip.Addr layout not as expected on %s: lookups use the portable path", runtime.GOARCH)
	}
	// Both ways of reading an address agree.
	for _, s := range []string{"1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1%eth0", "::", "ffff::ffff"} {
		a := netip.MustParseAddr(s)
		h1, l1 := addrWords(&a)
		h2, l2 := addrWordsPortable(&a)
		if h1 != h2 || l1 != l2 {
			t.Errorf("addrWords(%s) = %x %x, portable %x %x", s, h1, l1, h2, l2)
		}
	}
	// Nodes are 64-byte aligned, for any number of them.
	for n := 1; n < 300; n++ {
		nodes := make([]node, n)
		if p := uintptr(unsafe.Pointer(&nodes[0])); p%64 != 0 {
			t.Errorf("a slice of %d nodes starts at %#x, not 64-byte aligned", n, p)
		}
	}
}

// A decision names the source and line of its rule; Rules keeps both.
func TestDecisionNamesSource(t *testing.T) {
	rs := []Rule{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Line: 3, Source: "allow.txt"},
		{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Deny: true, Source: "--allow"},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), Line: 7, Source: "policy.yaml"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Line: 2},
	}
	s, err := New(rs)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"10.1.2.3":    "allowed by 10.0.0.0/8 (allow.txt:3)",
		"10.9.1.1":    "denied by !10.9.0.0/16 (--allow)",
		"2001:db8::1": "allowed by 2001:db8::/32 (policy.yaml:7)",
		"192.0.2.1":   "allowed by 192.0.2.0/24 (line 2)",
	} {
		if got := s.Decide(netip.MustParseAddr(addr)).String(); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if got := s.Rules(); !slices.Equal(got, rs) {
		t.Errorf("Rules() = %v, want %v", got, rs)
	}
}

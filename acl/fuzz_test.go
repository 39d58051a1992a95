package acl

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// canonical returns r as New stores it (IPv4-mapped prefixes unmapped).
func canonical(r Rule) Rule {
	if a := r.Prefix.Addr(); a.Is4In6() && r.Prefix.Bits() >= 96 {
		r.Prefix = netip.PrefixFrom(a.Unmap(), r.Prefix.Bits()-96)
	}
	return r
}

var fuzzBases4 = [][4]byte{{10, 0, 0, 0}, {192, 168, 1, 0}, {0, 0, 0, 0}, {255, 255, 255, 255}}

var fuzzBases6 = [][16]byte{
	netip.MustParseAddr("2001:db8::").As16(),
	netip.MustParseAddr("::").As16(),
	netip.MustParseAddr("::ffff:10.0.0.0").As16(),
	netip.MustParseAddr("fe80::").As16(),
	netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").As16(),
}

// rulesFromBytes decodes fuzz input into rules that share bases, so that
// they nest and collide: per rule a flags byte (bit 0 IPv6, bit 1 deny,
// bits 2-4 base, bits 5-7 how many address bytes follow), the prefix
// length, the position where the address bytes are written, and the bytes.
// It returns the rest of data too.
func rulesFromBytes(data []byte) ([]Rule, []byte) {
	if len(data) == 0 {
		return nil, nil
	}
	n := int(data[0]) % 80
	data = data[1:]
	var rules []Rule
	for len(rules) < n && len(data) >= 3 {
		flags, bits, pos := data[0], int(data[1]), int(data[2])
		k := int(flags >> 5)
		data = data[3:]
		if k > len(data) {
			k = len(data)
		}
		patch := data[:k]
		data = data[k:]
		var p netip.Prefix
		if flags&1 == 0 {
			a := fuzzBases4[int(flags>>2&7)%len(fuzzBases4)]
			copy(a[pos%4:], patch)
			p = netip.PrefixFrom(netip.AddrFrom4(a), bits%33).Masked()
		} else {
			a := fuzzBases6[int(flags>>2&7)%len(fuzzBases6)]
			copy(a[pos%16:], patch)
			p = netip.PrefixFrom(netip.AddrFrom16(a), bits%129).Masked()
		}
		rules = append(rules, Rule{Prefix: p, Deny: flags&2 != 0, Line: len(rules) + 1})
	}
	return rules, data
}

func FuzzDecide(f *testing.F) {
	f.Add([]byte{3, 0, 8, 0, 2, 16, 1, 9, 0x60, 32, 2, 9, 8, 7, 10, 9, 1, 1})
	f.Add([]byte{4, 1, 32, 0, 3, 48, 4, 1, 0x41, 128, 15, 1, 0x09, 104, 0, 0x08, 0, 0})
	f.Add([]byte("\x10the quick brown fox jumps over the lazy dog, repeatedly and at length"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, rest := rulesFromBytes(data)
		// Conflicting duplicates are refused; drop them and go on.
		first := map[netip.Prefix]Rule{}
		var kept, unique []Rule
		conflict := false
		for _, r := range rules {
			c := canonical(r)
			if old, ok := first[c.Prefix]; ok {
				if old.Deny != c.Deny {
					conflict = true
					continue
				}
			} else {
				first[c.Prefix] = c
				unique = append(unique, c)
			}
			kept = append(kept, r)
		}
		if conflict {
			if _, err := New(rules); !errors.Is(err, ErrConflict) {
				t.Fatalf("New with conflicting rules: error %v, want ErrConflict", err)
			}
		}
		for i := range kept {
			kept[i] = canonical(kept[i])
		}
		addrs := probesAll(kept)
		for len(rest) >= 4 && len(addrs) < 400 {
			if len(rest) >= 16 && rest[0]&1 == 1 {
				addrs = append(addrs, netip.AddrFrom16([16]byte(rest[:16])))
				rest = rest[16:]
			} else {
				a := netip.AddrFrom4([4]byte(rest[:4]))
				addrs = append(addrs, a, netip.AddrFrom16(a.As16()).WithZone("z"))
				rest = rest[4:]
			}
		}
		checkAgainstReference(t, kept, addrs)
		s, err := New(kept)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Rules(); len(got) != len(unique) || (len(got) > 0 && !equalRules(got, unique)) {
			t.Fatalf("Rules() = %v, want %v", got, unique)
		}
	})
}

func equalRules(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// probesAll returns the boundary addresses of every rule and their
// neighbours.
func probesAll(rules []Rule) []netip.Addr {
	var out []netip.Addr
	for _, r := range rules {
		for _, a := range []netip.Addr{r.Prefix.Addr(), lastAddr(r.Prefix)} {
			out = append(out, a, a.Prev(), a.Next())
		}
	}
	kept := out[:0]
	for _, a := range out {
		if a.IsValid() {
			kept = append(kept, a)
		}
	}
	return kept
}

func FuzzParse(f *testing.F) {
	f.Add("10.0.0.0/8\n!10.9.0.0/16\n10.9.8.7 # host\n")
	f.Add("# comment\r\n::1\r\n! 2001:db8::/32\n::ffff:10.0.0.0/104")
	f.Add("10.1.2.3/8")
	f.Add("fe80::1%eth0\n")
	f.Add("\xef\xbb\xbf0.0.0.0/0,::/0")
	f.Fuzz(func(t *testing.T, in string) {
		checkParsed(t, in, false)
		checkParsed(t, in, true)
	})
}

// checkParsed parses in as a file (or a list): errors must be well formed;
// accepted rules must be canonical and survive formatting and parsing
// again.
func checkParsed(t *testing.T, in string, list bool) {
	var rules []Rule
	var err error
	if list {
		rules, err = ParseList(in)
	} else {
		rules, err = Parse(strings.NewReader(in))
	}
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line < 1 || pe.List != list || pe.Err == nil {
			t.Fatalf("error %#v is not a *ParseError with a position", err)
		}
		if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrNotCanonical) &&
			!errors.Is(err, ErrZone) && !errors.Is(err, ErrLineTooLong) && !errors.Is(err, ErrTooManyRules) {
			t.Fatalf("error %q wraps no sentinel", err)
		}
		if len(pe.Text) > maxTextInError+3 {
			t.Fatalf("error repeats %d bytes of input", len(pe.Text))
		}
		return
	}
	texts := make([]string, len(rules))
	prev := 0
	for i, r := range rules {
		if !r.Prefix.IsValid() || r.Prefix != r.Prefix.Masked() || canonical(r) != r {
			t.Fatalf("rule %d %+v is not canonical", i, r)
		}
		if r.Line <= prev {
			t.Fatalf("rule %d has line %d after line %d", i, r.Line, prev)
		}
		prev = r.Line
		texts[i] = r.String()
	}
	back, err := Parse(strings.NewReader(strings.Join(texts, "\n")))
	if err != nil {
		t.Fatalf("formatted rules do not parse: %v\n%s", err, strings.Join(texts, "\n"))
	}
	if len(back) != len(rules) {
		t.Fatalf("round trip: %d rules, want %d", len(back), len(rules))
	}
	for i := range rules {
		if back[i].Prefix != rules[i].Prefix || back[i].Deny != rules[i].Deny || back[i].Line != i+1 {
			t.Fatalf("round trip: rule %d = %+v, want %+v", i, back[i], rules[i])
		}
		one, err := ParseRule(texts[i])
		if err != nil || one.Prefix != rules[i].Prefix || one.Deny != rules[i].Deny {
			t.Fatalf("ParseRule(%q) = %+v, %v", texts[i], one, err)
		}
	}
	if len(rules) > 0 {
		fromList, err := ParseList(strings.Join(texts, ","))
		if err != nil || len(fromList) != len(rules) {
			t.Fatalf("ParseList of the formatted rules: %v, %v", fromList, err)
		}
	}
	if _, err := New(rules); err != nil && !errors.Is(err, ErrConflict) {
		t.Fatalf("New(parsed rules): %v", err)
	}
}

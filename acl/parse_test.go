package acl

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestParseRule(t *testing.T) {
	tests := []struct {
		in   string
		want Rule
	}{
		{"10.0.0.0/8", Rule{Prefix: mustPrefix("10.0.0.0/8")}},
		{"  10.0.0.0/8\t", Rule{Prefix: mustPrefix("10.0.0.0/8")}},
		{"!10.9.0.0/16", Rule{Prefix: mustPrefix("10.9.0.0/16"), Deny: true}},
		{"! 10.9.0.0/16", Rule{Prefix: mustPrefix("10.9.0.0/16"), Deny: true}},
		{"10.9.8.7", Rule{Prefix: mustPrefix("10.9.8.7/32")}},
		{"10.9.8.7/32", Rule{Prefix: mustPrefix("10.9.8.7/32")}},
		{"0.0.0.0/0", Rule{Prefix: mustPrefix("0.0.0.0/0")}},
		{"::/0", Rule{Prefix: mustPrefix("::/0")}},
		{"::1", Rule{Prefix: mustPrefix("::1/128")}},
		{"2001:DB8::/32", Rule{Prefix: mustPrefix("2001:db8::/32")}},
		{"!2001:db8:0:0:0:0:0:1/128", Rule{Prefix: mustPrefix("2001:db8::1/128"), Deny: true}},
		// IPv4-mapped prefixes become IPv4.
		{"::ffff:10.0.0.0/104", Rule{Prefix: mustPrefix("10.0.0.0/8")}},
		{"::ffff:10.1.2.3", Rule{Prefix: mustPrefix("10.1.2.3/32")}},
		{"::ffff:0:0/96", Rule{Prefix: mustPrefix("0.0.0.0/0")}},
		// Shorter than /96 is not inside the mapped range: stays IPv6.
		{"::/80", Rule{Prefix: mustPrefix("::/80")}},
	}
	for _, tt := range tests {
		got, err := ParseRule(tt.in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRule(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	tests := []struct {
		in      string
		want    error
		message string
	}{
		{"10.1.2.3/8", ErrNotCanonical, `"10.1.2.3/8": not a canonical prefix: use 10.0.0.0/8 (or 10.1.2.3/32 for the single address)`},
		{"2001:db8::1/32", ErrNotCanonical, `"2001:db8::1/32": not a canonical prefix: use 2001:db8::/32 (or 2001:db8::1/128 for the single address)`},
		{"::ffff:10.1.2.3/104", ErrNotCanonical, `"::ffff:10.1.2.3/104": not a canonical prefix: use 10.0.0.0/8 (or 10.1.2.3/32 for the single address)`},
		{"fe80::1%eth0", ErrZone, `"fe80::1%eth0": zone not allowed in a rule: remove "%eth0"; rules match an address in any zone`},
		{"fe80::%eth0/64", ErrZone, `"fe80::%eth0/64": zone not allowed in a rule: remove "%eth0"; rules match an address in any zone`},
		{"10.0.0.256", ErrSyntax, `"10.0.0.256": invalid rule: IPv4 field has value >255; ` + acceptedForm},
		{"example.com", ErrSyntax, ""}, // netip's reason varies between Go releases
		{"10.0.0.0/33", ErrSyntax, `"10.0.0.0/33": invalid rule: prefix length "33": want a decimal number from 0 to 32 for an IPv4 address`},
		{"::/129", ErrSyntax, `"::/129": invalid rule: prefix length "129": want a decimal number from 0 to 128 for an IPv6 address`},
		{"10.0.0.0/08", ErrSyntax, `"10.0.0.0/08": invalid rule: prefix length "08": want a decimal number from 0 to 32 for an IPv4 address`},
		{"10.0.0.0/", ErrSyntax, `"10.0.0.0/": invalid rule: prefix length "": want a decimal number from 0 to 32 for an IPv4 address`},
		{"10.0.0.0/+8", ErrSyntax, ""},
		{"10.0.0.0/8/8", ErrSyntax, ""},
		{"/8", ErrSyntax, ""},
		{"!!10.0.0.0/8", ErrSyntax, ""},
		{"10.0.0.0/8 # comment", ErrSyntax, ""},
		{"", ErrEmpty, `"": empty rule: ` + acceptedForm},
		{"  ", ErrEmpty, ""},
		{"!", ErrEmpty, `"!": empty rule: "!" needs a prefix after it, as in !10.9.0.0/16`},
		{"! ", ErrEmpty, ""},
	}
	for _, tt := range tests {
		_, err := ParseRule(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseRule(%q) error = %v, want %v", tt.in, err, tt.want)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 0 || pe.Text != strings.TrimSpace(tt.in) {
			t.Errorf("ParseRule(%q) error = %#v, want a *ParseError with Line 0 and the trimmed text", tt.in, err)
		}
		if tt.message != "" && err.Error() != tt.message {
			t.Errorf("ParseRule(%q) error:\n got %s\nwant %s", tt.in, err, tt.message)
		}
		if errors.Is(err, ErrSyntax) && !strings.Contains(err.Error(), "want ") {
			t.Errorf("ParseRule(%q) error %q does not say what is accepted", tt.in, err)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList(" 10.0.0.0/8, !10.9.0.0/16 ,10.9.8.7,::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Prefix: mustPrefix("10.0.0.0/8"), Line: 1},
		{Prefix: mustPrefix("10.9.0.0/16"), Deny: true, Line: 2},
		{Prefix: mustPrefix("10.9.8.7/32"), Line: 3},
		{Prefix: mustPrefix("::1/128"), Line: 4},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
		t.Fatalf("ParseList = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, empty := range []string{"", "   "} {
		if rules, err := ParseList(empty); err != nil || rules != nil {
			t.Errorf("ParseList(%q) = %v, %v; want nil, nil", empty, rules, err)
		}
	}
}

func TestParseListErrors(t *testing.T) {
	tests := []struct {
		in      string
		want    error
		message string
	}{
		{"10.0.0.0/8,10.1.2.3/8", ErrNotCanonical, `item 2: "10.1.2.3/8": not a canonical prefix: use 10.0.0.0/8 (or 10.1.2.3/32 for the single address)`},
		{"10.0.0.0/8,,::1", ErrEmpty, `item 2: "": empty rule: ` + acceptedForm},
		{"10.0.0.0/8,", ErrEmpty, ""},
		{"bogus", ErrSyntax, ""},
		{"a;b", ErrSyntax, ""},
		{strings.Repeat(",", MaxRules), ErrTooManyRules, ""},
	}
	for _, tt := range tests {
		_, err := ParseList(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseList(%.40q) error = %v, want %v", tt.in, err, tt.want)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || !pe.List || pe.Line == 0 {
			t.Errorf("ParseList(%.40q) error = %#v, want a *ParseError naming the item", tt.in, err)
		}
		if tt.message != "" && err.Error() != tt.message {
			t.Errorf("ParseList(%q) error:\n got %s\nwant %s", tt.in, err, tt.message)
		}
	}
}

func TestParse(t *testing.T) {
	in := "\xef\xbb\xbf# allow-list\r\n" +
		"10.0.0.0/8   # the office\r\n" +
		"\n" +
		"   !10.9.0.0/16\n" +
		"\t# a comment\n" +
		"10.9.8.7#no space before the comment\n" +
		"2001:db8::/32" // no final newline
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Prefix: mustPrefix("10.0.0.0/8"), Line: 2},
		{Prefix: mustPrefix("10.9.0.0/16"), Deny: true, Line: 4},
		{Prefix: mustPrefix("10.9.8.7/32"), Line: 6},
		{Prefix: mustPrefix("2001:db8::/32"), Line: 7},
	}
	if len(got) != len(want) {
		t.Fatalf("Parse = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, empty := range []string{"", "\n\n", "# only a comment\n", "   \r\n"} {
		if rules, err := Parse(strings.NewReader(empty)); err != nil || len(rules) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no rules", empty, rules, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("1", MaxLineLen+1)
	veryLong := strings.Repeat("#", 10000)
	tests := []struct {
		name    string
		in      string
		want    error
		message string
	}{
		{"non-canonical", "10.0.0.0/8\n\n10.1.2.3/8\n", ErrNotCanonical,
			`line 3: "10.1.2.3/8": not a canonical prefix: use 10.0.0.0/8 (or 10.1.2.3/32 for the single address)`},
		{"syntax after comment", "# x\n10.0.0.0/8\nexample.com # web\n", ErrSyntax, ""},
		{"zone", "fe80::1%eth0\n", ErrZone, ""},
		{"bang alone", "!\n", ErrEmpty, ""},
		{"line too long", "10.0.0.0/8\n" + long + "\n", ErrLineTooLong,
			fmt.Sprintf(`line 2: %q: line too long: %d bytes, at most %d`, long[:maxTextInError]+"...", MaxLineLen+1, MaxLineLen)},
		{"line longer than the buffer", veryLong, ErrLineTooLong, ""},
		{"long comment", "# " + long + "\n", ErrLineTooLong, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line == 0 || pe.List {
				t.Fatalf("Parse error = %#v, want a *ParseError naming the line", err)
			}
			if len(pe.Text) > maxTextInError+3 {
				t.Errorf("error text is %d bytes long, want at most %d", len(pe.Text), maxTextInError+3)
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Errorf("error:\n got %s\nwant %s", err, tt.message)
			}
		})
	}
}

func TestParseLineExactlyMax(t *testing.T) {
	line := "10.0.0.0/8" + strings.Repeat(" ", MaxLineLen-len("10.0.0.0/8"))
	rules, err := Parse(strings.NewReader(line + "\r\n" + line))
	if err != nil || len(rules) != 2 {
		t.Fatalf("Parse of two %d-byte lines = %v, %v; want 2 rules", len(line), rules, err)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("10.0.0.0/8\n"), iotest.ErrReader(boom))
	_, err := Parse(r)
	if !errors.Is(err, ErrRead) || !errors.Is(err, boom) {
		t.Fatalf("Parse error = %v, want ErrRead wrapping the reader's error", err)
	}
	if want := "reading rules after line 1: disk on fire"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestParseBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds inputs of millions of lines")
	}
	t.Run("rules", func(t *testing.T) {
		in := strings.Repeat("10.0.0.0/8\n", MaxRules+1)
		_, err := Parse(strings.NewReader(in))
		var pe *ParseError
		if !errors.Is(err, ErrTooManyRules) || !errors.As(err, &pe) || pe.Line != MaxRules+1 {
			t.Fatalf("Parse of %d rules: %v, want ErrTooManyRules at line %d", MaxRules+1, err, MaxRules+1)
		}
	})
	t.Run("lines", func(t *testing.T) {
		in := strings.Repeat("\n", MaxLines) + "10.0.0.0/8\n"
		_, err := Parse(strings.NewReader(in))
		var pe *ParseError
		if !errors.Is(err, ErrTooManyRules) || !errors.As(err, &pe) || pe.Line != MaxLines+1 {
			t.Fatalf("Parse of %d lines: %v, want ErrTooManyRules at line %d", MaxLines+1, err, MaxLines+1)
		}
	})
}

func TestParseErrorFormat(t *testing.T) {
	tests := []struct {
		e    ParseError
		want string
	}{
		{ParseError{Line: 3, Text: "x", Err: ErrSyntax}, `line 3: "x": invalid rule`},
		{ParseError{Line: 2, List: true, Text: "", Err: ErrEmpty}, `item 2: "": empty rule`},
		{ParseError{Text: "a\x00b"}, `"a\x00b": invalid rule`},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if got := clip(strings.Repeat("é", 100)); len(got) > maxTextInError+3 || !strings.HasSuffix(got, "é...") {
		t.Errorf("clip did not cut on a character boundary: %q", got)
	}
}

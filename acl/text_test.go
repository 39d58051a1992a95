package acl

import (
	"encoding"
	"errors"
	"testing"
)

var (
	_ encoding.TextUnmarshaler = (*Rule)(nil)
	_ encoding.TextMarshaler   = Rule{}
)

func TestRuleText(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8": "10.0.0.0/8", " ! 10.9.0.0/16 ": "!10.9.0.0/16", "::1": "::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8", "192.0.2.7": "192.0.2.7/32",
	} {
		var r Rule
		if err := r.UnmarshalText([]byte(in)); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", in, err)
		}
		b, err := r.MarshalText()
		if err != nil || string(b) != want || r.Line != 0 {
			t.Errorf("UnmarshalText(%q) then MarshalText = %q, %v (Line %d); want %q", in, b, err, r.Line, want)
		}
		var back Rule
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%q does not read back: %+v, %v", b, back, err)
		}
	}
	r := Rule{Deny: true}
	if err := r.UnmarshalText([]byte("10.1.2.3/8")); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("non-canonical prefix: err %v, want ErrNotCanonical", err)
	}
	if !r.Deny {
		t.Errorf("a failed UnmarshalText changed the rule: %+v", r)
	}
	var pe *ParseError
	if err := r.UnmarshalText([]byte("a,b")); !errors.As(err, &pe) {
		t.Errorf("a list is one bad rule: err %v, want a *ParseError", err)
	}
}

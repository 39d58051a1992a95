package acl

import (
	"net/netip"
	"strconv"
)

// Rule is one allow or deny entry for a network prefix.
//
// Rules returned by Parse, ParseList, ParseRule and Set.Rules are canonical:
// Prefix is Masked, IPv4 prefixes (including IPv4-mapped IPv6 ones such as
// ::ffff:10.0.0.0/104) are in their 4-byte form (10.0.0.0/8). New accepts
// only canonical prefixes, except that it converts IPv4-mapped ones itself.
type Rule struct {
	// Prefix is the network the rule applies to.
	Prefix netip.Prefix
	// Deny is true for a deny rule ("!" in the text form).
	Deny bool
	// Line is the 1-based line of a file, or item position in a list, where
	// the rule was written; 0 if the rule was built in code.
	Line int
	// Source names where the rule was written (a file, a flag), for
	// messages; empty if the rule was built in code. A Set keeps at most
	// MaxSources distinct ones.
	Source string
}

// String formats the rule in the text form that Parse accepts:
// "10.0.0.0/8", "!10.9.0.0/16"; single addresses keep their /32 or /128.
// The line is not part of the text.
func (r Rule) String() string {
	return string(r.appendTo(make([]byte, 0, 48)))
}

// MarshalText returns the text of String.
func (r Rule) MarshalText() ([]byte, error) {
	return r.appendTo(make([]byte, 0, 48)), nil
}

// UnmarshalText parses one rule with ParseRule (Line stays 0), so that
// rules can be read by encoding packages and by settings parsers: a
// []Rule setting holds one rule per comma-separated item.
func (r *Rule) UnmarshalText(text []byte) error {
	v, err := ParseRule(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func (r Rule) appendTo(b []byte) []byte {
	if r.Deny {
		b = append(b, '!')
	}
	return r.Prefix.AppendTo(b)
}

// Decision is the answer for one address: allowed or not, and why.
type Decision struct {
	// Allowed is true only if an allow rule is the most specific match.
	Allowed bool
	// Rule is the most specific matching rule; the zero Rule when none
	// matched.
	Rule Rule
	// Matched is false when no rule matched: the address is denied by
	// default.
	Matched bool
}

// String explains the decision: `allowed by 10.0.0.0/8 (line 3)`,
// `denied by !10.9.0.0/16 (line 2)`, or `denied: no rule matches`. The line
// is omitted for rules built in code (Line 0).
func (d Decision) String() string {
	if !d.Matched {
		return "denied: no rule matches"
	}
	b := make([]byte, 0, 64)
	if d.Allowed {
		b = append(b, "allowed by "...)
	} else {
		b = append(b, "denied by "...)
	}
	b = d.Rule.appendTo(b)
	switch r := d.Rule; {
	case r.Source != "" && r.Line > 0:
		b = append(b, " ("...)
		b = append(b, r.Source...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(r.Line), 10)
		b = append(b, ')')
	case r.Source != "":
		b = append(b, " ("...)
		b = append(b, r.Source...)
		b = append(b, ')')
	case r.Line > 0:
		b = append(b, " (line "...)
		b = strconv.AppendInt(b, int64(r.Line), 10)
		b = append(b, ')')
	}
	return string(b)
}

package acl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// acceptedForm ends every syntax error: it tells what the parser accepts.
const acceptedForm = `want an IP address or prefix such as 192.0.2.1, 10.0.0.0/8 or 2001:db8::/32, with "!" in front to deny`

// ParseRule parses one rule: an IPv4 or IPv6 address or prefix, optionally
// preceded by "!" to deny. Surrounding spaces are ignored, and so are spaces
// between "!" and the prefix ("! 10.0.0.0/8" is accepted).
//
// A bare address is a /32 or /128 rule. A prefix must be canonical: host
// bits set (10.1.2.3/8) is an error that shows the canonical form, since
// the writer may have meant 10.1.2.3/32 as well as 10.0.0.0/8. IPv4-mapped
// IPv6 prefixes of length 96 or more (::ffff:10.0.0.0/104) are converted
// to their IPv4 form (10.0.0.0/8), because addresses are matched in their
// unmapped form. Zones (fe80::1%eth0) are refused. There are no comments
// in a single rule.
//
// Errors are *ParseError with Line 0.
func ParseRule(s string) (Rule, error) {
	r, err := parseRule(s)
	if err != nil {
		return Rule{}, &ParseError{Text: clip(strings.TrimSpace(s)), Err: err}
	}
	return r, nil
}

// ParseList parses a comma-separated list of rules ("10.0.0.0/8,!10.9.0.0/16,::1"),
// as given to --allow. Each item follows ParseRule; Rule.Line is the 1-based
// item position. A list that is empty or all spaces yields no rules and no
// error; an empty item inside a list ("a,,b" or a trailing comma) is an error.
//
// Errors are *ParseError with List set and Line naming the item.
func ParseList(s string) ([]Rule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	n := strings.Count(s, ",") + 1
	if n > MaxRules {
		return nil, &ParseError{Line: MaxRules + 1, List: true, Text: "",
			Err: fmt.Errorf("%w: %d items, at most %d", ErrTooManyRules, n, MaxRules)}
	}
	rules := make([]Rule, 0, n)
	item := 0
	for part := range strings.SplitSeq(s, ",") {
		item++
		r, err := parseRule(part)
		if err != nil {
			return nil, &ParseError{Line: item, List: true, Text: clip(strings.TrimSpace(part)), Err: err}
		}
		r.Line = item
		rules = append(rules, r)
	}
	return rules, nil
}

// Parse reads rules in the text format, one rule per line (see ParseRule
// for one rule). "#" starts a comment, on its own line or after a rule;
// blank lines are ignored; spaces around a rule are trimmed; "\r\n" line
// ends and a leading UTF-8 byte order mark are accepted. Rule.Line is the
// 1-based line number.
//
// Input is bounded: a line longer than MaxLineLen bytes, more than MaxRules
// rules or more than MaxLines lines is an error. Parse errors are
// *ParseError naming the line; a read error wraps ErrRead and the reader's
// error. Parse does not check for conflicting duplicates: New does.
func Parse(r io.Reader) ([]Rule, error) {
	br := bufio.NewReaderSize(r, 4096)
	var rules []Rule
	for line := 1; ; line++ {
		raw, rerr := br.ReadSlice('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			if errors.Is(rerr, bufio.ErrBufferFull) {
				return nil, &ParseError{Line: line, Text: clip(string(raw)),
					Err: fmt.Errorf("%w: over %d bytes, at most %d", ErrLineTooLong, len(raw), MaxLineLen)}
			}
			return nil, fmt.Errorf("%w after line %d: %w", ErrRead, line-1, rerr)
		}
		if len(raw) == 0 && rerr != nil {
			return rules, nil // io.EOF at the start of a line
		}
		if line > MaxLines {
			return nil, &ParseError{Line: line, Text: clip(string(raw)),
				Err: fmt.Errorf("%w: more than %d lines", ErrTooManyRules, MaxLines)}
		}
		text := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		if len(text) > MaxLineLen {
			return nil, &ParseError{Line: line, Text: clip(string(text)),
				Err: fmt.Errorf("%w: %d bytes, at most %d", ErrLineTooLong, len(text), MaxLineLen)}
		}
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
		}
		if i := bytes.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = bytes.TrimSpace(text)
		if len(text) > 0 {
			if len(rules) == MaxRules {
				return nil, &ParseError{Line: line, Text: clip(string(text)),
					Err: fmt.Errorf("%w: at most %d", ErrTooManyRules, MaxRules)}
			}
			s := string(text)
			rule, err := parseRule(s)
			if err != nil {
				return nil, &ParseError{Line: line, Text: clip(s), Err: err}
			}
			rule.Line = line
			rules = append(rules, rule)
		}
		if rerr != nil {
			return rules, nil // io.EOF after a last line without "\n"
		}
	}
}

// parseRule parses one rule; its errors carry no position.
func parseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	var r Rule
	if strings.HasPrefix(s, "!") {
		r.Deny = true
		s = strings.TrimSpace(s[1:])
		if s == "" {
			return Rule{}, fmt.Errorf(`%w: "!" needs a prefix after it, as in !10.9.0.0/16`, ErrEmpty)
		}
	} else if s == "" {
		return Rule{}, fmt.Errorf("%w: %s", ErrEmpty, acceptedForm)
	}
	p, err := parsePrefix(s)
	if err != nil {
		return Rule{}, err
	}
	r.Prefix = p
	return r, nil
}

// parsePrefix parses an address or canonical prefix, converting IPv4-mapped
// IPv6 to IPv4.
func parsePrefix(s string) (netip.Prefix, error) {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		zone, _, _ := strings.Cut(s[i:], "/")
		return netip.Prefix{}, fmt.Errorf("%w: remove %q; rules match an address in any zone", ErrZone, zone)
	}
	addrText, bitsText, hasBits := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(addrText)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %s; %s", ErrSyntax, addrReason(err, addrText), acceptedForm)
	}
	bits := addr.BitLen()
	if hasBits {
		bits = parseBits(bitsText, addr.BitLen())
		if bits < 0 {
			family := "IPv4"
			if addr.Is6() {
				family = "IPv6"
			}
			return netip.Prefix{}, fmt.Errorf("%w: prefix length %q: want a decimal number from 0 to %d for an %s address",
				ErrSyntax, bitsText, addr.BitLen(), family)
		}
	}
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	p := netip.PrefixFrom(addr, bits)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%w: use %s (or %s for the single address)", ErrNotCanonical, m, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return p, nil
}

// parseBits parses a prefix length in [0, maxBits] written without sign or
// leading zeros; it returns -1 if s is not one.
func parseBits(s string, maxBits int) int {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if n > maxBits {
		return -1
	}
	return n
}

// addrReason extracts netip's explanation without the repeated input.
func addrReason(err error, text string) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "ParseAddr("+fmt.Sprintf("%q", text)+"): "); ok {
		return rest
	}
	return msg
}

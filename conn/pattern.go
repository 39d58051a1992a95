package conn

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrPattern is wrapped by every error ParsePattern returns.
var ErrPattern = errors.New("bad identity pattern")

// PatternForms lists the accepted forms of an identity pattern, for help
// texts and error messages.
const PatternForms = `uri:spiffe://corp/app/* ("*" one path segment, "**" the rest), dns:host.example.com or dns:*.example.com, ` +
	`cn:NAME, ou:UNIT, o:ORG, email:user@example.com, sha256:FINGERPRINT (hex, colons optional), any`

type patternKind uint8

const (
	kindAny patternKind = iota + 1
	kindURI
	kindDNS
	kindCN
	kindOU
	kindO
	kindEmail
	kindSHA256
)

var kindNames = map[string]patternKind{
	"uri": kindURI, "dns": kindDNS, "cn": kindCN, "ou": kindOU,
	"o": kindO, "email": kindEmail, "sha256": kindSHA256,
}

// Pattern matches identities. The zero Pattern matches nothing. Patterns are
// immutable and safe for concurrent use.
type Pattern struct {
	kind  patternKind
	value string // normalised value (lowercase where comparison ignores case)
	// uri patterns: the part before the path, compared case-insensitively,
	// and the path segments, where "*" is one segment and "**" (last) the rest.
	prefix string
	segs   []string
}

// ParsePattern parses one identity pattern; see PatternForms.
func ParsePattern(s string) (Pattern, error) {
	s = strings.TrimSpace(s)
	if s == "any" {
		return Pattern{kind: kindAny, value: "any"}, nil
	}
	k, v, ok := strings.Cut(s, ":")
	kind, known := kindNames[strings.ToLower(k)]
	if !ok || !known {
		return Pattern{}, fmt.Errorf("%w %q: want one of %s", ErrPattern, s, PatternForms)
	}
	if v == "" {
		return Pattern{}, fmt.Errorf("%w %q: nothing after %q", ErrPattern, s, k+":")
	}
	p := Pattern{kind: kind, value: v}
	switch kind {
	case kindURI:
		return parseURIPattern(s, v)
	case kindDNS:
		p.value = strings.ToLower(strings.TrimSuffix(v, "."))
		rest, _ := strings.CutPrefix(p.value, "*.")
		if strings.Contains(rest, "*") || rest == "" || strings.ContainsAny(rest, " /@") {
			return Pattern{}, fmt.Errorf("%w %q: a DNS pattern is a name, optionally starting with \"*.\" (one label), e.g. dns:*.db.example.com", ErrPattern, s)
		}
	case kindEmail:
		if !strings.Contains(v, "@") {
			return Pattern{}, fmt.Errorf("%w %q: an email pattern needs an @, e.g. email:alice@example.com", ErrPattern, s)
		}
		p.value = strings.ToLower(v)
	case kindSHA256:
		h := strings.ToLower(strings.ReplaceAll(v, ":", ""))
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return Pattern{}, fmt.Errorf("%w %q: a sha256 pin is 64 hex digits (colons optional), the certificate's SHA-256 fingerprint as `gateway pki show` prints it", ErrPattern, s)
		}
		p.value = h
	}
	return p, nil
}

func parseURIPattern(s, v string) (Pattern, error) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return Pattern{}, fmt.Errorf("%w %q: a URI pattern is an absolute URI with a path, e.g. uri:spiffe://corp/app/*", ErrPattern, s)
	}
	if strings.Contains(u.Host, "*") || strings.Contains(u.Scheme, "*") {
		return Pattern{}, fmt.Errorf("%w %q: \"*\" is allowed only as a whole path segment, not in the scheme or host", ErrPattern, s)
	}
	p := Pattern{kind: kindURI, value: v, prefix: strings.ToLower(u.Scheme + "://" + u.Host)}
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	if path != "" {
		p.segs = strings.Split(path, "/")
	}
	for i, seg := range p.segs {
		if strings.Contains(seg, "*") && seg != "*" && seg != "**" {
			return Pattern{}, fmt.Errorf("%w %q: %q: \"*\" must be a whole path segment", ErrPattern, s, seg)
		}
		if seg == "**" && i != len(p.segs)-1 {
			return Pattern{}, fmt.Errorf("%w %q: \"**\" may only be the last path segment", ErrPattern, s)
		}
	}
	return p, nil
}

// MustPattern is ParsePattern for patterns known at compile time; it panics
// on a bad pattern.
func MustPattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as it is written.
func (p Pattern) String() string {
	for name, k := range kindNames {
		if k == p.kind {
			return name + ":" + p.value
		}
	}
	if p.kind == kindAny {
		return "any"
	}
	return ""
}

// IsZero reports whether p is the zero Pattern, which matches nothing.
func (p Pattern) IsZero() bool { return p.kind == 0 }

// Match reports whether the identity matches the pattern.
func (p Pattern) Match(id *Identity) bool {
	switch p.kind {
	case kindAny:
		return true
	case kindURI:
		for _, u := range id.URIs {
			if p.matchURI(u) {
				return true
			}
		}
	case kindDNS:
		for _, n := range id.DNSNames {
			if matchDNS(p.value, n) {
				return true
			}
		}
	case kindCN:
		return id.CommonName != "" && id.CommonName == p.value
	case kindOU:
		return contains(id.OU, p.value)
	case kindO:
		return contains(id.O, p.value)
	case kindEmail:
		for _, e := range id.Emails {
			if strings.EqualFold(e, p.value) {
				return true
			}
		}
	case kindSHA256:
		return id.SHA256 == p.value
	}
	return false
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func matchDNS(pattern, name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, parent, found := strings.Cut(name, ".")
		return found && label != "" && parent == rest
	}
	return name == pattern
}

func (p Pattern) matchURI(s string) bool {
	u, err := url.Parse(s)
	if err != nil || !strings.EqualFold(u.Scheme+"://"+u.Host, p.prefix) {
		return false
	}
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	var segs []string
	if path != "" {
		segs = strings.Split(path, "/")
	}
	for i, ps := range p.segs {
		if ps == "**" {
			return len(segs) > i
		}
		if i >= len(segs) {
			return false
		}
		if ps == "*" {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if ps != segs[i] {
			return false
		}
	}
	return len(segs) == len(p.segs)
}

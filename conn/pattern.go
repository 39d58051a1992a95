package conn

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

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

func (k patternKind) String() string {
	switch k {
	case kindAny:
		return "any"
	case kindURI:
		return "uri"
	case kindDNS:
		return "dns"
	case kindCN:
		return "cn"
	case kindOU:
		return "ou"
	case kindO:
		return "o"
	case kindEmail:
		return "email"
	case kindSHA256:
		return "sha256"
	}
	return ""
}

// kindForms is the accepted form of each kind, for error messages.
var kindForms = map[patternKind]string{
	kindURI:    `uri:SCHEME://HOST/PATH, an absolute URI with a host and no user, query or fragment, where a whole path segment "*" matches one segment and a last segment "**" one or more, e.g. uri:spiffe://corp/app/*`,
	kindDNS:    `dns:NAME or dns:*.PARENT ("*." matches exactly one label), e.g. dns:api.example.com or dns:*.db.example.com`,
	kindCN:     `cn:NAME, the exact subject common name`,
	kindOU:     `ou:UNIT, an exact subject organizational unit`,
	kindO:      `o:ORG, an exact subject organization`,
	kindEmail:  `email:USER@DOMAIN (any case), e.g. email:alice@example.com`,
	kindSHA256: "sha256:FINGERPRINT, the 64 hex digits (colons optional, any case) of the certificate's SHA-256 fingerprint as `gateway pki show` prints it",
}

// Pattern matches identities. The zero Pattern matches nothing. Patterns are
// immutable and safe for concurrent use.
type Pattern struct {
	kind  patternKind
	value string // normalised value (lowercase where comparison ignores case)
	// uri patterns: the scheme and host, lowercase, compared
	// case-insensitively, and the path segments.
	prefix string
	segs   []uriSeg
}

// uriSeg is one path segment of a uri pattern.
type uriSeg struct {
	wild byte   // 0: literal, '1': "*" (one segment), 'n': "**" (one or more, last)
	lit  string // the literal segment, percent-decoded
}

// ParsePattern parses one identity pattern; see PatternForms. Spaces
// around the pattern and around its value are ignored, and the kind
// ("uri", "dns", ...) is read in any case.
//
//   - uri: the scheme and host compare case-insensitively, the path
//     exactly, segment by segment after percent-decoding. A path segment
//     "*" matches exactly one non-empty segment; a last segment "**"
//     matches one or more non-empty segments. "*" anywhere else is an
//     error. A certificate URI with a user, query or fragment matches no
//     uri pattern.
//   - dns: case-insensitive, a trailing dot ignored; "*." in front matches
//     exactly one label, not two, and not the parent name itself.
//   - cn, ou, o: exact (case-sensitive) comparison.
//   - email: case-insensitive.
//   - sha256: the fingerprint of the DER certificate, hex in any case,
//     colons optional.
//   - any: every identity.
//
// Errors wrap ErrPattern and name the pattern and the accepted form.
func ParsePattern(s string) (Pattern, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "any") {
		return Pattern{kind: kindAny, value: "any"}, nil
	}
	k, v, ok := strings.Cut(s, ":")
	kind, known := kindNames[strings.ToLower(strings.TrimSpace(k))]
	if !ok || !known {
		return Pattern{}, fmt.Errorf("%w %q: unknown form; want one of %s", ErrPattern, s, PatternForms)
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return Pattern{}, fmt.Errorf("%w %q: nothing after %q; want %s", ErrPattern, s, k+":", kindForms[kind])
	}
	bad := func(why string) (Pattern, error) {
		return Pattern{}, fmt.Errorf("%w %q: %s; want %s", ErrPattern, s, why, kindForms[kind])
	}
	p := Pattern{kind: kind, value: v}
	switch kind {
	case kindURI:
		return parseURIPattern(v, bad)
	case kindDNS:
		p.value = strings.ToLower(strings.TrimSuffix(v, "."))
		if why := checkDNSPattern(p.value); why != "" {
			return bad(why)
		}
	case kindEmail:
		at := strings.LastIndexByte(v, '@')
		switch {
		case at < 0:
			return bad("no @")
		case at == 0 || at == len(v)-1:
			return bad("empty user or domain around the @")
		case strings.ContainsFunc(v, isSpaceOrControl):
			return bad("spaces or control characters")
		}
		p.value = strings.ToLower(v)
	case kindSHA256:
		h := strings.ToLower(strings.ReplaceAll(v, ":", ""))
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return bad(fmt.Sprintf("not 32 bytes of hex (%d hex digits given)", len(h)))
		}
		p.value = h
	}
	return p, nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// checkDNSPattern says what is wrong with a lowercase DNS pattern, or "".
func checkDNSPattern(v string) string {
	rest, _ := strings.CutPrefix(v, "*.")
	if rest == "" {
		return "no name"
	}
	for label := range strings.SplitSeq(rest, ".") {
		if label == "" {
			return "an empty label"
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			case r == '*':
				return `"*" other than as the whole first label "*."`
			default:
				return fmt.Sprintf("character %q in label %q (letters, digits, '-' and '_' only)", r, label)
			}
		}
	}
	return ""
}

func parseURIPattern(v string, bad func(string) (Pattern, error)) (Pattern, error) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return bad("not a URI: " + strings.TrimPrefix(err.Error(), "parse "))
	case u.Scheme == "" || u.Opaque != "":
		return bad("not an absolute URI with a path")
	case strings.ContainsAny(v, "?#"):
		return bad("a query or fragment")
	case u.User != nil:
		return bad("a user part before the host")
	case strings.Contains(u.Scheme, "*") || strings.Contains(u.Host, "*"):
		return bad(`"*" in the scheme or host`)
	case u.Host == "":
		return bad("no host")
	}
	p := Pattern{kind: kindURI, value: v, prefix: strings.ToLower(u.Scheme + "://" + u.Host)}
	raw := uriSegments(u)
	for i, seg := range raw {
		switch {
		case seg == "*":
			p.segs = append(p.segs, uriSeg{wild: '1'})
		case seg == "**":
			if i != len(raw)-1 {
				return bad(`"**" before the last path segment`)
			}
			p.segs = append(p.segs, uriSeg{wild: 'n'})
		case strings.Contains(seg, "*"):
			return bad(fmt.Sprintf(`path segment %q: "*" only as a whole segment`, seg))
		default:
			lit, err := url.PathUnescape(seg)
			if err != nil {
				return bad(fmt.Sprintf("path segment %q: %v", seg, err))
			}
			p.segs = append(p.segs, uriSeg{lit: lit})
		}
	}
	return p, nil
}

// uriSegments splits the escaped path of u into its raw segments; nil for
// an empty path or "/".
func uriSegments(u *url.URL) []string {
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
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

// String returns the pattern in the form ParsePattern reads back to an
// equal Pattern: "kind:value" with the value normalised (lowercase for
// dns and email, colons removed from sha256), or "any". The zero Pattern
// returns "".
func (p Pattern) String() string {
	switch p.kind {
	case 0:
		return ""
	case kindAny:
		return "any"
	}
	return p.kind.String() + ":" + p.value
}

// MarshalText returns the text of String.
func (p Pattern) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses text with ParsePattern, so that patterns can be read
// by encoding packages and by settings parsers.
func (p *Pattern) UnmarshalText(text []byte) error {
	v, err := ParsePattern(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// IsZero reports whether p is the zero Pattern, which matches nothing.
func (p Pattern) IsZero() bool { return p.kind == 0 }

// Match reports whether the identity matches the pattern. A nil identity
// matches nothing.
func (p Pattern) Match(id *Identity) bool {
	if id == nil {
		return false
	}
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
		return id.SHA256 != "" && strings.EqualFold(id.SHA256, p.value)
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
	if strings.ContainsAny(s, "?#") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || !strings.EqualFold(u.Scheme+"://"+u.Host, p.prefix) {
		return false
	}
	segs := uriSegments(u)
	for i, ps := range p.segs {
		if ps.wild == 'n' {
			if len(segs) <= i {
				return false
			}
			for _, seg := range segs[i:] {
				if seg == "" {
					return false
				}
			}
			return true
		}
		if i >= len(segs) {
			return false
		}
		switch ps.wild {
		case '1':
			if segs[i] == "" {
				return false
			}
		default:
			lit, err := url.PathUnescape(segs[i])
			if err != nil || lit != ps.lit {
				return false
			}
		}
	}
	return len(segs) == len(p.segs)
}

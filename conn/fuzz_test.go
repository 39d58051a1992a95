package conn_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/conn"
)

// FuzzParsePattern checks that ParsePattern never panics, that its errors
// wrap ErrPattern, that an accepted pattern reads back from its String form
// to an equal Pattern, that Match never panics on an identity built from
// the input, and that a pattern matches an identity made of its own value.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"any", "ANY", "uri:spiffe://corp/app/*", "uri:spiffe://corp/app/**", "uri:spiffe://corp/*/x",
		"uri:SPIFFE://Corp/a%2Fb", "uri:spiffe://corp/a*", "uri:spiffe://u@corp/x", "uri:spiffe://corp/x?y",
		"dns:*.example.com", "dns:API.example.com.", "dns:a..b", "cn:alice", "ou:ops", "o:Corp",
		"email:Alice@Example.com", "email:@", "sha256:" + fp, "sha256:" + colons(fp), "sha256:zz", "x:y", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := conn.ParsePattern(s)
		// An identity made of the input in every field.
		id := conn.Identity{URIs: []string{s}, DNSNames: []string{s}, Emails: []string{s}, CommonName: s,
			OU: []string{s}, O: []string{s}, SHA256: s, Serial: s}
		if _, v, ok := strings.Cut(s, ":"); ok {
			v = strings.TrimSpace(v)
			id.URIs = append(id.URIs, v)
			id.DNSNames = append(id.DNSNames, v)
			id.Emails = append(id.Emails, v)
			id.OU = append(id.OU, v)
			id.O = append(id.O, v)
		}
		_ = p.Match(&id)
		if err != nil {
			if !errors.Is(err, conn.ErrPattern) {
				t.Fatalf("ParsePattern(%q): error %v does not wrap ErrPattern", s, err)
			}
			if !p.IsZero() {
				t.Fatalf("ParsePattern(%q): error %v with a non-zero pattern", s, err)
			}
			return
		}
		if p.IsZero() {
			t.Fatalf("ParsePattern(%q): zero pattern without error", s)
		}
		str := p.String()
		q, err := conn.ParsePattern(str)
		if err != nil {
			t.Fatalf("ParsePattern(%q).String() = %q does not parse: %v", s, str, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("ParsePattern(%q) = %#v, but its String %q parses to %#v", s, p, str, q)
		}
		if q.String() != str {
			t.Fatalf("String() not stable: %q then %q", str, q.String())
		}
		// Every pattern matches an identity made of its own value.
		kind, v, _ := strings.Cut(str, ":")
		self := conn.Identity{}
		switch kind {
		case "any":
		case "uri":
			self.URIs = []string{v}
		case "dns":
			self.DNSNames = []string{v}
		case "cn":
			self.CommonName = v
		case "ou":
			self.OU = []string{v}
		case "o":
			self.O = []string{v}
		case "email":
			self.Emails = []string{v}
		case "sha256":
			self.SHA256 = v
		default:
			t.Fatalf("String() = %q: unknown kind", str)
		}
		if !p.Match(&self) {
			t.Fatalf("%q does not match its own value %+v", str, self)
		}
		if p.Match(nil) {
			t.Fatalf("%q matches a nil identity", str)
		}
	})
}

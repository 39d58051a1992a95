package conn_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/conn"
)

const fp = "3f1c0e5a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"

func TestPatternMatch(t *testing.T) {
	uri := func(u ...string) conn.Identity { return conn.Identity{URIs: u} }
	dns := func(n ...string) conn.Identity { return conn.Identity{DNSNames: n} }
	tests := []struct {
		pattern string
		id      conn.Identity
		want    bool
	}{
		// uri: exact
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app/web"), true},
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app/db"), false},
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app/web/x"), false},
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app"), false},
		{"uri:spiffe://corp/app/web", uri("spiffe://other/app/web"), false},
		{"uri:spiffe://corp/app/web", uri("https://corp/app/web"), false},
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/APP/web"), false},      // path is case-sensitive
		{"uri:spiffe://corp/app/web", uri("SPIFFE://CORP/app/web"), true},       // scheme and host are not
		{"uri:SPIFFE://Corp/app/web", uri("spiffe://corp/app/web"), true},       // either way round
		{"uri:spiffe://corp/app/web", uri("x", "spiffe://corp/app/web"), true},  // any of the URIs
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/%61pp/web"), true},     // percent-decoding
		{"uri:spiffe://corp/a%2Fb", uri("spiffe://corp/a/b"), false},            // an encoded slash is no separator
		{"uri:spiffe://corp/a%2Fb", uri("spiffe://corp/a%2fb"), true},           //
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app/web?x=1"), false},  // no query
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app/web#f"), false},    // no fragment
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app/web?"), false},     // not even an empty one
		{"uri:spiffe://corp/app/web", uri("spiffe://evil@corp/app/web"), false}, // no user part
		{"uri:spiffe://corp/app/web", uri("spiffe://corp:8443/app/web"), false}, // the port is part of the host
		{"uri:spiffe://corp/app/web", uri("spiffe://corp/app/web%zz"), false},   // does not parse
		{"uri:spiffe://corp/app/web", conn.Identity{DNSNames: []string{"spiffe://corp/app/web"}}, false},
		// uri: "*" is exactly one non-empty segment
		{"uri:spiffe://corp/app/*", uri("spiffe://corp/app/web"), true},
		{"uri:spiffe://corp/app/*", uri("spiffe://corp/app/*"), true},
		{"uri:spiffe://corp/app/*", uri("spiffe://corp/app/web/x"), false},
		{"uri:spiffe://corp/app/*", uri("spiffe://corp/app/"), false},
		{"uri:spiffe://corp/app/*", uri("spiffe://corp/app"), false},
		{"uri:spiffe://corp/app/*", uri("spiffe://corp/other/web"), false},
		{"uri:spiffe://corp/*/web", uri("spiffe://corp/app/web"), true},
		{"uri:spiffe://corp/*/web", uri("spiffe://corp//web"), false},
		{"uri:spiffe://corp/*/web", uri("spiffe://corp/app/db"), false},
		{"uri:spiffe://corp/*/*", uri("spiffe://corp/a/b"), true},
		{"uri:spiffe://corp/*/*", uri("spiffe://corp/a/b/c"), false},
		// uri: "**" is the rest, one or more non-empty segments
		{"uri:spiffe://corp/app/**", uri("spiffe://corp/app/web"), true},
		{"uri:spiffe://corp/app/**", uri("spiffe://corp/app/web/x/y"), true},
		{"uri:spiffe://corp/app/**", uri("spiffe://corp/app"), false},
		{"uri:spiffe://corp/app/**", uri("spiffe://corp/app/"), false},
		{"uri:spiffe://corp/app/**", uri("spiffe://corp/app/web/"), false},
		{"uri:spiffe://corp/app/**", uri("spiffe://corp/app//x"), false},
		{"uri:spiffe://corp/app/**", uri("spiffe://corp/apps/web"), false},
		{"uri:spiffe://corp/**", uri("spiffe://corp/a"), true},
		{"uri:spiffe://corp/**", uri("spiffe://corpx/a"), false},
		{"uri:spiffe://corp/*/**", uri("spiffe://corp/a/b"), true},
		{"uri:spiffe://corp/*/**", uri("spiffe://corp/a"), false},
		// uri: no path
		{"uri:spiffe://corp", uri("spiffe://corp"), true},
		{"uri:spiffe://corp", uri("spiffe://corp/a"), false},
		// uri: a literal "*" written percent-encoded matches only a literal "*"
		{"uri:spiffe://corp/%2A", uri("spiffe://corp/*"), true},
		{"uri:spiffe://corp/%2A", uri("spiffe://corp/a"), false},

		// dns: exact, case-insensitive, trailing dot ignored
		{"dns:api.example.com", dns("api.example.com"), true},
		{"dns:api.example.com", dns("API.Example.COM"), true},
		{"dns:API.example.com.", dns("api.example.com."), true},
		{"dns:api.example.com", dns("x.api.example.com"), false},
		{"dns:api.example.com", dns("example.com"), false},
		{"dns:api.example.com", dns("a", "api.example.com"), true},
		// dns: "*." is exactly one label
		{"dns:*.example.com", dns("api.example.com"), true},
		{"dns:*.example.com", dns("API.EXAMPLE.COM"), true},
		{"dns:*.example.com", dns("a.b.example.com"), false},
		{"dns:*.example.com", dns("example.com"), false},
		{"dns:*.example.com", dns(".example.com"), false},
		{"dns:*.example.com", dns("apiexample.com"), false},
		{"dns:*.example.com", dns("api.example.com.evil"), false},
		{"dns:*.example.com", conn.Identity{CommonName: "api.example.com"}, false},

		// cn, ou, o: exact
		{"cn:alice", conn.Identity{CommonName: "alice"}, true},
		{"cn:alice", conn.Identity{CommonName: "Alice"}, false},
		{"cn:alice", conn.Identity{CommonName: "alice2"}, false},
		{"cn:alice", conn.Identity{}, false},
		{"cn: alice ", conn.Identity{CommonName: "alice"}, true},
		{"cn:Ops Team", conn.Identity{CommonName: "Ops Team"}, true},
		{"ou:ops", conn.Identity{OU: []string{"dev", "ops"}}, true},
		{"ou:ops", conn.Identity{OU: []string{"Ops"}}, false},
		{"ou:ops", conn.Identity{O: []string{"ops"}}, false},
		{"o:Corp", conn.Identity{O: []string{"Corp"}}, true},
		{"o:Corp", conn.Identity{O: []string{"corp"}}, false},
		{"o:Corp", conn.Identity{OU: []string{"Corp"}}, false},

		// email: case-insensitive
		{"email:alice@example.com", conn.Identity{Emails: []string{"Alice@Example.com"}}, true},
		{"email:ALICE@example.com", conn.Identity{Emails: []string{"alice@example.com"}}, true},
		{"email:alice@example.com", conn.Identity{Emails: []string{"bob@example.com", "alice@example.com"}}, true},
		{"email:alice@example.com", conn.Identity{Emails: []string{"alice@example.org"}}, false},
		{"email:alice@example.com", conn.Identity{CommonName: "alice@example.com"}, false},

		// sha256: colons optional, any case
		{"sha256:" + fp, conn.Identity{SHA256: fp}, true},
		{"sha256:" + strings.ToUpper(fp), conn.Identity{SHA256: fp}, true},
		{"sha256:" + colons(fp), conn.Identity{SHA256: fp}, true},
		{"SHA256:" + strings.ToUpper(colons(fp)), conn.Identity{SHA256: fp}, true},
		{"sha256:" + fp, conn.Identity{SHA256: strings.Repeat("0", 64)}, false},
		{"sha256:" + fp, conn.Identity{}, false},

		// any
		{"any", conn.Identity{}, true},
		{"ANY", conn.Identity{CommonName: "x"}, true},
		{" any ", uri("spiffe://corp/x"), true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p, err := conn.ParsePattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
			}
			if got := p.Match(&tt.id); got != tt.want {
				t.Errorf("%q.Match(%+v) = %v, want %v", tt.pattern, tt.id, got, tt.want)
			}
			// The pattern written back by String matches the same way.
			q, err := conn.ParsePattern(p.String())
			if err != nil {
				t.Fatalf("ParsePattern(String() = %q): %v", p.String(), err)
			}
			if got := q.Match(&tt.id); got != tt.want {
				t.Errorf("re-parsed %q.Match(%+v) = %v, want %v", q.String(), tt.id, got, tt.want)
			}
		})
	}
}

// colons writes a hex string as colon-separated bytes.
func colons(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func TestPatternZeroAndNil(t *testing.T) {
	var zero conn.Pattern
	if !zero.IsZero() {
		t.Error("zero Pattern: IsZero() = false")
	}
	if zero.String() != "" {
		t.Errorf("zero Pattern: String() = %q, want \"\"", zero.String())
	}
	everything := conn.Identity{URIs: []string{"spiffe://corp/a"}, DNSNames: []string{"a.example.com"}, Emails: []string{"a@example.com"},
		CommonName: "a", OU: []string{"a"}, O: []string{"a"}, SHA256: fp, Serial: "1"}
	if zero.Match(&everything) {
		t.Error("zero Pattern matches an identity")
	}
	any := conn.MustPattern("any")
	if any.IsZero() {
		t.Error(`"any": IsZero() = true`)
	}
	if any.Match(nil) {
		t.Error(`"any" matches a nil identity`)
	}
}

func TestParsePatternString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"any", "any"},
		{" ANY ", "any"},
		{"uri:spiffe://corp/app/*", "uri:spiffe://corp/app/*"},
		{"URI: spiffe://corp/app/** ", "uri:spiffe://corp/app/**"},
		{"dns:API.Example.com.", "dns:api.example.com"},
		{"dns:*.Example.com", "dns:*.example.com"},
		{"cn:Alice", "cn:Alice"},
		{"Ou:Ops", "ou:Ops"},
		{"o:Corp Inc", "o:Corp Inc"},
		{"email:Alice@Example.com", "email:alice@example.com"},
		{"sha256:" + strings.ToUpper(colons(fp)), "sha256:" + fp},
	}
	for _, tt := range tests {
		p, err := conn.ParsePattern(tt.in)
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", tt.in, err)
			continue
		}
		if got := p.String(); got != tt.want {
			t.Errorf("ParsePattern(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []string // substrings of the error, besides the pattern itself
	}{
		{"", []string{"unknown form", conn.PatternForms}},
		{"alice", []string{"unknown form", conn.PatternForms}},
		{"anything", []string{"unknown form", conn.PatternForms}},
		{"spiffe://corp/app", []string{"unknown form", conn.PatternForms}},
		{"ip:10.0.0.1", []string{"unknown form", conn.PatternForms}},
		{"cn:", []string{`nothing after "cn:"`, "cn:NAME"}},
		{"cn:   ", []string{`nothing after "cn:"`, "cn:NAME"}},
		{"ou:", []string{`nothing after "ou:"`, "ou:UNIT"}},
		{"o:", []string{`nothing after "o:"`, "o:ORG"}},
		{"uri:", []string{`nothing after "uri:"`, "uri:SCHEME://HOST/PATH"}},
		{"uri:corp/app", []string{"not an absolute URI", "uri:spiffe://corp/app/*"}},
		{"uri:spiffe:corp/app", []string{"not an absolute URI", "uri:spiffe://corp/app/*"}},
		{"uri:spiffe://corp/app?x=1", []string{"query or fragment", "uri:SCHEME://HOST/PATH"}},
		{"uri:spiffe://corp/app#x", []string{"query or fragment"}},
		{"uri:spiffe://u@corp/app", []string{"user part"}},
		{"uri:spiffe:///app", []string{"no host"}},
		{"uri:spiffe://*/app", []string{`"*" in the scheme or host`}},
		{"uri:spiffe://co*rp/app", []string{`"*" in the scheme or host`}},
		{"uri:spiffe://corp/app*", []string{`path segment "app*"`, "whole segment"}},
		{"uri:spiffe://corp/a*b/c", []string{`path segment "a*b"`}},
		{"uri:spiffe://corp/***", []string{`path segment "***"`}},
		{"uri:spiffe://corp/**/web", []string{`"**" before the last path segment`}},
		{"uri:spiffe://corp/a%zz", []string{"not a URI"}},
		{"uri:spiffe://corp/a\x01", []string{"not a URI"}},
		{"dns:", []string{`nothing after "dns:"`}},
		{"dns:*", []string{`"*"`, "dns:*.PARENT"}},
		{"dns:*.", []string{`"*"`, "dns:*.PARENT"}},
		{"dns:.", []string{"no name", "dns:NAME"}},
		{"dns:**.example.com", []string{`"*" other than`}},
		{"dns:a.*.example.com", []string{`"*" other than`}},
		{"dns:*example.com", []string{`"*" other than`}},
		{"dns:*.*.example.com", []string{`"*" other than`}},
		{"dns:a..example.com", []string{"empty label"}},
		{"dns:.example.com", []string{"empty label"}},
		{"dns:example.com..", []string{"empty label"}},
		{"dns:exa mple.com", []string{`character ' '`, `"exa mple"`}},
		{"dns:a/b", []string{`character '/'`}},
		{"dns:alice@example.com", []string{`character '@'`}},
		{"dns:a:b", []string{`character ':'`}},
		{"email:alice", []string{"no @", "email:USER@DOMAIN"}},
		{"email:@example.com", []string{"empty user or domain"}},
		{"email:alice@", []string{"empty user or domain"}},
		{"email:al ice@example.com", []string{"spaces or control"}},
		{"sha256:abc", []string{"not 32 bytes of hex (3 hex digits given)", "sha256:FINGERPRINT"}},
		{"sha256:" + fp + "00", []string{"66 hex digits given"}},
		{"sha256:" + strings.Replace(fp, "3", "g", 1), []string{"not 32 bytes of hex"}},
	}
	for _, tt := range tests {
		p, err := conn.ParsePattern(tt.in)
		if err == nil {
			t.Errorf("ParsePattern(%q) = %q, want an error", tt.in, p.String())
			continue
		}
		if !errors.Is(err, conn.ErrPattern) {
			t.Errorf("ParsePattern(%q): error %v does not wrap ErrPattern", tt.in, err)
		}
		if !p.IsZero() {
			t.Errorf("ParsePattern(%q): error with a non-zero pattern %q", tt.in, p.String())
		}
		msg := err.Error()
		if want := strings.TrimSpace(tt.in); !strings.Contains(msg, quote(want)) {
			t.Errorf("ParsePattern(%q): error %q does not name the pattern", tt.in, msg)
		}
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("ParsePattern(%q): error %q does not contain %q", tt.in, msg, w)
			}
		}
	}
}

// quote is how %q writes s.
func quote(s string) string { return strconv.Quote(s) }

func TestMustPatternPanics(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, conn.ErrPattern) {
			t.Errorf("MustPattern(bad) panicked with %v, want an error wrapping ErrPattern", r)
		}
	}()
	conn.MustPattern("dns:*")
	t.Error("MustPattern(bad) did not panic")
}

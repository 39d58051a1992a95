package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
)

// examplePolicy uses every key of the format.
const examplePolicy = `# Network gate
allow:
  - 10.0.0.0/8
  - "!10.9.0.0/16"
default_route: pg
routes:
  pg:
    backend: 10.1.2.3:5432
    identities:
      - uri:spiffe://corp/app/*
      - cn:dba
    networks:
      - 10.1.0.0/16
      - '!10.1.9.0/24'
    max_streams: 200
    dial_timeout: 3s
  echo.gw.example.com:
    backend: builtin:echo
    identities: [any]
`

func rule(t *testing.T, s string, line int) acl.Rule {
	t.Helper()
	r, err := acl.ParseRule(s)
	if err != nil {
		t.Fatal(err)
	}
	r.Line = line
	return r
}

func TestParsePolicyExample(t *testing.T) {
	p, err := ParsePolicy([]byte(examplePolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		File:         "policy.yaml",
		Allow:        []acl.Rule{rule(t, "10.0.0.0/8", 3), rule(t, "!10.9.0.0/16", 4)},
		DefaultRoute: "pg", DefaultLine: 5,
		Routes: []PolicyRoute{
			{
				Name: "pg", Backend: "10.1.2.3:5432",
				Identities: []conn.Pattern{conn.MustPattern("uri:spiffe://corp/app/*"), conn.MustPattern("cn:dba")},
				Networks:   []acl.Rule{rule(t, "10.1.0.0/16", 13), rule(t, "!10.1.9.0/24", 14)},
				MaxStreams: 200, DialTimeout: 3 * time.Second, Line: 7,
			},
			{
				Name: "echo.gw.example.com", Backend: BuiltinEcho,
				Identities: []conn.Pattern{conn.MustPattern("any")}, Line: 17,
			},
		},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("ParsePolicy =\n%+v\nwant\n%+v", p, want)
	}
	if p.Routes[1].Networks != nil {
		t.Errorf("a route without networks has Networks %v, want nil", p.Routes[1].Networks)
	}
	// The rules form sets that decide as written.
	gate, err := acl.New(p.Allow)
	if err != nil {
		t.Fatal(err)
	}
	for addr, allowed := range map[string]bool{"10.1.2.3": true, "10.9.1.1": false, "192.0.2.1": false} {
		if got := gate.Allowed(netip.MustParseAddr(addr)); got != allowed {
			t.Errorf("gate.Allowed(%s) = %v, want %v", addr, got, allowed)
		}
	}
}

// policyEqual compares policies as ParsePolicy builds them, File and line
// numbers aside.
func policyEqual(a, b *Policy) bool {
	if a == nil || b == nil {
		return a == b
	}
	sameRules := func(x, y []acl.Rule) bool {
		if (x == nil) != (y == nil) || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].Prefix != y[i].Prefix || x[i].Deny != y[i].Deny {
				return false
			}
		}
		return true
	}
	if !sameRules(a.Allow, b.Allow) || a.DefaultRoute != b.DefaultRoute || len(a.Routes) != len(b.Routes) {
		return false
	}
	for i := range a.Routes {
		x, y := a.Routes[i], b.Routes[i]
		if x.Name != y.Name || x.Backend != y.Backend || x.MaxStreams != y.MaxStreams || x.DialTimeout != y.DialTimeout ||
			!reflect.DeepEqual(x.Identities, y.Identities) || !sameRules(x.Networks, y.Networks) {
			return false
		}
	}
	return true
}

func TestParsePolicyForms(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(t *testing.T, p *Policy)
	}{
		{"minimal, no allow", "routes:\n  e:\n    backend: builtin:discard\n    identities: [cn:a]\n",
			func(t *testing.T, p *Policy) {
				if p.Allow != nil || p.DefaultRoute != "" || len(p.Routes) != 1 || p.Routes[0].Backend != BuiltinDiscard {
					t.Errorf("got %+v", p)
				}
			}},
		{"a UNIX socket backend", "routes:\n  pg:\n    backend: unix:/var/run/postgresql/.s.PGSQL.5432\n    identities: [any]\n",
			func(t *testing.T, p *Policy) {
				if p.Routes[0].Backend != "unix:/var/run/postgresql/.s.PGSQL.5432" {
					t.Errorf("got %+v", p)
				}
			}},
		{"flow style on one line", `{allow: ["::1", "!2001:db8::/32"], routes: {a: {backend: "[::1]:80", identities: ["dns:*.example.com"]}}}`,
			func(t *testing.T, p *Policy) {
				if len(p.Allow) != 2 || !p.Allow[1].Deny || p.Allow[0].Line != 1 || p.Routes[0].Backend != "[::1]:80" {
					t.Errorf("got %+v", p)
				}
			}},
		{"CRLF line ends and a byte order mark", "\uFEFFroutes:\r\n  a:\r\n    backend: h:1\r\n    identities:\r\n      - any\r\n",
			func(t *testing.T, p *Policy) {
				if p.Routes[0].Line != 2 || p.Routes[0].Backend != "h:1" {
					t.Errorf("got %+v", p)
				}
			}},
		{"route names YAML would read as other types", "routes:\n  1:\n    backend: h:1\n    identities: [any]\n  \"true\":\n    backend: h:2\n    identities: [any]\n  a:b:\n    backend: h:3\n    identities: [any]\n",
			func(t *testing.T, p *Policy) {
				var names []string
				for _, r := range p.Routes {
					names = append(names, r.Name)
				}
				if !slices.Equal(names, []string{"1", "true", "a:b"}) {
					t.Errorf("route names %q", names)
				}
			}},
		{"max_streams 0 and other integer forms", "routes:\n  a:\n    backend: h:1\n    identities: [any]\n    max_streams: 0\n  b:\n    backend: h:1\n    identities: [any]\n    max_streams: 0x10\n",
			func(t *testing.T, p *Policy) {
				if p.Routes[0].MaxStreams != 0 || p.Routes[1].MaxStreams != 16 {
					t.Errorf("max_streams %d, %d", p.Routes[0].MaxStreams, p.Routes[1].MaxStreams)
				}
			}},
		{"identity patterns normalised, rule spaces", "routes:\n  a:\n    backend: h:1\n    identities: [\"DNS:API.Example.com\", \" cn:x \"]\n    networks: [\" ! 10.0.0.0/8 \", 10.0.0.0/16]\n",
			func(t *testing.T, p *Policy) {
				if got := strs(p.Routes[0].Identities); !slices.Equal(got, []string{"dns:api.example.com", "cn:x"}) {
					t.Errorf("identities %q", got)
				}
				if got := strs(p.Routes[0].Networks); !slices.Equal(got, []string{"!10.0.0.0/8", "10.0.0.0/16"}) {
					t.Errorf("networks %q", got)
				}
			}},
		{"harmless duplicate rules and a document end marker", "allow: [10.0.0.0/8, 10.0.0.0/8]\nroutes: {a: {backend: h:1, identities: [any]}}\n...\n",
			func(t *testing.T, p *Policy) {
				if len(p.Allow) != 2 {
					t.Errorf("allow %v", p.Allow)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.src), "p.yaml")
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
			text, err := p.Format()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePolicy(text, "p.yaml")
			if err != nil || !policyEqual(p, back) {
				t.Errorf("Format:\n%s\nreads back as %+v, %v", text, back, err)
			}
		})
	}
}

// policyErrors splits a ParsePolicy error into its PolicyErrors, checking
// what every one of them must satisfy.
func policyErrors(t *testing.T, err error, file string) []*PolicyError {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error does not wrap ErrInvalid: %v", err)
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok && !isPolicyError(err) {
		list = j.Unwrap()
	}
	var out []*PolicyError
	last := 0
	for _, e := range list {
		pe, ok := e.(*PolicyError)
		if !ok {
			t.Fatalf("%T is not a *PolicyError: %v", e, e)
		}
		if pe.File != file {
			t.Errorf("File = %q, want %q", pe.File, file)
		}
		if pe.Line < last && pe.Line != 0 {
			t.Errorf("errors not in line order: line %d after %d", pe.Line, last)
		}
		last = max(last, pe.Line)
		out = append(out, pe)
	}
	return out
}

func isPolicyError(err error) bool {
	_, ok := err.(*PolicyError)
	return ok
}

func TestParsePolicyErrors(t *testing.T) {
	route := "routes:\n  pg:\n    backend: db:5432\n    identities: [any]\n"
	tests := []struct {
		name, src string
		want      []string // each a whole error line, or its start up to "..."
		is        []error
	}{
		{"empty file", "", []string{`p.yaml: empty: the file holds no policy; want a YAML mapping with "routes:"...`}, nil},
		{"comments only", "# nothing\n\n", []string{`p.yaml: empty: the file holds no policy...`}, nil},
		{"null document", "~\n", []string{`p.yaml: empty: the file holds no policy...`}, nil},
		{"not a mapping", "- a\n- b\n", []string{`p.yaml:1: a list where a mapping of allow, default_route and routes is expected...`}, nil},
		{"no routes", "allow: [10.0.0.0/8]\n", []string{`p.yaml: no route: clients would have nowhere to go...`}, nil},
		{"routes empty", "routes: {}\n", []string{`p.yaml:1: no route: clients would have nowhere to go; want a mapping from route name...`}, nil},
		{"routes null", "routes:\n", []string{`p.yaml:1: no route: clients would have nowhere to go...`}, nil},
		{"routes a list", "routes:\n  - name: pg\n", []string{`p.yaml:2: routes: a list where a mapping of route names is expected...`}, nil},
		{"unknown top key", "route:\n  pg: {}\n" + route,
			[]string{`p.yaml:1: unknown key "route" (known: allow, default_route, routes, identity_limits)`}, nil},
		{"unknown route key", "routes:\n  pg:\n    backnd: db:5432\n    backend: db:5432\n    identities: [any]\n",
			[]string{`p.yaml:3: route "pg": unknown key "backnd" (known: backend, identities, networks, max_streams, dial_timeout, proxy_protocol)`}, nil},
		{"duplicate top key", route + "routes: {}\n",
			[]string{`p.yaml:5: key "routes" is given twice: here and on line 1; want each key once`}, nil},
		{"duplicate route key", "routes:\n  pg:\n    backend: db:5432\n    backend: db:5433\n    identities: [any]\n",
			[]string{`p.yaml:4: route "pg": key "backend" is given twice: here and on line 3; want each key once`}, nil},
		{"duplicate route", route + "  pg:\n    backend: other:1\n    identities: [any]\n",
			[]string{`p.yaml:5: route "pg" is defined twice (first at p.yaml:2); want one entry per route name`}, nil},
		{"no backend, no identities", "routes:\n  pg:\n    max_streams: 1\n",
			[]string{`p.yaml:2: route "pg": no "backend:"; want backend: HOST:PORT...`,
				`p.yaml:2: route "pg": no "identities:": nobody could use the route; want identities: a list of identity patterns...`}, nil},
		{"route without settings", "routes:\n  pg:\n", []string{`p.yaml:2: route "pg": no backend and no identities...`}, nil},
		{"route settings a string", "routes:\n  pg: db:5432\n",
			[]string{`p.yaml:2: route "pg": "db:5432" where a mapping of backend, identities, ... is expected...`}, nil},
		{"bad backend", "routes:\n  pg:\n    backend: db\n    identities: [any]\n",
			[]string{`p.yaml:3: route "pg": backend "db": no port: add ":PORT"; want HOST:PORT with a port from 1 to 65535...`}, nil},
		{"unknown builtin", "routes:\n  pg:\n    backend: builtin:cat\n    identities: [any]\n",
			[]string{`p.yaml:3: route "pg": backend "builtin:cat": unknown builtin; want builtin:echo or builtin:discard`}, nil},
		{"backend a list", "routes:\n  pg:\n    backend: [a:1]\n    identities: [any]\n",
			[]string{`p.yaml:3: route "pg": backend: a list where a single value is expected...`}, nil},
		{"backend empty", "routes:\n  pg:\n    backend:\n    identities: [any]\n",
			[]string{`p.yaml:3: route "pg": backend: no value; want HOST:PORT...`}, nil},
		{"bad route name", "routes:\n  my db:\n    backend: db:1\n    identities: [any]\n",
			[]string{`p.yaml:2: routes: route name "my db": invalid route name...`}, []error{mux.ErrRoute}},
		{"identities a string", "routes:\n  pg:\n    backend: db:1\n    identities: any\n",
			[]string{`p.yaml:4: route "pg": identities: "any" where a list is expected; want a list of identity patterns...`}, nil},
		{"identities empty", "routes:\n  pg:\n    backend: db:1\n    identities: []\n",
			[]string{`p.yaml:4: route "pg": identities: empty list: nobody could use the route; want at least one pattern (["any"] admits every certificate that chains to --ca)`}, nil},
		{"bad pattern", "routes:\n  pg:\n    backend: db:1\n    identities:\n      - cn:ok\n      - alice\n",
			[]string{`p.yaml:6: route "pg": identities: bad identity pattern "alice": unknown form...`}, []error{conn.ErrPattern}},
		{"pattern a mapping", "routes:\n  pg:\n    backend: db:1\n    identities:\n      - cn: alice\n",
			[]string{`p.yaml:5: route "pg": identities: a mapping where a single value is expected...`}, nil},
		{"bad allow rule", "allow:\n  - 10.0.0.0/8\n  - 10.1.2.3/8\n" + route,
			[]string{`p.yaml:3: allow: "10.1.2.3/8": not a canonical prefix: use 10.0.0.0/8 (or 10.1.2.3/32 for the single address)`},
			[]error{acl.ErrNotCanonical}},
		{"two rules in one item", "allow:\n  - 10.0.0.0/8, 10.1.0.0/16\n" + route,
			[]string{`p.yaml:2: allow: "10.0.0.0/8, 10.1.0.0/16": invalid rule: ...; want one rule per list item...`}, []error{acl.ErrSyntax}},
		{"allow a string", "allow: 10.0.0.0/8\n" + route,
			[]string{`p.yaml:1: allow: "10.0.0.0/8" where a list is expected; want a list of rules...`}, nil},
		{"allow empty", "allow: []\n" + route,
			[]string{`p.yaml:1: allow: empty list: it would admit no address; want the networks to admit, or no "allow:" key...`}, nil},
		{"allow null", "allow:\n" + route, []string{`p.yaml:1: allow: empty list: it would admit no address...`}, nil},
		{"conflicting allow rules", "allow:\n  - 10.0.0.0/8\n  - 10.1.2.3/8\n  - \"!10.0.0.0/8\"\n" + route,
			[]string{`p.yaml:3: allow: "10.1.2.3/8": not a canonical prefix...`,
				`p.yaml:4: allow: conflicting rules: 10.0.0.0/8 (line 2) and !10.0.0.0/8 (line 4) name the same prefix with opposite actions: keep one`},
			[]error{acl.ErrConflict}},
		{"conflicting networks", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    networks: [\"::1\", \"!::1/128\"]\n",
			[]string{`p.yaml:5: route "pg": networks: conflicting rules: ::1/128 (line 5) and !::1/128 (line 5)...`}, []error{acl.ErrConflict}},
		{"networks empty", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    networks: []\n",
			[]string{`p.yaml:5: route "pg": networks: empty list: it would refuse every address; want the networks to admit, or no "networks:" key...`}, nil},
		{"unquoted deny rule", "allow:\n  - 10.0.0.0/8\n  - !10.9.0.0/16\n" + route,
			[]string{`p.yaml:3: "!10.9.0.0/16": an unquoted "!" starts a YAML tag, so this deny rule would be read as something else; want the rule in quotes: "!10.9.0.0/16"`}, nil},
		{"unquoted deny rule with a space", "allow:\n  - 10.0.0.0/8\n  - ! 10.9.0.0/16\n" + route,
			[]string{`p.yaml:3: "!10.9.0.0/16": an unquoted "!" starts a YAML tag...; want the rule in quotes: "!10.9.0.0/16"`}, nil},
		{"unquoted deny rule in a flow list", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    networks: [10.0.0.0/8, ! 10.9.0.0/16]\n",
			[]string{`p.yaml:5: "!10.9.0.0/16": an unquoted "!" starts a YAML tag...`}, nil},
		{"bare tag after multi-byte text", "routes:\n  pg:\n    backend: db:1\n    identities: [\"cn:éééé\", ! cn:x]\n",
			[]string{`p.yaml:4: YAML tag "!": tags are not supported...`}, nil},
		{"bare tag on a later line after CR LF", "routes:\r\n  pg:\r\n    backend: db:1\r\n    identities:\r\n      - ! cn:x\r\n",
			[]string{`p.yaml:5: YAML tag "!": tags are not supported...`}, nil},
		{"tag", "routes:\n  pg:\n    backend: !!str db:1\n    identities: [any]\n",
			[]string{`p.yaml:3: YAML tag "!!str": tags are not supported; want plain values without tags...`}, nil},
		{"local tag", "default_route: !x pg\n" + route, []string{`p.yaml:1: YAML tag "!x": tags are not supported...`}, nil},
		{"anchor and alias", "routes:\n  pg: &r\n    backend: db:1\n    identities: [any]\n  pg2: *r\n",
			[]string{`p.yaml:2: anchor &r: not supported; want each value written out in full (anchors and aliases are not supported)`,
				`p.yaml:5: alias *r: not supported...`}, nil},
		{"merge key", "routes:\n  pg: &r\n    backend: db:1\n    identities: [any]\n  pg2:\n    <<: *r\n",
			[]string{`p.yaml:2: anchor &r: not supported...`, `p.yaml:5: route "pg2": no "backend:"...`,
				`p.yaml:5: route "pg2": no "identities:"...`, `p.yaml:6: alias *r: not supported...`,
				`p.yaml:6: route "pg2": unknown key "<<"...`}, nil},
		{"negative max_streams", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    max_streams: -1\n",
			[]string{`p.yaml:5: route "pg": max_streams: out of range: -1; want a whole number from 0 to 2147483647...`}, nil},
		{"huge max_streams", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    max_streams: 99999999999999999999\n",
			[]string{`p.yaml:5: route "pg": max_streams: not a whole number: "99999999999999999999"...`}, nil},
		{"max_streams a string", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    max_streams: \"200\"\n",
			[]string{`p.yaml:5: route "pg": max_streams: not a whole number: "200"...`}, nil},
		{"max_streams a fraction", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    max_streams: 1.5\n",
			[]string{`p.yaml:5: route "pg": max_streams: not a whole number: "1.5"...`}, nil},
		{"dial_timeout without unit", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    dial_timeout: 3\n",
			[]string{`p.yaml:5: route "pg": dial_timeout: not a duration: time: missing unit in duration "3"; want a duration greater than 0...`}, nil},
		{"dial_timeout zero", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    dial_timeout: 0s\n",
			[]string{`p.yaml:5: route "pg": dial_timeout: must be greater than 0, got 0s; want ...leave the key out to use --dial-timeout`}, nil},
		{"dial_timeout negative", "routes:\n  pg:\n    backend: db:1\n    identities: [any]\n    dial_timeout: -1s\n",
			[]string{`p.yaml:5: route "pg": dial_timeout: must be greater than 0, got -1s...`}, nil},
		{"default route names no route", "default_route: nope\n" + route + "  redis:\n    backend: r:6379\n    identities: [any]\n",
			[]string{`p.yaml:1: default route "nope" names no route; want the name of one of the routes: "pg" or "redis"`}, nil},
		{"default route invalid", "default_route: a b\n" + route,
			[]string{`p.yaml:1: default_route "a b": invalid route name...`}, []error{mux.ErrRoute}},
		{"default route a list", "default_route: [pg]\n" + route,
			[]string{`p.yaml:1: default_route: a list where a single value is expected...`}, nil},
		{"key a list", route + "  ? [a]\n  : x\n", []string{`p.yaml:5: routes: a key must be a name, not a list`}, nil},
		{"second document", route + "---\n" + route, []string{`p.yaml:5: a second YAML document starts here; want one document per policy file`}, nil},
		{"not YAML", "routes: [\n", []string{`p.yaml: not valid YAML: yaml: ...`}, nil},
		{"second document not YAML", route + "---\n[\n", []string{`p.yaml: not valid YAML: yaml: ...`}, nil},
		{"tab indentation", "routes:\n\tpg: {}\n", []string{`p.yaml: not valid YAML: yaml: ...`}, nil},
		{"not UTF-8", route + "  x\xff:\n", []string{`p.yaml:5: not UTF-8 text; want a YAML file in UTF-8`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.src), "p.yaml")
			if p != nil {
				t.Errorf("a policy came back with the error: %+v", p)
			}
			list := policyErrors(t, err, "p.yaml")
			if len(list) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, w := range tt.want {
				got := list[i].Error()
				if !matchPattern(got, w) {
					t.Errorf("error %d:\n got %s\nwant %s", i, got, w)
				}
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error does not wrap %v: %v", target, err)
				}
			}
		})
	}
}

// matchPattern reports whether s matches pattern, where "..." stands for
// any text.
func matchPattern(s, pattern string) bool {
	parts := strings.Split(pattern, "...")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return s == ""
}

func TestPolicyErrorFormat(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		e    PolicyError
		want string
	}{
		{PolicyError{File: "p.yaml", Line: 3, Msg: "m", Err: cause, Want: "w"}, "p.yaml:3: m: cause; want w"},
		{PolicyError{File: "p.yaml", Msg: "m"}, "p.yaml: m"},
		{PolicyError{Line: 7, Msg: "m", Want: "w"}, "line 7: m; want w"},
		{PolicyError{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	e := &PolicyError{Msg: "m", Err: cause}
	if !errors.Is(e, ErrInvalid) || !errors.Is(e, cause) {
		t.Errorf("PolicyError does not wrap ErrInvalid and its cause")
	}
	if !errors.Is(&PolicyError{Msg: "m"}, ErrInvalid) {
		t.Errorf("PolicyError without a cause does not wrap ErrInvalid")
	}
}

func TestParsePolicyNoFileName(t *testing.T) {
	_, err := ParsePolicy([]byte("routes: {}\n"), "")
	if err == nil || err.Error() != `line 1: no route: clients would have nowhere to go; want `+routesWant {
		t.Errorf("err = %v", err)
	}
	p, err := ParsePolicy([]byte(examplePolicy), "")
	if err != nil || p.File != "" {
		t.Errorf("ParsePolicy without a name: %+v, %v", p, err)
	}
}

func TestParsePolicyBounds(t *testing.T) {
	t.Run("too large", func(t *testing.T) {
		data := []byte(examplePolicy + "#" + strings.Repeat("x", MaxPolicySize) + "\n")
		_, err := ParsePolicy(data, "big.yaml")
		list := policyErrors(t, err, "big.yaml")
		if len(list) != 1 || list[0].Error() != "big.yaml: too large: more than 1048576 bytes; want a policy file of at most 1 MiB" {
			t.Errorf("err = %v", err)
		}
		// Just under the limit is fine.
		data = []byte(examplePolicy + "#" + strings.Repeat("x", MaxPolicySize-len(examplePolicy)-2) + "\n")
		if len(data) != MaxPolicySize {
			t.Fatalf("test data is %d bytes", len(data))
		}
		if _, err := ParsePolicy(data, "big.yaml"); err != nil {
			t.Errorf("a policy of exactly MaxPolicySize bytes: %v", err)
		}
	})
	t.Run("alias bomb", func(t *testing.T) {
		// Each level refers to the previous one ten times: expanded, the
		// last one would hold 10^9 values.
		var b strings.Builder
		b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i <= 9; i++ {
			prev := "*a" + string(rune('0'+i-1))
			b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" +
				strings.TrimSuffix(strings.Repeat(prev+", ", 10), ", ") + "]\n")
		}
		b.WriteString("routes:\n  pg:\n    backend: db:1\n    identities: *a9\n")
		start := time.Now()
		_, err := ParsePolicy([]byte(b.String()), "bomb.yaml")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
		list := policyErrors(t, err, "bomb.yaml")
		// Capped: 10 anchors and 91 aliases, 10 unknown keys, are more
		// than the limit.
		if len(list) != maxPolicyErrors+1 {
			t.Fatalf("%d errors, want %d:\n%v", len(list), maxPolicyErrors+1, err)
		}
		if got := list[len(list)-1].Error(); !matchPattern(got, "bomb.yaml: ... more problems not shown; fix the ones above first") {
			t.Errorf("last error: %s", got)
		}
		if !strings.Contains(err.Error(), "alias *a9: not supported") && !strings.Contains(err.Error(), "alias *a0: not supported") {
			t.Errorf("aliases not reported:\n%v", err)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		data := []byte("routes: " + strings.Repeat("[", 100_000) + "\n")
		_, err := ParsePolicy(data, "deep.yaml")
		if list := policyErrors(t, err, "deep.yaml"); len(list) != 1 || !strings.Contains(err.Error(), "not valid YAML") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("many problems", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("routes:\n")
		for i := range 200 {
			b.WriteString("  r" + strings.Repeat("x", i) + ": {backend: nope, identities: [any]}\n")
		}
		_, err := ParsePolicy([]byte(b.String()), "many.yaml")
		list := policyErrors(t, err, "many.yaml")
		if len(list) != maxPolicyErrors+1 || list[len(list)-1].Msg != "150 more problems not shown; fix the ones above first" {
			t.Errorf("%d errors, last %v", len(list), list[len(list)-1])
		}
		if list[0].Line != 2 || list[maxPolicyErrors-1].Line != maxPolicyErrors+1 {
			t.Errorf("not the first problems in line order: %v ... %v", list[0], list[maxPolicyErrors-1])
		}
	})
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(good, []byte(examplePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(good)
	if err != nil || p.File != good || len(p.Routes) != 2 {
		t.Fatalf("LoadPolicy = %+v, %v", p, err)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = LoadPolicy(missing)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalid) ||
		err.Error() != missing+": cannot read the policy file: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	_, err = LoadPolicy(dir)
	if !errors.Is(err, ErrInvalid) || err.Error() != dir+": cannot read the policy file: it is a directory" {
		t.Errorf("directory: %v", err)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), 3*MaxPolicySize/10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(big); err == nil || !strings.Contains(err.Error(), big+": too large") {
		t.Errorf("big file: %v", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("routes:\n  pg:\n    backend: db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadPolicy(bad)
	if list := policyErrors(t, err, bad); len(list) != 2 || list[0].Line != 2 || list[1].Line != 3 {
		t.Errorf("bad file: %v", err)
	}
}

func TestPolicyFormat(t *testing.T) {
	p, err := ParsePolicy([]byte(examplePolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text, err := p.Format()
	if err != nil {
		t.Fatal(err)
	}
	want := `allow:
  - 10.0.0.0/8
  - '!10.9.0.0/16'
default_route: pg
routes:
  pg:
    backend: 10.1.2.3:5432
    identities:
      - uri:spiffe://corp/app/*
      - cn:dba
    networks:
      - 10.1.0.0/16
      - '!10.1.9.0/24'
    max_streams: 200
    dial_timeout: 3s
  echo.gw.example.com:
    backend: builtin:echo
    identities:
      - any
`
	if string(text) != want {
		t.Errorf("Format =\n%s\nwant\n%s", text, want)
	}
	back, err := ParsePolicy(text, "again.yaml")
	if err != nil || !policyEqual(p, back) {
		t.Errorf("Format reads back as %+v, %v", back, err)
	}
	// yaml.Marshal uses MarshalYAML, which writes the same document.
	viaMarshal, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err = ParsePolicy(viaMarshal, "marshal.yaml")
	if err != nil || !policyEqual(p, back) {
		t.Errorf("yaml.Marshal:\n%s\nreads back as %+v, %v", viaMarshal, back, err)
	}
	// Built in code, with nothing optional.
	q := &Policy{Routes: []PolicyRoute{{Name: "null", Backend: "[::1]:1", Identities: []conn.Pattern{conn.MustPattern("cn:# not a comment")}}}}
	text, err = q.Format()
	if err != nil {
		t.Fatal(err)
	}
	back, err = ParsePolicy(text, "")
	if err != nil || !policyEqual(q, back) {
		t.Errorf("Format:\n%s\nreads back as %+v, %v", text, back, err)
	}
}

// TestPolicyGolden compares the errors of the policies in testdata/policy
// with their .err files (run with -update to rewrite them), and checks that
// the good ones parse and format as their .golden files say.
func TestPolicyGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "policy", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no policies in testdata/policy: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			p, err := LoadPolicy(path)
			var got []byte
			if strings.HasPrefix(name, "bad-") {
				if err == nil {
					t.Fatalf("%s loads", path)
				}
				policyErrors(t, err, path)
				got = []byte(err.Error() + "\n")
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got, err = p.Format(); err != nil {
					t.Fatal(err)
				}
			}
			golden := strings.TrimSuffix(path, ".yaml") + map[bool]string{true: ".err", false: ".golden"}[strings.HasPrefix(name, "bad-")]
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run with -update after a deliberate change):\n%s", path, golden, got)
			}
		})
	}
}

// TestGatewayHelpPolicyParses checks that the policy shown in the help of
// gateway run is valid.
func TestGatewayHelpPolicyParses(t *testing.T) {
	var lines []string
	in := false
	for _, l := range strings.Split((*Gateway)(nil).Doc().Intro, "\n") {
		switch {
		case strings.HasPrefix(l, "  "):
			in = true
			lines = append(lines, l)
		case in:
			in = false
		}
	}
	if len(lines) < 5 {
		t.Fatalf("no policy example in the help:\n%s", (*Gateway)(nil).Doc().Intro)
	}
	p, err := ParsePolicy([]byte(strings.Join(lines, "\n")), "help")
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(p.Allow) != 2 || p.DefaultRoute != "pg" || len(p.Routes) != 1 || p.Routes[0].MaxStreams != 200 {
		t.Errorf("got %+v", p)
	}
}

func TestGatewayLoadPolicy(t *testing.T) {
	f := newTestFiles(t)
	write := func(name, text string) string {
		path := filepath.Join(f.dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withGate := write("with-gate.yaml", examplePolicy)
	noGate := write("no-gate.yaml", "routes:\n  pg:\n    backend: db:5432\n    identities: [any]\n")
	broken := write("broken.yaml", "routes:\n  pg:\n    backend: db\n    identities: [any]\n")

	base := func(policy string) *Gateway {
		return &Gateway{Listen: ":0", Cert: f.cert, Key: f.key, CA: f.ca, Policy: policy, LogLevel: "info", LogFormat: "json",
			HandshakeTimeout: 1, DialTimeout: 1, MaxConns: 1, MaxHandshakes: 1, MaxStreams: 1,
			HelloTimeout: 1, MaxSessionMemory: 1 << 20, MaxPending: 1, MaxPendingPerAddr: 1, MaxPendingPerPrefix: 1, PrefixV4: 24, PrefixV6: 64}
	}

	t.Run("no policy", func(t *testing.T) {
		p, err := base("").LoadPolicy()
		if p != nil || err != nil {
			t.Errorf("LoadPolicy without --policy = %v, %v; want nil, nil", p, err)
		}
	})
	t.Run("gate from the file", func(t *testing.T) {
		g := base(withGate)
		if err := g.Validate(); err != nil {
			t.Fatal(err)
		}
		p, err := g.LoadPolicy()
		if err != nil || p.File != withGate || len(p.Allow) != 2 || len(p.Routes) != 2 {
			t.Errorf("LoadPolicy = %+v, %v", p, err)
		}
	})
	for _, tt := range []struct {
		name string
		edit func(g *Gateway)
	}{
		{"gate from --allow", func(g *Gateway) { g.Allow = []acl.Rule{rule(t, "10.0.0.0/8", 1)} }},
		{"gate from --allow-file", func(g *Gateway) { g.AllowFile = f.allow }},
		{"gate from both flags", func(g *Gateway) { g.Allow, g.AllowFile = []acl.Rule{rule(t, "10.0.0.0/8", 1)}, f.allow }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := base(noGate)
			tt.edit(g)
			p, err := g.LoadPolicy()
			if err != nil || p.Allow != nil || p.Routes[0].Name != "pg" {
				t.Errorf("LoadPolicy = %+v, %v", p, err)
			}
		})
	}

	tests := []struct {
		name   string
		policy string
		edit   func(g *Gateway)
		want   []string // one per error line, each in order within it
	}{
		{"gate twice, by --allow", withGate, func(g *Gateway) { g.Allow = []acl.Rule{rule(t, "10.0.0.0/8", 1)} }, []string{
			`--allow (GATEWAY_ALLOW): the network allow-list is given twice: by --allow and by "allow:" in the --policy file "` + withGate +
				`" (line 3); got "10.0.0.0/8"; want the network rules in one place: "allow:" in the policy file, or --allow and --allow-file without it`}},
		{"gate twice, by --allow and --allow-file", withGate, func(g *Gateway) {
			g.Allow, g.AllowFile = []acl.Rule{rule(t, "10.0.0.0/8", 1)}, f.allow
		}, []string{
			`--allow (GATEWAY_ALLOW): the network allow-list is given twice: by --allow and by "allow:"`,
			`--allow-file (GATEWAY_ALLOW_FILE): the network allow-list is given twice: by --allow-file and by "allow:" in the --policy file "` +
				withGate + `" (line 3); got "` + f.allow + `"`}},
		{"routes and identities from flags too", withGate, func(g *Gateway) {
			g.Routes = []Route{{"pg", "db:1"}}
			g.AllowIDs = []conn.Pattern{conn.MustPattern("any")}
			g.DefaultRoute = "pg"
		}, []string{
			`--route (GATEWAY_ROUTE): given together with --policy (GATEWAY_POLICY): with a policy file, the routes come from its "routes:" only; got "pg=db:1"; want either --route NAME=HOST:PORT (GATEWAY_ROUTE) or --policy FILE (GATEWAY_POLICY), not both`,
			`--allow-id (GATEWAY_ALLOW_ID): given together with --policy (GATEWAY_POLICY): with a policy file, the identity rules come from its "identities:" only; got "any"`,
			`--default-route (GATEWAY_DEFAULT_ROUTE): given together with --policy (GATEWAY_POLICY): with a policy file, the default route comes from its "default_route:" only; got "pg"`}},
		{"broken file and a flag clash", broken, func(g *Gateway) { g.Routes = []Route{{"pg", "db:1"}} }, []string{
			`--route (GATEWAY_ROUTE): given together with --policy`,
			broken + `:3: route "pg": backend "db": no port`}},
		{"missing file", filepath.Join(f.dir, "missing.yaml"), nil, []string{
			filepath.Join(f.dir, "missing.yaml") + `: cannot read the policy file: no such file or directory`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := base(tt.policy)
			if tt.edit != nil {
				tt.edit(g)
			}
			p, err := g.LoadPolicy()
			if p != nil || err == nil {
				t.Fatalf("LoadPolicy = %+v, %v; want an error", p, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], w)
				}
			}
		})
	}
}

// TestDocPolicyParses checks that the policy shown in the package
// documentation is valid.
func TestDocPolicyParses(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(src), "// # Policy file")
	var lines []string
	for _, l := range strings.Split(section, "\n") {
		if yamlLine, ok := strings.CutPrefix(l, "//\t"); ok {
			lines = append(lines, yamlLine)
		} else if len(lines) > 0 {
			break
		}
	}
	p, err := ParsePolicy([]byte(strings.Join(lines, "\n")), "doc.go")
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(p.Allow) != 2 || p.DefaultRoute != "pg" || len(p.Routes) != 1 || len(p.Routes[0].Identities) != 2 ||
		len(p.Routes[0].Networks) != 1 || p.Routes[0].MaxStreams != 200 || p.Routes[0].DialTimeout != 3*time.Second {
		t.Errorf("got %+v", p)
	}
}

// TestPolicyFormatQuoting formats route names and identity values that YAML
// would read as something else unless quoted, and reads them back.
func TestPolicyFormatQuoting(t *testing.T) {
	names := []string{"-", "-a", ":", "::", "a:", ".", "...", "---", "null", "Null", "NULL", "true", "y", "yes", "on",
		"off", "0o7", "0x1F", "1e3", "1_000", ".inf", ".nan", "1.5", "2001-12-14", "12:30:00", "_", "a.b:c", "0"}
	values := []string{"cn:- x", "cn:'q'", `cn:"`, "cn:a: b", "cn:#x", "cn:x #y", "cn:@x", "cn:`x", "cn:%x", "cn:|",
		"cn:>", "cn:&x", "cn:*x", "cn:!x", "cn:{x}", "cn:[x]", "cn:,x", "cn:?x", "cn:é ü", "cn:a\tb", "cn:a\\nb",
		"ou:" + strings.Repeat("long words ", 20) + "end", "cn:null", "cn:~", "o:--- ...", "email:A@B.C",
		"uri:spiffe://corp/a%20b/*", "dns:*.EXAMPLE.com."}
	p := &Policy{Allow: []acl.Rule{rule(t, "!::/0", 0), rule(t, "::ffff:10.0.0.0/104", 0)}}
	for i, n := range names {
		r := PolicyRoute{Name: n, Backend: "h:1"}
		for _, v := range values[i%len(values):] {
			pat, err := conn.ParsePattern(v)
			if err != nil {
				t.Fatalf("%q: %v", v, err)
			}
			r.Identities = append(r.Identities, pat)
		}
		p.Routes = append(p.Routes, r)
	}
	p.DefaultRoute = "null"
	text, err := p.Format()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePolicy(text, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !policyEqual(p, back) {
		t.Errorf("Format:\n%s\nreads back as\n%+v", text, back)
	}
}

// BenchmarkParsePolicy measures what a reload of policies of growing size
// costs: parsing, checks and rule compilation.
func BenchmarkParsePolicy(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		var sb strings.Builder
		sb.WriteString("allow:\n  - 10.0.0.0/8\n  - \"!10.9.0.0/16\"\nroutes:\n")
		for i := range n {
			fmt.Fprintf(&sb, "  r%d.gw.example.com:\n    backend: db%d.internal:5432\n    identities: [\"uri:spiffe://corp/app%d/*\", \"cn:dba\"]\n"+
				"    networks: [\"10.%d.0.0/16\", \"!10.%d.9.0/24\"]\n    max_streams: 200\n    dial_timeout: 3s\n", i, i, i, i%256, i%256)
		}
		data := []byte(sb.String())
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := ParsePolicy(data, "bench.yaml"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Without any network allow-list (none in the file, none in the flags),
// the policy does not build: the message is policy.Build's, with the
// places to give one.
func TestBuildPolicyNoGate(t *testing.T) {
	f := newTestFiles(t)
	path := filepath.Join(f.dir, "no-gate.yaml")
	if err := os.WriteFile(path, []byte("routes:\n  pg:\n    backend: db:5432\n    identities: [any]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Policy: path, DialTimeout: time.Second}
	p, err := g.BuildPolicy()
	if p != nil || !errors.Is(err, policy.ErrNoGate) || !strings.Contains(err.Error(), `give --allow, --allow-file or an "allow:" list in --policy`) {
		t.Fatalf("BuildPolicy = %v, %v; want policy.ErrNoGate with the places to give a gate", p, err)
	}
	g.Allow = []acl.Rule{rule(t, "10.0.0.0/8", 1)}
	if _, err := g.BuildPolicy(); err != nil {
		t.Fatalf("with --allow: %v", err)
	}
}

// proxy_protocol in a policy, and --route-proxy with flags, give the same
// route setting; bad values are refused where they are written.
func TestRouteProxySettings(t *testing.T) {
	f := newTestFiles(t)
	path := filepath.Join(f.dir, "proxy.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("allow: [10.0.0.0/8]\nroutes:\n  pg:\n    backend: db:5432\n    identities: [any]\n    proxy_protocol: v2-full\n  web:\n    backend: web:80\n    identities: [any]\n")
	g := &Gateway{Policy: path, DialTimeout: time.Second}
	p, err := g.BuildPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if p.Route("pg").Proxy != policy.ProxyV2Full || p.Route("web").Proxy != policy.ProxyNone {
		t.Fatalf("proxy: pg %v, web %v", p.Route("pg").Proxy, p.Route("web").Proxy)
	}
	if out, err := p2yaml(t, path); err != nil || !strings.Contains(out, "proxy_protocol: v2-full") {
		t.Errorf("Format lost proxy_protocol: %v\n%s", err, out)
	}
	for body, want := range map[string]string{
		"routes:\n  pg:\n    backend: db:5432\n    identities: [any]\n    proxy_protocol: v3\n":      `proxy.yaml:5: route "pg": proxy_protocol: unknown PROXY protocol "v3"`,
		"routes:\n  pg:\n    backend: builtin:echo\n    identities: [any]\n    proxy_protocol: v2\n": `proxy.yaml:5: route "pg": proxy_protocol: a builtin backend has nothing to send a header to`,
	} {
		write(body)
		if _, err := LoadPolicy(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}

	flags := func(routeProxy ...string) *Gateway {
		g, err := ParseGateway(append(argv(gatewayArgs(f)), "--route", "web=web:80"), envMap(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		g.RouteProxy = routeProxy
		return g
	}
	g = flags("pg", "web=v2-full")
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err = g.BuildPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if p.Route("pg").Proxy != policy.ProxyV2 || p.Route("web").Proxy != policy.ProxyV2Full {
		t.Fatalf("--route-proxy: pg %v, web %v", p.Route("pg").Proxy, p.Route("web").Proxy)
	}
	for _, tc := range [][2]string{{"nope", `"nope" is not a --route`}, {"pg=v9", `unknown PROXY protocol "v9"`}} {
		if err := flags(tc[0]).Validate(); err == nil || !strings.Contains(err.Error(), "--route-proxy (GATEWAY_ROUTE_PROXY)") ||
			!strings.Contains(err.Error(), tc[1]) {
			t.Errorf("--route-proxy %s: %v; want %q", tc[0], err, tc[1])
		}
	}
}

func p2yaml(t *testing.T, path string) (string, error) {
	t.Helper()
	p, err := LoadPolicy(path)
	if err != nil {
		return "", err
	}
	b, err := p.Format()
	return string(b), err
}

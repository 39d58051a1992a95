package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/mux"
)

// FuzzParseLocal checks the -L parser: it never panics, every error wraps
// ErrInvalid, and what it accepts is valid and reads back the same.
func FuzzParseLocal(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLocal(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || err.Error() == "" {
				t.Fatalf("ParseLocal(%q): error %v does not wrap ErrInvalid", s, err)
			}
			if l != (Local{}) {
				t.Fatalf("ParseLocal(%q) returned %+v with an error", s, l)
			}
			return
		}
		if err := l.check(); err != nil {
			t.Fatalf("ParseLocal(%q) = %+v, which does not validate: %v", s, l, err)
		}
		if err := mux.ValidRoute(l.Route); err != nil {
			t.Fatalf("ParseLocal(%q): route %q: %v", s, l.Route, err)
		}
		trimmed := strings.TrimSpace(s)
		left := trimmed[:strings.LastIndexByte(trimmed, '=')]
		if l.Unix() != (strings.HasPrefix(left, "/") || strings.HasPrefix(left, UnixPrefix)) {
			t.Fatalf("ParseLocal(%q): Bind %q: a UNIX socket is a BIND that starts with / or unix:", s, l.Bind)
		}
		if !l.Unix() && !strings.ContainsAny(left, ":[]") && !strings.HasPrefix(l.Bind, defaultBindHost+":") {
			t.Fatalf("ParseLocal(%q): Bind %q, want host %s when BIND is left out", s, l.Bind, defaultBindHost)
		}
		back, err := ParseLocal(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLocal(%q) = %+v, but its String %q reads back as %+v, %v", s, l, l.String(), back, err)
		}
	})
}

// FuzzParseRoute checks the --route parser the same way.
func FuzzParseRoute(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoute(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || err.Error() == "" {
				t.Fatalf("ParseRoute(%q): error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if err := r.check(); err != nil {
			t.Fatalf("ParseRoute(%q) = %+v, which does not validate: %v", s, r, err)
		}
		back, err := ParseRoute(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRoute(%q) = %+v, but its String %q reads back as %+v, %v", s, r, r.String(), back, err)
		}
	})
}

// FuzzParsePolicy checks the policy parser: it never panics, reports bad
// input only as PolicyErrors wrapping ErrInvalid, in line order, with no
// Policy; and what it accepts is complete and formats to text that reads
// back to an equal Policy, which formats to the same text again.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(examplePolicy))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data, "f.yaml")
		if err != nil {
			if p != nil {
				t.Fatalf("a policy came back with the error %v", err)
			}
			policyErrors(t, err, "f.yaml")
			return
		}
		if len(p.Routes) == 0 || p.File != "f.yaml" || (p.Allow != nil && len(p.Allow) == 0) {
			t.Fatalf("accepted an incomplete policy: %+v", p)
		}
		names := map[string]bool{}
		for _, r := range p.Routes {
			if mux.ValidRoute(r.Name) != nil || checkBackend(r.Backend) != nil || len(r.Identities) == 0 ||
				names[r.Name] || r.MaxStreams < 0 || r.DialTimeout < 0 || (r.Networks != nil && len(r.Networks) == 0) {
				t.Fatalf("accepted an invalid route: %+v", r)
			}
			names[r.Name] = true
		}
		if p.DefaultRoute != "" && !names[p.DefaultRoute] {
			t.Fatalf("default route %q names no route", p.DefaultRoute)
		}
		text, err := p.Format()
		if err != nil {
			t.Fatalf("Format: %v", err)
		}
		back, err := ParsePolicy(text, "f.yaml")
		if err != nil {
			t.Fatalf("Format wrote\n%s\nwhich does not parse: %v", text, err)
		}
		if !policyEqual(p, back) {
			t.Fatalf("Format wrote\n%s\nwhich reads back as\n%+v\nnot\n%+v", text, back, p)
		}
		again, err := back.Format()
		if err != nil || !bytes.Equal(again, text) {
			t.Fatalf("Format is not stable:\n%s\nthen\n%s", text, again)
		}
	})
}

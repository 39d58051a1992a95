package policy_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/policy"
)

func rules(t *testing.T, list string) []acl.Rule {
	t.Helper()
	rs, err := acl.ParseList(list)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func route(name, source string) policy.RouteSpec {
	return policy.RouteSpec{Name: name, Backend: "db:5432", Identities: []conn.Pattern{conn.MustPattern("any")}, Source: source}
}

func TestBuild(t *testing.T) {
	spec := policy.Spec{
		Gate:        []policy.Rules{{Source: "--allow", Rules: rules(t, "10.0.0.0/8")}, {Source: "allow.txt", Rules: rules(t, "!10.9.0.0/16")}},
		Routes:      []policy.RouteSpec{route("pg", "p.yaml:3"), route("redis", "p.yaml:7")},
		DialTimeout: 3 * time.Second,
	}
	spec.Routes[1].DialTimeout = time.Second
	spec.Routes[1].Networks = rules(t, "10.1.0.0/16")
	spec.DefaultRoute, spec.DefaultSource = "pg", "p.yaml"
	p, err := policy.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.GateSource() != "--allow, allow.txt" {
		t.Errorf("gate source %q", p.GateSource())
	}
	if !p.Gate().Allowed(netip.MustParseAddr("10.1.2.3")) || p.Gate().Allowed(netip.MustParseAddr("10.9.0.1")) {
		t.Error("the gate is not the union of its parts")
	}
	if got := p.Route("pg").DialTimeout; got != 3*time.Second {
		t.Errorf("pg's dial timeout %v, want the spec's 3s", got)
	}
	if r := p.Route("redis"); r.DialTimeout != time.Second || r.Networks == nil || r.Networks.Allowed(netip.MustParseAddr("10.2.0.1")) {
		t.Errorf("redis: %+v", r)
	}
	if p.DirectRoute("redis") != "redis" || p.DirectRoute("other") != "pg" || p.Route("nope") != nil {
		t.Error("route lookups")
	}
	if rs := p.Routes(); len(rs) != 2 || rs[0].Name != "pg" || rs[1].Name != "redis" {
		t.Errorf("routes not in definition order: %v", rs)
	}
}

// Each rule has one message, the same whichever way the policy was given.
func TestBuildRefuses(t *testing.T) {
	ok := func() policy.Spec {
		return policy.Spec{Gate: []policy.Rules{{Source: "--allow", Rules: rules(t, "10.0.0.0/8")}},
			Routes: []policy.RouteSpec{route("pg", "--route")}, DialTimeout: time.Second}
	}
	for _, tc := range []struct {
		name   string
		change func(*policy.Spec)
		want   string
	}{
		{"no gate", func(s *policy.Spec) { s.Gate = nil }, "no network allow-list"},
		{"no route", func(s *policy.Spec) { s.Routes = nil }, "no route: clients would have nowhere to go"},
		{"duplicate", func(s *policy.Spec) { s.Routes = append(s.Routes, route("pg", "p.yaml:9")) },
			`p.yaml:9: route "pg" is defined twice (first at --route)`},
		{"default names no route", func(s *policy.Spec) { s.DefaultRoute, s.DefaultSource = "web", "--default-route" },
			`--default-route: default route "web" names no route (routes: pg)`},
		{"no identities", func(s *policy.Spec) { s.Routes[0].Identities = nil }, `--route: route "pg" admits no identity`},
		{"bad name", func(s *policy.Spec) { s.Routes[0].Name = "" }, `--route: route ""`},
		{"bad networks", func(s *policy.Spec) { s.Routes[0].Networks = rules(t, "10.0.0.0/8,!10.0.0.0/8") }, `route "pg" networks`},
		{"no dial timeout", func(s *policy.Spec) { s.DialTimeout = 0 }, "dial timeout 0s: must be greater than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.change(&s)
			p, err := policy.Build(s)
			if err == nil || p != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build = %v, %v; want an error with %q", p, err, tc.want)
			}
		})
	}
	// Every problem at once.
	_, err := policy.Build(policy.Spec{})
	if !errors.Is(err, policy.ErrNoGate) || !errors.Is(err, policy.ErrNoRoute) {
		t.Fatalf("the empty spec: %v; want both ErrNoGate and ErrNoRoute", err)
	}
}

func TestParseProxy(t *testing.T) {
	for s, want := range map[string]policy.Proxy{"": policy.ProxyNone, "none": policy.ProxyNone, "v1": policy.ProxyV1,
		"v2": policy.ProxyV2, "v2-full": policy.ProxyV2Full} {
		got, err := policy.ParseProxy(s)
		if err != nil || got != want {
			t.Errorf("ParseProxy(%q) = %v, %v; want %v", s, got, err, want)
		}
		if s != "" && got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
	}
	if _, err := policy.ParseProxy("v3"); err == nil || !strings.Contains(err.Error(), "want none, v1, v2 or v2-full") {
		t.Errorf("v3: %v", err)
	}
	// A builtin has no backend to send a header to.
	r := route("echo", "--route")
	r.Backend, r.Proxy = policy.BuiltinEcho, policy.ProxyV2
	if _, err := policy.Build(policy.Spec{Gate: []policy.Rules{{Source: "x"}}, Routes: []policy.RouteSpec{r}, DialTimeout: time.Second}); err == nil {
		t.Error("a PROXY header to a builtin was accepted")
	}
}

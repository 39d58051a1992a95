// Package policy is the gateway's admission policy as one immutable
// snapshot: the network gate, the routes (backend, identities admitted,
// source networks, stream cap, dial timeout) and the default route. Build
// is the one place its rules are checked, whether the parts come from
// command-line flags, a YAML file or code.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
)

// Builtin backends served inside the gateway, for demos and load tests.
const (
	BuiltinEcho    = "builtin:echo"    // sends back what it receives
	BuiltinDiscard = "builtin:discard" // reads and drops everything
)

// Spec is a policy as given, before its checks: the parts in the order and
// with the places they were given in, for messages.
type Spec struct {
	// Gate holds the network rules, one entry per place they were given
	// (a flag, a file): the rules of all entries form the gate. At least
	// one entry is needed, even one with no rules (an empty allow file
	// admits nobody, which is a choice; no allow-list at all is not).
	Gate []Rules
	// Routes in definition order: at least one.
	Routes []RouteSpec
	// DefaultRoute is the route of direct-mode clients whose SNI names no
	// route; "" refuses them. DefaultSource says where it was set.
	DefaultRoute, DefaultSource string
	// DialTimeout is the dial timeout of routes without their own; > 0.
	DialTimeout time.Duration
	// Limits are the limits of the identities that no IdentityLimits
	// entry matches (from flags); zero: none.
	Limits Limits
	// IdentityLimits are limits for the identities their patterns match,
	// in order: the first entry that matches an identity is its limits.
	IdentityLimits []IdentityLimits
}

// Limits bound what one client identity (conn.Identity's String, so the
// same for every certificate of the same holder) may hold at once over
// the whole gateway: sessions (mux sessions and direct connections),
// streams open, and stream opens per second. Zero fields set no limit.
type Limits struct {
	MaxSessions int
	MaxStreams  int
	StreamRate  conn.Rate
	// Source says where they were set, for the log: "policy.yaml:14";
	// empty for the flags' (--max-sessions-per-identity and the like).
	Source string
}

// Rule names one limit and where it was set, for the log: "--max-streams-
// per-identity 64" for a flag, "policy.yaml:14: max_streams 64" for a
// policy entry. key is the YAML key (max_sessions, max_streams,
// stream_rate).
func (l Limits) Rule(key string) string {
	var v string
	switch key {
	case "max_sessions":
		v = fmt.Sprint(l.MaxSessions)
	case "max_streams":
		v = fmt.Sprint(l.MaxStreams)
	case "stream_rate":
		v = l.StreamRate.String()
	}
	if l.Source == "" {
		flag := "--" + strings.ReplaceAll(key, "_", "-") + "-per-identity"
		return flag + " " + v
	}
	return l.Source + ": " + key + " " + v
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool {
	return l.MaxSessions == 0 && l.MaxStreams == 0 && l.StreamRate.IsZero()
}

// IdentityLimits are the limits of the identities that match any of
// Identities.
type IdentityLimits struct {
	Identities []conn.Pattern // at least one
	Limits
}

// Rules are network rules and where they come from ("--allow",
// "allow.txt", "policy.yaml").
type Rules struct {
	Source string
	Rules  []acl.Rule
}

// RouteSpec is one route as given.
type RouteSpec struct {
	Name       string
	Backend    string         // HOST:PORT, unix:PATH, BuiltinEcho or BuiltinDiscard
	Identities []conn.Pattern // at least one
	Networks   []acl.Rule     // nil: any address that passed the gate
	MaxStreams int            // 0: no cap
	// DialTimeout of the route; 0 means Spec.DialTimeout.
	DialTimeout time.Duration
	// Proxy is the PROXY protocol header sent to the backend first.
	Proxy Proxy
	// Source is where the route was defined, for messages and the audit
	// log: "--route", "policy.yaml:12".
	Source string
}

// Policy is a checked, immutable snapshot. Its methods are safe for
// concurrent use.
type Policy struct {
	gate         *acl.Set
	gateSource   string
	routes       map[string]*Route
	order        []*Route
	defaultRoute string
	limits       Limits
	idLimits     []IdentityLimits
}

// Route is a route of a Policy. Its fields must not be changed.
type Route struct {
	Name        string
	Backend     string
	Identities  []conn.Pattern
	Networks    *acl.Set // nil: any address that passed the gate
	MaxStreams  int
	DialTimeout time.Duration // > 0
	Proxy       Proxy
	Source      string
}

// Proxy says what PROXY protocol header a route's backend gets before the
// client's bytes.
type Proxy int

const (
	ProxyNone   Proxy = iota // none
	ProxyV2                  // version 2: the client's address, TLS version, route, identity and fingerprint
	ProxyV2Full              // the same and the client certificate (DER)
	ProxyV1                  // version 1 (text): the client's address only, for backends that read no TLVs
)

// ParseProxy reads the text form of a Proxy: "", "none", "v1", "v2" or
// "v2-full".
func ParseProxy(s string) (Proxy, error) {
	switch s {
	case "", "none":
		return ProxyNone, nil
	case "v2":
		return ProxyV2, nil
	case "v2-full":
		return ProxyV2Full, nil
	case "v1":
		return ProxyV1, nil
	}
	return ProxyNone, fmt.Errorf("unknown PROXY protocol %q: want none, v1, v2 or v2-full", s)
}

func (p Proxy) String() string {
	switch p {
	case ProxyV2:
		return "v2"
	case ProxyV2Full:
		return "v2-full"
	case ProxyV1:
		return "v1"
	}
	return "none"
}

// IsBuiltin reports whether the route is served inside the gateway.
func (r *Route) IsBuiltin() bool { return r.Backend == BuiltinEcho || r.Backend == BuiltinDiscard }

// ErrNoGate is Build's error for a spec without any network allow-list.
var ErrNoGate = errors.New("no network allow-list: the gateway admits no address by default and will not start without one")

// ErrNoRoute is Build's error for a spec without any route.
var ErrNoRoute = errors.New("no route: clients would have nowhere to go")

// DuplicateRouteError is Build's error for a route name defined twice.
type DuplicateRouteError struct{ Name, Source, First string }

// Problem says what is wrong, without where: for callers that say where
// in their own words (a flag, a line).
func (e *DuplicateRouteError) Problem() string {
	return fmt.Sprintf("route %q is defined twice (first at %s)", e.Name, e.First)
}

func (e *DuplicateRouteError) Error() string { return e.Source + ": " + e.Problem() }

// DefaultRouteError is Build's error for a default route that names no
// route; Routes are the routes there are.
type DefaultRouteError struct {
	Name, Source string
	Routes       []string
}

// Problem says what is wrong, without where.
func (e *DefaultRouteError) Problem() string {
	return fmt.Sprintf("default route %q names no route", e.Name)
}

func (e *DefaultRouteError) Error() string {
	return fmt.Sprintf("%s: %s (routes: %s)", e.Source, e.Problem(), strings.Join(e.Routes, ", "))
}

// NoIdentityError is Build's error for a route that admits no identity.
type NoIdentityError struct{ Name, Source string }

// Problem says what is wrong, without where.
func (e *NoIdentityError) Problem() string {
	return fmt.Sprintf("route %q admits no identity: give it at least one identity pattern", e.Name)
}

func (e *NoIdentityError) Error() string { return e.Source + ": " + e.Problem() }

// Build checks s and returns its snapshot, or every problem found (joined
// with errors.Join), each naming where the part was given. Checked here and
// only here: that there is a network allow-list and a route, each route's
// name, identities and networks, route names defined twice, and that the
// default route names a route.
func Build(s Spec) (*Policy, error) {
	var errs []error
	if len(s.Gate) == 0 {
		errs = append(errs, ErrNoGate)
	}
	named := make([]Named, len(s.Routes))
	for i, r := range s.Routes {
		named[i] = Named{Name: r.Name, Source: r.Source}
	}
	errs = append(errs, CheckRoutes(named, s.DefaultRoute, s.DefaultSource)...)
	if s.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("dial timeout %v: must be greater than 0", s.DialTimeout))
	}
	p := &Policy{routes: make(map[string]*Route, len(s.Routes)), defaultRoute: s.DefaultRoute}
	var rules []acl.Rule
	var sources []string
	for _, g := range s.Gate {
		for _, r := range g.Rules {
			if r.Source == "" {
				r.Source = g.Source // so that a decision names where its rule was written
			}
			rules = append(rules, r)
		}
		sources = append(sources, g.Source)
	}
	gate, err := acl.New(rules)
	if err != nil {
		errs = append(errs, fmt.Errorf("network rules (%s): %w", strings.Join(sources, ", "), err))
	}
	p.gate, p.gateSource = gate, strings.Join(sources, ", ")
	for _, rs := range s.Routes {
		r, err := buildRoute(rs, s.DialTimeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p.routes[r.Name] == nil { // a second one is CheckRoutes' to report
			p.routes[r.Name] = r
			p.order = append(p.order, r)
		}
	}
	p.limits = s.Limits
	errs = append(errs, checkLimits(s.Limits)...)
	for _, l := range s.IdentityLimits {
		if len(l.Identities) == 0 {
			errs = append(errs, fmt.Errorf("%s: identity limits name no identity: give at least one identity pattern", l.Source))
		}
		errs = append(errs, checkLimits(l.Limits)...)
		l.Identities = slices.Clone(l.Identities)
		p.idLimits = append(p.idLimits, l)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func checkLimits(l Limits) []error {
	var errs []error
	if l.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("%s: max sessions %d: must not be negative", l.Source, l.MaxSessions))
	}
	if l.MaxStreams < 0 {
		errs = append(errs, fmt.Errorf("%s: max streams %d: must not be negative", l.Source, l.MaxStreams))
	}
	if l.StreamRate.PerSec < 0 || !l.StreamRate.IsZero() && l.StreamRate.Burst < 1 {
		errs = append(errs, fmt.Errorf("%s: stream rate %v: want a rate >= 0 and a burst >= 1", l.Source, l.StreamRate))
	}
	return errs
}

// Named is a route's name and where it was defined.
type Named struct{ Name, Source string }

// CheckRoutes checks the rules that span the routes: there is one, no name
// is defined twice, and the default route, when set, names one of them.
// Build runs it; a parser that checks each route on its own runs it too,
// so that these rules, and their messages, are stated once.
func CheckRoutes(routes []Named, defaultRoute, defaultSource string) []error {
	if len(routes) == 0 {
		return []error{ErrNoRoute}
	}
	var errs []error
	first := make(map[string]string, len(routes))
	var names []string
	for _, r := range routes {
		if f, dup := first[r.Name]; dup {
			errs = append(errs, &DuplicateRouteError{Name: r.Name, Source: r.Source, First: f})
			continue
		}
		first[r.Name] = r.Source
		names = append(names, r.Name)
	}
	if _, ok := first[defaultRoute]; defaultRoute != "" && !ok {
		errs = append(errs, &DefaultRouteError{Name: defaultRoute, Source: defaultSource, Routes: names})
	}
	return errs
}

func buildRoute(s RouteSpec, dialTimeout time.Duration) (*Route, error) {
	if err := mux.ValidRoute(s.Name); err != nil {
		return nil, fmt.Errorf("%s: route %q: %w", s.Source, s.Name, err)
	}
	if len(s.Identities) == 0 {
		return nil, &NoIdentityError{Name: s.Name, Source: s.Source}
	}
	r := &Route{Name: s.Name, Backend: s.Backend, Identities: slices.Clone(s.Identities), MaxStreams: s.MaxStreams,
		DialTimeout: s.DialTimeout, Proxy: s.Proxy, Source: s.Source}
	if r.Proxy != ProxyNone && r.IsBuiltin() {
		return nil, fmt.Errorf("%s: route %q: a PROXY protocol header is for a backend; %s has none", s.Source, s.Name, s.Backend)
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = dialTimeout
	}
	if s.MaxStreams < 0 {
		return nil, fmt.Errorf("%s: route %q: max streams %d: must not be negative", s.Source, s.Name, s.MaxStreams)
	}
	if s.Networks != nil {
		set, err := acl.New(s.Networks)
		if err != nil {
			return nil, fmt.Errorf("%s: route %q networks: %w", s.Source, s.Name, err)
		}
		r.Networks = set
	}
	return r, nil
}

// Gate returns the network gate's rules.
func (p *Policy) Gate() *acl.Set { return p.gate }

// GateSource says where the gate's rules came from.
func (p *Policy) GateSource() string { return p.gateSource }

// Route returns the route named name, or nil.
func (p *Policy) Route(name string) *Route { return p.routes[name] }

// Routes returns the routes in definition order.
func (p *Policy) Routes() []*Route { return slices.Clone(p.order) }

// DefaultRoute returns the default route's name, or "".
func (p *Policy) DefaultRoute() string { return p.defaultRoute }

// DirectRoute picks the route of a direct-mode connection: the one its SNI
// names, else the default route; "" when neither.
func (p *Policy) DirectRoute(sni string) string {
	if p.routes[sni] != nil {
		return sni
	}
	return p.defaultRoute
}

// LimitsFor returns the limits of an identity: those of the first
// IdentityLimits entry that matches it, else the flags' (Spec.Limits).
func (p *Policy) LimitsFor(id *conn.Identity) Limits {
	for i := range p.idLimits {
		for _, pat := range p.idLimits[i].Identities {
			if pat.Match(id) {
				return p.idLimits[i].Limits
			}
		}
	}
	return p.limits
}

// Static is a source that always returns the same policy.
type Static struct{ P *Policy }

// Load returns s.P.
func (s Static) Load() (*Policy, error) { return s.P, nil }

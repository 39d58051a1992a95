package config

import (
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/policy"
)

// MaxPolicySize is the largest policy file accepted, in bytes (1 MiB).
// Real policies are a few kilobytes; the bound keeps a runaway file (or a
// file named by mistake) from costing memory and time at every reload.
const MaxPolicySize = 1 << 20

// MaxPolicyMaxStreams is the largest max_streams a route may have.
const MaxPolicyMaxStreams = math.MaxInt32

// maxPolicyErrors bounds the problems one ParsePolicy reports; the rest are
// counted in a last line.
const maxPolicyErrors = 50

// policyKeys returns the top-level keys of a policy file, in the order
// Format writes them.
func policyKeys() []string { return []string{"allow", "default_route", "routes", "identity_limits"} }

// limitsKeys returns the keys of an identity_limits entry, in the order
// Format writes them.
func limitsKeys() []string {
	return []string{"identities", "max_sessions", "max_streams", "stream_rate"}
}

// routeKeys returns the keys of a route, in the order Format writes them.
func routeKeys() []string {
	return []string{"backend", "identities", "networks", "max_streams", "dial_timeout", "proxy_protocol"}
}

// Accepted forms, for PolicyError.Want.
const (
	policyWant = `a YAML mapping with "routes:" (and optional "allow:" and "default_route:"), e.g.` +
		` routes: {pg: {backend: "db.internal:5432", identities: ["uri:spiffe://corp/app/*"]}}`
	routesWant = `a mapping from route name to its settings: "pg:" on its own line, then "backend:" and` +
		` "identities:" indented below it`
	routeWant    = `the settings of the route indented below its name: backend: HOST:PORT and identities: [PATTERN, ...]`
	ruleWant     = `an IP address or CIDR prefix, "!" in front to deny, in quotes (YAML reads an unquoted "!" as a tag), e.g. 10.0.0.0/8 or "!10.9.0.0/16"`
	rulesWant    = `a list of rules, one per item, e.g. ["10.0.0.0/8", "!10.9.0.0/16"]; each item ` + ruleWant
	backendWant  = `HOST:PORT with a port from 1 to 65535 (IPv6 in brackets), unix:PATH for a UNIX socket (PATH absolute), builtin:echo or builtin:discard, e.g. db.internal:5432`
	patternsWant = `a list of identity patterns, one per item, e.g. ["uri:spiffe://corp/app/*", "cn:dba"]; forms: ` + conn.PatternForms
	timeoutWant  = `a duration greater than 0 such as 3s, 1m30s or 500ms (units ns, us, ms, s, m, h); leave the key out to use --dial-timeout`
	streamsWant  = `a whole number from 0 to 2147483647, e.g. 200 (0, or no key, sets no cap)`
	limitsWant   = `a list of entries, e.g. [{identities: ["uri:spiffe://corp/ci/*"], max_sessions: 4, max_streams: 64, stream_rate: "20:100"}]; the first entry that matches an identity is its limits (0 or "off": none), identities no entry matches get the --*-per-identity flags`
	proxyWant    = `none, v2 (the client's address, TLS version, route and identity), v2-full (also the client certificate) or v1 (the address only, as text)`
)

// Policy is a parsed policy file: the network gate (optionally), the routes
// with who may use them and from where, and the default route. The gateway
// loads one with [Gateway.LoadPolicy]; see the package documentation for
// the file format and how it combines with the flags.
//
// A Policy returned by LoadPolicy or ParsePolicy is valid and complete; it
// is a plain value that must not be modified while other goroutines read it.
type Policy struct {
	// File is the name the policy was loaded from, for messages; empty if
	// none was given to ParsePolicy.
	File string
	// Allow holds the rules of "allow:", the network gate, in file order,
	// each with Line set to its line in the file. Nil means the file has
	// no "allow:" and the gate comes from --allow and --allow-file; an
	// "allow:" with no rules is refused by ParsePolicy.
	Allow []acl.Rule
	// DefaultRoute is the route of direct-mode clients whose SNI names no
	// route; empty means such clients are refused. When set, it names one
	// of Routes.
	DefaultRoute string
	// DefaultLine is the line of default_route in the file; 0 when none.
	DefaultLine int
	// Routes are the routes in file order, at least one, with distinct
	// names.
	Routes []PolicyRoute
	// IdentityLimits are the entries of "identity_limits:", in file
	// order: the first that matches an identity sets its limits.
	IdentityLimits []PolicyLimits
}

// PolicyLimits is one entry of "identity_limits:": the limits of the
// identities its patterns match (policy.Limits); zero fields set none.
type PolicyLimits struct {
	Identities  []conn.Pattern
	MaxSessions int
	MaxStreams  int
	StreamRate  conn.Rate
	Line        int // of the entry in the file
}

// PolicyRoute is one route of a policy: its backend, the identities that
// may use it, and optionally the source networks it admits, a cap on its
// streams and its own dial timeout.
type PolicyRoute struct {
	// Name is what clients ask for; it satisfies mux.ValidRoute.
	Name string
	// Backend is HOST:PORT, BuiltinEcho or BuiltinDiscard, checked like
	// --route.
	Backend string
	// Identities are the patterns of the client identities admitted on the
	// route: at least one; an identity matching any of them is admitted.
	Identities []conn.Pattern
	// Networks are acl rules over the client's source address (most
	// specific wins, no match refuses), with Line set to their line in the
	// file. Nil means any address that passed the network gate.
	Networks []acl.Rule
	// MaxStreams caps the streams open at once on this route, over all
	// sessions of the gateway; 0 means no cap.
	MaxStreams int
	// DialTimeout bounds the dial to the backend; 0 means the gateway's
	// --dial-timeout.
	DialTimeout time.Duration
	// Proxy is the PROXY protocol header the backend gets first
	// ("proxy_protocol: v2" or "v2-full"); none by default.
	Proxy policy.Proxy
	// Line is the line of the route's name in the file; 0 for a route built
	// in code.
	Line int
}

// LoadPolicy reads the policy file at path and parses it with
// [ParsePolicy]. Errors name the file: a file that cannot be read, or is
// larger than [MaxPolicySize], is one [*PolicyError] with Line 0 (wrapping
// the I/O error, so errors.Is(err, fs.ErrNotExist) works); a file with
// problems yields all of them as ParsePolicy does. Any error means no
// Policy: nothing is half-loaded. It only reads the file; call it again to
// reload.
func LoadPolicy(path string) (*Policy, error) {
	fail := func(msg string, err error) (*Policy, error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in File already
		}
		return nil, &PolicyError{File: path, Msg: msg, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return fail("cannot read the policy file", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return fail("cannot read the policy file", errors.New("it is a directory"))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return fail("cannot read the policy file", err)
	}
	return ParsePolicy(data, path)
}

// ParsePolicy parses the YAML text of a policy file; file names it in
// errors and in Policy.File (it may be empty). The format is described in
// the package documentation.
//
// Everything is checked, and every problem reported, not just the first:
// unknown keys at every level, values of the wrong type, routes without a
// backend or without identities, bad route names, backends, identity
// patterns, network rules, durations and numbers, duplicate route names
// and duplicate keys, a default_route that names no route, an empty file
// or no routes, the same prefix both allowed and denied. Each problem is a
// [*PolicyError] naming the line; they are joined with errors.Join in line
// order (at most 50, then a count of the rest). Any problem means a nil
// Policy.
//
// Only plain YAML is accepted: one document, UTF-8, at most
// [MaxPolicySize] bytes, without anchors and aliases (&x, *x, "<<: *x"),
// which also rules out the alias-expansion attacks that YAML is known for,
// and without tags (!!str, !foo). A "!" that starts a deny rule must be
// quoted ("!10.9.0.0/16"): unquoted, YAML reads it as a tag, which
// ParsePolicy detects and refuses, since it would otherwise turn a deny
// rule into something else.
//
// ParsePolicy is safe for concurrent use.
func ParsePolicy(data []byte, file string) (*Policy, error) {
	pp := &policyParser{file: file, src: data, skip: map[*yaml.Node]bool{}}
	p := pp.parse()
	if len(pp.errs) > 0 {
		return nil, pp.joined()
	}
	p.File = file
	return p, nil
}

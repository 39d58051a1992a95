package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
)

// policyParser collects the problems of one policy file.
type policyParser struct {
	file  string
	src   []byte
	lines []int // byte offset of each line's start, built on first use
	// skip holds nodes already reported (aliases, tagged nodes), so that
	// their content is not reported again as being of the wrong type.
	skip map[*yaml.Node]bool
	errs []*PolicyError
}

func (pp *policyParser) add(line int, msg string, cause error, want string) {
	pp.errs = append(pp.errs, &PolicyError{File: pp.file, Line: line, Msg: msg, Err: cause, Want: want})
}

// joined returns the problems in line order, at most maxPolicyErrors of
// them, joined.
func (pp *policyParser) joined() error {
	slices.SortStableFunc(pp.errs, func(a, b *PolicyError) int { return a.Line - b.Line })
	n := min(len(pp.errs), maxPolicyErrors)
	out := make([]error, 0, n+1)
	for _, e := range pp.errs[:n] {
		out = append(out, e)
	}
	if rest := len(pp.errs) - n; rest > 0 {
		out = append(out, &PolicyError{File: pp.file,
			Msg: fmt.Sprintf("%d more problems not shown; fix the ones above first", rest)})
	}
	return errors.Join(out...)
}

func (pp *policyParser) parse() *Policy {
	if len(pp.src) > MaxPolicySize {
		pp.add(0, fmt.Sprintf("too large: more than %d bytes", MaxPolicySize), nil,
			"a policy file of at most 1 MiB")
		return nil
	}
	if !utf8.Valid(pp.src) {
		pp.add(pp.lineOf(firstInvalidUTF8(pp.src)), "not UTF-8 text", nil, "a YAML file in UTF-8")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(pp.src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			pp.add(0, "empty: the file holds no policy", nil, policyWant)
		} else {
			pp.add(0, "not valid YAML", err, "")
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		pp.add(next.Line, "a second YAML document starts here", nil, "one document per policy file")
	case !errors.Is(err, io.EOF):
		pp.add(0, "not valid YAML", err, "")
		return nil
	}
	pp.checkTree(&doc)
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		pp.add(doc.Line, "not a YAML document", nil, policyWant)
		return nil
	}
	root := doc.Content[0]
	if pp.skip[root] {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		if isNull(root) {
			pp.add(0, "empty: the file holds no policy", nil, policyWant)
		} else {
			pp.add(root.Line, describe(root)+" where a mapping of allow, default_route and routes is expected", nil, policyWant)
		}
		return nil
	}

	p := new(Policy)
	fields := pp.fields(root, "", policyKeys())
	if f, ok := fields["allow"]; ok {
		p.Allow = pp.rules(f, "allow", [2]string{"it would admit no address",
			`the networks to admit, or no "allow:" key to take the network gate from --allow or --allow-file`})
	}
	routesLine := 0
	if f, ok := fields["routes"]; ok {
		routesLine = f.key.Line
		p.Routes = pp.routes(f)
	}
	if f, ok := fields["default_route"]; ok {
		if s, ok := pp.scalar(f.val, "default_route", "the name of one of the routes"); ok {
			p.DefaultRoute, p.DefaultLine = s, f.val.Line
			if err := mux.ValidRoute(s); err != nil {
				pp.add(f.val.Line, "default_route "+settings.Quote(s), err, "")
			}
		}
	}
	if f, ok := fields["identity_limits"]; ok {
		p.IdentityLimits = pp.identityLimits(f)
	}
	pp.crossCheck(p, routesLine)
	return p
}

// identityLimits parses "identity_limits:", a list of entries with
// "identities:" and at least one of max_sessions, max_streams and
// stream_rate.
func (pp *policyParser) identityLimits(f field) []PolicyLimits {
	items, ok := pp.list(f, "identity_limits", limitsWant, [2]string{"it sets no limit",
		`entries with identities: and max_sessions, max_streams or stream_rate, or no "identity_limits:" key`})
	if !ok {
		return nil
	}
	var out []PolicyLimits
	for i, it := range items {
		ctx := fmt.Sprintf("identity_limits entry %d", i+1)
		if pp.skip[it] {
			continue
		}
		if it.Kind != yaml.MappingNode {
			pp.add(it.Line, ctx+": "+describe(it)+" where a mapping is expected", nil, limitsWant)
			continue
		}
		fields := pp.fields(it, ctx, limitsKeys())
		l := PolicyLimits{Line: it.Line, Identities: pp.patterns(fields, it, ctx, "it would apply to nobody")}
		if f, ok := fields["max_sessions"]; ok {
			l.MaxSessions = pp.count(f, ctx+": max_sessions")
		}
		if f, ok := fields["max_streams"]; ok {
			l.MaxStreams = pp.count(f, ctx+": max_streams")
		}
		if f, ok := fields["stream_rate"]; ok {
			if s, ok := pp.scalar(f.val, ctx+": stream_rate", conn.RateForms); ok {
				r, err := conn.ParseRate(s)
				if err != nil {
					pp.add(f.val.Line, ctx+": stream_rate "+settings.Quote(s), err, conn.RateForms)
				}
				l.StreamRate = r
			}
		}
		_, a := fields["max_sessions"]
		_, b := fields["max_streams"]
		_, c := fields["stream_rate"]
		if !a && !b && !c {
			pp.add(it.Line, ctx+": no limit: give max_sessions, max_streams or stream_rate", nil, limitsWant)
		}
		out = append(out, l)
	}
	return out
}

// crossCheck runs the rules that span the routes (there is one, no name
// twice, the default route names one) through policy.CheckRoutes, the one
// place they are checked, and reports what it finds on the lines
// concerned. The network gate is not judged here: it may come from the
// flags.
func (pp *policyParser) crossCheck(p *Policy, routesLine int) {
	named := make([]policy.Named, len(p.Routes))
	lines := map[string]int{}
	for i, r := range p.Routes {
		src := fmt.Sprintf("%s:%d", pp.file, r.Line)
		lines[src] = r.Line
		named[i] = policy.Named{Name: r.Name, Source: src}
	}
	def := p.DefaultRoute
	if mux.ValidRoute(def) != nil {
		def = "" // reported by the parser already
	}
	for _, err := range policy.CheckRoutes(named, def, pp.file) {
		var dup *policy.DuplicateRouteError
		var dr *policy.DefaultRouteError
		switch {
		case errors.Is(err, policy.ErrNoRoute):
			if len(pp.errs) == 0 || routesLine == 0 { // not when the routes did not parse
				pp.add(routesLine, err.Error(), nil, routesWant)
			}
		case errors.As(err, &dup):
			pp.add(lines[dup.Source], dup.Problem(), nil, "one entry per route name")
		case errors.As(err, &dr):
			pp.add(p.DefaultLine, dr.Problem(), nil, "the name of one of the routes: "+settings.OrList(dr.Routes))
		}
	}
}

// field is a key of a mapping and its value.
type field struct{ key, val *yaml.Node }

// fields returns the entries of mapping m by key. It reports keys that are
// not names, not in known, or given twice (the first one is kept). ctx
// says where m is ("route \"pg\""), or is empty at the top.
func (pp *policyParser) fields(m *yaml.Node, ctx string, known []string) map[string]field {
	out := make(map[string]field, len(known))
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		name, ok := pp.key(k, ctx)
		if !ok {
			continue
		}
		if !slices.Contains(known, name) {
			pp.add(k.Line, prefix(ctx)+fmt.Sprintf("unknown key %s (known: %s)", settings.Quote(name), strings.Join(known, ", ")), nil, "")
			continue
		}
		if prev, dup := out[name]; dup {
			pp.add(k.Line, prefix(ctx)+fmt.Sprintf("key %s is given twice: here and on line %d", settings.Quote(name), prev.key.Line),
				nil, "each key once")
			continue
		}
		out[name] = field{key: k, val: v}
	}
	return out
}

// key returns the text of a mapping key, which must be a scalar.
func (pp *policyParser) key(k *yaml.Node, ctx string) (string, bool) {
	if pp.skip[k] {
		return "", false
	}
	if k.Kind != yaml.ScalarNode {
		pp.add(k.Line, prefix(ctx)+"a key must be a name, not "+describe(k), nil, "")
		return "", false
	}
	return k.Value, true
}

// scalar returns the text of a value that must be a single value (not a
// list or mapping, not empty). what names it in errors.
func (pp *policyParser) scalar(n *yaml.Node, what, want string) (string, bool) {
	if pp.skip[n] {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		pp.add(n.Line, what+": "+describe(n)+" where a single value is expected", nil, want)
		return "", false
	}
	if isNull(n) {
		pp.add(n.Line, what+": no value", nil, want)
		return "", false
	}
	return n.Value, true
}

// list returns the items of a value that must be a non-empty list. An
// empty list is reported with why it is refused and what to write instead.
func (pp *policyParser) list(f field, what, want string, empty [2]string) ([]*yaml.Node, bool) {
	v := f.val
	if pp.skip[v] {
		return nil, false
	}
	switch {
	case v.Kind == yaml.SequenceNode && len(v.Content) > 0:
		return v.Content, true
	case v.Kind == yaml.SequenceNode || isNull(v):
		pp.add(f.key.Line, what+": empty list: "+empty[0], nil, empty[1])
	default:
		pp.add(v.Line, what+": "+describe(v)+" where a list is expected", nil, want)
	}
	return nil, false
}

// rules parses a list of network rules and checks that they form a valid
// acl set. It returns nil on any problem.
func (pp *policyParser) rules(f field, what string, empty [2]string) []acl.Rule {
	items, ok := pp.list(f, what, rulesWant, empty)
	if !ok {
		return nil
	}
	out := make([]acl.Rule, 0, len(items))
	bad := false
	for _, it := range items {
		s, ok := pp.scalar(it, what, ruleWant)
		if !ok {
			bad = true
			continue
		}
		r, err := acl.ParseRule(s)
		if err != nil {
			want := "" // the acl error says what to write instead
			if strings.Contains(s, ",") {
				want = "one rule per list item, e.g. [\"10.0.0.0/8\", \"!10.9.0.0/16\"]"
			}
			pp.add(it.Line, what, err, want)
			bad = true
			continue
		}
		r.Line = it.Line
		out = append(out, r)
	}
	// Conflicts among the rules that parsed are reported even when others
	// did not.
	if _, err := acl.New(out); err != nil {
		line := f.key.Line
		var ce *acl.ConflictError
		if errors.As(err, &ce) {
			line = ce.Second.Line
		}
		pp.add(line, what, err, "")
		return nil
	}
	if bad {
		return nil
	}
	return out
}

// routes parses the routes mapping. A name given twice is kept twice, for
// crossCheck to report.
func (pp *policyParser) routes(f field) []PolicyRoute {
	v := f.val
	if pp.skip[v] {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		if !isNull(v) { // no routes at all: crossCheck says so
			pp.add(v.Line, "routes: "+describe(v)+" where a mapping of route names is expected", nil, routesWant)
		}
		return nil
	}
	var out []PolicyRoute
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, body := v.Content[i], v.Content[i+1]
		name, ok := pp.key(k, "routes")
		if !ok {
			continue
		}
		ctx := "route " + settings.Quote(name)
		if err := mux.ValidRoute(name); err != nil {
			pp.add(k.Line, "routes: route name "+settings.Quote(name), err, "")
		}
		if r, ok := pp.route(name, ctx, k, body); ok {
			out = append(out, r)
		}
	}
	return out
}

// route parses the settings of one route.
func (pp *policyParser) route(name, ctx string, k, v *yaml.Node) (PolicyRoute, bool) {
	r := PolicyRoute{Name: name, Line: k.Line}
	if pp.skip[v] {
		return r, false
	}
	if v.Kind != yaml.MappingNode {
		if isNull(v) {
			pp.add(k.Line, ctx+": no backend and no identities", nil, routeWant)
		} else {
			pp.add(v.Line, ctx+": "+describe(v)+" where a mapping of backend, identities, ... is expected", nil, routeWant)
		}
		return r, false
	}
	fields := pp.fields(v, ctx, routeKeys())

	if f, ok := fields["backend"]; !ok {
		pp.add(k.Line, ctx+": no \"backend:\"", nil, "backend: "+backendWant)
	} else if s, ok := pp.scalar(f.val, ctx+": backend", backendWant); ok {
		if err := checkBackend(s); err != nil {
			want := backendWant
			if strings.HasPrefix(s, "builtin:") {
				want = "" // the error lists the builtins
			}
			pp.add(f.val.Line, ctx+": backend "+settings.Quote(s), err, want)
		}
		r.Backend = s
	}

	r.Identities = pp.patterns(fields, k, ctx, "nobody could use the route")

	if f, ok := fields["networks"]; ok {
		r.Networks = pp.rules(f, ctx+": networks", [2]string{"it would refuse every address",
			`the networks to admit, or no "networks:" key to admit any address that passed the network gate`})
	}

	if f, ok := fields["max_streams"]; ok {
		r.MaxStreams = pp.count(f, ctx+": max_streams")
	}

	if f, ok := fields["proxy_protocol"]; ok {
		what := ctx + ": proxy_protocol"
		if s, ok := pp.scalar(f.val, what, proxyWant); ok {
			if p, err := policy.ParseProxy(s); err != nil {
				pp.add(f.val.Line, what, err, proxyWant)
			} else if p != policy.ProxyNone && (r.Backend == BuiltinEcho || r.Backend == BuiltinDiscard) {
				pp.add(f.val.Line, what+": a builtin backend has nothing to send a header to", nil, "proxy_protocol on a route with a HOST:PORT backend")
			} else {
				r.Proxy = p
			}
		}
	}

	if f, ok := fields["dial_timeout"]; ok {
		what := ctx + ": dial_timeout"
		if s, ok := pp.scalar(f.val, what, timeoutWant); ok {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				pp.add(f.val.Line, what+": not a duration", err, timeoutWant)
			case d <= 0:
				pp.add(f.val.Line, what+": must be greater than 0, got "+s, nil, timeoutWant)
			default:
				r.DialTimeout = d
			}
		}
	}
	return r, true
}

// patterns parses the "identities:" of a mapping (k its key node, for
// the line of a missing one): a non-empty list of identity patterns. why
// says what an empty one would mean.
func (pp *policyParser) patterns(fields map[string]field, k *yaml.Node, ctx, why string) []conn.Pattern {
	f, ok := fields["identities"]
	if !ok {
		pp.add(k.Line, ctx+": no \"identities:\": "+why, nil, "identities: "+patternsWant)
		return nil
	}
	items, ok := pp.list(f, ctx+": identities", patternsWant, [2]string{why,
		`at least one pattern (["any"] admits every certificate that chains to --ca)`})
	if !ok {
		return nil
	}
	var out []conn.Pattern
	for _, it := range items {
		s, ok := pp.scalar(it, ctx+": identities", patternsWant)
		if !ok {
			continue
		}
		p, err := conn.ParsePattern(s)
		if err != nil {
			pp.add(it.Line, ctx+": identities", err, "")
			continue
		}
		out = append(out, p)
	}
	return out
}

// count parses a whole number from 0 to MaxPolicyMaxStreams (0 sets no
// cap); what names it.
func (pp *policyParser) count(f field, what string) int {
	s, ok := pp.scalar(f.val, what, streamsWant)
	if !ok {
		return 0
	}
	var n int64
	switch {
	case f.val.Tag != "!!int" || f.val.Decode(&n) != nil:
		pp.add(f.val.Line, what+": not a whole number: "+settings.Quote(s), nil, streamsWant)
	case n < 0 || n > MaxPolicyMaxStreams:
		pp.add(f.val.Line, what+": out of range: "+s, nil, streamsWant)
	default:
		return int(n)
	}
	return 0
}

// checkTree reports every anchor, alias and tag in the document, and marks
// aliases and tagged nodes so the structure checks skip them. It walks the
// tree as parsed, without following aliases, so its cost is bounded by the
// size of the file.
func (pp *policyParser) checkTree(doc *yaml.Node) {
	const noAnchors = "each value written out in full (anchors and aliases are not supported)"
	stack := []*yaml.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil {
			continue
		}
		if n.Kind == yaml.AliasNode {
			pp.add(n.Line, "alias *"+n.Value+": not supported", nil, noAnchors)
			pp.skip[n] = true
			continue
		}
		if n.Anchor != "" {
			pp.add(n.Line, "anchor &"+n.Anchor+": not supported", nil, noAnchors)
		}
		if n.Kind != yaml.DocumentNode && (n.Style&yaml.TaggedStyle != 0 || pp.startsWithBang(n)) {
			pp.reportTag(n)
			pp.skip[n] = true
			continue
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
}

// reportTag reports a node written with a YAML tag. A tag that is really
// an unquoted deny rule ("- !10.9.0.0/16", or "- ! 10.9.0.0/16", which YAML
// reads as the allow rule 10.9.0.0/16) gets a message of its own.
func (pp *policyParser) reportTag(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		text := "!" + n.Value // a bare "!": the tag is gone from the node
		if n.Style&yaml.TaggedStyle != 0 {
			text = strings.TrimSpace(n.Tag + " " + n.Value)
		}
		if strings.HasPrefix(text, "!") && !strings.HasPrefix(text, "!!") {
			if r, err := acl.ParseRule(text); err == nil {
				pp.add(n.Line, fmt.Sprintf("%s: an unquoted \"!\" starts a YAML tag, so this deny rule would be read as something else",
					settings.Quote(text)), nil, fmt.Sprintf("the rule in quotes: %q", r.String()))
				return
			}
		}
	}
	tag := n.Tag
	if n.Style&yaml.TaggedStyle == 0 {
		tag = "!"
	}
	pp.add(n.Line, fmt.Sprintf("YAML tag %s: tags are not supported", settings.Quote(tag)), nil,
		"plain values without tags; put values that start with \"!\" in quotes")
}

// startsWithBang reports whether the source text of n starts with "!": a
// non-specific tag ("! 10.9.0.0/16"), which the YAML parser drops without a
// trace in the node. Plain scalars cannot start with "!", quoted ones start
// with the quote.
func (pp *policyParser) startsWithBang(n *yaml.Node) bool {
	off, ok := pp.offset(n.Line, n.Column)
	return ok && off < len(pp.src) && pp.src[off] == '!'
}

// isNull reports whether n is an empty value ("", "~", "null").
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// describe names what n is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return settings.Quote(n.Value)
	}
	return "something else"
}

// prefix returns "ctx: ", or "" for an empty ctx.
func prefix(ctx string) string {
	if ctx == "" {
		return ""
	}
	return ctx + ": "
}

package config

import (
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/policy"

	"bytes"
	"fmt"

	yaml "go.yaml.in/yaml/v3"

	"github.com/portcullis-gw/portcullis/acl"
)

// Format writes p as a policy file: the keys in a fixed order (allow,
// default_route, routes; within a route backend, identities, networks,
// max_streams, dial_timeout), optional keys left out when zero, rules and
// patterns in their canonical text, quoted where YAML needs it. For a valid
// p (as returned by ParsePolicy), ParsePolicy reads the text back to an
// equal Policy, lines and File aside. Format does not validate p; it fails
// only if the YAML encoder does. p must not be nil.
func (p *Policy) Format() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p.node()); err != nil {
		return nil, fmt.Errorf("formatting the policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("formatting the policy: %w", err)
	}
	return b.Bytes(), nil
}

// MarshalYAML implements yaml.Marshaler (go.yaml.in/yaml/v3) with the
// document that Format writes.
func (p *Policy) MarshalYAML() (any, error) { return p.node(), nil }

// node builds the YAML tree of p.
func (p *Policy) node() *yaml.Node {
	root := mapNode()
	if p.Allow != nil {
		addPair(root, "allow", rulesNode(p.Allow))
	}
	if p.DefaultRoute != "" {
		addPair(root, "default_route", strNode(p.DefaultRoute))
	}
	routes := mapNode()
	for _, r := range p.Routes {
		rn := mapNode()
		addPair(rn, "backend", strNode(r.Backend))
		addPair(rn, "identities", patternsNode(r.Identities))
		if r.Networks != nil {
			addPair(rn, "networks", rulesNode(r.Networks))
		}
		if r.MaxStreams != 0 {
			addPair(rn, "max_streams", intNode(r.MaxStreams))
		}
		if r.DialTimeout != 0 {
			addPair(rn, "dial_timeout", strNode(r.DialTimeout.String()))
		}
		if r.Proxy != policy.ProxyNone {
			addPair(rn, "proxy_protocol", strNode(r.Proxy.String()))
		}
		addPair(routes, r.Name, rn)
	}
	addPair(root, "routes", routes)
	if len(p.IdentityLimits) > 0 {
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, l := range p.IdentityLimits {
			ln := mapNode()
			addPair(ln, "identities", patternsNode(l.Identities))
			if l.MaxSessions != 0 {
				addPair(ln, "max_sessions", intNode(l.MaxSessions))
			}
			if l.MaxStreams != 0 {
				addPair(ln, "max_streams", intNode(l.MaxStreams))
			}
			if !l.StreamRate.IsZero() || l.MaxSessions == 0 && l.MaxStreams == 0 {
				addPair(ln, "stream_rate", strNode(l.StreamRate.String()))
			}
			list.Content = append(list.Content, ln)
		}
		addPair(root, "identity_limits", list)
	}
	return root
}

func patternsNode(ps []conn.Pattern) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, p := range ps {
		n.Content = append(n.Content, strNode(p.String()))
	}
	return n
}

func intNode(v int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(v)}
}

func mapNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func addPair(m *yaml.Node, key string, v *yaml.Node) { m.Content = append(m.Content, strNode(key), v) }

func rulesNode(rules []acl.Rule) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, r := range rules {
		n.Content = append(n.Content, strNode(r.String()))
	}
	return n
}

package gateway

import (
	"net/netip"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
)

// verdict is the outcome of admitting one stream (or one direct-mode
// connection): the route, or a refusal with its status, and for the audit
// log the rule that decided.
type verdict struct {
	name   string        // the route asked for
	route  *policy.Route // nil when no such route
	status mux.Status
	reason string // for the peer: short, no internal detail
	rule   string // for the log and explain: which rule decided
}

// refused returns a refusal of the route asked for by name.
func refused(name string, status mux.Status, reason, rule string) verdict {
	return verdict{name: name, status: status, reason: reason, rule: rule}
}

// authorize decides whether identity id, connecting from addr, may use the
// route named name: the identity must match one of the route's patterns and
// the address must pass the route's network rules, if it has any. It is a
// pure function of the policy and its inputs.
func authorize(pol *policy.Policy, id *conn.Identity, name string, addr netip.Addr) verdict {
	r := pol.Route(name)
	if r == nil {
		return refused(name, mux.StatusUnknownRoute, "no route named "+quote(name), "no such route")
	}
	matched := ""
	for _, p := range r.Identities {
		if p.Match(id) {
			matched = p.String()
			break
		}
	}
	if matched == "" {
		return verdict{name: name, route: r, status: mux.StatusForbidden,
			reason: "identity " + id.String() + " is not allowed on route " + quote(name),
			rule:   "no identity pattern of the route matches (" + r.Source + ")"}
	}
	if r.Networks != nil {
		if d := r.Networks.Decide(addr); !d.Allowed {
			return verdict{name: name, route: r, status: mux.StatusForbidden,
				reason: "source address " + addr.String() + " is not allowed on route " + quote(name),
				rule:   "route networks: " + d.String() + " (" + r.Source + ")"}
		}
	}
	return verdict{name: name, route: r, status: mux.StatusOK, rule: "identity " + matched + " (" + r.Source + ")"}
}

// authorizeDirect is authorize for a direct-mode connection: the route is
// the one its SNI names, else the default route.
func authorizeDirect(pol *policy.Policy, id *conn.Identity, sni string, addr netip.Addr) verdict {
	name := pol.DirectRoute(sni)
	if name == "" {
		return refused(sni, mux.StatusUnknownRoute, "no route named "+quote(sni),
			"SNI names no route and there is no default route")
	}
	return authorize(pol, id, name, addr)
}

func quote(s string) string { return "\"" + s + "\"" }

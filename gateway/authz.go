package gateway

import (
	"net/netip"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
)

// verdict is the outcome of authorizing one stream (or one direct-mode
// connection): the route, or a refusal with its status, and for the audit
// log the rule that decided.
type verdict struct {
	route  *route
	status mux.Status
	reason string // for the peer: short, no internal detail
	rule   string // for the log and explain: which rule decided
}

// authorize decides whether identity id, connecting from addr, may use the
// route named name: the identity must match one of the route's patterns and
// the address must pass the route's network rules, if it has any. It is a
// pure function of the snapshot and its inputs.
func (st *state) authorize(id *conn.Identity, name string, addr netip.Addr) verdict {
	r := st.routes[name]
	if r == nil {
		return verdict{status: mux.StatusUnknownRoute, reason: "no route named " + quote(name), rule: "no such route"}
	}
	matched := ""
	for _, p := range r.ids {
		if p.Match(id) {
			matched = p.String()
			break
		}
	}
	if matched == "" {
		return verdict{route: r, status: mux.StatusForbidden,
			reason: "identity " + id.String() + " is not allowed on route " + quote(name),
			rule:   "no identity pattern of the route matches (" + r.source + ")"}
	}
	if r.networks != nil {
		if d := r.networks.Decide(addr); !d.Allowed {
			return verdict{route: r, status: mux.StatusForbidden,
				reason: "source address " + addr.String() + " is not allowed on route " + quote(name),
				rule:   "route networks: " + d.String() + " (" + r.source + ")"}
		}
	}
	return verdict{route: r, status: mux.StatusOK, rule: "identity " + matched + " (" + r.source + ")"}
}

func quote(s string) string { return "\"" + s + "\"" }

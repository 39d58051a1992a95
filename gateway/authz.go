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
	rule   string // for the log: which rule decided
}

// authorize decides whether identity id, connecting from addr, may use the
// route named name. It is a pure function of the snapshot and its inputs.
func (st *state) authorize(id *conn.Identity, name string, addr netip.Addr) verdict {
	r := st.routes[name]
	if r == nil {
		return verdict{status: mux.StatusUnknownRoute, reason: "no route named " + quote(name), rule: "routes"}
	}
	for _, p := range st.allowIDs {
		if p.Match(id) {
			return verdict{route: r, status: mux.StatusOK, rule: "allow-id " + p.String()}
		}
	}
	return verdict{route: r, status: mux.StatusForbidden,
		reason: "identity " + id.String() + " is not allowed on route " + quote(name), rule: "no allow-id matches"}
}

func quote(s string) string { return "\"" + s + "\"" }

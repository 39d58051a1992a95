package gateway

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
)

// Builtin backends served inside the gateway, for demos and load tests.
const (
	BuiltinEcho    = config.BuiltinEcho    // sends back what it receives
	BuiltinDiscard = config.BuiltinDiscard // reads and drops everything
)

// route is one named backend and who may reach it.
type route struct {
	name        string
	backend     string         // HOST:PORT, or a Builtin*
	ids         []conn.Pattern // identities admitted
	networks    *acl.Set       // source addresses admitted; nil: any that passed the gate
	maxStreams  int            // concurrent streams on the route, gateway-wide; 0: no cap
	dialTimeout time.Duration
	source      string // where it was defined, for explanations: "--route" or "policy.yaml:12"
}

// state is one immutable snapshot of everything a reload can change. A
// connection reads the pointer once per decision; a reload swaps it whole.
type state struct {
	creds        *conn.ServerState // nil in an offline explanation
	muxTLS       *tls.Config       // built once per snapshot: ALPN portcullis/1, revocation checked
	directTLS    *tls.Config       // cloned per direct-mode handshake to add its authorization
	rules        *acl.Set          // the network gate
	rulesSource  string            // where the gate rules came from
	routes       map[string]*route
	order        []string // route names in definition order
	defaultRoute string
	loadedAt     time.Time
}

// loadState builds a complete snapshot from the settings and the files they
// name. Nothing is half-applied: any error leaves the caller's old state.
func loadState(cfg *config.Gateway, now time.Time) (*state, error) {
	creds, err := conn.LoadServer(conn.ServerFiles{Cert: cfg.Cert, Key: cfg.Key, CA: cfg.CA, CRL: cfg.CRL}, now)
	if err != nil {
		return nil, err
	}
	st, err := loadPolicy(cfg)
	if err != nil {
		return nil, err
	}
	st.creds = creds
	st.muxTLS = creds.ServerConfig()
	st.muxTLS.NextProtos = []string{mux.ALPN}
	st.directTLS = creds.ServerConfig()
	st.loadedAt = now
	return st, nil
}

// loadPolicy builds the network gate and the routes, from the flags or the
// policy file, without any credentials (so explain can use it offline).
func loadPolicy(cfg *config.Gateway) (*state, error) {
	st := &state{routes: map[string]*route{}}
	var rules []acl.Rule
	var sources []string
	if len(cfg.Allow) > 0 {
		rules = append(rules, cfg.Allow...)
		sources = append(sources, "--allow")
	}
	if cfg.AllowFile != "" {
		f, err := os.Open(cfg.AllowFile)
		if err != nil {
			return nil, fmt.Errorf("--allow-file: %w", err)
		}
		fileRules, err := acl.Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--allow-file %q: %w", cfg.AllowFile, err)
		}
		rules = append(rules, fileRules...)
		sources = append(sources, cfg.AllowFile)
	}
	if cfg.Policy != "" {
		pol, err := cfg.LoadPolicy()
		if err != nil {
			return nil, err
		}
		if len(pol.Allow) > 0 {
			rules = append(rules, pol.Allow...)
			sources = append(sources, pol.File)
		}
		st.defaultRoute = pol.DefaultRoute
		for _, r := range pol.Routes {
			rt := &route{name: r.Name, backend: r.Backend, ids: r.Identities, maxStreams: r.MaxStreams,
				dialTimeout: r.DialTimeout, source: fmt.Sprintf("%s:%d", pol.File, r.Line)}
			if r.Networks != nil {
				set, err := acl.New(r.Networks)
				if err != nil {
					return nil, fmt.Errorf("%s: route %q networks: %w", rt.source, r.Name, err)
				}
				rt.networks = set
			}
			if err := st.add(rt); err != nil {
				return nil, err
			}
		}
	} else {
		st.defaultRoute = cfg.DefaultRoute
		for _, r := range cfg.Routes {
			if err := st.add(&route{name: r.Name, backend: r.Backend, ids: cfg.AllowIDs, source: "--route"}); err != nil {
				return nil, err
			}
		}
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("no network allow-list: give --allow, --allow-file or an \"allow:\" list in --policy (e.g. --allow 10.0.0.0/8)")
	}
	set, err := acl.New(rules)
	if err != nil {
		return nil, fmt.Errorf("network rules: %w", err)
	}
	st.rules = set
	st.rulesSource = strings.Join(sources, ", ")
	for _, r := range st.routes {
		if r.dialTimeout <= 0 {
			r.dialTimeout = cfg.DialTimeout
		}
	}
	if st.defaultRoute != "" && st.routes[st.defaultRoute] == nil {
		return nil, fmt.Errorf("default route %q names no route", st.defaultRoute)
	}
	return st, nil
}

func (st *state) add(r *route) error {
	if _, dup := st.routes[r.name]; dup {
		return fmt.Errorf("%s: route %q is defined twice", r.source, r.name)
	}
	st.routes[r.name] = r
	st.order = append(st.order, r.name)
	return nil
}

package gateway

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
)

// Builtin backends served inside the gateway, for demos and load tests.
const (
	BuiltinEcho    = "builtin:echo"    // sends back what it receives
	BuiltinDiscard = "builtin:discard" // reads and drops everything
)

// route is one named backend and who may reach it.
type route struct {
	name    string
	backend string // HOST:PORT, or a Builtin*
}

// state is one immutable snapshot of everything a reload can change. A
// connection reads the pointer once per decision; a reload swaps it whole.
type state struct {
	creds        *conn.ServerState
	rules        *acl.Set
	routes       map[string]*route
	defaultRoute string
	allowIDs     []conn.Pattern
	loadedAt     time.Time
}

// loadState builds a complete snapshot from the settings and the files they
// name. Nothing is half-applied: any error leaves the caller's old state.
func loadState(cfg *config.Gateway, now time.Time) (*state, error) {
	creds, err := conn.LoadServer(conn.ServerFiles{Cert: cfg.Cert, Key: cfg.Key, CA: cfg.CA, CRL: cfg.CRL}, now)
	if err != nil {
		return nil, err
	}
	rules := append([]acl.Rule(nil), cfg.Allow...)
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
	}
	set, err := acl.New(rules)
	if err != nil {
		return nil, fmt.Errorf("network rules: %w", err)
	}
	st := &state{
		creds:        creds,
		rules:        set,
		routes:       make(map[string]*route, len(cfg.Routes)),
		defaultRoute: cfg.DefaultRoute,
		allowIDs:     cfg.AllowIDs,
		loadedAt:     now,
	}
	for _, r := range cfg.Routes {
		if _, dup := st.routes[r.Name]; dup {
			return nil, fmt.Errorf("--route: route %q is given twice", r.Name)
		}
		if strings.HasPrefix(r.Backend, "builtin:") && r.Backend != BuiltinEcho && r.Backend != BuiltinDiscard {
			return nil, fmt.Errorf("--route %s=%s: unknown builtin; want %s or %s", r.Name, r.Backend, BuiltinEcho, BuiltinDiscard)
		}
		st.routes[r.Name] = &route{name: r.Name, backend: r.Backend}
	}
	if st.defaultRoute != "" && st.routes[st.defaultRoute] == nil {
		return nil, fmt.Errorf("--default-route %q names no route", st.defaultRoute)
	}
	return st, nil
}

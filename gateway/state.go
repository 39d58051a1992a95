package gateway

import (
	"crypto/tls"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
)

// Builtin backends served inside the gateway, for demos and load tests.
const (
	BuiltinEcho    = policy.BuiltinEcho    // sends back what it receives
	BuiltinDiscard = policy.BuiltinDiscard // reads and drops everything
)

// state is one immutable snapshot of everything a reload can change. A
// connection reads the pointer once per decision; a reload swaps it whole.
type state struct {
	creds     *conn.ServerState
	muxTLS    *tls.Config // built once per snapshot: ALPN portcullis/1, revocation checked
	directTLS *tls.Config // cloned per direct-mode handshake to add its authorization
	// The same with the client's chain verified by creds.VerifyClient and
	// its cache, for source addresses seen lately (see recentClients).
	muxCached, directCached *tls.Config
	pol                     *policy.Policy
	loadedAt                time.Time
	routes                  map[string]*routeMetrics // by route name; "" for streams that named none
}

// loadState builds a complete snapshot from the sources. Nothing is
// half-applied: any error leaves the caller's old state.
func loadState(cfg *Config, now time.Time) (*state, error) {
	creds, err := cfg.Credentials.Load(now)
	if err != nil {
		return nil, err
	}
	pol, err := cfg.Policy.Load()
	if err != nil {
		return nil, err
	}
	st := &state{creds: creds, pol: pol, loadedAt: now}
	st.muxTLS = creds.ServerConfig()
	st.muxTLS.NextProtos = []string{mux.ALPN}
	st.directTLS = creds.ServerConfig()
	st.muxCached = creds.CachingServerConfig()
	st.muxCached.NextProtos = []string{mux.ALPN}
	st.directCached = creds.CachingServerConfig()
	return st, nil
}

package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is what a Server needs. Build it in code (see the package
// example), or from the command line's settings as cmd/gateway does. Zero
// durations and caps take the defaults named on each field.
type Config struct {
	// Credentials loads the server's certificate and key, the CAs that
	// client certificates must chain to, and the revocation lists: at New
	// and at every Reload. Required. conn.ServerFiles loads PEM files;
	// another source (a PKCS#12 bundle, a token, an enrollment client) is
	// any type with its Load method.
	Credentials Credentials
	// Policy builds the network gate, the routes and the default route: at
	// New and at every Reload. Required. policy.Static serves one snapshot.
	Policy PolicySource

	HandshakeTimeout time.Duration // a TLS handshake, from the client's first byte; default 10s
	HelloTimeout     time.Duration // a new connection's first byte; default 5s
	IdleTimeout      time.Duration // a stream without traffic; 0: never
	MaxConns         int           // connections open at once; default 10,000
	MaxHandshakes    int           // TLS handshakes in flight; default 256
	MaxStreams       int           // streams open at once in one session; default 1,024
	// MaxSessionMemory bounds what one client session can make the
	// gateway buffer beyond the 256 KiB each accepted stream is owed by
	// the protocol: receive windows start at 256 KiB and grow, with use,
	// only within it. Default 8 MiB.
	MaxSessionMemory int
	// Pending caps the connections before the end of their handshake,
	// per source address, per source network and in all; zero caps take
	// 1,024 in all, 64 per address, 256 per network (/24 and /64).
	Pending conn.PendingConfig

	// MaxConnLifetime drains a connection that has lived this long (no
	// new streams on it; a tunnel opens a new session) and closes it
	// LifetimeDrain later with whatever is still open. 0: no limit.
	MaxConnLifetime time.Duration
	LifetimeDrain   time.Duration // default 30s; negative: closed at once

	// ConnRate limits new connections per second from one source address
	// and from one source network (the Pending prefix lengths), checked in
	// the accept loop before anything is read: over it a connection is
	// reset, counted and logged (shed, kind conn_rate). HandshakeRate does
	// the same for handshakes begun (a ClientHello received), before a
	// handshake slot is taken. Zero rates: no limit (the default).
	ConnRate, HandshakeRate SourceLimit

	// AbuseHold keeps a source address away after the gateway closed a
	// session of its for abusing the protocol (a ping flood, data past
	// the window, frames no client sends): its new connections are reset
	// in the accept loop (shed, kind held) for AbuseHold, twice as long
	// at each new abuse within AbuseHoldMax of the last, up to
	// AbuseHoldMax. A flooding client would otherwise reconnect at once,
	// a full handshake each time. Default 1s and 1m; a negative AbuseHold
	// holds no one.
	AbuseHold, AbuseHoldMax time.Duration

	// TrustedProxies are the load balancers that send a PROXY protocol
	// header (v1 or v2) first: a connection from one of them must start
	// with a header, whose client address the network gate, the pending
	// caps, the routes' networks and the audit log then see. Nil: none.
	TrustedProxies *acl.Set

	// ReadyDespiteReloadFailure keeps /readyz answering ready after a
	// failed reload; false (the default) makes it fail until a reload
	// succeeds.
	ReadyDespiteReloadFailure bool

	// Registry receives the server's metrics (and the Go and process
	// collectors, unless it has them); nil means a registry of the
	// server's own. Two servers cannot share one.
	Registry *prometheus.Registry

	// Log receives the audit log; nil means none.
	Log *zerolog.Logger
}

// SourceLimit is a rate per source address and per source network.
type SourceLimit struct {
	PerAddr, PerPrefix conn.Rate
}

// Credentials is a source of the server's TLS credentials. Load reads them
// anew and returns one immutable snapshot (certificate with its key, client
// CAs, CRLs); the server swaps it in whole, so handshakes never see half a
// reload.
type Credentials interface {
	Load(now time.Time) (*conn.ServerState, error)
}

// PolicySource builds the gateway's policy anew (reading its files, if it
// has any); see package policy.
type PolicySource interface {
	Load() (*policy.Policy, error)
}

// withDefaults returns cfg with its zero fields set, or what is missing.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	if cfg.Credentials == nil {
		errs = append(errs, errors.New("gateway: Config.Credentials is required"))
	}
	if cfg.Policy == nil {
		errs = append(errs, errors.New("gateway: Config.Policy is required"))
	}
	for _, d := range []struct {
		v    *time.Duration
		name string
		def  time.Duration
	}{{&cfg.HandshakeTimeout, "HandshakeTimeout", 10 * time.Second}, {&cfg.HelloTimeout, "HelloTimeout", 5 * time.Second}} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			errs = append(errs, fmt.Errorf("gateway: Config.%s %v: must not be negative", d.name, *d.v))
		}
	}
	switch {
	case cfg.AbuseHold == 0:
		cfg.AbuseHold = time.Second
	case cfg.AbuseHold < 0:
		cfg.AbuseHold = 0 // none
	}
	switch {
	case cfg.AbuseHoldMax == 0:
		cfg.AbuseHoldMax = time.Minute
	case cfg.AbuseHoldMax < 0:
		errs = append(errs, fmt.Errorf("gateway: Config.AbuseHoldMax %v: must not be negative", cfg.AbuseHoldMax))
	case cfg.AbuseHoldMax < cfg.AbuseHold:
		errs = append(errs, fmt.Errorf("gateway: Config.AbuseHoldMax %v: must be at least AbuseHold %v", cfg.AbuseHoldMax, cfg.AbuseHold))
	}
	switch {
	case cfg.LifetimeDrain == 0:
		cfg.LifetimeDrain = 30 * time.Second
	case cfg.LifetimeDrain < 0:
		cfg.LifetimeDrain = 0 // closed at once
	}
	if cfg.MaxConnLifetime < 0 {
		errs = append(errs, fmt.Errorf("gateway: Config.MaxConnLifetime %v: must not be negative", cfg.MaxConnLifetime))
	}
	for _, r := range []struct {
		name string
		r    SourceLimit
	}{{"ConnRate", cfg.ConnRate}, {"HandshakeRate", cfg.HandshakeRate}} {
		for _, x := range []struct {
			scope string
			rate  conn.Rate
		}{{"PerAddr", r.r.PerAddr}, {"PerPrefix", r.r.PerPrefix}} {
			if !x.rate.IsZero() && x.rate.Burst < 1 {
				errs = append(errs, fmt.Errorf("gateway: Config.%s.%s %v a second: its burst %d must be at least 1", r.name, x.scope, x.rate.PerSec, x.rate.Burst))
			}
		}
	}
	if cfg.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("gateway: Config.IdleTimeout %v: must not be negative", cfg.IdleTimeout))
	}
	for _, n := range []struct {
		v    *int
		name string
		def  int
	}{{&cfg.MaxConns, "MaxConns", 10000}, {&cfg.MaxHandshakes, "MaxHandshakes", 256}, {&cfg.MaxStreams, "MaxStreams", 1024},
		{&cfg.MaxSessionMemory, "MaxSessionMemory", mux.SessionReceiveBudget},
		{&cfg.Pending.Max, "Pending.Max", 1024}, {&cfg.Pending.PerAddr, "Pending.PerAddr", 64},
		{&cfg.Pending.PerPrefix, "Pending.PerPrefix", 256}} {
		switch {
		case *n.v == 0:
			*n.v = n.def
		case *n.v < 0:
			errs = append(errs, fmt.Errorf("gateway: Config.%s %d: must not be negative", n.name, *n.v))
		}
	}
	if cfg.Log == nil {
		nop := zerolog.Nop()
		cfg.Log = &nop
	}
	return cfg, errors.Join(errs...)
}

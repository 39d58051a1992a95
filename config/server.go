package config

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/policy"
)

// ServerConfig translates validated settings into the gateway's own
// configuration: credentials from the --cert, --key, --ca and --crl files,
// the policy built from the flags or the --policy file (read anew at each
// load), the limits and the timeouts.
func (g *Gateway) ServerConfig(log *zerolog.Logger) gateway.Config {
	var trusted *acl.Set
	if len(g.TrustedProxy) > 0 {
		trusted, _ = acl.New(g.TrustedProxy) // Validate checked them
	}
	return gateway.Config{
		TrustedProxies:   trusted,
		Credentials:      conn.ServerFiles{Cert: g.Cert, Key: g.Key, KeyPass: g.KeyPassFile, CA: g.CA, CRL: g.CRL, StrictPerms: g.StrictPerms},
		Policy:           gatewayPolicy{g},
		HandshakeTimeout: g.HandshakeTimeout,
		HelloTimeout:     g.HelloTimeout,
		IdleTimeout:      g.IdleTimeout,
		MaxConns:         g.MaxConns,
		MaxHandshakes:    g.MaxHandshakes,
		MaxStreams:       g.MaxStreams,
		MaxSessionMemory: g.MaxSessionMemory,
		Pending: conn.PendingConfig{Max: g.MaxPending, PerAddr: g.MaxPendingPerAddr, PerPrefix: g.MaxPendingPerPrefix,
			PrefixV4: g.PrefixV4, PrefixV6: g.PrefixV6},
		MaxConnLifetime:           g.MaxConnLifetime,
		AbuseHold:                 orNone(g.AbuseHold),
		AbuseHoldMax:              g.AbuseHoldMax,
		LifetimeDrain:             orNone(g.DrainTimeout),
		ConnRate:                  gateway.SourceLimit{PerAddr: g.ConnRatePerAddr, PerPrefix: g.ConnRatePerPrefix},
		HandshakeRate:             gateway.SourceLimit{PerAddr: g.HandshakeRatePerAddr, PerPrefix: g.HandshakeRatePerPrefix},
		ReadyDespiteReloadFailure: g.ReadyDespiteReloadFailure,
		Log:                       log,
	}
}

// orNone maps a flag's 0 ("none": --abuse-hold 0 holds no one,
// --drain-timeout 0 closes at once) to gateway.Config's negative duration:
// there 0 takes the default.
func orNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// WatchedFiles are the files the gateway reloads when they change.
func (g *Gateway) WatchedFiles() []string {
	return []string{g.Cert, g.Key, g.KeyPassFile, g.CA, g.CRL, g.AllowFile, g.Policy}
}

// gatewayPolicy builds the policy of the settings at each Load.
type gatewayPolicy struct{ g *Gateway }

func (p gatewayPolicy) Load() (*policy.Policy, error) { return p.g.BuildPolicy() }

// BuildPolicy reads the --allow-file and the --policy file, if any, and
// builds the policy from them and the flags with [policy.Build], the one
// place its rules are checked. It reads the files at each call.
func (g *Gateway) BuildPolicy() (*policy.Policy, error) {
	spec := g.flagSpec()
	if g.AllowFile != "" {
		f, err := os.Open(g.AllowFile)
		if err != nil {
			return nil, fmt.Errorf("--allow-file: %w", err)
		}
		rules, err := acl.Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--allow-file %q: %w", g.AllowFile, err)
		}
		spec.Gate = append(spec.Gate, policy.Rules{Source: g.AllowFile, Rules: rules})
	}
	if g.Policy != "" {
		pol, err := g.LoadPolicy()
		if err != nil {
			return nil, err
		}
		pol.addTo(&spec)
		pol.limitsTo(&spec)
	}
	p, err := policy.Build(spec)
	if errors.Is(err, policy.ErrNoGate) {
		err = fmt.Errorf("%w (give --allow, --allow-file or an \"allow:\" list in --policy, e.g. --allow 10.0.0.0/8)", err)
	}
	return p, err
}

// flagSpec is the policy the flags give: the --allow rules, and without a
// --policy file the routes of --route with the identities of --allow-id,
// the --route-proxy headers and the --default-route.
func (g *Gateway) flagSpec() policy.Spec {
	spec := policy.Spec{DialTimeout: g.DialTimeout, Limits: policy.Limits{MaxSessions: g.MaxSessionsPerIdentity,
		MaxStreams: g.MaxStreamsPerIdentity, StreamRate: g.StreamRatePerIdentity}}
	if len(g.Allow) > 0 {
		spec.Gate = append(spec.Gate, policy.Rules{Source: "--allow", Rules: g.Allow})
	}
	if g.Policy != "" {
		return spec
	}
	spec.DefaultRoute, spec.DefaultSource = g.DefaultRoute, "--default-route"
	proxies := map[string]policy.Proxy{}
	for _, v := range g.RouteProxy {
		if name, p, err := routeProxy(v); err == nil {
			proxies[name] = p
		}
	}
	for _, r := range g.Routes {
		spec.Routes = append(spec.Routes, policy.RouteSpec{Name: r.Name, Backend: r.Backend, Identities: g.AllowIDs,
			Proxy: proxies[r.Name], Source: "--route"})
	}
	return spec
}

// addTo adds the file's gate, routes and default route to spec; each
// route's source is FILE:LINE.
func (p *Policy) addTo(spec *policy.Spec) {
	if p.Allow != nil {
		spec.Gate = append(spec.Gate, policy.Rules{Source: p.File, Rules: p.Allow})
	}
	spec.DefaultRoute, spec.DefaultSource = p.DefaultRoute, p.place(p.DefaultLine)
	for _, r := range p.Routes {
		networks := r.Networks
		if networks != nil {
			networks = make([]acl.Rule, len(r.Networks))
			for i, n := range r.Networks {
				n.Source = p.File
				networks[i] = n
			}
		}
		spec.Routes = append(spec.Routes, policy.RouteSpec{Name: r.Name, Backend: r.Backend, Identities: r.Identities,
			Networks: networks, MaxStreams: r.MaxStreams, DialTimeout: r.DialTimeout, Proxy: r.Proxy,
			Source: p.place(r.Line)})
	}
}

// limitsTo adds the file's identity limits to spec.
func (p *Policy) limitsTo(spec *policy.Spec) {
	for _, l := range p.IdentityLimits {
		spec.IdentityLimits = append(spec.IdentityLimits, policy.IdentityLimits{Identities: l.Identities,
			Limits: policy.Limits{MaxSessions: l.MaxSessions, MaxStreams: l.MaxStreams, StreamRate: l.StreamRate,
				Source: p.place(l.Line)}})
	}
}

// place names a line of the file: "FILE:LINE", "FILE" for line 0.
func (p *Policy) place(line int) string {
	if line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, line)
}

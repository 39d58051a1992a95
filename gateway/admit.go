package gateway

import (
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/logging"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Modes of a stream, in the audit log.
const (
	modeMux    = "mux"
	modeDirect = "direct"
)

// grant is an admitted stream: its route and the rule that admitted it,
// the backend connection (nil for a builtin), and release, which gives
// back the route's stream slot.
type grant struct {
	route   *policy.Route
	rule    string
	m       *routeMetrics
	backend net.Conn
	release func()
}

// admit is the one admission pipeline of both modes: drain, the
// connection's standing (revocation, expiry, network rules of the current
// state), authorization of the route (by name in mux mode, by SNI in
// direct mode), the route's stream slot, and the dial. It returns a grant,
// or nil and the refusal's verdict. Nothing is logged here but a backend
// that cannot be reached.
func (c *serverConn) admit(mode string, id *conn.Identity, name, sni string) (*grant, verdict) {
	s := c.srv
	if s.draining.Load() {
		if mode == modeDirect {
			name = sni
		}
		return nil, refused(name, mux.StatusShuttingDown, "the gateway is shutting down", "drain")
	}
	st := s.state.Load()
	var v verdict
	if mode == modeDirect {
		v = authorizeDirect(st.pol, id, sni, c.peer.Addr())
	} else {
		if reason, rule := c.stillAdmitted(st); reason != "" {
			return nil, refused(name, mux.StatusForbidden, reason, rule)
		}
		v = authorize(st.pol, id, name, c.peer.Addr())
	}
	if v.status != mux.StatusOK {
		return nil, v
	}
	limits := st.pol.LimitsFor(id)
	if rv := c.holdSession(limits); rv != nil {
		rv.name = v.name
		return nil, *rv
	}
	idRelease, rv := s.ids.stream(c.idName, limits, time.Now())
	if rv != nil {
		rv.name = v.name
		return nil, *rv
	}
	routeRelease, ok := s.routeSlot(v.route)
	if !ok {
		idRelease()
		return nil, refused(v.name, mux.StatusOverloaded, "route "+quote(v.name)+" is at its stream limit", "max_streams")
	}
	release := func() { routeRelease(); idRelease() }
	rm := st.routes[v.route.Name]
	backend, err := rm.dialRoute(v.route)
	if err == nil && v.route.Proxy != policy.ProxyNone {
		if err = c.sendProxyHeader(backend, v.route, id); err != nil {
			backend.Close()
		}
	}
	if err != nil {
		release()
		if ok, suppressed := c.refusalLog(); ok {
			ev := c.log.Warn().Str("event", "backend_unreachable").Str("mode", mode).Str("route", v.name).
				Str("backend", v.route.Backend).Err(err)
			if suppressed > 0 {
				ev = ev.Uint64("suppressed", suppressed)
			}
			ev.Send()
		}
		return nil, refused(v.name, mux.StatusUnreachable, "backend for route "+quote(v.name)+" is unreachable", v.rule)
	}
	return &grant{route: v.route, rule: v.rule, m: rm, backend: backend, release: release}, v
}

// holdSession takes the connection's place among its identity's sessions,
// once: a connection over the identity's session limit holds none, and
// each of its streams tries again (another session of the identity may
// have ended since), refused until one is free. The place is given back
// when the connection ends.
func (c *serverConn) holdSession(l policy.Limits) *verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessionHeld || c.phase == phaseClosed {
		return nil
	}
	release, v := c.srv.ids.session(c.idName, l)
	if v != nil {
		return v
	}
	c.sessionHeld, c.releaseSession = true, release
	return nil
}

// stillAdmitted checks a long-lived session against the current state
// before each new stream: a reload may since have revoked its certificate or
// taken its address off the network rules, and its certificate may have
// expired. It returns a reason for the peer and a rule for the log, or "".
func (c *serverConn) stillAdmitted(st *state) (reason, rule string) {
	if err := st.creds.CheckRevoked(c.cs); err != nil {
		return mux.ReasonCertRevoked, err.Error()
	}
	if leaf := c.cs.PeerCertificates[0]; time.Now().After(leaf.NotAfter) {
		return mux.ReasonCertExpired, "certificate not after " + leaf.NotAfter.UTC().Format(time.RFC3339)
	}
	if d := st.pol.Gate().Decide(c.peer.Addr()); !d.Allowed {
		return "source address no longer allowed", "network gate: " + d.String()
	}
	return "", ""
}

// routeSlot takes one of a route's stream slots when it has a cap; the
// count lives in the server, by route name, so it survives reloads.
func (s *Server) routeSlot(r *policy.Route) (release func(), ok bool) {
	if r.MaxStreams <= 0 {
		return func() {}, true
	}
	v, _ := s.routeStreams.LoadOrStore(r.Name, new(atomic.Int64))
	n := v.(*atomic.Int64)
	if n.Add(1) > int64(r.MaxStreams) {
		n.Add(-1)
		return nil, false
	}
	return func() { n.Add(-1) }, true
}

// dial connects to a route's backend, over TCP or, for "unix:PATH", a
// UNIX socket; builtins need no connection (nil).
func dial(r *policy.Route) (net.Conn, error) {
	if r.IsBuiltin() {
		return nil, nil
	}
	d := net.Dialer{Timeout: r.DialTimeout}
	if path, ok := strings.CutPrefix(r.Backend, "unix:"); ok {
		return d.Dial("unix", path)
	}
	return d.Dial("tcp", r.Backend)
}

// carry moves bytes between the client side and the granted backend until
// both directions end, gives back the route slot and logs the stream's end.
func (c *serverConn) carry(mode string, stream uint32, client net.Conn, g *grant, start time.Time) {
	defer g.release()
	if idle := c.srv.cfg.IdleTimeout; idle > 0 {
		client = newIdleConn(client, idle)
	}
	var in, out int64
	var err error
	switch g.route.Backend {
	case BuiltinEcho:
		in, err = mux.Echo(client)
		out = in
	case BuiltinDiscard:
		in, err = mux.Discard(client)
	default:
		in, out, err = mux.Pipe(client, g.backend)
	}
	g.m.closed(in, out, time.Since(start))
	ev := c.streamEvent("stream_close", mode, stream, g.route.Name).
		Int64("bytes_in", in).Int64("bytes_out", out).Dur("duration_ms", time.Since(start))
	if err != nil {
		ev = ev.Str("error", err.Error())
	}
	ev.Send()
}

// opened counts and logs an admitted stream.
func (c *serverConn) opened(mode string, stream uint32, g *grant) {
	c.srv.streamsOK.Add(1)
	g.m.opening()
	c.streamEvent("stream_open", mode, stream, g.route.Name).Str("rule", g.rule).Send()
}

// refused counts and logs a refused stream, the log under the
// connection's rate limit for refusals.
func (c *serverConn) refused(mode string, stream uint32, v verdict) {
	c.srv.countRefused(v)
	if mode == modeMux {
		c.paceRefusal()
	}
	ok, suppressed := c.refusalLog()
	if !ok {
		return
	}
	ev := c.streamEvent("stream_refused", mode, stream, v.name).Str("status", v.status.String()).
		Str("rule", v.rule).Str("reason", v.reason)
	if suppressed > 0 {
		ev = ev.Uint64("suppressed", suppressed)
	}
	ev.Send()
}

// A mux session may have streams refused at refusalRate a second, in
// bursts of refusalBurst; beyond that its accept loop waits before taking
// the next stream, so that a client opening stream after stream that is
// refused (each costs the gateway a stream, a policy decision and an
// answer) slows down to that rate, on its own session only. A refusal
// costs what it did; the wait is at most refusalMaxWait at a time.
const (
	refusalRate    = 200
	refusalBurst   = 400
	refusalMaxWait = time.Second
)

// paceRefusal counts a refusal against the session's pace.
func (c *serverConn) paceRefusal() {
	c.mu.Lock()
	if c.refusalPace == nil {
		c.refusalPace = rate.NewLimiter(refusalRate, refusalBurst)
	}
	p := c.refusalPace
	c.mu.Unlock()
	p.ReserveN(time.Now(), 1) // always granted: past the burst it is debt, waited off by acceptPause
}

// acceptPause is how long the session's accept loop waits before taking
// another stream: the refusals past the burst, at refusalRate.
func (c *serverConn) acceptPause() time.Duration {
	c.mu.Lock()
	p := c.refusalPace
	c.mu.Unlock()
	if p == nil {
		return 0
	}
	tokens := p.Tokens()
	if tokens >= 0 {
		return 0
	}
	return min(time.Duration(-tokens/refusalRate*float64(time.Second)), refusalMaxWait)
}

// The rate limit of a connection's refusal events: a burst, then a few a
// second. Refusals past it are counted (Stats) but not logged; the next
// event logged says how many were left out.
const (
	refusalLogPerSec = 5
	refusalLogBurst  = 50
)

// refusalLog asks the connection's refusal limiter whether an event may
// be logged now.
func (c *serverConn) refusalLog() (ok bool, suppressed uint64) {
	c.mu.Lock()
	if c.refusals == nil {
		c.refusals = logging.NewLimiter(refusalLogPerSec, refusalLogBurst)
	}
	l := c.refusals
	c.mu.Unlock()
	return l.Allow()
}

// streamEvent starts the audit event of a stream: the same fields, in the
// same order, for every stream event of both modes.
func (c *serverConn) streamEvent(event, mode string, stream uint32, route string) *zerolog.Event {
	ev := c.log.Info().Str("event", event).Str("mode", mode)
	if mode == modeMux {
		ev = ev.Uint32("stream", stream)
	}
	return ev.Str("route", route)
}

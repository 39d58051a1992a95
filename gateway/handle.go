package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/logging"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// requestTimeout bounds how long a new stream may take to send its request.
const requestTimeout = 10 * time.Second

// phase is where a connection is in its life.
type phase int

const (
	phaseHandshake phase = iota // before the end of its TLS handshake
	phaseHandshook              // handshake done; mux session not yet up
	phaseServing                // a mux session or a direct connection is up
	phaseExiting                // serveMux waits for its streams: start no goroutine on it
	phaseClosed                 // close was called
)

// serverConn is one accepted connection, from handshake to close.
type serverConn struct {
	srv   *Server
	raw   net.Conn
	id    uint64
	peer  netip.AddrPort // the client: the socket's peer, or the address a trusted proxy's header gave
	via   netip.AddrPort // the trusted proxy the connection came through, if any
	start time.Time
	log   zerolog.Logger

	cs tls.ConnectionState // after the handshake: re-checked on each new stream

	mu       sync.Mutex
	phase    phase
	draining bool           // drain was called: no new stream; close the session once idle
	sess     *yamux.Session // in phaseServing and after, in mux mode
	active   int            // streams being served
	// refusals logs this connection's stream_refused and
	// backend_unreachable events under a rate limit (made on first use):
	// a client opening streams it may not have cannot flood the log.
	refusals *logging.Limiter
	// refusalPace slows a session that makes the gateway refuse streams
	// faster than refusalRate: its accept loop waits off the excess
	// (made at the first refusal of a mux session; under mu).
	refusalPace *rate.Limiter
	idle        chan struct{} // signalled when active drops to 0 while draining
	streams     sync.WaitGroup

	idName         string // the identity, for its limits: conn.Identity's String
	sessionHeld    bool   // one of the identity's sessions is this one's (under mu)
	releaseSession func() // gives it back
}

func (c *serverConn) serve() {
	defer c.srv.untrack(c)
	defer c.close()
	s := c.srv
	in := c.raw // what the handshake reads
	if tp := s.cfg.TrustedProxies; tp != nil && tp.Allowed(c.peer.Addr()) {
		var ok bool
		if in, ok = c.readProxyHeader(); !ok {
			return
		}
	}
	lc := s.log.With().Uint64("conn", c.id).Str("peer", c.peer.String())
	if c.via.IsValid() {
		lc = lc.Str("via", c.via.String())
	}
	c.log = lc.Logger()

	// Until its ClientHello is in, a connection holds no handshake slot:
	// only its place among the pending connections of its source.
	ticket, err := s.pending.Add(c.raw, c.peer.Addr())
	if err != nil {
		c.shed(shedRefused, err.Error())
		_ = conn.Reset(c.raw)
		return
	}
	defer ticket.Done()
	hc, deadline, err := conn.ReadHello(in, s.cfg.HelloTimeout, s.cfg.HandshakeTimeout, ticket.Heard)
	switch {
	case err == nil:
	case ticket.Evicted():
		c.shed(shedReplaced, "replaced by a newer connection from the same source over the pending cap")
		return
	case errors.Is(err, conn.ErrSilent):
		c.shed(shedSilent, "no byte sent within the hello timeout")
		return
	default:
		if !c.isClosed() {
			c.handshakeFailed(err)
		}
		return
	}
	ticket.Spoke()

	if ok, scope := s.hsRates.Allow(c.peer.Addr(), time.Now()); !ok {
		c.shed(shedHandshakeRate, "over the handshake rate of its "+scope)
		_ = conn.Reset(c.raw)
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	slot, victim := s.handshakes.acquire(ctx, c.peer.Addr(), func() { _ = conn.Reset(c.raw) })
	if victim != nil {
		victim.cut()
	}
	if slot == nil {
		c.handshakeFailed(errNoHandshakeSlot)
		return
	}
	tc := tls.Server(hc, s.tls)
	if c.isClosed() {
		slot.release()
		return
	}
	_ = c.raw.SetDeadline(deadline)
	hsStart := time.Now()
	err = tc.HandshakeContext(ctx)
	preempted := slot.release()
	ticket.Done()
	if preempted {
		// Its slot went to a client from a lighter source, and its
		// connection was closed, whatever the handshake's outcome.
		c.shed(shedPreempted, "its handshake slot went to a client from a source with fewer handshakes in flight")
		return
	}
	if err != nil {
		s.recent.forget(c.peer.Addr())
		var rf *refusal
		if errors.As(err, &rf) { // direct mode: authorization said no during the handshake
			s.countHandshakeFailure(err)
			c.refused(modeDirect, 0, rf.v)
			return
		}
		c.handshakeFailed(err)
		return
	}
	_ = c.raw.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	if len(cs.VerifiedChains) == 0 { // a caching configuration verified them
		if cs.VerifiedChains = s.state.Load().creds.ClientChains(cs, time.Now()); len(cs.VerifiedChains) == 0 {
			c.handshakeFailed(errTrustChanged)
			return
		}
	}
	s.recent.seen(c.peer.Addr(), time.Now())
	s.handshook(&cs, time.Since(hsStart))
	c.cs = cs
	c.mu.Lock()
	if c.phase == phaseHandshake {
		c.phase = phaseHandshook
	}
	c.mu.Unlock()
	id := conn.IdentityOf(cs.PeerCertificates[0])
	c.idName = id.String()
	c.log = c.log.With().Object("identity", id).Logger()
	ev := c.log.Info().Str("event", "accept").Str("tls", tls.VersionName(cs.Version)).Bool("resumed", cs.DidResume).
		Str("mode", c.mode())
	if c.mode() == modeDirect {
		ev = ev.Str("sni", cs.ServerName)
	}
	ev.Msg("connection accepted")
	if conn.ExpiresSoon(cs.PeerCertificates[0], time.Now()) {
		c.log.Warn().Str("event", "client_cert_expiring").Time("not_after", id.NotAfter).
			Msg("client certificate expires soon")
	}
	defer c.limitLifetime()()
	if c.mode() == modeMux {
		if v := c.holdSession(s.state.Load().pol.LimitsFor(&id)); v != nil {
			// Served, so that the client's first stream learns why; then
			// closed (see refuse).
			c.log.Info().Str("event", "session_over_limit").Str("rule", v.rule).Msg(v.reason)
			t := time.AfterFunc(requestTimeout, func() {
				c.mu.Lock()
				held := c.sessionHeld
				c.mu.Unlock()
				if !held {
					c.drain()
				}
			})
			defer t.Stop()
		}
		c.serveMux(tc, &id)
		return
	}
	c.serveDirect(tc, &id, cs.ServerName)
}

// limitLifetime enforces --max-conn-lifetime: when the connection has
// lived that long it is drained (no new streams: the tunnel opens a new
// session for them; open streams carry on), and what is still open after
// the lifetime's drain time is closed. It returns the function that stops
// the timers.
func (c *serverConn) limitLifetime() (stop func()) {
	life := c.srv.cfg.MaxConnLifetime
	if life <= 0 {
		return func() {}
	}
	left := life - time.Since(c.start)
	drain := time.AfterFunc(left, func() {
		c.log.Info().Str("event", "lifetime_reached").Dur("max_lifetime_ms", life).
			Msg("connection reached its maximum lifetime: draining")
		c.drain()
	})
	end := time.AfterFunc(left+c.srv.cfg.LifetimeDrain, func() {
		c.log.Info().Str("event", "lifetime_closed").Dur("max_lifetime_ms", life).
			Msg("connection still open after its maximum lifetime and drain time: closing")
		c.close()
	})
	return func() { drain.Stop(); end.Stop() }
}

// mode is the connection's mode, known once its handshake is done.
func (c *serverConn) mode() string {
	if c.cs.NegotiatedProtocol == mux.ALPN {
		return modeMux
	}
	return modeDirect
}

func (c *serverConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseClosed
}

// readProxyHeader reads the PROXY protocol header of a connection from a
// trusted proxy; the client address it carries becomes the peer, judged by
// the network gate as if it had connected directly. It returns what the
// handshake reads next, or false when the connection was refused (reset,
// counted and logged).
func (c *serverConn) readProxyHeader() (net.Conn, bool) {
	s := c.srv
	src, rest, err := conn.ReadProxyHeader(c.raw, s.cfg.HelloTimeout)
	if err != nil {
		c.log = s.log.With().Uint64("conn", c.id).Str("peer", c.peer.String()).Logger()
		c.shed(shedProxy, "from a trusted proxy: "+proxyReason(err))
		_ = conn.Reset(c.raw)
		return nil, false
	}
	c.via, c.peer = c.peer, src
	if d := s.rules.Decide(src.Addr()); !d.Allowed {
		s.proxiedDenied.Add(1)
		if ok, suppressed := s.proxyDenyLog.Allow(); ok {
			ev := s.log.Info().Str("event", "deny").Str("peer", src.String()).Str("via", c.via.String()).Str("rule", d.String())
			if suppressed > 0 {
				ev = ev.Uint64("suppressed", suppressed)
			}
			ev.Msg("connection denied by network rules")
		}
		_ = conn.Reset(c.raw)
		return nil, false
	}
	if kind, reason := s.refuseSource(src.Addr(), time.Now()); reason != "" {
		c.log = s.log.With().Uint64("conn", c.id).Str("peer", c.peer.String()).Str("via", c.via.String()).Logger()
		c.shed(kind, reason)
		_ = conn.Reset(c.raw)
		return nil, false
	}
	return rest, true
}

// proxyReason says in words why a PROXY header was refused.
func proxyReason(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "no PROXY protocol header within the hello timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection ended inside the PROXY protocol header"
	}
	return err.Error()
}

// Kinds of connections shed before their handshake.
const (
	shedSilent        = iota // no byte within --hello-timeout
	shedReplaced             // a newer connection from its source took its place
	shedRefused              // over a pending cap, with none to replace
	shedProxy                // from a trusted proxy, with no valid PROXY header
	shedConnRate             // over the connection rate of its address or network
	shedHandshakeRate        // over the handshake rate of its address or network
	shedPreempted            // its handshake slot went to a client from a lighter source
	shedHeld                 // its address is held after abusing the protocol
	shedKinds
)

var shedNames = [shedKinds]string{"silent", "replaced", "refused", "proxy_header", "conn_rate", "handshake_rate", "preempted", "held"}

// The log of shed connections is rate-limited per kind, as the network
// gate's: a flood of idle sockets must not become a flood of log lines.
const (
	shedLogPerSec = 10
	shedLogBurst  = 20
)

// shed counts a connection given up before its handshake and logs it
// under its kind's rate limit.
func (c *serverConn) shed(kind int, reason string) {
	c.srv.logShed(c.log, kind, reason, time.Since(c.start))
}

// shedEarly resets, counts and logs a connection refused in the accept
// loop, before it has a goroutine of its own.
func (s *Server) shedEarly(c net.Conn, peer netip.AddrPort, kind int, reason string) {
	s.logShed(s.log.With().Str("peer", peer.String()).Logger(), kind, reason, 0)
	_ = conn.Reset(c)
}

func (s *Server) logShed(log zerolog.Logger, kind int, reason string, d time.Duration) {
	s.shed[kind].Add(1)
	ok, suppressed := s.shedLog[kind].Allow()
	if !ok {
		return
	}
	ev := log.Info().Str("event", "shed").Str("kind", shedNames[kind]).Str("reason", reason).
		Dur("duration_ms", d)
	if suppressed > 0 {
		ev = ev.Uint64("suppressed", suppressed)
	}
	ev.Msg("connection shed before its handshake")
}

// abuse says how a session that ended with err abused the protocol; ""
// when it did not (the client closed it, the connection failed, the
// gateway drained it).
func abuse(err error) string {
	switch {
	case errors.Is(err, yamux.ErrFlood):
		return "the client made more answers wait than it read (a ping flood)"
	case errors.Is(err, yamux.ErrRecvWindowExceeded):
		return "the client sent data past a stream's receive window"
	case errors.Is(err, yamux.ErrInvalidVersion), errors.Is(err, yamux.ErrInvalidMsgType),
		errors.Is(err, yamux.ErrUnexpectedFlag), errors.Is(err, yamux.ErrDuplicateStream):
		return "the client broke the mux protocol: " + err.Error()
	}
	return ""
}

// abused holds the client's address when its session ended for abusing
// the protocol (Config.AbuseHold) and logs it, once for the session and
// under the server's rate limit for the event.
func (c *serverConn) abused(err error) {
	why := abuse(err)
	if why == "" {
		return
	}
	held := c.srv.holds.Hold(c.peer.Addr(), time.Now())
	ok, suppressed := c.srv.abuseLog.Allow()
	if !ok {
		return
	}
	event := "session_abuse"
	if errors.Is(err, yamux.ErrFlood) {
		event = "session_flood"
	}
	ev := c.log.Warn().Str("event", event).Str("reason", why).Dur("held_ms", held)
	if suppressed > 0 {
		ev = ev.Uint64("suppressed", suppressed)
	}
	msg := "session closed; its address is held"
	if held == 0 {
		msg = "session closed"
	}
	ev.Msg(msg)
}

// The rate limit of handshake_failed events, server-wide.
const (
	handshakeLogPerSec = 20
	handshakeLogBurst  = 100
)

// handshakeFailed counts a failed handshake by its class and logs it
// under the server's rate limit for the event: anyone who can connect can
// cause one.
func (c *serverConn) handshakeFailed(err error) {
	c.srv.countHandshakeFailure(err)
	ok, suppressed := c.srv.handshakeLog.Allow()
	if !ok {
		return
	}
	ev := c.log.Warn().Str("event", "handshake_failed").Str("reason", handshakeReason(err)).Dur("duration_ms", time.Since(c.start))
	if suppressed > 0 {
		ev = ev.Uint64("suppressed", suppressed)
	}
	ev.Msg("handshake failed")
}

// handshakeReason says in words why a handshake failed, for the log.
func handshakeReason(err error) string {
	switch handshakeClass(err) {
	case hsRefused, hsOverloaded:
		return err.Error()
	case hsRevoked:
		return "client certificate revoked: " + err.Error()
	case hsTimeout:
		return "handshake timed out"
	case hsNotTLS:
		return "not TLS: " + err.Error()
	}
	if errors.Is(err, io.EOF) {
		return "client closed the connection during the handshake"
	}
	return err.Error()
}

// serveMux runs a yamux server session: each stream opens with a request
// naming a route, which is admitted (or refused), answered and then piped.
func (c *serverConn) serveMux(tc *tls.Conn, id *conn.Identity) {
	s := c.srv
	sc := mux.NewSessionConn(tc)
	sess, err := yamux.Server(sc, s.yamux)
	if err != nil {
		_ = sc.Close()
		c.log.Error().Str("event", "session_failed").Err(err).Msg("yamux session failed")
		return
	}
	defer s.metrics.session()()
	keptAlive := make(chan struct{})
	go func() {
		defer close(keptAlive)
		mux.KeepAlive(sess, s.keepAlive, func(err error) {
			c.log.Warn().Str("event", "keepalive_failed").Err(err).Msg("no answer to a ping: closing the connection")
			c.raw.Close() // the session's streams end before the session does
		})
	}()
	c.mu.Lock()
	c.sess = sess
	if c.phase == phaseHandshook {
		c.phase = phaseServing
	}
	if c.draining { // drain came between the handshake and now
		c.goAwayLocked()
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.phase == phaseServing {
			c.phase = phaseExiting
		}
		c.mu.Unlock()
		c.streams.Wait()
		sess.Close()
		<-keptAlive
		c.log.Info().Str("event", "close").Dur("duration_ms", time.Since(c.start)).Msg("connection closed")
	}()
	for {
		if d := c.acceptPause(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-sess.CloseChan():
				t.Stop()
			}
		}
		st, err := sess.AcceptStream()
		if err != nil {
			c.abused(err)
			return // session closed by the peer, by keepalive failure, by drain or for a flood
		}
		stream := mux.Wrap(st)
		sc.Track(stream) // its waits end when the connection fails
		// Only the streams this side took count: the accept backlog is the
		// peer's to fill, and the receive budget bounds what it holds.
		overloaded := sess.NumAcceptedStreams() > s.cfg.MaxStreams
		c.streamStarted()
		go func() {
			if overloaded {
				c.refuse(stream, "", refused("", mux.StatusOverloaded, "too many streams on this connection", "max-streams"))
				c.streamDone()
				return
			}
			carry := c.serveStream(stream, id)
			if carry == nil {
				c.streamDone()
				return
			}
			// The stream lives on in a fresh goroutine: this one's stack
			// grew in the request, the checks and the dial, and an idle
			// stream would hold it for its whole life.
			go func() {
				defer c.streamDone()
				carry()
			}()
		}()
	}
}

// serveStream reads one stream's request and runs it through admit. An
// admitted stream's backend is connected and carry pipes the stream to it
// and logs its end; carry is nil when the stream was refused (and closed).
func (c *serverConn) serveStream(stream *mux.Stream, id *conn.Identity) (carry func()) {
	start := time.Now()
	_ = stream.SetReadDeadline(start.Add(requestTimeout))
	req, err := mux.ReadRequest(stream)
	_ = stream.SetReadDeadline(time.Time{})
	if err != nil {
		c.refuse(stream, "", refused("", mux.StatusBadRequest, mux.BadRequestReason(err, requestTimeout), "request"))
		return nil
	}
	g, v := c.admit(modeMux, id, req.Route, "")
	if g == nil {
		c.refuse(stream, req.Route, v)
		return nil
	}
	if err := mux.WriteResponse(stream, mux.Response{Status: mux.StatusOK}); err != nil {
		g.release()
		_ = stream.Reset()
		if g.backend != nil {
			g.backend.Close()
		}
		return nil
	}
	c.opened(modeMux, stream.StreamID(), g)
	return func() { c.carry(modeMux, stream.StreamID(), stream, g, start) }
}

// refuse answers a stream with a refusal, resets it (so whatever the
// client still sends on it is dropped, and its buffer freed, at once) and
// logs it; the session goes on.
func (c *serverConn) refuse(stream *mux.Stream, route string, v verdict) {
	if v.name == "" {
		v.name = route
	}
	_ = stream.SetWriteDeadline(time.Now().Add(requestTimeout))
	_ = mux.Refuse(stream, mux.Response{Status: v.status, Reason: v.reason})
	c.refused(modeMux, stream.StreamID(), v)
	c.mu.Lock()
	overLimit := !c.sessionHeld && c.idName != ""
	c.mu.Unlock()
	if overLimit {
		// A session over its identity's session limit: the client now
		// knows why; it may not keep the session.
		c.drain()
	}
}

// serveDirect carries one direct-mode connection to the route its SNI
// names, authorized already during the handshake and admitted again here
// (a reload or a drain may have come in between).
func (c *serverConn) serveDirect(tc *tls.Conn, id *conn.Identity, sni string) {
	c.mu.Lock()
	if c.phase == phaseHandshook {
		c.phase = phaseServing
	}
	c.mu.Unlock()
	start := time.Now()
	g, v := c.admit(modeDirect, id, "", sni)
	if g == nil {
		c.refused(modeDirect, 0, v)
		return
	}
	c.opened(modeDirect, 0, g)
	c.carry(modeDirect, 0, tc, g, start)
}

func (c *serverConn) streamStarted() {
	c.mu.Lock()
	c.active++
	c.mu.Unlock()
	c.streams.Add(1)
}

// streamDone ends a stream; the last one of a draining session wakes the
// goroutine that closes it.
func (c *serverConn) streamDone() {
	c.mu.Lock()
	c.active--
	if c.active == 0 && c.draining {
		select {
		case c.idle <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	c.streams.Done()
}

// drain stops new streams on this connection (yamux GoAway) and closes the
// session once its open streams have ended; a connection still in its
// handshake is closed; a direct connection goes on until it ends or close
// is called. It never waits for the TLS handshake's lock.
func (c *serverConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return
	}
	c.draining = true
	switch {
	case c.sess != nil:
		c.goAwayLocked()
	case c.phase == phaseHandshake:
		c.phase = phaseClosed
		c.raw.Close()
	}
	// Handshake done, session not yet up: serveMux sees draining.
}

// goAwayLocked sends GoAway and starts the goroutine that closes the
// session once idle, unless serveMux is already on its way out.
func (c *serverConn) goAwayLocked() {
	_ = c.sess.GoAway()
	if c.phase == phaseServing {
		c.idle = make(chan struct{}, 1)
		c.streams.Add(1)
		go c.closeWhenIdle(c.sess, c.idle)
	}
}

// drainCloseGrace is how long a drained session stays open once its streams
// have ended on this side and the peer has read their last frames.
const drainCloseGrace = time.Second

// closeWhenIdle closes a draining session once no stream is being served on
// it, woken by the last stream's end. The server's drain deadline bounds the
// wait: closeAll cuts it short.
func (c *serverConn) closeWhenIdle(sess *yamux.Session, idle <-chan struct{}) {
	defer c.streams.Done()
	for {
		c.mu.Lock()
		n := c.active
		c.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-sess.CloseChan():
			return
		case <-idle:
		}
	}
	// A ping goes out after every frame queued before it (the last data
	// and FIN of the streams), and its answer comes after the peer's
	// session has read them: closing before that could cut off the end of
	// a stream that is complete on this side. Then a grace for the peer's
	// application to read its streams to the end: a stream whose session
	// dies before that reads as cut off (yamux keeps no trace of the FIN
	// once the session is gone), and the tunnel resets its local
	// connection.
	_, _ = sess.Ping()
	t := time.NewTimer(drainCloseGrace)
	select {
	case <-sess.CloseChan(): // the peer closed it
	case <-t.C:
	}
	t.Stop()
	sess.Close()
}

// close ends the connection and everything on it. Idempotent.
func (c *serverConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = phaseClosed
	if c.sessionHeld {
		c.sessionHeld = false
		c.releaseSession()
	}
	// The socket first: the session's Close would otherwise wait (up to
	// 250ms) to flush frames to a peer that may not be reading.
	c.raw.Close()
	if c.sess != nil {
		c.sess.Close()
	}
}

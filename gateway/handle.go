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
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/rs/zerolog"
)

// requestTimeout bounds how long a new stream may take to send its request.
const requestTimeout = 10 * time.Second

// serverConn is one accepted connection, from handshake to close.
type serverConn struct {
	srv   *Server
	raw   net.Conn
	id    uint64
	peer  netip.AddrPort
	start time.Time
	log   zerolog.Logger

	cs tls.ConnectionState // after the handshake: re-checked on each new stream

	mu        sync.Mutex
	handshook bool // the handshake completed
	sess      *yamux.Session
	closed    bool
	draining  bool
	exiting   bool // serveMux is waiting for its streams: start no goroutine
	active    int  // streams being served
	streams   sync.WaitGroup
}

func (c *serverConn) serve() {
	defer c.srv.untrack(c)
	defer c.close()
	s := c.srv
	c.log = s.log.With().Uint64("conn", c.id).Str("peer", c.peer.String()).Logger()

	// Until its ClientHello is in, a connection holds no handshake slot:
	// only its place among the pending connections of its source.
	ticket, err := s.pending.Add(c.raw, c.peer.Addr())
	if err != nil {
		c.shed(shedRefused, err.Error())
		_ = conn.Reset(c.raw)
		return
	}
	defer ticket.Done()
	hc, deadline, err := conn.ReadHello(c.raw, s.cfg.HelloTimeout, s.cfg.HandshakeTimeout, ticket.Heard)
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
			s.handshakeFail.Add(1)
			c.log.Warn().Str("event", "handshake_failed").Str("reason", handshakeReason(err)).
				Dur("duration_ms", time.Since(c.start)).Msg("handshake failed")
		}
		return
	}
	ticket.Spoke()

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	select {
	case s.handshakes <- struct{}{}:
	case <-ctx.Done():
		s.handshakeFail.Add(1)
		c.log.Warn().Str("event", "handshake_failed").Str("reason", "overloaded: too many handshakes in flight").
			Int("max_handshakes", cap(s.handshakes)).Msg("handshake not started")
		return
	}
	tc := tls.Server(hc, s.tls)
	if c.isClosed() {
		<-s.handshakes
		return
	}
	_ = c.raw.SetDeadline(deadline)
	err = tc.HandshakeContext(ctx)
	<-s.handshakes
	ticket.Done()
	if err != nil {
		s.handshakeFail.Add(1)
		var rf *refusal
		if errors.As(err, &rf) { // direct mode: authorization said no during the handshake
			s.streamsRefused.Add(1)
			c.log.Info().Str("event", "stream_refused").Str("mode", "direct").Str("route", rf.route).
				Str("status", rf.v.status.String()).Str("rule", rf.v.rule).Str("reason", rf.v.reason).
				Dur("duration_ms", time.Since(c.start)).Msg("connection refused")
			return
		}
		c.log.Warn().Str("event", "handshake_failed").Str("reason", handshakeReason(err)).
			Dur("duration_ms", time.Since(c.start)).Msg("handshake failed")
		return
	}
	_ = c.raw.SetDeadline(time.Time{})
	s.handshakeOK.Add(1)
	cs := tc.ConnectionState()
	c.cs = cs
	c.mu.Lock()
	c.handshook = true
	c.mu.Unlock()
	id := conn.IdentityOf(cs.PeerCertificates[0])
	c.log = c.log.With().Object("identity", id).Logger()
	ev := c.log.Info().Str("event", "accept").Str("tls", tls.VersionName(cs.Version)).Bool("resumed", cs.DidResume)
	if cs.NegotiatedProtocol == mux.ALPN {
		ev.Str("mode", "mux").Msg("connection accepted")
	} else {
		ev.Str("mode", "direct").Str("sni", cs.ServerName).Msg("connection accepted")
	}
	if conn.ExpiresSoon(cs.PeerCertificates[0], time.Now()) {
		c.log.Warn().Str("event", "client_cert_expiring").Time("not_after", id.NotAfter).
			Msg("client certificate expires soon")
	}
	if cs.NegotiatedProtocol == mux.ALPN {
		c.serveMux(tc, &id)
		return
	}
	c.serveDirect(tc, &id, cs.ServerName)
}

func (c *serverConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Kinds of connections shed before their handshake.
const (
	shedSilent   = iota // no byte within --hello-timeout
	shedReplaced        // a newer connection from its source took its place
	shedRefused         // over a pending cap, with none to replace
	shedKinds
)

var shedNames = [shedKinds]string{"silent", "replaced", "refused"}

// The log of shed connections is rate-limited per kind, as the network
// gate's: a flood of idle sockets must not become a flood of log lines.
const (
	shedLogPerSec = 10
	shedLogBurst  = 20
)

// shed counts a connection given up before its handshake and logs it
// under its kind's rate limit.
func (c *serverConn) shed(kind int, reason string) {
	s := c.srv
	s.shed[kind].Add(1)
	ok, suppressed := s.shedLog[kind].Allow()
	if !ok {
		return
	}
	ev := c.log.Info().Str("event", "shed").Str("kind", shedNames[kind]).Str("reason", reason).
		Dur("duration_ms", time.Since(c.start))
	if suppressed > 0 {
		ev = ev.Uint64("suppressed", suppressed)
	}
	ev.Msg("connection shed before its handshake")
}

// handshakeReason says in words why a handshake failed, for the log.
func handshakeReason(err error) string {
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		return rf.Error()
	case errors.Is(err, conn.ErrRevoked):
		return "client certificate revoked: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "handshake timed out"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "not TLS: " + err.Error()
	}
	if errors.Is(err, io.EOF) {
		return "client closed the connection during the handshake"
	}
	return err.Error()
}

// serveMux runs a yamux server session: each stream opens with a request
// naming a route, which is authorized, answered and then piped.
func (c *serverConn) serveMux(tc *tls.Conn, id *conn.Identity) {
	s := c.srv
	sc := mux.NewSessionConn(tc)
	sess, err := yamux.Server(sc, s.yamux)
	if err != nil {
		_ = sc.Close()
		c.log.Error().Str("event", "session_failed").Err(err).Msg("yamux session failed")
		return
	}
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
	if c.draining { // drain came between the handshake and now
		c.goAwayLocked()
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.exiting = true
		c.mu.Unlock()
		c.streams.Wait()
		sess.Close()
		<-keptAlive
		c.log.Info().Str("event", "close").Dur("duration_ms", time.Since(c.start)).Msg("connection closed")
	}()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return // session closed by the peer, by keepalive failure, or by drain
		}
		stream := mux.Wrap(st)
		sc.Track(stream) // its waits end when the connection fails
		overloaded := sess.NumStreams() > s.cfg.MaxStreams
		c.streamStarted()
		go func() {
			if overloaded {
				s.streamsRefused.Add(1)
				c.refuse(stream, mux.Response{Status: mux.StatusOverloaded, Reason: "too many streams on this connection"}, "", "max-streams")
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

func (s *Server) isDraining() bool { return s.draining.Load() }

// serveStream reads one stream's request, authorizes it against the current
// state and answers. An accepted stream's backend is connected and carry
// pipes the stream to it and logs its end; carry is nil when the stream was
// refused (and closed).
func (c *serverConn) serveStream(stream *mux.Stream, id *conn.Identity) (carry func()) {
	s := c.srv
	start := time.Now()
	_ = stream.SetReadDeadline(start.Add(requestTimeout))
	req, err := mux.ReadRequest(stream)
	_ = stream.SetReadDeadline(time.Time{})
	if err != nil {
		s.streamsRefused.Add(1)
		c.refuse(stream, mux.Response{Status: mux.StatusBadRequest, Reason: mux.BadRequestReason(err, requestTimeout)}, "", "request")
		return nil
	}
	if s.isDraining() {
		s.streamsRefused.Add(1)
		c.refuse(stream, mux.Response{Status: mux.StatusShuttingDown, Reason: "the gateway is shutting down"}, req.Route, "drain")
		return nil
	}
	st := s.state.Load()
	if reason, rule := c.stillAdmitted(st); reason != "" {
		s.streamsRefused.Add(1)
		c.refuse(stream, mux.Response{Status: mux.StatusForbidden, Reason: reason}, req.Route, rule)
		return nil
	}
	v := st.authorize(id, req.Route, c.peer.Addr())
	if v.status != mux.StatusOK {
		s.streamsRefused.Add(1)
		c.refuse(stream, mux.Response{Status: v.status, Reason: v.reason}, req.Route, v.rule)
		return nil
	}
	release, ok := s.routeSlot(v.route)
	if !ok {
		s.streamsRefused.Add(1)
		c.refuse(stream, mux.Response{Status: mux.StatusOverloaded, Reason: "route " + quote(req.Route) + " is at its stream limit"}, req.Route, "max_streams")
		return nil
	}
	backend, err := c.dial(v.route)
	if err != nil {
		release()
		s.streamsRefused.Add(1)
		c.log.Warn().Str("event", "backend_unreachable").Str("route", req.Route).Str("backend", v.route.backend).Err(err).Send()
		c.refuse(stream, mux.Response{Status: mux.StatusUnreachable, Reason: "backend for route " + quote(req.Route) + " is unreachable"}, req.Route, v.rule)
		return nil
	}
	if err := mux.WriteResponse(stream, mux.Response{Status: mux.StatusOK}); err != nil {
		release()
		stream.Close()
		if backend != nil {
			backend.Close()
		}
		return nil
	}
	s.streamsOK.Add(1)
	c.log.Info().Str("event", "stream_open").Uint32("stream", stream.StreamID()).Str("route", req.Route).Str("rule", v.rule).Send()
	return func() {
		defer release()
		in, out, err := c.carry(stream, v.route, backend)
		ev := c.log.Info().Str("event", "stream_close").Uint32("stream", stream.StreamID()).Str("route", req.Route).
			Int64("bytes_in", in).Int64("bytes_out", out).Dur("duration_ms", time.Since(start))
		if err != nil {
			ev = ev.Str("error", err.Error())
		}
		ev.Send()
	}
}

// stillAdmitted checks a long-lived session against the current state
// before each new stream: a reload may since have revoked its certificate or
// taken its address off the network rules, and its certificate may have
// expired. It returns a reason for the peer and a rule for the log, or "".
func (c *serverConn) stillAdmitted(st *state) (reason, rule string) {
	if err := st.creds.CheckRevoked(c.cs); err != nil {
		return "client certificate revoked", err.Error()
	}
	if leaf := c.cs.PeerCertificates[0]; time.Now().After(leaf.NotAfter) {
		return "client certificate expired", "certificate not after " + leaf.NotAfter.UTC().Format(time.RFC3339)
	}
	if d := st.rules.Decide(c.peer.Addr()); !d.Allowed {
		return "source address no longer allowed", "network gate: " + d.String()
	}
	return "", ""
}

// refuse answers a stream with a refusal and closes it; the session goes on.
func (c *serverConn) refuse(stream *mux.Stream, resp mux.Response, route, rule string) {
	_ = stream.SetWriteDeadline(time.Now().Add(requestTimeout))
	_ = mux.WriteResponse(stream, resp)
	stream.Close()
	c.log.Info().Str("event", "stream_refused").Uint32("stream", stream.StreamID()).Str("route", route).
		Str("status", resp.Status.String()).Str("rule", rule).Str("reason", resp.Reason).Send()
}

// routeSlot takes one of a route's stream slots when it has a cap; the
// count lives in the server, by route name, so it survives reloads.
func (s *Server) routeSlot(r *route) (release func(), ok bool) {
	if r.maxStreams <= 0 {
		return func() {}, true
	}
	v, _ := s.routeStreams.LoadOrStore(r.name, new(atomic.Int64))
	n := v.(*atomic.Int64)
	if n.Add(1) > int64(r.maxStreams) {
		n.Add(-1)
		return nil, false
	}
	return func() { n.Add(-1) }, true
}

// dial connects to a route's backend; builtins need no connection (nil).
func (c *serverConn) dial(r *route) (net.Conn, error) {
	if r.backend == BuiltinEcho || r.backend == BuiltinDiscard {
		return nil, nil
	}
	d := net.Dialer{Timeout: r.dialTimeout}
	return d.Dial("tcp", r.backend)
}

// carry moves bytes between the client side and the backend until both
// directions end, and returns the bytes received from and sent to the client.
func (c *serverConn) carry(client net.Conn, r *route, backend net.Conn) (in, out int64, err error) {
	if idle := c.srv.cfg.IdleTimeout; idle > 0 {
		client = newIdleConn(client, idle)
	}
	switch r.backend {
	case BuiltinEcho:
		n, err := mux.Echo(client)
		return n, n, err
	case BuiltinDiscard:
		n, err := mux.Discard(client)
		return n, 0, err
	}
	return mux.Pipe(client, backend)
}

// serveDirect carries one direct-mode connection to the route its SNI names
// (authorized already during the handshake).
func (c *serverConn) serveDirect(tc *tls.Conn, id *conn.Identity, sni string) {
	s := c.srv
	start := time.Now()
	if s.isDraining() {
		s.streamsRefused.Add(1)
		c.log.Info().Str("event", "stream_refused").Str("mode", "direct").Str("status", mux.StatusShuttingDown.String()).
			Str("rule", "drain").Send()
		return
	}
	st := s.state.Load()
	name := st.directRoute(sni)
	v := st.authorize(id, name, c.peer.Addr()) // again: a reload may have come between handshake and now
	if v.status != mux.StatusOK {
		s.streamsRefused.Add(1)
		c.log.Info().Str("event", "stream_refused").Str("mode", "direct").Str("route", name).
			Str("status", v.status.String()).Str("rule", v.rule).Str("reason", v.reason).Send()
		return
	}
	release, ok := s.routeSlot(v.route)
	if !ok {
		s.streamsRefused.Add(1)
		c.log.Info().Str("event", "stream_refused").Str("mode", "direct").Str("route", name).
			Str("status", mux.StatusOverloaded.String()).Str("rule", "max_streams").Send()
		return
	}
	defer release()
	backend, err := c.dial(v.route)
	if err != nil {
		s.streamsRefused.Add(1)
		c.log.Warn().Str("event", "backend_unreachable").Str("mode", "direct").Str("route", name).
			Str("backend", v.route.backend).Err(err).Send()
		return
	}
	s.streamsOK.Add(1)
	c.log.Info().Str("event", "stream_open").Str("mode", "direct").Str("route", name).Str("rule", v.rule).Send()
	in, out, err := c.carry(tc, v.route, backend)
	ev := c.log.Info().Str("event", "stream_close").Str("mode", "direct").Str("route", name).
		Int64("bytes_in", in).Int64("bytes_out", out).Dur("duration_ms", time.Since(start))
	if err != nil {
		ev = ev.Str("error", err.Error())
	}
	ev.Send()
}

func (c *serverConn) streamStarted() {
	c.mu.Lock()
	c.active++
	c.mu.Unlock()
	c.streams.Add(1)
}

// streamDone ends a stream.
func (c *serverConn) streamDone() {
	c.mu.Lock()
	c.active--
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
	case !c.handshook:
		c.closed = true
		c.raw.Close()
	}
	// Handshake done, session not yet up: serveMux sees draining.
}

// goAwayLocked sends GoAway and starts the goroutine that closes the
// session once idle, unless serveMux is already on its way out.
func (c *serverConn) goAwayLocked() {
	_ = c.sess.GoAway()
	if !c.exiting {
		c.streams.Add(1)
		go c.closeWhenIdle(c.sess)
	}
}

// drainCloseGrace is how long a drained session stays open once its streams
// have ended on this side and the peer has read their last frames.
const drainCloseGrace = time.Second

// closeWhenIdle closes a draining session once no stream is left on it,
// not even one half-closed whose last frames are still on their way (so a
// client sees its streams end cleanly, not the session die). The server's
// drain deadline bounds the wait: closeAll cuts it short.
func (c *serverConn) closeWhenIdle(sess *yamux.Session) {
	defer c.streams.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.Lock()
		idle := c.active == 0 && sess.NumStreams() == 0
		c.mu.Unlock()
		if idle {
			// A ping goes out after every frame queued before it (the
			// last data and FIN of the streams), and its answer comes
			// after the peer's session has read them: closing before
			// that could cut off the end of a stream that is complete
			// on this side. Then a grace for the peer's application to
			// read its streams to the end: a stream whose session dies
			// before that reads as cut off (yamux keeps no trace of the
			// FIN once the session is gone), and the tunnel resets its
			// local connection.
			_, _ = sess.Ping()
			t := time.NewTimer(drainCloseGrace)
			select {
			case <-sess.CloseChan(): // the peer closed it
			case <-t.C:
			}
			t.Stop()
			sess.Close()
			return
		}
		select {
		case <-sess.CloseChan():
			return
		case <-tick.C:
		}
	}
}

// close ends the connection and everything on it. Idempotent.
func (c *serverConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	// The socket first: the session's Close would otherwise wait (up to
	// 250ms) to flush frames to a peer that may not be reading.
	c.raw.Close()
	if c.sess != nil {
		c.sess.Close()
	}
}

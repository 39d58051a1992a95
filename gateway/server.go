package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/logging"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("gateway: server closed")

// Server is the gateway. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg       Config
	log       zerolog.Logger
	state     atomic.Pointer[state]
	rules     acl.Holder // the network rules of the current state, for the gate
	tls       *tls.Config
	yamux     *yamux.Config
	keepAlive time.Duration // ping interval of mux.KeepAlive per session

	handshakes *fairSlots        // slots for handshakes in flight, shared fairly between sources
	pending    *conn.Pending     // connections before the end of their handshake, by source
	connRates  *conn.SourceRates // new connections per second, by source; nil: no limit
	holds      *conn.Holds       // sources held after abusing the protocol; nil: none
	recent     recentClients     // sources that completed a handshake lately
	hsRates    *conn.SourceRates // handshakes begun per second, by source; nil: no limit
	shedLog    [shedKinds]*logging.Limiter
	abuseLog   *logging.Limiter // session_flood and session_abuse events
	// the deny log of connections from trusted proxies, whose client
	// address is judged after the PROXY header, outside the gate
	proxyDenyLog  *logging.Limiter
	handshakeLog  *logging.Limiter // handshake_failed events
	proxiedDenied atomic.Uint64

	mu       sync.Mutex
	gates    map[*conn.Gate]struct{}
	conns    map[*serverConn]struct{}
	draining atomic.Bool    // set under mu, so that track and Shutdown agree; read without it per stream
	done     chan struct{}  // closed with draining: wakes the accept loops' backoff
	wg       sync.WaitGroup // one per connection handler
	nextID   atomic.Uint64

	routeStreams sync.Map        // route name -> *atomic.Int64 streams open, for max_streams
	ids          identities      // sessions, streams and stream opens per client identity
	reloadMu     sync.Mutex      // one reload at a time: load and both stores
	watch        *conn.FileWatch // under reloadMu: Watch's, marked at each reload
	gateAllowed  uint64          // counts of gates no longer serving, under mu
	gateDenied   uint64

	metrics    *metrics
	lastReload atomic.Pointer[reloadStatus]
	checks     checker // of the backends, while the admin endpoint is served

	// counters, read by Stats
	handshakeOK, handshakeFail, streamsOK, streamsRefused atomic.Uint64
	shed                                                  [shedKinds]atomic.Uint64
}

// New loads the credentials and the policy and returns a server ready to
// Serve.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		log:        *cfg.Log,
		handshakes: newFairSlots(cfg.MaxHandshakes, cfg.Pending.PrefixV4, cfg.Pending.PrefixV6),
		gates:      map[*conn.Gate]struct{}{},
		conns:      map[*serverConn]struct{}{},
		pending:    conn.NewPending(cfg.Pending),
		done:       make(chan struct{}),
		connRates: conn.NewSourceRates(conn.SourceRatesConfig{PerAddr: cfg.ConnRate.PerAddr, PerPrefix: cfg.ConnRate.PerPrefix,
			PrefixV4: cfg.Pending.PrefixV4, PrefixV6: cfg.Pending.PrefixV6}),
		holds: conn.NewHolds(cfg.AbuseHold, cfg.AbuseHoldMax),
		hsRates: conn.NewSourceRates(conn.SourceRatesConfig{PerAddr: cfg.HandshakeRate.PerAddr, PerPrefix: cfg.HandshakeRate.PerPrefix,
			PrefixV4: cfg.Pending.PrefixV4, PrefixV6: cfg.Pending.PrefixV6}),
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if s.metrics, err = newMetrics(s, reg); err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	s.proxyDenyLog = logging.NewLimiter(shedLogPerSec, shedLogBurst)
	s.handshakeLog = logging.NewLimiter(handshakeLogPerSec, handshakeLogBurst)
	s.abuseLog = logging.NewLimiter(shedLogPerSec, shedLogBurst)
	for k := range s.shedLog {
		s.shedLog[k] = logging.NewLimiter(shedLogPerSec, shedLogBurst)
	}
	s.yamux = mux.Config(s.log)
	s.yamux.SessionReceiveBudget = uint32(min(cfg.MaxSessionMemory, 1<<31))
	// Each session runs mux.KeepAlive instead, which closes the
	// connection under a session whose ping fails (see serveMux).
	s.keepAlive = s.yamux.KeepAliveInterval
	s.yamux.EnableKeepAlive = false
	s.tls = &tls.Config{GetConfigForClient: s.configForClient}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload builds a new state from the files and swaps it in. On error the old
// state stays and the error says why. Connections and streams already open
// carry on; new handshakes and new streams see the new state.
func (s *Server) Reload() error {
	s.reloadMu.Lock() // SIGHUP and the file watcher may both ask at once
	defer s.reloadMu.Unlock()
	if s.watch != nil { // marked before the load: a change during it is seen next time
		s.watch.Mark()
	}
	first := s.state.Load() == nil
	now := time.Now()
	st, err := loadState(&s.cfg, now)
	s.noteReload(first, now, err)
	if err != nil {
		if !first { // at start-up the caller reports it: there is no previous state
			s.log.Error().Str("event", "reload_failed").Err(err).Msg("reload failed; keeping the previous state")
		}
		return err
	}
	st.routes = s.metrics.forPolicy(st.pol)
	s.state.Store(st)
	s.rules.Store(st.pol.Gate())
	for _, w := range st.creds.Warnings {
		s.log.Warn().Str("event", "credential_warning").Msg(w)
	}
	event, msg := "reloaded", "state reloaded"
	if first {
		event, msg = "loaded", "state loaded"
	}
	s.log.Info().Str("event", event).Int("rules", st.pol.Gate().Len()).Int("routes", len(st.pol.Routes())).
		Str("cert_not_after", st.creds.Cert.Leaf.NotAfter.UTC().Format(time.RFC3339)).Msg(msg)
	return nil
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// ErrServerClosed then. Each accepted connection passes the network gate
// inside the accept loop first; denied ones never reach a goroutine.
func (s *Server) Serve(ln net.Listener) error {
	gate := conn.NewGate(ln, conn.GateConfig{Rules: &s.rules, Trusted: s.cfg.TrustedProxies, MaxConns: s.cfg.MaxConns, Log: s.log})
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.gates[gate] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.gates, gate)
		a, d := gate.Counts()
		s.gateAllowed += a
		s.gateDenied += d
		s.mu.Unlock()
	}()
	s.log.Info().Str("event", "listening").Str("addr", ln.Addr().String()).Msg("gateway listening")
	var backoff time.Duration
	for {
		c, err := gate.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining.Load()
			s.mu.Unlock()
			if draining || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// Out of file descriptors and the like: back off, do not
			// spin; a shutdown ends the wait.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error().Str("event", "accept_error").Err(err).Dur("retry_in_ms", backoff).Msg("accept failed")
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		// The connection rate of the source, here in the accept loop like
		// the gate; a connection through a trusted proxy is judged once its
		// header names the client (readProxyHeader).
		if s.connRates != nil || s.holds.Len() > 0 {
			if peer := conn.RemoteAddrPort(c); !s.isTrustedProxy(peer.Addr()) {
				if kind, reason := s.refuseSource(peer.Addr(), time.Now()); reason != "" {
					s.shedEarly(c, peer, kind, reason)
					continue
				}
			}
		}
		sc := s.track(c)
		if sc == nil {
			c.Close()
			continue
		}
		go sc.serve()
	}
}

// refuseSource says why a new connection from addr is refused before
// anything is read, if it is: its source is held for abuse, or over its
// connection rate.
func (s *Server) refuseSource(addr netip.Addr, now time.Time) (kind int, reason string) {
	if until, held := s.holds.Held(addr, now); held {
		return shedHeld, "its address is held for " + until.Sub(now).Round(time.Millisecond).String() +
			" more: a session from it was closed for abusing the protocol"
	}
	if ok, scope := s.connRates.Allow(addr, now); !ok {
		return shedConnRate, "over the connection rate of its " + scope
	}
	return 0, ""
}

func (s *Server) isTrustedProxy(a netip.Addr) bool {
	return s.cfg.TrustedProxies != nil && s.cfg.TrustedProxies.Allowed(a)
}

// track registers a connection for draining; nil when draining already.
func (s *Server) track(c net.Conn) *serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return nil
	}
	sc := &serverConn{srv: s, raw: c, id: s.nextID.Add(1), peer: conn.RemoteAddrPort(c), start: time.Now()}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	return sc
}

func (s *Server) untrack(sc *serverConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, tells every mux session that no new streams may
// open (yamux GoAway), and waits for streams and direct connections to end
// until ctx is done; then it closes whatever is left. It returns ctx.Err()
// when it had to cut connections, nil when all ended on their own.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopLocked()
	for g := range s.gates {
		g.Close()
	}
	for sc := range s.conns {
		sc.drain()
	}
	s.mu.Unlock()
	s.stopChecks()
	s.log.Info().Str("event", "draining").Msg("draining: no new connections or streams")
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeAll()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopLocked()
	for g := range s.gates {
		g.Close()
	}
	s.mu.Unlock()
	s.stopChecks()
	s.closeAll()
	s.wg.Wait()
	return nil
}

// stopLocked marks the server as draining, once.
func (s *Server) stopLocked() {
	if !s.draining.Swap(true) {
		close(s.done)
	}
}

// closeAll closes every connection, all at once: closing one can take a
// moment (its session waits, at most a second, for the streams' owners to
// see the end).
func (s *Server) closeAll() {
	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sc := range conns {
		wg.Go(sc.close)
	}
	wg.Wait()
}

// Stats are the server's counters since New.
type Stats struct {
	Allowed, Denied                uint64 // connections at the network gate
	HandshakesOK, HandshakesFailed uint64
	StreamsOK, StreamsRefused      uint64 // mux streams and direct-mode connections
	Open                           int    // connections open now
	// Connections shed before their handshake: silent past --hello-timeout,
	// replaced by a newer one from the same source over a pending cap, or
	// refused over a pending cap when none could be replaced.
	ShedSilent, ShedReplaced, ShedRefused uint64
	ShedProxy                             uint64 // from a trusted proxy without a valid PROXY header
	// Over --conn-rate-* or --handshake-rate-*, and handshakes whose slot
	// went to a client from a lighter source (fair sharing of the slots).
	ShedConnRate, ShedHandshakeRate, ShedPreempted uint64
	// From an address held after a session of its was closed for abuse
	// (Config.AbuseHold).
	ShedHeld uint64
	Pending  int // connections before the end of their handshake now
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	st := Stats{
		HandshakesOK: s.handshakeOK.Load(), HandshakesFailed: s.handshakeFail.Load(),
		StreamsOK: s.streamsOK.Load(), StreamsRefused: s.streamsRefused.Load(),
		ShedSilent: s.shed[shedSilent].Load(), ShedReplaced: s.shed[shedReplaced].Load(),
		ShedRefused: s.shed[shedRefused].Load(), ShedProxy: s.shed[shedProxy].Load(),
		ShedConnRate: s.shed[shedConnRate].Load(), ShedHandshakeRate: s.shed[shedHandshakeRate].Load(),
		ShedPreempted: s.shed[shedPreempted].Load(), ShedHeld: s.shed[shedHeld].Load(), Pending: s.pending.Counts().Pending,
	}
	s.mu.Lock()
	st.Allowed, st.Denied = s.gateAllowed, s.gateDenied+s.proxiedDenied.Load()
	for g := range s.gates {
		a, d := g.Counts()
		st.Allowed += a
		st.Denied += d
	}
	st.Open = len(s.conns)
	s.mu.Unlock()
	return st
}

// configForClient picks the current state's TLS configuration for each
// handshake, and the mode: mux when the client offers our ALPN, direct
// otherwise (with no ALPN negotiated, so any TLS client is served).
func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	st := s.state.Load()
	muxMode := false
	for _, p := range hello.SupportedProtos {
		if p == mux.ALPN {
			muxMode = true
			break
		}
	}
	peer := conn.RemoteAddrPort(hello.Conn)
	cached := s.recent.recent(peer.Addr(), time.Now())
	if muxMode {
		if cached {
			return st.muxCached, nil
		}
		return st.muxTLS, nil // authorization comes per stream
	}
	base := st.directTLS
	if cached {
		base = st.directCached
	}
	cfg := base.Clone()
	// Direct mode: the route is known now (SNI), so refuse during the
	// handshake: the client gets an alert, and no byte reaches a backend.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := st.creds.VerifyClient(cs); err != nil {
			return err
		}
		id := conn.IdentityOf(cs.PeerCertificates[0])
		if v := authorizeDirect(st.pol, &id, cs.ServerName, peer.Addr()); v.status != mux.StatusOK {
			return &refusal{v: v}
		}
		return nil
	}
	return cfg, nil
}

// refusal carries an authorization verdict out of a TLS callback.
type refusal struct{ v verdict }

func (r *refusal) Error() string { return r.v.status.String() + ": " + r.v.reason }

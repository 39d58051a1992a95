package mux

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// DialFunc connects to a gateway and returns a connection ready for yamux:
// the TLS handshake done and ALPN [ALPN] checked. It must honour ctx.
type DialFunc func(ctx context.Context) (net.Conn, error)

// ClientConfig configures a [Client]. Dial is required; zero values of the
// other fields mean the defaults given.
type ClientConfig struct {
	// Dial connects to the gateway. Required.
	Dial DialFunc
	// Logger receives session events; the zero Logger discards them.
	Logger zerolog.Logger
	// Yamux is the session configuration; nil means Config(Logger).
	Yamux *yamux.Config
	// MinBackoff is the shortest wait between two dials; default 100ms.
	MinBackoff time.Duration
	// MaxBackoff caps the wait after consecutive dial failures; default
	// 30s. After n failures the wait is drawn uniformly between MinBackoff
	// and min(MaxBackoff, MinBackoff*2^n) (full jitter above the minimum).
	MaxBackoff time.Duration
	// DialTimeout bounds one dial, whoever waits for it; default 30s.
	DialTimeout time.Duration
	// OpenTimeout bounds opening a stream and reading the gateway's answer
	// when the Open context has no earlier deadline; default 30s.
	OpenTimeout time.Duration
	// Retry, when set, is asked whether an Open whose session died under
	// it, before the gateway answered, may try again on a new session
	// (it does so at most twice), and whether an Open that finds the
	// current session dead may dial a new one; err is the error the Open
	// got (it wraps yamux.ErrSessionShutdown in the second case).
	// Returning false makes that Open return err at once (a later Open
	// dials again): for a cause that a new session would meet again, such
	// as the gateway refusing our certificate just after the handshake.
	// nil means always retry.
	Retry func(err error) bool
	// Probe, when set, tells whether a dial is worth making before its
	// backoff is over: while a dial waits out the backoff of earlier
	// failures, Probe is called at once and then every ProbeInterval,
	// each call bounded by a context of ProbeInterval, and the first that
	// returns nil ends the wait. Meant for a cheap check, such as a TCP
	// connect to a gateway that could not be reached (no TLS), so that
	// the tunnel is back moments after the gateway, however long the
	// backoff has grown. nil: the backoff is waited out.
	Probe func(ctx context.Context) error
	// ProbeInterval is the time between two Probe calls; default 250ms.
	ProbeInterval time.Duration
}

// Defaults of ClientConfig.
const (
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultDialTimeout = 30 * time.Second
	DefaultOpenTimeout = 30 * time.Second

	DefaultProbeInterval = 250 * time.Millisecond
)

// Client is the tunnel side of mux mode: one yamux session over one
// connection to the gateway, dialed when first needed, shared by all
// streams, and dialed again when it dies, with exponential backoff and
// jitter after failures. A Client is safe for concurrent use.
type Client struct {
	cfg       ClientConfig
	ycfg      *yamux.Config
	keepAlive time.Duration // ping interval of KeepAlive; 0: none
	log       zerolog.Logger

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // dial and open goroutines

	conns sync.Map // *yamux.Session → its *SessionConn, while the session lives

	mu       sync.Mutex
	closed   bool
	sess     *yamux.Session
	retired  []*yamux.Session // sessions the gateway sent GoAway on
	dial     *dialCall        // the dial in flight, shared by waiters
	failures int              // consecutive dial failures
	lastErr  error            // error of the last failed dial
	nextDial time.Time        // no dial starts before this

	closeOnce sync.Once
	closeErr  error
}

// dialCall is one dial shared by every Open waiting for a session.
type dialCall struct {
	done chan struct{} // closed when the dial finished
	err  error
	at   time.Time // when the dial starts (after the backoff)
}

// NewClient returns a Client; it dials nothing until the first Open.
// It panics if cfg.Dial is nil, a programming error.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Dial == nil {
		panic("mux.NewClient: ClientConfig.Dial is nil")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	ycfg := cfg.Yamux
	if ycfg == nil {
		ycfg = Config(cfg.Logger)
	}
	// Each session runs KeepAlive instead of yamux's own keepalive, so
	// that a failed ping closes the connection under the session and its
	// SessionConn ends the streams' waits (see SessionConn).
	keepAlive := time.Duration(0)
	if ycfg.EnableKeepAlive {
		c := *ycfg
		keepAlive, c.EnableKeepAlive = c.KeepAliveInterval, false
		ycfg = &c
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{cfg: cfg, ycfg: ycfg, keepAlive: keepAlive, log: cfg.Logger, ctx: ctx, cancel: cancel}
}

// Open opens a stream to route: it makes sure a session is up (dialing if
// there is none or it died, after waiting out the backoff of earlier
// failures), opens a stream, sends the [Request] and reads the [Response].
// On StatusOK it returns the stream ready for raw bytes; the caller closes
// it.
//
// Errors: a refusal is a *[RefusedError]; a failed dial is wrapped as
// "dialing gateway: ..." (and, when ctx ended during the backoff, wraps both
// ctx.Err() and the last dial error); an invalid route wraps [ErrRoute];
// after Close, an error wrapping net.ErrClosed. ctx bounds the whole call,
// and so does OpenTimeout for the stream exchange.
func (c *Client) Open(ctx context.Context, route string) (*Stream, error) {
	if err := ValidRoute(route); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		sess, err := c.session(ctx)
		if err != nil {
			return nil, err
		}
		st, err := c.open(ctx, sess, route)
		if err == nil {
			return st, nil
		}
		if attempt >= 2 || ctx.Err() != nil {
			return nil, err
		}
		switch {
		case errors.Is(err, yamux.ErrRemoteGoAway):
			// The gateway is draining the session: no byte of the
			// caller's went out; retry on a fresh session.
			c.retire(sess, err)
		case errors.Is(err, yamux.ErrSessionShutdown), errors.Is(err, ErrSessionClosed):
			// The session died: no byte of the caller's went out; retry
			// on a fresh session unless the cause is final.
			if c.cfg.Retry != nil && !c.cfg.Retry(err) {
				c.drop(sess)
				return nil, err
			}
			c.retire(sess, err)
		case isCredentialRefusal(err):
			// The gateway refused the stream because the session's
			// certificate is no longer good (expired, or revoked by a
			// reload of its CRL): every stream on that session would
			// be. Retire it, and try once on a session dialed with the
			// credentials as they are now (reloaded, or renewed); a
			// revoked certificate fails that handshake.
			c.retireIdle(sess, err)
		case errors.Is(err, yamux.ErrConnectionReset):
			// The gateway reset the stream before answering, as yamux
			// does for opens that cross its GoAway: try again, which
			// either works or meets ErrRemoteGoAway above.
		default:
			return nil, err
		}
	}
}

// open opens one stream on sess and does the request/response exchange.
func (c *Client) open(ctx context.Context, sess *yamux.Session, route string) (*Stream, error) {
	deadline := time.Now().Add(c.cfg.OpenTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	ys, err := c.openStream(ctx, sess)
	if err != nil {
		return nil, err
	}
	st := Wrap(ys)
	if sc, ok := c.conns.Load(sess); ok {
		sc.(*SessionConn).Track(st)
	}
	// Bound the exchange by the deadline, and by cancellation of ctx.
	_ = st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = st.Stream.SetDeadline(time.Unix(1, 0)) })
	resp, err := exchange(st, route)
	if !stop() {
		_ = st.Close()
		return nil, fmt.Errorf("opening stream for route %q: %w", route, context.Cause(ctx))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) { // the deadline above, just before ctx saw it
		_ = st.Close()
		return nil, fmt.Errorf("opening stream for route %q: no answer from the gateway: %w", route, context.DeadlineExceeded)
	}
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("opening stream for route %q: %w", route, err)
	}
	_ = st.SetDeadline(time.Time{})
	if resp.Status != StatusOK {
		_ = st.Close()
		return nil, &RefusedError{Route: route, Status: resp.Status, Reason: resp.Reason}
	}
	return st, nil
}

func exchange(st *Stream, route string) (Response, error) {
	if err := WriteRequest(st, Request{Route: route}); err != nil {
		return Response{}, err
	}
	return ReadResponse(st)
}

// openStream calls sess.OpenStream, which can block without a context when
// many opens are unacknowledged, in a goroutine owned by c, and gives up
// when ctx ends; a stream opened too late is closed.
func (c *Client) openStream(ctx context.Context, sess *yamux.Session) (*yamux.Stream, error) {
	type result struct {
		st  *yamux.Stream
		err error
	}
	var (
		mu        sync.Mutex
		abandoned bool
		ch        = make(chan result, 1)
	)
	started := c.goUnlessClosed(func() {
		st, err := sess.OpenStream()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if st != nil {
				_ = st.Close()
			}
			return
		}
		ch <- result{st, err}
	})
	if !started {
		return nil, fmt.Errorf("mux client: %w", net.ErrClosed)
	}
	select {
	case r := <-ch:
		return r.st, r.err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case r := <-ch: // it just finished
			return r.st, r.err
		default:
			abandoned = true
			return nil, fmt.Errorf("opening stream: %w", context.Cause(ctx))
		}
	}
}

// goUnlessClosed runs f in a goroutine that Close waits for, unless Close
// has begun: then it returns false and f does not run. Checking closed and
// adding to c.wg under c.mu, which Close takes to set closed before its
// wg.Wait, keeps every Add before that Wait (a WaitGroup must not go from
// zero to one while Wait runs). Goroutines that c.wg already counts (a
// dial) may use c.wg.Go directly.
func (c *Client) goUnlessClosed(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Go(f)
	return true
}

// session returns a live session, dialing or waiting for the shared dial.
func (c *Client) session(ctx context.Context) (*yamux.Session, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("mux client: %w", net.ErrClosed)
		}
		if c.sess != nil {
			if !c.sess.IsClosed() {
				s := c.sess
				c.mu.Unlock()
				return s, nil
			}
			// The session died before this Open could use it: as for
			// one that dies under an Open, Retry may call that final
			// (for this Open; the next one dials).
			c.sess = nil
			if c.cfg.Retry != nil {
				c.mu.Unlock()
				if err := fmt.Errorf("gateway session closed: %w", yamux.ErrSessionShutdown); !c.cfg.Retry(err) {
					return nil, err
				}
				c.log.Info().Msg("gateway session closed; dialing again")
				continue
			}
			c.log.Info().Msg("gateway session closed; dialing again")
		}
		call := c.dial
		if call == nil {
			call = c.startDialLocked()
		}
		lastErr := c.lastErr
		c.mu.Unlock()

		select {
		case <-call.done:
			if call.err != nil {
				return nil, call.err
			}
			// Loop: the session may already be gone again.
		case <-ctx.Done():
			if lastErr != nil && time.Now().Before(call.at) {
				return nil, fmt.Errorf("dialing gateway: %w while waiting %v to retry after: %w",
					context.Cause(ctx), time.Until(call.at).Round(time.Millisecond), lastErr)
			}
			return nil, fmt.Errorf("dialing gateway: %w", context.Cause(ctx))
		}
	}
}

// startDialLocked starts the shared dial; c.mu is held.
func (c *Client) startDialLocked() *dialCall {
	now := time.Now()
	at := c.nextDial
	if at.Before(now) {
		at = now
	}
	call := &dialCall{done: make(chan struct{}), at: at}
	c.dial = call
	c.wg.Go(func() { c.runDial(call) })
	return call
}

func (c *Client) runDial(call *dialCall) {
	sess, err := c.dialSession(call.at)
	c.mu.Lock()
	c.dial = nil
	start := time.Now()
	switch {
	case err != nil:
		c.failures++
		c.lastErr = err
		c.nextDial = start.Add(c.backoff(c.failures))
		c.log.Warn().Err(err).Int("failures", c.failures).
			Float64("retry_in_ms", millis(time.Until(c.nextDial))).Msg("dialing gateway failed")
	case c.closed:
		_ = sess.Close()
		sess, err = nil, fmt.Errorf("mux client: %w", net.ErrClosed)
	default:
		c.failures = 0
		c.lastErr = nil
		// Even after success, never dial twice within MinBackoff: a
		// gateway that accepts and drops at once is not hammered.
		c.nextDial = call.at.Add(c.cfg.MinBackoff)
		if c.sess != nil && !c.sess.IsClosed() {
			// Rotate put a newer session in place meanwhile: this
			// one, which no stream uses yet, is not needed.
			_ = sess.Close()
			break
		}
		c.sess = sess
		c.log.Debug().Msg("gateway session up")
	}
	c.mu.Unlock()
	call.err = err
	close(call.done)
}

// dialSession waits until at (or a probe says to go on), dials and starts
// a yamux client session.
func (c *Client) dialSession(at time.Time) (*yamux.Session, error) {
	if !c.waitBackoff(at) {
		return nil, fmt.Errorf("mux client: %w", net.ErrClosed)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, err := c.cfg.Dial(ctx)
	if err != nil {
		if c.ctx.Err() != nil {
			return nil, fmt.Errorf("mux client: %w", net.ErrClosed)
		}
		return nil, fmt.Errorf("dialing gateway: %w", err)
	}
	sc := NewSessionConn(conn)
	sess, err := yamux.Client(sc, c.ycfg)
	if err != nil {
		_ = sc.Close() // and conn
		return nil, fmt.Errorf("dialing gateway: starting yamux session: %w", err)
	}
	c.conns.Store(sess, sc)
	c.wg.Go(func() {
		if c.keepAlive > 0 {
			KeepAlive(sess, c.keepAlive, func(err error) {
				c.log.Warn().Err(err).Msg("no answer from the gateway to a ping: closing the session")
				_ = conn.Close() // the streams' waits end before the session does
			})
		}
		<-sess.CloseChan()
		c.conns.Delete(sess)
	})
	return sess, nil
}

// waitBackoff waits until at, or until a Probe succeeds; false when the
// client was closed meanwhile.
func (c *Client) waitBackoff(at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var tick <-chan time.Time
	if c.cfg.Probe != nil {
		if c.probe() {
			return true
		}
		tk := time.NewTicker(c.cfg.ProbeInterval)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case <-t.C:
			return true
		case <-c.ctx.Done():
			return false
		case <-tick:
			if c.probe() {
				return true
			}
		}
	}
}

// probe runs one bounded Probe; true means dial now.
func (c *Client) probe() bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.ProbeInterval)
	defer cancel()
	if err := c.cfg.Probe(ctx); err != nil || c.ctx.Err() != nil {
		return false
	}
	c.log.Info().Msg("the gateway accepts connections again: dialing now")
	return true
}

// backoff returns the wait after n consecutive failures.
func (c *Client) backoff(n int) time.Duration {
	lo, hi := c.cfg.MinBackoff, c.cfg.MaxBackoff
	ceil := lo
	for i := 0; i < n && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo+1)
}

// retire stops using sess for new streams. A dead session is dropped; one
// the gateway sent GoAway on keeps its streams until they end, and Close
// closes it.
func (c *Client) retire(sess *yamux.Session, why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == sess {
		c.sess = nil
		c.log.Info().Err(why).Msg("gateway session retired")
	}
	if !sess.IsClosed() && !c.closed {
		live := c.retired[:0]
		for _, s := range c.retired {
			if !s.IsClosed() {
				live = append(live, s)
			}
		}
		c.retired = append(live, sess)
	}
}

// The reasons the gateway gives when it refuses a stream because the
// session's client certificate is no longer good. A refusal with one of
// them retires the session (see Open).
const (
	ReasonCertRevoked = "client certificate revoked"
	ReasonCertExpired = "client certificate expired"
)

func isCredentialRefusal(err error) bool {
	var re *RefusedError
	return errors.As(err, &re) && re.Status == StatusForbidden &&
		(re.Reason == ReasonCertRevoked || re.Reason == ReasonCertExpired)
}

// retireInterval is how often a retired session is checked for streams
// left.
const retireInterval = 250 * time.Millisecond

// retireIdle stops using sess for new streams and closes it once its last
// stream has ended (streams open on it carry on until then).
func (c *Client) retireIdle(sess *yamux.Session, why error) {
	c.retire(sess, why)
	c.goUnlessClosed(func() {
		t := time.NewTicker(retireInterval)
		defer t.Stop()
		for {
			if sess.NumStreams() == 0 {
				_ = sess.Close()
				return
			}
			select {
			case <-sess.CloseChan():
				return
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// Rotate makes new streams use a new session, made before the current one
// is let go (make-before-break): it dials one now, with the credentials
// Dial uses at this moment, and once it is up new streams go to it; the
// previous session takes no new stream and is closed when its last stream
// ends. On a failed dial the current session stays in use and the error
// is returned. The dial is bounded by DialTimeout; a session dialed after
// ctx ended is closed unused. Meant for a reloaded or renewed client certificate.
func (c *Client) Rotate(ctx context.Context) error {
	type result struct {
		sess *yamux.Session
		err  error
	}
	ch := make(chan result, 1)
	if !c.goUnlessClosed(func() {
		sess, err := c.dialSession(time.Now())
		ch <- result{sess, err}
	}) {
		return fmt.Errorf("mux client: %w", net.ErrClosed)
	}
	r := <-ch // bounded by DialTimeout, and ended by Close
	if r.err == nil && ctx.Err() != nil {
		_ = r.sess.Close()
		return fmt.Errorf("rotating the gateway session: %w", context.Cause(ctx))
	}
	if r.err != nil {
		return r.err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = r.sess.Close()
		return fmt.Errorf("mux client: %w", net.ErrClosed)
	}
	old := c.sess
	c.sess = r.sess
	c.failures, c.lastErr = 0, nil
	c.mu.Unlock()
	c.log.Info().Msg("new gateway session up; the previous one takes no new streams")
	if old != nil {
		c.retireIdle(old, errors.New("replaced by a session with the current credentials"))
	}
	return nil
}

// drop stops using the dead session sess for new streams, quietly: the
// caller reports why it died.
func (c *Client) drop(sess *yamux.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == sess {
		c.sess = nil
	}
}

// Session returns the current session, or nil when none is up. It is meant
// for tests and metrics; streams should come from Open.
func (c *Client) Session() *yamux.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// Close closes the session (and any the gateway retired), stops a dial in
// flight and waits for the client's goroutines. Streams on the sessions end
// with [ErrSessionClosed]. Later Opens fail with an error wrapping
// net.ErrClosed. Close is idempotent; calls after the first return nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		sessions := append(c.retired, c.sess)
		c.sess, c.retired = nil, nil
		c.mu.Unlock()
		c.cancel()
		for _, s := range sessions {
			if s != nil {
				if err := s.Close(); err != nil && c.closeErr == nil {
					c.closeErr = err
				}
			}
		}
		c.wg.Wait()
	})
	return c.closeErr
}

// millis is d in milliseconds, to the microsecond, for log fields named
// *_ms (a number, whatever zerolog's package-level duration unit).
func millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

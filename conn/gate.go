package conn

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/rs/zerolog"
)

// GateConfig configures a Gate.
type GateConfig struct {
	// Rules is the network allow-list. Its zero value denies everything.
	Rules *acl.Holder
	// Trusted are load balancers whose connections pass the gate whatever
	// Rules say: they carry a PROXY header with the client's address,
	// which the server judges by Rules once it has read it. Nil: none.
	Trusted *acl.Set
	// MaxConns caps the connections open at once (0: no cap). The slot is
	// reserved before Accept, so a full gateway stops accepting rather than
	// accepting and dropping.
	MaxConns int
	// Log receives one "deny" event per denied connection, at most
	// DenyLogBurst at once and DenyLogPerSec per second after that; the
	// events left out are counted in the next one's "suppressed" field.
	Log           zerolog.Logger
	DenyLogPerSec float64 // default 10
	DenyLogBurst  float64 // default 20
}

// Gate is a net.Listener that checks each accepted connection's source
// address against the allow-list before anything reads from it. A denied
// connection is reset (SO_LINGER 0, when the connection has SetLinger) and
// closed inside Accept itself: no goroutine, no TLS, no byte read. Accept
// returns only allowed connections. Gate is safe for concurrent use.
type Gate struct {
	net.Listener
	cfg    GateConfig
	slots  chan struct{} // nil without MaxConns
	closed chan struct{}
	once   sync.Once

	allowed, denied atomic.Uint64
	now             func() time.Time // the clock of the deny-log rate limit; tests replace it
	logMu           sync.Mutex
	tokens          float64
	last            time.Time
	suppressed      uint64
}

var _ net.Listener = (*Gate)(nil)

// NewGate wraps ln.
func NewGate(ln net.Listener, cfg GateConfig) *Gate {
	if cfg.DenyLogPerSec <= 0 {
		cfg.DenyLogPerSec = 10
	}
	if cfg.DenyLogBurst <= 0 {
		cfg.DenyLogBurst = 20
	}
	if cfg.Rules == nil {
		cfg.Rules = new(acl.Holder)
	}
	g := &Gate{Listener: ln, cfg: cfg, closed: make(chan struct{}), tokens: cfg.DenyLogBurst, now: time.Now}
	if cfg.MaxConns > 0 {
		g.slots = make(chan struct{}, cfg.MaxConns)
	}
	return g
}

// Accept waits for a connection that the rules allow.
func (g *Gate) Accept() (net.Conn, error) {
	for {
		if g.slots != nil {
			select {
			case g.slots <- struct{}{}:
			case <-g.closed:
				return nil, net.ErrClosed
			}
		}
		c, err := g.Listener.Accept()
		if err != nil {
			g.release()
			return nil, err
		}
		addr := RemoteAddrPort(c)
		if g.cfg.Rules.Allowed(addr.Addr()) || g.cfg.Trusted != nil && g.cfg.Trusted.Allowed(addr.Addr()) {
			g.allowed.Add(1)
			if g.slots == nil {
				return c, nil
			}
			return &slotConn{Conn: c, release: g.release}, nil
		}
		// Logged and counted before the reset, so that whoever sees the
		// reset, or the count, also finds the log event.
		g.logDeny(addr)
		g.denied.Add(1)
		if lc, ok := c.(interface{ SetLinger(sec int) error }); ok {
			_ = lc.SetLinger(0) // reset: no TIME_WAIT left behind by a flood
		}
		_ = c.Close()
		g.release()
	}
}

func (g *Gate) release() {
	if g.slots != nil {
		<-g.slots
	}
}

// Close closes the listener; a blocked Accept returns an error wrapping
// net.ErrClosed. Connections already returned stay open. Close is
// idempotent: calls after the first return nil.
func (g *Gate) Close() error {
	var err error
	g.once.Do(func() {
		close(g.closed)
		err = g.Listener.Close()
	})
	return err
}

// Counts returns how many connections the gate has allowed and denied.
func (g *Gate) Counts() (allowed, denied uint64) { return g.allowed.Load(), g.denied.Load() }

// logDeny logs a denial under the token bucket; the matching rule is
// looked up only for events that are logged, not for a flood's suppressed
// ones.
func (g *Gate) logDeny(addr netip.AddrPort) {
	g.logMu.Lock()
	now := g.now()
	if !g.last.IsZero() {
		g.tokens += now.Sub(g.last).Seconds() * g.cfg.DenyLogPerSec
		if g.tokens > g.cfg.DenyLogBurst {
			g.tokens = g.cfg.DenyLogBurst
		}
	}
	g.last = now
	if g.tokens < 1 {
		g.suppressed++
		g.logMu.Unlock()
		return
	}
	g.tokens--
	suppressed := g.suppressed
	g.suppressed = 0
	g.logMu.Unlock()
	d := g.cfg.Rules.Decide(addr.Addr())
	ev := g.cfg.Log.Info().Str("event", "deny").Str("peer", addr.String()).Str("rule", d.String())
	if suppressed > 0 {
		ev = ev.Uint64("suppressed", suppressed)
	}
	ev.Msg("connection denied by network rules")
}

// RemoteAddrPort returns the peer address of c as a netip.AddrPort, unmapped
// (an IPv4-mapped IPv6 address becomes IPv4). The zero AddrPort when c is not
// an IP connection.
func RemoteAddrPort(c net.Conn) netip.AddrPort {
	ra := c.RemoteAddr()
	if ra == nil {
		return netip.AddrPort{}
	}
	if ta, ok := ra.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if ap, err := netip.ParseAddrPort(ra.String()); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// slotConn gives back its Gate slot when closed.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// SetLinger sets SO_LINGER on the underlying connection when it can, so
// that a reset of the connection still gives back the slot on Close.
func (c *slotConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}

// SyscallConn gives access to the underlying socket when it has one.
func (c *slotConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("connection has no socket")
}

// CloseWrite half-closes the underlying connection when it can.
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("connection does not support half-close")
}

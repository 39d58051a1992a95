package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/rs/zerolog"
)

// Options configure a Dialer.
type Options struct {
	Gateways       []string          // HOST:PORT, tried in order (failover)
	Creds          *conn.ClientCreds // client certificate and the CA the gateway must chain to
	ServerName     string            // name the gateway's certificate must be valid for
	Pins           []string          // optional SHA-256 pins (lowercase hex) of the gateway's certificate
	GatewayAllow   *acl.Set          // optional: gateway addresses (after DNS) we may connect to; nil = any
	ConnectTimeout time.Duration     // TCP connect + TLS handshake, per gateway; default 10s
	Direct         bool              // one TLS connection per stream, SNI = route, no mux
	Log            zerolog.Logger

	// Source is the local address connections are made from; the zero
	// Addr lets the system choose.
	Source netip.Addr
	// SessionCache, when set, keeps TLS sessions so that later handshakes
	// resume them; nil makes every handshake a full one.
	SessionCache tls.ClientSessionCache
	// OnHandshake, when set, is called with the state of every completed
	// TLS handshake (for metrics: version, group, resumption), from the
	// dialing goroutine.
	OnHandshake func(tls.ConnectionState)
	// Mux, when set, is the template of the shared session's mux.Client:
	// its backoff, timeouts and yamux configuration are used, its Retry
	// is asked as well as the Dialer's own; Dial and Probe are the
	// Dialer's, and Logger is Log. nil means the mux.Client defaults.
	// Unused in direct mode.
	Mux *mux.ClientConfig
}

// ErrALPN is wrapped by the *DialError of a server that did not negotiate
// mux.ALPN: it is no portcullis gateway, or an old one (direct mode talks
// to plain TLS servers).
var ErrALPN = errors.New("the server did not negotiate ALPN " + mux.ALPN)

// DialError is returned when no gateway could be reached or a handshake
// failed. Explanation says which side refused and why, as far as TLS tells.
type DialError struct {
	Gateway     string
	Explanation string
	Err         error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("gateway %s: %s", e.Gateway, e.Explanation)
}

func (e *DialError) Unwrap() error { return e.Err }

// Dialer opens streams to routes. It is safe for concurrent use.
type Dialer struct {
	opts   Options
	client *mux.Client // nil in direct mode

	mu          sync.Mutex
	lastErr     error // the last read error of a session connection (a TLS alert after the handshake)
	unreachable bool  // the last session dial could connect to no gateway at all (TCP)

	sessions atomic.Uint64 // mux sessions established, for the metrics
}

// NewDialer checks the options; it dials nothing until the first stream.
func NewDialer(o Options) (*Dialer, error) {
	if len(o.Gateways) == 0 {
		return nil, errors.New("tunnel: no gateway address")
	}
	if o.Creds == nil {
		return nil, errors.New("tunnel: no client credentials")
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	d := &Dialer{opts: o}
	if !o.Direct {
		var cfg mux.ClientConfig
		if o.Mux != nil {
			cfg = *o.Mux
		}
		also := cfg.Retry
		cfg.Dial, cfg.Probe, cfg.Logger = d.dialSession, d.probe, o.Log
		// A TLS alert that ended the session (the gateway refused our
		// certificate after the handshake) would end the next one too.
		cfg.Retry = func(err error) bool {
			return (also == nil || also(err)) && d.sessionAlert() == nil
		}
		d.client = mux.NewClient(cfg)
	}
	return d, nil
}

// Dial opens a stream to route. A refusal by the gateway is a
// *mux.RefusedError; a failure to reach or handshake with every gateway is a
// *DialError.
func (d *Dialer) Dial(ctx context.Context, route string) (net.Conn, error) {
	if err := mux.ValidRoute(route); err != nil {
		return nil, err
	}
	if d.opts.Direct {
		return d.dialDirect(ctx, route)
	}
	s, err := d.client.Open(ctx, route)
	if err != nil {
		var re *mux.RefusedError
		var de *DialError
		if errors.As(err, &re) || errors.As(err, &de) {
			return nil, err
		}
		// The session died under the first stream: a TLS 1.3 server refuses
		// a client certificate after the client's handshake has completed,
		// so the alert arrives on the first read. Report it as such.
		if last := d.sessionAlert(); last != nil {
			return nil, &DialError{Gateway: d.opts.Gateways[0], Explanation: conn.ExplainClientError(last, d.opts.ServerName), Err: last}
		}
		return nil, err
	}
	return s, nil
}

// sessionAlert returns the TLS alert that ended the last session, if one
// did. The alert may still be on its way to the session's reader when the
// stream's write fails, so it waits for it a little (bounded).
func (d *Dialer) sessionAlert() error {
	for range 50 {
		d.mu.Lock()
		last := d.lastErr
		d.mu.Unlock()
		if _, ok := conn.RemoteAlert(last); ok {
			return last
		}
		if last != nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// DialContext is Dial with a net.Dialer-like signature, so a Dialer can stand
// in for one in a database driver. The address is the route name, optionally
// followed by ":port" (a numeric port, ignored), e.g. "pg" or "pg:5432".
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("tunnel: network %q: only tcp", network)
	}
	route := addr
	if h, port, err := net.SplitHostPort(addr); err == nil && h != "" {
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			route = h
		}
	}
	return d.Dial(ctx, route)
}

// Reload loads the client certificate files again and, in mux mode, moves
// new streams to a session made with them before letting the current one
// go (see mux.Client.Rotate): streams open on the old session carry on
// until they end, new ones use the new certificate at once. When the
// files do not load, the old credentials and session stay and the error
// is returned; when the new session cannot be dialed, the credentials are
// loaded (the next dial uses them) and the dial's error is returned.
func (d *Dialer) Reload(ctx context.Context) error {
	if err := d.opts.Creds.Reload(); err != nil {
		return err
	}
	if d.client == nil {
		return nil
	}
	return d.client.Rotate(ctx)
}

// Close ends the shared session; streams on it end too.
func (d *Dialer) Close() error {
	if d.client != nil {
		return d.client.Close()
	}
	return nil
}

// errNotDown is what probe answers while the last dial reached a gateway:
// it failed for another reason (the handshake), which a TCP connect
// cannot tell is gone, so the backoff is waited out.
var errNotDown = errors.New("the last dial reached a gateway")

// probe is the mux client's Probe: after a dial that could connect to no
// gateway, a plain TCP connect (no TLS, within ctx) to each gateway in turn
// tells whether one accepts connections again.
func (d *Dialer) probe(ctx context.Context) error {
	d.mu.Lock()
	down := d.unreachable
	d.mu.Unlock()
	if !down {
		return errNotDown
	}
	nd := d.netDialer()
	var err error
	for _, gw := range d.opts.Gateways {
		var c net.Conn
		if c, err = nd.DialContext(ctx, "tcp", gw); err == nil {
			c.Close()
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

// dialSession connects to the first gateway that answers, with our ALPN.
func (d *Dialer) dialSession(ctx context.Context) (net.Conn, error) {
	c, unreachable, err := d.dialTLS(ctx, d.opts.ServerName, []string{mux.ALPN})
	d.mu.Lock()
	d.unreachable = unreachable
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != mux.ALPN {
		c.Close()
		return nil, &DialError{Gateway: c.RemoteAddr().String(), Err: ErrALPN,
			Explanation: fmt.Sprintf("the server does not speak %s (it negotiated %q): is it a portcullis gateway? For a plain TLS server use direct mode", mux.ALPN, p)}
	}
	d.mu.Lock()
	d.lastErr = nil
	d.mu.Unlock()
	d.sessions.Add(1)
	return &watchConn{Conn: c, d: d, readFailed: make(chan struct{})}, nil
}

func (d *Dialer) dialDirect(ctx context.Context, route string) (net.Conn, error) {
	c, _, err := d.dialTLS(ctx, route, nil)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dialTLS tries each gateway in order and returns the first completed
// handshake; the error of the last one otherwise, and whether no TCP
// connection could be made at all (every gateway refused or was
// unreachable).
func (d *Dialer) dialTLS(ctx context.Context, sni string, alpn []string) (_ *tls.Conn, unreachable bool, _ error) {
	var lastErr error
	unreachable = true
	for _, gw := range d.opts.Gateways {
		cfg := d.opts.Creds.TLSConfig(conn.ClientOptions{ServerName: d.opts.ServerName, SNI: sni, ALPN: alpn, Pins: d.opts.Pins})
		cfg.ClientSessionCache = d.opts.SessionCache
		dctx, cancel := context.WithTimeout(ctx, d.opts.ConnectTimeout)
		td := tls.Dialer{NetDialer: d.netDialer(), Config: cfg}
		c, err := td.DialContext(dctx, "tcp", gw)
		cancel()
		if err == nil {
			tc := c.(*tls.Conn)
			if d.opts.OnHandshake != nil {
				d.opts.OnHandshake(tc.ConnectionState())
			}
			return tc, false, nil
		}
		expl := conn.ExplainClientError(err, d.opts.ServerName)
		var op *net.OpError
		if errors.Is(err, ErrGatewayNotAllowed) {
			expl = "we refused to connect: " + err.Error()
		} else if errors.As(err, &op) && op.Op == "dial" && !errors.Is(err, syscall.ECONNRESET) {
			// Refused or unreachable. A reset is different: the gateway
			// accepted and closed at once, as its network gate does.
			expl = "cannot connect: " + strings.TrimPrefix(err.Error(), "dial tcp "+gw+": ")
		} else {
			unreachable = false
		}
		lastErr = &DialError{Gateway: gw, Explanation: expl, Err: err}
		d.opts.Log.Debug().Str("gateway", gw).Err(err).Msg("gateway dial failed")
		if ctx.Err() != nil {
			break
		}
	}
	return nil, unreachable && ctx.Err() == nil, lastErr
}

// ErrGatewayNotAllowed is wrapped when a gateway address (after DNS
// resolution) is outside Options.GatewayAllow. (A program that takes those
// rules from its command line adds the flag's name.)
var ErrGatewayNotAllowed = errors.New("gateway address outside the allowed gateway addresses")

// netDialer returns the TCP dialer of every connection: from Source, and
// only to addresses checkAddr admits.
func (d *Dialer) netDialer() *net.Dialer {
	nd := &net.Dialer{Control: d.checkAddr}
	if d.opts.Source.IsValid() {
		nd.LocalAddr = &net.TCPAddr{IP: d.opts.Source.AsSlice()}
	}
	return nd
}

// checkAddr runs before each connect, with the resolved address: a gateway
// outside the client-side allow-list is never connected to.
func (d *Dialer) checkAddr(_, address string, _ syscall.RawConn) error {
	if d.opts.GatewayAllow == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrGatewayNotAllowed, address)
	}
	if dec := d.opts.GatewayAllow.Decide(ap.Addr().Unmap()); !dec.Allowed {
		return fmt.Errorf("%w: %s is %s", ErrGatewayNotAllowed, ap.Addr(), dec)
	}
	return nil
}

// watchConn remembers the first read error of a session's connection, so a
// TLS alert that kills the session can be reported to the caller. A TLS 1.3
// gateway refuses a client certificate after our side of the handshake is
// done: the alert arrives on the first read, while the first write may fail
// (the gateway reset the connection) and make yamux close the connection
// before its reader has seen the alert. So a failed write waits, briefly,
// for the reader to get there first.
type watchConn struct {
	net.Conn
	d          *Dialer
	once       sync.Once
	readFailed chan struct{}
}

func (w *watchConn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if err != nil {
		w.once.Do(func() {
			w.d.mu.Lock()
			w.d.lastErr = err
			w.d.mu.Unlock()
			close(w.readFailed)
		})
	}
	return n, err
}

func (w *watchConn) Write(b []byte) (int, error) {
	n, err := w.Conn.Write(b)
	if err != nil {
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-w.readFailed:
		case <-t.C:
		}
		t.Stop()
	}
	return n, err
}

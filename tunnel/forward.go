package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/logging"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/rs/zerolog"
)

// Local is one forwarded port: connections accepted on Bind go to Route.
type Local struct {
	// Bind is HOST:PORT to listen on, or the absolute path of a UNIX
	// socket (it starts with "/"): created with mode 0600, removed when
	// the Forwarder closes (see Listen).
	Bind  string
	Route string
	// SameUser refuses a connection whose peer runs as another user than
	// this process (its effective uid): closed at once, logged as
	// "local_refused" with the peer's uid. The peer's uid comes from
	// SO_PEERCRED on a UNIX socket and from the kernel's socket table for
	// TCP, so a TCP peer on another machine is refused too: meant for
	// loopback and UNIX listeners. Linux only: elsewhere Listen fails with
	// an error wrapping ErrPeerCred.
	SameUser bool
	// Refusal is how a connection is told that its stream could not be
	// opened (the gateway refused it, or cannot be reached): RefusalReset
	// (a reset), or an answer in the client's protocol carrying the
	// gateway's status and reason.
	Refusal Refusal
}

// ErrPeerCred is wrapped when the user of a local peer cannot be known on
// this system (Local.SameUser needs Linux).
var ErrPeerCred = errors.New("the user of a local peer cannot be checked")

// Forwarder listens on local ports and carries each accepted connection to
// its route through a Dialer.
type Forwarder struct {
	d   *Dialer
	log zerolog.Logger
	lns []net.Listener
	loc []Local
	uid uint32 // our effective uid, for Local.SameUser

	refusedLog *logging.Limiter // local_refused events
	m          *forwardMetrics
}

// Listen opens every local listener, or none: on error those already opened
// are closed and the error names the address. A UNIX socket listener is
// created with mode 0600 (see Local.Bind); a socket file that a crashed run
// left behind is replaced if nothing listens on it, while a live socket or a
// file that is no socket is an error, and so is a directory that every user
// may write to without the sticky bit.
func Listen(d *Dialer, locals []Local, log zerolog.Logger) (*Forwarder, error) {
	f := &Forwarder{d: d, log: log, uid: uint32(os.Geteuid()), refusedLog: logging.NewLimiter(10, 20), m: newForwardMetrics(locals)}
	for _, l := range locals {
		ln, err := listen(l)
		if err != nil {
			for _, o := range f.lns {
				o.Close()
			}
			return nil, fmt.Errorf("listening on %s for route %q: %w", l.Bind, l.Route, err)
		}
		f.lns = append(f.lns, ln)
		f.loc = append(f.loc, l)
	}
	return f, nil
}

// listen opens the listener of one Local.
func listen(l Local) (net.Listener, error) {
	if _, err := ParseRefusal(string(l.Refusal)); err != nil {
		return nil, err
	}
	if l.SameUser && !peerCredAvailable {
		return nil, fmt.Errorf("%w on this system: the same-user check needs Linux", ErrPeerCred)
	}
	if strings.HasPrefix(l.Bind, "/") {
		return listenUnix(l.Bind)
	}
	return net.Listen("tcp", l.Bind)
}

// Check dials the gateway now, as the first connection would, then opens
// one stream to each route of the locals (each distinct route once, in
// order) and closes it as soon as the gateway has answered; for a route it
// accepts, the gateway has just dialed the backend. In direct mode each
// route is one TLS connection, closed once the handshake is done.
//
// err is a *DialError when no gateway could be reached or the handshake
// failed; the routes are then not checked. Otherwise refused holds one
// error per route that does not work: a *mux.RefusedError when the gateway
// refused it (its reason inside), or another error naming the route.
// ctx bounds the whole check; each stream also gets the Dialer's
// ConnectTimeout.
func (f *Forwarder) Check(ctx context.Context) (refused []error, err error) {
	seen := map[string]bool{}
	for _, l := range f.loc {
		if seen[l.Route] {
			continue
		}
		seen[l.Route] = true
		dctx, cancel := context.WithTimeout(ctx, f.d.opts.ConnectTimeout)
		s, err := f.d.Dial(dctx, l.Route)
		cancel()
		var de *DialError
		var re *mux.RefusedError
		switch {
		case err == nil:
			s.Close()
		case errors.As(err, &de):
			return nil, err
		case ctx.Err() != nil:
			return refused, ctx.Err()
		case errors.As(err, &re):
			refused = append(refused, err)
		default:
			refused = append(refused, fmt.Errorf("route %q: %w", l.Route, err))
		}
	}
	return refused, nil
}

// Close closes the listeners, for a Forwarder that is not going to Serve
// (Serve closes them itself when it ends).
func (f *Forwarder) Close() error {
	var errs []error
	for _, ln := range f.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Addrs returns the listening addresses, in the order of the locals.
func (f *Forwarder) Addrs() []net.Addr {
	out := make([]net.Addr, len(f.lns))
	for i, ln := range f.lns {
		out[i] = ln.Addr()
	}
	return out
}

// Serve accepts on every listener until ctx is done, then closes the
// listeners and waits for the connections to end (they are closed too).
func (f *Forwarder) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	for i, ln := range f.lns {
		l := f.loc[i]
		f.log.Info().Str("event", "listening").Str("addr", ln.Addr().String()).Str("route", l.Route).
			Bool("same_user", l.SameUser).Str("refusal", refusalName(l.Refusal)).Msg("forwarding")
		wg.Add(1)
		go func() {
			defer wg.Done()
			var backoff time.Duration
			for {
				c, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
						return
					}
					backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
					f.log.Error().Err(err).Msg("accept failed")
					select {
					case <-time.After(backoff):
						continue
					case <-ctx.Done():
						return
					}
				}
				backoff = 0
				mu.Lock()
				open[c] = struct{}{}
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					f.handle(ctx, c, l)
					mu.Lock()
					delete(open, c)
					mu.Unlock()
				}()
			}
		}()
	}
	<-ctx.Done()
	for _, ln := range f.lns {
		ln.Close()
	}
	mu.Lock()
	for c := range open {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	return nil
}

// handle carries one local connection through a stream.
func (f *Forwarder) handle(ctx context.Context, c net.Conn, l Local) {
	start := time.Now()
	log := f.log.With().Str("route", l.Route).Str("client", clientName(c)).Logger()
	if l.SameUser && !f.sameUser(c, log) {
		reset(c)
		c.Close()
		return
	}
	dctx, cancel := context.WithTimeout(ctx, f.d.opts.ConnectTimeout)
	s, err := f.d.Dial(dctx, l.Route)
	cancel()
	if err != nil {
		f.m.failedBy[l.Route].Inc()
		log.Warn().Str("event", "stream_failed").Err(err).Str("refusal", refusalName(l.Refusal)).Msg("cannot open stream; refusing the local connection")
		if rerr := refuseLocal(c, l.Refusal, err); rerr != nil {
			log.Debug().Str("event", "refusal_unanswered").Err(rerr).Msg("the local client was reset instead")
		}
		return
	}
	rm := f.m.opened(l.Route)
	in, out, err := mux.Pipe(c, s)
	rm.closed(in, out)
	ev := log.Debug()
	if err != nil {
		ev = log.Warn().Err(err)
	}
	ev.Str("event", "stream_close").Int64("bytes_out", in).Int64("bytes_in", out).
		Float64("duration_ms", millis(time.Since(start))).Msg("stream closed")
}

// sameUser reports whether the peer of c runs as our user; when it does
// not, or cannot be known, it logs the refusal.
func (f *Forwarder) sameUser(c net.Conn, log zerolog.Logger) bool {
	uid, err := peerUID(c)
	if err == nil && uid == f.uid {
		return true
	}
	ok, suppressed := f.refusedLog.Allow()
	if !ok {
		return false
	}
	ev := log.Warn().Str("event", "local_refused").Uint32("uid", f.uid).Uint64("suppressed", suppressed)
	if err != nil {
		ev = ev.Err(err)
	} else {
		ev = ev.Uint32("peer_uid", uid)
	}
	ev.Msg("refused a local connection from another user")
	return false
}

// clientName is the peer of a local connection for the log: its address,
// or "unix" for a UNIX socket (whose peers have no name).
func clientName(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "unix"
}

// refusalName is the style for the log.
func refusalName(r Refusal) string {
	if r == RefusalReset {
		return "reset"
	}
	return string(r)
}

// millis is d in milliseconds, to the microsecond, for log fields named
// *_ms (a number, whatever zerolog's package-level duration unit).
func millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

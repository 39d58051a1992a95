package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/mux"
	"github.com/rs/zerolog"
)

// Local is one forwarded port: connections accepted on Bind go to Route.
type Local struct {
	Bind  string // HOST:PORT to listen on
	Route string
}

// Forwarder listens on local ports and carries each accepted connection to
// its route through a Dialer.
type Forwarder struct {
	d   *Dialer
	log zerolog.Logger
	lns []net.Listener
	loc []Local
	m   *forwardMetrics
}

// Listen opens every local listener, or none: on error those already opened
// are closed and the error names the address.
func Listen(d *Dialer, locals []Local, log zerolog.Logger) (*Forwarder, error) {
	f := &Forwarder{d: d, log: log, m: newForwardMetrics(locals)}
	for _, l := range locals {
		ln, err := net.Listen("tcp", l.Bind)
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
		f.log.Info().Str("event", "listening").Str("addr", ln.Addr().String()).Str("route", l.Route).Msg("forwarding")
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
					f.handle(ctx, c, l.Route)
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
func (f *Forwarder) handle(ctx context.Context, c net.Conn, route string) {
	start := time.Now()
	log := f.log.With().Str("route", route).Str("client", c.RemoteAddr().String()).Logger()
	dctx, cancel := context.WithTimeout(ctx, f.d.opts.ConnectTimeout)
	s, err := f.d.Dial(dctx, route)
	cancel()
	if err != nil {
		f.m.failedBy[route].Inc()
		log.Warn().Str("event", "stream_failed").Err(err).Msg("cannot open stream; closing local connection")
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset, so the application sees an error, not an empty answer
		}
		c.Close()
		return
	}
	rm := f.m.opened(route)
	in, out, err := mux.Pipe(c, s)
	rm.closed(in, out)
	ev := log.Debug()
	if err != nil {
		ev = log.Warn().Err(err)
	}
	ev.Str("event", "stream_close").Int64("bytes_out", in).Int64("bytes_in", out).
		Float64("duration_ms", millis(time.Since(start))).Msg("stream closed")
}

// millis is d in milliseconds, to the microsecond, for log fields named
// *_ms (a number, whatever zerolog's package-level duration unit).
func millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

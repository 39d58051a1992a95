package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// abortAfter is how many failures in a row, with no success at all yet, end
// a run early: the setup is wrong, and more attempts only repeat it.
const abortAfter = 50

// maxDenyWait bounds how long deny mode waits for the server to close a
// connection before counting it as not denied.
const maxDenyWait = 2 * time.Second

// histShards is the number of latency histograms the workers share (each
// behind its own lock), so that thousands of workers do not need thousands
// of histograms.
const histShards = 16

// Run runs the settings against the gateway(s) and returns the result. It
// validates s first (the error then wraps config.ErrInvalid). creds are
// the client credentials; they may be nil when the mode needs no TLS (deny,
// or UnsafePlaintext). progress, when not nil, receives a live progress
// line twice a second (carriage return, no newline), cleared at the end.
//
// Worker i uses gateway i mod len(Gateways); so does mux session i. The
// run stops at s.Duration or after s.Count operations, or when ctx ends (the
// result then covers what was done), or early when the first abortAfter
// operations all fail. When not a single operation succeeded, Run returns
// the result and an error wrapping ErrAllFailed and the first failure.
// When the setup fails (the sessions of the streams and throughput modes
// cannot be opened), Run returns a nil result and the error, a
// *tunnel.DialError or *mux.RefusedError when the gateway is at fault.
func Run(ctx context.Context, s *Settings, creds *conn.ClientCreds, progress io.Writer) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := *s
	c.fill()
	if c.NeedsTLS() && creds == nil {
		return nil, errors.New("bench: this mode needs client credentials (--cert, --key, --ca)")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{
		s: &c, creds: creds, size: c.size(), ctx: ctx, cancel: cancel,
		kinds: map[string]uint64{}, samples: map[string]string{},
		ycfg: mux.Config(zerolog.Nop()),
	}
	if c.Resume {
		r.cache = tls.NewLRUClientSessionCache(max(64, 2*c.Concurrency))
	}
	if c.Source.IsValid() {
		r.local = &net.TCPAddr{IP: c.Source.AsSlice()}
	}
	res := &Result{Settings: c}
	var err error
	switch c.Mode {
	case ModeHandshake:
		err = r.runWorkers(res, progress, r.handshakeWorker)
	case ModeStreams:
		err = r.runStreams(res, progress)
	case ModeThroughput:
		err = r.runThroughput(res, progress)
	case ModeDeny:
		err = r.runWorkers(res, progress, r.denyWorker)
	}
	if err != nil {
		return nil, err // the setup failed: nothing was measured
	}
	r.finish(res)
	if res.Ops == 0 && r.first != nil {
		return res, fmt.Errorf("bench: %w; the first failure: %w", ErrAllFailed, r.first)
	}
	if res.Ops == 0 && ctx.Err() == nil {
		return res, fmt.Errorf("bench: %w: no operation completed within %v", ErrAllFailed, c.limit())
	}
	return res, nil
}

// runner is the state of one run, shared by its workers.
type runner struct {
	s      *Settings // filled
	creds  *conn.ClientCreds
	size   int
	cache  tls.ClientSessionCache // nil unless Resume
	local  *net.TCPAddr           // nil unless Source
	ycfg   *yamux.Config
	ctx    context.Context // canceled on abort
	cancel context.CancelFunc

	start    time.Time
	deadline time.Time

	claimed             atomic.Int64
	ok, failed, resumed atomic.Uint64
	up, down            atomic.Int64

	hists [histShards]struct {
		sync.Mutex
		h Histogram
	}

	mu        sync.Mutex
	kinds     map[string]uint64
	samples   map[string]string
	first     error
	tlsInfo   bool
	tlsVer    string
	tlsGroup  string
	aborted   bool
	abortedBy string
}

// begin starts the clock.
func (r *runner) begin() {
	r.start = time.Now()
	r.deadline = r.start.Add(r.s.limit())
}

// ended reports whether the run's context is over. A context's deadline
// passes before its Err says so (its timer has yet to run, which on a busy
// machine can take a while) and dials bounded by that deadline fail at
// once in the meantime: those are the stop, not failures to count.
func (r *runner) ended() bool {
	if r.ctx.Err() != nil {
		return true
	}
	dl, ok := r.ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// claim reserves one operation; false when the run is over.
func (r *runner) claim() bool {
	if r.ended() || !time.Now().Before(r.deadline) {
		return false
	}
	if r.s.Count > 0 && r.claimed.Add(1) > int64(r.s.Count) {
		return false
	}
	return true
}

// record counts one successful operation that took d.
func (r *runner) record(shard int, d time.Duration) {
	r.ok.Add(1)
	hs := &r.hists[shard%histShards]
	hs.Lock()
	hs.h.Record(d)
	hs.Unlock()
}

// fail counts one failed operation. Once the run is being stopped (its
// context ended: canceled by the caller, or aborted) failures are not
// counted: they are the stop cutting operations short.
func (r *runner) fail(err error) {
	if r.ended() {
		return
	}
	n := r.failed.Add(1)
	kind := Kind(err)
	r.mu.Lock()
	r.kinds[kind]++
	if _, ok := r.samples[kind]; !ok {
		r.samples[kind] = err.Error()
	}
	if r.first == nil {
		r.first = r.public(err)
	}
	if n >= abortAfter && r.ok.Load() == 0 && !r.aborted {
		r.aborted = true
		r.abortedBy = kind
		r.cancel()
	}
	r.mu.Unlock()
}

// noteTLS remembers the TLS parameters of the first connection.
func (r *runner) noteTLS(cs tls.ConnectionState) {
	if cs.DidResume {
		r.resumed.Add(1)
	}
	r.mu.Lock()
	if !r.tlsInfo {
		r.tlsInfo = true
		r.tlsVer = tls.VersionName(cs.Version)
		if cs.CurveID != 0 {
			r.tlsGroup = cs.CurveID.String()
		}
	}
	r.mu.Unlock()
}

// public turns a failure into the error a program maps to its exit status:
// a refusal stays a *mux.RefusedError and a failure of the tunnel.Dialer (to
// connect, or the handshake) a *tunnel.DialError that says which side
// refused and why; a failure to connect without TLS (UnsafePlaintext, deny)
// becomes a *tunnel.DialError too.
func (r *runner) public(err error) error {
	var re *mux.RefusedError
	var de *tunnel.DialError
	if errors.As(err, &re) || errors.As(err, &de) {
		return err
	}
	var oe *opError
	if errors.As(err, &oe) && oe.phase == phaseConnect {
		return &tunnel.DialError{Gateway: oe.addr, Explanation: "cannot connect: " + oe.err.Error(), Err: err}
	}
	return err
}

// dialFailed is the failure of a tunnel.Dialer's Dial, with the phase it
// failed in: connect (no TCP connection), handshake (TLS, including an
// alert just after it), or open (the stream: refused, or no answer).
func dialFailed(addr string, err error) error {
	phase := phaseOpen
	var de *tunnel.DialError
	if errors.As(err, &de) {
		phase = phaseHandshake
		var op *net.OpError
		if errors.As(de.Err, &op) && op.Op == "dial" && !isReset(err) {
			phase = phaseConnect
		}
	}
	return &opError{phase: phase, addr: addr, err: err}
}

// options are the tunnel.Dialer options of a connection to gateway addr;
// mc is the template of its mux client (nil in direct mode).
func (r *runner) options(addr string, direct bool, mc *mux.ClientConfig) tunnel.Options {
	return tunnel.Options{
		Gateways: []string{addr}, Creds: r.creds, ServerName: r.s.ServerName,
		ConnectTimeout: r.s.ConnectTimeout, Direct: direct, Log: zerolog.Nop(),
		Source: r.s.Source, SessionCache: r.cache, OnHandshake: r.noteTLS, Mux: mc,
	}
}

// finish fills res from the counters.
func (r *runner) finish(res *Result) {
	if !r.start.IsZero() && res.Elapsed == 0 {
		res.Elapsed = time.Since(r.start)
	}
	res.Ops = r.ok.Load()
	res.Errors = r.failed.Load()
	res.Resumed = r.resumed.Load()
	res.BytesUp = r.up.Load()
	res.BytesDown = r.down.Load()
	for i := range r.hists {
		res.Latency.Merge(&r.hists[i].h)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res.ErrorsByKind = r.kinds
	res.ErrorSamples = r.samples
	res.TLSVersion, res.TLSGroup = r.tlsVer, r.tlsGroup
	if r.aborted {
		res.Aborted = fmt.Sprintf("stopped after %d failures and no success (%s)", abortAfter, r.abortedBy)
	}
}

// gateway returns the address worker i uses.
func (r *runner) gateway(i int) string { return r.s.Gateways[i%len(r.s.Gateways)] }

// runWorkers runs Concurrency workers until the run is over.
func (r *runner) runWorkers(res *Result, progress io.Writer, work func(i int)) error {
	r.begin()
	stop := r.startProgress(progress)
	var wg sync.WaitGroup
	for i := range r.s.Concurrency {
		wg.Go(func() { work(i) })
	}
	wg.Wait()
	res.Elapsed = time.Since(r.start)
	stop()
	return nil
}

// message returns a random message of the run's size.
func (r *runner) message() []byte {
	b := make([]byte, r.size)
	_, _ = rand.Read(b)
	return b
}

// opContext bounds one operation.
func (r *runner) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.ctx, r.s.ConnectTimeout+r.s.OpTimeout)
}

// handshakeWorker opens, uses and closes one connection per operation.
func (r *runner) handshakeWorker(i int) {
	msg, buf := r.message(), make([]byte, r.size)
	gw := r.gateway(i)
	var direct *tunnel.Dialer
	if r.s.Direct && !r.s.UnsafePlaintext {
		d, err := tunnel.NewDialer(r.options(gw, true, nil))
		if err != nil {
			r.fail(err)
			return
		}
		defer d.Close()
		direct = d
	}
	for r.claim() {
		start := time.Now()
		var err error
		switch {
		case r.s.UnsafePlaintext:
			err = r.plainOp(gw, msg, buf)
		case direct != nil:
			err = r.directOp(direct, gw, msg, buf)
		default:
			err = r.muxOp(gw, msg, buf)
		}
		if err != nil {
			r.fail(err)
			continue
		}
		r.record(i, time.Since(start))
	}
}

// dialTCP connects to addr from the source address.
func (r *runner) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: r.s.ConnectTimeout}
	if r.local != nil { // not a typed nil in the interface
		d.LocalAddr = r.local
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &opError{phase: phaseConnect, addr: addr, err: err}
	}
	return c, nil
}

// muxOp: connect, handshake, yamux session, one stream with a round trip,
// close: a tunnel.Dialer of its own, whose mux client does not retry, so
// that one operation is one handshake.
func (r *runner) muxOp(addr string, msg, buf []byte) error {
	ctx, cancel := r.opContext()
	defer cancel()
	d, err := tunnel.NewDialer(r.options(addr, false, &mux.ClientConfig{
		Yamux: r.ycfg, DialTimeout: r.s.ConnectTimeout, OpenTimeout: r.s.OpTimeout,
		Retry: func(error) bool { return false },
	}))
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Dial(ctx, r.s.Route)
	if err != nil {
		return dialFailed(addr, err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(r.s.OpTimeout))
	return roundTrip(st, addr, msg, buf)
}

// directOp: connect, handshake with SNI = route (d is in direct mode), one
// round trip, close.
func (r *runner) directOp(d *tunnel.Dialer, addr string, msg, buf []byte) error {
	ctx, cancel := r.opContext()
	defer cancel()
	c, err := d.Dial(ctx, r.s.Route)
	if err != nil {
		return dialFailed(addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(r.s.OpTimeout))
	return roundTrip(c, addr, msg, buf)
}

// plainOp: connect, one round trip, close; no TLS.
func (r *runner) plainOp(addr string, msg, buf []byte) error {
	ctx, cancel := r.opContext()
	defer cancel()
	c, err := r.dialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(r.s.OpTimeout))
	return roundTrip(c, addr, msg, buf)
}

// roundTrip writes msg and reads as many bytes back, which must equal
// msg. Large messages are written while the echo is read, so that neither
// side waits on a full buffer.
//
// The failure reported is the first one: the writer's (it then ends the
// read) or the reader's (it then ends the write), each recorded under a
// lock and read only after the writer is done.
func roundTrip(c net.Conn, addr string, msg, buf []byte) error {
	buf = buf[:len(msg)]
	if len(msg) <= 16<<10 {
		if _, err := c.Write(msg); err != nil {
			return &opError{phase: phaseWrite, addr: addr, err: err}
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return &opError{phase: phaseRead, addr: addr, err: err}
		}
	} else {
		var (
			mu    sync.Mutex
			first *opError
			wg    sync.WaitGroup
		)
		failed := func(phase string, err error) bool {
			mu.Lock()
			defer mu.Unlock()
			if first != nil {
				return false
			}
			first = &opError{phase: phase, addr: addr, err: err}
			return true
		}
		wg.Go(func() {
			if _, err := c.Write(msg); err != nil && failed(phaseWrite, err) {
				_ = c.SetReadDeadline(time.Unix(1, 0)) // unblock the read
			}
		})
		if _, err := io.ReadFull(c, buf); err != nil && failed(phaseRead, err) {
			_ = c.SetWriteDeadline(time.Unix(1, 0)) // unblock the write
		}
		wg.Wait()
		if first != nil {
			return first
		}
	}
	if !bytes.Equal(msg, buf) {
		return &opError{phase: phaseEcho, addr: addr, err: ErrEcho}
	}
	return nil
}

// denyWorker connects from the source address and waits for the server to
// close the connection.
func (r *runner) denyWorker(i int) {
	gw := r.gateway(i)
	wait := min(r.s.OpTimeout, maxDenyWait)
	var b [1]byte
	for r.claim() {
		start := time.Now()
		c, err := r.dialTCP(r.ctx, gw)
		if isReset(err) {
			// Accepted and reset before connect returned: denied.
			r.record(i, time.Since(start))
			continue
		}
		if err != nil {
			r.fail(err)
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		n, err := c.Read(b[:])
		c.Close()
		switch {
		case n > 0:
			r.fail(&opError{phase: phaseDeny, addr: gw, err: fmt.Errorf("%w (it sent data)", ErrNotDenied)})
		case isTimeout(err):
			r.fail(&opError{phase: phaseDeny, addr: gw, err: fmt.Errorf("%w (still open after %v)", ErrNotDenied, wait)})
		case errors.Is(err, io.EOF) || isReset(err):
			r.record(i, time.Since(start))
		default:
			r.fail(&opError{phase: phaseDeny, addr: gw, err: err})
		}
	}
}

// newClients starts the tunnel.Dialers (one mux session each) of the
// streams and throughput modes and opens one stream on each, so that
// sessions are up before the clock starts. On error they are closed.
func (r *runner) newClients() ([]*tunnel.Dialer, error) {
	clients := make([]*tunnel.Dialer, r.s.Sessions)
	closeAll := func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}
	for j := range clients {
		d, err := tunnel.NewDialer(r.options(r.gateway(j), false, &mux.ClientConfig{
			Yamux: r.ycfg, DialTimeout: r.s.ConnectTimeout, OpenTimeout: r.s.OpTimeout,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Second,
		}))
		if err != nil {
			closeAll()
			return nil, err
		}
		clients[j] = d
	}
	for j, c := range clients {
		ctx, cancel := r.opContext()
		st, err := c.Dial(ctx, r.s.Route)
		cancel()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("session %d to %s: %w", j+1, r.gateway(j), r.public(err))
		}
		st.Close()
	}
	return clients, nil
}

// runStreams opens, uses and closes one stream per operation over
// long-lived sessions.
func (r *runner) runStreams(res *Result, progress io.Writer) error {
	clients, err := r.newClients()
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	return r.runWorkers(res, progress, func(i int) {
		c := clients[i%len(clients)]
		addr := r.gateway(i % len(clients))
		msg, buf := r.message(), make([]byte, r.size)
		for r.claim() {
			start := time.Now()
			if err := r.streamOp(c, addr, msg, buf); err != nil {
				r.fail(err)
				continue
			}
			r.record(i, time.Since(start))
		}
	})
}

func (r *runner) streamOp(c *tunnel.Dialer, addr string, msg, buf []byte) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.s.OpTimeout)
	defer cancel()
	st, err := c.Dial(ctx, r.s.Route)
	if err != nil {
		return dialFailed(addr, err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(r.s.OpTimeout))
	return roundTrip(st, addr, msg, buf)
}

// Package hostile is a mux client with a valid certificate that misuses
// the yamux protocol on purpose, for measuring what one authenticated
// client can make the gateway spend: it speaks yamux frames of its own
// making (spec.md of third_party/yamux) over mTLS, so it can do what a
// well-behaved yamux client never would (pings it does not read the answers
// of, data for streams that do not exist, data beyond the window it was
// granted). Every run is bounded in frames, bytes, sessions and time, and
// stops by itself.
package hostile

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/mux"
)

// Modes of a run.
const (
	// ModeRefused opens streams the gateway refuses (an unknown route, or
	// any route once Hold streams fill the session's cap) and pushes data
	// into each up to StreamBytes, within the window the gateway grants,
	// as a yamux client that keeps writing after the refusal would.
	ModeRefused = "refused"
	// ModePings sends Count pings per session and never reads the answers.
	ModePings = "pings"
	// ModeUnknown sends Count 16-byte data frames per session for stream
	// IDs that were never opened.
	ModeUnknown = "unknown"
	// ModeLogs opens Count refused streams per session, each a request
	// and a close, at most InFlight unanswered at once: refusals for log
	// volume.
	ModeLogs = "logs"
	// ModeWindow opens Count streams per session and sends StreamBytes on
	// each at once, whatever window it was granted.
	ModeWindow = "window"
)

// Modes lists the modes in the order of the issue that described them.
var Modes = []string{ModeRefused, ModePings, ModeUnknown, ModeLogs, ModeWindow}

// Options of a run. Zero counts take the mode's default (see Defaults).
type Options struct {
	Addr   string      // the gateway, HOST:PORT
	TLS    *tls.Config // client certificate, roots, server name; NextProtos is set to mux's ALPN
	Source string      // local IP to connect from; "" lets the system choose
	Mode   string

	Duration    time.Duration // the whole run, sessions and holds included
	MaxSessions int           // sessions at most (a session the gateway closes is replaced while time is left)
	Count       int           // pings (pings), frames (unknown) or streams (refused, logs, window) per session
	StreamBytes int           // data per stream (refused, window)
	Route       string        // the route the streams ask for (refused, logs, window)
	Hold        int           // streams to HoldRoute opened first and kept open (refused)
	HoldRoute   string
	InFlight    int   // logs: streams waiting for the gateway's answer at once
	MaxBytes    int64 // data bytes over the whole run, at most
}

// Defaults returns o with the zero fields of its mode filled in.
func Defaults(o Options) Options {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Route == "" {
		o.Route = "nosuch"
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 8 << 30
	}
	switch o.Mode {
	case ModePings:
		def(&o.Count, 500000)
		def(&o.MaxSessions, 1000)
	case ModeUnknown:
		def(&o.Count, 20000)
		def(&o.MaxSessions, 50)
	case ModeRefused:
		def(&o.Count, 256)
		def(&o.StreamBytes, 4<<20)
		def(&o.MaxSessions, 100)
	case ModeLogs:
		def(&o.Count, 40000)
		def(&o.InFlight, 64)
		def(&o.MaxSessions, 10)
	case ModeWindow:
		def(&o.Count, 16)
		def(&o.StreamBytes, 1<<20)
		def(&o.MaxSessions, 200)
	}
	if o.HoldRoute == "" {
		o.HoldRoute = "echo"
	}
	return o
}

// Check reports what is wrong with o (after Defaults), naming the option.
func Check(o Options) error {
	known := false
	for _, m := range Modes {
		known = known || m == o.Mode
	}
	switch {
	case !known:
		return fmt.Errorf("mode %q: want one of %v", o.Mode, Modes)
	case o.Addr == "":
		return errors.New("no gateway address")
	case o.TLS == nil:
		return errors.New("no TLS configuration")
	case o.Duration <= 0 || o.Duration > 10*time.Minute:
		return fmt.Errorf("duration %v: want more than 0 and at most 10m", o.Duration)
	case o.MaxSessions < 1 || o.MaxSessions > 10000:
		return fmt.Errorf("max-sessions %d: want 1 to 10000", o.MaxSessions)
	case o.Count < 1 || o.Count > 10_000_000:
		return fmt.Errorf("count %d: want 1 to 10,000,000", o.Count)
	case o.StreamBytes < 0 || o.StreamBytes > 1<<30:
		return fmt.Errorf("stream-bytes %d: want 0 to 1 GiB", o.StreamBytes)
	case o.Hold < 0 || o.Hold > 100000:
		return fmt.Errorf("hold %d: want 0 to 100,000", o.Hold)
	case o.Mode == ModeLogs && (o.InFlight < 1 || o.InFlight > 1000):
		return fmt.Errorf("in-flight %d: want 1 to 1000", o.InFlight)
	case o.MaxBytes < 0:
		return fmt.Errorf("max-bytes %d: want 0 or more", o.MaxBytes)
	}
	if err := mux.ValidRoute(o.Route); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	if err := mux.ValidRoute(o.HoldRoute); err != nil {
		return fmt.Errorf("hold-route: %w", err)
	}
	return nil
}

// Report is what a run did and what the gateway answered.
type Report struct {
	Mode     string  `json:"mode"`
	Sessions int     `json:"sessions"`
	Elapsed  float64 `json:"elapsed_s"`
	// ClosedByGateway counts the sessions the gateway ended (the
	// connection read EOF or failed, or a write failed) before the client
	// was done with them; FirstCloseMs is how long the first of them
	// lasted from its handshake.
	ClosedByGateway int     `json:"closed_by_gateway"`
	FirstCloseMs    float64 `json:"first_close_ms,omitempty"`
	Stalled         int     `json:"stalled"` // sessions left when a write waited 5 s
	GoAways         int64   `json:"go_aways"`
	Frames          int64   `json:"frames"`     // frames sent
	Pings           int64   `json:"pings"`      // pings sent
	Streams         int64   `json:"streams"`    // streams opened
	DataBytes       int64   `json:"data_bytes"` // stream data sent (requests included)
	Resets          int64   `json:"resets"`     // streams the gateway reset
	Refusals        int64   `json:"refusals"`   // answers other than OK
	Accepted        int64   `json:"accepted"`   // OK answers
	Unanswered      int64   `json:"unanswered"` // logs: streams given up on after 5 s without an answer
	// Refused counts the connections the gateway reset before or during
	// the handshake (an address held after abuse); the client dials again
	// 5 ms later while time is left.
	Refused    int64  `json:"refused"`
	Stopped    string `json:"stopped"` // why the run ended: duration, max-sessions, max-bytes, canceled
	FirstError string `json:"first_error,omitempty"`
}

// Run runs the flood o describes. started, if not nil, is called once,
// when the first session's flood begins. The report is valid when the
// error is not nil too (the run stopped at that error).
func Run(ctx context.Context, o Options, started func()) (*Report, error) {
	o = Defaults(o)
	if err := Check(o); err != nil {
		return nil, err
	}
	cfg := o.TLS.Clone()
	cfg.NextProtos = []string{mux.ALPN}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	r := &run{o: o, cfg: cfg, rep: &Report{Mode: o.Mode}, start: time.Now()}
	var once sync.Once
	for r.rep.Sessions < o.MaxSessions {
		if ctx.Err() != nil {
			r.rep.Stopped = "duration"
			break
		}
		if r.bytes.Load() >= o.MaxBytes {
			r.rep.Stopped = "max-bytes"
			break
		}
		s, err := r.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				r.rep.Stopped = "duration"
				break
			}
			if refusedDial(err) && r.rep.Refused < maxRefused {
				// Held (or shed) by the gateway: dial again, as a
				// hostile client would, a little later.
				r.rep.Refused++
				select {
				case <-ctx.Done():
				case <-time.After(refusedPause):
				}
				continue
			}
			r.finish()
			return r.rep, err
		}
		r.rep.Sessions++
		if started != nil {
			once.Do(started)
		}
		r.session(ctx, s)
	}
	if r.rep.Stopped == "" {
		r.rep.Stopped = "max-sessions"
	}
	if err := context.Cause(ctx); errors.Is(err, context.Canceled) {
		r.rep.Stopped = "canceled"
	}
	r.finish()
	return r.rep, nil
}

// A connection the gateway resets before the handshake ends is dialed
// again after refusedPause, at most maxRefused times in a run.
const (
	refusedPause = 5 * time.Millisecond
	maxRefused   = 100000
)

// refusedDial reports whether a dial failed because the gateway reset or
// closed the connection (rather than for a setting of the client's).
func refusedDial(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE)
}

type run struct {
	o     Options
	cfg   *tls.Config
	rep   *Report
	start time.Time

	frames, pings, streams, bytes, resets, refusals, accepted, goAways, unanswered atomic.Int64
}

func (r *run) finish() {
	r.rep.Elapsed = time.Since(r.start).Seconds()
	r.rep.Frames, r.rep.Pings, r.rep.Streams = r.frames.Load(), r.pings.Load(), r.streams.Load()
	r.rep.DataBytes, r.rep.Resets = r.bytes.Load(), r.resets.Load()
	r.rep.Refusals, r.rep.Accepted, r.rep.GoAways = r.refusals.Load(), r.accepted.Load(), r.goAways.Load()
	r.rep.Unanswered = r.unanswered.Load()
}

func (r *run) noteError(err error) {
	if r.rep.FirstError == "" && err != nil {
		r.rep.FirstError = err.Error()
	}
}

// dial connects from the source address and completes the mTLS handshake.
func (r *run) dial(ctx context.Context) (*session, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if r.o.Source != "" {
		ip := net.ParseIP(r.o.Source)
		if ip == nil {
			return nil, fmt.Errorf("source %q is not an IP address", r.o.Source)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	td := &tls.Dialer{NetDialer: d, Config: r.cfg}
	c, err := td.DialContext(hctx, "tcp", r.o.Addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", r.o.Addr, err)
	}
	tc := c.(*tls.Conn)
	if p := tc.ConnectionState().NegotiatedProtocol; p != mux.ALPN {
		tc.Close()
		return nil, fmt.Errorf("gateway %s negotiated ALPN %q, not %q (not a mux gateway?)", r.o.Addr, p, mux.ALPN)
	}
	return &session{r: r, c: tc, w: bufio.NewWriterSize(tc, 64<<10), began: time.Now(),
		streams: map[uint32]*stream{}, done: make(chan struct{}), nextID: 1}, nil
}

// session runs the mode's flood on one session, then ends it.
func (r *run) session(ctx context.Context, s *session) {
	defer s.c.Close()
	if r.o.Mode != ModePings {
		go s.read()
	}
	var err error
	switch r.o.Mode {
	case ModePings:
		err = s.pings(ctx)
	case ModeUnknown:
		err = s.unknown(ctx)
	case ModeRefused:
		err = s.refused(ctx)
	case ModeLogs:
		err = s.logs(ctx)
	case ModeWindow:
		err = s.window(ctx)
	}
	if err == nil {
		err = s.flush()
	}
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.rep.Stalled++ // the gateway stopped reading for writeTimeout
		r.noteError(err)
	default:
		s.gone(err) // a write failed: the gateway closed the session
	}
	if r.o.Mode != ModePings {
		// A moment for the gateway's answer to what was sent last (a
		// reset, a close), so that the report tells whether it closed
		// the session.
		t := time.NewTimer(300 * time.Millisecond)
		select {
		case <-s.done:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if s.closedBy.Load() {
		if r.rep.ClosedByGateway == 0 {
			s.mu.Lock()
			r.rep.FirstCloseMs = float64(s.closedAt.Sub(s.began).Microseconds()) / 1000
			s.mu.Unlock()
		}
		r.rep.ClosedByGateway++
	}
	s.closing.Store(true)
	s.c.Close()
	if r.o.Mode != ModePings {
		<-s.done
	}
}

// Frames (spec.md): version, type, flags, stream ID, length.
const (
	typeData   = 0
	typeWindow = 1
	typePing   = 2
	typeGoAway = 3

	flagSYN = 1
	flagACK = 2
	flagFIN = 4
	flagRST = 8

	headerLen     = 12
	initialWindow = 256 << 10 // what the protocol grants a new stream
	chunk         = 16 << 10  // data frames of at most this
	writeTimeout  = 5 * time.Second
)

func header(typ byte, flags uint16, id, length uint32) [headerLen]byte {
	var h [headerLen]byte
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

type session struct {
	r     *run
	c     *tls.Conn
	began time.Time

	wmu sync.Mutex
	w   *bufio.Writer

	mu       sync.Mutex
	streams  map[uint32]*stream
	nextID   uint32
	done     chan struct{} // closed when the reader ends
	closedBy atomic.Bool   // the gateway ended the session
	closing  atomic.Bool   // the client is closing it
	closedAt time.Time     // when, under mu
}

// stream is what the client knows of one stream it opened.
type stream struct {
	window   int64 // send credit left
	reset    bool
	fin      bool // the gateway closed its side
	answered bool // the first byte of the answer came
	sig      chan struct{}
}

func (st *stream) signal() {
	select {
	case st.sig <- struct{}{}:
	default:
	}
}

// gone records that the gateway ended the session (the first time only).
func (s *session) gone(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedBy.CompareAndSwap(false, true) {
		s.closedAt = time.Now()
		s.r.noteError(err)
	}
}

// writeFrame queues a frame; the bufio writer sends when full or flushed.
func (s *session) writeFrame(typ byte, flags uint16, id uint32, body []byte, length uint32) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	h := header(typ, flags, id, length)
	if _, err := s.w.Write(h[:]); err != nil {
		return err
	}
	if len(body) > 0 {
		if _, err := s.w.Write(body); err != nil {
			return err
		}
	}
	s.r.frames.Add(1)
	return nil
}

func (s *session) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	return s.w.Flush()
}

// read answers the gateway's pings and follows the streams' windows,
// answers, FINs and resets, until the connection ends.
func (s *session) read() {
	defer close(s.done)
	br := bufio.NewReaderSize(s.c, 64<<10)
	var h [headerLen]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			if !s.closing.Load() {
				s.gone(fmt.Errorf("reading: %w", err))
			}
			s.mu.Lock()
			for _, st := range s.streams {
				st.reset = true
				st.signal()
			}
			s.mu.Unlock()
			return
		}
		typ, flags := h[1], binary.BigEndian.Uint16(h[2:])
		id, length := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		var first byte
		if typ == typeData && length > 0 {
			b, err := br.Peek(1)
			if err == nil {
				first = b[0]
			}
			if _, err := br.Discard(int(length)); err != nil {
				continue // the next ReadFull reports it
			}
		}
		switch typ {
		case typePing:
			if flags&flagSYN != 0 {
				if s.writeFrame(typePing, flagACK, 0, nil, length) == nil {
					_ = s.flush()
				}
			}
			continue
		case typeGoAway:
			s.r.goAways.Add(1)
			continue
		}
		s.mu.Lock()
		st := s.streams[id]
		if st != nil {
			if typ == typeWindow {
				st.window += int64(length)
			}
			if typ == typeData && length > 0 && !st.answered {
				st.answered = true
				if first == byte(mux.StatusOK) {
					s.r.accepted.Add(1)
				} else {
					s.r.refusals.Add(1)
				}
			}
			if flags&flagFIN != 0 {
				st.fin = true
			}
			if flags&flagRST != 0 && !st.reset {
				st.reset = true
				s.r.resets.Add(1)
			}
			st.signal()
		}
		s.mu.Unlock()
	}
}

// open starts a stream asking for route; the request is its first data.
func (s *session) open(route string, flags uint16) (uint32, *stream, error) {
	s.mu.Lock()
	id := s.nextID
	s.nextID += 2
	req := append([]byte{mux.Version, byte(len(route))}, route...)
	st := &stream{window: initialWindow - int64(len(req)), sig: make(chan struct{}, 1)}
	s.streams[id] = st
	s.mu.Unlock()
	s.r.streams.Add(1)
	s.r.bytes.Add(int64(len(req)))
	return id, st, s.writeFrame(typeData, flagSYN|flags, id, req, uint32(len(req)))
}

func (s *session) forget(id uint32) {
	s.mu.Lock()
	delete(s.streams, id)
	s.mu.Unlock()
}

var zeros = make([]byte, chunk)

// pings sends Count pings in batches and never reads an answer; then it
// holds the session, unread, until the run's time is up or the gateway
// closes it (found by a write that fails: one ping every 250 ms).
func (s *session) pings(ctx context.Context) error {
	const batch = 1000
	buf := make([]byte, 0, batch*headerLen)
	for sent := 0; sent < s.r.o.Count; {
		if ctx.Err() != nil {
			return nil
		}
		n := min(batch, s.r.o.Count-sent)
		buf = buf[:0]
		for i := range n {
			h := header(typePing, flagSYN, 0, uint32(sent+i))
			buf = append(buf, h[:]...)
		}
		_ = s.c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := s.c.Write(buf); err != nil {
			return err
		}
		sent += n
		s.r.frames.Add(int64(n))
		s.r.pings.Add(int64(n))
	}
	for seq := uint32(1 << 31); ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
		h := header(typePing, flagSYN, 0, seq)
		_ = s.c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := s.c.Write(h[:]); err != nil {
			return err
		}
		s.r.frames.Add(1)
		s.r.pings.Add(1)
	}
}

// unknown sends Count data frames of 16 bytes for odd stream IDs (the
// client's) that were never opened.
func (s *session) unknown(ctx context.Context) error {
	for i := range s.r.o.Count {
		if i%1000 == 0 && (ctx.Err() != nil || s.closedBy.Load()) {
			return nil
		}
		if err := s.writeFrame(typeData, 0, uint32(1_000_001+2*i), zeros[:16], 16); err != nil {
			return err
		}
		s.r.bytes.Add(16)
	}
	return nil
}

// refused opens Hold streams to HoldRoute and keeps them open, then Count
// streams to Route, pushing StreamBytes into each within the window the
// gateway grants (waiting up to 250 ms for more), until it resets the
// stream.
func (s *session) refused(ctx context.Context) error {
	for range s.r.o.Hold {
		if _, _, err := s.open(s.r.o.HoldRoute, 0); err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	for range s.r.o.Count {
		if ctx.Err() != nil || s.closedBy.Load() || s.r.bytes.Load() >= s.r.o.MaxBytes {
			return nil
		}
		id, st, err := s.open(s.r.o.Route, 0)
		if err != nil {
			return err
		}
		if err := s.push(ctx, st, id); err != nil {
			return err
		}
	}
	return nil
}

// push sends StreamBytes on a stream within its window.
func (s *session) push(ctx context.Context, st *stream, id uint32) error {
	for sent := 0; sent < s.r.o.StreamBytes; {
		s.mu.Lock()
		win, reset := st.window, st.reset
		s.mu.Unlock()
		if reset || ctx.Err() != nil || s.r.bytes.Load() >= s.r.o.MaxBytes {
			return nil
		}
		if win <= 0 {
			if err := s.flush(); err != nil {
				return err
			}
			t := time.NewTimer(250 * time.Millisecond)
			select {
			case <-st.sig:
				t.Stop()
				continue
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			return nil // no more credit: on to the next stream
		}
		n := min(chunk, s.r.o.StreamBytes-sent, int(win))
		s.mu.Lock()
		st.window -= int64(n)
		s.mu.Unlock()
		if err := s.writeFrame(typeData, 0, id, zeros[:n], uint32(n)); err != nil {
			return err
		}
		sent += n
		s.r.bytes.Add(int64(n))
	}
	return s.flush()
}

// logs opens Count streams to Route, each a request and a FIN, with at
// most InFlight of them waiting for the gateway's answer (its reset or its
// FIN); one not answered in 5 s is given up on.
func (s *session) logs(ctx context.Context) error {
	type open struct {
		id uint32
		st *stream
		at time.Time
	}
	var inFlight []open
	wait := func(o open) {
		t := time.NewTimer(max(time.Until(o.at.Add(5*time.Second)), 0))
		defer t.Stop()
		for {
			s.mu.Lock()
			done := o.st.reset || o.st.fin
			s.mu.Unlock()
			if done {
				s.forget(o.id)
				return
			}
			select {
			case <-o.st.sig:
			case <-t.C:
				s.r.unanswered.Add(1)
				s.forget(o.id)
				return
			case <-ctx.Done():
				return
			}
		}
	}
	for range s.r.o.Count {
		if ctx.Err() != nil || s.closedBy.Load() {
			return nil
		}
		if len(inFlight) >= s.r.o.InFlight {
			if err := s.flush(); err != nil {
				return err
			}
			wait(inFlight[0])
			inFlight = inFlight[1:]
		}
		id, st, err := s.open(s.r.o.Route, flagFIN)
		if err != nil {
			return err
		}
		inFlight = append(inFlight, open{id, st, time.Now()})
	}
	if err := s.flush(); err != nil {
		return err
	}
	for _, o := range inFlight {
		wait(o)
	}
	return nil
}

// window opens Count streams to Route and sends StreamBytes on each at
// once, whatever the window.
func (s *session) window(ctx context.Context) error {
	for range s.r.o.Count {
		if ctx.Err() != nil || s.closedBy.Load() || s.r.bytes.Load() >= s.r.o.MaxBytes {
			return nil
		}
		id, _, err := s.open(s.r.o.Route, 0)
		if err != nil {
			return err
		}
		for sent := 0; sent < s.r.o.StreamBytes; {
			n := min(chunk, s.r.o.StreamBytes-sent)
			if err := s.writeFrame(typeData, 0, id, zeros[:n], uint32(n)); err != nil {
				return err
			}
			sent += n
			s.r.bytes.Add(int64(n))
		}
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}

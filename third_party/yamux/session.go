package yamux

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Session is used to wrap a reliable ordered connection and to
// multiplex it into multiple streams.
type Session struct {
	// remoteGoAway indicates the remote side does
	// not want futher connections. Must be first for alignment.
	remoteGoAway int32

	// localGoAway indicates that we should stop
	// accepting futher connections. Must be first for alignment.
	localGoAway int32

	// nextStreamID is the next stream we should
	// send. This depends if we are a client/server.
	nextStreamID uint32

	// config holds our configuration
	config *Config

	// logger is used for our logs
	logger Logger

	// conn is the underlying connection
	conn io.ReadWriteCloser

	// bufRead is a buffered reader
	bufRead *bufio.Reader

	// pings is used to track inflight pings
	pings    map[uint32]chan struct{}
	pingID   uint32
	pingLock sync.Mutex

	// streams maps a stream id to a stream, and inflight has an entry
	// for any outgoing stream that has not yet been established. Both are
	// protected by streamLock.
	streams    map[uint32]*Stream
	inflight   map[uint32]struct{}
	streamLock sync.Mutex

	// synCh acts like a semaphore. It is sized to the AcceptBacklog which
	// is assumed to be symmetric between the client and server. This allows
	// the client to avoid exceeding the backlog and instead blocks the open.
	synCh chan struct{}

	// acceptCh is used to pass ready streams to the client
	acceptCh chan *Stream

	// sendCh is used to mark a stream as ready to send,
	// or to send a header out directly.
	sendCh chan *sendReady

	// writeLock is held around every write to conn, by the send loop or
	// by a caller writing its frame itself (writeDirect); wbuf, under it,
	// is where writeDirect joins a frame's header and (the start of) its
	// body so that they go out in one conn.Write.
	writeLock sync.Mutex
	wbuf      []byte
	// loopWants is set while the send loop holds frames it has taken from
	// the queues: direct writes then queue behind them instead of taking
	// the lock first.
	loopWants atomic.Bool
	// deadliner is conn when it has write deadlines, which bound a
	// direct write by ConnectionWriteTimeout; nil disables direct writes.
	deadliner interface{ SetWriteDeadline(time.Time) error }

	// recvDoneCh is closed when recv() exits to avoid a race
	// between stream registration and stream shutdown
	recvDoneCh chan struct{}
	sendDoneCh chan struct{}

	// replyCh holds the frames the receive loop answers the peer with
	// (ping answers, stream resets) for the send loop to write; bounded
	// by MaxQueuedReplies, it never blocks the receive loop.
	replyCh chan replyFrame

	// recvUsed is the number of bytes received and not yet read, over all
	// streams; backlogUsed the part of it in streams waiting to be
	// accepted. numAccepted (under streamLock) counts the streams that
	// AcceptStream returned and that are still in streams.
	recvUsed    atomic.Int64
	backlogUsed atomic.Int64
	numAccepted int

	// starved holds the streams whose window update the receive budget
	// held back; budgetLoop retries them when bytes are read or freed.
	starved    map[*Stream]struct{}
	numStarved atomic.Int32
	starveLock sync.Mutex
	wakeCh     chan struct{}

	// client is set on the client side (odd stream IDs).
	client bool

	// rtt is the last round trip measured by Ping, in nanoseconds.
	rtt atomic.Int64

	// logLimit rate-limits the log lines a peer can cause frame by frame.
	logLimit logLimiter

	// shutdown is used to safely close a session
	shutdown        bool
	shutdownErr     error
	shutdownCh      chan struct{}
	shutdownLock    sync.Mutex
	shutdownErrLock sync.Mutex
}

// replyFrame is a header the receive loop queues for the send loop.
type replyFrame [headerSize]byte

// sendReady is used to either mark a stream as ready
// or to directly send a header
type sendReady struct {
	Hdr  []byte
	mu   sync.Mutex // Protects Body from unsafe reads.
	Body []byte
	Err  chan error
}

// newSession is used to construct a new session
func newSession(config *Config, conn io.ReadWriteCloser, client bool) *Session {
	logger := config.Logger
	if logger == nil {
		logger = log.New(config.LogOutput, "", log.LstdFlags)
	}

	s := &Session{
		config:     config,
		logger:     logger,
		conn:       conn,
		bufRead:    bufio.NewReader(conn),
		pings:      make(map[uint32]chan struct{}),
		streams:    make(map[uint32]*Stream),
		inflight:   make(map[uint32]struct{}),
		synCh:      make(chan struct{}, config.AcceptBacklog),
		acceptCh:   make(chan *Stream, config.AcceptBacklog),
		sendCh:     make(chan *sendReady, 64),
		recvDoneCh: make(chan struct{}),
		sendDoneCh: make(chan struct{}),
		shutdownCh: make(chan struct{}),
		starved:    make(map[*Stream]struct{}),
		wakeCh:     make(chan struct{}, 1),
	}
	replies := config.MaxQueuedReplies
	if replies == 0 {
		replies = defaultMaxQueuedReplies
	}
	s.replyCh = make(chan replyFrame, replies)
	s.deadliner, _ = conn.(interface{ SetWriteDeadline(time.Time) error })
	s.client = client
	if client {
		s.nextStreamID = 1
	} else {
		s.nextStreamID = 2
	}
	go s.recv()
	go s.send()
	if config.EnableKeepAlive {
		go s.keepalive()
	}
	if config.SessionReceiveBudget != 0 {
		go s.budgetLoop()
		go s.measureRTT()
	}
	return s
}

// IsClosed does a safe check to see if we have shutdown
func (s *Session) IsClosed() bool {
	select {
	case <-s.shutdownCh:
		return true
	default:
		return false
	}
}

// CloseChan returns a read-only channel which is closed as
// soon as the session is closed.
func (s *Session) CloseChan() <-chan struct{} {
	return s.shutdownCh
}

// NumStreams returns the number of currently open streams: the streams
// this side opened, the streams it accepted, and the streams the peer
// opened that wait in the accept backlog, until they are closed on both
// sides or reset.
func (s *Session) NumStreams() int {
	s.streamLock.Lock()
	num := len(s.streams)
	s.streamLock.Unlock()
	return num
}

// NumAcceptedStreams returns the number of streams that Accept or
// AcceptStream returned and that are not yet closed on both sides or
// reset: the count to cap the streams a peer may have open at once.
func (s *Session) NumAcceptedStreams() int {
	s.streamLock.Lock()
	num := s.numAccepted
	s.streamLock.Unlock()
	return num
}

// markAccepted counts stream as accepted, unless it already left the
// session (reset by the peer while in the backlog).
func (s *Session) markAccepted(stream *Stream) {
	s.streamLock.Lock()
	if s.streams[stream.id] == stream && !stream.accepted.Load() {
		// Its bytes leave the backlog's share of the budget.
		stream.recvLock.Lock()
		stream.accepted.Store(true)
		if !stream.detached {
			s.backlogUsed.Add(-int64(stream.recvBuf.Len()))
		}
		stream.recvLock.Unlock()
		s.numAccepted++
	}
	s.streamLock.Unlock()
}

// Open is used to create a new stream as a net.Conn
func (s *Session) Open() (net.Conn, error) {
	conn, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// OpenStream is used to create a new stream
func (s *Session) OpenStream() (*Stream, error) {
	if s.IsClosed() {
		return nil, ErrSessionShutdown
	}
	if atomic.LoadInt32(&s.remoteGoAway) == 1 {
		return nil, ErrRemoteGoAway
	}

	// Block if we have too many inflight SYNs
	select {
	case s.synCh <- struct{}{}:
	case <-s.shutdownCh:
		return nil, ErrSessionShutdown
	}

GET_ID:
	// Get an ID, and check for stream exhaustion
	id := atomic.LoadUint32(&s.nextStreamID)
	if id >= math.MaxUint32-1 {
		return nil, ErrStreamsExhausted
	}
	if !atomic.CompareAndSwapUint32(&s.nextStreamID, id, id+2) {
		goto GET_ID
	}

	// Register the stream
	stream := newStream(s, id, streamInit)
	s.streamLock.Lock()
	s.streams[id] = stream
	s.inflight[id] = struct{}{}
	s.streamLock.Unlock()

	if s.config.StreamOpenTimeout > 0 {
		go s.setOpenTimeout(stream)
	}

	// Send the window update to create
	if err := stream.sendWindowUpdate(); err != nil {
		select {
		case <-s.synCh:
		default:
			s.logger.Printf("[ERR] yamux: aborted stream open without inflight syn semaphore")
		}
		return nil, err
	}
	return stream, nil
}

// setOpenTimeout implements a timeout for streams that are opened but not established.
// If the StreamOpenTimeout is exceeded we assume the peer is unable to ACK,
// and close the session.
// The number of running timers is bounded by the capacity of the synCh.
func (s *Session) setOpenTimeout(stream *Stream) {
	timer := time.NewTimer(s.config.StreamOpenTimeout)
	defer timer.Stop()

	select {
	case <-stream.establishCh:
		return
	case <-s.shutdownCh:
		return
	case <-timer.C:
		// Timeout reached while waiting for ACK.
		// Close the session to force connection re-establishment.
		s.logger.Printf("[ERR] yamux: aborted stream open (destination=%s): %v", s.RemoteAddr().String(), ErrTimeout.err)
		s.Close()
	}
}

// Accept is used to block until the next available stream
// is ready to be accepted.
func (s *Session) Accept() (net.Conn, error) {
	conn, err := s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return conn, err
}

// AcceptStream is used to block until the next available stream
// is ready to be accepted.
func (s *Session) AcceptStream() (*Stream, error) {
	select {
	case stream := <-s.acceptCh:
		s.markAccepted(stream)
		if err := stream.sendWindowUpdate(); err != nil {
			return nil, err
		}
		return stream, nil
	case <-s.shutdownCh:
		return nil, s.shutdownErr
	}
}

// AcceptStream is used to block until the next available stream
// is ready to be accepted.
func (s *Session) AcceptStreamWithContext(ctx context.Context) (*Stream, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case stream := <-s.acceptCh:
		s.markAccepted(stream)
		if err := stream.sendWindowUpdate(); err != nil {
			return nil, err
		}
		return stream, nil
	case <-s.shutdownCh:
		return nil, s.shutdownErr
	}
}

// Close is used to close the session and all streams.
// Attempts to send a GoAway before closing the connection.
func (s *Session) Close() error {
	s.shutdownLock.Lock()
	defer s.shutdownLock.Unlock()

	if s.shutdown {
		return nil
	}
	s.shutdown = true

	s.shutdownErrLock.Lock()
	if s.shutdownErr == nil {
		s.shutdownErr = ErrSessionShutdown
	}
	s.shutdownErrLock.Unlock()

	close(s.shutdownCh)

	s.conn.Close()
	<-s.recvDoneCh

	s.streamLock.Lock()
	defer s.streamLock.Unlock()
	for _, stream := range s.streams {
		stream.forceClose()
	}
	<-s.sendDoneCh
	return nil
}

// exitErr is used to handle an error that is causing the
// session to terminate.
func (s *Session) exitErr(err error) {
	s.shutdownErrLock.Lock()
	if s.shutdownErr == nil {
		s.shutdownErr = err
	}
	s.shutdownErrLock.Unlock()
	s.Close()
}

// GoAway can be used to prevent accepting further
// connections. It does not close the underlying conn.
func (s *Session) GoAway() error {
	return s.waitForSend(s.goAway(goAwayNormal), nil)
}

// goAway is used to send a goAway message
func (s *Session) goAway(reason uint32) header {
	atomic.SwapInt32(&s.localGoAway, 1)
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeGoAway, 0, 0, reason)
	return hdr
}

// Ping is used to measure the RTT response time
func (s *Session) Ping() (time.Duration, error) {
	// Get a channel for the ping
	ch := make(chan struct{})

	// Get a new ping id, mark as pending
	s.pingLock.Lock()
	id := s.pingID
	s.pingID++
	s.pings[id] = ch
	s.pingLock.Unlock()

	// Send the ping request
	hdr := header(make([]byte, headerSize))
	hdr.encode(typePing, flagSYN, 0, id)
	if err := s.waitForSend(hdr, nil); err != nil {
		return 0, err
	}

	// Wait for a response
	start := time.Now()
	select {
	case <-ch:
	case <-time.After(s.config.ConnectionWriteTimeout):
		s.pingLock.Lock()
		delete(s.pings, id) // Ignore it if a response comes later.
		s.pingLock.Unlock()
		return 0, ErrTimeout
	case <-s.shutdownCh:
		return 0, ErrSessionShutdown
	}

	// Compute the RTT
	rtt := time.Since(start)
	s.rtt.Store(int64(rtt))
	return rtt, nil
}

// measureRTT pings the peer once, so that windows can be tuned to the
// round trip from the start.
func (s *Session) measureRTT() {
	_, _ = s.Ping()
}

// growWithin is how quickly a reader must drain half its window for the
// window to grow: four round trips, or 1ms before one is measured.
func (s *Session) growWithin() time.Duration {
	if rtt := time.Duration(s.rtt.Load()); rtt > 0 {
		return 4 * rtt
	}
	return time.Millisecond
}

// releaseRecv gives n read or dropped bytes back to the receive budget and
// wakes the streams it starved.
func (s *Session) releaseRecv(n int) {
	if n == 0 {
		return
	}
	s.recvUsed.Add(-int64(n))
	if s.numStarved.Load() != 0 {
		asyncNotify(s.wakeCh)
	}
}

// starve records a stream whose window update the budget held back.
func (s *Session) starve(stream *Stream) {
	s.starveLock.Lock()
	if _, ok := s.starved[stream]; !ok {
		s.starved[stream] = struct{}{}
		s.numStarved.Add(1)
	}
	s.starveLock.Unlock()
	// Bytes may have been read or freed since the update was computed.
	asyncNotify(s.wakeCh)
}

// unstarve forgets a stream that left the session.
func (s *Session) unstarve(stream *Stream) {
	if s.numStarved.Load() == 0 {
		return
	}
	s.starveLock.Lock()
	if _, ok := s.starved[stream]; ok {
		delete(s.starved, stream)
		s.numStarved.Add(-1)
	}
	s.starveLock.Unlock()
}

// budgetLoop retries the window updates of starved streams when the
// budget has room again. One goroutine per session with a budget.
func (s *Session) budgetLoop() {
	var streams []*Stream
	for {
		select {
		case <-s.wakeCh:
		case <-s.shutdownCh:
			return
		}
		if int64(s.config.SessionReceiveBudget)-s.recvUsed.Load() < minBudgetedUpdate {
			continue // woken again when bytes are read or freed
		}
		s.starveLock.Lock()
		streams = streams[:0]
		for stream := range s.starved {
			streams = append(streams, stream)
			delete(s.starved, stream)
		}
		s.numStarved.Store(0)
		s.starveLock.Unlock()
		for i, stream := range streams {
			_ = stream.sendWindowUpdate() // starves it again if still short
			streams[i] = nil
		}
	}
}

// keepalive is a long running goroutine that periodically does
// a ping to keep the connection alive.
func (s *Session) keepalive() {
	for {
		select {
		case <-time.After(s.config.KeepAliveInterval):
			_, err := s.Ping()
			if err != nil {
				if err != ErrSessionShutdown {
					s.logger.Printf("[ERR] yamux: keepalive failed: %v", err)
					s.exitErr(ErrKeepAliveTimeout)
				}
				return
			}
		case <-s.shutdownCh:
			return
		}
	}
}

// waitForSendErr waits to send a header, checking for a potential shutdown
func (s *Session) waitForSend(hdr header, body []byte) error {
	errCh := make(chan error, 1)
	return s.waitForSendErr(hdr, body, errCh)
}

// waitForSendErr waits to send a header with optional data, checking for a
// potential shutdown. Since there's the expectation that sends can happen
// in a timely manner, we enforce the connection write timeout here.
func (s *Session) waitForSendErr(hdr header, body []byte, errCh chan error) error {
	if done, err := s.writeDirect(hdr, body); done {
		return err
	}
	t := timerPool.Get()
	timer := t.(*time.Timer)
	timer.Reset(s.config.ConnectionWriteTimeout)
	defer func() {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timerPool.Put(t)
	}()

	ready := &sendReady{Hdr: hdr, Body: body, Err: errCh}
	select {
	case s.sendCh <- ready:
	case <-s.shutdownCh:
		return ErrSessionShutdown
	case <-timer.C:
		return ErrConnectionWriteTimeout
	}

	bodyCopy := func() {
		if body == nil {
			return // A nil body is ignored.
		}

		// In the event of session shutdown or connection write timeout,
		// we need to prevent `send` from reading the body buffer after
		// returning from this function since the caller may re-use the
		// underlying array.
		ready.mu.Lock()
		defer ready.mu.Unlock()

		if ready.Body == nil {
			return // Body was already copied in `send`.
		}
		newBody := make([]byte, len(body))
		copy(newBody, body)
		ready.Body = newBody
	}

	select {
	case err := <-errCh:
		return err
	case <-s.shutdownCh:
		bodyCopy()
		return ErrSessionShutdown
	case <-timer.C:
		bodyCopy()
		return ErrConnectionWriteTimeout
	}
}

// sendNoWait does a send without waiting. Since there's the expectation that
// the send happens right here, we enforce the connection write timeout if we
// can't queue the header to be sent.
func (s *Session) sendNoWait(hdr header) error {
	t := timerPool.Get()
	timer := t.(*time.Timer)
	timer.Reset(s.config.ConnectionWriteTimeout)
	defer func() {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timerPool.Put(t)
	}()

	select {
	case s.sendCh <- &sendReady{Hdr: hdr}:
		return nil
	case <-s.shutdownCh:
		return ErrSessionShutdown
	case <-timer.C:
		return ErrConnectionWriteTimeout
	}
}

// send is a long running goroutine that sends data
func (s *Session) send() {
	if err := s.sendLoop(); err != nil {
		s.exitErr(err)
	}
}

func (s *Session) sendLoop() error {
	defer close(s.sendDoneCh)
	var batch []*sendReady // the frames of one write, answered after it
	var lbuf []byte        // their bytes; kept at its peak, as upstream's bodyBuf
	for {
		batch = batch[:0]
		select {
		case reply := <-s.replyCh:
			s.loopWants.Store(true)
			s.writeLock.Lock()
			buf := append(lbuf[:0], reply[:]...)
			buf, batch = s.gather(buf, batch)
			lbuf = buf
			if err := s.flush(buf, batch); err != nil {
				return err
			}
		case ready := <-s.sendCh:
			s.loopWants.Store(true)
			s.writeLock.Lock()
			buf := ready.appendTo(lbuf[:0])
			batch = append(batch, ready)
			buf, batch = s.gather(buf, batch)
			lbuf = buf
			if err := s.flush(buf, batch); err != nil {
				return err
			}
		case <-s.shutdownCh:
			return nil
		}
	}
}

// directJoin is how much of a body a direct write copies after the
// header: what one TLS record holds with it.
const directJoin = 16<<10 - headerSize

// maxBatch is the size up to which the send loop joins queued frames into
// one write: four TLS records.
const maxBatch = 64 << 10

// gather appends the frames queued meanwhile (replies and others) to buf
// without waiting, up to maxBatch bytes, and adds the frames whose senders
// wait for an answer to batch. Called with writeLock held.
func (s *Session) gather(buf []byte, batch []*sendReady) ([]byte, []*sendReady) {
	for len(buf) < maxBatch {
		select {
		case reply := <-s.replyCh:
			buf = append(buf, reply[:]...)
		case ready := <-s.sendCh:
			buf = ready.appendTo(buf)
			batch = append(batch, ready)
		default:
			return buf, batch
		}
	}
	return buf, batch
}

// flush writes buf, releases writeLock and answers the senders in batch.
func (s *Session) flush(buf []byte, batch []*sendReady) error {
	_, err := s.conn.Write(buf)
	s.loopWants.Store(false)
	s.writeLock.Unlock()
	if err != nil {
		s.logger.Printf("[ERR] yamux: Failed to write frames: %v", err)
	}
	for _, r := range batch {
		asyncSendErr(r.Err, err)
	}
	return err
}

// appendTo appends the frame's header and body to buf; the body is no
// longer read after (see waitForSendErr's bodyCopy).
func (r *sendReady) appendTo(buf []byte) []byte {
	buf = append(buf, r.Hdr...)
	r.mu.Lock()
	buf = append(buf, r.Body...)
	r.Body = nil
	r.mu.Unlock()
	return buf
}

// writeDirect writes a frame from the caller's goroutine, its header and
// body in one conn.Write, when nothing is queued for the send loop and no
// write is under way; done is false when it did not (the caller queues
// the frame). This spares a lone frame two goroutine handoffs (to the
// send loop, and the answer back), which on a busy machine cost more than
// the write itself. Frames that find the connection busy are queued, and
// the send loop writes them in batches.
//
// Only a connection with write deadlines is written to directly: the
// write gets ConnectionWriteTimeout as its deadline (cleared after), so
// that the caller waits no longer than for a queued frame. A write that
// times out or fails ends the session, as the Config comment says of
// ConnectionWriteTimeout; the caller gets ErrConnectionWriteTimeout or the
// error.
func (s *Session) writeDirect(hdr header, body []byte) (done bool, err error) {
	if s.deadliner == nil || len(s.sendCh) != 0 || len(s.replyCh) != 0 || s.loopWants.Load() || !s.writeLock.TryLock() {
		return false, nil
	}
	select {
	case <-s.shutdownCh:
		s.writeLock.Unlock()
		return true, ErrSessionShutdown
	default:
	}
	// The header and the start of the body are joined, up to one TLS
	// record; the rest of a large body follows uncopied.
	k := len(body)
	if k > directJoin {
		k = directJoin
	}
	buf := append(append(s.wbuf[:0], hdr...), body[:k]...)
	_ = s.deadliner.SetWriteDeadline(time.Now().Add(s.config.ConnectionWriteTimeout))
	_, err = s.conn.Write(buf)
	if err == nil && k < len(body) {
		_, err = s.conn.Write(body[k:])
	}
	_ = s.deadliner.SetWriteDeadline(time.Time{})
	s.wbuf = buf[:0]
	s.writeLock.Unlock()
	if err != nil {
		s.logger.Printf("[ERR] yamux: Failed to write frame: %v", err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = ErrConnectionWriteTimeout
		}
		go s.exitErr(err)
	}
	return true, err
}

// recv is a long running goroutine that accepts new data
func (s *Session) recv() {
	if err := s.recvLoop(); err != nil {
		s.exitErr(err)
	}
}

// Ensure that the index of the handler (typeData/typeWindowUpdate/etc) matches the message type
var (
	handlers = []func(*Session, header) error{
		typeData:         (*Session).handleStreamMessage,
		typeWindowUpdate: (*Session).handleStreamMessage,
		typePing:         (*Session).handlePing,
		typeGoAway:       (*Session).handleGoAway,
	}
)

// recvLoop continues to receive data until a fatal error is encountered
func (s *Session) recvLoop() error {
	defer close(s.recvDoneCh)
	hdr := header(make([]byte, headerSize))
	for {
		// Read the header
		if _, err := io.ReadFull(s.bufRead, hdr); err != nil {
			if err != io.EOF && !strings.Contains(err.Error(), "closed") && !strings.Contains(err.Error(), "reset by peer") {
				s.logger.Printf("[ERR] yamux: Failed to read header: %v", err)
			}
			return err
		}

		// Verify the version
		if hdr.Version() != protoVersion {
			s.logger.Printf("[ERR] yamux: Invalid protocol version: %d", hdr.Version())
			return ErrInvalidVersion
		}

		mt := hdr.MsgType()
		if mt < typeData || mt > typeGoAway {
			return ErrInvalidMsgType
		}

		if err := handlers[mt](s, hdr); err != nil {
			return err
		}
	}
}

// handleStreamMessage handles either a data or window update frame
func (s *Session) handleStreamMessage(hdr header) error {
	// Check for a new stream creation
	id := hdr.StreamID()
	flags := hdr.Flags()
	if flags&flagSYN == flagSYN {
		if err := s.incomingStream(id); err != nil {
			return err
		}
	}

	// Get the stream
	s.streamLock.Lock()
	stream := s.streams[id]
	s.streamLock.Unlock()

	// If we do not have a stream, likely we sent a RST
	if stream == nil {
		// Drain any data on the wire
		if hdr.MsgType() == typeData && hdr.Length() > 0 {
			s.logLimited(logDiscard, "[WARN] yamux: Discarding data for stream: %d", id)
			if _, err := io.CopyN(io.Discard, s.bufRead, int64(hdr.Length())); err != nil {
				s.logger.Printf("[ERR] yamux: Failed to discard data: %v", err)
				return nil
			}
		} else {
			s.logLimited(logMissing, "[WARN] yamux: frame for missing stream: %v", hdr)
		}
		return nil
	}

	// Check if this is a window update
	if hdr.MsgType() == typeWindowUpdate {
		if err := stream.incrSendWindow(hdr, flags); err != nil {
			if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
				s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
			}
			return err
		}
		return nil
	}

	// Read the new data
	if err := stream.readData(hdr, flags, s.bufRead); err != nil {
		if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
			s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
		}
		return err
	}
	return nil
}

// handlePing is invokde for a typePing frame
func (s *Session) handlePing(hdr header) error {
	flags := hdr.Flags()
	pingID := hdr.Length()

	// Check if this is a query: the send loop writes the answer, so that
	// the receiving thread never blocks for the write.
	if flags&flagSYN == flagSYN {
		return s.queueReply(typePing, flagACK, 0, pingID)
	}

	// Handle a response
	s.pingLock.Lock()
	ch := s.pings[pingID]
	if ch != nil {
		delete(s.pings, pingID)
		close(ch)
	}
	s.pingLock.Unlock()
	return nil
}

// queueReply queues a frame for the send loop without blocking. When the
// queue is full the peer is flooding: the session is closed with ErrFlood.
func (s *Session) queueReply(msgType uint8, flags uint16, streamID uint32, length uint32) error {
	var r replyFrame
	header(r[:]).encode(msgType, flags, streamID, length)
	select {
	case s.replyCh <- r:
		return nil
	default:
	}
	select {
	case <-s.shutdownCh:
		return ErrSessionShutdown
	default:
	}
	s.logger.Printf("[ERR] yamux: peer is flooding the session (%d answers waiting to be written): closing it", cap(s.replyCh))
	return ErrFlood
}

// handleGoAway is invokde for a typeGoAway frame
func (s *Session) handleGoAway(hdr header) error {
	code := hdr.Length()
	switch code {
	case goAwayNormal:
		atomic.SwapInt32(&s.remoteGoAway, 1)
	case goAwayProtoErr:
		s.logger.Printf("[ERR] yamux: received protocol error go away")
		return fmt.Errorf("yamux protocol error")
	case goAwayInternalErr:
		s.logger.Printf("[ERR] yamux: received internal error go away")
		return fmt.Errorf("remote yamux internal error")
	default:
		s.logger.Printf("[ERR] yamux: received unexpected go away")
		return fmt.Errorf("unexpected go away received")
	}
	return nil
}

// incomingStream is used to create a new incoming stream
func (s *Session) incomingStream(id uint32) error {
	// Reject immediately if we are doing a go away
	if atomic.LoadInt32(&s.localGoAway) == 1 {
		return s.queueReply(typeWindowUpdate, flagRST, id, 0)
	}

	// Allocate a new stream
	stream := newStream(s, id, streamSYNReceived)

	s.streamLock.Lock()
	defer s.streamLock.Unlock()

	// Check if stream already exists
	if _, ok := s.streams[id]; ok {
		s.logger.Printf("[ERR] yamux: duplicate stream declared")
		if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
			s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
		}
		return ErrDuplicateStream
	}

	// Register the stream
	s.streams[id] = stream

	// Check if we've exceeded the backlog
	select {
	case s.acceptCh <- stream:
		return nil
	default:
		// Backlog exceeded! RST the stream
		s.logLimited(logBacklog, "[WARN] yamux: backlog exceeded, forcing connection reset")
		delete(s.streams, id)
		return s.queueReply(typeWindowUpdate, flagRST, id, 0)
	}
}

// closeStream is used to close a stream once both sides have
// issued a close. If there was an in-flight SYN and the stream
// was not yet established, then this will give the credit back.
func (s *Session) closeStream(id uint32) {
	s.streamLock.Lock()
	if _, ok := s.inflight[id]; ok {
		delete(s.inflight, id)
		select {
		case <-s.synCh:
		default:
			s.logger.Printf("[ERR] yamux: SYN tracking out of sync")
		}
	}
	stream := s.streams[id]
	if stream != nil {
		if stream.accepted.Load() {
			s.numAccepted--
		}
		delete(s.streams, id)
	}
	s.streamLock.Unlock()
	if stream != nil {
		s.unstarve(stream)
		stream.detach()
	}
}

// openedLocally reports whether stream id was opened by this side.
func (s *Session) openedLocally(id uint32) bool {
	return (id%2 == 1) == s.client
}

// establishStream is used to mark a stream that was in the
// SYN Sent state as established.
//
// An ACK for a stream that is not in flight (a second ACK, or an ACK for a
// stream the peer opened) is ignored: it must not release the open slot of
// another stream, nor log a line per frame.
func (s *Session) establishStream(id uint32) {
	s.streamLock.Lock()
	if _, ok := s.inflight[id]; ok {
		delete(s.inflight, id)
		select {
		case <-s.synCh:
		default:
			s.logger.Printf("[ERR] yamux: established stream without inflight SYN (didn't have semaphore)")
		}
	}
	s.streamLock.Unlock()
}

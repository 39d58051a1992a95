package yamux

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

type streamState int

const (
	streamInit streamState = iota
	streamSYNSent
	streamSYNReceived
	streamEstablished
	streamLocalClose
	streamRemoteClose
	streamClosed
	streamReset
)

// Stream is used to represent a logical stream
// within a session.
type Stream struct {
	recvWindow uint32
	sendWindow uint32

	id      uint32
	session *Session

	state     streamState
	stateLock sync.Mutex

	recvBuf  recvBuffer
	recvLock sync.Mutex
	// recvDone is set (under recvLock) once the receive buffer is freed
	// for good (reset, close timeout): data arriving later is dropped.
	recvDone bool
	// detached is set (under recvLock) when the stream left the session:
	// its unread bytes no longer count against the session's budget
	// (nothing more can arrive on it), and data arriving is dropped.
	detached bool

	// recvTarget is the receive window granted when the session has a
	// SessionReceiveBudget: it starts at initialStreamWindow and grows
	// with use. epochStart is when the last window update went out. Both
	// are under controlHdrLock.
	recvTarget uint32
	epochStart time.Time

	// direct, when set, takes data from the receive loop while a Read
	// waits on an empty buffer (directArmed); directDue asks that Read to
	// send the window update that direct deliveries made due. All three
	// are under recvLock. See SetDirectReceiver.
	direct      func([]byte) int
	directArmed bool
	directDue   bool

	// accepted is set once AcceptStream has returned the stream (under
	// the session's streamLock, read without it by the receive loop).
	accepted atomic.Bool

	controlHdr     header
	controlErr     chan error
	controlHdrLock sync.Mutex

	sendHdr  header
	sendErr  chan error
	sendLock sync.Mutex

	recvNotifyCh chan struct{}
	sendNotifyCh chan struct{}

	readDeadline  atomic.Value // time.Time
	writeDeadline atomic.Value // time.Time

	// establishCh is notified if the stream is established or being closed.
	establishCh chan struct{}

	// closeTimer is set with stateLock held to honor the StreamCloseTimeout
	// setting on Session.
	closeTimer *time.Timer
}

// newStream is used to construct a new stream within
// a given session for an ID
func newStream(session *Session, id uint32, state streamState) *Stream {
	s := &Stream{
		id:           id,
		session:      session,
		state:        state,
		controlHdr:   header(make([]byte, headerSize)),
		controlErr:   make(chan error, 1),
		sendHdr:      header(make([]byte, headerSize)),
		sendErr:      make(chan error, 1),
		recvWindow:   initialStreamWindow,
		sendWindow:   initialStreamWindow,
		recvNotifyCh: make(chan struct{}, 1),
		sendNotifyCh: make(chan struct{}, 1),
		establishCh:  make(chan struct{}, 1),
	}
	s.readDeadline.Store(time.Time{})
	s.writeDeadline.Store(time.Time{})
	if session.config.SessionReceiveBudget != 0 {
		s.recvTarget = initialStreamWindow
		s.epochStart = time.Now()
	}
	return s
}

// Session returns the associated stream session
func (s *Stream) Session() *Session {
	return s.session
}

// StreamID returns the ID of this stream
func (s *Stream) StreamID() uint32 {
	return s.id
}

// Read is used to read from the stream
func (s *Stream) Read(b []byte) (n int, err error) {
	defer asyncNotify(s.recvNotifyCh)
	var gone bool  // the stream left the session: its bytes are not budgeted
	var armed bool // this Read armed direct delivery: it must disarm it
START:

	// If the stream is closed and there's no data buffered, return EOF
	s.stateLock.Lock()
	switch s.state {
	case streamLocalClose:
		// LocalClose only prohibits further local writes. Handle reads normally.
	case streamRemoteClose:
		fallthrough
	case streamClosed:
		s.recvLock.Lock()
		if s.recvBuf.Len() == 0 {
			s.recvLock.Unlock()
			s.stateLock.Unlock()
			return 0, io.EOF
		}
		s.recvLock.Unlock()
	case streamReset:
		// Data that arrived before the reset is still delivered (a
		// refusal written just before a reset must reach the reader);
		// a local Reset has freed it already.
		s.recvLock.Lock()
		if s.recvBuf.Len() == 0 {
			s.recvLock.Unlock()
			s.stateLock.Unlock()
			return 0, ErrConnectionReset
		}
		s.recvLock.Unlock()
	}
	s.stateLock.Unlock()

	// If there is no data available, block
	s.recvLock.Lock()
	if s.recvBuf.Len() == 0 {
		if s.directDue {
			// Data went to the direct receiver: its window update is
			// this reader's to send, then it waits again.
			s.directDue = false
			s.recvLock.Unlock()
			if err := s.sendWindowUpdate(); err != nil && err != ErrSessionShutdown {
				return 0, err
			}
			goto START
		}
		// Nothing is buffered and the caller holds nothing it has read
		// and not passed on: the receive loop may hand data to the
		// direct receiver until this Read wakes.
		s.directArmed = s.direct != nil
		armed = s.directArmed
		s.recvLock.Unlock()
		goto WAIT
	}

	// Read any bytes
	n = s.recvBuf.Read(b)
	gone = s.detached
	s.recvLock.Unlock()
	if !gone {
		s.session.releaseRecv(n)
	}

	// Send a window update potentially
	err = s.sendWindowUpdate()
	if err == ErrSessionShutdown {
		err = nil
	}
	return n, err

WAIT:
	var timeout <-chan time.Time
	var timer *time.Timer
	readDeadline := s.readDeadline.Load().(time.Time)
	if !readDeadline.IsZero() {
		delay := time.Until(readDeadline)
		timer = time.NewTimer(delay)
		timeout = timer.C
	}
	var timedOut bool
	select {
	case <-s.session.shutdownCh:
	case <-s.recvNotifyCh:
	case <-timeout:
		timedOut = true
	}
	if armed {
		s.disarm()
		armed = false
	}
	if timedOut {
		return 0, ErrTimeout
	}
	if timer != nil {
		if !timer.Stop() {
			<-timeout
		}
	}
	goto START
}

// disarm ends direct delivery for the Read that waited; a delivery under
// way finishes first (it holds recvLock).
func (s *Stream) disarm() {
	s.recvLock.Lock()
	s.directArmed = false
	s.recvLock.Unlock()
}

// SetDirectReceiver lets the receive loop hand this stream's data to f
// instead of buffering it, while a Read waits with nothing buffered: f
// gets a data frame's bytes and returns how many it took (0 to len(p)).
// What it does not take is buffered and the Read wakes as usual. Set it
// for a consumer that, like a relay, only ever Reads to pass the bytes on
// to a destination, and whose f writes to that same destination: because
// deliveries happen only while that consumer waits in Read (so it holds
// nothing read and not yet passed on) and only while nothing is buffered,
// the bytes reach the destination in the order they came.
//
// f runs on the session's receive loop, with the stream's receive lock
// held: it must not block (a non-blocking write, taking what fits), must
// not call the stream's methods, and must not keep p. Only frames without
// flags and of at most 64 KiB are handed over; bytes f takes count as read
// at once (window updates follow as for Read, sent by the waiting Read).
// nil removes f; once SetDirectReceiver returns, the previous f is not
// called again. Deliveries skip the reader's goroutine: no wake-up
// between a frame's arrival and its destination.
func (s *Stream) SetDirectReceiver(f func(p []byte) int) {
	s.recvLock.Lock()
	s.direct = f
	if f == nil {
		s.directArmed = false
	}
	s.recvLock.Unlock()
}

// deliver hands a frame to the direct receiver when the stream's Read is
// armed for it; it holds recvLock and reports whether it took the frame
// (all of it, or part with the rest buffered). A false return leaves the
// frame unread on conn.
func (s *Stream) deliver(conn io.Reader, length uint32, flags uint16) (bool, error) {
	if !s.directArmed || flags != 0 || length > maxPooledChunk || s.recvBuf.Len() != 0 {
		return false, nil
	}
	c := getChunk(int(length))
	m, err := io.ReadFull(conn, c.data[:length])
	if err != nil {
		putChunk(c)
		return true, err
	}
	k := s.direct(c.data[:m])
	if k < 0 || k > m {
		k = 0
	}
	if k == m {
		putChunk(c)
		if s.updateDue() {
			s.directDue = true
			asyncNotify(s.recvNotifyCh)
		}
		return true, nil
	}
	// The destination took part of it (or none): the rest waits in the
	// buffer, for the Read that is about to wake.
	c.data = c.data[k:m]
	s.recvBuf.push(c)
	s.session.recvUsed.Add(int64(m - k))
	asyncNotify(s.recvNotifyCh)
	return true, nil
}

// updateDue reports whether a window update is due, as sendWindowUpdate
// would find. Called with recvLock held.
func (s *Stream) updateDue() bool {
	delta, max := s.windowDelta()
	return delta >= max/2
}

// windowDelta is the window update that would restore the stream's window
// to max, its full size (recvTarget under a receive budget). Called with
// recvLock held (recvTarget changes under it and controlHdrLock).
func (s *Stream) windowDelta() (delta, max uint32) {
	max = s.session.config.MaxStreamWindowSize
	if s.session.config.SessionReceiveBudget != 0 {
		max = s.recvTarget
	}
	return (max - uint32(s.recvBuf.Len())) - s.recvWindow, max
}

// Write is used to write to the stream
func (s *Stream) Write(b []byte) (n int, err error) {
	s.sendLock.Lock()
	defer s.sendLock.Unlock()
	total := 0
	for total < len(b) {
		n, err := s.write(b[total:])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// write is used to write to the stream, may return on
// a short write.
func (s *Stream) write(b []byte) (n int, err error) {
	var flags uint16
	var max uint32
	var body []byte
START:
	s.stateLock.Lock()
	switch s.state {
	case streamLocalClose:
		fallthrough
	case streamClosed:
		s.stateLock.Unlock()
		return 0, ErrStreamClosed
	case streamReset:
		s.stateLock.Unlock()
		return 0, ErrConnectionReset
	}
	s.stateLock.Unlock()

	// If there is no data available, block
	window := atomic.LoadUint32(&s.sendWindow)
	if window == 0 {
		goto WAIT
	}

	// Determine the flags if any
	flags = s.sendFlags()

	// Send up to our send window
	max = min(window, uint32(len(b)))
	body = b[:max]

	// Send the header
	s.sendHdr.encode(typeData, flags, s.id, max)
	if err = s.session.waitForSendErr(s.sendHdr, body, s.sendErr); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.sendHdr = header(make([]byte, headerSize))
		}
		return 0, err
	}

	// Reduce our send window
	atomic.AddUint32(&s.sendWindow, ^uint32(max-1))

	// Unlock
	return int(max), err

WAIT:
	var timeout <-chan time.Time
	var timer *time.Timer
	writeDeadline := s.writeDeadline.Load().(time.Time)
	if !writeDeadline.IsZero() {
		delay := time.Until(writeDeadline)
		timer = time.NewTimer(delay)
		timeout = timer.C
	}
	select {
	case <-s.session.shutdownCh:
	case <-s.sendNotifyCh:
	case <-timeout:
		return 0, ErrTimeout
	}
	if timer != nil {
		if !timer.Stop() {
			<-timeout
		}
	}
	goto START
}

// sendFlags determines any flags that are appropriate
// based on the current stream state
func (s *Stream) sendFlags() uint16 {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	var flags uint16
	switch s.state {
	case streamInit:
		flags |= flagSYN
		s.state = streamSYNSent
	case streamSYNReceived:
		flags |= flagACK
		s.state = streamEstablished
	}
	return flags
}

// sendWindowUpdate potentially sends a window update enabling
// further writes to take place. Must be invoked with the lock.
func (s *Stream) sendWindowUpdate() error {
	s.controlHdrLock.Lock()
	defer s.controlHdrLock.Unlock()

	// A reset or closed stream is gone from the session: the peer would
	// take an update for it as a frame for a missing stream.
	s.stateLock.Lock()
	state := s.state
	s.stateLock.Unlock()
	if state == streamReset || state == streamClosed {
		return nil
	}

	// Determine the flags if any (before taking recvLock: Read takes
	// stateLock, then recvLock)
	flags := s.sendFlags()

	// Determine the delta update
	budget := s.session.config.SessionReceiveBudget
	s.recvLock.Lock()
	s.directDue = false // this update covers what direct deliveries made due
	delta, max := s.windowDelta()

	// Check if we can omit the update
	if delta < (max/2) && flags == 0 {
		s.recvLock.Unlock()
		return nil
	}

	if budget != 0 {
		delta = s.budgetedDelta(delta, flags)
		if delta == 0 && flags == 0 {
			s.recvLock.Unlock()
			s.session.starve(s)
			return nil
		}
	}

	// Update our window
	s.recvWindow += delta
	s.recvLock.Unlock()

	// Send the header
	s.controlHdr.encode(typeWindowUpdate, flags, s.id, delta)
	if err := s.session.waitForSendErr(s.controlHdr, nil, s.controlErr); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.controlHdr = header(make([]byte, headerSize))
		}
		return err
	}
	return nil
}

// budgetedDelta grows the window of a stream whose reader drained it
// quickly and limits the update to what the session's receive budget has
// left. It holds controlHdrLock and recvLock.
func (s *Stream) budgetedDelta(delta uint32, flags uint16) uint32 {
	sess := s.session
	room := int64(sess.config.SessionReceiveBudget) - sess.recvUsed.Load()
	if flags == 0 {
		now := time.Now()
		limit := sess.config.MaxStreamWindowSize
		if s.recvTarget < limit && now.Sub(s.epochStart) < sess.growWithin() {
			grown := uint64(s.recvTarget) * 2
			if grown > uint64(limit) {
				grown = uint64(limit)
			}
			grow := uint32(grown) - s.recvTarget
			if int64(delta)+int64(grow) <= room {
				s.recvTarget += grow
				delta += grow
			}
		}
		s.epochStart = now
	}
	if int64(delta) > room {
		if room < minBudgetedUpdate {
			return 0 // wait for room rather than send tiny updates
		}
		return uint32(room)
	}
	return delta
}

// minBudgetedUpdate is the smallest window update sent when the receive
// budget cuts one short.
const minBudgetedUpdate = 16 << 10

// sendClose is used to send a FIN
func (s *Stream) sendClose() error {
	s.controlHdrLock.Lock()
	defer s.controlHdrLock.Unlock()

	flags := s.sendFlags()
	flags |= flagFIN
	s.controlHdr.encode(typeWindowUpdate, flags, s.id, 0)
	if err := s.session.waitForSendErr(s.controlHdr, nil, s.controlErr); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.controlHdr = header(make([]byte, headerSize))
		}
		return err
	}
	return nil
}

// Close is used to close the stream
func (s *Stream) Close() error {
	closeStream := false
	s.stateLock.Lock()
	switch s.state {
	// Opened means we need to signal a close
	case streamSYNSent:
		fallthrough
	case streamSYNReceived:
		fallthrough
	case streamEstablished:
		s.state = streamLocalClose
		goto SEND_CLOSE

	case streamLocalClose:
	case streamRemoteClose:
		s.state = streamClosed
		closeStream = true
		goto SEND_CLOSE

	case streamClosed:
	case streamReset:
		// Drop what arrived before a reset by the peer and was not read.
		s.stateLock.Unlock()
		s.freeRecv()
		return nil
	default:
		panic("unhandled state")
	}
	s.stateLock.Unlock()
	return nil
SEND_CLOSE:
	// This shouldn't happen (the more realistic scenario to cancel the
	// timer is via processFlags) but just in case this ever happens, we
	// cancel the timer to prevent dangling timers.
	if s.closeTimer != nil {
		s.closeTimer.Stop()
		s.closeTimer = nil
	}

	// If we have a StreamCloseTimeout set we start the timeout timer.
	// We do this only if we're not already closing the stream since that
	// means this was a graceful close.
	//
	// This prevents memory leaks if one side (this side) closes and the
	// remote side poorly behaves and never responds with a FIN to complete
	// the close. After the specified timeout, we clean our resources up no
	// matter what.
	if !closeStream && s.session.config.StreamCloseTimeout > 0 {
		s.closeTimer = time.AfterFunc(
			s.session.config.StreamCloseTimeout, s.closeTimeout)
	}

	s.stateLock.Unlock()
	s.sendClose()
	s.notifyWaiting()
	if closeStream {
		s.session.closeStream(s.id)
	}
	return nil
}

// closeTimeout is called after StreamCloseTimeout during a close to
// close this stream.
func (s *Stream) closeTimeout() {
	// Close our side forcibly
	s.forceClose()
	s.freeRecv()

	// Free the stream from the session map
	s.session.closeStream(s.id)

	// Send a RST so the remote side closes too.
	s.sendLock.Lock()
	defer s.sendLock.Unlock()
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeWindowUpdate, flagRST, s.id, 0)
	_ = s.session.sendNoWait(hdr)
}

// Reset aborts the stream: it sends an RST, frees the data received and not
// read at once, drops data that arrives later, and removes the stream from
// the session. Pending and later Read and Write calls fail with
// ErrConnectionReset. Unlike Close, it does not wait for the peer: use it
// to refuse a stream, or when the other end of what the stream carries was
// reset. Calling it again, or after the stream ended, only frees what is
// buffered.
func (s *Stream) Reset() error {
	if !s.abort() {
		return nil
	}
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeWindowUpdate, flagRST, s.id, 0)
	if err := s.session.waitForSend(hdr, nil); err != nil && err != ErrSessionShutdown {
		return err
	}
	return nil
}

// abort marks the stream reset, frees its receive buffer and removes it
// from the session. It reports whether the peer still has to be sent an
// RST: not when the stream was already reset or closed on both sides.
func (s *Stream) abort() bool {
	s.stateLock.Lock()
	switch s.state {
	case streamReset, streamClosed:
		s.stateLock.Unlock()
		s.freeRecv()
		return false
	}
	s.state = streamReset
	if s.closeTimer != nil {
		s.closeTimer.Stop()
		s.closeTimer = nil
	}
	s.stateLock.Unlock()
	s.freeRecv()
	s.notifyWaiting()
	s.session.closeStream(s.id)
	return true
}

// freeRecv drops the receive buffer for good and gives its bytes back to
// the session's budget.
func (s *Stream) freeRecv() {
	s.recvLock.Lock()
	s.recvDone = true
	n := s.recvBuf.reset()
	detached := s.detached
	s.detached = true
	inBacklog := !s.accepted.Load() && !s.session.openedLocally(s.id)
	s.recvLock.Unlock()
	if !detached {
		s.session.releaseRecv(n)
		if inBacklog {
			s.session.backlogUsed.Add(-int64(n))
		}
	}
}

// detach takes the stream's unread bytes out of the session's budget when
// it leaves the session: they stay readable.
func (s *Stream) detach() {
	s.recvLock.Lock()
	if s.detached {
		s.recvLock.Unlock()
		return
	}
	s.detached = true
	n := s.recvBuf.Len()
	inBacklog := !s.accepted.Load() && !s.session.openedLocally(s.id)
	s.recvLock.Unlock()
	s.session.releaseRecv(n)
	if inBacklog {
		s.session.backlogUsed.Add(-int64(n))
	}
}

// forceClose is used for when the session is exiting
func (s *Stream) forceClose() {
	s.stateLock.Lock()
	s.state = streamClosed
	s.stateLock.Unlock()
	s.notifyWaiting()
}

// processFlags is used to update the state of the stream
// based on set flags, if any. Lock must be held
func (s *Stream) processFlags(flags uint16) error {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()

	// Close the stream without holding the state lock
	closeStream := false
	freeRecv := false
	defer func() {
		if closeStream {
			if s.closeTimer != nil {
				// Stop our close timeout timer since we gracefully closed
				s.closeTimer.Stop()
			}

			s.session.closeStream(s.id)
		}
		if freeRecv {
			s.freeRecv()
		}
	}()

	if flags&flagACK == flagACK {
		if s.state == streamSYNSent {
			s.state = streamEstablished
		}
		asyncNotify(s.establishCh)
		// Only the first ACK of a stream this side opened releases its
		// open slot; establishStream ignores any other.
		s.session.establishStream(s.id)
	}
	if flags&flagFIN == flagFIN {
		switch s.state {
		case streamSYNSent:
			fallthrough
		case streamSYNReceived:
			fallthrough
		case streamEstablished:
			s.state = streamRemoteClose
			s.notifyWaiting()
		case streamLocalClose:
			s.state = streamClosed
			closeStream = true
			s.notifyWaiting()
		case streamReset:
			// This side reset the stream and the peer's FIN crossed the
			// RST before the stream left the session: nothing to do.
		default:
			s.session.logger.Printf("[ERR] yamux: unexpected FIN flag in state %d", s.state)
			return ErrUnexpectedFlag
		}
	}
	if flags&flagRST == flagRST {
		s.state = streamReset
		closeStream = true
		// What the peer sent before resetting a stream it opened is
		// dropped at once (this side may not even have accepted it); on
		// a stream this side opened it stays readable, as it may be the
		// answer that explains the reset.
		freeRecv = !s.session.openedLocally(s.id)
		s.notifyWaiting()
	}
	return nil
}

// notifyWaiting notifies all the waiting channels
func (s *Stream) notifyWaiting() {
	asyncNotify(s.recvNotifyCh)
	asyncNotify(s.sendNotifyCh)
	asyncNotify(s.establishCh)
}

// incrSendWindow updates the size of our send window
func (s *Stream) incrSendWindow(hdr header, flags uint16) error {
	if err := s.processFlags(flags); err != nil {
		return err
	}

	// Increase window, unblock a sender
	atomic.AddUint32(&s.sendWindow, hdr.Length())
	asyncNotify(s.sendNotifyCh)
	return nil
}

// readData is used to handle a data frame
func (s *Stream) readData(hdr header, flags uint16, conn io.Reader) error {
	if err := s.processFlags(flags); err != nil {
		return err
	}

	// Check that our recv window is not exceeded
	length := hdr.Length()
	if length == 0 {
		return nil
	}

	// Copy into buffer
	s.recvLock.Lock()

	if length > s.recvWindow {
		s.session.logger.Printf("[ERR] yamux: receive window exceeded (stream: %d, remain: %d, recv: %d)", s.id, s.recvWindow, length)
		s.recvLock.Unlock()
		return ErrRecvWindowExceeded
	}

	// Decrement the receive window
	s.recvWindow -= length

	// A stream the peer opened and this side has not accepted yet may
	// only use what the budget has left: the peer can fill the initial
	// window of as many streams as the backlog holds before this side
	// has a say. Accepted streams (and streams this side opened) get
	// their whole window: their number is the application's to cap, and
	// the budget bounds what they are granted beyond the initial window.
	sess := s.session
	inBacklog := !s.accepted.Load() && !sess.openedLocally(s.id)
	overBudget := sess.config.SessionReceiveBudget != 0 && inBacklog &&
		sess.backlogUsed.Load()+int64(length) > int64(sess.config.SessionReceiveBudget)
	if s.recvDone || s.detached || overBudget {
		// The stream was reset or timed out: drop the data. Or it waits
		// in the backlog and does not fit the budget: reset it.
		s.recvLock.Unlock()
		if _, err := io.CopyN(io.Discard, conn, int64(length)); err != nil {
			return err
		}
		if !overBudget {
			return nil
		}
		sess.logLimited(logOverBudget, "[WARN] yamux: session receive budget exceeded, resetting stream %d", s.id)
		if s.abort() {
			return sess.queueReply(typeWindowUpdate, flagRST, s.id, 0)
		}
		return nil
	}

	if !inBacklog {
		if ok, err := s.deliver(conn, length, flags); ok {
			s.recvLock.Unlock()
			return err
		}
	}

	n, err := s.recvBuf.readFrom(conn, int(length))
	sess.recvUsed.Add(int64(n))
	if inBacklog {
		sess.backlogUsed.Add(int64(n))
	}
	if err != nil {
		s.session.logger.Printf("[ERR] yamux: Failed to read stream data: %v", err)
		s.recvLock.Unlock()
		return err
	}
	s.recvLock.Unlock()

	// Unblock any readers
	asyncNotify(s.recvNotifyCh)
	return nil
}

// SetDeadline sets the read and write deadlines
func (s *Stream) SetDeadline(t time.Time) error {
	if err := s.SetReadDeadline(t); err != nil {
		return err
	}
	if err := s.SetWriteDeadline(t); err != nil {
		return err
	}
	return nil
}

// SetReadDeadline sets the deadline for blocked and future Read calls.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.readDeadline.Store(t)
	asyncNotify(s.recvNotifyCh)
	return nil
}

// SetWriteDeadline sets the deadline for blocked and future Write calls
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.writeDeadline.Store(t)
	asyncNotify(s.sendNotifyCh)
	return nil
}

// Shrink is used to compact the amount of buffers utilized
// This is useful when using Yamux in a connection pool to reduce
// the idle memory utilization.
//
// The receive buffer now gives its memory back as it is read, so this only
// drops the bookkeeping of an empty buffer.
func (s *Stream) Shrink() {
	s.recvLock.Lock()
	if s.recvBuf.Len() == 0 {
		s.recvBuf.reset()
	}
	s.recvLock.Unlock()
}

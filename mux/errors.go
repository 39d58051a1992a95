package mux

import (
	"errors"
	"fmt"
	"io"
)

// Sentinel errors of this package. Callers branch on them with errors.Is;
// returned errors wrap them with the detail (field, accepted form, value).
var (
	// ErrVersion: a stream request starts with a version byte other than
	// [Version].
	ErrVersion = errors.New("unsupported protocol version")

	// ErrRoute: a route name is empty, longer than [MaxRouteLen] or holds a
	// byte outside the route charset (see [ValidRoute]).
	ErrRoute = errors.New("invalid route name")

	// ErrReason: a response reason is longer than [MaxReasonLen], is not
	// valid UTF-8 or holds control characters.
	ErrReason = errors.New("invalid response reason")

	// ErrTruncated: the peer closed the stream in the middle of a request or
	// response. It wraps io.ErrUnexpectedEOF too.
	ErrTruncated = fmt.Errorf("truncated message: %w", io.ErrUnexpectedEOF)

	// ErrSessionClosed: a stream ended because its whole yamux session died
	// (connection lost, keepalive failed, peer gone), not because the peer
	// finished sending. [Stream.Read] returns it instead of io.EOF in that
	// case, and [Pipe] resets the TCP side so the application sees an error.
	ErrSessionClosed = errors.New("mux session closed")
)

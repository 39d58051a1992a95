package mux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// ALPN is the TLS application protocol id that selects mux mode. A TLS
// connection that negotiated it carries a yamux session, the client side
// being the yamux client.
const ALPN = "portcullis/1"

// Version is the first byte of every stream request.
const Version byte = 1

// MaxRouteLen is the longest route name in bytes; the shortest is 1.
const MaxRouteLen = 255

// MaxReasonLen is the longest refusal reason in bytes. [WriteResponse]
// truncates longer reasons; [ReadResponse] rejects them.
const MaxReasonLen = 1024

// Status is the gateway's answer to a stream request. Values other than the
// constants below may come from newer peers; they are refusals all the same.
type Status byte

// Statuses of a [Response]. Only StatusOK lets bytes flow.
const (
	StatusOK           Status = 0 // the backend is connected; raw bytes follow
	StatusUnknownRoute Status = 1 // no route has that name
	StatusForbidden    Status = 2 // identity or address not allowed on the route
	StatusUnreachable  Status = 3 // the gateway could not connect to the backend
	StatusOverloaded   Status = 4 // a limit was reached; try again later
	StatusBadRequest   Status = 5 // the request was malformed or too slow
	StatusShuttingDown Status = 6 // the gateway is draining
)

// String returns the status in words, e.g. "forbidden", or "status 9" for a
// value this version does not know.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusUnknownRoute:
		return "unknown route"
	case StatusForbidden:
		return "forbidden"
	case StatusUnreachable:
		return "backend unreachable"
	case StatusOverloaded:
		return "overloaded"
	case StatusBadRequest:
		return "bad request"
	case StatusShuttingDown:
		return "shutting down"
	}
	return "status " + strconv.Itoa(int(s))
}

// ValidRoute reports whether s is a valid route name: 1 to [MaxRouteLen]
// bytes, each an ASCII letter, digit, '.', '_', '-' or ':'. This is enough
// for host-like names ("pg.gw.example.com", which direct mode matches
// against SNI) and "name:port" forms, and it keeps route names safe to log
// and to print. The error wraps [ErrRoute] and names the offending byte.
func ValidRoute(s string) error {
	if len(s) == 0 {
		return fmt.Errorf("%w: route is empty; want 1..%d bytes of [A-Za-z0-9._:-]", ErrRoute, MaxRouteLen)
	}
	if len(s) > MaxRouteLen {
		return fmt.Errorf("%w: route is %d bytes long; want 1..%d bytes of [A-Za-z0-9._:-]", ErrRoute, len(s), MaxRouteLen)
	}
	for i := 0; i < len(s); i++ {
		if !routeByte(s[i]) {
			return fmt.Errorf("%w: byte %d of route %s is %q; want 1..%d bytes of [A-Za-z0-9._:-]",
				ErrRoute, i, quoteShort(s), s[i], MaxRouteLen)
		}
	}
	return nil
}

func routeByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '.', c == '_', c == '-', c == ':':
		return true
	}
	return false
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// Request opens a stream: it names the route the client wants.
type Request struct {
	Route string // see ValidRoute
}

// WriteRequest encodes r and writes it with exactly one Write call, so a
// frame-based writer (a yamux stream) sends it in one frame. The route must
// pass [ValidRoute]; otherwise nothing is written.
func WriteRequest(w io.Writer, r Request) error {
	if err := ValidRoute(r.Route); err != nil {
		return fmt.Errorf("writing stream request: %w", err)
	}
	buf := make([]byte, 0, 2+len(r.Route))
	buf = append(buf, Version, byte(len(r.Route)))
	buf = append(buf, r.Route...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("writing stream request for route %q: %w", r.Route, err)
	}
	return nil
}

// ReadRequest reads one request from r and never reads past its end, so the
// bytes after it stay in r for the backend. Errors wrap [ErrVersion],
// [ErrRoute] or [ErrTruncated], or the reader's own error (io.EOF when r
// ended before the first byte).
func ReadRequest(r io.Reader) (Request, error) {
	var hdr [2]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return Request{}, fmt.Errorf("reading stream request: %w", io.EOF)
		}
		return Request{}, fmt.Errorf("reading stream request header (got %d of 2 bytes): %w", n, truncated(err))
	}
	if hdr[0] != Version {
		return Request{}, fmt.Errorf("reading stream request: %w: version byte is %d, want %d", ErrVersion, hdr[0], Version)
	}
	n := int(hdr[1])
	if n == 0 {
		return Request{}, fmt.Errorf("reading stream request: %w: route length is 0; want 1..%d", ErrRoute, MaxRouteLen)
	}
	route := make([]byte, n)
	if got, err := io.ReadFull(r, route); err != nil {
		return Request{}, fmt.Errorf("reading stream request route (got %d of %d bytes): %w", got, n, truncated(err))
	}
	s := string(route)
	if err := ValidRoute(s); err != nil {
		return Request{}, fmt.Errorf("reading stream request: %w", err)
	}
	return Request{Route: s}, nil
}

// truncated turns the EOF of a partly read message into ErrTruncated and
// keeps any other error.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// Response answers a [Request]. Reason is a short human-readable
// explanation for the client; it is empty for StatusOK and is not sent then.
type Response struct {
	Status Status
	Reason string
}

// WriteResponse encodes resp and writes it with exactly one Write call. The
// reason is made safe first: invalid UTF-8 and control characters become
// U+FFFD and spaces, and it is cut to at most [MaxReasonLen] bytes on a
// character boundary. For StatusOK only the status byte is written.
func WriteResponse(w io.Writer, resp Response) error {
	var buf []byte
	if resp.Status == StatusOK {
		buf = []byte{byte(StatusOK)}
	} else {
		reason := SanitizeReason(resp.Reason)
		buf = make([]byte, 3, 3+len(reason))
		buf[0] = byte(resp.Status)
		binary.BigEndian.PutUint16(buf[1:3], uint16(len(reason)))
		buf = append(buf, reason...)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("writing stream response %q: %w", resp.Status, err)
	}
	return nil
}

// SanitizeReason returns reason as [WriteResponse] sends it: valid UTF-8
// without control characters, at most [MaxReasonLen] bytes. Such a reason is
// accepted by [ReadResponse] unchanged.
func SanitizeReason(reason string) string {
	if len(reason) <= MaxReasonLen && reasonOK(reason) {
		return reason
	}
	out := make([]byte, 0, min(len(reason), MaxReasonLen))
	for _, r := range reason { // invalid bytes come as utf8.RuneError
		if unicode.IsControl(r) {
			r = ' '
		}
		if len(out)+utf8.RuneLen(r) > MaxReasonLen {
			break
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

func reasonOK(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ReadResponse reads one response from r and never reads past its end.
// Errors wrap [ErrReason] (too long, invalid UTF-8, control characters),
// [ErrTruncated], or the reader's error (io.EOF when r ended before the
// first byte). Statuses this version does not know are returned as they are.
func ReadResponse(r io.Reader) (Response, error) {
	var st [1]byte
	if _, err := io.ReadFull(r, st[:]); err != nil {
		return Response{}, fmt.Errorf("reading stream response: %w", err)
	}
	resp := Response{Status: Status(st[0])}
	if resp.Status == StatusOK {
		return resp, nil
	}
	var l [2]byte
	if n, err := io.ReadFull(r, l[:]); err != nil {
		return Response{}, fmt.Errorf("reading stream response %q: reason length (got %d of 2 bytes): %w", resp.Status, n, truncated(err))
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n > MaxReasonLen {
		return Response{}, fmt.Errorf("reading stream response %q: %w: reason length is %d; want at most %d", resp.Status, ErrReason, n, MaxReasonLen)
	}
	if n == 0 {
		return resp, nil
	}
	reason := make([]byte, n)
	if got, err := io.ReadFull(r, reason); err != nil {
		return Response{}, fmt.Errorf("reading stream response %q: reason (got %d of %d bytes): %w", resp.Status, got, n, truncated(err))
	}
	if !reasonOK(string(reason)) {
		return Response{}, fmt.Errorf("reading stream response %q: %w: reason %s is not UTF-8 text without control characters", resp.Status, ErrReason, quoteShort(string(reason)))
	}
	resp.Reason = string(reason)
	return resp, nil
}

// RefusedError is returned by [Client.Open] when the gateway answered with a
// status other than OK. Its message carries the gateway's reason:
//
//	gateway refused route "pg": forbidden: identity cn:bob not allowed
type RefusedError struct {
	Route  string
	Status Status
	Reason string // as the gateway sent it; may be empty
}

func (e *RefusedError) Error() string {
	msg := "gateway refused route " + strconv.Quote(e.Route) + ": " + e.Status.String()
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

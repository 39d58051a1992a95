package mux

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// StreamResult is what [ServeStream] did, for the caller's audit log.
type StreamResult struct {
	Request  Request  // zero when the request could not be read
	Response Response // what was sent (or attempted)
	BytesIn  int64    // client to backend
	BytesOut int64    // backend to client
}

// ServeStream serves one stream on the gateway side:
//
//  1. it reads the [Request] within reqTimeout (0 means no limit);
//     a malformed or late request is answered with StatusBadRequest and a
//     reason, and the stream is reset;
//  2. it calls decide, which applies policy and returns the Response and,
//     when the status is OK, the backend connection it dialed (for other
//     statuses a non-nil conn is closed and ignored);
//  3. it writes the Response (within reqTimeout); on refusal it resets the
//     stream ([Stream.Reset]: the client reads the answer, then the reset,
//     and this side keeps nothing of the stream);
//  4. on OK it runs [Pipe](s, backend) and returns the byte counts.
//
// Whatever happens, s and the backend are closed when ServeStream returns,
// and the session is untouched. The error is nil for a refusal decided by
// decide; it is set for a bad request, a failed write, a Pipe failure, or an
// OK response without a backend (answered with StatusUnreachable).
func ServeStream(s *Stream, reqTimeout time.Duration, decide func(req Request) (Response, net.Conn)) (StreamResult, error) {
	var res StreamResult
	if reqTimeout > 0 {
		_ = s.SetReadDeadline(time.Now().Add(reqTimeout))
	}
	req, err := ReadRequest(s)
	if err != nil {
		res.Response = Response{Status: StatusBadRequest, Reason: BadRequestReason(err, reqTimeout)}
		_ = respond(s, res.Response, reqTimeout)
		_ = s.Reset()
		return res, err
	}
	res.Request = req
	_ = s.SetReadDeadline(time.Time{})

	resp, backend := decide(req)
	if resp.Status == StatusOK && backend == nil {
		resp = Response{Status: StatusUnreachable, Reason: "no backend connection"}
		err = fmt.Errorf("serving route %q: decide returned status OK without a backend connection", req.Route)
	}
	if resp.Status != StatusOK {
		resp.Reason = SanitizeReason(resp.Reason)
		res.Response = resp
		if backend != nil {
			_ = backend.Close()
		}
		if werr := respond(s, resp, reqTimeout); werr != nil && err == nil {
			err = fmt.Errorf("serving route %q: %w", req.Route, werr)
		}
		_ = s.Reset()
		return res, err
	}
	res.Response = Response{Status: StatusOK}
	if err := respond(s, res.Response, reqTimeout); err != nil {
		_ = backend.Close()
		_ = s.Close()
		return res, fmt.Errorf("serving route %q: %w", req.Route, err)
	}
	res.BytesIn, res.BytesOut, err = Pipe(s, backend)
	if err != nil {
		return res, fmt.Errorf("serving route %q: %w", req.Route, err)
	}
	return res, nil
}

func respond(s *Stream, resp Response, timeout time.Duration) error {
	if timeout > 0 {
		_ = s.SetWriteDeadline(time.Now().Add(timeout))
		defer func() { _ = s.SetWriteDeadline(time.Time{}) }()
	}
	return WriteResponse(s, resp)
}

// BadRequestReason is the short reason to send a client whose stream
// request [ReadRequest] could not read (err) within timeout: what was wrong
// with the request, and never the detail of an I/O error (addresses of the
// connection underneath).
func BadRequestReason(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("no complete stream request within %v", timeout)
	case errors.Is(err, ErrVersion), errors.Is(err, ErrRoute), errors.Is(err, ErrTruncated):
		return err.Error()
	}
	return "the stream request could not be read"
}

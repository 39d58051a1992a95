package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/mux"
)

// Refusal is how a local connection is told that its stream could not be
// opened: in the protocol its client speaks, so that psql, redis-cli or
// curl print the gateway's reason instead of "connection reset".
type Refusal string

// Refusal styles. RefusalReset, the zero value, resets the connection.
const (
	RefusalReset    Refusal = ""         // a TCP reset (or a plain close on a UNIX socket)
	RefusalPostgres Refusal = "postgres" // a FATAL ErrorResponse, after answering 'N' to SSLRequest and GSSENCRequest
	RefusalRedis    Refusal = "redis"    // "-ERR portcullis: ..." in answer to the first command
	RefusalHTTP     Refusal = "http"     // "HTTP/1.1 502 Bad Gateway" with the reason as a text body
)

// RefusalStyles lists the styles other than RefusalReset, for help texts
// and checks.
var RefusalStyles = []Refusal{RefusalPostgres, RefusalRedis, RefusalHTTP}

// ParseRefusal reads a style name: postgres, redis, http, or reset (and
// the empty string) for RefusalReset.
func ParseRefusal(s string) (Refusal, error) {
	switch r := Refusal(s); r {
	case RefusalPostgres, RefusalRedis, RefusalHTTP:
		return r, nil
	case RefusalReset, "reset":
		return RefusalReset, nil
	}
	return "", fmt.Errorf("unknown refusal style %q; want postgres, redis, http or reset", s)
}

// refusalTimeout bounds what a refusal reads from the client (its first
// message) and then the drain of what follows: a client that sends
// nothing gets the reset when it expires.
const refusalTimeout = 2 * time.Second

// Bounds of what a refusal reads.
const (
	maxStartup    = 10000    // PostgreSQL's own limit on a startup packet
	maxHead       = 16 << 10 // an HTTP request head, a Redis command line
	maxDrain      = 64 << 10 // read after the answer, so that closing sends a FIN and no RST over it
	maxPGRequests = 4        // SSLRequest, GSSENCRequest, then the startup packet
)

// errNoAnswer is returned by a refusal style that decided to send nothing
// (a PostgreSQL CancelRequest, a message it does not know).
var errNoAnswer = errors.New("no answer for this client message")

// refuseLocal answers c, whose stream could not be opened because of err,
// in style, within refusalTimeout; for RefusalReset, or when the client
// sends nothing in time or something else than its protocol's first
// message, it resets c. It closes c.
func refuseLocal(c net.Conn, style Refusal, err error) error {
	defer c.Close()
	if style == RefusalReset {
		reset(c)
		return nil
	}
	status, reason := refusalText(err)
	_ = c.SetDeadline(time.Now().Add(refusalTimeout))
	br := bufio.NewReaderSize(c, 4096)
	var answer []byte
	var aerr error
	switch style {
	case RefusalPostgres:
		answer, aerr = postgresRefusal(br, c, status, reason)
	case RefusalRedis:
		answer, aerr = redisRefusal(br, status, reason)
	case RefusalHTTP:
		answer, aerr = httpRefusal(br, status, reason)
	default:
		aerr = fmt.Errorf("unknown refusal style %q", style)
	}
	if aerr != nil {
		reset(c)
		return aerr
	}
	if _, err := c.Write(answer); err != nil {
		reset(c)
		return err
	}
	// A close with unread bytes would send an RST, which may destroy the
	// answer in the client's receive buffer: half-close, then drain.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.CopyN(io.Discard, br, maxDrain)
	return nil
}

// reset makes the close of c a TCP reset, so the application sees an
// error rather than an empty answer.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// refusalText is the status and reason told to a local client.
func refusalText(err error) (mux.Status, string) {
	var re *mux.RefusedError
	if errors.As(err, &re) {
		reason := re.Reason
		if reason == "" {
			reason = "route " + re.Route
		}
		return re.Status, mux.SanitizeReason(reason)
	}
	var de *DialError
	if errors.As(err, &de) {
		return mux.StatusUnreachable, mux.SanitizeReason("cannot reach the gateway: " + de.Error())
	}
	return mux.StatusUnreachable, mux.SanitizeReason("cannot open a stream through the gateway: " + err.Error())
}

// refusalMessage is the line every style carries.
func refusalMessage(status mux.Status, reason string) string {
	return "portcullis: " + status.String() + ": " + reason
}

// PostgreSQL request codes of the messages without a type byte.
const (
	pgProtocol3    = 3 << 16
	pgCancel       = 80877102
	pgSSLRequest   = 80877103
	pgGSSENCRequst = 80877104
)

// postgresRefusal reads the client's startup packet, answering 'N' (not
// supported) to SSLRequest and GSSENCRequest first, and returns a FATAL
// ErrorResponse.
func postgresRefusal(br *bufio.Reader, w io.Writer, status mux.Status, reason string) ([]byte, error) {
	for range maxPGRequests {
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, fmt.Errorf("reading the PostgreSQL startup packet: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		code := binary.BigEndian.Uint32(hdr[4:])
		if n < 8 || n > maxStartup {
			return nil, fmt.Errorf("PostgreSQL startup packet of %d bytes: %w", n, errNoAnswer)
		}
		if _, err := io.CopyN(io.Discard, br, int64(n-8)); err != nil {
			return nil, fmt.Errorf("reading the PostgreSQL startup packet: %w", err)
		}
		switch {
		case code == pgSSLRequest || code == pgGSSENCRequst:
			if n != 8 {
				return nil, fmt.Errorf("PostgreSQL encryption request of %d bytes: %w", n, errNoAnswer)
			}
			if _, err := w.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case code>>16 == pgProtocol3>>16:
			return postgresError(status, reason), nil
		default: // CancelRequest, protocol 2 or unknown: nothing to say
			return nil, fmt.Errorf("PostgreSQL request code %d: %w", code, errNoAnswer)
		}
	}
	return nil, fmt.Errorf("more than %d PostgreSQL encryption requests: %w", maxPGRequests-1, errNoAnswer)
}

// postgresError is an ErrorResponse with severity FATAL, the SQLSTATE
// that fits status and the refusal message.
func postgresError(status mux.Status, reason string) []byte {
	code := "08006" // connection_failure
	switch status {
	case mux.StatusForbidden:
		code = "28000" // invalid_authorization_specification
	case mux.StatusOverloaded, mux.StatusShuttingDown:
		code = "57P03" // cannot_connect_now
	}
	var body bytes.Buffer
	field := func(t byte, v string) {
		body.WriteByte(t)
		body.WriteString(strings.ReplaceAll(v, "\x00", ""))
		body.WriteByte(0)
	}
	field('S', "FATAL")
	field('V', "FATAL")
	field('C', code)
	field('M', refusalMessage(status, reason))
	body.WriteByte(0)
	out := make([]byte, 5, 5+body.Len())
	out[0] = 'E'
	binary.BigEndian.PutUint32(out[1:], uint32(4+body.Len()))
	return append(out, body.Bytes()...)
}

// redisRefusal reads the client's first command, inline or a RESP array
// of bulk strings, and returns an error reply.
func redisRefusal(br *bufio.Reader, status mux.Status, reason string) ([]byte, error) {
	line, err := readLine(br, maxHead)
	if err != nil {
		return nil, fmt.Errorf("reading the first Redis command: %w", err)
	}
	if n, ok := strings.CutPrefix(line, "*"); ok {
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 || count > 1024 {
			return nil, fmt.Errorf("Redis array header %q: %w", line, errNoAnswer)
		}
		read := 0
		for range count {
			h, err := readLine(br, maxHead)
			if err != nil {
				return nil, fmt.Errorf("reading the first Redis command: %w", err)
			}
			size, err := strconv.Atoi(strings.TrimPrefix(h, "$"))
			if !strings.HasPrefix(h, "$") || err != nil || size < 0 || read+size > maxHead {
				return nil, fmt.Errorf("Redis bulk string header %q: %w", h, errNoAnswer)
			}
			read += size
			if _, err := io.CopyN(io.Discard, br, int64(size)+2); err != nil {
				return nil, fmt.Errorf("reading the first Redis command: %w", err)
			}
		}
	}
	return []byte("-ERR " + refusalMessage(status, reason) + "\r\n"), nil
}

// httpRefusal reads the client's request head and returns a 502 answer
// whose text body is the refusal message.
func httpRefusal(br *bufio.Reader, status mux.Status, reason string) ([]byte, error) {
	total := 0
	for {
		line, err := readLine(br, maxHead-total)
		if err != nil {
			return nil, fmt.Errorf("reading the HTTP request head: %w", err)
		}
		total += len(line) + 2
		if line == "" {
			if total == 2 {
				continue // a blank line before the request line is allowed
			}
			break
		}
		if total == len(line)+2 && !strings.Contains(line, " HTTP/") {
			return nil, fmt.Errorf("HTTP request line %q: %w", mux.SanitizeReason(line), errNoAnswer)
		}
	}
	body := refusalMessage(status, reason) + "\n"
	return fmt.Appendf(nil, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Content-Length: %d\r\nConnection: close\r\nX-Portcullis-Status: %s\r\n\r\n%s",
		len(body), strings.ReplaceAll(status.String(), " ", "-"), body), nil
}

// errLineTooLong is returned by readLine for a line longer than its bound.
var errLineTooLong = errors.New("line too long")

// readLine reads one line ending in LF (CR LF or LF alone) of at most max
// bytes, without its end.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		if len(b) >= max {
			return "", errLineTooLong
		}
		b = append(b, c)
	}
}

package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
)

// Phases of an operation, the first half of an error kind.
const (
	phaseConnect   = "connect"
	phaseHandshake = "handshake"
	phaseOpen      = "open"
	phaseWrite     = "write"
	phaseRead      = "read"
	phaseEcho      = "echo"
	phaseClose     = "close"
	phaseDeny      = "deny"
)

// opError is a failed operation: the phase it failed in, the server, and
// the cause.
type opError struct {
	phase string
	addr  string
	err   error
}

func (e *opError) Error() string { return e.phase + " " + e.addr + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// Kind names the kind of a failure for the error counts: the phase it
// happened in and the cause, e.g. "connect/refused", "handshake/tls_alert",
// "open/refused_forbidden", "read/timeout", "deny/not_denied".
func Kind(err error) string {
	phase := "other"
	var oe *opError
	if errors.As(err, &oe) {
		phase = oe.phase
	}
	return phase + "/" + cause(err)
}

// cause names what went wrong, independent of the phase.
func cause(err error) string {
	var re *mux.RefusedError
	var cve *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	_, alert := conn.RemoteAlert(err)
	switch {
	case errors.As(err, &re):
		return "refused_" + statusWord(re.Status)
	case errors.Is(err, ErrNotDenied):
		return "not_denied"
	case errors.Is(err, ErrEcho):
		return "echo_mismatch"
	case errors.Is(err, ErrALPN):
		return "no_alpn"
	case alert:
		return "tls_alert"
	case errors.As(err, &cve), errors.Is(err, conn.ErrPin):
		return "server_cert"
	case errors.As(err, &rh):
		return "not_tls"
	case isTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case isReset(err):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "addr_not_available"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_files"
	case errors.Is(err, mux.ErrSessionClosed):
		return "session_closed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

// statusWord is a refusal status as one snake_case word.
func statusWord(s mux.Status) string {
	b := []byte(s.String())
	for i, c := range b {
		if c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

package bench

import (
	"errors"

	"github.com/portcullis-gw/portcullis/tunnel"
)

// Sentinel errors of this package, for errors.Is. Errors returned by
// [ParseSettings] and [Settings.Validate] wrap config.ErrInvalid instead.
var (
	// ErrEcho: the bytes that came back from an echo route differ from
	// those sent.
	ErrEcho = errors.New("echo mismatch: the bytes read back differ from those sent")

	// ErrALPN: the server did not negotiate the portcullis ALPN protocol,
	// so it is no gateway in mux mode (use Direct for other TLS servers).
	// It is tunnel.ErrALPN, which the dial's *tunnel.DialError wraps.
	ErrALPN = tunnel.ErrALPN

	// ErrNotDenied: in deny mode, the server did not close a connection
	// from the source address at once: it was let through the network
	// gate, or the gateway is overloaded.
	ErrNotDenied = errors.New("connection not closed by the server: is the --source address allowed by the gateway's rules?")

	// ErrAllFailed is wrapped by the error Run returns when every operation
	// failed; the error also wraps the first failure (a *tunnel.DialError
	// when the gateway could not be reached or refused the handshake, a
	// *mux.RefusedError when it refused the stream).
	ErrAllFailed = errors.New("every operation failed")
)

package conn

import "errors"

// Sentinel errors. Errors of these classes wrap the matching sentinel, so
// callers branch with errors.Is; the message around it says what was given
// and what is accepted.
var (
	// ErrPattern is wrapped by every error ParsePattern returns. The message
	// names the pattern given, what is wrong with it and the accepted form.
	ErrPattern = errors.New("bad identity pattern")

	// ErrRevoked is wrapped by the error a handshake fails with when the
	// client certificate, or a certificate in its chain, is listed in a
	// loaded CRL (see ServerState.CheckRevoked).
	ErrRevoked = errors.New("certificate revoked")

	// ErrPin is wrapped when the gateway's certificate matches none of the
	// pins of ClientOptions.Pins. (A program that takes the pins from its
	// command line adds the flag's name.)
	ErrPin = errors.New("gateway certificate matches none of the pinned fingerprints")
)

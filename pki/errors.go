package pki

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that falls in one of
// these classes wraps the matching sentinel, so callers can branch with
// errors.Is; the message around it names the field, what is wrong, the
// accepted form and the value given.
var (
	// ErrInvalidRequest: a Request or CAOptions field is missing or malformed
	// (a server certificate without a DNS or IP name, a relative URI, an
	// inverted validity period, ...).
	ErrInvalidRequest = errors.New("invalid request")

	// ErrKeyType: an unknown key type name, or a public key of an algorithm
	// or size this package does not certify.
	ErrKeyType = errors.New("unsupported key type")

	// ErrCSR: a certificate signing request that does not parse or whose
	// self-signature does not verify.
	ErrCSR = errors.New("invalid certificate signing request")

	// ErrPEM: PEM input without the expected blocks, or with blocks that do
	// not parse.
	ErrPEM = errors.New("invalid PEM input")

	// ErrExists: a file that would be written already exists and overwriting
	// was not asked for.
	ErrExists = errors.New("file already exists")

	// ErrNotCADir: a directory that does not hold a CA written by Init.
	ErrNotCADir = errors.New("not a CA directory")

	// ErrUnknownSerial: a serial number or certificate that the CA directory
	// has no record of issuing.
	ErrUnknownSerial = errors.New("serial number not issued by this CA")

	// ErrIndex: the CA directory's index is unreadable or inconsistent.
	ErrIndex = errors.New("invalid CA index")
)

// valueError is the error of a parser for a single value (a duration, a
// reason, a key type): its text stands alone, naming the value and the
// accepted forms, and it matches its sentinel with errors.Is.
type valueError struct {
	msg      string
	sentinel error
}

func (e *valueError) Error() string { return e.msg }
func (e *valueError) Unwrap() error { return e.sentinel }

func valueErrorf(sentinel error, format string, args ...any) error {
	return &valueError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

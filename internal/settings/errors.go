package settings

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error that reports bad settings: a value
// that does not parse, a required setting that is missing, settings that
// contradict each other, an unknown flag or an unexpected argument. Programs
// map it to exit status 1.
//
// Parse returns [flag.ErrHelp] (not wrapped, not ErrInvalid) when --help or
// -h was given, after writing the help text.
//
// Errors that wrap neither report a mistake in a settings struct itself (a
// bad tag, an unsupported field type): a programming error, not bad input.
var ErrInvalid = errors.New("invalid settings")

// Error reports one bad setting. It names the setting in both of its
// spellings (flag and environment variable), says what is wrong, shows the
// value given and where it came from, and lists the accepted forms:
//
//	--handshake-timeout (GATEWAY_HANDSHAKE_TIMEOUT): not a duration: time: invalid duration "ten"; got "ten" from $GATEWAY_HANDSHAKE_TIMEOUT; want a duration such as 10s, 1m30s or 500ms
//
// It wraps [ErrInvalid] and, when there is one, the underlying cause (Err), so
// errors.Is works with both.
type Error struct {
	// Flag is the long flag with its dashes ("--handshake-timeout"), or for
	// a positional argument its name ("argument ROUTE").
	Flag string
	// Short is the one-letter alias with its dash ("-L"), or empty.
	Short string
	// Env is the environment variable ("GATEWAY_HANDSHAKE_TIMEOUT"), or
	// empty for a positional argument.
	Env string
	// Problem says what is wrong: "not a duration", "required", "must be
	// greater than 0".
	Problem string
	// Value is the value given ("" when none was).
	Value string
	// Source tells where Value came from: "--handshake-timeout",
	// "$GATEWAY_HANDSHAKE_TIMEOUT", "the default"; empty when unknown (a
	// Validate call on settings built in code).
	Source string
	// Want describes the accepted forms, with an example.
	Want string
	// Err is the underlying cause, or nil.
	Err error
}

// MaxValueInError bounds how much of a value an error message repeats.
const MaxValueInError = 200

// Error formats the error on one line: names, problem, cause, value, source
// and accepted forms.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Names())
	b.WriteString(": ")
	b.WriteString(e.Problem)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	b.WriteString("; got ")
	b.WriteString(Quote(e.Value))
	if e.Source != "" {
		b.WriteString(" from ")
		b.WriteString(e.Source)
	}
	if e.Want != "" {
		b.WriteString("; want ")
		b.WriteString(e.Want)
	}
	return b.String()
}

// Names returns the setting's spellings: "--handshake-timeout
// (GATEWAY_HANDSHAKE_TIMEOUT)", "-L/--local (TUNNEL_LOCAL)", or "argument
// ROUTE".
func (e *Error) Names() string {
	s := e.Flag
	if e.Short != "" {
		s = e.Short + "/" + s
	}
	if e.Env != "" {
		s += " (" + e.Env + ")"
	}
	return s
}

// Unwrap returns ErrInvalid and Err (when not nil).
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.Err}
}

// Quote quotes v for an error message, cut to MaxValueInError bytes
// without splitting a UTF-8 sequence.
func Quote(v string) string {
	if len(v) <= MaxValueInError {
		return strconv.Quote(v)
	}
	cut := MaxValueInError
	for cut > 0 && v[cut]&0xC0 == 0x80 {
		cut--
	}
	return strconv.Quote(v[:cut]) + "..."
}

// invalidError is an error that wraps ErrInvalid without repeating its text.
type invalidError struct{ err error }

// Invalidf formats an error like fmt.Errorf (%w works) that also wraps
// ErrInvalid.
func Invalidf(format string, args ...any) error {
	return &invalidError{err: fmt.Errorf(format, args...)}
}

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

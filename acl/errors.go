package acl

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them, so callers can branch with errors.Is; the wrapping error carries the
// detail (line or item, the offending text, the accepted form).
var (
	// ErrEmpty: a rule is blank (an empty list item, or "!" alone).
	ErrEmpty = errors.New("empty rule")
	// ErrSyntax: the text is not an IP address or prefix.
	ErrSyntax = errors.New("invalid rule")
	// ErrNotCanonical: a prefix has host bits set (10.1.2.3/8). The message
	// shows the canonical form.
	ErrNotCanonical = errors.New("not a canonical prefix")
	// ErrZone: an IPv6 zone (fe80::1%eth0) appears in a rule.
	ErrZone = errors.New("zone not allowed in a rule")
	// ErrLineTooLong: a line of a rule file exceeds MaxLineLen bytes.
	ErrLineTooLong = errors.New("line too long")
	// ErrTooManyRules: the input holds more than MaxRules rules or, for a
	// file, more than MaxLines lines.
	ErrTooManyRules = errors.New("too many rules")
	// ErrConflict: the same prefix is both allowed and denied.
	ErrConflict = errors.New("conflicting rules")
	// ErrInvalidRule: a Rule given to New has an invalid or non-canonical
	// Prefix, or a Line out of range.
	ErrInvalidRule = errors.New("invalid rule")
	// ErrRead: reading the rule text failed; the I/O error is wrapped too.
	ErrRead = errors.New("reading rules")
)

// Input bounds of Parse, ParseList and New.
const (
	// MaxLineLen is the longest accepted line of a rule file, in bytes,
	// without the line break.
	MaxLineLen = 1024
	// MaxRules is the largest number of rules in one file, list or Set.
	MaxRules = 1_000_000
	// MaxLines is the largest number of lines in one rule file, counting
	// blank and comment lines.
	MaxLines = 10_000_000
)

// maxTextInError bounds how much of an offending line an error repeats.
const maxTextInError = 80

// ParseError reports a rule that could not be parsed: where it is, what it
// says, and why it was refused (Err wraps one of the sentinel errors above).
type ParseError struct {
	// Line is the 1-based line of a file (Parse), or the 1-based item
	// position in a comma-separated list (ParseList, List is true), or 0 for
	// a single rule (ParseRule).
	Line int
	// Text is the offending rule text, trimmed, at most about 80 bytes.
	Text string
	// Err says what is wrong and wraps a sentinel error.
	Err error
	// List is true when Line counts items of a comma-separated list.
	List bool
}

// Error formats the error as `line 3: "10.1.2.3/8": not a canonical prefix:
// use 10.0.0.0/8` (or `item 3: ...` for lists).
func (e *ParseError) Error() string {
	var b []byte
	if e.Line > 0 {
		if e.List {
			b = append(b, "item "...)
		} else {
			b = append(b, "line "...)
		}
		b = strconv.AppendInt(b, int64(e.Line), 10)
		b = append(b, ": "...)
	}
	b = strconv.AppendQuote(b, e.Text)
	b = append(b, ": "...)
	if e.Err != nil {
		b = append(b, e.Err.Error()...)
	} else {
		b = append(b, "invalid rule"...)
	}
	return string(b)
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

// ConflictError reports the same prefix written once as allow and once as
// deny. It wraps ErrConflict.
type ConflictError struct {
	// First and Second are the two rules, in input order.
	First, Second Rule
	// FirstPos and SecondPos are their 0-based positions in the slice given
	// to New.
	FirstPos, SecondPos int
}

// Error names both rules and where they were written.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %s (%s) and %s (%s) name the same prefix with opposite actions: keep one",
		ErrConflict, e.First, where(e.First, e.FirstPos), e.Second, where(e.Second, e.SecondPos))
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// where names a rule's origin: its line, or its position in New's input.
func where(r Rule, pos int) string {
	if r.Line > 0 {
		return "line " + strconv.Itoa(r.Line)
	}
	return "rules[" + strconv.Itoa(pos) + "]"
}

// clip shortens s for inclusion in an error message.
func clip(s string) string {
	if len(s) <= maxTextInError {
		return s
	}
	cut := maxTextInError
	// Do not split a UTF-8 sequence.
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}

package config

import (
	"strconv"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/settings"
)

// ErrInvalid is wrapped by every error that reports bad settings: a value
// that does not parse, a required setting that is missing, settings that
// contradict each other, an unknown flag or an unexpected argument, a bad
// policy file. Programs map it to exit status 1. It is
// [settings.ErrInvalid], the sentinel of the settings engine, so errors.Is
// works with either name.
//
// The ParseXxx functions return [flag.ErrHelp] (not wrapped, not
// ErrInvalid) when --help or -h was given, after writing the help text.
//
// Errors that wrap neither report a mistake in a settings struct itself (a
// bad tag, an unsupported field type): a programming error, not bad input.
var ErrInvalid = settings.ErrInvalid

// PolicyError reports one problem in a policy file (see [ParsePolicy]): the
// file, the line, what is wrong and, when it helps, the accepted form:
//
//	policy.yaml:12: route "pg": unknown key "backnd" (known: backend, identities, networks, max_streams, dial_timeout, proxy_protocol)
//	policy.yaml:9: route "pg": identities: bad identity pattern "alice": unknown form; want one of uri:...
//
// It wraps [ErrInvalid] and, when there is one, the underlying cause (Err):
// conn.ErrPattern for an identity pattern, an acl sentinel for a network
// rule, mux.ErrRoute for a route name, the I/O error of a file that cannot
// be read.
type PolicyError struct {
	// File is the policy file as named to LoadPolicy or ParsePolicy; empty
	// when none was named.
	File string
	// Line is the 1-based line of the problem, or 0 when it concerns the
	// whole file (too large, not YAML, no routes).
	Line int
	// Msg says where in the policy and what is wrong: `route "pg": no
	// backend`.
	Msg string
	// Err is the underlying cause, or nil. Error prints it after Msg.
	Err error
	// Want describes the accepted form, or is empty.
	Want string
}

// Error formats the error on one line: "FILE:LINE: MSG: ERR; want WANT",
// leaving out what is empty ("line 12: ..." without a file, "FILE: ..."
// without a line).
func (e *PolicyError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Want != "" {
		b.WriteString("; want ")
		b.WriteString(e.Want)
	}
	return b.String()
}

// Unwrap returns ErrInvalid and Err (when not nil).
func (e *PolicyError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.Err}
}

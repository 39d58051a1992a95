// Package config holds the settings of the gateway and tunnel programs: it
// reads them from flags and environment variables, checks them, and hands
// out structs of parsed values (durations, route and listener lists,
// network rules, identity patterns) so that bad settings fail at start with
// a message that names the setting, the accepted forms and the value given.
// It also defines the generic mechanism, [Parse], so that other programs
// (a load generator) can declare their own settings the same way. Reading
// certificate, rule and policy files is left to their consumers; this
// package only checks that the files can be read.
//
// # Settings structs
//
// One struct definition drives both the flags (standard package flag) and
// the environment (github.com/caarlos0/env/v11), so a flag and its variable
// cannot drift apart. Each exported field with a flag tag is a setting:
//
//	HandshakeTimeout time.Duration `flag:"handshake-timeout" default:"10s" help:"time a client has to complete the TLS handshake"`
//
// Tags:
//
//   - flag: the long flag name: lower-case letters, digits and '-',
//     starting with a letter. The environment variable is the program's
//     prefix followed by the name in upper case with '-' as '_' (see
//     [EnvName]): --handshake-timeout is GATEWAY_HANDSHAKE_TIMEOUT. "-"
//     skips the field. A struct field without a flag tag (embedded or not)
//     is walked into, so settings can be shared by embedding.
//   - short: an optional one-letter alias ("L" for -L).
//   - default: the value when neither flag nor variable is set, written as
//     on the command line (comma separated for a repeatable setting).
//   - meta: the placeholder in --help (FILE, ADDR); by default derived from
//     the type (DURATION, N, STRING, ...).
//   - help: one line for --help.
//   - forms: the accepted forms, with an example, for error messages; by
//     default derived from the type or equal to meta.
//
// Field types: string, bool and int (or named types of these kinds),
// time.Duration, types whose pointer implements encoding.TextUnmarshaler,
// []acl.Rule (parsed with acl.ParseList; each --allow adds to the list),
// conn.Pattern (parsed with conn.ParsePattern), and slices of any of these
// except []acl.Rule: a slice is a repeatable setting, one element per flag,
// comma separated in its variable.
//
// # Errors
//
// Every error about bad input wraps [ErrInvalid]; one about a single setting
// is a [*SettingError]. --help yields flag.ErrHelp. Validation returns all
// problems at once, joined with errors.Join.
//
// # Concurrency
//
// The functions of this package are safe for concurrent use; the settings
// structs they return are plain values owned by the caller.
package config

// Package settings reads a program's settings from command-line flags and
// environment variables into a struct, writes its --help, and reports bad
// values with errors that name the flag, the variable, the value given and
// the accepted forms. One struct definition drives both the flags
// (standard package flag) and the environment
// (github.com/caarlos0/env/v11), so a flag and its variable cannot drift
// apart. The package knows no types of the programs that use it: values of
// their own types are parsed through encoding.TextUnmarshaler. It holds no
// state.
//
// # Settings structs
//
// Each exported field with a flag tag is a setting:
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
//     the type (DURATION, N, STRING, VALUE, ...).
//   - help: one line for --help.
//   - forms: the accepted forms, with an example, for error messages; by
//     default derived from the type or equal to meta.
//   - problem: what an error says when a value does not parse ("invalid
//     network rules"); by default derived from the type ("not a
//     duration", "invalid value").
//   - sep: only "," for now, on a repeatable setting: a value on the
//     command line is itself a comma-separated list (--allow a,b adds two
//     elements), as it always is in the environment.
//
// Field types: string, bool and int (or named types of these kinds),
// time.Duration, types whose pointer implements encoding.TextUnmarshaler,
// and slices of any of these: a slice is a repeatable setting, one element
// per flag (or per comma-separated item with a sep tag), comma separated
// in its variable.
//
// # Errors
//
// Every error about bad input wraps [ErrInvalid]; one about a single setting
// is an [*Error]. --help yields flag.ErrHelp. Validation code reports
// problems with [Setting.Fail] and the checks such as [RequiredFile] and
// [Positive], for settings found with [Index].
//
// # Misspelled variables
//
// Parse reads only the variables of its settings. [Unknown] finds the
// variables that carry a program's prefix but belong to no setting, and
// names the closest setting, so that a misspelling is reported rather than
// ignored.
package settings

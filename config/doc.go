// Package config holds the settings of the gateway and tunnel programs: it
// reads them from flags and environment variables, checks them, and hands
// out structs of parsed values (durations, route and listener lists,
// network rules, identity patterns) so that bad settings fail at start with
// a message that names the setting, the accepted forms and the value given.
// It also defines the generic mechanism, [Parse], so that other programs
// (a load generator) can declare their own settings the same way. The
// gateway's policy file is parsed here too ([LoadPolicy],
// [Gateway.LoadPolicy]); reading certificate and rule files is left to
// their consumers, this package only checks that they can be read.
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
// # Policy file
//
// gateway run --policy FILE names a YAML file that defines the routes, who
// may use each, and optionally the network gate:
//
//	allow:                       # optional: the network gate (see below)
//	  - 10.0.0.0/8
//	  - "!10.9.0.0/16"           # quoted: an unquoted "!" starts a YAML tag
//	default_route: pg            # optional: direct-mode clients whose SNI names no route
//	routes:
//	  pg:                        # the route name (mux.ValidRoute)
//	    backend: 10.1.2.3:5432   # HOST:PORT, builtin:echo or builtin:discard, as for --route
//	    identities:              # at least one identity pattern (conn.ParsePattern)
//	      - uri:spiffe://corp/app/*
//	      - cn:dba
//	    networks:                # optional: source addresses admitted on this route
//	      - 10.1.0.0/16          #   (acl rules: most specific wins, no match refuses);
//	                             #   absent: any address that passed the gate
//	    max_streams: 200         # optional: streams at once on the route, gateway-wide; 0: no cap
//	    dial_timeout: 3s         # optional: instead of --dial-timeout for this route
//
// Everything is checked when the file is loaded, and every problem reported
// with its line (see [ParsePolicy]); a file with a problem is not used at
// all. The file must be plain YAML: one document, UTF-8, at most
// [MaxPolicySize] bytes, no anchors or aliases, no tags.
//
// How the file combines with the flags:
//
//   - Routes and identity rules come from the file only: --route,
//     --allow-id and --default-route are refused together with --policy.
//   - The network gate comes either from the file's "allow:" or from
//     --allow and --allow-file (which add up, as without a policy), never
//     from both: that is refused, and so is having neither. [Gateway.Validate]
//     cannot see inside the file, so it accepts --policy in place of
//     --allow and --allow-file; [Gateway.LoadPolicy] makes the final check.
//
// # Errors
//
// Every error about bad input wraps [ErrInvalid]; one about a single setting
// is a [*SettingError], one about a line of the policy file a
// [*PolicyError]. --help yields flag.ErrHelp. Validation returns all
// problems at once, joined with errors.Join.
//
// # Concurrency
//
// The functions of this package are safe for concurrent use; the settings
// structs they return are plain values owned by the caller.
package config

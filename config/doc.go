// Package config holds the settings of the gateway and tunnel programs: the
// settings struct of each command ([Gateway], [Forward], [NC], the
// "gateway pki" commands such as [PKIIssue]), read from flags and
// environment variables by the engine in internal/settings, and the checks
// across fields ([Gateway.Validate], ...) that hand out structs of parsed
// values (durations, route and listener lists, network rules, identity
// patterns) so that bad settings fail at start with a message that names
// the setting, the accepted forms and the value given. The gateway's
// policy file is parsed here too ([LoadPolicy], [Gateway.LoadPolicy]);
// reading certificate and rule files is left to their consumers, this
// package only checks that they can be read.
//
// # Settings structs
//
// Each exported field with a flag tag is a setting, read from --NAME and
// from the program's prefix plus NAME in upper case (GATEWAY_ALLOW_FILE for
// --allow-file); see internal/settings for the tags. Values of the
// project's own types are parsed through encoding.TextUnmarshaler:
// []acl.Rule (one rule per comma-separated item, on the command line as in
// the environment; each --allow adds to the list) and conn.Pattern (one
// pattern per --allow-id, comma separated in the environment).
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
//	identity_limits:             # optional: per client identity, over the whole gateway
//	  - identities: [uri:spiffe://corp/ci/*]   # the first entry that matches is the identity's
//	    max_sessions: 4          # mux sessions and direct connections at once
//	    max_streams: 64          # streams open at once
//	    stream_rate: "20:100"    # stream opens a second, RATE[:BURST] (conn.ParseRate)
//	                             # identities no entry matches: the --*-per-identity flags
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
// is a [*settings.Error], one about a line of the policy file a
// [*PolicyError]. --help yields flag.ErrHelp. Validation returns all
// problems at once, joined with errors.Join.
//
// # Concurrency
//
// The functions of this package are safe for concurrent use; the settings
// structs they return are plain values owned by the caller.
package config

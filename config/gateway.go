package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
)

// GatewayPrefix starts the environment variable of every gateway flag.
const GatewayPrefix = "GATEWAY_"

// Gateway holds the settings of "gateway run", parsed. The struct tags
// define the flags and environment variables (see the package
// documentation); the field comments state what a zero value means when the
// struct is built in code.
type Gateway struct {
	// Listen is the address to accept client connections on.
	Listen string `flag:"listen" meta:"ADDR" default:":8443" help:"address to accept client connections on; no HOST means every interface" forms:"HOST:PORT with a port from 0 to 65535, e.g. :8443, 10.1.2.3:8443 or [::1]:8443"`
	// Cert and Key are PEM files: the server certificate chain and its
	// private key. Required; or Cert is a PKCS#12 bundle (see
	// conn.IsPKCS12) that holds the key, and Key is empty.
	Cert string `flag:"cert" meta:"FILE" help:"server certificate chain, PEM, or a PKCS#12 bundle (.p12, .pfx) holding the key too (required)" forms:"a readable PEM file with the server certificate chain, e.g. --cert /etc/portcullis/gateway.crt, or a PKCS#12 bundle, e.g. --cert /etc/portcullis/gateway.p12"`
	Key  string `flag:"key" meta:"FILE" help:"private key of --cert, PEM (required, unless --cert is PKCS#12)" forms:"a readable PEM file with the private key of --cert, e.g. --key /etc/portcullis/gateway.key"`
	// KeyPassFile names a file whose first line is the password of a
	// PKCS#12 Cert; empty means the empty password.
	KeyPassFile string `flag:"key-pass-file" meta:"FILE" help:"file whose first line is the password of a PKCS#12 --cert" forms:"a readable file with the password on its first line, e.g. --key-pass-file /etc/portcullis/gateway.pass"`
	// CA is the PEM bundle that client certificates must chain to. Required.
	CA string `flag:"ca" meta:"FILE" help:"CA bundle that client certificates must chain to, PEM (required)" forms:"a readable PEM file with the CA certificates that sign client certificates, e.g. --ca /etc/portcullis/clients-ca.crt"`
	// CRL is a revocation list (PEM or DER); empty means none.
	CRL string `flag:"crl" meta:"FILE" help:"certificate revocation list, PEM or DER" forms:"a readable CRL file, PEM or DER, e.g. --crl /etc/portcullis/crl.pem"`
	// Allow is the network allow-list given inline. It adds to the rules
	// of AllowFile. The gateway needs a network allow-list from Allow,
	// AllowFile or the "allow:" of the Policy file, which cannot be
	// combined with Allow or AllowFile.
	Allow []acl.Rule `flag:"allow" meta:"RULES" sep:"," problem:"invalid network rules" forms:"IP addresses and CIDR prefixes separated by commas, \"!\" in front to deny, e.g. 10.0.0.0/8,!10.9.0.0/16,192.168.1.7,::1 (0.0.0.0/0,::/0 is every address)" help:"source networks to admit, comma separated, most specific rule wins, \"!\" denies: 10.0.0.0/8,!10.9.0.0/16,::1"`
	// AllowFile names a file of rules, one per line, "#" comments. The
	// gateway reads it (and reloads it); validation only checks that it
	// can be read. Empty means none.
	AllowFile string `flag:"allow-file" meta:"FILE" help:"the same rules, one per line, \"#\" comments; reloaded on SIGHUP" forms:"a readable file of rules, one per line, e.g. --allow-file /etc/portcullis/allow.txt"`
	// Routes maps route names to backends. At least one is required
	// unless Policy is set; with Policy, none is allowed.
	Routes []Route `flag:"route" meta:"NAME=HOST:PORT" help:"a backend that clients reach by NAME; HOST:PORT, unix:PATH for a UNIX socket, or builtin:echo or builtin:discard for tests" forms:"NAME=HOST:PORT, NAME=unix:PATH, NAME=builtin:echo or NAME=builtin:discard, e.g. pg=db.internal:5432 or pg=unix:/var/run/postgresql/.s.PGSQL.5432"`
	// DefaultRoute is the route of direct-mode clients whose SNI names no
	// route; empty means such clients are refused. It must name one of
	// Routes; with Policy it must be empty (the file has default_route).
	DefaultRoute string `flag:"default-route" meta:"NAME" help:"route for direct-mode clients whose SNI names no route" forms:"the NAME of a --route, e.g. pg"`
	// AllowIDs are the identities admitted on every route. At least one is
	// required unless Policy is set; with Policy, none is allowed.
	AllowIDs []conn.Pattern `flag:"allow-id" meta:"PATTERN" problem:"invalid identity pattern" forms:"one identity pattern: uri:spiffe://corp/app/*, dns:NAME or dns:*.DOMAIN, cn:NAME, ou:UNIT, o:ORG, email:ADDR, sha256:FINGERPRINT, or any" help:"client identities admitted on every route: uri:spiffe://corp/app/*, dns:NAME, cn:NAME, ou:UNIT, o:ORG, email:ADDR, sha256:FINGERPRINT, or any"`
	// Policy names a YAML policy file: routes with their identity and
	// network rules, the default route and optionally the network gate
	// (see the package documentation). Validate only checks that it can be
	// read; LoadPolicy parses it. Empty means none.
	Policy string `flag:"policy" meta:"FILE" help:"YAML file of routes (backend, identities, networks, max_streams, dial_timeout) and default_route, instead of --route, --allow-id and --default-route (refused with it); its optional allow: list is the network gate, instead of --allow and --allow-file (not both)" forms:"a readable YAML policy file, e.g. --policy /etc/portcullis/policy.yaml"`
	// Admin is the address of /healthz, /readyz, /status and /metrics;
	// empty disables them (and the background check of the backends).
	Admin string `flag:"admin" meta:"ADDR" help:"serve /healthz, /readyz, /status (JSON, with a check of each backend every 10s) and /metrics (Prometheus) on this address; empty disables" forms:"HOST:PORT, e.g. 127.0.0.1:9090, or empty to disable"`
	// ReadyDespiteReloadFailure keeps /readyz ready after a failed reload;
	// without it /readyz fails until a reload succeeds.
	ReadyDespiteReloadFailure bool `flag:"ready-despite-reload-failure" help:"keep /readyz ready after a failed reload (the previous state goes on serving either way); without it /readyz answers 503 until a reload succeeds"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `flag:"log-level" meta:"LEVEL" default:"info" help:"least severe events logged: debug, info, warn or error" forms:"debug, info, warn or error"`
	// LogFormat is json or console.
	LogFormat string `flag:"log-format" meta:"FORMAT" default:"json" help:"log output: json (one object per line) or console (for people)" forms:"json or console"`
	// HandshakeTimeout bounds a client's TLS handshake. Must be > 0.
	HandshakeTimeout time.Duration `flag:"handshake-timeout" default:"10s" help:"time a client has to complete the TLS handshake, from the first byte it sends"`
	// IdleTimeout closes a stream after this long without traffic; 0 means
	// never.
	IdleTimeout time.Duration `flag:"idle-timeout" default:"0s" help:"close a stream after this long without traffic; 0 never"`
	// DialTimeout bounds the dial to a backend. Must be > 0.
	DialTimeout time.Duration `flag:"dial-timeout" default:"5s" help:"time to connect to a backend"`
	// DrainTimeout is how long open streams may finish after SIGTERM or
	// SIGINT; 0 closes them at once.
	DrainTimeout time.Duration `flag:"drain-timeout" default:"30s" help:"on SIGTERM or SIGINT, time open streams get to finish before they are closed"`
	// WatchInterval is how often the files named by Cert, Key, CA, CRL,
	// AllowFile and Policy are checked for changes (and reloaded when one
	// changed); 0 disables the polling (SIGHUP still reloads). Must not
	// be negative.
	WatchInterval time.Duration `flag:"watch-interval" default:"5s" help:"how often to check --cert, --key, --ca, --crl, --allow-file and --policy for changes and reload them; 0 disables (SIGHUP still reloads)"`
	// MaxConns caps the connections open at once. Must be >= 1.
	MaxConns int `flag:"max-conns" default:"10000" help:"most client connections open at once"`
	// MaxHandshakes caps the TLS handshakes in flight. Must be >= 1.
	MaxHandshakes int `flag:"max-handshakes" default:"256" help:"most TLS handshakes in flight at once"`
	// MaxStreams caps the streams open at once in one session. Must be >= 1.
	MaxStreams int `flag:"max-streams" default:"1024" help:"most streams open at once in one client session"`
	// HelloTimeout is how long a new connection may stay silent: it must
	// send its first byte within it, and holds no handshake slot until its
	// ClientHello is in (HandshakeTimeout then runs from that first byte).
	// Must be > 0.
	HelloTimeout time.Duration `flag:"hello-timeout" default:"5s" help:"time a new connection has to send its first byte; until its ClientHello is in it holds no handshake slot, and from that first byte --handshake-timeout bounds the rest"`
	// MaxPending caps the connections that have not finished their
	// handshake (silent, sending their ClientHello, or in the handshake),
	// in all, per source address and per source network (PrefixV4 and
	// PrefixV6 bits). Over a cap, a new connection takes the place of the
	// oldest one of its group that has not sent a ClientHello; when every
	// one has, the new one is reset. Each must be >= 1.
	MaxPending          int `flag:"max-pending" default:"1024" help:"most connections at once that have not finished their handshake; over it, a new connection replaces (resets) the oldest one that has not sent its ClientHello"`
	MaxPendingPerAddr   int `flag:"max-pending-per-addr" default:"64" help:"the same, from one source address"`
	MaxPendingPerPrefix int `flag:"max-pending-per-prefix" default:"256" help:"the same, from one source network (see --prefix-v4 and --prefix-v6)"`
	// PrefixV4 and PrefixV6 are the prefix lengths that group source
	// addresses into networks for the per-network caps: 1 to 32 and 1 to
	// 128.
	PrefixV4 int `flag:"prefix-v4" default:"24" help:"IPv4 prefix length that groups source addresses into one network for the per-network caps"`
	PrefixV6 int `flag:"prefix-v6" default:"64" help:"IPv6 prefix length that groups source addresses into one network for the per-network caps"`
	// MaxSessionMemory bounds what one client session can make the gateway
	// buffer, beyond 256 KiB per accepted stream. Must be >= 1 MiB.
	MaxSessionMemory int `flag:"max-session-memory" meta:"BYTES" default:"8388608" help:"bytes one client session can make the gateway buffer beyond the 256 KiB each open stream is owed: receive windows grow, with use, only within it (the most a session holds is this plus 256 KiB per stream, see --max-streams)"`
	// ConnRatePerAddr and ConnRatePerPrefix limit the new connections a
	// second from one source address and one source network, checked in
	// the accept loop before anything is read; HandshakeRatePerAddr and
	// HandshakeRatePerPrefix the handshakes begun (a ClientHello in).
	// Over a limit a connection is reset, counted and logged. Off by
	// default: the pending caps and the fair sharing of handshake slots
	// already keep one source from starving the others, and many clients
	// may share one address (NAT).
	ConnRatePerAddr        conn.Rate `flag:"conn-rate-per-addr" meta:"RATE" default:"off" problem:"invalid rate" forms:"RATE or RATE:BURST, e.g. 20 or 20:100, or off" help:"new connections a second from one source address (token bucket RATE[:BURST], burst twice the rate by default), checked before TLS; over it a connection is reset; off: no limit"`
	ConnRatePerPrefix      conn.Rate `flag:"conn-rate-per-prefix" meta:"RATE" default:"off" problem:"invalid rate" forms:"RATE or RATE:BURST, e.g. 200 or 200:1000, or off" help:"the same, from one source network (see --prefix-v4 and --prefix-v6)"`
	HandshakeRatePerAddr   conn.Rate `flag:"handshake-rate-per-addr" meta:"RATE" default:"off" problem:"invalid rate" forms:"RATE or RATE:BURST, e.g. 10 or 10:50, or off" help:"TLS handshakes begun a second from one source address, checked when the ClientHello is in, before a handshake slot is taken; off: no limit"`
	HandshakeRatePerPrefix conn.Rate `flag:"handshake-rate-per-prefix" meta:"RATE" default:"off" problem:"invalid rate" forms:"RATE or RATE:BURST, e.g. 100 or 100:500, or off" help:"the same, from one source network"`
	// AbuseHold keeps away the address of a client whose session was
	// closed for abusing the protocol, twice as long at each repeat up to
	// AbuseHoldMax; 0 holds no one.
	AbuseHold    time.Duration `flag:"abuse-hold" default:"1s" help:"after a session is closed for abusing the protocol (a ping flood, data past the window, frames no client sends), reset new connections from its address for this long, twice as long at each repeat within --abuse-hold-max, before any TLS work; 0 holds no one"`
	AbuseHoldMax time.Duration `flag:"abuse-hold-max" default:"1m" help:"the longest hold of --abuse-hold; an address with no abuse for this long starts again from --abuse-hold"`
	// MaxSessionsPerIdentity, MaxStreamsPerIdentity and
	// StreamRatePerIdentity limit one client identity over the whole
	// gateway (its mux sessions and direct connections, its streams open,
	// its stream opens a second); a --policy file may set them per
	// identity ("identity_limits:"). 0 or off: no limit.
	MaxSessionsPerIdentity int       `flag:"max-sessions-per-identity" default:"0" help:"most sessions (mux sessions and direct connections) one client identity may hold at once over the gateway; 0 no limit"`
	MaxStreamsPerIdentity  int       `flag:"max-streams-per-identity" default:"0" help:"most streams one client identity may have open at once over the gateway; 0 no limit"`
	StreamRatePerIdentity  conn.Rate `flag:"stream-rate-per-identity" meta:"RATE" default:"off" problem:"invalid rate" forms:"RATE or RATE:BURST, e.g. 50 or 50:200, or off" help:"stream opens a second one client identity may make (token bucket RATE[:BURST]); over it a stream is refused as overloaded; off: no limit"`
	// MaxConnLifetime drains a client connection that has lived this long
	// (no new streams; open ones get --drain-timeout to finish); 0 never.
	MaxConnLifetime time.Duration `flag:"max-conn-lifetime" default:"0s" help:"drain a client connection after this long (no new streams on it: a tunnel opens a new session; open streams get --drain-timeout to finish, then it is closed); 0 never"`
	// RouteProxy names the --route backends that get a PROXY protocol v2
	// header first: NAME, or NAME=v2-full to add the client certificate.
	// With Policy, its routes say it ("proxy_protocol:").
	RouteProxy []string `flag:"route-proxy" meta:"NAME[=MODE]" help:"send the backend of route NAME a PROXY protocol header first: v2 (the default) with the client's address, TLS version, route and identity; v2-full also the certificate; v1 the address only, for backends that read no TLVs" forms:"the NAME of a --route, or NAME=v2, NAME=v2-full or NAME=v1, e.g. pg"`
	// TrustedProxy are the load balancers that send a PROXY protocol
	// header (v1 or v2) before TLS; the client address it carries is what
	// the network gate judges. Empty means none: no header is read.
	TrustedProxy []acl.Rule `flag:"trusted-proxy" meta:"RULES" sep:"," problem:"invalid network rules" help:"load balancers that send a PROXY protocol header (v1 or v2) first, comma separated like --allow; the client address in the header is what the network gate, the limits and the log see, and a connection from them without a valid header is reset"`
	// NoLandlock leaves the process unrestricted: without it, on Linux
	// kernels with Landlock, the gateway limits itself after start-up to
	// reading its configured files and connecting to its routes' ports.
	NoLandlock bool `flag:"no-landlock" help:"do not restrict the process with Landlock (on Linux, after start-up the gateway can read only its configured files and their directories, and with kernel ABI 4 or later connect only to its routes' ports and bind only its own)"`
	// StrictPerms refuses a --key file that its group or others may read
	// (without it, such a file loads with a warning).
	StrictPerms bool `flag:"strict-perms" help:"refuse a --key file that its group or others may read (without it: a warning)"`
}

// Doc describes "gateway run" for --help.
func (*Gateway) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway run [flags]",
		Intro: `Run the gateway. It accepts TCP connections, admits only source addresses on the
network allow-list (others are closed before any TLS byte is read), requires a
client certificate that chains to --ca, and carries each stream to the backend of
the route it names.

Clients are "tunnel" (ALPN portcullis/1: many streams over one connection) or any
TLS client in direct mode (the route is the SNI, else --default-route).
The gateway will not start without a network allow-list (--allow, --allow-file or
"allow:" in --policy) and an identity rule (--allow-id or --policy): nothing is
open by default.

Routes and who may use them come from the flags (--route, --allow-id for every
route, --default-route) or from a --policy file, never both. A policy gives each
route its own identities, source networks, stream cap and dial timeout:

  allow: ["10.0.0.0/8", "!10.9.0.0/16"]  # optional: instead of --allow/--allow-file
  default_route: pg                      # optional: for direct mode without a route SNI
  routes:
    pg:
      backend: db.internal:5432          # HOST:PORT, builtin:echo or builtin:discard
      identities: ["uri:spiffe://corp/app/*", "cn:dba"]
      networks: ["10.1.0.0/16"]          # optional: sources admitted on this route
      max_streams: 200                   # optional: streams at once, gateway-wide
      dial_timeout: 3s                   # optional: instead of --dial-timeout

Quote rules that start with "!": unquoted, YAML reads "!" as a tag.
SIGHUP reloads certificate, key, CA, CRL, rules and policy, and so does a change
seen by --watch-interval; a file that does not load keeps the old state.
SIGTERM drains and exits.

--cert may be a PKCS#12 bundle (.p12, .pfx) holding the key: leave --key out
and put its password on the first line of --key-pass-file.
Under systemd the gateway reports READY=1, RELOADING=1, STOPPING=1 and the
watchdog on NOTIFY_SOCKET, and serves on a socket passed by socket activation
(LISTEN_FDS), ignoring --listen. On Linux, after start-up, it sandboxes itself
with Landlock (--no-landlock turns it off): it can then read only the
directories of its files and connect only to its backends' ports, so a reload
that names new directories or backend ports needs a restart.`,
		Examples: []string{
			"# PostgreSQL for one workload, from the 10.0.0.0/8 network:",
			"gateway run --cert gw.crt --key gw.key --ca clients-ca.crt --allow 10.0.0.0/8 \\",
			"    --allow-id 'uri:spiffe://corp/app/*' --route pg=db.internal:5432",
			"# The same in the environment, with two routes (a flag would win over its variable):",
			"GATEWAY_CERT=gw.crt GATEWAY_KEY=gw.key GATEWAY_CA=clients-ca.crt GATEWAY_ALLOW=10.0.0.0/8 \\",
			"    GATEWAY_ALLOW_ID='uri:spiffe://corp/app/*' \\",
			"    GATEWAY_ROUTE=pg=db.internal:5432,redis=cache:6379 gateway run",
			"# Routes, identities and the network gate from a policy file:",
			"gateway run --cert gw.crt --key gw.key --ca clients-ca.crt --policy policy.yaml",
			"# Try it on one machine with the built-in echo backend:",
			"gateway run --listen 127.0.0.1:8443 --cert gw.crt --key gw.key --ca clients-ca.crt \\",
			"    --allow 127.0.0.1 --allow-id any --route echo=builtin:echo",
		},
	}
}

// ParseGateway parses the settings of "gateway run" from the environment
// (lookup; nil means os.LookupEnv) and args (without "run"), then
// validates them. It returns [flag.ErrHelp] after writing the help text to
// usage when args ask for it, and errors wrapping [ErrInvalid] for bad
// settings or positional arguments. See [settings.Parse].
func ParseGateway(args []string, lookup func(string) (string, bool), usage io.Writer) (*Gateway, error) {
	g := new(Gateway)
	rest, err := settings.Parse("gateway run", GatewayPrefix, g, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, settings.Invalidf("gateway run: unexpected argument %s: the gateway takes flags only, e.g. --route NAME=HOST:PORT", settings.Quote(rest[0]))
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

var gatewaySettings = sync.OnceValue(func() map[string]*settings.Setting {
	return settings.Index[Gateway](GatewayPrefix)
})

// Validate checks the settings, alone and together, and returns every
// problem found (joined with errors.Join), each a [*settings.Error] wrapping
// [ErrInvalid]. It checks that the files named can be read but does not
// parse them: with Policy, it refuses Routes, AllowIDs and DefaultRoute
// and accepts Policy in place of a network allow-list, and
// [Gateway.LoadPolicy] checks the rest. It does not modify g.
func (g *Gateway) Validate() error {
	set := gatewaySettings()
	var errs []error
	add := func(err *settings.Error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	s := set["Listen"]
	if _, _, err := splitHostPort(g.Listen, true, anyPort); err != nil {
		add(s.Fail(g.Listen, "not a listen address", err))
	}
	add(settings.RequiredFile(set["Cert"], g.Cert))
	add(checkKey(set["Key"], g.Cert, g.Key))
	add(settings.OptionalFile(set["KeyPassFile"], g.KeyPassFile))
	add(settings.RequiredFile(set["CA"], g.CA))
	add(settings.OptionalFile(set["CRL"], g.CRL))
	add(settings.OptionalFile(set["AllowFile"], g.AllowFile))
	add(settings.OptionalFile(set["Policy"], g.Policy))

	if len(g.Allow) > 0 {
		if _, err := acl.New(g.Allow); err != nil {
			add(set["Allow"].Fail(joinStrings(g.Allow), "the rules do not form a valid allow-list", err))
		}
	}
	if len(g.AllowIDs) == 0 && g.Policy == "" {
		s := set["AllowIDs"]
		e := s.Fail("", "no identity rule: the gateway admits no certificate by default and will not start without one", nil)
		e.Want = "--allow-id PATTERN, e.g. --allow-id 'uri:spiffe://corp/app/*' or --allow-id cn:alice " +
			"(--allow-id any admits every certificate that chains to --ca), or " + set["Policy"].WithMeta()
		add(e)
	}
	for _, p := range g.AllowIDs {
		if p.IsZero() {
			add(set["AllowIDs"].Fail("", "empty identity pattern", nil))
		}
	}

	for _, e := range g.checkFlagPolicy(set) {
		add(e)
	}
	for _, e := range g.policyConflicts(set) {
		add(e)
	}

	add(settings.OneOf(set["LogLevel"], g.LogLevel, logLevels()))
	add(settings.OneOf(set["LogFormat"], g.LogFormat, logFormats()))
	add(settings.Positive(set["HandshakeTimeout"], g.HandshakeTimeout))
	add(settings.NotNegative(set["IdleTimeout"], g.IdleTimeout, "means never"))
	add(settings.Positive(set["DialTimeout"], g.DialTimeout))
	add(settings.NotNegative(set["DrainTimeout"], g.DrainTimeout, "closes open streams at once"))
	add(settings.NotNegative(set["WatchInterval"], g.WatchInterval, "disables polling; SIGHUP still reloads"))
	add(settings.AtLeastOne(set["MaxConns"], g.MaxConns))
	add(settings.AtLeastOne(set["MaxHandshakes"], g.MaxHandshakes))
	add(settings.AtLeastOne(set["MaxStreams"], g.MaxStreams))
	add(settings.Positive(set["HelloTimeout"], g.HelloTimeout))
	add(settings.AtLeastOne(set["MaxPending"], g.MaxPending))
	add(settings.AtLeastOne(set["MaxPendingPerAddr"], g.MaxPendingPerAddr))
	add(settings.AtLeastOne(set["MaxPendingPerPrefix"], g.MaxPendingPerPrefix))
	add(settings.InRange(set["MaxSessionsPerIdentity"], g.MaxSessionsPerIdentity, 0, math.MaxInt32))
	add(settings.InRange(set["MaxStreamsPerIdentity"], g.MaxStreamsPerIdentity, 0, math.MaxInt32))
	add(settings.NotNegative(set["MaxConnLifetime"], g.MaxConnLifetime, "means never"))
	add(settings.NotNegative(set["AbuseHold"], g.AbuseHold, "holds no one"))
	if g.AbuseHold > 0 {
		if e := settings.Positive(set["AbuseHoldMax"], g.AbuseHoldMax); e != nil {
			add(e)
		} else if g.AbuseHoldMax < g.AbuseHold {
			e := set["AbuseHoldMax"].Fail(g.AbuseHoldMax.String(), "must be at least --abuse-hold ("+g.AbuseHold.String()+")", nil)
			e.Want = "a duration of at least --abuse-hold, e.g. " + (10 * g.AbuseHold).String()
			add(e)
		}
	}
	add(settings.InRange(set["PrefixV4"], g.PrefixV4, 1, 32))
	add(settings.InRange(set["PrefixV6"], g.PrefixV6, 1, 128))
	add(g.checkRouteProxy(set))
	if g.MaxSessionMemory < 1<<20 {
		e := set["MaxSessionMemory"].Fail(strconv.Itoa(g.MaxSessionMemory), "must be at least 1 MiB (1048576)", nil)
		e.Want = "a number of bytes of 1048576 or more, e.g. 8388608"
		add(e)
	}
	if len(g.TrustedProxy) > 0 {
		if _, err := acl.New(g.TrustedProxy); err != nil {
			add(set["TrustedProxy"].Fail(joinStrings(g.TrustedProxy), "the rules do not form a valid list", err))
		}
	}
	if g.Admin != "" {
		if _, _, err := splitHostPort(g.Admin, true, anyPort); err != nil {
			add(set["Admin"].Fail(g.Admin, "not a listen address", err))
		}
	}
	return errors.Join(errs...)
}

// checkFlagPolicy checks the policy the flags make, without a --policy
// file: each --route alone, then the routes, the default route and the
// network gate together through policy.Build, the one place those rules
// are checked, with each problem put on its flag. An --allow-file counts
// as a gate; its rules are read at load.
func (g *Gateway) checkFlagPolicy(set map[string]*settings.Setting) []*settings.Error {
	if g.Policy != "" {
		return nil
	}
	s := set["Routes"]
	for _, r := range g.Routes {
		if err := r.check(); err != nil {
			return []*settings.Error{s.Fail(r.String(), "invalid route", err)}
		}
	}
	d := set["DefaultRoute"]
	if g.DefaultRoute != "" {
		if err := mux.ValidRoute(g.DefaultRoute); err != nil {
			return []*settings.Error{d.Fail(g.DefaultRoute, "invalid route name", err)}
		}
	}
	// Where the gate comes from counts here, not its rules: --allow's are
	// checked on their own above, an --allow-file's at load.
	spec := g.flagSpec()
	for i := range spec.Gate {
		spec.Gate[i].Rules = nil
	}
	if g.AllowFile != "" {
		spec.Gate = append(spec.Gate, policy.Rules{Source: g.AllowFile})
	}
	spec.DialTimeout = max(spec.DialTimeout, 1) // checked on its own
	spec.Limits = policy.Limits{}               // the identity limits too
	_, err := policy.Build(spec)
	if err == nil {
		return nil
	}
	var out []*settings.Error
	for _, err := range unjoin(err) {
		var dup *policy.DuplicateRouteError
		var def *policy.DefaultRouteError
		switch {
		case errors.Is(err, policy.ErrNoGate):
			e := set["Allow"].Fail("", err.Error(), nil)
			e.Want = "--allow RULES, e.g. --allow 10.0.0.0/8,192.168.0.0/16 (--allow 0.0.0.0/0,::/0 admits every address), or " +
				set["AllowFile"].WithMeta() + ", or " + set["Policy"].WithMeta()
			out = append(out, e)
		case errors.Is(err, policy.ErrNoRoute):
			e := s.Fail("", err.Error(), nil)
			e.Want = "--route NAME=HOST:PORT, e.g. --route pg=db.internal:5432, or " + set["Policy"].WithMeta()
			out = append(out, e)
		case errors.As(err, &dup):
			got := ""
			for _, r := range g.Routes {
				if r.Name == dup.Name {
					got = r.String() // the last one: the second definition
				}
			}
			e := s.Fail(got, dup.Problem(), nil)
			e.Want = "one --route per NAME"
			out = append(out, e)
		case errors.As(err, &def):
			e := d.Fail(g.DefaultRoute, def.Problem(), nil)
			e.Want = "the NAME of a --route: " + settings.OrList(def.Routes)
			out = append(out, e)
		case len(g.AllowIDs) == 0: // a route without identities: --allow-id is reported on its own
		default:
			out = append(out, s.Fail("", err.Error(), nil))
		}
	}
	return out
}

// unjoin returns the errors errors.Join put together, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// policyConflicts reports the flags that a policy file replaces, when
// given together with it: --route, --allow-id and --default-route.
func (g *Gateway) policyConflicts(set map[string]*settings.Setting) []*settings.Error {
	if g.Policy == "" {
		return nil
	}
	pol := set["Policy"]
	var errs []*settings.Error
	conflict := func(s *settings.Setting, value, what, key string) {
		e := s.Fail(value, fmt.Sprintf("given together with --policy (%s): with a policy file, %s from its %q only",
			pol.Env(), what, key), nil)
		e.Want = fmt.Sprintf("either %s or %s, not both", s.WithMeta(), pol.WithMeta())
		errs = append(errs, e)
	}
	if len(g.Routes) > 0 {
		conflict(set["Routes"], joinStrings(g.Routes), "the routes come", "routes:")
	}
	if len(g.AllowIDs) > 0 {
		conflict(set["AllowIDs"], joinStrings(g.AllowIDs), "the identity rules come", "identities:")
	}
	if g.DefaultRoute != "" {
		conflict(set["DefaultRoute"], g.DefaultRoute, "the default route comes", "default_route:")
	}
	return errs
}

// LoadPolicy reads and parses the policy file named by g.Policy (see
// [LoadPolicy]) and checks it against the other settings:
//
//   - --route, --allow-id and --default-route are refused with --policy
//     (as Validate does);
//   - the network gate comes either from the file's "allow:" or from
//     --allow and --allow-file: both is refused, neither too.
//
// It returns (nil, nil) when g.Policy is empty: the routes and the gate
// then come from the flags alone. Otherwise it returns the Policy, or every
// problem found (joined), each naming the flag or the file and line: a
// [*settings.Error] for a clash with the flags, a [*PolicyError] for the
// file. All wrap [ErrInvalid]. It reads the file at each call, so a reload
// calls it again; it does not modify g and is safe for concurrent use.
func (g *Gateway) LoadPolicy() (*Policy, error) {
	if g.Policy == "" {
		return nil, nil
	}
	set := gatewaySettings()
	var errs []error
	for _, e := range g.policyConflicts(set) {
		errs = append(errs, e)
	}
	p, err := LoadPolicy(g.Policy)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	gateWant := `the network rules in one place: "allow:" in the policy file, or --allow and --allow-file without it`
	if p.Allow != nil {
		line := p.Allow[0].Line
		if len(g.Allow) > 0 {
			e := set["Allow"].Fail(joinStrings(g.Allow), fmt.Sprintf(
				`the network allow-list is given twice: by --allow and by "allow:" in the --policy file %s (line %d)`,
				settings.Quote(g.Policy), line), nil)
			e.Want = gateWant
			errs = append(errs, e)
		}
		if g.AllowFile != "" {
			e := set["AllowFile"].Fail(g.AllowFile, fmt.Sprintf(
				`the network allow-list is given twice: by --allow-file and by "allow:" in the --policy file %s (line %d)`,
				settings.Quote(g.Policy), line), nil)
			e.Want = gateWant
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// joinStrings formats a list as the comma-separated text of its setting.
func joinStrings[T fmt.Stringer](list []T) string {
	parts := make([]string, len(list))
	for i, v := range list {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

// Backends that the gateway serves itself, for tests and demos.
const (
	// BuiltinEcho sends every byte back.
	BuiltinEcho = "builtin:echo"
	// BuiltinDiscard reads and drops every byte.
	BuiltinDiscard = "builtin:discard"
)

// Route maps a route name to its backend. The zero Route is not valid.
type Route struct {
	// Name is what clients ask for; it satisfies mux.ValidRoute.
	Name string
	// Backend is HOST:PORT (port 1 to 65535; IPv6 in brackets),
	// BuiltinEcho or BuiltinDiscard.
	Backend string
}

// ParseRoute parses NAME=HOST:PORT, NAME=unix:PATH (a UNIX socket, PATH
// absolute), NAME=builtin:echo or NAME=builtin:discard. Blanks around the whole text are ignored. Errors
// wrap [ErrInvalid] (and mux.ErrRoute for a bad name).
func ParseRoute(s string) (Route, error) {
	s = strings.TrimSpace(s)
	name, backend, ok := strings.Cut(s, "=")
	if !ok {
		return Route{}, settings.Invalidf("route %s: no \"=\" between NAME and the backend", settings.Quote(s))
	}
	r := Route{Name: name, Backend: backend}
	if err := r.check(); err != nil {
		return Route{}, settings.Invalidf("%w", err)
	}
	return r, nil
}

// check validates the name and the backend.
func (r Route) check() error {
	if err := mux.ValidRoute(r.Name); err != nil {
		return fmt.Errorf("route name: %w", err)
	}
	if err := checkBackend(r.Backend); err != nil {
		return fmt.Errorf("backend %s of route %s: %w", settings.Quote(r.Backend), settings.Quote(r.Name), err)
	}
	return nil
}

// checkBackend checks a backend: HOST:PORT, unix:PATH (an absolute path),
// BuiltinEcho or BuiltinDiscard.
func checkBackend(b string) error {
	if path, ok := strings.CutPrefix(b, UnixPrefix); ok {
		return checkUnixPath(path)
	}
	if strings.HasPrefix(b, "builtin:") {
		if b != BuiltinEcho && b != BuiltinDiscard {
			return fmt.Errorf("unknown builtin; want %s or %s", BuiltinEcho, BuiltinDiscard)
		}
		return nil
	}
	_, _, err := splitHostPort(b, false, dialPort)
	return err
}

// IsBuiltin reports whether the backend is served by the gateway itself
// (BuiltinEcho or BuiltinDiscard).
func (r Route) IsBuiltin() bool { return r.Backend == BuiltinEcho || r.Backend == BuiltinDiscard }

// String returns NAME=BACKEND, the form ParseRoute reads.
func (r Route) String() string { return r.Name + "=" + r.Backend }

// MarshalText returns the form ParseRoute reads.
func (r Route) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses text with ParseRoute.
func (r *Route) UnmarshalText(text []byte) error {
	v, err := ParseRoute(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// routeProxy splits a --route-proxy value into its route and mode.
func routeProxy(v string) (name string, p policy.Proxy, err error) {
	name, mode, ok := strings.Cut(v, "=")
	if !ok {
		return name, policy.ProxyV2, nil
	}
	p, err = policy.ParseProxy(mode)
	return name, p, err
}

// checkRouteProxy checks that each --route-proxy names a --route with a
// backend, and is not given with a policy file (whose routes say it).
func (g *Gateway) checkRouteProxy(set map[string]*settings.Setting) *settings.Error {
	s := set["RouteProxy"]
	for _, v := range g.RouteProxy {
		if g.Policy != "" {
			e := s.Fail(v, "given together with --policy: with a policy file, a route says it with \"proxy_protocol: v2\"", nil)
			e.Want = "either --route-proxy with --route, or proxy_protocol in the policy file"
			return e
		}
		name, _, err := routeProxy(v)
		if err != nil {
			return s.Fail(v, "invalid PROXY protocol", err)
		}
		i := slices.IndexFunc(g.Routes, func(r Route) bool { return r.Name == name })
		if i < 0 {
			return s.Fail(v, fmt.Sprintf("%s is not a --route", settings.Quote(name)), nil)
		}
		if g.Routes[i].IsBuiltin() {
			return s.Fail(v, fmt.Sprintf("route %s is a builtin, which has no backend to send a header to", settings.Quote(name)), nil)
		}
	}
	return nil
}

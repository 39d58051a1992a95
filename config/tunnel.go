package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/enroll"
	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/tunnel"
)

// TunnelPrefix starts the environment variable of every tunnel flag.
const TunnelPrefix = "TUNNEL_"

// defaultBindHost is where -L listens when BIND is left out.
const defaultBindHost = "127.0.0.1"

// Tunnel holds the settings common to every tunnel subcommand, parsed. A
// program that adds a subcommand embeds it in its own settings struct and
// calls [settings.Parse] with [TunnelPrefix], then [Tunnel.Normalize] and
// [Tunnel.Validate].
type Tunnel struct {
	// Gateways are HOST:PORT addresses, tried in order (failover). At
	// least one is required.
	Gateways []string `flag:"gateway" meta:"HOST:PORT" help:"gateway to connect to (required); repeat for failover, tried in order" forms:"HOST:PORT with a port from 1 to 65535, e.g. gw.example.com:8443 or [2001:db8::1]:8443"`
	// Cert and Key are PEM files: the client certificate chain and its
	// private key. Required.
	// Cert may instead be a PKCS#12 bundle holding the key (Key empty).
	Cert string `flag:"cert" meta:"FILE" help:"client certificate chain, PEM, or a PKCS#12 bundle (.p12, .pfx) holding the key too (required)" forms:"a readable PEM file with the client certificate chain, e.g. --cert ~/.portcullis/me.crt, or a PKCS#12 bundle, e.g. --cert ~/.portcullis/me.p12"`
	Key  string `flag:"key" meta:"FILE" help:"private key of --cert, PEM (required, unless --cert is PKCS#12)" forms:"a readable PEM file with the private key of --cert, e.g. --key ~/.portcullis/me.key"`
	// KeyPassFile names a file whose first line is the password of a
	// PKCS#12 Cert; empty means the empty password.
	KeyPassFile string `flag:"key-pass-file" meta:"FILE" help:"file whose first line is the password of a PKCS#12 --cert" forms:"a readable file with the password on its first line, e.g. --key-pass-file ~/.portcullis/me.pass"`
	// CA is the PEM bundle the gateway's certificate must chain to.
	// Required.
	CA string `flag:"ca" meta:"FILE" help:"CA bundle that the gateway's certificate must chain to, PEM (required)" forms:"a readable PEM file with the CA certificates that sign the gateway's certificate, e.g. --ca ~/.portcullis/gateway-ca.crt"`
	// ServerName is the name checked in the gateway's certificate. The
	// ParseXxx functions and DefaultServerName set it to the host of the
	// first gateway when it is empty; Validate requires it.
	ServerName string `flag:"server-name" meta:"NAME" help:"name the gateway's certificate must hold (default: the host of the first --gateway)" forms:"a host name or IP address, e.g. gw.example.com"`
	// Direct opens one TLS connection per stream with SNI = route, without
	// multiplexing.
	Direct bool `flag:"direct" help:"one TLS connection per stream with SNI = route, no multiplexing; talks to any TLS server"`
	// ConnectTimeout bounds connecting to a gateway, TLS handshake
	// included. Must be > 0.
	ConnectTimeout time.Duration `flag:"connect-timeout" default:"10s" help:"time to connect to a gateway and complete the TLS handshake"`
	// Pins are SHA-256 fingerprints of the gateway's leaf certificate; when
	// any are given, a gateway whose certificate matches none of them is
	// refused (on top of the CA and name checks). After Normalize (which
	// the ParseXxx functions call) each is 64 lowercase hex digits; Validate
	// accepts every form ParsePin reads. Empty means no pinning.
	Pins []string `flag:"pin" meta:"sha256:HEX" help:"accept only a gateway whose certificate has this SHA-256 fingerprint (repeat to accept any of several, e.g. during a certificate change)" forms:"sha256: and the 64 hex digits of the gateway certificate's SHA-256 fingerprint, colons optional, any case, as gateway pki show prints it, e.g. sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`
	// GatewayAllow is the client-side allow-list of gateway addresses: the
	// tunnel connects only to addresses (after DNS resolution) that these
	// rules admit (acl semantics: most specific rule wins, no match
	// refuses). Empty means any address.
	GatewayAllow []acl.Rule `flag:"gateway-allow" meta:"RULES" sep:"," problem:"invalid network rules" forms:"IP addresses and CIDR prefixes separated by commas, \"!\" in front to deny, e.g. 10.0.0.0/8,!10.9.0.0/16,192.168.1.7,::1 (0.0.0.0/0,::/0 is every address)" help:"connect only to gateway addresses, after DNS resolution, that these rules admit: comma separated, most specific wins, \"!\" denies; empty: any"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `flag:"log-level" meta:"LEVEL" default:"info" help:"least severe events logged: debug, info, warn or error" forms:"debug, info, warn or error"`
	// LogFormat is console or json.
	LogFormat string `flag:"log-format" meta:"FORMAT" default:"console" help:"log output: console (for people) or json (one object per line)" forms:"console or json"`

	loginDir string // set by Normalize when the certificate is tunnel login's
}

var tunnelSettings = sync.OnceValue(func() map[string]*settings.Setting {
	return settings.Index[Tunnel](TunnelPrefix)
})

// Normalize fills in what the settings leave implicit, after Parse and
// before Validate: the default server name (DefaultServerName) and the
// canonical form of each valid pin (64 lowercase hex digits; pins that do
// not parse are left as given, for Validate to report), and, when neither
// --cert nor --key is given, the certificate, key and CA of tunnel login
// (see [Tunnel.LoginStore]) in the default directory ([enroll.DefaultDir]).
func (t *Tunnel) Normalize() {
	t.normalize("")
}

// normalize is Normalize with the directory of tunnel login to look in
// (empty: the default one).
func (t *Tunnel) normalize(loginDir string) {
	t.useLogin(loginDir)
	t.DefaultServerName()
	for i, p := range t.Pins {
		if n, err := ParsePin(p); err == nil {
			t.Pins[i] = n
		}
	}
}

// DefaultServerName sets ServerName to the host of the first gateway when
// ServerName is empty and that gateway is a valid HOST:PORT.
func (t *Tunnel) DefaultServerName() {
	if t.ServerName != "" || len(t.Gateways) == 0 {
		return
	}
	if host, _, err := splitHostPort(t.Gateways[0], false, dialPort); err == nil {
		t.ServerName = host
	}
}

// Validate checks the common tunnel settings and returns every problem
// found (joined with errors.Join), each a [*settings.Error] wrapping
// [ErrInvalid]. It checks that the files named can be read but does not
// parse them. It does not modify t.
func (t *Tunnel) Validate() error {
	return errors.Join(t.problems()...)
}

func (t *Tunnel) problems() []error {
	set := tunnelSettings()
	var errs []error
	add := func(err *settings.Error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	s := set["Gateways"]
	if len(t.Gateways) == 0 {
		add(s.Fail("", "required: no gateway to connect to", nil))
	}
	for _, g := range t.Gateways {
		if _, _, err := splitHostPort(g, false, dialPort); err != nil {
			add(s.Fail(g, "not a gateway address", err))
		}
	}
	add(settings.RequiredFile(set["Cert"], t.Cert))
	add(checkKey(set["Key"], t.Cert, t.Key))
	add(settings.OptionalFile(set["KeyPassFile"], t.KeyPassFile))
	add(settings.RequiredFile(set["CA"], t.CA))
	if t.ServerName == "" {
		// Without gateways the name cannot be derived; that is reported above.
		if len(t.Gateways) > 0 {
			add(set["ServerName"].Fail("", "required: the name the gateway's certificate must hold", nil))
		}
	} else if err := checkHost(t.ServerName); err != nil {
		add(set["ServerName"].Fail(t.ServerName, "not a host name or IP address", err))
	}
	add(settings.Positive(set["ConnectTimeout"], t.ConnectTimeout))
	for _, p := range t.Pins {
		if _, err := ParsePin(p); err != nil {
			add(set["Pins"].Fail(p, "not a SHA-256 fingerprint", err))
		}
	}
	if len(t.GatewayAllow) > 0 {
		add(t.checkGatewayAllow(set))
	}
	add(settings.OneOf(set["LogLevel"], t.LogLevel, logLevels()))
	add(settings.OneOf(set["LogFormat"], t.LogFormat, logFormats()))
	return errs
}

// checkGatewayAllow checks that the --gateway-allow rules form a valid
// allow-list and that it admits every gateway given as an IP address (a
// host name is checked after DNS resolution, by the tunnel).
func (t *Tunnel) checkGatewayAllow(set map[string]*settings.Setting) *settings.Error {
	s := set["GatewayAllow"]
	rules, err := acl.New(t.GatewayAllow)
	if err != nil {
		return s.Fail(joinStrings(t.GatewayAllow), "the rules do not form a valid allow-list", err)
	}
	for _, g := range t.Gateways {
		host, _, err := splitHostPort(g, false, dialPort)
		if err != nil {
			continue // reported as a bad --gateway
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			continue
		}
		if d := rules.Decide(a); !d.Allowed {
			why := "no rule admits it"
			if d.Matched {
				why = "denied by " + d.Rule.String()
			}
			e := set["Gateways"].Fail(g, "outside --gateway-allow ("+s.Env()+"): "+why, nil)
			e.Want = "a gateway address that " + s.WithMeta() + " admits, or rules that admit it"
			return e
		}
	}
	return nil
}

// ParsePin reads a SHA-256 certificate fingerprint as given to --pin:
// "sha256:" (any case, optional) and 64 hex digits in any case, with or
// without colons between them; blanks around it are ignored. It returns
// the 64 digits in lower case. Errors wrap [ErrInvalid].
func ParsePin(s string) (string, error) {
	t := strings.TrimSpace(s)
	if algo, rest, ok := strings.Cut(t, ":"); ok && len(algo) > 2 && !isHex(algo) {
		if !strings.EqualFold(algo, "sha256") {
			return "", settings.Invalidf("pin %s: unknown hash %s; only sha256 fingerprints are supported", settings.Quote(s), settings.Quote(algo))
		}
		t = rest
	}
	h := strings.ToLower(strings.ReplaceAll(t, ":", ""))
	for i := 0; i < len(h); i++ {
		if !isHex(h[i : i+1]) {
			return "", settings.Invalidf("pin %s holds %q; want hex digits 0-9 and a-f, colons optional", settings.Quote(s), h[i])
		}
	}
	if len(h) != 2*sha256.Size {
		return "", settings.Invalidf("pin %s has %d hex digits; want %d", settings.Quote(s), len(h), 2*sha256.Size)
	}
	return h, nil
}

// isHex reports whether s is made of hex digits only (and not empty).
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Local is one -L listener: a local address and the route its connections
// go to.
type Local struct {
	// Bind is HOST:PORT to listen on (IPv6 in brackets), or the absolute
	// path of a UNIX socket (see [Local.Unix]); ParseLocal uses host
	// 127.0.0.1 when BIND is left out. Port 0 picks a free port.
	Bind string
	// Route is the route name; it satisfies mux.ValidRoute.
	Route string
}

// UnixPrefix marks a UNIX socket path: in a -L BIND ("unix:/run/pg.sock",
// or just "/run/pg.sock") and in a route's backend ("unix:/run/pg.sock").
const UnixPrefix = "unix:"

// MaxUnixPath is the longest UNIX socket path in bytes (sun_path holds 108
// bytes, the last one a NUL).
const MaxUnixPath = 107

// Unix reports whether l listens on a UNIX socket: Bind is then its path.
func (l Local) Unix() bool { return strings.HasPrefix(l.Bind, "/") }

// Loopback reports whether l listens on a loopback address only: a UNIX
// socket, "localhost" or an address in 127.0.0.0/8 or ::1.
func (l Local) Loopback() bool {
	if l.Unix() {
		return true
	}
	host, _, err := net.SplitHostPort(l.Bind)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// ParseLocal parses [BIND:]PORT=ROUTE or PATH=ROUTE: PORT from 0 to 65535;
// BIND an IPv4 address, an IPv6 address in brackets or a host name,
// 127.0.0.1 when left out; PATH a UNIX socket, an absolute path written as
// is or after "unix:" (at most [MaxUnixPath] bytes, no NUL); ROUTE a route
// name. Blanks around the whole text are ignored. The result's Bind is
// HOST:PORT or the path. Errors wrap [ErrInvalid] (and mux.ErrRoute for a
// bad route).
func ParseLocal(s string) (Local, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, '=') // a route holds no "=", a path may
	if i < 0 {
		return Local{}, settings.Invalidf("listener %s: no \"=\" between [BIND:]PORT and ROUTE", settings.Quote(s))
	}
	left, route := s[:i], s[i+1:]
	var bind string
	if path, ok := unixPath(left); ok {
		if err := checkUnixPath(path); err != nil {
			return Local{}, settings.Invalidf("listener %s: %w", settings.Quote(s), err)
		}
		bind = path
	} else {
		host, port := defaultBindHost, 0
		if strings.ContainsAny(left, ":[]") {
			h, p, err := splitHostPort(left, true, anyPort)
			if err != nil {
				return Local{}, settings.Invalidf("listener %s: %w", settings.Quote(s), err)
			}
			if h == "" {
				return Local{}, settings.Invalidf("listener %s: empty BIND before the colon: write PORT=ROUTE or %s:PORT=ROUTE "+
					"for this machine only, or 0.0.0.0:PORT=ROUTE for every interface", settings.Quote(s), defaultBindHost)
			}
			host, port = h, p
		} else {
			p, err := parsePort(left, anyPort)
			if err != nil {
				return Local{}, settings.Invalidf("listener %s: %w", settings.Quote(s), err)
			}
			port = p
		}
		bind = net.JoinHostPort(host, strconv.Itoa(port))
	}
	if err := mux.ValidRoute(route); err != nil {
		return Local{}, settings.Invalidf("listener %s: %w", settings.Quote(s), err)
	}
	return Local{Bind: bind, Route: route}, nil
}

// unixPath returns the path of a UNIX socket spec: "unix:PATH" or a text
// starting with "/".
func unixPath(s string) (string, bool) {
	if p, ok := strings.CutPrefix(s, UnixPrefix); ok {
		return p, true
	}
	return s, strings.HasPrefix(s, "/")
}

// checkUnixPath checks the path of a UNIX socket.
func checkUnixPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("UNIX socket path %s is not absolute; want a path starting with /, e.g. /run/user/1000/pg.sock", settings.Quote(p))
	case len(p) > MaxUnixPath:
		return fmt.Errorf("UNIX socket path %s is %d bytes long; the system takes at most %d", settings.Quote(p), len(p), MaxUnixPath)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("UNIX socket path %s holds a NUL byte", settings.Quote(p))
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("UNIX socket path %s names a directory; want the socket's own name after the last /", settings.Quote(p))
	}
	return nil
}

// check validates a Local built in code.
func (l Local) check() error {
	if l.Unix() {
		if err := checkUnixPath(l.Bind); err != nil {
			return err
		}
	} else if _, _, err := splitHostPort(l.Bind, false, anyPort); err != nil {
		return fmt.Errorf("bind address %s: %w", settings.Quote(l.Bind), err)
	}
	if err := mux.ValidRoute(l.Route); err != nil {
		return err
	}
	return nil
}

// String returns HOST:PORT=ROUTE or PATH=ROUTE, a form ParseLocal reads
// back to l.
func (l Local) String() string { return l.Bind + "=" + l.Route }

// MarshalText returns l.String().
func (l Local) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses text with ParseLocal.
func (l *Local) UnmarshalText(text []byte) error {
	v, err := ParseLocal(string(text))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Forward holds the settings of "tunnel forward".
type Forward struct {
	Tunnel
	// Locals are the local listeners. At least one is required.
	Locals []Local `flag:"local" short:"L" meta:"[BIND:]PORT=ROUTE" help:"listen on BIND:PORT (BIND 127.0.0.1 when left out, PORT 0 picks one), or on a UNIX socket PATH=ROUTE (mode 0600), and carry each connection to ROUTE (required)" forms:"[BIND:]PORT=ROUTE or PATH=ROUTE, e.g. 5432=pg, 127.0.0.1:6379=redis, [::1]:8080=api or /run/user/1000/pg.sock=pg (PATH absolute, or after unix:)"`
	// SameUser refuses local connections from processes of other users,
	// on UNIX sockets and loopback listeners (Linux only; on other
	// systems it is off unless asked for, which is an error).
	SameUser bool `flag:"same-user" default:"true" help:"on UNIX sockets and loopback listeners, refuse connections from other local users (the peer's uid must be ours; Linux; off elsewhere)"`
	// Refusals say, per route, in which protocol a local client is told
	// that its stream was refused; a route without one is reset.
	Refusals []Refusal `flag:"refusal" meta:"ROUTE=STYLE" sep:"," problem:"invalid refusal style" forms:"ROUTE=STYLE with STYLE postgres, redis, http or reset, e.g. pg=postgres,cache=redis" help:"tell a refused client of ROUTE why, in its protocol: postgres (a FATAL error psql prints), redis (an -ERR reply), http (a 502 with the reason); default: a reset"`
	// Lazy skips the check at start: without it, forward dials the
	// gateway before listening (and exits when it cannot be reached or
	// the handshake fails) and warns about routes the gateway refuses.
	Lazy bool `flag:"lazy" help:"do not check the gateway and the routes at start: dial at the first connection (for a gateway that is not up yet)"`
	// Admin is the address of /healthz and /metrics; empty disables them.
	// Renew renews a certificate of tunnel login at two thirds of its life.
	Renew bool   `flag:"renew" default:"true" help:"with the certificate of tunnel login: renew it at two thirds of its life from the enrollment service, and move new connections to it at once (open ones carry on)"`
	Admin string `flag:"admin" meta:"ADDR" help:"serve /healthz and /metrics (Prometheus: session, gateway in use, streams and bytes by route, reconnects, certificate expiry) on this address; empty disables" forms:"HOST:PORT, e.g. 127.0.0.1:9091, or empty to disable"`
	LoginDir

	sameUserGiven bool // --same-user or its variable was set, not defaulted
}

// LoginDir is the --dir of forward and nc: the directory of tunnel login
// whose certificate, key and CA they use when --cert and --key are not
// given.
type LoginDir struct {
	// Dir is the directory; empty means [enroll.DefaultDir].
	Dir string `flag:"dir" meta:"DIR" help:"the directory of tunnel login, whose certificate, key and CA are used when --cert and --key are not given (default $XDG_CONFIG_HOME/portcullis, else ~/.config/portcullis)" forms:"the --dir given to tunnel login, e.g. --dir ~/.config/portcullis-work"`
}

// problem reports a --dir given without --cert and --key that holds no
// certificate of tunnel login: the certificate would be missing, and the
// user asked for that directory's.
func (d LoginDir) problem(t *Tunnel) error {
	if d.Dir == "" || t.loginDir != "" || t.Cert != "" || t.Key != "" {
		return nil
	}
	e := loginDirSettings()["Dir"].Fail(d.Dir, "holds no certificate of tunnel login", nil)
	e.Want = "the --dir given to tunnel login, or --cert and --key"
	return e
}

var loginDirSettings = sync.OnceValue(func() map[string]*settings.Setting {
	return settings.Index[LoginDir](TunnelPrefix)
})

// Refusal is one --refusal: the style in which the local clients of a
// route are told that the gateway refused their stream.
type Refusal struct {
	Route string         // satisfies mux.ValidRoute
	Style tunnel.Refusal // tunnel.RefusalReset for "reset"
}

// ParseRefusal parses ROUTE=STYLE, STYLE being postgres, redis, http or
// reset. Errors wrap [ErrInvalid].
func ParseRefusal(s string) (Refusal, error) {
	s = strings.TrimSpace(s)
	route, style, ok := strings.Cut(s, "=")
	if !ok {
		return Refusal{}, settings.Invalidf("refusal %s: no \"=\" between ROUTE and STYLE", settings.Quote(s))
	}
	if err := mux.ValidRoute(route); err != nil {
		return Refusal{}, settings.Invalidf("refusal %s: %w", settings.Quote(s), err)
	}
	st, err := tunnel.ParseRefusal(style)
	if err != nil || style == "" {
		return Refusal{}, settings.Invalidf("refusal %s: unknown style %s; want postgres, redis, http or reset", settings.Quote(s), settings.Quote(style))
	}
	return Refusal{Route: route, Style: st}, nil
}

// String returns ROUTE=STYLE, the form ParseRefusal reads.
func (r Refusal) String() string {
	st := string(r.Style)
	if r.Style == tunnel.RefusalReset {
		st = "reset"
	}
	return r.Route + "=" + st
}

// MarshalText returns r.String().
func (r Refusal) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses text with ParseRefusal.
func (r *Refusal) UnmarshalText(text []byte) error {
	v, err := ParseRefusal(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// RefusalOf returns the refusal style of route: the last --refusal that
// names it, tunnel.RefusalReset if none does.
func (f *Forward) RefusalOf(route string) tunnel.Refusal {
	st := tunnel.RefusalReset
	for _, r := range f.Refusals {
		if r.Route == route {
			st = r.Style
		}
	}
	return st
}

// SameUserOn reports whether the same-user check applies to l: SameUser
// is set and l is a UNIX socket or listens on loopback only (a peer on
// another machine has no local user to check).
func (f *Forward) SameUserOn(l Local) bool { return f.SameUser && l.Loopback() }

// sameUserSystem reports whether this system can check the user of a
// local peer.
const sameUserSystem = runtime.GOOS == "linux"

var forwardSettings = sync.OnceValue(func() map[string]*settings.Setting {
	return settings.Index[Forward](TunnelPrefix)
})

// Doc describes "tunnel forward" for --help.
func (*Forward) Doc() settings.Doc {
	return settings.Doc{
		Usage: "tunnel forward [flags] -L [BIND:]PORT=ROUTE ...",
		Intro: `Listen on local ports and carry each connection to a route behind the gateway.
All connections share one mutual-TLS connection (one stream each) that reconnects,
failing over between the --gateway addresses. Point psql, redis-cli or any TCP
client at the local port.

At start it dials the gateway and exits (status 2, with the reason) when no
gateway can be reached or the handshake fails; it then opens and closes one
stream per route and warns about each route the gateway refuses. --lazy skips
this check, for a gateway that is not up yet.

A -L whose BIND starts with "/" (or "unix:") is a UNIX socket: created with
mode 0600, removed at exit; a socket file left by a crashed run is replaced
when nothing listens on it. PostgreSQL clients look for a socket named
.s.PGSQL.PORT in a directory: -L /tmp/pgdir/.s.PGSQL.5432=pg, then
psql -h /tmp/pgdir -p 5432.

On UNIX sockets and loopback listeners, a connection from a process of
another local user is closed at once and logged (local_refused, with the
peer's uid): the peer's uid comes from SO_PEERCRED, or for TCP from the
kernel's socket table. Linux only; --same-user=false turns it off.

When the gateway refuses a stream (or cannot be reached), the local client
is reset, unless --refusal names its route's protocol: then the tunnel reads
the client's first message (within 2s; silence gets the reset) and answers
in that protocol with the gateway's status and reason, so that psql prints
"FATAL:  portcullis: forbidden: ...", redis-cli "(error) ERR portcullis: ..."
and curl a 502 whose body is the reason.`,
		Examples: []string{
			"# PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379:",
			"tunnel forward --gateway gw.example.com:8443 --cert me.crt --key me.key \\",
			"    --ca gateway-ca.crt -L 5432=pg -L 6379=redis",
			"psql 'host=127.0.0.1 port=5432 dbname=app'",
			"# The same from the environment, with a second gateway for failover:",
			"TUNNEL_GATEWAY=gw1.example.com:8443,gw2.example.com:8443 \\",
			"    TUNNEL_CERT=me.crt TUNNEL_KEY=me.key TUNNEL_CA=gateway-ca.crt \\",
			"    TUNNEL_LOCAL=5432=pg,6379=redis tunnel forward",
			"# Offer the route to the network of a jump host (every interface):",
			"tunnel forward --gateway gw.example.com:8443 --cert me.crt --key me.key \\",
			"    --ca gateway-ca.crt -L 0.0.0.0:5432=pg",
			"# PostgreSQL on a UNIX socket, refusals told in PostgreSQL's protocol:",
			"mkdir -m 700 -p /tmp/pgdir",
			"tunnel forward --gateway gw.example.com:8443 --cert me.crt --key me.key \\",
			"    --ca gateway-ca.crt -L /tmp/pgdir/.s.PGSQL.5432=pg --refusal pg=postgres",
			"psql -h /tmp/pgdir -p 5432 dbname=app",
		},
	}
}

// ParseForward parses the settings of "tunnel forward" from the environment
// (lookup; nil means os.LookupEnv) and args, normalizes them (default
// server name, pins: see [Tunnel.Normalize]), then validates them. It returns [flag.ErrHelp] after writing the
// help text to usage when args ask for it, and errors wrapping
// [ErrInvalid] for bad settings or positional arguments. See [settings.Parse].
func ParseForward(args []string, lookup func(string) (string, bool), usage io.Writer) (*Forward, error) {
	f := new(Forward)
	rest, err := settings.Parse("tunnel forward", TunnelPrefix, f, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, settings.Invalidf("tunnel forward: unexpected argument %s: give listeners with -L [BIND:]PORT=ROUTE, e.g. -L 5432=pg",
			settings.Quote(rest[0]))
	}
	f.sameUserGiven = givenFlag(args, "same-user") || envGiven(lookup, forwardSettings()["SameUser"].Env())
	f.Normalize()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// Normalize is [Tunnel.Normalize], with the certificate of tunnel login
// looked for in --dir when it is given, and turns the same-user check off
// on a system that cannot do it when it was not asked for.
func (f *Forward) Normalize() {
	f.Tunnel.normalize(f.Dir)
	if !sameUserSystem && !f.sameUserGiven {
		f.SameUser = false
	}
}

// givenFlag reports whether args set the flag name (-name, --name,
// -name=..., --name=...), before a "--".
func givenFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// envGiven reports whether the variable is set (lookup nil: os.LookupEnv).
func envGiven(lookup func(string) (string, bool), name string) bool {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	_, ok := lookup(name)
	return ok
}

// Validate checks the common tunnel settings, that there is at least one
// listener, each valid, and that no two listen on the same address (port 0
// excepted). It returns every problem found, joined; see
// [Tunnel.Validate]. It does not modify f.
func (f *Forward) Validate() error {
	errs := f.Tunnel.problems()
	if err := f.LoginDir.problem(&f.Tunnel); err != nil {
		errs = append(errs, err)
	}
	s := forwardSettings()["Locals"]
	if len(f.Locals) == 0 {
		e := s.Fail("", "required: no local listener", nil)
		e.Want = "-L [BIND:]PORT=ROUTE or -L PATH=ROUTE, e.g. -L 5432=pg"
		errs = append(errs, e)
	}
	seen := make(map[string]Local, len(f.Locals))
	for _, l := range f.Locals {
		if err := l.check(); err != nil {
			errs = append(errs, s.Fail(l.String(), "invalid listener", err))
			continue
		}
		if !l.Unix() && strings.HasSuffix(l.Bind, ":0") {
			continue
		}
		if prev, dup := seen[l.Bind]; dup {
			e := s.Fail(l.String(), fmt.Sprintf("%s is already the listener of %s", l.Bind, settings.Quote(prev.String())), nil)
			e.Want = "one -L per address; PORT 0 picks a free port"
			errs = append(errs, e)
			continue
		}
		seen[l.Bind] = l
	}
	if f.Admin != "" {
		if _, _, err := splitHostPort(f.Admin, true, anyPort); err != nil {
			errs = append(errs, forwardSettings()["Admin"].Fail(f.Admin, "not a listen address", err))
		}
	}
	if f.SameUser && !sameUserSystem {
		e := forwardSettings()["SameUser"].Fail("true", "the user of a local peer can be checked on Linux only, not on "+runtime.GOOS, nil)
		e.Want = "false on this system"
		errs = append(errs, e)
	}
	rs := forwardSettings()["Refusals"]
	for _, r := range f.Refusals {
		if _, err := tunnel.ParseRefusal(string(r.Style)); err != nil {
			errs = append(errs, rs.Fail(r.String(), "invalid refusal style", err))
			continue
		}
		if !slices.ContainsFunc(f.Locals, func(l Local) bool { return l.Route == r.Route }) {
			e := rs.Fail(r.String(), "no -L listener carries route "+settings.Quote(r.Route), nil)
			e.Want = "ROUTE=STYLE for a route of a -L"
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// NC holds the settings of "tunnel nc".
type NC struct {
	Tunnel
	LoginDir
	// Route is the route to connect stdin and stdout to: the one positional
	// argument.
	Route string
}

// Doc describes "tunnel nc" for --help.
func (*NC) Doc() settings.Doc {
	return settings.Doc{
		Usage: "tunnel nc [flags] ROUTE",
		Intro: `Connect standard input and output to ROUTE behind the gateway, through one stream,
like netcat. When input ends, the stream is half-closed and the output drains.
Works as an SSH ProxyCommand.`,
		Examples: []string{
			"echo ping | tunnel nc --gateway gw.example.com:8443 \\",
			"    --cert me.crt --key me.key --ca gateway-ca.crt echo",
			"# In ~/.ssh/config, for hosts whose route is their name:",
			"#   ProxyCommand tunnel nc --gateway gw.example.com:8443 --cert me.crt --key me.key --ca ca.crt %h",
		},
	}
}

// ParseNC parses the settings of "tunnel nc" from the environment (lookup;
// nil means os.LookupEnv) and args, which must hold exactly one positional
// ROUTE, normalizes them (see [Tunnel.Normalize]), then validates them. It returns
// [flag.ErrHelp] after writing the help text to usage when args ask for it,
// and errors wrapping [ErrInvalid] for bad settings. See [settings.Parse].
func ParseNC(args []string, lookup func(string) (string, bool), usage io.Writer) (*NC, error) {
	n := new(NC)
	rest, err := settings.Parse("tunnel nc", TunnelPrefix, n, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	if len(rest) != 1 {
		return nil, &settings.Error{
			Flag: "argument ROUTE", Problem: fmt.Sprintf("tunnel nc takes exactly one ROUTE argument, not %d", len(rest)),
			Value: strings.Join(rest, " "), Want: "one route name, e.g. tunnel nc [flags] pg",
		}
	}
	n.Route = rest[0]
	n.Normalize()
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return n, nil
}

// Normalize is [Tunnel.Normalize], with the certificate of tunnel login
// looked for in --dir when it is given.
func (n *NC) Normalize() {
	n.Tunnel.normalize(n.Dir)
}

// Validate checks the common tunnel settings and the route. It returns
// every problem found, joined; see [Tunnel.Validate]. It does not modify n.
func (n *NC) Validate() error {
	errs := n.Tunnel.problems()
	if err := n.LoginDir.problem(&n.Tunnel); err != nil {
		errs = append(errs, err)
	}
	if err := mux.ValidRoute(n.Route); err != nil {
		errs = append(errs, &settings.Error{
			Flag: "argument ROUTE", Problem: "invalid route name", Value: n.Route,
			Want: "a route name, e.g. tunnel nc [flags] pg", Err: err,
		})
	}
	return errors.Join(errs...)
}

// Login holds the settings of "tunnel login".
type Login struct {
	Enroll string        `flag:"enroll" meta:"URL" help:"the enrollment service, https://HOST:PORT (required)" forms:"an https URL, e.g. https://enroll.example.com:8444"`
	CA     string        `flag:"ca" meta:"FILE" help:"CA bundle the service's certificate chains to, PEM; kept with the certificate as the default --ca of forward and nc (required)" forms:"a readable PEM file, e.g. --ca ca.crt"`
	GPGKey string        `flag:"gpg-key" meta:"ID" help:"sign the request with this gpg key (ID, fingerprint or email), by running gpg --detach-sign: a smartcard or YubiKey works" forms:"a key gpg --local-user takes, e.g. alice@example.com"`
	PGPKey string        `flag:"pgp-key" meta:"FILE" help:"sign with this OpenPGP private key file instead (no passphrase; gpg --export-secret-keys writes one)" forms:"a readable OpenPGP key file"`
	GPG    string        `flag:"gpg" meta:"PROGRAM" default:"gpg" help:"the GnuPG program --gpg-key runs"`
	TTL    time.Duration `flag:"ttl" help:"lifetime to ask for (0: the service's default, 18h unless configured); renewals ask the same"`
	Dir    string        `flag:"dir" meta:"DIR" help:"where to keep the key and certificate (default $XDG_CONFIG_HOME/portcullis, else ~/.config/portcullis)"`
}

// Doc describes "tunnel login" for --help.
func (*Login) Doc() settings.Doc {
	return settings.Doc{
		Usage: "tunnel login --enroll URL --ca FILE (--gpg-key ID | --pgp-key FILE) [flags]",
		Intro: `Obtain a client certificate from the enrollment service: a new private key is
made here (it never leaves this machine; written 0600), with a certificate
signing request, and the request is signed with your OpenPGP key. The service
issues a certificate for the identity of that key. The key, the certificate and
the CA bundle go to DIR, where tunnel forward and tunnel nc (given the same
--dir, when it is not the default) find them when --cert, --key and --ca are
not given; tunnel forward renews the certificate before it expires. Prints who
you are and until when.`,
		Examples: []string{
			"tunnel login --enroll https://enroll.example.com:8444 --ca ca.crt --gpg-key alice@example.com",
			"tunnel forward --gateway gw.example.com:8443 -L 5432=pg",
		},
	}
}

var loginSettings = sync.OnceValue(func() map[string]*settings.Setting {
	return settings.Index[Login](TunnelPrefix)
})

// ParseLogin parses and validates the settings of "tunnel login".
func ParseLogin(args []string, lookup func(string) (string, bool), usage io.Writer) (*Login, error) {
	l := new(Login)
	rest, err := settings.Parse("tunnel login", TunnelPrefix, l, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, settings.Invalidf("tunnel login: unexpected argument %s: it takes flags only", settings.Quote(rest[0]))
	}
	set := loginSettings()
	var errs []error
	add := func(e *settings.Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	if u, err := url.Parse(l.Enroll); l.Enroll == "" {
		add(set["Enroll"].Fail("", "required: the enrollment service", nil))
	} else if err != nil || u.Scheme != "https" || u.Host == "" {
		add(set["Enroll"].Fail(l.Enroll, "not an https URL", err))
	}
	add(settings.RequiredFile(set["CA"], l.CA))
	switch {
	case l.GPGKey == "" && l.PGPKey == "":
		errs = append(errs, settings.Invalidf("give --gpg-key ID (gpg signs) or --pgp-key FILE (a private key file) to sign the request"))
	case l.GPGKey != "" && l.PGPKey != "":
		errs = append(errs, settings.Invalidf("--gpg-key and --pgp-key are both given: choose one"))
	case l.PGPKey != "":
		add(settings.RequiredFile(set["PGPKey"], l.PGPKey))
	}
	if l.TTL < 0 {
		add(set["TTL"].Fail(l.TTL.String(), "negative", nil))
	}
	if l.Dir == "" {
		d, err := enroll.DefaultDir()
		if err != nil {
			add(set["Dir"].Fail("", "no default directory", err))
		}
		l.Dir = d
	}
	return l, errors.Join(errs...)
}

// Status holds the settings of "tunnel status".
type Status struct {
	Dir string `flag:"dir" meta:"DIR" help:"the directory of tunnel login (default $XDG_CONFIG_HOME/portcullis, else ~/.config/portcullis)"`
}

// Doc describes "tunnel status" for --help.
func (*Status) Doc() settings.Doc {
	return settings.Doc{
		Usage: "tunnel status [--dir DIR]",
		Intro: `Show the certificate tunnel login obtained: its identity, serial, expiry, when
tunnel forward renews it, and the enrollment service it renews from. Exits 2
when there is none or it has expired. tunnel whoami is the same.`,
		Examples: []string{"tunnel status"},
	}
}

// ParseStatus parses the settings of "tunnel status".
func ParseStatus(cmd string, args []string, lookup func(string) (string, bool), usage io.Writer) (*Status, error) {
	s := new(Status)
	rest, err := settings.Parse("tunnel "+cmd, TunnelPrefix, s, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, settings.Invalidf("tunnel %s: unexpected argument %s", cmd, settings.Quote(rest[0]))
	}
	if s.Dir == "" {
		if s.Dir, err = enroll.DefaultDir(); err != nil {
			return nil, settings.Invalidf("tunnel %s: %v: give --dir", cmd, err)
		}
	}
	return s, nil
}

// LoginStore returns the directory of tunnel login that t's certificate
// comes from, when it does (Normalize found no --cert and --key and took
// the login's).
func (t *Tunnel) LoginStore() (enroll.Store, bool) {
	return enroll.Store{Dir: t.loginDir}, t.loginDir != ""
}

// useLogin fills in --cert, --key and --ca from the directory of tunnel
// login (dir, or the default one when dir is empty) when none of --cert
// and --key is given and the directory holds a certificate.
func (t *Tunnel) useLogin(dir string) {
	if t.Cert != "" || t.Key != "" {
		return
	}
	if dir == "" {
		d, err := enroll.DefaultDir()
		if err != nil {
			return
		}
		dir = d
	}
	st := enroll.Store{Dir: dir}
	if !st.Exists() {
		return
	}
	t.Cert, t.Key, t.loginDir = st.CertPath(), st.KeyPath(), dir
	if t.CA == "" {
		if _, err := os.Stat(st.CAPath()); err == nil {
			t.CA = st.CAPath()
		}
	}
}

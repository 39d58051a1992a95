package bench

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/mux"
)

// Mode is what a run measures. See the package documentation.
type Mode string

// The modes of a run.
const (
	ModeHandshake  Mode = "handshake"
	ModeStreams    Mode = "streams"
	ModeThroughput Mode = "throughput"
	ModeDeny       Mode = "deny"
)

// Modes returns every Mode, in a new slice the caller may keep.
func Modes() []Mode { return []Mode{ModeHandshake, ModeStreams, ModeThroughput, ModeDeny} }

const modeForms = "handshake, streams, throughput or deny"

// UnmarshalText accepts the name of a mode, ignoring case.
func (m *Mode) UnmarshalText(b []byte) error {
	s := Mode(strings.ToLower(strings.TrimSpace(string(b))))
	if !slices.Contains(Modes(), s) {
		return fmt.Errorf("unknown mode %q", string(b))
	}
	*m = s
	return nil
}

// Direction is where the data flows in ModeThroughput.
type Direction string

// Directions of ModeThroughput.
const (
	// DirUp sends from the client to the route (use a discard route); the
	// data echoed back, if any, is read and dropped.
	DirUp Direction = "up"
	// DirDown reads what the route sends (a backend that sends by itself);
	// the client sends nothing.
	DirDown Direction = "down"
	// DirBoth sends and reads back through an echo route.
	DirBoth Direction = "both"
)

// Directions returns every Direction, in a new slice the caller may keep.
func Directions() []Direction { return []Direction{DirUp, DirDown, DirBoth} }

const directionForms = "up (to a discard route), down (from a route whose backend sends) or both (through an echo route)"

// UnmarshalText accepts the name of a direction, ignoring case.
func (d *Direction) UnmarshalText(b []byte) error {
	s := Direction(strings.ToLower(strings.TrimSpace(string(b))))
	if !slices.Contains(Directions(), s) {
		return fmt.Errorf("unknown direction %q", string(b))
	}
	*d = s
	return nil
}

// Default message sizes when Settings.Size is 0.
const (
	DefaultRoundTripSize  = 64       // handshake and streams modes
	DefaultThroughputSize = 32 << 10 // bytes per write in throughput mode
	MaxSize               = 16 << 20
)

// Limits of the worker counts.
const (
	MaxConcurrency = 10000
	MaxSessions    = 1000
	MaxStreams     = 10000
)

// Time limits used when Settings.Duration is 0.
const (
	DefaultDuration      = 10 * time.Second // without Count
	DefaultCountDuration = 10 * time.Minute // the cap with Count
)

// Settings are the settings of `tunnel bench`. Build them with
// [ParseSettings], or in code followed by [Settings.Validate]. The zero
// values of the fields mean what their comments say.
type Settings struct {
	config.Tunnel

	// Mode is what to measure; "" means ModeHandshake.
	Mode Mode `flag:"mode" meta:"MODE" default:"handshake" help:"what to measure: handshake (full mTLS connections/s), streams (stream opens/s over one session), throughput (MB/s) or deny (denied connections/s from --source)" forms:"handshake, streams, throughput or deny, e.g. --mode streams"`
	// Route is the route every operation uses; "" means "echo".
	Route string `flag:"route" meta:"NAME" default:"echo" help:"route to use: an echo route for handshake, streams and throughput both; a discard route for throughput up" forms:"a route name of 1 to 255 bytes of [A-Za-z0-9._:-], e.g. echo"`
	// Concurrency is the number of workers of the handshake, streams and
	// deny modes; 0 means 32.
	Concurrency int `flag:"concurrency" short:"c" default:"32" help:"workers running at once (handshake, streams, deny)"`
	// Duration is how long to run. 0 means DefaultDuration, or with Count
	// the cap DefaultCountDuration.
	Duration time.Duration `flag:"duration" short:"d" help:"how long to run (default 10s; with --count, a cap, default 10m)"`
	// Count stops the run after this many operations (connections, streams,
	// attempts, or writes of --size bytes in throughput mode); 0 means no
	// count.
	Count int `flag:"count" short:"n" default:"0" help:"stop after this many operations (connections, streams, attempts; writes of --size bytes in throughput mode); 0 runs for --duration"`
	// JSON prints the result as one JSON object instead of a table.
	JSON bool `flag:"json" help:"print the result as one JSON object (mode, rate_per_sec, mb_per_sec, p50_ms, p99_ms, errors, duration_s, ...)"`
	// Source is the local address connections come from; the zero Addr
	// lets the system choose.
	Source netip.Addr `flag:"source" meta:"ADDR" help:"local address to connect from, e.g. 127.0.0.2 (deny mode: an address the gateway denies)" forms:"an IP address without port, e.g. 127.0.0.2 or ::1"`
	// Size is the message size of a round trip, or of one write in
	// throughput mode; 0 means DefaultRoundTripSize or
	// DefaultThroughputSize.
	Size int `flag:"size" meta:"BYTES" help:"bytes per round trip (default 64), or per write in throughput mode (default 32768)"`
	// Resume measures TLS 1.3 session resumption: the workers share one
	// session cache. Handshake mode only.
	Resume bool `flag:"resume" help:"handshake mode: resume TLS sessions (one session cache shared by the workers) instead of full handshakes"`
	// Sessions is the number of mux sessions of the streams and
	// throughput modes; 0 means 1.
	Sessions int `flag:"sessions" default:"1" help:"streams and throughput modes: mux sessions (TLS connections) the workers share"`
	// Streams is the number of streams of throughput mode; 0 means 1.
	Streams int `flag:"streams" default:"1" help:"throughput mode: streams moving data at once"`
	// Direction is where throughput mode sends data; "" means DirBoth.
	Direction Direction `flag:"direction" meta:"DIR" default:"both" help:"throughput mode: up (to a discard route), down (from a route whose backend sends) or both (through an echo route)" forms:"up, down or both"`
	// OpTimeout bounds one operation after its connection is up (the
	// connection itself is bounded by ConnectTimeout); 0 means 10s.
	OpTimeout time.Duration `flag:"op-timeout" default:"10s" help:"time one round trip, stream open or deny check may take"`
	// UnsafePlaintext talks plain TCP without TLS, to measure a TCP relay
	// or a backend as a baseline. Never use it to carry real data.
	UnsafePlaintext bool `flag:"unsafe-plaintext" help:"baseline only: plain TCP, no TLS at all (handshake mode then measures TCP connections; throughput works too)"`
}

// Doc describes `tunnel bench` for --help.
func (*Settings) Doc() settings.Doc {
	return settings.Doc{
		Usage: "tunnel bench --mode MODE [flags]",
		Intro: `Load a gateway and report rates, latency quantiles (p50/p90/p99/p99.9) and errors
by kind. It stops by itself after --duration (10s) or --count operations.

  handshake    full mTLS connections per second: connect, handshake, one --size
               round trip through --route, close (--resume: TLS 1.3 resumption)
  streams      stream open + round trip + close per second over --sessions sessions
  throughput   MB/s over --streams streams, --direction up, down or both
  deny         connection attempts per second from --source, an address the
               gateway denies: connect, wait for the close, count

With --direct, every connection is one TLS connection with SNI = route, so any
TLS server (a TLS terminator, haproxy, stunnel) can be measured the same way.
The progress line goes to stderr when it is a terminal; --json prints one object
for scripts. The exit status is 0 when at least one operation succeeded.`,
		Examples: []string{
			"# Full handshakes with 32 workers for 10 seconds:",
			"tunnel bench --gateway gw:8443 --cert me.crt --key me.key --ca ca.crt --mode handshake",
			"# Stream opens over 4 sessions, as JSON:",
			"tunnel bench --gateway gw:8443 --cert me.crt --key me.key --ca ca.crt --mode streams --sessions 4 --json",
			"# Upload throughput through a discard route on 8 streams:",
			"tunnel bench --gateway gw:8443 --cert me.crt --key me.key --ca ca.crt --mode throughput --route discard --direction up --streams 8",
			"# Denied connections per second from 127.0.0.2:",
			"tunnel bench --gateway 127.0.0.1:8443 --mode deny --source 127.0.0.2",
		},
	}
}

// ParseSettings parses the settings of `tunnel bench` from the environment
// (lookup; nil means os.LookupEnv, variables TUNNEL_*) and args, fills the
// defaults and the server name, then validates them. It returns
// flag.ErrHelp after writing the help text to usage when args ask for it,
// and errors wrapping config.ErrInvalid for bad settings.
func ParseSettings(args []string, lookup func(string) (string, bool), usage io.Writer) (*Settings, error) {
	s := new(Settings)
	rest, err := settings.Parse("tunnel bench", config.TunnelPrefix, s, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, &settings.Error{
			Flag: "argument", Problem: "tunnel bench takes no positional arguments", Value: strings.Join(rest, " "),
			Want: "flags only, e.g. tunnel bench --mode streams --route echo",
		}
	}
	s.DefaultServerName()
	// Validate before filling in: on the command line, 0 workers is an
	// error, not the default.
	if err := s.validate(false); err != nil {
		return nil, err
	}
	s.fill()
	return s, nil
}

// fill replaces zero values by the defaults they stand for.
func (s *Settings) fill() {
	if s.Mode == "" {
		s.Mode = ModeHandshake
	}
	if s.Route == "" {
		s.Route = "echo"
	}
	if s.Concurrency == 0 {
		s.Concurrency = 32
	}
	if s.Sessions == 0 {
		s.Sessions = 1
	}
	if s.Streams == 0 {
		s.Streams = 1
	}
	if s.Direction == "" {
		s.Direction = DirBoth
	}
	if s.OpTimeout == 0 {
		s.OpTimeout = 10 * time.Second
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = 10 * time.Second
	}
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
	if s.LogFormat == "" {
		s.LogFormat = "console"
	}
}

// NeedsTLS reports whether the settings use TLS and so client credentials:
// every mode but deny, unless UnsafePlaintext.
func (s *Settings) NeedsTLS() bool { return s.Mode != ModeDeny && !s.UnsafePlaintext }

// mux reports whether operations go through mux sessions.
func (s *Settings) mux() bool { return s.NeedsTLS() && !s.Direct }

// size returns the message size in use.
func (s *Settings) size() int {
	switch {
	case s.Size > 0:
		return s.Size
	case s.Mode == ModeThroughput:
		return DefaultThroughputSize
	}
	return DefaultRoundTripSize
}

// limit returns the time limit of the run.
func (s *Settings) limit() time.Duration {
	switch {
	case s.Duration > 0:
		return s.Duration
	case s.Count > 0:
		return DefaultCountDuration
	}
	return DefaultDuration
}

// Validate checks the settings alone and together and returns every
// problem found (joined with errors.Join), each a *settings.Error
// wrapping config.ErrInvalid. Zero values are read as their defaults. The
// client files are required unless the mode needs no TLS (deny, or
// --unsafe-plaintext). It does not modify s.
func (s *Settings) Validate() error { return s.validate(true) }

// validate checks s, with zero values read as defaults when zeroDefaults.
func (s *Settings) validate(zeroDefaults bool) error {
	c := *s
	if zeroDefaults {
		c.fill()
	}
	var errs []error
	for _, e := range flatten(c.Tunnel.Validate()) {
		var se *settings.Error
		if !c.NeedsTLS() && errors.As(e, &se) && slices.Contains([]string{"--cert", "--key", "--ca", "--server-name"}, se.Flag) {
			continue // not used without TLS
		}
		errs = append(errs, e)
	}
	bad := func(name, problem, value, want string, cause error) {
		errs = append(errs, &settings.Error{
			Flag: "--" + name, Env: settings.EnvName(config.TunnelPrefix, name),
			Problem: problem, Value: value, Want: want, Err: cause,
		})
	}
	if !slices.Contains(Modes(), c.Mode) {
		bad("mode", "unknown mode", string(c.Mode), modeForms, nil)
	}
	if !slices.Contains(Directions(), c.Direction) {
		bad("direction", "unknown direction", string(c.Direction), directionForms, nil)
	}
	if err := mux.ValidRoute(c.Route); err != nil {
		bad("route", "invalid route name", c.Route, "1 to 255 bytes of [A-Za-z0-9._:-], e.g. echo", err)
	}
	between := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(name, fmt.Sprintf("out of range %d..%d", lo, hi), fmt.Sprint(v), fmt.Sprintf("a whole number from %d to %d", lo, hi), nil)
		}
	}
	between("concurrency", c.Concurrency, 1, MaxConcurrency)
	between("sessions", c.Sessions, 1, MaxSessions)
	between("streams", c.Streams, 1, MaxStreams)
	between("size", c.Size, 0, MaxSize)
	if c.Count < 0 {
		bad("count", "must not be negative", fmt.Sprint(c.Count), "0 (run for --duration) or a number of operations, e.g. 1000", nil)
	}
	if c.Duration < 0 {
		bad("duration", "must not be negative", c.Duration.String(), "a duration such as 10s or 1m", nil)
	}
	if c.OpTimeout <= 0 {
		bad("op-timeout", "must be greater than 0", c.OpTimeout.String(), "a duration such as 10s", nil)
	}
	if c.Source.Zone() != "" {
		bad("source", "a zone is not supported", c.Source.String(), "an IP address without zone or port, e.g. 127.0.0.2", nil)
	}
	if c.Direct && c.UnsafePlaintext {
		bad("unsafe-plaintext", "cannot be combined with --direct", "true", "either --direct (TLS, one connection per stream) or --unsafe-plaintext (plain TCP)", nil)
	}
	if c.Mode == ModeStreams && (c.Direct || c.UnsafePlaintext) {
		flag := "direct"
		if c.UnsafePlaintext {
			flag = "unsafe-plaintext"
		}
		bad(flag, "streams mode needs mux sessions", "true",
			"mux mode (no --direct, no --unsafe-plaintext); for one connection per stream measure --mode handshake", nil)
	}
	if c.Resume && c.Mode != ModeHandshake {
		bad("resume", "only handshake mode resumes sessions", "true", "--mode handshake --resume", nil)
	}
	if c.Resume && c.UnsafePlaintext {
		bad("resume", "there is no TLS session to resume with --unsafe-plaintext", "true", "--resume without --unsafe-plaintext", nil)
	}
	if c.Sessions > 1 && !c.mux() {
		bad("sessions", "applies to mux mode only", fmt.Sprint(c.Sessions), "1 with --direct, --unsafe-plaintext or --mode deny", nil)
	}
	return errors.Join(errs...)
}

// joinType is the type of the errors that errors.Join returns.
var joinType = reflect.TypeOf(errors.Join(errors.New("x")))

// flatten returns the errors that errors.Join joined in err, recursively;
// any other error is returned as it is (nil gives none).
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok && reflect.TypeOf(err) == joinType {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Command tunnel is the portcullis client: local port forwarding and a
// netcat-style stdin/stdout mode through an mTLS gateway. See `tunnel --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/bench"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/enroll"
	"github.com/portcullis-gw/portcullis/internal/logging"
	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/internal/version"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/pki"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

const usage = `tunnel: reach TCP services behind a portcullis gateway over mutual TLS.

Usage:
  tunnel forward -L [BIND:]PORT=ROUTE ... [flags]   local listeners, one shared session
  tunnel nc ROUTE [flags]                            stdin/stdout through one stream
  tunnel bench --mode MODE [flags]                   load generator: handshake, streams, throughput, deny
  tunnel login --enroll URL --ca FILE --gpg-key ID   obtain a short-lived certificate (forward renews it)
  tunnel status                                      the certificate of login: identity, expiry (also whoami)
  tunnel help                                        this text (also --help, -h)
  tunnel version                                     version, commit and Go version (also --version)

Each command's --help lists its settings. Every flag also reads an environment
variable: TUNNEL_ plus the flag name in upper case with "-" as "_"
(--server-name is TUNNEL_SERVER_NAME); a flag wins.

Exit status: 0 success; 1 bad usage or settings; 2 the gateway could not be
reached or the handshake failed (the message says which side refused and why),
or the stream was cut off; 3 the gateway refused the stream (the message
carries its reason).

Examples:
  tunnel forward --gateway gw.example.com:8443 --cert me.crt --key me.key --ca ca.crt -L 5432=pg
  psql "host=127.0.0.1 port=5432 user=app"
  ssh -o ProxyCommand='tunnel nc ssh --gateway gw:8443 --cert me.crt --key me.key --ca ca.crt' host
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "forward", "nc", "bench", "login", "status", "whoami":
		warnUnknownEnv(stderr, os.Environ())
	}
	var err error
	switch cmd {
	case "forward":
		err = runForward(ctx, args, stdout, stderr)
	case "nc":
		err = runNC(ctx, args, stdin, stdout, stderr)
	case "bench":
		err = runBench(ctx, args, stdout, stderr)
	case "login":
		err = runLogin(ctx, args, stdout)
	case "status", "whoami":
		err = runStatus(cmd, args, stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "tunnel", version.Get())
		return 0
	default:
		fmt.Fprintf(stderr, "tunnel: unknown command %q\n\n%s", cmd, usage)
		return 1
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tunnel: %v%s\n", err, flagHint(err))
		return exitCode(err)
	}
	return 0
}

// warnUnknownEnv writes a warning for each TUNNEL_ variable in environ that
// no tunnel command (forward, nc, bench) reads: a misspelling would
// otherwise be ignored silently.
func warnUnknownEnv(stderr io.Writer, environ []string) {
	names, err := settings.EnvNames(config.TunnelPrefix, &config.Forward{}, &config.NC{}, &bench.Settings{}, &config.Login{}, &config.Status{})
	if err != nil {
		panic(err) // the structs are fixed and tested
	}
	for _, w := range settings.Unknown(config.TunnelPrefix, environ, names) {
		fmt.Fprintf(stderr, "tunnel: warning: %s\n", w)
	}
}

// flagHint names the setting behind a failure the library reports in its
// own terms (it knows options, not flags), or returns "".
func flagHint(err error) string {
	switch {
	case errors.Is(err, conn.ErrPin):
		return " (check --pin, TUNNEL_PIN: the gateway's certificate may have changed)"
	case errors.Is(err, tunnel.ErrGatewayNotAllowed):
		return " (check --gateway-allow, TUNNEL_GATEWAY_ALLOW)"
	case errors.Is(err, tunnel.ErrALPN):
		return " (for a plain TLS server use --direct)"
	}
	return ""
}

// exitCode maps an error to the exit statuses of the command-line contract.
func exitCode(err error) int {
	var re *mux.RefusedError
	var de *tunnel.DialError
	switch {
	case errors.As(err, &re):
		return 3
	case errors.As(err, &de):
		return 2
	}
	var run *runError
	if errors.As(err, &run) {
		return 2
	}
	return 1
}

// setup builds the logger, credentials and dialer shared by the commands.
func setup(t *config.Tunnel, stderr io.Writer) (*tunnel.Dialer, *conn.ClientCreds, zerolog.Logger, error) {
	log, err := logging.New(stderr, t.LogLevel, t.LogFormat)
	if err != nil {
		return nil, nil, log, err
	}
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: t.Cert, Key: t.Key, KeyPass: t.KeyPassFile, CA: t.CA})
	if err != nil {
		return nil, nil, log, err
	}
	for _, w := range creds.State().Warnings {
		log.Warn().Msg(w)
	}
	var gwAllow *acl.Set
	if len(t.GatewayAllow) > 0 {
		if gwAllow, err = acl.New(t.GatewayAllow); err != nil {
			return nil, nil, log, fmt.Errorf("--gateway-allow: %w", err)
		}
	}
	d, err := tunnel.NewDialer(tunnel.Options{
		Gateways: t.Gateways, Creds: creds, ServerName: t.ServerName, Pins: t.Pins, GatewayAllow: gwAllow,
		ConnectTimeout: t.ConnectTimeout, Direct: t.Direct, Log: log,
	})
	return d, creds, log, err
}

// credsPollInterval is how often "tunnel forward" checks its certificate,
// key and CA files for changes.
const credsPollInterval = 5 * time.Second

func runForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.ParseForward(args, os.LookupEnv, stdout)
	if err != nil {
		return err
	}
	d, creds, log, err := setup(&cfg.Tunnel, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	locals := make([]tunnel.Local, len(cfg.Locals))
	for i, l := range cfg.Locals {
		locals[i] = tunnel.Local{Bind: l.Bind, Route: l.Route, SameUser: cfg.SameUserOn(l), Refusal: cfg.RefusalOf(l.Route)}
	}
	f, err := tunnel.Listen(d, locals, log)
	if err != nil {
		return err
	}
	if cfg.Admin != "" {
		stopAdmin, err := serveAdmin(cfg.Admin, f)
		if err != nil {
			f.Close()
			return err
		}
		defer stopAdmin()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if !cfg.Lazy {
		if err := checkForward(ctx, f, log); err != nil {
			f.Close()
			return err
		}
	}
	watch := conn.NewFileWatch([]string{cfg.Cert, cfg.Key, cfg.KeyPassFile, cfg.CA})
	var reloading sync.Mutex
	reload := func(why string) {
		reloading.Lock()
		defer reloading.Unlock()
		watch.Mark() // what this reload reads, the watcher does not load again
		// The certificate is loaded, then a session made with it takes
		// the new streams before the old one is let go.
		rctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
		defer cancel()
		if err := d.Reload(rctx); err != nil {
			if creds.State().Cert.Leaf != nil && errors.As(err, new(*tunnel.DialError)) {
				log.Warn().Str("event", "reloaded").Str("trigger", why).Err(err).Msg("client certificate reloaded; the new session could not be dialed yet: the next connection dials it")
				return
			}
			log.Error().Str("event", "reload_failed").Str("trigger", why).Err(err).Msg("keeping the previous client certificate")
		} else {
			log.Info().Str("event", "reloaded").Str("trigger", why).Str("serial", serialOf(creds)).Msg("client certificate reloaded; new connections use a new session with it")
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			select {
			case <-hup:
				reload("SIGHUP")
			case <-ctx.Done():
				return
			}
		}
	})
	wg.Go(func() {
		watch.Run(ctx, credsPollInterval, func() { reload("file change") })
	})
	if store, ok := cfg.LoginStore(); ok && cfg.Renew {
		if _, err := store.LoadState(); err != nil {
			log.Warn().Str("event", "renew_off").Err(err).Msg("the certificate of tunnel login will not be renewed")
		} else {
			r := &enroll.Renewer{Store: store, Log: log, Renewed: func(*enroll.Issued) { reload("renewal") }}
			wg.Go(func() { _ = r.Run(ctx) })
		}
	}
	return f.Serve(ctx)
}

// serialOf is the serial of the loaded client certificate, for the log.
func serialOf(creds *conn.ClientCreds) string {
	if leaf := creds.State().Cert.Leaf; leaf != nil {
		return pki.FormatSerial(leaf.SerialNumber)
	}
	return ""
}

// serveAdmin serves the forwarder's /healthz and /metrics until stop is
// called.
func serveAdmin(addr string, f *tunnel.Forwarder) (stop func(), err error) {
	h, err := f.AdminHandler()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin %s: %w", addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	return func() { hs.Close(); <-done }, nil
}

// checkForward dials the gateway and tries each route once, before the
// listeners serve: an unreachable gateway or a refused handshake is an
// error (exit 2); a refused route is a warning, as the route may be
// fixed on the gateway while the tunnel runs.
func checkForward(ctx context.Context, f *tunnel.Forwarder, log zerolog.Logger) error {
	refused, err := f.Check(ctx)
	if ctx.Err() != nil {
		return nil // interrupted: Serve returns at once
	}
	if err != nil {
		return fmt.Errorf("checking the gateway at start (--lazy skips this): %w", err)
	}
	for _, r := range refused {
		ev := log.Warn().Str("event", "route_check_failed").Err(r)
		var re *mux.RefusedError
		if errors.As(r, &re) {
			ev = ev.Str("route", re.Route).Str("status", re.Status.String())
		}
		ev.Msg("a route does not work: its connections will be closed at once until the gateway accepts it")
	}
	log.Info().Str("event", "gateway_checked").Int("routes_refused", len(refused)).Msg("gateway reachable")
	return nil
}

func runNC(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := config.ParseNC(args, os.LookupEnv, stdout)
	if err != nil {
		return err
	}
	d, _, _, err := setup(&cfg.Tunnel, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := tunnel.NC(ctx, d, cfg.Route, stdin, stdout); err != nil {
		return &runError{err}
	}
	return nil
}

// runError is a failure after the settings were taken: a stream cut off,
// for example. It exits 2, not 1 (bad usage or settings).
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

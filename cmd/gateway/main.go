// Command gateway runs the portcullis gateway, explains its decisions and
// keeps a small certificate authority. See `gateway --help`.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/logging"
	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/internal/systemd"
	"github.com/portcullis-gw/portcullis/internal/version"
)

const usage = `gateway: an mTLS gateway for raw TCP backends.

Usage:
  gateway [run] [flags]      run the gateway (gateway run --help lists every setting)
  gateway explain [flags]    offline: which rule admits or refuses a certificate from an address
  gateway pki COMMAND ...    a small CA in a directory: init, issue, sign, revoke, crl, show
  gateway enroll serve ...   the enrollment service: short-lived certificates for OpenPGP-signed requests
  gateway help               this text (also gateway --help, gateway -h)
  gateway version            the version, commit and Go version (also gateway --version)

Every flag also reads an environment variable: GATEWAY_ plus the flag name in
upper case with "-" as "_" (--allow-file is GATEWAY_ALLOW_FILE); a flag wins.

Exit status: 0 success (also after a drain on SIGTERM/SIGINT), 1 bad usage or
settings, 2 the gateway failed while running, 3 explain's verdict is "refused".

Quick start:
  gateway pki init --dir pki
  gateway pki issue --dir pki --server --name gw --dns localhost --ip 127.0.0.1
  gateway pki issue --dir pki --client --name alice --uri spiffe://corp/alice
  gateway --listen 127.0.0.1:8443 --cert pki/gw.crt --key pki/gw.key --ca pki/ca.crt \
    --allow 127.0.0.0/8 --allow-id uri:spiffe://corp/* --route echo=builtin:echo
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errRefused ends "gateway explain" with status 3 after a refusal verdict.
var errRefused = errors.New("refused")

func x509Pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// isTopLevelFlag reports whether arg, given first, is one of the flags that
// stand for a command of their own (help, version) rather than a flag of
// "gateway run".
func isTopLevelFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "-version", "--version":
		return true
	}
	return false
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (len(args[0]) > 0 && args[0][0] != '-' || isTopLevelFlag(args[0])) {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run", "explain", "pki", "enroll":
		warnUnknownEnv(stderr, os.Environ())
	}
	var err error
	switch cmd {
	case "run":
		err = runGateway(ctx, args, stdout, stderr)
	case "explain":
		err = runExplain(args, stdout, stderr)
	case "pki":
		err = runPKI(args, os.LookupEnv, stdout, stderr)
	case "enroll":
		err = runEnroll(ctx, args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "gateway", version.Get())
		return 0
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q\n\n%s", cmd, usage)
		return 1
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errRefused) {
		return 3 // explain printed its verdict
	}
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// warnUnknownEnv writes a warning for each GATEWAY_ variable in environ that
// no gateway command reads: a misspelling would otherwise be ignored
// silently. The variables of every command count (run, explain and each
// pki command), so that one command's settings in the environment do not
// trouble another.
func warnUnknownEnv(stderr io.Writer, environ []string) {
	names, err := settings.EnvNames(config.GatewayPrefix, append(append([]any{&config.Gateway{}}, slices.Collect(maps.Values(config.PKICommands()))...), slices.Collect(maps.Values(config.EnrollCommands()))...)...)
	if err != nil {
		panic(err) // the structs are fixed and tested
	}
	explain, err := settings.EnvNames(explainPrefix, &explainSettings{})
	if err != nil {
		panic(err)
	}
	for _, w := range settings.Unknown(config.GatewayPrefix, environ, append(names, explain...)) {
		fmt.Fprintf(stderr, "gateway: warning: %s\n", w)
	}
}

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.ParseGateway(args, os.LookupEnv, stdout)
	if err != nil {
		return err
	}
	log, flushLog, err := logging.NewBatched(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer flushLog()
	v := version.Get()
	log.Info().Str("event", "start").Str("version", v.String()).Str("go", v.Go).Msg("gateway starting")
	srv, err := gateway.New(cfg.ServerConfig(&log))
	if err != nil {
		return err
	}
	ln, err := listen(cfg, &log)
	if err != nil {
		return err
	}
	bound := []net.Addr{ln.Addr()}
	if cfg.Admin != "" {
		stop, addr, err := serveAdmin(cfg.Admin, srv)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		bound = append(bound, addr)
	}
	if err := restrictSelf(cfg, &log, bound); err != nil {
		ln.Close()
		return &exitError{code: 2, err: err}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { defer close(watched); srv.Watch(watchCtx, cfg.WatchInterval, cfg.WatchedFiles()) }()
	defer func() { stopWatch(); <-watched }()
	var sd systemd.Notifier
	_ = sd.Ready() // listening and loaded; without a notify socket, nothing
	dogDone := make(chan struct{})
	go func() { defer close(dogDone); _ = sd.Watchdog(watchCtx, nil) }()
	defer func() { stopWatch(); <-dogDone }()
	for {
		select {
		case err := <-served:
			if errors.Is(err, gateway.ErrServerClosed) {
				return nil
			}
			srv.Close() // its connections stop, and log, before the log is flushed
			return &exitError{code: 2, err: err}
		case <-ctx.Done():
			_ = sd.Stopping()
			return drain(srv, cfg, served)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_ = sd.Reloading()
				_ = srv.Reload() // logged; the old state stays on error
				_ = sd.Ready()
				continue
			}
			_ = sd.Stopping()
			log.Info().Str("event", "signal").Str("signal", sig.String()).Dur("drain_timeout_ms", cfg.DrainTimeout).Msg("shutting down")
			return drain(srv, cfg, served)
		}
	}
}

// listen returns the listener of the first socket passed by systemd's
// socket activation, when there is one (--listen is then ignored, and the
// log says so), or else a new one on --listen.
func listen(cfg *config.Gateway, log *zerolog.Logger) (net.Listener, error) {
	ln, n, err := systemd.Listener()
	if err != nil {
		return nil, err
	}
	if ln != nil {
		log.Info().Str("event", "socket_activation").Str("addr", ln.Addr().String()).Int("sockets", n).
			Str("ignored_listen", cfg.Listen).Msg("listening on the socket passed by systemd; --listen is ignored")
		return ln, nil
	}
	ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", cfg.Listen, err)
	}
	return ln, nil
}

// serveAdmin serves the health and metrics endpoints until stop is called.
func serveAdmin(addr string, srv *gateway.Server) (stop func(), bound net.Addr, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--admin %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	return func() { hs.Close(); <-done }, ln.Addr(), nil
}

func drain(srv *gateway.Server, cfg *config.Gateway, served <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	_ = srv.Shutdown(ctx) // past the deadline the rest is cut; still a clean exit
	<-served
	return nil
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/enroll"
	"github.com/portcullis-gw/portcullis/internal/logging"
	"github.com/portcullis-gw/portcullis/pki"
)

const enrollUsage = `Usage: gateway enroll serve [flags]

The enrollment service: short-lived client certificates for the users of an
OpenPGP keyring, renewed over mutual TLS, revoked by admins. See
"gateway enroll serve --help".
`

// runEnroll runs "gateway enroll ARGS...".
func runEnroll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, enrollUsage)
		return fmt.Errorf("%w: gateway enroll: missing command: accepted: serve", config.ErrInvalid)
	}
	switch args[0] {
	case "serve":
		return enrollServe(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, enrollUsage)
		return flag.ErrHelp
	}
	return fmt.Errorf("%w: gateway enroll: unknown command %q: accepted: serve", config.ErrInvalid, args[0])
}

func enrollServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := config.ParseEnrollServe(args, os.LookupEnv, stdout)
	if err != nil {
		return err
	}
	log, err := logging.New(stderr, s.LogLevel, s.LogFormat)
	if err != nil {
		return err
	}
	d, err := pki.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(s.Cert, s.Key)
	if err != nil {
		return fmt.Errorf("--cert/--key: %w", err)
	}
	srv, err := enroll.NewServer(enroll.Config{
		Dir: d, UsersKeyring: s.UsersKeyring, AdminKeyring: s.AdminKeyring, UserMap: s.UsersMap,
		Org: s.Org, DefaultTTL: s.TTL, MaxTTL: s.MaxTTL, Log: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", s.Listen, err)
	}
	hs := &http.Server{Handler: srv, TLSConfig: srv.TLSConfig(cert), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	log.Info().Str("event", "listening").Str("addr", ln.Addr().String()).Str("dir", s.Dir).Str("org", s.Org).
		Msg("enrollment service listening")
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-served:
		return &exitError{code: 2, err: err}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return &exitError{code: 2, err: err}
	}
	log.Info().Str("event", "stopped").Msg("enrollment service stopped")
	return nil
}

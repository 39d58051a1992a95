package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/enroll"
	"github.com/portcullis-gw/portcullis/pki"
)

func runLogin(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := config.ParseLogin(args, os.LookupEnv, stdout)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(cfg.CA)
	if err != nil {
		return fmt.Errorf("--ca: %w", err)
	}
	var signer enroll.Signer
	if cfg.PGPKey != "" {
		ks, err := enroll.ReadKeySigner(cfg.PGPKey)
		if err != nil {
			return fmt.Errorf("--pgp-key: %w", err)
		}
		signer = ks
	} else {
		signer = enroll.GPGSigner{Key: cfg.GPGKey, Program: cfg.GPG}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // gpg may wait for a PIN
	defer cancel()
	store := enroll.Store{Dir: cfg.Dir}
	out, err := enroll.Login(ctx, store, cfg.Enroll, ca, signer, cfg.TTL)
	if err != nil {
		return &runError{err}
	}
	fmt.Fprintf(stdout, "logged in as %s (%s%s), serial %s\n", out.Name, out.URI, emailPart(out.Email), out.Serial)
	fmt.Fprintf(stdout, "certificate valid until %s (%s); tunnel forward renews it from %s\n",
		out.NotAfter.Local().Format(time.RFC3339), time.Until(out.NotAfter).Round(time.Second), cfg.Enroll)
	fmt.Fprintf(stdout, "wrote %s, %s (0600), %s\n", store.CertPath(), store.KeyPath(), store.CAPath())
	return nil
}

func emailPart(e string) string {
	if e == "" {
		return ""
	}
	return ", " + e
}

func runStatus(cmd string, args []string, stdout io.Writer) error {
	cfg, err := config.ParseStatus(cmd, args, os.LookupEnv, stdout)
	if err != nil {
		return err
	}
	store := enroll.Store{Dir: cfg.Dir}
	leaf, err := store.Leaf()
	if err != nil {
		if enroll.IsNotExist(err) {
			return &runError{fmt.Errorf("no certificate in %s: run tunnel login", cfg.Dir)}
		}
		return &runError{err}
	}
	id := conn.IdentityOf(leaf)
	fmt.Fprintf(stdout, "identity:  %s\n", id.String())
	if len(id.Emails) > 0 {
		fmt.Fprintf(stdout, "email:     %s\n", strings.Join(id.Emails, ", "))
	}
	fmt.Fprintf(stdout, "serial:    %s\n", pki.FormatSerial(leaf.SerialNumber))
	fmt.Fprintf(stdout, "issuer:    %s\n", id.Issuer)
	fmt.Fprintf(stdout, "not after: %s\n", leaf.NotAfter.Local().Format(time.RFC3339))
	if st, err := store.LoadState(); err == nil {
		fmt.Fprintf(stdout, "renews:    at %s from %s\n", enroll.RenewAt(leaf).Local().Format(time.RFC3339), st.URL)
	} else {
		fmt.Fprintf(stdout, "renews:    no (%v)\n", err)
	}
	fmt.Fprintf(stdout, "files:     %s, %s\n", store.CertPath(), store.KeyPath())
	if left := time.Until(leaf.NotAfter); left <= 0 {
		fmt.Fprintf(stdout, "status:    EXPIRED %s ago: run tunnel login\n", (-left).Round(time.Second))
		return &runError{fmt.Errorf("the certificate expired at %s: run tunnel login", leaf.NotAfter.UTC().Format(time.RFC3339))}
	} else {
		fmt.Fprintf(stdout, "status:    valid, %s left\n", left.Round(time.Second))
	}
	return nil
}

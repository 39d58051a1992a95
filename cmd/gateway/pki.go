package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/pki"
)

const pkiUsage = `Usage: gateway pki COMMAND [flags]

A small certificate authority kept in a directory, enough to run portcullis:
a CA, server certificates for gateways, client certificates for tunnels,
revocation and a CRL.

Commands:
  init     create a CA in --dir
  issue    issue a server or client certificate and its key
  sign     sign a certificate signing request (the key never leaves its owner)
  revoke   revoke a certificate by serial or file and rewrite crl.pem
  crl      rewrite crl.pem (run it before the CRL expires, default every 7 days)
  show     describe certificates or a CRL from a PEM or DER file

Files in --dir:
  ca.crt, ca.key       the issuing CA (key 0600)
  root.crt, root.key   only with init --intermediate: the root that signed ca.crt;
                       keep root.key offline once init is done
  NAME.crt, NAME.key   each issued NAME: the certificate followed by its chain, and its key
  crl.pem              the CRL, written by init and rewritten by revoke and crl
  index.json           what the CA issued and revoked; crl is rebuilt from it

The trust anchor to give the gateway and the tunnel with --ca is root.crt with
--intermediate, ca.crt without. Give the gateway crl.pem with --crl; with
--intermediate the CRL is signed by ca.crt, so add ca.crt to the gateway's
--ca bundle too.
Nothing is overwritten without --force.

Example:
  gateway pki init  --dir ./ca
  gateway pki issue --dir ./ca --server --name gw --dns gw.example.com --ip 10.0.0.5
  gateway pki issue --dir ./ca --client --name alice --uri spiffe://corp/user/alice
  gateway --cert ca/gw.crt --key ca/gw.key --ca ca/ca.crt --crl ca/crl.pem ...

Run "gateway pki COMMAND --help" for the flags of a command. Every flag also
reads an environment variable: GATEWAY_ plus the flag name in upper case with
"-" as "_" (--dir is GATEWAY_DIR, --key-type GATEWAY_KEY_TYPE); a flag wins.
`

// runPKI runs "gateway pki ARGS...": args start after "pki". It writes what
// it did, and help, to stdout. It returns flag.ErrHelp when help was asked
// for, and otherwise an error that names the flag, what is wrong and the
// value given.
func runPKI(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, pkiUsage)
		return fmt.Errorf("%w: gateway pki: missing command: accepted: init, issue, sign, revoke, crl, show", config.ErrInvalid)
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "init":
		err = pkiInit(rest, lookup, stdout)
	case "issue":
		err = pkiIssue(rest, lookup, stdout)
	case "sign":
		err = pkiSign(rest, lookup, stdout)
	case "revoke":
		err = pkiRevoke(rest, lookup, stdout)
	case "crl":
		err = pkiCRL(rest, lookup, stdout)
	case "show":
		err = pkiShow(rest, lookup, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, pkiUsage)
		return flag.ErrHelp
	default:
		return fmt.Errorf("%w: gateway pki: unknown command %q: accepted: init, issue, sign, revoke, crl, show", config.ErrInvalid, cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("gateway pki %s: %w", cmd, err)
	}
	return err
}

func pkiInit(args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	s, err := config.ParsePKIInit(args, lookup, stdout)
	if err != nil {
		return err
	}
	kt, err := pki.ParseKeyType(s.KeyType)
	if err != nil {
		return err
	}
	d, err := pki.Init(s.Dir, pki.InitOptions{
		CA:           pki.CAOptions{Name: s.Name, KeyType: kt, TTL: time.Duration(s.TTL)},
		Intermediate: s.Intermediate,
		Force:        s.Force,
		CRLValidity:  time.Duration(s.CRLValidity),
	})
	if err != nil {
		return err
	}
	ca := d.CA()
	if !ca.IsRoot() {
		fmt.Fprintf(stdout, "wrote %s\nwrote %s\n", filepath.Join(s.Dir, pki.FileRootCert), filepath.Join(s.Dir, pki.FileRootKey))
	}
	fmt.Fprintf(stdout, "wrote %s\nwrote %s\nwrote %s\nwrote %s\n",
		filepath.Join(s.Dir, pki.FileCACert), filepath.Join(s.Dir, pki.FileCAKey), d.CRLPath(), filepath.Join(s.Dir, pki.FileIndex))
	fmt.Fprintf(stdout, "trust anchor (--ca): %s\nCA %q sha256 %s expires %s\n",
		d.TrustAnchorPath(), ca.Cert.Subject.CommonName, pki.Fingerprint(ca.Cert), ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func pkiIssue(args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	s, err := config.ParsePKIIssue(args, lookup, stdout)
	if err != nil {
		return err
	}
	d, err := pki.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	certPath, keyPath, err := d.Issue(s.Request(), s.Force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\nwrote %s\n", certPath, keyPath)
	return describeLeaf(stdout, certPath)
}

// describeLeaf prints the serial and fingerprint of the first certificate in
// path.
func describeLeaf(stdout io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	certs, err := pki.ParseCertsPEM(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	c := certs[0]
	fmt.Fprintf(stdout, "serial %s sha256 %s expires %s\n", pki.SerialHex(c), pki.Fingerprint(c), c.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func pkiSign(args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	s, err := config.ParsePKISign(args, lookup, stdout)
	if err != nil {
		return err
	}
	csr, err := os.ReadFile(s.CSR)
	if err != nil {
		return fmt.Errorf("--csr: %w", err)
	}
	d, err := pki.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	certPath, err := d.SignTo(csr, s.Request(), s.Out, s.Force)
	if err != nil {
		if errors.Is(err, pki.ErrCSR) {
			return fmt.Errorf("--csr %s: %w", s.CSR, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", certPath)
	return describeLeaf(stdout, certPath)
}

func pkiRevoke(args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	s, err := config.ParsePKIRevoke(args, lookup, stdout)
	if err != nil {
		return err
	}
	reason := s.ReasonCode()
	d, err := pki.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	var what string
	if s.Cert != "" {
		data, err := os.ReadFile(s.Cert)
		if err != nil {
			return fmt.Errorf("--cert: %w", err)
		}
		certs, err := pki.ParseCertsPEM(data)
		if err != nil {
			return fmt.Errorf("--cert %s: %w", s.Cert, err)
		}
		if err := d.RevokeCert(certs[0], reason); err != nil {
			return fmt.Errorf("--cert %s: %w", s.Cert, err)
		}
		what = fmt.Sprintf("%q serial %s", certs[0].Subject.CommonName, pki.SerialHex(certs[0]))
	} else {
		n, err := d.ResolveSerial(s.Serial)
		if err != nil {
			return fmt.Errorf("--serial: %w", err)
		}
		if err := d.Revoke(n, reason); err != nil {
			return fmt.Errorf("--serial %s: %w", s.Serial, err)
		}
		what = "serial " + pki.FormatSerial(n)
	}
	fmt.Fprintf(stdout, "revoked %s (%s)\nwrote %s\n", what, pki.ReasonName(reason), d.CRLPath())
	return nil
}

func pkiCRL(args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	s, err := config.ParsePKICRL(args, lookup, stdout)
	if err != nil {
		return err
	}
	d, err := pki.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	p, err := d.WriteCRL(time.Duration(s.Validity))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", p)
	return nil
}

func pkiShow(args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	s, err := config.ParsePKIShow(args, lookup, stdout)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(s.File)
	if err != nil {
		return err
	}
	out, err := pki.DescribeData(data)
	if err != nil {
		return fmt.Errorf("%s: %w", s.File, err)
	}
	_, err = io.WriteString(stdout, out)
	return err
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

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

Run "gateway pki COMMAND --help" for the flags of a command.
`

// runPKI runs "gateway pki ARGS...": args start after "pki". It writes what
// it did to stdout and help and flag errors to stderr. It returns
// flag.ErrHelp when help was asked for, and otherwise an error that names
// the flag, what is wrong and the value given.
func runPKI(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, pkiUsage)
		return errors.New("gateway pki: missing command: accepted: init, issue, sign, revoke, crl, show")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "init":
		return pkiInit(rest, stdout, stderr)
	case "issue":
		return pkiIssue(rest, stdout, stderr)
	case "sign":
		return pkiSign(rest, stdout, stderr)
	case "revoke":
		return pkiRevoke(rest, stdout, stderr)
	case "crl":
		return pkiCRL(rest, stdout, stderr)
	case "show":
		return pkiShow(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stderr, pkiUsage)
		return flag.ErrHelp
	}
	return fmt.Errorf("gateway pki: unknown command %q: accepted: init, issue, sign, revoke, crl, show", cmd)
}

// pkiFlagSet returns a FlagSet whose usage prints the description, the
// examples and the flags to stderr.
func pkiFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway pki "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gateway pki %s %s\n\n%s\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and rejects positional arguments beyond want.
func parseFlags(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", fs.Name(), err)
	}
	rest := fs.Args()
	if len(rest) > want {
		return nil, fmt.Errorf("%s: unexpected argument %q (flags go before arguments; see --help)", fs.Name(), rest[want])
	}
	return rest, nil
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// durationFlag holds a validity period in the forms of pki.ParseDuration.
type durationFlag time.Duration

func (d *durationFlag) String() string {
	if *d == 0 {
		return ""
	}
	return time.Duration(*d).String()
}

func (d *durationFlag) Set(v string) error {
	p, err := pki.ParseDuration(v)
	if err != nil {
		return err
	}
	*d = durationFlag(p)
	return nil
}

// needDir checks the required --dir flag.
func needDir(fs *flag.FlagSet, dir string) error {
	if dir == "" {
		return fmt.Errorf("%s: --dir is required: the CA directory (for example --dir ./ca)", fs.Name())
	}
	return nil
}

// kindFlags registers --server and --client.
type kindFlags struct{ server, client bool }

func (k *kindFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&k.server, "server", false, "a server certificate (EKU serverAuth), for a gateway or a backend")
	fs.BoolVar(&k.client, "client", false, "a client certificate (EKU clientAuth), for a tunnel or any mTLS client")
}

func (k *kindFlags) kind(fs *flag.FlagSet) (pki.Kind, error) {
	switch {
	case k.server && k.client:
		return 0, fmt.Errorf("%s: --server and --client are both given: choose one", fs.Name())
	case k.server:
		return pki.Server, nil
	case k.client:
		return pki.Client, nil
	}
	return 0, fmt.Errorf("%s: one of --server or --client is required", fs.Name())
}

func pkiInit(args []string, stdout, stderr io.Writer) error {
	fs := pkiFlagSet("init", "--dir DIR [flags]", `Create a certificate authority in DIR (created 0700 if missing):
  ca.crt, ca.key   the CA that issues certificates
  crl.pem          an empty CRL; index.json  the record of what the CA issues
With --intermediate, a root CA is created too (root.crt, root.key): it signs
ca.crt and is the trust anchor; move root.key offline afterwards.
Give verifiers (--ca of the gateway and the tunnel) root.crt with
--intermediate, ca.crt without.

Examples:
  gateway pki init --dir ./ca
  gateway pki init --dir ./ca --name "corp gateway CA" --key-type ed25519 --intermediate
`, stderr)
	dir := fs.String("dir", "", "CA directory (required)")
	name := fs.String("name", pki.DefaultCAName, "CA common name")
	keyType := fs.String("key-type", string(pki.ECDSAP256), "CA key type: "+pki.KeyTypeNames())
	inter := fs.Bool("intermediate", false, "create a root (root.crt) and an intermediate (ca.crt) that issues")
	var ttl, crlValidity durationFlag
	fs.Var(&ttl, "ttl", "validity of the issuing CA, such as 3650d (default 10 years for a root, 5 for an intermediate)")
	fs.Var(&crlValidity, "crl-validity", "how long each CRL is valid, such as 7d (default 7d)")
	force := fs.Bool("force", false, "replace an existing CA in DIR (certificates it issued stop being trusted)")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := needDir(fs, *dir); err != nil {
		return err
	}
	kt, err := pki.ParseKeyType(*keyType)
	if err != nil {
		return fmt.Errorf("%s: --key-type: %w", fs.Name(), err)
	}
	d, err := pki.Init(*dir, pki.InitOptions{
		CA:           pki.CAOptions{Name: *name, KeyType: kt, TTL: time.Duration(ttl)},
		Intermediate: *inter,
		Force:        *force,
		CRLValidity:  time.Duration(crlValidity),
	})
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	ca := d.CA()
	if !ca.IsRoot() {
		fmt.Fprintf(stdout, "wrote %s\nwrote %s\n", filepath.Join(*dir, pki.FileRootCert), filepath.Join(*dir, pki.FileRootKey))
	}
	fmt.Fprintf(stdout, "wrote %s\nwrote %s\nwrote %s\nwrote %s\n",
		filepath.Join(*dir, pki.FileCACert), filepath.Join(*dir, pki.FileCAKey), d.CRLPath(), filepath.Join(*dir, pki.FileIndex))
	fmt.Fprintf(stdout, "trust anchor (--ca): %s\nCA %q sha256 %s expires %s\n",
		d.TrustAnchorPath(), ca.Cert.Subject.CommonName, pki.Fingerprint(ca.Cert), ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// sanFlags registers the subject flags shared by issue and sign.
type sanFlags struct {
	dns, ip, uri, email, ou, o listFlag
}

func (s *sanFlags) register(fs *flag.FlagSet) {
	fs.Var(&s.dns, "dns", "DNS name SAN, such as gw.example.com or *.gw.example.com (repeatable, comma-separated)")
	fs.Var(&s.ip, "ip", "IP address SAN, such as 10.0.0.5 or ::1 (repeatable, comma-separated)")
	fs.Var(&s.uri, "uri", "URI SAN, absolute, such as spiffe://corp/app/web (repeatable, comma-separated)")
	fs.Var(&s.email, "email", "email SAN, such as ops@example.com (repeatable, comma-separated)")
	fs.Var(&s.ou, "ou", "subject organizational unit (repeatable, comma-separated)")
	fs.Var(&s.o, "o", "subject organization (repeatable, comma-separated)")
}

// request fills the SAN and subject fields of req, naming the flag of any
// bad value.
func (s *sanFlags) request(fs *flag.FlagSet, req *pki.Request) error {
	for _, v := range s.ip {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("%s: --ip %q: not an IP address (accepted: 10.0.0.5, ::1)", fs.Name(), v)
		}
		req.IPs = append(req.IPs, a)
	}
	for _, v := range s.dns {
		if err := pki.CheckDNSName(v); err != nil {
			return fmt.Errorf("%s: --dns: %w", fs.Name(), err)
		}
	}
	for _, v := range s.uri {
		if _, err := pki.ParseURI(v); err != nil {
			return fmt.Errorf("%s: --uri: %w", fs.Name(), err)
		}
	}
	for _, v := range s.email {
		if err := pki.CheckEmail(v); err != nil {
			return fmt.Errorf("%s: --email: %w", fs.Name(), err)
		}
	}
	req.DNS, req.URIs, req.Emails = s.dns, s.uri, s.email
	req.OU, req.O = s.ou, s.o
	return nil
}

func pkiIssue(args []string, stdout, stderr io.Writer) error {
	fs := pkiFlagSet("issue", "--dir DIR --server|--client --name NAME [flags]", `Issue a certificate and a new key, signed by the CA in DIR:
  DIR/NAME.crt   the certificate followed by its chain (give it to --cert)
  DIR/NAME.key   its private key, 0600 (give it to --key)
A server certificate (EKU serverAuth) needs at least one --dns or --ip: the
names clients check. A client certificate (EKU clientAuth) carries the
identity the gateway authorizes: --uri (SPIFFE IDs), --dns, --email, --ou,
or the name (CN). Default validity: 90d for a server, 18h for a client.

Examples:
  gateway pki issue --dir ./ca --server --name gw --dns gw.example.com,localhost --ip 127.0.0.1
  gateway pki issue --dir ./ca --client --name ci --uri spiffe://corp/ci/deploy --ttl 1h
`, stderr)
	dir := fs.String("dir", "", "CA directory (required)")
	var kf kindFlags
	kf.register(fs)
	name := fs.String("name", "", "certificate name: the subject CN and the file stem NAME.crt/NAME.key (required)")
	var sf sanFlags
	sf.register(fs)
	keyType := fs.String("key-type", string(pki.ECDSAP256), "key type: "+pki.KeyTypeNames())
	var ttl durationFlag
	fs.Var(&ttl, "ttl", "validity, such as 90d, 18h or 1d12h (default 90d server, 18h client)")
	force := fs.Bool("force", false, "overwrite NAME.crt and NAME.key if they exist")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := needDir(fs, *dir); err != nil {
		return err
	}
	kind, err := kf.kind(fs)
	if err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("%s: --name is required: the CN and the file stem (for example --name gw)", fs.Name())
	}
	if err := pki.CheckName(*name); err != nil {
		return fmt.Errorf("%s: --name: %w", fs.Name(), err)
	}
	kt, err := pki.ParseKeyType(*keyType)
	if err != nil {
		return fmt.Errorf("%s: --key-type: %w", fs.Name(), err)
	}
	req := pki.Request{Kind: kind, Name: *name, KeyType: kt, TTL: time.Duration(ttl)}
	if err := sf.request(fs, &req); err != nil {
		return err
	}
	if kind == pki.Server && len(req.DNS) == 0 && len(req.IPs) == 0 {
		return fmt.Errorf("%s: --server needs at least one --dns or --ip: the names clients check against the certificate", fs.Name())
	}
	d, err := pki.Open(*dir)
	if err != nil {
		return fmt.Errorf("%s: --dir: %w", fs.Name(), err)
	}
	certPath, keyPath, err := d.Issue(req, *force)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
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

func pkiSign(args []string, stdout, stderr io.Writer) error {
	fs := pkiFlagSet("sign", "--dir DIR --csr FILE --server|--client [flags]", `Sign a certificate signing request with the CA in DIR. Only the CSR's public
key and its SANs (DNS, IP, URI, email) are taken, plus its CN when --name is
not given; any other extension it asks for (CA:TRUE, other key usages) is
ignored. Key usage and validity come from the flags. The certificate,
followed by its chain, goes to --out (default DIR/NAME.crt).

Examples:
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout alice.key -out alice.csr -subj /CN=alice
  gateway pki sign --dir ./ca --csr alice.csr --client --uri spiffe://corp/user/alice
`, stderr)
	dir := fs.String("dir", "", "CA directory (required)")
	csrPath := fs.String("csr", "", "CSR file, PEM or DER (required)")
	var kf kindFlags
	kf.register(fs)
	name := fs.String("name", "", "subject CN and file stem (default: the CSR's CN)")
	var sf sanFlags
	sf.register(fs)
	var ttl durationFlag
	fs.Var(&ttl, "ttl", "validity, such as 90d, 18h or 1d12h (default 90d server, 18h client)")
	out := fs.String("out", "", "certificate output file (default DIR/NAME.crt)")
	force := fs.Bool("force", false, "overwrite the output file if it exists")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := needDir(fs, *dir); err != nil {
		return err
	}
	if *csrPath == "" {
		return fmt.Errorf("%s: --csr is required: the certificate signing request file", fs.Name())
	}
	kind, err := kf.kind(fs)
	if err != nil {
		return err
	}
	req := pki.Request{Kind: kind, Name: *name, TTL: time.Duration(ttl)}
	if err := sf.request(fs, &req); err != nil {
		return err
	}
	csr, err := os.ReadFile(*csrPath)
	if err != nil {
		return fmt.Errorf("%s: --csr: %w", fs.Name(), err)
	}
	d, err := pki.Open(*dir)
	if err != nil {
		return fmt.Errorf("%s: --dir: %w", fs.Name(), err)
	}
	certPath, err := d.SignTo(csr, req, *out, *force)
	if err != nil {
		if errors.Is(err, pki.ErrCSR) {
			return fmt.Errorf("%s: --csr %s: %w", fs.Name(), *csrPath, err)
		}
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", certPath)
	return describeLeaf(stdout, certPath)
}

func pkiRevoke(args []string, stdout, stderr io.Writer) error {
	fs := pkiFlagSet("revoke", "--dir DIR --serial SERIAL|--cert FILE [--reason REASON]", `Revoke a certificate issued by the CA in DIR and rewrite DIR/crl.pem. Gateways
given --crl DIR/crl.pem refuse it after their next reload (SIGHUP).
The serial is printed by issue, sign and show: hex (as openssl prints it,
optionally with 0x or colons) or decimal.

Examples:
  gateway pki revoke --dir ./ca --cert ./ca/alice.crt --reason keyCompromise
  gateway pki revoke --dir ./ca --serial 5f3a0c...
`, stderr)
	dir := fs.String("dir", "", "CA directory (required)")
	serial := fs.String("serial", "", "serial number to revoke, hex or decimal")
	certPath := fs.String("cert", "", "certificate file to revoke (instead of --serial)")
	reasonFlag := fs.String("reason", "unspecified", "revocation reason: "+strings.Join(pki.ReasonNames(), ", "))
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := needDir(fs, *dir); err != nil {
		return err
	}
	reason, err := pki.ParseReason(*reasonFlag)
	if err != nil {
		return fmt.Errorf("%s: --reason: %w", fs.Name(), err)
	}
	if (*serial == "") == (*certPath == "") {
		return fmt.Errorf("%s: give exactly one of --serial or --cert", fs.Name())
	}
	d, err := pki.Open(*dir)
	if err != nil {
		return fmt.Errorf("%s: --dir: %w", fs.Name(), err)
	}
	var what string
	if *certPath != "" {
		data, err := os.ReadFile(*certPath)
		if err != nil {
			return fmt.Errorf("%s: --cert: %w", fs.Name(), err)
		}
		certs, err := pki.ParseCertsPEM(data)
		if err != nil {
			return fmt.Errorf("%s: --cert %s: %w", fs.Name(), *certPath, err)
		}
		if err := d.RevokeCert(certs[0], reason); err != nil {
			return fmt.Errorf("%s: --cert %s: %w", fs.Name(), *certPath, err)
		}
		what = fmt.Sprintf("%q serial %s", certs[0].Subject.CommonName, pki.SerialHex(certs[0]))
	} else {
		n, err := d.ResolveSerial(*serial)
		if err != nil {
			return fmt.Errorf("%s: --serial: %w", fs.Name(), err)
		}
		if err := d.Revoke(n, reason); err != nil {
			return fmt.Errorf("%s: --serial %s: %w", fs.Name(), *serial, err)
		}
		what = "serial " + pki.FormatSerial(n)
	}
	fmt.Fprintf(stdout, "revoked %s (%s)\nwrote %s\n", what, pki.ReasonName(reason), d.CRLPath())
	return nil
}

func pkiCRL(args []string, stdout, stderr io.Writer) error {
	fs := pkiFlagSet("crl", "--dir DIR [--validity 7d]", `Rewrite DIR/crl.pem from the CA's index, with the next CRL number. A CRL
expires: run this (from cron, for example) well before --validity elapses, then
reload the gateways (SIGHUP).

Example:
  gateway pki crl --dir ./ca --validity 7d
`, stderr)
	dir := fs.String("dir", "", "CA directory (required)")
	var validity durationFlag
	fs.Var(&validity, "validity", "how long the CRL is valid, such as 7d or 36h (default: as given to init, 7d)")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := needDir(fs, *dir); err != nil {
		return err
	}
	d, err := pki.Open(*dir)
	if err != nil {
		return fmt.Errorf("%s: --dir: %w", fs.Name(), err)
	}
	p, err := d.WriteCRL(time.Duration(validity))
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", p)
	return nil
}

func pkiShow(args []string, stdout, stderr io.Writer) error {
	fs := pkiFlagSet("show", "FILE", `Describe each certificate in FILE (PEM, one or several, or DER), or the CRL
in FILE (PEM or DER): subject, SANs, serial, SHA-256 fingerprint, validity,
issuer, key usages; for a CRL its number, dates and revoked serials.

Examples:
  gateway pki show ./ca/gw.crt
  gateway pki show ./ca/crl.pem
`, stderr)
	rest, err := parseFlags(fs, args, 1)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return fmt.Errorf("%s: missing FILE: the certificate or CRL file to describe", fs.Name())
	}
	data, err := os.ReadFile(rest[0])
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	out, err := pki.DescribeData(data)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", fs.Name(), rest[0], err)
	}
	_, err = io.WriteString(stdout, out)
	return err
}

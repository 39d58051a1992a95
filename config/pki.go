package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/pki"
)

// The "gateway pki" commands read their variables with the gateway's prefix,
// GATEWAY_: --dir is GATEWAY_DIR for every one of them.

// Validity is a validity period of the pki commands (--ttl, --validity,
// --crl-validity): a Go duration or a whole number of days, or a sum of
// both ("90d", "18h", "1d12h"), read with [pki.ParseDuration]. 0 means the
// command's default.
type Validity time.Duration

// UnmarshalText parses text with pki.ParseDuration.
func (v *Validity) UnmarshalText(text []byte) error {
	d, err := pki.ParseDuration(string(text))
	if err != nil {
		return err
	}
	*v = Validity(d)
	return nil
}

// MarshalText returns the period as a Go duration, or "" for 0.
func (v Validity) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// String returns the period as a Go duration ("2160h0m0s"), or "" for 0.
func (v Validity) String() string {
	if v == 0 {
		return ""
	}
	return time.Duration(v).String()
}

// PKIDir is the CA directory setting shared by the pki commands.
type PKIDir struct {
	// Dir is the CA directory. Required.
	Dir string `flag:"dir" meta:"DIR" help:"the CA directory (required)" forms:"a directory made by gateway pki init, e.g. --dir ./ca"`
}

// PKIKind selects the kind of certificate: exactly one of Server and
// Client must be set.
type PKIKind struct {
	Server bool `flag:"server" help:"a server certificate (EKU serverAuth), for a gateway or a backend"`
	Client bool `flag:"client" help:"a client certificate (EKU clientAuth), for a tunnel or any mTLS client"`
}

// Kind returns the kind chosen; Validate has checked there is one.
func (k PKIKind) Kind() pki.Kind {
	if k.Server {
		return pki.Server
	}
	return pki.Client
}

// PKISubject holds the subject and SAN settings of issue and sign. Each is
// repeatable, and a value may list several, comma separated.
type PKISubject struct {
	DNS   []string `flag:"dns" sep:"," meta:"NAME" help:"DNS name SANs, comma separated, such as gw.example.com or *.gw.example.com" forms:"a DNS name such as gw.example.com or *.gw.example.com"`
	IPs   []string `flag:"ip" sep:"," meta:"ADDR" help:"IP address SANs, comma separated, such as 10.0.0.5 or ::1" forms:"an IP address without zone, such as 10.0.0.5 or ::1"`
	URIs  []string `flag:"uri" sep:"," meta:"URI" help:"URI SANs, absolute, comma separated, such as spiffe://corp/app/web" forms:"an absolute URI such as spiffe://corp/app/web"`
	Email []string `flag:"email" sep:"," meta:"ADDR" help:"email SANs, comma separated, such as ops@example.com" forms:"a bare email address such as ops@example.com"`
	OU    []string `flag:"ou" sep:"," meta:"UNIT" help:"subject organizational units, comma separated"`
	O     []string `flag:"o" sep:"," meta:"ORG" help:"subject organizations, comma separated"`
}

// PKIInit holds the settings of "gateway pki init".
type PKIInit struct {
	PKIDir
	// Name is the CA's common name.
	Name string `flag:"name" meta:"CN" default:"portcullis CA" help:"the CA's common name"`
	// KeyType is one of pki.KeyTypeNames.
	KeyType string `flag:"key-type" meta:"TYPE" default:"ecdsa-p256" help:"CA key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519"`
	// Intermediate asks for a root and an issuing intermediate.
	Intermediate bool `flag:"intermediate" help:"create a root (root.crt) and an intermediate (ca.crt) that issues"`
	// TTL is the issuing CA's validity; 0 means 10 years for a root, 5
	// for an intermediate.
	TTL Validity `flag:"ttl" meta:"DURATION" help:"validity of the issuing CA from now, such as 3650d (default 10 years for a root, 5 for an intermediate)" forms:"a validity such as 3650d, 90d or 36h"`
	// CRLValidity is how long each CRL is valid; 0 means 7 days.
	CRLValidity Validity `flag:"crl-validity" meta:"DURATION" help:"how long each CRL is valid, such as 7d (default 7d)" forms:"a validity such as 7d or 36h"`
	// Force replaces an existing CA.
	Force bool `flag:"force" help:"replace an existing CA in DIR (certificates it issued stop being trusted)"`
}

// PKIIssue holds the settings of "gateway pki issue".
type PKIIssue struct {
	PKIDir
	PKIKind
	// Name is the subject CN and the file stem of NAME.crt and NAME.key.
	Name string `flag:"name" meta:"NAME" help:"certificate name: the subject CN and the file stem NAME.crt/NAME.key (required)" forms:"1 to 64 letters, digits, '.', '_' or '-', e.g. --name gw"`
	PKISubject
	// KeyType is one of pki.KeyTypeNames.
	KeyType string `flag:"key-type" meta:"TYPE" default:"ecdsa-p256" help:"key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519"`
	// TTL is the validity from now; 0 means 90 days for a server, 18
	// hours for a client. At least pki.MinTTL.
	TTL Validity `flag:"ttl" meta:"DURATION" help:"validity from now, such as 90d, 18h or 1d12h; at least 1m (default 90d server, 18h client)" forms:"a validity of 1m or more, such as 90d, 18h or 1d12h"`
	// Force overwrites NAME.crt and NAME.key.
	Force bool `flag:"force" help:"overwrite NAME.crt and NAME.key if they exist"`
}

// PKISign holds the settings of "gateway pki sign".
type PKISign struct {
	PKIDir
	// CSR is the certificate signing request file, PEM or DER. Required.
	CSR string `flag:"csr" meta:"FILE" help:"the certificate signing request, PEM or DER (required)" forms:"a readable CSR file, e.g. --csr alice.csr"`
	PKIKind
	// Name is the subject CN and file stem; empty means the CSR's CN.
	Name string `flag:"name" meta:"NAME" help:"subject CN and file stem (default: the CSR's CN)"`
	PKISubject
	// TTL is as for PKIIssue.
	TTL Validity `flag:"ttl" meta:"DURATION" help:"validity from now, such as 90d, 18h or 1d12h; at least 1m (default 90d server, 18h client)" forms:"a validity of 1m or more, such as 90d, 18h or 1d12h"`
	// Out is the certificate file; empty means DIR/NAME.crt.
	Out string `flag:"out" meta:"FILE" help:"certificate output file (default DIR/NAME.crt)"`
	// Force overwrites Out.
	Force bool `flag:"force" help:"overwrite the output file if it exists"`
}

// PKIRevoke holds the settings of "gateway pki revoke": exactly one of
// Serial and Cert.
type PKIRevoke struct {
	PKIDir
	// Serial is the serial to revoke, hex or decimal (pki.Dir.ResolveSerial).
	Serial string `flag:"serial" meta:"SERIAL" help:"serial number to revoke, hex as issue and show print it (5F3A0C, 0x5f3a0c, 5F:3A:0C) or decimal" forms:"a serial number in hex or decimal, e.g. 5F3A0C"`
	// Cert is a certificate file to revoke.
	Cert string `flag:"cert" meta:"FILE" help:"certificate file to revoke (instead of --serial)" forms:"a readable certificate file, e.g. --cert ./ca/alice.crt"`
	// Reason is an RFC 5280 reason name or code (pki.ParseReason).
	Reason string `flag:"reason" meta:"REASON" default:"unspecified" help:"revocation reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or aACompromise"`
}

// PKICRL holds the settings of "gateway pki crl".
type PKICRL struct {
	PKIDir
	// Validity is how long the CRL is valid; 0 means as given to init.
	Validity Validity `flag:"validity" meta:"DURATION" help:"how long the CRL is valid, such as 7d or 36h (default: as given to init, 7d)" forms:"a validity such as 7d or 36h"`
}

// PKIShow holds the settings of "gateway pki show": its one argument.
type PKIShow struct {
	// File is the certificate or CRL file to describe (the argument).
	File string `flag:"-"`
}

// Doc describes "gateway pki init" for --help.
func (*PKIInit) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway pki init --dir DIR [flags]",
		Intro: `Create a certificate authority in DIR (created 0700 if missing):
  ca.crt, ca.key   the CA that issues certificates
  crl.pem          an empty CRL; index.json  the record of what the CA issues
With --intermediate, a root CA is created too (root.crt, root.key): it signs
ca.crt and is the trust anchor; move root.key offline afterwards.
Give verifiers (--ca of the gateway and the tunnel) root.crt with
--intermediate, ca.crt without.`,
		Examples: []string{
			"gateway pki init --dir ./ca",
			`gateway pki init --dir ./ca --name "corp gateway CA" --key-type ed25519 --intermediate`,
			"GATEWAY_DIR=./ca gateway pki init",
		},
	}
}

// Doc describes "gateway pki issue" for --help.
func (*PKIIssue) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway pki issue --dir DIR --server|--client --name NAME [flags]",
		Intro: `Issue a certificate and a new key, signed by the CA in DIR:
  DIR/NAME.crt   the certificate followed by its chain (give it to --cert)
  DIR/NAME.key   its private key, 0600 (give it to --key)
A server certificate (EKU serverAuth) needs at least one --dns or --ip: the
names clients check. A client certificate (EKU clientAuth) carries the
identity the gateway authorizes: --uri (SPIFFE IDs), --dns, --email, --ou,
or the name (CN). Validity runs from now for --ttl (default 90d for a server,
18h for a client); NotBefore lies 5 minutes earlier, for clocks that are behind.`,
		Examples: []string{
			"gateway pki issue --dir ./ca --server --name gw --dns gw.example.com,localhost --ip 127.0.0.1",
			"gateway pki issue --dir ./ca --client --name ci --uri spiffe://corp/ci/deploy --ttl 1h",
		},
	}
}

// Doc describes "gateway pki sign" for --help.
func (*PKISign) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway pki sign --dir DIR --csr FILE --server|--client [flags]",
		Intro: `Sign a certificate signing request with the CA in DIR. Only the CSR's public
key and its SANs (DNS, IP, URI, email) are taken, plus its CN when --name is
not given; any other extension it asks for (CA:TRUE, other key usages) is
ignored. Key usage and validity come from the flags. The certificate,
followed by its chain, goes to --out (default DIR/NAME.crt).`,
		Examples: []string{
			"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\",
			"    -keyout alice.key -out alice.csr -subj /CN=alice",
			"gateway pki sign --dir ./ca --csr alice.csr --client --uri spiffe://corp/user/alice",
		},
	}
}

// Doc describes "gateway pki revoke" for --help.
func (*PKIRevoke) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway pki revoke --dir DIR --serial SERIAL|--cert FILE [--reason REASON]",
		Intro: `Revoke a certificate issued by the CA in DIR and rewrite DIR/crl.pem. Gateways
given --crl DIR/crl.pem refuse it after their next reload (SIGHUP).
The serial is printed by issue, sign and show: hex (as openssl prints it,
optionally with 0x or colons) or decimal. Note that GATEWAY_CERT is also the
variable of "gateway run --cert": with it set, give --cert, not --serial.`,
		Examples: []string{
			"gateway pki revoke --dir ./ca --cert ./ca/alice.crt --reason keyCompromise",
			"gateway pki revoke --dir ./ca --serial 5F3A0C...",
		},
	}
}

// Doc describes "gateway pki crl" for --help.
func (*PKICRL) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway pki crl --dir DIR [--validity 7d]",
		Intro: `Rewrite DIR/crl.pem from the CA's index, with the next CRL number. A CRL
expires: run this (from cron, for example) well before --validity elapses, then
reload the gateways (SIGHUP).`,
		Examples: []string{"gateway pki crl --dir ./ca --validity 7d"},
	}
}

// Doc describes "gateway pki show" for --help.
func (*PKIShow) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway pki show FILE",
		Intro: `Describe each certificate in FILE (PEM, one or several, or DER), or the CRL
in FILE (PEM or DER): subject, SANs, serial, SHA-256 fingerprint, validity,
issuer, key usages; for a CRL its number, dates and revoked serials.`,
		Examples: []string{"gateway pki show ./ca/gw.crt", "gateway pki show ./ca/crl.pem"},
	}
}

// pkiSettings lists the settings of each pki command by Go field name.
var pkiSettings = sync.OnceValue(func() map[string]map[string]*settings.Setting {
	return map[string]map[string]*settings.Setting{
		"init":   settings.Index[PKIInit](GatewayPrefix),
		"issue":  settings.Index[PKIIssue](GatewayPrefix),
		"sign":   settings.Index[PKISign](GatewayPrefix),
		"revoke": settings.Index[PKIRevoke](GatewayPrefix),
		"crl":    settings.Index[PKICRL](GatewayPrefix),
	}
})

// PKICommands returns a new, empty settings struct for each "gateway pki"
// command, by name. Every struct is one that its ParsePKIXxx function
// fills; together they list every GATEWAY_ variable the pki commands read.
func PKICommands() map[string]any {
	return map[string]any{
		"init": &PKIInit{}, "issue": &PKIIssue{}, "sign": &PKISign{},
		"revoke": &PKIRevoke{}, "crl": &PKICRL{}, "show": &PKIShow{},
	}
}

// pkiCommand is a pki settings struct.
type pkiCommand interface {
	Validate() error
}

// parsePKI parses the settings of "gateway pki NAME" into dst and
// validates them; the command takes no positional argument.
func parsePKI(name string, dst pkiCommand, args []string, lookup func(string) (string, bool), usage io.Writer) error {
	cmd := "gateway pki " + name
	rest, err := settings.Parse(cmd, GatewayPrefix, dst, args, lookup, usage)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return settings.Invalidf("%s: unexpected argument %s: it takes flags only (see --help)", cmd, settings.Quote(rest[0]))
	}
	return dst.Validate()
}

// ParsePKIInit parses and validates the settings of "gateway pki init"
// from the environment (lookup; nil means os.LookupEnv) and args. It
// returns [flag.ErrHelp] after writing the help text to usage when args ask
// for it, and errors wrapping [ErrInvalid] for bad settings.
func ParsePKIInit(args []string, lookup func(string) (string, bool), usage io.Writer) (*PKIInit, error) {
	s := new(PKIInit)
	if err := parsePKI("init", s, args, lookup, usage); err != nil {
		return nil, err
	}
	return s, nil
}

// ParsePKIIssue is ParsePKIInit for "gateway pki issue".
func ParsePKIIssue(args []string, lookup func(string) (string, bool), usage io.Writer) (*PKIIssue, error) {
	s := new(PKIIssue)
	if err := parsePKI("issue", s, args, lookup, usage); err != nil {
		return nil, err
	}
	return s, nil
}

// ParsePKISign is ParsePKIInit for "gateway pki sign".
func ParsePKISign(args []string, lookup func(string) (string, bool), usage io.Writer) (*PKISign, error) {
	s := new(PKISign)
	if err := parsePKI("sign", s, args, lookup, usage); err != nil {
		return nil, err
	}
	return s, nil
}

// ParsePKIRevoke is ParsePKIInit for "gateway pki revoke".
func ParsePKIRevoke(args []string, lookup func(string) (string, bool), usage io.Writer) (*PKIRevoke, error) {
	s := new(PKIRevoke)
	if err := parsePKI("revoke", s, args, lookup, usage); err != nil {
		return nil, err
	}
	return s, nil
}

// ParsePKICRL is ParsePKIInit for "gateway pki crl".
func ParsePKICRL(args []string, lookup func(string) (string, bool), usage io.Writer) (*PKICRL, error) {
	s := new(PKICRL)
	if err := parsePKI("crl", s, args, lookup, usage); err != nil {
		return nil, err
	}
	return s, nil
}

// ParsePKIShow parses "gateway pki show FILE": no flags but --help, and
// exactly one argument.
func ParsePKIShow(args []string, lookup func(string) (string, bool), usage io.Writer) (*PKIShow, error) {
	s := new(PKIShow)
	rest, err := settings.Parse("gateway pki show", GatewayPrefix, s, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	switch {
	case len(rest) == 0:
		return nil, &settings.Error{Flag: "argument FILE", Problem: "missing FILE: the certificate or CRL file to describe",
			Want: "one file, e.g. gateway pki show ./ca/gw.crt"}
	case len(rest) > 1:
		return nil, &settings.Error{Flag: "argument FILE", Problem: "unexpected argument " + settings.Quote(rest[1]) + ": show takes one FILE",
			Value: strings.Join(rest, " "), Want: "one file, e.g. gateway pki show ./ca/gw.crt"}
	}
	s.File = rest[0]
	return s, s.Validate()
}

// Validate checks the settings of "gateway pki init".
func (s *PKIInit) Validate() error {
	set := pkiSettings()["init"]
	var errs []error
	add := func(e *settings.Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	add(s.PKIDir.check(set))
	add(checkKeyType(set["KeyType"], s.KeyType))
	add(checkTTL(set["TTL"], s.TTL))
	return errors.Join(errs...)
}

// Validate checks the settings of "gateway pki issue".
func (s *PKIIssue) Validate() error {
	set := pkiSettings()["issue"]
	var errs []error
	add := func(e *settings.Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	add(s.PKIDir.check(set))
	if err := s.PKIKind.check(); err != nil {
		errs = append(errs, err)
	}
	if s.Name == "" {
		add(set["Name"].Fail("", "required: the CN and the file stem", nil))
	} else if err := pki.CheckName(s.Name); err != nil {
		add(set["Name"].Fail(s.Name, "not a certificate name", err))
	}
	subjErrs := s.PKISubject.check(set)
	errs = append(errs, subjErrs...)
	if s.Server && len(subjErrs) == 0 && len(s.DNS) == 0 && len(s.IPs) == 0 {
		errs = append(errs, settings.Invalidf("--server needs at least one --dns or --ip: the names clients check against the certificate"))
	}
	add(checkKeyType(set["KeyType"], s.KeyType))
	add(checkTTL(set["TTL"], s.TTL))
	return errors.Join(errs...)
}

// Request returns the pki request the settings describe.
func (s *PKIIssue) Request() pki.Request {
	kt, _ := pki.ParseKeyType(s.KeyType) // checked by Validate
	req := pki.Request{Kind: s.Kind(), Name: s.Name, KeyType: kt, TTL: time.Duration(s.TTL)}
	s.PKISubject.fill(&req)
	return req
}

// Validate checks the settings of "gateway pki sign".
func (s *PKISign) Validate() error {
	set := pkiSettings()["sign"]
	var errs []error
	add := func(e *settings.Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	add(s.PKIDir.check(set))
	if s.CSR == "" {
		add(set["CSR"].Fail("", "required: the certificate signing request file", nil))
	}
	if err := s.PKIKind.check(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, s.PKISubject.check(set)...)
	add(checkTTL(set["TTL"], s.TTL))
	return errors.Join(errs...)
}

// Request returns the pki request the settings describe.
func (s *PKISign) Request() pki.Request {
	req := pki.Request{Kind: s.Kind(), Name: s.Name, TTL: time.Duration(s.TTL)}
	s.PKISubject.fill(&req)
	return req
}

// Validate checks the settings of "gateway pki revoke".
func (s *PKIRevoke) Validate() error {
	set := pkiSettings()["revoke"]
	var errs []error
	if e := s.PKIDir.check(set); e != nil {
		errs = append(errs, e)
	}
	if _, err := pki.ParseReason(s.Reason); err != nil {
		errs = append(errs, set["Reason"].Fail(s.Reason, "unknown revocation reason", err))
	}
	if (s.Serial == "") == (s.Cert == "") {
		errs = append(errs, settings.Invalidf("give exactly one of --serial or --cert (%s, which is also the variable of gateway run --cert, counts)",
			set["Cert"].Env()))
	}
	return errors.Join(errs...)
}

// ReasonCode returns the reason as an RFC 5280 code; Validate has checked it.
func (s *PKIRevoke) ReasonCode() int {
	code, _ := pki.ParseReason(s.Reason)
	return code
}

// Validate checks the settings of "gateway pki crl".
func (s *PKICRL) Validate() error {
	if e := s.PKIDir.check(pkiSettings()["crl"]); e != nil {
		return e
	}
	return nil
}

// Validate checks the settings of "gateway pki show".
func (s *PKIShow) Validate() error {
	if err := settings.CheckFile(s.File); err != nil {
		return &settings.Error{Flag: "argument FILE", Problem: "cannot read the file", Value: s.File, Err: err,
			Want: "a certificate or CRL file, PEM or DER"}
	}
	return nil
}

func (d PKIDir) check(set map[string]*settings.Setting) *settings.Error {
	if d.Dir == "" {
		return set["Dir"].Fail("", "required: the CA directory", nil)
	}
	return nil
}

func (k PKIKind) check() error {
	switch {
	case k.Server && k.Client:
		return settings.Invalidf("--server and --client are both given: choose one")
	case !k.Server && !k.Client:
		return settings.Invalidf("one of --server or --client is required")
	}
	return nil
}

// check reports each bad SAN, naming its flag.
func (s PKISubject) check(set map[string]*settings.Setting) []error {
	var errs []error
	for _, v := range s.IPs {
		if a, err := netip.ParseAddr(v); err != nil || a.Zone() != "" {
			errs = append(errs, set["IPs"].Fail(v, "not an IP address", nil))
		}
	}
	for _, v := range s.DNS {
		if err := pki.CheckDNSName(v); err != nil {
			errs = append(errs, set["DNS"].Fail(v, "not a DNS name", err))
		}
	}
	for _, v := range s.URIs {
		if _, err := pki.ParseURI(v); err != nil {
			errs = append(errs, set["URIs"].Fail(v, "not a URI", err))
		}
	}
	for _, v := range s.Email {
		if err := pki.CheckEmail(v); err != nil {
			errs = append(errs, set["Email"].Fail(v, "not an email address", err))
		}
	}
	return errs
}

// fill copies the SANs and subject fields into req; check has passed.
func (s PKISubject) fill(req *pki.Request) {
	for _, v := range s.IPs {
		req.IPs = append(req.IPs, netip.MustParseAddr(v))
	}
	req.DNS, req.URIs, req.Emails = s.DNS, s.URIs, s.Email
	req.OU, req.O = s.OU, s.O
}

func checkKeyType(s *settings.Setting, v string) *settings.Error {
	if _, err := pki.ParseKeyType(v); err != nil {
		e := s.Fail(v, "unknown key type", err)
		e.Want = pki.KeyTypeNames()
		return e
	}
	return nil
}

// checkTTL refuses a validity below pki.MinTTL: the certificate would be
// expired, or nearly, by the time it is deployed. 0 means the default.
func checkTTL(s *settings.Setting, v Validity) *settings.Error {
	if v == 0 || time.Duration(v) >= pki.MinTTL {
		return nil
	}
	return s.Fail(time.Duration(v).String(), fmt.Sprintf("must be at least %s: validity runs from now, and a shorter one ends before the certificate can be used", pki.MinTTL), nil)
}

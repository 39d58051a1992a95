package pki

import (
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the role a leaf certificate is issued for. It decides the
// extended key usage: serverAuth only, or clientAuth only.
type Kind int

// The kinds of leaf certificate.
const (
	Server Kind = iota + 1
	Client
)

// String returns "server", "client", or "Kind(N)".
func (k Kind) String() string {
	switch k {
	case Server:
		return "server"
	case Client:
		return "client"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind parses "server" or "client" (any case).
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "server":
		return Server, nil
	case "client":
		return Client, nil
	}
	return 0, fmt.Errorf("%w: kind %q: accepted: server, client", ErrInvalidRequest, s)
}

// Request describes a leaf certificate to issue.
type Request struct {
	// Kind is Server or Client; required.
	Kind Kind
	// Name is the subject common name, and the file stem in a Dir. Empty
	// means the first SAN (DNS, then IP, URI, email); Dir requires it.
	Name string
	// Subject alternative names. A Server needs at least one DNS name or IP
	// address. DNS names are host names, optionally with a leading "*."
	// wildcard label; URIs are absolute (spiffe://corp/app/web); emails are
	// bare addresses (ops@example.com).
	DNS    []string
	IPs    []netip.Addr
	URIs   []string
	Emails []string
	// OU and O are the subject's organizational units and organizations.
	OU, O []string
	// KeyType is the type of the key Issue generates; "" means ECDSAP256.
	// SignCSR ignores it.
	KeyType KeyType
	// TTL is how long the certificate stays valid, counted from now (or
	// from an explicit NotBefore); 0 means DefaultClientTTL (18h) for a
	// Client and DefaultServerTTL (90 days) for a Server. A TTL below
	// MinTTL is refused.
	TTL time.Duration
	// NotBefore and NotAfter bound validity. A zero NotBefore means five
	// minutes ago, to absorb clock skew; the backdate does not shorten the
	// TTL. A zero NotAfter means now+TTL (NotBefore+TTL when NotBefore is
	// set), capped at the CA's
	// own NotAfter. Set them explicitly to make expired or not-yet-valid
	// certificates; an explicit NotAfter past the CA's is an error.
	NotBefore, NotAfter time.Time
}

// Issued is a leaf certificate with its key and the chain it is presented
// with. It is safe for concurrent use once built.
type Issued struct {
	// Cert is the leaf certificate.
	Cert *x509.Certificate
	// Key is the leaf's private key.
	Key crypto.Signer
	// Chain holds the intermediates between Cert and the root: the leaf and
	// the root are excluded, so it is empty for a leaf issued by a root.
	Chain []*x509.Certificate
}

// CertPEM returns the leaf followed by Chain, PEM-encoded: the file given to
// --cert.
func (i *Issued) CertPEM() []byte {
	return EncodeCertsPEM(append([]*x509.Certificate{i.Cert}, i.Chain...)...)
}

// KeyPEM returns the private key as a PKCS#8 "PRIVATE KEY" PEM block.
func (i *Issued) KeyPEM() ([]byte, error) { return EncodeKeyPEM(i.Key) }

// TLSCertificate returns the leaf, its chain and its key as a
// tls.Certificate with Leaf set.
func (i *Issued) TLSCertificate() (tls.Certificate, error) {
	if i.Cert == nil || i.Key == nil {
		return tls.Certificate{}, fmt.Errorf("%w: issued certificate without certificate or key", ErrInvalidRequest)
	}
	raw := make([][]byte, 0, 1+len(i.Chain))
	raw = append(raw, i.Cert.Raw)
	for _, c := range i.Chain {
		raw = append(raw, c.Raw)
	}
	return tls.Certificate{Certificate: raw, PrivateKey: i.Key, Leaf: i.Cert}, nil
}

// Issue creates a new key of req.KeyType and a leaf certificate for it,
// signed by ca. It validates req first (see Request); errors wrap
// ErrInvalidRequest or ErrKeyType.
func (ca *CA) Issue(req Request) (*Issued, error) {
	tmpl, err := ca.leafTemplate(req)
	if err != nil {
		return nil, err
	}
	key, err := GenerateKey(req.KeyType)
	if err != nil {
		return nil, err
	}
	cert, err := ca.signLeaf(tmpl, req.Kind, key.Public())
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, Key: key, Chain: ca.issuedChain()}, nil
}

// SignCSR issues a leaf certificate for the public key in csr. It checks the
// CSR's self-signature and takes from the CSR only its public key and its
// subject alternative names (DNS, IP, URI, email), added to those in req,
// and its common name when req.Name is empty. Every other field or extension
// the CSR asks for (CA:TRUE, key usages, other EKUs, subject attributes) is
// ignored: kind, key usage, subject and validity come from req.
// The returned certificate's chain is the same as Issue's.
func (ca *CA) SignCSR(csr *x509.CertificateRequest, req Request) (*x509.Certificate, error) {
	if csr == nil {
		return nil, fmt.Errorf("%w: nil CSR", ErrCSR)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature of CSR for %q does not verify: %w", ErrCSR, csr.Subject.CommonName, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("CSR public key: %w", err)
	}
	r := req
	if r.Name == "" {
		r.Name = csr.Subject.CommonName
	}
	r.DNS = mergeStrings(req.DNS, csr.DNSNames)
	r.Emails = mergeStrings(req.Emails, csr.EmailAddresses)
	csrURIs := make([]string, len(csr.URIs))
	for i, u := range csr.URIs {
		csrURIs[i] = u.String()
	}
	r.URIs = mergeStrings(req.URIs, csrURIs)
	r.IPs = slices.Clone(req.IPs)
	for _, ip := range csr.IPAddresses {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return nil, fmt.Errorf("%w: CSR IP address %v is malformed", ErrCSR, ip)
		}
		a = a.Unmap()
		if !slices.Contains(r.IPs, a) {
			r.IPs = append(r.IPs, a)
		}
	}
	tmpl, err := ca.leafTemplate(r)
	if err != nil {
		return nil, err
	}
	return ca.signLeaf(tmpl, r.Kind, csr.PublicKey)
}

func mergeStrings(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (ca *CA) signLeaf(tmpl *x509.Certificate, kind Kind, pub crypto.PublicKey) (*x509.Certificate, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	tmpl.SubjectKeyId = skid
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if _, isRSA := pub.(*rsa.PublicKey); isRSA && kind == Server {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	return sign(tmpl, ca.Cert, pub, ca.Key)
}

// leafTemplate validates req and builds the certificate template, without
// key-dependent fields.
func (ca *CA) leafTemplate(req Request) (*x509.Certificate, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, fmt.Errorf("%w: CA without certificate or key", ErrInvalidRequest)
	}
	tmpl := &x509.Certificate{BasicConstraintsValid: true}
	var defTTL time.Duration
	switch req.Kind {
	case Server:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		defTTL = DefaultServerTTL
	case Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		defTTL = DefaultClientTTL
	default:
		return nil, fmt.Errorf("%w: Kind %d: accepted: pki.Server, pki.Client", ErrInvalidRequest, int(req.Kind))
	}
	for _, d := range req.DNS {
		if err := CheckDNSName(d); err != nil {
			return nil, err
		}
		tmpl.DNSNames = append(tmpl.DNSNames, d)
	}
	for _, ip := range req.IPs {
		if !ip.IsValid() {
			return nil, fmt.Errorf("%w: IP address is the zero netip.Addr: give a valid IPv4 or IPv6 address", ErrInvalidRequest)
		}
		if ip.Zone() != "" {
			return nil, fmt.Errorf("%w: IP address %s has a zone: certificates hold addresses without zones", ErrInvalidRequest, ip)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.Unmap().AsSlice()))
	}
	for _, s := range req.URIs {
		u, err := ParseURI(s)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	for _, e := range req.Emails {
		if err := CheckEmail(e); err != nil {
			return nil, err
		}
		tmpl.EmailAddresses = append(tmpl.EmailAddresses, e)
	}
	if req.Kind == Server && len(req.DNS) == 0 && len(req.IPs) == 0 {
		return nil, fmt.Errorf("%w: a server certificate needs at least one DNS name or IP address (clients check the server name against them); request %q has none", ErrInvalidRequest, req.Name)
	}
	name := req.Name
	if name == "" {
		switch {
		case len(req.DNS) > 0:
			name = req.DNS[0]
		case len(req.IPs) > 0:
			name = req.IPs[0].String()
		case len(req.URIs) > 0:
			name = req.URIs[0]
		case len(req.Emails) > 0:
			name = req.Emails[0]
		default:
			return nil, fmt.Errorf("%w: Name is empty and there is no SAN to name the certificate after: give a Name or a DNS, IP, URI or email SAN", ErrInvalidRequest)
		}
		if len(name) > 64 {
			name = strings.ToValidUTF8(name[:64], "")
		}
	}
	if err := checkText("Name", name, 64); err != nil {
		return nil, err
	}
	tmpl.Subject = pkix.Name{CommonName: name}
	for _, ou := range req.OU {
		if err := checkText("OU", ou, 64); err != nil {
			return nil, err
		}
	}
	for _, o := range req.O {
		if err := checkText("O", o, 64); err != nil {
			return nil, err
		}
	}
	tmpl.Subject.OrganizationalUnit = slices.Clone(req.OU)
	tmpl.Subject.Organization = slices.Clone(req.O)

	if err := checkTTL(req.TTL, strconv.Quote(name), defTTL); err != nil {
		return nil, err
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = defTTL
	}
	nb, na := validity(req.NotBefore, ttl)
	if !req.NotAfter.IsZero() {
		na = req.NotAfter
		if na.After(ca.Cert.NotAfter) {
			return nil, fmt.Errorf("%w: NotAfter %s of %q is after the CA certificate's NotAfter %s: a certificate cannot outlive its issuer", ErrInvalidRequest, na.UTC().Format(time.RFC3339), name, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
	} else if na.After(ca.Cert.NotAfter) {
		na = ca.Cert.NotAfter
	}
	if !na.After(nb) {
		return nil, fmt.Errorf("%w: validity of %q: NotAfter %s is not after NotBefore %s", ErrInvalidRequest, name, na.UTC().Format(time.RFC3339), nb.UTC().Format(time.RFC3339))
	}
	tmpl.NotBefore, tmpl.NotAfter = nb, na
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return tmpl, nil
}

// CheckDNSName validates a DNS SAN: a host name of letters, digits and
// hyphens in dot-separated labels of 1 to 63 bytes, at most 253 bytes, no
// trailing dot; the first label may be the wildcard "*" when at least two
// labels follow it. Errors wrap ErrInvalidRequest.
func CheckDNSName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: DNS name %q: %s (accepted: a host name such as gw.example.com or *.example.com)", ErrInvalidRequest, name, why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > 253 {
		return bad("longer than 253 bytes")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" && i == 0 {
			if len(labels) < 3 {
				return bad("a wildcard needs at least two labels after it")
			}
			continue
		}
		if l == "" {
			return bad("empty label (leading, trailing or double dot)")
		}
		if len(l) > 63 {
			return bad(fmt.Sprintf("label %q is longer than 63 bytes", l))
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad(fmt.Sprintf("label %q starts or ends with a hyphen", l))
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("label %q has the character %q (letters, digits and hyphens only; a wildcard only as the whole first label)", l, c))
			}
		}
	}
	return nil
}

// ParseURI parses a URI SAN; it must be absolute (have a scheme), such as
// spiffe://corp/app/web. Errors wrap ErrInvalidRequest.
func ParseURI(s string) (*url.URL, error) {
	// A URI SAN is an IA5String: ASCII only, so anything else must be
	// percent-encoded.
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, fmt.Errorf("%w: URI %q contains spaces, control or non-ASCII characters (percent-encode them; accepted: an absolute URI such as spiffe://corp/app/web)", ErrInvalidRequest, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: URI %q: %w (accepted: an absolute URI such as spiffe://corp/app/web)", ErrInvalidRequest, s, err)
	}
	if !u.IsAbs() {
		return nil, fmt.Errorf("%w: URI %q is not absolute: it needs a scheme (accepted: an absolute URI such as spiffe://corp/app/web)", ErrInvalidRequest, s)
	}
	if u.Host == "" && u.Opaque == "" && u.Path == "" {
		return nil, fmt.Errorf("%w: URI %q has nothing after the scheme (accepted: an absolute URI such as spiffe://corp/app/web)", ErrInvalidRequest, s)
	}
	return u, nil
}

// CheckEmail validates an email SAN: a bare address such as ops@example.com,
// without display name or angle brackets. Errors wrap ErrInvalidRequest.
func CheckEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return fmt.Errorf("%w: email %q is not a bare address (accepted: name@example.com)", ErrInvalidRequest, s)
	}
	at := strings.LastIndexByte(s, '@')
	if err := CheckDNSName(s[at+1:]); err != nil || strings.HasPrefix(s[at+1:], "*") {
		return fmt.Errorf("%w: email %q: the domain part is not a host name (accepted: name@example.com)", ErrInvalidRequest, s)
	}
	return nil
}

package conn

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/pki"
)

// Identity is what a verified client certificate says about its holder. It is
// built once per connection by IdentityOf and never changes.
type Identity struct {
	URIs       []string // URI SANs, e.g. SPIFFE IDs
	DNSNames   []string // DNS SANs
	Emails     []string // email SANs
	CommonName string
	OU         []string // subject organizational units
	O          []string // subject organizations
	Serial     string   // as pki.FormatSerial writes it (and openssl prints it): uppercase hex, even length
	SHA256     string   // lowercase hex SHA-256 of the DER certificate, no colons
	NotAfter   time.Time
	Issuer     string // issuer common name (or full issuer DN when it has none)
}

// IdentityOf reads the identity of a certificate. The caller must have
// verified it: IdentityOf checks nothing. The Identity shares no memory
// with cert.
func IdentityOf(cert *x509.Certificate) Identity {
	sum := sha256.Sum256(cert.Raw)
	id := Identity{
		DNSNames:   slices.Clone(cert.DNSNames),
		Emails:     slices.Clone(cert.EmailAddresses),
		CommonName: cert.Subject.CommonName,
		OU:         slices.Clone(cert.Subject.OrganizationalUnit),
		O:          slices.Clone(cert.Subject.Organization),
		SHA256:     hex.EncodeToString(sum[:]),
		NotAfter:   cert.NotAfter,
		Issuer:     cert.Issuer.CommonName,
	}
	if id.Issuer == "" {
		id.Issuer = cert.Issuer.String()
	}
	if cert.SerialNumber != nil {
		id.Serial = pki.FormatSerial(cert.SerialNumber)
	}
	for _, u := range cert.URIs {
		id.URIs = append(id.URIs, u.String())
	}
	return id
}

// String names the identity the way logs and refusals show it: its first URI
// SAN, else its first DNS SAN, else its common name, else its fingerprint.
func (id Identity) String() string {
	switch {
	case len(id.URIs) > 0:
		return "uri:" + id.URIs[0]
	case len(id.DNSNames) > 0:
		return "dns:" + id.DNSNames[0]
	case id.CommonName != "":
		return "cn:" + id.CommonName
	case len(id.Emails) > 0:
		return "email:" + id.Emails[0]
	default:
		return "sha256:" + id.SHA256
	}
}

// MarshalZerologObject writes the identity as log fields: "name" (String),
// "cn", "uri", "dns", "email", "ou" and "o" when present, "serial" and
// "sha256" (the certificate's fingerprint). Nothing secret: no key, no
// certificate body.
func (id Identity) MarshalZerologObject(e *zerolog.Event) {
	e.Str("name", id.String())
	if id.CommonName != "" {
		e.Str("cn", id.CommonName)
	}
	if len(id.URIs) > 0 {
		e.Strs("uri", id.URIs)
	}
	if len(id.DNSNames) > 0 {
		e.Strs("dns", id.DNSNames)
	}
	if len(id.Emails) > 0 {
		e.Strs("email", id.Emails)
	}
	if len(id.OU) > 0 {
		e.Strs("ou", id.OU)
	}
	if len(id.O) > 0 {
		e.Strs("o", id.O)
	}
	e.Str("serial", id.Serial).Str("sha256", id.SHA256)
}

// Describe is a multi-line, human-readable account of the identity, for
// `gateway explain` and error messages.
func (id Identity) Describe() string {
	var b strings.Builder
	line := func(k string, v ...string) {
		if len(v) == 0 || (len(v) == 1 && v[0] == "") {
			return
		}
		b.WriteString("  " + k + ": " + strings.Join(v, ", ") + "\n")
	}
	line("cn", id.CommonName)
	line("uri", id.URIs...)
	line("dns", id.DNSNames...)
	line("email", id.Emails...)
	line("ou", id.OU...)
	line("o", id.O...)
	line("serial", id.Serial)
	line("sha256", id.SHA256)
	line("issuer", id.Issuer)
	if !id.NotAfter.IsZero() {
		line("not after", id.NotAfter.UTC().Format(time.RFC3339))
	}
	return b.String()
}

package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Fingerprint returns the lowercase hex SHA-256 of the certificate's DER,
// without colons: the form of "sha256:" identity rules.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// SerialHex returns the certificate's serial number in the form of
// [FormatSerial].
func SerialHex(cert *x509.Certificate) string {
	return FormatSerial(cert.SerialNumber)
}

var keyUsageNames = []struct {
	ku   x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

// Describe returns a multi-line, human-readable summary of cert: subject,
// SANs, serial, SHA-256 fingerprint, validity, issuer, CA constraints, key,
// key usage and extended key usage. Every line ends with a newline. It never
// includes key material beyond the public key's algorithm and size.
func Describe(cert *x509.Certificate) string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-12s %s\n", k+":", v) }
	line("subject", cert.Subject.String())
	var sans []string
	for _, d := range cert.DNSNames {
		sans = append(sans, "dns:"+d)
	}
	for _, ip := range cert.IPAddresses {
		sans = append(sans, "ip:"+ip.String())
	}
	for _, u := range cert.URIs {
		sans = append(sans, "uri:"+u.String())
	}
	for _, e := range cert.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	if len(sans) == 0 {
		line("sans", "(none)")
	} else {
		line("sans", strings.Join(sans, ", "))
	}
	line("serial", SerialHex(cert)+" ("+cert.SerialNumber.String()+")")
	line("sha256", Fingerprint(cert))
	line("not before", cert.NotBefore.UTC().Format(time.RFC3339))
	line("not after", cert.NotAfter.UTC().Format(time.RFC3339))
	line("issuer", cert.Issuer.String())
	switch {
	case cert.IsCA && cert.MaxPathLen == 0 && cert.MaxPathLenZero:
		line("ca", "yes (path length 0: issues leaves only)")
	case cert.IsCA && cert.MaxPathLen > 0:
		line("ca", fmt.Sprintf("yes (path length %d)", cert.MaxPathLen))
	case cert.IsCA:
		line("ca", "yes")
	default:
		line("ca", "no")
	}
	line("key", keyDescription(cert.PublicKey)+", signed with "+cert.SignatureAlgorithm.String())
	var ku []string
	for _, k := range keyUsageNames {
		if cert.KeyUsage&k.ku != 0 {
			ku = append(ku, k.name)
		}
	}
	if len(ku) == 0 {
		ku = []string{"(none)"}
	}
	line("key usage", strings.Join(ku, ", "))
	var eku []string
	for _, e := range cert.ExtKeyUsage {
		if n, ok := extKeyUsageNames[e]; ok {
			eku = append(eku, n)
		} else {
			eku = append(eku, fmt.Sprintf("eku(%d)", int(e)))
		}
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		eku = append(eku, oid.String())
	}
	if len(eku) == 0 {
		eku = []string{"(none)"}
	}
	line("ext usage", strings.Join(eku, ", "))
	return b.String()
}

// DescribeCRL returns a multi-line, human-readable summary of a CRL: issuer,
// number, update times, and one line per revoked serial with its time and
// reason.
func DescribeCRL(crl *x509.RevocationList) string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-12s %s\n", k+":", v) }
	line("crl issuer", crl.Issuer.String())
	if crl.Number != nil {
		line("number", crl.Number.String())
	}
	line("this update", crl.ThisUpdate.UTC().Format(time.RFC3339))
	line("next update", crl.NextUpdate.UTC().Format(time.RFC3339))
	line("revoked", fmt.Sprint(len(crl.RevokedCertificateEntries)))
	for _, e := range crl.RevokedCertificateEntries {
		fmt.Fprintf(&b, "  serial %s at %s reason %s\n", FormatSerial(e.SerialNumber), e.RevocationTime.UTC().Format(time.RFC3339), ReasonName(e.ReasonCode))
	}
	return b.String()
}

// ParseCertsOrCRL reads data as certificates or, failing that, as a CRL,
// telling the two apart by content: PEM holding CERTIFICATE blocks (one or
// several, see [ParseCertsPEM]) or a DER certificate yields certs; a PEM
// or DER CRL yields crl. Exactly one of certs and crl is set when err is
// nil. A PEM file with certificate blocks that do not parse is an error,
// not a CRL.
func ParseCertsOrCRL(data []byte) (certs []*x509.Certificate, crl *x509.RevocationList, err error) {
	isPEM := bytes.Contains(data, []byte("-----BEGIN"))
	switch {
	case isPEM && bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")):
		certs, err := ParseCertsPEM(data)
		if err != nil {
			return nil, nil, err
		}
		return certs, nil, nil
	case !isPEM:
		if c, err := x509.ParseCertificate(data); err == nil {
			return []*x509.Certificate{c}, nil, nil
		}
	}
	crl, err = ParseCRL(data)
	if err != nil {
		return nil, nil, fmt.Errorf("neither certificates nor a CRL (PEM or DER): %w", err)
	}
	return nil, crl, nil
}

// DescribeData describes what [ParseCertsOrCRL] finds in data: each
// certificate with [Describe], headed "certificate I of N" and separated by
// blank lines, or the CRL with [DescribeCRL].
func DescribeData(data []byte) (string, error) {
	certs, crl, err := ParseCertsOrCRL(data)
	if err != nil {
		return "", err
	}
	if crl != nil {
		return DescribeCRL(crl), nil
	}
	var b strings.Builder
	for i, c := range certs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "certificate %d of %d\n", i+1, len(certs))
		b.WriteString(Describe(c))
	}
	return b.String(), nil
}

package pki

import (
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

// SerialHex returns a serial number as lowercase hex with an even number of
// digits, the form openssl prints.
func SerialHex(cert *x509.Certificate) string {
	s := cert.SerialNumber.Text(16)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
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
		s := e.SerialNumber.Text(16)
		if len(s)%2 == 1 {
			s = "0" + s
		}
		fmt.Fprintf(&b, "  serial %s at %s reason %s\n", s, e.RevocationTime.UTC().Format(time.RFC3339), ReasonName(e.ReasonCode))
	}
	return b.String()
}

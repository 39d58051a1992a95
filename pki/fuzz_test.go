package pki

import (
	"bytes"
	"crypto"
	"encoding/pem"
	"sync"
	"testing"
)

// Seeds live in testdata/fuzz/FuzzXxx; each target checks a round trip, so
// whatever a parser accepts must survive being encoded and parsed again.

func FuzzParseCertsPEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertsPEM(data)
		if err != nil {
			return
		}
		again, err := ParseCertsPEM(EncodeCertsPEM(certs...))
		if err != nil || len(again) != len(certs) {
			t.Fatalf("re-encoded certificates: %d, err %v; want %d", len(again), err, len(certs))
		}
		for i := range certs {
			if !bytes.Equal(again[i].Raw, certs[i].Raw) {
				t.Fatalf("certificate %d changed in the round trip", i)
			}
			_ = Describe(certs[i])
			_ = Fingerprint(certs[i])
		}
	})
}

func FuzzParseKeyPEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeyPEM(data)
		if err != nil {
			return
		}
		enc, err := EncodeKeyPEM(k)
		if err != nil {
			t.Fatalf("accepted key does not encode: %v", err)
		}
		k2, err := ParseKeyPEM(enc)
		if err != nil {
			t.Fatalf("re-encoded key does not parse: %v", err)
		}
		if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k2.Public()) {
			t.Fatalf("public key changed in the round trip")
		}
	})
}

func FuzzParseCSRPEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSRPEM(data)
		if err != nil {
			return
		}
		again, err := ParseCSRPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw}))
		if err != nil || !bytes.Equal(again.Raw, csr.Raw) {
			t.Fatalf("CSR round trip: %v", err)
		}
	})
}

func FuzzParseCRL(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		crl, err := ParseCRL(data)
		if err != nil {
			return
		}
		again, err := ParseCRL(EncodeCRLPEM(crl.Raw))
		if err != nil || !bytes.Equal(again.Raw, crl.Raw) {
			t.Fatalf("CRL round trip: %v", err)
		}
		_ = DescribeCRL(crl)
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			return
		}
		enc, err := ix.Marshal()
		if err != nil {
			t.Fatalf("accepted index does not encode: %v", err)
		}
		ix2, err := ParseIndex(enc)
		if err != nil {
			t.Fatalf("re-encoded index does not parse: %v\n%s", err, enc)
		}
		enc2, _ := ix2.Marshal()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("index encoding is not stable:\n%s\n%s", enc, enc2)
		}
		if _, err := ix2.revokedEntries(); err != nil {
			t.Fatalf("accepted index yields no CRL entries: %v", err)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v, not positive", s, d)
		}
		if d2, err := ParseDuration(d.String()); err != nil || d2 != d {
			t.Fatalf("ParseDuration(%q) = %v; its String %q parses to %v, %v", s, d, d.String(), d2, err)
		}
	})
}

func FuzzParseReason(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		code, err := ParseReason(s)
		if err != nil {
			return
		}
		if back, err := ParseReason(ReasonName(code)); err != nil || back != code {
			t.Fatalf("ParseReason(%q) = %d; its name %q parses to %d, %v", s, code, ReasonName(code), back, err)
		}
	})
}

var fuzzCA = sync.OnceValues(func() (*CA, error) { return NewCA(CAOptions{Name: "fuzz"}) })

// FuzzSANs checks the SAN validators against x509 itself: a name they
// accept goes into a certificate and comes back out unchanged.
func FuzzSANs(f *testing.F) {
	f.Fuzz(func(t *testing.T, dns, uri, email string) {
		ca, err := fuzzCA()
		if err != nil {
			t.Fatal(err)
		}
		req := Request{Kind: Client, Name: "fuzz"}
		if CheckDNSName(dns) == nil {
			req.DNS = []string{dns}
		}
		if _, err := ParseURI(uri); err == nil {
			req.URIs = []string{uri}
		}
		if CheckEmail(email) == nil {
			req.Emails = []string{email}
		}
		if len(req.DNS)+len(req.URIs)+len(req.Emails) == 0 {
			return
		}
		tmpl, err := ca.leafTemplate(req)
		if err != nil {
			t.Fatalf("validated request rejected: %v", err)
		}
		cert, err := ca.signLeaf(tmpl, Client, ca.Key.Public())
		if err != nil {
			t.Fatalf("x509 refused validated SANs dns=%q uri=%q email=%q: %v", req.DNS, req.URIs, req.Emails, err)
		}
		if len(req.DNS) > 0 && (len(cert.DNSNames) != 1 || cert.DNSNames[0] != dns) {
			t.Fatalf("DNS %q came back as %q", dns, cert.DNSNames)
		}
		if len(req.Emails) > 0 && (len(cert.EmailAddresses) != 1 || cert.EmailAddresses[0] != email) {
			t.Fatalf("email %q came back as %q", email, cert.EmailAddresses)
		}
		if len(req.URIs) > 0 {
			u, _ := ParseURI(uri)
			if len(cert.URIs) != 1 || cert.URIs[0].String() != u.String() {
				t.Fatalf("URI %q came back as %v", uri, cert.URIs)
			}
		}
	})
}

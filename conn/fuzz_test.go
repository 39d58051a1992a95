package conn_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/pki"
)

// FuzzParsePattern checks that ParsePattern never panics, that its errors
// wrap ErrPattern, that an accepted pattern reads back from its String form
// to an equal Pattern, that Match never panics on an identity built from
// the input, and that a pattern matches an identity made of its own value.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"any", "ANY", "uri:spiffe://corp/app/*", "uri:spiffe://corp/app/**", "uri:spiffe://corp/*/x",
		"uri:SPIFFE://Corp/a%2Fb", "uri:spiffe://corp/a*", "uri:spiffe://u@corp/x", "uri:spiffe://corp/x?y",
		"dns:*.example.com", "dns:API.example.com.", "dns:a..b", "cn:alice", "ou:ops", "o:Corp",
		"email:Alice@Example.com", "email:@", "sha256:" + fp, "sha256:" + colons(fp), "sha256:zz", "x:y", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := conn.ParsePattern(s)
		// An identity made of the input in every field.
		id := conn.Identity{URIs: []string{s}, DNSNames: []string{s}, Emails: []string{s}, CommonName: s,
			OU: []string{s}, O: []string{s}, SHA256: s, Serial: s}
		if _, v, ok := strings.Cut(s, ":"); ok {
			v = strings.TrimSpace(v)
			id.URIs = append(id.URIs, v)
			id.DNSNames = append(id.DNSNames, v)
			id.Emails = append(id.Emails, v)
			id.OU = append(id.OU, v)
			id.O = append(id.O, v)
		}
		_ = p.Match(&id)
		if err != nil {
			if !errors.Is(err, conn.ErrPattern) {
				t.Fatalf("ParsePattern(%q): error %v does not wrap ErrPattern", s, err)
			}
			if !p.IsZero() {
				t.Fatalf("ParsePattern(%q): error %v with a non-zero pattern", s, err)
			}
			return
		}
		if p.IsZero() {
			t.Fatalf("ParsePattern(%q): zero pattern without error", s)
		}
		str := p.String()
		q, err := conn.ParsePattern(str)
		if err != nil {
			t.Fatalf("ParsePattern(%q).String() = %q does not parse: %v", s, str, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("ParsePattern(%q) = %#v, but its String %q parses to %#v", s, p, str, q)
		}
		if q.String() != str {
			t.Fatalf("String() not stable: %q then %q", str, q.String())
		}
		// Every pattern matches an identity made of its own value.
		kind, v, _ := strings.Cut(str, ":")
		self := conn.Identity{}
		switch kind {
		case "any":
		case "uri":
			self.URIs = []string{v}
		case "dns":
			self.DNSNames = []string{v}
		case "cn":
			self.CommonName = v
		case "ou":
			self.OU = []string{v}
		case "o":
			self.O = []string{v}
		case "email":
			self.Emails = []string{v}
		case "sha256":
			self.SHA256 = v
		default:
			t.Fatalf("String() = %q: unknown kind", str)
		}
		if !p.Match(&self) {
			t.Fatalf("%q does not match its own value %+v", str, self)
		}
		if p.Match(nil) {
			t.Fatalf("%q matches a nil identity", str)
		}
	})
}

// FuzzLoadCRL checks that LoadCRL never panics on any file content, that it
// accepts a file only when every list in it is signed by the CA, and that a
// loaded list answers Revoked for the certificates of the CA.
func FuzzLoadCRL(f *testing.F) {
	ca, err := pki.NewCA(pki.CAOptions{Name: "fuzz CA"})
	if err != nil {
		f.Fatal(err)
	}
	other, err := pki.NewCA(pki.CAOptions{Name: "fuzz CA"})
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{Kind: pki.Client, Name: "leaf"})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	crl := func(c *pki.CA, next time.Time, serials ...*big.Int) []byte {
		var entries []x509.RevocationListEntry
		for _, s := range serials {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Hour)})
		}
		der, err := c.CRL(entries, nil, now.Add(-48*time.Hour), next)
		if err != nil {
			f.Fatal(err)
		}
		return der
	}
	good := crl(ca, now.Add(time.Hour), leaf.Cert.SerialNumber, big.NewInt(7))
	f.Add(good)
	f.Add(pki.EncodeCRLPEM(good))
	f.Add(append(pki.EncodeCRLPEM(crl(ca, now.Add(-time.Hour))), pki.EncodeCRLPEM(good)...))
	f.Add(crl(other, now.Add(time.Hour), big.NewInt(1)))
	f.Add(pki.EncodeCertsPEM(ca.Cert))
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	f.Add([]byte{})

	file := filepath.Join(f.TempDir(), "crl")
	cas := []*x509.Certificate{ca.Cert}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rl, warns, err := conn.LoadCRL(file, cas, now)
		if err != nil {
			if rl != nil || warns != nil {
				t.Fatalf("error %v with a list or warnings", err)
			}
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if rl == nil || rl.Count < 0 {
			t.Fatalf("no error, list %v", rl)
		}
		// Whatever loaded was signed by ca: check the signatures ourselves.
		var ders [][]byte
		if rest := data; bytes.Contains(data, []byte("-----BEGIN")) {
			for {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				if b.Type == "X509 CRL" {
					ders = append(ders, b.Bytes)
				}
			}
		} else {
			ders = [][]byte{data}
		}
		listed := false
		for _, der := range ders {
			l, err := x509.ParseRevocationList(der)
			if err != nil || l.CheckSignatureFrom(ca.Cert) != nil {
				t.Fatalf("LoadCRL accepted a list that is not signed by the CA: %v", err)
			}
			for _, e := range l.RevokedCertificateEntries {
				if e.SerialNumber != nil && e.SerialNumber.Cmp(leaf.Cert.SerialNumber) == 0 {
					listed = true
				}
			}
		}
		if rl.Revoked(leaf.Cert) != listed {
			t.Fatalf("Revoked(leaf) = %v, but the lists say %v", !listed, listed)
		}
	})
}

package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func readCRL(t *testing.T, d *Dir) *x509.RevocationList {
	t.Helper()
	data, err := os.ReadFile(d.CRLPath())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRL(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(d.CA().Cert); err != nil {
		t.Fatalf("crl.pem signature: %v", err)
	}
	return crl
}

func TestDirInitLayoutAndPermissions(t *testing.T) {
	for _, inter := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "ca")
		d, err := Init(dir, InitOptions{CA: CAOptions{Name: "corp"}, Intermediate: inter, CRLValidity: 48 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if m := mode(t, dir); m != 0o700 {
			t.Errorf("dir mode %o, want 700", m)
		}
		want := map[string]os.FileMode{FileCACert: 0o644, FileCAKey: 0o600, FileCRL: 0o644, FileIndex: 0o644}
		anchor := filepath.Join(dir, FileCACert)
		if inter {
			want[FileRootCert], want[FileRootKey] = 0o644, 0o600
			anchor = filepath.Join(dir, FileRootCert)
		}
		for f, m := range want {
			if got := mode(t, filepath.Join(dir, f)); got != m {
				t.Errorf("intermediate=%v %s mode %o, want %o", inter, f, got, m)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, FileRootCert)); inter == errors.Is(err, os.ErrNotExist) {
			t.Errorf("intermediate=%v: root.crt exists=%v", inter, err == nil)
		}
		if d.TrustAnchorPath() != anchor {
			t.Errorf("TrustAnchorPath %s, want %s", d.TrustAnchorPath(), anchor)
		}
		crl := readCRL(t, d)
		if len(crl.RevokedCertificateEntries) != 0 || crl.Number.Int64() != 1 || crl.NextUpdate.Sub(crl.ThisUpdate) != 48*time.Hour {
			t.Errorf("initial CRL: %d entries, number %v, validity %v", len(crl.RevokedCertificateEntries), crl.Number, crl.NextUpdate.Sub(crl.ThisUpdate))
		}
		// Issue, then check the files verify against the trust anchor.
		certPath, keyPath, err := d.Issue(Request{Kind: Server, Name: "gw", DNS: []string{"localhost"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if mode(t, keyPath) != 0o600 || mode(t, certPath) != 0o644 {
			t.Errorf("leaf modes: key %o cert %o", mode(t, keyPath), mode(t, certPath))
		}
		anchorPEM, _ := os.ReadFile(anchor)
		roots, err := ParseCertsPEM(anchorPEM)
		if err != nil {
			t.Fatal(err)
		}
		chainPEM, _ := os.ReadFile(certPath)
		chain, err := ParseCertsPEM(chainPEM)
		if err != nil {
			t.Fatal(err)
		}
		if inter != (len(chain) == 2) {
			t.Errorf("intermediate=%v: NAME.crt holds %d certificates", inter, len(chain))
		}
		pool, inters := x509.NewCertPool(), x509.NewCertPool()
		pool.AddCert(roots[0])
		for _, c := range chain[1:] {
			inters.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inters, DNSName: "localhost"}); err != nil {
			t.Errorf("intermediate=%v: leaf does not verify against the trust anchor: %v", inter, err)
		}
		if inter && !strings.HasSuffix(roots[0].Subject.CommonName, "root") {
			t.Errorf("root name %q", roots[0].Subject.CommonName)
		}
		if _, err := exec.LookPath("openssl"); err == nil {
			out, err := opensslVerify(t, anchorPEM, chain[1:], chain[0], "sslserver")
			if err != nil || !strings.Contains(out, ": OK") {
				t.Errorf("openssl verify of the written files: %v\n%s", err, out)
			}
		}
		// Reopen: same CA, same index.
		d2, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !d2.CA().Cert.Equal(d.CA().Cert) || d2.CA().IsRoot() == inter || len(d2.Records()) != 1 || d2.Records()[0].Name != "gw" {
			t.Errorf("reopened: IsRoot %v, records %+v", d2.CA().IsRoot(), d2.Records())
		}
	}
}

func TestDirNoOverwriteWithoutForce(t *testing.T) {
	dir := t.TempDir()
	d, err := Init(dir, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caBefore, _ := os.ReadFile(filepath.Join(dir, FileCACert))
	_, err = Init(dir, InitOptions{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), FileCACert) {
		t.Fatalf("second Init: err %v, want ErrExists naming ca.crt", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, FileCACert)); !bytes.Equal(after, caBefore) {
		t.Fatalf("second Init changed ca.crt")
	}
	req := Request{Kind: Client, Name: "alice"}
	certPath, keyPath, err := d.Issue(req, false)
	if err != nil {
		t.Fatal(err)
	}
	keyBefore, _ := os.ReadFile(keyPath)
	if _, _, err := d.Issue(req, false); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "alice.") {
		t.Fatalf("re-issue without force: err %v, want ErrExists naming the file", err)
	}
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(after, keyBefore) {
		t.Fatalf("key changed without force")
	}
	if _, _, err := d.Issue(req, true); err != nil {
		t.Fatalf("re-issue with force: %v", err)
	}
	if after, _ := os.ReadFile(keyPath); bytes.Equal(after, keyBefore) {
		t.Fatalf("key unchanged with force")
	}
	if len(d.Records()) != 2 {
		t.Errorf("index has %d records after two issues", len(d.Records()))
	}
	_ = certPath
	// Force replaces the CA; a later non-intermediate init removes root files.
	if _, err := Init(dir, InitOptions{Intermediate: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, InitOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileRootCert)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root.crt left over from the replaced CA: %v", err)
	}
	d3, err := Open(dir)
	if err != nil || !d3.CA().IsRoot() || len(d3.Records()) != 0 {
		t.Errorf("reopened after force init: %v, records %d", err, len(d3.Records()))
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestDirNames(t *testing.T) {
	d, err := Init(t.TempDir(), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "ca", "root", "crl", "index", "../x", "a/b", ".hidden", "-x", "a b", strings.Repeat("n", 65)} {
		if _, _, err := d.Issue(Request{Kind: Client, Name: name}, true); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "name") {
			t.Errorf("Issue name %q: err %v, want ErrInvalidRequest about the name", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Path(), FileCAKey)); err != nil {
		t.Fatal(err)
	}
}

func TestDirOpenErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := Open(empty); !errors.Is(err, ErrNotCADir) || !strings.Contains(err.Error(), FileCACert) {
		t.Errorf("Open(empty): %v", err)
	}
	if _, err := Open(filepath.Join(empty, "missing")); !errors.Is(err, ErrNotCADir) {
		t.Errorf("Open(missing): %v", err)
	}
	// Key of another CA.
	a, b := t.TempDir(), t.TempDir()
	if _, err := Init(a, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(b, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	k, _ := os.ReadFile(filepath.Join(b, FileCAKey))
	if err := os.WriteFile(filepath.Join(a, FileCAKey), k, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(a); !errors.Is(err, ErrNotCADir) || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("Open with mismatched key: %v", err)
	}
	// Corrupt index.
	if err := os.WriteFile(filepath.Join(b, FileIndex), []byte(`{"version": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(b); !errors.Is(err, ErrIndex) || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("Open with bad index: %v", err)
	}
}

func TestDirRevokeAndCRLReproducible(t *testing.T) {
	dir := t.TempDir()
	d, err := Init(dir, InitOptions{Intermediate: true})
	if err != nil {
		t.Fatal(err)
	}
	var serials []*big.Int
	for _, n := range []string{"a", "b", "c"} {
		cp, _, err := d.Issue(Request{Kind: Client, Name: n}, false)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(cp)
		certs, _ := ParseCertsPEM(data)
		serials = append(serials, certs[0].SerialNumber)
	}
	if err := d.Revoke(serials[0], ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "b.crt"))
	bcert, _ := ParseCertsPEM(data)
	if err := d.RevokeCert(bcert[0], ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	if err := d.Revoke(serials[0], ReasonKeyCompromise); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("revoke twice: %v", err)
	}
	if err := d.Revoke(big.NewInt(12345), 0); !errors.Is(err, ErrUnknownSerial) || !strings.Contains(err.Error(), "3039") {
		t.Errorf("revoke unknown: %v", err)
	}
	if err := d.Revoke(serials[2], 8); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("revoke with reason 8: %v", err)
	}
	// A certificate from another CA is refused.
	other := testCA(t, ECDSAP256)
	_, oc := issuePair(t, other, ECDSAP256)
	if err := d.RevokeCert(oc.Cert, 0); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("revoke foreign cert: %v", err)
	}
	crl1 := readCRL(t, d)
	got := map[string]int{}
	for _, e := range crl1.RevokedCertificateEntries {
		got[e.SerialNumber.String()] = e.ReasonCode
	}
	if len(got) != 2 || got[serials[0].String()] != ReasonKeyCompromise || got[serials[1].String()] != ReasonSuperseded {
		t.Fatalf("crl.pem entries %v", got)
	}
	// Reopen and rewrite: same entries, higher number.
	d2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := d2.WriteCRL(36 * time.Hour)
	if err != nil || p != d.CRLPath() {
		t.Fatal(p, err)
	}
	crl2 := readCRL(t, d2)
	if crl2.Number.Cmp(crl1.Number) <= 0 {
		t.Errorf("CRL number %v after %v: must grow", crl2.Number, crl1.Number)
	}
	if crl2.NextUpdate.Sub(crl2.ThisUpdate) != 36*time.Hour {
		t.Errorf("CRL validity %v", crl2.NextUpdate.Sub(crl2.ThisUpdate))
	}
	if len(crl2.RevokedCertificateEntries) != len(crl1.RevokedCertificateEntries) {
		t.Fatalf("rewritten CRL has %d entries, was %d", len(crl2.RevokedCertificateEntries), len(crl1.RevokedCertificateEntries))
	}
	for i, e := range crl2.RevokedCertificateEntries {
		o := crl1.RevokedCertificateEntries[i]
		if e.SerialNumber.Cmp(o.SerialNumber) != 0 || !e.RevocationTime.Equal(o.RevocationTime) || e.ReasonCode != o.ReasonCode {
			t.Errorf("entry %d changed: %v/%v/%d vs %v/%v/%d", i, e.SerialNumber, e.RevocationTime, e.ReasonCode, o.SerialNumber, o.RevocationTime, o.ReasonCode)
		}
	}
	recs := d2.Records()
	if recs[0].RevokedAt == nil || recs[0].Reason != "keyCompromise" || recs[2].RevokedAt != nil {
		t.Errorf("index records: %+v", recs)
	}
	// The CRL is signed by the issuing intermediate and openssl agrees.
	if _, err := exec.LookPath("openssl"); err == nil {
		out, err := runOpenSSL("crl", "-in", d.CRLPath(), "-CAfile", filepath.Join(dir, FileCACert), "-noout")
		if err != nil || !strings.Contains(out, "verify OK") {
			t.Errorf("openssl crl: %v\n%s", err, out)
		}
	}
}

func TestDirSign(t *testing.T) {
	dir := t.TempDir()
	d, err := Init(dir, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := GenerateKey(ECDSAP256)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bob"}, DNSNames: []string{"bob.example.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	p, err := d.Sign(csrPEM, Request{Kind: Server, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(dir, "bob.crt") {
		t.Errorf("Sign wrote %s", p)
	}
	data, _ := os.ReadFile(p)
	certs, err := ParseCertsPEM(data)
	if err != nil || len(certs[0].IPAddresses) != 1 || certs[0].DNSNames[0] != "bob.example.com" {
		t.Fatalf("signed cert: %v", err)
	}
	if _, err := d.Sign(csrPEM, Request{Kind: Server}, false); !errors.Is(err, ErrExists) {
		t.Errorf("Sign over existing: %v", err)
	}
	out := filepath.Join(t.TempDir(), "elsewhere.pem")
	if p, err := d.SignTo(der, Request{Kind: Client, Name: "bob client"}, out, false); err != nil || p != out {
		t.Errorf("SignTo DER: %s %v", p, err)
	}
	if _, err := d.Sign([]byte("garbage"), Request{Kind: Client}, false); !errors.Is(err, ErrCSR) {
		t.Errorf("Sign garbage: %v", err)
	}
	if n := len(d.Records()); n != 2 {
		t.Errorf("index has %d records, want 2", n)
	}
}

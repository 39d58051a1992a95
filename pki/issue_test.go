package pki

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLeafExtensions(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	for _, kt := range []KeyType{ECDSAP256, RSA2048, Ed25519} {
		srv, cli := issuePair(t, ca, kt)
		wantSrvKU := x509.KeyUsageDigitalSignature
		if kt == RSA2048 {
			wantSrvKU |= x509.KeyUsageKeyEncipherment
		}
		if srv.Cert.KeyUsage != wantSrvKU {
			t.Errorf("%s server KeyUsage %b, want %b", kt, srv.Cert.KeyUsage, wantSrvKU)
		}
		if cli.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("%s client KeyUsage %b, want digitalSignature only", kt, cli.Cert.KeyUsage)
		}
		for _, c := range []*x509.Certificate{srv.Cert, cli.Cert} {
			if c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("%s leaf: IsCA %v BasicConstraintsValid %v", kt, c.IsCA, c.BasicConstraintsValid)
			}
			if len(c.SubjectKeyId) != 20 || !bytes.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) {
				t.Errorf("%s leaf: SKID %x AKID %x, CA SKID %x", kt, c.SubjectKeyId, c.AuthorityKeyId, ca.Cert.SubjectKeyId)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
				t.Errorf("%s serial %s out of (0, 2^128)", kt, c.SerialNumber)
			}
		}
		if got := cli.Cert.NotAfter.Sub(cli.Cert.NotBefore); got != DefaultClientTTL+backdate {
			t.Errorf("client default TTL plus backdate %v, want %v", got, DefaultClientTTL+backdate)
		}
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || len(ca.Cert.SubjectKeyId) == 0 {
		t.Errorf("root: IsCA %v KeyUsage %b SKID %x", ca.Cert.IsCA, ca.Cert.KeyUsage, ca.Cert.SubjectKeyId)
	}
	if ca.Cert.CheckSignatureFrom(ca.Cert) != nil {
		t.Errorf("root is not self-signed")
	}
	a, b := issuePair(t, ca, ECDSAP256)
	if a.Cert.SerialNumber.Cmp(b.Cert.SerialNumber) == 0 {
		t.Errorf("two certificates share serial %s", a.Cert.SerialNumber)
	}
}

func TestIssuedEncodings(t *testing.T) {
	root := testCA(t, ECDSAP256)
	inter, err := root.NewIntermediate(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := issuePair(t, inter, Ed25519)
	certs, err := ParseCertsPEM(srv.CertPEM())
	if err != nil || len(certs) != 2 || !certs[0].Equal(srv.Cert) || !certs[1].Equal(inter.Cert) {
		t.Fatalf("CertPEM: %d certs, err %v; want leaf then intermediate", len(certs), err)
	}
	keyPEM, err := srv.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(keyPEM); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatalf("KeyPEM block %v", blk)
	}
	k, err := ParseKeyPEM(keyPEM)
	if err != nil || !srv.Cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
		t.Fatalf("KeyPEM round trip: %v", err)
	}
	tc, err := srv.TLSCertificate()
	if err != nil || len(tc.Certificate) != 2 || tc.Leaf != srv.Cert || !tc.PrivateKey.(crypto.Signer).Public().(ed25519.PublicKey).Equal(srv.Key.Public()) {
		t.Fatalf("TLSCertificate: %d certs, leaf set %v, err %v", len(tc.Certificate), tc.Leaf != nil, err)
	}
	if !bytes.Equal(inter.RootPEM(), root.RootPEM()) {
		t.Errorf("intermediate RootPEM is not the root")
	}
	if n := len(inter.Pool().Subjects()); n != 1 { //nolint:staticcheck // a pool of one certificate we added
		t.Errorf("Pool has %d certificates, want the root only", n)
	}
}

func TestRequestValidation(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	now := time.Now()
	tests := []struct {
		name string
		req  Request
		want string // substring of the error
	}{
		{"no kind", Request{Name: "x"}, "Kind 0"},
		{"server without SAN", Request{Kind: Server, Name: "gw"}, "at least one DNS name or IP"},
		{"server with only URI", Request{Kind: Server, Name: "gw", URIs: []string{"spiffe://a/b"}}, "at least one DNS name or IP"},
		{"bad DNS", Request{Kind: Server, DNS: []string{"bad_name.example"}}, `"bad_name.example"`},
		{"DNS trailing dot", Request{Kind: Server, DNS: []string{"a.example."}}, "empty label"},
		{"wildcard too wide", Request{Kind: Server, DNS: []string{"*.com"}}, "wildcard"},
		{"wildcard inside", Request{Kind: Server, DNS: []string{"a.*.example.com"}}, `'*'`},
		{"zero IP", Request{Kind: Server, IPs: []netip.Addr{{}}}, "zero netip.Addr"},
		{"zoned IP", Request{Kind: Server, IPs: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}, "zone"},
		{"relative URI", Request{Kind: Client, Name: "c", URIs: []string{"corp/app"}}, "not absolute"},
		{"URI with space", Request{Kind: Client, Name: "c", URIs: []string{"spiffe://a/b c"}}, "spaces"},
		{"bad email", Request{Kind: Client, Name: "c", Emails: []string{"Ops <ops@example.com>"}}, "bare address"},
		{"no name no SAN", Request{Kind: Client}, "Name is empty"},
		{"long name", Request{Kind: Client, Name: strings.Repeat("n", 65)}, "at most 64"},
		{"control char", Request{Kind: Client, Name: "a\nb"}, "control"},
		{"empty OU", Request{Kind: Client, Name: "c", OU: []string{""}}, "OU is empty"},
		{"negative TTL", Request{Kind: Client, Name: "c", TTL: -time.Hour}, "TTL -1h0m0s"},
		{"TTL below the minimum", Request{Kind: Client, Name: "c", TTL: time.Second}, "at least 1m0s"},
		{"inverted", Request{Kind: Client, Name: "c", NotBefore: now, NotAfter: now.Add(-time.Hour)}, "not after NotBefore"},
		{"outlives CA", Request{Kind: Client, Name: "c", NotAfter: ca.Cert.NotAfter.Add(time.Hour)}, "outlive its issuer"},
		{"bad key type", Request{Kind: Client, Name: "c", KeyType: "dsa"}, `key type "dsa"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.Issue(tc.req)
			if err == nil {
				t.Fatalf("Issue accepted %+v", tc.req)
			}
			if !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrKeyType) {
				t.Errorf("error %v does not wrap ErrInvalidRequest or ErrKeyType", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// Accepted edge cases.
	ok, err := ca.Issue(Request{Kind: Server, DNS: []string{"*.gw.example.com"}, IPs: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if ok.Cert.Subject.CommonName != "*.gw.example.com" || !ok.Cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) || len(ok.Cert.IPAddresses[0]) != 4 {
		t.Errorf("defaulted CN %q, IP %v", ok.Cert.Subject.CommonName, ok.Cert.IPAddresses)
	}
	capped, err := ca.Issue(Request{Kind: Client, Name: "long", TTL: 100 * 365 * 24 * time.Hour})
	if err != nil || !capped.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("TTL past the CA: NotAfter %v, CA %v, err %v", capped.Cert.NotAfter, ca.Cert.NotAfter, err)
	}
}

// csrWith builds a CSR for a new key with the given template, optionally
// corrupting its signature.
func csrWith(t *testing.T, kt KeyType, tmpl *x509.CertificateRequest, corrupt bool) *x509.CertificateRequest {
	t.Helper()
	key, err := GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if corrupt {
		der[len(der)-3] ^= 0xff
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestSignCSRTakesOnlyKeyAndSANs(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	bc, _ := asn1.Marshal(struct {
		IsCA bool
	}{true})
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}, {1, 3, 6, 1, 5, 5, 7, 3, 2}}) // serverAuth, clientAuth
	ku, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x06}, BitLength: 7})                                  // keyCertSign, cRLSign
	u, _ := url.Parse("spiffe://corp/app/web")
	tmpl := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "web", Organization: []string{"Evil"}},
		DNSNames:       []string{"web.example.com"},
		IPAddresses:    []net.IP{net.ParseIP("10.1.2.3")},
		URIs:           []*url.URL{u},
		EmailAddresses: []string{"web@example.com"},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc},
			{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: eku},
			{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: ku},
		},
	}
	csr := csrWith(t, RSA2048, tmpl, false)
	cert, err := ca.SignCSR(csr, Request{Kind: Client, OU: []string{"apps"}, DNS: []string{"extra.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if cert.IsCA {
		t.Errorf("SignCSR granted CA:TRUE asked for by the CSR")
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("EKU %v, want clientAuth only", cert.ExtKeyUsage)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage %b, want digitalSignature only", cert.KeyUsage)
	}
	if cert.Subject.CommonName != "web" || len(cert.Subject.Organization) != 0 || cert.Subject.OrganizationalUnit[0] != "apps" {
		t.Errorf("subject %v: want CN from CSR, OU from request, no O", cert.Subject)
	}
	if strings.Join(cert.DNSNames, ",") != "extra.example.com,web.example.com" || len(cert.IPAddresses) != 1 ||
		cert.URIs[0].String() != u.String() || cert.EmailAddresses[0] != "web@example.com" {
		t.Errorf("SANs: dns %v ip %v uri %v email %v", cert.DNSNames, cert.IPAddresses, cert.URIs, cert.EmailAddresses)
	}
	if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		t.Errorf("certificate key differs from the CSR's")
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 19}) && bytes.Equal(ext.Value, bc) {
			t.Errorf("the CSR's basicConstraints extension was copied")
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("signed certificate does not verify: %v", err)
	}
	// A server kind with the CSR's SANs works; a bad signature does not.
	if _, err := ca.SignCSR(csr, Request{Kind: Server, Name: "named"}); err != nil {
		t.Errorf("server from CSR SANs: %v", err)
	}
	bad := csrWith(t, ECDSAP256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, true)
	if _, err := ca.SignCSR(bad, Request{Kind: Client}); !errors.Is(err, ErrCSR) {
		t.Errorf("corrupted CSR signature: err %v, want ErrCSR", err)
	}
	noSAN := csrWith(t, Ed25519, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, false)
	if _, err := ca.SignCSR(noSAN, Request{Kind: Server}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("server CSR without SANs: err %v, want ErrInvalidRequest", err)
	}
	if _, err := ca.SignCSR(nil, Request{Kind: Client}); !errors.Is(err, ErrCSR) {
		t.Errorf("nil CSR: err %v", err)
	}
}

func TestParseKeyType(t *testing.T) {
	for _, kt := range KeyTypes() {
		got, err := ParseKeyType(" " + strings.ToUpper(string(kt)) + " ")
		if err != nil || got != kt {
			t.Errorf("ParseKeyType(%q) = %q, %v", kt, got, err)
		}
	}
	if got, err := ParseKeyType(""); err != nil || got != ECDSAP256 {
		t.Errorf(`ParseKeyType("") = %q, %v`, got, err)
	}
	_, err := ParseKeyType("rsa-1024")
	if !errors.Is(err, ErrKeyType) || !strings.Contains(err.Error(), `"rsa-1024"`) || !strings.Contains(err.Error(), "ed25519") {
		t.Errorf("ParseKeyType(rsa-1024) error %v: want value and accepted list", err)
	}
	if _, err := GenerateKey("x"); !errors.Is(err, ErrKeyType) {
		t.Errorf("GenerateKey(x): %v", err)
	}
}

func TestParseReason(t *testing.T) {
	for code, name := range reasonNames {
		for _, s := range []string{name, strings.ToUpper(name), strings.TrimSpace(" " + name)} {
			if got, err := ParseReason(s); err != nil || got != code {
				t.Errorf("ParseReason(%q) = %d, %v; want %d", s, got, err, code)
			}
		}
		if got := ReasonName(code); got != name {
			t.Errorf("ReasonName(%d) = %q", code, got)
		}
	}
	if got, err := ParseReason("key-compromise"); err != nil || got != ReasonKeyCompromise {
		t.Errorf("key-compromise: %d, %v", got, err)
	}
	for _, s := range []string{"8", "removeFromCRL", "lost", "-1"} {
		if _, err := ParseReason(s); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "keyCompromise") {
			t.Errorf("ParseReason(%q) err %v: want rejection listing names", s, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"90d": 90 * 24 * time.Hour, "18h": 18 * time.Hour, "1d12h": 36 * time.Hour, "30m": 30 * time.Minute, " 7d ": 7 * 24 * time.Hour}
	for s, want := range good {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "0d", "-1h", "d", "1.5d", "12h1d", "x", "1d-1h", "99999999d"} {
		if _, err := ParseDuration(s); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "90d") {
			t.Errorf("ParseDuration(%q) err %v: want rejection with accepted forms", s, err)
		}
	}
}

func TestDescribe(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	srv, cli := issuePair(t, ca, RSA2048)
	d := Describe(srv.Cert)
	for _, want := range []string{"CN=gw", "dns:localhost", "ip:127.0.0.1", "ip:::1", SerialHex(srv.Cert), Fingerprint(srv.Cert),
		srv.Cert.NotAfter.UTC().Format(time.RFC3339), "CN=test root ecdsa-p256", "digitalSignature, keyEncipherment", "serverAuth", "RSA 2048"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe(server) lacks %q:\n%s", want, d)
		}
	}
	d = Describe(cli.Cert)
	for _, want := range []string{"uri:spiffe://corp/app/web", "email:ops@example.com", "OU=db", "clientAuth"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe(client) lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "serverAuth") {
		t.Errorf("Describe(client) mentions serverAuth:\n%s", d)
	}
	if f := Fingerprint(srv.Cert); len(f) != 64 || strings.ToLower(f) != f || strings.Contains(f, ":") {
		t.Errorf("Fingerprint %q: want 64 lowercase hex digits", f)
	}
	if !strings.Contains(Describe(ca.Cert), "ca:          yes") {
		t.Errorf("Describe(CA) does not say it is a CA:\n%s", Describe(ca.Cert))
	}
}

// TestTTLCountsFromNow: the backdate of NotBefore does not eat into the
// TTL; NotAfter is now+TTL.
func TestTTLCountsFromNow(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	for _, ttl := range []time.Duration{MinTTL, 10 * time.Minute, 36 * time.Hour} {
		before := time.Now().Truncate(time.Second)
		iss, err := ca.Issue(Request{Kind: Client, Name: "ttl", TTL: ttl})
		after := time.Now()
		if err != nil {
			t.Fatalf("TTL %v: %v", ttl, err)
		}
		if na := iss.Cert.NotAfter; na.Before(before.Add(ttl)) || na.After(after.Add(ttl)) {
			t.Errorf("TTL %v: NotAfter %v, want between %v and %v", ttl, na, before.Add(ttl), after.Add(ttl))
		}
		if nb := iss.Cert.NotBefore; !nb.Before(before) {
			t.Errorf("TTL %v: NotBefore %v is not backdated before %v", ttl, nb, before)
		}
	}
	if _, err := ca.Issue(Request{Kind: Client, Name: "short", TTL: MinTTL - time.Second}); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "at least") {
		t.Errorf("TTL below MinTTL: err %v, want ErrInvalidRequest saying the minimum", err)
	}
	if _, err := NewCA(CAOptions{TTL: time.Second}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("CA TTL below MinTTL: err %v, want ErrInvalidRequest", err)
	}
}

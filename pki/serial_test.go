package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFormatSerial(t *testing.T) {
	for _, tc := range []struct {
		n    *big.Int
		want string
	}{
		{nil, ""},
		{big.NewInt(1), "01"},
		{big.NewInt(0x2a), "2A"},
		{big.NewInt(0xa1b), "0A1B"},
		{new(big.Int).Lsh(big.NewInt(1), 127), "80000000000000000000000000000000"},
	} {
		if got := FormatSerial(tc.n); got != tc.want {
			t.Errorf("FormatSerial(%v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestParseSerialHex(t *testing.T) {
	for _, in := range []string{"0A1B", "a1b", "0xa1b", "0XA1B", "0a:1b", " 0A:1B ", "000a1b"} {
		n, err := ParseSerialHex(in)
		if err != nil || n.Int64() != 0xa1b {
			t.Errorf("ParseSerialHex(%q) = %v, %v; want 0xa1b", in, n, err)
		}
	}
	for _, in := range []string{"", "0x", "0", "00", "-1", "+1", "xyz", "1_0", ":"} {
		if n, err := ParseSerialHex(in); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("ParseSerialHex(%q) = %v, %v; want ErrInvalidRequest", in, n, err)
		}
	}
}

// TestSerialMatchesOpenSSL checks that issue output, show output, the
// index and the audit form all print the serial exactly as openssl does.
func TestSerialMatchesOpenSSL(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	for range 8 { // odd-length hex comes up about half of the time
		iss, err := ca.Issue(Request{Kind: Client, Name: "s"})
		if err != nil {
			t.Fatal(err)
		}
		got := SerialHex(iss.Cert)
		if len(got)%2 != 0 || got != strings.ToUpper(got) {
			t.Errorf("SerialHex = %q: want uppercase hex of even length", got)
		}
		if !strings.Contains(Describe(iss.Cert), "serial:") || !strings.Contains(Describe(iss.Cert), got) {
			t.Errorf("Describe does not show serial %s:\n%s", got, Describe(iss.Cert))
		}
		if r := recordFor(iss.Cert, "s", Client); r.Serial != got {
			t.Errorf("index record serial %q, want %q", r.Serial, got)
		}
		if p := opensslPath(); p != "" {
			f := writeTemp(t, "leaf.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Cert.Raw}))
			out, err := runOpenSSL("x509", "-noout", "-serial", "-in", f)
			if err != nil {
				t.Fatalf("openssl x509 -serial: %v\n%s", err, out)
			}
			if want := "serial=" + got; strings.TrimSpace(out) != want {
				t.Errorf("openssl prints %q, we print %q", strings.TrimSpace(out), want)
			}
		}
	}
	if opensslPath() == "" {
		t.Skip("openssl not found in PATH; the forms were checked, the comparison with openssl was skipped")
	}
}

func TestIndexReadsOldSerialForm(t *testing.T) {
	d, err := Init(filepath.Join(t.TempDir(), "ca"), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	iss := issueIn(t, d, "old")
	n := iss.SerialNumber
	// Rewrite the index with the serial as older versions stored it:
	// lowercase, no leading zero.
	ixPath := filepath.Join(d.Path(), FileIndex)
	data, err := os.ReadFile(ixPath)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(data), `"serial": "`+FormatSerial(n)+`"`, `"serial": "`+n.Text(16)+`"`, 1)
	if old == string(data) && FormatSerial(n) != n.Text(16) {
		t.Fatalf("serial %s not found in the index:\n%s", FormatSerial(n), data)
	}
	if err := os.WriteFile(ixPath, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(d.Path())
	if err != nil {
		t.Fatalf("Open with an old-form index: %v", err)
	}
	if recs := d2.Records(); len(recs) != 1 || recs[0].Serial != FormatSerial(n) {
		t.Fatalf("records %+v, want serial %s", recs, FormatSerial(n))
	}
	for _, in := range []string{n.Text(16), FormatSerial(n), n.String()} {
		got, err := d2.ResolveSerial(in)
		if err != nil || got.Cmp(n) != 0 {
			t.Errorf("ResolveSerial(%q) = %v, %v; want %v", in, got, err, n)
		}
	}
	if err := d2.Revoke(n, ReasonSuperseded); err != nil {
		t.Fatalf("Revoke of an old-form record: %v", err)
	}
	data, err = os.ReadFile(ixPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"serial": "`+FormatSerial(n)+`"`) {
		t.Errorf("rewritten index does not hold the serial as %s:\n%s", FormatSerial(n), data)
	}
}

// issueIn issues a client certificate NAME in d and returns it.
func issueIn(t *testing.T, d *Dir, name string) *x509.Certificate {
	t.Helper()
	certPath, _, err := d.Issue(Request{Kind: Client, Name: name}, false)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertsPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func TestResolveSerial(t *testing.T) {
	d, err := Init(filepath.Join(t.TempDir(), "ca"), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := issueIn(t, d, "a")
	hex := FormatSerial(c.SerialNumber)
	for _, in := range []string{hex, strings.ToLower(hex), "0x" + hex, colons(hex), c.SerialNumber.String()} {
		got, err := d.ResolveSerial(in)
		if err != nil || got.Cmp(c.SerialNumber) != 0 {
			t.Errorf("ResolveSerial(%q) = %v, %v; want %v", in, got, err, c.SerialNumber)
		}
	}
	// Digits only: decimal, unless only the hex reading was issued.
	if got, err := d.ResolveSerial("1234"); err != nil || got.Int64() != 1234 {
		t.Errorf(`ResolveSerial("1234") = %v, %v; want decimal 1234`, got, err)
	}
	for _, in := range []string{"", "0", "-5", "0xzz", "12g"} {
		if n, err := d.ResolveSerial(in); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("ResolveSerial(%q) = %v, %v; want ErrInvalidRequest", in, n, err)
		}
	}
}

func TestResolveSerialPrefersIssuedHex(t *testing.T) {
	d, err := Init(filepath.Join(t.TempDir(), "ca"), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A random 128-bit serial whose hex form is all decimal digits is
	// rare, so put one in the index by hand.
	issueIn(t, d, "a")
	digits := "123456"
	d.mu.Lock()
	d.ix.Certificates[0].Serial = digits
	d.mu.Unlock()
	got, err := d.ResolveSerial(digits)
	if err != nil || got.Int64() != 0x123456 {
		t.Errorf("ResolveSerial(%q) = %v, %v; want the issued hex serial 0x123456", digits, got, err)
	}
}

func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestParseCertsOrCRL(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	a, b := issuePair(t, ca, ECDSAP256)
	crlDER, err := ca.CRL([]x509.RevocationListEntry{{SerialNumber: a.Cert.SerialNumber, RevocationTime: time.Now()}}, big.NewInt(3), time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM := func(cs ...*x509.Certificate) []byte {
		var out []byte
		for _, c := range cs {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return out
	}
	tests := []struct {
		name      string
		data      []byte
		certs     int
		crl       bool
		wantInErr string
	}{
		{"one PEM certificate", certPEM(a.Cert), 1, false, ""},
		{"a PEM chain", certPEM(a.Cert, b.Cert, ca.Cert), 3, false, ""},
		{"a DER certificate", a.Cert.Raw, 1, false, ""},
		{"a DER CRL", crlDER, 0, true, ""},
		{"a PEM CRL", EncodeCRLPEM(crlDER), 0, true, ""},
		{"garbage", []byte("hello"), 0, false, "neither certificates nor a CRL"},
		{"a broken PEM certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0, false, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certs, crl, err := ParseCertsOrCRL(tc.data)
			if tc.wantInErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.wantInErr)
				}
				return
			}
			if err != nil || len(certs) != tc.certs || (crl != nil) != tc.crl {
				t.Fatalf("got %d certs, crl %v, err %v; want %d certs, crl %v", len(certs), crl != nil, err, tc.certs, tc.crl)
			}
			out, err := DescribeData(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if tc.crl {
				if !strings.Contains(out, "number:") || !strings.Contains(out, "serial "+SerialHex(a.Cert)) {
					t.Errorf("CRL description lacks number or serial:\n%s", out)
				}
			} else if !strings.Contains(out, "certificate 1 of ") || strings.Count(out, "certificate ") < tc.certs {
				t.Errorf("description lacks the certificate headers:\n%s", out)
			}
		})
	}
}

func opensslPath() string {
	p, err := exec.LookPath("openssl")
	if err != nil {
		return ""
	}
	return p
}

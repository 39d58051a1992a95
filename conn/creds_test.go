package conn_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

func TestLoadServer(t *testing.T) {
	p := testpki.New(t)
	now := time.Now()
	st, err := conn.LoadServer(conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile}, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cert.Leaf == nil || !st.Cert.Leaf.Equal(p.Server.Issued.Cert) {
		t.Error("Cert.Leaf is not the server certificate")
	}
	if len(st.CAs) != 1 || !st.CAs[0].Equal(p.CA.Cert) {
		t.Errorf("CAs = %d certificates, want the test CA", len(st.CAs))
	}
	if _, err := p.Client.Issued.Cert.Verify(x509.VerifyOptions{Roots: st.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the client certificate does not verify against ClientCAs: %v", err)
	}
	if st.CRL != nil || len(st.Warnings) != 0 || !st.LoadedAt.Equal(now) {
		t.Errorf("CRL %v, Warnings %q, LoadedAt %v: want nil, none, %v", st.CRL, st.Warnings, st.LoadedAt, now)
	}
}

func TestLoadServerErrors(t *testing.T) {
	p := testpki.New(t)
	now := time.Now()
	dir := p.Dir
	expired := p.Issue(t, "expired-server", pki.Request{Kind: pki.Server, Name: "old", DNS: []string{"localhost"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	bundleWithLeaf := writeFile(t, dir, "bundle-leaf.pem", append(p.CA.RootPEM(), p.Client.Issued.CertPEM()...))
	empty := writeFile(t, dir, "empty.pem", nil)
	keyOnly := writeFile(t, dir, "key-only.pem", mustRead(t, p.Client.Key))
	badBlock := writeFile(t, dir, "bad-block.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(dir, "missing.pem")
	other := testpki.New(t)
	foreignCRL := other.WriteCRL(t, "foreign.crl")

	ok := conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile}
	tests := []struct {
		name string
		edit func(f *conn.ServerFiles)
		want []string
	}{
		{"missing certificate", func(f *conn.ServerFiles) { f.Cert = missing }, []string{"reading certificate file", missing}},
		{"missing key", func(f *conn.ServerFiles) { f.Key = missing }, []string{"reading key file", missing}},
		{"switched", func(f *conn.ServerFiles) { f.Cert, f.Key = f.Key, f.Cert },
			[]string{"PEM inputs may have been switched", p.Server.Cert, p.Server.Key}},
		{"key of another certificate", func(f *conn.ServerFiles) { f.Key = p.Client.Key },
			[]string{"private key does not match public key", p.Server.Cert, p.Client.Key}},
		{"expired", func(f *conn.ServerFiles) { f.Cert, f.Key = expired.Cert, expired.Key }, []string{expired.Cert, "expired at"}},
		{"client certificate as server certificate", func(f *conn.ServerFiles) { f.Cert, f.Key = p.Client.Cert, p.Client.Key },
			[]string{p.Client.Cert, "lacks serverAuth", "--server"}},
		{"missing CA", func(f *conn.ServerFiles) { f.CA = missing }, []string{"client CA bundle", missing}},
		{"empty CA", func(f *conn.ServerFiles) { f.CA = empty }, []string{"client CA bundle", empty, "no CERTIFICATE block found"}},
		{"CA file with a key only", func(f *conn.ServerFiles) { f.CA = keyOnly }, []string{keyOnly, "no CERTIFICATE block found"}},
		{"CA block that does not parse", func(f *conn.ServerFiles) { f.CA = badBlock }, []string{badBlock, "PEM block 1"}},
		{"leaf in CA bundle", func(f *conn.ServerFiles) { f.CA = bundleWithLeaf },
			[]string{bundleWithLeaf, `"CN=alice"`, "is not a CA certificate"}},
		{"missing CRL", func(f *conn.ServerFiles) { f.CRL = missing }, []string{"reading CRL", missing}},
		{"CRL of another CA", func(f *conn.ServerFiles) { f.CRL = foreignCRL },
			[]string{foreignCRL, "not signed by any certificate of the client CA bundle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.edit(&f)
			st, err := conn.LoadServer(f, now)
			if err == nil {
				t.Fatalf("LoadServer(%+v) succeeded", f)
			}
			if st != nil {
				t.Error("a state is returned with the error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("missing file is fs.ErrNotExist", func(t *testing.T) {
		f := ok
		f.CA = missing
		if _, err := conn.LoadServer(f, now); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v does not wrap os.ErrNotExist", err)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadServerWarnings(t *testing.T) {
	p := testpki.New(t)
	now := time.Now()
	soon := p.Issue(t, "soon", pki.Request{Kind: pki.Server, DNS: []string{"localhost"},
		NotBefore: now.Add(-80 * 24 * time.Hour), NotAfter: now.Add(24 * time.Hour)})
	future := p.Issue(t, "future-server", pki.Request{Kind: pki.Server, DNS: []string{"localhost"},
		NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})
	oldCA, err := pki.NewCA(pki.CAOptions{Name: "old CA", NotBefore: now.Add(-48 * time.Hour), TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bundle := writeFile(t, p.Dir, "bundle.pem", append(p.CA.RootPEM(), oldCA.RootPEM()...))
	stale, err := p.CA.CRL(nil, nil, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	staleFile := writeFile(t, p.Dir, "stale.crl", stale)

	tests := []struct {
		name string
		f    conn.ServerFiles
		want []string
	}{
		{"server certificate expires soon", conn.ServerFiles{Cert: soon.Cert, Key: soon.Key, CA: p.CAFile}, []string{soon.Cert, "expires soon"}},
		{"server certificate not valid yet", conn.ServerFiles{Cert: future.Cert, Key: future.Key, CA: p.CAFile}, []string{future.Cert, "not valid before"}},
		{"expired CA", conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: bundle}, []string{bundle, `"CN=old CA"`, "expired at"}},
		{"stale CRL", conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile, CRL: staleFile}, []string{staleFile, "past its nextUpdate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := conn.LoadServer(tt.f, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Warnings) != 1 {
				t.Fatalf("Warnings = %q, want one", st.Warnings)
			}
			for _, w := range tt.want {
				if !strings.Contains(st.Warnings[0], w) {
					t.Errorf("warning %q does not contain %q", st.Warnings[0], w)
				}
			}
		})
	}
}

// crlFile writes a CRL of ca revoking serials, valid for a day.
func crlDER(t *testing.T, ca *pki.CA, serials ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := ca.CRL(entries, nil, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadCRL(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	ca1, ca2 := newCA(t, "CA one"), newCA(t, "CA two")
	a1 := issue(t, ca1, pki.Request{Kind: pki.Client, Name: "a1"})
	b1 := issue(t, ca1, pki.Request{Kind: pki.Client, Name: "b1"})
	a2 := issue(t, ca2, pki.Request{Kind: pki.Client, Name: "a2"})
	b2 := issue(t, ca2, pki.Request{Kind: pki.Client, Name: "b2"})
	cas := []*x509.Certificate{ca1.Cert, ca2.Cert}

	t.Run("DER", func(t *testing.T) {
		f := writeFile(t, dir, "one.crl", crlDER(t, ca1, a1.Cert.SerialNumber))
		rl, warns, err := conn.LoadCRL(f, cas, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(warns) != 0 || rl.Count != 1 {
			t.Errorf("warnings %q, Count %d: want none, 1", warns, rl.Count)
		}
		if !rl.Revoked(a1.Cert) {
			t.Error("a1 is listed but not Revoked")
		}
		for _, c := range []*x509.Certificate{b1.Cert, a2.Cert, ca1.Cert} {
			if rl.Revoked(c) {
				t.Errorf("%s is not listed but Revoked", c.Subject)
			}
		}
	})

	t.Run("PEM with several lists", func(t *testing.T) {
		data := append(pki.EncodeCRLPEM(crlDER(t, ca1, a1.Cert.SerialNumber, b1.Cert.SerialNumber)),
			pki.EncodeCertsPEM(ca1.Cert)...) // other blocks are skipped
		data = append(data, pki.EncodeCRLPEM(crlDER(t, ca2, b2.Cert.SerialNumber))...)
		data = append(data, pki.EncodeCRLPEM(crlDER(t, ca1, a1.Cert.SerialNumber))...) // listed twice
		f := writeFile(t, dir, "several.pem", data)
		rl, _, err := conn.LoadCRL(f, cas, now)
		if err != nil {
			t.Fatal(err)
		}
		if rl.Count != 3 {
			t.Errorf("Count = %d, want 3 distinct certificates", rl.Count)
		}
		for c, want := range map[*x509.Certificate]bool{a1.Cert: true, b1.Cert: true, a2.Cert: false, b2.Cert: true} {
			if rl.Revoked(c) != want {
				t.Errorf("Revoked(%s) = %v, want %v", c.Subject, !want, want)
			}
		}
		if rl.NextUpdate.IsZero() || rl.NextUpdate.Before(now) {
			t.Errorf("NextUpdate = %v, want the lists' nextUpdate", rl.NextUpdate)
		}
	})

	t.Run("same serial from another issuer", func(t *testing.T) {
		f := writeFile(t, dir, "a1.crl", crlDER(t, ca1, a1.Cert.SerialNumber))
		rl, _, err := conn.LoadCRL(f, cas, now)
		if err != nil {
			t.Fatal(err)
		}
		serial := a1.Cert.SerialNumber
		tmpl := func() *x509.Certificate {
			return &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "twin"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		}
		// Same serial, issued by CA one: revoked (the list is by serial).
		if twin := craft(t, tmpl(), ca1.Cert, ca1.Key); !rl.Revoked(twin) {
			t.Error("a certificate of CA one with the listed serial is not Revoked")
		}
		// Same serial, issued by CA two: not revoked.
		if twin := craft(t, tmpl(), ca2.Cert, ca2.Key); rl.Revoked(twin) {
			t.Error("a certificate of CA two with a serial CA one revoked is Revoked")
		}
		// Same serial, issued by another CA that has CA one's name but not its key: not revoked.
		imposter := newCA(t, "CA one")
		if twin := craft(t, tmpl(), imposter.Cert, imposter.Key); rl.Revoked(twin) {
			t.Error("a certificate of another CA with the same name and the listed serial is Revoked")
		}
	})

	t.Run("stale list loads with a warning", func(t *testing.T) {
		der, err := ca1.CRL([]x509.RevocationListEntry{{SerialNumber: a1.Cert.SerialNumber, RevocationTime: now.Add(-72 * time.Hour)}},
			nil, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		f := writeFile(t, dir, "stale.crl", der)
		rl, warns, err := conn.LoadCRL(f, cas, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(warns) != 1 || !strings.Contains(warns[0], "past its nextUpdate") || !strings.Contains(warns[0], f) || !strings.Contains(warns[0], "CN=CA one") {
			t.Errorf("warnings = %q, want one naming the file, the issuer and the nextUpdate", warns)
		}
		if !rl.Revoked(a1.Cert) {
			t.Error("a stale list does not revoke what it lists")
		}
	})

	t.Run("errors", func(t *testing.T) {
		foreign := newCA(t, "CA one") // same name as CA one, another key
		tests := []struct {
			name string
			data []byte
			want []string
		}{
			{"signed by another CA", crlDER(t, newCA(t, "CA three")), []string{"list 1", `issuer "CN=CA three"`, "not signed by any certificate of the client CA bundle"}},
			{"signed by another CA of the same name", crlDER(t, foreign), []string{"not signed by any certificate of the client CA bundle"}},
			{"second list foreign", append(pki.EncodeCRLPEM(crlDER(t, ca1)), pki.EncodeCRLPEM(crlDER(t, foreign))...), []string{"list 2", "not signed"}},
			{"PEM without CRL", pki.EncodeCertsPEM(ca1.Cert), []string{`no "X509 CRL" PEM block`}},
			{"empty", nil, []string{"list 1"}},
			{"garbage", []byte("not a CRL at all"), []string{"list 1"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := writeFile(t, dir, "bad.crl", tt.data)
				rl, _, err := conn.LoadCRL(f, cas, now)
				if err == nil {
					t.Fatalf("LoadCRL succeeded with %d revoked", rl.Count)
				}
				for _, w := range append(tt.want, f) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			})
		}
	})

	t.Run("nil list", func(t *testing.T) {
		var rl *conn.RevocationList
		if rl.Revoked(a1.Cert) {
			t.Error("a nil list revokes")
		}
	})
}

func TestLoadServerWithCRL(t *testing.T) {
	p := testpki.New(t)
	bob := p.Issue(t, "bob", pki.Request{Kind: pki.Client, Name: "bob"})
	crl := p.WriteCRL(t, "crl.der", bob.Issued.Cert)
	st := serverState(t, p, crl)
	if st.CRL == nil || st.CRL.Count != 1 || !st.CRL.Revoked(bob.Issued.Cert) || st.CRL.Revoked(p.Client.Issued.Cert) {
		t.Fatalf("CRL %+v: want bob revoked, alice not", st.CRL)
	}
	if len(st.Warnings) != 0 {
		t.Errorf("Warnings = %q", st.Warnings)
	}
}

func TestExpiresSoon(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	year := &x509.Certificate{NotBefore: base, NotAfter: base.Add(365 * 24 * time.Hour)}
	short := &x509.Certificate{NotBefore: base, NotAfter: base.Add(18 * time.Hour)} // window: the last 6 hours
	day := 24 * time.Hour
	tests := []struct {
		name string
		cert *x509.Certificate
		now  time.Time
		want bool
	}{
		{"long-lived, fresh", year, base.Add(time.Hour), false},
		{"long-lived, 31 days left", year, year.NotAfter.Add(-31 * day), false},
		{"long-lived, 29 days left", year, year.NotAfter.Add(-29 * day), true},
		{"long-lived, expired", year, year.NotAfter.Add(time.Second), true},
		{"short-lived, fresh", short, base.Add(time.Hour), false},
		{"short-lived, 7 hours left", short, short.NotAfter.Add(-7 * time.Hour), false},
		{"short-lived, 5 hours left", short, short.NotAfter.Add(-5 * time.Hour), true},
		{"short-lived, expired", short, short.NotAfter.Add(time.Minute), true},
	}
	for _, tt := range tests {
		if got := conn.ExpiresSoon(tt.cert, tt.now); got != tt.want {
			t.Errorf("%s: ExpiresSoon = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLoadClient(t *testing.T) {
	p := testpki.New(t)
	now := time.Now()
	st, err := conn.LoadClient(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: p.CAFile}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 0 || len(st.Cert.Certificate) == 0 {
		t.Errorf("Warnings %q, %d certificates", st.Warnings, len(st.Cert.Certificate))
	}
	if _, err := p.Server.Issued.Cert.Verify(x509.VerifyOptions{Roots: st.Roots, DNSName: "localhost"}); err != nil {
		t.Errorf("the gateway certificate does not verify against Roots: %v", err)
	}

	exp := p.Expired(t)
	st, err = conn.LoadClient(conn.ClientFiles{Cert: exp.Cert, Key: exp.Key, CA: p.CAFile}, now)
	if err != nil {
		t.Fatalf("an expired client certificate must load (the gateway says no): %v", err)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], exp.Cert) || !strings.Contains(st.Warnings[0], "will refuse it") {
		t.Errorf("Warnings = %q, want one about the expired certificate", st.Warnings)
	}

	missing := filepath.Join(p.Dir, "nope.pem")
	if _, err := conn.LoadClient(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: missing}, now); err == nil ||
		!strings.Contains(err.Error(), "gateway CA bundle") || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing CA: error %v, want it named", err)
	}
	if _, err := conn.NewClientCreds(conn.ClientFiles{Cert: p.Client.Key, Key: p.Client.Cert, CA: p.CAFile}); err == nil ||
		!strings.Contains(err.Error(), "PEM inputs may have been switched") {
		t.Errorf("switched files: error %v", err)
	}
}

// A key file its group or others may read loads with a warning, as ssh
// warns; with StrictPerms it is refused. Both sides.
func TestKeyFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	p := testpki.New(t)
	now := time.Now()
	for _, mode := range []os.FileMode{0o640, 0o604} {
		if err := os.Chmod(p.Server.Key, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p.Client.Key, mode); err != nil {
			t.Fatal(err)
		}
		st, err := conn.LoadServer(conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile}, now)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, "chmod 600") }) {
			t.Errorf("mode %04o: no warning: %q", mode, st.Warnings)
		}
		_, err = conn.LoadServer(conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile, StrictPerms: true}, now)
		if !errors.Is(err, conn.ErrKeyPerms) || !strings.Contains(err.Error(), p.Server.Key) {
			t.Errorf("mode %04o, strict: err = %v; want ErrKeyPerms naming the file", mode, err)
		}
		cs, err := conn.LoadClient(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: p.CAFile}, now)
		if err != nil || len(cs.Warnings) == 0 {
			t.Errorf("client, mode %04o: %v, warnings %q; want a warning", mode, err, cs.Warnings)
		}
		if _, err := conn.LoadClient(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: p.CAFile, StrictPerms: true}, now); !errors.Is(err, conn.ErrKeyPerms) {
			t.Errorf("client, mode %04o, strict: err = %v; want ErrKeyPerms", mode, err)
		}
	}
	// 0600 (and 0400) say nothing.
	for _, mode := range []os.FileMode{0o600, 0o400} {
		_ = os.Chmod(p.Server.Key, mode)
		st, err := conn.LoadServer(conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile, StrictPerms: true}, now)
		if err != nil || len(st.Warnings) != 0 {
			t.Errorf("mode %04o: %v, warnings %q; want none", mode, err, st.Warnings)
		}
	}
}

package pki

import (
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found in PATH; skipping the cross-check with openssl")
	}
	return p
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// opensslVerify runs openssl verify on leaf with root as the trust anchor
// and chain as untrusted intermediates, and returns its output and error.
func opensslVerify(t *testing.T, root []byte, chain []*x509.Certificate, leaf *x509.Certificate, purpose string) (string, error) {
	t.Helper()
	bin := needOpenSSL(t)
	args := []string{"verify", "-CAfile", writeTemp(t, "root.pem", root)}
	if len(chain) > 0 {
		args = append(args, "-untrusted", writeTemp(t, "chain.pem", EncodeCertsPEM(chain...)))
	}
	if purpose != "" {
		args = append(args, "-purpose", purpose)
	}
	args = append(args, writeTemp(t, "leaf.pem", EncodeCertsPEM(leaf)))
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func TestOpenSSLVerifiesEveryKeyType(t *testing.T) {
	needOpenSSL(t)
	for _, kt := range KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			ca := testCA(t, kt)
			srv, cli := issuePair(t, ca, kt)
			for _, c := range []struct {
				iss     *Issued
				purpose string
			}{{srv, "sslserver"}, {cli, "sslclient"}} {
				out, err := opensslVerify(t, ca.RootPEM(), c.iss.Chain, c.iss.Cert, c.purpose)
				if err != nil || !strings.Contains(out, ": OK") {
					t.Errorf("openssl verify -purpose %s %s: %v\n%s", c.purpose, c.iss.Cert.Subject.CommonName, err, out)
				}
			}
			// The wrong purpose must be refused by openssl too.
			if out, err := opensslVerify(t, ca.RootPEM(), nil, cli.Cert, "sslserver"); err == nil && strings.Contains(out, ": OK") {
				t.Errorf("openssl accepted a client certificate for sslserver:\n%s", out)
			}
		})
	}
}

func TestOpenSSLVerifiesIntermediateChain(t *testing.T) {
	needOpenSSL(t)
	root := testCA(t, ECDSAP384)
	inter, err := root.NewIntermediate(CAOptions{Name: "issuing", KeyType: RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := issuePair(t, inter, ECDSAP256)
	for _, iss := range []*Issued{srv, cli} {
		out, err := opensslVerify(t, root.RootPEM(), iss.Chain, iss.Cert, "")
		if err != nil || !strings.Contains(out, ": OK") {
			t.Errorf("openssl verify with intermediate: %v\n%s", err, out)
		}
		// Without the intermediate, the leaf does not chain.
		if out, err := opensslVerify(t, root.RootPEM(), nil, iss.Cert, ""); err == nil && strings.Contains(out, ": OK") {
			t.Errorf("openssl verified without the intermediate:\n%s", out)
		}
	}
}

func verify(ca *CA, iss *Issued, usage x509.ExtKeyUsage, at time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range iss.Chain {
		inter.AddCert(c)
	}
	_, err := iss.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: at})
	return err
}

func TestExtendedKeyUsageIsExclusive(t *testing.T) {
	root := testCA(t, ECDSAP256)
	inter, err := root.NewIntermediate(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ca := range []*CA{root, inter} {
		srv, cli := issuePair(t, ca, ECDSAP256)
		now := time.Now()
		if err := verify(ca, srv, x509.ExtKeyUsageServerAuth, now); err != nil {
			t.Errorf("server cert as server: %v", err)
		}
		if err := verify(ca, cli, x509.ExtKeyUsageClientAuth, now); err != nil {
			t.Errorf("client cert as client: %v", err)
		}
		var inv x509.CertificateInvalidError
		if err := verify(ca, srv, x509.ExtKeyUsageClientAuth, now); !errors.As(err, &inv) || inv.Reason != x509.IncompatibleUsage {
			t.Errorf("server cert as client: err %v, want IncompatibleUsage", err)
		}
		if err := verify(ca, cli, x509.ExtKeyUsageServerAuth, now); !errors.As(err, &inv) || inv.Reason != x509.IncompatibleUsage {
			t.Errorf("client cert as server: err %v, want IncompatibleUsage", err)
		}
		if len(srv.Cert.ExtKeyUsage) != 1 || len(cli.Cert.ExtKeyUsage) != 1 {
			t.Errorf("EKUs: server %v client %v, want exactly one each", srv.Cert.ExtKeyUsage, cli.Cert.ExtKeyUsage)
		}
	}
}

func TestValidityWindow(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	now := time.Now()
	expired, err := ca.Issue(Request{Kind: Client, Name: "old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	future, err := ca.Issue(Request{Kind: Server, Name: "soon", DNS: []string{"localhost"}, NotBefore: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var inv x509.CertificateInvalidError
	if err := verify(ca, expired, x509.ExtKeyUsageClientAuth, now); !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("expired cert: err %v, want Expired", err)
	}
	if err := verify(ca, future, x509.ExtKeyUsageServerAuth, now); !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("not-yet-valid cert: err %v, want Expired (outside validity)", err)
	}
	if err := verify(ca, future, x509.ExtKeyUsageServerAuth, now.Add(2*time.Hour)); err != nil {
		t.Errorf("not-yet-valid cert once valid: %v", err)
	}
	if got := future.Cert.NotAfter.Sub(future.Cert.NotBefore); got != DefaultServerTTL {
		t.Errorf("server default TTL %v, want %v", got, DefaultServerTTL)
	}
	// A TLS handshake refuses the expired client.
	srv, _ := issuePair(t, ca, ECDSAP256)
	serr, _, _ := handshake(t, ca.Pool(), tlsCert(t, srv), tlsCert(t, expired))
	if serr == nil || !strings.Contains(serr.Error(), "expired") {
		t.Errorf("server accepted an expired client certificate: %v", serr)
	}
}

func TestCRL(t *testing.T) {
	root := testCA(t, ECDSAP256)
	inter, err := root.NewIntermediate(CAOptions{KeyType: Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	for _, ca := range []*CA{root, inter, testCA(t, RSA2048)} {
		_, cli := issuePair(t, ca, ECDSAP256)
		other, err := ca.Issue(Request{Kind: Client, Name: "other"})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
		entries := []x509.RevocationListEntry{
			{SerialNumber: cli.Cert.SerialNumber, RevocationTime: at, ReasonCode: ReasonKeyCompromise},
			{SerialNumber: other.Cert.SerialNumber, RevocationTime: at},
		}
		der, err := ca.CRL(entries, big.NewInt(7), time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
			t.Errorf("CRL signature: %v", err)
		}
		if crl.Number.Int64() != 7 || crl.NextUpdate.Sub(crl.ThisUpdate).Round(time.Second) != DefaultCRLValidity {
			t.Errorf("CRL number %v, validity %v", crl.Number, crl.NextUpdate.Sub(crl.ThisUpdate))
		}
		got := map[string]int{}
		for _, e := range crl.RevokedCertificateEntries {
			got[e.SerialNumber.String()] = e.ReasonCode
		}
		if len(got) != 2 || got[cli.Cert.SerialNumber.String()] != ReasonKeyCompromise {
			t.Errorf("CRL entries %v", got)
		}
		if _, ok := got[other.Cert.SerialNumber.String()]; !ok {
			t.Errorf("CRL misses %s", other.Cert.SerialNumber)
		}
		if bin, err := exec.LookPath("openssl"); err == nil {
			caFile := writeTemp(t, "ca.pem", EncodeCertsPEM(ca.Cert))
			crlFile := writeTemp(t, "crl.pem", EncodeCRLPEM(der))
			out, err := exec.Command(bin, "crl", "-in", crlFile, "-CAfile", caFile, "-noout").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "verify OK") {
				t.Errorf("openssl crl -CAfile: %v\n%s", err, out)
			}
			// openssl verify -crl_check refuses the revoked leaf.
			args := []string{"verify", "-crl_check", "-CAfile", writeTemp(t, "all.pem", append(ca.RootPEM(), EncodeCertsPEM(ca.Cert)...)), "-CRLfile", crlFile, writeTemp(t, "leaf.pem", EncodeCertsPEM(cli.Cert))}
			out, err = exec.Command(bin, args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "revoked") {
				t.Errorf("openssl verify -crl_check accepted a revoked certificate: %v\n%s", err, out)
			}
		}
	}
	if _, err := root.CRL(nil, nil, time.Now(), time.Now().Add(-time.Hour)); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("inverted CRL window: err %v", err)
	}
}

func runOpenSSL(args ...string) (string, error) {
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// Package testpki builds the certificates the tests use, at test time, with
// the project's own pki package, and writes them to files the way an
// operator would give them to the gateway and the tunnel.
package testpki

import (
	"crypto/x509"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// PKI is a CA with a server certificate for localhost, 127.0.0.1 and ::1,
// and client certificates, all written under Dir.
type PKI struct {
	Dir    string
	CA     *pki.CA
	CAFile string // trust anchor, PEM
	Server Pair   // localhost / 127.0.0.1 / ::1, EKU serverAuth
	Client Pair   // cn "alice", uri spiffe://test/app/alice, EKU clientAuth
}

// Pair is a certificate and key on disk.
type Pair struct {
	Cert, Key string
	Issued    *pki.Issued
}

// New makes a fresh PKI in a temporary directory of t.
func New(t testing.TB) *PKI {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{Name: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{Dir: t.TempDir(), CA: ca}
	p.CAFile = p.write(t, "ca.crt", ca.RootPEM())
	p.Server = p.Issue(t, "server", pki.Request{Kind: pki.Server, Name: "gateway",
		DNS: []string{"localhost", "gw.test"}, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}})
	p.Client = p.Issue(t, "alice", pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://test/app/alice"}})
	return p
}

// Issue issues a certificate from p's CA and writes NAME.crt and NAME.key.
func (p *PKI) Issue(t testing.TB, name string, req pki.Request) Pair {
	t.Helper()
	return WritePair(t, p.Dir, name, p.CA, req)
}

// WritePair issues req from ca and writes DIR/NAME.crt and DIR/NAME.key.
func WritePair(t testing.TB, dir, name string, ca *pki.CA, req pki.Request) Pair {
	t.Helper()
	is, err := ca.Issue(req)
	if err != nil {
		t.Fatalf("issuing %s: %v", name, err)
	}
	key, err := is.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return Pair{
		Cert:   writeFile(t, dir, name+".crt", is.CertPEM()),
		Key:    writeFile(t, dir, name+".key", key),
		Issued: is,
	}
}

// Expired returns a client certificate that expired an hour ago.
func (p *PKI) Expired(t testing.TB) Pair {
	now := time.Now()
	return p.Issue(t, "expired", pki.Request{Kind: pki.Client, Name: "expired",
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
}

// NotYetValid returns a client certificate valid from tomorrow.
func (p *PKI) NotYetValid(t testing.TB) Pair {
	now := time.Now()
	return p.Issue(t, "future", pki.Request{Kind: pki.Client, Name: "future",
		NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)})
}

// WriteCRL writes a CRL revoking the given certificates and returns its path.
func (p *PKI) WriteCRL(t testing.TB, name string, revoked ...*x509.Certificate) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := p.CA.CRL(entries, big.NewInt(time.Now().UnixNano()), time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name, der)
}

func (p *PKI) write(t testing.TB, name string, data []byte) string {
	return writeFile(t, p.Dir, name, data)
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

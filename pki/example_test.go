package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// A root CA, a server certificate for a gateway and a client certificate for
// a tunnel, turned into the two sides' TLS configurations.
func Example() {
	ca, err := pki.NewCA(pki.CAOptions{Name: "example CA"})
	if err != nil {
		panic(err)
	}
	srv, err := ca.Issue(pki.Request{Kind: pki.Server, Name: "gw", DNS: []string{"localhost"}, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		panic(err)
	}
	cli, err := ca.Issue(pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://corp/user/alice"}})
	if err != nil {
		panic(err)
	}
	srvCert, _ := srv.TLSCertificate()
	cliCert, _ := cli.TLSCertificate()
	server := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	client := &tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: ca.Pool(), ServerName: "localhost"}
	fmt.Println(len(server.Certificates), client.ServerName, cli.Cert.URIs[0], cli.Cert.ExtKeyUsage[0] == 2)
	// Output: 1 localhost spiffe://corp/user/alice true
}

// Certificates that must be refused, for tests: one expired, one revoked
// in a CRL.
func ExampleCA_CRL() {
	ca, _ := pki.NewCA(pki.CAOptions{})
	now := time.Now()
	expired, _ := ca.Issue(pki.Request{Kind: pki.Client, Name: "old", NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
	revoked, _ := ca.Issue(pki.Request{Kind: pki.Client, Name: "lost"})
	der, err := ca.CRL([]x509.RevocationListEntry{{SerialNumber: revoked.Cert.SerialNumber, RevocationTime: now, ReasonCode: pki.ReasonKeyCompromise}}, big.NewInt(1), now, now.Add(24*time.Hour))
	if err != nil {
		panic(err)
	}
	crl, _ := pki.ParseCRL(der)
	fmt.Println(expired.Cert.NotAfter.Before(now), crl.CheckSignatureFrom(ca.Cert) == nil, crl.RevokedCertificateEntries[0].SerialNumber.Cmp(revoked.Cert.SerialNumber) == 0)
	// Output: true true true
}

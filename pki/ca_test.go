package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// cas caches one root per key type: key generation (RSA above all) is the
// slow part of these tests.
var (
	casMu sync.Mutex
	cas   = map[KeyType]*CA{}
)

func testCA(t testing.TB, kt KeyType) *CA {
	t.Helper()
	if kt == RSA4096 && testing.Short() {
		t.Skip("rsa-4096 key generation is slow; skipped with -short")
	}
	casMu.Lock()
	defer casMu.Unlock()
	if ca, ok := cas[kt]; ok {
		return ca
	}
	ca, err := NewCA(CAOptions{Name: "test root " + string(kt), KeyType: kt})
	if err != nil {
		t.Fatalf("NewCA(%s): %v", kt, err)
	}
	cas[kt] = ca
	return ca
}

// handshake runs a TLS 1.3 mutual-TLS handshake over loopback TCP: the
// server requires and verifies the client certificate against pool, the
// client verifies the server's against pool with server name "localhost".
// It returns the server's and the client's errors and, on success, the
// verified client leaf as the server saw it.
func handshake(t *testing.T, pool *x509.CertPool, server, client tls.Certificate) (serr, cerr error, peer *x509.Certificate) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		defer c.Close()
		tc := tls.Server(c, &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{server},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
		})
		serr = tc.HandshakeContext(ctx)
		if serr == nil {
			peer = tc.ConnectionState().PeerCertificates[0]
			// Wait for the client to finish reading before closing.
			_, _ = tc.Write([]byte("x"))
		}
	}()
	d := tls.Dialer{Config: &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      pool,
		ServerName:   "localhost",
		Certificates: []tls.Certificate{client},
	}}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		// In TLS 1.3 the client learns of a rejected certificate on first read.
		buf := make([]byte, 1)
		_, err = io.ReadFull(c, buf)
		c.Close()
	}
	cerr = err
	wg.Wait()
	return serr, cerr, peer
}

func issuePair(t *testing.T, ca *CA, kt KeyType) (srv, cli *Issued) {
	t.Helper()
	srv, err := ca.Issue(Request{Kind: Server, Name: "gw", DNS: []string{"localhost"}, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}, KeyType: kt})
	if err != nil {
		t.Fatalf("Issue server %s: %v", kt, err)
	}
	cli, err = ca.Issue(Request{Kind: Client, Name: "laptop", URIs: []string{"spiffe://corp/app/web"}, Emails: []string{"ops@example.com"}, OU: []string{"db"}, KeyType: kt})
	if err != nil {
		t.Fatalf("Issue client %s: %v", kt, err)
	}
	return srv, cli
}

func tlsCert(t *testing.T, i *Issued) tls.Certificate {
	t.Helper()
	c, err := i.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMTLSEveryKeyType(t *testing.T) {
	for _, kt := range KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			ca := testCA(t, kt)
			srv, cli := issuePair(t, ca, kt)
			serr, cerr, peer := handshake(t, ca.Pool(), tlsCert(t, srv), tlsCert(t, cli))
			if serr != nil || cerr != nil {
				t.Fatalf("handshake: server %v, client %v", serr, cerr)
			}
			if peer.Subject.CommonName != "laptop" || peer.URIs[0].String() != "spiffe://corp/app/web" {
				t.Errorf("server saw client %q %v", peer.Subject.CommonName, peer.URIs)
			}
			if got := keyDescription(peer.PublicKey); !strings.HasPrefix(strings.ToLower(strings.ReplaceAll(got, " ", "-")), strings.Split(string(kt), "-")[0]) {
				t.Errorf("client key is %s, want %s", got, kt)
			}
		})
	}
}

func TestMTLSIntermediate(t *testing.T) {
	root := testCA(t, ECDSAP256)
	inter, err := root.NewIntermediate(CAOptions{Name: "test intermediate", KeyType: Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	if inter.IsRoot() || inter.RootCert() != root.Cert || len(inter.Chain) != 0 {
		t.Fatalf("intermediate: IsRoot %v, root %v, chain %d", inter.IsRoot(), inter.RootCert().Subject, len(inter.Chain))
	}
	if !inter.Cert.MaxPathLenZero || inter.Cert.MaxPathLen != 0 || !inter.Cert.IsCA {
		t.Errorf("intermediate constraints: IsCA %v MaxPathLen %d zero %v", inter.Cert.IsCA, inter.Cert.MaxPathLen, inter.Cert.MaxPathLenZero)
	}
	if _, err := inter.NewIntermediate(CAOptions{}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("intermediate under a path-length-0 intermediate: err %v, want ErrInvalidRequest", err)
	}
	srv, cli := issuePair(t, inter, RSA2048)
	if len(srv.Chain) != 1 || !srv.Chain[0].Equal(inter.Cert) {
		t.Fatalf("server chain has %d certs, want the intermediate", len(srv.Chain))
	}
	serr, cerr, _ := handshake(t, root.Pool(), tlsCert(t, srv), tlsCert(t, cli))
	if serr != nil || cerr != nil {
		t.Fatalf("handshake through intermediate: server %v, client %v", serr, cerr)
	}
	// A pool with the intermediate's own root missing must refuse.
	other := testCA(t, ECDSAP384)
	serr, cerr, _ = handshake(t, other.Pool(), tlsCert(t, srv), tlsCert(t, cli))
	if cerr == nil {
		t.Fatalf("client accepted a server chained to an untrusted root (server err %v)", serr)
	}
}

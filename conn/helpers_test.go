package conn_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

// ioTimeout bounds every wait on a socket in these tests.
const ioTimeout = 10 * time.Second

// serverState loads the gateway's credentials of p (with an optional CRL).
func serverState(t *testing.T, p *testpki.PKI, crl string) *conn.ServerState {
	t.Helper()
	st, err := conn.LoadServer(conn.ServerFiles{Cert: p.Server.Cert, Key: p.Server.Key, CA: p.CAFile, CRL: crl}, time.Now())
	if err != nil {
		t.Fatalf("LoadServer: %v", err)
	}
	return st
}

// clientCreds loads a tunnel's credentials: pair, trusting the CA file ca.
func clientCreds(t *testing.T, pair testpki.Pair, ca string) *conn.ClientCreds {
	t.Helper()
	c, err := conn.NewClientCreds(conn.ClientFiles{Cert: pair.Cert, Key: pair.Key, CA: ca})
	if err != nil {
		t.Fatalf("NewClientCreds: %v", err)
	}
	return c
}

// tlsCert returns the issued pair as a tls.Certificate.
func tlsCert(t *testing.T, is *pki.Issued) tls.Certificate {
	t.Helper()
	c, err := is.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFile writes data to DIR/NAME and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// side is what one end of a handshake saw.
type side struct {
	state tls.ConnectionState
	err   error
}

// handshake runs one TLS handshake over loopback between a server with
// scfg and a client with ccfg. A server that accepts writes one byte "k"
// and the client reads it, so that a refusal the server makes after the
// client's side of the handshake is done (a TLS 1.3 client certificate is
// checked then) reaches the client as the error of that read.
func handshake(t *testing.T, scfg, ccfg *tls.Config) (srv, cli side) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan side, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- side{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		tc := tls.Server(c, scfg)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte("k"))
		}
		done <- side{state: tc.ConnectionState(), err: err}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	tc := tls.Client(c, ccfg)
	err = tc.Handshake()
	if err == nil {
		var b [1]byte
		if _, err = io.ReadFull(tc, b[:]); err == nil && b[0] != 'k' {
			t.Fatalf("client read %q, want \"k\"", b[:])
		}
	}
	cli = side{state: tc.ConnectionState(), err: err}
	_ = tc.Close()
	srv = <-done
	return srv, cli
}

// leafOf returns the peer's leaf certificate of a state, or nil.
func leafOf(cs tls.ConnectionState) *x509.Certificate {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

// craft signs tmpl with parentKey as parent (self-signed when parent is
// nil) for a new P-256 key, for certificates pki does not make (a chosen
// serial, an unusual subject). It fills validity when tmpl leaves it zero.
func craft(t *testing.T, tmpl, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issued caches pairNamed's certificates by PKI directory and name.
var issued sync.Map

package conn_test

import (
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
)

// writeBundle encodes pair (with the CA as its chain) as a PKCS#12
// bundle with go-pkcs12's Modern encoder and writes it to DIR/NAME.
func writeBundle(t *testing.T, p *testpki.PKI, pair testpki.Pair, name, password string) string {
	t.Helper()
	data, err := pkcs12.Modern.Encode(pair.Issued.Key, pair.Issued.Cert, []*x509.Certificate{p.CA.RootCert()}, password)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), name, data)
}

func TestPKCS12Server(t *testing.T) {
	p := testpki.New(t)
	pass := writeFile(t, t.TempDir(), "pass", []byte("s3cret\r\nnot the password\n"))
	for _, name := range []string{"gw.p12", "gw.PFX", "gw.bundle"} { // the last one found by its content
		bundle := writeBundle(t, p, p.Server, name, "s3cret")
		if !conn.IsPKCS12(bundle) {
			t.Errorf("IsPKCS12(%s) = false", name)
		}
		st, err := conn.LoadServer(conn.ServerFiles{Cert: bundle, KeyPass: pass, CA: p.CAFile}, time.Now())
		if err != nil {
			t.Fatalf("LoadServer(%s): %v", name, err)
		}
		if !st.Cert.Leaf.Equal(p.Server.Issued.Cert) {
			t.Errorf("%s: leaf %q, want the server certificate", name, st.Cert.Leaf.Subject)
		}
		if len(st.Warnings) != 0 {
			t.Errorf("%s: warnings %q", name, st.Warnings)
		}
		// A real handshake with the bundle's key: a client trusting the CA.
		cli := clientCreds(t, p.Client, p.CAFile)
		srv, c := handshake(t, st.ServerConfig(), cli.TLSConfig(conn.ClientOptions{ServerName: "localhost"}))
		if srv.err != nil || c.err != nil {
			t.Errorf("%s: handshake: server %v, client %v", name, srv.err, c.err)
		}
	}
	for _, f := range []string{p.Server.Cert, p.CAFile, p.Server.Key} {
		if conn.IsPKCS12(f) {
			t.Errorf("IsPKCS12(%s) = true for a PEM file", f)
		}
	}
}

func TestPKCS12Client(t *testing.T) {
	p := testpki.New(t)
	bundle := writeBundle(t, p, p.Client, "alice.p12", "") // no password file: the empty password
	c, err := conn.NewClientCreds(conn.ClientFiles{Cert: bundle, CA: p.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if !c.State().Cert.Leaf.Equal(p.Client.Issued.Cert) {
		t.Errorf("leaf %q, want alice", c.State().Cert.Leaf.Subject)
	}
	srv, cli := handshake(t, serverState(t, p, "").ServerConfig(), c.TLSConfig(conn.ClientOptions{ServerName: "localhost"}))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake: server %v, client %v", srv.err, cli.err)
	}
	if got := srv.state.PeerCertificates[0]; !got.Equal(p.Client.Issued.Cert) {
		t.Errorf("the gateway saw %q, want alice", got.Subject)
	}
}

func TestPKCS12Errors(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	bundle := writeBundle(t, p, p.Server, "gw.p12", "right")
	wrong := writeFile(t, dir, "wrong", []byte("wrong\n"))
	trust, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{p.CA.RootCert()}, "right")
	if err != nil {
		t.Fatal(err)
	}
	noKey := writeFile(t, dir, "nokey.p12", trust)
	right := writeFile(t, dir, "right", []byte("right\n"))
	cases := []struct {
		name  string
		files conn.ServerFiles
		want  []string
		is    error
	}{
		{"wrong password", conn.ServerFiles{Cert: bundle, KeyPass: wrong, CA: p.CAFile}, []string{bundle, "wrong password", wrong}, conn.ErrPKCS12Password},
		{"no password file", conn.ServerFiles{Cert: bundle, CA: p.CAFile}, []string{bundle, "wrong password", "no password file"}, conn.ErrPKCS12Password},
		{"no key", conn.ServerFiles{Cert: noKey, KeyPass: right, CA: p.CAFile}, []string{noKey, "no private key"}, nil},
		{"key file too", conn.ServerFiles{Cert: bundle, Key: p.Server.Key, KeyPass: right, CA: p.CAFile}, []string{bundle, "PKCS#12", "holds its own key"}, nil},
		{"missing password file", conn.ServerFiles{Cert: bundle, KeyPass: filepath.Join(dir, "nope"), CA: p.CAFile}, []string{"password file", "nope"}, nil},
	}
	for _, c := range cases {
		_, err := conn.LoadServer(c.files, time.Now())
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: error %v is not %v", c.name, err, c.is)
		}
	}
}

func TestPKCS12Perms(t *testing.T) {
	p := testpki.New(t)
	bundle := writeBundle(t, p, p.Client, "alice.p12", "pw")
	pass := writeFile(t, t.TempDir(), "pass", []byte("pw\n"))
	if err := os.Chmod(pass, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := conn.LoadClient(conn.ClientFiles{Cert: bundle, KeyPass: pass, CA: p.CAFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], pass) {
		t.Errorf("warnings %q, want one naming the readable password file", st.Warnings)
	}
	if _, err := conn.LoadClient(conn.ClientFiles{Cert: bundle, KeyPass: pass, CA: p.CAFile, StrictPerms: true}, time.Now()); !errors.Is(err, conn.ErrKeyPerms) {
		t.Errorf("strict: error %v, want ErrKeyPerms", err)
	}
}

// TestPKCS12OpenSSL loads bundles made by openssl pkcs12 -export: with a
// password (the chain after the leaf), and one made with -nokeys.
func TestPKCS12OpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	p := testpki.New(t)
	dir := t.TempDir()
	pass := writeFile(t, dir, "pass", []byte("from openssl\n"))
	bundle := filepath.Join(dir, "gw.pfx")
	cmd := exec.Command(openssl, "pkcs12", "-export", "-in", p.Server.Cert, "-inkey", p.Server.Key,
		"-certfile", p.CAFile, "-passout", "file:"+pass, "-out", bundle)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs12 -export: %v\n%s", err, out)
	}
	st, err := conn.LoadServer(conn.ServerFiles{Cert: bundle, KeyPass: pass, CA: p.CAFile}, time.Now())
	if err != nil {
		t.Fatalf("LoadServer of the openssl bundle: %v", err)
	}
	if !st.Cert.Leaf.Equal(p.Server.Issued.Cert) || len(st.Cert.Certificate) != 2 {
		t.Errorf("leaf %q with %d certificates, want the server certificate and the CA", st.Cert.Leaf.Subject, len(st.Cert.Certificate))
	}
	cli := clientCreds(t, p.Client, p.CAFile)
	if srv, c := handshake(t, st.ServerConfig(), cli.TLSConfig(conn.ClientOptions{ServerName: "localhost"})); srv.err != nil || c.err != nil {
		t.Errorf("handshake with the openssl bundle: server %v, client %v", srv.err, c.err)
	}

	noKey := filepath.Join(dir, "certs.p12")
	cmd = exec.Command(openssl, "pkcs12", "-export", "-nokeys", "-in", p.Server.Cert, "-passout", "file:"+pass, "-out", noKey)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs12 -export -nokeys: %v\n%s", err, out)
	}
	if _, err := conn.LoadServer(conn.ServerFiles{Cert: noKey, KeyPass: pass, CA: p.CAFile}, time.Now()); err == nil ||
		!strings.Contains(err.Error(), "no private key") || !strings.Contains(err.Error(), noKey) {
		t.Errorf("bundle without a key: error %v, want one naming it", err)
	}
}

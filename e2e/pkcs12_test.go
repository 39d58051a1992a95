package e2e_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/portcullis-gw/portcullis/pki"
)

// writeP12 bundles the pair's certificate and key with go-pkcs12's Modern
// encoder under password, into dir.
func writeP12(t *testing.T, dir, name string, p pair, password string) string {
	t.Helper()
	certPEM, err := os.ReadFile(p.cert)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(p.key)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	data, err := pkcs12.Modern.Encode(key, certs[0], certs[1:], password)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestPKCS12Bundles runs a gateway and a tunnel that both take their key
// from a PKCS#12 bundle with a password file; a wrong password is a
// settings error naming the bundle.
func TestPKCS12Bundles(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("bundle password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gwP12 := writeP12(t, dir, "gw.p12", ca.server, "bundle password")
	aliceP12 := writeP12(t, dir, "alice.pfx", ca.alice, "bundle password")

	gw := startGateway(t, "--listen", "127.0.0.1:0", "--cert", gwP12, "--key-pass-file", pass, "--ca", ca.caFile,
		"--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")
	want := []byte("keys from PKCS#12\n")
	r := tunnel(t, bytes.NewReader(want), "nc", "echo", "--gateway", gw.addr, "--cert", aliceP12,
		"--key-pass-file", pass, "--ca", ca.caFile)
	wantExit(t, "tunnel nc with a PKCS#12 bundle", r, exitOK)
	if !bytes.Equal(r.stdout, want) {
		t.Errorf("echo: got %q, want %q", r.stdout, want)
	}

	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = tunnel(t, nil, "nc", "echo", "--gateway", gw.addr, "--cert", aliceP12, "--key-pass-file", wrong, "--ca", ca.caFile)
	wantExit(t, "tunnel nc with a wrong bundle password", r, exitSettings, aliceP12, "wrong password")
}

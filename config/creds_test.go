package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPKCS12CertNeedsNoKey checks --key against a PKCS#12 --cert (named
// .p12 here; conn tests the detection by content): not required, refused
// when given, and required again for a PEM --cert. --key-pass-file must be
// readable.
func TestPKCS12CertNeedsNoKey(t *testing.T) {
	f := newTestFiles(t)
	bundle := filepath.Join(f.dir, "gw.p12")
	if err := os.WriteFile(bundle, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	pass := filepath.Join(f.dir, "pass")
	if err := os.WriteFile(pass, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	args := gatewayArgs(f)
	args["cert"] = []string{bundle}
	delete(args, "key")
	args["key-pass-file"] = []string{pass}
	g, err := ParseGateway(argv(args), envMap(nil), nil)
	if err != nil {
		t.Fatalf("a PKCS#12 --cert without --key: %v", err)
	}
	if g.KeyPassFile != pass || !slices.Contains(g.WatchedFiles(), pass) {
		t.Errorf("KeyPassFile %q (watched: %q), want %q", g.KeyPassFile, g.WatchedFiles(), pass)
	}

	args["key"] = []string{f.key}
	if _, err := ParseGateway(argv(args), envMap(nil), nil); err == nil ||
		!strings.Contains(err.Error(), "--key") || !strings.Contains(err.Error(), "PKCS#12") {
		t.Errorf("--key with a PKCS#12 --cert: error %v, want one naming --key and PKCS#12", err)
	}

	args = gatewayArgs(f)
	delete(args, "key")
	if _, err := ParseGateway(argv(args), envMap(nil), nil); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Errorf("a PEM --cert without --key: error %v, want --key required", err)
	}

	args = gatewayArgs(f)
	args["key-pass-file"] = []string{filepath.Join(f.dir, "nope")}
	if _, err := ParseGateway(argv(args), envMap(nil), nil); err == nil || !strings.Contains(err.Error(), "--key-pass-file") {
		t.Errorf("a missing --key-pass-file: error %v, want it named", err)
	}

	// The tunnel takes the same.
	nc, err := ParseNC([]string{"--gateway", "gw:8443", "--cert", bundle, "--key-pass-file", pass, "--ca", f.ca, "pg"}, envMap(nil), nil)
	if err != nil {
		t.Fatalf("tunnel nc with a PKCS#12 --cert: %v", err)
	}
	if nc.KeyPassFile != pass {
		t.Errorf("tunnel KeyPassFile %q, want %q", nc.KeyPassFile, pass)
	}
}

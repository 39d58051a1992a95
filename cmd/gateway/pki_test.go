package main

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/pki"
)

// pkiRun runs "gateway pki args..." and returns stdout, stderr and the error.
func pkiRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runPKI(args, noEnv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// noEnv is an empty environment, so that tests do not depend on the
// variables of the process.
func noEnv(string) (string, bool) { return "", false }

// pkiOK runs a command that must succeed and returns its stdout.
func pkiOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := pkiRun(t, args...)
	if err != nil {
		t.Fatalf("gateway pki %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// pkiFails runs a command that must fail with an error mentioning every
// string in want.
func pkiFails(t *testing.T, want []string, args ...string) {
	t.Helper()
	_, _, err := pkiRun(t, args...)
	if err == nil {
		t.Fatalf("gateway pki %s: succeeded, want an error", strings.Join(args, " "))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("gateway pki %s: error %q does not mention %q", strings.Join(args, " "), err, w)
		}
	}
}

func readCert(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertsPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func readCRLFile(t *testing.T, path string) *x509.RevocationList {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.ParseCRL(data)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func TestPKIHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"init", "--help"}, {"issue", "-h"}, {"sign", "--help"}, {"revoke", "--help"}, {"crl", "--help"}, {"show", "--help"}} {
		out, errOut, err := pkiRun(t, args...)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: err %v, want flag.ErrHelp", args, err)
		}
		if errOut != "" || !strings.Contains(out, "Example") || !strings.Contains(out, "gateway pki") {
			t.Errorf("%v: help on stdout lacks examples (stderr %q):\n%s", args, errOut, out)
		}
	}
	out, _, _ := pkiRun(t, "--help")
	for _, want := range []string{"ca.crt", "ca.key", "root.crt", "crl.pem", "index.json", "NAME.crt", "--intermediate", "--ca", "GATEWAY_DIR"} {
		if !strings.Contains(out, want) {
			t.Errorf("pki --help does not explain %q", want)
		}
	}
	// The subcommands' help has the layout of gateway run --help: usage,
	// intro, flags with their variables, examples, the note on variables.
	out, _, _ = pkiRun(t, "init", "--help")
	testnet.InOrder(t, out, []string{"Usage: gateway pki init --dir DIR [flags]\n", "\nFlags:\n",
		"  --dir DIR ", "[$GATEWAY_DIR]", "  --key-type TYPE ", "(default ecdsa-p256) [$GATEWAY_KEY_TYPE]",
		"  -h, --help ", "\nExamples:\n", "Every flag can also be set by the environment variable"})
	for _, kt := range pki.KeyTypes() {
		if !strings.Contains(out, string(kt)) {
			t.Errorf("init --help does not list key type %s", kt)
		}
	}
	out, _, _ = pkiRun(t, "revoke", "--help")
	for _, r := range pki.ReasonNames() {
		if !strings.Contains(out, r) {
			t.Errorf("revoke --help does not list the reason %s", r)
		}
	}
	out, _, _ = pkiRun(t, "issue", "--help")
	testnet.InOrder(t, strings.Join(strings.Fields(out), " "), []string{"--dns NAME ", "(repeatable) [$GATEWAY_DNS, comma separated]", "--ttl DURATION ", "[$GATEWAY_TTL]"})
	pkiFails(t, []string{"missing command", "init"})
	pkiFails(t, []string{`"frobnicate"`, "issue"}, "frobnicate")
}

func TestPKIInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	out := pkiOK(t, "init", "--dir", dir, "--name", "corp CA", "--key-type", "ed25519", "--crl-validity", "2d")
	for _, f := range []string{"ca.crt", "ca.key", "crl.pem", "index.json"} {
		if !strings.Contains(out, filepath.Join(dir, f)) {
			t.Errorf("init output does not list %s:\n%s", f, out)
		}
	}
	if !strings.Contains(out, "trust anchor (--ca): "+filepath.Join(dir, "ca.crt")) {
		t.Errorf("init output does not name the trust anchor:\n%s", out)
	}
	ca := readCert(t, filepath.Join(dir, "ca.crt"))[0]
	if ca.Subject.CommonName != "corp CA" || ca.PublicKeyAlgorithm != x509.Ed25519 {
		t.Errorf("CA %q key %v", ca.Subject.CommonName, ca.PublicKeyAlgorithm)
	}
	st, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %v, err %v", st.Mode(), err)
	}
	crl := readCRLFile(t, filepath.Join(dir, "crl.pem"))
	if crl.NextUpdate.Sub(crl.ThisUpdate) != 48*time.Hour {
		t.Errorf("CRL validity %v, want 48h", crl.NextUpdate.Sub(crl.ThisUpdate))
	}
	pkiFails(t, []string{"ca.crt", "force"}, "init", "--dir", dir)
	if again := readCert(t, filepath.Join(dir, "ca.crt"))[0]; !again.Equal(ca) {
		t.Fatal("init without --force replaced the CA")
	}
	out = pkiOK(t, "init", "--dir", dir, "--intermediate", "--force")
	if !strings.Contains(out, "trust anchor (--ca): "+filepath.Join(dir, "root.crt")) {
		t.Errorf("intermediate init does not name root.crt as the anchor:\n%s", out)
	}
	inter := readCert(t, filepath.Join(dir, "ca.crt"))[0]
	root := readCert(t, filepath.Join(dir, "root.crt"))[0]
	if err := inter.CheckSignatureFrom(root); err != nil || !inter.MaxPathLenZero {
		t.Errorf("ca.crt is not an intermediate under root.crt: %v", err)
	}

	pkiFails(t, []string{"--dir", "required"}, "init")
	pkiFails(t, []string{"--key-type", `"dsa"`, "ecdsa-p256"}, "init", "--dir", t.TempDir(), "--key-type", "dsa")
	pkiFails(t, []string{"ttl", `"ten years"`}, "init", "--dir", t.TempDir(), "--ttl", "ten years")
	pkiFails(t, []string{"-bogus"}, "init", "--dir", t.TempDir(), "--bogus")
	pkiFails(t, []string{`unexpected argument "extra"`}, "init", "--dir", t.TempDir(), "extra")
}

func initCA(t *testing.T, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	pkiOK(t, append([]string{"init", "--dir", dir}, extra...)...)
	return dir
}

func TestPKIIssue(t *testing.T) {
	dir := initCA(t, "--intermediate")
	out := pkiOK(t, "issue", "--dir", dir, "--server", "--name", "gw", "--dns", "gw.example.com,localhost", "--dns", "*.gw.example.com",
		"--ip", "127.0.0.1,::1", "--o", "Corp", "--key-type", "rsa-2048", "--ttl", "30d")
	certPath, keyPath := filepath.Join(dir, "gw.crt"), filepath.Join(dir, "gw.key")
	if !strings.Contains(out, "wrote "+certPath) || !strings.Contains(out, "wrote "+keyPath) || !strings.Contains(out, "serial ") {
		t.Errorf("issue output:\n%s", out)
	}
	certs := readCert(t, certPath)
	leaf := certs[0]
	if len(certs) != 2 || strings.Join(leaf.DNSNames, ",") != "gw.example.com,localhost,*.gw.example.com" || len(leaf.IPAddresses) != 2 {
		t.Errorf("gw.crt: %d certs, dns %v, ips %v", len(certs), leaf.DNSNames, leaf.IPAddresses)
	}
	validFor(t, leaf, 30*24*time.Hour)
	if leaf.PublicKeyAlgorithm != x509.RSA || leaf.Subject.Organization[0] != "Corp" {
		t.Errorf("gw.crt: key %v, subject %v", leaf.PublicKeyAlgorithm, leaf.Subject)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("gw.key mode %v, err %v", st.Mode(), err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "root.crt"))[0])
	inters := x509.NewCertPool()
	inters.AddCert(certs[1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "localhost"}); err != nil {
		t.Errorf("gw.crt does not verify against root.crt: %v", err)
	}

	pkiOK(t, "issue", "--dir", dir, "--client", "--name", "alice", "--uri", "spiffe://corp/user/alice", "--email", "alice@example.com", "--ou", "eng,ops")
	alice := readCert(t, filepath.Join(dir, "alice.crt"))[0]
	if alice.URIs[0].String() != "spiffe://corp/user/alice" || len(alice.Subject.OrganizationalUnit) != 2 || alice.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("alice.crt: uris %v ou %v eku %v", alice.URIs, alice.Subject.OrganizationalUnit, alice.ExtKeyUsage)
	}

	pkiFails(t, []string{"alice.", "force"}, "issue", "--dir", dir, "--client", "--name", "alice")
	pkiOK(t, "issue", "--dir", dir, "--client", "--name", "alice", "--force")
	pkiFails(t, []string{"--server or --client"}, "issue", "--dir", dir, "--name", "x")
	pkiFails(t, []string{"--server and --client"}, "issue", "--dir", dir, "--name", "x", "--server", "--client")
	pkiFails(t, []string{"--name (GATEWAY_NAME): required"}, "issue", "--dir", dir, "--client")
	pkiFails(t, []string{"--name", `"../x"`}, "issue", "--dir", dir, "--client", "--name", "../x")
	pkiFails(t, []string{"--name", `"ca"`, "reserved"}, "issue", "--dir", dir, "--client", "--name", "ca")
	pkiFails(t, []string{"--server needs at least one --dns or --ip"}, "issue", "--dir", dir, "--server", "--name", "x")
	pkiFails(t, []string{"--ip", `"10.0.0.300"`}, "issue", "--dir", dir, "--server", "--name", "x", "--ip", "10.0.0.300")
	pkiFails(t, []string{"--dns", `"bad_host"`}, "issue", "--dir", dir, "--server", "--name", "x", "--dns", "bad_host")
	pkiFails(t, []string{"--uri", `"corp/app"`, "absolute"}, "issue", "--dir", dir, "--client", "--name", "x", "--uri", "corp/app")
	pkiFails(t, []string{"--email", `"nobody"`}, "issue", "--dir", dir, "--client", "--name", "x", "--email", "nobody")
	pkiFails(t, []string{"--key-type", `"rsa-1024"`}, "issue", "--dir", dir, "--client", "--name", "x", "--key-type", "rsa-1024")
	pkiFails(t, []string{"-ttl", `"-5h"`, "90d"}, "issue", "--dir", dir, "--client", "--name", "x", "--ttl", "-5h")
	pkiFails(t, []string{"--dir", "not a CA directory"}, "issue", "--dir", t.TempDir(), "--client", "--name", "x")
	if _, err := os.Stat(filepath.Join(dir, "x.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed issue left x.key behind: %v", err)
	}
}

// validFor checks that c is valid for ttl from about now: NotAfter within a
// minute of now+ttl, NotBefore earlier than now.
func validFor(t *testing.T, c *x509.Certificate, ttl time.Duration) {
	t.Helper()
	now := time.Now()
	if d := c.NotAfter.Sub(now.Add(ttl)); d > time.Second || d < -time.Minute {
		t.Errorf("%s: NotAfter %v is not now+%v (%v)", c.Subject.CommonName, c.NotAfter, ttl, now.Add(ttl))
	}
	if !c.NotBefore.Before(now) {
		t.Errorf("%s: NotBefore %v is not before now", c.Subject.CommonName, c.NotBefore)
	}
}

func writeCSR(t *testing.T, cn string, dns ...string) string {
	t.Helper()
	key, err := pki.GenerateKey(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), cn+".csr")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPKISign(t *testing.T) {
	dir := initCA(t)
	csr := writeCSR(t, "bob", "bob.example.com")
	out := pkiOK(t, "sign", "--dir", dir, "--csr", csr, "--client", "--uri", "spiffe://corp/user/bob", "--ttl", "2h")
	p := filepath.Join(dir, "bob.crt")
	if !strings.Contains(out, "wrote "+p) {
		t.Errorf("sign output:\n%s", out)
	}
	c := readCert(t, p)[0]
	if c.Subject.CommonName != "bob" || c.DNSNames[0] != "bob.example.com" || c.URIs[0].String() != "spiffe://corp/user/bob" {
		t.Errorf("bob.crt: cn %q dns %v uris %v", c.Subject.CommonName, c.DNSNames, c.URIs)
	}
	validFor(t, c, 2*time.Hour)
	if c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(c.ExtKeyUsage) != 1 {
		t.Errorf("bob.crt EKU %v", c.ExtKeyUsage)
	}
	outFile := filepath.Join(t.TempDir(), "srv.pem")
	pkiOK(t, "sign", "--dir", dir, "--csr", csr, "--server", "--name", "bob-server", "--out", outFile)
	if s := readCert(t, outFile)[0]; s.Subject.CommonName != "bob-server" || s.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("--out cert: %q %v", s.Subject.CommonName, s.ExtKeyUsage)
	}
	pkiFails(t, []string{"bob.crt", "force"}, "sign", "--dir", dir, "--csr", csr, "--client")
	pkiFails(t, []string{"--csr (GATEWAY_CSR): required"}, "sign", "--dir", dir, "--client")
	pkiFails(t, []string{"--csr", "no such file"}, "sign", "--dir", dir, "--client", "--csr", filepath.Join(dir, "missing.csr"))
	pkiFails(t, []string{"--csr", "certificate signing request"}, "sign", "--dir", dir, "--client", "--csr", filepath.Join(dir, "ca.crt"))
	noSAN := writeCSR(t, "plain")
	pkiFails(t, []string{"at least one DNS name or IP"}, "sign", "--dir", dir, "--server", "--csr", noSAN)
}

func TestPKIRevokeCRLShow(t *testing.T) {
	dir := initCA(t)
	pkiOK(t, "issue", "--dir", dir, "--client", "--name", "a")
	pkiOK(t, "issue", "--dir", dir, "--client", "--name", "b")
	pkiOK(t, "issue", "--dir", dir, "--client", "--name", "c")
	a := readCert(t, filepath.Join(dir, "a.crt"))[0]
	b := readCert(t, filepath.Join(dir, "b.crt"))[0]
	c := readCert(t, filepath.Join(dir, "c.crt"))[0]

	out := pkiOK(t, "revoke", "--dir", dir, "--cert", filepath.Join(dir, "a.crt"), "--reason", "keyCompromise")
	if !strings.Contains(out, "revoked") || !strings.Contains(out, pki.SerialHex(a)) || !strings.Contains(out, "wrote "+filepath.Join(dir, "crl.pem")) {
		t.Errorf("revoke output:\n%s", out)
	}
	pkiOK(t, "revoke", "--dir", dir, "--serial", b.SerialNumber.String()) // decimal
	hexColons := ""
	for i, h := 0, pki.SerialHex(c); i < len(h); i += 2 {
		if i > 0 {
			hexColons += ":"
		}
		hexColons += strings.ToUpper(h[i : i+2])
	}
	pkiOK(t, "revoke", "--dir", dir, "--serial", hexColons, "--reason", "superseded")

	crl := readCRLFile(t, filepath.Join(dir, "crl.pem"))
	reasons := map[string]int{}
	for _, e := range crl.RevokedCertificateEntries {
		reasons[e.SerialNumber.String()] = e.ReasonCode
	}
	if len(reasons) != 3 || reasons[a.SerialNumber.String()] != pki.ReasonKeyCompromise || reasons[c.SerialNumber.String()] != pki.ReasonSuperseded {
		t.Errorf("crl.pem entries %v", reasons)
	}
	if _, ok := reasons[b.SerialNumber.String()]; !ok {
		t.Errorf("crl.pem lacks b (revoked by decimal serial)")
	}

	pkiFails(t, []string{"already revoked"}, "revoke", "--dir", dir, "--cert", filepath.Join(dir, "a.crt"))
	pkiFails(t, []string{"--serial", "not in"}, "revoke", "--dir", dir, "--serial", "0x1234")
	pkiFails(t, []string{"--serial", `"xyz"`}, "revoke", "--dir", dir, "--serial", "xyz")
	pkiFails(t, []string{"exactly one of --serial or --cert"}, "revoke", "--dir", dir)
	pkiFails(t, []string{"--reason", `"lost"`, "keyCompromise"}, "revoke", "--dir", dir, "--serial", "1", "--reason", "lost")

	out = pkiOK(t, "crl", "--dir", dir, "--validity", "36h")
	if !strings.Contains(out, "wrote "+filepath.Join(dir, "crl.pem")) {
		t.Errorf("crl output:\n%s", out)
	}
	crl2 := readCRLFile(t, filepath.Join(dir, "crl.pem"))
	if crl2.NextUpdate.Sub(crl2.ThisUpdate) != 36*time.Hour || crl2.Number.Cmp(crl.Number) <= 0 || len(crl2.RevokedCertificateEntries) != 3 {
		t.Errorf("rewritten CRL: validity %v number %v (was %v) entries %d", crl2.NextUpdate.Sub(crl2.ThisUpdate), crl2.Number, crl.Number, len(crl2.RevokedCertificateEntries))
	}
	pkiFails(t, []string{"validity", `"soon"`}, "crl", "--dir", dir, "--validity", "soon")

	out = pkiOK(t, "show", filepath.Join(dir, "crl.pem"))
	for _, want := range []string{pki.SerialHex(a), "keyCompromise", "revoked:     3"} {
		if !strings.Contains(out, want) {
			t.Errorf("show crl.pem lacks %q:\n%s", want, out)
		}
	}
	out = pkiOK(t, "show", filepath.Join(dir, "a.crt"))
	if !strings.Contains(out, "CN=a") || !strings.Contains(out, pki.Fingerprint(a)) || !strings.Contains(out, "clientAuth") {
		t.Errorf("show a.crt:\n%s", out)
	}
	// DER certificate and a bundle of several.
	der := filepath.Join(t.TempDir(), "a.der")
	if err := os.WriteFile(der, a.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := pkiOK(t, "show", der); !strings.Contains(out, pki.Fingerprint(a)) {
		t.Errorf("show DER:\n%s", out)
	}
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(bundle, pki.EncodeCertsPEM(a, b, c), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := pkiOK(t, "show", bundle); strings.Count(out, "sha256:") != 3 || !strings.Contains(out, "certificate 3 of 3") {
		t.Errorf("show bundle:\n%s", out)
	}
	pkiFails(t, []string{"missing FILE"}, "show")
	pkiFails(t, []string{"neither certificates nor a CRL"}, "show", filepath.Join(dir, "index.json"))
	pkiFails(t, []string{"no such file"}, "show", filepath.Join(dir, "nope.pem"))
	pkiFails(t, []string{`unexpected argument`}, "show", "a", "b")
}

// TestPKIEnvironment: every pki flag reads GATEWAY_<FLAG>; a flag wins.
func TestPKIEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	env := map[string]string{"GATEWAY_DIR": dir, "GATEWAY_NAME": "env CA", "GATEWAY_KEY_TYPE": "ecdsa-p384"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := runPKI(args, lookup, &out, &errOut)
		return out.String(), err
	}
	if _, err := run("init"); err != nil {
		t.Fatalf("init from the environment: %v", err)
	}
	ca := readCert(t, filepath.Join(dir, "ca.crt"))[0]
	if ca.Subject.CommonName != "env CA" || ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA %q key %v, want the environment's name and key type", ca.Subject.CommonName, ca.PublicKeyAlgorithm)
	}
	env["GATEWAY_CLIENT"], env["GATEWAY_URI"], env["GATEWAY_TTL"] = "true", "spiffe://corp/a, spiffe://corp/b", "2h"
	env["GATEWAY_KEY_TYPE"] = "ed25519"
	if _, err := run("issue", "--name", "flagname", "--ttl", "3h"); err != nil {
		t.Fatalf("issue: %v", err)
	}
	c := readCert(t, filepath.Join(dir, "flagname.crt"))[0]
	if len(c.URIs) != 2 || c.PublicKeyAlgorithm != x509.Ed25519 {
		t.Errorf("issued: uris %v key %v, want both URIs and ed25519 from the environment", c.URIs, c.PublicKeyAlgorithm)
	}
	validFor(t, c, 3*time.Hour) // the flag wins over GATEWAY_TTL
	env["GATEWAY_TTL"] = "soon"
	if _, err := run("issue", "--name", "x"); err == nil || !strings.Contains(err.Error(), "--ttl (GATEWAY_TTL)") || !strings.Contains(err.Error(), "from $GATEWAY_TTL") {
		t.Errorf("bad GATEWAY_TTL: err %v, want one naming the variable", err)
	}
	delete(env, "GATEWAY_TTL")
	if _, err := run("crl", "--validity", "2d"); err != nil {
		t.Errorf("crl with GATEWAY_DIR: %v", err)
	}
}

// TestPKIIssueTTL: --ttl is the validity from now, and one too short to
// use is refused.
func TestPKIIssueTTL(t *testing.T) {
	dir := initCA(t)
	pkiOK(t, "issue", "--dir", dir, "--client", "--name", "ten", "--ttl", "10m")
	validFor(t, readCert(t, filepath.Join(dir, "ten.crt"))[0], 10*time.Minute)
	for _, ttl := range []string{"1s", "59s"} {
		pkiFails(t, []string{"--ttl (GATEWAY_TTL)", "must be at least 1m0s", ttl}, "issue", "--dir", dir, "--client", "--name", "short", "--ttl", ttl)
	}
	if _, err := os.Stat(filepath.Join(dir, "short.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused --ttl still wrote short.crt: %v", err)
	}
	pkiFails(t, []string{"--ttl (GATEWAY_TTL)", "must be at least"}, "sign", "--dir", dir, "--csr", writeCSR(t, "s"), "--client", "--ttl", "30s")
	pkiFails(t, []string{"--ttl (GATEWAY_TTL)", "must be at least"}, "init", "--dir", filepath.Join(t.TempDir(), "ca"), "--ttl", "5s")
}

// TestPKISerialForms: issue, show, index.json and revoke use one serial
// form, the one openssl prints.
func TestPKISerialForms(t *testing.T) {
	dir := initCA(t)
	out := pkiOK(t, "issue", "--dir", dir, "--client", "--name", "s")
	c := readCert(t, filepath.Join(dir, "s.crt"))[0]
	want := pki.FormatSerial(c.SerialNumber)
	if !strings.Contains(out, "serial "+want+" ") {
		t.Errorf("issue output does not print serial %s:\n%s", want, out)
	}
	if show := pkiOK(t, "show", filepath.Join(dir, "s.crt")); !strings.Contains(show, want) {
		t.Errorf("show does not print serial %s:\n%s", want, show)
	}
	ix, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ix), `"serial": "`+want+`"`) {
		t.Errorf("index.json does not hold serial %s:\n%s", want, ix)
	}
	if out := pkiOK(t, "revoke", "--dir", dir, "--serial", strings.ToLower(want)); !strings.Contains(out, "serial "+want) {
		t.Errorf("revoke output does not print serial %s:\n%s", want, out)
	}
}

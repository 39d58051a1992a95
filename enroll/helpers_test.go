package enroll

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/pki"
)

// gnupg is a GnuPG home made for one test, with its keys.
type gnupg struct {
	t    testing.TB
	home string
	bin  string
}

// newGnuPG makes a GNUPGHOME in a short temporary path (the agent's socket
// path is limited), or skips the test when gpg is missing.
func newGnuPG(t testing.TB) *gnupg {
	t.Helper()
	bin, err := exec.LookPath("gpg")
	if err != nil {
		t.Skip("gpg (GnuPG) is not installed: these tests sign with real OpenPGP keys made by gpg")
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gnupg{t: t, home: home, bin: bin}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	return g
}

// run runs gpg with args and returns its stdout.
func (g *gnupg) run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, append([]string{"--homedir", g.home, "--batch", "--yes"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// genKey makes a signing key for uid ("Name <email>") of algo (ed25519,
// rsa2048, rsa1024...).
func (g *gnupg) genKey(uid, algo string) {
	g.t.Helper()
	g.run(nil, "--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never")
}

// export writes the public keys of the given user IDs to a file, armored
// or binary.
func (g *gnupg) export(armor bool, ids ...string) string {
	g.t.Helper()
	args := []string{"--export"}
	if armor {
		args = append(args, "--armor")
	}
	data := g.run(nil, append(args, ids...)...)
	if len(data) == 0 {
		g.t.Fatalf("gpg --export %v wrote nothing", ids)
	}
	p := filepath.Join(g.t.TempDir(), "keyring")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// exportSecret writes the private key of id to a file.
func (g *gnupg) exportSecret(id string) string {
	g.t.Helper()
	data := g.run(nil, "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", id)
	p := filepath.Join(g.t.TempDir(), "secret.asc")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// signer is a GPGSigner of this home.
func (g *gnupg) signer(id string) GPGSigner { return GPGSigner{Key: id, Home: g.home} }

// service is a Server on a loopback HTTPS listener, in front of a fresh CA.
type service struct {
	srv  *Server
	url  string
	dir  *pki.Dir
	ca   []byte // trust anchor PEM
	logs *testnet.SyncBuffer
	ts   *httptest.Server
}

func startService(t testing.TB, cfg Config) *service {
	t.Helper()
	d, err := pki.Init(filepath.Join(t.TempDir(), "ca"), pki.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := d.CA().Issue(pki.Request{Kind: pki.Server, Name: "enroll", DNS: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := iss.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	logs := new(testnet.SyncBuffer)
	cfg.Dir, cfg.Log = d, zerolog.New(logs)
	if cfg.Org == "" {
		cfg.Org = "corp"
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = srv.TLSConfig(tc)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	u := strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)
	return &service{srv: srv, url: u, dir: d, ca: d.CA().RootPEM(), logs: logs, ts: ts}
}

// client returns a Client of the service, presenting cert when not nil.
func (s *service) client(t testing.TB, cert *tls.Certificate) *Client {
	t.Helper()
	o := ClientOptions{URL: s.url, CA: s.ca}
	if cert != nil {
		o.Certificate = func() (*tls.Certificate, error) { return cert, nil }
	}
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

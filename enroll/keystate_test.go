package enroll

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// fingerprint is the primary key fingerprint of id, as gpg lists it.
func (g *gnupg) fingerprint(id string) string {
	g.t.Helper()
	for _, line := range strings.Split(string(g.run(nil, "--with-colons", "--list-keys", id)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			return f[9]
		}
	}
	g.t.Fatalf("gpg lists no fingerprint for %s", id)
	return ""
}

// revoke imports the revocation certificate gpg made with the key of id.
func (g *gnupg) revoke(id string) {
	g.t.Helper()
	rev, err := os.ReadFile(filepath.Join(g.home, "openpgp-revocs.d", g.fingerprint(id)+".rev"))
	if err != nil {
		g.t.Fatal(err)
	}
	// gpg disarms the block with a leading ':' so that it is not imported by mistake.
	g.run(bytes.ReplaceAll(rev, []byte(":-----BEGIN PGP"), []byte("-----BEGIN PGP")), "--import")
}

// reexport rewrites the keyring file path with the public keys of ids.
func (g *gnupg) reexport(path string, ids ...string) {
	g.t.Helper()
	if err := os.WriteFile(path, g.run(nil, append([]string{"--export"}, ids...)...), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// argsSigner signs with gpg and extra options.
type argsSigner struct {
	g    *gnupg
	id   string
	args []string
}

func (a argsSigner) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return a.g.run(msg, append(a.args, "--armor", "--local-user", a.id, "--output", "-", "--detach-sign")...), nil
}

func (a argsSigner) String() string { return "gpg key " + a.id }

// issueTLS issues a certificate for sg and returns it with its key.
func issueTLS(t *testing.T, c *Client, sg Signer) *tls.Certificate {
	t.Helper()
	key, der, err := NewCSR()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Issue(context.Background(), sg, der, 0)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair([]byte(out.Certificate), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}

// A user whose OpenPGP key was revoked in the users keyring neither
// renews nor gets a new certificate; one whose key expired neither.
func TestRenewRefusedForRevokedOrExpiredKey(t *testing.T) {
	k := makeKeys(t)
	s := startService(t, Config{UsersKeyring: k.users, AdminKeyring: k.admins})
	ctx := context.Background()
	c := s.client(t, nil)
	alice, bob := k.g.signer("alice@example.com"), k.g.signer("bob@example.com")
	aliceCert, bobCert := issueTLS(t, c, alice), issueTLS(t, c, bob)
	// Signed while the keys are still valid, sent after.
	aliceEnv, err := Sign(ctx, alice, &Request{Op: OpIssue, CSR: newCSR(t)})
	if err != nil {
		t.Fatal(err)
	}
	bobEnv, err := Sign(ctx, bob, &Request{Op: OpIssue, CSR: newCSR(t)})
	if err != nil {
		t.Fatal(err)
	}

	k.g.revoke("alice@example.com")
	k.g.run(nil, "--quick-set-expire", k.g.fingerprint("bob@example.com"), "seconds=1")
	k.g.reexport(k.users, "alice@example.com", "bob@example.com")
	time.Sleep(2100 * time.Millisecond)

	_, err = s.client(t, aliceCert).Renew(ctx, newCSR(t), 0)
	wantCode(t, s, "a renewal by a user whose key is revoked", err, CodeKeyRevoked)
	_, err = s.client(t, bobCert).Renew(ctx, newCSR(t), 0)
	wantCode(t, s, "a renewal by a user whose key expired", err, CodeKeyExpired)

	_, err = c.Submit(ctx, "POST", "/v1/certificates", aliceEnv)
	wantCode(t, s, "an issuance signed by a revoked key", err, CodeKeyRevoked)
	_, err = c.Submit(ctx, "POST", "/v1/certificates", bobEnv)
	wantCode(t, s, "an issuance signed by an expired key", err, CodeKeyExpired)

	kr, err := ReadKeyring(k.users)
	if err != nil {
		t.Fatal(err)
	}
	us, err := ResolveUsers(kr, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if us.Len() != 0 || us.ByName("alice") != nil || us.ByName("bob") != nil || len(us.Warnings) != 2 {
		t.Fatalf("a revoked and an expired key resolve to %d users; warnings %q", us.Len(), us.Warnings)
	}
}

// A user who revoked an old key and has a new one under the same name
// keeps renewing: the name is the new key's.
func TestRevokedKeyReplaced(t *testing.T) {
	g := newGnuPG(t)
	g.genKey("Alice <alice@example.com>", "ed25519")
	g.genKey("Admin <sec@example.com>", "ed25519")
	old := g.fingerprint("alice@example.com")
	users := g.export(false, old)
	s := startService(t, Config{UsersKeyring: users, AdminKeyring: g.export(true, "sec@example.com")})
	cert := issueTLS(t, s.client(t, nil), g.signer(old))

	g.revoke(old)
	g.genKey("Alice <alice@example.com>", "ed25519")
	g.reexport(users, "alice@example.com")
	out, err := s.client(t, cert).Renew(context.Background(), newCSR(t), 0)
	if err != nil {
		t.Fatalf("renewal after the key was replaced: %v", err)
	}
	if out.Name != "alice" {
		t.Fatalf("renewed as %q", out.Name)
	}
	// The new key is the user alice.
	key := g.fingerprint("alice@example.com")
	for _, line := range strings.Split(string(g.run(nil, "--with-colons", "--list-keys", "alice@example.com")), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 && f[9] != old {
			key = f[9]
		}
	}
	issueTLS(t, s.client(t, nil), g.signer(key))
}

// An expired signature, and a signature made on a clock a little ahead.
func TestSignatureTimes(t *testing.T) {
	k := makeKeys(t)
	s := startService(t, Config{UsersKeyring: k.users, AdminKeyring: k.admins})
	ctx := context.Background()
	c := s.client(t, nil)

	short := argsSigner{g: k.g, id: "alice@example.com", args: []string{"--default-sig-expire", "seconds=1"}}
	env, err := Sign(ctx, short, &Request{Op: OpIssue, CSR: newCSR(t)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	_, err = c.Submit(ctx, "POST", "/v1/certificates", env)
	wantCode(t, s, "an expired signature", err, CodeSigExpired)

	ahead := argsSigner{g: k.g, id: "alice@example.com", args: []string{"--faked-system-time", fmt.Sprint(time.Now().Add(time.Minute).Unix())}}
	env, err = Sign(ctx, ahead, &Request{Op: OpIssue, CSR: newCSR(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, "POST", "/v1/certificates", env); err != nil {
		t.Fatalf("a signature made a minute ahead (within the skew): %v", err)
	}
}

// A keyring that holds the issuing key, but not as a key that may sign.
func TestVerifyUnknownIssuer(t *testing.T) {
	g := newGnuPG(t)
	g.genKey("Erin <erin@example.com>", "ed25519")
	kr, err := ReadKeyring(g.export(false, "erin@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello\n")
	sig, err := g.signer("erin@example.com").Sign(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(kr, msg, sig, time.Now()); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for _, id := range kr[0].Identities {
		id.SelfSignature.FlagSign = false
	}
	if _, err := verify(kr, msg, sig, time.Now()); !errors.Is(err, errUnknownIssuer) {
		t.Fatalf("a key without the capability to sign: %v, want %v", err, errUnknownIssuer)
	}
}

// A client certificate issued by hand in the service's CA renews only
// when it has the identity the service issues: not a bare name, not
// another URI, not with names added.
func TestRenewRefusesHandIssued(t *testing.T) {
	k := makeKeys(t)
	s := startService(t, Config{UsersKeyring: k.users, AdminKeyring: k.admins})
	for _, tc := range []struct {
		what string
		req  pki.Request
	}{
		{"no URI", pki.Request{Kind: pki.Client, Name: "alice"}},
		{"another URI", pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://corp/app/alice"}}},
		{"another organisation", pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://other/user/alice"}}},
		{"a DNS name too", pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://corp/user/alice"}, DNS: []string{"alice.example.com"}}},
		{"an OU", pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://corp/user/alice"}, OU: []string{"admins"}}},
	} {
		certPath, keyPath, err := s.dir.Issue(tc.req, true)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.client(t, &pair).Renew(context.Background(), newCSR(t), 0)
		wantCode(t, s, "a hand-issued certificate with "+tc.what, err, CodeNotEnrolled)
	}
}

// The renewal loop gives up on the refusals a retry would meet again.
func TestFinalRefusals(t *testing.T) {
	for _, c := range []Code{CodeKeyRevoked, CodeKeyExpired, CodeNotEnrolled, CodeUserRemoved} {
		if !final(c) {
			t.Errorf("%s is retried", c)
		}
	}
	if final(CodeInternal) {
		t.Errorf("%s is not retried", CodeInternal)
	}
}

// An unknown path is refused in JSON, with not_found.
func TestUnknownPathJSON(t *testing.T) {
	g := newGnuPG(t)
	g.genKey("Admin <sec@example.com>", "ed25519")
	kr := g.export(true, "sec@example.com")
	s := startService(t, Config{UsersKeyring: kr, AdminKeyring: kr})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/", "/v1/nope", "/v2/certificates"} {
		resp, err := hc.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error Error }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 404 || body.Error.Code != CodeNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("GET %s: %d %s %+v (%v)", path, resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
		}
	}
	if !strings.Contains(s.logs.String(), `"code":"not_found"`) {
		t.Fatalf("no audit event:\n%s", s.logs.String())
	}
}

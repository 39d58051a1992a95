package enroll

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// keys are the OpenPGP keys of TestService, made by gpg.
type keys struct {
	g                   *gnupg
	users, admins, both string // keyring files
	adminFile           string // the admin's private key, for a KeySigner
}

func makeKeys(t *testing.T) *keys {
	g := newGnuPG(t)
	g.genKey("Alice <alice@example.com>", "ed25519")
	g.genKey("Bob <bob@example.com>", "rsa2048")
	g.genKey("Carol <carol@example.com>", "ed25519") // in no keyring
	g.genKey("Admin <sec@example.com>", "ed25519")
	return &keys{
		g:         g,
		users:     g.export(false, "alice@example.com", "bob@example.com"), // binary
		admins:    g.export(true, "sec@example.com"),                       // armored
		adminFile: g.exportSecret("sec@example.com"),
	}
}

// wantCode checks that err is a refusal with code, and that the audit log
// has its event.
func wantCode(t *testing.T, s *service, what string, err error, code Code) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v, want a refusal %s", what, err, code)
	}
	if e.Code != code {
		t.Fatalf("%s: refused with %s (%s), want %s", what, e.Code, e.Message, code)
	}
	if !strings.Contains(s.logs.String(), `"code":"`+string(code)+`"`) {
		t.Fatalf("%s: no audit event with code %s:\n%s", what, code, s.logs.String())
	}
}

func newCSR(t *testing.T) []byte {
	t.Helper()
	_, der, err := NewCSR()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestService(t *testing.T) {
	k := makeKeys(t)
	s := startService(t, Config{UsersKeyring: k.users, AdminKeyring: k.admins, MaxTTL: 2 * time.Hour})
	ctx := context.Background()
	c := s.client(t, nil)
	alice, bob := k.g.signer("alice@example.com"), k.g.signer("bob@example.com")

	var aliceCert *tls.Certificate
	var aliceSerial string
	t.Run("issue", func(t *testing.T) {
		for _, tc := range []struct {
			signer      Signer
			name, email string
		}{{alice, "alice", "alice@example.com"}, {bob, "bob", "bob@example.com"}} {
			// The CSR asks for another identity: it must not show.
			key, err := pki.GenerateKey(pki.ECDSAP256)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
				Subject: pkix.Name{CommonName: "root"}, DNSNames: []string{"evil.example.com"}, EmailAddresses: []string{"ceo@example.com"},
			}, key)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Issue(ctx, tc.signer, csr, 0)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			certs, err := pki.ParseCertsPEM([]byte(out.Certificate))
			if err != nil {
				t.Fatal(err)
			}
			leaf := certs[0]
			if leaf.Subject.CommonName != tc.name || !slices.Equal(leaf.EmailAddresses, []string{tc.email}) ||
				len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://corp/user/"+tc.name || len(leaf.DNSNames) != 0 {
				t.Fatalf("%s: identity CN %q emails %v URIs %v DNS %v", tc.name, leaf.Subject.CommonName, leaf.EmailAddresses, leaf.URIs, leaf.DNSNames)
			}
			// Default 18h, capped by --max-ttl 2h.
			if life := leaf.NotAfter.Sub(time.Now()); life > 2*time.Hour || life < 2*time.Hour-time.Minute {
				t.Fatalf("%s: lifetime %s, want the 2h cap", tc.name, life)
			}
			if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || leaf.IsCA {
				t.Fatalf("%s: not a client certificate", tc.name)
			}
			if tc.name == "alice" {
				keyPEM, _ := pki.EncodeKeyPEM(key)
				pair, err := tls.X509KeyPair([]byte(out.Certificate), keyPEM)
				if err != nil {
					t.Fatal(err)
				}
				aliceCert, aliceSerial = &pair, out.Serial
			}
		}
		if n := strings.Count(s.logs.String(), `"event":"enroll_issued"`); n != 2 {
			t.Fatalf("%d enroll_issued audit events, want 2", n)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		sign := func(sg Signer, r *Request) Envelope {
			env, err := Sign(ctx, sg, r)
			if err != nil {
				t.Fatal(err)
			}
			return env
		}
		post := func(env Envelope) error {
			_, err := c.Submit(ctx, "POST", "/v1/certificates", env)
			return err
		}

		env := sign(alice, &Request{Op: OpIssue, CSR: newCSR(t), Time: time.Now().Add(-6 * time.Minute).UTC().Truncate(time.Second)})
		wantCode(t, s, "a request 6 minutes old", post(env), CodeTimestamp)
		env = sign(alice, &Request{Op: OpIssue, CSR: newCSR(t), Time: time.Now().Add(6 * time.Minute).UTC().Truncate(time.Second)})
		wantCode(t, s, "a request 6 minutes ahead", post(env), CodeTimestamp)

		env = sign(alice, &Request{Op: OpIssue, CSR: newCSR(t)})
		if err := post(env); err != nil {
			t.Fatalf("first use of a request: %v", err)
		}
		wantCode(t, s, "the same request again", post(env), CodeNonceReplayed)

		env = sign(k.g.signer("carol@example.com"), &Request{Op: OpIssue, CSR: newCSR(t)})
		wantCode(t, s, "a key in no keyring", post(env), CodeUnknownSigner)
		env = sign(k.g.signer("sec@example.com"), &Request{Op: OpIssue, CSR: newCSR(t)})
		err := post(env)
		wantCode(t, s, "an admin key on the users' endpoint", err, CodeUnknownSigner)
		if !strings.Contains(err.Error(), "admin keyring") {
			t.Errorf("the refusal does not say the key is an admin's: %v", err)
		}

		// The CSR swapped after signing.
		env = sign(alice, &Request{Op: OpIssue, CSR: newCSR(t)})
		r, err := ParseRequest([]byte(env.Request))
		if err != nil {
			t.Fatal(err)
		}
		r.CSR = newCSR(t)
		env.Request = string(r.Marshal())
		wantCode(t, s, "a CSR changed after signing", post(env), CodeBadSignature)
		// The TTL changed after signing.
		env = sign(alice, &Request{Op: OpIssue, CSR: newCSR(t), TTL: time.Hour})
		env.Request = strings.Replace(env.Request, "ttl: 1h0m0s", "ttl: 2h0m0s", 1)
		wantCode(t, s, "a TTL changed after signing", post(env), CodeBadSignature)

		bad := newCSR(t)
		bad[len(bad)-1] ^= 0x55 // inside the CSR's own signature
		env = sign(alice, &Request{Op: OpIssue, CSR: bad})
		wantCode(t, s, "a CSR whose own signature is bad", post(env), CodeBadCSR)

		weak, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		weakCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, weak)
		if err != nil {
			t.Fatal(err)
		}
		env = sign(alice, &Request{Op: OpIssue, CSR: weakCSR})
		wantCode(t, s, "an RSA-1024 CSR", post(env), CodeWeakKey)

		env = sign(alice, &Request{Op: OpList})
		wantCode(t, s, "a list request sent to issue", post(env), CodeWrongOperation)

		env = sign(alice, &Request{Op: OpIssue, CSR: newCSR(t), TTL: 5 * time.Second})
		wantCode(t, s, "a 5s lifetime", post(env), CodeTTL)

		err = post(Envelope{Request: "hello\n", Signature: "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"})
		wantCode(t, s, "garbage", err, CodeBadRequest)
	})

	t.Run("renew", func(t *testing.T) {
		if aliceCert == nil {
			t.Skip("issue failed")
		}
		_, err := c.Renew(ctx, newCSR(t), 0)
		wantCode(t, s, "a renewal without a client certificate", err, CodeNoClientCert)

		rc := s.client(t, aliceCert)
		out, err := rc.Renew(ctx, newCSR(t), 30*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if out.Serial == aliceSerial || out.Name != "alice" || out.URI != "spiffe://corp/user/alice" || out.Email != "alice@example.com" {
			t.Fatalf("renewed: %+v (old serial %s)", out, aliceSerial)
		}
		if life := out.NotAfter.Sub(out.NotBefore); life > 34*time.Minute || life < 30*time.Minute {
			t.Fatalf("renewed for %s, want 30m (plus the backdate)", life)
		}
		// The same key again is no renewal.
		sameKey, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, aliceCert.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rc.Renew(ctx, sameKey, 0)
		wantCode(t, s, "a renewal with the same key", err, CodeBadCSR)

		// A certificate of another CA does not renew.
		other, err := pki.NewCA(pki.CAOptions{})
		if err != nil {
			t.Fatal(err)
		}
		iss, err := other.Issue(pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://corp/user/alice"}})
		if err != nil {
			t.Fatal(err)
		}
		foreign, _ := iss.TLSCertificate()
		_, err = s.client(t, &foreign).Renew(ctx, newCSR(t), 0)
		wantCode(t, s, "a renewal with another CA's certificate", err, CodeCertUnknown)
	})

	t.Run("admin", func(t *testing.T) {
		if aliceCert == nil {
			t.Skip("issue failed")
		}
		admin, err := ReadKeySigner(k.adminFile)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Revoke(ctx, alice, aliceSerial, nil, "keyCompromise")
		wantCode(t, s, "a revocation signed by a user", err, CodeUnknownSigner)
		_, err = c.List(ctx, bob)
		wantCode(t, s, "a list signed by a user", err, CodeUnknownSigner)

		rv, err := c.Revoke(ctx, admin, aliceSerial, nil, "keyCompromise")
		if err != nil {
			t.Fatal(err)
		}
		if rv.Name != "alice" || rv.Reason != "keyCompromise" {
			t.Fatalf("revoked: %+v", rv)
		}
		_, err = c.Revoke(ctx, admin, aliceSerial, nil, "keyCompromise")
		wantCode(t, s, "a second revocation", err, CodeAlreadyRevoked)
		_, err = c.Revoke(ctx, admin, "0BADC0FFEE", nil, "")
		wantCode(t, s, "an unknown serial", err, CodeCertUnknown)

		// crl.pem lists it, as served in DER and PEM.
		onDisk, err := os.ReadFile(s.dir.CRLPath())
		if err != nil {
			t.Fatal(err)
		}
		der, err := c.Fetch(ctx, "/v1/crl")
		if err != nil {
			t.Fatal(err)
		}
		pemCRL, err := c.Fetch(ctx, "/v1/crl?format=pem")
		if err != nil {
			t.Fatal(err)
		}
		if string(pemCRL) != string(onDisk) {
			t.Fatalf("the PEM CRL served is not crl.pem")
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
			return pki.FormatSerial(e.SerialNumber) == aliceSerial
		}) {
			t.Fatalf("the CRL does not list %s", aliceSerial)
		}
		if err := crl.CheckSignatureFrom(s.dir.CA().Cert); err != nil {
			t.Fatal(err)
		}
		ca, err := c.Fetch(ctx, "/v1/ca")
		if err != nil || string(ca) != string(s.ca) {
			t.Fatalf("GET /v1/ca: %v %q", err, ca)
		}

		_, err = s.client(t, aliceCert).Renew(ctx, newCSR(t), 0)
		wantCode(t, s, "a renewal of a revoked certificate", err, CodeCertRevoked)

		list, err := c.List(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		status := map[string]string{}
		for _, l := range list {
			status[l.Serial] = l.Status
		}
		if status[aliceSerial] != "revoked" || len(list) < 4 {
			t.Fatalf("list: %d certificates, alice's %q", len(list), status[aliceSerial])
		}
	})
}

// A GnuPG key given as a key file signs as gpg does.
func TestKeySignerFromGnuPG(t *testing.T) {
	g := newGnuPG(t)
	g.genKey("Dave <dave@example.com>", "rsa2048")
	g.genKey("Admin <sec@example.com>", "ed25519")
	s := startService(t, Config{UsersKeyring: g.export(true, "dave@example.com"), AdminKeyring: g.export(false, "sec@example.com")})
	ks, err := ReadKeySigner(g.exportSecret("dave@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	store := Store{Dir: t.TempDir()}
	out, err := Login(context.Background(), store, s.url, s.ca, ks, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != "dave" {
		t.Fatalf("name %q", out.Name)
	}
	fi, err := os.Stat(store.KeyPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	// And a renewal from the store.
	st, err := store.LoadState()
	if err != nil || st.TTL != "1h0m0s" {
		t.Fatalf("state %+v %v", st, err)
	}
	again, err := Renew(context.Background(), store, st, s.ca)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := store.Leaf()
	if err != nil || pki.FormatSerial(leaf.SerialNumber) != again.Serial || again.Serial == out.Serial {
		t.Fatalf("the store holds %v, renewed %s, first %s (%v)", leaf.SerialNumber, again.Serial, out.Serial, err)
	}
}

package conn_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/pki"
	"github.com/rs/zerolog"
)

func newCA(t *testing.T, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *pki.CA, req pki.Request) *pki.Issued {
	t.Helper()
	is, err := ca.Issue(req)
	if err != nil {
		t.Fatalf("issuing %+v: %v", req, err)
	}
	return is
}

func TestIdentityOf(t *testing.T) {
	ca := newCA(t, "ident CA")
	is := issue(t, ca, pki.Request{Kind: pki.Client, Name: "alice",
		URIs:   []string{"spiffe://corp/app/alice", "spiffe://corp/team/x"},
		DNS:    []string{"alice.example.com"},
		Emails: []string{"alice@example.com"},
		OU:     []string{"ops", "dev"}, O: []string{"Corp"}})
	c := is.Cert
	id := conn.IdentityOf(c)

	if want := []string{"spiffe://corp/app/alice", "spiffe://corp/team/x"}; !slices.Equal(id.URIs, want) {
		t.Errorf("URIs = %q, want %q", id.URIs, want)
	}
	if want := []string{"alice.example.com"}; !slices.Equal(id.DNSNames, want) {
		t.Errorf("DNSNames = %q, want %q", id.DNSNames, want)
	}
	if want := []string{"alice@example.com"}; !slices.Equal(id.Emails, want) {
		t.Errorf("Emails = %q, want %q", id.Emails, want)
	}
	if id.CommonName != "alice" {
		t.Errorf("CommonName = %q, want alice", id.CommonName)
	}
	if got := slices.Sorted(slices.Values(id.OU)); !slices.Equal(got, []string{"dev", "ops"}) {
		t.Errorf("OU = %q, want dev and ops", id.OU)
	}
	if !slices.Equal(id.O, []string{"Corp"}) {
		t.Errorf("O = %q, want Corp", id.O)
	}
	sum := sha256.Sum256(c.Raw)
	if id.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 = %q, want the SHA-256 of the DER certificate %x", id.SHA256, sum)
	}
	if n, ok := new(big.Int).SetString(id.Serial, 16); !ok || n.Cmp(c.SerialNumber) != 0 || id.Serial != strings.ToUpper(id.Serial) || len(id.Serial)%2 != 0 {
		t.Errorf("Serial = %q, want %X in uppercase hex of even length", id.Serial, c.SerialNumber)
	}
	if !id.NotAfter.Equal(c.NotAfter) {
		t.Errorf("NotAfter = %v, want %v", id.NotAfter, c.NotAfter)
	}
	if id.Issuer != "ident CA" {
		t.Errorf("Issuer = %q, want the issuer's CN", id.Issuer)
	}
	if id.String() != "uri:spiffe://corp/app/alice" {
		t.Errorf("String() = %q, want the first URI", id.String())
	}

	// The Identity shares no memory with the certificate.
	id.DNSNames[0], id.OU[0], id.O[0], id.Emails[0] = "x", "x", "x", "x"
	if c.DNSNames[0] == "x" || c.Subject.OrganizationalUnit[0] == "x" || c.Subject.Organization[0] == "x" || c.EmailAddresses[0] == "x" {
		t.Error("changing the Identity changed the certificate")
	}

	// Patterns over a real certificate.
	id = conn.IdentityOf(c)
	for _, p := range []string{"uri:spiffe://corp/app/*", "uri:spiffe://corp/team/**", "dns:*.example.com", "cn:alice",
		"ou:dev", "o:Corp", "email:ALICE@example.com", "sha256:" + id.SHA256, "any"} {
		if !conn.MustPattern(p).Match(&id) {
			t.Errorf("%s does not match %s", p, id.Describe())
		}
	}
	for _, p := range []string{"uri:spiffe://corp/app/bob", "dns:alice.example.org", "cn:bob", "ou:sales", "o:Other", "email:bob@example.com"} {
		if conn.MustPattern(p).Match(&id) {
			t.Errorf("%s matches %s", p, id.Describe())
		}
	}
}

func TestIdentityOfIssuerDN(t *testing.T) {
	// An issuer without a common name is named by its whole DN.
	c := craft(t, &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{Organization: []string{"Corp"}}}, nil, nil)
	id := conn.IdentityOf(c)
	if id.Issuer != "O=Corp" {
		t.Errorf("Issuer = %q, want the issuer DN O=Corp", id.Issuer)
	}
	if id.Serial != "2A" {
		t.Errorf("Serial = %q, want 2A (as openssl prints it)", id.Serial)
	}
	if id := conn.IdentityOf(craft(t, &x509.Certificate{SerialNumber: big.NewInt(0xa1b)}, nil, nil)); id.Serial != "0A1B" {
		t.Errorf("Serial = %q, want 0A1B (leading zero, as openssl prints it)", id.Serial)
	}
}

func TestIdentityString(t *testing.T) {
	full := conn.Identity{URIs: []string{"spiffe://a/b", "spiffe://a/c"}, DNSNames: []string{"d.example", "e.example"},
		CommonName: "cn", Emails: []string{"m@example.com"}, SHA256: fp}
	tests := []struct {
		name string
		id   func() conn.Identity
		want string
	}{
		{"uri first", func() conn.Identity { return full }, "uri:spiffe://a/b"},
		{"then dns", func() conn.Identity { id := full; id.URIs = nil; return id }, "dns:d.example"},
		{"then cn", func() conn.Identity { id := full; id.URIs, id.DNSNames = nil, nil; return id }, "cn:cn"},
		{"then email", func() conn.Identity { id := full; id.URIs, id.DNSNames, id.CommonName = nil, nil, ""; return id }, "email:m@example.com"},
		{"then fingerprint", func() conn.Identity { return conn.Identity{SHA256: fp, OU: []string{"ops"}} }, "sha256:" + fp},
	}
	for _, tt := range tests {
		if got := tt.id().String(); got != tt.want {
			t.Errorf("%s: String() = %q, want %q", tt.name, got, tt.want)
		}
		// The name is itself a pattern that matches the identity.
		id := tt.id()
		if !conn.MustPattern(tt.want).Match(&id) {
			t.Errorf("%s: the pattern %q does not match its own identity", tt.name, tt.want)
		}
	}
}

func TestIdentityLogFields(t *testing.T) {
	ca := newCA(t, "log CA")
	is := issue(t, ca, pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://corp/app/alice"},
		DNS: []string{"alice.example.com"}, Emails: []string{"alice@example.com"}, OU: []string{"ops"}, O: []string{"Corp"}})
	id := conn.IdentityOf(is.Cert)
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Object("identity", id).Msg("x")

	var line struct {
		Identity map[string]any `json:"identity"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	var keys []string
	for k := range line.Identity {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"cn", "dns", "email", "name", "o", "ou", "serial", "sha256", "uri"}; !slices.Equal(keys, want) {
		t.Errorf("identity fields = %q, want %q", keys, want)
	}
	want := map[string]any{"name": "uri:spiffe://corp/app/alice", "cn": "alice", "serial": id.Serial, "sha256": id.SHA256}
	for k, v := range want {
		if line.Identity[k] != v {
			t.Errorf("field %q = %v, want %v", k, line.Identity[k], v)
		}
	}
	if got, _ := line.Identity["uri"].([]any); len(got) != 1 || got[0] != "spiffe://corp/app/alice" {
		t.Errorf("field uri = %v", line.Identity["uri"])
	}

	// No key material and no certificate body, in any encoding.
	key, err := is.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	der := is.Cert.Raw
	out := buf.String()
	for name, secret := range map[string]string{
		"key PEM":          string(key),
		"key base64":       strings.Split(string(key), "\n")[1][:32],
		"certificate b64":  base64.StdEncoding.EncodeToString(der)[:32],
		"certificate hex":  hex.EncodeToString(der)[:32],
		"PEM armour":       "-----BEGIN",
		"public key bytes": hex.EncodeToString(is.Cert.RawSubjectPublicKeyInfo)[:32],
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the log line contains the %s: %s", name, out)
		}
	}

	// Optional fields are left out when empty.
	buf.Reset()
	log = zerolog.New(&buf)
	log.Info().Object("identity", conn.Identity{SHA256: fp, Serial: "1"}).Msg("x")
	line.Identity = nil
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if len(line.Identity) != 3 || line.Identity["name"] != "sha256:"+fp {
		t.Errorf("minimal identity logged as %v, want name, serial and sha256 only", line.Identity)
	}
}

func TestIdentityDescribe(t *testing.T) {
	na := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	id := conn.Identity{CommonName: "alice", URIs: []string{"spiffe://a/b", "spiffe://a/c"}, OU: []string{"ops"},
		Serial: "2a", SHA256: fp, Issuer: "test CA", NotAfter: na}
	got := id.Describe()
	for _, want := range []string{"  cn: alice\n", "  uri: spiffe://a/b, spiffe://a/c\n", "  ou: ops\n", "  serial: 2a\n",
		"  sha256: " + fp + "\n", "  issuer: test CA\n", "  not after: 2030-01-02T03:04:05Z\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("Describe() = %q, missing %q", got, want)
		}
	}
	for _, absent := range []string{"dns:", "email:", " o:"} {
		if strings.Contains(got, absent) {
			t.Errorf("Describe() = %q has the empty field %q", got, absent)
		}
	}
	if (conn.Identity{}).Describe() != "" {
		t.Errorf("empty identity: Describe() = %q, want \"\"", (conn.Identity{}).Describe())
	}
}

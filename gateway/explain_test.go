package gateway_test

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

var update = flag.Bool("update", false, "rewrite golden files")

const explainPolicy = `allow:
  - 10.0.0.0/8
  - "!10.9.0.0/16"
default_route: pg
routes:
  pg:
    backend: 127.0.0.1:5432
    identities: ["uri:spiffe://test/app/*"]
    networks: ["10.1.0.0/16"]
  redis:
    backend: 127.0.0.1:6379
    identities: ["cn:ops"]
  metrics:
    backend: builtin:echo
    identities: ["any"]
`

// The explain output is golden-tested; volatile fields (serial,
// fingerprint, dates, temp paths) are masked.
func TestExplainGolden(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(explainPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	stranger := testpki.New(t)
	cases := []struct {
		name   string
		cert   *pki.Issued
		cas    bool
		from   string
		route  string
		allows bool
	}{
		{"allowed_all_routes", p.Client.Issued, true, "10.1.2.3", "", true},
		{"route_network_refuses", p.Client.Issued, true, "10.2.0.1", "pg", false},
		{"gate_denies", p.Client.Issued, false, "10.9.8.7", "", false},
		{"wrong_ca", stranger.Client.Issued, true, "10.1.2.3", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := gateway.ExplainRequest{Config: (&config.Gateway{Policy: pol, DialTimeout: time.Second}).ServerConfig(nil), Cert: tc.cert.Cert,
				From: netip.MustParseAddr(tc.from), Route: tc.route}
			if tc.cas {
				req.CAs = p.CA.Pool()
			}
			var out bytes.Buffer
			allowed, err := gateway.Explain(&out, req)
			if err != nil {
				t.Fatal(err)
			}
			if allowed != tc.allows {
				t.Errorf("allowed = %v, want %v", allowed, tc.allows)
			}
			got := mask(out.String(), dir)
			golden := filepath.Join("testdata", "explain", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("explain output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func mask(s, dir string) string {
	s = regexp.MustCompile(`(serial|sha256): [0-9a-fA-F]+`).ReplaceAllString(s, "$1: X")
	s = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(s, "DATE")
	s = regexp.MustCompile(`(?m)^(\s+chain: REFUSED at the handshake: ).*$`).ReplaceAllString(s, "${1}ERROR")
	return regexp.MustCompile(regexp.QuoteMeta(dir)).ReplaceAllString(s, "DIR")
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/conn"
)

const limitsPolicy = `allow: [127.0.0.0/8]
routes:
  pg:
    backend: 127.0.0.1:5432
    identities: [any]
identity_limits:
  - identities: ["uri:spiffe://corp/ci/*"]
    max_sessions: 4
    max_streams: 64
    stream_rate: "20:100"
  - identities: [cn:dba]
    stream_rate: off
`

func TestPolicyIdentityLimits(t *testing.T) {
	p, err := ParsePolicy([]byte(limitsPolicy), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IdentityLimits) != 2 {
		t.Fatalf("%d entries, want 2", len(p.IdentityLimits))
	}
	l := p.IdentityLimits[0]
	if l.MaxSessions != 4 || l.MaxStreams != 64 || l.StreamRate != (conn.Rate{PerSec: 20, Burst: 100}) || l.Line != 7 {
		t.Errorf("first entry %+v", l)
	}
	// Format writes what ParsePolicy reads back the same.
	out, err := p.Format()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParsePolicy(out, "p.yaml")
	if err != nil {
		t.Fatalf("Format's output does not parse: %v\n%s", err, out)
	}
	if len(again.IdentityLimits) != 2 || again.IdentityLimits[0].StreamRate != l.StreamRate ||
		again.IdentityLimits[0].MaxStreams != 64 || again.IdentityLimits[1].Identities[0].String() != "cn:dba" {
		t.Errorf("round trip: %+v", again.IdentityLimits)
	}

	// Through BuildPolicy: the first entry that matches sets the limits;
	// an identity no entry matches gets the flags'.
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte(limitsPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Policy: path, DialTimeout: 1, MaxStreamsPerIdentity: 8}
	pol, err := g.BuildPolicy()
	if err != nil {
		t.Fatal(err)
	}
	ci := conn.Identity{URIs: []string{"spiffe://corp/ci/runner-3"}, CommonName: "dba"}
	if got := pol.LimitsFor(&ci); got.MaxSessions != 4 || got.Rule("max_sessions") != path+":7: max_sessions 4" {
		t.Errorf("ci identity: %+v (rule %q)", got, got.Rule("max_sessions"))
	}
	dba := conn.Identity{CommonName: "dba"}
	if got := pol.LimitsFor(&dba); !got.IsZero() {
		t.Errorf("dba: %+v, want no limit (its entry sets none)", got)
	}
	other := conn.Identity{CommonName: "app"}
	if got := pol.LimitsFor(&other); got.MaxStreams != 8 || got.Rule("max_streams") != "--max-streams-per-identity 8" {
		t.Errorf("other identity: %+v, want the flags' max streams 8", got)
	}
}

func TestPolicyIdentityLimitsErrors(t *testing.T) {
	head := "routes:\n  a:\n    backend: h:1\n    identities: [any]\n"
	for _, c := range []struct{ name, src, want string }{
		{"empty list", head + "identity_limits: []\n", `p.yaml:5: identity_limits: empty list: it sets no limit`},
		{"not a list", head + "identity_limits: 4\n", `p.yaml:5: identity_limits: "4" where a list is expected`},
		{"entry not a mapping", head + "identity_limits: [4]\n", `p.yaml:5: identity_limits entry 1: "4" where a mapping is expected`},
		{"no identities", head + "identity_limits:\n  - max_streams: 3\n", `p.yaml:6: identity_limits entry 1: no "identities:": it would apply to nobody`},
		{"no limit", head + "identity_limits:\n  - identities: [any]\n", `p.yaml:6: identity_limits entry 1: no limit: give max_sessions, max_streams or stream_rate`},
		{"unknown key", head + "identity_limits:\n  - identities: [any]\n    max_stream: 3\n", `p.yaml:7: identity_limits entry 1: unknown key "max_stream" (known: identities, max_sessions, max_streams, stream_rate)`},
		{"negative", head + "identity_limits:\n  - identities: [any]\n    max_sessions: -1\n", `p.yaml:7: identity_limits entry 1: max_sessions: out of range: -1`},
		{"bad rate", head + "identity_limits:\n  - identities: [any]\n    stream_rate: fast\n", `p.yaml:7: identity_limits entry 1: stream_rate "fast": the rate is not a number`},
		{"bad pattern", head + "identity_limits:\n  - identities: [\"nope:x\"]\n    max_streams: 1\n", `p.yaml:6: identity_limits entry 1: identities`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(c.src), "p.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant an error containing %q", err, c.want)
			}
		})
	}
}

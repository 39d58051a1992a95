package conn_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

// TestCachingServerConfig: the caching configuration refuses what
// ServerConfig refuses (another CA, dates, EKU, revocation, of the leaf or
// of an intermediate), with bad_certificate as the alert; it verifies a
// returning client's chain once, keeps checking revocation, and re-checks
// the chain's dates at every use.
func TestCachingServerConfig(t *testing.T) {
	p := testpki.New(t)
	bob := pairNamed(t, p, "bob")
	inter, err := p.CA.NewIntermediate(pki.CAOptions{Name: "inter"})
	if err != nil {
		t.Fatal(err)
	}
	carol := testpki.WritePair(t, p.Dir, "carol", inter, pki.Request{Kind: pki.Client, Name: "carol"})
	st := serverState(t, p, p.WriteCRL(t, "crl.der", bob.Issued.Cert))
	client := func(testpki.Pair) conn.ClientOptions { return conn.ClientOptions{ServerName: "localhost"} }
	refused := []struct {
		name, serverErr string
		pair            testpki.Pair
		revoked         bool
	}{
		{"another CA", "unknown authority", testpki.New(t).Client, false},
		{"expired", "expired", p.Expired(t), false},
		{"not yet valid", "not yet valid", p.NotYetValid(t), false},
		{"server EKU", "incompatible key usage", p.Server, false},
		{"revoked", "certificate revoked", bob, true},
	}
	for _, tt := range refused {
		for round := range 2 { // the second time, from the cache if anything was cached
			srv, cli := handshake(t, st.CachingServerConfig(), clientCreds(t, tt.pair, p.CAFile).TLSConfig(client(tt.pair)))
			if srv.err == nil || !strings.Contains(srv.err.Error(), tt.serverErr) {
				t.Errorf("%s, round %d: server error %v, want one with %q", tt.name, round, srv.err, tt.serverErr)
			}
			if tt.revoked != errors.Is(srv.err, conn.ErrRevoked) {
				t.Errorf("%s: server error %v: ErrRevoked %v, want %v", tt.name, srv.err, !tt.revoked, tt.revoked)
			}
			if a, ok := conn.RemoteAlert(cli.err); !ok || a != 42 {
				t.Errorf("%s: client error %v, want the bad_certificate alert (42)", tt.name, cli.err)
			}
		}
	}
	// A revoked intermediate.
	st2 := serverState(t, p, p.WriteCRL(t, "crl-inter.der", inter.Cert))
	if srv, _ := handshake(t, st2.CachingServerConfig(), clientCreds(t, carol, p.CAFile).TLSConfig(client(carol))); !errors.Is(srv.err, conn.ErrRevoked) {
		t.Errorf("carol under a revoked intermediate: %v, want revoked", srv.err)
	}

	// A good client: verified once, then from the cache.
	before, built := conn.CachedChains(st), conn.ChainsBuilt(st)
	for i := range 3 {
		srv, cli := handshake(t, st.CachingServerConfig(), clientCreds(t, p.Client, p.CAFile).TLSConfig(client(p.Client)))
		if srv.err != nil || cli.err != nil {
			t.Fatalf("alice, handshake %d: server %v, client %v", i, srv.err, cli.err)
		}
		if len(srv.state.VerifiedChains) != 0 {
			t.Fatal("crypto/tls verified the chain itself: not the caching configuration")
		}
		chains := st.ClientChains(srv.state, time.Now())
		if len(chains) == 0 || !chains[0][len(chains[0])-1].Equal(p.CA.Cert) {
			t.Fatalf("ClientChains = %v, want alice's chain to the CA", chains)
		}
		// Its dates are checked at each use, cache or not.
		if late := st.ClientChains(srv.state, p.Client.Issued.Cert.NotAfter.Add(time.Hour)); late != nil {
			t.Errorf("ClientChains after the leaf's NotAfter = %d chains, want none", len(late))
		}
	}
	if n := conn.CachedChains(st) - before; n != 1 {
		t.Errorf("%d chains cached for 3 handshakes of one client, want 1", n)
	}
	// Verified once in the handshakes; ClientChains at a late time
	// verifies anew each time (its cached chain is out of date there).
	if n := conn.ChainsBuilt(st) - built; n != 1+3 {
		t.Errorf("%d chains built for 3 handshakes of one client and 3 late lookups, want 1+3", n)
	}
	// ServerConfig's handshakes fill the same cache.
	st3 := serverState(t, p, "")
	if srv, _ := handshake(t, st3.ServerConfig(), clientCreds(t, p.Client, p.CAFile).TLSConfig(client(p.Client))); srv.err != nil || conn.CachedChains(st3) != 1 {
		t.Errorf("ServerConfig handshake: %v, %d chains cached, want 1", srv.err, conn.CachedChains(st3))
	}
	if srv, _ := handshake(t, st3.CachingServerConfig(), clientCreds(t, p.Client, p.CAFile).TLSConfig(client(p.Client))); srv.err != nil || conn.ChainsBuilt(st3) != 0 {
		t.Errorf("a caching handshake after a ServerConfig one: %v, %d chains built, want 0 (from the cache)", srv.err, conn.ChainsBuilt(st3))
	}
}

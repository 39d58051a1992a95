package pki

import (
	"net/netip"
	"testing"
)

// BenchmarkIssue measures issuing a server certificate, key generation
// included, per key type (RSA is left out: its key generation dominates and
// varies widely).
func BenchmarkIssue(b *testing.B) {
	for _, kt := range []KeyType{ECDSAP256, ECDSAP384, Ed25519} {
		b.Run(string(kt), func(b *testing.B) {
			ca := testCA(b, kt)
			req := Request{Kind: Server, Name: "gw", DNS: []string{"localhost"}, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, KeyType: kt}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ca.Issue(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

// TestNCHandshakeRefusalIsFinal: when the gateway refuses our certificate
// (with TLS 1.3 the alert comes just after our side of the handshake), nc
// gives up after that one handshake, exits 2 with the reason, and shows
// none of yamux's own log lines at the default level.
func TestNCHandshakeRefusalIsFinal(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	other := testpki.New(t)
	mallory := testpki.WritePair(t, t.TempDir(), "mallory", other.CA,
		pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://e2e/alice"}})
	mark := gw.stderr.mark()
	r := tunnel(t, strings.NewReader("ping\n"), append([]string{"nc", "echo"}, ca.clientArgs(gw.addr, pair{cert: mallory.Cert, key: mallory.Key})...)...)
	wantExit(t, "tunnel nc with a certificate from another CA", r, exitUnreachable, "does not trust", "--ca")
	for _, w := range []string{"yamux", "Failed to read header"} {
		if strings.Contains(r.stderr, w) {
			t.Errorf("stderr shows %q:\n%s", w, r.stderr)
		}
	}
	gw.waitEvent(t, mark, eventTimeout, isEvent("handshake_failed"))
	// nc has exited: every handshake it made is logged within moments.
	count := func() int {
		n := 0
		for _, e := range gw.stderr.events(mark) {
			if isEvent("handshake_failed")(e) {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := count(); n != 1 {
			t.Fatalf("the gateway saw %d failed handshakes from one nc, want 1:\n%s\ntunnel:\n%s", n, gw.stderr.tail(20), r.stderr)
		}
	}
}

package e2e_test

import (
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testpki"
)

// TestForwardChecksAtStart: "tunnel forward" dials the gateway before it
// serves. A handshake failure (here: a --ca the gateway's certificate does
// not chain to) ends it with status 2 and the reason; --lazy starts anyway;
// a route the gateway refuses is a warning, and the other routes are
// served.
func TestForwardChecksAtStart(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	other := testpki.New(t)
	wrongCA := []string{"--gateway", gw.addr, "--cert", ca.alice.cert, "--key", ca.alice.key, "--ca", other.CAFile}

	t.Run("wrong-ca", func(t *testing.T) {
		r := tunnel(t, nil, append([]string{"forward", "-L", "127.0.0.1:0=echo"}, wrongCA...)...)
		wantExit(t, "tunnel forward with a wrong --ca", r, exitUnreachable, "not signed by a CA", "--lazy")
	})
	t.Run("lazy", func(t *testing.T) {
		p, _ := startForwardProc(t, append([]string{"--lazy"}, wrongCA...), "127.0.0.1:0=echo")
		if p.exited() {
			t.Fatal("tunnel forward --lazy exited")
		}
	})
	t.Run("refused-route", func(t *testing.T) {
		p, locals := startForwardProc(t, ca.clientArgs(gw.addr, ca.alice), "127.0.0.1:0=nosuch", "127.0.0.1:0=echo")
		ev := p.waitEvent(t, 0, eventTimeout, isEvent("route_check_failed", "route", "nosuch"))
		if ev.str("level") != "warn" {
			t.Errorf("route check event %v: want level warn", ev)
		}
		if err := roundTrip(locals["echo"], 7, 4096, time.Now().Add(eventTimeout)); err != nil {
			t.Fatalf("the echo route after a refused one: %v", err)
		}
	})
}

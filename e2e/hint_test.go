package e2e_test

import (
	"net"
	"strings"
	"testing"
)

// TestClientSideRefusalNamesTheFlag: when the tunnel itself refuses a
// gateway, for a pin that does not match or an address outside
// --gateway-allow, the message names the flag to check (the library's
// error does not: it knows options, not flags), and the status is 2.
func TestClientSideRefusalNamesTheFlag(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.0/8", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	_, port, err := net.SplitHostPort(gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("pin", func(t *testing.T) {
		args := append([]string{"nc", "echo", "--pin", "sha256:" + strings.Repeat("ab", 32)}, ca.clientArgs(gw.addr, ca.alice)...)
		r := tunnel(t, strings.NewReader("ping\n"), args...)
		wantExit(t, "tunnel nc with a pin the gateway does not match", r, exitUnreachable,
			"pinned fingerprints", "check --pin")
	})
	t.Run("gateway-allow", func(t *testing.T) {
		// A host name: an IP address outside the rules is refused as a
		// bad setting before any dial.
		args := append([]string{"nc", "echo", "--gateway-allow", "10.0.0.0/8", "--server-name", "127.0.0.1"},
			ca.clientArgs(net.JoinHostPort("localhost", port), ca.alice)...)
		r := tunnel(t, strings.NewReader("ping\n"), args...)
		wantExit(t, "tunnel nc to a gateway outside --gateway-allow", r, exitUnreachable,
			"outside the allowed gateway addresses", "check --gateway-allow")
	})
}

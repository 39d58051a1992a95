package e2e_test

import (
	"strings"
	"testing"
)

// TestIPv6ServerNameDirect reaches a gateway on [::1] (not in the server
// certificate: --server-name names what is), checks that a wrong
// --server-name is refused by the tunnel itself, and that "tunnel nc
// --direct" (one TLS connection, SNI = route, no multiplexing) works too.
func TestIPv6ServerNameDirect(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--listen", "[::1]:0", "--allow", "::1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	if !strings.HasPrefix(gw.addr, "[::1]:") {
		t.Fatalf("gateway listens on %s, want [::1]:PORT", gw.addr)
	}
	client := ca.clientArgs(gw.addr, ca.alice)
	nc := func(extra ...string) result {
		t.Helper()
		return tunnel(t, strings.NewReader("over IPv6\n"), append(append([]string{"nc", "echo"}, client...), extra...)...)
	}

	r := nc("--server-name", "localhost")
	wantExit(t, "tunnel nc echo over IPv6", r, exitOK)
	if string(r.stdout) != "over IPv6\n" {
		t.Errorf("stdout = %q", r.stdout)
	}

	r = nc("--server-name", "localhost", "--direct")
	wantExit(t, "tunnel nc echo --direct", r, exitOK)
	if string(r.stdout) != "over IPv6\n" {
		t.Errorf("--direct: stdout = %q", r.stdout)
	}

	r = nc("--server-name", "wrong.test")
	wantExit(t, "tunnel nc with a --server-name the gateway's certificate does not hold", r, exitUnreachable,
		"we refused the gateway's certificate", "--server-name", "wrong.test")

	// Without --server-name the name is the host of --gateway, ::1, which
	// the certificate does not hold.
	r = nc()
	wantExit(t, "tunnel nc to [::1] without --server-name", r, exitUnreachable, "we refused the gateway's certificate")
}

// TestFailover gives the tunnel two gateways, the first one down: it must
// use the second.
func TestFailover(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	args := append([]string{"nc", "echo", "--gateway", closedAddr(t)}, ca.clientArgs(gw.addr, ca.alice)...)
	r := tunnel(t, strings.NewReader("second gateway\n"), args...)
	wantExit(t, "tunnel nc with the first gateway down", r, exitOK)
	if string(r.stdout) != "second gateway\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

package e2e_test

import (
	"net"
	"strings"
	"testing"
)

// TestGatewayRefusesToStart checks that the gateway exits with status 1
// and names the setting when it lacks a network allow-list or an identity
// rule, or when a setting is bad, before it listens.
func TestGatewayRefusesToStart(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name  string
		env   []string
		args  []string
		words []string
	}{
		{"no-allow-list", nil, ca.gatewayArgs("--allow-id", allowAlice, "--route", "echo=builtin:echo"),
			[]string{"--allow", "GATEWAY_ALLOW", "--allow-file", "allow-list"}},
		{"no-identity-rule", nil, ca.gatewayArgs("--allow", "127.0.0.1", "--route", "echo=builtin:echo"),
			[]string{"--allow-id", "GATEWAY_ALLOW_ID", "identity"}},
		{"neither", nil, ca.gatewayArgs("--route", "echo=builtin:echo"),
			[]string{"--allow", "--allow-id"}},
		{"bad-rule", nil, ca.gatewayArgs("--allow", "127.0.0.1,300.1.2.3", "--allow-id", allowAlice, "--route", "echo=builtin:echo"),
			[]string{"--allow", "300.1.2.3"}},
		{"bad-identity-pattern", nil, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", "spiffe-without-kind", "--route", "echo=builtin:echo"),
			[]string{"--allow-id", "spiffe-without-kind"}},
		{"bad-route", nil, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo"),
			[]string{"--route", "echo", "NAME=HOST:PORT"}},
		{"missing-cert-file", nil, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo", "--cert", "/nonexistent/gw.crt"),
			[]string{"--cert", "/nonexistent/gw.crt"}},
		{"bad-variable", []string{"GATEWAY_IDLE_TIMEOUT=ten"}, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo"),
			[]string{"GATEWAY_IDLE_TIMEOUT", "--idle-timeout", `"ten"`}},
		{"address-in-use", nil, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo", "--listen", busy.Addr().String()),
			[]string{"--listen", busy.Addr().String()}},
		{"unknown-flag", nil, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo", "--no-such-flag"),
			[]string{"no-such-flag"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The last --listen wins: "address-in-use" overrides the default one.
			r := run(t, startTimeout, nil, tc.env, gatewayBin, append([]string{"run"}, tc.args...)...)
			wantExit(t, "gateway run", r, exitSettings, tc.words...)
			if strings.Contains(r.stderr, `"event":"listening"`) {
				t.Errorf("the gateway listened before refusing to start:\n%s", r.stderr)
			}
		})
	}
}

// TestSettingsFromEnvironment runs the gateway and the tunnel configured by
// their environment variables only, then checks that a flag wins over its
// variable (even over a bad one).
func TestSettingsFromEnvironment(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	be := startEchoBackend(t, nil)

	t.Run("environment-only", func(t *testing.T) {
		gw := startGatewayEnv(t, []string{
			"GATEWAY_LISTEN=127.0.0.1:0",
			"GATEWAY_CERT=" + ca.server.cert, "GATEWAY_KEY=" + ca.server.key, "GATEWAY_CA=" + ca.caFile,
			"GATEWAY_ALLOW=127.0.0.1,::1",
			"GATEWAY_ALLOW_ID=cn:nobody, " + allowAlice,
			"GATEWAY_ROUTE=echo=builtin:echo, tcp=" + be.addr,
		})
		tunnelEnv := []string{"TUNNEL_GATEWAY=" + gw.addr, "TUNNEL_CERT=" + ca.alice.cert, "TUNNEL_KEY=" + ca.alice.key, "TUNNEL_CA=" + ca.caFile}
		for _, route := range []string{"echo", "tcp"} {
			r := run(t, runTimeout, strings.NewReader("via "+route+"\n"), tunnelEnv, tunnelBin, "nc", route)
			wantExit(t, "tunnel nc "+route+" (settings from the environment)", r, exitOK)
			if string(r.stdout) != "via "+route+"\n" {
				t.Errorf("route %s: stdout = %q", route, r.stdout)
			}
		}
	})

	t.Run("flag-wins", func(t *testing.T) {
		gw := startGatewayEnv(t, []string{
			"GATEWAY_LISTEN=this is not an address", // bad, but --listen is given
			"GATEWAY_ALLOW_ID=cn:nobody",            // --allow-id replaces it
			"GATEWAY_ROUTE=echo=builtin:echo",       // --route replaces it
		}, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "flagged=builtin:echo")...)
		tunnelEnv := []string{
			"TUNNEL_GATEWAY=" + closedAddr(t),                        // --gateway wins
			"TUNNEL_CERT=" + ca.bob.cert, "TUNNEL_KEY=" + ca.bob.key, // --cert and --key win
			"TUNNEL_CA=/nonexistent/ca.crt", // --ca wins
		}
		client := ca.clientArgs(gw.addr, ca.alice)
		r := run(t, runTimeout, strings.NewReader("flags\n"), tunnelEnv, tunnelBin, append([]string{"nc", "flagged"}, client...)...)
		wantExit(t, "tunnel nc flagged", r, exitOK)
		if string(r.stdout) != "flags\n" {
			t.Errorf("stdout = %q, want %q", r.stdout, "flags\n")
		}
		r = run(t, runTimeout, strings.NewReader("env\n"), tunnelEnv, tunnelBin, append([]string{"nc", "echo"}, client...)...)
		wantExit(t, "tunnel nc echo (a route only in $GATEWAY_ROUTE, which --route replaced)", r, exitRefused, "no route", "echo")
	})
}

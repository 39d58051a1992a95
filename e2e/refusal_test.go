package e2e_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

// TestNCRefusals checks each way "tunnel nc" can be refused: the exit
// status of the contract (1 bad settings, 2 gateway unreachable or
// handshake refused, 3 stream refused), words a user understands on
// stderr, nothing on stdout, the gateway's audit event where the gateway
// saw the attempt, and that a good client is still served afterwards.
func TestNCRefusals(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	down := closedAddr(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "echo=builtin:echo", "--route", "down="+down)...)

	now := time.Now()
	// A certificate from another CA, with an identity the rules would admit.
	other := testpki.New(t)
	mallory := testpki.WritePair(t, t.TempDir(), "mallory", other.CA,
		pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://e2e/alice"}})
	wrongCA := pair{cert: mallory.Cert, key: mallory.Key}
	expired := ca.special(t, "expired", pki.Request{Kind: pki.Client, Name: "expired", URIs: []string{"spiffe://e2e/expired"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future := ca.special(t, "future", pki.Request{Kind: pki.Client, Name: "future", URIs: []string{"spiffe://e2e/future"},
		NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)})

	nc := func(route string, id pair) []string {
		return append([]string{"nc", route}, ca.clientArgs(gw.addr, id)...)
	}
	without := func(args []string, flag string) []string {
		i := slices.Index(args, flag)
		return slices.Delete(slices.Clone(args), i, i+2)
	}
	with := func(args []string, flag, value string) []string {
		out := slices.Clone(args)
		out[slices.Index(out, flag)+1] = value
		return out
	}

	cases := []struct {
		name  string
		args  []string
		code  int
		words []string
		// gateway is the audit event the attempt leaves, when it reaches
		// the gateway.
		gateway func(event) bool
	}{
		{"wrong-ca", nc("echo", wrongCA), exitUnreachable,
			[]string{"gateway", "does not trust", "--ca"}, isEvent("handshake_failed")},
		{"expired", nc("echo", expired), exitUnreachable,
			[]string{"gateway", "expired"}, isEvent("handshake_failed")},
		{"not-yet-valid", nc("echo", future), exitUnreachable,
			[]string{"gateway", "not yet valid"}, isEvent("handshake_failed")},
		{"server-certificate-as-client", nc("echo", ca.server), exitUnreachable,
			[]string{"gateway", "refused our client certificate"}, isEvent("handshake_failed")},
		{"identity-not-allowed", nc("echo", ca.bob), exitRefused,
			[]string{"refused", "echo", "spiffe://outsider/bob", "not allowed"}, isEvent("stream_refused", "route", "echo")},
		{"unknown-route", nc("nosuch", ca.alice), exitRefused,
			[]string{"refused", "nosuch", "no route"}, isEvent("stream_refused", "route", "nosuch")},
		{"backend-down", nc("down", ca.alice), exitRefused,
			[]string{"refused", "down", "unreachable"}, isEvent("backend_unreachable", "route", "down")},
		{"gateway-not-listening", with(nc("echo", ca.alice), "--gateway", closedAddr(t)), exitUnreachable,
			[]string{"cannot connect", "refused"}, nil},
		{"missing-ca", without(nc("echo", ca.alice), "--ca"), exitSettings,
			[]string{"--ca", "TUNNEL_CA", "required"}, nil},
		{"missing-cert", without(nc("echo", ca.alice), "--cert"), exitSettings,
			[]string{"--cert", "required"}, nil},
		{"unreadable-key", with(nc("echo", ca.alice), "--key", "/nonexistent/alice.key"), exitSettings,
			[]string{"--key", "/nonexistent/alice.key"}, nil},
		{"bad-gateway-address", with(nc("echo", ca.alice), "--gateway", "no-port-here"), exitSettings,
			[]string{"--gateway", "no-port-here"}, nil},
		{"bad-route-name", nc("bad route!", ca.alice), exitSettings,
			[]string{"route", "bad route!"}, nil},
		{"unknown-flag", append(nc("echo", ca.alice), "--no-such-flag"), exitSettings,
			[]string{"no-such-flag"}, nil},
		{"missing-route", append([]string{"nc"}, ca.clientArgs(gw.addr, ca.alice)...), exitSettings,
			[]string{"route"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			mark := gw.stderr.mark()
			r := tunnel(t, strings.NewReader("ping\n"), args...)
			wantExit(t, "tunnel "+strings.Join(args, " "), r, tc.code, tc.words...)
			if len(r.stdout) > 0 {
				t.Errorf("a refused nc wrote to stdout: %q", r.stdout)
			}
			if tc.gateway != nil {
				gw.waitEvent(t, mark, eventTimeout, tc.gateway)
			}
		})
	}

	t.Run("still-serving", func(t *testing.T) {
		r := tunnel(t, strings.NewReader("ping\n"), nc("echo", ca.alice)...)
		wantExit(t, "tunnel nc echo", r, exitOK)
		if string(r.stdout) != "ping\n" {
			t.Errorf("stdout = %q, want the echo %q", r.stdout, "ping\n")
		}
		if gw.exited() {
			t.Errorf("the gateway exited")
		}
	})
}

// TestTunnelStderrIsPlainText checks that what the tunnel writes to a
// stderr that is not a terminal (a file, a pipe, a CI log) carries no ANSI
// color escapes, with the default log format.
func TestTunnelStderrIsPlainText(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	// Unreachable gateway: the tunnel logs its dial attempt as a warning
	// before it gives up.
	r := tunnel(t, strings.NewReader("ping\n"), append([]string{"nc", "echo"}, ca.clientArgs(closedAddr(t), ca.alice)...)...)
	wantExit(t, "tunnel nc to a closed port", r, exitUnreachable, "cannot connect")
	if i := strings.Index(r.stderr, "\x1b["); i >= 0 {
		t.Errorf("stderr (a pipe) holds ANSI escape sequences, starting at byte %d:\n%q", i, r.stderr)
	}
}

// TestDeniedClientIsTold checks what a tunnel whose address the gateway's
// network rules refuse is told: status 2 and a hint at the network rules,
// every time. The gateway resets such a connection at once; on loopback
// the reset lands either during TCP connect or during the TLS handshake,
// so the attempt is repeated to cover both.
func TestDeniedClientIsTold(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "10.0.0.0/8", "--allow-id", allowAlice, "--route", "echo=builtin:echo")...)
	args := append([]string{"nc", "echo", "--log-level", "error"}, ca.clientArgs(gw.addr, ca.alice)...)
	for i := range 8 {
		r := tunnel(t, strings.NewReader("ping\n"), args...)
		wantExit(t, fmt.Sprintf("tunnel nc from a denied address (attempt %d)", i+1), r, exitUnreachable, "network rules")
		if t.Failed() {
			break
		}
	}
	gw.waitEvent(t, 0, eventTimeout, isEvent("deny"))
}

package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// TestLandlockSandbox runs a gateway from a policy file with one backend,
// then reloads a policy that adds a backend on another port: with Landlock
// ABI 4 or later the gateway may not connect to that port (the stream is
// refused, backend unreachable, permission denied), while the first
// backend still works. With --no-landlock the same reload reaches both.
func TestLandlockSandbox(t *testing.T) {
	t.Parallel()
	abi, err := llsys.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		t.Skipf("the kernel has no Landlock (%v)", err)
	}
	ca := getCA(t)
	first, second := startEchoBackend(t, nil), startEchoBackend(t, nil)
	policy := func(dir string, routes ...string) string {
		var b strings.Builder
		b.WriteString("allow: [127.0.0.1]\nroutes:\n")
		for i, addr := range routes {
			fmt.Fprintf(&b, "  b%d:\n    backend: %s\n    identities: [%q]\n", i+1, addr, allowAlice)
		}
		file := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	echo := func(gw *gatewayProc, route string) result {
		return tunnel(t, bytes.NewReader([]byte("hi\n")), append([]string{"nc", route}, ca.clientArgs(gw.addr, ca.alice)...)...)
	}

	for _, sandboxed := range []bool{true, false} {
		dir := t.TempDir()
		file := policy(dir, first.addr)
		args := ca.gatewayArgs("--policy", file, "--watch-interval", "0")
		if !sandboxed {
			args = append(args, "--no-landlock")
		}
		gw := startGateway(t, args...)
		ev := gw.waitEvent(t, 0, eventTimeout, isEvent("sandbox"))
		if want := map[bool]string{true: "on", false: "off"}[sandboxed]; ev.str("landlock") != want {
			t.Fatalf("sandbox event %v: want landlock %s", ev, want)
		}
		if r := echo(gw, "b1"); r.code != exitOK || string(r.stdout) != "hi\n" {
			t.Errorf("sandboxed=%v: route b1: %v", sandboxed, r)
		}

		policy(dir, first.addr, second.addr) // a new backend port, on a reload
		mark := gw.stderr.mark()
		gw.signal(t, syscall.SIGHUP)
		gw.waitEvent(t, mark, eventTimeout, isEvent("reloaded"))
		r := echo(gw, "b2")
		switch {
		case sandboxed && abi >= 4:
			wantExit(t, "route b2 on a port outside the sandbox", r, exitRefused, "unreachable")
			gw.waitEvent(t, mark, eventTimeout, func(e event) bool {
				return isEvent("backend_unreachable", "route", "b2")(e) && strings.Contains(e.String(), "permission denied")
			})
		default:
			if r.code != exitOK || string(r.stdout) != "hi\n" {
				t.Errorf("sandboxed=%v (ABI %d): route b2: %v", sandboxed, abi, r)
			}
		}
		if r := echo(gw, "b1"); r.code != exitOK {
			t.Errorf("sandboxed=%v: route b1 after the reload: %v", sandboxed, r)
		}
	}
}

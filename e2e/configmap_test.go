package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCRLFromConfigMapLayout gives the gateway its CRL as Kubernetes mounts
// a ConfigMap (docs/scale-out.md): crl.pem is a symbolic link to
// ..data/crl.pem, ..data a link to a timestamped directory, and an update
// writes a new directory and renames a new ..data link over the old one.
// The gateway's polling (--watch-interval) must see the change through the
// links and refuse the certificate the new CRL revokes.
func TestCRLFromConfigMapLayout(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	gatewayPKI(t, "init", "--dir", dir)
	gatewayPKI(t, "issue", "--dir", dir, "--server", "--name", "gw", "--ip", "127.0.0.1")
	gatewayPKI(t, "issue", "--dir", dir, "--client", "--name", "carol", "--uri", "spiffe://e2e/carol")
	gatewayPKI(t, "issue", "--dir", dir, "--client", "--name", "dave", "--uri", "spiffe://e2e/dave")
	p := func(name string) string { return filepath.Join(dir, name) }

	mount := filepath.Join(t.TempDir(), "config")
	// publish writes crl.pem of the CA as the kubelet's atomic update does.
	publish := func(version string) {
		t.Helper()
		data, err := os.ReadFile(p("crl.pem"))
		if err != nil {
			t.Fatal(err)
		}
		ts := filepath.Join(mount, "..2026_12_02_"+version)
		if err := os.MkdirAll(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts, "crl.pem"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(mount, "..data_tmp")
		if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(mount, "crl.pem")
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", "crl.pem"), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("1")

	gw := startGateway(t, "--listen", "127.0.0.1:0", "--cert", p("gw.crt"), "--key", p("gw.key"), "--ca", p("ca.crt"),
		"--crl", filepath.Join(mount, "crl.pem"), "--watch-interval", "100ms",
		"--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")
	nc := func(t *testing.T, who string, code int, words ...string) {
		t.Helper()
		r := tunnel(t, strings.NewReader("ping\n"), "nc", "echo", "--gateway", gw.addr,
			"--cert", p(who+".crt"), "--key", p(who+".key"), "--ca", p("ca.crt"))
		wantExit(t, "tunnel nc as "+who, r, code, words...)
	}
	nc(t, "carol", exitOK)

	gatewayPKI(t, "revoke", "--dir", dir, "--cert", p("carol.crt"))
	mark := gw.stderr.mark()
	publish("2")
	if err := os.RemoveAll(filepath.Join(mount, "..2026_12_02_1")); err != nil {
		t.Fatal(err)
	}
	gw.waitEvent(t, mark, eventTimeout, isEvent("files_changed"))
	gw.waitEvent(t, mark, eventTimeout, isEvent("reloaded"))
	nc(t, "carol", exitUnreachable, "revoked")
	nc(t, "dave", exitOK)

}

package e2e_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// gatewayPKI runs "gateway pki ARGS..." and fails the test unless it
// succeeds.
func gatewayPKI(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, runTimeout, nil, nil, gatewayBin, append([]string{"pki"}, args...)...)
	if r.code != 0 {
		t.Fatalf("gateway pki %s: %v", strings.Join(args, " "), r)
	}
	return string(r.stdout)
}

// TestPKIOpenSSLVerify checks that OpenSSL accepts what "gateway pki"
// writes: chains, key usages for each purpose, the CRL, and revocation.
func TestPKIOpenSSLVerify(t *testing.T) {
	t.Parallel()
	openssl := lookTool(t, "openssl")
	ca := getCA(t)
	verify := func(t *testing.T, ok bool, args ...string) {
		t.Helper()
		r := run(t, runTimeout, nil, nil, openssl, append([]string{"verify"}, args...)...)
		out := string(r.stdout) + r.stderr
		if ok && (r.code != 0 || !strings.Contains(out, ": OK")) {
			t.Errorf("openssl verify %s: want OK, got %v\n%s", strings.Join(args, " "), r, r.stdout)
		}
		if !ok && r.code == 0 {
			t.Errorf("openssl verify %s: accepted, want a refusal:\n%s", strings.Join(args, " "), out)
		}
	}

	t.Run("chains", func(t *testing.T) {
		verify(t, true, "-x509_strict", "-CAfile", ca.caFile, ca.server.cert, ca.alice.cert, ca.bob.cert)
	})
	t.Run("purposes", func(t *testing.T) {
		verify(t, true, "-purpose", "sslserver", "-CAfile", ca.caFile, ca.server.cert)
		verify(t, true, "-purpose", "sslclient", "-CAfile", ca.caFile, ca.alice.cert)
		verify(t, false, "-purpose", "sslclient", "-CAfile", ca.caFile, ca.server.cert)
		verify(t, false, "-purpose", "sslserver", "-CAfile", ca.caFile, ca.alice.cert)
	})
	t.Run("names", func(t *testing.T) {
		verify(t, true, "-purpose", "sslserver", "-verify_hostname", "gw.test", "-CAfile", ca.caFile, ca.server.cert)
		verify(t, true, "-purpose", "sslserver", "-verify_ip", "127.0.0.1", "-CAfile", ca.caFile, ca.server.cert)
		verify(t, false, "-purpose", "sslserver", "-verify_hostname", "other.test", "-CAfile", ca.caFile, ca.server.cert)
	})
	t.Run("crl", func(t *testing.T) {
		r := run(t, runTimeout, nil, nil, openssl, "crl", "-in", ca.crl, "-CAfile", ca.caFile, "-noout")
		if r.code != 0 || !strings.Contains(r.stderr+string(r.stdout), "verify OK") {
			t.Errorf("openssl crl -CAfile: %v", r)
		}
		verify(t, true, "-crl_check", "-CRLfile", ca.crl, "-CAfile", ca.caFile, ca.alice.cert)
	})
	t.Run("intermediate-and-revocation", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ca")
		gatewayPKI(t, "init", "--dir", dir, "--intermediate", "--key-type", "ed25519")
		gatewayPKI(t, "issue", "--dir", dir, "--server", "--name", "gw", "--dns", "gw.test")
		gatewayPKI(t, "issue", "--dir", dir, "--client", "--name", "carol", "--email", "carol@example.com", "--key-type", "rsa-2048")
		root, inter := filepath.Join(dir, "root.crt"), filepath.Join(dir, "ca.crt")
		gw, carol := filepath.Join(dir, "gw.crt"), filepath.Join(dir, "carol.crt")
		// NAME.crt holds the chain: it serves as -untrusted for itself.
		verify(t, true, "-purpose", "sslserver", "-CAfile", root, "-untrusted", gw, gw)
		verify(t, true, "-purpose", "sslclient", "-CAfile", root, "-untrusted", inter, carol)
		verify(t, false, "-CAfile", root, carol)                     // without the intermediate, no chain to the root
		verify(t, false, "-CAfile", ca.caFile, "-untrusted", gw, gw) // another CA

		out := gatewayPKI(t, "revoke", "--dir", dir, "--cert", carol, "--reason", "keyCompromise")
		if !strings.Contains(out, "revoked") {
			t.Errorf("gateway pki revoke printed %q", out)
		}
		crl := filepath.Join(dir, "crl.pem")
		r := run(t, runTimeout, nil, nil, openssl, "verify", "-crl_check", "-CRLfile", crl, "-CAfile", root, "-untrusted", inter, carol)
		if r.code == 0 || !strings.Contains(strings.ToLower(string(r.stdout)+r.stderr), "revoked") {
			t.Errorf("openssl verify of a revoked certificate: %v\n%s", r, r.stdout)
		}
		verify(t, true, "-crl_check", "-CRLfile", crl, "-CAfile", root, "-untrusted", gw, gw)
	})
}

// TestRevocationThroughGateway revokes a client certificate with "gateway
// pki revoke", reloads the gateway's --crl with SIGHUP, and checks that the
// tunnel is refused (status 2, the word "revoked") while another client of
// the same CA still gets through.
func TestRevocationThroughGateway(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	gatewayPKI(t, "init", "--dir", dir)
	gatewayPKI(t, "issue", "--dir", dir, "--server", "--name", "gw", "--ip", "127.0.0.1")
	gatewayPKI(t, "issue", "--dir", dir, "--client", "--name", "carol", "--uri", "spiffe://e2e/carol")
	gatewayPKI(t, "issue", "--dir", dir, "--client", "--name", "dave", "--uri", "spiffe://e2e/dave")
	p := func(name string) string { return filepath.Join(dir, name) }
	gw := startGateway(t, "--listen", "127.0.0.1:0", "--cert", p("gw.crt"), "--key", p("gw.key"), "--ca", p("ca.crt"),
		"--crl", p("crl.pem"), "--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "echo=builtin:echo")
	nc := func(t *testing.T, who string, code int, words ...string) {
		t.Helper()
		r := tunnel(t, strings.NewReader("ping\n"), "nc", "echo", "--gateway", gw.addr,
			"--cert", p(who+".crt"), "--key", p(who+".key"), "--ca", p("ca.crt"))
		wantExit(t, "tunnel nc as "+who, r, code, words...)
	}
	nc(t, "carol", exitOK)
	gatewayPKI(t, "revoke", "--dir", dir, "--cert", p("carol.crt"))
	mark := gw.stderr.mark()
	gw.signal(t, syscall.SIGHUP)
	gw.waitEvent(t, mark, eventTimeout, isEvent("reloaded"))
	nc(t, "carol", exitUnreachable, "revoked")
	ev := gw.waitEvent(t, mark, eventTimeout, isEvent("handshake_failed"))
	if !strings.Contains(strings.ToLower(ev.str("reason")), "revoked") {
		t.Errorf("handshake_failed event does not say revoked: %v", ev)
	}
	nc(t, "dave", exitOK)
}

package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/enroll"
	"github.com/portcullis-gw/portcullis/pki"
)

// enrollSetup is a CA, an enrollment service, a gateway in front of an
// echo backend, and GnuPG keys for a user and an admin.
type enrollSetup struct {
	dir     string // the CA
	gnupg   string // GNUPGHOME
	xdg     string // XDG_CONFIG_HOME of the user
	admin   string // the admin's private key file
	url     string // the service
	service *proc
	gw      *gatewayProc
}

func (e *enrollSetup) env() []string {
	return []string{"GNUPGHOME=" + e.gnupg, "XDG_CONFIG_HOME=" + e.xdg}
}

func gpgRun(t *testing.T, home string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gpg", append([]string{"--homedir", home, "--batch", "--yes"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// startEnroll sets everything up; ttl is the service's default lifetime.
func startEnroll(t *testing.T, ttl string) *enrollSetup {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg (GnuPG) is not installed: tunnel login signs with it")
	}
	home, err := os.MkdirTemp("", "gpg") // short: the agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	work := t.TempDir()
	e := &enrollSetup{dir: filepath.Join(work, "ca"), gnupg: home, xdg: filepath.Join(work, "xdg")}
	gpgRun(t, home, "--passphrase", "", "--quick-gen-key", "Alice <alice@example.com>", "ed25519", "sign", "never")
	gpgRun(t, home, "--passphrase", "", "--quick-gen-key", "Security <sec@example.com>", "rsa2048", "sign", "never")
	users := filepath.Join(work, "users.gpg")
	admins := filepath.Join(work, "admins.asc")
	e.admin = filepath.Join(work, "admin-secret.asc")
	for path, data := range map[string][]byte{
		users:   gpgRun(t, home, "--export", "alice@example.com"),
		admins:  gpgRun(t, home, "--export", "--armor", "sec@example.com"),
		e.admin: gpgRun(t, home, "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", "sec@example.com"),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"pki", "init", "--dir", e.dir},
		{"pki", "issue", "--dir", e.dir, "--server", "--name", "gw", "--dns", "localhost", "--ip", "127.0.0.1"},
	} {
		if r := run(t, runTimeout, nil, nil, gatewayBin, args...); r.code != 0 {
			t.Fatalf("gateway %v: %v", args, r)
		}
	}
	e.service = startProc(t, "gateway enroll serve", nil, nil, nil, gatewayBin, "enroll", "serve",
		"--dir", e.dir, "--cert", filepath.Join(e.dir, "gw.crt"), "--key", filepath.Join(e.dir, "gw.key"),
		"--users-keyring", users, "--admin-keyring", admins, "--org", "e2e", "--listen", "127.0.0.1:0", "--ttl", ttl)
	ev := e.service.waitEvent(t, 0, startTimeout, isEvent("listening"))
	_, port, _ := net.SplitHostPort(ev.str("addr"))
	e.url = "https://localhost:" + port
	backend := startEchoBackend(t, nil)
	e.gw = startGateway(t, "--listen", "127.0.0.1:0", "--cert", filepath.Join(e.dir, "gw.crt"), "--key", filepath.Join(e.dir, "gw.key"),
		"--ca", filepath.Join(e.dir, "ca.crt"), "--crl", filepath.Join(e.dir, "crl.pem"), "--watch-interval", "200ms",
		"--allow", "127.0.0.0/8", "--allow-id", "uri:spiffe://e2e/user/*",
		"--route", "echo="+backend.addr, "--route", "probe="+backend.addr)
	return e
}

// login runs tunnel login with the user's gpg key.
func (e *enrollSetup) login(t *testing.T, extra ...string) string {
	t.Helper()
	r := run(t, runTimeout, nil, e.env(), tunnelBin, append([]string{"login", "--enroll", e.url,
		"--ca", filepath.Join(e.dir, "ca.crt"), "--gpg-key", "alice@example.com"}, extra...)...)
	if r.code != 0 || !strings.Contains(string(r.stdout), "logged in as alice (spiffe://e2e/user/alice, alice@example.com)") {
		t.Fatalf("tunnel login: %v\nstdout: %s", r, r.stdout)
	}
	return string(r.stdout)
}

// forward starts tunnel forward with the login's certificate (no --cert,
// --key, --ca) and returns the addresses of echo and probe.
func (e *enrollSetup) forward(t *testing.T) (*proc, string, string) {
	t.Helper()
	p := startProc(t, "tunnel forward", e.env(), nil, nil, tunnelBin, "forward", "--log-format", "json",
		"--gateway", e.gw.addr, "--server-name", "localhost", "-L", "127.0.0.1:0=echo", "-L", "127.0.0.1:0=probe")
	echo := p.waitEvent(t, 0, startTimeout, isEvent("listening", "route", "echo")).str("addr")
	probe := p.waitEvent(t, 0, startTimeout, isEvent("listening", "route", "probe")).str("addr")
	return p, echo, probe
}

// storeSerial is the serial of the certificate tunnel login keeps.
func (e *enrollSetup) store() enroll.Store {
	return enroll.Store{Dir: filepath.Join(e.xdg, "portcullis")}
}

// probeSerial opens one connection on the probe route and returns the
// serial the gateway saw for its stream.
func (e *enrollSetup) probeSerial(t *testing.T, addr string, seed uint64) string {
	t.Helper()
	mark := e.gw.stderr.mark()
	if err := roundTrip(addr, seed, 4096, time.Now().Add(runTimeout)); err != nil {
		t.Fatalf("probe connection: %v", err)
	}
	ev := e.gw.waitEvent(t, mark, eventTimeout, isEvent("stream_open", "route", "probe"))
	id, _ := ev["identity"].(map[string]any)
	s, _ := id["serial"].(string)
	return s
}

// The whole path: tunnel login with a gpg key, data through tunnel forward
// with the certificate it keeps, tunnel status; then renewals under load:
// with a 12s lifetime, forward renews at two thirds of it, twice or more
// while 20 streams move checksummed data and new connections keep coming.
// No byte is lost and no stream cut; each connection opened after a
// renewal carries the new serial at the gateway.
func TestLoginAndRenewalUnderLoad(t *testing.T) {
	e := startEnroll(t, "12s")
	out := e.login(t)
	if !strings.Contains(out, e.url) {
		t.Errorf("login does not name the service it renews from:\n%s", out)
	}
	st := run(t, runTimeout, nil, e.env(), tunnelBin, "status")
	if st.code != 0 || !strings.Contains(string(st.stdout), "identity:  uri:spiffe://e2e/user/alice") || !strings.Contains(string(st.stdout), e.url) {
		t.Fatalf("tunnel status: %v\n%s", st, st.stdout)
	}
	first, err := e.store().Leaf()
	if err != nil {
		t.Fatal(err)
	}
	fwd, echo, probe := e.forward(t)
	if s := e.probeSerial(t, probe, 1); s != pki.FormatSerial(first.SerialNumber) {
		t.Fatalf("first connection: serial %s at the gateway, want the login's %s", s, pki.FormatSerial(first.SerialNumber))
	}

	const streams = 20
	const streamFor = 24 * time.Second
	var wg sync.WaitGroup
	errs := make(chan error, streams+1)
	var moved atomic.Int64
	for i := range streams {
		wg.Go(func() {
			if err := pacedRoundTrip(echo, uint64(100+i), streamFor, &moved); err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
			}
		})
	}
	stop := make(chan struct{})
	var conns atomic.Int64
	var connWG sync.WaitGroup
	connWG.Go(func() {
		for n := uint64(0); n < 1000; n++ {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			if err := roundTrip(echo, 1000+n, 2048, time.Now().Add(runTimeout)); err != nil {
				errs <- fmt.Errorf("new connection %d: %w", n, err)
				return
			}
			conns.Add(1)
		}
	})

	// Two renewals, each checked at the gateway with a new connection.
	from := 0
	seen := map[string]bool{pki.FormatSerial(first.SerialNumber): true}
	for i := range 2 {
		ev := fwd.waitEvent(t, from, 20*time.Second, isEvent("renewed"))
		from = fwd.stderr.mark()
		serial := ev.str("serial")
		if seen[serial] {
			t.Fatalf("renewal %d: serial %s again", i+1, serial)
		}
		seen[serial] = true
		fwd.waitEvent(t, 0, eventTimeout, isEvent("reloaded", "serial", serial))
		if got := e.probeSerial(t, probe, uint64(10+i)); got != serial {
			t.Fatalf("a connection after renewal %d carries serial %s at the gateway, want the new %s", i+1, got, serial)
		}
	}
	wg.Wait() // the streams end by themselves
	close(stop)
	connWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if conns.Load() < 20 {
		t.Errorf("only %d new connections during the renewals", conns.Load())
	}
	t.Logf("%d streams moved %d bytes each way across %d certificates; %d new connections", streams, moved.Load(), len(seen), conns.Load())
	// The store holds the last certificate, its key 0600.
	if fi, err := os.Stat(e.store().KeyPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", fi, err)
	}
}

// pacedRoundTrip keeps one stream busy for d: it writes chunks of
// pseudo-random bytes at a steady pace and checks that the echo returns
// exactly them, then half-closes and reads the rest.
func pacedRoundTrip(addr string, seed uint64, d time.Duration, moved *atomic.Int64) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d + runTimeout))
	const chunk = 2048
	n := int64(d/(50*time.Millisecond)) * chunk
	done := make(chan error, 1)
	go func() { done <- compareStream(c, seed, n) }()
	src := randomStream(seed, n)
	buf := make([]byte, chunk)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for sent := int64(0); sent < n; sent += chunk {
		<-tick.C
		if _, err := io.ReadFull(src, buf); err != nil {
			return err
		}
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("writing at byte %d: %w", sent, err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	moved.Add(n)
	return nil
}

// An admin revokes through the API: the certificate's next stream on its
// open session is refused, and so is its next handshake and its renewal.
func TestRevocationThroughTheAPI(t *testing.T) {
	e := startEnroll(t, "1h")
	e.login(t)
	fwd, echo, _ := e.forward(t)
	if err := roundTrip(echo, 1, 4096, time.Now().Add(runTimeout)); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	leaf, err := e.store().Leaf()
	if err != nil {
		t.Fatal(err)
	}
	serial := pki.FormatSerial(leaf.SerialNumber)
	ca, err := os.ReadFile(filepath.Join(e.dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := enroll.NewClient(enroll.ClientOptions{URL: e.url, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin, err := enroll.ReadKeySigner(e.admin)
	if err != nil {
		t.Fatal(err)
	}
	// The user's own key may not revoke.
	_, err = c.Revoke(context.Background(), enroll.GPGSigner{Key: "alice@example.com", Home: e.gnupg}, serial, nil, "keyCompromise")
	if !errors.Is(err, &enroll.Error{Code: enroll.CodeUnknownSigner}) {
		t.Fatalf("revocation signed by the user: %v", err)
	}
	mark := e.gw.stderr.mark()
	if _, err := c.Revoke(context.Background(), admin, serial, nil, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	e.service.waitEvent(t, 0, eventTimeout, isEvent("enroll_revoked", "serial", serial))
	e.gw.waitEvent(t, mark, eventTimeout, isEvent("reloaded"))

	// The next stream, on the session that is still open, is refused; the
	// tunnel retires that session and its new handshake is refused too.
	if err := roundTrip(echo, 2, 4096, time.Now().Add(runTimeout)); err == nil {
		t.Fatal("a stream with the revoked certificate went through")
	}
	e.gw.waitEvent(t, mark, eventTimeout, isEvent("stream_refused", "reason", "client certificate revoked"))
	e.gw.waitEvent(t, mark, eventTimeout, func(ev event) bool {
		return ev.str("event") == "handshake_failed" && strings.Contains(ev.str("reason"), "revoked")
	})
	fwd.waitEvent(t, 0, eventTimeout, isEvent("stream_failed"))

	// And its renewal.
	st, err := e.store().LoadState()
	if err != nil {
		t.Fatal(err)
	}
	_, err = enroll.Renew(context.Background(), e.store(), st, ca)
	if !errors.Is(err, &enroll.Error{Code: enroll.CodeCertRevoked}) {
		t.Fatalf("renewal of the revoked certificate: %v", err)
	}
	e.service.waitEvent(t, 0, eventTimeout, isEvent("enroll_refused", "code", "certificate_revoked"))
}

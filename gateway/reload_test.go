package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/pki"
)

const reloadPolicy = `allow: ["127.0.0.1", "::1"]
routes:
  echo:
    backend: builtin:echo
    identities: [%s]
`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as configuration managers do
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// Reload under load: streams keep moving checksummed data while the
// certificate, CA, CRL, rules and policy are replaced with valid and invalid
// versions; no byte is lost, no stream dropped, and new connections and
// streams follow the new state.
func TestReloadUnderLoad(t *testing.T) {
	p := testpki.New(t)
	ca2 := testpki.New(t) // a second CA, trusted only after a reload
	dir := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"server.crt", "server.key", "ca.crt", "crl.pem", "policy.yaml"} {
		files[n] = filepath.Join(dir, n)
	}
	copyFile(t, p.Server.Cert, files["server.crt"])
	copyFile(t, p.Server.Key, files["server.key"])
	copyFile(t, p.CAFile, files["ca.crt"])
	copyFile(t, p.WriteCRL(t, "crl0.pem"), files["crl.pem"])
	writeFile(t, files["policy.yaml"], fmt.Sprintf(reloadPolicy, `"uri:spiffe://test/app/*"`))

	cfg := baseConfig(p)
	cfg.Cert, cfg.Key, cfg.CA, cfg.CRL, cfg.Policy = files["server.crt"], files["server.key"], files["ca.crt"], files["crl.pem"], files["policy.yaml"]
	cfg.Routes, cfg.AllowIDs = nil, nil
	cfg.Allow = nil
	e := start(t, p, cfg)

	bob := p.Issue(t, "bob", pki.Request{Kind: pki.Client, Name: "bob", URIs: []string{"spiffe://test/app/bob"}})
	carol := testpki.WritePair(t, p.Dir, "carol", ca2.CA, pki.Request{Kind: pki.Client, Name: "carol", URIs: []string{"spiffe://test/app/carol"}})

	// 50 streams, each echoing chunks until told to stop, checking each.
	const streams = 50
	d := e.dialer(t, p.Client, false)
	var moved atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		c, err := d.Dial(ctxT(t), "echo")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			errs <- pump(c, stop, &moved)
		}()
	}

	expectDial := func(pair testpki.Pair, wantOK bool, what string) {
		t.Helper()
		dd := e.dialer(t, pair, false)
		c, err := dd.Dial(ctxT(t), "echo")
		if wantOK {
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			defer c.Close()
			if err := roundTrip(c, 1000); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return
		}
		if err == nil {
			c.Close()
			t.Fatalf("%s: stream opened; want a refusal", what)
		}
	}
	reload := func(wantErr bool, what string) {
		t.Helper()
		err := e.srv.Reload()
		if (err != nil) != wantErr {
			t.Fatalf("%s: Reload error %v, want error %v", what, err, wantErr)
		}
	}

	expectDial(bob, true, "bob before revocation")
	bobSession := e.dialer(t, bob, false) // a session that stays up across the revocation
	if c, err := bobSession.Dial(ctxT(t), "echo"); err != nil {
		t.Fatalf("bob's session before revocation: %v", err)
	} else {
		c.Close()
	}
	// An invalid policy keeps the old state.
	writeFile(t, files["policy.yaml"], "routes:\n  echo:\n    backnd: builtin:echo\n")
	reload(true, "invalid policy")
	expectDial(p.Client, true, "alice after an invalid policy")
	writeFile(t, files["policy.yaml"], fmt.Sprintf(reloadPolicy, `"uri:spiffe://test/app/*"`))
	// A CRL revoking bob: bob's next handshake is refused, alice's is not.
	copyFile(t, p.WriteCRL(t, "crl1.pem", bob.Issued.Cert), files["crl.pem"])
	reload(false, "CRL revoking bob")
	expectDial(bob, false, "bob after revocation")
	// Bob's session from before still stands, but opens no new stream.
	if c, err := bobSession.Dial(ctxT(t), "echo"); err == nil {
		c.Close()
		t.Fatal("bob's open session got a new stream after his revocation")
	} else if !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("bob's open session: %v; want a refusal saying revoked", err)
	}
	expectDial(p.Client, true, "alice after bob's revocation")
	// A CRL from a stranger is refused; the old one stays.
	copyFile(t, ca2.WriteCRL(t, "crl-other.pem"), files["crl.pem"])
	reload(true, "CRL signed by another CA")
	expectDial(bob, false, "bob still revoked")
	copyFile(t, p.WriteCRL(t, "crl2.pem", bob.Issued.Cert), files["crl.pem"])
	// A key that does not match the certificate is refused.
	other := p.Issue(t, "other-server", pki.Request{Kind: pki.Server, Name: "other", DNS: []string{"localhost"}})
	copyFile(t, other.Key, files["server.key"])
	reload(true, "mismatched key")
	expectDial(p.Client, true, "alice after a mismatched key")
	copyFile(t, other.Cert, files["server.crt"])
	reload(false, "new server certificate and key")
	expectDial(p.Client, true, "alice with the new server certificate")
	// Trust a second CA: carol, from it, gets in only after the reload.
	expectDial(carol, false, "carol before her CA is trusted")
	writeFile(t, files["ca.crt"], string(p.CA.RootPEM())+string(ca2.CA.RootPEM()))
	reload(false, "CA bundle with a second CA")
	expectDial(carol, true, "carol after her CA is trusted")
	// A policy that no longer admits alice: her new streams are refused,
	// her 50 open streams carry on.
	writeFile(t, files["policy.yaml"], fmt.Sprintf(reloadPolicy, `"uri:spiffe://test/app/carol"`))
	reload(false, "policy admitting only carol")
	_, err := d.Dial(ctxT(t), "echo")
	var re *mux.RefusedError
	if !errors.As(err, &re) || re.Status != mux.StatusForbidden {
		t.Fatalf("alice's new stream after the policy change: %v; want forbidden", err)
	}
	// Network rules: a policy whose gate no longer admits 127.0.0.1.
	writeFile(t, files["policy.yaml"], `allow: ["::1"]
routes:
  echo:
    backend: builtin:echo
    identities: ["any"]
`)
	reload(false, "gate without 127.0.0.1")
	expectDial(carol, false, "carol from 127.0.0.1 after the gate change")

	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("stream: %v", err)
		}
	}
	if moved.Load() == 0 {
		t.Fatal("no data moved during the reloads")
	}
	t.Logf("%d bytes echoed and checked across %d streams during reloads", moved.Load(), streams)
}

// pump writes random chunks and checks each echo until stop, then
// half-closes and checks the stream ends cleanly.
func pump(c net.Conn, stop <-chan struct{}, moved *atomic.Int64) error {
	buf := make([]byte, 8<<10)
	got := make([]byte, len(buf))
	for i := 0; i < 100000; i++ {
		select {
		case <-stop:
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				return err
			}
			if n, err := c.Read(got); n != 0 || !errors.Is(err, io.EOF) {
				return errors.New("stream did not end cleanly after half-close")
			}
			return nil
		default:
		}
		_, _ = rand.Read(buf)
		want := sha256.Sum256(buf)
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if sum := sha256.Sum256(got); !bytes.Equal(sum[:], want[:]) {
			return errors.New("echo differs")
		}
		moved.Add(int64(len(buf)))
		time.Sleep(time.Millisecond)
	}
	return nil
}

// A reload by Reload (as on SIGHUP) is not followed by a second one from
// the file watcher for the same change; a change after it still is. The
// first load logs "loaded", later ones "reloaded".
func TestWatchAfterReloadLoadsOnce(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyFile, fmt.Sprintf(reloadPolicy, "any"))
	cfg := baseConfig(p)
	cfg.Allow, cfg.AllowIDs, cfg.Policy = nil, nil, policyFile
	e := start(t, p, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { defer close(watched); e.srv.Watch(ctx, 20*time.Millisecond, cfg.WatchedFiles()) }()
	defer func() { cancel(); <-watched }()
	count := func(event string) int { return strings.Count(e.logs.String(), `"event":"`+event+`"`) }

	time.Sleep(50 * time.Millisecond) // the watcher has taken its first stamps
	writeFile(t, policyFile, fmt.Sprintf(reloadPolicy, "cn:alice"))
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ten polls
	if n := count("reloaded"); n != 1 {
		t.Fatalf("%d reloaded events after one change reloaded by hand, want 1:\n%s", n, e.logs.String())
	}
	if count("loaded") != 1 || count("files_changed") != 0 {
		t.Fatalf("want one loaded event (the start) and no files_changed:\n%s", e.logs.String())
	}
	writeFile(t, policyFile, fmt.Sprintf(reloadPolicy, "any"))
	waitFor(t, func() bool { return count("reloaded") == 2 && count("files_changed") == 1 })
}

package tunnel_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testgw"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
	"github.com/portcullis-gw/portcullis/tunnel"
)

// gatewayEvents returns the gateway's JSON events named name.
func gatewayEvents(logs *testnet.SyncBuffer, name string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["event"] == name {
			out = append(out, ev)
		}
	}
	return out
}

func serialOf(ev map[string]any) string {
	id, _ := ev["identity"].(map[string]any)
	s, _ := id["serial"].(string)
	return s
}

// waitUntil polls cond for up to 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 10s", what)
}

func aliceReq(notAfter time.Time) pki.Request {
	return pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://test/app/alice"}, NotAfter: notAfter}
}

// setupRenewal runs a gateway that logs into logs, and a Dialer whose
// certificate files are DIR/cur.crt and DIR/cur.key, valid until notAfter.
func setupRenewal(t *testing.T, notAfter time.Time) (*testpki.PKI, *conn.ClientCreds, *tunnel.Dialer, *testnet.SyncBuffer) {
	p := testpki.New(t)
	logs := new(testnet.SyncBuffer)
	_, addr := testgw.Serve(t, testgw.Config(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho}), zerolog.New(logs))
	cur := p.Issue(t, "cur", aliceReq(notAfter))
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: cur.Cert, Key: cur.Key, CA: p.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{addr}, Creds: creds, ServerName: "localhost", ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return p, creds, d, logs
}

func dialEcho(t *testing.T, d *tunnel.Dialer) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A reload moves new streams to a new session at once; a stream open on
// the old session carries on, and the old session is closed when it ends.
func TestReloadMakesBeforeBreak(t *testing.T) {
	p, _, d, logs := setupRenewal(t, time.Now().Add(time.Hour))
	old := dialEcho(t, d)
	if err := echoLine(old); err != nil {
		t.Fatal(err)
	}
	next := p.Issue(t, "cur", aliceReq(time.Now().Add(2*time.Hour))) // replaces the files
	newSerial := pki.FormatSerial(next.Issued.Cert.SerialNumber)
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := dialEcho(t, d)
	if err := testnet.RoundTrip(c, 4096); err != nil {
		t.Fatal(err)
	}
	c.Close()
	opens := gatewayEvents(logs, "stream_open")
	if got := serialOf(opens[len(opens)-1]); got != newSerial {
		t.Fatalf("the stream after the reload carries serial %s, want the new %s", got, newSerial)
	}
	if n := len(gatewayEvents(logs, "accept")); n != 2 {
		t.Fatalf("%d sessions accepted, want 2 (the old one and the new one)", n)
	}
	// The old stream still works, on the old session.
	if err := echoLine(old); err != nil {
		t.Fatalf("the stream open on the old session: %v", err)
	}
	if n := len(gatewayEvents(logs, "close")); n != 0 {
		t.Fatalf("%d sessions closed while their streams were open", n)
	}
	old.Close()
	waitUntil(t, "the old session closed once idle", func() bool { return len(gatewayEvents(logs, "close")) == 1 })
}

// The bug of a tunnel whose certificate expired: its session was kept,
// every new stream refused "client certificate expired" even after a new
// certificate was loaded. Now the refusal retires the session and the
// stream is opened on a new one, with the certificate loaded.
func TestExpiredSessionIsRetired(t *testing.T) {
	notAfter := time.Now().Add(2 * time.Second)
	p, creds, d, logs := setupRenewal(t, notAfter)
	long := dialEcho(t, d)
	if err := echoLine(long); err != nil {
		t.Fatal(err)
	}
	p.Issue(t, "cur", aliceReq(time.Now().Add(time.Hour)))
	if err := creds.Reload(); err != nil { // the files only: no new session
		t.Fatal(err)
	}
	time.Sleep(time.Until(notAfter) + 1100*time.Millisecond)
	c := dialEcho(t, d)
	if err := testnet.RoundTrip(c, 4096); err != nil {
		t.Fatal(err)
	}
	c.Close()
	refused := gatewayEvents(logs, "stream_refused")
	if len(refused) != 1 || refused[0]["reason"] != "client certificate expired" {
		t.Fatalf("refusals: %v; want one, for the expired certificate", refused)
	}
	// The stream opened before expiry carries on.
	if err := echoLine(long); err != nil {
		t.Fatalf("the stream of the expired session: %v", err)
	}
	long.Close()
}

// echoOnce writes a line and reads it back.
func echoLine(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := []byte("ping " + time.Now().String() + "\n")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	for n := 0; n < len(got); {
		k, err := c.Read(got[n:])
		if err != nil {
			return err
		}
		n += k
	}
	if string(got) != string(msg) {
		return &net.OpError{Op: "echo", Err: context.DeadlineExceeded}
	}
	return nil
}

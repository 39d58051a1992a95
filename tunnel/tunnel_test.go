package tunnel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testgw"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if peerHelper() {
		return
	}
	goleak.VerifyTestMain(m)
}

// startGateway runs a real gateway on loopback with an echo and a discard route.
func startGateway(t *testing.T, p *testpki.PKI) (*gateway.Server, string) {
	t.Helper()
	return testgw.Serve(t, testgw.Config(p,
		config.Route{Name: "echo", Backend: gateway.BuiltinEcho},
		config.Route{Name: "sink", Backend: gateway.BuiltinDiscard}), zerolog.Nop())
}

func newDialer(t *testing.T, p *testpki.PKI, addrs ...string) *tunnel.Dialer {
	t.Helper()
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: p.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: addrs, Creds: creds, ServerName: "localhost", ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestNCRoundTripWithHalfClose(t *testing.T) {
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// NC returns only after the echo has sent everything back and closed:
	// that needs the half-close of the stream when stdin ends.
	if err := tunnel.NC(ctx, d, "echo", bytes.NewReader(data), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("got %d bytes back, want the %d sent, byte for byte", out.Len(), len(data))
	}
}

// TestDialContext: a database driver's address, route and port, reaches
// the route; other networks are refused with an error naming them.
func TestDialContext(t *testing.T) {
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	for _, a := range []string{"echo:5432", "echo"} {
		c, err := d.DialContext(context.Background(), "tcp", a)
		if err != nil {
			t.Fatalf("DialContext(tcp, %q): %v", a, err)
		}
		err = echoCheck(c, 1000)
		c.Close()
		if err != nil {
			t.Fatalf("round trip through %q: %v", a, err)
		}
	}
	if _, err := d.DialContext(context.Background(), "udp", "echo:5432"); err == nil || !strings.Contains(err.Error(), `"udp"`) {
		t.Fatalf("DialContext(udp): %v, want an error naming the network", err)
	}
}

func TestNCRefused(t *testing.T) {
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	err := tunnel.NC(context.Background(), d, "missing", bytes.NewReader(nil), io.Discard)
	var re *mux.RefusedError
	if !errors.As(err, &re) || re.Status != mux.StatusUnknownRoute {
		t.Fatalf("err = %v; want an unknown-route refusal", err)
	}
}

func TestForwardManyConcurrent(t *testing.T) {
	p := testpki.New(t)
	srv, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	f, err := tunnel.Listen(d, []tunnel.Local{{Bind: "127.0.0.1:0", Route: "echo"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	local := f.Addrs()[0].String()

	n, size := 100, 256<<10 // 1 MiB each way through the real binaries: e2e
	if testing.Short() {
		n, size = 16, 64<<10
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", local, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			errs <- echoCheck(c.(*net.TCPConn), size)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if st := srv.Stats(); st.HandshakesOK != 1 || st.StreamsOK != uint64(n) {
		t.Errorf("gateway saw %d handshakes and %d streams; want 1 and %d", st.HandshakesOK, st.StreamsOK, n)
	}
}

// A forwarded connection whose stream cannot open is reset, so the
// application sees an error rather than an empty answer.
func TestForwardResetsWhenGatewayDown(t *testing.T) {
	p := testpki.New(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	d := newDialer(t, p, dead)
	f, err := tunnel.Listen(d, []tunnel.Local{{Bind: "127.0.0.1:0", Route: "echo"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	c, err := net.Dial("tcp", f.Addrs()[0].String())
	if err == nil { // the reset may even beat connect() on loopback
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read err %v; want a connection reset", err)
	}
}

// Failover: the first gateway address is dead, the second answers.
func TestFailoverToSecondGateway(t *testing.T) {
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	d := newDialer(t, p, dead, addr)
	c, err := d.Dial(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoCheck(c, 4096); err != nil {
		t.Fatal(err)
	}
}

func echoCheck(c net.Conn, n int) error { return testnet.RoundTrip(c, n) }

// TestDialerBackSoonAfterGatewayRestart: while the gateway is down the
// tunnel's backoff grows (to seconds); when a gateway listens on the same
// address again, a TCP probe sees it and the next Open succeeds within
// moments instead of waiting out the rest of the backoff.
func TestDialerBackSoonAfterGatewayRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("an outage of several seconds")
	}
	p := testpki.New(t)
	cfg := testgw.Config(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	srv, addr := testgw.Serve(t, cfg, zerolog.Nop())
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: p.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	var logs testnet.SyncBuffer
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{addr}, Creds: creds, ServerName: "localhost",
		ConnectTimeout: 3 * time.Second, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	open := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err := d.Dial(ctx, "echo")
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := open(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	// The outage: every Open fails and the dials back off, up to a
	// backoff of several seconds (100ms doubling, full jitter).
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); {
		if err := open(300 * time.Millisecond); err == nil {
			t.Fatal("Open succeeded while the gateway was down")
		}
	}
	restart := *cfg
	restart.Listen = addr
	testgw.Serve(t, &restart, zerolog.Nop())
	up := time.Now()
	err = open(30 * time.Second)
	took := time.Since(up)
	if err != nil || took > 3*time.Second {
		t.Fatalf("Open after the restart: %v after %v; want success within about a second\nlog:\n%s", err, took, logs.String())
	}
	t.Logf("back %v after the restart; %d dial failures logged during the outage", took.Round(time.Millisecond),
		strings.Count(logs.String(), "dialing gateway failed"))
}

// TestForwarderCheck: Check reports each route the gateway refuses (once,
// with the gateway's reason) and nothing for a working one; with a CA the
// gateway's certificate does not chain to, it fails as a *DialError and
// checks no route.
func TestForwarderCheck(t *testing.T) {
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	locals := []tunnel.Local{{Bind: "127.0.0.1:0", Route: "echo"}, {Bind: "127.0.0.1:0", Route: "nosuch"},
		{Bind: "127.0.0.1:0", Route: "nosuch"}}
	f, err := tunnel.Listen(d, locals, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	refused, err := f.Check(ctx)
	var re *mux.RefusedError
	if err != nil || len(refused) != 1 || !errors.As(refused[0], &re) || re.Route != "nosuch" || re.Status != mux.StatusUnknownRoute {
		t.Fatalf("Check = %v, %v; want one unknown-route refusal for nosuch", refused, err)
	}

	other := testpki.New(t) // a CA the gateway's certificate does not chain to
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: other.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{addr}, Creds: creds, ServerName: "localhost", ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	fb, err := tunnel.Listen(bad, locals[:1], zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	refused, err = fb.Check(ctx)
	var de *tunnel.DialError
	if !errors.As(err, &de) || len(refused) != 0 || !strings.Contains(err.Error(), "not signed by a CA") {
		t.Fatalf("Check with the wrong CA = %v, %v; want a *DialError about the CA", refused, err)
	}
}

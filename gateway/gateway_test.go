package gateway_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/pki"
	"github.com/portcullis-gw/portcullis/tunnel"
)

// Many concurrent streams over one session, to a real TCP backend and to the
// builtin echo, each carrying random data both ways, every byte checked.
func TestConcurrentStreamsRoundTrip(t *testing.T) {
	p := testpki.New(t)
	e := start(t, p, baseConfig(p,
		config.Route{Name: "tcpecho", Backend: echoBackend(t)},
		config.Route{Name: "echo", Backend: "builtin:echo"}))
	d := e.dialer(t, p.Client, false)
	n, size := 100, 256<<10 // 1 MiB each way through the real binaries: e2e
	if testing.Short() {
		n, size = 20, 64<<10
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			route := "tcpecho"
			if i%2 == 1 {
				route = "echo"
			}
			c, err := d.Dial(ctxT(t), route)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := roundTrip(c, size); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.srv.Stats()
	if st.HandshakesOK != 1 {
		t.Errorf("%d handshakes for one tunnel; want 1 shared session", st.HandshakesOK)
	}
	if st.StreamsOK != uint64(n) {
		t.Errorf("StreamsOK = %d, want %d", st.StreamsOK, n)
	}
}

// Direct mode: a plain Go TLS client with a client certificate, route by SNI.
func TestDirectModeGoClient(t *testing.T) {
	p := testpki.New(t)
	e := start(t, p, baseConfig(p, config.Route{Name: "gw.test", Backend: echoBackend(t)}))
	d := e.dialer(t, p.Client, true)
	c, err := d.Dial(ctxT(t), "gw.test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, 256<<10); err != nil {
		t.Fatal(err)
	}

	// A client offering other ALPN protocols (like curl) is served in direct mode.
	cert, _ := p.Client.Issued.TLSCertificate()
	tc, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "gw.test", RootCAs: p.CA.Pool(),
		Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := roundTrip(tc, 1000); err != nil {
		t.Fatal(err)
	}
}

func TestRefusals(t *testing.T) {
	p := testpki.New(t)
	cfg := baseConfig(p,
		config.Route{Name: "echo", Backend: "builtin:echo"},
		config.Route{Name: "down", Backend: deadAddr(t)})
	e := start(t, p, cfg)
	otherCA := testpki.New(t)
	cases := []struct {
		name     string
		pair     testpki.Pair
		route    string
		wantDial bool       // a *tunnel.DialError
		status   mux.Status // else a refusal with this status
		msg      string     // in the error text
	}{
		{"unknown route", p.Client, "nope", false, mux.StatusUnknownRoute, `no route named "nope"`},
		{"backend down", p.Client, "down", false, mux.StatusUnreachable, "unreachable"},
		{"identity not allowed", p.Issue(t, "bob", pki.Request{Kind: pki.Client, Name: "bob", URIs: []string{"spiffe://test/other/bob"}}),
			"echo", false, mux.StatusForbidden, "uri:spiffe://test/other/bob is not allowed"},
		{"wrong CA", testpki.WritePair(t, p.Dir, "stranger", otherCA.CA, pki.Request{Kind: pki.Client, Name: "stranger", URIs: []string{"spiffe://test/app/x"}}),
			"echo", true, 0, "does not trust the issuer"},
		{"expired", p.Expired(t), "echo", true, 0, "expired or not yet valid"},
		{"not yet valid", p.NotYetValid(t), "echo", true, 0, "expired or not yet valid"},
		{"server EKU as client", p.Server, "echo", true, 0, "refused our client certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := e.dialer(t, tc.pair, false)
			c, err := d.Dial(ctxT(t), tc.route)
			if err == nil {
				c.Close()
				t.Fatal("stream opened; want a refusal")
			}
			if tc.wantDial && !strings.Contains(err.Error(), tc.msg) && strings.Contains(err.Error(), "bad certificate") {
				// 127.0.0.1 completed a handshake lately: the gateway
				// verified the chain itself (its cache), and crypto/tls
				// says bad_certificate for any refusal of it. The refusal
				// makes the address new again: the retry gets the
				// precise alert.
				if c, err = d.Dial(ctxT(t), tc.route); err == nil {
					c.Close()
					t.Fatal("stream opened on the retry; want a refusal")
				}
			}
			var re *mux.RefusedError
			var de *tunnel.DialError
			switch {
			case tc.wantDial && !errors.As(err, &de):
				t.Fatalf("error %v (%T); want a *tunnel.DialError", err, err)
			case !tc.wantDial && !errors.As(err, &re):
				t.Fatalf("error %v (%T); want a *mux.RefusedError", err, err)
			case !tc.wantDial && re.Status != tc.status:
				t.Fatalf("status %v; want %v", re.Status, tc.status)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			// The gateway still serves a good client afterwards.
			good, err := e.dialer(t, p.Client, false).Dial(ctxT(t), "echo")
			if err != nil {
				t.Fatalf("good client after refusal: %v", err)
			}
			defer good.Close()
			if err := roundTrip(good, 1000); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Raw-socket refusals: a denied source address, no client certificate, TLS
// 1.1, plaintext, a silent client past the handshake deadline.
func TestConnectionLevelRefusals(t *testing.T) {
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: "builtin:echo"})
	cfg.HandshakeTimeout = 500 * time.Millisecond
	cfg.HelloTimeout = 300 * time.Millisecond
	e := start(t, p, cfg)
	cert, _ := p.Client.Issued.TLSCertificate()

	t.Run("denied source address gets no TLS byte", func(t *testing.T) {
		dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
		// The gate resets the connection in the accept loop, which may
		// even beat connect() returning on loopback.
		if c, err := dl.Dial("tcp", e.addr); err == nil {
			defer c.Close()
			_, _ = c.Write([]byte("\x16\x03\x01\x00\x05hello")) // what a ClientHello starts with
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := c.Read(make([]byte, 1))
			if n != 0 || err == nil || isTimeout(err) {
				t.Fatalf("read %d bytes, err %v; want the connection closed with no byte", n, err)
			}
		} else if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial: %v; want success or a reset", err)
		}
		waitFor(t, func() bool { return e.srv.Stats().Denied >= 1 })
		waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"event":"deny","peer":"127.0.0.2:`) })
	})
	t.Run("no client certificate", func(t *testing.T) {
		err := tlsExchange(e.addr, &tls.Config{RootCAs: p.CA.Pool(), ServerName: "localhost"})
		if err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("err %v; want certificate required", err)
		}
	})
	t.Run("TLS 1.1", func(t *testing.T) {
		err := tlsExchange(e.addr, &tls.Config{RootCAs: p.CA.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert},
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Fatalf("err %v; want protocol version refused", err)
		}
	})
	t.Run("plaintext garbage", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		if strings.Contains(string(b), "HTTP") {
			t.Fatalf("gateway answered plaintext: %q", b)
		}
		waitFor(t, func() bool { return strings.Contains(e.logs.String(), "not TLS") })
	})
	t.Run("silent client past the hello timeout", func(t *testing.T) {
		el := closedAfter(t, e.addr, nil)
		if el < 250*time.Millisecond {
			t.Fatalf("closed after %v, before the 300ms hello timeout", el)
		}
		waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"event":"shed","kind":"silent"`) })
		if n := e.srv.Stats().ShedSilent; n < 1 {
			t.Fatalf("ShedSilent = %d, want 1 or more", n)
		}
	})
	t.Run("partial ClientHello past the handshake deadline", func(t *testing.T) {
		// A record header that promises 200 bytes, then nothing: the
		// handshake deadline runs from the first byte.
		el := closedAfter(t, e.addr, []byte{0x16, 0x03, 0x01, 0x00, 200, 0x01})
		if el < 400*time.Millisecond {
			t.Fatalf("closed after %v, before the 500ms handshake deadline", el)
		}
		waitFor(t, func() bool { return strings.Contains(e.logs.String(), "handshake timed out") })
	})
	// And a good client is still served.
	good, err := e.dialer(t, p.Client, false).Dial(ctxT(t), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := roundTrip(good, 1000); err != nil {
		t.Fatal(err)
	}
}

// tlsExchange completes a handshake and a first read, where TLS 1.3 reports
// the server's refusal of the client certificate.
func tlsExchange(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Shutdown lets an open stream finish, refuses new ones, and returns.
func TestShutdownDrains(t *testing.T) {
	p := testpki.New(t)
	e := start(t, p, baseConfig(p, config.Route{Name: "echo", Backend: "builtin:echo"}))
	d := e.dialer(t, p.Client, false)
	c, err := d.Dial(ctxT(t), "echo")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	// The open stream still works during the drain.
	if err := roundTrip(c, 64<<10); err != nil {
		t.Fatalf("stream during drain: %v\n%s", err, e.logs.String())
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last stream closed")
	}
}

func TestAdminEndpoints(t *testing.T) {
	p := testpki.New(t)
	e := start(t, p, baseConfig(p, config.Route{Name: "echo", Backend: "builtin:echo"}))
	c, err := e.dialer(t, p.Client, false).Dial(ctxT(t), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, 100); err != nil {
		t.Fatal(err)
	}
	c.Close()
	h := e.srv.AdminHandler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz %d while serving", code)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "portcullis_handshakes_total 1\n") || !strings.Contains(body, `portcullis_streams_total{route="echo"} 1`+"\n") ||
		!strings.Contains(body, "\ngo_goroutines ") {
		t.Errorf("/metrics %d:\n%s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz %d while draining; want 503", code)
	}
}

// stallConn stops reading once stalled: a peer that does not read what the
// gateway sends.
type stallConn struct {
	net.Conn
	stalled   chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *stallConn) Read(p []byte) (int, error) {
	select {
	case <-c.stalled:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Read(p)
	}
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestCloseWithStuckPeers: Close ends connections at once even when the
// gateway is blocked writing to peers that stopped reading (frames pending
// in a session are not flushed first, connection after connection).
func TestCloseWithStuckPeers(t *testing.T) {
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: "builtin:echo"})
	e := start(t, p, cfg)
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: p.Client.Cert, Key: p.Client.Key, CA: p.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	const sessions, streams = 3, 64
	chunk := make([]byte, 200<<10) // within the gateway's initial window per stream
	for range sessions {
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(raw, creds.TLSConfig(conn.ClientOptions{ServerName: "localhost", ALPN: []string{mux.ALPN}}))
		if err := tc.HandshakeContext(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		sc := &stallConn{Conn: tc, stalled: make(chan struct{}), closed: make(chan struct{})}
		close(sc.stalled) // from now on nothing the gateway sends is read
		ycfg := mux.Config(zerolog.Nop())
		ycfg.EnableKeepAlive = false
		sess, err := yamux.Client(sc, ycfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close() })
		// Each stream's echo sends back up to the client's initial window:
		// streams × 200 KiB, more than the socket buffers hold, so the
		// gateway ends up blocked writing to this peer.
		for range streams {
			st, err := sess.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			if err := mux.WriteRequest(st, mux.Request{Route: "echo"}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // the echoes back up
	start := time.Now()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the sessions' 192 blocked streams takes about a second here
	// under -race; flushing first, session after session, took 19s.
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("Close took %v with %d stuck peers", took, sessions)
	}
}

// closedAfter connects to addr, writes first (if any), and returns how long
// the gateway took to close the connection; it fails the test when the
// gateway has not closed it within 5 s.
func closedAfter(t *testing.T, addr string, first []byte) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if len(first) > 0 {
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || isTimeout(err) {
		t.Fatalf("err %v; want the gateway to close the connection", err)
	}
	return time.Since(start)
}

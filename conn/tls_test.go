package conn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

func TestHandshakeTLS13(t *testing.T) {
	p := testpki.New(t)
	st := serverState(t, p, "")
	creds := clientCreds(t, p.Client, p.CAFile)
	srv, cli := handshake(t, st.ServerConfig(), creds.TLSConfig(conn.ClientOptions{ServerName: "localhost", ALPN: []string{"portcullis/1"}}))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("server: %v; client: %v", srv.err, cli.err)
	}
	if cli.state.Version != tls.VersionTLS13 {
		t.Errorf("version %s, want TLS 1.3", tls.VersionName(cli.state.Version))
	}
	if leaf := leafOf(srv.state); leaf == nil || !leaf.Equal(p.Client.Issued.Cert) {
		t.Error("the server did not get alice's certificate")
	}
	if len(srv.state.VerifiedChains) == 0 {
		t.Error("the server did not verify the client's chain")
	}
	if leaf := leafOf(cli.state); leaf == nil || !leaf.Equal(p.Server.Issued.Cert) {
		t.Error("the client did not get the gateway's certificate")
	}
	if id := conn.IdentityOf(leafOf(srv.state)); id.String() != "uri:spiffe://test/app/alice" {
		t.Errorf("identity %s", id)
	}
	if srv.state.ServerName != "localhost" {
		t.Errorf("SNI %q, want localhost (ServerName when SNI is empty)", srv.state.ServerName)
	}
}

func TestHandshakeTLS12(t *testing.T) {
	p := testpki.New(t)
	rsaServer := p.Issue(t, "rsa-server", pki.Request{Kind: pki.Server, DNS: []string{"localhost"}, KeyType: pki.RSA2048})
	creds := clientCreds(t, p.Client, p.CAFile)
	ecdsaState := serverState(t, p, "")
	rsaState, err := conn.LoadServer(conn.ServerFiles{Cert: rsaServer.Cert, Key: rsaServer.Key, CA: p.CAFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		st    *conn.ServerState
		suite uint16
	}{
		{ecdsaState, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{ecdsaState, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{ecdsaState, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{rsaState, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		{rsaState, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{rsaState, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
	}
	for _, tt := range tests {
		t.Run(tls.CipherSuiteName(tt.suite), func(t *testing.T) {
			ccfg := creds.TLSConfig(conn.ClientOptions{ServerName: "localhost"})
			ccfg.MaxVersion = tls.VersionTLS12
			ccfg.CipherSuites = []uint16{tt.suite}
			srv, cli := handshake(t, tt.st.ServerConfig(), ccfg)
			if srv.err != nil || cli.err != nil {
				t.Fatalf("server: %v; client: %v", srv.err, cli.err)
			}
			if cli.state.Version != tls.VersionTLS12 || cli.state.CipherSuite != tt.suite {
				t.Errorf("negotiated %s with %s", tls.VersionName(cli.state.Version), tls.CipherSuiteName(cli.state.CipherSuite))
			}
			if leafOf(srv.state) == nil {
				t.Error("no client certificate on the server side")
			}
		})
	}
}

// refusal is a handshake the gateway refuses: what each side sees.
type refusal struct {
	name       string
	client     func(t *testing.T, p *testpki.PKI) *tls.Config
	crl        bool   // revoke "bob" in the server's CRL
	alert      uint8  // the alert the client receives
	serverErr  string // in the server's error
	explained  string // in ExplainClientError
	errRevoked bool   // the server's error wraps ErrRevoked
}

func TestHandshakeRefusedByGateway(t *testing.T) {
	withPair := func(pair func(t *testing.T, p *testpki.PKI) testpki.Pair, edit func(*tls.Config)) func(t *testing.T, p *testpki.PKI) *tls.Config {
		return func(t *testing.T, p *testpki.PKI) *tls.Config {
			cfg := clientCreds(t, pair(t, p), p.CAFile).TLSConfig(conn.ClientOptions{ServerName: "localhost"})
			if edit != nil {
				edit(cfg)
			}
			return cfg
		}
	}
	alice := func(_ *testing.T, p *testpki.PKI) testpki.Pair { return p.Client }
	tests := []refusal{
		{name: "TLS 1.1", client: withPair(alice, func(c *tls.Config) {
			c.MinVersion, c.MaxVersion, c.CipherSuites = tls.VersionTLS10, tls.VersionTLS11, nil
		}),
			alert: 70, serverErr: "unsupported versions", explained: "refused our TLS version"},
		{name: "TLS 1.0", client: withPair(alice, func(c *tls.Config) {
			c.MinVersion, c.MaxVersion, c.CipherSuites = tls.VersionTLS10, tls.VersionTLS10, nil
		}),
			alert: 70, serverErr: "unsupported versions", explained: "refused our TLS version"},
		{name: "CBC suites only", client: withPair(alice, func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
		}), alert: 40, serverErr: "no cipher suite", explained: "no TLS parameters in common"},
		{name: "no client certificate", client: func(t *testing.T, p *testpki.PKI) *tls.Config {
			return &tls.Config{ServerName: "localhost", RootCAs: p.CA.Pool(), MinVersion: tls.VersionTLS13}
		}, alert: 116, serverErr: "didn't provide a certificate", explained: "requires a client certificate (set --cert and --key)"},
		{name: "no client certificate, TLS 1.2", client: func(t *testing.T, p *testpki.PKI) *tls.Config {
			return &tls.Config{ServerName: "localhost", RootCAs: p.CA.Pool(), MaxVersion: tls.VersionTLS12}
		}, alert: 40, serverErr: "didn't provide a certificate", explained: "wanted a client certificate we did not send"},
		{name: "client certificate of another CA", client: withPair(func(t *testing.T, _ *testpki.PKI) testpki.Pair { return testpki.New(t).Client }, nil),
			alert: 48, serverErr: "unknown authority", explained: "does not trust the issuer of our client certificate"},
		{name: "expired client certificate", client: withPair(func(t *testing.T, p *testpki.PKI) testpki.Pair { return p.Expired(t) }, nil),
			alert: 45, serverErr: "expired", explained: "refused our client certificate as expired or not yet valid"},
		{name: "client certificate not valid yet", client: withPair(func(t *testing.T, p *testpki.PKI) testpki.Pair { return p.NotYetValid(t) }, nil),
			alert: 45, serverErr: "not yet valid", explained: "as expired or not yet valid"},
		{name: "server certificate as client certificate", client: withPair(func(_ *testing.T, p *testpki.PKI) testpki.Pair { return p.Server }, nil),
			alert: 42, serverErr: "incompatible key usage", explained: "refused our client certificate (not a client certificate (EKU), revoked"},
		{name: "revoked client certificate", crl: true, client: withPair(func(t *testing.T, p *testpki.PKI) testpki.Pair {
			return pairNamed(t, p, "bob")
		}, nil), alert: 42, serverErr: "certificate revoked", explained: "refused our client certificate", errRevoked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testpki.New(t)
			crl := ""
			if tt.crl {
				crl = p.WriteCRL(t, "crl.der", pairNamed(t, p, "bob").Issued.Cert)
			}
			srv, cli := handshake(t, serverState(t, p, crl).ServerConfig(), tt.client(t, p))
			if srv.err == nil || !strings.Contains(srv.err.Error(), tt.serverErr) {
				t.Errorf("server error %v, want one with %q", srv.err, tt.serverErr)
			}
			if tt.errRevoked != errors.Is(srv.err, conn.ErrRevoked) {
				t.Errorf("server error %v: wraps ErrRevoked = %v, want %v", srv.err, !tt.errRevoked, tt.errRevoked)
			}
			a, ok := conn.RemoteAlert(cli.err)
			if !ok || a != tt.alert {
				t.Errorf("client error %v: alert %d (%v), want %d", cli.err, a, ok, tt.alert)
			}
			expl := conn.ExplainClientError(cli.err, "localhost")
			if !strings.Contains(expl, tt.explained) || !strings.Contains(expl, cli.err.Error()) {
				t.Errorf("ExplainClientError = %q, want %q and the error", expl, tt.explained)
			}
		})
	}
}

// pairNamed issues (once per PKI directory) a client certificate NAME.
func pairNamed(t *testing.T, p *testpki.PKI, name string) testpki.Pair {
	t.Helper()
	key := p.Dir + "/" + name
	if pr, ok := issued.Load(key); ok {
		return pr.(testpki.Pair)
	}
	pr := p.Issue(t, name, pki.Request{Kind: pki.Client, Name: name})
	issued.Store(key, pr)
	t.Cleanup(func() { issued.Delete(key) })
	return pr
}

func TestCheckRevoked(t *testing.T) {
	p := testpki.New(t)
	bob := pairNamed(t, p, "bob")
	st := serverState(t, p, p.WriteCRL(t, "crl.der", bob.Issued.Cert))
	// One snapshot: bob is refused, alice (same CA) passes.
	srv, cli := handshake(t, st.ServerConfig(), clientCreds(t, bob, p.CAFile).TLSConfig(conn.ClientOptions{ServerName: "localhost"}))
	if !errors.Is(srv.err, conn.ErrRevoked) || cli.err == nil {
		t.Errorf("bob: server %v, client %v: want refused as revoked", srv.err, cli.err)
	}
	if srv.err != nil && !strings.Contains(srv.err.Error(), pki.FormatSerial(bob.Issued.Cert.SerialNumber)) {
		t.Errorf("the error %q does not name the serial", srv.err)
	}
	srv, cli = handshake(t, st.ServerConfig(), clientCreds(t, p.Client, p.CAFile).TLSConfig(conn.ClientOptions{ServerName: "localhost"}))
	if srv.err != nil || cli.err != nil {
		t.Errorf("alice: server %v, client %v: want accepted", srv.err, cli.err)
	}
	// A caller's VerifyConnection that calls CheckRevoked first keeps the check.
	cfg := st.ServerConfig()
	var called atomic.Int32
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := st.CheckRevoked(cs); err != nil {
			return err
		}
		called.Add(1)
		return nil
	}
	if srv, _ = handshake(t, cfg, clientCreds(t, bob, p.CAFile).TLSConfig(conn.ClientOptions{ServerName: "localhost"})); !errors.Is(srv.err, conn.ErrRevoked) || called.Load() != 0 {
		t.Errorf("bob with the caller's VerifyConnection: %v, caller reached %d times", srv.err, called.Load())
	}
	// Without a CRL, nothing is revoked.
	if err := serverState(t, p, "").CheckRevoked(srv.state); err != nil {
		t.Errorf("CheckRevoked without CRL: %v", err)
	}
	// A revoked certificate in the chain (an intermediate) counts too.
	inter, err := p.CA.NewIntermediate(pki.CAOptions{Name: "inter"})
	if err != nil {
		t.Fatal(err)
	}
	carol := testpki.WritePair(t, p.Dir, "carol", inter, pki.Request{Kind: pki.Client, Name: "carol"})
	st = serverState(t, p, p.WriteCRL(t, "crl-inter.der", inter.Cert))
	srv, _ = handshake(t, st.ServerConfig(), clientCreds(t, carol, p.CAFile).TLSConfig(conn.ClientOptions{ServerName: "localhost"}))
	if !errors.Is(srv.err, conn.ErrRevoked) || !strings.Contains(srv.err.Error(), "CN=inter") {
		t.Errorf("carol under a revoked intermediate: %v, want revoked naming the intermediate", srv.err)
	}
}

func TestClientVerifiesGateway(t *testing.T) {
	p := testpki.New(t)
	st := serverState(t, p, "")
	creds := clientCreds(t, p.Client, p.CAFile)
	serverFP := conn.IdentityOf(p.Server.Issued.Cert).SHA256

	t.Run("SNI differs from the verified name", func(t *testing.T) {
		srv, cli := handshake(t, st.ServerConfig(), creds.TLSConfig(conn.ClientOptions{ServerName: "localhost", SNI: "route"}))
		if srv.err != nil || cli.err != nil {
			t.Fatalf("server %v, client %v", srv.err, cli.err)
		}
		if srv.state.ServerName != "route" {
			t.Errorf("the gateway saw SNI %q, want route", srv.state.ServerName)
		}
	})
	t.Run("IP address as server name", func(t *testing.T) {
		srv, cli := handshake(t, st.ServerConfig(), creds.TLSConfig(conn.ClientOptions{ServerName: "127.0.0.1"}))
		if srv.err != nil || cli.err != nil {
			t.Fatalf("server %v, client %v", srv.err, cli.err)
		}
	})

	refused := []struct {
		name       string
		cfg        func(t *testing.T) *tls.Config
		check      func(err error) bool
		serverName string // as the tunnel passes it to ExplainClientError
		explained  string
	}{
		{"wrong CA", func(t *testing.T) *tls.Config {
			other := testpki.New(t)
			return clientCreds(t, p.Client, other.CAFile).TLSConfig(conn.ClientOptions{ServerName: "localhost"})
		}, func(err error) bool { return errors.As(err, new(x509.UnknownAuthorityError)) }, "localhost", "not signed by a CA in --ca"},
		{"wrong server name", func(*testing.T) *tls.Config {
			return creds.TLSConfig(conn.ClientOptions{ServerName: "wrong.example", SNI: "localhost"})
		}, func(err error) bool { return errors.As(err, new(x509.HostnameError)) }, "wrong.example", `not valid for --server-name "wrong.example"`},
		{"SNI is not what is verified", func(*testing.T) *tls.Config {
			// The certificate is valid for the SNI but not for ServerName.
			return creds.TLSConfig(conn.ClientOptions{ServerName: "route", SNI: "localhost"})
		}, func(err error) bool { return errors.As(err, new(x509.HostnameError)) }, "route", `not valid for --server-name "route"`},
		{"no server name", func(*testing.T) *tls.Config {
			return creds.TLSConfig(conn.ClientOptions{SNI: "localhost"})
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "--server-name") }, "", "no server name"},
		{"pin mismatch", func(*testing.T) *tls.Config {
			return creds.TLSConfig(conn.ClientOptions{ServerName: "localhost", Pins: []string{fp}})
		}, func(err error) bool { return errors.Is(err, conn.ErrPin) && strings.Contains(err.Error(), serverFP) }, "localhost", "we refused the gateway's certificate: " + conn.ErrPin.Error()},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli := handshake(t, st.ServerConfig(), tt.cfg(t))
			if !tt.check(cli.err) {
				t.Fatalf("client error %v (%T)", cli.err, cli.err)
			}
			if a, ok := conn.RemoteAlert(srv.err); !ok || a != 42 {
				t.Errorf("server error %v, want the client's bad_certificate alert", srv.err)
			}
			if got := conn.ExplainClientError(cli.err, tt.serverName); !strings.Contains(got, tt.explained) {
				t.Errorf("ExplainClientError = %q, want %q", got, tt.explained)
			}
		})
	}

	t.Run("pin match", func(t *testing.T) {
		for _, pin := range []string{serverFP, strings.ToUpper(serverFP), colons(serverFP), "sha256:" + serverFP} {
			srv, cli := handshake(t, st.ServerConfig(), creds.TLSConfig(conn.ClientOptions{ServerName: "localhost", Pins: []string{fp, pin}}))
			if srv.err != nil || cli.err != nil {
				t.Errorf("pin %q: server %v, client %v", pin, srv.err, cli.err)
			}
		}
	})

	t.Run("expired gateway certificate", func(t *testing.T) {
		now := time.Now()
		old := p.Issue(t, "old-server", pki.Request{Kind: pki.Server, DNS: []string{"localhost"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
		scfg := st.ServerConfig()
		scfg.Certificates = []tls.Certificate{tlsCert(t, old.Issued)}
		_, cli := handshake(t, scfg, creds.TLSConfig(conn.ClientOptions{ServerName: "localhost"}))
		if got := conn.ExplainClientError(cli.err, "localhost"); !strings.Contains(got, "we refused the gateway's certificate: expired or not yet valid") {
			t.Errorf("ExplainClientError(%v) = %q", cli.err, got)
		}
	})
}

func TestClientCredsReload(t *testing.T) {
	p := testpki.New(t)
	st := serverState(t, p, "")
	dir := t.TempDir()
	certFile, keyFile := dir+"/tunnel.crt", dir+"/tunnel.key"
	install := func(pair testpki.Pair) {
		t.Helper()
		writeFile(t, dir, "tunnel.crt", mustRead(t, pair.Cert))
		writeFile(t, dir, "tunnel.key", mustRead(t, pair.Key))
	}
	install(p.Client)
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: certFile, Key: keyFile, CA: p.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	cfg := creds.TLSConfig(conn.ClientOptions{ServerName: "localhost"}) // made before the reloads
	presented := func() string {
		t.Helper()
		srv, cli := handshake(t, st.ServerConfig(), cfg)
		if srv.err != nil || cli.err != nil {
			t.Fatalf("server %v, client %v", srv.err, cli.err)
		}
		return leafOf(srv.state).Subject.CommonName
	}
	if got := presented(); got != "alice" {
		t.Fatalf("presented %q, want alice", got)
	}

	bob := pairNamed(t, p, "bob")
	install(bob)
	if err := creds.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := presented(); got != "bob" {
		t.Fatalf("after Reload: presented %q, want bob", got)
	}
	before := creds.State()

	writeFile(t, dir, "tunnel.crt", []byte("garbage"))
	if err := creds.Reload(); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("Reload of a bad file: %v, want an error naming it", err)
	}
	if creds.State() != before {
		t.Error("a failed Reload replaced the state")
	}
	if got := presented(); got != "bob" {
		t.Fatalf("after a failed Reload: presented %q, want bob still", got)
	}
}

func TestSessionResumption(t *testing.T) {
	p := testpki.New(t)
	var cur atomic.Pointer[conn.ServerState]
	cur.Store(serverState(t, p, ""))
	// The gateway's way: one listener config, a snapshot's config per handshake.
	scfg := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return cur.Load().ServerConfig(), nil }}
	ccfg := clientCreds(t, p.Client, p.CAFile).TLSConfig(conn.ClientOptions{ServerName: "localhost"})
	ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	resumed := func() bool {
		t.Helper()
		srv, cli := handshake(t, scfg, ccfg)
		if srv.err != nil || cli.err != nil {
			t.Fatalf("server %v, client %v", srv.err, cli.err)
		}
		if srv.state.DidResume != cli.state.DidResume {
			t.Fatalf("server resumed %v, client %v", srv.state.DidResume, cli.state.DidResume)
		}
		if len(srv.state.PeerCertificates) == 0 {
			t.Fatal("no client certificate in the resumed session")
		}
		return srv.state.DidResume
	}
	if resumed() {
		t.Fatal("the first handshake resumed")
	}
	if !resumed() {
		t.Error("the second handshake on the same snapshot did not resume")
	}
	cur.Store(serverState(t, p, "")) // a reload
	if resumed() {
		t.Error("a session of the old snapshot resumed after a reload")
	}
	if !resumed() {
		t.Error("no resumption on the new snapshot")
	}
	// A revocation in a new snapshot applies to a client that had a session.
	cur.Store(serverState(t, p, p.WriteCRL(t, "crl.der", p.Client.Issued.Cert)))
	srv, _ := handshake(t, scfg, ccfg)
	if !errors.Is(srv.err, conn.ErrRevoked) {
		t.Errorf("revoked client after reload: %v, want ErrRevoked", srv.err)
	}
}

func TestExplainClientErrorOffline(t *testing.T) {
	alertErr := func(a uint8) error {
		return fmt.Errorf("dial: %w", &net.OpError{Op: "remote error", Err: tls.AlertError(a)})
	}
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{alertErr(116), "the gateway requires a client certificate"},
		{alertErr(48), "does not trust the issuer"},
		{alertErr(45), "as expired or not yet valid"},
		{alertErr(42), "refused our client certificate (not a client certificate (EKU), revoked"},
		{alertErr(44), "says our client certificate is revoked"},
		{alertErr(49), "denied access"},
		{alertErr(70), "refused our TLS version"},
		{alertErr(40), "no TLS parameters in common"},
		{alertErr(120), "application protocol"},
		{alertErr(80), "the gateway aborted the handshake"},
		{fmt.Errorf("x: %w", conn.ErrPin), "we refused the gateway's certificate: x: " + conn.ErrPin.Error()},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "the TLS handshake timed out"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "the peer does not speak TLS"},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "not signed by a CA in --ca"},
		{&tls.CertificateVerificationError{Err: x509.HostnameError{Host: "gw"}}, `not valid for --server-name "gw"`},
		{&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, "expired or not yet valid"},
		{&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.IncompatibleUsage}}, "we refused the gateway's certificate ["},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, "the gateway closed the connection during the TLS handshake"},
		{io.EOF, "the gateway closed the connection during the TLS handshake without saying why"},
		{fmt.Errorf("handshake: %w", context.DeadlineExceeded), "the TLS handshake timed out"},
		{errors.New("something else"), "something else"},
	}
	for _, tt := range tests {
		if got := conn.ExplainClientError(tt.err, "gw"); !strings.Contains(got, tt.want) || (tt.want == "" && got != "") {
			t.Errorf("ExplainClientError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestExplainClientErrorNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if i == 0 { // not TLS
				_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			} else { // silent until the client gives up
				_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
				_, _ = io.Copy(io.Discard, c)
			}
			_ = c.Close()
		}
	}()
	p := testpki.New(t)
	creds := clientCreds(t, p.Client, p.CAFile)
	try := func(timeout time.Duration) error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		return tls.Client(c, creds.TLSConfig(conn.ClientOptions{ServerName: "localhost"})).Handshake()
	}
	if got := conn.ExplainClientError(try(ioTimeout), "localhost"); !strings.Contains(got, "the peer does not speak TLS") {
		t.Errorf("HTTP server: %q", got)
	}
	if got := conn.ExplainClientError(try(200*time.Millisecond), "localhost"); !strings.Contains(got, "timed out") {
		t.Errorf("silent server: %q", got)
	}
	<-done
}

func TestRemoteAlert(t *testing.T) {
	p := testpki.New(t)
	_, cli := handshake(t, serverState(t, p, "").ServerConfig(), &tls.Config{ServerName: "localhost", RootCAs: p.CA.Pool()})
	if a, ok := conn.RemoteAlert(cli.err); !ok || a != 116 {
		t.Errorf("RemoteAlert(%v) = %d, %v; want 116 (certificate required)", cli.err, a, ok)
	}
	if a, ok := conn.RemoteAlert(fmt.Errorf("wrapped: %w", cli.err)); !ok || a != 116 {
		t.Errorf("wrapped: RemoteAlert = %d, %v", a, ok)
	}
	if a, ok := conn.RemoteAlert(tls.AlertError(42)); !ok || a != 42 {
		t.Errorf("tls.AlertError(42): RemoteAlert = %d, %v", a, ok)
	}
	for _, err := range []error{nil, io.EOF, &net.OpError{Op: "read", Err: io.EOF}, &net.OpError{Op: "remote error"}} {
		if a, ok := conn.RemoteAlert(err); ok {
			t.Errorf("RemoteAlert(%v) = %d, true; want none", err, a)
		}
	}
}

func TestServerConfig(t *testing.T) {
	p := testpki.New(t)
	st := serverState(t, p, "")
	a, b := st.ServerConfig(), st.ServerConfig()
	if a == b {
		t.Fatal("ServerConfig returns the same Config twice: callers change it")
	}
	if a.MinVersion != tls.VersionTLS12 || a.ClientAuth != tls.RequireAndVerifyClientCert || a.ClientCAs != st.ClientCAs || a.VerifyConnection == nil {
		t.Errorf("config: MinVersion %x, ClientAuth %v, VerifyConnection set %v", a.MinVersion, a.ClientAuth, a.VerifyConnection != nil)
	}
	for _, s := range a.CipherSuites {
		name := tls.CipherSuiteName(s)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("suite %s is not ECDHE+AEAD", name)
		}
	}
	if !slices.Equal(a.CipherSuites, b.CipherSuites) || len(a.CipherSuites) != 6 {
		t.Errorf("suites %v", a.CipherSuites)
	}
}

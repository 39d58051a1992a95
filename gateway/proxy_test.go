package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/testpki"
)

// viaProxy connects from 127.0.0.3 (the trusted proxy), sends header (a
// PROXY header, or nothing) and then speaks TLS in direct mode to the
// default route, echo. It returns the echo of a line, or the error.
func viaProxy(t *testing.T, addr string, p *testpki.PKI, header []byte) (string, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 2 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write(header); err != nil {
		return "", err
	}
	cert, err := tls.LoadX509KeyPair(p.Client.Cert, p.Client.Key)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{RootCAs: p.CA.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert}})
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "through the balancer\n"); err != nil {
		return "", err
	}
	buf := make([]byte, len("through the balancer\n"))
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

func proxyHeader(t *testing.T, src string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:8443")))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrustedProxy: behind a trusted proxy the gateway judges, and logs,
// the client address of the PROXY header; the proxy's own address is not
// on the allow-list. A connection from the proxy without a header, or with
// one naming a client the rules deny, is reset.
func TestTrustedProxy(t *testing.T) {
	p := testpki.New(t)
	cfg := baseConfig(p, config.Route{Name: "echo", Backend: gateway.BuiltinEcho})
	cfg.DefaultRoute = "echo"
	cfg.Allow = must(acl.ParseList("127.0.0.1,192.0.2.0/24"))
	cfg.TrustedProxy = must(acl.ParseList("127.0.0.3"))
	e := start(t, p, cfg)

	got, err := viaProxy(t, e.addr, p, proxyHeader(t, "192.0.2.44:5151"))
	if err != nil || got != "through the balancer\n" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"event":"stream_open"`) })
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(line, `"event":"stream_open"`) {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["peer"] != "192.0.2.44:5151" || !strings.HasPrefix(ev["via"].(string), "127.0.0.3:") {
			t.Errorf("stream_open peer %v via %v; want the header's client and the proxy", ev["peer"], ev["via"])
		}
	}

	// A client the rules deny, named by the header: reset, logged as a deny.
	if _, err := viaProxy(t, e.addr, p, proxyHeader(t, "198.51.100.7:1")); err == nil {
		t.Fatal("a denied client got through the proxy")
	}
	waitFor(t, func() bool {
		return strings.Contains(e.logs.String(), `"event":"deny","peer":"198.51.100.7:1","via":"127.0.0.3:`)
	})
	// No header from the trusted proxy: reset, shed.
	if _, err := viaProxy(t, e.addr, p, nil); err == nil {
		t.Fatal("a connection from the trusted proxy without a header got through")
	}
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"kind":"proxy_header"`) })
	st := e.srv.Stats()
	if st.ShedProxy != 1 || st.Denied < 1 {
		t.Fatalf("stats %+v: want 1 shed for the missing header and a deny", st)
	}
	// A header from a source that is not a trusted proxy is not read: to
	// the handshake it is not TLS.
	c, err := net.Dial("tcp", e.addr) // from 127.0.0.1, allowed but not trusted
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(proxyHeader(t, "192.0.2.44:1"))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _ = io.ReadAll(c)
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), "not TLS") })
}

// TestRouteProxyHeader: a route with a PROXY v2 header tells its backend
// the client's address, the route, the TLS version and the identity.
func TestRouteProxyHeader(t *testing.T) {
	p := testpki.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	headers := make(chan *proxyproto.Header, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		if err != nil {
			headers <- nil
			return
		}
		headers <- h
		_, _ = io.Copy(c, br) // then an echo
	}()
	cfg := baseConfig(p, config.Route{Name: "pg", Backend: ln.Addr().String()})
	cfg.RouteProxy = []string{"pg=v2-full"}
	e := start(t, p, cfg)
	c, err := e.dialer(t, p.Client, false).Dial(ctxT(t), "pg")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, 100); err != nil {
		t.Fatal(err)
	}
	h := <-headers
	if h == nil {
		t.Fatal("the backend got no valid PROXY header")
	}
	src, _, ok := h.TCPAddrs()
	if !ok || src.IP.String() != "127.0.0.1" || src.Port == 0 {
		t.Errorf("source %v, want the client's 127.0.0.1:port", h.SourceAddr)
	}
	tlvs, err := h.TLVs()
	if err != nil {
		t.Fatal(err)
	}
	got := map[proxyproto.PP2Type][]byte{}
	for _, tlv := range tlvs {
		got[tlv.Type] = tlv.Value
	}
	if string(got[proxyproto.PP2_TYPE_AUTHORITY]) != "pg" {
		t.Errorf("authority %q, want the route", got[proxyproto.PP2_TYPE_AUTHORITY])
	}
	if string(got[gateway.TLVIdentity]) != "uri:spiffe://test/app/alice" || string(got[gateway.TLVURI]) != "spiffe://test/app/alice" {
		t.Errorf("identity %q, URI %q", got[gateway.TLVIdentity], got[gateway.TLVURI])
	}
	if len(got[gateway.TLVSHA256]) != 32 {
		t.Errorf("SHA-256 TLV of %d bytes", len(got[gateway.TLVSHA256]))
	}
	ssl, err := tlvparse.SSL(proxyproto.TLV{Type: proxyproto.PP2_TYPE_SSL, Value: got[proxyproto.PP2_TYPE_SSL]})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ssl.SSLVersion(); v != "TLSv1.3" {
		t.Errorf("TLS version %q", v)
	}
	if cn, _ := ssl.ClientCN(); cn != "alice" {
		t.Errorf("CN %q", cn)
	}
	if !ssl.ClientSSL() || !ssl.ClientCertConn() {
		t.Errorf("SSL client flags %#x", ssl.Client)
	}
	var der []byte
	for _, sub := range ssl.TLV {
		if sub.Type == proxyproto.PP2_SUBTYPE_SSL_CLIENT_CERT {
			der = sub.Value
		}
	}
	if !bytes.Equal(der, p.Client.Issued.Cert.Raw) {
		t.Error("v2-full: the client certificate's DER is missing or wrong")
	}
}

// TestTrustedProxyDirectRouteNetworks: in direct mode the route is
// authorized during the handshake; behind a trusted proxy its networks
// are judged against the client address of the PROXY header, not the
// proxy's own.
func TestTrustedProxyDirectRouteNetworks(t *testing.T) {
	p := testpki.New(t)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, file, `allow: ["127.0.0.1", "192.0.2.0/24", "198.51.100.0/24"]
default_route: echo
routes:
  echo:
    backend: builtin:echo
    identities: ["any"]
    networks: ["192.0.2.0/24"]
`)
	cfg := baseConfig(p)
	cfg.Allow, cfg.AllowIDs, cfg.Policy = nil, nil, file
	cfg.TrustedProxy = must(acl.ParseList("127.0.0.3"))
	e := start(t, p, cfg)
	if got, err := viaProxy(t, e.addr, p, proxyHeader(t, "192.0.2.44:5151")); err != nil || got != "through the balancer\n" {
		t.Fatalf("a client in the route's networks, through the proxy: %q, %v", got, err)
	}
	if _, err := viaProxy(t, e.addr, p, proxyHeader(t, "198.51.100.7:1")); err == nil {
		t.Fatal("a client outside the route's networks got through the proxy")
	}
}

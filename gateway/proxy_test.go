package gateway_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

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

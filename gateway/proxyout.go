package gateway

import (
	"crypto/tls"
	"encoding/hex"
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/policy"
)

// Custom TLVs of the PROXY v2 header sent to backends (the 0xE0-0xEF range
// the specification leaves to applications). The standard ones used are
// PP2_TYPE_AUTHORITY (0x02, the route: the SNI in direct mode, the route
// name in mux mode) and PP2_TYPE_SSL (0x20) with the TLS version (0x21),
// the client certificate's CN (0x22), the cipher (0x23) and, with
// proxy_protocol v2-full, the client certificate's DER (0x28).
const (
	TLVIdentity = 0xE0 // the identity's name as the audit log writes it, e.g. uri:spiffe://corp/app/x
	TLVURI      = 0xE1 // a URI SAN of the client certificate; one TLV per URI
	TLVSHA256   = 0xE2 // the SHA-256 of the client certificate's DER, 32 bytes
)

// PP2_TYPE_SSL's client field: TLS was used, and a client certificate was
// presented on this connection and this session.
const pp2ClientSSLWithCert = 0x01 | 0x02 | 0x04

// proxyHeader is the PROXY header that tells the backend of route r who
// connected: the client's address and port (the one the gateway judged),
// the gateway's own address, and in version 2 the TLVs above.
func (c *serverConn) proxyHeader(r *policy.Route, id *conn.Identity) ([]byte, error) {
	dst, _ := c.raw.LocalAddr().(*net.TCPAddr)
	if dst == nil {
		dst = &net.TCPAddr{}
	}
	if r.Proxy == policy.ProxyV1 {
		return proxyproto.HeaderProxyFromAddrs(1, net.TCPAddrFromAddrPort(c.peer), dst).Format()
	}
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(c.peer), dst)
	cs := c.cs
	sub := []proxyproto.TLV{
		{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte(tlsVersionText(cs.Version))},
		{Type: proxyproto.PP2_SUBTYPE_SSL_CIPHER, Value: []byte(tls.CipherSuiteName(cs.CipherSuite))},
	}
	if id.CommonName != "" {
		sub = append(sub, proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_CN, Value: []byte(id.CommonName)})
	}
	if r.Proxy == policy.ProxyV2Full && len(cs.PeerCertificates) > 0 {
		sub = append(sub, proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_CLIENT_CERT, Value: cs.PeerCertificates[0].Raw})
	}
	subs, err := proxyproto.JoinTLVs(sub)
	if err != nil {
		return nil, err
	}
	ssl := append([]byte{pp2ClientSSLWithCert, 0, 0, 0, 0}, subs...) // verify 0: the certificate was verified
	route := r.Name
	if cs.ServerName != "" && c.mode() == modeDirect {
		route = cs.ServerName
	}
	tlvs := []proxyproto.TLV{
		{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte(route)},
		{Type: proxyproto.PP2_TYPE_SSL, Value: ssl},
		{Type: TLVIdentity, Value: []byte(id.String())},
	}
	for _, u := range id.URIs {
		tlvs = append(tlvs, proxyproto.TLV{Type: TLVURI, Value: []byte(u)})
	}
	if sum, err := hex.DecodeString(id.SHA256); err == nil {
		tlvs = append(tlvs, proxyproto.TLV{Type: TLVSHA256, Value: sum})
	}
	if err := h.SetTLVs(tlvs); err != nil {
		return nil, err
	}
	return h.Format()
}

// sendProxyHeader writes the route's PROXY header to a fresh backend
// connection, within the route's dial timeout.
func (c *serverConn) sendProxyHeader(backend net.Conn, r *policy.Route, id *conn.Identity) error {
	b, err := c.proxyHeader(r, id)
	if err != nil {
		return err
	}
	_ = backend.SetWriteDeadline(time.Now().Add(r.DialTimeout))
	_, err = backend.Write(b)
	_ = backend.SetWriteDeadline(time.Time{})
	return err
}

// tlsVersionText is the version as OpenSSL names it, which backends that
// read PP2_SUBTYPE_SSL_VERSION expect ("TLSv1.3").
func tlsVersionText(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	}
	return tls.VersionName(v)
}

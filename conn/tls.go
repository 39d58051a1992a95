package conn

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// cipherSuites are the TLS 1.2 suites we accept: ECDHE key exchange with an
// AEAD cipher only. TLS 1.3 suites are all AEAD and not configurable.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerConfig returns the gateway's TLS configuration for this snapshot:
// TLS 1.2 at least with ECDHE+AEAD suites, a client certificate required and
// verified by crypto/tls against the CA bundle (chain, validity, EKU
// clientAuth), then checked against the CRL by VerifyConnection, which is set
// to VerifyClient (it also caches the verified chains for
// CachingServerConfig). Session tickets are encrypted with a key of this
// snapshot (when it was made by LoadServer), so sessions resume within a
// snapshot and a reload ends the resumption of sessions made under the old
// trust.
//
// Each call returns a new Config that the caller may change: it may set
// NextProtos and GetConfigForClient, and it may replace VerifyConnection
// with a function that calls VerifyClient first (VerifyConnection also runs
// on resumed sessions).
func (st *ServerState) ServerConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     cipherSuites,
		Certificates:     []tls.Certificate{st.Cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        st.ClientCAs,
		VerifyConnection: st.VerifyClient,
	}
	if st.ticketKey != nil {
		cfg.SetSessionTicketKeys([][32]byte{*st.ticketKey})
	}
	return cfg
}

// CachingServerConfig is ServerConfig for clients likely to have been seen
// before: crypto/tls only requires a certificate, and VerifyClient verifies
// it, taking the chains of a certificate verified before from the
// snapshot's cache (validity and revocation are still checked at every
// handshake). The checks are the same; what differs is a refusal's alert:
// crypto/tls sends bad_certificate for whatever VerifyConnection refuses,
// where ServerConfig's own verification says unknown_ca or
// certificate_expired, which the tunnel explains. So a gateway uses this
// configuration for source addresses that recently completed a handshake,
// and ServerConfig for the others (a new client's first, most likely
// misconfigured, attempt). The connection state's VerifiedChains is empty:
// ClientChains gives them.
func (st *ServerState) CachingServerConfig() *tls.Config {
	cfg := st.ServerConfig()
	cfg.ClientAuth = tls.RequireAnyClientCert
	return cfg
}

// CheckRevoked returns an error wrapping ErrRevoked when a certificate of the
// verified chains of cs is listed in the snapshot's CRL (see ClientChains).
func (st *ServerState) CheckRevoked(cs tls.ConnectionState) error {
	if st.CRL == nil {
		return nil
	}
	return st.revoked(st.ClientChains(cs, time.Now()))
}

// revoked returns an error wrapping ErrRevoked when a certificate of chains
// is listed in the snapshot's CRL.
func (st *ServerState) revoked(chains [][]*x509.Certificate) error {
	if st.CRL == nil {
		return nil
	}
	for _, chain := range chains {
		for _, c := range chain {
			if st.CRL.Revoked(c) {
				return fmt.Errorf("%w: serial %s (subject %q)", ErrRevoked, pki.FormatSerial(c.SerialNumber), c.Subject)
			}
		}
	}
	return nil
}

// ClientFiles names the files the tunnel's TLS state is loaded from.
type ClientFiles struct {
	Cert string // client certificate chain, PEM; or a PKCS#12 bundle with the key (see IsPKCS12)
	Key  string // its private key, PEM; empty with a PKCS#12 Cert
	// KeyPass names a file whose first line is the password of a PKCS#12
	// Cert; empty means the empty password.
	KeyPass string
	CA      string // CA bundle the gateway's certificate must chain to, PEM
	// StrictPerms refuses a key file that its group or others may read;
	// without it, such a file loads with a warning.
	StrictPerms bool
}

// ClientState is one immutable snapshot of the tunnel's credentials.
type ClientState struct {
	Cert     tls.Certificate
	Roots    *x509.CertPool
	Warnings []string
}

// LoadClient reads and checks the tunnel's files.
func LoadClient(f ClientFiles, now time.Time) (*ClientState, error) {
	cert, warns, err := loadCredential(f.Cert, f.Key, f.KeyPass, f.StrictPerms)
	if err != nil {
		return nil, err
	}
	st := &ClientState{Cert: cert, Roots: x509.NewCertPool(), Warnings: warns}
	if now.After(cert.Leaf.NotAfter) {
		st.Warnings = append(st.Warnings, fmt.Sprintf("client certificate %q expired at %s: the gateway will refuse it",
			f.Cert, cert.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	} else if ExpiresSoon(cert.Leaf, now) {
		st.Warnings = append(st.Warnings, fmt.Sprintf("client certificate %q expires at %s",
			f.Cert, cert.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	cas, err := LoadCerts(f.CA)
	if err != nil {
		return nil, fmt.Errorf("gateway CA bundle: %w", err)
	}
	for _, c := range cas {
		st.Roots.AddCert(c)
	}
	return st, nil
}

// ClientCreds holds the tunnel's current credentials; Reload swaps them
// atomically, and connections made afterwards use the new ones. It is safe
// for concurrent use. Make one with NewClientCreds: the zero ClientCreds
// holds no credentials and is not usable.
type ClientCreds struct {
	files ClientFiles
	cur   atomic.Pointer[ClientState]
}

// NewClientCreds loads the files once; see Reload.
func NewClientCreds(f ClientFiles) (*ClientCreds, error) {
	c := &ClientCreds{files: f}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload loads the files again; on error the old credentials stay.
func (c *ClientCreds) Reload() error {
	st, err := LoadClient(c.files, time.Now())
	if err != nil {
		return err
	}
	c.cur.Store(st)
	return nil
}

// State returns the current snapshot.
func (c *ClientCreds) State() *ClientState { return c.cur.Load() }

// ClientOptions shape a client TLS configuration.
type ClientOptions struct {
	ServerName string   // the name the gateway's certificate must be valid for; required (empty refuses every gateway)
	SNI        string   // the name sent in the ClientHello; "" means ServerName
	ALPN       []string // protocols to offer
	Pins       []string // optional: the gateway's leaf must have one of these SHA-256 fingerprints (hex in any case, colons and a "sha256:" prefix optional)
}

// TLSConfig returns a client configuration that presents the current client
// certificate and verifies the gateway's chain against the current CA bundle
// and ServerName (and pins, if any). SNI can differ from the verified name:
// direct mode sends the route name as SNI. The credentials are read at each
// handshake, so a Reload applies to the next one.
func (c *ClientCreds) TLSConfig(o ClientOptions) *tls.Config {
	sni := o.SNI
	if sni == "" {
		sni = o.ServerName
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       cipherSuites,
		ServerName:         sni,
		NextProtos:         o.ALPN,
		InsecureSkipVerify: true, // verified below, against ServerName rather than SNI
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert := c.cur.Load().Cert
			return &cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs, c.cur.Load().Roots, o.ServerName, o.Pins)
		},
	}
}

func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, name string, pins []string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("gateway sent no certificate")
	}
	if name == "" {
		// x509 skips the name check for an empty DNSName: refuse instead of
		// accepting any certificate of the CA.
		return errors.New("no server name to check the gateway's certificate against (set --server-name)")
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		DNSName:       name,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	if len(pins) > 0 {
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		fp := hex.EncodeToString(sum[:])
		for _, p := range pins {
			if normalizePin(p) == fp {
				return nil
			}
		}
		return fmt.Errorf("%w: it has sha256:%s", ErrPin, fp)
	}
	return nil
}

// normalizePin accepts a fingerprint as lowercase hex, in any case, with
// colons, or with a "sha256:" prefix.
func normalizePin(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	p = strings.TrimPrefix(p, "sha256:")
	return strings.ReplaceAll(p, ":", "")
}

// TLS alert numbers (RFC 8446 section 6) that the explanations below name.
const (
	alertHandshakeFailure    = 40
	alertBadCertificate      = 42
	alertUnsupportedCert     = 43
	alertCertificateRevoked  = 44
	alertCertificateExpired  = 45
	alertCertificateUnknown  = 46
	alertUnknownCA           = 48
	alertAccessDenied        = 49
	alertProtocolVersion     = 70
	alertCertificateRequired = 116
	alertNoApplicationProto  = 120
)

// RemoteAlert returns the TLS alert the peer sent, if err carries one.
func RemoteAlert(err error) (uint8, bool) {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		// crypto/tls reports a received alert as a net.OpError around its
		// unexported alert type, a uint8.
		if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
			return uint8(v.Uint()), true
		}
	}
	var ae tls.AlertError // QUIC transports
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	return 0, false
}

// ExplainClientError turns a handshake error seen by the tunnel into a
// sentence that says which side refused and why, as far as TLS reveals it,
// followed by the error itself in brackets. A nil error gives "".
func ExplainClientError(err error, serverName string) string {
	if err == nil {
		return ""
	}
	if a, ok := RemoteAlert(err); ok {
		why := map[uint8]string{
			alertCertificateRequired: "the gateway requires a client certificate (set --cert and --key)",
			alertUnknownCA:           "the gateway does not trust the issuer of our client certificate (is --cert issued by the CA the gateway's --ca names?)",
			alertCertificateExpired:  "the gateway refused our client certificate as expired or not yet valid (check its dates: gateway pki show FILE)",
			alertBadCertificate:      "the gateway refused our client certificate (not a client certificate (EKU), revoked, its identity not allowed, or, from an address it saw lately, an issuer it does not trust or dates not valid; the gateway's log says which, and a second attempt names the last two)",
			alertUnsupportedCert:     "the gateway refused our client certificate's key type",
			alertCertificateRevoked:  "the gateway says our client certificate is revoked",
			alertCertificateUnknown:  "the gateway refused our client certificate",
			alertAccessDenied:        "the gateway denied access",
			alertProtocolVersion:     "the gateway refused our TLS version (it needs TLS 1.2 or later)",
			alertHandshakeFailure:    "the gateway found no TLS parameters in common with us (cipher suites or curves), or, in TLS 1.2, it wanted a client certificate we did not send",
			alertNoApplicationProto:  "the gateway does not speak the application protocol we offered (ALPN)",
		}[a]
		if why == "" {
			why = "the gateway aborted the handshake"
		}
		return fmt.Sprintf("%s [%v]", why, err)
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		var ua x509.UnknownAuthorityError
		var hn x509.HostnameError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			return fmt.Sprintf("we refused the gateway's certificate: it is not signed by a CA in --ca [%v]", cve.Err)
		case errors.As(err, &hn):
			return fmt.Sprintf("we refused the gateway's certificate: it is not valid for --server-name %q [%v]", serverName, cve.Err)
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			return fmt.Sprintf("we refused the gateway's certificate: expired or not yet valid [%v]", cve.Err)
		}
		return fmt.Sprintf("we refused the gateway's certificate [%v]", cve.Err)
	}
	if errors.Is(err, ErrPin) {
		return fmt.Sprintf("we refused the gateway's certificate: %v", err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("the TLS handshake timed out [%v]", err)
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return fmt.Sprintf("the peer does not speak TLS [%v]", err)
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("the gateway closed the connection during the TLS handshake without saying why "+
			"(its network rules may not admit our address, or it is at its connection limit; the gateway's log says which) [%v]", err)
	}
	return err.Error()
}

package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// Client calls an enrollment service.
type Client struct {
	base *url.URL
	http *http.Client
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL is the service, https://HOST:PORT. Required.
	URL string
	// CA is the PEM bundle the service's certificate must chain to.
	// Required.
	CA []byte
	// Certificate, when set, returns the client certificate presented to
	// the service (for renewals); it is called for each handshake, so a
	// renewed certificate is used at once.
	Certificate func() (*tls.Certificate, error)
	// Timeout bounds each call; 0 means 30s.
	Timeout time.Duration
}

// NewClient checks the options.
func NewClient(o ClientOptions) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("enrollment service URL %q: want https://HOST:PORT", o.URL)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(o.CA) {
		return nil, fmt.Errorf("the CA bundle holds no PEM certificate")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
	if o.Certificate != nil {
		get := o.Certificate
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get() }
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false, DisableKeepAlives: true}
	return &Client{base: u, http: &http.Client{Transport: tr, Timeout: o.Timeout}}, nil
}

// Close frees the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// URL returns the service's URL.
func (c *Client) URL() string { return c.base.String() }

// NewCSR makes a new ECDSA P-256 key and a CSR for it. The CSR names no
// identity: the service takes it from the signer, or from the current
// certificate.
func NewCSR() (crypto.Signer, []byte, error) {
	key, err := pki.GenerateKey(pki.ECDSAP256)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "portcullis enrollment"}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the CSR: %w", err)
	}
	return key, der, nil
}

// Sign makes the envelope of r, signed by s; r's Time and Nonce are set
// when zero.
func Sign(ctx context.Context, s Signer, r *Request) (Envelope, error) {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC().Truncate(time.Second)
	}
	if r.Nonce == "" {
		r.Nonce = NewNonce()
	}
	msg := r.Marshal()
	sig, err := s.Sign(ctx, msg)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{Request: string(msg), Signature: string(sig)}
	if !bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP")) {
		env.Signature = base64.StdEncoding.EncodeToString(sig)
	}
	return env, nil
}

// Issue asks for a certificate for the CSR (DER), signed by s.
func (c *Client) Issue(ctx context.Context, s Signer, csrDER []byte, ttl time.Duration) (*Issued, error) {
	env, err := Sign(ctx, s, &Request{Op: OpIssue, TTL: ttl, CSR: csrDER})
	if err != nil {
		return nil, err
	}
	return c.Submit(ctx, http.MethodPost, "/v1/certificates", env)
}

// Submit sends a signed envelope and decodes an Issued answer: for tests
// and for callers that sign by other means.
func (c *Client) Submit(ctx context.Context, method, path string, env Envelope) (*Issued, error) {
	var out Issued
	if err := c.do(ctx, method, path, env, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Renew asks for a certificate for the CSR with the identity of the
// client certificate (ClientOptions.Certificate).
func (c *Client) Renew(ctx context.Context, csrDER []byte, ttl time.Duration) (*Issued, error) {
	body := RenewRequest{CSR: string(pemCSR(csrDER))}
	if ttl > 0 {
		body.TTL = ttl.String()
	}
	var out Issued
	if err := c.do(ctx, http.MethodPost, "/v1/renew", body, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke revokes a certificate, by serial (hex) or by certificate (DER),
// signed by an admin key.
func (c *Client) Revoke(ctx context.Context, s Signer, serial string, certDER []byte, reason string) (*Revoked, error) {
	if reason == "" {
		reason = "unspecified"
	}
	env, err := Sign(ctx, s, &Request{Op: OpRevoke, Serial: serial, Cert: certDER, Reason: reason})
	if err != nil {
		return nil, err
	}
	var out Revoked
	if err := c.do(ctx, http.MethodPost, "/v1/revocations", env, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// List lists what the CA issued, signed by an admin key.
func (c *Client) List(ctx context.Context, s Signer) ([]Listed, error) {
	env, err := Sign(ctx, s, &Request{Op: OpList})
	if err != nil {
		return nil, err
	}
	sig := env.Signature
	if strings.HasPrefix(sig, "-----BEGIN") {
		sig = base64.StdEncoding.EncodeToString([]byte(sig))
	}
	h := http.Header{}
	h.Set("Portcullis-Request", base64.StdEncoding.EncodeToString([]byte(env.Request)))
	h.Set("Portcullis-Signature", sig)
	var out struct {
		Certificates []Listed `json:"certificates"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/certificates", nil, h, &out); err != nil {
		return nil, err
	}
	return out.Certificates, nil
}

// Fetch GETs a public resource (/v1/crl, /v1/crl?format=pem, /v1/ca).
func (c *Client) Fetch(ctx context.Context, path string) ([]byte, error) {
	var raw []byte
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// do makes one call. A refusal is an *Error.
func (c *Client) do(ctx context.Context, method, path string, in any, h http.Header, out any) error {
	u := c.base.JoinPath()
	p, q, _ := strings.Cut(path, "?")
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawQuery = q
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("enrollment service %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("enrollment service %s: reading the answer: %w", c.base.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != nil && e.Error.Code != "" {
			e.Error.Status = resp.StatusCode
			return e.Error
		}
		return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: strings.TrimSpace(string(data[:min(len(data), 512)]))}
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: enrollment service answer: %w", ErrMalformed, err)
	}
	return nil
}

func pemCSR(der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("-----BEGIN CERTIFICATE REQUEST-----\n")
	s := base64.StdEncoding.EncodeToString(der)
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n-----END CERTIFICATE REQUEST-----\n")
	return b.Bytes()
}

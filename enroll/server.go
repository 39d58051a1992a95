package enroll

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/pki"
)

// Lifetimes and windows.
const (
	// DefaultTTL is the lifetime of a certificate when neither the request
	// nor the user's mapping entry asks for another.
	DefaultTTL = pki.DefaultClientTTL
	// MinTTL is the shortest lifetime the service issues: renewal at two
	// thirds of the life needs a few seconds.
	MinTTL = 10 * time.Second
	// DefaultSkew is how far a request's time may be from the service's.
	DefaultSkew = 5 * time.Minute
	// maxBackdate is how far before issuance NotBefore lies at most (a
	// tenth of the lifetime for short ones), for verifiers whose clocks
	// are behind.
	maxBackdate = 5 * time.Minute
	// maxBody bounds a request body.
	maxBody = 128 << 10
)

// Config configures a Server.
type Config struct {
	// Dir is the CA the service issues from. Required.
	Dir *pki.Dir
	// UsersKeyring and AdminKeyring are the keyring files (armored or
	// binary); both required. They, and UserMap, are read again when they
	// change on disk.
	UsersKeyring, AdminKeyring string
	// UserMap is the optional YAML mapping of keys to names and lifetimes.
	UserMap string
	// Org is the SPIFFE trust domain of the URI SAN spiffe://ORG/user/NAME.
	// Required.
	Org string
	// DefaultTTL is the lifetime of a request that asks for none; 0 means
	// DefaultTTL (18h). MaxTTL caps what a request may ask (and the
	// default); 0 means no cap but the CA's own expiry.
	DefaultTTL, MaxTTL time.Duration
	// Skew is the accepted distance of a request's time; 0 means 5m.
	Skew time.Duration
	// Log receives the audit events.
	Log zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the enrollment service's HTTP handler. It is safe for
// concurrent use.
type Server struct {
	cfg   Config
	log   zerolog.Logger
	pool  *x509.CertPool // verifies the client certificates of renewals
	mux   *http.ServeMux
	issue sync.Mutex // one issuance at a time: the index is rewritten each time

	nonces nonceCache

	mu     sync.Mutex
	stamps map[string]fileStamp
	users  *Users
	admins openpgp.EntityList
}

// NewServer loads the keyrings and the mapping; a problem with any of them
// is an error naming the file.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Dir == nil {
		return nil, errors.New("enroll: no CA directory")
	}
	if cfg.Org == "" {
		return nil, errors.New("enroll: no organisation (the SPIFFE trust domain)")
	}
	if _, err := url.Parse("spiffe://" + cfg.Org + "/user/x"); err != nil || strings.ContainsAny(cfg.Org, "/:@ ") {
		return nil, fmt.Errorf("enroll: organisation %q is not a SPIFFE trust domain such as corp or example.com", cfg.Org)
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = DefaultTTL
	}
	if cfg.Skew <= 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultTTL < MinTTL || cfg.MaxTTL != 0 && cfg.MaxTTL < MinTTL {
		return nil, fmt.Errorf("enroll: lifetimes below %s cannot be renewed in time", MinTTL)
	}
	s := &Server{cfg: cfg, log: cfg.Log, stamps: map[string]fileStamp{}}
	s.pool = cfg.Dir.CA().Pool()
	if err := s.reload(true); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/v1/certificates", s.certificates)
	s.mux.HandleFunc("/v1/renew", s.renew)
	s.mux.HandleFunc("/v1/revocations", s.revocations)
	s.mux.HandleFunc("/v1/crl", s.crl)
	s.mux.HandleFunc("/v1/ca", s.ca)
	s.mux.HandleFunc("/", s.notFound)
	return s, nil
}

// TLSConfig is the configuration of the service's listener: TLS 1.3 only,
// cert as the server certificate, and a client certificate asked for but
// not required (renewals present one; the handler verifies it, so that an
// expired or foreign certificate gets a clear answer rather than a failed
// handshake).
func (s *Server) TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
	}
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.reload(false); err != nil {
		s.log.Error().Str("event", "enroll_reload_failed").Err(err).Msg("keeping the previous keyrings")
	}
	s.mux.ServeHTTP(w, r)
}

// fileStamp tells whether a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

// reload reads the keyrings and the mapping when one changed (always with
// force); on error the previous ones stay.
func (s *Server) reload(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths := []string{s.cfg.UsersKeyring, s.cfg.AdminKeyring}
	if s.cfg.UserMap != "" {
		paths = append(paths, s.cfg.UserMap)
	}
	now := map[string]fileStamp{}
	changed := force
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		now[p] = fileStamp{fi.ModTime(), fi.Size()}
		if now[p] != s.stamps[p] {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	ukr, err := ReadKeyring(s.cfg.UsersKeyring)
	if err != nil {
		return fmt.Errorf("users keyring %s: %w", s.cfg.UsersKeyring, err)
	}
	akr, err := ReadKeyring(s.cfg.AdminKeyring)
	if err != nil {
		return fmt.Errorf("admin keyring %s: %w", s.cfg.AdminKeyring, err)
	}
	var m *UserMap
	if s.cfg.UserMap != "" {
		data, err := os.ReadFile(s.cfg.UserMap)
		if err != nil {
			return err
		}
		if m, err = ParseUserMap(data); err != nil {
			return fmt.Errorf("user mapping %s: %w", s.cfg.UserMap, err)
		}
	}
	us, err := ResolveUsers(ukr, m, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("users keyring %s: %w", s.cfg.UsersKeyring, err)
	}
	for _, w := range us.Warnings {
		s.log.Warn().Str("event", "enroll_user_unusable").Msg(w)
	}
	s.users, s.admins, s.stamps = us, akr, now
	s.log.Info().Str("event", "enroll_keyrings_loaded").Int("users", us.Len()).Int("admins", len(akr)).Msg("keyrings loaded")
	return nil
}

func (s *Server) current() (*Users, openpgp.EntityList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users, s.admins
}

// Envelope is the body of a signed call: the canonical request (see
// Request) and a detached OpenPGP signature over it, armored, or binary
// in base64. GET /v1/certificates carries the same two values in the
// headers Portcullis-Request and Portcullis-Signature, each in base64.
type Envelope struct {
	Request   string `json:"request"`
	Signature string `json:"signature"`
}

// Issued is the answer to an issuance or a renewal.
type Issued struct {
	// Certificate is the leaf followed by its chain, PEM.
	Certificate string    `json:"certificate"`
	Serial      string    `json:"serial"`
	Name        string    `json:"name"`
	Email       string    `json:"email,omitempty"`
	URI         string    `json:"uri"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
}

// RenewRequest is the body of POST /v1/renew.
type RenewRequest struct {
	// CSR is the new key's certificate signing request, PEM.
	CSR string `json:"csr"`
	// TTL is the lifetime asked for, a Go duration; "" for the default.
	TTL string `json:"ttl,omitempty"`
}

// Revoked is the answer to a revocation.
type Revoked struct {
	Serial    string    `json:"serial"`
	Name      string    `json:"name"`
	RevokedAt time.Time `json:"revoked_at"`
	Reason    string    `json:"reason"`
}

// Listed is one certificate of GET /v1/certificates.
type Listed struct {
	pki.Record
	// Status is "valid", "expired" or "revoked".
	Status string `json:"status"`
}

// call is what the audit event of one request collects.
type call struct {
	s   *Server
	r   *http.Request
	ev  map[string]string
	op  string
	err *Error
}

func (s *Server) begin(r *http.Request, op string) *call {
	return &call{s: s, r: r, op: op, ev: map[string]string{}}
}

func (c *call) set(k, v string) { c.ev[k] = v }

// fail answers the refusal and logs it.
func (c *call) fail(w http.ResponseWriter, e *Error) {
	c.err = e
	ev := c.s.log.Warn().Str("event", "enroll_refused").Str("op", c.op).Str("code", string(e.Code)).
		Str("peer", c.r.RemoteAddr).Str("reason", e.Message)
	for k, v := range c.ev {
		ev = ev.Str(k, v)
	}
	ev.Msg("request refused")
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// done answers success and logs it.
func (c *call) done(w http.ResponseWriter, event string, body any) {
	ev := c.s.log.Info().Str("event", event).Str("op", c.op).Str("peer", c.r.RemoteAddr)
	for k, v := range c.ev {
		ev = ev.Str(k, v)
	}
	ev.Msg(event)
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// readEnvelope decodes the JSON body of a signed call.
func readEnvelope(r *http.Request) (Envelope, *Error) {
	var env Envelope
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return env, refuse(CodeBadRequest, "reading the body: %v", err)
	}
	if len(body) > maxBody {
		return env, refuse(CodeBadRequest, "body is over %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return env, refuse(CodeBadRequest, "body is not the JSON object {\"request\": ..., \"signature\": ...}: %v", err)
	}
	return env, nil
}

// checkSigned verifies a signed call against kr and parses it: signature
// first (nothing of an unsigned request is looked at further), then the
// form, the operation, the time and the nonce. other is the keyring of the
// other kind of caller, only to say so when the key is there.
func (c *call) checkSigned(env Envelope, kr, other openpgp.EntityList, krName, otherName string) (*Request, *openpgp.Entity, *Error) {
	if env.Request == "" || env.Signature == "" {
		return nil, nil, refuse(CodeBadRequest, "request and signature are both required")
	}
	sig := []byte(env.Signature)
	if !strings.HasPrefix(strings.TrimSpace(env.Signature), "-----BEGIN PGP") {
		b, err := base64.StdEncoding.DecodeString(env.Signature)
		if err != nil {
			return nil, nil, refuse(CodeBadRequest, "signature is neither armored nor base64")
		}
		sig = b
	}
	msg := []byte(env.Request)
	now := c.s.cfg.Now()
	// A signature made on a clock ahead of the service's (within the
	// accepted skew) is checked at its own time: at the service's it
	// would count as not yet valid.
	at := now
	if who, err := signerOf(sig); err == nil {
		c.set("signer_key_id", fmt.Sprintf("%016X", who.keyID))
		if d := who.created.Sub(now); d > c.s.cfg.Skew {
			return nil, nil, refuse(CodeTimestamp, "the signature was made at %s, %s after the service's time %s; accepted: within ±%s (check the clock)",
				who.created.UTC().Format(time.RFC3339), d.Round(time.Second), now.UTC().Format(time.RFC3339), c.s.cfg.Skew)
		} else if d > 0 {
			at = who.created
		}
	}
	e, err := verify(kr, msg, sig, at)
	switch {
	case errors.Is(err, errNotInKeyring):
		who, _ := signerOf(sig)
		if holds(other, who) {
			return nil, nil, refuse(CodeUnknownSigner, "the request is signed by a key of the %s keyring, not of the %s keyring that this call needs", otherName, krName)
		}
		return nil, nil, refuse(CodeUnknownSigner, "the request is signed by key %016X, which is not in the %s keyring", who.keyID, krName)
	case errors.Is(err, errKeyRevoked):
		who, _ := signerOf(sig)
		return nil, nil, refuse(CodeKeyRevoked, "the request is signed by key %016X, which is revoked in the %s keyring: it is no longer accepted", who.keyID, krName)
	case errors.Is(err, errKeyExpired):
		who, _ := signerOf(sig)
		return nil, nil, refuse(CodeKeyExpired, "the request is signed by key %016X, which has expired in the %s keyring (extend it with gpg --quick-set-expire and export the keyring again)", who.keyID, krName)
	case errors.Is(err, errSigExpired):
		return nil, nil, refuse(CodeSigExpired, "the signature, by a key of the %s keyring, has expired (or the key's self-signature has): sign a new request", krName)
	case errors.Is(err, errUnknownIssuer):
		who, _ := signerOf(sig)
		return nil, nil, refuse(CodeUnknownIssuer, "the request is signed by key %016X, which the %s keyring holds but not as a key that may sign", who.keyID, krName)
	case errors.Is(err, errMismatch):
		return nil, nil, refuse(CodeBadSignature, "the signature, by a key of the %s keyring, does not match the request: the request (CSR, TTL, time or nonce) was changed after it was signed", krName)
	case err != nil:
		return nil, nil, refuse(CodeBadRequest, "%v", err)
	}
	c.set("signer", Fingerprint(e))
	req, err := ParseRequest(msg)
	if err != nil {
		return nil, nil, refuse(CodeBadRequest, "%v", err)
	}
	if req.Op != c.op {
		return nil, nil, refuse(CodeWrongOperation, "the request was signed for op %q; this endpoint takes op %q", req.Op, c.op)
	}
	if d := now.Sub(req.Time); d > c.s.cfg.Skew || d < -c.s.cfg.Skew {
		return nil, nil, refuse(CodeTimestamp, "the request's time %s is %s from the service's %s; accepted: within ±%s (check the clock)",
			req.Time.Format(time.RFC3339), d.Abs().Round(time.Second), now.UTC().Format(time.RFC3339), c.s.cfg.Skew)
	}
	if !c.s.nonces.add(req.Nonce, req.Time.Add(c.s.cfg.Skew), now) {
		return nil, nil, refuse(CodeNonceReplayed, "nonce %s was already used: a request is accepted once (sign a new one)", req.Nonce)
	}
	return req, e, nil
}

// certificates serves POST (issue, by a user) and GET (list, by an admin).
func (s *Server) certificates(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.issueCert(w, r)
	case http.MethodGet:
		s.list(w, r)
	default:
		s.begin(r, "").fail(w, refuse(CodeMethod, "%s /v1/certificates: accepted: POST (issue), GET (list)", r.Method))
	}
}

func (s *Server) issueCert(w http.ResponseWriter, r *http.Request) {
	c := s.begin(r, OpIssue)
	env, e := readEnvelope(r)
	if e != nil {
		c.fail(w, e)
		return
	}
	users, admins := s.current()
	req, signer, e := c.checkSigned(env, users.Keyring(), admins, "users", "admin")
	if e != nil {
		c.fail(w, e)
		return
	}
	u := users.ByFingerprint(Fingerprint(signer))
	if u == nil {
		c.fail(w, refuse(CodeUnmapped, "key %s has no usable name (no email user ID and no mapping entry): add it to the mapping", Fingerprint(signer)))
		return
	}
	csr, e := parseCSR(req.CSR)
	if e != nil {
		c.fail(w, e)
		return
	}
	out, e := s.certify(c, csr, u, req.TTL)
	if e != nil {
		c.fail(w, e)
		return
	}
	c.done(w, "enroll_issued", out)
}

// parseCSR parses and checks a CSR: its own signature and its key.
func parseCSR(der []byte) (*x509.CertificateRequest, *Error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, refuse(CodeBadCSR, "the CSR does not parse: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuse(CodeBadCSR, "the CSR's own signature does not verify (it was not made by the key it carries): %v", err)
	}
	if err := pki.CheckPublicKey(csr.PublicKey); err != nil {
		return nil, refuse(CodeWeakKey, "%v", err)
	}
	return csr, nil
}

// certify issues the certificate of u for csr's key, valid for the
// lifetime asked (0: the default), capped.
func (s *Server) certify(c *call, csr *x509.CertificateRequest, u *User, asked time.Duration) (*Issued, *Error) {
	c.set("name", u.Name)
	ttl, e := s.lifetime(u, asked)
	if e != nil {
		return nil, e
	}
	uri := "spiffe://" + s.cfg.Org + "/user/" + u.Name
	now := s.cfg.Now()
	nb := now.Add(-min(maxBackdate, ttl/10))
	na := now.Add(ttl)
	if caNA := s.cfg.Dir.CA().Cert.NotAfter; na.After(caNA) {
		na = caNA
	}
	req := pki.Request{Kind: pki.Client, Name: u.Name, URIs: []string{uri}, NotBefore: nb, NotAfter: na}
	if u.Email != "" {
		req.Emails = []string{u.Email}
	}
	s.issue.Lock()
	cert, chain, err := s.certifyKey(csr, req)
	s.issue.Unlock()
	if err != nil {
		if errors.Is(err, pki.ErrKeyType) {
			return nil, refuse(CodeWeakKey, "%v", err)
		}
		s.log.Error().Str("event", "enroll_issue_failed").Err(err).Msg("could not issue")
		return nil, refuse(CodeInternal, "the CA could not issue: %v", err)
	}
	c.set("serial", pki.FormatSerial(cert.SerialNumber))
	c.set("not_after", cert.NotAfter.UTC().Format(time.RFC3339))
	c.set("ttl", ttl.String())
	return &Issued{
		Certificate: string(pki.EncodeCertsPEM(append([]*x509.Certificate{cert}, chain...)...)),
		Serial:      pki.FormatSerial(cert.SerialNumber), Name: u.Name, Email: u.Email, URI: uri,
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(),
	}, nil
}

// certifyKey signs the CSR's key only: the identity is the signer's, so
// the CSR's SANs are cleared (its signature, over the original bytes,
// still verifies) and its common name is replaced by req.Name.
func (s *Server) certifyKey(csr *x509.CertificateRequest, req pki.Request) (*x509.Certificate, []*x509.Certificate, error) {
	clean := *csr
	clean.DNSNames, clean.EmailAddresses, clean.IPAddresses, clean.URIs = nil, nil, nil, nil
	return s.cfg.Dir.Certify(&clean, req)
}

// lifetime is the lifetime to issue: asked (0: the user's or the
// service's default), capped by the user's and the service's maximum.
func (s *Server) lifetime(u *User, asked time.Duration) (time.Duration, *Error) {
	if asked != 0 && asked < MinTTL {
		return 0, refuse(CodeTTL, "ttl %s is below the shortest lifetime, %s", asked, MinTTL)
	}
	ttl := asked
	if ttl == 0 {
		ttl = s.cfg.DefaultTTL
		if u.TTL > 0 {
			ttl = u.TTL
		}
	}
	if s.cfg.MaxTTL > 0 {
		ttl = min(ttl, s.cfg.MaxTTL)
	}
	if u.MaxTTL > 0 {
		ttl = min(ttl, u.MaxTTL)
	}
	return ttl, nil
}

// renew serves POST /v1/renew: the caller's client certificate, from this
// CA, valid and not revoked, is the authentication; the new certificate
// has its identity and the CSR's new key.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	c := s.begin(r, "renew")
	if r.Method != http.MethodPost {
		c.fail(w, refuse(CodeMethod, "%s /v1/renew: accepted: POST", r.Method))
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		c.fail(w, refuse(CodeNoClientCert, "renewal needs the current certificate as the TLS client certificate (a first certificate is a signed POST /v1/certificates)"))
		return
	}
	leaf := r.TLS.PeerCertificates[0]
	c.set("old_serial", pki.FormatSerial(leaf.SerialNumber))
	inter := x509.NewCertPool()
	for _, ic := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	now := s.cfg.Now()
	_, err := leaf.Verify(x509.VerifyOptions{Roots: s.pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var inv x509.CertificateInvalidError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		c.fail(w, refuse(CodeCertExpired, "the certificate (serial %s) expired at %s: an expired certificate cannot renew; log in again", pki.FormatSerial(leaf.SerialNumber), leaf.NotAfter.UTC().Format(time.RFC3339)))
		return
	case err != nil:
		c.fail(w, refuse(CodeCertUnknown, "the client certificate does not verify against this CA: %v", err))
		return
	}
	rec, ok, err := s.cfg.Dir.Lookup(leaf.SerialNumber)
	switch {
	case err != nil:
		c.fail(w, refuse(CodeInternal, "reading the CA index: %v", err))
		return
	case !ok || rec.Fingerprint != pki.Fingerprint(leaf):
		c.fail(w, refuse(CodeCertUnknown, "serial %s is not in this CA's index: only certificates the service issued renew", pki.FormatSerial(leaf.SerialNumber)))
		return
	case rec.RevokedAt != nil:
		c.fail(w, refuse(CodeCertRevoked, "the certificate (serial %s) was revoked at %s (%s): it cannot renew", rec.Serial, rec.RevokedAt.Format(time.RFC3339), rec.Reason))
		return
	}
	if why := s.notEnrolled(leaf, rec); why != "" {
		c.fail(w, refuse(CodeNotEnrolled, "the certificate (serial %s) is not one the service issues to an enrolled user: %s; only those renew (log in for one)", rec.Serial, why))
		return
	}
	users, _ := s.current()
	name := leaf.Subject.CommonName
	u := users.ByName(name)
	st := users.Gone(name)
	if u != nil {
		st = u.KeyState(now)
	}
	switch {
	case errors.Is(st, pgperrors.ErrKeyRevoked):
		c.fail(w, refuse(CodeKeyRevoked, "the OpenPGP key of %q is revoked in the users keyring: the certificate does not renew", name))
		return
	case errors.Is(st, pgperrors.ErrKeyExpired):
		c.fail(w, refuse(CodeKeyExpired, "the OpenPGP key of %q has expired in the users keyring: the certificate does not renew", name))
		return
	case u == nil:
		c.fail(w, refuse(CodeUserRemoved, "no key of the users keyring has the name %q any more: the certificate does not renew", name))
		return
	}
	var rr RenewRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rr); err != nil {
		c.fail(w, refuse(CodeBadRequest, "body is not the JSON object {\"csr\": PEM, \"ttl\": DURATION}: %v", err))
		return
	}
	var asked time.Duration
	if rr.TTL != "" {
		if asked, err = time.ParseDuration(rr.TTL); err != nil || asked < 0 {
			c.fail(w, refuse(CodeTTL, "ttl %q: want a Go duration such as 18h", clip(rr.TTL)))
			return
		}
	}
	parsed, err := pki.ParseCSRPEM([]byte(rr.CSR))
	if err != nil {
		c.fail(w, refuse(CodeBadCSR, "%v", err))
		return
	}
	csr, e := parseCSR(parsed.Raw)
	if e != nil {
		c.fail(w, e)
		return
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(csr.PublicKey) {
		c.fail(w, refuse(CodeBadCSR, "the CSR carries the current certificate's key: a renewal needs a new key"))
		return
	}
	out, e := s.certify(c, csr, u, asked)
	if e != nil {
		c.fail(w, e)
		return
	}
	c.done(w, "enroll_renewed", out)
}

// notEnrolled says why leaf, of this CA, is not a certificate of the form
// certify issues (a client certificate with the user's name as its
// common name, spiffe://ORG/user/NAME as its one URI, at most one email
// and nothing else), or "" when it is. A certificate issued by hand in
// the same CA under another identity does not renew into a user's.
func (s *Server) notEnrolled(leaf *x509.Certificate, rec pki.Record) string {
	name := leaf.Subject.CommonName
	want := "spiffe://" + s.cfg.Org + "/user/" + name
	switch {
	case CheckUserName(name) != nil:
		return fmt.Sprintf("its common name %q is no user name", clip(name))
	case len(leaf.URIs) != 1 || leaf.URIs[0].String() != want:
		return fmt.Sprintf("its URIs are %q, want only %s", leaf.URIs, want)
	case len(rec.URIs) != 1 || rec.URIs[0] != want || rec.Kind != pki.Client.String():
		return fmt.Sprintf("the index records it as a %s certificate with URIs %q", rec.Kind, rec.URIs)
	case len(leaf.DNSNames) > 0 || len(leaf.IPAddresses) > 0 || len(leaf.EmailAddresses) > 1:
		return "it carries DNS names, IP addresses or several emails"
	case len(leaf.Subject.Organization) > 0 || len(leaf.Subject.OrganizationalUnit) > 0:
		return "its subject has an organization or organizational unit"
	}
	return ""
}

// revocations serves POST /v1/revocations, by an admin.
func (s *Server) revocations(w http.ResponseWriter, r *http.Request) {
	c := s.begin(r, OpRevoke)
	if r.Method != http.MethodPost {
		c.fail(w, refuse(CodeMethod, "%s /v1/revocations: accepted: POST", r.Method))
		return
	}
	env, e := readEnvelope(r)
	if e != nil {
		c.fail(w, e)
		return
	}
	users, admins := s.current()
	req, _, e := c.checkSigned(env, admins, users.Keyring(), "admin", "users")
	if e != nil {
		c.fail(w, e)
		return
	}
	reason, _ := pki.ParseReason(req.Reason) // checked by ParseRequest
	serial := req.Serial
	var cert *x509.Certificate
	if len(req.Cert) > 0 {
		var err error
		if cert, err = x509.ParseCertificate(req.Cert); err != nil {
			c.fail(w, refuse(CodeBadRequest, "cert does not parse: %v", err))
			return
		}
		serial = pki.FormatSerial(cert.SerialNumber)
	}
	c.set("serial", serial)
	n, _ := pki.ParseSerialHex(serial)
	s.issue.Lock()
	defer s.issue.Unlock()
	rec, ok, err := s.cfg.Dir.Lookup(n)
	switch {
	case err != nil:
		c.fail(w, refuse(CodeInternal, "reading the CA index: %v", err))
		return
	case !ok && cert == nil:
		c.fail(w, refuse(CodeCertUnknown, "serial %s is not in this CA's index", serial))
		return
	case ok && rec.RevokedAt != nil:
		c.fail(w, refuse(CodeAlreadyRevoked, "serial %s (%s) was already revoked at %s (%s)", serial, rec.Name, rec.RevokedAt.Format(time.RFC3339), rec.Reason))
		return
	}
	if cert != nil {
		err = s.cfg.Dir.RevokeCert(cert, reason)
	} else {
		err = s.cfg.Dir.Revoke(n, reason)
	}
	if errors.Is(err, pki.ErrUnknownSerial) {
		c.fail(w, refuse(CodeCertUnknown, "%v", err))
		return
	} else if err != nil {
		c.fail(w, refuse(CodeInternal, "revoking: %v", err))
		return
	}
	rec, _, _ = s.cfg.Dir.Lookup(n)
	c.set("name", rec.Name)
	c.set("reason", pki.ReasonName(reason))
	at := time.Time{}
	if rec.RevokedAt != nil {
		at = *rec.RevokedAt
	}
	c.done(w, "enroll_revoked", Revoked{Serial: serial, Name: rec.Name, RevokedAt: at, Reason: pki.ReasonName(reason)})
}

// list serves GET /v1/certificates, by an admin: the signed request in the
// headers.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	c := s.begin(r, OpList)
	req, err1 := base64.StdEncoding.DecodeString(r.Header.Get("Portcullis-Request"))
	sig, err2 := base64.StdEncoding.DecodeString(r.Header.Get("Portcullis-Signature"))
	if err1 != nil || err2 != nil || len(req) == 0 || len(sig) == 0 {
		c.fail(w, refuse(CodeBadRequest, "GET /v1/certificates needs the headers Portcullis-Request and Portcullis-Signature, base64, signed by an admin key"))
		return
	}
	users, admins := s.current()
	if _, _, e := c.checkSigned(Envelope{Request: string(req), Signature: base64.StdEncoding.EncodeToString(sig)}, admins, users.Keyring(), "admin", "users"); e != nil {
		c.fail(w, e)
		return
	}
	if err := s.cfg.Dir.Reload(); err != nil {
		c.fail(w, refuse(CodeInternal, "reading the CA index: %v", err))
		return
	}
	now := s.cfg.Now()
	out := []Listed{}
	for _, rec := range s.cfg.Dir.Records() {
		st := "valid"
		switch {
		case rec.RevokedAt != nil:
			st = "revoked"
		case now.After(rec.NotAfter):
			st = "expired"
		}
		out = append(out, Listed{Record: rec, Status: st})
	}
	c.set("count", fmt.Sprint(len(out)))
	c.done(w, "enroll_listed", map[string][]Listed{"certificates": out})
}

// crl serves the CRL: DER (application/pkix-crl), or PEM with ?format=pem
// or an Accept header asking for application/x-pem-file.
func (s *Server) crl(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.begin(r, "crl").fail(w, refuse(CodeMethod, "%s /v1/crl: accepted: GET", r.Method))
		return
	}
	der, err := s.cfg.Dir.CRLDER()
	if err != nil {
		s.begin(r, "crl").fail(w, refuse(CodeInternal, "%v", err))
		return
	}
	if r.URL.Query().Get("format") == "pem" || strings.Contains(r.Header.Get("Accept"), "application/x-pem-file") {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(pki.EncodeCRLPEM(der))
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	_, _ = w.Write(der)
}

// ca serves the CA bundle (PEM): the trust anchor, and the issuing CA
// when it is an intermediate (which signs the CRL).
func (s *Server) ca(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.begin(r, "ca").fail(w, refuse(CodeMethod, "%s /v1/ca: accepted: GET", r.Method))
		return
	}
	ca := s.cfg.Dir.CA()
	certs := []*x509.Certificate{ca.RootCert()}
	if !ca.IsRoot() {
		certs = append(certs, ca.Cert)
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(pki.EncodeCertsPEM(certs...))
}

// notFound answers a path the API does not have, in JSON like every
// other refusal.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.begin(r, "").fail(w, refuse(CodeNotFound, "%s %s: no such endpoint (the API: /v1/certificates, /v1/renew, /v1/revocations, /v1/crl, /v1/ca)", r.Method, clip(r.URL.Path)))
}

// nonceCache remembers the nonces of accepted requests until their
// request's time leaves the window: a replay within the window is caught,
// and one after it fails the time check.
type nonceCache struct {
	mu     sync.Mutex
	seen   map[string]time.Time // nonce → when it may be forgotten
	pruned time.Time
}

// add records nonce until until; false when it is already there.
func (n *nonceCache) add(nonce string, until, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[string]time.Time{}
	}
	if now.Sub(n.pruned) > time.Minute {
		for k, t := range n.seen {
			if now.After(t) {
				delete(n.seen, k)
			}
		}
		n.pruned = now
	}
	if t, ok := n.seen[nonce]; ok && !now.After(t) {
		return false
	}
	n.seen[nonce] = until
	return true
}

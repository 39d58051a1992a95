package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Default validity periods.
const (
	DefaultRootTTL         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateTTL = 5 * 365 * 24 * time.Hour
	DefaultServerTTL       = 90 * 24 * time.Hour
	DefaultClientTTL       = 18 * time.Hour
	DefaultCRLValidity     = 7 * 24 * time.Hour

	// MinTTL is the shortest validity period accepted for a certificate
	// whose NotAfter is derived from a TTL: anything shorter would expire
	// before it could be deployed.
	MinTTL = time.Minute

	// DefaultCAName is the common name of a CA when CAOptions.Name is empty.
	DefaultCAName = "portcullis CA"

	// backdate is how far before "now" a default NotBefore lies, to absorb
	// clock skew between the CA and the verifiers.
	backdate = 5 * time.Minute
)

// CA is a certificate authority: a CA certificate and its private key.
//
// A CA is immutable once built and safe for concurrent use.
type CA struct {
	// Cert is the CA certificate that signs what this CA issues.
	Cert *x509.Certificate
	// Key is Cert's private key.
	Key crypto.Signer
	// Chain holds the certificates between Cert and the root, excluding
	// the root: empty for a root CA and for an intermediate signed by the
	// root directly.
	Chain []*x509.Certificate
	// Root is the self-signed trust anchor at the top of the chain. Nil
	// means Cert is itself the root.
	Root *x509.Certificate
}

// CAOptions describes a CA certificate to create. The zero value is valid.
type CAOptions struct {
	// Name is the subject common name; "" means DefaultCAName.
	Name string
	// KeyType is the CA key's type; "" means ECDSAP256.
	KeyType KeyType
	// TTL is how long the certificate stays valid, counted from now (or
	// from NotBefore when that is set); 0 means DefaultRootTTL for a root
	// and DefaultIntermediateTTL for an intermediate, and a TTL below
	// MinTTL is refused. An intermediate never outlives its parent: its
	// NotAfter is capped at the parent's.
	TTL time.Duration
	// NotBefore is the start of validity; zero means five minutes ago (to
	// absorb clock skew), which does not shorten the TTL.
	NotBefore time.Time
}

// RootCert returns the trust anchor: Root, or Cert when Root is nil.
func (ca *CA) RootCert() *x509.Certificate {
	if ca.Root != nil {
		return ca.Root
	}
	return ca.Cert
}

// IsRoot reports whether the CA certificate is the trust anchor itself.
func (ca *CA) IsRoot() bool { return ca.Root == nil || ca.Root.Equal(ca.Cert) }

// Pool returns a new pool holding only the root of this CA: the trust anchor
// that verifiers (RootCAs, ClientCAs) need.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.RootCert())
	return p
}

// RootPEM returns the root certificate, PEM-encoded: the file a gateway or a
// tunnel is given with --ca.
func (ca *CA) RootPEM() []byte { return EncodeCertsPEM(ca.RootCert()) }

// issuedChain is the chain a certificate issued by ca is presented with: the
// CA certificate and the intermediates above it, never the root.
func (ca *CA) issuedChain() []*x509.Certificate {
	if ca.IsRoot() {
		return nil
	}
	chain := make([]*x509.Certificate, 0, 1+len(ca.Chain))
	chain = append(chain, ca.Cert)
	return append(chain, ca.Chain...)
}

// NewCA creates a self-signed root CA with a new key. The certificate has
// BasicConstraints CA:TRUE and KeyUsage CertSign|CRLSign.
func NewCA(opts CAOptions) (*CA, error) {
	key, cert, err := createCA(opts, DefaultRootTTL, nil)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// NewIntermediate creates an intermediate CA signed by ca, with a new key and
// MaxPathLen 0: it issues leaves only. ca must be a CA that may sign CA
// certificates (a root created by NewCA can, an intermediate cannot).
func (ca *CA) NewIntermediate(opts CAOptions) (*CA, error) {
	if ca.Cert.MaxPathLen == 0 && ca.Cert.MaxPathLenZero {
		return nil, fmt.Errorf("%w: CA %q has path length 0: it cannot sign another CA; create the intermediate from the root", ErrInvalidRequest, ca.Cert.Subject.CommonName)
	}
	key, cert, err := createCA(opts, DefaultIntermediateTTL, ca)
	if err != nil {
		return nil, err
	}
	chain := ca.issuedChain()
	return &CA{Cert: cert, Key: key, Chain: chain, Root: ca.RootCert()}, nil
}

func createCA(opts CAOptions, defTTL time.Duration, parent *CA) (crypto.Signer, *x509.Certificate, error) {
	name := opts.Name
	if name == "" {
		name = DefaultCAName
	}
	if err := checkText("Name", name, 64); err != nil {
		return nil, nil, err
	}
	if err := checkTTL(opts.TTL, "CA "+strconv.Quote(name), defTTL); err != nil {
		return nil, nil, err
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = defTTL
	}
	nb, na := validity(opts.NotBefore, ttl)
	if parent != nil && na.After(parent.Cert.NotAfter) {
		na = parent.Cert.NotAfter
	}
	if !na.After(nb) {
		return nil, nil, fmt.Errorf("%w: validity of CA %q: NotAfter %s is not after NotBefore %s", ErrInvalidRequest, name, na.UTC().Format(time.RFC3339), nb.UTC().Format(time.RFC3339))
	}
	key, err := GenerateKey(opts.KeyType)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid,
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		tmpl.MaxPathLen = 0
		tmpl.MaxPathLenZero = true
		signerCert, signerKey = parent.Cert, parent.Key
	}
	cert, err := sign(tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// sign creates and parses a certificate.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate just signed: %w", err)
	}
	return cert, nil
}

// checkTTL refuses a negative TTL and one shorter than MinTTL; 0 stands for
// defTTL. what names the certificate in the error.
func checkTTL(ttl time.Duration, what string, defTTL time.Duration) error {
	switch {
	case ttl < 0:
		return fmt.Errorf("%w: TTL %s of %s: must be positive (0 means the default, %s)", ErrInvalidRequest, ttl, what, defTTL)
	case ttl > 0 && ttl < MinTTL:
		return fmt.Errorf("%w: TTL %s of %s: must be at least %s, or the certificate expires before it can be used", ErrInvalidRequest, ttl, what, MinTTL)
	}
	return nil
}

// validity returns NotBefore and NotAfter for a certificate valid for ttl.
// With a zero notBefore the validity starts now: NotAfter is now+ttl and
// NotBefore lies backdate earlier, for verifiers whose clocks are behind.
// Otherwise it is notBefore to notBefore+ttl.
func validity(notBefore time.Time, ttl time.Duration) (nb, na time.Time) {
	if !notBefore.IsZero() {
		return notBefore, notBefore.Add(ttl)
	}
	now := time.Now()
	return now.Add(-backdate), now.Add(ttl)
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for range 8 {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("drawing a serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
	return nil, fmt.Errorf("drawing a serial number: the random source keeps returning zero")
}

// subjectKeyID derives a key identifier from the subjectPublicKey bits: the
// first 160 bits of their SHA-256 hash (RFC 7093, method 1).
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding public key: %w", ErrKeyType, err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// checkText validates a subject attribute: not empty, valid UTF-8 without
// control characters, at most max bytes.
func checkText(field, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty: give a non-empty value", ErrInvalidRequest, field)
	case len(s) > max:
		return fmt.Errorf("%w: %s %q is %d bytes long: at most %d allowed", ErrInvalidRequest, field, s, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidRequest, field, s)
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("%w: %s %q contains control characters", ErrInvalidRequest, field, s)
	}
	return nil
}

// CRL creates a certificate revocation list signed by ca, DER-encoded.
//
// number is the CRL number, which must grow with each CRL a CA publishes;
// nil means thisUpdate's Unix time in seconds. A zero thisUpdate means now;
// a zero nextUpdate means thisUpdate plus DefaultCRLValidity.
func (ca *CA) CRL(entries []x509.RevocationListEntry, number *big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	if thisUpdate.IsZero() {
		thisUpdate = time.Now()
	}
	if nextUpdate.IsZero() {
		nextUpdate = thisUpdate.Add(DefaultCRLValidity)
	}
	if !nextUpdate.After(thisUpdate) {
		return nil, fmt.Errorf("%w: CRL nextUpdate %s is not after thisUpdate %s", ErrInvalidRequest, nextUpdate.UTC().Format(time.RFC3339), thisUpdate.UTC().Format(time.RFC3339))
	}
	if number == nil {
		number = big.NewInt(thisUpdate.Unix())
	}
	if number.Sign() < 0 {
		return nil, fmt.Errorf("%w: CRL number %s is negative", ErrInvalidRequest, number)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    number,
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing CRL: %w", err)
	}
	return der, nil
}

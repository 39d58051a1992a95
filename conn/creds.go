package conn

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// ServerFiles names the files the gateway's TLS state is loaded from.
type ServerFiles struct {
	Cert string // certificate chain, PEM, leaf first; or a PKCS#12 bundle with the key (see IsPKCS12)
	Key  string // private key, PEM; empty with a PKCS#12 Cert
	// KeyPass names a file whose first line is the password of a PKCS#12
	// Cert; empty means the empty password.
	KeyPass string
	CA      string // bundle of CA certificates client certificates must chain to, PEM
	CRL     string // optional: one or more CRLs, PEM or DER
	// StrictPerms refuses a key file that its group or others may read;
	// without it, such a file loads with a warning.
	StrictPerms bool
}

// ServerState is one immutable snapshot of the gateway's credentials. A
// reload loads a new one; handshakes in flight keep the one they started with.
// It is safe for concurrent use; its fields must not be changed once it is
// in use.
type ServerState struct {
	Cert      tls.Certificate // with Leaf set
	ClientCAs *x509.CertPool
	CAs       []*x509.Certificate // the certificates of the CA bundle
	CRL       *RevocationList     // nil when no CRL is configured
	Warnings  []string            // things that load but need attention (a stale CRL, a certificate near expiry)
	LoadedAt  time.Time

	// ticketKey encrypts the session tickets of this snapshot (set by
	// LoadServer; nil for a ServerState built otherwise, which then uses the
	// keys of the listener's tls.Config).
	ticketKey *[32]byte
	// chains caches the verified chains of client certificates (set by
	// LoadServer; nil: no cache).
	chains *chainCache
}

// ExpiryWarning is how close to its NotAfter a long-lived certificate must
// be for a warning; see ExpiresSoon.
const ExpiryWarning = 30 * 24 * time.Hour

// ExpiresSoon reports whether cert is in the last stretch of its life: within
// ExpiryWarning of its NotAfter, or, for a short-lived certificate (an
// 18-hour client certificate), within the last third of its lifetime, so
// that certificates meant to be rotated often do not warn on every use.
func ExpiresSoon(cert *x509.Certificate, now time.Time) bool {
	window := min(ExpiryWarning, cert.NotAfter.Sub(cert.NotBefore)/3)
	return cert.NotAfter.Sub(now) < window
}

// LoadServer reads and checks the files. Every error names the file and what
// is wrong with it; nothing is returned half-loaded.
//
// Refused: a certificate and key that do not belong together, a server
// certificate that has expired or whose extended key usage excludes
// serverAuth, a CA bundle that is empty or holds a certificate that is not a
// CA, a CRL that does not parse or is not signed by a CA of the bundle.
// Loaded with a warning: a server certificate that expires soon (see
// ExpiresSoon) or is not valid yet, an expired CA certificate, a CRL past
// its nextUpdate.
func LoadServer(f ServerFiles, now time.Time) (*ServerState, error) {
	st := &ServerState{LoadedAt: now}
	cert, warns, err := loadCredential(f.Cert, f.Key, f.KeyPass, f.StrictPerms)
	if err != nil {
		return nil, err
	}
	st.Warnings = append(st.Warnings, warns...)
	st.Cert = cert
	leaf := cert.Leaf
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("server certificate %q expired at %s", f.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if !usableFor(leaf, x509.ExtKeyUsageServerAuth) {
		return nil, fmt.Errorf("server certificate %q (subject %q) is not for TLS servers: its extended key usage lacks serverAuth; "+
			"issue one with `gateway pki issue --server`", f.Cert, leaf.Subject)
	}
	if now.Before(leaf.NotBefore) {
		st.Warnings = append(st.Warnings, fmt.Sprintf("server certificate %q is not valid before %s: clients refuse it until then (check the clocks)",
			f.Cert, leaf.NotBefore.UTC().Format(time.RFC3339)))
	} else if ExpiresSoon(leaf, now) {
		st.Warnings = append(st.Warnings, fmt.Sprintf("server certificate %q expires soon, at %s",
			f.Cert, leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	st.CAs, err = LoadCerts(f.CA)
	if err != nil {
		return nil, fmt.Errorf("client CA bundle: %w", err)
	}
	st.ClientCAs = x509.NewCertPool()
	for _, c := range st.CAs {
		if !c.IsCA {
			return nil, fmt.Errorf("client CA bundle %q: certificate %q is not a CA certificate (basic constraints CA:TRUE missing); "+
				"the bundle holds the CAs that issue client certificates, not the certificates themselves", f.CA, c.Subject)
		}
		if now.After(c.NotAfter) {
			st.Warnings = append(st.Warnings, fmt.Sprintf("client CA bundle %q: CA certificate %q expired at %s: client certificates chaining to it are refused",
				f.CA, c.Subject, c.NotAfter.UTC().Format(time.RFC3339)))
		}
		st.ClientCAs.AddCert(c)
	}
	if f.CRL != "" {
		crl, warns, err := LoadCRL(f.CRL, st.CAs, now)
		if err != nil {
			return nil, err
		}
		st.CRL = crl
		st.Warnings = append(st.Warnings, warns...)
	}
	st.chains = &chainCache{}
	st.ticketKey = new([32]byte)
	if _, err := rand.Read(st.ticketKey[:]); err != nil {
		return nil, fmt.Errorf("session ticket key: %w", err)
	}
	return st, nil
}

// usableFor reports whether cert's extended key usage allows use, the way
// x509 verification reads it: no EKU at all, or anyExtendedKeyUsage, allows
// everything.
func usableFor(cert *x509.Certificate, use x509.ExtKeyUsage) bool {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range cert.ExtKeyUsage {
		if u == use || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// loadCredential reads a certificate and its key: a PEM pair, or a PKCS#12
// bundle (keyFile then empty; passFile, if any, holds its password). The
// files that hold secrets (the key file, the bundle, the password file) are
// checked like a key file: one its group or others may read is a warning,
// or with strict an error.
func loadCredential(certFile, keyFile, passFile string, strict bool) (tls.Certificate, []string, error) {
	var (
		cert    tls.Certificate
		err     error
		secrets []string
	)
	if IsPKCS12(certFile) {
		if keyFile != "" {
			return tls.Certificate{}, nil, fmt.Errorf("certificate %q is a PKCS#12 bundle, which holds its own key: no separate key file (%q) is read", certFile, keyFile)
		}
		cert, err = loadPKCS12(certFile, passFile)
		secrets = []string{certFile, passFile}
	} else {
		cert, err = loadKeyPair(certFile, keyFile)
		secrets = []string{keyFile}
	}
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	var warns []string
	for _, f := range secrets {
		if f == "" {
			continue
		}
		w, err := checkKeyPerms(f, strict)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		if w != "" {
			warns = append(warns, w)
		}
	}
	return cert, warns, nil
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading key file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %q with key %q: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // only with GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("certificate %q: %w", certFile, err)
		}
	}
	return cert, nil
}

// ErrKeyPerms is the error of a key file that its group or others may read,
// with StrictPerms.
var ErrKeyPerms = errors.New("private key file is readable by its group or others")

// checkKeyPerms looks at the mode of a private key file, as ssh does: one
// its group or others may read or write is a warning, or with strict an
// error. On systems without Unix permissions it says nothing.
func checkKeyPerms(keyFile string, strict bool) (warning string, err error) {
	if runtime.GOOS == "windows" {
		return "", nil
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		return "", fmt.Errorf("reading key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if strict {
			return "", fmt.Errorf("key file %q (mode %04o): %w; chmod 600 it", keyFile, perm, ErrKeyPerms)
		}
		return fmt.Sprintf("key file %q (mode %04o) is readable by its group or others: chmod 600 it", keyFile, perm), nil
	}
	return "", nil
}

// LoadCerts reads every certificate of a PEM file. A file without any, or
// with a block that does not parse, is an error naming the file.
func LoadCerts(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading certificates: %w", err)
	}
	certs, err := pki.ParseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", file, err)
	}
	return certs, nil
}

// RevocationList is the set of revoked serial numbers of one or more CRLs,
// keyed by issuer. It is immutable and safe for concurrent use; a nil
// *RevocationList revokes nothing.
type RevocationList struct {
	revoked    map[string][]*revokedSet // issuer raw subject -> lists by signing key
	NextUpdate time.Time                // the earliest nextUpdate of the lists (zero if none has one)
	Count      int                      // distinct revoked certificates listed
}

// revokedSet holds the serials revoked by one CA certificate.
type revokedSet struct {
	keyID   []byte               // SubjectKeyId of the CA that signed the lists; nil if it has none
	serials map[string]time.Time // serial (hex) -> revocation time
}

// Revoked reports whether cert is listed as revoked by its issuer: a CRL
// of the same issuer name lists its serial number and, when both the
// certificate's authority key ID and the signing CA's subject key ID are
// known, they are equal (so a CA that happens to share another's name
// does not revoke the other's certificates).
func (r *RevocationList) Revoked(cert *x509.Certificate) bool {
	if r == nil || cert == nil || cert.SerialNumber == nil {
		return false
	}
	sets := r.revoked[string(cert.RawIssuer)]
	if len(sets) == 0 {
		return false // most chains: no list from this issuer, nothing to format
	}
	serial := cert.SerialNumber.Text(16)
	for _, set := range sets {
		if len(set.keyID) > 0 && len(cert.AuthorityKeyId) > 0 && !bytes.Equal(set.keyID, cert.AuthorityKeyId) {
			continue
		}
		if _, ok := set.serials[serial]; ok {
			return true
		}
	}
	return false
}

// set returns the revokedSet of issuer signed by ca, adding it if needed.
func (r *RevocationList) set(issuer string, ca *x509.Certificate) *revokedSet {
	for _, s := range r.revoked[issuer] {
		if bytes.Equal(s.keyID, ca.SubjectKeyId) {
			return s
		}
	}
	s := &revokedSet{keyID: ca.SubjectKeyId, serials: map[string]time.Time{}}
	r.revoked[issuer] = append(r.revoked[issuer], s)
	return s
}

// LoadCRL reads one or more CRLs (PEM blocks "X509 CRL", or one DER list).
// Each must be signed by a certificate of cas: a CRL signed by anyone else is
// refused, since a list that cannot be trusted must not silently stand in for
// one that can. A CRL past its nextUpdate still loads (an old list of revoked
// certificates is better than none) and is returned as a warning.
func LoadCRL(file string, cas []*x509.Certificate, now time.Time) (*RevocationList, []string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("reading CRL: %w", err)
	}
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type == "X509 CRL" {
				ders = append(ders, block.Bytes)
			}
		}
		if len(ders) == 0 {
			return nil, nil, fmt.Errorf("CRL %q: no \"X509 CRL\" PEM block found", file)
		}
	} else {
		ders = [][]byte{data}
	}
	rl := &RevocationList{revoked: map[string][]*revokedSet{}}
	var warns []string
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, nil, fmt.Errorf("CRL %q (list %d): %w", file, i+1, err)
		}
		var signer *x509.Certificate
		for _, ca := range cas {
			if bytes.Equal(ca.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(ca) == nil {
				signer = ca
				break
			}
		}
		if signer == nil {
			return nil, nil, fmt.Errorf("CRL %q (list %d, issuer %q): not signed by any certificate of the client CA bundle "+
				"(a CRL of an intermediate CA needs that CA's certificate in the bundle)", file, i+1, crl.Issuer)
		}
		if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			warns = append(warns, fmt.Sprintf("CRL %q (issuer %q) is past its nextUpdate %s: refresh it (gateway pki crl)",
				file, crl.Issuer, crl.NextUpdate.UTC().Format(time.RFC3339)))
		}
		if !crl.NextUpdate.IsZero() && (rl.NextUpdate.IsZero() || crl.NextUpdate.Before(rl.NextUpdate)) {
			rl.NextUpdate = crl.NextUpdate
		}
		set := rl.set(string(crl.RawIssuer), signer)
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber == nil {
				continue
			}
			k := e.SerialNumber.Text(16)
			if _, dup := set.serials[k]; !dup {
				rl.Count++
			}
			set.serials[k] = e.RevocationTime
		}
	}
	return rl, warns, nil
}

// Load reads the files: f is a source of server credentials (see
// LoadServer).
func (f ServerFiles) Load(now time.Time) (*ServerState, error) { return LoadServer(f, now) }

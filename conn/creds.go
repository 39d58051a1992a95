package conn

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"
)

// ServerFiles names the files the gateway's TLS state is loaded from.
type ServerFiles struct {
	Cert string // certificate chain, PEM, leaf first
	Key  string // private key, PEM
	CA   string // bundle of CA certificates client certificates must chain to, PEM
	CRL  string // optional: one or more CRLs, PEM or DER
}

// ServerState is one immutable snapshot of the gateway's credentials. A
// reload loads a new one; handshakes in flight keep the one they started with.
type ServerState struct {
	Cert      tls.Certificate // with Leaf set
	ClientCAs *x509.CertPool
	CAs       []*x509.Certificate // the certificates of the CA bundle
	CRL       *RevocationList     // nil when no CRL is configured
	Warnings  []string            // things that load but need attention (a stale CRL, a certificate near expiry)
	LoadedAt  time.Time
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
func LoadServer(f ServerFiles, now time.Time) (*ServerState, error) {
	st := &ServerState{LoadedAt: now}
	cert, err := loadKeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	st.Cert = cert
	if now.After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("server certificate %q expired at %s", f.Cert, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if ExpiresSoon(cert.Leaf, now) {
		st.Warnings = append(st.Warnings, fmt.Sprintf("server certificate %q expires soon, at %s",
			f.Cert, cert.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	st.CAs, err = LoadCerts(f.CA)
	if err != nil {
		return nil, fmt.Errorf("client CA bundle: %w", err)
	}
	st.ClientCAs = x509.NewCertPool()
	for _, c := range st.CAs {
		if !c.IsCA {
			return nil, fmt.Errorf("client CA bundle %q: certificate %q is not a CA certificate", f.CA, c.Subject)
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
	return st, nil
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
	return cert, nil
}

// LoadCerts reads every certificate of a PEM file. A file without any, or
// with a block that does not parse, is an error naming the file.
func LoadCerts(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %w", err)
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%q: PEM block %d: %w", file, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%q: no PEM certificate found", file)
	}
	return certs, nil
}

// RevocationList is the set of revoked serial numbers of one or more CRLs,
// keyed by issuer. It is immutable and safe for concurrent use.
type RevocationList struct {
	revoked    map[string]map[string]time.Time // issuer raw subject -> serial (hex) -> revocation time
	NextUpdate time.Time                       // the earliest nextUpdate of the lists
	Count      int
}

// Revoked reports whether cert is listed as revoked by its issuer.
func (r *RevocationList) Revoked(cert *x509.Certificate) bool {
	if r == nil || cert.SerialNumber == nil {
		return false
	}
	_, ok := r.revoked[string(cert.RawIssuer)][cert.SerialNumber.Text(16)]
	return ok
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
	rl := &RevocationList{revoked: map[string]map[string]time.Time{}}
	var warns []string
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, nil, fmt.Errorf("CRL %q (list %d): %w", file, i+1, err)
		}
		signed := false
		for _, ca := range cas {
			if bytes.Equal(ca.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, nil, fmt.Errorf("CRL %q (list %d, issuer %q): not signed by any certificate of the client CA bundle", file, i+1, crl.Issuer)
		}
		if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			warns = append(warns, fmt.Sprintf("CRL %q (issuer %q) is past its nextUpdate %s: refresh it (gateway pki crl)",
				file, crl.Issuer, crl.NextUpdate.UTC().Format(time.RFC3339)))
		}
		if rl.NextUpdate.IsZero() || (!crl.NextUpdate.IsZero() && crl.NextUpdate.Before(rl.NextUpdate)) {
			rl.NextUpdate = crl.NextUpdate
		}
		m := rl.revoked[string(crl.RawIssuer)]
		if m == nil {
			m = map[string]time.Time{}
			rl.revoked[string(crl.RawIssuer)] = m
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil {
				m[e.SerialNumber.Text(16)] = e.RevocationTime
				rl.Count++
			}
		}
	}
	return rl, warns, nil
}

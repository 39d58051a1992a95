package enroll

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis-gw/portcullis/pki"
)

// Files of a Store.
const (
	FileCert  = "client.crt"  // the certificate and its chain
	FileKey   = "client.key"  // its key, 0600
	FileCA    = "ca.crt"      // the CA bundle given to login: the service's and the gateway's
	FileState = "enroll.json" // where the certificate renews from
)

// DefaultDir is the per-user directory of a login:
// $XDG_CONFIG_HOME/portcullis, or ~/.config/portcullis.
func DefaultDir() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "portcullis"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no XDG_CONFIG_HOME and no home directory: %w", err)
	}
	return filepath.Join(home, ".config", "portcullis"), nil
}

// Store is the directory a login writes and a renewal rewrites.
type Store struct{ Dir string }

// State is enroll.json: where the certificate came from.
type State struct {
	URL string `json:"url"`
	// TTL is the lifetime asked for at login ("" for the default), asked
	// again at each renewal.
	TTL string `json:"ttl,omitempty"`
}

// Paths of the files.
func (s Store) CertPath() string  { return filepath.Join(s.Dir, FileCert) }
func (s Store) KeyPath() string   { return filepath.Join(s.Dir, FileKey) }
func (s Store) CAPath() string    { return filepath.Join(s.Dir, FileCA) }
func (s Store) StatePath() string { return filepath.Join(s.Dir, FileState) }

// Exists reports whether the store holds a certificate and its key.
func (s Store) Exists() bool {
	_, e1 := os.Stat(s.CertPath())
	_, e2 := os.Stat(s.KeyPath())
	return e1 == nil && e2 == nil
}

// SaveLogin writes what a login obtained: the state, the CA bundle, and the
// key and certificate (see Save).
func (s Store) SaveLogin(st State, caPEM []byte, key crypto.Signer, certPEM []byte) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(s.StatePath(), append(data, '\n'), 0o600); err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(s.CAPath(), caPEM, 0o644); err != nil {
		return err
	}
	return s.Save(key, certPEM)
}

// Save replaces the key (0600) and the certificate, each atomically (a
// temporary file renamed over the old one), the key first: a reader sees
// the old pair, or the new key with the old certificate for an instant
// (which does not load, and a reader keeps what it had), then the new
// pair.
func (s Store) Save(key crypto.Signer, certPEM []byte) error {
	keyPEM, err := pki.EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(s.KeyPath(), keyPEM, 0o600); err != nil {
		return err
	}
	return pki.WriteFileAtomic(s.CertPath(), certPEM, 0o644)
}

// LoadState reads enroll.json.
func (s Store) LoadState() (State, error) {
	var st State
	data, err := os.ReadFile(s.StatePath())
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil || st.URL == "" {
		return st, fmt.Errorf("%s: %w: want {\"url\": \"https://...\"} (tunnel login writes it)", s.StatePath(), ErrMalformed)
	}
	return st, nil
}

// Leaf reads the certificate.
func (s Store) Leaf() (*x509.Certificate, error) {
	data, err := os.ReadFile(s.CertPath())
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.CertPath(), err)
	}
	return certs[0], nil
}

// TLSCertificate loads the pair.
func (s Store) TLSCertificate() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(s.CertPath(), s.KeyPath())
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// RenewAt is when a certificate is due for renewal: two thirds into its
// validity.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life * 2 / 3)
}

// IsNotExist reports whether err is about a missing file.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

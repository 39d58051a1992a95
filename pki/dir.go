package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File names inside a CA directory.
const (
	FileCACert   = "ca.crt"
	FileCAKey    = "ca.key"
	FileRootCert = "root.crt"
	FileRootKey  = "root.key"
	FileCRL      = "crl.pem"
	FileIndex    = "index.json"
)

// reservedNames may not be used as leaf names: their files belong to the CA.
var reservedNames = map[string]bool{"ca": true, "root": true, "crl": true, "index": true}

// InitOptions configures Init. The zero value creates a root CA with the
// defaults of CAOptions.
type InitOptions struct {
	// CA describes the issuing CA. With Intermediate, the root gets the
	// name CA.Name+" root" and the default root validity.
	CA CAOptions
	// Intermediate puts an intermediate CA (ca.crt) under a root
	// (root.crt): the root key can then be kept offline.
	Intermediate bool
	// Force overwrites existing CA files; without it Init fails with
	// ErrExists naming the first file found.
	Force bool
	// CRLValidity is how long each CRL written by Init and Revoke stays
	// valid; 0 means DefaultCRLValidity (7 days).
	CRLValidity time.Duration
}

// Dir is a CA stored in a directory; see the package documentation for the
// layout. Its methods are safe for concurrent use within one process; they
// re-read the index before changing it.
type Dir struct {
	path string
	ca   *CA
	mu   sync.Mutex
	ix   *Index
}

// Init creates a CA in dir (created with mode 0700 if missing): ca.crt,
// ca.key, with opts.Intermediate root.crt and root.key, an empty index.json
// and a first crl.pem. Without opts.Force it fails with ErrExists if any of
// these files exists, before writing anything.
func Init(dir string, opts InitOptions) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: CA directory is empty: give a path", ErrInvalidRequest)
	}
	if opts.CRLValidity < 0 {
		return nil, fmt.Errorf("%w: CRL validity %s: must be positive (0 means %s)", ErrInvalidRequest, opts.CRLValidity, DefaultCRLValidity)
	}
	if opts.CRLValidity == 0 {
		opts.CRLValidity = DefaultCRLValidity
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating CA directory: %w", err)
	}
	files := []string{FileCACert, FileCAKey, FileCRL, FileIndex, FileRootCert, FileRootKey}
	if !opts.Force {
		for _, f := range files {
			p := filepath.Join(dir, f)
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("%w: %s: refusing to overwrite an existing CA file (use force to replace the CA)", ErrExists, p)
			}
		}
	}
	var ca *CA
	if opts.Intermediate {
		rootOpts := opts.CA
		name := rootOpts.Name
		if name == "" {
			name = DefaultCAName
		}
		rootOpts.Name = name + " root"
		rootOpts.TTL = 0
		root, err := NewCA(rootOpts)
		if err != nil {
			return nil, fmt.Errorf("creating root CA: %w", err)
		}
		interOpts := opts.CA
		interOpts.Name = name
		ca, err = root.NewIntermediate(interOpts)
		if err != nil {
			return nil, fmt.Errorf("creating intermediate CA: %w", err)
		}
		if err := writeKey(filepath.Join(dir, FileRootKey), root.Key, opts.Force); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(dir, FileRootCert), root.RootPEM(), 0o644, opts.Force); err != nil {
			return nil, err
		}
	} else {
		var err error
		ca, err = NewCA(opts.CA)
		if err != nil {
			return nil, err
		}
		for _, f := range []string{FileRootCert, FileRootKey} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("removing the previous CA's %s: %w", f, err)
			}
		}
	}
	if err := writeKey(filepath.Join(dir, FileCAKey), ca.Key, opts.Force); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, FileCACert), EncodeCertsPEM(ca.Cert), 0o644, opts.Force); err != nil {
		return nil, err
	}
	d := &Dir{path: dir, ca: ca, ix: &Index{Version: indexVersion, CRLValidity: opts.CRLValidity.String(), Certificates: []Record{}}}
	if err := d.saveIndex(opts.Force); err != nil {
		return nil, err
	}
	if _, err := d.writeCRL(0, opts.Force); err != nil {
		return nil, err
	}
	return d, nil
}

// Open loads the CA kept in dir by Init. It fails, wrapping ErrNotCADir,
// when ca.crt, ca.key or index.json is missing, the key does not match the
// certificate, or an intermediate ca.crt is not signed by root.crt.
func Open(dir string) (*Dir, error) {
	notCA := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s (create one with init)", ErrNotCADir, dir, fmt.Sprintf(format, args...))
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, FileCACert))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notCA("no %s", FileCACert)
	} else if err != nil {
		return nil, fmt.Errorf("reading CA certificate: %w", err)
	}
	certs, err := ParseCertsPEM(certPEM)
	if err != nil {
		return nil, notCA("%s: %v", FileCACert, err)
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, notCA("%s is not a CA certificate", FileCACert)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, FileCAKey))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notCA("no %s", FileCAKey)
	} else if err != nil {
		return nil, fmt.Errorf("reading CA key: %w", err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, notCA("%s: %v", FileCAKey, err)
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, notCA("%s does not belong to %s (the files may come from different CAs)", FileCAKey, FileCACert)
	}
	ca := &CA{Cert: cert, Key: key}
	if cert.CheckSignatureFrom(cert) != nil {
		rootPEM, err := os.ReadFile(filepath.Join(dir, FileRootCert))
		if err != nil {
			return nil, notCA("%s is an intermediate but %s cannot be read: %v", FileCACert, FileRootCert, err)
		}
		roots, err := ParseCertsPEM(rootPEM)
		if err != nil {
			return nil, notCA("%s: %v", FileRootCert, err)
		}
		if err := cert.CheckSignatureFrom(roots[0]); err != nil {
			return nil, notCA("%s is not signed by %s: %v", FileCACert, FileRootCert, err)
		}
		ca.Root = roots[0]
	}
	data, err := os.ReadFile(filepath.Join(dir, FileIndex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notCA("no %s", FileIndex)
	} else if err != nil {
		return nil, fmt.Errorf("reading CA index: %w", err)
	}
	ix, err := ParseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileIndex), err)
	}
	return &Dir{path: dir, ca: ca, ix: ix}, nil
}

// Path returns the directory.
func (d *Dir) Path() string { return d.path }

// CA returns the issuing CA (ca.crt and ca.key).
func (d *Dir) CA() *CA { return d.ca }

// TrustAnchorPath returns the file verifiers must trust: root.crt when the
// directory has an intermediate, ca.crt otherwise.
func (d *Dir) TrustAnchorPath() string {
	if d.ca.IsRoot() {
		return filepath.Join(d.path, FileCACert)
	}
	return filepath.Join(d.path, FileRootCert)
}

// CRLPath returns the path of crl.pem.
func (d *Dir) CRLPath() string { return filepath.Join(d.path, FileCRL) }

// Records returns a copy of the index's records, oldest first, as of the
// last read.
func (d *Dir) Records() []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Record, len(d.ix.Certificates))
	copy(out, d.ix.Certificates)
	return out
}

// CheckName validates a leaf name used as a file stem in a Dir: 1 to 64
// letters, digits, '.', '_' or '-', not starting with '.' or '-', and not
// one of the CA's own names (ca, root, crl, index).
func CheckName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: name %q: %s (accepted: letters, digits, '.', '_', '-', such as web-01 or alice)", ErrInvalidRequest, name, why)
	}
	if name == "" {
		return bad("empty: a name is needed for the file names NAME.crt and NAME.key")
	}
	if len(name) > 64 {
		return bad("longer than 64 bytes")
	}
	if name[0] == '.' || name[0] == '-' {
		return bad("starts with '.' or '-'")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad(fmt.Sprintf("has the character %q", c))
		}
	}
	if reservedNames[name] {
		return bad("reserved for the CA's own files")
	}
	return nil
}

// Issue issues a leaf for req (req.Name is required and is the file stem)
// and writes NAME.key (0600) and NAME.crt (0644, leaf then chain). Without
// force it fails with ErrExists, before generating anything, if either file
// exists. The certificate is added to the index.
func (d *Dir) Issue(req Request, force bool) (certPath, keyPath string, err error) {
	if err := CheckName(req.Name); err != nil {
		return "", "", err
	}
	certPath = filepath.Join(d.path, req.Name+".crt")
	keyPath = filepath.Join(d.path, req.Name+".key")
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return "", "", fmt.Errorf("%w: %s: refusing to overwrite (use force, or choose another name)", ErrExists, p)
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reloadIndex(); err != nil {
		return "", "", err
	}
	iss, err := d.ca.Issue(req)
	if err != nil {
		return "", "", err
	}
	if err := writeKey(keyPath, iss.Key, force); err != nil {
		return "", "", err
	}
	if err := writeFile(certPath, iss.CertPEM(), 0o644, force); err != nil {
		return "", "", err
	}
	d.ix.Certificates = append(d.ix.Certificates, recordFor(iss.Cert, req.Name, req.Kind))
	if err := d.saveIndex(true); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// Sign signs a PEM (or DER) CSR as CA.SignCSR does and writes the
// certificate (leaf then chain) to NAME.crt in the directory, where NAME is
// req.Name or else the CSR's common name. See SignTo.
func (d *Dir) Sign(csrPEM []byte, req Request, force bool) (certPath string, err error) {
	return d.SignTo(csrPEM, req, "", force)
}

// SignTo is Sign writing to out instead; "" means NAME.crt in the directory.
// Without force it fails with ErrExists if the output file exists. The
// certificate is added to the index.
func (d *Dir) SignTo(csrPEM []byte, req Request, out string, force bool) (certPath string, err error) {
	csr, err := ParseCSRPEM(csrPEM)
	if err != nil {
		return "", err
	}
	if req.Name == "" {
		req.Name = csr.Subject.CommonName
	}
	if out == "" {
		if err := CheckName(req.Name); err != nil {
			return "", fmt.Errorf("the certificate's file name comes from the name (or the CSR's common name): %w", err)
		}
		out = filepath.Join(d.path, req.Name+".crt")
	}
	if !force {
		if _, err := os.Lstat(out); err == nil {
			return "", fmt.Errorf("%w: %s: refusing to overwrite (use force, or choose another output)", ErrExists, out)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reloadIndex(); err != nil {
		return "", err
	}
	cert, err := d.ca.SignCSR(csr, req)
	if err != nil {
		return "", err
	}
	pemData := EncodeCertsPEM(append([]*x509.Certificate{cert}, d.ca.issuedChain()...)...)
	if err := writeFile(out, pemData, 0o644, force); err != nil {
		return "", err
	}
	d.ix.Certificates = append(d.ix.Certificates, recordFor(cert, cert.Subject.CommonName, req.Kind))
	if err := d.saveIndex(true); err != nil {
		return "", err
	}
	return out, nil
}

// Revoke marks the certificate with the given serial revoked now for the
// RFC 5280 reason code (see ParseReason) and rewrites crl.pem. It fails with
// ErrUnknownSerial if the index has no such certificate, and with
// ErrInvalidRequest if it is already revoked.
func (d *Dir) Revoke(serial *big.Int, reason int) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("%w: serial %v: want a positive number", ErrInvalidRequest, serial)
	}
	if err := validReason(reason); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reloadIndex(); err != nil {
		return err
	}
	return d.revokeLocked(serial, reason)
}

func (d *Dir) revokeLocked(serial *big.Int, reason int) error {
	r := d.ix.find(serial)
	if r == nil {
		return fmt.Errorf("%w: serial %s (decimal %s) is not in %s", ErrUnknownSerial, FormatSerial(serial), serial, filepath.Join(d.path, FileIndex))
	}
	if r.RevokedAt != nil {
		return fmt.Errorf("%w: certificate %q (serial %s) was already revoked at %s (%s)", ErrInvalidRequest, r.Name, r.Serial, r.RevokedAt.Format(time.RFC3339), r.Reason)
	}
	now := time.Now().UTC().Truncate(time.Second)
	r.RevokedAt = &now
	r.Reason = ReasonName(reason)
	// The CRL first, then the index (writeCRL saves it, with the new
	// revocation and CRL number, in one write): each file is replaced
	// atomically, and a crash between the two leaves the certificate
	// refused by the CRL, never recorded revoked without being in it.
	if _, err := d.writeCRL(0, true); err != nil {
		_ = d.reloadIndex() // forget the revocation not written
		return err
	}
	return nil
}

// RevokeCert revokes cert, which must have been signed by this CA. A
// certificate signed by the CA but missing from the index (issued elsewhere
// with the same CA key) is added to it first.
func (d *Dir) RevokeCert(cert *x509.Certificate, reason int) error {
	if err := validReason(reason); err != nil {
		return err
	}
	if err := cert.CheckSignatureFrom(d.ca.Cert); err != nil {
		return fmt.Errorf("%w: certificate %q (serial %s) was not signed by this CA (%s): %w", ErrUnknownSerial, cert.Subject.CommonName, SerialHex(cert), d.ca.Cert.Subject.CommonName, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reloadIndex(); err != nil {
		return err
	}
	if d.ix.find(cert.SerialNumber) == nil {
		d.ix.Certificates = append(d.ix.Certificates, recordFor(cert, cert.Subject.CommonName, kindOf(cert)))
	}
	return d.revokeLocked(cert.SerialNumber, reason)
}

// WriteCRL rewrites crl.pem from the index with the next CRL number, valid
// from now for validity (0 means the validity given to Init). The same
// index always yields the same revoked entries.
func (d *Dir) WriteCRL(validity time.Duration) (path string, err error) {
	if validity < 0 {
		return "", fmt.Errorf("%w: CRL validity %s: must be positive", ErrInvalidRequest, validity)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reloadIndex(); err != nil {
		return "", err
	}
	return d.writeCRL(validity, true)
}

func (d *Dir) writeCRL(validity time.Duration, force bool) (string, error) {
	if validity == 0 {
		validity = d.ix.crlValidity()
	}
	entries, err := d.ix.revokedEntries()
	if err != nil {
		return "", err
	}
	number := d.ix.CRLNumber + 1
	now := time.Now().UTC().Truncate(time.Second)
	der, err := d.ca.CRL(entries, new(big.Int).SetUint64(number), now, now.Add(validity))
	if err != nil {
		return "", err
	}
	p := d.CRLPath()
	if err := writeFile(p, EncodeCRLPEM(der), 0o644, force); err != nil {
		return "", err
	}
	d.ix.CRLNumber = number
	if err := d.saveIndex(true); err != nil {
		return "", err
	}
	return p, nil
}

func (d *Dir) reloadIndex() error {
	data, err := os.ReadFile(filepath.Join(d.path, FileIndex))
	if err != nil {
		return fmt.Errorf("reading CA index: %w", err)
	}
	ix, err := ParseIndex(data)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(d.path, FileIndex), err)
	}
	d.ix = ix
	return nil
}

func (d *Dir) saveIndex(force bool) error {
	data, err := d.ix.Marshal()
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(d.path, FileIndex), data, 0o644, force)
}

func writeKey(path string, k crypto.Signer, force bool) error {
	data, err := EncodeKeyPEM(k)
	if err != nil {
		return err
	}
	return writeFile(path, data, 0o600, force)
}

// WriteFileAtomic writes data to path atomically, replacing what is
// there: a temporary file in the same directory with mode perm, synced,
// then renamed over path. A reader sees the old file or the new one, never
// a part.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, true)
}

// writeFile writes data to path atomically: a temporary file in the same
// directory with the final mode, synced, then renamed over path (force) or
// hard-linked to path, which fails if path exists (no force).
func writeFile(path string, data []byte, perm os.FileMode, force bool) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if force {
		if err = os.Rename(tmp, path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	if err = os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s: refusing to overwrite (use force)", ErrExists, path)
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	os.Remove(tmp)
	return nil
}

// Certify signs csr as CA.SignCSR does and records the certificate in the
// index, without writing a certificate file: for a service that hands the
// certificate to its requester. The certificate is returned only once the
// index holding it is written (atomically); on any error nothing was
// recorded. chain is what the certificate is presented with (see Issued).
func (d *Dir) Certify(csr *x509.CertificateRequest, req Request) (cert *x509.Certificate, chain []*x509.Certificate, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reloadIndex(); err != nil {
		return nil, nil, err
	}
	cert, err = d.ca.SignCSR(csr, req)
	if err != nil {
		return nil, nil, err
	}
	name := req.Name
	if name == "" {
		name = cert.Subject.CommonName
	}
	d.ix.Certificates = append(d.ix.Certificates, recordFor(cert, name, req.Kind))
	if err := d.saveIndex(true); err != nil {
		d.ix.Certificates = d.ix.Certificates[:len(d.ix.Certificates)-1]
		return nil, nil, err
	}
	return cert, d.ca.issuedChain(), nil
}

// Lookup re-reads the index and returns the record of serial; ok is false
// when the CA has no record of it.
func (d *Dir) Lookup(serial *big.Int) (rec Record, ok bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reloadIndex(); err != nil {
		return Record{}, false, err
	}
	r := d.ix.find(serial)
	if r == nil {
		return Record{}, false, nil
	}
	return *r, true, nil
}

// Reload re-reads the index, so that Records reflects changes made by
// another process (gateway pki revoke).
func (d *Dir) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reloadIndex()
}

// CRLDER returns the CRL as last written to crl.pem, DER-encoded.
func (d *Dir) CRLDER() ([]byte, error) {
	data, err := os.ReadFile(d.CRLPath())
	if err != nil {
		return nil, fmt.Errorf("reading CRL: %w", err)
	}
	der, ok := pemOrDER(data, pemCRL)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds no X509 CRL block", ErrPEM, d.CRLPath())
	}
	return der, nil
}

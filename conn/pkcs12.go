package conn

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// ErrPKCS12Password is the error of a PKCS#12 bundle that the password
// does not open.
var ErrPKCS12Password = errors.New("wrong password")

// IsPKCS12 reports whether a certificate file is a PKCS#12 bundle (a .p12
// or .pfx file) rather than PEM: by its name ending in .p12 or .pfx, or
// else by its content, a DER PFX structure (SEQUENCE { INTEGER 3, ... }).
// A file that cannot be read is not one.
func IsPKCS12(file string) bool {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".p12", ".pfx":
		return true
	}
	data, err := os.ReadFile(file)
	return err == nil && isPKCS12Data(data)
}

// isPKCS12Data reports whether data is DER that starts like a PFX: a
// SEQUENCE whose first element is the INTEGER 3. (A DER certificate's
// first element is a SEQUENCE.)
func isPKCS12Data(data []byte) bool {
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(data, &outer); err != nil || outer.Tag != asn1.TagSequence || !outer.IsCompound {
		return false
	}
	var version int
	rest, err := asn1.Unmarshal(outer.Bytes, &version)
	return err == nil && version == 3 && len(rest) > 0
}

// ReadPassword returns the first line of a password file, without its line
// ending; "" for an empty name.
func ReadPassword(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading password file: %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r"))), nil
}

// loadPKCS12 reads a PKCS#12 bundle: its private key, the certificate of
// that key and the other certificates of the bundle (the chain), opened with
// the first line of passFile (no file: the empty password). Errors name the
// file and say what is wrong: a wrong password, no private key, no
// certificate for the key.
func loadPKCS12(file, passFile string) (tls.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading PKCS#12 bundle: %w", err)
	}
	password, err := ReadPassword(passFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, first, rest, err := pkcs12.DecodeChain(data, password)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		if passFile == "" {
			return tls.Certificate{}, fmt.Errorf("PKCS#12 bundle %q: %w: it is protected by a password and no password file was given", file, ErrPKCS12Password)
		}
		return tls.Certificate{}, fmt.Errorf("PKCS#12 bundle %q: %w (the first line of %q)", file, ErrPKCS12Password, passFile)
	case err != nil && strings.Contains(err.Error(), "private key missing"):
		return tls.Certificate{}, fmt.Errorf("PKCS#12 bundle %q holds no private key: export it with its key (openssl pkcs12 -export -inkey KEY)", file)
	case err != nil && strings.Contains(err.Error(), "certificate missing"):
		return tls.Certificate{}, fmt.Errorf("PKCS#12 bundle %q holds no certificate", file)
	case err != nil:
		return tls.Certificate{}, fmt.Errorf("PKCS#12 bundle %q: %w", file, err)
	}
	// The leaf is the certificate of the key, wherever it sits in the bundle.
	certs := append([]*x509.Certificate{first}, rest...)
	pub, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return tls.Certificate{}, fmt.Errorf("PKCS#12 bundle %q: unsupported private key type %T", file, key)
	}
	leaf := -1
	for i, c := range certs {
		if k, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(pub.Public()) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return tls.Certificate{}, fmt.Errorf("PKCS#12 bundle %q: no certificate in it belongs to its private key", file)
	}
	out := tls.Certificate{PrivateKey: key, Leaf: certs[leaf], Certificate: [][]byte{certs[leaf].Raw}}
	for i, c := range certs {
		if i != leaf && !c.Equal(certs[leaf]) {
			out.Certificate = append(out.Certificate, c.Raw)
		}
	}
	return out, nil
}

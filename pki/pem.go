package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
)

// PEM block types.
const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
	pemCSR         = "CERTIFICATE REQUEST"
	pemCRL         = "X509 CRL"
)

// EncodeCertsPEM returns the certificates as consecutive "CERTIFICATE" PEM
// blocks, in the order given. Nil entries are skipped.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		if c == nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: pemCertificate, Bytes: c.Raw})
	}
	return b.Bytes()
}

// EncodeKeyPEM returns k as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodeKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding private key of type %T: %w", ErrKeyType, k, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// EncodeCRLPEM returns a DER CRL as an "X509 CRL" PEM block.
func EncodeCRLPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCRL, Bytes: der})
}

// ParseCertsPEM parses every "CERTIFICATE" block in data, in order, and
// ignores blocks of other types and text between blocks. It fails, wrapping
// ErrPEM, when there is no certificate or one does not parse.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d: certificate does not parse: %w", ErrPEM, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block found (expected PEM: -----BEGIN CERTIFICATE-----)", ErrPEM)
	}
	return certs, nil
}

// ParseKeyPEM parses the first private key block in data: PKCS#8 "PRIVATE
// KEY", PKCS#1 "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY". Errors wrap
// ErrPEM or ErrKeyType.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%w: no private key block found (expected PEM: -----BEGIN PRIVATE KEY-----)", ErrPEM)
		}
		var k any
		var err error
		switch block.Type {
		case pemPrivateKey:
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s block does not parse: %w", ErrPEM, block.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: private key of type %T cannot sign", ErrKeyType, k)
		}
		if err := checkPublicKey(s.Public()); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// ParseCSRPEM parses the first "CERTIFICATE REQUEST" block in data (also
// accepting the legacy "NEW CERTIFICATE REQUEST"), or DER when data is not
// PEM. It does not check the signature (SignCSR does). Errors wrap ErrCSR.
func ParseCSRPEM(data []byte) (*x509.CertificateRequest, error) {
	der, ok := pemOrDER(data, pemCSR, "NEW CERTIFICATE REQUEST")
	if !ok {
		return nil, fmt.Errorf("%w: no CERTIFICATE REQUEST block found (expected PEM: -----BEGIN CERTIFICATE REQUEST-----)", ErrCSR)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: does not parse: %w", ErrCSR, err)
	}
	return csr, nil
}

// ParseCRL parses a CRL given as PEM ("X509 CRL") or DER. Errors wrap ErrPEM.
func ParseCRL(data []byte) (*x509.RevocationList, error) {
	der, ok := pemOrDER(data, pemCRL)
	if !ok {
		return nil, fmt.Errorf("%w: no X509 CRL block found (expected PEM: -----BEGIN X509 CRL----- or DER)", ErrPEM)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("%w: CRL does not parse: %w", ErrPEM, err)
	}
	return crl, nil
}

// pemOrDER returns the bytes of the first PEM block of one of the types in
// data, or data itself when it is not PEM (taken as DER); ok is false for
// PEM input without such a block.
func pemOrDER(data []byte, types ...string) (der []byte, ok bool) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return data, true
	}
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, false
		}
		if slices.Contains(types, block.Type) {
			return block.Bytes, true
		}
	}
}

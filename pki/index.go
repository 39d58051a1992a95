package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// indexVersion is the only index format version this package reads and writes.
const indexVersion = 1

// Index is the record a Dir keeps of what its CA issued and revoked, stored
// as index.json. It is enough to rebuild the CRL at any time.
type Index struct {
	// Version is the format version, 1.
	Version int `json:"version"`
	// CRLNumber is the number of the last CRL written; the next one gets
	// CRLNumber+1.
	CRLNumber uint64 `json:"crl_number"`
	// CRLValidity is how long a CRL written by Revoke stays valid, as a Go
	// duration ("168h0m0s").
	CRLValidity string `json:"crl_validity"`
	// Certificates lists every leaf the CA issued, oldest first.
	Certificates []Record `json:"certificates"`
}

// Record describes one issued certificate.
type Record struct {
	// Serial is the serial number as FormatSerial writes it (uppercase
	// hex, an even number of digits). ParseIndex also reads the lowercase
	// form without the leading zero that older versions wrote, and
	// rewrites it in this form.
	Serial      string    `json:"serial"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"` // "server" or "client"
	DNS         []string  `json:"dns,omitempty"`
	IPs         []string  `json:"ips,omitempty"`
	URIs        []string  `json:"uris,omitempty"`
	Emails      []string  `json:"emails,omitempty"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Fingerprint string    `json:"sha256"`
	// RevokedAt is the revocation time; nil while the certificate is valid.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Reason is the RFC 5280 reason name, set when revoked.
	Reason string `json:"reason,omitempty"`
}

// SerialNumber parses Serial.
func (r *Record) SerialNumber() (*big.Int, error) {
	return parseSerialHex("serial", r.Serial)
}

func parseSerialHex(field, s string) (*big.Int, error) {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 || strings.ContainsAny(s, "+-_") {
		return nil, fmt.Errorf("%w: %s %q: want a positive hex number", ErrIndex, field, s)
	}
	return n, nil
}

// recordFor builds the index record of an issued leaf.
func recordFor(cert *x509.Certificate, name string, kind Kind) Record {
	r := Record{
		Serial:      FormatSerial(cert.SerialNumber),
		Name:        name,
		Kind:        kind.String(),
		DNS:         slices.Clone(cert.DNSNames),
		Emails:      slices.Clone(cert.EmailAddresses),
		NotBefore:   cert.NotBefore.UTC(),
		NotAfter:    cert.NotAfter.UTC(),
		Fingerprint: Fingerprint(cert),
	}
	for _, ip := range cert.IPAddresses {
		r.IPs = append(r.IPs, ip.String())
	}
	for _, u := range cert.URIs {
		r.URIs = append(r.URIs, u.String())
	}
	return r
}

// kindOf guesses the Kind of a certificate from its extended key usage.
func kindOf(cert *x509.Certificate) Kind {
	if slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return Server
	}
	return Client
}

// ParseIndex decodes and validates an index: known version, unique positive
// hex serials, known kinds and reasons, a parseable CRL validity. Unknown
// JSON fields are rejected. Errors wrap ErrIndex and name the entry.
func ParseIndex(data []byte) (*Index, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ix Index
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("%w: decoding JSON: %w", ErrIndex, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrIndex)
	}
	if ix.Version != indexVersion {
		return nil, fmt.Errorf("%w: version %d: this program reads version %d", ErrIndex, ix.Version, indexVersion)
	}
	if ix.CRLValidity != "" {
		v, err := time.ParseDuration(ix.CRLValidity)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%w: crl_validity %q: want a positive Go duration such as 168h", ErrIndex, ix.CRLValidity)
		}
	}
	seen := make(map[string]bool, len(ix.Certificates))
	for i := range ix.Certificates {
		r := &ix.Certificates[i]
		n, err := r.SerialNumber()
		if err != nil {
			return nil, fmt.Errorf("certificate %d (%q): %w", i, r.Name, err)
		}
		r.Serial = FormatSerial(n)
		if seen[r.Serial] {
			return nil, fmt.Errorf("%w: certificate %d (%q): serial %s appears twice", ErrIndex, i, r.Name, r.Serial)
		}
		seen[r.Serial] = true
		if _, err := ParseKind(r.Kind); err != nil {
			return nil, fmt.Errorf("%w: certificate %d (%q): kind %q: accepted: server, client", ErrIndex, i, r.Name, r.Kind)
		}
		if r.RevokedAt == nil && r.Reason != "" {
			return nil, fmt.Errorf("%w: certificate %d (%q): reason %q without revoked_at", ErrIndex, i, r.Name, r.Reason)
		}
		if r.RevokedAt != nil {
			if _, err := ParseReason(r.Reason); err != nil {
				return nil, fmt.Errorf("%w: certificate %d (%q): %w", ErrIndex, i, r.Name, err)
			}
		}
	}
	return &ix, nil
}

// Marshal encodes the index as indented JSON with a trailing newline.
func (ix *Index) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding index: %w", err)
	}
	return append(b, '\n'), nil
}

// find returns the record with the given serial, or nil.
func (ix *Index) find(serial *big.Int) *Record {
	s := FormatSerial(serial)
	for i := range ix.Certificates {
		if ix.Certificates[i].Serial == s {
			return &ix.Certificates[i]
		}
	}
	return nil
}

// crlValidity returns the stored CRL validity or the default.
func (ix *Index) crlValidity() time.Duration {
	if v, err := time.ParseDuration(ix.CRLValidity); err == nil && v > 0 {
		return v
	}
	return DefaultCRLValidity
}

// revokedEntries lists the revoked certificates as CRL entries, in index
// order.
func (ix *Index) revokedEntries() ([]x509.RevocationListEntry, error) {
	var out []x509.RevocationListEntry
	for i := range ix.Certificates {
		r := &ix.Certificates[i]
		if r.RevokedAt == nil {
			continue
		}
		n, err := r.SerialNumber()
		if err != nil {
			return nil, err
		}
		code, err := ParseReason(r.Reason)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %q: %w", ErrIndex, r.Name, err)
		}
		out = append(out, x509.RevocationListEntry{SerialNumber: n, RevocationTime: *r.RevokedAt, ReasonCode: code})
	}
	return out, nil
}

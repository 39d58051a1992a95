package enroll

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portcullis-gw/portcullis/pki"
)

// Magic is the first line of every signed request: the format and its
// version.
const Magic = "portcullis-enroll-request v1"

// MaxRequestSize bounds a canonical request (a CSR is a few hundred bytes;
// a certificate to revoke a few more).
const MaxRequestSize = 32 << 10

// Operations a signed request may ask for. Each is accepted by one
// endpoint only, so that a request signed for one cannot be replayed at
// another.
const (
	OpIssue  = "issue"  // POST /v1/certificates, by a user
	OpRevoke = "revoke" // POST /v1/revocations, by an admin
	OpList   = "list"   // GET /v1/certificates, by an admin
)

// Request is a signed request, as its signer signed it: the canonical text
// that Marshal writes and ParseRequest reads. Lines are "key: value", in
// this order, ending in "\n"; the fields an operation does not use are
// absent:
//
//	portcullis-enroll-request v1
//	op: issue
//	time: 2026-12-02T11:26:15Z
//	nonce: 32 hex digits (16 random bytes)
//	ttl: 18h0m0s            issue: the lifetime asked for; 0 for the default
//	csr: base64 of the DER  issue: the certificate signing request
//	serial: 5F3A0C...       revoke: the serial to revoke (or cert)
//	cert: base64 of the DER revoke: the certificate to revoke (or serial)
//	reason: keyCompromise   revoke: an RFC 5280 reason name
//
// The signature covers these bytes exactly: the CSR's DER, the TTL, the
// time and the nonce are all inside what was signed.
type Request struct {
	Op     string
	Time   time.Time // UTC, whole seconds
	Nonce  string    // lowercase hex
	TTL    time.Duration
	CSR    []byte // DER
	Serial string // uppercase hex as pki.FormatSerial writes it
	Cert   []byte // DER
	Reason string
}

// nonceBytes is the size of a nonce.
const nonceBytes = 16

// NewNonce returns a random nonce.
func NewNonce() string {
	b := make([]byte, nonceBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// field is one line of the canonical form.
type field struct {
	key string
	ops []string // the operations that have it
	opt bool     // optional for those operations
}

var fields = []field{
	{key: "op"},
	{key: "time"},
	{key: "nonce"},
	{key: "ttl", ops: []string{OpIssue}},
	{key: "csr", ops: []string{OpIssue}},
	{key: "serial", ops: []string{OpRevoke}, opt: true},
	{key: "cert", ops: []string{OpRevoke}, opt: true},
	{key: "reason", ops: []string{OpRevoke}},
}

// Marshal writes the canonical form. It does not validate r; ParseRequest
// of the result does.
func (r *Request) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(Magic + "\n")
	line := func(k, v string) { b.WriteString(k + ": " + v + "\n") }
	line("op", r.Op)
	line("time", r.Time.UTC().Format(time.RFC3339))
	line("nonce", r.Nonce)
	switch r.Op {
	case OpIssue:
		line("ttl", r.TTL.String())
		line("csr", base64.StdEncoding.EncodeToString(r.CSR))
	case OpRevoke:
		if r.Serial != "" {
			line("serial", r.Serial)
		}
		if len(r.Cert) > 0 {
			line("cert", base64.StdEncoding.EncodeToString(r.Cert))
		}
		line("reason", r.Reason)
	}
	return b.Bytes()
}

// ParseRequest reads the canonical form strictly: the magic line, the
// fields of its operation in order, each once, nothing else, no blank or
// unterminated line, valid values. It checks the form only: not the time
// window, the nonce's freshness, the CSR's signature or the serial's
// existence. Errors wrap ErrMalformed and name the line.
func ParseRequest(data []byte) (*Request, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxRequestSize {
		return nil, bad("request is %d bytes; at most %d", len(data), MaxRequestSize)
	}
	if !utf8.Valid(data) {
		return nil, bad("request is not UTF-8 text")
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, bad("request does not end with a newline")
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	if lines[0] != Magic {
		return nil, bad("first line %q: want %q", clip(lines[0]), Magic)
	}
	r := &Request{}
	vals := map[string]string{}
	next := 0 // index in fields of the next key allowed
	for i, l := range lines[1:] {
		n := i + 2
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			return nil, bad("line %d %q: want \"key: value\"", n, clip(l))
		}
		j := next
		for j < len(fields) && fields[j].key != k {
			j++
		}
		if j == len(fields) {
			if _, seen := vals[k]; seen {
				return nil, bad("line %d: %q given twice", n, k)
			}
			if known(k) {
				return nil, bad("line %d: %q out of order (order: op, time, nonce, ttl, csr, serial, cert, reason)", n, k)
			}
			return nil, bad("line %d: unknown key %q", n, clip(k))
		}
		if v == "" || strings.TrimSpace(v) != v {
			return nil, bad("line %d: %s: empty or with blanks around it", n, k)
		}
		vals[k] = v
		next = j + 1
	}
	r.Op = vals["op"]
	switch r.Op {
	case OpIssue, OpRevoke, OpList:
	case "":
		return nil, bad("no op line")
	default:
		return nil, bad("op %q: accepted: issue, revoke, list", clip(r.Op))
	}
	for _, f := range fields[1:] {
		_, has := vals[f.key]
		wanted := f.ops == nil || contains(f.ops, r.Op)
		switch {
		case has && !wanted:
			return nil, bad("%s: not a field of op %s", f.key, r.Op)
		case !has && wanted && !f.opt:
			return nil, bad("op %s needs a %s line", r.Op, f.key)
		}
	}
	t, err := time.Parse(time.RFC3339, vals["time"])
	if err != nil || t.Format(time.RFC3339) != vals["time"] || t.Location() != time.UTC {
		return nil, bad("time %q: want RFC 3339 in UTC, whole seconds, e.g. 2026-12-02T11:26:15Z", clip(vals["time"]))
	}
	r.Time = t
	r.Nonce = vals["nonce"]
	if nb, err := hex.DecodeString(r.Nonce); err != nil || len(nb) != nonceBytes || strings.ToLower(r.Nonce) != r.Nonce {
		return nil, bad("nonce %q: want %d lowercase hex digits", clip(r.Nonce), 2*nonceBytes)
	}
	switch r.Op {
	case OpIssue:
		d, err := time.ParseDuration(vals["ttl"])
		if err != nil || d < 0 || d.String() != vals["ttl"] {
			return nil, bad("ttl %q: want a Go duration as Go writes it, such as 18h0m0s, or 0s for the default", clip(vals["ttl"]))
		}
		r.TTL = d
		if r.CSR, err = decodeDER("csr", vals["csr"]); err != nil {
			return nil, err
		}
	case OpRevoke:
		if (vals["serial"] == "") == (vals["cert"] == "") {
			return nil, bad("op revoke needs exactly one of serial and cert")
		}
		if s := vals["serial"]; s != "" {
			n, err := pki.ParseSerialHex(s)
			if err != nil || pki.FormatSerial(n) != s {
				return nil, bad("serial %q: want uppercase hex of an even length, such as 5F3A0C", clip(s))
			}
			r.Serial = pki.FormatSerial(n)
		}
		if c := vals["cert"]; c != "" {
			if r.Cert, err = decodeDER("cert", c); err != nil {
				return nil, err
			}
		}
		if _, err := pki.ParseReason(vals["reason"]); err != nil {
			return nil, bad("reason %q: %v", clip(vals["reason"]), err)
		}
		r.Reason = vals["reason"]
	}
	return r, nil
}

func decodeDER(key, v string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: %s: not standard base64 of DER bytes", ErrMalformed, key)
	}
	return b, nil
}

func known(k string) bool {
	for _, f := range fields {
		if f.key == k {
			return true
		}
	}
	return false
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "..."
	}
	return s
}

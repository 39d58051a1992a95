package enroll

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrMalformed is wrapped by errors about the form of a request, a
// keyring mapping or an answer.
var ErrMalformed = errors.New("malformed")

// Code names why the service refused a request. Each refusal has its own
// code, in the JSON error and in the audit event, so that a client (or a
// person reading the log) can tell a replay from a tampered request from
// a stranger's key.
type Code string

// The refusals.
const (
	CodeBadRequest     Code = "bad_request"           // the JSON or the signed request does not parse
	CodeWrongOperation Code = "wrong_operation"       // signed for another endpoint
	CodeTimestamp      Code = "timestamp_skew"        // time outside the accepted window
	CodeNonceReplayed  Code = "nonce_replayed"        // this nonce was seen within the window
	CodeUnknownSigner  Code = "signer_not_in_keyring" // the signing key is not in the keyring the endpoint uses
	CodeBadSignature   Code = "signature_mismatch"    // signed by a known key, but the bytes changed since
	CodeKeyRevoked     Code = "key_revoked"           // the user's or signer's OpenPGP key is revoked in the keyring
	CodeKeyExpired     Code = "key_expired"           // the user's or signer's OpenPGP key has expired in the keyring
	CodeSigExpired     Code = "signature_expired"     // the signature (or the key's self-signature) has expired
	CodeUnknownIssuer  Code = "issuer_not_signing"    // the keyring holds the issuer, but not as a key that may sign
	CodeBadCSR         Code = "csr_invalid"           // the CSR does not parse or its own signature does not verify
	CodeWeakKey        Code = "weak_key"              // RSA below 2048 bits, or an algorithm not certified
	CodeTTL            Code = "ttl_invalid"           // a lifetime below the minimum
	CodeUnmapped       Code = "user_not_mapped"       // the signer has no usable name
	CodeNoClientCert   Code = "client_certificate_required"
	CodeCertUnknown    Code = "certificate_unknown"      // not issued by this CA (not in its index)
	CodeNotEnrolled    Code = "certificate_not_enrolled" // of this CA, but not an identity the service issues (spiffe://ORG/user/NAME)
	CodeCertRevoked    Code = "certificate_revoked"
	CodeCertExpired    Code = "certificate_expired"
	CodeUserRemoved    Code = "user_removed" // renewal for a name no longer in the users keyring
	CodeAlreadyRevoked Code = "already_revoked"
	CodeNotFound       Code = "not_found"
	CodeMethod         Code = "method_not_allowed"
	CodeInternal       Code = "internal_error"
)

// Error is a refusal by the service, as the client receives it: the JSON
// body {"error": {"code": ..., "message": ...}} and the HTTP status.
type Error struct {
	Status  int    `json:"-"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("enrollment service refused (%d %s): %s: %s", e.Status, http.StatusText(e.Status), e.Code, e.Message)
	}
	return fmt.Sprintf("enrollment service refused: %s: %s", e.Code, e.Message)
}

// Is matches another *Error with the same code, so that
// errors.Is(err, &Error{Code: CodeCertRevoked}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// statusOf is the HTTP status of a code.
func statusOf(c Code) int {
	switch c {
	case CodeUnknownSigner, CodeBadSignature, CodeKeyRevoked, CodeKeyExpired, CodeSigExpired, CodeUnknownIssuer, CodeNoClientCert, CodeCertUnknown, CodeNotEnrolled, CodeCertRevoked, CodeCertExpired, CodeUserRemoved:
		return http.StatusForbidden
	case CodeTimestamp, CodeNonceReplayed:
		return http.StatusUnauthorized
	case CodeNotFound, CodeWrongOperation:
		if c == CodeNotFound {
			return http.StatusNotFound
		}
		return http.StatusBadRequest
	case CodeAlreadyRevoked:
		return http.StatusConflict
	case CodeMethod:
		return http.StatusMethodNotAllowed
	case CodeInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func refuse(c Code, format string, args ...any) *Error {
	return &Error{Status: statusOf(c), Code: c, Message: fmt.Sprintf(format, args...)}
}

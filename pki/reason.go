package pki

import (
	"fmt"
	"strconv"
	"strings"
)

// Revocation reason codes (RFC 5280, section 5.3.1). removeFromCRL (8) is
// for delta CRLs only and is not accepted.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
	ReasonPrivilegeWithdrawn   = 9
	ReasonAACompromise         = 10
)

var reasonNames = map[int]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonCertificateHold:      "certificateHold",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
	ReasonAACompromise:         "aACompromise",
}

// ReasonNames returns the accepted revocation reason names in code order, in
// a new slice the caller may change.
func ReasonNames() []string {
	return []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
		"superseded", "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise"}
}

// ReasonName returns the RFC 5280 name of a reason code, or "reason(N)".
func ReasonName(code int) string {
	if n, ok := reasonNames[code]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", code)
}

// ParseReason parses a revocation reason: an RFC 5280 name such as
// keyCompromise (any case, "-" and "_" ignored) or its decimal code. The
// empty string means unspecified. Errors wrap ErrInvalidRequest and list the
// accepted names.
func ParseReason(s string) (int, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return ReasonUnspecified, nil
	}
	if n, err := strconv.Atoi(t); err == nil {
		if _, ok := reasonNames[n]; ok {
			return n, nil
		}
	} else {
		norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(t))
		for code, name := range reasonNames {
			if strings.ToLower(name) == norm {
				return code, nil
			}
		}
	}
	return 0, valueErrorf(ErrInvalidRequest, "revocation reason %q: accepted: %s (or codes 0-6, 9, 10)", s, strings.Join(ReasonNames(), ", "))
}

func validReason(code int) error {
	if _, ok := reasonNames[code]; !ok {
		return fmt.Errorf("%w: revocation reason code %d: accepted: 0-6, 9, 10 (%s)", ErrInvalidRequest, code, strings.Join(ReasonNames(), ", "))
	}
	return nil
}

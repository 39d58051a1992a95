package pki

import (
	"fmt"
	"math/big"
	"strings"
)

// FormatSerial returns a serial number the way "openssl x509 -noout
// -serial" prints it: uppercase hex with an even number of digits, so
// "0A1B" rather than "a1b". This one form is used everywhere a serial is
// shown or stored: issue and show output, index.json, CRL summaries and the
// gateway's audit log. A nil n yields "".
func FormatSerial(n *big.Int) string {
	if n == nil {
		return ""
	}
	s := strings.ToUpper(n.Text(16))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// ParseSerialHex parses a positive serial number written in hex, in any
// case, with or without a "0x" prefix, leading zeros or colons between
// the bytes (5F:3A:0C): the forms openssl and this package print. Errors
// wrap ErrInvalidRequest.
func ParseSerialHex(s string) (*big.Int, error) {
	t := strings.TrimSpace(s)
	if u, ok := strings.CutPrefix(t, "0x"); ok {
		t = u
	} else if u, ok := strings.CutPrefix(t, "0X"); ok {
		t = u
	}
	t = strings.ReplaceAll(t, ":", "")
	n, ok := new(big.Int).SetString(t, 16)
	if t == "" || strings.ContainsAny(t, "+-") || !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("%w: serial %q: want a positive hex number such as 5F3A0C, 0x5f3a0c or 5F:3A:0C", ErrInvalidRequest, s)
	}
	return n, nil
}

// ResolveSerial parses a serial number given by a user, in hex as
// [ParseSerialHex] reads it or in decimal. A string of decimal digits only is
// read as decimal, unless only its hex reading is a serial that d issued.
// Errors wrap ErrInvalidRequest and show the accepted forms.
func (d *Dir) ResolveSerial(s string) (*big.Int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	bad := fmt.Errorf("%w: serial %q: accepted: hex (5F3A0C, 0x5f3a0c, 5F:3A:0C) or decimal", ErrInvalidRequest, s)
	hexN, hexErr := ParseSerialHex(t)
	if strings.HasPrefix(t, "0x") || strings.Contains(t, ":") || strings.ContainsAny(t, "abcdef") {
		if hexErr != nil {
			return nil, bad
		}
		return hexN, nil
	}
	decN, decOK := new(big.Int).SetString(t, 10)
	if !decOK || decN.Sign() <= 0 || strings.ContainsAny(t, "+-_") {
		return nil, bad
	}
	known := map[string]bool{}
	for _, r := range d.Records() {
		known[r.Serial] = true
	}
	if !known[FormatSerial(decN)] && hexErr == nil && known[FormatSerial(hexN)] {
		return hexN, nil
	}
	return decN, nil
}

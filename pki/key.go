package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// KeyType names a private key algorithm and size.
type KeyType string

// The key types this package generates and certifies. The empty KeyType means
// ECDSAP256 wherever a KeyType is accepted.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	RSA4096   KeyType = "rsa-4096"
	Ed25519   KeyType = "ed25519"
)

// KeyTypes returns every supported KeyType, default first, in a new slice
// the caller may change.
func KeyTypes() []KeyType {
	return []KeyType{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096, Ed25519}
}

// KeyTypeNames returns the accepted key type names, comma separated, default
// first: "ecdsa-p256, ecdsa-p384, ...".
func KeyTypeNames() string {
	kts := KeyTypes()
	names := make([]string, len(kts))
	for i, kt := range kts {
		names[i] = string(kt)
	}
	return strings.Join(names, ", ")
}

// ParseKeyType parses a key type name, ignoring case and surrounding space.
// The empty string yields ECDSAP256. The error wraps ErrKeyType and lists the
// accepted names.
func ParseKeyType(s string) (KeyType, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return ECDSAP256, nil
	}
	for _, kt := range KeyTypes() {
		if t == string(kt) {
			return kt, nil
		}
	}
	return "", valueErrorf(ErrKeyType, "key type %q: accepted: %s", s, KeyTypeNames())
}

// valid reports whether kt is a supported key type (the empty one included).
func (kt KeyType) normalize() (KeyType, error) {
	if kt == "" {
		return ECDSAP256, nil
	}
	for _, k := range KeyTypes() {
		if kt == k {
			return kt, nil
		}
	}
	return "", fmt.Errorf("%w: key type %q: accepted: %s", ErrKeyType, string(kt), KeyTypeNames())
}

// GenerateKey returns a new private key of type kt ("" means ECDSAP256),
// drawn from crypto/rand. The result is an *ecdsa.PrivateKey,
// *rsa.PrivateKey or ed25519.PrivateKey.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	kt, err := kt.normalize()
	if err != nil {
		return nil, err
	}
	var k crypto.Signer
	switch kt {
	case ECDSAP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		k, err = rsa.GenerateKey(rand.Reader, 4096)
	case Ed25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", kt, err)
	}
	return k, nil
}

// CheckPublicKey reports whether pub is a key this package certifies:
// ECDSA P-256, P-384 or P-521, RSA of 2048 bits or more, or Ed25519.
// Errors wrap ErrKeyType and name the key.
func CheckPublicKey(pub crypto.PublicKey) error { return checkPublicKey(pub) }

// checkPublicKey accepts the public key algorithms and sizes this package
// certifies: ECDSA P-256/P-384/P-521, RSA of at least 2048 bits, Ed25519.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("%w: ECDSA curve %s: accepted: P-256, P-384, P-521", ErrKeyType, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits: accepted: at least 2048 bits", ErrKeyType, k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("%w: public key of type %T: accepted: ECDSA, RSA, Ed25519", ErrKeyType, pub)
	}
}

// keyDescription names a public key's algorithm and size, for Describe.
func keyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", pub)
	}
}

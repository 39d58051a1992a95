package enroll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// armorBody decodes an ASCII-armored block.
func armorBody(data []byte) (io.Reader, error) {
	b, err := armor.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: armored signature does not decode: %w", ErrMalformed, err)
	}
	if b.Type != "PGP SIGNATURE" {
		return nil, fmt.Errorf("%w: armored block is a %q, want a PGP SIGNATURE", ErrMalformed, b.Type)
	}
	return b.Body, nil
}

// What verify returns for the ways a signature can fail once it parses.
var (
	errNotInKeyring  = errors.New("the signing key is not in the keyring")
	errMismatch      = errors.New("the signature does not match the request")
	errKeyRevoked    = errors.New("the signing key is revoked")
	errKeyExpired    = errors.New("the signing key has expired")
	errSigExpired    = errors.New("the signature has expired")
	errUnknownIssuer = errors.New("the keyring holds the issuer, but not as a key that may sign")
)

// verify checks a detached signature (armored or binary) over msg by a key
// of kr, at the time now. It tells apart a key that kr lacks
// (errNotInKeyring), a key kr holds that is revoked (errKeyRevoked) or
// expired (errKeyExpired) at now, an expired signature (errSigExpired: its
// own expiry, or that of the key's self-signature), a key kr holds but not
// with the capability to sign (errUnknownIssuer), a signature that does
// not verify over msg (errMismatch: the bytes changed after signing), and
// a signature that does not parse (ErrMalformed).
func verify(kr openpgp.EntityList, msg, sig []byte, now time.Time) (*openpgp.Entity, error) {
	who, err := signerOf(sig)
	if err != nil {
		return nil, err
	}
	if !holds(kr, who) {
		return nil, errNotInKeyring
	}
	body := io.Reader(bytes.NewReader(sig))
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP")) {
		if body, err = armorBody(sig); err != nil {
			return nil, err
		}
	}
	e, err := openpgp.CheckDetachedSignature(kr, bytes.NewReader(msg), body, &packet.Config{Time: func() time.Time { return now }})
	switch {
	case err == nil:
		return e, nil
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return nil, fmt.Errorf("%w: %w", errKeyRevoked, err)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return nil, fmt.Errorf("%w: %w", errKeyExpired, err)
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return nil, fmt.Errorf("%w: %w", errSigExpired, err)
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return nil, fmt.Errorf("%w: %w", errUnknownIssuer, err)
	}
	return nil, fmt.Errorf("%w: %w", errMismatch, err)
}

// Signer makes a detached OpenPGP signature over a request.
type Signer interface {
	// Sign returns an armored or binary detached signature over msg.
	Sign(ctx context.Context, msg []byte) ([]byte, error)
	// String names the key, for messages.
	String() string
}

// GPGSigner signs by running gpg --detach-sign with the key Key: the key
// may live in gpg's keyring, on a smartcard or a YubiKey; gpg asks for
// its PIN or passphrase through its agent.
type GPGSigner struct {
	// Key is a key ID, fingerprint or user ID that gpg --local-user takes.
	Key string
	// Program is the gpg binary; "" means "gpg" from PATH.
	Program string
	// Home, when set, is GNUPGHOME.
	Home string
}

// Sign runs gpg.
func (g GPGSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	prog := g.Program
	if prog == "" {
		prog = "gpg"
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("--gpg-key needs GnuPG: %w (install gnupg, or sign with --pgp-key FILE)", err)
	}
	cmd := exec.CommandContext(ctx, path, "--armor", "--local-user", g.Key, "--output", "-", "--detach-sign")
	cmd.Stdin = bytes.NewReader(msg)
	if g.Home != "" {
		cmd.Env = append(os.Environ(), "GNUPGHOME="+g.Home)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gpg --local-user %s --detach-sign: %w: %s", g.Key, err, strings.TrimSpace(errOut.String()))
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("gpg --local-user %s --detach-sign wrote no signature: %s", g.Key, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

func (g GPGSigner) String() string { return "gpg key " + g.Key }

// KeySigner signs with an OpenPGP private key held in memory.
type KeySigner struct {
	Entity *openpgp.Entity
}

// ReadKeySigner reads an OpenPGP private key file (armored or binary, as
// gpg --export-secret-keys writes it) without a passphrase: the first key
// in it that holds a private key.
func ReadKeySigner(path string) (*KeySigner, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var el openpgp.EntityList
	if bytes.Contains(data[:min(len(data), 512)], []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not an OpenPGP key file: %w", path, err)
	}
	for _, e := range el {
		if e.PrivateKey == nil {
			continue
		}
		if e.PrivateKey.Encrypted {
			return nil, fmt.Errorf("%s: the private key %s is protected by a passphrase: sign with --gpg-key instead (gpg's agent asks for it)", path, Fingerprint(e))
		}
		return &KeySigner{Entity: e}, nil
	}
	return nil, fmt.Errorf("%s holds no private key (export it with gpg --export-secret-keys, or use --gpg-key)", path)
}

// Sign signs msg.
func (k *KeySigner) Sign(_ context.Context, msg []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, k.Entity, bytes.NewReader(msg), nil); err != nil {
		return nil, fmt.Errorf("signing with key %s: %w", Fingerprint(k.Entity), err)
	}
	return b.Bytes(), nil
}

func (k *KeySigner) String() string { return "key " + Fingerprint(k.Entity) }

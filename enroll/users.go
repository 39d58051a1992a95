package enroll

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"go.yaml.in/yaml/v3"

	"github.com/portcullis-gw/portcullis/pki"
)

// ReadKeyring reads an exported OpenPGP public keyring, armored
// (gpg --export --armor) or binary (gpg --export). Errors name the file.
func ReadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKeyring(data)
}

// ParseKeyring parses a keyring, armored or binary. A keyring with no key
// is an error: it would refuse everyone, which is never what is meant.
func ParseKeyring(data []byte) (openpgp.EntityList, error) {
	var el openpgp.EntityList
	var err error
	if bytes.Contains(data[:min(len(data), 512)], []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not an OpenPGP public keyring (gpg --export [--armor] writes one): %w", ErrMalformed, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("%w: the keyring holds no key", ErrMalformed)
	}
	return el, nil
}

// Fingerprint is an OpenPGP key's fingerprint as gpg prints it without
// spaces: uppercase hex.
func Fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// UserMap is the optional mapping from users' OpenPGP keys to names and
// lifetimes, read from YAML:
//
//	users:
//	  - key: 7D2B0C...        # a primary key fingerprint (40 or 64 hex digits, spaces allowed)
//	    name: alice
//	  - email: bob@example.com  # or a user ID's email
//	    name: bob
//	    ttl: 8h                 # this user's default lifetime
//	    max_ttl: 24h            # and the most this user may ask for
//
// A key of the users keyring that no entry names gets the local part of
// its primary user ID's email as its name.
type UserMap struct {
	Users []UserEntry `yaml:"users"`
}

// UserEntry is one entry of a UserMap. Exactly one of Key and Email.
type UserEntry struct {
	Key    string `yaml:"key"`
	Email  string `yaml:"email"`
	Name   string `yaml:"name"`
	TTL    string `yaml:"ttl"`
	MaxTTL string `yaml:"max_ttl"`

	ttl, maxTTL time.Duration
}

// maxMapSize bounds a mapping file.
const maxMapSize = 1 << 20

// ParseUserMap reads and validates a mapping: known fields only, each
// entry with exactly one of key and email, a valid name, durations that
// parse (ttl not above max_ttl), no key, email or name twice. Errors wrap
// ErrMalformed and name the entry.
func ParseUserMap(data []byte) (*UserMap, error) {
	if len(data) > maxMapSize {
		return nil, fmt.Errorf("%w: mapping is %d bytes; at most %d", ErrMalformed, len(data), maxMapSize)
	}
	var m UserMap
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w (want users: a list of {key or email, name, ttl, max_ttl})", ErrMalformed, err)
	}
	keys, emails, names := map[string]int{}, map[string]int{}, map[string]int{}
	for i := range m.Users {
		u := &m.Users[i]
		n := i + 1
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: users entry %d: %s", ErrMalformed, n, fmt.Sprintf(format, args...))
		}
		if (u.Key == "") == (u.Email == "") {
			return nil, bad("give exactly one of key (a fingerprint) and email")
		}
		if u.Key != "" {
			fp := strings.ToUpper(strings.ReplaceAll(u.Key, " ", ""))
			if b, err := hex.DecodeString(fp); err != nil || len(b) != 20 && len(b) != 32 {
				return nil, bad("key %q: want a fingerprint of 40 or 64 hex digits, as gpg --fingerprint prints it", clip(u.Key))
			}
			if j, dup := keys[fp]; dup {
				return nil, bad("key %s is already entry %d", fp, j)
			}
			keys[fp] = n
			u.Key = fp
		}
		if u.Email != "" {
			if err := pki.CheckEmail(u.Email); err != nil {
				return nil, bad("email: %v", err)
			}
			le := strings.ToLower(u.Email)
			if j, dup := emails[le]; dup {
				return nil, bad("email %s is already entry %d", u.Email, j)
			}
			emails[le] = n
		}
		if err := CheckUserName(u.Name); err != nil {
			return nil, bad("%v", err)
		}
		if j, dup := names[u.Name]; dup {
			return nil, bad("name %q is already entry %d: one name per person", u.Name, j)
		}
		names[u.Name] = n
		var err error
		if u.ttl, err = parseTTL(u.TTL); err != nil {
			return nil, bad("ttl: %v", err)
		}
		if u.maxTTL, err = parseTTL(u.MaxTTL); err != nil {
			return nil, bad("max_ttl: %v", err)
		}
		if u.ttl > 0 && u.maxTTL > 0 && u.ttl > u.maxTTL {
			return nil, bad("ttl %s is above max_ttl %s", u.ttl, u.maxTTL)
		}
	}
	return &m, nil
}

func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := pki.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < MinTTL {
		return 0, fmt.Errorf("%s is below the shortest lifetime, %s", d, MinTTL)
	}
	return d, nil
}

// CheckUserName validates a user's name: it becomes the certificate's
// common name and the last segment of spiffe://ORG/user/NAME. 1 to 64
// lowercase or uppercase letters, digits, '.', '_' or '-', starting with a
// letter or digit.
func CheckUserName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty")
	}
	if len(name) > 64 {
		return fmt.Errorf("name %q is longer than 64 bytes", clip(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("name %q: character %q at %d (accepted: letters, digits, '.', '_', '-', starting with a letter or digit, e.g. alice)", clip(name), c, i)
		}
	}
	return nil
}

// User is a person the service certifies: a key of the users keyring and
// the identity its certificates carry.
type User struct {
	Name        string
	Email       string // "" when the key's user IDs have none
	Fingerprint string
	TTL         time.Duration // 0: the service's default
	MaxTTL      time.Duration // 0: the service's --max-ttl

	entity *openpgp.Entity
}

// KeyState is nil while u's OpenPGP key is usable at now, else
// pgperrors.ErrKeyRevoked or pgperrors.ErrKeyExpired (see keyState).
func (u *User) KeyState(now time.Time) error {
	if u.entity == nil {
		return nil
	}
	return keyState(u.entity, now)
}

// keyState tells whether a key of the keyring still stands for its
// owner at now: pgperrors.ErrKeyRevoked when the key, or the user ID its
// name comes from, carries a revocation (gpg --import of the revocation
// certificate, then the keyring exported again); pgperrors.ErrKeyExpired
// when its self-signature gives it an expiry that has passed.
func keyState(e *openpgp.Entity, now time.Time) error {
	if e.Revoked(now) {
		return pgperrors.ErrKeyRevoked
	}
	sig, id := e.PrimarySelfSignature()
	if id != nil && id.Revoked(now) {
		return pgperrors.ErrKeyRevoked
	}
	if sig != nil && e.PrimaryKey.KeyExpired(sig, now) {
		return pgperrors.ErrKeyExpired
	}
	return nil
}

// stateWord names a key state for messages.
func stateWord(err error) string {
	if errors.Is(err, pgperrors.ErrKeyRevoked) {
		return "revoked"
	}
	return "expired"
}

// Users is a users keyring resolved through an optional mapping.
type Users struct {
	keyring openpgp.EntityList
	byFP    map[string]*User
	byName  map[string]*User
	// gone is, for a name that only revoked or expired keys resolve to,
	// why (pgperrors.ErrKeyRevoked or ErrKeyExpired).
	gone map[string]error
	// Warnings name the keys that have no usable name (they are refused).
	Warnings []string
}

// ResolveUsers resolves every key of a keyring to a user: by its
// fingerprint in m, else by one of its user IDs' emails in m, else by the
// local part of its primary user ID's email. m may be nil. A key that is
// revoked or expired at now is no user (a warning says so; its name is
// remembered, so that a renewal under it is told why). Two usable keys
// that resolve to one name are an error: certificates would not tell them
// apart.
func ResolveUsers(keyring openpgp.EntityList, m *UserMap, now time.Time) (*Users, error) {
	us := &Users{keyring: keyring, byFP: map[string]*User{}, byName: map[string]*User{}, gone: map[string]error{}}
	for _, e := range keyring {
		u, err := resolve(e, m)
		if err != nil {
			us.Warnings = append(us.Warnings, fmt.Sprintf("key %s: %v: it is refused", Fingerprint(e), err))
			continue
		}
		if st := keyState(e, now); st != nil {
			us.Warnings = append(us.Warnings, fmt.Sprintf("key %s (%s) is %s: it is refused", Fingerprint(e), u.Name, stateWord(st)))
			if _, seen := us.gone[u.Name]; !seen || errors.Is(st, pgperrors.ErrKeyRevoked) {
				us.gone[u.Name] = st
			}
			continue
		}
		if prev, dup := us.byName[u.Name]; dup {
			return nil, fmt.Errorf("%w: keys %s and %s both resolve to the name %q: map one of them to another name", ErrMalformed, prev.Fingerprint, u.Fingerprint, u.Name)
		}
		us.byFP[u.Fingerprint] = u
		us.byName[u.Name] = u
	}
	for name := range us.byName {
		delete(us.gone, name)
	}
	return us, nil
}

func resolve(e *openpgp.Entity, m *UserMap) (*User, error) {
	fp := Fingerprint(e)
	var emails []string
	primary := ""
	if id := e.PrimaryIdentity(); id != nil && id.UserId != nil {
		primary = id.UserId.Email
	}
	for _, id := range e.Identities {
		if id.UserId != nil && id.UserId.Email != "" {
			emails = append(emails, id.UserId.Email)
		}
	}
	u := &User{Fingerprint: fp, Email: primary, entity: e}
	if m != nil {
		var hit *UserEntry
		for i := range m.Users {
			if m.Users[i].Key == fp {
				hit = &m.Users[i]
				break
			}
		}
		if hit == nil {
			for i := range m.Users {
				for _, em := range emails {
					if m.Users[i].Email != "" && strings.EqualFold(m.Users[i].Email, em) {
						hit, u.Email = &m.Users[i], em
						break
					}
				}
				if hit != nil {
					break
				}
			}
		}
		if hit != nil {
			u.Name, u.TTL, u.MaxTTL = hit.Name, hit.ttl, hit.maxTTL
		}
	}
	if u.Email != "" && pki.CheckEmail(u.Email) != nil {
		u.Email = "" // not an address a certificate can carry
	}
	if u.Name == "" {
		if u.Email == "" {
			return nil, fmt.Errorf("no user ID with an email and no entry in the mapping")
		}
		u.Name, _, _ = strings.Cut(u.Email, "@")
		if err := CheckUserName(u.Name); err != nil {
			return nil, fmt.Errorf("the email's local part is no usable name (%v): map the key to a name", err)
		}
	}
	return u, nil
}

// Keyring returns the keys, for signature checks.
func (us *Users) Keyring() openpgp.EntityList { return us.keyring }

// ByFingerprint returns the user of a primary key fingerprint.
func (us *Users) ByFingerprint(fp string) *User { return us.byFP[fp] }

// ByName returns the user of a name.
func (us *Users) ByName(name string) *User { return us.byName[name] }

// Gone returns, for a name that no usable key has but a revoked or
// expired one does, pgperrors.ErrKeyRevoked or ErrKeyExpired; else nil.
func (us *Users) Gone(name string) error { return us.gone[name] }

// Len is the number of users.
func (us *Users) Len() int { return len(us.byName) }

// signer describes the key a detached signature names, whether or not it
// verifies.
type signer struct {
	keyID       uint64
	fingerprint string    // of the issuer subkey or key, when the signature says
	created     time.Time // the signature's creation time
}

// signerOf reads the issuer of a detached signature, armored or binary,
// without verifying it.
func signerOf(sig []byte) (signer, error) {
	r := io.Reader(bytes.NewReader(sig))
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP")) {
		body, err := armorBody(sig)
		if err != nil {
			return signer{}, err
		}
		r = body
	}
	p, err := packet.Read(r)
	if err != nil {
		return signer{}, fmt.Errorf("%w: signature does not parse: %w", ErrMalformed, err)
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return signer{}, fmt.Errorf("%w: not an OpenPGP signature (packet %T)", ErrMalformed, p)
	}
	out := signer{created: s.CreationTime}
	if s.IssuerKeyId != nil {
		out.keyID = *s.IssuerKeyId
	}
	if len(s.IssuerFingerprint) > 0 {
		out.fingerprint = strings.ToUpper(hex.EncodeToString(s.IssuerFingerprint))
	}
	return out, nil
}

// holds reports whether the keyring has the key (or subkey) that made a
// signature.
func holds(kr openpgp.EntityList, s signer) bool {
	if s.keyID != 0 && len(kr.KeysById(s.keyID)) > 0 {
		return true
	}
	if s.fingerprint == "" {
		return false
	}
	for _, e := range kr {
		if Fingerprint(e) == s.fingerprint {
			return true
		}
		for _, sk := range e.Subkeys {
			if strings.ToUpper(hex.EncodeToString(sk.PublicKey.Fingerprint)) == s.fingerprint {
				return true
			}
		}
	}
	return false
}

// Package secret makes and checks imbee's secrets.
//
// Every secret handed out (auth, corporate token, pass, apikey, link token) is
// derived: HMAC-SHA256(server key, purpose || nonce), where the nonce is 16
// random bytes stored in the database and the server key lives outside it.
// The database keeps the nonce and SHA-256(secret) for lookup. So an
// idempotent repeat re-derives the same secret, while a copy of the database
// alone yields none: without the key the nonces are useless, and the hashes
// of 256-bit values cannot be reversed. Session cookies need no repeat and
// are plain random values, stored as hashes too.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Purpose separates the secrets derived from one nonce, and gives each kind
// a recognisable prefix (so leaked tokens are easy to spot and scan for).
type Purpose string

const (
	Auth           Purpose = "imba_"
	CorporateToken Purpose = "imbc_"
	Pass           Purpose = "imbp_"
	APIKey         Purpose = "imbk_"
	LinkToken      Purpose = "imbl_"
	SessionToken   Purpose = "imbs_"
	AppSession     Purpose = "imbw_" // a web app sign-in's cookie
	// WebhookSecret is Standard Webhooks' prefix: receivers' libraries
	// take the secret as whsec_<base64 key> (see WebhookSecretOf).
	WebhookSecret Purpose = "whsec_"
)

// KeySize is the server key's length in bytes.
const KeySize = 32

// Keyring holds the server key.
type Keyring struct {
	key []byte
}

// NewKeyring returns a keyring over key, which must be KeySize bytes.
func NewKeyring(key []byte) (*Keyring, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: server key must be %d bytes, got %d", KeySize, len(key))
	}
	return &Keyring{key: append([]byte(nil), key...)}, nil
}

// ParseKey decodes a key written by LoadOrCreateKeyFile (base64, 32 bytes).
func ParseKey(s string) (*Keyring, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("secret: server key is not valid base64")
	}
	return NewKeyring(key)
}

// LoadOrCreateKeyFile reads the key at path, creating it (mode 0600) with a
// new random key when absent; an existing file that group or others may
// read is refused. Two processes racing to create it end up with
// the same key: the key is written whole to a temporary file, then linked
// into place, which fails for the loser, who reads the winner's file.
func LoadOrCreateKeyFile(path string) (k *Keyring, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		// With the key and a copy of the database every secret can be
		// derived again: a key that other accounts on the machine can read
		// is refused, not merely warned about.
		if fi, err := os.Stat(path); err != nil {
			return nil, false, err
		} else if fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("%s can be read by other users (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		k, err = ParseKey(string(b))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	f, err := os.CreateTemp(filepath.Dir(path), ".imbee-key-*")
	if err != nil {
		return nil, false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKeyFile(path)
	} else if err != nil {
		return nil, false, err
	}
	k, err = NewKeyring(key)
	return k, true, err
}

// Derive returns the secret of the given purpose for nonce.
func (k *Keyring) Derive(p Purpose, nonce []byte) string {
	if p == WebhookSecret {
		return string(p) + base64.StdEncoding.EncodeToString(k.derive(p, nonce))
	}
	return string(p) + base64.RawURLEncoding.EncodeToString(k.derive(p, nonce))
}

func (k *Keyring) derive(p Purpose, nonce []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(p))
	m.Write(nonce)
	return m.Sum(nil)
}

// WebhookKey is the HMAC key of a webhook signing secret: a whsec_ secret
// (Standard Webhooks) is base64 of the key; any other string (an operator's
// own secret) is used as it is.
func WebhookKey(secret string) []byte {
	if b64, ok := strings.CutPrefix(secret, string(WebhookSecret)); ok {
		if key, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return key
		}
	}
	return []byte(secret)
}

// Check is a fingerprint of the key, stored in the database so that a server
// started with the wrong key refuses to run instead of issuing secrets that
// differ from those it issued before.
func (k *Keyring) Check() string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte("imbee key check v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// NonceSize is the length of a derivation nonce.
const NonceSize = 16

// NewNonce returns a fresh random derivation nonce.
func NewNonce() []byte {
	b := make([]byte, NonceSize)
	rand.Read(b)
	return b
}

// NewRandom returns a fresh random secret of the given purpose (256 bits),
// for secrets that never need to be re-derived.
func NewRandom(p Purpose) string {
	b := make([]byte, 32)
	rand.Read(b)
	return string(p) + base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the lookup hash of a secret. The secrets are 256-bit random values,
// so a fast unkeyed hash is enough: there is nothing to brute-force.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Equal compares two hashes in constant time.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// NewID returns a public identifier (not a secret): 20 random bytes in hex,
// the shape of the document's "idsha" values.
func NewID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Internal purposes: keys for data the server keeps, never shown to anyone.
const (
	// StoredResponse seals the responses kept for Idempotency-Key replays.
	StoredResponse Purpose = "imbee stored response v1"
	// ClientAddress keys the hash of a client's address in link audit trails.
	ClientAddress Purpose = "imbee client address v1"
	// PushAuth seals the auth secrets of browsers' Web Push subscriptions.
	PushAuth Purpose = "imbee push auth v1"
)

// Seal encrypts plaintext with AES-256-GCM under the key of purpose p,
// bound to ad (which Open must be given again). The result is nonce ||
// ciphertext: a copy of the database alone cannot read it.
func (k *Keyring) Seal(p Purpose, plaintext, ad []byte) []byte {
	aead := k.aead(p)
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(out)
	return aead.Seal(out, out, plaintext, ad)
}

// Open decrypts what Seal returned for the same purpose and ad.
func (k *Keyring) Open(p Purpose, sealed, ad []byte) ([]byte, error) {
	aead := k.aead(p)
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("secret: sealed data too short")
	}
	n := aead.NonceSize()
	return aead.Open(nil, sealed[:n], sealed[n:], ad)
}

func (k *Keyring) aead(p Purpose) cipher.AEAD {
	block, err := aes.NewCipher(k.derive(p, nil))
	if err != nil {
		panic(err) // derive always gives 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// Tag is a keyed hash of data for purpose p, 16 hex characters: equal for
// equal data under one server key, and without the key no way to test a
// guess (an IPv4 address has only 2^32 values to try).
func (k *Keyring) Tag(p Purpose, data []byte) string {
	m := hmac.New(sha256.New, k.derive(p, nil))
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil)[:8])
}

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
//
// Apikeys, link tokens and session cookies are keyed (Keyed): they carry
// their row, sealed, so the store finds them by primary key and checks
// their random part against the row, with no index on a random value.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
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
	key  []byte
	rows sync.Map // Purpose → cipher.Block (rowCipher)
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

// NewID returns a public identifier (not a secret): 20 bytes in hex, the
// shape of the document's "idsha" values. The first 6 bytes are the time in
// milliseconds and the other 14 random (112 bits), so ids made later sort
// later and the unique indexes on them grow at their end instead of
// dirtying a random page per row (#16). An id reveals when it was made,
// nothing else.
func NewID() string {
	return newIDAt(time.Now())
}

func newIDAt(t time.Time) string {
	var b [20]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(ms))
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// Row names a tenant's row: its corporate and its id.
type Row struct{ Corporate, ID int64 }

// keyedSize is a keyed secret's length before encoding: the sealed row,
// then the 32-byte random part.
const keyedSize = aes.BlockSize + 32

// Keyed returns the secret of purpose p for a row: the row sealed under a
// key of the purpose (one AES block, a keyed permutation of 128 bits, so
// a secret reveals neither the row's id nor how many rows there are), then
// random, the 32 bytes only the holder has. The row lets a secret be
// looked up by its primary key; random is then checked against what the
// row keeps, in constant time (#16).
func (k *Keyring) Keyed(p Purpose, row Row, random []byte) string {
	b := make([]byte, keyedSize)
	binary.BigEndian.PutUint64(b[0:], uint64(row.Corporate))
	binary.BigEndian.PutUint64(b[8:], uint64(row.ID))
	k.rowCipher(p).Encrypt(b[:aes.BlockSize], b[:aes.BlockSize])
	copy(b[aes.BlockSize:], random)
	return string(p) + base64.RawURLEncoding.EncodeToString(b)
}

// Unkey reads a secret made by Keyed: its row and random part. ok is false
// for anything else, among them the secrets made before keyed ones (Derive
// and NewRandom's, which are shorter). A forged secret may name any row:
// only the check of its random part tells.
func (k *Keyring) Unkey(p Purpose, s string) (row Row, random []byte, ok bool) {
	enc, found := strings.CutPrefix(s, string(p))
	if !found || base64.RawURLEncoding.DecodedLen(len(enc)) != keyedSize {
		return Row{}, nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(b) != keyedSize {
		return Row{}, nil, false
	}
	k.rowCipher(p).Decrypt(b[:aes.BlockSize], b[:aes.BlockSize])
	row = Row{int64(binary.BigEndian.Uint64(b[0:])), int64(binary.BigEndian.Uint64(b[8:]))}
	if row.Corporate <= 0 || row.ID <= 0 {
		return Row{}, nil, false
	}
	return row, b[aes.BlockSize:], true
}

// DeriveRandom is the random part of a keyed secret that idempotent
// repeats must give again: derived from nonce, as Derive is.
func (k *Keyring) DeriveRandom(p Purpose, nonce []byte) []byte { return k.derive(p, nonce) }

// NewRandomPart is the random part of a keyed secret that is never given
// again (a session's cookie): 32 random bytes, kept as Hash(part).
func NewRandomPart() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// rowCipher is the block cipher sealing rows in p's secrets; its key is
// derived from the server key, one per purpose.
func (k *Keyring) rowCipher(p Purpose) cipher.Block {
	if c, ok := k.rows.Load(p); ok {
		return c.(cipher.Block)
	}
	c, err := aes.NewCipher(k.derive("imbee row key v1 "+p, nil))
	if err != nil {
		panic(err) // derive always gives 32 bytes
	}
	k.rows.Store(p, c)
	return c
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

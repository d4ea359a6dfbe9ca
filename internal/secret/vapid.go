package secret

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/binary"
)

// VAPID returns the server's Web Push identity (RFC 8292): a P-256 key
// pair derived from the server key, so that every server of an
// installation signs with the same key and browsers' subscriptions, made
// for its public key, survive restarts. Both are base64url: the private
// key's scalar and the public key's uncompressed point (the
// applicationServerKey browsers subscribe with).
func (k *Keyring) VAPID() (privateKey, publicKey string) {
	// An HMAC output is a valid scalar unless it is 0 or at least the
	// curve's order (about 2^-32 of them): then the next counter is tried.
	for i := uint32(0); ; i++ {
		var ctr [4]byte
		binary.BigEndian.PutUint32(ctr[:], i)
		priv, err := ecdh.P256().NewPrivateKey(k.derive("imbee vapid v1", ctr[:]))
		if err != nil {
			continue
		}
		return base64.RawURLEncoding.EncodeToString(priv.Bytes()), base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	}
}

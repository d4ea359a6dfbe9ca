package secret

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestKeyring(t *testing.T) *Keyring {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var allPurposes = []Purpose{Auth, CorporateToken, Pass, APIKey, LinkToken, SessionToken, AppSession}

func TestDerive(t *testing.T) {
	k := newTestKeyring(t)
	nonce := NewNonce()

	t.Run("DeterministicForKeyPurposeNonce", func(t *testing.T) {
		for _, p := range allPurposes {
			a := k.Derive(p, nonce)
			b := k.Derive(p, append([]byte(nil), nonce...))
			if a != b {
				t.Errorf("Derive(%q) not deterministic: %q != %q", p, a, b)
			}
		}
	})

	t.Run("SameKeyBytesDeriveSameSecret", func(t *testing.T) {
		key := bytes.Repeat([]byte{7}, KeySize)
		k1, _ := NewKeyring(key)
		k2, _ := NewKeyring(append([]byte(nil), key...))
		if k1.Derive(Pass, nonce) != k2.Derive(Pass, nonce) {
			t.Error("two keyrings over the same key bytes derive different secrets")
		}
	})

	t.Run("KeyringCopiesKey", func(t *testing.T) {
		key := bytes.Repeat([]byte{7}, KeySize)
		k1, _ := NewKeyring(key)
		before := k1.Derive(Pass, nonce)
		key[0] = 8 // the caller reuses its buffer
		if after := k1.Derive(Pass, nonce); after != before {
			t.Error("keyring aliases the caller's key slice")
		}
	})

	t.Run("DiffersAcrossPurposes", func(t *testing.T) {
		seen := map[string]Purpose{}
		for _, p := range allPurposes {
			s := k.Derive(p, nonce)
			body := strings.TrimPrefix(s, string(p))
			if q, dup := seen[body]; dup {
				t.Errorf("purposes %q and %q derive the same secret body", p, q)
			}
			seen[body] = p
		}
	})

	t.Run("DiffersAcrossNonces", func(t *testing.T) {
		n2 := append([]byte(nil), nonce...)
		n2[len(n2)-1] ^= 1
		if k.Derive(APIKey, nonce) == k.Derive(APIKey, n2) {
			t.Error("nonces differing in one bit derive the same secret")
		}
		if k.Derive(APIKey, nonce) == k.Derive(APIKey, NewNonce()) {
			t.Error("two random nonces derive the same secret")
		}
	})

	t.Run("DiffersAcrossKeys", func(t *testing.T) {
		k2 := newTestKeyring(t)
		for _, p := range allPurposes {
			if k.Derive(p, nonce) == k2.Derive(p, nonce) {
				t.Errorf("two keys derive the same %q secret", p)
			}
		}
	})

	t.Run("PrefixAnd32Bytes", func(t *testing.T) {
		for _, p := range allPurposes {
			s := k.Derive(p, nonce)
			if !strings.HasPrefix(s, string(p)) {
				t.Errorf("Derive(%q) = %q: missing purpose prefix", p, s)
				continue
			}
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, string(p)))
			if err != nil {
				t.Errorf("Derive(%q) body is not raw URL base64: %v", p, err)
				continue
			}
			if len(raw) != 32 {
				t.Errorf("Derive(%q) body decodes to %d bytes, want 32", p, len(raw))
			}
		}
	})
}

func TestNewRandom(t *testing.T) {
	a, b := NewRandom(SessionToken), NewRandom(SessionToken)
	if a == b {
		t.Error("two NewRandom calls returned the same secret")
	}
	if !strings.HasPrefix(a, string(SessionToken)) {
		t.Errorf("NewRandom = %q: missing prefix", a)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, string(SessionToken)))
	if err != nil || len(raw) != 32 {
		t.Errorf("NewRandom body: %d bytes, err %v; want 32 bytes", len(raw), err)
	}
}

func TestNewIDAndNonce(t *testing.T) {
	id := NewID()
	if len(id) != 40 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("NewID = %q, want 40 lowercase hex digits", id)
	}
	if NewID() == id {
		t.Error("two NewID calls returned the same id")
	}
	// Time-ordered: an id made a millisecond later sorts after, whatever
	// its random part.
	t0 := time.Now()
	for i := range 1000 {
		a, b := newIDAt(t0.Add(time.Duration(i)*time.Millisecond)), newIDAt(t0.Add(time.Duration(i+1)*time.Millisecond))
		if a >= b {
			t.Fatalf("id %q made before %q sorts after it", a, b)
		}
	}
	if a, b := newIDAt(t0), newIDAt(t0); a == b || a[:12] != b[:12] {
		t.Errorf("two ids of one millisecond: %q and %q, want one time prefix and different random parts", a, b)
	}
	n := NewNonce()
	if len(n) != NonceSize {
		t.Errorf("NewNonce is %d bytes, want %d", len(n), NonceSize)
	}
	if bytes.Equal(n, NewNonce()) {
		t.Error("two NewNonce calls returned the same nonce")
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Run("CreatesPrivateFileThenReloadsSameKey", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "server.key")
		k1, created, err := LoadOrCreateKeyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !created {
			t.Error("first call: created = false, want true")
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file mode = %o, want 600", perm)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if kf, err := ParseKey(string(b)); err != nil || kf.Check() != k1.Check() {
			t.Errorf("file content does not parse to the returned key (err %v)", err)
		}

		k2, created, err := LoadOrCreateKeyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if created {
			t.Error("second call: created = true, want false")
		}
		if k1.Check() != k2.Check() {
			t.Error("second call returned a different key")
		}
		nonce := NewNonce()
		if k1.Derive(APIKey, nonce) != k2.Derive(APIKey, nonce) {
			t.Error("reloaded key derives different secrets")
		}
	})

	t.Run("RefusesCorruptFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "server.key")
		if err := os.WriteFile(path, []byte("not base64!!\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateKeyFile(path); err == nil {
			t.Error("corrupt key file accepted")
		}
	})

	t.Run("RefusesFileOthersCanRead", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "server.key")
		if _, _, err := LoadOrCreateKeyFile(path); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreateKeyFile(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Errorf("mode %04o: want a refusal naming the file and the chmod, got %v", mode, err)
			}
		}
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateKeyFile(path); err != nil {
			t.Errorf("mode 0400 (owner only) refused: %v", err)
		}
	})

	t.Run("ConcurrentCreatorsShareOneKey", func(t *testing.T) {
		// Several rounds on fresh paths: the window between the exclusive
		// create and the write is short, so one round may miss it.
		for round := range 10 {
			path := filepath.Join(t.TempDir(), "server.key")
			const n = 20
			checks := make([]string, n)
			errs := make([]error, n)
			createdCount := 0
			var mu sync.Mutex
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					k, created, err := LoadOrCreateKeyFile(path)
					errs[i] = err
					if err == nil {
						checks[i] = k.Check()
					}
					if created {
						mu.Lock()
						createdCount++
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d: goroutine %d: %v", round, i, err)
				}
			}
			for i := range checks {
				if checks[i] != checks[0] {
					t.Fatalf("round %d: goroutine %d got a different key", round, i)
				}
			}
			if createdCount != 1 {
				t.Fatalf("round %d: %d callers report creating the key, want 1", round, createdCount)
			}
		}
	})
}

func TestParseKey(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, KeySize))
	if _, err := ParseKey(good); err != nil {
		t.Errorf("valid key refused: %v", err)
	}
	if _, err := ParseKey("  " + good + "\n"); err != nil {
		t.Errorf("valid key with surrounding space refused: %v", err)
	}
	bad := map[string]string{
		"not base64":      "this is *not* base64",
		"empty":           "",
		"31 bytes":        base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"33 bytes":        base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"16 bytes":        base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"url alphabet":    strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, KeySize))),
		"truncated input": good[:len(good)-2],
	}
	for name, s := range bad {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("%s: ParseKey(%q) accepted", name, s)
		}
	}
	if _, err := NewKeyring(make([]byte, 31)); err == nil {
		t.Error("NewKeyring accepted 31 bytes")
	}
}

func TestHashAndEqual(t *testing.T) {
	h := Hash("imbk_abc")
	if len(h) != 32 {
		t.Errorf("Hash is %d bytes, want 32", len(h))
	}
	if !bytes.Equal(h, Hash("imbk_abc")) {
		t.Error("Hash is not deterministic")
	}
	if bytes.Equal(h, Hash("imbk_abd")) {
		t.Error("different secrets hash the same")
	}
	if !Equal(h, Hash("imbk_abc")) {
		t.Error("Equal of equal hashes is false")
	}
	if Equal(h, Hash("imbk_abd")) {
		t.Error("Equal of different hashes is true")
	}
	if Equal(h, h[:31]) {
		t.Error("Equal of different lengths is true")
	}
	if Equal(h, nil) {
		t.Error("Equal with nil is true")
	}
}

// TestWebhookSecret: a bot's secret is Standard Webhooks' whsec_<base64 of
// a 32-byte key>, and WebhookKey gives that key back; any other secret is
// its own key.
func TestWebhookSecret(t *testing.T) {
	k, err := NewKeyring(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s := k.Derive(WebhookSecret, []byte("nonce"))
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		t.Fatalf("secret %q lacks the whsec_ prefix", s)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %q is not base64 of 32 bytes: %v", s, err)
	}
	if got := WebhookKey(s); !bytes.Equal(got, raw) {
		t.Errorf("WebhookKey = %x, want %x", got, raw)
	}
	if got := WebhookKey("operator-secret"); string(got) != "operator-secret" {
		t.Errorf("WebhookKey of a plain secret = %q", got)
	}
	if s == k.Derive(WebhookSecret, []byte("other nonce")) {
		t.Error("two nonces gave one secret")
	}
}

func TestSealOpen(t *testing.T) {
	k1, _ := NewKeyring(bytes.Repeat([]byte{1}, KeySize))
	k2, _ := NewKeyring(bytes.Repeat([]byte{2}, KeySize))
	msg := []byte(`{"pass":"imbp_secret"}`)
	sealed := k1.Seal(StoredResponse, msg, []byte("ad"))
	if bytes.Contains(sealed, []byte("imbp_secret")) {
		t.Fatal("sealed data holds the plaintext")
	}
	if again := k1.Seal(StoredResponse, msg, []byte("ad")); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one message are equal: the nonce is not random")
	}
	got, err := k1.Open(StoredResponse, sealed, []byte("ad"))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"other key":     func() ([]byte, error) { return k2.Open(StoredResponse, sealed, []byte("ad")) },
		"other ad":      func() ([]byte, error) { return k1.Open(StoredResponse, sealed, []byte("da")) },
		"other purpose": func() ([]byte, error) { return k1.Open(ClientAddress, sealed, []byte("ad")) },
		"truncated":     func() ([]byte, error) { return k1.Open(StoredResponse, sealed[:5], []byte("ad")) },
	} {
		if _, err := open(); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestTag(t *testing.T) {
	k1, _ := NewKeyring(bytes.Repeat([]byte{1}, KeySize))
	k2, _ := NewKeyring(bytes.Repeat([]byte{2}, KeySize))
	a := k1.Tag(ClientAddress, []byte("192.0.2.1"))
	if len(a) != 16 || a != k1.Tag(ClientAddress, []byte("192.0.2.1")) {
		t.Fatalf("tag %q is not a stable 16-hex value", a)
	}
	if a == k1.Tag(ClientAddress, []byte("192.0.2.2")) || a == k2.Tag(ClientAddress, []byte("192.0.2.1")) {
		t.Fatal("different address or key, same tag")
	}
}

// TestVAPID: the Web Push key pair is the server key's, the same on every
// call and different for another key, and its public half is the private
// one's (an uncompressed P-256 point).
func TestVAPID(t *testing.T) {
	k1, _ := NewKeyring(make([]byte, KeySize))
	other := make([]byte, KeySize)
	other[0] = 1
	k2, _ := NewKeyring(other)
	priv, pub := k1.VAPID()
	if p2, q2 := k1.VAPID(); p2 != priv || q2 != pub {
		t.Error("VAPID keys differ between calls")
	}
	if p2, _ := k2.VAPID(); p2 == priv {
		t.Error("two server keys give the same VAPID key")
	}
	raw, err := base64.RawURLEncoding.DecodeString(priv)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdh.P256().NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()); got != pub || len(key.PublicKey().Bytes()) != 65 {
		t.Errorf("public key %s is not the private key's (%s)", pub, got)
	}
}

func TestKeyed(t *testing.T) {
	k, other := newTestKeyring(t), newTestKeyring(t)
	random := NewRandomPart()
	row := Row{Corporate: 7, ID: 41}
	s := k.Keyed(APIKey, row, random)
	if !strings.HasPrefix(s, string(APIKey)) || len(s) != len(APIKey)+64 {
		t.Fatalf("Keyed = %q, want the prefix and 64 characters", s)
	}
	got, part, ok := k.Unkey(APIKey, s)
	if !ok || got != row || !bytes.Equal(part, random) {
		t.Fatalf("Unkey = %v %x %v, want %v %x", got, part, ok, row, random)
	}
	// The row is sealed: consecutive ids share no visible part, and the
	// same row sealed for another purpose or under another key differs.
	next := k.Keyed(APIKey, Row{Corporate: 7, ID: 42}, random)
	if s[:len(APIKey)+8] == next[:len(APIKey)+8] {
		t.Errorf("rows 41 and 42 begin alike: %q, %q", s, next)
	}
	for _, p := range []Purpose{LinkToken, SessionToken} {
		if got, _, ok := k.Unkey(p, string(p)+strings.TrimPrefix(s, string(APIKey))); ok && got == row {
			t.Errorf("a %s secret read as %s names the same row", APIKey, p)
		}
	}
	if got, _, ok := other.Unkey(APIKey, s); ok && got == row {
		t.Error("another server key reads the same row")
	}
	// What is not a keyed secret of the purpose is refused: the secrets
	// made before (Derive, NewRandom), other prefixes, bad encodings.
	for _, bad := range []string{"", k.Derive(APIKey, NewNonce()), NewRandom(APIKey), "imbl_" + s[5:], s[:len(s)-1], s + "A", s[:20] + "!" + s[21:]} {
		if _, _, ok := k.Unkey(APIKey, bad); ok {
			t.Errorf("Unkey(%q) accepted", bad)
		}
	}
	// Derived random parts are the same for one nonce, as Derive is.
	n := NewNonce()
	if !bytes.Equal(k.DeriveRandom(LinkToken, n), k.DeriveRandom(LinkToken, n)) || bytes.Equal(k.DeriveRandom(LinkToken, n), k.DeriveRandom(APIKey, n)) {
		t.Error("DeriveRandom is not one value per (purpose, nonce)")
	}
}

func TestKeyedConcurrent(t *testing.T) {
	k := newTestKeyring(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				row := Row{Corporate: int64(i + 1), ID: int64(j + 1)}
				if got, _, ok := k.Unkey(LinkToken, k.Keyed(LinkToken, row, NewRandomPart())); !ok || got != row {
					t.Errorf("round trip of %v gave %v", row, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

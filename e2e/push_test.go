package e2e

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee/client"
)

// pushService is a Web Push service (RFC 8030) the test runs: it keeps
// every push it is sent, and answers each with status.
type pushService struct {
	*httptest.Server
	mu     sync.Mutex
	pushes []receivedPush
	status int
}

type receivedPush struct {
	header http.Header
	body   []byte
}

func newPushService(t *testing.T) *pushService {
	p := &pushService{status: http.StatusCreated}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.pushes = append(p.pushes, receivedPush{r.Header.Clone(), body})
		status := p.status
		p.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *pushService) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pushes)
}

// waitPush waits until the service holds n pushes and returns the n-th.
func (p *pushService) waitPush(t *testing.T, n int) receivedPush {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		if len(p.pushes) >= n {
			defer p.mu.Unlock()
			return p.pushes[n-1]
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("push %d did not arrive within 30 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendUntil calls send every interval until the service holds n pushes,
// and fails the test after within.
func (p *pushService) sendUntil(t *testing.T, n int, within, interval time.Duration, send func()) {
	t.Helper()
	deadline := time.Now().Add(within)
	for p.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d pushes after %v, want %d", p.count(), within, n)
		}
		send()
		time.Sleep(interval)
	}
}

// pushScene is what the push tests start from: a server that may push to
// this machine, two users, pia and bea, with a chat bea opened, and a push
// service with a browser's keys for pia.
type pushScene struct {
	c        corporate
	pia, bea user
	conv     string
	svc      *pushService
	keys     browserKeys
}

func newPushScene(t *testing.T, s *server) pushScene {
	t.Helper()
	c := s.demo()
	p := pushScene{c: c, pia: s.newUser(t, c, "pia"), bea: s.newUser(t, c, "bea"), svc: newPushService(t), keys: newBrowserKeys(t)}
	p.conv = s.createChat(t, c, p.bea, client.Contact{IDSha: p.pia.idsha})
	return p
}

// pushCanary tells when a server's pusher has decided on every message
// sent through it before: a user with a push subscription of their own and
// no socket, sent a message through the same server, whose push arrives
// after every earlier message's was sent or skipped (one pusher per server
// takes its messages in order).
type pushCanary struct {
	s        *server
	c        corporate
	from     user
	conv     string
	svc      *pushService
	messages int
}

func newPushCanary(t *testing.T, s *server, c corporate, from user) *pushCanary {
	t.Helper()
	k := &pushCanary{s: s, c: c, from: from, svc: newPushService(t)}
	u := s.newUser(t, c, "canary")
	k.conv = s.createChat(t, c, from, client.Contact{IDSha: u.idsha})
	if code, body := chatCall(t, s, "POST", "/app/push", signInApp(t, s, u), newBrowserKeys(t).subscription(k.svc.URL+"/push/canary")); code != http.StatusOK {
		t.Fatalf("subscribe the canary: %d %s", code, body)
	}
	return k
}

// drain waits until the pusher has decided on every message sent before.
func (k *pushCanary) drain(t *testing.T) {
	t.Helper()
	k.messages++
	expect(t, k.s.post(t, "/chat/message/send", k.c.auth, k.from.apikey, map[string]any{"conversationId": k.conv, "text": "canary"}), 200, 0)
	k.svc.waitPush(t, k.messages)
}

// browserKeys are what a browser's PushSubscription holds: its ECDH key
// pair and its authentication secret.
type browserKeys struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newBrowserKeys(t *testing.T) browserKeys {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return browserKeys{priv, auth}
}

func (k browserKeys) subscription(endpoint string) string {
	b, _ := json.Marshal(map[string]any{"endpoint": endpoint, "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(k.priv.PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(k.auth)}})
	return string(b)
}

// decrypt opens an aes128gcm push body (RFC 8188) as the browser does,
// with the keys of RFC 8291.
func (k browserKeys) decrypt(body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("shorter than its header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || rs < 18 {
		return nil, errors.New("bad header")
	}
	serverPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("keyid is not the server's public key: %w", err)
	}
	shared, err := k.priv.ECDH(serverPub)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), k.priv.PublicKey().Bytes()...), serverPub.Bytes()...)
	ikm, err := hkdf.Key(sha256.New, shared, k.auth, string(info), 32)
	if err != nil {
		return nil, err
	}
	cek, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, body[21+idlen:], nil)
	if err != nil {
		return nil, err
	}
	// One record, the last: padding is a 0x02 and zeros.
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

// checkVAPID checks a push's Authorization (RFC 8292): a JWT signed with
// ES256 by the key k names, k being the server's VAPID key, for the push
// service's origin, not yet expired.
func checkVAPID(t *testing.T, h http.Header, serverKey, origin string) {
	t.Helper()
	m := regexp.MustCompile(`^vapid t=([^,]+), k=(\S+)$`).FindStringSubmatch(h.Get("Authorization"))
	if m == nil || m[2] != serverKey {
		t.Fatalf("Authorization %q: want vapid t=…, k=%s", h.Get("Authorization"), serverKey)
	}
	parts := strings.Split(m[1], ".")
	if len(parts) != 3 {
		t.Fatalf("the VAPID token is not a JWT: %q", m[1])
	}
	pub, _ := base64.RawURLEncoding.DecodeString(serverKey)
	x, y := elliptic.Unmarshal(elliptic.P256(), pub) //nolint:staticcheck // the point as VAPID sends it
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if x == nil || len(sig) != 64 || !ecdsa.Verify(&ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the VAPID token's signature does not verify with the server's key")
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(claims, &c); err != nil || c.Aud != origin || c.Exp < time.Now().Unix() || c.Sub == "" {
		t.Fatalf("VAPID claims %s: want aud %s, a future exp and a sub", claims, origin)
	}
}

// TestWebPush: a signed-in person turns notifications on; a message for
// them while none of their sockets is open is pushed to their browser's
// push service, signed with the server's VAPID key and encrypted so that
// only that browser reads it; while a socket is open, nothing is pushed; a
// subscription its push service says is gone (410) is forgotten.
func TestWebPush(t *testing.T) {
	s := startServer(t, "--allow-private-webhooks")
	scene := newPushScene(t, s)
	c, pia, bea, conv, svc, keys := scene.c, scene.pia, scene.bea, scene.conv, scene.svc, scene.keys
	cookie := signInApp(t, s, pia)

	_, home := chatCall(t, s, "GET", "/app", cookie, "")
	m := regexp.MustCompile(`id="notify"[^>]*data-key="([A-Za-z0-9_-]{87})"`).FindStringSubmatch(home)
	if m == nil {
		t.Fatalf("the chat list has no notify button with the server's key:\n%s", home)
	}
	serverKey := m[1]
	if code, body := chatCall(t, s, "POST", "/app/push", cookie, keys.subscription(svc.URL+"/push/pia")); code != http.StatusOK {
		t.Fatalf("subscribe: %d %s", code, body)
	}

	say := func(text string) {
		t.Helper()
		expect(t, s.post(t, "/chat/message/send", c.auth, bea.apikey, map[string]any{"conversationId": conv, "text": text}), 200, 0)
	}
	say("are you there?")
	got := svc.waitPush(t, 1)
	if got.header.Get("Content-Encoding") != "aes128gcm" || got.header.Get("TTL") == "" {
		t.Errorf("push headers %v: want Content-Encoding aes128gcm and a TTL", got.header)
	}
	checkVAPID(t, got.header, serverKey, svc.URL)
	plain, err := keys.decrypt(got.body)
	if err != nil {
		t.Fatalf("the browser cannot decrypt the push: %v", err)
	}
	var p struct {
		ConversationID string `json:"conversationId"`
		Text           string `json:"text"`
	}
	if err := json.Unmarshal(plain, &p); err != nil || p.ConversationID != conv || p.Text != "are you there?" {
		t.Fatalf("the push says %s (%v)", plain, err)
	}
	if other := newBrowserKeys(t); func() bool { _, err := other.decrypt(got.body); return err == nil }() {
		t.Error("another browser's keys decrypt the push")
	}

	// While pia has a socket open, nobody needs telling. (Pushes leave in
	// the order of the messages: the first after the socket closed says
	// whether this one was pushed.)
	canary := newPushCanary(t, s, c, bea)
	sock := dialApp(t, s, cookie, conv)
	say("now you see it")
	wantMessage(t, sock, "now you see it")
	canary.drain(t) // the push of "now you see it" was decided with the socket open
	sock.c.CloseNow()

	// A push service that says the subscription is gone: it is forgotten.
	svc.mu.Lock()
	svc.status = http.StatusGone
	svc.mu.Unlock()
	svc.sendUntil(t, 2, 10*time.Second, 300*time.Millisecond, func() { say("gone?") })
	if plain, err := keys.decrypt(svc.waitPush(t, 2).body); err != nil || !strings.Contains(string(plain), `"gone?"`) {
		t.Errorf("the first push after the socket closed says %s (%v): the message sent while it was open was pushed", plain, err)
	}
	db := s.openDB(t, true)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM push_subscriptions WHERE endpoint LIKE '%/push/pia'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription is still kept 30 s after its push service answered 410")
		}
	}
}

// TestPushPresenceAcrossServers: two servers on one PostgreSQL database.
// A person with a socket open on one gets no push for a message sent
// through the other; once the socket closes, they do; and when the server
// holding their socket dies, pushes resume once its presence lapses.
func TestPushPresenceAcrossServers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		d := newDB(t)
		a := startProcess(t, d, "--allow-private-webhooks")
		b := startProcess(t, d, "--allow-private-webhooks")
		c := a.demo()
		pia, bea := a.newUser(t, c, "pia"), a.newUser(t, c, "bea")
		conv := a.createChat(t, c, bea, client.Contact{IDSha: pia.idsha})
		svc := newPushService(t)
		keys := newBrowserKeys(t)
		cookie := signInApp(t, b, pia)
		if code, body := chatCall(t, a, "POST", "/app/push", cookie, keys.subscription(svc.URL+"/push/pia")); code != http.StatusOK {
			t.Fatalf("subscribe: %d %s", code, body)
		}
		db := d.openDB(t, true)
		presence := func(want int) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				var n int
				if err := db.QueryRow(`SELECT count(*) FROM presence`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d presence rows after 30 s, want %d", n, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		say := func(text string) {
			t.Helper()
			expect(t, a.post(t, "/chat/message/send", c.auth, bea.apikey, map[string]any{"conversationId": conv, "text": text}), 200, 0)
		}
		pushed := func(n int) string {
			t.Helper()
			plain, err := keys.decrypt(svc.waitPush(t, n).body)
			if err != nil {
				t.Fatal(err)
			}
			var p struct{ Text string }
			json.Unmarshal(plain, &p)
			return p.Text
		}

		// Looking on b: a pushes nothing. Pushes leave a in the order of
		// the messages, so the push of the next one, sent once the socket
		// closed, is the first.
		canary := newPushCanary(t, a, c, bea)
		sock := dialApp(t, b, cookie, conv)
		presence(1)
		say("while you look")
		wantMessage(t, sock, "while you look")
		canary.drain(t) // a decided on "while you look" with the socket open
		sock.c.Close(websocket.StatusNormalClosure, "")
		presence(0)
		say("now you are away")
		if got := pushed(1); got != "now you are away" {
			t.Fatalf("the first push says %q: the message sent while the person looked on the other server was pushed", got)
		}

		// b dies with the socket open: its presence lapses, pushes resume.
		sock = dialApp(t, b, cookie, conv)
		presence(1)
		killed := time.Now()
		b.kill()
		say("right after the crash")
		sentBy := time.Since(killed)
		svc.sendUntil(t, 2, 60*time.Second, 500*time.Millisecond, func() { say("after the crash") })
		// The first message was sent while b's presence held (it is
		// renewed every 5 s for 15): not pushed, unless the machine
		// stalled that long.
		if got := pushed(2); got == "right after the crash" && sentBy < 5*time.Second {
			t.Errorf("a message sent %v after the server died, within its presence, was pushed", sentBy)
		}
	})
}

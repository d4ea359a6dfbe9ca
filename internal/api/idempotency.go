package api

import (
	"context"
	"crypto/sha256"
	"net/http"
	"time"

	"github.com/imbee/imbee"
)

// idempotencyHeader is the request header, in canonical form.
const idempotencyHeader = "Idempotency-Key"

// maxIdempotencyKey bounds the header's length.
const maxIdempotencyKey = 255

// idempotencyLedger keeps each Idempotency-Key with the answer it got.
type idempotencyLedger interface {
	ClaimIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey, ttl time.Duration) ([]byte, error)
	CompleteIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey, response []byte) error
	ReleaseIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey) error
}

// idempotent runs h for a call that carries an Idempotency-Key: a success
// is stored (sealed) and replayed byte for byte to a repeat of the same
// request; the same key on another request is CodeIdempotencyMismatch, and
// while the first still runs, CodeIdempotencyInProgress. A failure stores
// nothing and frees the key. See docs/api.md, "Idempotency-Key".
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, start time.Time, key keyKind, c *call, h func(context.Context, *call) (any, error)) {
	ctx := r.Context()
	k, err := idempotencyKey(r, key, c)
	if err != nil {
		writeError(w, r, start, err)
		return
	}
	stored, err := s.store.ClaimIdempotencyKey(ctx, k, s.cfg.IdempotencyTTL)
	if err != nil {
		writeError(w, r, start, err)
		return
	}
	if stored != nil {
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusOK, stored)
		return
	}
	// The claim must be settled even if the client goes away meanwhile.
	settle, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	resp, err := h(ctx, c)
	var out []byte
	if err == nil {
		out, err = envelope(start, imbee.CodeOK, "Ok", resp)
	}
	if err != nil {
		if rerr := s.store.ReleaseIdempotencyKey(settle, k); rerr != nil {
			s.cfg.Log.Error("release idempotency key", "err", rerr)
		}
		writeError(w, r, start, err)
		return
	}
	if err := s.store.CompleteIdempotencyKey(settle, k, out); err != nil {
		// The change is made: answer it. A retry with this key gets code 10
		// until the claim is abandoned, then runs again.
		s.cfg.Log.Error("store idempotent response", "err", err)
	}
	writeJSON(w, http.StatusOK, out)
}

// idempotencyKey checks the header and names the key: per credential, and
// bound to the endpoint and the exact body.
func idempotencyKey(r *http.Request, key keyKind, c *call) (imbee.IdempotencyKey, error) {
	vs := r.Header[idempotencyHeader]
	if len(vs) != 1 || !validIdempotencyKey(vs[0]) {
		return imbee.IdempotencyKey{}, imbee.ParamError(idempotencyHeader,
			"Idempotency-Key must be one value of 1 to %d printable ASCII characters", maxIdempotencyKey)
	}
	kh := sha256.Sum256([]byte(vs[0]))
	rh := sha256.New()
	rh.Write([]byte(r.URL.Path))
	rh.Write([]byte{0})
	rh.Write(c.body)
	k := imbee.IdempotencyKey{CorporateID: c.corporate.ID, KeyHash: kh[:], RequestHash: rh.Sum(nil)}
	if key == userKey {
		k.Principal = c.user.ID
	}
	return k, nil
}

func validIdempotencyKey(v string) bool {
	if len(v) == 0 || len(v) > maxIdempotencyKey {
		return false
	}
	blank := true
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
		blank = blank && v[i] == ' '
	}
	return !blank
}

package imbee

// IdempotencyKey names one Idempotency-Key of one credential, and the
// request it came with (docs/api.md, "Idempotency-Key").
type IdempotencyKey struct {
	CorporateID int64
	Principal   int64  // 0 for the corporate token, else the user's id
	KeyHash     []byte // SHA-256 of the header's value
	RequestHash []byte // SHA-256 of the endpoint and the body
}

package imbee

import _ "embed"

// OpenAPI is the API's contract, docs/openapi.json, as the server serves it
// at GET /openapi.json and the end-to-end tests enforce it. It is embedded
// here, in the root package, because go:embed reaches only files at or
// below the embedding package's directory, and docs/ is at the root.
//
//go:embed docs/openapi.json
var OpenAPI []byte

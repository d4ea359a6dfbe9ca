package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/imbee/imbee"
)

// serveOpenAPI is GET (and HEAD) /openapi.json: the contract, built in.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		info(r).code = imbee.CodeGeneric
		w.Header().Set("Allow", "GET, HEAD")
		writeEnvelope(w, http.StatusMethodNotAllowed, time.Now(), imbee.CodeGeneric, "method not allowed: use GET", nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// It changes only with the binary: an hour is short enough for upgrades.
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Content-Length", strconv.Itoa(len(imbee.OpenAPI)))
	w.Write(imbee.OpenAPI)
}

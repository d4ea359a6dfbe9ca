package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// baselineBody is the size of imbee's /third_parties/user/new answer.
var baselineBody = `{"virtualUser":"` + strings.Repeat("a", 40) + `","pass":"imbp_` + strings.Repeat("b", 43) +
	`","apikey":"imbk_` + strings.Repeat("c", 43) + `","previously_registered":false}`

// serveBaseline is the yardstick: a bare net/http handler that decodes the
// JSON body and writes an envelope of the same size as imbee's. It runs in
// its own process, as imbee does.
func serveBaseline(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		var v map[string]any
		if err == nil {
			err = json.Unmarshal(b, &v)
		}
		code := 0
		if err != nil {
			code = 5
		}
		out := `{"time":` + strconv.FormatFloat(time.Since(start).Seconds(), 'f', 6, 64) +
			`,"code":` + strconv.Itoa(code) + `,"message":"Ok","body":` + baselineBody + "}\n"
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		io.WriteString(w, out)
	})
	fmt.Printf("baseline listening on http://%s\n", ln.Addr())
	return http.Serve(ln, h)
}

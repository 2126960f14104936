package httpx_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/httpx"
)

// The access log never shows what a route's wildcards matched (an ID number in
// /records/{key}); literal segments and the rest of a subtree's path stay readable.
func TestLogRequestsPathWithoutWildcardValues(t *testing.T) {
	const idno = "14010519850615123X"
	inner := http.NewServeMux() // a mounted sub-handler with its own routes, like the exchange gateway
	inner.HandleFunc("GET /api/v1/exchange/{resource}/records/{key}", func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/exchange/", inner)
	mux.HandleFunc("GET /people/{id}/photo", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /files/{path...}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /console/{$}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/static/", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET example.org/h/{id}", func(http.ResponseWriter, *http.Request) {})

	for _, c := range []struct{ host, path, want string }{
		{"", "/api/v1/exchange/res-1/records/" + idno, "/api/v1/exchange/{resource}/records/{key}"},
		{"", "/people/" + idno + "/photo", "/people/{id}/photo"},
		{"", "/files/a/" + idno + ".pdf", "/files/{path...}"},
		{"", "/people/a%2F" + idno + "/photo", "/people/{id}/photo"},
		{"", "/console/", "/console/"},
		{"", "/static/css/dgov.css", "/static/css/dgov.css"},
		{"example.org", "/h/" + idno, "/h/{id}"},
		// Nothing matched: no pattern says which segments vary; the path is logged as it came.
		{"", "/nowhere", "/nowhere"},
	} {
		logger, buf := newLogger()
		h := httpx.Chain(mux, httpx.AssignRequestID, httpx.LogRequests(logger, nil))
		req := httptest.NewRequest("GET", c.path, nil)
		if c.host != "" {
			req.Host = c.host
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		var line map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &line); err != nil {
			t.Fatalf("%s: log line not JSON: %q", c.path, buf.String())
		}
		if line["path"] != c.want {
			t.Errorf("%s: logged path %v, want %s", c.path, line["path"], c.want)
		}
		if c.want != c.path && strings.Contains(buf.String(), idno) {
			t.Errorf("%s: the ID number was logged: %s", c.path, buf.String())
		}
	}
}

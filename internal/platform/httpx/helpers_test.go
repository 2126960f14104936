package httpx_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dgov/dgov/internal/platform/httpx"
)

// logBuffer is a slog sink safe for the concurrent writes of a server.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// scenario is one HTTP exchange against a handler, in the PocketBase style.
type scenario struct {
	name        string
	method      string
	url         string
	body        string
	headers     map[string]string
	remoteAddr  string
	wantStatus  int
	wantHeaders map[string]string // "" value: header must be absent
	wantBody    []string
	notBody     []string
}

func (sc scenario) run(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	method := sc.method
	if method == "" {
		method = http.MethodGet
	}
	if sc.url == "" {
		sc.url = "/"
	}
	var body *strings.Reader
	if sc.body != "" {
		body = strings.NewReader(sc.body)
	}
	var req *http.Request
	if body != nil {
		req = httptest.NewRequest(method, sc.url, body)
	} else {
		req = httptest.NewRequest(method, sc.url, nil)
	}
	for k, v := range sc.headers {
		req.Header.Set(k, v)
	}
	if sc.remoteAddr != "" {
		req.RemoteAddr = sc.remoteAddr
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if sc.wantStatus != 0 && rec.Code != sc.wantStatus {
		t.Errorf("status = %d, want %d; body: %s", rec.Code, sc.wantStatus, rec.Body.String())
	}
	for k, v := range sc.wantHeaders {
		got := rec.Header().Get(k)
		switch {
		case v == "" && got != "":
			t.Errorf("header %s = %q, want absent", k, got)
		case v != "" && got != v:
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	for _, s := range sc.wantBody {
		if !strings.Contains(rec.Body.String(), s) {
			t.Errorf("body lacks %q: %s", s, rec.Body.String())
		}
	}
	for _, s := range sc.notBody {
		if strings.Contains(rec.Body.String(), s) {
			t.Errorf("body has %q: %s", s, rec.Body.String())
		}
	}
	return rec
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, rec.Body.String())
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem is not JSON: %v: %s", err, rec.Body.String())
	}
	return p
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok " + httpx.RequestID(r.Context())))
	})
}

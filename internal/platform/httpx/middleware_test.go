package httpx_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/httpx"
)

func TestChainOrder(t *testing.T) {
	var got []string
	mw := func(name string) httpx.Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = append(got, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := httpx.Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = append(got, "h") }),
		mw("a"), nil, mw("b"))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if strings.Join(got, ",") != "a,b,h" {
		t.Fatalf("order = %v, want a,b,h", got)
	}
}

func TestRequestID(t *testing.T) {
	h := httpx.Chain(okHandler(), httpx.AssignRequestID)
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"none", "", false},
		{"sane", "req-123_abc.DEF:9", true},
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"too long", strings.Repeat("a", 65), false},
		{"newline injection", "abc\nlevel=ERROR", false},
		{"markup", "<script>", false},
		{"space", "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tt.incoming != "" {
				req.Header.Set(httpx.RequestIDHeader, tt.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			id := rec.Header().Get(httpx.RequestIDHeader)
			if id == "" {
				t.Fatal("no X-Request-ID in response")
			}
			if tt.keep && id != tt.incoming {
				t.Errorf("id = %q, want incoming %q", id, tt.incoming)
			}
			if !tt.keep && (id == tt.incoming || len(id) != 32) {
				t.Errorf("id = %q, want a fresh 32-hex id", id)
			}
			if body := rec.Body.String(); body != "ok "+id {
				t.Errorf("handler saw %q, want the same id %q in context", body, id)
			}
		})
	}
	// Two requests without an id get different ones.
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	h.ServeHTTP(a, httptest.NewRequest("GET", "/", nil))
	h.ServeHTTP(b, httptest.NewRequest("GET", "/", nil))
	if a.Header().Get(httpx.RequestIDHeader) == b.Header().Get(httpx.RequestIDHeader) {
		t.Error("two requests got the same id")
	}
}

func TestLogRequests(t *testing.T) {
	logger, buf := newLogger()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpx.Logger(r.Context()).Info("inside handler")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("12345"))
	})
	proxies, _ := httpx.ParseTrustedProxies("10.0.0.0/8")
	h := httpx.Chain(mux, httpx.AssignRequestID, httpx.LogRequests(logger, proxies))

	req := httptest.NewRequest("GET", "/items/7?idno=110101199003077777", nil)
	req.Header.Set(httpx.RequestIDHeader, "rid-1")
	req.RemoteAddr = "10.1.2.3:5555"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	h.ServeHTTP(httptest.NewRecorder(), req)

	var lines []map[string]any
	for l := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %d: %s", len(lines), buf.String())
	}
	if lines[0]["msg"] != "inside handler" || lines[0]["request_id"] != "rid-1" {
		t.Errorf("handler log lacks request id: %v", lines[0])
	}
	want := map[string]any{
		"msg": "http request", "method": "GET", "path": "/items/{id}", "route": "GET /items/{id}",
		"status": float64(201), "bytes": float64(5), "request_id": "rid-1", "remote_ip": "203.0.113.9",
	}
	for k, v := range want {
		if lines[1][k] != v {
			t.Errorf("access log %s = %v, want %v", k, lines[1][k], v)
		}
	}
	if _, ok := lines[1]["duration"]; !ok {
		t.Error("access log has no duration")
	}
	if strings.Contains(buf.String(), "110101199003077777") {
		t.Error("query string (personal data) was logged")
	}
}

func TestRecover(t *testing.T) {
	logger, buf := newLogger()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", "attachment; filename=x.csv")
		panic("secret database password in panic")
	})
	mux.HandleFunc("GET /late", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("partial"))
		panic("after the header")
	})
	mux.HandleFunc("GET /fine", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("fine")) })
	h := httpx.Chain(mux, httpx.AssignRequestID, httpx.LogRequests(logger, nil), httpx.Recover)

	t.Run("panic becomes 500 problem", func(t *testing.T) {
		rec := scenario{url: "/boom", headers: map[string]string{httpx.RequestIDHeader: "rid-p1"},
			wantStatus:  500,
			wantHeaders: map[string]string{"Content-Disposition": "", "Cache-Control": "no-store"},
			notBody:     []string{"secret", "goroutine", "panic", ".go:"},
		}.run(t, h)
		p := decodeProblem(t, rec)
		if p["request_id"] != "rid-p1" || p["code"] != "internal" || p["status"] != float64(500) {
			t.Errorf("problem = %v", p)
		}
		if p["title"] != "服务器内部错误，请稍后重试" {
			t.Errorf("title = %v, want the generic Chinese message", p["title"])
		}
		logs := buf.String()
		for _, want := range []string{"panic serving request", "secret database password in panic", "goroutine", "rid-p1", `"status":500`} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q", want)
			}
		}
	})
	t.Run("panic after header aborts", func(t *testing.T) {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/late", nil))
	})
	t.Run("no panic untouched", func(t *testing.T) {
		scenario{url: "/fine", wantStatus: 200, wantBody: []string{"fine"}}.run(t, h)
	})
}

func TestSecurityHeaders(t *testing.T) {
	proxies, _ := httpx.ParseTrustedProxies("10.0.0.1")
	h := httpx.Chain(okHandler(), httpx.SecurityHeaders(proxies))
	always := map[string]string{
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"X-Frame-Options":         "DENY",
		"Permissions-Policy":      httpx.PermissionsPolicy,
	}
	tests := []struct {
		name string
		tls  bool
		xfp  string
		peer string
		hsts bool
	}{
		{"plain http", false, "", "192.0.2.1:1", false},
		{"direct tls", true, "", "192.0.2.1:1", true},
		{"trusted proxy says https", false, "https", "10.0.0.1:1", true},
		{"untrusted peer says https", false, "https", "192.0.2.1:1", false},
		{"trusted proxy says http", false, "http", "10.0.0.1:1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.peer
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			if tt.xfp != "" {
				req.Header.Set("X-Forwarded-Proto", tt.xfp)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			for k, v := range always {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := rec.Header().Get("Strict-Transport-Security"); (got != "") != tt.hsts {
				t.Errorf("HSTS = %q, want present=%v", got, tt.hsts)
			}
			if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
				t.Error("no CSP")
			}
		})
	}
}

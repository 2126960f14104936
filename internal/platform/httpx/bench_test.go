package httpx_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/dgov/dgov/internal/platform/httpx"
)

// BenchmarkStack measures the full kernel stack (request id, security headers, logging to a
// discarded JSON handler, metrics, recover, rate limit, CSRF) around a trivial handler.
func BenchmarkStack(b *testing.B) {
	csrf, err := httpx.NewCSRF(httpx.CSRFConfig{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := httpx.Chain(mux, httpx.Stack(httpx.Config{
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:     httpx.NewMetrics(prometheus.NewRegistry()),
		RateLimiter: httpx.NewRateLimiter(httpx.RateLimitConfig{Rate: rate.Inf}),
		CSRF:        csrf,
	})...)
	// A returning browser: has its CSRF cookie already.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/items/1", nil))
	cookie := rec.Result().Cookies()[0]

	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/items/42", nil)
		req.AddCookie(cookie)
		for pb.Next() {
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

// BenchmarkBare is the trivial handler behind the mux alone, for comparison.
func BenchmarkBare(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/items/42", nil)
		for pb.Next() {
			w := &discardWriter{h: http.Header{}}
			mux.ServeHTTP(w, req)
		}
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return len(p), nil
}

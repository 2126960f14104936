package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dgov/dgov/internal/platform/httpx"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := httpx.NewMetrics(reg)
	if again := httpx.NewMetrics(reg); again == nil {
		t.Fatal("second NewMetrics on one registry failed")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/items/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("x")) })
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("x") })
	mux.Handle("GET /metrics", m.Handler())
	logger, _ := newLogger()
	h := httpx.Chain(mux, httpx.Stack(httpx.Config{Logger: logger, Metrics: m})...)

	for _, u := range []string{"/api/v1/items/1", "/api/v1/items/2", "/api/v1/items/3", "/boom", "/nope/../../etc/passwd", "/random-scanner-path"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", u, nil))
	}
	rec := scenario{url: "/metrics", wantStatus: 200, wantBody: []string{
		`dgov_http_requests_total{method="GET",route="GET /api/v1/items/{id}",status="200"} 3`,
		`dgov_http_requests_total{method="GET",route="GET /boom",status="500"} 1`,
		`dgov_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`dgov_http_request_duration_seconds_bucket{method="GET",route="GET /api/v1/items/{id}",le="+Inf"} 3`,
		`dgov_http_requests_in_flight 1`, // the scrape itself
		"go_goroutines", "go_memstats_alloc_bytes",
	}, notBody: []string{"/api/v1/items/1", "random-scanner-path"}}.run(t, h)
	if !strings.Contains(rec.Body.String(), "process_") {
		t.Log("no process_ metrics (platform without procfs)")
	}
}

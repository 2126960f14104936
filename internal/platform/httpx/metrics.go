package httpx

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics records Prometheus metrics of HTTP traffic on a registry the caller owns (no global
// default registry, so tests and several servers in one process do not collide).
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewMetrics registers the HTTP metrics, and the Go runtime and process collectors, on reg.
// Calling it twice with one registry reuses what is already registered.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{reg: reg}
	m.requests = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dgov_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status.",
	}, []string{"route", "method", "status"}))
	m.duration = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dgov_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by route pattern and method.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "method"}))
	m.inFlight = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dgov_http_requests_in_flight",
		Help: "HTTP requests being served.",
	}))
	register(reg, collectors.NewGoCollector())
	register(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // conflicting metric definitions: a programming error
	}
	return c
}

// UnmatchedRoute labels requests no route matched, so scanners cannot grow the label set.
const UnmatchedRoute = "unmatched"

// Middleware counts and times requests. The route label is the ServeMux pattern
// ("GET /api/v1/items/{id}"), never the raw path, so the label set stays small. The mux sets
// the pattern on the *http.Request it is given; middleware between this one and the mux must
// pass that request on unchanged (the kernel's own do) for the pattern to be seen here.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := record(w)
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			route := r.Pattern
			// For CONNECT the mux may report the request's own path as the pattern.
			if route == "" || r.Method == http.MethodConnect {
				route = UnmatchedRoute
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			method := methodLabel(r.Method)
			m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// Handler serves the registry in the Prometheus exposition format (mount at GET /metrics).
func (m *Metrics) Handler() http.Handler { return MetricsHandler(m.reg) }

// MetricsHandler serves reg in the Prometheus exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:            reg, // counts scrape errors on the same registry
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Check tells whether a dependency (database, NATS, blob store) is usable.
type Check func(ctx context.Context) error

// Health serves /healthz (the process is alive) and /readyz (it can do its work: every
// registered check passes, and it is not draining for shutdown).
type Health struct {
	timeout  time.Duration
	mu       sync.RWMutex
	checks   []namedCheck
	draining atomic.Bool
}

type namedCheck struct {
	name  string
	check Check
}

// NewHealth makes a Health whose checks each get timeout (0: 2 s).
func NewHealth(timeout time.Duration) *Health {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Health{timeout: timeout}
}

// Register adds a named readiness check; a later one with the same name replaces it.
func (h *Health) Register(name string, check Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.checks {
		if h.checks[i].name == name {
			h.checks[i].check = check
			return
		}
	}
	h.checks = append(h.checks, namedCheck{name, check})
}

// Drain makes Readyz answer 503 from now on, so load balancers stop sending new requests
// before the server shuts down.
func (h *Health) Drain() { h.draining.Store(true) }

// Healthz answers 200 "ok" as long as the process serves HTTP. It checks nothing else on
// purpose: a database outage must not make an orchestrator restart every node.
func (h *Health) Healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// CheckResult is one check in the Readyz answer.
type CheckResult struct {
	Name       string `json:"name"`
	Status     string `json:"status"` // ok, fail, timeout
	DurationMS int64  `json:"duration_ms"`
}

// Readiness is the Readyz answer.
type Readiness struct {
	Status string        `json:"status"` // ok, unavailable, draining
	Checks []CheckResult `json:"checks"`
}

// Readyz runs every check at once, each under the timeout, and answers 200 if all pass, else
// 503. Failure details go to the log, not to the (possibly public) response. A check that
// ignores its context is abandoned at the timeout.
func (h *Health) Readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	res := h.Run(r.Context())
	status := http.StatusOK
	if res.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	_ = WriteJSON(w, status, res)
}

// Run runs the checks and reports, logging failures with Logger(ctx).
func (h *Health) Run(ctx context.Context) Readiness {
	h.mu.RLock()
	checks := slices.Clone(h.checks)
	h.mu.RUnlock()

	results := make([]CheckResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			results[i] = h.runOne(ctx, c)
		})
	}
	wg.Wait()

	out := Readiness{Status: "ok", Checks: results}
	for _, c := range results {
		if c.Status != "ok" {
			out.Status = "unavailable"
		}
	}
	if h.draining.Load() {
		out.Status = "draining"
	}
	return out
}

func (h *Health) runOne(ctx context.Context, c namedCheck) CheckResult {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1) // buffered: an abandoned check can still finish and exit
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- errors.New("check panicked")
			}
		}()
		done <- c.check(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	res := CheckResult{Name: c.name, Status: "ok", DurationMS: time.Since(start).Milliseconds()}
	if err != nil {
		res.Status = "fail"
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			res.Status = "timeout"
		}
		Logger(ctx).LogAttrs(ctx, slog.LevelWarn, "readiness check failed",
			slog.String("check", c.name), slog.String("status", res.Status), slog.Any("error", err))
	}
	return res
}

// Package httpx is the HTTP kernel every dgov surface (portal, console, API, OIDC, open data)
// is built on: middleware (request id, logging, recovery, security headers, CSRF, rate limits,
// metrics), RFC 9457 problem responses with bilingual text, JSON helpers, health endpoints,
// client-IP resolution behind proxies, and a server with sane timeouts.
//
// It uses only net/http and its ServeMux; nothing here is a framework type that engines must
// learn. Middleware is a plain func(http.Handler) http.Handler.
package httpx

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

// Middleware wraps a handler.
type Middleware = func(http.Handler) http.Handler

// Chain wraps h in mws; the first middleware is the outermost, so
// Chain(h, a, b) serves a(b(h)).
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			h = mws[i](h)
		}
	}
	return h
}

// Config assembles the standard middleware stack of a dgov surface. Nil parts are left out.
type Config struct {
	Logger            *slog.Logger // request log; nil: slog.Default()
	TrustedProxies    TrustedProxies
	Metrics           *Metrics
	RateLimiter       *RateLimiter
	CSRF              *CSRF
	HTMLErrorRenderer HTMLErrorRenderer // errors for browsers; nil: always problem+json
}

// Stack returns the middleware of cfg in the order they must run:
//
//	request id → error pages → security headers → logging → metrics → recover → rate limit → CSRF
//
// Logging and metrics sit outside Recover so a panic is logged and counted as the 500 it
// becomes, and outside the rate limiter and CSRF so rejections are visible too. Use it as
// httpx.Chain(mux, httpx.Stack(cfg)...).
func Stack(cfg Config) []Middleware {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	mws := []Middleware{AssignRequestID}
	if cfg.HTMLErrorRenderer != nil {
		mws = append(mws, WithHTMLErrors(cfg.HTMLErrorRenderer))
	}
	mws = append(mws, SecurityHeaders(cfg.TrustedProxies), LogRequests(logger, cfg.TrustedProxies))
	if cfg.Metrics != nil {
		mws = append(mws, cfg.Metrics.Middleware)
	}
	mws = append(mws, Recover)
	if cfg.RateLimiter != nil {
		mws = append(mws, cfg.RateLimiter.Middleware)
	}
	if cfg.CSRF != nil {
		mws = append(mws, cfg.CSRF.Middleware)
	}
	return mws
}

// reqState is everything the kernel keeps per request. It lives in the context as one
// pointer that middleware fills in place, so the request is copied (WithContext) once, by
// the first kernel middleware, and the *http.Request the ServeMux sets Pattern on is the
// same one the metrics and logging middleware hold.
type reqState struct {
	id         string
	logger     *slog.Logger // base logger from LogRequests
	loggerOnce sync.Once
	withID     *slog.Logger // logger with the request id, made by Logger(ctx)
	htmlErrors HTMLErrorRenderer
	csrf       *CSRF
	csrfSecret []byte
	clientIP   string // resolved by LogRequests, for audit entries made deeper down
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// ensureState returns the request's state, attaching a fresh one (and so a new request)
// when no kernel middleware ran before.
func ensureState(r *http.Request) (*reqState, *http.Request) {
	if st := stateFrom(r.Context()); st != nil {
		return st, r
	}
	st := &reqState{}
	return st, r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
}

// recorder remembers the status and size of a response. Logging, metrics and recovery share
// one recorder per request.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func record(w http.ResponseWriter) *recorder {
	if rec, ok := w.(*recorder); ok {
		return rec
	}
	return &recorder{ResponseWriter: w}
}

func (rec *recorder) WriteHeader(code int) {
	// 1xx informational answers (103 Early Hints) are not the final status.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rec.ResponseWriter.WriteHeader(code)
		return
	}
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// ReadFrom keeps io.Copy to the response on the fast path (sendfile) of the real writer.
func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
	var n int64
	var err error
	if rf, ok := rec.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(rec.ResponseWriter, src)
	}
	rec.bytes += n
	return n, err
}

// Status is the final status sent, 200 if the handler wrote a body without one, 0 if nothing
// was written yet.
func (rec *recorder) Status() int { return rec.status }

// Flush and Hijack are spelled out because streaming code often type-asserts them;
// everything else reaches the real writer through Unwrap (http.ResponseController).
func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusSwitchingProtocols, true
	}
	return c, rw, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

// requestIDKey is RequestIDHeader in canonical form, to index http.Header directly.
const requestIDKey = "X-Request-Id"

const maxRequestIDLen = 64

// AssignRequestID takes a well-formed X-Request-ID from the client (or the proxy in front),
// or makes a new one, and puts it in the context and the response header. An incoming id is
// kept only if it is 1–64 characters of [A-Za-z0-9._:-], so it cannot forge log lines or
// carry markup into pages that show it.
func AssignRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, r := ensureState(r)
		id := r.Header.Get(requestIDKey)
		if !validRequestID(id) {
			id = newRequestID()
		}
		st.id = id
		w.Header()[requestIDKey] = []string{id}
		next.ServeHTTP(w, r)
	})
}

// RequestID is the id of the request ctx belongs to, "" outside AssignRequestID.
func RequestID(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.id
	}
	return ""
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// LogRequests logs one line per request with log/slog: method, path, route, status, bytes,
// duration, request id and client ip (see ClientIP for proxies). The query string is left out:
// it may carry personal data (search by ID number, phone); so are the path segments the
// route's wildcards matched (an ID in /records/{key}), logged as the wildcard. Inside the
// request, Logger(ctx) returns logger with the request id attached.
func LogRequests(logger *slog.Logger, proxies TrustedProxies) Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			st, r := ensureState(r)
			st.logger = logger // Logger(ctx) adds the request id when asked
			if ip := ClientIP(r, proxies); ip.IsValid() {
				st.clientIP = ip.String()
			}
			rec := record(w)
			defer func() {
				status := rec.status
				if status == 0 {
					// Nothing written: net/http answers 200 with an empty body.
					status = http.StatusOK
				}
				level := slog.LevelInfo
				if status >= 500 {
					level = slog.LevelError
				}
				logger.LogAttrs(r.Context(), level, "http request",
					slog.String("request_id", st.id),
					slog.String("method", r.Method),
					slog.String("path", loggedPath(r)),
					slog.String("route", r.Pattern),
					slog.Int("status", status),
					slog.Int64("bytes", rec.bytes),
					slog.Duration("duration", time.Since(start)),
					slog.String("remote_ip", st.clientIP),
				)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// Logger is the request's logger (LogRequests' logger, else slog.Default()) with the request
// id attached; slog.Default() outside a request.
func Logger(ctx context.Context) *slog.Logger {
	st := stateFrom(ctx)
	if st == nil {
		return slog.Default()
	}
	return st.requestLogger()
}

// requestLogger builds the logger on first use: most requests never log from the handler,
// and With is not free. Handlers may log from several goroutines, hence the Once.
func (st *reqState) requestLogger() *slog.Logger {
	st.loggerOnce.Do(func() {
		base := st.logger
		if base == nil {
			base = slog.Default()
		}
		st.withID = base
		if st.id != "" {
			st.withID = base.With(slog.String("request_id", st.id))
		}
	})
	return st.withID
}

// ClientIPFrom is the client address LogRequests resolved for this request ("" outside a
// request), so services deep in a call can record who acted without the *http.Request.
func ClientIPFrom(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.clientIP
	}
	return ""
}

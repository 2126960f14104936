package httpx

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Recover turns a panic in the handler into a 500 problem (generic text, request id, no
// stack) and logs the panic value with its stack. If the response had already started, the
// connection is aborted instead, so the client sees a broken response rather than a
// truncated one that looks complete.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := record(w)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // a deliberate abort, not a bug
			}
			Logger(r.Context()).LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("panic", fmt.Sprint(v)),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("stack", string(debug.Stack())),
			)
			if rec.wroteHeader {
				panic(http.ErrAbortHandler)
			}
			writeProblem(rec, r, internalProblem(r))
		}()
		next.ServeHTTP(rec, r)
	})
}

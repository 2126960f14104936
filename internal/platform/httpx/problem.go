package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// ProblemTypePrefix starts the RFC 9457 "type" of every dgov problem; the i18n code follows.
const ProblemTypePrefix = "urn:dgov:problem:"

// Problem is an RFC 9457 problem detail (application/problem+json) with dgov's extensions:
// the stable code, the input field, the request id and the title in both languages.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	TitleZH   string `json:"title_zh"`
	TitleEN   string `json:"title_en"`

	// Lang is the language Title and Detail are in, for HTML renderers.
	Lang i18n.Lang `json:"-"`
}

// HTMLErrorRenderer renders a problem as a page for a browser. It writes the whole response,
// including the status p.Status; security and request-id headers are already set.
type HTMLErrorRenderer func(w http.ResponseWriter, r *http.Request, p *Problem)

// WithHTMLErrors makes WriteError answer browsers (requests preferring text/html) with render
// instead of problem+json. Stack installs it from Config.HTMLErrorRenderer.
func WithHTMLErrors(render HTMLErrorRenderer) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, r := ensureState(r)
			st.htmlErrors = render
			next.ServeHTTP(w, r)
		})
	}
}

// NewProblem describes e for the request's language (i18n.FromRequest).
func NewProblem(r *http.Request, e *i18n.Error) *Problem {
	lang := i18n.FromRequest(r)
	status := e.HTTPStatus()
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	msg := e.Msg.In(lang)
	code := e.Code
	if code == "" {
		code = "error"
	}
	return &Problem{
		Type:      ProblemTypePrefix + code,
		Title:     msg,
		Status:    status,
		Detail:    msg, // an i18n.Error has one message: it is both the summary and the detail
		Code:      code,
		Field:     e.Field,
		RequestID: RequestID(r.Context()),
		TitleZH:   e.Msg.ZH,
		TitleEN:   e.Msg.EN,
		Lang:      lang,
	}
}

// WriteError answers with err as a problem. An *i18n.Error anywhere in err's chain gives the
// status and the text; a body too large for http.MaxBytesReader gives 413; anything else is a
// 500 with the generic message, while the real error goes to the log only. Errors of status
// 500 and above are logged with their cause; client errors that carry a cause at Info.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = errors.New("httpx.WriteError called with a nil error")
	}
	ie, ok := i18n.As(err)
	if !ok {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ie, ok = errTooLarge(mbe.Limit).Wrap(err), true
		}
	}
	log := Logger(r.Context())
	if rec, ok := w.(*recorder); ok && rec.wroteHeader {
		// Too late for a problem response; the handler already answered in part.
		log.LogAttrs(r.Context(), slog.LevelError, "error after the response started",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
		return
	}
	switch {
	case !ok:
		log.LogAttrs(r.Context(), slog.LevelError, "internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
		writeProblem(w, r, internalProblem(r))
		return
	case ie.HTTPStatus() >= 500:
		log.LogAttrs(r.Context(), slog.LevelError, "server error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("code", ie.Code), slog.Any("error", err))
	case ie.Err != nil:
		log.LogAttrs(r.Context(), slog.LevelInfo, "client error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("code", ie.Code), slog.Any("error", err))
	}
	writeProblem(w, r, NewProblem(r, ie))
}

func internalProblem(r *http.Request) *Problem { return NewProblem(r, i18n.ErrInternal) }

// writeProblem sends p as HTML to browsers when a renderer is installed, else as
// problem+json. Headers a failed handler may have set for its own body are dropped.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Disposition", "ETag", "Last-Modified", "Content-Range"} {
		h.Del(k)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", string(p.Lang))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept")
	if st := stateFrom(r.Context()); st != nil && st.htmlErrors != nil && prefersHTML(r.Header.Get("Accept")) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		st.htmlErrors(w, r, p)
		return
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: strings and ints only
		body = []byte(`{"type":"` + ProblemTypePrefix + `internal","status":500,"code":"internal"}`)
	}
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
}

// prefersHTML reports whether the Accept header ranks an HTML type strictly above JSON.
// "*/*" alone counts for neither: API clients and curl send it.
func prefersHTML(accept string) bool {
	if accept == "" {
		return false
	}
	var qHTML, qJSON float64 = -1, -1
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch {
		case mt == "text/html" || mt == "application/xhtml+xml":
			qHTML = max(qHTML, q)
		case mt == "application/json" || mt == "application/problem+json" ||
			(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")):
			qJSON = max(qJSON, q)
		}
	}
	return qHTML > 0 && qHTML > qJSON
}

// WriteJSON answers with v as JSON. v is encoded before anything is sent, so an encoding
// failure still gives a clean 500 problem (in Chinese, with both titles); the error is
// returned for the caller to log.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		p := &Problem{
			Type: ProblemTypePrefix + i18n.ErrInternal.Code, Title: i18n.ErrInternal.Msg.ZH,
			Status: http.StatusInternalServerError, Code: i18n.ErrInternal.Code,
			TitleZH: i18n.ErrInternal.Msg.ZH, TitleEN: i18n.ErrInternal.Msg.EN, Lang: i18n.ZH,
		}
		pb, _ := json.Marshal(p)
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(p.Status)
		_, _ = w.Write(append(pb, '\n'))
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}

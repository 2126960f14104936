package httpx_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

var errChecksum = &i18n.Error{Code: "ids.checksum", Status: http.StatusUnprocessableEntity,
	Msg: i18n.T("身份证号码校验位不正确", "the ID number's check digit is wrong")}

func TestWriteError(t *testing.T) {
	logger, logs := newLogger()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checksum", func(w http.ResponseWriter, r *http.Request) {
		err := fmt.Errorf("register citizen: %w", errChecksum.WithField("id_number").Wrap(errors.New("digit 7 != X")))
		httpx.WriteError(w, r, err)
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, fmt.Errorf("load item 7: %w", i18n.ErrNotFound))
	})
	mux.HandleFunc("GET /driver", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, errors.New(`pq: relation "citizens" does not exist`))
	})
	mux.HandleFunc("GET /toolarge", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, fmt.Errorf("upload: %w", &http.MaxBytesError{Limit: 1024}))
	})
	h := httpx.Chain(mux, httpx.AssignRequestID, httpx.LogRequests(logger, nil))

	tests := []struct {
		name   string
		url    string
		lang   string
		status int
		want   map[string]any
	}{
		{"i18n error in Chinese (default)", "/checksum", "", 422, map[string]any{
			"type": "urn:dgov:problem:ids.checksum", "title": "身份证号码校验位不正确", "detail": "身份证号码校验位不正确",
			"status": float64(422), "code": "ids.checksum", "field": "id_number", "request_id": "rid-7",
			"title_zh": "身份证号码校验位不正确", "title_en": "the ID number's check digit is wrong",
		}},
		{"i18n error in English", "/checksum", "en-US,en;q=0.9,zh;q=0.5", 422, map[string]any{
			"title": "the ID number's check digit is wrong", "detail": "the ID number's check digit is wrong",
			"title_zh": "身份证号码校验位不正确", "title_en": "the ID number's check digit is wrong", "code": "ids.checksum",
		}},
		{"wrapped sentinel", "/missing", "zh-CN", 404, map[string]any{"code": "not_found", "title": "未找到", "type": "urn:dgov:problem:not_found"}},
		{"raw error is 500 generic", "/driver", "en", 500, map[string]any{
			"code": "internal", "title": "internal error, please try again later", "request_id": "rid-7",
		}},
		{"body too large", "/toolarge", "", 413, map[string]any{"code": "request.too_large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{httpx.RequestIDHeader: "rid-7"}
			if tt.lang != "" {
				hdr["Accept-Language"] = tt.lang
			}
			rec := scenario{url: tt.url, headers: hdr, wantStatus: tt.status,
				wantHeaders: map[string]string{"Cache-Control": "no-store"},
				notBody:     []string{"pq:", "digit 7", "citizens"}}.run(t, h)
			p := decodeProblem(t, rec)
			for k, v := range tt.want {
				if p[k] != v {
					t.Errorf("%s = %#v, want %#v", k, p[k], v)
				}
			}
		})
	}
	if l := logs.String(); !strings.Contains(l, `relation \"citizens\" does not exist`) || !strings.Contains(l, "digit 7 != X") {
		t.Errorf("real errors not logged: %s", l)
	}
}

func TestWriteErrorHTML(t *testing.T) {
	render := func(w http.ResponseWriter, r *http.Request, p *httpx.Problem) {
		w.WriteHeader(p.Status)
		fmt.Fprintf(w, "<h1>%s</h1><p>%s</p>", p.Title, p.RequestID)
	}
	quiet, _ := newLogger()
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, i18n.ErrForbidden)
	}), httpx.Stack(httpx.Config{HTMLErrorRenderer: render, Logger: quiet})...)
	tests := []scenario{
		{name: "browser gets the page", headers: map[string]string{
			"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", httpx.RequestIDHeader: "rid-h"},
			wantStatus: 403, wantBody: []string{"<h1>无权执行此操作</h1>", "rid-h"},
			wantHeaders: map[string]string{"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": httpx.ContentSecurityPolicy}},
		{name: "API client gets problem+json", headers: map[string]string{"Accept": "application/json"},
			wantStatus: 403, wantHeaders: map[string]string{"Content-Type": "application/problem+json"}},
		{name: "curl */* gets problem+json", headers: map[string]string{"Accept": "*/*"},
			wantStatus: 403, wantHeaders: map[string]string{"Content-Type": "application/problem+json"}},
		{name: "json preferred over html", headers: map[string]string{"Accept": "text/html;q=0.5, application/problem+json"},
			wantStatus: 403, wantHeaders: map[string]string{"Content-Type": "application/problem+json"}},
		{name: "html refused with q=0", headers: map[string]string{"Accept": "text/html;q=0"},
			wantStatus: 403, wantHeaders: map[string]string{"Content-Type": "application/problem+json"}},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, h) })
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := httpx.WriteJSON(rec, http.StatusCreated, map[string]string{"名称": "太原"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 201 || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" ||
		rec.Body.String() != "{\"名称\":\"太原\"}\n" {
		t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	rec = httptest.NewRecorder()
	if err := httpx.WriteJSON(rec, 200, map[string]any{"f": func() {}}); err == nil {
		t.Error("unencodable value: no error")
	}
	if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("unencodable value answered %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

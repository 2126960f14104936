package httpx_test

import (
	"bytes"
	"crypto/tls"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/httpx"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newCSRFServer(t *testing.T) http.Handler {
	t.Helper()
	c, err := httpx.NewCSRF(httpx.CSRFConfig{Key: testKey, TrustedOrigins: []string{"https://www.sx.gov.cn"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Exempt("POST /oidc/token")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(httpx.CSRFToken(r)))
	})
	post := func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("done " + r.PostFormValue("name")))
	}
	mux.HandleFunc("POST /form", post)
	mux.HandleFunc("DELETE /form", post)
	mux.HandleFunc("POST /oidc/token", post)
	mux.HandleFunc("POST /api/items", post)
	logger, _ := newLogger() // keep rejections out of the test output
	return httpx.Chain(mux, httpx.AssignRequestID, httpx.LogRequests(logger, nil), httpx.Recover, c.Middleware)
}

// browserSession fetches the form page like a browser: the secret cookie and a token.
func browserSession(t *testing.T, h http.Handler) (*http.Cookie, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/form", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("want one csrf cookie, got %v", cookies)
	}
	ck := cookies[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Errorf("cookie attributes = %+v", ck)
	}
	tok := rec.Body.String()
	if tok == "" {
		t.Fatal("CSRFToken empty")
	}
	return ck, tok
}

func TestCSRF(t *testing.T) {
	h := newCSRFServer(t)
	ck, tok := browserSession(t, h)
	_, otherTok := browserSession(t, h) // another browser's token
	cookie := ck.Name + "=" + ck.Value
	form := "application/x-www-form-urlencoded"
	tests := []scenario{
		{name: "GET is safe", url: "/form", wantStatus: 200},
		{name: "form POST without token", method: "POST", url: "/form", body: "name=x",
			headers: map[string]string{"Content-Type": form, "Cookie": cookie}, wantStatus: 403,
			wantBody: []string{"csrf.invalid", "页面已过期", "request_id"}},
		{name: "form POST with token", method: "POST", url: "/form",
			body:    "name=x&" + httpx.CSRFFieldName + "=" + url.QueryEscape(tok),
			headers: map[string]string{"Content-Type": form, "Cookie": cookie}, wantStatus: 200, wantBody: []string{"done x"}},
		{name: "token in header", method: "DELETE", url: "/form",
			headers: map[string]string{"Cookie": cookie, httpx.CSRFHeaderName: tok}, wantStatus: 200},
		{name: "token of another browser", method: "POST", url: "/form",
			body:    httpx.CSRFFieldName + "=" + url.QueryEscape(otherTok),
			headers: map[string]string{"Content-Type": form, "Cookie": cookie}, wantStatus: 403},
		{name: "garbage token", method: "POST", url: "/form", body: httpx.CSRFFieldName + "=AAAA",
			headers: map[string]string{"Content-Type": form, "Cookie": cookie}, wantStatus: 403},
		{name: "token without cookie (login CSRF)", method: "POST", url: "/form",
			body:    httpx.CSRFFieldName + "=" + url.QueryEscape(tok),
			headers: map[string]string{"Content-Type": form}, wantStatus: 403},
		{name: "english message", method: "POST", url: "/form", body: "name=x",
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Accept-Language": "en-US,en;q=0.9"},
			wantStatus: 403, wantBody: []string{"reload the page"}},
		{name: "bearer API passes", method: "POST", url: "/form", body: "name=api",
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Authorization": "Bearer abc"},
			wantStatus: 200, wantBody: []string{"done api"}},
		{name: "basic auth is not exempt", method: "POST", url: "/form", body: "name=x",
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Authorization": "Basic dTpw"},
			wantStatus: 403},
		{name: "JSON without cookies passes", method: "POST", url: "/api/items", body: `{}`,
			headers: map[string]string{"Content-Type": "application/json"}, wantStatus: 200},
		{name: "JSON with cookies needs token", method: "POST", url: "/api/items", body: `{}`,
			headers: map[string]string{"Content-Type": "application/json", "Cookie": cookie}, wantStatus: 403},
		{name: "text/plain cross-site form", method: "POST", url: "/api/items", body: `{"a":1}`,
			headers: map[string]string{"Content-Type": "text/plain"}, wantStatus: 403},
		{name: "cross-site Origin with valid token", method: "POST", url: "/form",
			body:       httpx.CSRFFieldName + "=" + url.QueryEscape(tok),
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Origin": "https://evil.example"},
			wantStatus: 403},
		{name: "Sec-Fetch-Site cross-site with valid token", method: "POST", url: "/form",
			body:       httpx.CSRFFieldName + "=" + url.QueryEscape(tok),
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Sec-Fetch-Site": "cross-site"},
			wantStatus: 403},
		{name: "Sec-Fetch-Site same-site (sibling host) refused", method: "POST", url: "/form",
			body:       httpx.CSRFFieldName + "=" + url.QueryEscape(tok),
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Sec-Fetch-Site": "same-site"},
			wantStatus: 403},
		{name: "same-origin fetch", method: "POST", url: "/form",
			body:       httpx.CSRFFieldName + "=" + url.QueryEscape(tok),
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"},
			wantStatus: 200},
		{name: "trusted origin", method: "POST", url: "/form",
			body:       httpx.CSRFFieldName + "=" + url.QueryEscape(tok),
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Origin": "https://www.sx.gov.cn"},
			wantStatus: 200},
		{name: "exempt route", method: "POST", url: "/oidc/token", body: "name=client",
			headers:    map[string]string{"Content-Type": form, "Cookie": cookie, "Origin": "https://rp.example"},
			wantStatus: 200, wantBody: []string{"done client"}},
		{name: "exempt pattern does not leak to other methods", method: "DELETE", url: "/oidc/token",
			headers: map[string]string{"Cookie": cookie}, wantStatus: 403},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, h) })
	}
}

func TestCSRFMultipart(t *testing.T) {
	h := newCSRFServer(t)
	ck, tok := browserSession(t, h)
	for _, withToken := range []bool{true, false} {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		if withToken {
			_ = mw.WriteField(httpx.CSRFFieldName, tok)
		}
		_ = mw.WriteField("name", "upload")
		fw, _ := mw.CreateFormFile("file", "scan.pdf")
		_, _ = fw.Write([]byte("%PDF-1.7"))
		_ = mw.Close()
		req := httptest.NewRequest("POST", "/form", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.AddCookie(ck)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := 403
		if withToken {
			want = 200
		}
		if rec.Code != want {
			t.Errorf("withToken=%v: status %d, want %d: %s", withToken, rec.Code, want, rec.Body.String())
		}
		if withToken && !strings.Contains(rec.Body.String(), "done upload") {
			t.Errorf("handler did not see the parsed form: %s", rec.Body.String())
		}
	}
}

func TestCSRFTokensAreMasked(t *testing.T) {
	h := newCSRFServer(t)
	ck, tok1 := browserSession(t, h)
	req := httptest.NewRequest("GET", "/form", nil)
	req.AddCookie(ck)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	tok2 := rec.Body.String()
	if tok1 == tok2 {
		t.Error("two renderings gave the same token (BREACH)")
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Error("cookie re-set although the browser has a valid one")
	}
	// Both renderings are valid for the same cookie.
	for _, tok := range []string{tok1, tok2} {
		req := httptest.NewRequest("POST", "/form", nil)
		req.AddCookie(ck)
		req.Header.Set(httpx.CSRFHeaderName, tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Errorf("token %q refused: %d", tok, rec.Code)
		}
	}
}

func TestCSRFCookieOverTLS(t *testing.T) {
	h := newCSRFServer(t)
	req := httptest.NewRequest("GET", "https://example.com/form", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	cs := rec.Result().Cookies()
	if len(cs) != 1 || !cs[0].Secure || cs[0].Name != "__Host-dgov_csrf" {
		t.Fatalf("cookies over TLS = %+v", cs)
	}
}

func TestNewCSRFShortKey(t *testing.T) {
	if _, err := httpx.NewCSRF(httpx.CSRFConfig{Key: []byte("short")}); err == nil {
		t.Fatal("short key accepted")
	}
}

package httpx

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// CSRF names, fixed so templates and scripts can rely on them.
const (
	CSRFFieldName  = "csrf_token"   // hidden form field
	CSRFHeaderName = "X-CSRF-Token" // header for htmx and fetch (hx-headers)
	// The per-browser secret. Over HTTPS the __Host- prefix makes the browser refuse it from a
	// sibling subdomain or over plain HTTP, so another host cannot plant a known secret.
	csrfCookieName       = "dgov_csrf"
	csrfCookieNameSecure = "__Host-dgov_csrf"
	csrfCookieMaxAge     = 7 * 24 * time.Hour
	csrfSecretLen        = 32
)

// ErrCSRF is the answer to a request that failed the CSRF check.
var ErrCSRF = &i18n.Error{Code: "csrf.invalid", Status: http.StatusForbidden, Msg: i18n.T(
	"页面已过期或请求来源不可信，请刷新页面后重试",
	"this page has expired or the request came from another site; reload the page and try again")}

// CSRFConfig configures NewCSRF.
type CSRFConfig struct {
	// Key is the server's secret for tokens, at least 32 bytes, the same on every node.
	Key []byte
	// TrustedProxies may vouch for HTTPS (X-Forwarded-Proto), which decides the cookie's
	// Secure flag and name.
	TrustedProxies TrustedProxies
	// TrustedOrigins are other origins ("https://www.sx.gov.cn") whose pages may post here.
	TrustedOrigins []string
	// MaxFormBytes bounds a multipart body read to find the token field; 0: 32 MiB.
	MaxFormBytes int64
}

// CSRF protects cookie-authenticated forms against cross-site request forgery with two
// independent checks on every unsafe request (anything but GET, HEAD, OPTIONS, TRACE):
//
//  1. The browser's own word: Sec-Fetch-Site must be same-origin, or Origin must match the
//     host (http.CrossOriginProtection).
//  2. A synchronizer token: each browser gets a random secret in an HttpOnly, SameSite=Lax
//     cookie; the token is HMAC-SHA256(server key, secret), sent back in the csrf_token form
//     field or the X-CSRF-Token header. Each rendering masks it with a fresh one-time pad, so
//     pages never repeat it (BREACH).
//
// Requests authenticated by an Authorization header (API clients; not Basic, which browsers
// replay on their own), requests with neither cookies nor a form body (nothing ambient to
// abuse), and routes opted out with Exempt pass unchecked.
type CSRF struct {
	key     []byte
	proxies TrustedProxies
	maxForm int64
	cop     *http.CrossOriginProtection
	exempt  *http.ServeMux
	// hasExempt spares the mux lookup on every request when nothing opted out.
	hasExempt atomic.Bool
}

// NewCSRF builds the CSRF middleware.
func NewCSRF(cfg CSRFConfig) (*CSRF, error) {
	if len(cfg.Key) < 32 {
		return nil, fmt.Errorf("csrf: key must be at least 32 bytes, got %d", len(cfg.Key))
	}
	c := &CSRF{
		// Derive our own key so the same master secret can serve other purposes safely.
		key:     hmacSum(cfg.Key, []byte("dgov csrf key v1")),
		proxies: cfg.TrustedProxies,
		maxForm: cfg.MaxFormBytes,
		cop:     http.NewCrossOriginProtection(),
		exempt:  http.NewServeMux(),
	}
	if c.maxForm <= 0 {
		c.maxForm = 32 << 20
	}
	for _, o := range cfg.TrustedOrigins {
		if err := c.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("csrf: %w", err)
		}
	}
	return c, nil
}

// csrfExemptMarker is registered on the exempt mux; a lookup that returns it (and not a
// redirect or not-found handler the mux makes up) means the route opted out.
type csrfExemptMarker struct{}

func (*csrfExemptMarker) ServeHTTP(http.ResponseWriter, *http.Request) {}

var exemptMarker = &csrfExemptMarker{}

// Exempt opts the routes matching a ServeMux pattern ("POST /oidc/token") out of CSRF checks.
// Use it for endpoints that authenticate every call on their own (OAuth token endpoint,
// webhooks with signatures), never for cookie-authenticated forms.
func (c *CSRF) Exempt(pattern string) {
	c.exempt.Handle(pattern, exemptMarker)
	c.hasExempt.Store(true)
}

// CSRFToken is the token for the current request's forms, "" outside the CSRF middleware.
// Put it in a hidden csrf_token field, or a meta tag for htmx's X-CSRF-Token header.
func CSRFToken(r *http.Request) string {
	st := stateFrom(r.Context())
	if st == nil || st.csrf == nil || st.csrfSecret == nil {
		return ""
	}
	mac := st.csrf.mac(st.csrfSecret)
	tok := make([]byte, 2*len(mac))
	_, _ = rand.Read(tok[:len(mac)])
	subtle.XORBytes(tok[len(mac):], tok[:len(mac)], mac)
	return base64.RawURLEncoding.EncodeToString(tok)
}

func (c *CSRF) mac(secret []byte) []byte { return hmacSum(c.key, secret) }

func hmacSum(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Middleware checks unsafe requests and gives every browser its secret cookie.
func (c *CSRF) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.isExempt(r) || bearerAuthenticated(r) {
			next.ServeHTTP(w, r)
			return
		}
		st, r := ensureState(r)
		st.csrf = c
		secure := IsHTTPS(r, c.proxies)
		name := csrfCookieName
		if secure {
			name = csrfCookieNameSecure
		}
		var secret []byte
		if ck, err := r.Cookie(name); err == nil {
			if b, err := base64.RawURLEncoding.DecodeString(ck.Value); err == nil && len(b) == csrfSecretLen {
				secret = b
			}
		}
		if !safeMethod(r.Method) && needsCSRFCheck(r) {
			if err := c.check(r, secret); err != nil {
				// WriteError logs the reason (the wrapped cause) at Info.
				var ie *i18n.Error
				if errors.As(err, &ie) {
					WriteError(w, r, ie)
				} else {
					WriteError(w, r, ErrCSRF.Wrap(err))
				}
				return
			}
		}
		if secret == nil {
			// Set it eagerly, not when a template asks for a token: by then the page may
			// already be streaming and headers can no longer change.
			secret = make([]byte, csrfSecretLen)
			_, _ = rand.Read(secret)
			http.SetCookie(w, &http.Cookie{
				Name:     name,
				Value:    base64.RawURLEncoding.EncodeToString(secret),
				Path:     "/",
				MaxAge:   int(csrfCookieMaxAge / time.Second),
				HttpOnly: true,
				Secure:   secure,
				SameSite: http.SameSiteLaxMode,
			})
		}
		st.csrfSecret = secret
		next.ServeHTTP(w, r)
	})
}

func (c *CSRF) isExempt(r *http.Request) bool {
	if !c.hasExempt.Load() {
		return false
	}
	h, _ := c.exempt.Handler(r)
	return h == exemptMarker
}

var (
	errCSRFNoCookie = errors.New("no csrf cookie")
	errCSRFNoToken  = errors.New("no csrf token in form or header")
	errCSRFBadToken = errors.New("csrf token does not match the cookie")
)

func (c *CSRF) check(r *http.Request, secret []byte) error {
	if err := c.cop.Check(r); err != nil {
		return err
	}
	if secret == nil {
		return errCSRFNoCookie
	}
	tok := r.Header.Get(CSRFHeaderName)
	if tok == "" {
		var err error
		if tok, err = c.formToken(r); err != nil {
			return err
		}
	}
	if tok == "" {
		return errCSRFNoToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 2*sha256.Size {
		return errCSRFBadToken
	}
	got := make([]byte, sha256.Size)
	subtle.XORBytes(got, raw[:sha256.Size], raw[sha256.Size:])
	if !hmac.Equal(got, c.mac(secret)) {
		return errCSRFBadToken
	}
	return nil
}

// formToken reads the csrf_token field of a form body. The parsed form stays on the request
// for the handler (r.PostForm, r.MultipartForm).
func (c *CSRF) formToken(r *http.Request) (string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(nil, r.Body, c.maxForm)
		if err := r.ParseForm(); err != nil {
			return "", formParseError(err)
		}
	case "multipart/form-data":
		r.Body = http.MaxBytesReader(nil, r.Body, c.maxForm)
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			return "", formParseError(err)
		}
	default:
		return "", nil
	}
	return r.PostFormValue(CSRFFieldName), nil
}

var errBadForm = &i18n.Error{Code: "request.bad_form", Status: http.StatusBadRequest,
	Msg: i18n.T("表单数据格式不正确", "the form data is malformed")}

func formParseError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge(mbe.Limit).Wrap(err)
	}
	return errBadForm.Wrap(err)
}

func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// needsCSRFCheck: a forged request can only do harm with what the browser adds on its own
// (cookies) or as a form post (login CSRF, where there is no session yet).
func needsCSRFCheck(r *http.Request) bool {
	if len(r.Header.Values("Cookie")) > 0 {
		return true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	// The three types a cross-site <form> can send without a CORS preflight.
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

// bearerAuthenticated: a header a page on another site cannot make the browser send. Basic
// credentials are excluded because browsers cache and replay them.
func bearerAuthenticated(r *http.Request) bool {
	a := strings.TrimSpace(r.Header.Get("Authorization"))
	if a == "" {
		return false
	}
	scheme, _, _ := strings.Cut(a, " ")
	return !strings.EqualFold(scheme, "Basic")
}

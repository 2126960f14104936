package httpx

import "net/http"

// ContentSecurityPolicy allows only what the binary itself serves: government networks are
// isolated, so there is no CDN, and no inline script or style (htmx needs
// htmx.config.includeIndicatorStyles=false; ECharts and Leaflet style through the CSSOM,
// which CSP allows). data: images cover Leaflet's and ECharts' embedded icons.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; " +
	"script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"

// PermissionsPolicy turns off powerful browser features dgov pages do not use. Geolocation
// stays available to dgov's own pages ("nearest service hall" on the map), never to frames.
const PermissionsPolicy = "accelerometer=(), camera=(), display-capture=(), geolocation=(self), " +
	"gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"

// HSTSValue is sent on HTTPS only. No includeSubDomains: other hosts of a government domain
// may still be plain HTTP, and that is not dgov's decision.
const HSTSValue = "max-age=31536000"

// SecurityHeaders sets the browser hardening headers on every response. HSTS is sent only when
// the request came over TLS, directly or (from a trusted proxy) per X-Forwarded-Proto: over
// plain HTTP the header is ignored by browsers and misleads whoever reads the response.
func SecurityHeaders(proxies TrustedProxies) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Canonical keys and shared one-element values: no allocation per request. Set,
			// Del and Add replace or copy these slices; nothing writes into them.
			h := w.Header()
			h["Content-Security-Policy"] = hdrCSP
			h["X-Content-Type-Options"] = hdrNosniff
			h["Referrer-Policy"] = hdrReferrer
			h["X-Frame-Options"] = hdrFrame
			h["Permissions-Policy"] = hdrPermissions
			if IsHTTPS(r, proxies) {
				h["Strict-Transport-Security"] = hdrHSTS
			}
			next.ServeHTTP(w, r)
		})
	}
}

var (
	hdrCSP         = []string{ContentSecurityPolicy}
	hdrNosniff     = []string{"nosniff"}
	hdrReferrer    = []string{"same-origin"}
	hdrFrame       = []string{"DENY"}
	hdrPermissions = []string{PermissionsPolicy}
	hdrHSTS        = []string{HSTSValue}
)

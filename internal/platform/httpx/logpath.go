package httpx

import (
	"net/http"
	"net/url"
	"strings"
)

// loggedPath is the path the access log shows for r: the request's path with every segment
// a wildcard of the matched route took replaced by the wildcard itself, so that
// GET /api/v1/exchange/{resource}/records/{key} logs "/api/v1/exchange/{resource}/records/{key}"
// and not the ID number in it. IDs in any path may be personal data. Literal segments, and the
// rest of the path under a subtree pattern ("/oidc/"), are kept. Without a pattern (nothing
// matched) the path is logged as it came.
func loggedPath(r *http.Request) string {
	pattern := r.Pattern
	if pattern == "" || r.Method == http.MethodConnect || !strings.Contains(pattern, "{") {
		return r.URL.Path
	}
	// "[METHOD ][HOST]/PATH": drop the method, then the host.
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	i := strings.IndexByte(pattern, '/')
	if i < 0 {
		return r.URL.Path
	}
	pattern = pattern[i:]
	// The mux matches segments of the escaped path; split the same way.
	ps, xs := strings.Split(pattern, "/"), strings.Split(r.URL.EscapedPath(), "/")
	var b strings.Builder
	for i, seg := range ps {
		if i >= len(xs) {
			break
		}
		if i > 0 {
			b.WriteByte('/')
		}
		switch {
		case seg == "{$}":
			// matches only the end of a path ending in a slash: nothing to write
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}"):
			b.WriteString(seg)
			return b.String()
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			b.WriteString(seg)
		default:
			b.WriteString(unescapeSegment(xs[i]))
		}
	}
	for _, x := range xs[min(len(ps), len(xs)):] { // below a subtree pattern
		b.WriteByte('/')
		b.WriteString(unescapeSegment(x))
	}
	return b.String()
}

func unescapeSegment(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

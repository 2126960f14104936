package httpx

import "strings"

// LocalPath returns p when it is a path on this site that is safe to redirect to, otherwise
// fallback. It refuses anything a browser could read as another host: "//host", "/\host",
// backslashes anywhere, and control characters (browsers strip tabs and newlines from
// Location, so "/\t/evil" would become "//evil").
func LocalPath(p, fallback string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') {
		return fallback
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return fallback
		}
	}
	return p
}

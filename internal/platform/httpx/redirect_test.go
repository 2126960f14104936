package httpx

import "testing"

func TestLocalPath(t *testing.T) {
	cases := map[string]string{
		"/console/staff?q=1":  "/console/staff?q=1",
		"/":                   "/",
		"":                    "/home",
		"//evil.example":      "/home",
		"/\\evil.example":     "/home",
		"/\t/evil.example":    "/home",
		"/%09/evil.example":   "/%09/evil.example", // stays escaped: the browser sees a path, not a host
		"/a\n/b":              "/home",
		"https://evil":        "/home",
		"javascript:alert(1)": "/home",
		"evil.example":        "/home",
	}
	for in, want := range cases {
		if got := LocalPath(in, "/home"); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "/\tx", "http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := LocalPath(p, "/")
		if got == "/" {
			return
		}
		if got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) {
			t.Fatalf("unsafe %q accepted", got)
		}
		for _, c := range []byte(got) {
			if c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("unsafe byte in %q", got)
			}
		}
	})
}

package govservice_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/govservice"
)

// File names come from browsers: whatever they are, the stored name is safe to show and to
// put in a Content-Disposition header, and says the file's real type.
func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"身份证.pdf", "C:\\Users\\张三\\扫描件.JPEG", "../../etc/passwd", "", ".", "..pdf", "a\x00b\u202e.pdf",
		strings.Repeat("长", 300) + ".png", "\xff\xfe.pdf", "photo.jpeg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, ext := range []string{".pdf", ".jpg", ".png"} {
			got := govservice.CleanFileName(name, ext)
			if !utf8.ValidString(got) || got == "" || utf8.RuneCountInString(got) > 120 {
				t.Fatalf("CleanFileName(%q) = %q", name, got)
			}
			if strings.ContainsAny(got, "/\\") || strings.HasPrefix(got, ".") {
				t.Fatalf("CleanFileName(%q) = %q: a path", name, got)
			}
			for _, r := range got {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Fatalf("CleanFileName(%q) = %q: control or format character %U", name, got, r)
				}
			}
			lower := strings.ToLower(got)
			if !strings.HasSuffix(lower, ext) && !(ext == ".jpg" && strings.HasSuffix(lower, ".jpeg")) {
				t.Fatalf("CleanFileName(%q, %s) = %q: wrong extension", name, ext, got)
			}
		}
	})
}

// Only PDF, JPEG and PNG pass, recognised by their first bytes.
func FuzzSniffFileType(f *testing.F) {
	for _, s := range [][]byte{[]byte("%PDF-1.7"), {0xFF, 0xD8, 0xFF, 0xE0}, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, nil, []byte("MZ"), []byte("<svg")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		ct, ext, err := govservice.SniffFileType(head)
		if err != nil {
			if ct != "" || ext != "" {
				t.Fatalf("refused %q with a type %s", head, ct)
			}
			return
		}
		ok := bytes.HasPrefix(head, []byte("%PDF-")) && ct == "application/pdf" ||
			bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}) && ct == "image/jpeg" ||
			bytes.HasPrefix(head, []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}) && ct == "image/png"
		if !ok {
			t.Fatalf("accepted %q as %s", head, ct)
		}
	})
}

package blob

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValidateKey(t *testing.T) {
	for _, key := range []string{
		"a",
		"materials/2024/申请表.pdf",
		"licenses/91140100MA0K0A1B2C/营业执照（副本）.pdf",
		"exports/opendata 2024-05.csv",
		"a..b/c.d", // dots inside a segment are fine
		"backups/dgov-20240501T000000Z.tar.zst",
		strings.Repeat("k", MaxSegmentLen) + "/" + strings.Repeat("k", MaxSegmentLen),
	} {
		if err := ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want ok", key, err)
		}
	}
	for _, key := range badKeys {
		if err := ValidateKey(key); err == nil {
			t.Errorf("ValidateKey(%q) accepted a bad key", key)
		}
	}
}

// FuzzValidateKey: whatever a client sends, an accepted key stays inside the store's
// directory, names no store-internal file and prints as itself.
func FuzzValidateKey(f *testing.F) {
	for _, k := range append(badKeys, "a", "a/b", "申请表.pdf", "a..b") {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		if !filepath.IsLocal(filepath.FromSlash(key)) || filepath.Clean(filepath.FromSlash(key)) != filepath.FromSlash(key) {
			t.Fatalf("accepted %q, which is not a clean local path", key)
		}
		if strings.ContainsRune(key, '\\') || len(key) > MaxKeyLen || !utf8.ValidString(key) {
			t.Fatalf("accepted %q", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg[0] == '.' || len(seg) > MaxSegmentLen {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
		for _, c := range key {
			if !unicode.IsPrint(c) {
				t.Fatalf("accepted %q with unprintable %U", key, c)
			}
		}
	})
}

package ids_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/ids"
)

func TestMask(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) string
		in   string
		want string
	}{
		{"resident", ids.MaskResident, "140105199001011234", "140105********1234"},
		{"resident with X", ids.MaskResident, "11010519491231002X", "110105********002X"},
		{"resident 15-digit", ids.MaskResident, "110105491231002", "110105*****1002"},
		{"resident too short", ids.MaskResident, "1101054912", "**********"},
		{"resident empty", ids.MaskResident, "", ""},
		{"mobile", ids.MaskMobile, "13812345678", "138****5678"},
		{"mobile with prefix", ids.MaskMobile, "+86 138-1234-5678", "138****5678"},
		{"mobile invalid but long", ids.MaskMobile, "12812345678", "128****5678"},
		{"mobile short", ids.MaskMobile, "12345", "*****"},
		{"name", ids.MaskName, "张三", "张*"},
		{"name three", ids.MaskName, "王小明", "王**"},
		{"compound surname", ids.MaskName, "欧阳娜娜", "欧阳**"},
		{"compound surname three", ids.MaskName, "欧阳修", "欧阳*"},
		{"two characters never compound", ids.MaskName, "欧阳", "欧*"},
		{"single character", ids.MaskName, "张", "张"},
		{"empty name", ids.MaskName, "", ""},
		{"minority name", ids.MaskName, "买买提·吐尔逊", "买******"},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.in); got != tt.want {
			t.Errorf("%s: %q → %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{"140105199001011234", "13812345678", "欧阳娜娜", "", "\xff\xfe", "张"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Masks keep the length in characters, and never show the middle of a long input.
		for _, mask := range []func(string) string{ids.MaskResident, ids.MaskName} {
			in := strings.TrimSpace(s)
			out := mask(s)
			if utf8.RuneCountInString(out) != utf8.RuneCountInString(in) {
				t.Fatalf("mask(%q) = %q changes the length", s, out)
			}
		}
		if r := []rune(strings.TrimSpace(s)); len(r) >= 15 {
			if m := []rune(ids.MaskResident(s)); string(m[6:len(m)-4]) != strings.Repeat("*", len(r)-10) {
				t.Fatalf("MaskResident(%q) = %q shows the middle", s, string(m))
			}
		}
		_ = ids.MaskMobile(s)
	})
}

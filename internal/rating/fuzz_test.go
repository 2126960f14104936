package rating_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/rating"
)

// FuzzClean: whatever a form or the API sends, Clean either refuses it with a bilingual
// user error or returns an input that is valid, stable under a second Clean, and within the
// limits.
func FuzzClean(f *testing.F) {
	f.Add("app-1", 5, "web", "fast,stable", "很方便")
	f.Add("app-1", 1, "hall", "unfriendly,improper_charges", "窗口人员不耐烦")
	f.Add("app-1", 2, "app", "", "")
	f.Add("app-1", 3, "phone", "slow,,slow", "  \r\n等了很久\t")
	f.Add("", 0, "fax", "fast", "\x00")
	f.Add("app-1", 4, "", "guide_clear", "‮反向文字")
	f.Add("app/../1", 5, "web", "fast", strings.Repeat("好", 501))
	f.Fuzz(func(t *testing.T, id string, level int, channel, tags, comment string) {
		in := rating.Input{ApplicationID: id, Level: rating.Level(level), Channel: rating.Channel(channel), Comment: comment}
		if tags != "" {
			in.Tags = strings.Split(tags, ",")
		}
		out, err := in.Clean()
		if err != nil {
			e, ok := i18n.As(err)
			if !ok || e.Msg.ZH == "" || e.Msg.EN == "" || e.HTTPStatus() != 400 {
				t.Fatalf("Clean(%+v) = %v: not a bilingual bad-request error", in, err)
			}
			return
		}
		if !out.Level.Valid() || !out.Channel.Valid() || out.ApplicationID == "" {
			t.Fatalf("accepted %+v", out)
		}
		if utf8.RuneCountInString(out.Comment) > rating.MaxComment || !utf8.ValidString(out.Comment) ||
			strings.TrimSpace(out.Comment) != out.Comment {
			t.Fatalf("comment %q accepted", out.Comment)
		}
		for _, r := range out.Comment {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
				t.Fatalf("control character %U accepted", r)
			}
		}
		if len(out.Tags) > rating.MaxTags {
			t.Fatalf("%d tags accepted", len(out.Tags))
		}
		for _, code := range out.Tags {
			tag, ok := rating.TagByCode(code)
			if !ok || !tag.Offered(out.Channel) || !tag.Fits(out.Level) {
				t.Fatalf("tag %q accepted for level %d on %s", code, out.Level, out.Channel)
			}
		}
		if out.Level.Poor() && len(out.Tags) == 0 && out.Comment == "" {
			t.Fatalf("a poor rating without a reason accepted")
		}
		again, err := out.Clean()
		if err != nil || again.Comment != out.Comment || !slices.Equal(again.Tags, out.Tags) || again.Level != out.Level ||
			again.Channel != out.Channel || again.ApplicationID != out.ApplicationID {
			t.Fatalf("Clean is not stable: %+v then %+v (%v)", out, again, err)
		}
	})
}

// FuzzParseLevel: only "1" … "5" (around spaces) are levels.
func FuzzParseLevel(f *testing.F) {
	for _, s := range []string{"1", "5", " 3 ", "0", "6", "-1", "05", "五", "", "1e0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := rating.ParseLevel(s)
		trimmed := strings.TrimSpace(s)
		want := len(trimmed) == 1 && trimmed[0] >= '1' && trimmed[0] <= '5'
		if (err == nil) != want {
			t.Fatalf("ParseLevel(%q) = %v, %v", s, l, err)
		}
		if err == nil && (int(l) != int(trimmed[0]-'0') || !l.Valid()) {
			t.Fatalf("ParseLevel(%q) = %d", s, l)
		}
	})
}

package console

import (
	"strings"
	"testing"
)

func TestParseYuan(t *testing.T) {
	for _, c := range []struct {
		in   string
		fen  int64
		fail bool
	}{
		{"12", 1200, false},
		{"12.3", 1230, false},
		{"12.34", 1234, false},
		{" ¥0.05 ", 5, false},
		{"¥1000000000.00", 100000000000, false},
		{"0", 0, true},
		{"0.00", 0, true},
		{"12.345", 0, true},
		{"12.", 0, true},
		{".5", 0, true},
		{"-1", 0, true},
		{"+1", 0, true},
		{"1e3", 0, true},
		{"1,000", 0, true},
		{"１２", 0, true}, // full-width digits
		{"1000000000.01", 0, true},
		{"99999999999999999999", 0, true},
		{"", 0, true},
	} {
		fen, err := parseYuan(c.in)
		if (err != nil) != c.fail || fen != c.fen {
			t.Errorf("parseYuan(%q) = %d, %v; want %d, fail %v", c.in, fen, err, c.fen, c.fail)
		}
	}
}

func TestYuanString(t *testing.T) {
	for fen, want := range map[int64]string{0: "¥0.00", 5: "¥0.05", 1234: "¥12.34", -250: "-¥2.50", 100000000000: "¥1000000000.00"} {
		if got := yuan(fen).String(); got != want {
			t.Errorf("yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

// An amount typed in a refund form is outside input: whatever it is, parseYuan either refuses
// it or returns a positive amount within bounds that prints back as itself.
func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{"12.34", "¥0.05", "1000000000.00", "12.", "-1", "1e3", "９"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fen, err := parseYuan(s)
		if err != nil {
			return
		}
		if fen <= 0 || fen > maxYuanFen {
			t.Fatalf("parseYuan(%q) = %d, out of bounds", s, fen)
		}
		back, err := parseYuan(yuan(fen).String())
		if err != nil || back != fen {
			t.Fatalf("parseYuan(%q) = %d, which prints as %q and reads back as %d, %v", s, fen, yuan(fen).String(), back, err)
		}
	})
}

func TestBeijingDay(t *testing.T) {
	start, err := beijingDay("valid_from", "2026-03-01", false)
	if err != nil || start.Format("2006-01-02T15:04Z07:00") != "2026-02-28T16:00Z" {
		t.Fatalf("start of 2026-03-01 in Beijing: %v %v", start, err)
	}
	end, err := beijingDay("valid_until", "2026-03-01", true)
	if err != nil || end.Format("2006-01-02T15:04Z07:00") != "2026-03-01T16:00Z" {
		t.Fatalf("end of 2026-03-01 in Beijing: %v %v", end, err)
	}
	if none, err := beijingDay("valid_until", " ", true); none != nil || err != nil {
		t.Fatalf("empty date: %v %v", none, err)
	}
	if _, err := beijingDay("valid_until", "2026/03/01", true); err == nil || !strings.Contains(err.Error(), "YYYY-MM-DD") {
		t.Fatalf("bad date accepted: %v", err)
	}
}

func TestParagraphs(t *testing.T) {
	got := paragraphs("  第一段。\r\n\r\n第二段。\n  \n")
	if len(got) != 2 || got[0] != "第一段。" || got[1] != "第二段。" {
		t.Fatalf("paragraphs = %q", got)
	}
}

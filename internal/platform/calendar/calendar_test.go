package calendar_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/calendar"
)

func day(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 10, 0, 0, 0, calendar.Beijing) }

func TestEmbeddedYears(t *testing.T) {
	c := calendar.Default()
	if got := c.Years(); len(got) != 3 || got[0] != 2024 || got[1] != 2025 || got[2] != 2026 {
		t.Fatalf("years %v", got)
	}
	if c.Source(2025) != "国办发明电〔2024〕12号" || c.Source(2024) != "国办发明电〔2023〕7号" ||
		!strings.Contains(c.Source(2026), "2026年部分节假日安排") || c.Covers(2027) {
		t.Errorf("sources %q %q %q, covers 2027 %v", c.Source(2024), c.Source(2025), c.Source(2026), c.Covers(2027))
	}
}

func TestIsWorkday(t *testing.T) {
	c := calendar.Default()
	cases := []struct {
		name string
		t    time.Time
		want bool
	}{
		{"ordinary Tuesday", day(2025, 3, 11), true},
		{"ordinary Saturday", day(2025, 3, 15), false},
		{"New Year 2025 (Wednesday)", day(2025, 1, 1), false},
		{"make-up Sunday before Spring Festival 2025", day(2025, 1, 26), true},
		{"Spring Festival eve 2025 (Tuesday)", day(2025, 1, 28), false},
		{"Spring Festival 2025 last day (Tuesday)", day(2025, 2, 4), false},
		{"first working day after Spring Festival 2025", day(2025, 2, 5), true},
		{"make-up Saturday after Spring Festival 2025", day(2025, 2, 8), true},
		{"Labour Day make-up 2025-04-27 (Sunday)", day(2025, 4, 27), true},
		{"Dragon Boat Monday 2025-06-02", day(2025, 6, 2), false},
		{"National Day 2025-10-08 (Wednesday)", day(2025, 10, 8), false},
		{"make-up Saturday 2025-10-11", day(2025, 10, 11), true},
		{"Spring Festival 2024 eve Friday is a working day", day(2024, 2, 9), true},
		{"make-up Sunday 2024-02-04", day(2024, 2, 4), true},
		{"Mid-Autumn 2024-09-16", day(2024, 9, 16), false},
		{"make-up 2024-09-14", day(2024, 9, 14), true},
		{"uncovered year: a Monday", day(2027, 3, 1), true},
		{"uncovered year: a Saturday", day(2027, 3, 6), false},
		// 2025-01-27 23:30 in UTC is already the 28th (a holiday) in Beijing.
		{"Beijing date, not UTC", time.Date(2025, 1, 27, 16, 30, 0, 0, time.UTC), false},
		{"Beijing date, not UTC (before midnight)", time.Date(2025, 1, 27, 15, 30, 0, 0, time.UTC), true},
	}
	for _, tc := range cases {
		if got := c.IsWorkday(tc.t); got != tc.want {
			t.Errorf("%s: IsWorkday(%s) = %v", tc.name, tc.t.Format(time.DateOnly), got)
		}
	}
}

func TestAddWorkdays(t *testing.T) {
	c := calendar.Default()
	cases := []struct {
		name string
		from time.Time
		n    int
		want time.Time
	}{
		// Spring Festival 2025: 1.28–2.4 off, 1.26 (Sun) and 2.8 (Sat) worked.
		{"across the Spring Festival span", day(2025, 1, 24), 10, day(2025, 2, 13)},
		{"from the make-up Sunday", day(2025, 1, 26), 1, day(2025, 1, 27)},
		{"Monday before the span + 2", day(2025, 1, 27), 2, day(2025, 2, 6)},
		{"counts the make-up Saturday", day(2025, 2, 7), 1, day(2025, 2, 8)},
		{"ordinary weekend", day(2025, 3, 14), 1, day(2025, 3, 17)},
		{"from a Saturday", day(2025, 3, 15), 1, day(2025, 3, 17)},
		{"ten days, two weekends", day(2025, 3, 3), 10, day(2025, 3, 17)},
		{"National Day 2025", day(2025, 9, 30), 1, day(2025, 10, 9)},
		{"backwards over the span", day(2025, 2, 5), -1, day(2025, 1, 27)},
		{"zero", day(2025, 2, 1), 0, day(2025, 2, 1)},
	}
	for _, tc := range cases {
		got := c.AddWorkdays(tc.from, tc.n)
		if !got.Equal(tc.want) {
			t.Errorf("%s: AddWorkdays(%s, %d) = %s, want %s", tc.name, tc.from.Format(time.DateOnly), tc.n,
				got.Format(time.DateTime), tc.want.Format(time.DateTime))
		}
		if tc.n >= 0 {
			if b := c.WorkdaysBetween(tc.from, got); b != tc.n {
				t.Errorf("%s: WorkdaysBetween = %d, want %d", tc.name, b, tc.n)
			}
		}
	}
	// The location of the input is kept.
	utc := time.Date(2025, 1, 24, 2, 0, 0, 0, time.UTC)
	if got := c.AddWorkdays(utc, 10); got.Location() != time.UTC || !got.Equal(day(2025, 2, 13)) {
		t.Errorf("UTC input: %s", got)
	}
}

func TestWorkdaysBetween(t *testing.T) {
	c := calendar.Default()
	// January 2025: 23 weekdays, minus New Year and 28–31 Jan (5), plus the make-up 26 Jan.
	if n := c.WorkdaysBetween(day(2024, 12, 31), day(2025, 1, 31)); n != 19 {
		t.Errorf("January 2025: %d working days, want 19", n)
	}
	// Whole years: 2024 = 262 weekdays − 19 holiday weekdays + 8 make-up days = 251;
	// 2025 = 261 − 18 + 5 = 248, the figures published with the notices.
	if n := c.WorkdaysBetween(day(2023, 12, 31), day(2024, 12, 31)); n != 251 {
		t.Errorf("2024: %d working days, want 251", n)
	}
	if n := c.WorkdaysBetween(day(2024, 12, 31), day(2025, 12, 31)); n != 248 {
		t.Errorf("2025: %d working days, want 248", n)
	}
	if n := c.WorkdaysBetween(day(2025, 2, 13), day(2025, 1, 24)); n != -10 {
		t.Errorf("reversed: %d", n)
	}
	if n := c.WorkdaysBetween(day(2025, 3, 3), day(2025, 3, 3)); n != 0 {
		t.Errorf("same day: %d", n)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An operator adds a year (an example, not the published 2026 arrangement).
	p := write("extra.json", `{"years": {"2030": {"source": "test notice", "holidays": ["2030-01-01", "2030-01-02"], "workdays": ["2030-01-05"]}}}`)
	c, err := calendar.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Covers(2030) || !c.Covers(2025) || c.IsWorkday(day(2030, 1, 2)) || !c.IsWorkday(day(2030, 1, 5)) {
		t.Errorf("extra year not applied: %v", c.Years())
	}
	if calendar.Default().Covers(2030) {
		t.Error("LoadFile changed the default calendar")
	}
	// A year in the file replaces the embedded one.
	p = write("fix.json", `{"years": {"2025": {"source": "corrected", "holidays": ["2025-01-01"], "workdays": []}}}`)
	if c, err = calendar.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	if !c.IsWorkday(day(2025, 1, 28)) || c.Source(2025) != "corrected" {
		t.Error("replacing a year kept the old dates")
	}

	bad := map[string]string{
		"not json":             `{`,
		"unknown field":        `{"years": {"2030": {"holiday": []}}}`,
		"no years":             `{"years": {}}`,
		"bad year":             `{"years": {"20x0": {}}}`,
		"bad date":             `{"years": {"2030": {"holidays": ["2030-02-30"]}}}`,
		"date in another year": `{"years": {"2030": {"holidays": ["2031-01-01"]}}}`,
		"both":                 `{"years": {"2030": {"holidays": ["2030-01-05"], "workdays": ["2030-01-05"]}}}`,
		"make-up on a weekday": `{"years": {"2030": {"workdays": ["2030-01-07"]}}}`,
	}
	for name, body := range bad {
		if _, err := calendar.LoadFile(write("bad.json", body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := calendar.LoadFile(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// Test2026 checks the embedded 2026 arrangement against the State Council's notice
// (国务院办公厅关于2026年部分节假日安排的通知, 2025-11-04), span by span.
func Test2026(t *testing.T) {
	c := calendar.Default()
	rest := map[string][2]time.Time{
		"元旦 New Year":        {day(2026, 1, 1), day(2026, 1, 3)},
		"春节 Spring Festival": {day(2026, 2, 15), day(2026, 2, 23)},
		"清明 Qingming":        {day(2026, 4, 4), day(2026, 4, 6)},
		"劳动节 Labour Day":     {day(2026, 5, 1), day(2026, 5, 5)},
		"端午 Dragon Boat":     {day(2026, 6, 19), day(2026, 6, 21)},
		"中秋 Mid-Autumn":      {day(2026, 9, 25), day(2026, 9, 27)},
		"国庆 National Day":    {day(2026, 10, 1), day(2026, 10, 7)},
	}
	for name, span := range rest {
		for d := span[0]; !d.After(span[1]); d = d.AddDate(0, 0, 1) {
			if c.IsWorkday(d) {
				t.Errorf("%s: %s is a working day", name, d.Format(time.DateOnly))
			}
		}
		// The weekdays either side of each span are working days again.
		for _, d := range []time.Time{span[0].AddDate(0, 0, -1), span[1].AddDate(0, 0, 1)} {
			if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday && !c.IsWorkday(d) {
				t.Errorf("%s: %s next to the span is not a working day", name, d.Format(time.DateOnly))
			}
		}
	}
	// 调休上班: the weekend days worked, one per line of the notice.
	for _, d := range []time.Time{day(2026, 1, 4), day(2026, 2, 14), day(2026, 2, 28), day(2026, 5, 9), day(2026, 9, 20), day(2026, 10, 10)} {
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			t.Errorf("make-up day %s is a %s", d.Format(time.DateOnly), wd)
		}
		if !c.IsWorkday(d) {
			t.Errorf("make-up day %s is not a working day", d.Format(time.DateOnly))
		}
	}
	// Weekends not in the notice stay rest days.
	for _, d := range []time.Time{day(2026, 1, 10), day(2026, 3, 1), day(2026, 10, 11)} {
		if c.IsWorkday(d) {
			t.Errorf("%s is a working day", d.Format(time.DateOnly))
		}
	}
	// 2026 has 261 weekdays; 19 of them are holidays and 6 weekend days are worked: 248.
	if n := c.WorkdaysBetween(day(2025, 12, 31), day(2026, 12, 31)); n != 248 {
		t.Errorf("2026: %d working days, want 248", n)
	}
	cases := []struct {
		name string
		from time.Time
		n    int
		want time.Time
	}{
		// Golden Week: 9-30 counts, 10-1…10-7 do not, 10-8 and 10-9, then the make-up Saturday 10-10.
		{"into Golden Week", day(2026, 9, 29), 3, day(2026, 10, 9)},
		{"make-up Saturday after Golden Week", day(2026, 9, 29), 4, day(2026, 10, 10)},
		{"make-up Sunday before Golden Week", day(2026, 9, 18), 1, day(2026, 9, 20)},
		// Spring Festival: Friday 2-13, make-up Saturday 2-14, then 2-24 after the span.
		{"across the Spring Festival", day(2026, 2, 13), 2, day(2026, 2, 24)},
		{"to the make-up Saturday 2-28", day(2026, 2, 26), 2, day(2026, 2, 28)},
		{"New Year make-up Sunday", day(2025, 12, 31), 1, day(2026, 1, 4)},
	}
	for _, tc := range cases {
		if got := c.AddWorkdays(tc.from, tc.n); !got.Equal(tc.want) {
			t.Errorf("%s: AddWorkdays(%s, %d) = %s, want %s", tc.name, tc.from.Format(time.DateOnly), tc.n,
				got.Format(time.DateOnly), tc.want.Format(time.DateOnly))
		}
	}
}

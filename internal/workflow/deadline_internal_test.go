package workflow

import (
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/calendar"
)

func at(y, m, d, h, min int) time.Time {
	return time.Date(y, time.Month(m), d, h, min, 0, 0, calendar.Beijing)
}

func TestWorkTime(t *testing.T) {
	cal := calendar.Default()
	cases := []struct {
		name string
		a, b time.Time
		want time.Duration
	}{
		{"same working day", at(2026, 3, 2, 9, 0), at(2026, 3, 2, 17, 30), 8*time.Hour + 30*time.Minute},
		{"over a weekend", at(2026, 3, 6, 12, 0), at(2026, 3, 9, 12, 0), 24 * time.Hour},
		{"a weekend only", at(2026, 3, 7, 0, 0), at(2026, 3, 9, 0, 0), 0},
		{"Golden Week: 9-30 12:00 to 10-8 12:00", at(2026, 9, 30, 12, 0), at(2026, 10, 8, 12, 0), 24 * time.Hour},
		{"make-up Sunday 9-20 counts", at(2026, 9, 19, 0, 0), at(2026, 9, 21, 0, 0), 24 * time.Hour},
		{"Spring Festival", at(2026, 2, 13, 0, 0), at(2026, 2, 25, 0, 0), 3 * 24 * time.Hour}, // 2-13, 2-14 (make-up), 2-24
		{"backwards", at(2026, 3, 3, 0, 0), at(2026, 3, 2, 0, 0), 0},
		// Across the midnight in UTC that is not Beijing's.
		{"UTC inputs", time.Date(2026, 3, 6, 15, 0, 0, 0, time.UTC), time.Date(2026, 3, 6, 17, 0, 0, 0, time.UTC), time.Hour}, // Fri 23:00 → Sat 01:00
	}
	for _, tc := range cases {
		if got := workTime(cal, tc.a, tc.b); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestAddWorkTime(t *testing.T) {
	cal := calendar.Default()
	cases := []struct {
		name string
		from time.Time
		left time.Duration
		want time.Time
	}{
		{"within the day", at(2026, 3, 2, 9, 0), 3 * time.Hour, at(2026, 3, 2, 12, 0)},
		{"over a weekend", at(2026, 3, 6, 12, 0), 24 * time.Hour, at(2026, 3, 9, 12, 0)},
		{"resumed on a Saturday starts on Monday", at(2026, 3, 7, 15, 0), 10 * time.Hour, at(2026, 3, 9, 10, 0)},
		{"resumed in Golden Week", at(2026, 10, 3, 9, 0), 36 * time.Hour, at(2026, 10, 9, 12, 0)},
		{"into the make-up Saturday", at(2026, 10, 9, 12, 0), 24 * time.Hour, at(2026, 10, 10, 12, 0)},
		{"nothing left", at(2026, 3, 7, 15, 0), 0, at(2026, 3, 7, 15, 0)},
		{"exactly to midnight", at(2026, 3, 6, 12, 0), 12 * time.Hour, at(2026, 3, 7, 0, 0)},
	}
	for _, tc := range cases {
		got := addWorkTime(cal, tc.from, tc.left)
		if !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got.In(calendar.Beijing), tc.want)
		}
		// The inverse: the working time from the start to the result is what was left.
		if back := workTime(cal, tc.from, got); back != tc.left && !(tc.left == 0 && back == 0) {
			t.Errorf("%s: workTime back %s, want %s", tc.name, back, tc.left)
		}
	}
	// A fresh deadline of n working days holds n×24 h of working time when it starts on a working day.
	from := at(2026, 9, 29, 10, 0)
	due := cal.AddWorkdays(from, 3)
	if w := workTime(cal, from, due); w != 72*time.Hour {
		t.Errorf("3 working days from 9-29 hold %s", w)
	}
}

func TestStatusAt(t *testing.T) {
	due, remind := at(2026, 3, 5, 10, 0), at(2026, 3, 4, 10, 0)
	for _, tc := range []struct {
		now  time.Time
		want Status
	}{
		{at(2026, 3, 4, 9, 59), Green},
		{remind, Yellow},
		{due.Add(-time.Microsecond), Yellow},
		{due, Red},
	} {
		if got := statusAt(tc.now, &due, &remind); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.now, got, tc.want)
		}
	}
	if statusAt(due, nil, nil) != Green {
		t.Error("no deadline is not green")
	}
}

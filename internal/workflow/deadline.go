package workflow

import (
	"time"

	"github.com/dgov/dgov/internal/platform/calendar"
)

// Deadline arithmetic. A fresh limit of n working days ends calendar.AddWorkdays(start, n):
// the same Beijing clock time on the n-th working day after the start. A clock that stops
// (补正) keeps the working time left — the part of the remaining span that falls on working
// days, to the microsecond — and a resumed clock spends exactly that, on working days only.

// maxWalkDays bounds the day-by-day walks (ten years), so a corrupt row cannot loop forever.
const maxWalkDays = 3660

// workTime is the working time in [a, b): the parts of it that fall on working days
// (Beijing dates). It is 0 when b is not after a.
func workTime(cal *calendar.Calendar, a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	var total time.Duration
	t := a.In(calendar.Beijing)
	for range maxWalkDays {
		if !t.Before(b) {
			break
		}
		y, m, d := t.Date()
		next := time.Date(y, m, d+1, 0, 0, 0, 0, calendar.Beijing)
		end := b
		if next.Before(end) {
			end = next
		}
		if cal.IsWorkday(t) {
			total += end.Sub(t)
		}
		t = next
	}
	return total
}

// addWorkTime returns the moment at which left working time has passed since t: time on
// rest days does not count. A clock resumed on a holiday starts at the next working day.
func addWorkTime(cal *calendar.Calendar, t time.Time, left time.Duration) time.Time {
	if left <= 0 {
		return t
	}
	loc := t.Location()
	t = t.In(calendar.Beijing)
	for range maxWalkDays {
		y, m, d := t.Date()
		next := time.Date(y, m, d+1, 0, 0, 0, 0, calendar.Beijing)
		if cal.IsWorkday(t) {
			avail := next.Sub(t)
			if left <= avail {
				return t.Add(left).In(loc)
			}
			left -= avail
		}
		t = next
	}
	return t.In(loc)
}

// statusAt is the colour of a deadline at now: red once due has passed, yellow from remind.
func statusAt(now time.Time, due, remind *time.Time) Status {
	switch {
	case due != nil && !now.Before(*due):
		return Red
	case remind != nil && !now.Before(*remind):
		return Yellow
	}
	return Green
}

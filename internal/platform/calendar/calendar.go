// Package calendar counts working days (工作日) in China: Monday to Friday, except the public
// holidays the State Council General Office announces each year, plus the weekend days it
// turns into working days to make up for them (调休上班).
//
// The embedded holidays/cn.json ships the published years (2024: 国办发明电〔2023〕7号,
// 2025: 国办发明电〔2024〕12号, 2026: 国务院办公厅关于2026年部分节假日安排的通知 of
// 2025-11-04). The notice for a year comes out late in the year before;
// operators add it with LoadFile (same format) without a new binary. A year with no data is
// counted as Monday to Friday (Covers tells callers whether a year is known).
//
// Dates are Beijing dates: a time is first converted to Asia/Shanghai.
package calendar

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Beijing is Asia/Shanghai without needing the tz database: China has kept UTC+8 without
// daylight saving since 1991.
var Beijing = time.FixedZone("CST", 8*3600)

//go:embed holidays/cn.json
var embedded embed.FS

// date is a Beijing calendar date.
type date struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) date {
	y, m, d := t.In(Beijing).Date()
	return date{y, m, d}
}

func (d date) time() time.Time { return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, Beijing) }

func (d date) next(n int) date { return dateOf(d.time().AddDate(0, 0, n)) }

func (d date) before(o date) bool {
	if d.y != o.y {
		return d.y < o.y
	}
	if d.m != o.m {
		return d.m < o.m
	}
	return d.d < o.d
}

func (d date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.y, d.m, d.d) }

// Calendar knows the holidays and make-up working days of some years. It is immutable and
// safe for concurrent use.
type Calendar struct {
	holidays map[date]bool
	workdays map[date]bool
	years    map[int]string // year → source (the notice)
}

// File is the format of holidays/cn.json and of operators' extra files.
type File struct {
	Source string          `json:"_source,omitempty"`
	Years  map[string]Year `json:"years"`
}

// Year is one year's arrangement as the notice gives it.
type Year struct {
	Source   string   `json:"source"`   // the notice, e.g. 国办发明电〔2024〕12号
	Holidays []string `json:"holidays"` // YYYY-MM-DD: every rest day of each holiday span
	Workdays []string `json:"workdays"` // YYYY-MM-DD: weekend days that are working days (调休上班)
}

var defaultCal = sync.OnceValue(func() *Calendar {
	b, err := embedded.ReadFile("holidays/cn.json")
	if err != nil {
		panic("calendar: " + err.Error())
	}
	c, err := (&Calendar{}).With(b)
	if err != nil {
		// The file is embedded and tested; a bad one is a build error.
		panic("calendar: holidays/cn.json: " + err.Error())
	}
	return c
})

// Default is the calendar of the embedded years.
func Default() *Calendar { return defaultCal() }

// LoadFile returns Default with the years of the JSON file at path added; a year in the file
// replaces the embedded one (to correct it).
func LoadFile(path string) (*Calendar, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("calendar: %w", err)
	}
	c, err := Default().With(b)
	if err != nil {
		return nil, fmt.Errorf("calendar %s: %w", path, err)
	}
	return c, nil
}

// With returns a copy of c with the years of the JSON document data (see File) added or
// replaced. It checks every date: valid, in its year, not both a holiday and a working day,
// and a make-up working day must fall on a weekend.
func (c *Calendar) With(data []byte) (*Calendar, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(f.Years) == 0 {
		return nil, fmt.Errorf("no years")
	}
	out := &Calendar{holidays: map[date]bool{}, workdays: map[date]bool{}, years: map[int]string{}}
	if c != nil {
		maps.Copy(out.holidays, c.holidays)
		maps.Copy(out.workdays, c.workdays)
		maps.Copy(out.years, c.years)
	}
	for ys, y := range f.Years {
		year, err := strconv.Atoi(ys)
		if err != nil || year < 1949 || year > 2200 {
			return nil, fmt.Errorf("year %q is not a year", ys)
		}
		// Replace the year as a whole.
		for d := range out.holidays {
			if d.y == year {
				delete(out.holidays, d)
			}
		}
		for d := range out.workdays {
			if d.y == year {
				delete(out.workdays, d)
			}
		}
		for _, s := range y.Holidays {
			d, err := parseDate(s, year)
			if err != nil {
				return nil, err
			}
			out.holidays[d] = true
		}
		for _, s := range y.Workdays {
			d, err := parseDate(s, year)
			if err != nil {
				return nil, err
			}
			if out.holidays[d] {
				return nil, fmt.Errorf("%s is listed both as a holiday and as a working day", s)
			}
			if wd := d.time().Weekday(); wd != time.Saturday && wd != time.Sunday {
				return nil, fmt.Errorf("make-up working day %s is a %s, not a weekend day", s, wd)
			}
			out.workdays[d] = true
		}
		out.years[year] = y.Source
	}
	return out, nil
}

func parseDate(s string, year int) (date, error) {
	t, err := time.ParseInLocation(time.DateOnly, s, Beijing)
	if err != nil {
		return date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	d := dateOf(t)
	if d.y != year {
		return date{}, fmt.Errorf("date %s is listed under year %d", s, year)
	}
	return d, nil
}

// Years lists the years c has data for, ascending.
func (c *Calendar) Years() []int { return slices.Sorted(maps.Keys(c.years)) }

// Covers reports whether c has the holiday arrangement of year; outside them, only weekends
// are rest days.
func (c *Calendar) Covers(year int) bool {
	_, ok := c.years[year]
	return ok
}

// Source names the notice a year's data comes from ("" when not covered).
func (c *Calendar) Source(year int) string { return c.years[year] }

func (c *Calendar) workday(d date) bool {
	if c.workdays[d] {
		return true
	}
	if c.holidays[d] {
		return false
	}
	wd := d.time().Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// IsWorkday reports whether t falls on a working day (Beijing date).
func (c *Calendar) IsWorkday(t time.Time) bool { return c.workday(dateOf(t)) }

// AddWorkdays returns the time n working days after t (before it, for negative n), at the same
// Beijing clock time: the count starts with the day after t, whatever day t is, so a request
// made on a Saturday with a limit of 1 is due on Monday at the same hour. n = 0 returns t.
func (c *Calendar) AddWorkdays(t time.Time, n int) time.Time {
	if n == 0 {
		return t
	}
	step := 1
	if n < 0 {
		step, n = -1, -n
	}
	d := dateOf(t)
	for n > 0 {
		d = d.next(step)
		if c.workday(d) {
			n--
		}
	}
	lt := t.In(Beijing)
	out := time.Date(d.y, d.m, d.d, lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), Beijing)
	return out.In(t.Location())
}

// WorkdaysBetween counts the working days after a's date up to and including b's date
// (negative when b is before a), so that WorkdaysBetween(t, AddWorkdays(t, n)) == n for n ≥ 0.
func (c *Calendar) WorkdaysBetween(a, b time.Time) int {
	da, db := dateOf(a), dateOf(b)
	sign := 1
	if db.before(da) {
		da, db, sign = db, da, -1
	}
	n := 0
	for d := da.next(1); !db.before(d); d = d.next(1) {
		if c.workday(d) {
			n++
		}
	}
	return sign * n
}

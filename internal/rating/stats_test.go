package rating_test

import (
	"math"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/rating"
)

// statsFixture rates eight applications: 太原 市场监管 (小店区, item A) 5 4 3 2 1; 太原 人社
// (迎泽区, item B) 5 5; 大同 市场监管 (平城区, item A) 1. One 差评 of 太原 is rectified on time,
// the other is left past its deadline.
func statsFixture(t *testing.T, d *db.DB) (*fixture, []rating.Rating) {
	f := newFixture(t, d, rating.Options{})
	var out []rating.Rating
	rate := func(dept, division, item string, level rating.Level, tags ...string) {
		app := f.application(appSpec{dept: dept, division: division, item: item})
		out = append(out, f.rate(f.citizen, rating.Input{ApplicationID: app.ID, Level: level, Tags: tags}))
		f.clock.add(time.Minute)
	}
	rate(deptTY, "140105", "A", 5, "fast", "no_visit")
	rate(deptTY, "140105", "A", 4, "fast")
	rate(deptTY, "140105", "A", 3, "many_materials")
	rate(deptTY, "140105", "A", 2, "slow")
	rate(deptTY, "140105", "A", 1, "slow", "visits")
	rate(deptTYR, "140106", "B", 5)
	rate(deptTYR, "140106", "B", 5, "easy_to_use")
	rate(deptDT, "140213", "A", 1, "slow")
	must[rating.Rating](t, "claim")(f.svc.Claim(f.ctx, f.officer, out[3].ID))
	must[rating.Rating](t, "rectify")(f.svc.Rectify(f.ctx, f.officer, out[3].ID, "已加派人手"))
	f.clock.add(10 * 24 * time.Hour) // the other 差评s are overdue now
	return f, out
}

func TestStats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, _ := statsFixture(t, d)
		type want struct {
			total, poor, rectifications, rectified, onTime, open, overdue int
			byLevel                                                       [6]int
			depts, items, divisions                                       map[string]int
		}
		tests := []struct {
			name  string
			actor authz.Subject // zero: the public summary
			f     rating.StatsFilter
			want  want
		}{
			{name: "a supervisor sees the city", actor: f.supervisor, want: want{total: 7, poor: 2, rectifications: 2, rectified: 1, onTime: 1, open: 1, overdue: 1,
				byLevel: [6]int{0, 1, 1, 1, 1, 3}, depts: map[string]int{deptTY: 5, deptTYR: 2}, items: map[string]int{"A": 5, "B": 2},
				divisions: map[string]int{"140105": 5, "140106": 2}}},
			{name: "a supervisor narrows to an item", actor: f.supervisor, f: rating.StatsFilter{ItemCode: "B"}, want: want{total: 2,
				byLevel: [6]int{0, 0, 0, 0, 0, 2}, depts: map[string]int{deptTYR: 2}, items: map[string]int{"B": 2}, divisions: map[string]int{"140106": 2}}},
			{name: "an officer sees their department", actor: f.officer, want: want{total: 5, poor: 2, rectifications: 2, rectified: 1, onTime: 1, open: 1, overdue: 1,
				byLevel: [6]int{0, 1, 1, 1, 1, 1}, depts: map[string]int{deptTY: 5}, items: map[string]int{"A": 5}, divisions: map[string]int{"140105": 5}}},
			{name: "the public summary of the province", f: rating.StatsFilter{Division: "140000"}, want: want{total: 8, poor: 3, rectifications: 3, rectified: 1,
				onTime: 1, open: 2, overdue: 2, byLevel: [6]int{0, 2, 1, 1, 1, 3}, depts: map[string]int{deptTY: 5, deptTYR: 2, deptDT: 1},
				items: map[string]int{"A": 6, "B": 2}, divisions: map[string]int{"140100": 7, "140200": 1}}},
			{name: "the public summary of a county", f: rating.StatsFilter{Division: "140213"}, want: want{total: 1, poor: 1, rectifications: 1, open: 1, overdue: 1,
				byLevel: [6]int{0, 1, 0, 0, 0, 0}, depts: map[string]int{deptDT: 1}, items: map[string]int{"A": 1}, divisions: map[string]int{}}},
			{name: "a period without ratings", f: rating.StatsFilter{Division: "140000", From: bj(2026, 1, 1, 0, 0), To: bj(2026, 3, 1, 0, 0)},
				want: want{depts: map[string]int{}, items: map[string]int{}, divisions: map[string]int{}}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var st rating.Stats
				var err error
				if tc.actor.Kind == "" {
					st, err = f.svc.Summary(f.ctx, tc.f)
				} else {
					st, err = f.svc.Stats(f.ctx, tc.actor, tc.f)
				}
				if err != nil {
					t.Fatal(err)
				}
				w := tc.want
				if st.Total != w.total || st.Poor != w.poor || st.Rectifications != w.rectifications || st.Rectified != w.rectified ||
					st.RectifiedOnTime != w.onTime || st.RectifyOpen != w.open || st.Overdue != w.overdue || st.ByLevel != w.byLevel {
					t.Errorf("counts = %+v, want %+v", st.Counts, w)
				}
				if w.total > 0 {
					wantRate := float64(w.byLevel[3]+w.byLevel[4]+w.byLevel[5]) / float64(w.total)
					if math.Abs(st.Satisfaction-wantRate) > 1e-9 {
						t.Errorf("satisfaction = %v, want %v", st.Satisfaction, wantRate)
					}
				} else if st.Satisfaction != 0 {
					t.Errorf("satisfaction %v of nothing", st.Satisfaction)
				}
				for what, pair := range map[string]struct {
					got  []rating.Group
					want map[string]int
				}{"departments": {st.ByDepartment, w.depts}, "items": {st.ByItem, w.items}, "divisions": {st.ByDivision, w.divisions}} {
					got := map[string]int{}
					for i, g := range pair.got {
						got[g.Key] = g.Total
						if g.Name == "" {
							t.Errorf("%s: %s has no name", what, g.Key)
						}
						if i > 0 && pair.got[i-1].Total < g.Total {
							t.Errorf("%s not sorted by count", what)
						}
					}
					if len(got) != len(pair.want) {
						t.Errorf("%s = %v, want %v", what, got, pair.want)
					}
					for k, n := range pair.want {
						if got[k] != n {
							t.Errorf("%s = %v, want %v", what, got, pair.want)
							break
						}
					}
				}
			})
		}

		st := must[rating.Stats](t, "stats")(f.svc.Stats(f.ctx, f.supervisor, rating.StatsFilter{}))
		// Most chosen first, ties by code: fast 2, slow 2, then the ones chosen once.
		if len(st.Tags) != 6 || st.Tags[0].Code != "fast" || !st.Tags[0].Praise || st.Tags[1].Code != "slow" || st.Tags[1].Count != 2 ||
			st.Tags[1].Praise || st.Tags[1].Name.ZH == "" || st.Tags[5].Count != 1 {
			t.Errorf("tags = %+v", st.Tags)
		}
		if st.DivisionName != "太原市" {
			t.Errorf("division name %q", st.DivisionName)
		}
		for _, tc := range []struct {
			name  string
			actor authz.Subject
			f     rating.StatsFilter
			want  *i18n.Error
		}{
			{"a citizen", f.citizen, rating.StatsFilter{}, i18n.ErrForbidden},
			{"anonymous", authz.Subject{}, rating.StatsFilter{}, i18n.ErrUnauthorized},
			{"an officer asking for another department", f.officer, rating.StatsFilter{DeptID: deptTYR}, i18n.ErrForbidden},
			{"a supervisor outside their division", f.dtSupervisor, rating.StatsFilter{Division: "140100"}, i18n.ErrForbidden},
			{"an auditor", f.auditor, rating.StatsFilter{}, i18n.ErrForbidden},
		} {
			_, err := f.svc.Stats(f.ctx, tc.actor, tc.f)
			wantErr(t, tc.name, err, tc.want)
		}
		for _, div := range []string{"", "14", "1401OO", "140100000000"} {
			_, err := f.svc.Summary(f.ctx, rating.StatsFilter{Division: div})
			wantErr(t, "summary of "+div, err, &i18n.Error{Code: "rating.division", Status: 400, Msg: i18n.T("x", "x")})
		}
	}, sources...)
}

func TestList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f, rated := statsFixture(t, d)
		ids := func(p rating.Page) []string {
			var out []string
			for _, r := range p.Ratings {
				out = append(out, r.ID)
			}
			return out
		}
		// Poor ratings of the city, newest first, one per page.
		p1 := must[rating.Page](t, "page 1")(f.svc.List(f.ctx, f.supervisor, rating.ListFilter{Poor: true, Limit: 1}))
		if got := ids(p1); len(got) != 1 || got[0] != rated[4].ID || p1.Next == "" {
			t.Fatalf("page 1 = %v next %q", got, p1.Next)
		}
		p2 := must[rating.Page](t, "page 2")(f.svc.List(f.ctx, f.supervisor, rating.ListFilter{Poor: true, Limit: 1, After: p1.Next}))
		if got := ids(p2); len(got) != 1 || got[0] != rated[3].ID || p2.Next != "" {
			t.Fatalf("page 2 = %v next %q", got, p2.Next)
		}
		if r := p2.Ratings[0]; r.Rectification == nil || r.Rectification.State != rating.RectifyCallback || len(r.Tags) != 1 {
			t.Errorf("listed rating = %+v", r)
		}
		open := must[rating.Page](t, "open")(f.svc.List(f.ctx, f.supervisor, rating.ListFilter{Rectify: rating.RectifyOpen}))
		if got := ids(open); len(got) != 1 || got[0] != rated[4].ID || !open.Ratings[0].Rectification.Overdue(f.clock.Now()) {
			t.Errorf("open rectifications = %v", got)
		}
		rs := must[rating.Page](t, "rs")(f.svc.List(f.ctx, f.rsOfficer, rating.ListFilter{}))
		if got := ids(rs); len(got) != 2 || got[0] != rated[6].ID {
			t.Errorf("人社 officer's list = %v", got)
		}
		province := must[rating.Page](t, "province")(f.svc.List(f.ctx, staff("s0", "140000", "", "supervisor"), rating.ListFilter{Poor: true}))
		if got := ids(province); len(got) != 3 || got[0] != rated[7].ID {
			t.Errorf("province's poor ratings = %v", got)
		}
		for _, after := range []string{"x", "bm90LWEtY3Vyc29y", "MTIzLiE"} {
			_, err := f.svc.List(f.ctx, f.supervisor, rating.ListFilter{After: after})
			wantErr(t, "cursor "+after, err, rating.ErrBadCursor)
		}
		_, err := f.svc.List(f.ctx, f.citizen, rating.ListFilter{})
		wantErr(t, "a citizen's list", err, i18n.ErrForbidden)
		_, err = f.svc.List(f.ctx, f.supervisor, rating.ListFilter{Rectify: "lost"})
		wantErr(t, "bad state", err, &i18n.Error{Code: "rating.filter", Status: 400, Msg: i18n.T("x", "x")})
	}, sources...)
}

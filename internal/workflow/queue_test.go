package workflow_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// titles lists a page's case titles.
func titles(p workflow.QueuePage) []string {
	out := make([]string, len(p.Cases))
	for i, c := range p.Cases {
		out[i] = c.Title
	}
	return out
}

func TestQueue(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		ctx := f.ctx
		open := func(title, dept, division string, at time.Time) workflow.Case {
			f.clock.set(at)
			return must[workflow.Case](t, "open")(f.svc.Open(ctx, workflow.OpenCase{Definition: serviceDef.Key, Title: title,
				Ref: "application:" + title, Applicant: f.citizen, DeptID: dept, Division: division}))
		}
		approve := func(actor authz.Subject, id string) {
			must[workflow.Case](t, "claim")(f.svc.Claim(ctx, actor, id))
			must[workflow.Case](t, "approve")(f.svc.Decide(ctx, actor, id, workflow.Decision{Outcome: workflow.Approve}))
		}
		// Acceptance takes 1 working day: a is due Tuesday 3 March 09:00, b Wednesday 4 March 09:00.
		a := open("a", deptTY, "140105", bj(2026, 3, 2, 9, 0))
		b := open("b", deptTY, "140100", bj(2026, 3, 3, 9, 0))
		c := open("c", deptTY, "140105", bj(2026, 3, 3, 10, 0))
		dd := open("d", deptTY, "140105", bj(2026, 3, 3, 10, 0))
		e := open("e", deptTY, "140105", bj(2026, 3, 3, 10, 0))
		open("x", deptXD, "140105", bj(2026, 3, 3, 10, 0)) // the district bureau's
		open("y", deptDT, "140200", bj(2026, 3, 3, 10, 0)) // 大同's
		g := open("g", deptTY, "140105", bj(2026, 3, 3, 10, 0))
		f.clock.set(bj(2026, 3, 4, 10, 0))
		approve(f.officer, c.ID) // review, due Monday 9 March 10:00
		approve(f.officer, dd.ID)
		approve(f.officer2, dd.ID) // at the leader's decision step
		must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, e.ID))
		must[workflow.Case](t, "correction")(f.svc.RequestCorrection(ctx, f.officer, e.ID, "补正", nil))
		must[workflow.Case](t, "withdraw")(f.svc.Withdraw(ctx, f.citizen, g.ID, ""))
		must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer2, b.ID))

		// Wednesday 4 March 12:00: a and b are overdue, c is green.
		f.clock.set(bj(2026, 3, 4, 12, 0))
		q := func(actor authz.Subject, flt workflow.QueueFilter) []string {
			t.Helper()
			return titles(must[workflow.QueuePage](t, "queue")(f.svc.Queue(ctx, actor, flt)))
		}
		cases := []struct {
			name  string
			actor authz.Subject
			f     workflow.QueueFilter
			want  []string
		}{
			{"officer: everything at officer steps, most urgent first", f.officer, workflow.QueueFilter{}, []string{"a", "b", "c"}},
			{"leader: the decision step only", f.leader, workflow.QueueFilter{}, []string{"d"}},
			{"by step", f.officer, workflow.QueueFilter{Step: workflow.StepReview}, []string{"c"}},
			{"by definition", f.officer, workflow.QueueFilter{Definition: "service:other"}, []string{}},
			{"red", f.officer, workflow.QueueFilter{Status: workflow.Red}, []string{"a", "b"}},
			{"green", f.officer, workflow.QueueFilter{Status: workflow.Green}, []string{"c"}},
			{"yellow", f.officer, workflow.QueueFilter{Status: workflow.Yellow}, []string{}},
			{"claimed by me", f.officer2, workflow.QueueFilter{Claimed: workflow.ClaimedMine}, []string{"b"}},
			{"unclaimed", f.officer, workflow.QueueFilter{Claimed: workflow.ClaimedNone}, []string{"a", "c"}},
			{"suspended", f.officer, workflow.QueueFilter{State: workflow.StateSuspended}, []string{"e"}},
			{"district officer", f.xdOfficer, workflow.QueueFilter{}, []string{"x"}},
			{"大同 officer", f.dtOfficer, workflow.QueueFilter{}, []string{"y"}},
			// Same department, narrower division (小店区's neighbour): only cases within it.
			{"narrow division", staff("n1", "140106", deptTY, authz.RoleOfficer), workflow.QueueFilter{}, []string{}},
			{"district division in the city department", staff("n2", "140105", deptTY, authz.RoleOfficer), workflow.QueueFilter{}, []string{"a", "c"}},
		}
		for _, tc := range cases {
			if got := q(tc.actor, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
		// On Friday at 10:00 c turns yellow: one working day before Monday 9 March 10:00.
		f.clock.set(bj(2026, 3, 6, 9, 59))
		if got := q(f.officer, workflow.QueueFilter{Status: workflow.Yellow}); len(got) != 0 {
			t.Errorf("yellow on Friday 09:59: %v", got)
		}
		f.clock.set(bj(2026, 3, 6, 10, 0))
		if got := q(f.officer, workflow.QueueFilter{Status: workflow.Yellow}); !slices.Equal(got, []string{"c"}) {
			t.Errorf("yellow on Friday: %v", got)
		}
		page := must[workflow.QueuePage](t, "queue")(f.svc.Queue(ctx, f.officer, workflow.QueueFilter{}))
		if page.Cases[0].Status != workflow.Red || page.Cases[2].Status != workflow.Yellow || page.Cases[2].ID != c.ID {
			t.Errorf("statuses %v %v", page.Cases[0].Status, page.Cases[2].Status)
		}

		refused := []struct {
			name  string
			actor authz.Subject
			f     workflow.QueueFilter
			want  *i18n.Error
		}{
			{"anonymous", authz.Subject{}, workflow.QueueFilter{}, i18n.ErrUnauthorized},
			{"citizen", f.citizen, workflow.QueueFilter{}, i18n.ErrForbidden},
			{"supervisor (reads, does not handle)", f.supervisor, workflow.QueueFilter{}, i18n.ErrForbidden},
			{"auditor", f.auditor, workflow.QueueFilter{}, i18n.ErrForbidden},
			{"bad cursor", f.officer, workflow.QueueFilter{After: "not-a-cursor!"}, workflow.ErrBadCursor},
			{"bad status", f.officer, workflow.QueueFilter{Status: "blue"}, i18n.New("workflow.filter", "x", "x")},
			{"bad claimed", f.officer, workflow.QueueFilter{Claimed: "yours"}, i18n.New("workflow.filter", "x", "x")},
			{"closed state", f.officer, workflow.QueueFilter{State: workflow.StateClosed}, i18n.New("workflow.filter", "x", "x")},
		}
		for _, tc := range refused {
			_, err := f.svc.Queue(ctx, tc.actor, tc.f)
			wantErr(t, tc.name, err, tc.want)
		}
		if page.Cases[0].ID != a.ID {
			t.Errorf("first is %s", page.Cases[0].Title)
		}
	}, sources...)
}

// TestQueuePaging walks a queue page by page: every case once, in order, whatever the ties.
func TestQueuePaging(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		var want []string
		for i := range 23 {
			// Pairs of cases share a deadline, so ties are broken by id.
			f.clock.set(bj(2026, 3, 2, 9, 0).Add(time.Duration(i/2) * time.Minute))
			c := must[workflow.Case](t, "open")(f.svc.Open(f.ctx, workflow.OpenCase{Definition: serviceDef.Key, Title: fmt.Sprintf("t%02d", i),
				Ref: fmt.Sprintf("r%d", i), Applicant: f.citizen, DeptID: deptTY, Division: "140105"}))
			want = append(want, c.Title)
		}
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			p := must[workflow.QueuePage](t, "page")(f.svc.Queue(f.ctx, f.officer, workflow.QueueFilter{Limit: 5, After: after}))
			got = append(got, titles(p)...)
			if p.Next == "" {
				if len(p.Cases) != 3 {
					t.Errorf("last page has %d cases", len(p.Cases))
				}
				break
			}
			after = p.Next
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages %v, want %v", got, want)
		}
	}, sources...)
}

func TestStats(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		ctx := f.ctx
		open := func(dept, division string) workflow.Case {
			return must[workflow.Case](t, "open")(f.svc.Open(ctx, workflow.OpenCase{Definition: serviceDef.Key, Title: "t",
				Ref: db.NewID(), Applicant: f.citizen, DeptID: dept, Division: division}))
		}
		f.clock.set(bj(2026, 3, 2, 9, 0))
		red := open(deptTY, "140105")
		f.clock.set(bj(2026, 3, 4, 9, 0))
		green := open(deptTY, "140100")
		review := open(deptTY, "140105")
		must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, review.ID))
		must[workflow.Case](t, "accept")(f.svc.Decide(ctx, f.officer, review.ID, workflow.Decision{Outcome: workflow.Approve}))
		susp := open(deptTY, "140105")
		must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, susp.ID))
		must[workflow.Case](t, "correction")(f.svc.RequestCorrection(ctx, f.officer, susp.ID, "补正", nil))
		rej := open(deptTY, "140105")
		must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, rej.ID))
		f.clock.set(bj(2026, 3, 5, 9, 0)) // one working day later
		must[workflow.Case](t, "reject")(f.svc.Decide(ctx, f.officer, rej.ID, workflow.Decision{Outcome: workflow.Reject, Comment: "不符合"}))
		wd := open(deptTY, "140105")
		must[workflow.Case](t, "withdraw")(f.svc.Withdraw(ctx, f.citizen, wd.ID, ""))
		open(deptXD, "140105")
		open(deptDT, "140200")
		_, _ = red, green

		f.clock.set(bj(2026, 3, 4, 12, 0))
		st := must[workflow.Stats](t, "officer stats")(f.svc.Stats(ctx, f.officer))
		if st.Open != 3 || st.Suspended != 1 || st.Closed != 2 || st.OpenByStep[workflow.StepAccept] != 2 || st.OpenByStep[workflow.StepReview] != 1 ||
			st.ByStatus[workflow.Red] != 1 || st.ByStatus[workflow.Yellow] != 1 || st.ByStatus[workflow.Green] != 1 ||
			st.ClosedByOutcome[workflow.OutcomeRejected] != 1 || st.ClosedByOutcome[workflow.OutcomeWithdrawn] != 1 || st.AvgWorkingDays != 1 {
			t.Errorf("officer: %+v", st)
		}
		// The city's supervisor sees the district bureau's case too, not 大同's.
		st = must[workflow.Stats](t, "supervisor stats")(f.svc.Stats(ctx, f.supervisor))
		if st.Open != 4 || st.Closed != 2 {
			t.Errorf("supervisor: %+v", st)
		}
		st = must[workflow.Stats](t, "大同 supervisor stats")(f.svc.Stats(ctx, f.dtSupervisor))
		if st.Open != 1 || st.Suspended != 0 || st.Closed != 0 || st.AvgWorkingDays != 0 {
			t.Errorf("大同 supervisor: %+v", st)
		}
		for _, who := range []authz.Subject{f.citizen, f.auditor, {}} {
			if _, err := f.svc.Stats(ctx, who); err == nil {
				t.Errorf("%s got statistics", who)
			}
		}
	}, sources...)
}

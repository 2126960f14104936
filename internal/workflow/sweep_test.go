package workflow_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/workflow"
)

// oneStep defines a single-step case of n working days (a hotline ticket, say).
func (f *fixture) oneStep(key string, days int) {
	f.t.Helper()
	def := workflow.Definition{Key: key, Version: 1, Name: "热线工单", NameEn: "Hotline ticket",
		Steps: []workflow.Step{{Key: "handle", Name: "办理", NameEn: "Handling", Days: days}}}
	if err := f.svc.Define(f.ctx, def); err != nil {
		f.t.Fatal(err)
	}
}

// sweepAt runs Sweep at t and checks what it fired.
func (f *fixture) sweepAt(t time.Time, reminded, escalated int) {
	f.t.Helper()
	f.clock.set(t)
	res, err := f.svc.Sweep(f.ctx)
	if err != nil {
		f.t.Fatalf("sweep at %s: %v", t.Format(time.DateTime), err)
	}
	if res.Reminded != reminded || res.Escalated != escalated {
		f.t.Errorf("sweep at %s: %+v, want %d reminded, %d escalated", t.Format("2006-01-02 15:04 Mon"), res, reminded, escalated)
	}
}

// status reads a case's colour at t.
func (f *fixture) status(id string, t time.Time) workflow.Status {
	f.t.Helper()
	f.clock.set(t)
	return must[workflow.Case](f.t, "get")(f.svc.Get(f.ctx, f.officer, id)).Status
}

// alerts lists the reminders and escalations of a case as (action, Beijing time).
func (f *fixture) alerts(id string) []string {
	f.t.Helper()
	var out []string
	for _, e := range must[[]workflow.Event](f.t, "history")(f.svc.History(f.ctx, f.officer, id)) {
		if e.Action == workflow.ActionReminded || e.Action == workflow.ActionEscalated {
			if !f.svc.Calendar().IsWorkday(e.At) {
				f.t.Errorf("%s fired on %s, not a working day", e.Action, e.At.In(calendar.Beijing).Format("2006-01-02 Mon"))
			}
			out = append(out, string(e.Action)+" "+e.At.In(calendar.Beijing).Format("01-02 15:04"))
		}
	}
	return out
}

// TestDeadlinesGoldenWeek: 国庆 2026 — 10-1…10-7 off, 9-20 (Sunday) and 10-10 (Saturday) worked.
// A case opened on Tuesday 29 September with 3 working days is due on 9-30, 10-8, 10-9 → 9
// October; with 4, on the make-up Saturday 10 October.
func TestDeadlinesGoldenWeek(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		f.oneStep("hotline:3", 3)
		f.oneStep("hotline:4", 4)
		f.clock.set(bj(2026, 9, 29, 10, 0))
		a, b := f.open("hotline:3"), f.open("hotline:4")
		if !a.StepDueAt.Equal(bj(2026, 10, 9, 10, 0)) || !a.DueAt.Equal(*a.StepDueAt) {
			t.Fatalf("3 days from 9-29: due %s", a.StepDueAt.In(calendar.Beijing))
		}
		if !b.StepDueAt.Equal(bj(2026, 10, 10, 10, 0)) {
			t.Fatalf("4 days from 9-29: due %s", b.StepDueAt.In(calendar.Beijing))
		}
		f.sweepAt(bj(2026, 9, 29, 10, 0), 0, 0)
		f.sweepAt(bj(2026, 9, 30, 18, 0), 0, 0)
		f.sweepAt(bj(2026, 10, 3, 10, 0), 0, 0) // the holiday counts for nothing
		if s := f.status(a.ID, bj(2026, 10, 7, 23, 59)); s != workflow.Green {
			t.Errorf("last evening of the holiday: %s, want green", s)
		}
		f.sweepAt(bj(2026, 10, 7, 23, 59), 0, 0)
		f.sweepAt(bj(2026, 10, 8, 9, 59), 0, 0)
		f.sweepAt(bj(2026, 10, 8, 10, 0), 1, 0) // one working day before 10-9 10:00
		f.sweepAt(bj(2026, 10, 8, 15, 0), 0, 0) // once per deadline
		if s := f.status(a.ID, bj(2026, 10, 8, 15, 0)); s != workflow.Yellow {
			t.Errorf("10-8 afternoon: %s, want yellow", s)
		}
		f.sweepAt(bj(2026, 10, 9, 10, 0), 1, 1) // a escalated, b reminded
		if s := f.status(a.ID, bj(2026, 10, 9, 10, 0)); s != workflow.Red {
			t.Errorf("a at its deadline: %s, want red", s)
		}
		f.sweepAt(bj(2026, 10, 10, 10, 0), 0, 1) // the make-up Saturday is a working day
		f.sweepAt(bj(2026, 10, 11, 10, 0), 0, 0)
		f.sweepAt(bj(2026, 10, 20, 10, 0), 0, 0)
		if got, want := f.alerts(a.ID), []string{"reminded 10-08 10:00", "escalated 10-09 10:00"}; !slices.Equal(got, want) {
			t.Errorf("a: %v, want %v", got, want)
		}
		if got, want := f.alerts(b.ID), []string{"reminded 10-09 10:00", "escalated 10-10 10:00"}; !slices.Equal(got, want) {
			t.Errorf("b: %v, want %v", got, want)
		}
		c := must[workflow.Case](t, "get")(f.svc.Get(f.ctx, f.officer, b.ID))
		if c.Alert != "escalated" || c.Version != 1 {
			t.Errorf("b after escalation: alert %q version %d (alerts make no new version)", c.Alert, c.Version)
		}
		ps := f.payloads(b.ID)
		if len(ps) != 3 || ps[2].Action != workflow.ActionEscalated || ps[2].Actor != "system:workflow" || !ps[2].StepDueAt.Equal(*b.StepDueAt) {
			t.Errorf("events %+v", ps)
		}
		if got := f.audits(b.ID); !slices.Equal(got, []string{"workflow.case.opened", "workflow.case.reminded", "workflow.case.escalated"}) {
			t.Errorf("audit %v", got)
		}
	}, sources...)
}

// TestDeadlinesSpringFestival: 春节 2026 — 2-15…2-23 off, 2-14 and 2-28 (Saturdays) worked.
func TestDeadlinesSpringFestival(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		f.oneStep("hotline:2", 2)
		// Friday 13 February + 2 working days: Saturday 14 (make-up), then Tuesday 24 February.
		f.clock.set(bj(2026, 2, 13, 10, 0))
		a := f.open("hotline:2")
		if !a.StepDueAt.Equal(bj(2026, 2, 24, 10, 0)) {
			t.Fatalf("due %s", a.StepDueAt.In(calendar.Beijing))
		}
		// Thursday 26 February + 2: Friday 27, Saturday 28 (make-up).
		f.clock.set(bj(2026, 2, 26, 10, 0))
		b := f.open("hotline:2")
		if !b.StepDueAt.Equal(bj(2026, 2, 28, 10, 0)) {
			t.Fatalf("due %s", b.StepDueAt.In(calendar.Beijing))
		}
		f.sweepAt(bj(2026, 2, 14, 9, 0), 0, 0)
		f.sweepAt(bj(2026, 2, 14, 10, 0), 1, 0) // reminded on the make-up Saturday
		f.sweepAt(bj(2026, 2, 20, 10, 0), 0, 0) // nine days of holiday pass without an escalation
		if s := f.status(a.ID, bj(2026, 2, 23, 23, 0)); s != workflow.Yellow {
			t.Errorf("last holiday evening: %s, want yellow", s)
		}
		f.sweepAt(bj(2026, 2, 24, 10, 0), 0, 1)
		f.sweepAt(bj(2026, 2, 27, 10, 0), 1, 0)
		f.sweepAt(bj(2026, 2, 28, 10, 0), 0, 1) // escalated on the make-up Saturday
		if got, want := f.alerts(a.ID), []string{"reminded 02-14 10:00", "escalated 02-24 10:00"}; !slices.Equal(got, want) {
			t.Errorf("a: %v, want %v", got, want)
		}
		if got, want := f.alerts(b.ID), []string{"reminded 02-27 10:00", "escalated 02-28 10:00"}; !slices.Equal(got, want) {
			t.Errorf("b: %v, want %v", got, want)
		}
	}, sources...)
}

// TestDeadlinesSuspension: while a case waits for a correction nothing fires; after the
// answer the deadline has moved by exactly the working time spent waiting.
func TestDeadlinesSuspension(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		f.oneStep("hotline:3", 3)
		f.clock.set(bj(2026, 3, 2, 10, 0)) // Monday: due Thursday 5 March 10:00
		c := f.open("hotline:3")
		must[workflow.Case](t, "claim")(f.svc.Claim(f.ctx, f.officer, c.ID))
		f.clock.set(bj(2026, 3, 3, 10, 0)) // two working days left
		must[workflow.Case](t, "correction")(f.svc.RequestCorrection(f.ctx, f.officer, c.ID, "请补充材料", nil))
		f.sweepAt(bj(2026, 3, 4, 10, 0), 0, 0)
		f.sweepAt(bj(2026, 3, 6, 10, 0), 0, 0)
		if s := f.status(c.ID, bj(2026, 3, 6, 10, 0)); s != workflow.Green {
			t.Errorf("suspended past the old deadline: %s, want green (as held)", s)
		}
		f.clock.set(bj(2026, 3, 9, 10, 0)) // Monday: two working days again → Wednesday 11 March
		c = must[workflow.Case](t, "resume")(f.svc.Resume(f.ctx, f.citizen, c.ID, ""))
		if !c.StepDueAt.Equal(bj(2026, 3, 11, 10, 0)) {
			t.Fatalf("due after resume %s", c.StepDueAt.In(calendar.Beijing))
		}
		f.sweepAt(bj(2026, 3, 10, 9, 59), 0, 0)
		f.sweepAt(bj(2026, 3, 10, 10, 0), 1, 0)
		f.sweepAt(bj(2026, 3, 11, 10, 0), 0, 1)
		// A step decided late: the next step's fresh clock brings a fresh reminder and escalation.
		must[workflow.Case](t, "close")(f.svc.Decide(f.ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Approve}))
		f.sweepAt(bj(2026, 3, 20, 10, 0), 0, 0) // closed: nothing more
		if got, want := f.alerts(c.ID), []string{"reminded 03-10 10:00", "escalated 03-11 10:00"}; !slices.Equal(got, want) {
			t.Errorf("%v, want %v", got, want)
		}
	}, sources...)
}

// TestSweepLate: a sweep that first runs after the deadline escalates without a stale
// reminder; each step deadline alerts afresh.
func TestSweepLate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{RemindDays: 2})
		c := f.open(serviceDef.Key) // accept due Tue 3 March 10:00
		f.sweepAt(bj(2026, 3, 4, 10, 0), 0, 1)
		must[workflow.Case](t, "claim")(f.svc.Claim(f.ctx, f.officer, c.ID))
		c = must[workflow.Case](t, "accept")(f.svc.Decide(f.ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Approve}))
		// Review: 3 days from Wednesday 4 March → Monday 9 March; reminded 2 working days before.
		if !c.StepDueAt.Equal(bj(2026, 3, 9, 10, 0)) || c.Alert != "" || c.Status != workflow.Green {
			t.Fatalf("review: due %s alert %q status %s", c.StepDueAt.In(calendar.Beijing), c.Alert, c.Status)
		}
		f.sweepAt(bj(2026, 3, 5, 10, 0), 1, 0)
		f.sweepAt(bj(2026, 3, 9, 10, 0), 0, 1)
	}, sources...)
}

// TestSweepThroughRiver runs Sweep as the job queue does: the worker and periodic job from
// Jobs, on a real River queue on the same database.
func TestSweepThroughRiver(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		if _, err := jobs.Migrate(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, d, workflow.Options{SweepInterval: time.Hour})
		c := f.open(serviceDef.Key)
		f.clock.set(bj(2026, 3, 3, 10, 0)) // the acceptance deadline
		workers := jobs.NewWorkers()
		periodic := f.svc.Jobs(workers)
		if len(periodic) != 1 {
			t.Fatalf("%d periodic jobs", len(periodic))
		}
		q, err := jobs.New(d, jobs.Config{Workers: workers, Periodic: periodic, PollInterval: 50 * time.Millisecond, Test: true,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = q.Stop(ctx)
			_ = q.Close()
		})
		if err := q.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Insert(context.Background(), workflow.SweepArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := f.alerts(c.ID)
			if len(got) == 1 && got[0] == "escalated 03-03 10:00" {
				break
			}
			if len(got) > 1 {
				t.Fatalf("alerts %v", got)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no escalation through the job queue; alerts %v", got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}, sources...)
}

// TestSweepMany: more due alerts than one batch, each fired once.
func TestSweepMany(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		seedOpenCases(t, d, 410, 410, f.clock.Now()) // deadlines up to 15 days ahead
		f.sweepAt(f.clock.Now().AddDate(0, 1, 0), 0, 410)
		f.sweepAt(f.clock.Now().Add(time.Hour), 0, 0)
		var n int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM workflow_events WHERE action = 'escalated'`).Scan(&n); err != nil || n != 410 {
			t.Errorf("%d escalations recorded (%v)", n, err)
		}
	}, sources...)
}

package quality_test

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/quality"
)

func (f *fixture) due(t *testing.T, want ...string) {
	t.Helper()
	got, err := f.q.Due(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("due %v, want %v", got, want)
	}
}

func (f *fixture) run(t *testing.T, id string) quality.Report {
	t.Helper()
	rep, err := f.q.Run(f.ctx, id)
	if err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	return rep
}

// An attached dataset is due when its active version has no report, and when the timeliness
// verdict of its latest report no longer holds — both ways. Datasets not attached are left alone.
func TestDue(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		f.due(t)
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		f.load(t, "clean", d.csv)
		f.load(t, "loose", d.csv) // never attached
		attach := func(id string, cycle catalog.UpdateCycle) {
			t.Helper()
			if _, err := f.q.Attach(f.ctx, staff, id, catalog.Resource{ID: "res-" + id, Draft: catalog.Draft{Name: id,
				ProviderDeptID: "dept-mz", UpdateCycle: cycle}, DivisionCode: "140105"}); err != nil {
				t.Fatal(err)
			}
		}
		attach("roll", catalog.CycleIrregular)
		attach("clean", catalog.CycleIrregular)
		f.due(t, "clean", "roll")
		f.run(t, "roll")
		f.due(t, "clean")
		f.run(t, "clean")
		f.due(t)
		f.load(t, "roll", d.csv) // a load completed: version 2 has no report
		f.due(t, "roll")
		f.run(t, "roll")
		f.due(t)

		// A daily resource: fresh for a day plus the grace period.
		attach("roll", catalog.CycleDaily)
		f.clock.advance(47 * time.Hour)
		f.due(t)
		f.clock.advance(2 * time.Hour)
		f.due(t, "roll") // stale now, not in its report
		if rep := f.run(t, "roll"); !rep.Stale {
			t.Fatalf("not stale: %+v", rep)
		}
		f.due(t)
		f.clock.advance(240 * time.Hour)
		f.due(t) // still stale, as reported
		// A longer grace period makes it fresh again: due, to say so.
		f.rules(t, []quality.Rule{{DatasetID: "roll", Kind: quality.Timeliness, GraceHours: 1000}})
		f.due(t, "roll")
		if rep := f.run(t, "roll"); rep.Stale {
			t.Fatalf("stale: %+v", rep)
		}
		f.due(t)
		// Without a regular cycle nothing is measured: "clean" never becomes due by age.
		f.clock.advance(5000 * time.Hour)
		f.due(t, "roll")
	})
}

// The job queue checks datasets by itself: the sweep at start checks what was loaded, a later
// sweep checks a new version, and one after the update cycle ran out reports the staleness.
func TestJobsCheckByThemselves(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		if _, err := jobs.Migrate(f.ctx, f.d); err != nil {
			t.Fatal(err)
		}
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		f.rules(t, explicit("roll"))
		if _, err := f.q.Attach(f.ctx, staff, "roll", catalog.Resource{ID: "res-1", Draft: catalog.Draft{Name: "低保名册",
			UpdateCycle: catalog.CycleWeekly}, DivisionCode: "140105"}); err != nil {
			t.Fatal(err)
		}
		workers := jobs.NewWorkers()
		var q *jobs.Queue
		periodic := f.q.RegisterJobs(workers, func() quality.Queue { return q }, time.Hour)
		q, err := jobs.New(f.d, jobs.Config{Workers: workers, Periodic: periodic, PollInterval: 50 * time.Millisecond, Test: true,
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = q.Stop(f.ctx)
			_ = q.Close()
		})
		if err := q.Start(f.ctx); err != nil {
			t.Fatal(err)
		}
		waitReport := func(what string, ok func(quality.Report) bool) quality.Report {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for {
				rep, err := f.q.ReportFor(f.ctx, "roll", 0)
				if err == nil && ok(rep) {
					return rep
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: no such report after 20 s (last %+v, %v)", what, rep, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		// sweep runs a sweep once the earlier jobs are recorded as done (River records completions
		// in batches, a moment after the work returns; until then a job counts as running).
		sweep := func() {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for {
				res, err := q.River().JobList(f.ctx, river.NewJobListParams().States(rivertype.JobStateAvailable, rivertype.JobStatePending,
					rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled).First(10))
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Jobs) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("jobs still busy: %s %s", res.Jobs[0].Kind, res.Jobs[0].State)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if r, err := q.Insert(f.ctx, quality.SweepArgs{}, nil); err != nil || r.UniqueSkippedAsDuplicate {
				t.Fatalf("sweep: %+v %v", r, err)
			}
		}
		rep := waitReport("first sweep", func(r quality.Report) bool { return r.Version == 1 })
		if !reflect.DeepEqual(rep.BadRowNumbers(), []int64{4, 8, 12, 18, 21, 26}) || rep.Stale {
			t.Fatalf("first report: %+v", rep)
		}

		f.load(t, "roll", d.csv)
		sweep()
		waitReport("after a load", func(r quality.Report) bool { return r.Version == 2 && !r.Stale })

		f.clock.advance(9 * 24 * time.Hour) // a week plus the day of grace have passed
		sweep()
		rep = waitReport("after the cycle", func(r quality.Report) bool { return r.Stale })
		if rep.Version != 2 || rep.BadRows != 6 {
			t.Fatalf("stale report: %+v", rep)
		}

		// A check queued for a dataset that is not due any more reads nothing.
		before, _ := f.q.ReportFor(f.ctx, "roll", 0)
		res, err := q.Insert(f.ctx, quality.CheckArgs{DatasetID: "roll"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			j, err := q.Get(f.ctx, res.Job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if j.State == "completed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("check job: %s", j.State)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if after, _ := f.q.ReportFor(f.ctx, "roll", 0); after.ID != before.ID {
			t.Fatalf("a check that was not due ran: %s after %s", after.ID, before.ID)
		}
	})
}

// A check job waiting or running is not queued twice.
func TestCheckJobUnique(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		if _, err := jobs.Migrate(f.ctx, f.d); err != nil {
			t.Fatal(err)
		}
		q, err := jobs.New(f.d, jobs.Config{}) // inserts only: nothing works the jobs
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		first, err := q.Insert(f.ctx, quality.CheckArgs{DatasetID: "roll"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err := q.Insert(f.ctx, quality.CheckArgs{DatasetID: "roll"}, nil)
		if err != nil || !again.UniqueSkippedAsDuplicate || again.Job.ID != first.Job.ID {
			t.Fatalf("second insert: %+v %v", again, err)
		}
		other, err := q.Insert(f.ctx, quality.CheckArgs{DatasetID: "clean"}, nil)
		if err != nil || other.UniqueSkippedAsDuplicate {
			t.Fatalf("another dataset: %+v %v", other, err)
		}
	})
}

package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/jobs"
)

// A business table, to show a job committing (or not) with the row it belongs to.
var casesSource = db.Source{Name: "jobstest", FS: fstest.MapFS{
	"0001_cases.sql": {Data: []byte(`CREATE TABLE cases (id TEXT PRIMARY KEY, title TEXT NOT NULL)`)},
}}

// wait bounds every wait for a job in these tests.
const wait = 10 * time.Second

type pingArgs struct {
	N int `json:"n"`
}

func (pingArgs) Kind() string { return "test_ping" }

type caseArgs struct {
	CaseID string `json:"case_id"`
}

func (caseArgs) Kind() string { return "test_case" }

type timerArgs struct {
	CaseID string    `json:"case_id"`
	Due    time.Time `json:"due"`
}

func (timerArgs) Kind() string { return "test_timer" }

type flakyArgs struct{}

func (flakyArgs) Kind() string { return "test_flaky" }

// flakyWorker fails its first two attempts and retries after 50 ms instead of River's
// attempt⁴-second backoff.
type flakyWorker struct {
	jobs.WorkerDefaults[flakyArgs]
	attempts chan int
}

func (w *flakyWorker) Work(ctx context.Context, job *jobs.Job[flakyArgs]) error {
	w.attempts <- job.Attempt
	if job.Attempt < 3 {
		return fmt.Errorf("attempt %d fails on purpose", job.Attempt)
	}
	return nil
}

func (w *flakyWorker) NextRetry(*jobs.Job[flakyArgs]) time.Time {
	return time.Now().Add(50 * time.Millisecond)
}

func migrated(t testing.TB, d *db.DB) *db.DB {
	t.Helper()
	applied, err := jobs.Migrate(context.Background(), d)
	if err != nil {
		t.Fatalf("river migrate: %v", err)
	}
	if len(applied) == 0 {
		t.Fatal("first river migrate applied nothing")
	}
	if again, err := jobs.Migrate(context.Background(), d); err != nil || len(again) != 0 {
		t.Fatalf("second river migrate: %v %v", again, err)
	}
	return d
}

// newQueue builds a queue with test timings; it is stopped and closed when the test ends.
func newQueue(t testing.TB, d *db.DB, workers *jobs.Workers, mod ...func(*jobs.Config)) *jobs.Queue {
	t.Helper()
	cfg := jobs.Config{
		Workers:      workers,
		PollInterval: 50 * time.Millisecond,
		Test:         true,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, m := range mod {
		m(&cfg)
	}
	q, err := jobs.New(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, q) })
	return q
}

func start(t testing.TB, q *jobs.Queue) {
	t.Helper()
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func stop(t testing.TB, q *jobs.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := q.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("%s: nothing after %s", what, wait)
		panic("unreachable")
	}
}

// waitState polls until job id is in state, failing after wait.
func waitState(t testing.TB, q *jobs.Queue, id int64, state string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		j, err := q.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("get job %d: %v", id, err)
		}
		if string(j.State) == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: state %s after %s, want %s", id, j.State, wait, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJobRuns(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ran := make(chan int, 1)
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[pingArgs]) error {
			ran <- j.Args.N
			return nil
		}))
		q := newQueue(t, d, w)
		start(t, q)
		res, err := q.Insert(context.Background(), pingArgs{N: 42}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := receive(t, ran, "ping job"); n != 42 {
			t.Fatalf("worker got %d", n)
		}
		waitState(t, q, res.Job.ID, "completed")
	})
}

func TestFailingJobRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		fw := &flakyWorker{attempts: make(chan int, 5)}
		w := jobs.NewWorkers()
		jobs.AddWorker(w, fw)
		q := newQueue(t, d, w)
		start(t, q)
		res, err := q.Insert(context.Background(), flakyArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for want := 1; want <= 3; want++ {
			if got := receive(t, fw.attempts, fmt.Sprintf("attempt %d", want)); got != want {
				t.Fatalf("attempt %d, want %d", got, want)
			}
		}
		waitState(t, q, res.Job.ID, "completed")
		j, err := q.Get(context.Background(), res.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Attempt != 3 || len(j.Errors) != 2 {
			t.Fatalf("attempt %d, %d errors recorded; want 3 and 2", j.Attempt, len(j.Errors))
		}
	})
}

func TestInsertTxCommitsWithTheRow(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		seen := make(chan string, 4)
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[caseArgs]) error {
			// The job must see the business row committed with it.
			var title string
			if err := d.QueryRow(ctx, `SELECT title FROM cases WHERE id = ?`, j.Args.CaseID).Scan(&title); err != nil {
				return fmt.Errorf("case %s: %w", j.Args.CaseID, err)
			}
			seen <- j.Args.CaseID + ":" + title
			return nil
		}))
		q := newQueue(t, d, w)
		start(t, q)

		// Rolled back: neither the row nor the job exists, so the job can never run.
		boom := errors.New("boom")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO cases (id, title) VALUES (?, ?)`, "c-rolled", "rolled back"); err != nil {
				return err
			}
			if _, err := q.InsertTx(ctx, tx, caseArgs{CaseID: "c-rolled"}, nil); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("rolled back tx: %v", err)
		}

		// Committed: the job runs and reads its row.
		var id int64
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO cases (id, title) VALUES (?, ?)`, "c-1", "路灯不亮"); err != nil {
				return err
			}
			res, err := q.InsertTx(ctx, tx, caseArgs{CaseID: "c-1"}, nil)
			if err != nil {
				return err
			}
			id = res.Job.ID
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, seen, "committed job"); got != "c-1:路灯不亮" {
			t.Fatalf("worker saw %q", got)
		}
		waitState(t, q, id, "completed")

		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = ?`, caseArgs{}.Kind()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d test_case jobs stored, want only the committed one", n)
		}
		select {
		case got := <-seen:
			t.Fatalf("a second case job ran: %q", got)
		default:
		}
	}, casesSource)
}

// A timer set before a restart fires once, after its time, on the node that comes back.
func TestScheduledJobSurvivesRestart(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		type run struct {
			node int
			at   time.Time
		}
		runs := make(chan run, 4)
		workers := func(node int) *jobs.Workers {
			w := jobs.NewWorkers()
			jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[timerArgs]) error {
				runs <- run{node, time.Now()}
				return nil
			}))
			return w
		}

		h1 := reopen(t, d)
		q1 := newQueue(t, h1, workers(1))
		start(t, q1)
		due := time.Now().Add(2 * time.Second)
		res, err := q1.InsertAt(ctx, timerArgs{CaseID: "c-1", Due: due}, due, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // node 1 is up and polling; the timer is not due
		stop(t, q1)
		if err := h1.Close(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(due.Add(-time.Second)) {
			t.Fatal("node 1 took too long to stop; the test proves nothing")
		}

		h2 := reopen(t, d)
		q2 := newQueue(t, h2, workers(2))
		start(t, q2)
		r := receive(t, runs, "timer after restart")
		// SQLite keeps milliseconds; River rounds, so allow one.
		if r.node != 2 || r.at.Before(due.Add(-time.Millisecond)) {
			t.Fatalf("timer ran on node %d at %s, due %s", r.node, r.at.Format(time.StampMicro), due.Format(time.StampMicro))
		}
		late := r.at.Sub(due)
		if late > 2*time.Second {
			t.Errorf("timer ran %s late", late)
		}
		t.Logf("timer ran %s after it was due", late.Round(time.Millisecond))
		waitState(t, q2, res.Job.ID, "completed")
		select {
		case r := <-runs:
			t.Fatalf("timer ran twice (again on node %d)", r.node)
		case <-time.After(300 * time.Millisecond):
		}
	})
}

// reopen opens a second handle on d's database, as a restarted process would.
func reopen(t *testing.T, d *db.DB) *db.DB {
	t.Helper()
	var (
		h   *db.DB
		err error
	)
	switch d.Dialect {
	case db.SQLite:
		h, err = db.OpenSQLite(context.Background(), d.Path)
	default:
		h, err = db.OpenPostgres(context.Background(), d.URL)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestTimerIsUniqueByArgs(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		q := newQueue(t, d, nil) // insert-only
		due := time.Now().Add(time.Hour)
		first, err := q.InsertAt(ctx, timerArgs{CaseID: "c-1", Due: due}, due, nil)
		if err != nil || first.UniqueSkippedAsDuplicate {
			t.Fatalf("first timer: %+v %v", first, err)
		}
		if d := first.Job.ScheduledAt.Sub(due); first.Job.State != "scheduled" || d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("first timer: state %s scheduled %s, want scheduled %s", first.Job.State, first.Job.ScheduledAt, due.UTC())
		}
		again, err := q.InsertAt(ctx, timerArgs{CaseID: "c-1", Due: due}, due, nil)
		if err != nil || !again.UniqueSkippedAsDuplicate || again.Job.ID != first.Job.ID {
			t.Fatalf("same timer again: %+v %v", again, err)
		}
		// In a transaction too.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			again, err := q.InsertAtTx(ctx, tx, timerArgs{CaseID: "c-1", Due: due}, due, nil)
			if err == nil && !again.UniqueSkippedAsDuplicate {
				err = errors.New("not skipped")
			}
			return err
		}); err != nil {
			t.Fatalf("same timer in tx: %v", err)
		}
		other, err := q.InsertAt(ctx, timerArgs{CaseID: "c-2", Due: due}, due, nil)
		if err != nil || other.UniqueSkippedAsDuplicate {
			t.Fatalf("another case's timer: %+v %v", other, err)
		}
		// Plain inserts are not unique.
		for range 2 {
			if res, err := q.Insert(ctx, pingArgs{N: 1}, nil); err != nil || res.UniqueSkippedAsDuplicate {
				t.Fatalf("plain insert: %+v %v", res, err)
			}
		}
		if err := q.Start(ctx); err == nil {
			t.Fatal("an insert-only queue must refuse to start")
		}
	})
}

func TestPeriodicJob(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ran := make(chan int, 4)
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[pingArgs]) error {
			ran <- j.Args.N
			return nil
		}))
		q := newQueue(t, d, w, func(c *jobs.Config) {
			c.Periodic = []*jobs.PeriodicJob{jobs.Every(time.Hour, true, func() (jobs.JobArgs, *jobs.InsertOpts) {
				return pingArgs{N: 7}, nil
			})}
		})
		start(t, q)
		if n := receive(t, ran, "periodic job on start"); n != 7 {
			t.Fatalf("periodic job got %d", n)
		}
	})
}

func TestStartRefusesUnmigratedSchema(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(context.Context, *jobs.Job[pingArgs]) error { return nil }))
		q := newQueue(t, d, w)
		if err := q.Start(context.Background()); err == nil {
			t.Fatal("started without River's tables")
		}
		if err := jobs.CheckCurrent(context.Background(), migrated(t, d)); err != nil {
			t.Fatal(err)
		}
	})
}

type slowArgs struct {
	Hold time.Duration `json:"hold"` // 0: until cancelled
}

func (slowArgs) Kind() string { return "test_slow" }

// Stop lets a running job finish; when its context ends first, it cancels the job and returns.
func TestStopIsGraceful(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		started := make(chan struct{}, 2)
		ended := make(chan error, 2)
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[slowArgs]) error {
			started <- struct{}{}
			var err error
			if j.Args.Hold > 0 {
				time.Sleep(j.Args.Hold)
			} else {
				<-ctx.Done()
				err = ctx.Err()
			}
			ended <- err
			return err
		}))

		q := newQueue(t, d, w)
		start(t, q)
		res, err := q.Insert(ctx, slowArgs{Hold: 300 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		receive(t, started, "slow job start")
		sctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if err := q.Stop(sctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-ended:
			if err != nil {
				t.Fatalf("job ended with %v", err)
			}
		default:
			t.Fatal("Stop returned before the running job finished")
		}
		if j, err := q.Get(ctx, res.Job.ID); err != nil || j.State != "completed" {
			t.Fatalf("after a graceful stop: %+v %v", j, err)
		}

		// Restarted, with a job that only ends when cancelled: Stop gives up waiting when its
		// context ends, cancels the job, and the job is left to retry.
		start(t, q)
		res, err = q.Insert(ctx, slowArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		receive(t, started, "stuck job start")
		sctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := q.Stop(sctx); err != nil {
			t.Fatal(err)
		}
		if err := receive(t, ended, "stuck job end"); !errors.Is(err, context.Canceled) {
			t.Fatalf("stuck job ended with %v, want cancellation", err)
		}
		if j, err := q.Get(ctx, res.Job.ID); err != nil || j.State != "retryable" && j.State != "available" {
			t.Fatalf("after a hard stop: %+v %v", j, err)
		}
	})
}

// BenchmarkInsertAndWork inserts b.N jobs one by one (each its own transaction) while the
// queue works them, and reports end-to-end throughput.
func BenchmarkInsertAndWork(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB, ...db.Source) *db.DB
	}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}} {
		b.Run(tc.name, func(b *testing.B) {
			d := migrated(b, tc.open(b))
			var done atomic.Int64
			all := make(chan struct{})
			var once sync.Once
			n := int64(b.N)
			w := jobs.NewWorkers()
			jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[pingArgs]) error {
				if done.Add(1) == n {
					once.Do(func() { close(all) })
				}
				return nil
			}))
			q := newQueue(b, d, w, func(c *jobs.Config) { c.Queues = map[string]int{"default": 50} })
			start(b, q)
			ctx := context.Background()
			b.ResetTimer()
			began := time.Now()
			for i := range b.N {
				if _, err := q.Insert(ctx, pingArgs{N: i}, nil); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-all:
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d jobs worked after a minute", done.Load(), n)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "jobs/s")
		})
	}
}

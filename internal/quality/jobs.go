package quality

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/jobs"
)

// Checks that run by themselves. The dataset engine publishes no event when a load completes,
// so a periodic sweep looks for work instead: every SweepInterval the leader node lists the
// attached datasets that are Due — the active version has no report yet, or the timeliness verdict of
// the latest report no longer holds (the update cycle ran out, or a new grace period allows
// more) — and queues one check job per dataset. A check job is unique while it waits or runs,
// so a slow check is never queued twice, and it checks again that the dataset is still due
// before it reads every row (a person may have run it from the console meanwhile).

// Defaults of the background checks.
const (
	SweepInterval = time.Minute
	// CheckTimeout bounds one check: a million rows take well under a minute, River's default.
	CheckTimeout = time.Hour
)

// waitingOrRunning are the job states in which a second equal job is not inserted; completed
// jobs do not count, so a dataset reloaded soon after its last check is checked again. River
// requires the first four.
var waitingOrRunning = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable}

// CheckArgs is the job that checks one dataset.
type CheckArgs struct {
	DatasetID string `json:"dataset_id"`
}

// Kind names the job.
func (CheckArgs) Kind() string { return "quality_check" }

// InsertOpts make a check unique per dataset while it waits or runs.
func (CheckArgs) InsertOpts() jobs.InsertOpts {
	return jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByArgs: true, ByState: waitingOrRunning}}
}

// SweepArgs is the periodic job that queues the checks of the datasets that are Due.
type SweepArgs struct{}

// Kind names the job.
func (SweepArgs) Kind() string { return "quality_sweep" }

// InsertOpts keep one sweep at a time.
func (SweepArgs) InsertOpts() jobs.InsertOpts {
	return jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByState: waitingOrRunning}}
}

// Queue is where the sweep queues checks; *jobs.Queue has it.
type Queue interface {
	Insert(ctx context.Context, args jobs.JobArgs, opts *jobs.InsertOpts) (*jobs.InsertResult, error)
}

// RegisterJobs adds the check and sweep workers to workers and returns the periodic sweep,
// every interval (0: SweepInterval) and at once when a node becomes leader. queue is called
// when a sweep runs, so the app may build its queue after registering the workers.
func (s *Service) RegisterJobs(workers *jobs.Workers, queue func() Queue, interval time.Duration) []*jobs.PeriodicJob {
	if interval <= 0 {
		interval = SweepInterval
	}
	jobs.AddWorker(workers, &checkWorker{s: s})
	jobs.AddWorker(workers, &sweepWorker{s: s, queue: queue})
	return []*jobs.PeriodicJob{jobs.Every(interval, true, func() (jobs.JobArgs, *jobs.InsertOpts) { return SweepArgs{}, nil })}
}

type checkWorker struct {
	jobs.WorkerDefaults[CheckArgs]
	s *Service
}

func (w *checkWorker) Work(ctx context.Context, j *jobs.Job[CheckArgs]) error {
	due, err := w.s.due(ctx, j.Args.DatasetID)
	if err != nil || !due {
		return err
	}
	_, err = w.s.Run(ctx, j.Args.DatasetID)
	if errors.Is(err, dataset.ErrNoActive) {
		return nil
	}
	return err
}

func (w *checkWorker) Timeout(*jobs.Job[CheckArgs]) time.Duration { return CheckTimeout }

type sweepWorker struct {
	jobs.WorkerDefaults[SweepArgs]
	s     *Service
	queue func() Queue
}

func (w *sweepWorker) Work(ctx context.Context, _ *jobs.Job[SweepArgs]) error {
	ids, err := w.s.Due(ctx)
	if err != nil {
		return err
	}
	q := w.queue()
	if q == nil {
		return errors.New("quality sweep: no job queue")
	}
	for _, id := range ids {
		if _, err := q.Insert(ctx, CheckArgs{DatasetID: id}, nil); err != nil {
			return fmt.Errorf("quality sweep: %w", err)
		}
	}
	return nil
}

// reportHead is what Due needs of a latest report.
type reportHead struct {
	version int
	stale   bool
}

// dueState is what deciding whether datasets are due needs besides their active versions:
// the latest report's head, the target and the timeliness grace of each dataset (of one
// dataset when datasetID is not "").
type dueState struct {
	heads   map[string]reportHead
	targets map[string]*Target
	grace   map[string]int // hours, of the strictest explicit timeliness rule
}

func (s *Service) loadDueState(ctx context.Context, datasetID string) (*dueState, error) {
	st := &dueState{heads: map[string]reportHead{}, targets: map[string]*Target{}, grace: map[string]int{}}
	where, args := "", []any{}
	if datasetID != "" {
		where, args = ` AND r.dataset_id = ?`, []any{datasetID}
	}
	err := s.scan(ctx, `SELECT r.dataset_id, r.version, r.stale FROM quality_reports r WHERE NOT EXISTS (SELECT 1 FROM quality_reports n
		WHERE n.dataset_id = r.dataset_id AND (n.ran_at > r.ran_at OR (n.ran_at = r.ran_at AND n.id > r.id)))`+where, args, func(rows *sql.Rows) error {
		var id string
		var h reportHead
		if err := rows.Scan(&id, &h.version, &h.stale); err != nil {
			return err
		}
		st.heads[id] = h
		return nil
	})
	if err != nil {
		return nil, internal("due: reports", err)
	}
	where = ""
	if datasetID != "" {
		where = ` WHERE dataset_id = ?`
	}
	if err := s.scan(ctx, `SELECT `+targetColumns+` FROM quality_targets`+where, args, func(rows *sql.Rows) error {
		t, err := scanTarget(rows)
		st.targets[t.DatasetID] = &t
		return err
	}); err != nil {
		return nil, internal("due: targets", err)
	}
	where = ""
	if datasetID != "" {
		where = ` AND dataset_id = ?`
	}
	if err := s.scan(ctx, `SELECT dataset_id, grace_hours FROM quality_rules WHERE kind = 'timeliness'`+where, args, func(rows *sql.Rows) error {
		var id string
		var g int
		if err := rows.Scan(&id, &g); err != nil {
			return err
		}
		if g <= 0 {
			g = int(DefaultGrace / time.Hour)
		}
		if old, ok := st.grace[id]; !ok || g < old {
			st.grace[id] = g
		}
		return nil
	}); err != nil {
		return nil, internal("due: rules", err)
	}
	return st, nil
}

func (s *Service) scan(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.d.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// isDue decides for one dataset whose active version is v.
func (st *dueState) isDue(v dataset.Version, now time.Time) bool {
	h, ok := st.heads[v.DatasetID]
	if !ok || h.version != v.Version {
		return true
	}
	_, stale, _, _ := staleness(v, st.targets[v.DatasetID], st.grace[v.DatasetID], now)
	return stale != h.stale
}

// Due lists, sorted, the datasets attached to a catalogue resource that a check should run on
// now: those whose active version has no report yet, and those whose latest report's
// timeliness verdict no longer holds. Datasets not attached are nobody's report (see Access)
// and are left alone.
func (s *Service) Due(ctx context.Context) ([]string, error) {
	st, err := s.loadDueState(ctx, "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []string
	for id := range st.targets {
		v, err := s.data.Active(ctx, id)
		if errors.Is(err, dataset.ErrNoActive) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if v.Format == dataset.UpstreamAPI {
			continue // rows live at the provider: nothing here to walk (the gateway validates each answer)
		}
		if st.isDue(v, now) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// due is Due for one dataset.
func (s *Service) due(ctx context.Context, datasetID string) (bool, error) {
	v, err := s.data.Active(ctx, datasetID)
	if errors.Is(err, dataset.ErrNoActive) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if v.Format == dataset.UpstreamAPI {
		return false, nil
	}
	st, err := s.loadDueState(ctx, datasetID)
	if err != nil || st.targets[datasetID] == nil {
		return false, err
	}
	return st.isDue(v, s.now()), nil
}

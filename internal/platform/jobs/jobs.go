// Package jobs is dgov's durable job queue and timer service: background work and deadlines
// (SLA reminders, escalations, reconciliation) stored in the same database as the business
// rows, run by River (github.com/riverqueue/river) on SQLite or PostgreSQL.
//
// A job inserted with InsertTx commits or rolls back with the caller's transaction, so "save
// the case and set its deadline" is one atomic step. Workers must be idempotent: River runs a
// job at least once (a crash after the work but before completion is recorded runs it again).
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/dgov/dgov/internal/platform/db"
)

// River's types, re-exported so engines need import only this package to define and queue jobs.
type (
	// JobArgs is a job's payload: a JSON-encodable struct with a Kind() naming its worker.
	JobArgs = river.JobArgs
	// Job is one job as a worker receives it.
	Job[T JobArgs] = river.Job[T]
	// Worker works jobs of one kind.
	Worker[T JobArgs] = river.Worker[T]
	// WorkerDefaults gives a Worker the optional methods (NextRetry, Timeout, Middleware).
	WorkerDefaults[T JobArgs] = river.WorkerDefaults[T]
	// Workers is the registry of workers, one per job kind.
	Workers = river.Workers
	// InsertOpts are per-job options: queue, priority, max attempts, ScheduledAt, UniqueOpts.
	InsertOpts = river.InsertOpts
	// UniqueOpts make an insert a no-op when an equal job already exists.
	UniqueOpts = river.UniqueOpts
	// InsertResult is an inserted job, or the existing one when the insert was skipped as a
	// duplicate (UniqueSkippedAsDuplicate).
	InsertResult = rivertype.JobInsertResult
	// JobRow is a job as stored.
	JobRow = rivertype.JobRow
	// PeriodicJob is a job inserted on a schedule by the elected leader node.
	PeriodicJob = river.PeriodicJob
)

// NewWorkers returns an empty worker registry.
func NewWorkers() *Workers { return river.NewWorkers() }

// AddWorker registers w for its job kind; it panics on a kind registered twice (a wiring bug).
func AddWorker[T JobArgs](workers *Workers, w Worker[T]) { river.AddWorker(workers, w) }

// WorkFunc makes a Worker of a function.
func WorkFunc[T JobArgs](f func(context.Context, *Job[T]) error) Worker[T] {
	return river.WorkFunc(f)
}

// Every returns a periodic job whose constructor runs every interval on the leader node, and
// once when a node becomes leader if runOnStart. The schedule is in memory: after a leader
// change it starts over, so a periodic job must tolerate running early or twice (give it
// UniqueOpts{ByPeriod: interval} when it must not).
func Every(interval time.Duration, runOnStart bool, construct func() (JobArgs, *InsertOpts)) *PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), construct, &river.PeriodicJobOpts{RunOnStart: runOnStart})
}

// Config configures a Queue.
type Config struct {
	// Queues maps each queue this node works to how many of its jobs run at once. Empty
	// means {"default": 10} when Workers is set; with no Workers the Queue only inserts.
	Queues map[string]int
	// Workers holds a worker for every job kind this node runs.
	Workers *Workers
	// Periodic jobs are inserted by whichever node is the elected leader.
	Periodic []*PeriodicJob
	// Logger receives River's logs; nil means slog.Default().
	Logger *slog.Logger
	// PollInterval is how often a queue looks for due jobs when no notification says one
	// arrived (a timer falling due, a retry). Default 1 s; tests use ~50 ms.
	PollInterval time.Duration
	// MaxAttempts is the default number of attempts before a job is discarded (River: 25).
	MaxAttempts int
	// Test is for test suites: River's maintenance services (which promote scheduled jobs)
	// start at once instead of after a random delay of up to 1 s.
	Test bool
}

// DefaultConcurrency is the number of jobs of the default queue run at once when Config.Queues is empty.
const DefaultConcurrency = 10

// Queue inserts jobs and, once started, works them.
type Queue struct {
	d      *db.DB
	client *river.Client[*sql.Tx]
	// own is River's own connection to the SQLite file (nil on PostgreSQL); see New.
	own    *sql.DB
	works  bool
	schema string
}

// New builds a Queue on d. Beyond asking PostgreSQL for the current schema it does not touch
// the database; Start checks that River's tables are current.
//
// SQLite: River gets its own *sql.DB on the same file, limited to one connection, with the
// same pragmas as the app's writer (busy_timeout first, WAL, BEGIN IMMEDIATE). Sharing DB.W
// would put River's producers, leader election, maintenance services and its notification
// listener — which polls river_notification every 50 ms — in the queue for the app's only
// write connection, in front of user requests, and a River goroutine could hold it while an
// app write waits. Two writers on one file is what the pragmas are for: every transaction
// takes the write lock at BEGIN (waiting up to busy_timeout), so neither side fails mid-
// transaction, and River's transactions are short. One connection is what River asks for: its
// own goroutines then queue instead of contending. InsertTx does not use this handle; it
// writes through the caller's transaction on DB.W.
//
// PostgreSQL: the app's transactions are database/sql (pgx stdlib) *sql.Tx, and River's pgx
// driver cannot join one. River's database/sql driver can, and with a pgx listener beside it
// (NewWithPgxListener, one connection hijacked from DB.Pool for LISTEN) it is a full client:
// the same client both works jobs and inserts inside app transactions, on both databases.
// River's tables live in the connection's current schema, named explicitly so that LISTEN
// topics and tables never mix with another schema of the same database (tests use one each).
func New(d *db.DB, cfg Config) (*Queue, error) {
	q := &Queue{d: d}
	rc := &river.Config{
		Logger:            cfg.Logger,
		MaxAttempts:       cfg.MaxAttempts,
		PeriodicJobs:      cfg.Periodic,
		FetchPollInterval: cfg.PollInterval,
		TestOnly:          cfg.Test,
		Workers:           cfg.Workers,
	}
	if rc.Logger == nil {
		rc.Logger = slog.Default()
	}
	// River fetches at most once per FetchCooldown (100 ms) and needs the poll interval to be
	// no shorter; a short poll interval brings the cooldown down with it.
	if cfg.PollInterval > 0 && cfg.PollInterval < river.FetchCooldownDefault {
		rc.FetchCooldown = cfg.PollInterval
	}
	if cfg.Workers != nil {
		q.works = true
		queues := cfg.Queues
		if len(queues) == 0 {
			queues = map[string]int{river.QueueDefault: DefaultConcurrency}
		}
		rc.Queues = make(map[string]river.QueueConfig, len(queues))
		for name, n := range queues {
			rc.Queues[name] = river.QueueConfig{MaxWorkers: n}
		}
	} else if len(cfg.Queues) > 0 {
		return nil, errors.New("jobs: Queues given without Workers")
	}

	var err error
	switch d.Dialect {
	case db.SQLite:
		if d.Path == "" {
			return nil, errors.New("jobs: SQLite database without a file path")
		}
		if q.own, err = openSQLite(d.Path); err != nil {
			return nil, err
		}
		q.client, err = river.NewClient(riversqlite.New(q.own), rc)
	case db.Postgres:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if q.schema, err = currentSchema(ctx, d); err != nil {
			return nil, err
		}
		rc.Schema = q.schema
		q.client, err = river.NewClient(riverdatabasesql.NewWithPgxListener(d.W, d.Pool), rc)
	default:
		return nil, fmt.Errorf("jobs: unknown dialect %q", d.Dialect)
	}
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("jobs: new client: %w", err)
	}
	return q, nil
}

// openSQLite opens River's connection to the app's SQLite file, with the app writer's settings.
func openSQLite(path string) (*sql.DB, error) {
	h, err := sql.Open("sqlite", db.SQLiteWriterDSN(path))
	if err != nil {
		return nil, fmt.Errorf("jobs: open sqlite %s: %w", path, err)
	}
	h.SetMaxOpenConns(1)
	h.SetConnMaxIdleTime(0)
	return h, nil
}

// Start checks that River's schema is current and starts working jobs; it returns at once.
// Cancelling ctx stops the Queue as Stop would, without waiting.
func (q *Queue) Start(ctx context.Context) error {
	if !q.works {
		return errors.New("jobs: queue has no Workers; it can only insert")
	}
	if err := CheckCurrent(ctx, q.d); err != nil {
		return err
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// hardStopGrace bounds how long Stop waits for cancelled jobs to return.
const hardStopGrace = 5 * time.Second

// Stop stops fetching jobs and waits for running ones to finish until ctx is done; then it
// cancels their contexts and waits a few seconds more. A job cut short is retried later.
// The Queue can be started again.
func (q *Queue) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err == nil || ctx.Err() == nil {
		return err
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hardStopGrace)
	defer cancel()
	if err := q.client.StopAndCancel(hctx); err != nil {
		return fmt.Errorf("jobs: stop: running jobs did not return after cancellation: %w", err)
	}
	return nil
}

// Close stops the Queue if it runs (cancelling running jobs) and releases River's own SQLite
// connection. Call Stop first for a graceful stop, and Close before closing the DB.
func (q *Queue) Close() error {
	if q.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), hardStopGrace)
		defer cancel()
		_ = q.client.StopAndCancel(ctx)
	}
	if q.own != nil {
		return q.own.Close()
	}
	return nil
}

// Insert queues a job outside any transaction.
func (q *Queue) Insert(ctx context.Context, args JobArgs, opts *InsertOpts) (*InsertResult, error) {
	res, err := q.client.Insert(ctx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("insert job %s: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertTx queues a job in tx: it exists, and runs, only if tx commits.
func (q *Queue) InsertTx(ctx context.Context, tx *db.Tx, args JobArgs, opts *InsertOpts) (*InsertResult, error) {
	res, err := q.client.InsertTx(ctx, tx.Tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("insert job %s: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertAt sets a timer: the job runs at (or soon after) at, surviving restarts meanwhile.
// Unless opts or the args' own InsertOpts say otherwise, a timer is unique by its args: a
// second InsertAt with equal args returns the first job with UniqueSkippedAsDuplicate set,
// as long as the first is pending, running or completed (completed jobs are kept for 24 h).
// Put what distinguishes two timers — the case and the deadline — in the args.
func (q *Queue) InsertAt(ctx context.Context, args JobArgs, at time.Time, opts *InsertOpts) (*InsertResult, error) {
	return q.Insert(ctx, args, timerOpts(args, at, opts))
}

// InsertAtTx is InsertAt in tx.
func (q *Queue) InsertAtTx(ctx context.Context, tx *db.Tx, args JobArgs, at time.Time, opts *InsertOpts) (*InsertResult, error) {
	return q.InsertTx(ctx, tx, args, timerOpts(args, at, opts))
}

func timerOpts(args JobArgs, at time.Time, opts *InsertOpts) *InsertOpts {
	var o InsertOpts
	if opts != nil {
		o = *opts
	}
	o.ScheduledAt = at
	if uniqueUnset(o.UniqueOpts) {
		if a, ok := args.(river.JobArgsWithInsertOpts); !ok || uniqueUnset(a.InsertOpts().UniqueOpts) {
			o.UniqueOpts = UniqueOpts{ByArgs: true}
		}
	}
	return &o
}

func uniqueUnset(u UniqueOpts) bool {
	return !u.ByArgs && u.ByPeriod == 0 && !u.ByQueue && u.ByState == nil && !u.ExcludeKind
}

// Get returns a job by id.
func (q *Queue) Get(ctx context.Context, id int64) (*JobRow, error) {
	return q.client.JobGet(ctx, id)
}

// River returns the underlying River client, for what this package does not wrap (cancelling
// jobs, subscriptions, listing). Its transaction type is *sql.Tx on both databases.
func (q *Queue) River() *river.Client[*sql.Tx] { return q.client }

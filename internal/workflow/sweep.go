package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/jobs"
)

// SweepResult counts what a Sweep did.
type SweepResult struct {
	Reminded  int `json:"reminded"`
	Escalated int `json:"escalated"`
}

// sweepBatch is how many due alerts one query reads.
const sweepBatch = 200

// Sweep fires the alerts that have fallen due: a reminder when a step deadline is within
// Options.RemindDays working days, an escalation once it has passed — each once per step
// deadline, recorded in the case's history, the audit log and an event (reminded, escalated),
// with SystemActor as actor. Alert times fall on working days (deadlines are counted in
// working days), and suspended or closed cases have none. Run it periodically (Jobs); it is
// safe to run on several nodes at once and to run again after a crash.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	var errs []error
	now := s.clock()
	var afterAt time.Time
	afterID := ""
	for {
		type due struct {
			id string
			at time.Time
		}
		var batch []due
		rows, err := s.d.Query(ctx, `SELECT id, next_alert_at FROM workflow_cases
			WHERE next_alert_at IS NOT NULL AND next_alert_at <= ? AND (next_alert_at, id) > (?, ?)
			ORDER BY next_alert_at, id LIMIT ?`, now, afterAt, afterID, sweepBatch)
		if err != nil {
			return res, errors.Join(append(errs, fmt.Errorf("sweep: %w", err))...)
		}
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.id, &d.at); err != nil {
				rows.Close()
				return res, fmt.Errorf("sweep: %w", err)
			}
			batch = append(batch, d)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return res, fmt.Errorf("sweep: %w", err)
		}
		if err := rows.Close(); err != nil {
			return res, fmt.Errorf("sweep: %w", err)
		}
		for _, d := range batch {
			a, err := s.fire(ctx, d.id, now)
			if err != nil {
				// One bad case must not hold up the others' alerts; the job retries it.
				if ctx.Err() != nil {
					return res, errors.Join(append(errs, err)...)
				}
				errs = append(errs, err)
				continue
			}
			switch a {
			case ActionReminded:
				res.Reminded++
			case ActionEscalated:
				res.Escalated++
			}
		}
		if len(batch) < sweepBatch {
			return res, errors.Join(errs...)
		}
		afterAt, afterID = batch[len(batch)-1].at.UTC(), batch[len(batch)-1].id
	}
}

// fire fires the case's due alert, if it still has one, and says which.
func (s *Service) fire(ctx context.Context, id string, now time.Time) (Action, error) {
	var fired Action
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		fired = ""
		r, err := getCase(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("sweep case %s: %w", id, err)
		}
		if r.state != StateOpen || r.nextAlert == nil || r.nextAlert.After(now) || r.stepDue == nil {
			return nil
		}
		def, err := s.definition(ctx, tx, r.defKey, r.defVersion)
		if err != nil {
			return err
		}
		was := *r.nextAlert
		if !now.Before(*r.stepDue) {
			r.alert, r.nextAlert = ActionEscalated, nil
		} else {
			due := *r.stepDue
			r.alert, r.nextAlert = ActionReminded, &due
		}
		// Not a new version: an alert changes no decision, and must not make an officer's
		// pending decision on the case conflict. The guard on next_alert_at makes a second
		// sweeper (another node) find nothing to do.
		res, err := tx.Exec(ctx, `UPDATE workflow_cases SET alert = ?, next_alert_at = ? WHERE id = ? AND version = ? AND next_alert_at = ?`,
			string(r.alert), nullTime(r.nextAlert), r.id, r.version, was)
		if err != nil {
			return fmt.Errorf("sweep case %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		fired = r.alert
		return s.record(ctx, tx, SystemActor, &r, def, change{action: r.alert}, now)
	})
	return fired, err
}

// SweepArgs is the job that runs Sweep.
type SweepArgs struct{}

// Kind names the job.
func (SweepArgs) Kind() string { return "workflow_sweep" }

// Jobs registers the sweep worker with workers and returns the periodic job that queues it
// every Options.SweepInterval (and once when a node becomes leader), for the app to pass to
// jobs.Config{Workers, Periodic}.
func (s *Service) Jobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[SweepArgs]) error {
		_, err := s.Sweep(ctx)
		return err
	}))
	every := s.opts.SweepInterval
	return []*jobs.PeriodicJob{jobs.Every(every, true, func() (jobs.JobArgs, *jobs.InsertOpts) {
		return SweepArgs{}, &jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByPeriod: every}}
	})}
}

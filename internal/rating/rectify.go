package rating

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/workflow"
)

// ---- acting on a rectification (through the case engine, which authorizes) ----

// CallbackOutcome is what the applicant said when called back (回访).
type CallbackOutcome string

const (
	// CallbackConfirmed: the applicant accepts the rectification; the case closes approved.
	CallbackConfirmed CallbackOutcome = "confirmed"
	// CallbackRedo: the applicant is not satisfied; the case goes back to 整改 with a fresh clock.
	CallbackRedo CallbackOutcome = "redo"
	// CallbackUnresolved: the applicant could not be reached or still disagrees and nothing more
	// can be done; the case closes rejected with the reasons (not counted as confirmed).
	CallbackUnresolved CallbackOutcome = "unresolved"
)

// actOn runs a case-engine action on the rating's rectification case and mirrors the result.
func (s *Service) actOn(ctx context.Context, actor authz.Subject, ratingID string, act func(caseID string) error) (Rating, error) {
	r, err := s.load(ctx, s.d, actor, ratingID)
	if err != nil {
		return Rating{}, err
	}
	if r.rectifyCase == "" {
		return Rating{}, ErrNotPoor
	}
	if err := act(r.rectifyCase); err != nil {
		return Rating{}, err
	}
	if err := s.Sync(ctx, r.ID); err != nil {
		return Rating{}, err
	}
	return s.Get(ctx, actor, r.ID)
}

// Claim takes the rectification case for the officer (认领).
func (s *Service) Claim(ctx context.Context, actor authz.Subject, ratingID string) (Rating, error) {
	return s.actOn(ctx, actor, ratingID, func(id string) error {
		_, err := s.cases.Claim(ctx, actor, id)
		return err
	})
}

// Rectify records what the department did (整改结果) and moves the case to 回访.
func (s *Service) Rectify(ctx context.Context, actor authz.Subject, ratingID, result string) (Rating, error) {
	if strings.TrimSpace(result) == "" {
		return Rating{}, workflow.ErrCommentRequired.WithField("result")
	}
	return s.actOn(ctx, actor, ratingID, func(id string) error {
		c, err := s.cases.Get(ctx, actor, id)
		if err != nil {
			return err
		}
		if c.Step != StepRectify {
			return workflow.ErrState
		}
		_, err = s.cases.Decide(ctx, actor, id, workflow.Decision{Outcome: workflow.Approve, Comment: result, Version: c.Version})
		return err
	})
}

// Refuse closes the rectification without rectifying, with the reasons (for example a rating
// about another matter, or a 差评 found unfounded on review): recorded, and counted as not
// rectified.
func (s *Service) Refuse(ctx context.Context, actor authz.Subject, ratingID, reasons string) (Rating, error) {
	return s.actOn(ctx, actor, ratingID, func(id string) error {
		c, err := s.cases.Get(ctx, actor, id)
		if err != nil {
			return err
		}
		if c.Step != StepRectify {
			return workflow.ErrState
		}
		_, err = s.cases.Decide(ctx, actor, id, workflow.Decision{Outcome: workflow.Reject, Comment: reasons, Version: c.Version})
		return err
	})
}

// Callback records the callback (回访): see CallbackOutcome. note is required unless confirmed.
func (s *Service) Callback(ctx context.Context, actor authz.Subject, ratingID string, outcome CallbackOutcome, note string) (Rating, error) {
	switch outcome {
	case CallbackConfirmed, CallbackRedo, CallbackUnresolved:
	default:
		return Rating{}, invalid("outcome", "rating.callback_outcome", "请选择回访结果", "choose the callback's outcome")
	}
	return s.actOn(ctx, actor, ratingID, func(id string) error {
		c, err := s.cases.Get(ctx, actor, id)
		if err != nil {
			return err
		}
		if c.Step != StepCallback {
			return workflow.ErrState
		}
		switch outcome {
		case CallbackConfirmed:
			_, err = s.cases.Decide(ctx, actor, id, workflow.Decision{Outcome: workflow.Approve, Comment: note, Version: c.Version})
		case CallbackRedo:
			_, err = s.cases.Return(ctx, actor, id, note)
		default:
			_, err = s.cases.Decide(ctx, actor, id, workflow.Decision{Outcome: workflow.Reject, Comment: note, Version: c.Version})
		}
		return err
	})
}

// ---- mirroring the case onto the rating ----

// mirror is the rectification as the case and its history say.
type mirror struct {
	state       RectifyState
	version     int
	due         *time.Time // nil: keep the recorded one
	rectifiedAt *time.Time
	result      string
	callbackAt  *time.Time
	callback    string
	confirmed   bool
}

// derive reads the rectification off the case and its history. It looks only at the current
// case and its full history, so deriving twice, or from events delivered out of order, gives
// the same answer.
func derive(c workflow.Case, history []workflow.Event) mirror {
	m := mirror{version: c.Version}
	switch c.State {
	case workflow.StateOpen, workflow.StateSuspended:
		m.state = RectifyOpen
		if c.Step == StepCallback {
			m.state = RectifyCallback
		}
		if c.Step == StepRectify && c.State == workflow.StateOpen && c.StepDueAt != nil {
			due := *c.StepDueAt
			m.due = &due
		}
	case workflow.StateClosed:
		switch {
		case c.Outcome == workflow.OutcomeWithdrawn:
			m.state = RectifyWithdrawn
		case c.Step == StepRectify: // rejected at 整改
			m.state = RectifyRefused
		default:
			m.state = RectifyDone
			m.confirmed = c.Outcome == workflow.OutcomeApproved
		}
	}
	for _, e := range history {
		at := e.At
		switch {
		case e.Action == workflow.ActionReturned && e.ToStep == StepRectify:
			// Back to 整改: what was done before does not count any more.
			m.rectifiedAt, m.result = nil, ""
		case e.Action == workflow.ActionAdvanced && e.Step == StepRectify:
			m.rectifiedAt, m.result = &at, e.Comment
		case e.Action == workflow.ActionClosed && e.Step == StepCallback:
			m.callbackAt, m.callback = &at, e.Comment
		case e.Action == workflow.ActionClosed && e.Step == StepRectify:
			m.result = e.Comment // the reasons for not rectifying
		}
	}
	return m
}

// Sync mirrors the rating's rectification case onto the rating: its state, when and how it
// was rectified and whether on time, and the callback. It reads the case as the rater (the
// case's applicant, who may always see it), so it needs no staff rights. Idempotent: a view
// older than the one recorded (by case version) is ignored. A state change publishes
// dgov.rating.rectification.
func (s *Service) Sync(ctx context.Context, ratingID string) error {
	r, err := getRating(ctx, s.d, ratingID)
	if isNoRow(err) {
		return nil // not ours (or gone): nothing to mirror
	}
	if err != nil {
		return fmt.Errorf("sync rating %s: %w", ratingID, err)
	}
	if r.rectifyCase == "" {
		return nil
	}
	c, err := s.cases.Get(ctx, r.rater(), r.rectifyCase)
	if err != nil {
		return fmt.Errorf("sync rating %s: %w", ratingID, err)
	}
	hist, err := s.cases.History(ctx, r.rater(), r.rectifyCase)
	if err != nil {
		return fmt.Errorf("sync rating %s: %w", ratingID, err)
	}
	m := derive(c, hist)
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := lockRating(ctx, tx, `id = ?`, ratingID)
		if err != nil {
			return fmt.Errorf("sync rating %s: %w", ratingID, err)
		}
		if cur.rectifyVersion > m.version {
			return nil // a newer view is already recorded
		}
		due := cur.rectifyDue
		if m.due != nil {
			due = m.due
		}
		onTime := m.rectifiedAt != nil && due != nil && !m.rectifiedAt.After(*due)
		changed := cur.rectifyState != m.state || cur.onTime != onTime || !sameTime(cur.rectifiedAt, m.rectifiedAt) ||
			!sameTime(cur.callbackAt, m.callbackAt) || !sameTime(cur.rectifyDue, due) || cur.rectifyVersion != m.version
		if !changed {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE ratings SET rectify_state = ?, rectify_version = ?, rectify_due_at = ?, rectified_at = ?,
			rectify_result = ?, rectified_on_time = ?, callback_at = ?, callback_result = ?, confirmed = ? WHERE id = ?`,
			string(m.state), m.version, db.NullTime(due), db.NullTime(m.rectifiedAt), m.result, onTime, db.NullTime(m.callbackAt),
			m.callback, m.confirmed, ratingID); err != nil {
			return fmt.Errorf("sync rating %s: %w", ratingID, err)
		}
		if cur.rectifyState != m.state {
			cur.rectifyState, cur.onTime = m.state, onTime
			if _, err := bus.Publish(ctx, tx, SubjectRectification, cur.payload(s.clock())); err != nil {
				return fmt.Errorf("sync rating %s: %w", ratingID, err)
			}
		}
		return nil
	})
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// Consumer names the durable consumer of the case engine's events that keeps ratings in step
// with their rectification cases; ConsumerSubjects is what it listens to.
const (
	Consumer         = "rating-rectify"
	ConsumerSubjects = workflow.SubjectAll
)

// OnCaseEvent is the bus handler for dgov.workflow.case.* events: those of rectification
// cases are mirrored onto their ratings (Sync, which is idempotent, so no HandleOnce record is
// needed); others are ignored.
func (s *Service) OnCaseEvent(ctx context.Context, ev bus.Event) error {
	var p workflow.EventPayload
	if err := ev.Decode(&p); err != nil {
		return nil // not a case event we can read: nothing of ours
	}
	id, ok := strings.CutPrefix(p.Ref, "rating:")
	if p.Definition != RectifyDefinitionKey || !ok || id == "" {
		return nil
	}
	return s.Sync(ctx, id)
}

// Reconcile mirrors every rectification still under way (a safety net under the event
// consumer: a node that missed events catches up). It returns how many it looked at.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	var ids []string
	rows, err := s.d.Query(ctx, `SELECT id FROM ratings WHERE rectify_state IN ('open', 'callback') ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("reconcile ratings: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("reconcile ratings: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return 0, fmt.Errorf("reconcile ratings: %w", err)
	}
	rows.Close()
	var errs []error
	for _, id := range ids {
		if err := s.Sync(ctx, id); err != nil {
			if ctx.Err() != nil {
				return len(ids), ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	return len(ids), errors.Join(errs...)
}

// ReconcileArgs is the job that runs Reconcile.
type ReconcileArgs struct{}

// Kind names the job.
func (ReconcileArgs) Kind() string { return "rating_reconcile" }

// Jobs registers the reconciling worker and returns its periodic job (every
// Options.SyncInterval), for the app to pass to jobs.Config.
func (s *Service) Jobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[ReconcileArgs]) error {
		_, err := s.Reconcile(ctx)
		return err
	}))
	every := s.opts.SyncInterval
	return []*jobs.PeriodicJob{jobs.Every(every, false, func() (jobs.JobArgs, *jobs.InsertOpts) {
		return ReconcileArgs{}, &jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByPeriod: every}}
	})}
}

// Rectification returns a poor rating's rectification case and its history as the actor may
// see them (the case engine decides: the handling department, supervisors, the rater).
func (s *Service) Rectification(ctx context.Context, actor authz.Subject, ratingID string) (workflow.Case, []workflow.Event, error) {
	r, err := s.load(ctx, s.d, actor, ratingID)
	if err != nil {
		return workflow.Case{}, nil, err
	}
	if r.rectifyCase == "" {
		return workflow.Case{}, nil, ErrNotPoor
	}
	c, err := s.cases.Get(ctx, actor, r.rectifyCase)
	if err != nil {
		return workflow.Case{}, nil, err
	}
	hist, err := s.cases.History(ctx, actor, r.rectifyCase)
	return c, hist, err
}

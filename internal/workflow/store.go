package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
)

type scanner interface{ Scan(dest ...any) error }

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// farFuture is the queue rank of a step without a deadline: after every real one.
var farFuture = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// caseRow is a workflow_cases row.
type caseRow struct {
	id, defKey            string
	defVersion            int
	title, ref            string
	applicantKind         authz.Kind
	applicantID           string
	deptID, division      string
	state                 State
	outcome               Outcome
	stepIndex             int
	stepKey               string
	stepRole              authz.Role
	claimedBy             string
	openedAt, stepStarted time.Time
	stepDue, remind, due  *time.Time
	queueRank             time.Time
	nextAlert             *time.Time
	alert                 Action // "", reminded, escalated
	suspendedAt           *time.Time
	stepLeft, caseLeft    *time.Duration
	heldStatus            Status
	suspendedWork         time.Duration
	correction            *Correction
	closedAt              *time.Time
	elapsedWork           *time.Duration
	data                  map[string]string
	version               int
	updatedAt             time.Time
}

const caseCols = `id, def_key, def_version, title, ref, applicant_kind, applicant_id, dept_id, division, state, outcome,
	step_index, step_key, step_role, claimed_by, opened_at, step_started_at, step_due_at, remind_at, due_at, queue_rank,
	next_alert_at, alert, suspended_at, step_left, case_left, held_status, suspended_work, correction, closed_at,
	elapsed_work, data, version, updated_at`

// caseColsC is caseCols qualified with the alias c.
const caseColsC = `c.id, c.def_key, c.def_version, c.title, c.ref, c.applicant_kind, c.applicant_id, c.dept_id, c.division, c.state, c.outcome,
	c.step_index, c.step_key, c.step_role, c.claimed_by, c.opened_at, c.step_started_at, c.step_due_at, c.remind_at, c.due_at, c.queue_rank,
	c.next_alert_at, c.alert, c.suspended_at, c.step_left, c.case_left, c.held_status, c.suspended_work, c.correction, c.closed_at,
	c.elapsed_work, c.data, c.version, c.updated_at`

func scanCase(sc scanner) (caseRow, error) {
	var r caseRow
	var stepDue, remind, due, nextAlert, suspendedAt, closedAt sql.NullTime
	var stepLeft, caseLeft, elapsed sql.NullInt64
	var suspendedWork int64
	var correction, data string
	err := sc.Scan(&r.id, &r.defKey, &r.defVersion, &r.title, &r.ref, &r.applicantKind, &r.applicantID, &r.deptID, &r.division,
		&r.state, &r.outcome, &r.stepIndex, &r.stepKey, &r.stepRole, &r.claimedBy, &r.openedAt, &r.stepStarted, &stepDue, &remind,
		&due, &r.queueRank, &nextAlert, &r.alert, &suspendedAt, &stepLeft, &caseLeft, &r.heldStatus, &suspendedWork, &correction,
		&closedAt, &elapsed, &data, &r.version, &r.updatedAt)
	if err != nil {
		return r, err
	}
	r.openedAt, r.stepStarted, r.queueRank, r.updatedAt = r.openedAt.UTC(), r.stepStarted.UTC(), r.queueRank.UTC(), r.updatedAt.UTC()
	r.stepDue, r.remind, r.due, r.nextAlert = timePtr(stepDue), timePtr(remind), timePtr(due), timePtr(nextAlert)
	r.suspendedAt, r.closedAt = timePtr(suspendedAt), timePtr(closedAt)
	r.stepLeft, r.caseLeft, r.elapsedWork = durPtr(stepLeft), durPtr(caseLeft), durPtr(elapsed)
	r.suspendedWork = time.Duration(suspendedWork) * time.Microsecond
	if correction != "" {
		r.correction = &Correction{}
		if err := json.Unmarshal([]byte(correction), r.correction); err != nil {
			return r, fmt.Errorf("case %s: decode correction: %w", r.id, err)
		}
	}
	if err := json.Unmarshal([]byte(data), &r.data); err != nil {
		return r, fmt.Errorf("case %s: decode data: %w", r.id, err)
	}
	return r, nil
}

func timePtr(n sql.NullTime) *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time.UTC()
	return &t
}

func durPtr(n sql.NullInt64) *time.Duration {
	if !n.Valid {
		return nil
	}
	d := time.Duration(n.Int64) * time.Microsecond
	return &d
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

func nullMicros(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return d.Microseconds()
}

func correctionText(c *Correction) string {
	if c == nil {
		return ""
	}
	b, _ := json.Marshal(c) // strings and a time: cannot fail
	return string(b)
}

func dataText(m map[string]string) string {
	if m == nil {
		return "{}"
	}
	b, _ := json.Marshal(m) // strings only: cannot fail
	return string(b)
}

func (r *caseRow) args() []any {
	return []any{r.id, r.defKey, r.defVersion, r.title, r.ref, string(r.applicantKind), r.applicantID, r.deptID, r.division,
		string(r.state), string(r.outcome), r.stepIndex, r.stepKey, string(r.stepRole), r.claimedBy, r.openedAt.UTC(),
		r.stepStarted.UTC(), nullTime(r.stepDue), nullTime(r.remind), nullTime(r.due), r.queueRank.UTC(), nullTime(r.nextAlert),
		string(r.alert), nullTime(r.suspendedAt), nullMicros(r.stepLeft), nullMicros(r.caseLeft), string(r.heldStatus),
		r.suspendedWork.Microseconds(), correctionText(r.correction), nullTime(r.closedAt), nullMicros(r.elapsedWork),
		dataText(r.data), r.version, r.updatedAt.UTC()}
}

func insertCase(ctx context.Context, tx *db.Tx, r *caseRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO workflow_cases (`+caseCols+`) VALUES
		(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.args()...)
	return err
}

// updateCase writes r if the stored row is still at version prev, and reports whether it was.
// The alert columns, which Sweep changes without a new version, are written only with
// alerts set: by the transitions that set a new step deadline.
func updateCase(ctx context.Context, tx *db.Tx, r *caseRow, prev int, alerts bool) (bool, error) {
	q := `UPDATE workflow_cases SET dept_id = ?, division = ?, state = ?, outcome = ?, step_index = ?, step_key = ?,
		step_role = ?, claimed_by = ?, step_started_at = ?, step_due_at = ?, remind_at = ?, due_at = ?, queue_rank = ?,
		suspended_at = ?, step_left = ?, case_left = ?, held_status = ?, suspended_work = ?, correction = ?, closed_at = ?,
		elapsed_work = ?, version = ?, updated_at = ?`
	args := []any{r.deptID, r.division, string(r.state), string(r.outcome), r.stepIndex, r.stepKey,
		string(r.stepRole), r.claimedBy, r.stepStarted.UTC(), nullTime(r.stepDue), nullTime(r.remind), nullTime(r.due), r.queueRank.UTC(),
		nullTime(r.suspendedAt), nullMicros(r.stepLeft), nullMicros(r.caseLeft), string(r.heldStatus), r.suspendedWork.Microseconds(),
		correctionText(r.correction), nullTime(r.closedAt), nullMicros(r.elapsedWork), r.version, r.updatedAt.UTC()}
	if alerts {
		q += `, next_alert_at = ?, alert = ?`
		args = append(args, nullTime(r.nextAlert), string(r.alert))
	}
	q += ` WHERE id = ? AND version = ?`
	args = append(args, r.id, prev)
	res, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("update case %s: %w", r.id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("update case %s: %w", r.id, err)
	}
	return n == 1, nil
}

func getCase(ctx context.Context, q db.Querier, id string) (caseRow, error) {
	return scanCase(q.QueryRow(ctx, `SELECT `+caseCols+` FROM workflow_cases WHERE id = ?`, id))
}

// setScopes records the case's division and the divisions above it.
func setScopes(ctx context.Context, tx *db.Tx, caseID string, scopes []string, replace bool) error {
	if replace {
		if _, err := tx.Exec(ctx, `DELETE FROM workflow_case_scopes WHERE case_id = ?`, caseID); err != nil {
			return fmt.Errorf("case %s: clear scopes: %w", caseID, err)
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	q := `INSERT INTO workflow_case_scopes (ancestor, case_id) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, len(scopes)-1)
	args := make([]any, 0, 2*len(scopes))
	for _, a := range scopes {
		args = append(args, a, caseID)
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("case %s: scopes: %w", caseID, err)
	}
	return nil
}

func insertEvent(ctx context.Context, tx *db.Tx, e Event) error {
	items := e.Items
	if items == nil {
		items = []string{}
	}
	b, _ := json.Marshal(items) // strings only: cannot fail
	_, err := tx.Exec(ctx, `INSERT INTO workflow_events (case_id, action, actor, step, to_step, dept_id, to_dept_id, comment, items, due_at, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.CaseID, string(e.Action), e.Actor, e.Step, e.ToStep, e.DeptID, e.ToDeptID, e.Comment, string(b), nullTime(e.DueAt), e.At.UTC())
	if err != nil {
		return fmt.Errorf("case %s: history: %w", e.CaseID, err)
	}
	return nil
}

func listEvents(ctx context.Context, q db.Querier, caseID string) ([]Event, error) {
	rows, err := q.Query(ctx, `SELECT seq, case_id, action, actor, step, to_step, dept_id, to_dept_id, comment, items, due_at, at
		FROM workflow_events WHERE case_id = ? ORDER BY seq`, caseID)
	if err != nil {
		return nil, fmt.Errorf("case %s: read history: %w", caseID, err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var items string
		var due sql.NullTime
		if err := rows.Scan(&e.Seq, &e.CaseID, &e.Action, &e.Actor, &e.Step, &e.ToStep, &e.DeptID, &e.ToDeptID, &e.Comment, &items, &due, &e.At); err != nil {
			return nil, fmt.Errorf("case %s: read history: %w", caseID, err)
		}
		if err := json.Unmarshal([]byte(items), &e.Items); err != nil {
			return nil, fmt.Errorf("case %s: history items: %w", caseID, err)
		}
		if len(e.Items) == 0 {
			e.Items = nil
		}
		e.DueAt, e.At = timePtr(due), e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

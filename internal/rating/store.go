package rating

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/workflow"
)

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// ratingRow is a ratings row.
type ratingRow struct {
	Rating
	rectifyCase    string
	rectifyState   RectifyState
	rectifyVersion int
	rectifyDue     *time.Time
	rectifiedAt    *time.Time
	rectifyResult  string
	onTime         bool
	callbackAt     *time.Time
	callbackResult string
	confirmed      bool
}

const ratingCols = `id, application_id, application_no, case_id, rater_kind, rater_id, item_code, item_name, item_name_en,
	dept_id, dept_name, division, level, channel, comment, rated_at, updated_at, revised_at, first_level,
	rectify_case_id, rectify_state, rectify_version, rectify_due_at, rectified_at, rectify_result, rectified_on_time,
	callback_at, callback_result, confirmed`

func scanRating(sc db.Scanner) (ratingRow, error) {
	var r ratingRow
	var revised, due, rectified, callback sql.NullTime
	var first sql.NullInt64
	err := sc.Scan(&r.ID, &r.ApplicationID, &r.ApplicationNumber, &r.CaseID, &r.Rater.Kind, &r.Rater.ID, &r.ItemCode, &r.ItemName,
		&r.ItemNameEn, &r.DeptID, &r.DeptName, &r.Division, &r.Level, &r.Channel, &r.Comment, &r.RatedAt, &r.UpdatedAt, &revised, &first,
		&r.rectifyCase, &r.rectifyState, &r.rectifyVersion, &due, &rectified, &r.rectifyResult, &r.onTime,
		&callback, &r.callbackResult, &r.confirmed)
	if err != nil {
		return r, err
	}
	r.RatedAt, r.UpdatedAt = r.RatedAt.UTC(), r.UpdatedAt.UTC()
	r.RevisedAt, r.rectifyDue, r.rectifiedAt, r.callbackAt = db.TimePtr(revised), db.TimePtr(due), db.TimePtr(rectified), db.TimePtr(callback)
	if first.Valid {
		r.FirstLevel = Level(first.Int64)
	}
	return r, nil
}

// view is the Rating the row holds, with its tags and rectification.
func (r *ratingRow) view(tags []string) Rating {
	out := r.Rating
	out.Tags = tags
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if r.rectifyCase != "" {
		out.Rectification = &Rectification{CaseID: r.rectifyCase, State: r.rectifyState, DueAt: r.rectifyDue,
			RectifiedAt: r.rectifiedAt, Result: r.rectifyResult, OnTime: r.onTime, CallbackAt: r.callbackAt,
			CallbackNote: r.callbackResult, Confirmed: r.confirmed}
	}
	return out
}

func getRating(ctx context.Context, q db.Querier, id string) (ratingRow, error) {
	return scanRating(q.QueryRow(ctx, `SELECT `+ratingCols+` FROM ratings WHERE id = ?`, id))
}

// lockRating reads a rating for update inside tx (a row lock on PostgreSQL; SQLite's single
// writer already serialises).
func lockRating(ctx context.Context, tx *db.Tx, where string, args ...any) (ratingRow, error) {
	q := `SELECT ` + ratingCols + ` FROM ratings WHERE ` + where
	if tx.SQLDialect() == db.Postgres {
		q += ` FOR UPDATE`
	}
	return scanRating(tx.QueryRow(ctx, q, args...))
}

func findRating(ctx context.Context, q db.Querier, applicationID string, rater workflow.Party) (ratingRow, error) {
	return scanRating(q.QueryRow(ctx, `SELECT `+ratingCols+` FROM ratings WHERE application_id = ? AND rater_kind = ? AND rater_id = ?`,
		applicationID, string(rater.Kind), rater.ID))
}

func insertRating(ctx context.Context, tx *db.Tx, r *ratingRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO ratings (id, application_id, application_no, case_id, rater_kind, rater_id, item_code, item_name,
		item_name_en, dept_id, dept_name, division, level, channel, comment, rated_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ApplicationID, r.ApplicationNumber, r.CaseID, string(r.Rater.Kind), r.Rater.ID, r.ItemCode, r.ItemName,
		r.ItemNameEn, r.DeptID, r.DeptName, r.Division, int(r.Level), string(r.Channel), r.Comment, r.RatedAt, r.UpdatedAt)
	if err != nil {
		return err
	}
	for _, a := range append([]string{r.Division}, divisions.Ancestors(r.Division)...) {
		if _, err := tx.Exec(ctx, `INSERT INTO rating_scopes (ancestor, rating_id, rated_at) VALUES (?, ?, ?)`, a, r.ID, r.RatedAt); err != nil {
			return fmt.Errorf("rating %s scope %s: %w", r.ID, a, err)
		}
	}
	return nil
}

// setTags replaces a rating's tags.
func setTags(ctx context.Context, tx *db.Tx, id string, tags []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM rating_tags WHERE rating_id = ?`, id); err != nil {
		return fmt.Errorf("rating %s tags: %w", id, err)
	}
	for _, t := range tags {
		if _, err := tx.Exec(ctx, `INSERT INTO rating_tags (rating_id, tag) VALUES (?, ?)`, id, t); err != nil {
			return fmt.Errorf("rating %s tags: %w", id, err)
		}
	}
	return nil
}

// tagsOf reads the tags of the ratings ids, in catalogue order.
func tagsOf(ctx context.Context, q db.Querier, ids ...string) (map[string][]string, error) {
	out := make(map[string][]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	ph := make([]byte, 0, 3*len(ids))
	for i, id := range ids {
		args[i] = id
		if i > 0 {
			ph = append(ph, ", "...)
		}
		ph = append(ph, '?')
	}
	rows, err := q.Query(ctx, `SELECT rating_id, tag FROM rating_tags WHERE rating_id IN (`+string(ph)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("rating tags: %w", err)
	}
	defer rows.Close()
	chosen := map[string]map[string]bool{}
	for rows.Next() {
		var id, tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return nil, fmt.Errorf("rating tags: %w", err)
		}
		if chosen[id] == nil {
			chosen[id] = map[string]bool{}
		}
		chosen[id][tag] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rating tags: %w", err)
	}
	for id, set := range chosen {
		for _, t := range Tags {
			if set[t.Code] {
				out[id] = append(out[id], t.Code)
			}
		}
	}
	return out, nil
}

// auditDetail is what the audit log keeps of a rating: no text the person wrote.
func auditDetail(r *ratingRow, tags []string) map[string]any {
	d := map[string]any{"application_id": r.ApplicationID, "case_id": r.CaseID, "item": r.ItemCode, "dept_id": r.DeptID,
		"division": r.Division, "level": int(r.Level), "channel": string(r.Channel), "tags": tags}
	if r.rectifyCase != "" {
		d["rectify_case_id"] = r.rectifyCase
	}
	if r.FirstLevel != 0 {
		d["first_level"] = int(r.FirstLevel)
	}
	return d
}

func (r *ratingRow) payload(at time.Time) EventPayload {
	return EventPayload{RatingID: r.ID, ApplicationID: r.ApplicationID, CaseID: r.CaseID, RectifyCaseID: r.rectifyCase,
		RaterKind: r.Rater.Kind, RaterID: r.Rater.ID, ItemCode: r.ItemCode, DeptID: r.DeptID, Division: r.Division, Level: r.Level,
		Poor: r.Level.Poor(), Channel: r.Channel, RectifyState: r.rectifyState, OnTime: r.onTime, At: at}
}

func (r *ratingRow) rater() authz.Subject { return authz.Subject{Kind: r.Rater.Kind, ID: r.Rater.ID} }

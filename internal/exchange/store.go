package exchange

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
)

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // strings only: cannot fail
	return string(b)
}

func jsonMap(v map[string]string) string {
	if v == nil {
		v = map[string]string{}
	}
	b, _ := json.Marshal(v) // strings only: cannot fail
	return string(b)
}

func parseMap(s string) (map[string]string, error) {
	var out map[string]string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode map: %w", err)
	}
	return out, nil
}

func parseList(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	return out, nil
}

// ---- requests ----

const requestCols = `id, resource_id, resource_code, resource_name, resource_version, share_type, provider_dept_id,
	provider_division, consumer_dept_id, consumer_dept_name, consumer_division, client_id, fields, purpose, status,
	applicant, due_at, decided_by, decided_at, reason, created_at`

func scanRequest(sc db.Scanner) (SharingRequest, error) {
	var r SharingRequest
	var fields string
	var due, decided sql.NullTime
	err := sc.Scan(&r.ID, &r.ResourceID, &r.ResourceCode, &r.ResourceName, &r.ResourceVersion, &r.ShareType, &r.ProviderDeptID,
		&r.ProviderDivision, &r.ConsumerDeptID, &r.ConsumerDeptName, &r.ConsumerDivision, &r.ClientID, &fields, &r.Purpose, &r.Status,
		&r.Applicant, &due, &r.DecidedBy, &decided, &r.Reason, &r.CreatedAt)
	if err != nil {
		return r, err
	}
	if r.Fields, err = parseList(fields); err != nil {
		return r, fmt.Errorf("request %s: %w", r.ID, err)
	}
	r.DueAt, r.DecidedAt, r.CreatedAt = db.TimePtr(due), db.TimePtr(decided), r.CreatedAt.UTC()
	return r, nil
}

func insertRequest(ctx context.Context, tx *db.Tx, r SharingRequest) error {
	_, err := tx.Exec(ctx, `INSERT INTO exchange_requests (`+requestCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ResourceID, r.ResourceCode, r.ResourceName, r.ResourceVersion, int(r.ShareType), r.ProviderDeptID,
		r.ProviderDivision, r.ConsumerDeptID, r.ConsumerDeptName, r.ConsumerDivision, r.ClientID, jsonList(r.Fields), r.Purpose, string(r.Status),
		r.Applicant, db.NullTime(r.DueAt), r.DecidedBy, db.NullTime(r.DecidedAt), r.Reason, r.CreatedAt)
	return err
}

func updateDecision(ctx context.Context, tx *db.Tx, r SharingRequest) error {
	_, err := tx.Exec(ctx, `UPDATE exchange_requests SET status = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ?`,
		string(r.Status), r.DecidedBy, db.NullTime(r.DecidedAt), r.Reason, r.ID)
	return err
}

// lockRequest reads a request for update (the row lock on PostgreSQL; SQLite transactions
// hold the write lock from BEGIN), so two answers to one request cannot both apply.
func lockRequest(ctx context.Context, tx *db.Tx, id string) (SharingRequest, error) {
	if _, err := tx.Exec(ctx, `UPDATE exchange_requests SET status = status WHERE id = ?`, id); err != nil {
		return SharingRequest{}, err
	}
	return scanRequest(tx.QueryRow(ctx, `SELECT `+requestCols+` FROM exchange_requests WHERE id = ?`, id))
}

func getRequest(ctx context.Context, q db.Querier, id string) (SharingRequest, error) {
	return scanRequest(q.QueryRow(ctx, `SELECT `+requestCols+` FROM exchange_requests WHERE id = ?`, id))
}

func queryRequests(ctx context.Context, q db.Querier, query string, args ...any) ([]SharingRequest, error) {
	return db.Collect(ctx, q, `SELECT `+requestCols+` FROM exchange_requests `+query, args, scanRequest)
}

// ---- grants ----

const grantCols = `id, request_id, resource_id, provider_dept_id, consumer_dept_id, consumer_dept_name, consumer_division,
	client_id, fields, row_scope, rate_per_minute, daily_quota, valid_until, revoked, revoked_at, created_at`

func scanGrant(sc db.Scanner) (Grant, error) {
	var g Grant
	var fields string
	var revoked sql.NullTime
	err := sc.Scan(&g.ID, &g.RequestID, &g.ResourceID, &g.ProviderDeptID, &g.ConsumerDeptID, &g.ConsumerDeptName, &g.ConsumerDivision,
		&g.ClientID, &fields, &g.RowScope, &g.RatePerMinute, &g.DailyQuota, &g.ValidUntil, &g.Revoked, &revoked, &g.CreatedAt)
	if err != nil {
		return g, err
	}
	if g.Fields, err = parseList(fields); err != nil {
		return g, fmt.Errorf("grant %s: %w", g.ID, err)
	}
	g.RevokedAt, g.ValidUntil, g.CreatedAt = db.TimePtr(revoked), g.ValidUntil.UTC(), g.CreatedAt.UTC()
	return g, nil
}

func insertGrant(ctx context.Context, tx *db.Tx, g Grant) error {
	_, err := tx.Exec(ctx, `INSERT INTO exchange_grants (`+grantCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.RequestID, g.ResourceID, g.ProviderDeptID, g.ConsumerDeptID, g.ConsumerDeptName, g.ConsumerDivision,
		g.ClientID, jsonList(g.Fields), g.RowScope, g.RatePerMinute, g.DailyQuota, g.ValidUntil, g.Revoked, db.NullTime(g.RevokedAt), g.CreatedAt)
	return err
}

func getGrant(ctx context.Context, q db.Querier, id string) (Grant, error) {
	return scanGrant(q.QueryRow(ctx, `SELECT `+grantCols+` FROM exchange_grants WHERE id = ?`, id))
}

func grantOfRequest(ctx context.Context, q db.Querier, requestID string) (Grant, error) {
	return scanGrant(q.QueryRow(ctx, `SELECT `+grantCols+` FROM exchange_grants WHERE request_id = ?`, requestID))
}

// liveGrant is the unrevoked grant of client on resource (at most one, by the unique index).
func liveGrant(ctx context.Context, q db.Querier, clientID, resourceID string) (Grant, error) {
	return scanGrant(q.QueryRow(ctx, `SELECT `+grantCols+` FROM exchange_grants
		WHERE client_id = ? AND resource_id = ? AND revoked = FALSE`, clientID, resourceID))
}

func queryGrants(ctx context.Context, q db.Querier, query string, args ...any) ([]Grant, error) {
	return db.Collect(ctx, q, `SELECT `+grantCols+` FROM exchange_grants `+query, args, scanGrant)
}

// ---- bindings ----

func getBinding(ctx context.Context, q db.Querier, resourceID string) (Binding, error) {
	var b Binding
	err := q.QueryRow(ctx, `SELECT resource_id, dataset_id, division_column, provider_dept_id, bound_by, created_at, updated_at
		FROM exchange_bindings WHERE resource_id = ?`, resourceID).
		Scan(&b.ResourceID, &b.DatasetID, &b.DivisionColumn, &b.ProviderDeptID, &b.BoundBy, &b.CreatedAt, &b.UpdatedAt)
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	return b, err
}

func upsertBinding(ctx context.Context, tx *db.Tx, b Binding) error {
	_, err := tx.Exec(ctx, `INSERT INTO exchange_bindings (resource_id, dataset_id, division_column, provider_dept_id, bound_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (resource_id) DO UPDATE SET dataset_id = excluded.dataset_id, division_column = excluded.division_column,
			provider_dept_id = excluded.provider_dept_id, bound_by = excluded.bound_by, updated_at = excluded.updated_at`,
		b.ResourceID, b.DatasetID, b.DivisionColumn, b.ProviderDeptID, b.BoundBy, b.CreatedAt, b.UpdatedAt)
	return err
}

// ---- access log ----

// access is one row of exchange_access, with the residents a query returned.
type access struct {
	ID, RequestID, GrantID, ClientID, ResourceID, ResourceName string
	ConsumerDept, ConsumerDeptName, Purpose, Kind              string
	Fields                                                     []string
	SubjectIdx                                                 string
	Subjects                                                   []string
	RowCount                                                   int
	At                                                         time.Time
}

const insertAccessSQL = `INSERT INTO exchange_access (id, at, request_id, grant_id, client_id, resource_id, resource_name,
	consumer_dept, consumer_dept_name, purpose, kind, fields, subject_idx, row_count)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (a access) args() []any {
	return []any{a.ID, a.At, a.RequestID, a.GrantID, a.ClientID, a.ResourceID, a.ResourceName,
		a.ConsumerDept, a.ConsumerDeptName, a.Purpose, a.Kind, jsonList(a.Fields), a.SubjectIdx, a.RowCount}
}

// insertAccess writes an access row and the residents its rows belong to.
func insertAccess(ctx context.Context, tx *db.Tx, a access) error {
	if _, err := tx.Exec(ctx, insertAccessSQL, a.args()...); err != nil {
		return err
	}
	return insertSubjects(ctx, tx, a.ID, a.Subjects)
}

// insertAccessOnce writes an access row unless it exists (an extract's job run again).
func insertAccessOnce(ctx context.Context, tx *db.Tx, a access) error {
	_, err := tx.Exec(ctx, insertAccessSQL+` ON CONFLICT (id) DO NOTHING`, a.args()...)
	return err
}

// subjectsPerInsert: 1,000 parameters a statement, so a page of a query or an extract is
// attributed in one or two round trips instead of one per row.
const subjectsPerInsert = 500

// insertSubjects records the residents (blind indexes) whose rows the access returned, each
// once; a resident recorded already for this access is skipped.
func insertSubjects(ctx context.Context, tx *db.Tx, accessID string, subjects []string) error {
	// Sorted and without repeats: in index order, each statement touches neighbouring pages.
	uniq := slices.Compact(slices.Sorted(slices.Values(subjects)))
	if len(uniq) > 0 && uniq[0] == "" {
		uniq = uniq[1:]
	}
	for i := 0; i < len(uniq); i += subjectsPerInsert {
		part := uniq[i:min(i+subjectsPerInsert, len(uniq))]
		q := `INSERT INTO exchange_access_subjects (access_id, subject_idx) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, len(part)-1) +
			` ON CONFLICT DO NOTHING`
		args := make([]any, 0, 2*len(part))
		for _, s := range part {
			args = append(args, accessID, s)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("access subjects: %w", err)
		}
	}
	return nil
}

// countCall adds one call to the grant's usage of day and returns the new count.
func countCall(ctx context.Context, tx *db.Tx, grantID, day string) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, `INSERT INTO exchange_usage (grant_id, day, calls) VALUES (?, ?, 1)
		ON CONFLICT (grant_id, day) DO UPDATE SET calls = exchange_usage.calls + 1 RETURNING calls`, grantID, day).Scan(&n)
	return n, err
}

package catalog

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the catalog's tables.
var Migrations = db.Migrations("catalog", migrationFiles, "migrations")

type scanner interface{ Scan(dest ...any) error }

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

const resourceSelect = `SELECT r.id, r.body, r.division_code, r.status, r.version, r.live_version, r.reject_reason,
	r.submitted_by, r.published_at, r.created_at, r.updated_at FROM catalog_resources r`

func scanResource(s scanner) (Resource, error) {
	var r Resource
	var body string
	var pub sql.NullTime
	if err := s.Scan(&r.ID, &body, &r.DivisionCode, &r.Status, &r.Version, &r.LiveVersion, &r.RejectReason,
		&r.SubmittedBy, &pub, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(body), &r.Draft); err != nil {
		return r, fmt.Errorf("decode resource %s: %w", r.ID, err)
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	if pub.Valid {
		t := pub.Time.UTC()
		r.PublishedAt = &t
	}
	return r, nil
}

const versionSelect = `SELECT v.resource_id, v.body, v.division_code, v.version, r.live_version, v.published_at, v.created_at
	FROM catalog_versions v JOIN catalog_resources r ON r.id = v.resource_id`

func scanVersion(s scanner) (Resource, error) {
	var r Resource
	var body string
	var pub time.Time
	if err := s.Scan(&r.ID, &body, &r.DivisionCode, &r.Version, &r.LiveVersion, &pub, &r.CreatedAt); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(body), &r.Draft); err != nil {
		return r, fmt.Errorf("decode resource %s version %d: %w", r.ID, r.Version, err)
	}
	pub = pub.UTC()
	r.Status, r.PublishedAt, r.CreatedAt, r.UpdatedAt = StatusPublished, &pub, r.CreatedAt.UTC(), pub
	return r, nil
}

// lockResource takes the row lock of a resource by id or code (PostgreSQL; SQLite
// transactions hold the write lock from the start), so read-modify-write cannot interleave:
// two approvals of one submission cannot both make a version.
func lockResource(ctx context.Context, tx *db.Tx, column, value string) error {
	_, err := tx.Exec(ctx, `UPDATE catalog_resources SET status = status WHERE `+column+` = ?`, value)
	return err
}

func getResource(ctx context.Context, q db.Querier, id string) (Resource, error) {
	return scanResource(q.QueryRow(ctx, resourceSelect+` WHERE r.id = ?`, id))
}

func getResourceByCode(ctx context.Context, q db.Querier, code string) (Resource, error) {
	return scanResource(q.QueryRow(ctx, resourceSelect+` WHERE r.code = ?`, code))
}

func getVersion(ctx context.Context, q db.Querier, id string, v int) (Resource, error) {
	return scanVersion(q.QueryRow(ctx, versionSelect+` WHERE v.resource_id = ? AND v.version = ?`, id, v))
}

func listVersions(ctx context.Context, q db.Querier, id string) ([]Resource, error) {
	rows, err := q.Query(ctx, versionSelect+` WHERE v.resource_id = ? ORDER BY v.version`, id)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		r, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func encodeBody(d Draft) (string, error) {
	b, err := json.Marshal(d)
	return string(b), err
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

func insertResource(ctx context.Context, tx *db.Tx, r Resource, ancestors []string) error {
	body, err := encodeBody(r.Draft)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO catalog_resources (id, code, name, summary, provider_dept_id, division_code,
		share_type, open_type, status, version, live_version, body, reject_reason, submitted_by, published_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Code, r.Name, r.Summary, r.ProviderDeptID, r.DivisionCode, int(r.ShareType), int(r.OpenType), string(r.Status),
		r.Version, r.LiveVersion, body, r.RejectReason, r.SubmittedBy, nullTime(r.PublishedAt), r.CreatedAt, r.UpdatedAt); err != nil {
		return err
	}
	for _, a := range append([]string{r.DivisionCode}, ancestors...) {
		if _, err := tx.Exec(ctx, `INSERT INTO catalog_resource_divisions (ancestor, resource_id) VALUES (?, ?)`, a, r.ID); err != nil {
			return fmt.Errorf("insert division %s of %s: %w", a, r.ID, err)
		}
	}
	return nil
}

func updateResource(ctx context.Context, tx *db.Tx, r Resource) error {
	body, err := encodeBody(r.Draft)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE catalog_resources SET code = ?, name = ?, summary = ?, provider_dept_id = ?, share_type = ?,
		open_type = ?, status = ?, version = ?, live_version = ?, body = ?, reject_reason = ?, submitted_by = ?, published_at = ?,
		updated_at = ? WHERE id = ?`,
		r.Code, r.Name, r.Summary, r.ProviderDeptID, int(r.ShareType), int(r.OpenType), string(r.Status), r.Version, r.LiveVersion,
		body, r.RejectReason, r.SubmittedBy, nullTime(r.PublishedAt), r.UpdatedAt, r.ID)
	return err
}

func insertVersion(ctx context.Context, tx *db.Tx, r Resource, by string, now time.Time) error {
	body, err := encodeBody(r.Draft)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO catalog_versions (resource_id, version, code, name, summary, provider_dept_id, division_code,
		share_type, open_type, body, published_at, published_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Version, r.Code, r.Name, r.Summary, r.ProviderDeptID, r.DivisionCode, int(r.ShareType), int(r.OpenType),
		body, *r.PublishedAt, by, now)
	return err
}

// nextSequence returns the next running number of scope, serialised by the row's lock.
func nextSequence(ctx context.Context, tx *db.Tx, scope string) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `INSERT INTO catalog_sequences (scope, last) VALUES (?, 1)
		ON CONFLICT (scope) DO UPDATE SET last = catalog_sequences.last + 1 RETURNING last`, scope).Scan(&n)
	return n, err
}

func codeExists(ctx context.Context, q db.Querier, code string) (bool, error) {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM catalog_resources WHERE code = ?`, code).Scan(&one)
	if isNoRow(err) {
		return false, nil
	}
	return err == nil, err
}

// likePattern is a case-insensitive substring pattern for LIKE … ESCAPE '\'.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

func pageSize(limit, offset int) (int, int) {
	if limit <= 0 {
		limit = 100
	}
	return min(limit, 1000), max(offset, 0)
}

// query assembles a list statement.
type query struct {
	joins, where     []string
	joinArgs, wheres []any
}

func (q *query) join(j string, args ...any) {
	q.joins, q.joinArgs = append(q.joins, j), append(q.joinArgs, args...)
}
func (q *query) cond(c string, args ...any) {
	q.where, q.wheres = append(q.where, c), append(q.wheres, args...)
}

func (q *query) sql(base, order string, limit, offset int) (string, []any) {
	s := base + " " + strings.Join(q.joins, " ")
	if len(q.where) > 0 {
		s += " WHERE " + strings.Join(q.where, " AND ")
	}
	s += " ORDER BY " + order + " LIMIT ? OFFSET ?"
	args := append(append(q.joinArgs[:len(q.joinArgs):len(q.joinArgs)], q.wheres...), limit, offset)
	return s, args
}

// filters adds the filter's conditions on table alias t (r or v), which has the columns
// code, name, summary, provider_dept_id, division_code, share_type and open_type.
func (q *query) filters(t string, f Filter) {
	if f.Division != "" {
		if f.Exact {
			q.cond(t+`.division_code = ?`, f.Division)
		} else {
			q.join(`JOIN catalog_resource_divisions fd ON fd.resource_id = `+t+`.`+idCol(t)+` AND fd.ancestor = ?`, f.Division)
		}
	}
	if f.DepartmentID != "" {
		q.cond(t+`.provider_dept_id = ?`, f.DepartmentID)
	}
	if f.ShareType != 0 {
		q.cond(t+`.share_type = ?`, int(f.ShareType))
	}
	if f.OpenType != 0 {
		q.cond(t+`.open_type = ?`, int(f.OpenType))
	}
	if s := strings.TrimSpace(f.Query); s != "" {
		p := likePattern(s)
		q.cond(`(LOWER(`+t+`.code) LIKE ? ESCAPE '\' OR LOWER(`+t+`.name) LIKE ? ESCAPE '\' OR LOWER(`+t+`.summary) LIKE ? ESCAPE '\')`, p, p, p)
	}
}

func idCol(t string) string {
	if t == "v" {
		return "resource_id"
	}
	return "id"
}

// listLive lists the versions in force; openOnly keeps those open to the public.
func listLive(ctx context.Context, q db.Querier, f Filter, openOnly bool) ([]Resource, error) {
	var qb query
	qb.cond(`v.version = r.live_version`)
	qb.filters("v", f)
	if openOnly {
		qb.cond(`v.open_type IN (?, ?)`, int(OpenUnconditional), int(OpenConditional))
	}
	limit, offset := pageSize(f.Limit, f.Offset)
	text, args := qb.sql(versionSelect, "v.code", limit, offset)
	return collect(ctx, q, text, args, scanVersion)
}

// listWorking lists working copies in status within the actor's division.
func listWorking(ctx context.Context, q db.Querier, actorDivision string, f Filter) ([]Resource, error) {
	var qb query
	qb.join(`JOIN catalog_resource_divisions sa ON sa.resource_id = r.id AND sa.ancestor = ?`, actorDivision)
	qb.filters("r", f)
	qb.cond(`r.status = ?`, string(f.Status))
	limit, offset := pageSize(f.Limit, f.Offset)
	text, args := qb.sql(resourceSelect, "r.code", limit, offset)
	return collect(ctx, q, text, args, scanResource)
}

func collect(ctx context.Context, q db.Querier, text string, args []any, scan func(scanner) (Resource, error)) ([]Resource, error) {
	rows, err := q.Query(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list resources: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

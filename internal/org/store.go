package org

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the org tables; apply before any package whose tables reference them.
var Migrations = db.Migrations("org", migrationFiles, "migrations")

// errNoRow is returned by the store's single-row reads when nothing matches.
var errNoRow = sql.ErrNoRows

// ---- divisions ----

func readDivisions(ctx context.Context, q db.Querier) (map[string]divisions.Division, error) {
	rows, err := q.Query(ctx, `SELECT code, name, parent, level FROM divisions`)
	if err != nil {
		return nil, fmt.Errorf("read divisions: %w", err)
	}
	defer rows.Close()
	out := map[string]divisions.Division{}
	for rows.Next() {
		d, err := scanDivision(rows)
		if err != nil {
			return nil, err
		}
		out[d.Code] = d
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanDivision(r scanner) (divisions.Division, error) {
	var d divisions.Division
	var parent sql.NullString
	var level int
	if err := r.Scan(&d.Code, &d.Name, &parent, &level); err != nil {
		return d, err
	}
	d.Parent, d.Level = parent.String, divisions.Level(level)
	return d, nil
}

// syncDivisions makes the divisions table hold want (insert or update, never delete: a code
// that leaves the standard may still be referenced by old records) and rebuilds the
// ancestor closure when anything changed. It writes nothing when the table is current.
func syncDivisions(ctx context.Context, tx *db.Tx, want []divisions.Division) (int, error) {
	have, err := readDivisions(ctx, tx)
	if err != nil {
		return 0, err
	}
	var changed [][]any
	for _, d := range want {
		if h, ok := have[d.Code]; ok && h == d {
			continue
		}
		var parent any
		if d.Parent != "" {
			parent = d.Parent
		}
		changed = append(changed, []any{d.Code, d.Name, parent, int(d.Level)})
		have[d.Code] = d
	}
	// Sorted by code, parents come before children (GB/T 2260 codes extend their parent's).
	slices.SortFunc(changed, func(a, b []any) int { return strings.Compare(a[0].(string), b[0].(string)) })
	if err := insertRows(ctx, tx, `INSERT INTO divisions (code, name, parent, level) VALUES `, changed,
		` ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent, level = excluded.level`); err != nil {
		return 0, fmt.Errorf("upsert divisions: %w", err)
	}

	closure, err := ancestorClosure(have)
	if err != nil {
		return 0, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM division_ancestors`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count division closure: %w", err)
	}
	if len(changed) == 0 && n == len(closure) {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM division_ancestors`); err != nil {
		return 0, fmt.Errorf("clear division closure: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO division_ancestors (ancestor, code, depth) VALUES `, closure,
		` ON CONFLICT (ancestor, code) DO NOTHING`); err != nil {
		return 0, fmt.Errorf("fill division closure: %w", err)
	}
	return len(changed), nil
}

// ancestorClosure lists (ancestor, code, depth) for every division and each division on its
// parent chain, itself included at depth 0.
func ancestorClosure(all map[string]divisions.Division) ([][]any, error) {
	codes := make([]string, 0, len(all))
	for c := range all {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var out [][]any
	for _, c := range codes {
		for depth, a := 0, c; a != ""; depth++ {
			if depth > 8 {
				return nil, fmt.Errorf("division %s: parent chain loops", c)
			}
			d, ok := all[a]
			if !ok {
				return nil, fmt.Errorf("division %s: parent %s unknown", c, a)
			}
			out = append(out, []any{a, c, depth})
			a = d.Parent
		}
	}
	return out, nil
}

// insertRows runs "prefix (?,..),(?,..) suffix" in batches that stay far below both
// databases' limits on bound parameters.
func insertRows(ctx context.Context, q db.Querier, prefix string, rows [][]any, suffix string) error {
	if len(rows) == 0 {
		return nil
	}
	cols := len(rows[0])
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	per := max(1, 900/cols)
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		args := make([]any, 0, len(batch)*cols)
		b.WriteString(prefix)
		for i, r := range batch {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			args = append(args, r...)
		}
		b.WriteString(suffix)
		if _, err := q.Exec(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

func listDivisions(ctx context.Context, q db.Querier, parent string) ([]divisions.Division, error) {
	where, args := `parent IS NULL`, []any{}
	if parent != "" {
		where, args = `parent = ?`, []any{parent}
	}
	rows, err := q.Query(ctx, `SELECT code, name, parent, level FROM divisions WHERE `+where+` ORDER BY code`, args...)
	if err != nil {
		return nil, fmt.Errorf("list divisions under %q: %w", parent, err)
	}
	defer rows.Close()
	var out []divisions.Division
	for rows.Next() {
		d, err := scanDivision(rows)
		if err != nil {
			return nil, fmt.Errorf("list divisions under %q: %w", parent, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func getDivision(ctx context.Context, q db.Querier, code string) (divisions.Division, error) {
	return scanDivision(q.QueryRow(ctx, `SELECT code, name, parent, level FROM divisions WHERE code = ?`, code))
}

// ---- departments ----

const departmentSelect = `SELECT d.id, d.division_code, v.name, d.code, d.name, d.short_name, d.kind, d.parent_id,
	d.active, d.created_at, d.updated_at
	FROM departments d JOIN divisions v ON v.code = d.division_code`

func scanDepartment(r scanner) (Department, error) {
	var d Department
	var parent sql.NullString
	if err := r.Scan(&d.ID, &d.DivisionCode, &d.DivisionName, &d.Code, &d.Name, &d.ShortName, &d.Kind, &parent,
		&d.Active, &d.CreatedAt, &d.UpdatedAt); err != nil {
		return d, err
	}
	d.ParentID = parent.String
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, nil
}

func getDepartment(ctx context.Context, q db.Querier, id string) (Department, error) {
	return scanDepartment(q.QueryRow(ctx, departmentSelect+` WHERE d.id = ?`, id))
}

func getDepartmentByCode(ctx context.Context, q db.Querier, division, code string) (Department, error) {
	return scanDepartment(q.QueryRow(ctx, departmentSelect+` WHERE d.division_code = ? AND d.code = ?`, division, code))
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func insertDepartment(ctx context.Context, q db.Querier, d Department) error {
	_, err := q.Exec(ctx, `INSERT INTO departments (id, division_code, code, name, short_name, kind, parent_id, active, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.DivisionCode, d.Code, d.Name, d.ShortName, d.Kind, nullable(d.ParentID), d.Active, d.CreatedAt, d.UpdatedAt)
	return err
}

func updateDepartment(ctx context.Context, q db.Querier, d Department) error {
	_, err := q.Exec(ctx, `UPDATE departments SET code = ?, name = ?, short_name = ?, kind = ?, parent_id = ?, active = ?, updated_at = ?
		WHERE id = ?`, d.Code, d.Name, d.ShortName, d.Kind, nullable(d.ParentID), d.Active, d.UpdatedAt, d.ID)
	return err
}

// scope builds the joins and conditions that keep a list within the actor's division
// (always) and the filter's division (with or without the divisions below it).
type scope struct {
	joins, where []string
	args         []any
}

func newScope(col, actorDivision, division string, includeSub bool) *scope {
	s := &scope{}
	s.joins = append(s.joins, `JOIN division_ancestors sa ON sa.code = `+col+` AND sa.ancestor = ?`)
	s.args = append(s.args, actorDivision)
	if division != "" {
		if includeSub {
			s.joins = append(s.joins, `JOIN division_ancestors fa ON fa.code = `+col+` AND fa.ancestor = ?`)
			s.args = append(s.args, division)
		} else {
			s.cond(col+` = ?`, division)
		}
	}
	return s
}

func (s *scope) cond(c string, args ...any) {
	s.where = append(s.where, c)
	s.args = append(s.args, args...)
}

func (s *scope) sql(base, order string, limit, offset int) (string, []any) {
	q := base + " " + strings.Join(s.joins, " ")
	if len(s.where) > 0 {
		q += " WHERE " + strings.Join(s.where, " AND ")
	}
	q += " ORDER BY " + order + " LIMIT ? OFFSET ?"
	return q, append(s.args, limit, offset)
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

func listDepartments(ctx context.Context, q db.Querier, actorDivision string, f DepartmentFilter) ([]Department, error) {
	s := newScope("d.division_code", actorDivision, f.Division, f.IncludeSub)
	if qs := strings.TrimSpace(f.Query); qs != "" {
		p := likePattern(qs)
		s.cond(`(LOWER(d.name) LIKE ? ESCAPE '\' OR LOWER(d.short_name) LIKE ? ESCAPE '\' OR LOWER(d.code) LIKE ? ESCAPE '\')`, p, p, p)
	}
	if f.ActiveOnly {
		s.cond(`d.active = ?`, true)
	}
	limit, offset := pageSize(f.Limit, f.Offset)
	sqlText, args := s.sql(departmentSelect, "d.division_code, d.code", limit, offset)
	rows, err := q.Query(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("list departments: %w", err)
	}
	defer rows.Close()
	var out []Department
	for rows.Next() {
		d, err := scanDepartment(rows)
		if err != nil {
			return nil, fmt.Errorf("list departments: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ---- staff ----

const staffSelect = `SELECT s.id, s.username, s.name, s.department_id, p.name, s.division_code, s.phone_enc, s.phone_idx,
	s.must_change_password, s.active, s.failed_logins, s.locked_until, s.created_at, s.updated_at, s.last_login_at,
	s.password_hash
	FROM staff s JOIN departments p ON p.id = s.department_id`

// staffRow is a staff account with its password hash and its sealed phone number, for this
// package only. Staff.Phone is empty as read: the service opens phoneEnc where it needs
// the number (Service.withPhone). On writes, phoneEnc and phoneIdx are what is stored.
type staffRow struct {
	Staff
	hash     string
	phoneEnc []byte // nil when no phone
	phoneIdx string // "" when no phone
}

func scanStaff(r scanner) (staffRow, error) {
	var s staffRow
	var locked, last sql.NullTime
	var phoneIdx sql.NullString
	if err := r.Scan(&s.ID, &s.Username, &s.Name, &s.DepartmentID, &s.DepartmentName, &s.DivisionCode, &s.phoneEnc, &phoneIdx,
		&s.MustChangePassword, &s.Active, &s.FailedLogins, &locked, &s.CreatedAt, &s.UpdatedAt, &last, &s.hash); err != nil {
		return s, err
	}
	s.LockedUntil, s.LastLoginAt = timePtr(locked), timePtr(last)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	s.phoneIdx = phoneIdx.String
	return s, nil
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return db.Now(*t)
}

// getStaff reads one account with its roles.
func getStaff(ctx context.Context, q db.Querier, id string) (staffRow, error) {
	s, err := scanStaff(q.QueryRow(ctx, staffSelect+` WHERE s.id = ?`, id))
	if err != nil {
		return s, err
	}
	roles, err := loadRoles(ctx, q, []string{s.ID})
	if err != nil {
		return s, err
	}
	s.Roles = roles[s.ID]
	return s, nil
}

func loadRoles(ctx context.Context, q db.Querier, ids []string) (map[string][]authz.Role, error) {
	out := map[string][]authz.Role{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.Query(ctx, `SELECT staff_id, role FROM staff_roles WHERE staff_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY staff_id, role`, args...)
	if err != nil {
		return nil, fmt.Errorf("load roles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, r string
		if err := rows.Scan(&id, &r); err != nil {
			return nil, fmt.Errorf("load roles: %w", err)
		}
		out[id] = append(out[id], authz.Role(r))
	}
	return out, rows.Err()
}

func insertStaff(ctx context.Context, q db.Querier, s staffRow) error {
	_, err := q.Exec(ctx, `INSERT INTO staff (id, username, name, department_id, division_code, phone_enc, phone_idx,
		password_hash, must_change_password, active, failed_logins, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
		s.ID, s.Username, s.Name, s.DepartmentID, s.DivisionCode, nullBytes(s.phoneEnc), nullable(s.phoneIdx), s.hash,
		s.MustChangePassword, s.Active, s.CreatedAt, s.UpdatedAt)
	if err != nil {
		return err
	}
	return setRoles(ctx, q, s.ID, s.Roles)
}

func setRoles(ctx context.Context, q db.Querier, id string, roles []authz.Role) error {
	if _, err := q.Exec(ctx, `DELETE FROM staff_roles WHERE staff_id = ?`, id); err != nil {
		return err
	}
	rows := make([][]any, len(roles))
	for i, r := range roles {
		rows[i] = []any{id, string(r)}
	}
	return insertRows(ctx, q, `INSERT INTO staff_roles (staff_id, role) VALUES `, rows, ``)
}

func updateStaff(ctx context.Context, q db.Querier, s staffRow) error {
	_, err := q.Exec(ctx, `UPDATE staff SET name = ?, department_id = ?, division_code = ?, phone_enc = ?, phone_idx = ?,
		active = ?, updated_at = ? WHERE id = ?`,
		s.Name, s.DepartmentID, s.DivisionCode, nullBytes(s.phoneEnc), nullable(s.phoneIdx), s.Active, s.UpdatedAt, s.ID)
	return err
}

// nullBytes stores an empty byte slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// setPassword stores a new hash; mustChange tells whether the holder must change it at the
// next login. It also clears any lock: a new password is a fresh start.
func setPassword(ctx context.Context, q db.Querier, id, hash string, mustChange bool, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE staff SET password_hash = ?, must_change_password = ?, failed_logins = 0, locked_until = NULL,
		updated_at = ? WHERE id = ?`, hash, mustChange, now, id)
	return err
}

// setLoginState records the failed-login counter and lock of an account.
func setLoginState(ctx context.Context, q db.Querier, id string, failed int, lockedUntil *time.Time) error {
	_, err := q.Exec(ctx, `UPDATE staff SET failed_logins = ?, locked_until = ? WHERE id = ?`, failed, nullTime(lockedUntil), id)
	return err
}

// loginState is what a login needs to know about an account before checking the password.
type loginState struct {
	id, hash    string
	active      bool
	failed      int
	lockedUntil *time.Time
}

// getLoginState reads the login state by id or (lower-case) username in one light query.
func getLoginState(ctx context.Context, q db.Querier, by, value string) (loginState, error) {
	col := "id"
	if by == "username" {
		col = "username"
	}
	var st loginState
	var locked sql.NullTime
	err := q.QueryRow(ctx, `SELECT id, password_hash, active, failed_logins, locked_until FROM staff WHERE `+col+` = ?`, value).
		Scan(&st.id, &st.hash, &st.active, &st.failed, &locked)
	st.lockedUntil = timePtr(locked)
	return st, err
}

// casLoginState sets the failure counter and lock only if the counter is still prevFailed
// (compare-and-set), reporting whether it did: one statement, no row lock held in between.
func casLoginState(ctx context.Context, q db.Querier, id string, prevFailed, failed int, lockedUntil *time.Time) (bool, error) {
	res, err := q.Exec(ctx, `UPDATE staff SET failed_logins = ?, locked_until = ? WHERE id = ? AND failed_logins = ?`,
		failed, nullTime(lockedUntil), id, prevFailed)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// lockStaffRow takes the row lock of an account (PostgreSQL; SQLite transactions hold the
// database write lock from the start), so read-modify-write of login state cannot interleave.
func lockStaffRow(ctx context.Context, tx *db.Tx, id string) error {
	_, err := tx.Exec(ctx, `UPDATE staff SET failed_logins = failed_logins WHERE id = ?`, id)
	return err
}

func listStaff(ctx context.Context, q db.Querier, actorDivision string, f StaffFilter) ([]staffRow, error) {
	s := newScope("s.division_code", actorDivision, f.Division, f.IncludeSub)
	if f.DepartmentID != "" {
		s.cond(`s.department_id = ?`, f.DepartmentID)
	}
	if f.Role != "" {
		s.cond(`EXISTS (SELECT 1 FROM staff_roles r WHERE r.staff_id = s.id AND r.role = ?)`, string(f.Role))
	}
	if qs := strings.TrimSpace(f.Query); qs != "" {
		p := likePattern(qs)
		s.cond(`(s.username LIKE ? ESCAPE '\' OR LOWER(s.name) LIKE ? ESCAPE '\')`, p, p)
	}
	if f.ActiveOnly {
		s.cond(`s.active = ?`, true)
	}
	limit, offset := pageSize(f.Limit, f.Offset)
	sqlText, args := s.sql(staffSelect, "s.username", limit, offset)
	rows, err := q.Query(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	defer rows.Close()
	var out []staffRow
	var ids []string
	for rows.Next() {
		r, err := scanStaff(rows)
		if err != nil {
			return nil, fmt.Errorf("list staff: %w", err)
		}
		out = append(out, r)
		ids = append(ids, r.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	rows.Close()
	roles, err := loadRoles(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Roles = roles[out[i].ID]
	}
	return out, nil
}

// countActiveRole counts active accounts holding role.
func countActiveRole(ctx context.Context, q db.Querier, role authz.Role) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM staff s JOIN staff_roles r ON r.staff_id = s.id
		WHERE r.role = ? AND s.active = ?`, string(role), true).Scan(&n)
	return n, err
}

func isNoRow(err error) bool { return errors.Is(err, errNoRow) }

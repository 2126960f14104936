package org

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Service holds the organisation rules: validation, authorization and login.
type Service struct {
	d      *db.DB
	policy *authz.Policy
	argon  ArgonParams
	audit  AuditFunc
	now    func() time.Time
	fields *crypto.FieldCipher // nil: no phone numbers can be stored or read
	// hashing bounds concurrent Argon2 runs: each holds Argon.Memory.
	hashing chan struct{}
	// dummy is verified for unknown usernames so they cost what known ones cost.
	dummy string
	// verifications counts Argon2 verifications (tests check that no login path skips one).
	verifications atomic.Int64
}

// New returns the organisation service on d, authorizing with policy (which must nest
// divisions as internal/org/divisions.Contains does, like the SQL scope filter).
func New(d *db.DB, policy *authz.Policy, opts Options) *Service {
	s := &Service{d: d, policy: policy, argon: opts.Argon.withDefaults(), audit: opts.Audit, now: opts.Now, fields: opts.Fields}
	if s.now == nil {
		s.now = time.Now
	}
	n := opts.MaxHashing
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.hashing = make(chan struct{}, n)
	s.dummy = dummyHash(s.argon)
	return s
}

func (s *Service) clock() time.Time { return db.Now(s.now()) }

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashing }()
	return HashPassword(password, s.argon)
}

func (s *Service) verify(ctx context.Context, hash, password string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer func() { <-s.hashing }()
	s.verifications.Add(1)
	return VerifyPassword(hash, password)
}

// record calls the audit hook, when there is one, inside tx.
func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if s.audit == nil {
		return nil
	}
	if err := s.audit(ctx, tx, actor, action, object, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

// ---- divisions ----

// SyncDivisions loads the GB/T 2260 divisions of Shanxi into the divisions table and its
// ancestor closure. It is idempotent and cheap when nothing changed (one read); call it at
// start. It returns how many divisions it inserted or updated.
func (s *Service) SyncDivisions(ctx context.Context) (int, error) {
	var n int
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		var err error
		n, err = syncDivisions(ctx, tx, divisions.Shanxi())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sync divisions: %w", err)
	}
	return n, nil
}

// ListDivisions lists the divisions directly under parent, by code; parent "" lists the
// top level (the province). Divisions are public: no actor is needed.
func (s *Service) ListDivisions(ctx context.Context, parent string) ([]divisions.Division, error) {
	return listDivisions(ctx, s.d, parent)
}

// GetDivision returns one division, or i18n.ErrNotFound.
func (s *Service) GetDivision(ctx context.Context, code string) (divisions.Division, error) {
	d, err := getDivision(ctx, s.d, code)
	if isNoRow(err) {
		return d, i18n.ErrNotFound.WithField("division_code")
	}
	if err != nil {
		return d, fmt.Errorf("get division %s: %w", code, err)
	}
	return d, nil
}

// ---- validation ----

// text trims value and checks it is present (when required), at most maxLen characters and
// free of control characters.
func text(field, zh, en, value string, required bool, maxLen int) (string, error) {
	v := strings.TrimSpace(value)
	switch {
	case v == "" && required:
		return "", invalid(field, "org.field.required", zh+"不能为空", en+" is required")
	case utf8.RuneCountInString(v) > maxLen:
		return "", invalid(field, "org.field.too_long",
			fmt.Sprintf("%s不能超过 %d 个字符", zh, maxLen), fmt.Sprintf("%s must have at most %d characters", en, maxLen))
	case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "", invalid(field, "org.field.control", zh+"含有不可见的控制字符", en+" contains control characters")
	}
	return v, nil
}

// normalizeUsername lower-cases and trims; usernames are compared case-insensitively.
func normalizeUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

func usernameOK(u string) bool {
	if len(u) < 3 || len(u) > 32 {
		return false
	}
	for _, c := range []byte(u) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validUsername(u string) (string, error) {
	u = normalizeUsername(u)
	if !usernameOK(u) {
		return "", invalid("username", "org.username.invalid",
			"用户名须为 3–32 位小写字母、数字、点、下划线或连字符", "the username must be 3–32 of a–z, 0–9, '.', '_' and '-'")
	}
	return u, nil
}

func validDeptCode(c string) (string, error) {
	c = strings.ToLower(strings.TrimSpace(c))
	ok := len(c) >= 2 && len(c) <= 32 && c[0] >= 'a' && c[0] <= 'z'
	for _, ch := range []byte(c) {
		ok = ok && (ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-')
	}
	if !ok {
		return "", invalid("code", "org.department_code.invalid",
			"部门编码须为 2–32 位小写字母、数字、下划线或连字符，以字母开头（如 scjg）",
			"the department code must be 2–32 of a–z, 0–9, '_' and '-', starting with a letter (e.g. scjg)")
	}
	return c, nil
}

func validDivisionCode(c string) (string, error) {
	c = strings.TrimSpace(c)
	ok := len(c) == 6 || len(c) == 9
	for _, ch := range []byte(c) {
		ok = ok && ch >= '0' && ch <= '9'
	}
	if !ok {
		return "", invalid("division_code", "org.division.invalid",
			"行政区划代码须为 6 位或 9 位数字（GB/T 2260）", "the division code must have 6 or 9 digits (GB/T 2260)")
	}
	return c, nil
}

// knownRole: a foundation role, or one an engine gave permissions to.
func (s *Service) knownRole(r authz.Role) bool {
	_, ok := authz.RoleNames[r]
	return ok || len(s.policy.Permissions(r)) > 0
}

func (s *Service) validRoles(in []authz.Role) ([]authz.Role, error) {
	out := make([]authz.Role, 0, len(in))
	for _, r := range in {
		r = authz.Role(strings.TrimSpace(string(r)))
		if !s.knownRole(r) {
			return nil, invalid("roles", "org.role.unknown",
				fmt.Sprintf("未知角色：%q", r), fmt.Sprintf("unknown role %q", r))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

func notHeld(r authz.Role) error {
	e := *ErrRoleNotHeld
	e.Msg = i18n.T(e.Msg.ZH+"："+string(r), e.Msg.EN+": "+string(r))
	return &e
}

// canGrant reports whether actor may grant (or revoke) role r. The system administrator is
// the root of trust and the only one who may grant sysadmin. Anyone else may grant a role
// they hold, or one that carries no permission beyond their own (an organisation admin may
// make officers) — never more power than they have.
func (s *Service) canGrant(actor authz.Subject, r authz.Role) bool {
	if actor.Has(authz.RoleSysAdmin) {
		return true
	}
	if r == authz.RoleSysAdmin {
		return false
	}
	if actor.Has(r) {
		return true
	}
	perms := s.policy.Permissions(r)
	if len(perms) == 0 {
		return false
	}
	for _, p := range perms {
		if !s.policy.Allowed(actor, p, actor.Division) {
			return false
		}
	}
	return true
}

// canManage: an account may only be changed by someone who could have granted each of its
// roles, so an organisation admin cannot reset a system administrator's password.
func (s *Service) canManage(actor authz.Subject, roles []authz.Role) error {
	for _, r := range roles {
		if !s.canGrant(actor, r) {
			return notHeld(r)
		}
	}
	return nil
}

func isSelf(actor authz.Subject, id string) bool { return actor.Kind == authz.Staff && actor.ID == id }

// ---- departments ----

func (s *Service) cleanDepartment(in DepartmentInput) (Department, error) {
	var d Department
	var err error
	if d.DivisionCode, err = validDivisionCode(in.DivisionCode); err != nil {
		return d, err
	}
	if d.Code, err = validDeptCode(in.Code); err != nil {
		return d, err
	}
	if d.Name, err = text("name", "部门名称", "the department name", in.Name, true, 100); err != nil {
		return d, err
	}
	if d.ShortName, err = text("short_name", "部门简称", "the short name", in.ShortName, false, 32); err != nil {
		return d, err
	}
	if d.Kind, err = text("kind", "部门类别", "the department kind", in.Kind, false, 64); err != nil {
		return d, err
	}
	d.ParentID = strings.TrimSpace(in.ParentID)
	return d, nil
}

// checkParent makes sure parentID names a department that may be dep's parent: it exists,
// lies in dep's division or one containing it, and is not dep or below it.
func (s *Service) checkParent(ctx context.Context, tx *db.Tx, dep Department, parentID string) error {
	badParent := func(zh, en string) error { return invalid("parent_id", "org.department_parent.invalid", zh, en) }
	p, err := getDepartment(ctx, tx, parentID)
	if isNoRow(err) {
		return badParent("上级部门不存在", "the parent department does not exist")
	}
	if err != nil {
		return fmt.Errorf("read parent department %s: %w", parentID, err)
	}
	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM division_ancestors WHERE ancestor = ? AND code = ?`, p.DivisionCode, dep.DivisionCode).Scan(&one)
	if isNoRow(err) {
		return badParent("上级部门须属于本行政区划或其上级区划", "the parent department must belong to this division or one containing it")
	}
	if err != nil {
		return fmt.Errorf("check parent department %s: %w", parentID, err)
	}
	for hop, id := 0, p.ID; id != ""; hop++ {
		if id == dep.ID || hop > 64 {
			return badParent("上级部门不能是本部门或其下级部门", "the parent department cannot be the department itself or one below it")
		}
		var parent *string
		if err := tx.QueryRow(ctx, `SELECT parent_id FROM departments WHERE id = ?`, id).Scan(&parent); err != nil {
			return fmt.Errorf("walk department parents: %w", err)
		}
		id = ""
		if parent != nil {
			id = *parent
		}
	}
	return nil
}

// CreateDepartment creates a department; the actor needs DepartmentEdit over its division.
func (s *Service) CreateDepartment(ctx context.Context, actor authz.Subject, in DepartmentInput) (Department, error) {
	dep, err := s.cleanDepartment(in)
	if err != nil {
		return Department{}, err
	}
	if err := s.policy.Authorize(actor, authz.DepartmentEdit, dep.DivisionCode); err != nil {
		return Department{}, err
	}
	var out Department
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		out, err = s.createDepartment(ctx, tx, actor, dep)
		return err
	})
	return out, err
}

func (s *Service) createDepartment(ctx context.Context, tx *db.Tx, actor authz.Subject, dep Department) (Department, error) {
	if _, err := getDivision(ctx, tx, dep.DivisionCode); isNoRow(err) {
		return dep, invalid("division_code", "org.division.unknown", "行政区划不存在", "no such division")
	} else if err != nil {
		return dep, fmt.Errorf("read division %s: %w", dep.DivisionCode, err)
	}
	dep.ID = db.NewID()
	if dep.ParentID != "" {
		if err := s.checkParent(ctx, tx, dep, dep.ParentID); err != nil {
			return dep, err
		}
	}
	dep.Active = true
	dep.CreatedAt = s.clock()
	dep.UpdatedAt = dep.CreatedAt
	if err := insertDepartment(ctx, tx, dep); db.IsUniqueViolation(err) {
		return dep, ErrDepartmentCodeTaken.Wrap(err)
	} else if err != nil {
		return dep, fmt.Errorf("create department %s/%s: %w", dep.DivisionCode, dep.Code, err)
	}
	out, err := getDepartment(ctx, tx, dep.ID)
	if err != nil {
		return out, fmt.Errorf("read new department: %w", err)
	}
	return out, s.record(ctx, tx, actor, ActionDepartmentCreate, "department:"+out.ID, map[string]any{
		"division": out.DivisionCode, "code": out.Code, "name": out.Name, "kind": out.Kind, "parent_id": out.ParentID,
	})
}

// UpdateDepartment changes a department; the actor needs DepartmentEdit over its division.
func (s *Service) UpdateDepartment(ctx context.Context, actor authz.Subject, id string, p DepartmentPatch) (Department, error) {
	var out Department
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := getDepartment(ctx, tx, id)
		if isNoRow(err) {
			return i18n.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read department %s: %w", id, err)
		}
		if err := s.policy.Authorize(actor, authz.DepartmentEdit, cur.DivisionCode); err != nil {
			return err
		}
		next := cur
		changes := map[string]any{}
		set := func(field string, dst *string, v string) {
			if *dst != v {
				changes[field] = v
				*dst = v
			}
		}
		if p.Code != nil {
			v, err := validDeptCode(*p.Code)
			if err != nil {
				return err
			}
			set("code", &next.Code, v)
		}
		if p.Name != nil {
			v, err := text("name", "部门名称", "the department name", *p.Name, true, 100)
			if err != nil {
				return err
			}
			set("name", &next.Name, v)
		}
		if p.ShortName != nil {
			v, err := text("short_name", "部门简称", "the short name", *p.ShortName, false, 32)
			if err != nil {
				return err
			}
			set("short_name", &next.ShortName, v)
		}
		if p.Kind != nil {
			v, err := text("kind", "部门类别", "the department kind", *p.Kind, false, 64)
			if err != nil {
				return err
			}
			set("kind", &next.Kind, v)
		}
		if p.ParentID != nil {
			v := strings.TrimSpace(*p.ParentID)
			if v != "" && v != cur.ParentID {
				if err := s.checkParent(ctx, tx, cur, v); err != nil {
					return err
				}
			}
			set("parent_id", &next.ParentID, v)
		}
		if p.Active != nil && *p.Active != cur.Active {
			next.Active = *p.Active
			changes["active"] = next.Active
		}
		if len(changes) == 0 {
			out = cur
			return nil
		}
		next.UpdatedAt = s.clock()
		if err := updateDepartment(ctx, tx, next); db.IsUniqueViolation(err) {
			return ErrDepartmentCodeTaken.Wrap(err)
		} else if err != nil {
			return fmt.Errorf("update department %s: %w", id, err)
		}
		if out, err = getDepartment(ctx, tx, id); err != nil {
			return fmt.Errorf("read department %s: %w", id, err)
		}
		return s.record(ctx, tx, actor, ActionDepartmentUpdate, "department:"+id, changes)
	})
	return out, err
}

// GetDepartment returns a department the actor may read (OrgRead over its division).
func (s *Service) GetDepartment(ctx context.Context, actor authz.Subject, id string) (Department, error) {
	d, err := getDepartment(ctx, s.d, id)
	if isNoRow(err) {
		return d, i18n.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("get department %s: %w", id, err)
	}
	if err := s.policy.Authorize(actor, authz.OrgRead, d.DivisionCode); err != nil {
		return Department{}, err
	}
	return d, nil
}

// listRoot authorizes a list: OrgRead over the filter's division, or the actor's own.
func (s *Service) listRoot(actor authz.Subject, division string) error {
	root := actor.Division
	if division != "" {
		root = division
	}
	return s.policy.Authorize(actor, authz.OrgRead, root)
}

// ListDepartments lists departments within the actor's scope, filtered in SQL.
func (s *Service) ListDepartments(ctx context.Context, actor authz.Subject, f DepartmentFilter) ([]Department, error) {
	f.Division = strings.TrimSpace(f.Division)
	if err := s.listRoot(actor, f.Division); err != nil {
		return nil, err
	}
	return listDepartments(ctx, s.d, actor.Division, f)
}

// ---- staff ----

// staffDepartment reads the department a staff member is to join and checks the actor may
// edit staff there.
func (s *Service) staffDepartment(ctx context.Context, q db.Querier, actor authz.Subject, id string) (Department, error) {
	dep, err := getDepartment(ctx, q, strings.TrimSpace(id))
	if isNoRow(err) || strings.TrimSpace(id) == "" {
		return dep, invalid("department_id", "org.department.unknown", "部门不存在", "no such department")
	}
	if err != nil {
		return dep, fmt.Errorf("read department %s: %w", id, err)
	}
	if !dep.Active {
		return dep, invalid("department_id", "org.department.inactive", "部门已停用", "the department is disabled")
	}
	return dep, s.policy.Authorize(actor, authz.StaffEdit, dep.DivisionCode)
}

func validName(v string) (string, error) { return text("name", "姓名", "the name", v, true, 64) }

// cleanPhone validates a phone number as a mainland mobile and returns its normalised 11
// digits, or "" for none. A number cannot be stored without a field cipher.
func (s *Service) cleanPhone(v string) (string, error) {
	if strings.TrimSpace(v) == "" {
		return "", nil
	}
	n, err := ids.ValidateMobile(v)
	if e, ok := i18n.As(err); ok {
		return "", e.WithField("phone")
	} else if err != nil {
		return "", err
	}
	if s.fields == nil {
		return "", ErrNoFieldCipher
	}
	return n, nil
}

// phoneAAD binds a sealed phone number to its row and column.
func phoneAAD(id string) string { return "org.staff:" + id + ":phone" }

// sealPhone sets r.phoneEnc and r.phoneIdx from r.Phone (r.ID must be set): both empty
// when there is no number.
func (s *Service) sealPhone(r *staffRow) error {
	r.phoneEnc, r.phoneIdx = nil, ""
	if r.Phone == "" {
		return nil
	}
	if s.fields == nil {
		return ErrNoFieldCipher
	}
	enc, err := s.fields.Seal(r.Phone, phoneAAD(r.ID))
	if err != nil {
		return fmt.Errorf("seal phone of staff %s: %w", r.ID, err)
	}
	r.phoneEnc, r.phoneIdx = enc, s.fields.BlindIndex(IndexMobile, r.Phone)
	return nil
}

// openPhone decrypts the phone number of a row read from the database ("" when none).
func (s *Service) openPhone(r staffRow) (string, error) {
	if len(r.phoneEnc) == 0 {
		return "", nil
	}
	if s.fields == nil {
		return "", ErrNoFieldCipher
	}
	p, err := s.fields.Open(r.phoneEnc, phoneAAD(r.ID))
	if err != nil {
		return "", fmt.Errorf("open phone of staff %s: %w", r.ID, err)
	}
	return p, nil
}

// withPhone is r's Staff with the phone number decrypted, in full.
func (s *Service) withPhone(r staffRow) (Staff, error) {
	p, err := s.openPhone(r)
	if err != nil {
		return Staff{}, err
	}
	r.Phone = p
	return r.Staff, nil
}

// mayEdit reports whether actor could change the account (UpdateStaff's rule: StaffEdit
// over its division and able to grant each of its roles); such an actor, and the holder,
// see its phone number in full.
func (s *Service) mayEdit(actor authz.Subject, r staffRow) bool {
	return s.policy.Allowed(actor, authz.StaffEdit, r.DivisionCode) && s.canManage(actor, r.Roles) == nil
}

// CreateStaff creates a staff account in a department. The actor needs StaffEdit over the
// department's division and may grant only roles it could hold (see canGrant). The holder
// must change the initial password at first login.
func (s *Service) CreateStaff(ctx context.Context, actor authz.Subject, in StaffInput) (Staff, error) {
	row, err := s.cleanStaff(in)
	if err != nil {
		return Staff{}, err
	}
	if _, err := s.staffDepartment(ctx, s.d, actor, in.DepartmentID); err != nil {
		return Staff{}, err
	}
	if err := s.canManage(actor, row.Roles); err != nil {
		return Staff{}, err
	}
	// Hash outside the transaction: on SQLite it would hold the only writer for the duration.
	if row.hash, err = s.hash(ctx, in.Password); err != nil {
		return Staff{}, fmt.Errorf("hash password: %w", err)
	}
	row.MustChangePassword = true
	var out Staff
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		dep, err := s.staffDepartment(ctx, tx, actor, in.DepartmentID)
		if err != nil {
			return err
		}
		out, err = s.createStaff(ctx, tx, actor, row, dep, nil)
		return err
	})
	return out, err
}

func (s *Service) cleanStaff(in StaffInput) (staffRow, error) {
	var r staffRow
	var err error
	if r.Username, err = validUsername(in.Username); err != nil {
		return r, err
	}
	if r.Name, err = validName(in.Name); err != nil {
		return r, err
	}
	if r.Phone, err = s.cleanPhone(in.Phone); err != nil {
		return r, err
	}
	if r.Roles, err = s.validRoles(in.Roles); err != nil {
		return r, err
	}
	return r, ValidatePassword(r.Username, in.Password)
}

func (s *Service) createStaff(ctx context.Context, tx *db.Tx, actor authz.Subject, r staffRow, dep Department, extra map[string]any) (Staff, error) {
	r.ID = db.NewID()
	if err := s.sealPhone(&r); err != nil {
		return Staff{}, err
	}
	r.DepartmentID, r.DivisionCode = dep.ID, dep.DivisionCode
	r.Active = true
	r.CreatedAt = s.clock()
	r.UpdatedAt = r.CreatedAt
	if err := insertStaff(ctx, tx, r); db.IsUniqueViolation(err) {
		return Staff{}, ErrUsernameTaken.Wrap(err)
	} else if err != nil {
		return Staff{}, fmt.Errorf("create staff %s: %w", r.Username, err)
	}
	got, err := getStaff(ctx, tx, r.ID)
	if err != nil {
		return Staff{}, fmt.Errorf("read new staff %s: %w", r.Username, err)
	}
	detail := map[string]any{"username": got.Username, "name": got.Name, "department_id": got.DepartmentID,
		"division": got.DivisionCode, "roles": got.Roles}
	for k, v := range extra {
		detail[k] = v
	}
	got.Phone = r.Phone // the creator may edit the account: the number in full
	return got.Staff, s.record(ctx, tx, actor, ActionStaffCreate, "staff:"+got.ID, detail)
}

// UpdateStaff changes an account's name, phone, department, active flag or roles. The
// actor needs StaffEdit over the account's division (and the new department's), must be
// able to grant every role the account has and every role added or removed, and cannot
// change its own roles or disable itself.
func (s *Service) UpdateStaff(ctx context.Context, actor authz.Subject, id string, p StaffPatch) (Staff, error) {
	var name, phone string
	var roles []authz.Role
	var err error
	if p.Name != nil {
		if name, err = validName(*p.Name); err != nil {
			return Staff{}, err
		}
	}
	if p.Phone != nil {
		if phone, err = s.cleanPhone(*p.Phone); err != nil {
			return Staff{}, err
		}
	}
	if p.Roles != nil {
		if roles, err = s.validRoles(*p.Roles); err != nil {
			return Staff{}, err
		}
	}
	var out Staff
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := getStaff(ctx, tx, id)
		if isNoRow(err) {
			return i18n.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read staff %s: %w", id, err)
		}
		if err := s.policy.Authorize(actor, authz.StaffEdit, cur.DivisionCode); err != nil {
			return err
		}
		if err := s.canManage(actor, cur.Roles); err != nil {
			return err
		}
		next := cur
		changes := map[string]any{}
		if p.Name != nil && name != cur.Name {
			next.Name, changes["name"] = name, name
		}
		if p.Phone != nil {
			old, err := s.openPhone(cur)
			if err != nil {
				return err
			}
			if phone != old {
				next.Phone, changes["phone"] = phone, "changed" // personal data stays out of the audit log
				if err := s.sealPhone(&next); err != nil {
					return err
				}
			}
		}
		if p.DepartmentID != nil && strings.TrimSpace(*p.DepartmentID) != cur.DepartmentID {
			dep, err := s.staffDepartment(ctx, tx, actor, *p.DepartmentID)
			if err != nil {
				return err
			}
			next.DepartmentID, next.DivisionCode = dep.ID, dep.DivisionCode
			changes["department_id"], changes["division"] = dep.ID, dep.DivisionCode
		}
		if p.Active != nil && *p.Active != cur.Active {
			if isSelf(actor, id) {
				return ErrSelfChange.WithField("active")
			}
			next.Active, changes["active"] = *p.Active, *p.Active
		}
		rolesChanged := p.Roles != nil && !slices.Equal(roles, cur.Roles)
		if rolesChanged {
			if isSelf(actor, id) {
				return ErrSelfChange.WithField("roles")
			}
			if err := s.canManage(actor, roles); err != nil {
				return err
			}
			next.Roles, changes["roles"] = roles, roles
		}
		if len(changes) == 0 {
			out, err = s.withPhone(cur)
			return err
		}
		next.UpdatedAt = s.clock()
		if err := updateStaff(ctx, tx, next); err != nil {
			return fmt.Errorf("update staff %s: %w", id, err)
		}
		if rolesChanged {
			if err := setRoles(ctx, tx, id, roles); err != nil {
				return fmt.Errorf("set roles of staff %s: %w", id, err)
			}
		}
		got, err := getStaff(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("read staff %s: %w", id, err)
		}
		if out, err = s.withPhone(got); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, ActionStaffUpdate, "staff:"+id, changes)
	})
	return out, err
}

// manageable reads an account the actor may manage (StaffEdit over its division and every
// role it holds).
func (s *Service) manageable(ctx context.Context, actor authz.Subject, id string) (staffRow, error) {
	cur, err := getStaff(ctx, s.d, id)
	if isNoRow(err) {
		return cur, i18n.ErrNotFound
	}
	if err != nil {
		return cur, fmt.Errorf("read staff %s: %w", id, err)
	}
	if err := s.policy.Authorize(actor, authz.StaffEdit, cur.DivisionCode); err != nil {
		return cur, err
	}
	return cur, s.canManage(actor, cur.Roles)
}

// ResetPassword sets a new password chosen by an administrator; the holder must change it
// at the next login. It also lifts any lock.
func (s *Service) ResetPassword(ctx context.Context, actor authz.Subject, id, password string) error {
	cur, err := s.manageable(ctx, actor, id)
	if err != nil {
		return err
	}
	if err := ValidatePassword(cur.Username, password); err != nil {
		return err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := setPassword(ctx, tx, id, h, true, s.clock()); err != nil {
			return fmt.Errorf("reset password of staff %s: %w", id, err)
		}
		return s.record(ctx, tx, actor, ActionPasswordReset, "staff:"+id, map[string]any{"username": cur.Username})
	})
}

// Unlock lifts a login lock and clears the failure count.
func (s *Service) Unlock(ctx context.Context, actor authz.Subject, id string) error {
	cur, err := s.manageable(ctx, actor, id)
	if err != nil {
		return err
	}
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := setLoginState(ctx, tx, id, 0, nil); err != nil {
			return fmt.Errorf("unlock staff %s: %w", id, err)
		}
		return s.record(ctx, tx, actor, ActionStaffUnlock, "staff:"+id, map[string]any{"username": cur.Username})
	})
}

// ErrOldPassword is the answer to a wrong current password in ChangePassword; it counts
// as a failed login.
var ErrOldPassword = &i18n.Error{Code: "org.old_password", Status: http.StatusBadRequest, Field: "old_password",
	Msg: i18n.T("原密码不正确；连续失败多次后账户将被临时锁定", "the current password is wrong; after repeated failures the account is locked for a while")}

// ChangePassword lets a staff member replace their own password, proving the current one.
func (s *Service) ChangePassword(ctx context.Context, actor authz.Subject, oldPassword, newPassword string) error {
	if actor.Kind != authz.Staff || actor.ID == "" {
		return i18n.ErrUnauthorized
	}
	cur, err := getStaff(ctx, s.d, actor.ID)
	if isNoRow(err) {
		return i18n.ErrUnauthorized
	}
	if err != nil {
		return fmt.Errorf("read staff %s: %w", actor.ID, err)
	}
	if !cur.Active {
		return ErrInactive
	}
	now := s.clock()
	ok, err := s.verify(ctx, cur.hash, oldPassword)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if !ok || locked(cur.Staff, now) {
		st := loginState{id: cur.ID, hash: cur.hash, active: cur.Active, failed: cur.FailedLogins, lockedUntil: cur.LockedUntil}
		if err := s.recordFailure(ctx, st, cur.Username, now, "wrong_old_password"); err != nil {
			return err
		}
		return ErrOldPassword
	}
	if err := ValidatePassword(cur.Username, newPassword); err != nil {
		return err
	}
	if newPassword == oldPassword {
		return invalid("password", "org.password.unchanged", "新密码不能与原密码相同", "the new password must differ from the current one")
	}
	h, err := s.hash(ctx, newPassword)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := setPassword(ctx, tx, cur.ID, h, false, now); err != nil {
			return fmt.Errorf("change password of staff %s: %w", cur.ID, err)
		}
		return s.record(ctx, tx, actor, ActionPasswordChange, "staff:"+cur.ID, map[string]any{"username": cur.Username})
	})
}

// GetStaff returns an account: one's own always, others with OrgRead over their division.
// The phone number is in full for the holder and for an actor who may edit the account
// (see mayEdit), masked (138****5678) for other readers.
func (s *Service) GetStaff(ctx context.Context, actor authz.Subject, id string) (Staff, error) {
	cur, err := getStaff(ctx, s.d, id)
	if isNoRow(err) {
		return Staff{}, i18n.ErrNotFound
	}
	if err != nil {
		return Staff{}, fmt.Errorf("get staff %s: %w", id, err)
	}
	self := isSelf(actor, id)
	if !self {
		if err := s.policy.Authorize(actor, authz.OrgRead, cur.DivisionCode); err != nil {
			return Staff{}, err
		}
	}
	out, err := s.withPhone(cur)
	if err != nil {
		return Staff{}, err
	}
	if !self && !s.mayEdit(actor, cur) {
		out.Phone = ids.MaskMobile(out.Phone)
	}
	return out, nil
}

// ListStaff lists accounts within the actor's scope, filtered in SQL, phone numbers masked.
func (s *Service) ListStaff(ctx context.Context, actor authz.Subject, f StaffFilter) ([]Staff, error) {
	f.Division = strings.TrimSpace(f.Division)
	if err := s.listRoot(actor, f.Division); err != nil {
		return nil, err
	}
	rows, err := listStaff(ctx, s.d, actor.Division, f)
	if err != nil {
		return nil, err
	}
	out := make([]Staff, len(rows))
	for i, r := range rows {
		if out[i], err = s.withPhone(r); err != nil {
			return nil, err
		}
		out[i].Phone = ids.MaskMobile(out[i].Phone)
	}
	return out, nil
}

// Subject rebuilds the subject of a staff account from the database, refusing disabled or
// deleted accounts: the session layer calls it so role changes and disabling take effect.
func (s *Service) Subject(ctx context.Context, id string) (authz.Subject, error) {
	cur, err := getStaff(ctx, s.d, id)
	if isNoRow(err) {
		return authz.Subject{}, i18n.ErrUnauthorized
	}
	if err != nil {
		return authz.Subject{}, fmt.Errorf("read staff %s: %w", id, err)
	}
	if !cur.Active {
		return authz.Subject{}, ErrInactive
	}
	return subjectOf(cur.Staff), nil
}

func subjectOf(st Staff) authz.Subject {
	return authz.Subject{Kind: authz.Staff, ID: st.ID, Name: st.Name, Division: st.DivisionCode, Dept: st.DepartmentID,
		Roles: slices.Clone(st.Roles), PasswordChangeRequired: st.MustChangePassword}
}

// ---- login ----

func locked(st Staff, now time.Time) bool {
	return st.LockedUntil != nil && now.Before(*st.LockedUntil)
}

func (st loginState) locked(now time.Time) bool {
	return st.lockedUntil != nil && now.Before(*st.lockedUntil)
}

// Authenticate checks a staff login at time now. Every failure — unknown user, wrong
// password, locked account — returns ErrBadCredentials after the same work (one lookup, one
// Argon2 verification, one accounting statement), so neither the answer nor its timing tells
// whether an account exists. LockAfter consecutive failures lock the account (see
// lockDuration); success resets the count. A disabled account is refused with ErrInactive,
// but only after the right password.
func (s *Service) Authenticate(ctx context.Context, username, password string, now time.Time) (authz.Subject, error) {
	now = db.Now(now)
	uname := normalizeUsername(username)
	var st loginState
	found := false
	if usernameOK(uname) {
		r, err := getLoginState(ctx, s.d, "username", uname)
		switch {
		case err == nil:
			st, found = r, true
		case !isNoRow(err):
			return authz.Subject{}, fmt.Errorf("authenticate: %w", err)
		}
	}
	hash := s.dummy
	tooLong := utf8.RuneCountInString(password) > MaxPasswordLen
	if found && !tooLong {
		hash = st.hash
	}
	if tooLong {
		password = string([]rune(password)[:MaxPasswordLen]) // never valid; costs what others cost
	}
	ok, err := s.verify(ctx, hash, password) // always run: equal work on every path
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return authz.Subject{}, err
	}
	ok = ok && err == nil && found && !tooLong

	if !found || !ok || st.locked(now) {
		reason := "wrong_password"
		switch {
		case !found:
			reason = "unknown_user"
		case err != nil:
			reason = "bad_hash" // a corrupt row: refuse, and say so in the audit log
		}
		if err := s.recordFailure(ctx, st, uname, now, reason); err != nil {
			return authz.Subject{}, err
		}
		return authz.Subject{}, ErrBadCredentials
	}
	if !st.active {
		err := s.d.InTx(ctx, func(tx *db.Tx) error {
			return s.record(ctx, tx, authz.Subject{}, ActionLoginFailed, "staff:"+st.id,
				map[string]any{"username": uname, "reason": "inactive"})
		})
		if err != nil {
			return authz.Subject{}, fmt.Errorf("record refused login: %w", err)
		}
		return authz.Subject{}, ErrInactive
	}

	newHash := ""
	if NeedsRehash(st.hash, s.argon) {
		if newHash, err = s.hash(ctx, password); err != nil {
			return authz.Subject{}, fmt.Errorf("rehash password: %w", err)
		}
	}
	var sub authz.Subject
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := lockStaffRow(ctx, tx, st.id); err != nil {
			return fmt.Errorf("lock staff %s: %w", st.id, err)
		}
		cur, err := getStaff(ctx, tx, st.id)
		if err != nil {
			return fmt.Errorf("read staff %s: %w", st.id, err)
		}
		// A concurrent request may have locked, disabled or re-keyed the account meanwhile.
		if locked(cur.Staff, now) || cur.hash != st.hash {
			return ErrBadCredentials
		}
		if !cur.Active {
			return ErrInactive
		}
		if _, err := tx.Exec(ctx, `UPDATE staff SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?`,
			now, st.id); err != nil {
			return fmt.Errorf("record login of staff %s: %w", st.id, err)
		}
		if newHash != "" {
			if _, err := tx.Exec(ctx, `UPDATE staff SET password_hash = ? WHERE id = ?`, newHash, st.id); err != nil {
				return fmt.Errorf("rehash password of staff %s: %w", st.id, err)
			}
		}
		sub = subjectOf(cur.Staff)
		detail := map[string]any{"username": uname}
		if newHash != "" {
			detail["rehashed"] = true
		}
		return s.record(ctx, tx, sub, ActionLogin, "staff:"+st.id, detail)
	})
	if err != nil {
		return authz.Subject{}, err
	}
	return sub, nil
}

// recordFailure counts a failed login of the account whose state was read as st (zero for
// an unknown username) in its own transaction, locks it when the count reaches LockAfter,
// and audits both. Failures while locked are audited but not counted. The count is written
// with one compare-and-set statement, which the unknown-user path runs too (matching no
// row), so both paths do the same database work.
func (s *Service) recordFailure(ctx context.Context, st loginState, username string, now time.Time, reason string) error {
	object := "staff:" + st.id
	if st.id == "" {
		object = "username:" + truncate(username, 64)
	}
	fail := func(tx *db.Tx, detail map[string]any) error {
		detail["username"] = username
		return s.record(ctx, tx, authz.Subject{}, ActionLoginFailed, object, detail)
	}
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		cur := st
		for attempt := 0; ; attempt++ {
			if cur.locked(now) {
				// Not counted; the statement matching no row keeps the work equal to other paths.
				if _, err := casLoginState(ctx, tx, "", 0, 0, nil); err != nil {
					return err
				}
				return fail(tx, map[string]any{"reason": "locked", "locked_until": *cur.lockedUntil})
			}
			failed := cur.failed + 1
			var until *time.Time
			if failed >= LockAfter {
				t := now.Add(lockDuration(failed))
				until = &t
			}
			done, err := casLoginState(ctx, tx, cur.id, cur.failed, failed, until)
			if err != nil {
				return err
			}
			if cur.id == "" {
				return fail(tx, map[string]any{"reason": reason})
			}
			if done {
				if err := fail(tx, map[string]any{"reason": reason, "failures": failed}); err != nil || until == nil {
					return err
				}
				return s.record(ctx, tx, authz.Subject{}, ActionLocked, object,
					map[string]any{"username": username, "failures": failed, "locked_until": *until})
			}
			// Another login changed the count meanwhile: read it again and retry.
			if attempt == 3 {
				return errors.New("failed-login count keeps changing")
			}
			if cur, err = getLoginState(ctx, tx, "id", st.id); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// ---- bootstrap ----

// BootstrapActor is the subject recorded for BootstrapAdmin (`dgov admin create-admin`).
var BootstrapActor = authz.Subject{Kind: authz.System, ID: "bootstrap", Name: "dgov admin create-admin", Division: "140000"}

// BootstrapAdmin creates the first system administrator, in the provincial department
// BootstrapDepartment (created if missing). It works only while no active sysadmin exists
// (first start, or recovery when every one is disabled); further administrators are created
// by a sysadmin through CreateStaff.
func (s *Service) BootstrapAdmin(ctx context.Context, username, name, password string) (Staff, error) {
	row, err := s.cleanStaff(StaffInput{Username: username, Name: name, Password: password, Roles: []authz.Role{authz.RoleSysAdmin}})
	if err != nil {
		return Staff{}, err
	}
	if _, err := getDivision(ctx, s.d, BootstrapDepartment.DivisionCode); isNoRow(err) {
		if _, err := s.SyncDivisions(ctx); err != nil {
			return Staff{}, err
		}
	} else if err != nil {
		return Staff{}, fmt.Errorf("read province division: %w", err)
	}
	if n, err := countActiveRole(ctx, s.d, authz.RoleSysAdmin); err != nil {
		return Staff{}, fmt.Errorf("count administrators: %w", err)
	} else if n > 0 {
		return Staff{}, ErrAdminExists
	}
	if row.hash, err = s.hash(ctx, password); err != nil {
		return Staff{}, fmt.Errorf("hash password: %w", err)
	}
	var out Staff
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		in := BootstrapDepartment
		dep, err := getDepartmentByCode(ctx, tx, in.DivisionCode, in.Code)
		if isNoRow(err) {
			clean, err := s.cleanDepartment(in)
			if err != nil {
				return err
			}
			if dep, err = s.createDepartment(ctx, tx, BootstrapActor, clean); err != nil {
				return err
			}
		} else if err != nil {
			return fmt.Errorf("read bootstrap department: %w", err)
		}
		// Take the department's row lock so two concurrent bootstraps serialise here and
		// the second sees the first one's administrator.
		if _, err := tx.Exec(ctx, `UPDATE departments SET updated_at = updated_at WHERE id = ?`, dep.ID); err != nil {
			return fmt.Errorf("lock bootstrap department: %w", err)
		}
		if n, err := countActiveRole(ctx, tx, authz.RoleSysAdmin); err != nil {
			return fmt.Errorf("count administrators: %w", err)
		} else if n > 0 {
			return ErrAdminExists
		}
		out, err = s.createStaff(ctx, tx, BootstrapActor, row, dep, map[string]any{"bootstrap": true})
		return err
	})
	return out, err
}

// Counts are the public figures the portal shows: how many divisions and active departments
// the platform covers. They name no one and need no authorization.
type Counts struct {
	Divisions   int `json:"divisions"`
	Departments int `json:"departments"`
}

// CountPublic returns Counts.
func (s *Service) CountPublic(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.d.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM divisions), (SELECT COUNT(*) FROM departments WHERE active = ?)`, true).
		Scan(&c.Divisions, &c.Departments)
	if err != nil {
		return Counts{}, fmt.Errorf("count divisions and departments: %w", err)
	}
	return c, nil
}

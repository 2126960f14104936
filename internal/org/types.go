// Package org is dgov's organisation model (F2): administrative divisions (GB/T 2260),
// departments within them, staff accounts with their roles, and staff login.
//
// Authorization is the platform's deny-by-default rule: an actor works on departments and
// staff only within its own division (a county admin in the county; a city admin in the city
// and its counties; the province everywhere). Lists are filtered in SQL through the
// division_ancestors closure table, which SyncDivisions derives from the parent chain.
package org

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Department is a government body (部门) of one division, e.g. 太原市市场监督管理局.
type Department struct {
	ID           string    `json:"id"`
	DivisionCode string    `json:"division_code"`
	DivisionName string    `json:"division_name"` // filled on reads
	Code         string    `json:"code"`          // unique within the division, e.g. "scjg"
	Name         string    `json:"name"`          // e.g. 太原市市场监督管理局
	ShortName    string    `json:"short_name"`    // e.g. 市市场监管局
	Kind         string    `json:"kind"`          // e.g. 市场监督管理局
	ParentID     string    `json:"parent_id"`     // "" when none
	Active       bool      `json:"active"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// DepartmentInput creates a department.
type DepartmentInput struct {
	DivisionCode string
	Code         string
	Name         string
	ShortName    string
	Kind         string
	ParentID     string
}

// DepartmentPatch changes a department; nil fields stay as they are. The division of a
// department never changes (its staff and records belong to that division): make a new one.
type DepartmentPatch struct {
	Code      *string
	Name      *string
	ShortName *string
	Kind      *string
	ParentID  *string // pointer to "" removes the parent
	Active    *bool
}

// DepartmentFilter selects departments. Only departments within the actor's scope are ever
// returned. Division "" means the actor's whole scope; otherwise that division alone, or with
// everything below it when IncludeSub is set.
type DepartmentFilter struct {
	Division   string
	IncludeSub bool
	Query      string // substring of name, short name or code
	ActiveOnly bool
	Limit      int // default 100, at most 1000
	Offset     int
}

// Staff is a staff account (公务人员账号). The password hash never leaves the package.
//
// Phone is personal data, stored SM4-encrypted: the normalised 11-digit mobile number, or
// "" when none. ListStaff masks it (138****5678); GetStaff shows it in full only to the
// holder and to whoever may edit the account, and masked to other readers.
type Staff struct {
	ID                 string       `json:"id"`
	Username           string       `json:"username"` // lower-case
	Name               string       `json:"name"`
	DepartmentID       string       `json:"department_id"`
	DepartmentName     string       `json:"department_name"` // filled on reads
	DivisionCode       string       `json:"division_code"`   // the department's division: the account's scope
	Phone              string       `json:"phone"`
	Roles              []authz.Role `json:"roles"`
	MustChangePassword bool         `json:"must_change_password"`
	Active             bool         `json:"active"`
	FailedLogins       int          `json:"failed_logins"`
	LockedUntil        *time.Time   `json:"locked_until"`
	CreatedAt          time.Time    `json:"created_at"`
	UpdatedAt          time.Time    `json:"updated_at"`
	LastLoginAt        *time.Time   `json:"last_login_at"`
}

// StaffInput creates a staff account. The division comes from the department.
type StaffInput struct {
	Username     string
	Name         string
	DepartmentID string
	Phone        string // a mainland mobile number in any form ids.ValidateMobile accepts; "" for none
	Roles        []authz.Role
	Password     string // initial password; the holder must change it at first login
}

// StaffPatch changes a staff account; nil fields stay as they are.
type StaffPatch struct {
	Name         *string
	DepartmentID *string
	Phone        *string // pointer to "" removes the number
	Active       *bool
	Roles        *[]authz.Role // the complete new set
}

// StaffFilter selects staff, like DepartmentFilter.
type StaffFilter struct {
	Division     string
	IncludeSub   bool
	DepartmentID string
	Role         authz.Role
	Query        string // substring of username or name
	ActiveOnly   bool
	Limit        int
	Offset       int
}

// AuditFunc records one event inside the transaction that makes the change, so the change
// and its audit entry commit or roll back together. A returned error aborts the change.
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Audit actions.
const (
	ActionDepartmentCreate = "org.department.create"
	ActionDepartmentUpdate = "org.department.update"
	ActionStaffCreate      = "org.staff.create"
	ActionStaffUpdate      = "org.staff.update"
	ActionPasswordReset    = "org.staff.reset_password"
	ActionPasswordChange   = "org.staff.change_password"
	ActionStaffUnlock      = "org.staff.unlock"
	ActionLogin            = "auth.login"
	ActionLoginFailed      = "auth.login_failed"
	ActionLocked           = "auth.locked"
)

// Options configures a Service.
type Options struct {
	// Argon is the password hashing cost; the zero value means DefaultArgon. Tests pass
	// cheap parameters; production must not.
	Argon ArgonParams
	// Audit, when set, is called inside the transaction of every change and login event.
	Audit AuditFunc
	// Now is the clock for created/updated times; default time.Now.
	Now func() time.Time
	// MaxHashing bounds concurrent Argon2 computations (each takes Argon.Memory);
	// default GOMAXPROCS.
	MaxHashing int
	// Fields encrypts the personal-data fields of staff accounts (the phone number) and
	// computes their blind indexes: pass Keyring.FieldCipher(). Without it, writing or
	// reading a phone number fails with ErrNoFieldCipher; accounts without one still work.
	Fields *crypto.FieldCipher
}

// IndexMobile is the blind-index kind of phone numbers (staff.phone_idx): the kind the base
// libraries use for mobiles, so that one lookup value serves both.
const IndexMobile = "mobile"

// ErrNoFieldCipher is returned when a phone number is to be sealed or opened but the
// service was built without Options.Fields: a wiring mistake, not bad input.
var ErrNoFieldCipher = errors.New("org: no field cipher configured")

// Lockout after consecutive failed logins: LockAfter failures lock the account for
// LockBase, each further failure doubles the lock, up to LockMax. Failures while locked are
// refused without being counted, so the lock cannot be stretched by hammering.
const (
	LockAfter = 5
	LockBase  = 15 * time.Minute
	LockMax   = 24 * time.Hour
)

// lockDuration is the lock after the n-th consecutive failure (n >= LockAfter).
func lockDuration(n int) time.Duration {
	d := LockBase
	for i := LockAfter; i < n && d < LockMax; i++ {
		d *= 2
	}
	return min(d, LockMax)
}

// Errors of this package. Out-of-scope actions return i18n.ErrForbidden itself.
var (
	// ErrBadCredentials answers every failed login alike — unknown user, wrong password,
	// locked account — so the answer tells nothing about which accounts exist.
	ErrBadCredentials = &i18n.Error{Code: "org.bad_credentials", Status: http.StatusUnauthorized,
		Msg: i18n.T("用户名或密码错误；连续失败多次后账户将被临时锁定",
			"wrong username or password; after repeated failures the account is locked for a while")}
	ErrInactive = &i18n.Error{Code: "org.account_inactive", Status: http.StatusForbidden,
		Msg: i18n.T("账户已停用，请联系管理员", "this account is disabled; contact your administrator")}
	ErrUsernameTaken = &i18n.Error{Code: "org.username_taken", Status: http.StatusConflict, Field: "username",
		Msg: i18n.T("用户名已被使用", "username already taken")}
	ErrDepartmentCodeTaken = &i18n.Error{Code: "org.department_code_taken", Status: http.StatusConflict, Field: "code",
		Msg: i18n.T("该行政区划内部门编码已被使用", "this department code is already used in the division")}
	ErrRoleNotHeld = &i18n.Error{Code: "org.role_not_held", Status: http.StatusForbidden, Field: "roles",
		Msg: i18n.T("不能授予、收回或管理超出自身权限的角色", "you cannot grant, revoke or manage a role beyond your own")}
	ErrSelfChange = &i18n.Error{Code: "org.self_change", Status: http.StatusForbidden,
		Msg: i18n.T("不能修改自己的角色或停用自己的账户", "you cannot change your own roles or disable your own account")}
	ErrAdminExists = &i18n.Error{Code: "org.admin_exists", Status: http.StatusConflict,
		Msg: i18n.T("已存在系统管理员；请由系统管理员在控制台创建其他管理员",
			"a system administrator already exists; further administrators are created by one in the console")}
)

// invalid is a bad-request error about one input field.
func invalid(field, code, zh, en string) *i18n.Error {
	return &i18n.Error{Code: code, Status: http.StatusBadRequest, Field: field, Msg: i18n.T(zh, en)}
}

// DepartmentKind is a standard department that exists at province and city level.
type DepartmentKind struct {
	Code     string // department code within a division, e.g. "scjg"
	Kind     string // generic kind, stored in departments.kind
	Province string // name form at province level, after the province name
	City     string // name form at city (and county) level, after the division name
	EN       string
}

// NameIn returns the department's full name in division d, e.g. 山西省公安厅, 太原市公安局.
func (k DepartmentKind) NameIn(d divisions.Division) string {
	if d.Level == divisions.Province {
		return d.Name + k.Province
	}
	return d.Name + k.City
}

// DepartmentKinds are the standard departments the demo creates at province and city level.
// Shanxi's cities concentrate licensing in 行政审批服务管理局 (相对集中行政许可权改革), beside
// the 政务服务管理局 that runs the service halls.
var DepartmentKinds = []DepartmentKind{
	{Code: "zwfw", Kind: "政务服务管理局", Province: "政务服务管理局", City: "政务服务管理局", EN: "Government Services Administration"},
	{Code: "xzsp", Kind: "行政审批服务管理局", Province: "行政审批服务管理局", City: "行政审批服务管理局", EN: "Administrative Approval Services Bureau"},
	{Code: "scjg", Kind: "市场监督管理局", Province: "市场监督管理局", City: "市场监督管理局", EN: "Administration for Market Regulation"},
	{Code: "ga", Kind: "公安", Province: "公安厅", City: "公安局", EN: "Public Security"},
	{Code: "rs", Kind: "人力资源和社会保障", Province: "人力资源和社会保障厅", City: "人力资源和社会保障局", EN: "Human Resources and Social Security"},
	// Several Shanxi cities name theirs 规划和自然资源局; the demo uses the generic form.
	{Code: "zr", Kind: "自然资源", Province: "自然资源厅", City: "自然资源局", EN: "Natural Resources"},
	{Code: "wj", Kind: "卫生健康委员会", Province: "卫生健康委员会", City: "卫生健康委员会", EN: "Health Commission"},
	{Code: "mz", Kind: "民政", Province: "民政厅", City: "民政局", EN: "Civil Affairs"},
	{Code: "jy", Kind: "教育", Province: "教育厅", City: "教育局", EN: "Education"},
	{Code: "yb", Kind: "医疗保障局", Province: "医疗保障局", City: "医疗保障局", EN: "Healthcare Security Administration"},
}

// BootstrapDepartment is where BootstrapAdmin puts the first administrator.
var BootstrapDepartment = DepartmentInput{
	DivisionCode: "140000", Code: "zwfw", Name: "山西省政务服务管理局", ShortName: "省政务服务管理局", Kind: "政务服务管理局",
}

// Package authz is dgov's deny-by-default authorization: a subject may do an action on a
// record only when one of its roles grants the permission AND the record's division lies
// within the subject's division (a county officer acts in the county; a city officer in the
// city and its counties; the province everywhere). Every engine asks here; nothing is allowed
// by omission.
package authz

import (
	"context"
	"sort"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Kind is who a subject is.
type Kind string

const (
	Staff      Kind = "staff"      // 公务人员
	Citizen    Kind = "citizen"    // 自然人
	Enterprise Kind = "enterprise" // 法人
	System     Kind = "system"     // a registered system client
)

// Permission names one thing that may be done.
type Permission string

// Foundation permissions; engines add their own to a Policy with Grant.
const (
	OrgRead        Permission = "org.read"
	DepartmentEdit Permission = "org.department.edit"
	StaffEdit      Permission = "org.staff.edit"
	AuditRead      Permission = "audit.read"
	AuditVerify    Permission = "audit.verify"
	KeysAdmin      Permission = "admin.keys"
	// ClientsEdit registers and manages applications at the OpenID provider (per department).
	ClientsEdit Permission = "oidc.client.edit"
)

// Role is a named set of permissions held by a staff member in their division.
type Role string

const (
	RoleSysAdmin Role = "sysadmin" // 系统管理员
	RoleOrgAdmin Role = "orgadmin" // 组织管理员
	RoleAuditor  Role = "auditor"  // 安全审计员
	RoleOfficer  Role = "officer"  // 业务经办人员
)

// RoleNames are the roles' display names.
var RoleNames = map[Role]i18n.Text{
	RoleSysAdmin: i18n.T("系统管理员", "System administrator"),
	RoleOrgAdmin: i18n.T("组织管理员", "Organisation administrator"),
	RoleAuditor:  i18n.T("安全审计员", "Security auditor"),
	RoleOfficer:  i18n.T("业务经办人员", "Officer"),
}

// Subject is who is acting.
type Subject struct {
	Kind     Kind
	ID       string
	Name     string
	Division string // GB/T 2260 code of the subject's scope
	Dept     string // department id, for staff
	Roles    []Role
	// PasswordChangeRequired is set while a staff account still has the initial password an
	// administrator chose: surfaces let it do nothing but change it.
	PasswordChangeRequired bool
}

// String identifies the subject in audit entries ("staff:<id>").
func (s Subject) String() string {
	if s.Kind == "" {
		return "anonymous"
	}
	return string(s.Kind) + ":" + s.ID
}

// Has reports whether the subject holds role r.
func (s Subject) Has(r Role) bool {
	for _, x := range s.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Policy maps roles to permissions and knows how divisions nest.
type Policy struct {
	grants map[Role]map[Permission]bool
	// Contains reports whether division inner lies within (or equals) outer.
	Contains func(outer, inner string) bool
}

// NewPolicy returns the foundation policy. Separation of duties: the auditor reads and
// verifies the audit log but cannot edit organisation data; administrators cannot verify
// away their own traces (they can read the log, not verify it on the auditor's behalf).
func NewPolicy(contains func(outer, inner string) bool) *Policy {
	p := &Policy{grants: map[Role]map[Permission]bool{}, Contains: contains}
	p.Grant(RoleSysAdmin, OrgRead, DepartmentEdit, StaffEdit, AuditRead, KeysAdmin, ClientsEdit)
	p.Grant(RoleOrgAdmin, OrgRead, DepartmentEdit, StaffEdit, ClientsEdit)
	p.Grant(RoleAuditor, OrgRead, AuditRead, AuditVerify)
	p.Grant(RoleOfficer, OrgRead)
	return p
}

// Grant adds permissions to a role (engines register theirs at wiring time).
func (p *Policy) Grant(r Role, perms ...Permission) {
	if p.grants[r] == nil {
		p.grants[r] = map[Permission]bool{}
	}
	for _, x := range perms {
		p.grants[r][x] = true
	}
}

// Permissions lists what a role may do, sorted.
func (p *Policy) Permissions(r Role) []Permission {
	var out []Permission
	for x := range p.grants[r] {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Allowed reports whether s may use perm on a record in division.
func (p *Policy) Allowed(s Subject, perm Permission, division string) bool {
	if s.Kind != Staff && s.Kind != System {
		return false // citizens and enterprises act on their own records only: see Owner
	}
	if s.Division == "" || division == "" || p.Contains == nil || !p.Contains(s.Division, division) {
		return false
	}
	for _, r := range s.Roles {
		if p.grants[r][perm] {
			return true
		}
	}
	return false
}

// Authorize returns nil when allowed and the forbidden error otherwise.
func (p *Policy) Authorize(s Subject, perm Permission, division string) error {
	if s.Kind == "" {
		return i18n.ErrUnauthorized
	}
	if !p.Allowed(s, perm, division) {
		return i18n.ErrForbidden
	}
	return nil
}

// Owner allows a citizen or enterprise to act only on records whose owner is themselves.
func Owner(s Subject, ownerKind Kind, ownerID string) error {
	if s.Kind == "" {
		return i18n.ErrUnauthorized
	}
	if s.Kind != ownerKind || s.ID != ownerID || ownerID == "" {
		return i18n.ErrForbidden
	}
	return nil
}

type ctxKey struct{}

// WithSubject puts the acting subject in ctx.
func WithSubject(ctx context.Context, s Subject) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// SubjectFrom returns the acting subject (the zero Subject — anonymous — when none).
func SubjectFrom(ctx context.Context) Subject {
	s, _ := ctx.Value(ctxKey{}).(Subject)
	return s
}

// Package exchange is data sharing and exchange (共享交换, issue D4) after
// 《政务信息资源共享管理暂行办法》(国发〔2016〕51号): a consuming department applies for a
// catalogue resource, naming the data items and the purpose; resources shared unconditionally
// (无条件共享) are granted at once, those shared on conditions (有条件共享) wait for the
// provider's answer within a limit of working days (10 by the national rule, configurable:
// Shanxi's own rules are shorter), and a refusal must give its reasons; resources not shared
// (不予共享) are refused with their stated basis.
//
// An approval issues a Grant: the resource, the items, a row scope (the consumer's division),
// a rate and a daily quota, and the OpenID client of the consumer's system (BindClient).
// The Gateway serves grants to those clients at /api/v1/exchange/…: items outside the grant
// never leave, rows outside the scope never leave, every call is logged (exchange_access and
// the audit log, in one transaction) and every answer carries an SM2-signed receipt that
// either side can check offline (VerifyReceipt).
//
// Large pulls are bulk file extracts (extract.go): asked for on the gateway under the same
// rules, written by a job into the blob store, downloaded with a receipt over the file.
//
// Each department has a responsibility list (责任清单): what it must provide, to whom, by
// when, with overdue requests flagged. Citizens see who read their records (ReadsOf): every
// lookup, query and extract that returned their row, found by the blind index of their ID
// number even where the number itself left masked.
//
// A resource reaches the gateway through a binding to the dataset that holds its rows, or
// that forwards to the provider's own API (Attach); the resource's data items are the
// dataset's columns of the same names.
package exchange

import (
	"context"
	"embed"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the exchange's tables. They reference no other engine's tables.
var Migrations = db.Migrations("exchange", migrationFiles, "migrations")

// Permissions of the exchange.
const (
	// PermApply applies for resources on behalf of the holder's own department.
	PermApply authz.Permission = "exchange.apply"
	// PermDecide answers requests addressed to the holder's own department, and revokes its grants.
	PermDecide authz.Permission = "exchange.decide"
	// PermPublish attaches a dataset of the holder's department to its catalogue resource.
	PermPublish authz.Permission = "exchange.publish"
	// PermBind binds a grant of the holder's department to one of its OpenID system clients.
	PermBind authz.Permission = "exchange.bind"
	// PermRead lists requests, grants, responsibility lists and access logs within the holder's division.
	PermRead authz.Permission = "exchange.read"
)

// RegisterPermissions gives the exchange's permissions to the foundation roles: officers apply,
// answer, attach datasets and read; organisation administrators also bind system clients (they
// register those clients at the OpenID provider); auditors and system administrators read.
func RegisterPermissions(p *authz.Policy) {
	p.Grant(authz.RoleOfficer, PermApply, PermDecide, PermPublish, PermRead)
	p.Grant(authz.RoleOrgAdmin, PermApply, PermDecide, PermPublish, PermBind, PermRead)
	p.Grant(authz.RoleAuditor, PermRead)
	p.Grant(authz.RoleSysAdmin, PermRead)
}

// Status is where a sharing request stands.
type Status string

const (
	StatusPending   Status = "pending"   // 待答复
	StatusApproved  Status = "approved"  // 已同意
	StatusRefused   Status = "refused"   // 不予共享
	StatusWithdrawn Status = "withdrawn" // 已撤回
	StatusExpired   Status = "expired"   // 已过期: unanswered long past its deadline (Options.ExpireAfterWorkdays)
)

// StatusNames are the statuses' display names.
var StatusNames = map[Status]i18n.Text{
	StatusPending:   i18n.T("待答复", "pending"),
	StatusApproved:  i18n.T("已同意", "approved"),
	StatusRefused:   i18n.T("不予共享", "refused"),
	StatusWithdrawn: i18n.T("已撤回", "withdrawn"),
	StatusExpired:   i18n.T("已过期", "expired"),
}

// SharingRequest is one application (共享申请).
type SharingRequest struct {
	ID               string            `json:"id"`
	ResourceID       string            `json:"resource_id"`
	ResourceCode     string            `json:"resource_code"`
	ResourceName     string            `json:"resource_name"`
	ResourceVersion  int               `json:"resource_version"` // the catalogue version applied for
	ShareType        catalog.ShareType `json:"share_type"`
	ProviderDeptID   string            `json:"provider_dept_id"`
	ProviderDivision string            `json:"provider_division"`
	ConsumerDeptID   string            `json:"consumer_dept_id"`
	ConsumerDeptName string            `json:"consumer_dept_name"`
	ConsumerDivision string            `json:"consumer_division"`
	ClientID         string            `json:"client_id,omitempty"` // the consumer's system, if named at application
	Fields           []string          `json:"fields"`              // data-item names asked for
	Purpose          string            `json:"purpose"`             // 使用用途
	Status           Status            `json:"status"`
	Applicant        string            `json:"applicant"` // "staff:<id>"
	// DueAt is the deadline of the provider's answer: AddWorkdays(submission, the limit).
	// Set for conditional resources only.
	DueAt     *time.Time `json:"due_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"` // "staff:<id>", or "system" for automatic answers
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Reason    string     `json:"reason,omitempty"` // of a refusal (required), or the approval's note
	CreatedAt time.Time  `json:"created_at"`
	// Overdue: pending past DueAt (computed on read).
	Overdue bool `json:"overdue"`
}

// Grant is what a consumer may read on the gateway.
type Grant struct {
	ID               string   `json:"id"`
	RequestID        string   `json:"request_id"`
	ResourceID       string   `json:"resource_id"`
	ProviderDeptID   string   `json:"provider_dept_id"`
	ConsumerDeptID   string   `json:"consumer_dept_id"`
	ConsumerDeptName string   `json:"consumer_dept_name"`
	ConsumerDivision string   `json:"consumer_division"`
	ClientID         string   `json:"client_id"` // the consumer system's OpenID client id ("" until bound)
	Fields           []string `json:"fields"`
	// RowScope is the division whose rows the consumer sees (rows whose division column lies
	// within it); "" is every row. Default: the consumer's division, "" for the province.
	RowScope      string     `json:"row_scope"`
	RatePerMinute int        `json:"rate_per_minute"`
	DailyQuota    int        `json:"daily_quota"`
	ValidUntil    time.Time  `json:"valid_until"`
	Revoked       bool       `json:"revoked"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// Live reports whether the gateway honours g at now.
func (g Grant) Live(now time.Time) bool { return !g.Revoked && now.Before(g.ValidUntil) }

// Binding is the dataset serving a resource on the gateway.
type Binding struct {
	ResourceID     string    `json:"resource_id"`
	DatasetID      string    `json:"dataset_id"`
	DivisionColumn string    `json:"division_column"` // "" when rows are not divisional
	ProviderDeptID string    `json:"provider_dept_id"`
	BoundBy        string    `json:"bound_by"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Responsibility is one line of a department's responsibility list (责任清单).
type Responsibility struct {
	Kind             string    `json:"kind"` // "answer": a request to answer; "provide": a grant to serve
	RequestID        string    `json:"request_id"`
	GrantID          string    `json:"grant_id,omitempty"`
	ResourceID       string    `json:"resource_id"`
	ResourceName     string    `json:"resource_name"`
	ConsumerDeptID   string    `json:"consumer_dept_id"`
	ConsumerDeptName string    `json:"consumer_dept_name"`
	Fields           []string  `json:"fields"`
	Purpose          string    `json:"purpose"`
	Due              time.Time `json:"due"` // answer by (answer), serve until (provide)
	Overdue          bool      `json:"overdue"`
	Bound            bool      `json:"bound,omitempty"` // provide: a client is bound, the consumer can call
}

// Read is one gateway call that returned a citizen's record, for "who read my data".
type Read struct {
	At               time.Time `json:"at"`
	ConsumerDeptName string    `json:"consumer_dept_name"`
	Purpose          string    `json:"purpose"`
	Resource         string    `json:"resource"` // the resource's name
	ResourceID       string    `json:"resource_id"`
	Kind             string    `json:"kind"` // lookup, query, extract
}

// IndexResidentID is the blind-index kind of resident ID numbers in the access log. It is the
// kind the population library and citizen accounts use (baselib.IndexResidentID), so the
// index the portal holds for a citizen finds their reads directly.
const IndexResidentID = "resident_id"

// ---- what the exchange needs of other engines ----

// Resources is what the exchange needs of the catalogue; *catalog.Service has it.
type Resources interface {
	Get(ctx context.Context, actor authz.Subject, id string) (catalog.Resource, error)
	GetVersion(ctx context.Context, actor authz.Subject, id string, version int) (catalog.Resource, error)
}

// Departments is what the exchange needs of the organisation engine; *org.Service has it.
type Departments interface {
	GetDepartment(ctx context.Context, actor authz.Subject, id string) (org.Department, error)
}

// Datasets is what the exchange needs of the dataset engine; *dataset.Service has it.
type Datasets interface {
	Active(ctx context.Context, datasetID string) (dataset.Version, error)
	Lookup(ctx context.Context, datasetID, key string) (dataset.Row, error)
	Select(ctx context.Context, datasetID string, q dataset.QueryOptions) ([]dataset.Row, error)
	Scan(ctx context.Context, datasetID string, q dataset.QueryOptions, fn func(dataset.Row) error) (dataset.Version, error)
	Count(ctx context.Context, datasetID string, q dataset.QueryOptions) (int64, error)
	CheckQuery(ctx context.Context, datasetID string, q dataset.QueryOptions) error
}

// Auditor appends audit entries inside the caller's transaction; *audit.Log has it.
type Auditor interface {
	AppendTx(ctx context.Context, tx *db.Tx, e audit.Entry) (int64, error)
}

// ClientOwner names the department an OpenID client belongs to (the app adapts idp's
// clients), so a grant is only bound to a system of the consumer department.
type ClientOwner func(ctx context.Context, clientID string) (deptID string, err error)

// Options configures a Service.
type Options struct {
	// Calendar counts working days; default calendar.Default().
	Calendar *calendar.Calendar
	// AnswerWorkdays is the limit of a provider's answer to a conditional request, in working
	// days; default 10 (国发〔2016〕51号). Shanxi may set fewer.
	AnswerWorkdays int
	// ExpireAfterWorkdays: a request still unanswered this many working days after its
	// deadline expires (ExpireOverdue); 0 (default) keeps it pending — and overdue — until answered.
	ExpireAfterWorkdays int
	// Defaults of new grants; the provider may set others when approving.
	GrantValidity time.Duration // default 365 days
	RatePerMinute int           // default 600
	DailyQuota    int           // default 100 000
	// ClientOwner checks BindClient; nil skips the check (tests, single-department setups).
	ClientOwner ClientOwner
	Now         func() time.Time
}

// Audit actions.
const (
	ActionApply    = "exchange.request.apply"
	ActionApprove  = "exchange.request.approve"
	ActionRefuse   = "exchange.request.refuse"
	ActionWithdraw = "exchange.request.withdraw"
	ActionExpire   = "exchange.request.expire"
	ActionBind     = "exchange.grant.bind"
	ActionRevoke   = "exchange.grant.revoke"
	ActionAttach   = "exchange.resource.attach"
	ActionCall     = "exchange.call"
)

// Errors of this package. Out-of-scope actions return i18n.ErrForbidden itself.
var (
	ErrState = &i18n.Error{Code: "exchange.state", Status: http.StatusConflict,
		Msg: i18n.T("申请当前状态不允许此操作", "the request's status does not allow this")}
	ErrDuplicate = &i18n.Error{Code: "exchange.duplicate", Status: http.StatusConflict,
		Msg: i18n.T("本部门对该资源已有待答复的申请", "your department already has a pending request for this resource")}
	ErrOwnResource = &i18n.Error{Code: "exchange.own_resource", Status: http.StatusBadRequest, Field: "resource_id",
		Msg: i18n.T("不能申请本部门提供的资源", "you cannot apply for your own department's resource")}
	ErrReasonRequired = &i18n.Error{Code: "exchange.reason_required", Status: http.StatusBadRequest, Field: "reason",
		Msg: i18n.T("不予共享须说明理由", "a refusal must give its reasons")}
	ErrNotAttached = &i18n.Error{Code: "exchange.not_attached", Status: http.StatusNotFound,
		Msg: i18n.T("该资源尚未接入交换网关", "this resource is not served on the exchange gateway")}
	ErrClientTaken = &i18n.Error{Code: "exchange.client_taken", Status: http.StatusConflict, Field: "client_id",
		Msg: i18n.T("该应用已有此资源的有效授权", "this client already holds a live grant for this resource")}
	ErrClientOwner = &i18n.Error{Code: "exchange.client_owner", Status: http.StatusForbidden, Field: "client_id",
		Msg: i18n.T("该应用不属于使用部门", "this client does not belong to the consuming department")}
	ErrGrantRevoked = &i18n.Error{Code: "exchange.grant_revoked", Status: http.StatusConflict,
		Msg: i18n.T("授权已撤销", "the grant has been revoked")}
)

func invalid(field, code, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(http.StatusBadRequest, code, zh, en, args...).WithField(field)
}

// Service holds the exchange's rules.
type Service struct {
	d      *db.DB
	policy *authz.Policy
	res    Resources
	depts  Departments
	data   Datasets
	fc     *crypto.FieldCipher
	audit  Auditor
	opts   Options
}

// New returns the exchange service. policy must carry RegisterPermissions' grants; fc makes
// the blind indexes of the access log; aud records every decision and call.
func New(d *db.DB, policy *authz.Policy, res Resources, depts Departments, data Datasets, fc *crypto.FieldCipher, aud Auditor, opts Options) *Service {
	if opts.Calendar == nil {
		opts.Calendar = calendar.Default()
	}
	if opts.AnswerWorkdays <= 0 {
		opts.AnswerWorkdays = 10
	}
	if opts.GrantValidity <= 0 {
		opts.GrantValidity = 365 * 24 * time.Hour
	}
	if opts.RatePerMinute <= 0 {
		opts.RatePerMinute = 600
	}
	if opts.DailyQuota <= 0 {
		opts.DailyQuota = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{d: d, policy: policy, res: res, depts: depts, data: data, fc: fc, audit: aud, opts: opts}
}

func (s *Service) clock() time.Time { return db.Now(s.opts.Now()) }

// Calendar is the working-day calendar in use.
func (s *Service) Calendar() *calendar.Calendar { return s.opts.Calendar }

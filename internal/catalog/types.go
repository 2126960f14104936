// Package catalog is the government information resource catalog (政务信息资源目录, issue D1)
// after GB/T 21063 (政务信息资源目录体系): departments register their information resources
// with the core metadata of GB/T 21063.3, classified and coded after GB/T 21063.4 and the
// national 《政务信息资源目录编制指南（试行）》 (2017, "the guide").
//
// A resource lives as one working copy (draft → submitted → published, or back to draft on
// rejection) and a list of frozen versions: every approval writes a snapshot to
// catalog_versions and makes it the version in force. Revising a published resource starts a
// new draft while the published version stays in the catalog until the revision is approved.
//
// Each resource belongs to its provider department's division. The catalog of a division
// rolls up: a province-level list includes every city's and county's published resources
// (catalog_resource_divisions holds each resource's division and all its ancestors).
package catalog

import (
	"context"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Permissions of the catalog.
const (
	// PermRead reads the published catalog (every division's: the catalog is how departments
	// find what to request from one another, 《政务信息资源共享管理暂行办法》第十条).
	PermRead authz.Permission = "catalog.read"
	// PermEdit creates and revises drafts of departments within the holder's division.
	PermEdit authz.Permission = "catalog.edit"
	// PermReview approves, rejects and withdraws resources within the holder's division.
	PermReview authz.Permission = "catalog.review"
)

// RegisterPermissions gives the catalog's permissions to the foundation roles: officers
// register and revise their departments' resources; organisation administrators review and
// publish (never their own submission, see ErrSelfReview). Organisation administrators also
// hold PermEdit: org lets an administrator grant only roles whose permissions it holds, and
// administrators must keep being able to make officers.
func RegisterPermissions(p *authz.Policy) {
	p.Grant(authz.RoleOfficer, PermRead, PermEdit)
	p.Grant(authz.RoleOrgAdmin, PermRead, PermEdit, PermReview)
	p.Grant(authz.RoleSysAdmin, PermRead)
	p.Grant(authz.RoleAuditor, PermRead)
}

// Status is where a resource's working copy stands.
type Status string

const (
	StatusDraft     Status = "draft"     // 草稿
	StatusSubmitted Status = "submitted" // 待审核
	StatusPublished Status = "published" // 已发布
	StatusWithdrawn Status = "withdrawn" // 已撤销
)

// StatusNames are the statuses' display names.
var StatusNames = map[Status]i18n.Text{
	StatusDraft:     i18n.T("草稿", "draft"),
	StatusSubmitted: i18n.T("待审核", "submitted"),
	StatusPublished: i18n.T("已发布", "published"),
	StatusWithdrawn: i18n.T("已撤销", "withdrawn"),
}

// ShareType is the sharing attribute (共享类型) of the guide and 《政务信息资源共享管理暂行办法》第九条.
type ShareType int

const (
	ShareUnconditional ShareType = 1 // 无条件共享
	ShareConditional   ShareType = 2 // 有条件共享: the conditions must be given
	ShareNone          ShareType = 3 // 不予共享: the legal or policy basis must be given
)

// OpenType is the opening attribute (开放属性) toward the public.
type OpenType int

const (
	OpenUnconditional OpenType = 1 // 无条件开放
	OpenConditional   OpenType = 2 // 有条件开放
	OpenNone          OpenType = 3 // 不予开放
)

// UpdateCycle is how often the resource is updated (更新周期).
type UpdateCycle string

const (
	CycleRealtime  UpdateCycle = "realtime"  // 实时
	CycleDaily     UpdateCycle = "daily"     // 每日
	CycleWeekly    UpdateCycle = "weekly"    // 每周
	CycleMonthly   UpdateCycle = "monthly"   // 每月
	CycleQuarterly UpdateCycle = "quarterly" // 每季度
	CycleYearly    UpdateCycle = "yearly"    // 每年
	CycleIrregular UpdateCycle = "irregular" // 不定期
)

// Format is the resource format (信息资源格式); the guide lists the kinds of electronic files,
// spreadsheets, databases, images and streaming media; services reached through an API are
// the usual form on an exchange platform.
type Format string

const (
	FormatFile        Format = "file"        // 电子文件
	FormatSpreadsheet Format = "spreadsheet" // 电子表格
	FormatDatabase    Format = "database"    // 数据库
	FormatImage       Format = "image"       // 图形图像
	FormatMedia       Format = "media"       // 流媒体
	FormatAPI         Format = "api"         // 接口
	FormatOther       Format = "other"       // 其他
)

// ItemType is a data item's type (数据类型).
type ItemType string

const (
	TypeChar     ItemType = "C"  // 字符型
	TypeNumber   ItemType = "N"  // 数值型
	TypeDate     ItemType = "D"  // 日期型
	TypeDateTime ItemType = "T"  // 日期时间型
	TypeBool     ItemType = "B"  // 布尔型
	TypeBinary   ItemType = "BY" // 二进制
)

// label pairs a stable code with its display names.
type label[T comparable] struct {
	Code T
	Name i18n.Text
}

var (
	shareTypes = []label[ShareType]{
		{ShareUnconditional, i18n.T("无条件共享", "shared unconditionally")},
		{ShareConditional, i18n.T("有条件共享", "shared on conditions")},
		{ShareNone, i18n.T("不予共享", "not shared")},
	}
	openTypes = []label[OpenType]{
		{OpenUnconditional, i18n.T("无条件开放", "open")},
		{OpenConditional, i18n.T("有条件开放", "open on conditions")},
		{OpenNone, i18n.T("不予开放", "not open")},
	}
	cycles = []label[UpdateCycle]{
		{CycleRealtime, i18n.T("实时", "real time")},
		{CycleDaily, i18n.T("每日", "daily")},
		{CycleWeekly, i18n.T("每周", "weekly")},
		{CycleMonthly, i18n.T("每月", "monthly")},
		{CycleQuarterly, i18n.T("每季度", "quarterly")},
		{CycleYearly, i18n.T("每年", "yearly")},
		{CycleIrregular, i18n.T("不定期", "irregular")},
	}
	formats = []label[Format]{
		{FormatFile, i18n.T("电子文件", "electronic file")},
		{FormatSpreadsheet, i18n.T("电子表格", "spreadsheet")},
		{FormatDatabase, i18n.T("数据库", "database")},
		{FormatImage, i18n.T("图形图像", "image")},
		{FormatMedia, i18n.T("流媒体", "streaming media")},
		{FormatAPI, i18n.T("接口", "API")},
		{FormatOther, i18n.T("其他", "other")},
	}
	itemTypes = []label[ItemType]{
		{TypeChar, i18n.T("字符型", "character")},
		{TypeNumber, i18n.T("数值型", "numeric")},
		{TypeDate, i18n.T("日期型", "date")},
		{TypeDateTime, i18n.T("日期时间型", "date-time")},
		{TypeBool, i18n.T("布尔型", "boolean")},
		{TypeBinary, i18n.T("二进制", "binary")},
	}
)

func nameOf[T comparable](ls []label[T], v T) i18n.Text {
	for _, l := range ls {
		if l.Code == v {
			return l.Name
		}
	}
	return i18n.Text{}
}

func known[T comparable](ls []label[T], v T) bool { return nameOf(ls, v) != i18n.Text{} }

// Name methods give the display names ({} for an unknown value).
func (t ShareType) Name() i18n.Text   { return nameOf(shareTypes, t) }
func (t OpenType) Name() i18n.Text    { return nameOf(openTypes, t) }
func (c UpdateCycle) Name() i18n.Text { return nameOf(cycles, c) }
func (f Format) Name() i18n.Text      { return nameOf(formats, f) }
func (t ItemType) Name() i18n.Text    { return nameOf(itemTypes, t) }

// DataItem is one information item (信息项) of a resource.
type DataItem struct {
	Name        string   `json:"name"`                   // 信息项名称
	EnglishName string   `json:"english_name,omitempty"` // e.g. "uscc"
	Type        ItemType `json:"type"`                   // 数据类型
	Length      int      `json:"length,omitempty"`       // 长度; required for 字符型
	Description string   `json:"description,omitempty"`  // 描述
	Sensitive   bool     `json:"sensitive,omitempty"`    // personal or otherwise sensitive data
}

// Contact is who answers questions about the resource (联系人, 联系电话): an office contact
// published with the catalog, not a private number.
type Contact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

// Draft is what a department registers: the GB/T 21063.3 core metadata of one resource.
// It is also the record of the JSON exchange format (an array of these; see ParseJSON).
type Draft struct {
	// Code is the resource code (信息资源代码, see ParseCode). Empty on creation: one is
	// assigned from the classification, the provider's division and a sequence.
	Code string `json:"code,omitempty"`
	Name string `json:"name"` // 信息资源名称
	// Provider is the provider department's name (信息资源提供方). On input it identifies the
	// department when ProviderDeptID is empty; on output it is the name at registration.
	Provider       string         `json:"provider,omitempty"`
	ProviderDeptID string         `json:"provider_dept_id,omitempty"`
	Summary        string         `json:"summary"`        // 信息资源摘要
	Classification Classification `json:"classification"` // 信息资源分类
	Format         Format         `json:"format"`         // 信息资源格式
	FormatDetail   string         `json:"format_detail,omitempty"`
	Items          []DataItem     `json:"items"`                     // 信息项
	ShareType      ShareType      `json:"share_type"`                // 共享类型
	ShareCondition string         `json:"share_condition,omitempty"` // 共享条件 / 不予共享依据
	OpenType       OpenType       `json:"open_type"`                 // 开放类型
	UpdateCycle    UpdateCycle    `json:"update_cycle"`              // 更新周期
	Contact        Contact        `json:"contact"`
}

// Resource is a registered resource: the working copy, or a frozen published version.
type Resource struct {
	ID string `json:"id"`
	Draft
	DivisionCode string `json:"division_code"` // the provider's division; never changes
	Status       Status `json:"status"`
	// Version is, on a snapshot, its number; on the working copy, the latest published
	// version (0: never published).
	Version int `json:"version"`
	// LiveVersion is the version in force in the catalog (0: none, e.g. withdrawn).
	LiveVersion  int        `json:"live_version"`
	PublishedAt  *time.Time `json:"published_at,omitempty"` // 发布日期 of Version
	RejectReason string     `json:"reject_reason,omitempty"`
	SubmittedBy  string     `json:"submitted_by,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Filter selects resources. Status "" or published lists the catalog in force (the
// published version of each resource), readable by every holder of PermRead; other statuses
// list working copies within the actor's own division, for editors and reviewers.
type Filter struct {
	// Division restricts to a division and, rolled up, everything below it; "" is the whole
	// catalog (published) or the actor's division (working copies).
	Division string
	// Exact lists Division's own resources only, without rolling up its subdivisions.
	Exact        bool
	DepartmentID string
	Status       Status
	ShareType    ShareType
	OpenType     OpenType
	Query        string // substring of code, name or summary
	Limit        int    // default 100, at most 1000
	Offset       int
}

// Departments is what the catalog needs of the organisation engine; *org.Service has it.
type Departments interface {
	GetDepartment(ctx context.Context, actor authz.Subject, id string) (org.Department, error)
	ListDepartments(ctx context.Context, actor authz.Subject, f org.DepartmentFilter) ([]org.Department, error)
}

// AuditFunc records one event inside the transaction that makes the change (as org's).
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Options configures a Service.
type Options struct {
	Audit AuditFunc        // called inside the transaction of every change
	Now   func() time.Time // default time.Now
}

// Audit actions.
const (
	ActionCreate   = "catalog.resource.create"
	ActionUpdate   = "catalog.resource.update"
	ActionSubmit   = "catalog.resource.submit"
	ActionApprove  = "catalog.resource.approve"
	ActionReject   = "catalog.resource.reject"
	ActionWithdraw = "catalog.resource.withdraw"
)

// Event subjects, published in the transaction of the change.
const (
	EventPublished = "dgov.catalog.published"
	EventWithdrawn = "dgov.catalog.withdrawn"
)

// Event is the payload of the catalog's events.
type Event struct {
	ResourceID     string    `json:"resource_id"`
	Code           string    `json:"code"`
	Name           string    `json:"name"`
	Version        int       `json:"version"`
	DivisionCode   string    `json:"division_code"`
	ProviderDeptID string    `json:"provider_dept_id"`
	ShareType      ShareType `json:"share_type"`
	OpenType       OpenType  `json:"open_type"`
	Reason         string    `json:"reason,omitempty"`
}

// Errors of this package. Out-of-scope actions return i18n.ErrForbidden itself.
var (
	ErrState = &i18n.Error{Code: "catalog.state", Status: http.StatusConflict,
		Msg: i18n.T("资源当前状态不允许此操作", "the resource's status does not allow this")}
	ErrSelfReview = &i18n.Error{Code: "catalog.self_review", Status: http.StatusForbidden,
		Msg: i18n.T("不能审核自己提交的资源", "you cannot review a resource you submitted")}
	ErrCodeTaken = &i18n.Error{Code: "catalog.code_taken", Status: http.StatusConflict, Field: "code",
		Msg: i18n.T("资源代码已被使用", "this resource code is already used")}
	ErrCodeFrozen = &i18n.Error{Code: "catalog.code_frozen", Status: http.StatusConflict, Field: "code",
		Msg: i18n.T("资源发布后，资源代码及其分类不能更改", "once published, a resource's code and its classification cannot change")}
)

func invalid(field, code, zh, en string) *i18n.Error {
	return &i18n.Error{Code: code, Status: http.StatusBadRequest, Field: field, Msg: i18n.T(zh, en)}
}

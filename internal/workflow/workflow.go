// Package workflow is the general case engine (办件引擎, issue P5 item 3): a case follows a
// versioned Definition of steps — 预审 pre-review, 受理 acceptance, 审查 review, 决定 decision,
// 送达 delivery, or any others — each acted on by staff holding the step's role in the case's
// department and division. A service application, a 12345 hotline ticket, a supervision item
// and a rating rectification are all just definitions.
//
// Deadlines are counted in working days on the Chinese calendar (platform/calendar: public
// holidays skipped, make-up working days counted), per step and for the whole case. A request
// for correction (补正) suspends the case and stops both clocks; when the applicant answers,
// they run again with exactly the working time that was left. A periodic job (Jobs, Sweep)
// reminds the handlers as a step deadline nears and escalates once it passes.
//
// Every transition writes a history row, an audit entry (Options.Audit) and an outbox event
// dgov.workflow.case.<event> in one transaction. A version column makes transitions
// optimistic: of two concurrent changes to one case, one wins and the other gets ErrConflict.
package workflow

import (
	"context"
	"embed"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the workflow's tables. They reference no other engine's tables: departments
// and applicants are kept by id.
var Migrations = db.Migrations("workflow", migrationFiles, "migrations")

// Permissions of the case engine. Acting at a step also needs the step's role.
const (
	// PermRead reads the cases of the holder's own department within the holder's division.
	PermRead authz.Permission = "workflow.case.read"
	// PermHandle acts on cases of the holder's own department at steps whose role the holder has.
	PermHandle authz.Permission = "workflow.case.handle"
	// PermSupervise reads every case and its statistics within the holder's division, whatever
	// the department (督查督办); it acts on none.
	PermSupervise authz.Permission = "workflow.case.supervise"
)

// Roles the engine adds to the foundation's.
const (
	// RoleLeader is a department's leader (部门负责人): acts at steps declared for leaders and is
	// the one escalations are meant for.
	RoleLeader authz.Role = "leader"
	// RoleSupervisor oversees cases across departments within a division (督查).
	RoleSupervisor authz.Role = "supervisor"
)

// RegisterPermissions gives the engine's permissions to roles: officers and leaders read and
// handle their department's cases; supervisors read every case in their division.
func RegisterPermissions(p *authz.Policy) {
	p.Grant(authz.RoleOfficer, PermRead, PermHandle)
	p.Grant(RoleLeader, PermRead, PermHandle)
	p.Grant(RoleSupervisor, PermSupervise)
}

// RoleNames are the display names of the roles this package adds.
var RoleNames = map[authz.Role]i18n.Text{
	RoleLeader:     i18n.T("部门负责人", "Department leader"),
	RoleSupervisor: i18n.T("督查人员", "Supervisor"),
}

// Definition is one version of a kind of case: its steps and time limits.
type Definition struct {
	Key     string `json:"key"` // e.g. "service:<item code>", "rating.rectify"
	Version int    `json:"version"`
	Name    string `json:"name"`
	NameEn  string `json:"name_en"`
	Steps   []Step `json:"steps"`
	// TotalDays is the promised limit for the whole case in working days (0 = sum of step days).
	TotalDays int `json:"total_days"`
	// NoCorrection marks cases whose "applicant" cannot answer a correction request (a rating
	// rectification is the department's own work): suspending one would stop it for good.
	NoCorrection bool `json:"no_correction,omitempty"`
}

// Step is one stage of a case.
type Step struct {
	Key    string `json:"key"` // pre_review (预审) | accept (受理) | review (审查) | decide (决定) | deliver (送达) | any other key
	Name   string `json:"name"`
	NameEn string `json:"name_en"`
	Role   string `json:"role"` // authz role that may act; "" = officer
	// Days is the working days allowed for this step; 0 = no limit of its own (the whole
	// case's deadline applies).
	Days int `json:"days"`
}

// Well-known step keys.
const (
	StepPreReview = "pre_review" // 预审
	StepAccept    = "accept"     // 受理
	StepReview    = "review"     // 审查
	StepDecide    = "decide"     // 决定
	StepDeliver   = "deliver"    // 送达
)

// HandlerRole is the role that acts at the step.
func (st Step) HandlerRole() authz.Role {
	if st.Role == "" {
		return authz.RoleOfficer
	}
	return authz.Role(st.Role)
}

// State is where a case stands.
type State string

const (
	StateOpen      State = "open"      // at a step, clocks running
	StateSuspended State = "suspended" // waiting for the applicant's correction (补正), clocks stopped
	StateClosed    State = "closed"
)

// Outcome is how a closed case ended.
type Outcome string

const (
	OutcomeNone      Outcome = ""
	OutcomeApproved  Outcome = "approved"
	OutcomeRejected  Outcome = "rejected"
	OutcomeWithdrawn Outcome = "withdrawn"
)

// Status is the deadline colour of an open case, from the injected clock.
type Status string

const (
	Green  Status = "green"  // in time
	Yellow Status = "yellow" // within Options.RemindDays working days of the step deadline
	Red    Status = "red"    // the step deadline has passed
)

// StateNames, OutcomeNames and StatusNames are display names.
var (
	StateNames = map[State]i18n.Text{
		StateOpen:      i18n.T("办理中", "in progress"),
		StateSuspended: i18n.T("待补正", "awaiting correction"),
		StateClosed:    i18n.T("已办结", "closed"),
	}
	OutcomeNames = map[Outcome]i18n.Text{
		OutcomeApproved:  i18n.T("准予", "approved"),
		OutcomeRejected:  i18n.T("不予", "rejected"),
		OutcomeWithdrawn: i18n.T("已撤回", "withdrawn"),
	}
	StatusNames = map[Status]i18n.Text{
		Green:  i18n.T("正常", "on time"),
		Yellow: i18n.T("临期", "due soon"),
		Red:    i18n.T("超期", "overdue"),
	}
)

// OpenCase opens a case.
type OpenCase struct {
	Definition string        // definition key (latest version is used and remembered by the case)
	Title      string        // what the case is about, shown in queues
	Ref        string        // the caller's record, e.g. "application:<id>" (unique per definition)
	Applicant  authz.Subject // citizen/enterprise (or staff/system) who the case serves; Kind and ID are kept
	DeptID     string        // handling department id
	Division   string        // GB/T 2260 code of the case (scope)
	// Data holds small searchable attributes shown in queues (no personal data): at most 16
	// keys of [a-z0-9_.-], values of at most 200 characters.
	Data map[string]string
}

// Case is one case as it stands.
type Case struct {
	ID                string     `json:"id"`
	Definition        string     `json:"definition"`
	DefinitionVersion int        `json:"definition_version"`
	Title             string     `json:"title"`
	Ref               string     `json:"ref"`
	Applicant         Party      `json:"applicant"`
	DeptID            string     `json:"dept_id"`
	Division          string     `json:"division"`
	State             State      `json:"state"`
	Outcome           Outcome    `json:"outcome"`
	Step              string     `json:"step"` // the current (or, once closed, the last) step's key
	StepName          string     `json:"step_name"`
	StepNameEn        string     `json:"step_name_en"`
	StepIndex         int        `json:"step_index"`
	StepRole          authz.Role `json:"step_role"`
	ClaimedBy         string     `json:"claimed_by"` // "staff:<id>" or ""
	OpenedAt          time.Time  `json:"opened_at"`
	StepStartedAt     time.Time  `json:"step_started_at"`
	// StepDueAt and DueAt are the deadlines of the step and of the whole case while the case is
	// open (nil: no limit); while suspended they are nil and StepTimeLeft/TimeLeft say what is left.
	StepDueAt *time.Time `json:"step_due_at,omitempty"`
	DueAt     *time.Time `json:"due_at,omitempty"`
	// Status is the deadline colour: computed from the clock while open, as it was at the
	// suspension while suspended, "" once closed.
	Status Status `json:"status"`
	// Alert is what Sweep has done for the current step deadline: "", "reminded" or "escalated".
	Alert        string         `json:"alert,omitempty"`
	SuspendedAt  *time.Time     `json:"suspended_at,omitempty"`
	StepTimeLeft *time.Duration `json:"step_time_left,omitempty"` // working time left, while suspended
	TimeLeft     *time.Duration `json:"time_left,omitempty"`
	// Correction is the open request for correction, while suspended.
	Correction *Correction `json:"correction,omitempty"`
	ClosedAt   *time.Time  `json:"closed_at,omitempty"`
	// WorkingDays is the working time the case took, suspensions excluded, in days (once closed).
	WorkingDays float64           `json:"working_days,omitempty"`
	Data        map[string]string `json:"data"`
	// Version increases with every transition (optimistic concurrency).
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Party identifies who a case serves: a citizen, an enterprise, or a staff member or system
// for internal cases.
type Party struct {
	Kind authz.Kind `json:"kind"`
	ID   string     `json:"id"`
}

// String is "<kind>:<id>", as authz.Subject.String.
func (p Party) String() string { return string(p.Kind) + ":" + p.ID }

// Is reports whether s is this party.
func (p Party) Is(s authz.Subject) bool {
	return s.Kind != "" && s.ID != "" && s.Kind == p.Kind && s.ID == p.ID
}

// Correction is a request for correction (补正告知): what the applicant must supply.
type Correction struct {
	Comment     string    `json:"comment"`
	Items       []string  `json:"items"`
	RequestedAt time.Time `json:"requested_at"`
}

// Verdict is an officer's decision at a step.
type Verdict string

const (
	Approve Verdict = "approve" // the step passes: next step, or the case closes approved
	Reject  Verdict = "reject"  // the case closes rejected (a comment with the reasons is required)
)

// Decision is what Decide records.
type Decision struct {
	Outcome Verdict
	Comment string
	// Version, when not 0, is the case version the decision was made on: a case changed since
	// gives ErrConflict instead of deciding on what the officer did not see.
	Version int
}

// Action names a transition, in history rows, audit entries and event subjects.
type Action string

const (
	ActionOpened      Action = "opened"
	ActionClaimed     Action = "claimed"
	ActionReleased    Action = "released"
	ActionAdvanced    Action = "advanced"
	ActionSuspended   Action = "suspended"
	ActionResumed     Action = "resumed"
	ActionTransferred Action = "transferred"
	ActionReturned    Action = "returned"
	ActionWithdrawn   Action = "withdrawn"
	ActionClosed      Action = "closed"
	ActionReminded    Action = "reminded"
	ActionEscalated   Action = "escalated"
)

// Subject is the event subject of an action: dgov.workflow.case.<action>.
func (a Action) Subject() string { return SubjectPrefix + string(a) }

// AuditAction is the action's name in the audit log: workflow.case.<action>.
func (a Action) AuditAction() string { return "workflow.case." + string(a) }

// SubjectPrefix starts every event subject of the engine; SubjectAll matches them all.
const (
	SubjectPrefix = "dgov.workflow.case."
	SubjectAll    = "dgov.workflow.case.>"
)

// Event is one row of a case's history.
type Event struct {
	Seq      int64      `json:"seq"`
	CaseID   string     `json:"case_id"`
	Action   Action     `json:"action"`
	Actor    string     `json:"actor"` // "staff:<id>", "citizen:<id>", "system:workflow"
	Step     string     `json:"step"`  // the step the case was at
	ToStep   string     `json:"to_step,omitempty"`
	DeptID   string     `json:"dept_id"`
	ToDeptID string     `json:"to_dept_id,omitempty"`
	Comment  string     `json:"comment,omitempty"`
	Items    []string   `json:"items,omitempty"`
	DueAt    *time.Time `json:"due_at,omitempty"` // the step deadline a reminder or escalation is about
	At       time.Time  `json:"at"`
}

// EventPayload is the JSON of every dgov.workflow.case.* event.
type EventPayload struct {
	CaseID        string     `json:"case_id"`
	Ref           string     `json:"ref"`
	Definition    string     `json:"definition"`
	ApplicantKind authz.Kind `json:"applicant_kind"`
	ApplicantID   string     `json:"applicant_id"`
	State         State      `json:"state"`
	Outcome       Outcome    `json:"outcome"`
	Step          string     `json:"step"`
	Comment       string     `json:"comment"`
	At            time.Time  `json:"at"`
	// Beyond the contract's fields: enough to route a notification without reading the case.
	Action            Action     `json:"action"`
	Actor             string     `json:"actor"`
	DefinitionVersion int        `json:"definition_version"`
	Title             string     `json:"title"`
	DeptID            string     `json:"dept_id"`
	FromDeptID        string     `json:"from_dept_id,omitempty"` // transfers
	Division          string     `json:"division"`
	Items             []string   `json:"items,omitempty"` // corrections asked for
	StepDueAt         *time.Time `json:"step_due_at,omitempty"`
	DueAt             *time.Time `json:"due_at,omitempty"`
}

// AuditFunc records one event inside the transaction that makes the change.
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Departments resolves the department a case is transferred to (org adapts to it in the app).
type Departments interface {
	// DepartmentDivision returns the GB/T 2260 division of an active department, and an error
	// (i18n.ErrNotFound) for an unknown or disabled one.
	DepartmentDivision(ctx context.Context, id string) (string, error)
}

// Options configures a Service.
type Options struct {
	Now      func() time.Time   // default time.Now
	Calendar *calendar.Calendar // default calendar.Default()
	Audit    AuditFunc          // called inside the transaction of every transition
	// RemindDays: a step is yellow, and reminded, within this many working days of its
	// deadline. Default 1.
	RemindDays int
	// Departments checks transfer targets; without it any non-empty id is accepted and the
	// case keeps its division.
	Departments Departments
	// SweepInterval is how often the periodic job of Jobs runs Sweep. Default 5 minutes.
	SweepInterval time.Duration
}

// SystemActor is who Sweep acts as, in history, audit and events.
var SystemActor = authz.Subject{Kind: authz.System, ID: "workflow"}

// Errors of this package. A case the actor may not see is i18n.ErrNotFound; one they see but
// may not act on is i18n.ErrForbidden.
var (
	ErrState = &i18n.Error{Code: "workflow.state", Status: http.StatusConflict,
		Msg: i18n.T("案件当前状态不允许此操作", "the case's state does not allow this")}
	ErrNoCorrection = &i18n.Error{Code: "workflow.no_correction", Status: http.StatusConflict,
		Msg: i18n.T("此类案件不能要求补正", "this kind of case cannot be sent back for correction")}
	ErrTransferScope = &i18n.Error{Code: "workflow.transfer_scope", Status: http.StatusForbidden, Field: "to_dept_id",
		Msg: i18n.T("只能转办给本人管辖范围内的部门", "a case can be transferred only to a department within your own scope")}
	ErrConflict = &i18n.Error{Code: "workflow.conflict", Status: http.StatusConflict,
		Msg: i18n.T("案件已被他人处理，请刷新后重试", "someone else changed the case; reload it and try again")}
	ErrClaimed = &i18n.Error{Code: "workflow.claimed", Status: http.StatusConflict,
		Msg: i18n.T("案件已由他人认领", "another officer has claimed the case")}
	ErrNotClaimed = &i18n.Error{Code: "workflow.not_claimed", Status: http.StatusConflict,
		Msg: i18n.T("请先认领案件", "claim the case first")}
	ErrFirstStep = &i18n.Error{Code: "workflow.first_step", Status: http.StatusConflict,
		Msg: i18n.T("案件已在第一个环节，无法退回", "the case is at its first step and cannot go back")}
	ErrCommentRequired = &i18n.Error{Code: "workflow.comment_required", Status: http.StatusBadRequest, Field: "comment",
		Msg: i18n.T("请填写意见或理由", "give a comment or reasons")}
	ErrSameDepartment = &i18n.Error{Code: "workflow.same_department", Status: http.StatusBadRequest, Field: "to_dept_id",
		Msg: i18n.T("不能转办给本部门", "the case is already with that department")}
	ErrUnknownDepartment = &i18n.Error{Code: "workflow.department_unknown", Status: http.StatusBadRequest, Field: "to_dept_id",
		Msg: i18n.T("转办部门不存在或已停用", "no such active department")}
	ErrUnknownDefinition = &i18n.Error{Code: "workflow.definition_unknown", Status: http.StatusBadRequest, Field: "definition",
		Msg: i18n.T("办件流程定义不存在", "no such case definition")}
	ErrDefinitionChanged = &i18n.Error{Code: "workflow.definition_changed", Status: http.StatusConflict,
		Msg: i18n.T("该流程定义版本已存在且内容不同，请使用新的版本号", "this definition version exists with other content; use a new version number")}
	ErrDuplicateRef = &i18n.Error{Code: "workflow.duplicate_ref", Status: http.StatusConflict, Field: "ref",
		Msg: i18n.T("该业务记录已有案件", "a case already exists for this record")}
	ErrBadCursor = &i18n.Error{Code: "workflow.cursor", Status: http.StatusBadRequest, Field: "after",
		Msg: i18n.T("分页游标无效", "invalid page cursor")}
)

func invalid(field, code, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(http.StatusBadRequest, code, zh, en, args...).WithField(field)
}

// Package rating is 好差评 (P5 item 7): after a service application is completed, its applicant
// rates the service once on the five levels of the national 好差评 system (GB/T 39734-2020,
// GB/T 39735-2020, after 国办发〔2019〕51号), on the web, the app, in the hall or by phone,
// with reason tags and an optional text. The two lowest levels are 差评 (poor): each opens a
// rectification case "rating.rectify" on the case engine, handled by the department that
// handled the application — step 整改 (rectify, 5 working days unless configured) and step 回访
// (callback: the applicant is contacted and the answer recorded). The case's progress is
// mirrored back onto the rating (Sync), so statistics per item, department and division can
// count 差评 rectified on time, and a public summary shows the counts to anyone.
//
// The engine reads applications through the Applications interface and trusts only the case
// engine for whether one is completed: the application's case must be closed, approved or
// rejected, with Ref "application:<id>", and the rater must be its applicant.
package rating

import (
	"context"
	"embed"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the rating tables. They reference no other engine's tables.
var Migrations = db.Migrations("rating", migrationFiles, "migrations")

// Permissions of the rating engine.
const (
	// PermRead reads the ratings (with their texts) and statistics of the holder's own
	// department within the holder's division.
	PermRead authz.Permission = "rating.read"
	// PermSupervise reads every department's ratings and statistics within the holder's
	// division (the 政务服务管理局 oversees 好差评 across departments).
	PermSupervise authz.Permission = "rating.supervise"
)

// RegisterPermissions gives the engine's permissions: officers and department leaders read
// their department's ratings; supervisors read all within their division. Handling a
// rectification is the case engine's workflow.PermHandle.
func RegisterPermissions(p *authz.Policy) {
	p.Grant(authz.RoleOfficer, PermRead)
	p.Grant(workflow.RoleLeader, PermRead)
	p.Grant(workflow.RoleSupervisor, PermSupervise)
}

// Level is one of the five rating levels, 5 (best) to 1.
type Level int

// The five levels of 政务服务"好差评" (GB/T 39734-2020; 国办发〔2019〕51号), shown as 5…1 stars.
const (
	VeryDissatisfied   Level = 1 // 非常不满意
	Dissatisfied       Level = 2 // 不满意
	BasicallySatisfied Level = 3 // 基本满意
	Satisfied          Level = 4 // 满意
	VerySatisfied      Level = 5 // 非常满意
)

// Levels lists the levels from the best down, as the rating form shows them.
var Levels = []Level{VerySatisfied, Satisfied, BasicallySatisfied, Dissatisfied, VeryDissatisfied}

// LevelNames are the levels' display names.
var LevelNames = map[Level]i18n.Text{
	VerySatisfied:      i18n.T("非常满意", "Very satisfied"),
	Satisfied:          i18n.T("满意", "Satisfied"),
	BasicallySatisfied: i18n.T("基本满意", "Basically satisfied"),
	Dissatisfied:       i18n.T("不满意", "Dissatisfied"),
	VeryDissatisfied:   i18n.T("非常不满意", "Very dissatisfied"),
}

// Valid reports whether l is one of the five levels.
func (l Level) Valid() bool { return l >= VeryDissatisfied && l <= VerySatisfied }

// Poor reports whether l is 差评: 不满意 or 非常不满意 (国办发〔2019〕51号: the two lowest levels
// count as 差评, and every 差评 is rectified and called back).
func (l Level) Poor() bool { return l == VeryDissatisfied || l == Dissatisfied }

// Satisfied reports whether l counts towards the satisfaction rate: 非常满意, 满意 and 基本满意.
func (l Level) Satisfied() bool { return l >= BasicallySatisfied && l <= VerySatisfied }

// Name is the level's display name.
func (l Level) Name() i18n.Text { return LevelNames[l] }

// Channel is where a rating was given (评价渠道, GB/T 39734-2020: online — the portal and the
// app; offline — the service hall and the 12345 hotline).
type Channel string

const (
	ChannelWeb   Channel = "web"   // 政务服务网
	ChannelApp   Channel = "app"   // 移动端
	ChannelHall  Channel = "hall"  // 政务服务大厅（评价器、自助终端）
	ChannelPhone Channel = "phone" // 12345 热线、短信
)

// ChannelNames are the channels' display names.
var ChannelNames = map[Channel]i18n.Text{
	ChannelWeb:   i18n.T("政务服务网", "Web portal"),
	ChannelApp:   i18n.T("移动端", "Mobile app"),
	ChannelHall:  i18n.T("政务服务大厅", "Service hall"),
	ChannelPhone: i18n.T("热线电话", "Hotline"),
}

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool { _, ok := ChannelNames[c]; return ok }

// Online reports whether c is an online channel (its tags are the online indicators).
func (c Channel) Online() bool { return c == ChannelWeb || c == ChannelApp }

// RectifyState is where the rectification of a poor rating stands.
type RectifyState string

const (
	RectifyNone      RectifyState = ""          // not a poor rating (or never was)
	RectifyOpen      RectifyState = "open"      // at step 整改
	RectifyCallback  RectifyState = "callback"  // rectified, waiting for the 回访
	RectifyDone      RectifyState = "done"      // rectified and called back (Confirmed says the answer)
	RectifyRefused   RectifyState = "refused"   // the department closed it without rectifying (reasons given)
	RectifyWithdrawn RectifyState = "withdrawn" // the applicant withdrew the case
)

// RectifyStateNames are display names.
var RectifyStateNames = map[RectifyState]i18n.Text{
	RectifyNone:      i18n.T("无需整改", "no rectification"),
	RectifyOpen:      i18n.T("整改中", "being rectified"),
	RectifyCallback:  i18n.T("待回访", "awaiting callback"),
	RectifyDone:      i18n.T("已整改并回访", "rectified and called back"),
	RectifyRefused:   i18n.T("不予整改", "not rectified"),
	RectifyWithdrawn: i18n.T("已撤回", "withdrawn"),
}

// The rectification case definition.
const (
	RectifyDefinitionKey = "rating.rectify"
	StepRectify          = "rectify"  // 整改
	StepCallback         = "callback" // 回访
)

// RectifyDefinition is the case definition of a rectification: 整改 in rectifyDays working
// days, then 回访 in callbackDays, both by the handling department's officers.
func RectifyDefinition(rectifyDays, callbackDays int) workflow.Definition {
	return workflow.Definition{Key: RectifyDefinitionKey, Version: 1, Name: "差评整改", NameEn: "Rectification of a poor rating",
		NoCorrection: true, // the rater cannot "answer a correction": the department rectifies
		Steps: []workflow.Step{
			{Key: StepRectify, Name: "整改", NameEn: "Rectification", Days: rectifyDays},
			{Key: StepCallback, Name: "回访", NameEn: "Callback", Days: callbackDays},
		}}
}

// Application is what the engine needs to know of a completed service application, as the
// applications service (govservice) tells it.
type Application struct {
	ID         string
	Number     string // the human 受理编号
	ItemCode   string
	ItemName   string
	ItemNameEn string
	DeptID     string // the department the application was routed to
	DeptName   string
	Division   string
	CaseID     string // the application's case on the case engine
}

// Applications looks applications up for the engine (govservice.Applications adapts to it).
type Applications interface {
	// RatedApplication returns the application id as actor may see it; an application the
	// actor may not see is i18n.ErrNotFound.
	RatedApplication(ctx context.Context, actor authz.Subject, id string) (Application, error)
}

// Rating is one applicant's rating of one application.
type Rating struct {
	ID                string         `json:"id"`
	ApplicationID     string         `json:"application_id"`
	ApplicationNumber string         `json:"application_number"`
	CaseID            string         `json:"case_id"`
	Rater             workflow.Party `json:"rater"`
	ItemCode          string         `json:"item_code"`
	ItemName          string         `json:"item_name"`
	ItemNameEn        string         `json:"item_name_en"`
	DeptID            string         `json:"dept_id"`
	DeptName          string         `json:"dept_name"`
	Division          string         `json:"division"`
	Level             Level          `json:"level"`
	Channel           Channel        `json:"channel"`
	Tags              []string       `json:"tags"`
	Comment           string         `json:"comment"`
	RatedAt           time.Time      `json:"rated_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
	// RevisedAt is when the rating was replaced (once at most); FirstLevel what it said before.
	RevisedAt  *time.Time `json:"revised_at,omitempty"`
	FirstLevel Level      `json:"first_level,omitempty"`
	// Rectification is the rectification of a poor rating (nil when none was opened).
	Rectification *Rectification `json:"rectification,omitempty"`
}

// Poor reports whether the rating is 差评.
func (r Rating) Poor() bool { return r.Level.Poor() }

// Rectification is the state of a poor rating's rectification case, as last mirrored.
type Rectification struct {
	CaseID string       `json:"case_id"`
	State  RectifyState `json:"state"`
	// DueAt is the deadline of the 整改 step (nil while the case is suspended).
	DueAt       *time.Time `json:"due_at,omitempty"`
	RectifiedAt *time.Time `json:"rectified_at,omitempty"`
	// Result is what the department did (the 整改 decision's comment), or its reasons for
	// not rectifying.
	Result string `json:"result"`
	// OnTime: rectified no later than DueAt.
	OnTime     bool       `json:"on_time"`
	CallbackAt *time.Time `json:"callback_at,omitempty"`
	// CallbackNote is the callback's record; Confirmed says the applicant accepted the
	// rectification (the case closed approved at 回访).
	CallbackNote string `json:"callback_note"`
	Confirmed    bool   `json:"confirmed"`
}

// Overdue reports whether the 整改 step is still open past its deadline at now.
func (r *Rectification) Overdue(now time.Time) bool {
	return r != nil && r.State == RectifyOpen && r.DueAt != nil && now.After(*r.DueAt)
}

// Event subjects.
const (
	SubjectRated         = "dgov.rating.rated"         // a first rating
	SubjectRevised       = "dgov.rating.revised"       // a rating replaced
	SubjectRectification = "dgov.rating.rectification" // the rectification's state changed
)

// EventPayload is the JSON of every dgov.rating.* event. It carries no text the person wrote.
type EventPayload struct {
	RatingID      string       `json:"rating_id"`
	ApplicationID string       `json:"application_id"`
	CaseID        string       `json:"case_id"`
	RectifyCaseID string       `json:"rectify_case_id,omitempty"`
	RaterKind     authz.Kind   `json:"rater_kind"`
	RaterID       string       `json:"rater_id"`
	ItemCode      string       `json:"item_code"`
	DeptID        string       `json:"dept_id"`
	Division      string       `json:"division"`
	Level         Level        `json:"level"`
	Poor          bool         `json:"poor"`
	Channel       Channel      `json:"channel"`
	RectifyState  RectifyState `json:"rectify_state,omitempty"`
	OnTime        bool         `json:"on_time,omitempty"`
	At            time.Time    `json:"at"`
}

// AuditFunc records one event inside the transaction that makes the change.
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Options configures a Service.
type Options struct {
	Now   func() time.Time // default time.Now; deadlines are the case engine's clock and calendar
	Audit AuditFunc
	// RectifyDays is the working days the department has to rectify a poor rating. Default 5.
	RectifyDays int
	// CallbackDays is the working days for the callback after the rectification. Default 3.
	CallbackDays int
	// ReviseWithin is how long after rating — or, for a rectified poor rating, after its
	// callback — the applicant may replace the rating, once. Default 7 days. A rating is a
	// considered answer, not a running score, hence once; and a rectification may change the
	// applicant's mind, hence the window reopens at the callback.
	ReviseWithin time.Duration
	// DepartmentName names a department by id, for an application whose case was transferred
	// away from the department the application names (optional).
	DepartmentName func(ctx context.Context, id string) string
	// SyncInterval is how often the periodic job reconciles open rectifications with their
	// cases (a safety net under the event consumer). Default 10 minutes.
	SyncInterval time.Duration
}

// Limits of what a person may write.
const (
	MaxComment = 500 // characters
	MaxTags    = 12
)

// Errors of this package.
var (
	ErrLevel = &i18n.Error{Code: "rating.level", Status: http.StatusBadRequest, Field: "level",
		Msg: i18n.T("请选择 1 到 5 星的评价等级", "choose a level from 1 to 5 stars")}
	ErrChannel = &i18n.Error{Code: "rating.channel", Status: http.StatusBadRequest, Field: "channel",
		Msg: i18n.T("评价渠道只能是 web、app、hall 或 phone", "the channel must be web, app, hall or phone")}
	ErrReasonRequired = &i18n.Error{Code: "rating.reason_required", Status: http.StatusBadRequest, Field: "tags",
		Msg: i18n.T("差评请至少选择一个原因或写明情况，以便整改", "for a poor rating choose at least one reason or say what went wrong, so that it can be put right")}
	ErrNotCompleted = &i18n.Error{Code: "rating.not_completed", Status: http.StatusConflict,
		Msg: i18n.T("办件办结后才能评价", "a service can be rated once it is completed")}
	ErrNotApplicant = &i18n.Error{Code: "rating.not_applicant", Status: http.StatusForbidden,
		Msg: i18n.T("只有申请人本人可以评价", "only the applicant may rate this service")}
	ErrAlreadyRevised = &i18n.Error{Code: "rating.already_revised", Status: http.StatusConflict,
		Msg: i18n.T("评价已修改过一次，不能再改", "this rating has already been changed once")}
	ErrReviseClosed = &i18n.Error{Code: "rating.revise_closed", Status: http.StatusConflict,
		Msg: i18n.T("已超过可修改评价的期限", "the time to change this rating has passed")}
	ErrNotPoor = &i18n.Error{Code: "rating.not_poor", Status: http.StatusConflict,
		Msg: i18n.T("该评价没有整改事项", "this rating has no rectification")}
	ErrBadCursor = &i18n.Error{Code: "rating.cursor", Status: http.StatusBadRequest, Field: "after",
		Msg: i18n.T("分页游标无效", "invalid page cursor")}
)

func invalid(field, code, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(http.StatusBadRequest, code, zh, en, args...).WithField(field)
}

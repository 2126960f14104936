package govservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// Applications are the online applications (网上申请) for service items and 一件事 bundles:
// a submission stores the values of the item's form (SM4-sealed) under the form version it
// was made with, its materials, and opens the item's case (definition "service:<code>") in
// the workflow engine in the same transaction. What people see of an application's progress
// is always read from its case.
//
// Build it with NewApplications; it is safe for concurrent use.
type Applications struct {
	d     *db.DB
	items *Service
	forms *form.Versions
	cases *workflow.Service
	org   Departments
	base  Prefill
	blobs blob.Store
	fc    *crypto.FieldCipher
	opts  ApplicationOptions

	parsed  sync.Map // "code@version" of an item or bundle → *form.Form
	formIDs sync.Map // form hash → form version id
	defined sync.Map // "code@version" → struct{}: the item version's case definition is in force
}

// Departments is the organisation as applications need it (org.Service adapted by the app):
// where an item is handled and what a department is called.
type Departments interface {
	// DepartmentIn returns the active department with the kind code (org.DepartmentKinds) in
	// exactly this division, or i18n.ErrNotFound when the division has none.
	DepartmentIn(ctx context.Context, division, code string) (org.Department, error)
	// Department returns a department by id, or i18n.ErrNotFound.
	Department(ctx context.Context, id string) (org.Department, error)
}

// Prefill is what forms are prefilled from besides the applicant's identity: the population
// and legal-entity base libraries (baselib.Service).
type Prefill interface {
	FindPersonByIDNumber(ctx context.Context, number string) (baselib.Person, error)
	FindEntityByCreditCode(ctx context.Context, code string) (baselib.Entity, error)
}

// ApplicationOptions configure Applications.
type ApplicationOptions struct {
	Now      func() time.Time   // default time.Now
	Audit    AuditFunc          // called inside the transaction of every submission, answer and withdrawal
	Calendar *calendar.Calendar // working days for promised dates; default calendar.Default()
	// MaxFileSize bounds one uploaded material; default DefaultMaxFileSize.
	MaxFileSize int64
	// Trust adapts the payment and e-licence engines (fees, licences instead of paper);
	// nil: neither is offered.
	Trust Trust
}

// DefaultMaxFileSize is the largest material an applicant may upload: a scanned multi-page
// PDF at 300 dpi fits.
const DefaultMaxFileSize = 20 << 20

// NewApplications returns the application service.
func NewApplications(d *db.DB, items *Service, forms *form.Versions, cases *workflow.Service, departments Departments, base Prefill,
	blobs blob.Store, fc *crypto.FieldCipher, opts ApplicationOptions) *Applications {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Calendar == nil {
		opts.Calendar = calendar.Default()
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	return &Applications{d: d, items: items, forms: forms, cases: cases, org: departments, base: base, blobs: blobs, fc: fc, opts: opts}
}

func (a *Applications) now() time.Time { return db.Now(a.opts.Now()) }

// Applicant is who applies, as the surface knows them from the identity session: the
// subject (a citizen, or an enterprise when the person acts for one) and the person's own
// identity for prefill and notices.
type Applicant struct {
	Subject  authz.Subject
	Name     string // the person's registered name
	IDNumber string // the person's resident ID number ("" when not verified)
	Phone    string // the account's mobile, for SMS notices ("" for none)
	// Enterprise is set when the person acts for an enterprise.
	Enterprise *EnterpriseRef
}

// EnterpriseRef names the enterprise an applicant acts for.
type EnterpriseRef struct {
	Name       string
	CreditCode string // GB 32100 unified social credit code
}

// Material sources.
const (
	SourceUpload  = "upload"  // a file uploaded with the application (kept in the personal space)
	SourceFile    = "file"    // a file of the applicant's personal space, by reference
	SourceLicense = "license" // an e-licence (电子证照) of the applicant, used under their authorisation (needs Trust)
)

// MaterialInput is one material attached to a submission or an answer.
type MaterialInput struct {
	// Key is the item's material key; for a bundle either "<item code>/<key>" (one member)
	// or "<key>" (every member that asks for that material).
	Key    string
	Source string // SourceUpload | SourceFile | SourceLicense
	// FileName and Content are the upload (PDF, JPEG or PNG, at most MaxFileSize).
	FileName string
	Content  io.Reader
	// FileID is an earlier file of the applicant (SourceFile).
	FileID string
	// LicenseID names an e-licence (SourceLicense).
	LicenseID string
}

// SubmitInput is one application for one item.
type SubmitInput struct {
	ItemCode  string
	Division  string // GB/T 2260 code of where the applicant applies (county or township, usually)
	Values    form.Values
	Materials []MaterialInput
}

// BundleInput is one 一件事 application: the bundle's combined form and the materials.
type BundleInput struct {
	BundleCode string
	Division   string
	Values     form.Values
	Materials  []MaterialInput
}

// Status is an application's status as people see it, derived from its case.
type Status string

const (
	StatusSubmitted  Status = "submitted"  // at the first step, not yet taken up (已提交)
	StatusInReview   Status = "in_review"  // being handled (审查中)
	StatusCorrection Status = "correction" // waiting for the applicant's correction (待补正)
	StatusApproved   Status = "approved"   // closed, granted (已办结)
	StatusRejected   Status = "rejected"   // closed, refused (不予许可)
	StatusWithdrawn  Status = "withdrawn"  // withdrawn by the applicant (已撤回)
)

// StatusNames are the display names of the statuses.
var StatusNames = map[Status]i18n.Text{
	StatusSubmitted:  i18n.T("已提交", "submitted"),
	StatusInReview:   i18n.T("审查中", "in review"),
	StatusCorrection: i18n.T("待补正", "awaiting correction"),
	StatusApproved:   i18n.T("已办结", "completed"),
	StatusRejected:   i18n.T("不予许可", "not approved"),
	StatusWithdrawn:  i18n.T("已撤回", "withdrawn"),
}

// StatusOf derives an application's status from its case.
func StatusOf(c workflow.Case) Status {
	switch c.State {
	case workflow.StateSuspended:
		return StatusCorrection
	case workflow.StateClosed:
		switch c.Outcome {
		case workflow.OutcomeApproved:
			return StatusApproved
		case workflow.OutcomeRejected:
			return StatusRejected
		default:
			return StatusWithdrawn
		}
	}
	if c.StepIndex == 0 && c.ClaimedBy == "" {
		return StatusSubmitted
	}
	return StatusInReview
}

// ApplicantRef names who an application is from.
type ApplicantRef struct {
	Kind authz.Kind `json:"kind"`
	ID   string     `json:"id"`
	Name string     `json:"name"`
}

// Is reports whether s is this applicant.
func (r ApplicantRef) Is(s authz.Subject) bool {
	return s.Kind != "" && s.ID != "" && s.Kind == r.Kind && s.ID == r.ID
}

// Application is one application as lists show it; its status, step, department and
// deadlines come from its case.
type Application struct {
	ID            string       `json:"id"`
	Number        string       `json:"number"` // 受理编号, e.g. 20261125-140105-000123
	ItemCode      string       `json:"item_code"`
	ItemName      string       `json:"item_name"`
	ItemNameEn    string       `json:"item_name_en"`
	ItemVersion   int          `json:"item_version"`
	FormVersionID string       `json:"form_version_id"`
	Applicant     ApplicantRef `json:"applicant"`
	Division      string       `json:"division"`
	DeptID        string       `json:"dept_id"`
	DeptName      string       `json:"dept_name"`
	CaseID        string       `json:"case_id"`
	BundleID      string       `json:"bundle_id,omitempty"`
	Status        Status       `json:"status"`
	StatusText    i18n.Text    `json:"status_text"`
	Step          string       `json:"step"` // the case's current (or last) step key
	StepName      i18n.Text    `json:"step_name"`
	// DueAt is the whole case's deadline while it runs (nil while suspended or closed).
	DueAt       *time.Time       `json:"due_at,omitempty"`
	SubmittedAt time.Time        `json:"submitted_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
	ClosedAt    *time.Time       `json:"closed_at,omitempty"`
	Outcome     workflow.Outcome `json:"outcome"`
	Revision    int              `json:"revision"` // 1, plus one per answered correction
}

// AttachedMaterial is one material of an application as it stands.
type AttachedMaterial struct {
	Key       string    `json:"key"`
	Name      i18n.Text `json:"name"` // the item's name for the material
	Source    string    `json:"source"`
	File      *File     `json:"file,omitempty"`
	LicenseID string    `json:"license_id,omitempty"`
	// Licence is the licence standing in for the material as the handling officer read it
	// (verified, the use recorded); nil for everyone else.
	Licence *UsedLicence `json:"licence,omitempty"`
}

// ApplicationDetail is everything about one application its reader may see.
type ApplicationDetail struct {
	Application
	Item Item       `json:"item"` // the version applied under
	Form *form.Form `json:"-"`
	// Values are the current revision's values: decrypted for the applicant and the
	// handling department's staff only; nil for anyone else (supervisors see the case).
	Values    form.Values        `json:"values,omitempty"`
	Materials []AttachedMaterial `json:"materials"`
	// Missing lists the keys of required materials not attached: accepted with deficiencies
	// (容缺受理), for the officer to ask for in a correction request if needed.
	Missing    []string             `json:"missing,omitempty"`
	Case       workflow.Case        `json:"case"`
	History    []workflow.Event     `json:"history"`
	Correction *workflow.Correction `json:"correction,omitempty"`
	// Payment is the order of the item's fees (nil: no fees, or none raised yet).
	Payment *Payment `json:"payment,omitempty"`
	// Licence is the e-licence issued as the result once approved (nil: none yet).
	Licence *HeldLicence `json:"licence,omitempty"`
}

// FormDraft is what a new application starts from: the item, the current form version and
// the values prefilled from the applicant's identity and the base libraries.
type FormDraft struct {
	Item          Item
	FormVersionID string
	Form          *form.Form
	Values        form.Values
	// DueBy is when the application would be due if submitted now: the promised working
	// days (承诺时限) on the working-day calendar.
	DueBy time.Time
	// Licences are, per material key, the applicant's licences in force that may stand in
	// for it (LicenceChoices).
	Licences map[string][]HeldLicence
}

// File is a file of an applicant's personal space (我的空间).
type File struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SM3         string    `json:"sm3"`
	CreatedAt   time.Time `json:"created_at"`
}

// MineFilter selects an applicant's applications.
type MineFilter struct {
	BundleID string // only the members of this bundle application
	Limit    int    // default 20, at most 100
	Offset   int
}

// BundleStatus is a bundle application's overall status.
type BundleStatus string

const (
	BundleInProgress    BundleStatus = "in_progress"    // 办理中
	BundleCompleted     BundleStatus = "completed"      // every member closed, none refused, one approved at least (已办结)
	BundlePartlyRefused BundleStatus = "partly_refused" // a member was refused (部分不予办理)
	BundleWithdrawn     BundleStatus = "withdrawn"      // every member withdrawn (已撤回)
)

// BundleStatusNames are their display names.
var BundleStatusNames = map[BundleStatus]i18n.Text{
	BundleInProgress:    i18n.T("办理中", "in progress"),
	BundleCompleted:     i18n.T("已办结", "completed"),
	BundlePartlyRefused: i18n.T("部分不予办理", "partly refused"),
	BundleWithdrawn:     i18n.T("已撤回", "withdrawn"),
}

// BundleCounts count a bundle application's members by status.
type BundleCounts struct {
	Total      int `json:"total"`
	Open       int `json:"open"` // submitted or in review
	Correction int `json:"correction"`
	Approved   int `json:"approved"`
	Rejected   int `json:"rejected"`
	Withdrawn  int `json:"withdrawn"`
}

// BundleApplication is one 一件事 application with its members and one overall status.
type BundleApplication struct {
	ID            string        `json:"id"`
	Number        string        `json:"number"`
	BundleCode    string        `json:"bundle_code"`
	BundleName    string        `json:"bundle_name"`
	BundleNameEn  string        `json:"bundle_name_en"`
	BundleVersion int           `json:"bundle_version"`
	FormVersionID string        `json:"form_version_id"`
	Applicant     ApplicantRef  `json:"applicant"`
	Division      string        `json:"division"`
	Members       []Application `json:"members"`
	Status        BundleStatus  `json:"status"`
	StatusText    i18n.Text     `json:"status_text"`
	Counts        BundleCounts  `json:"counts"`
	SubmittedAt   time.Time     `json:"submitted_at"`
}

// Notice is what the notifier needs to tell an applicant about their application.
type Notice struct {
	ApplicationID string
	Number        string
	ItemCode      string
	ItemName      string
	ItemNameEn    string
	Applicant     authz.Subject // Kind, ID and Name
	Phone         string        // the contact mobile, "" for none
	BundleID      string
}

// Event subjects of applications, published in the transaction of the submission.
const (
	EventApplicationSubmitted = "dgov.govservice.application.submitted"
)

// SubmittedEvent is the payload of EventApplicationSubmitted.
type SubmittedEvent struct {
	ID            string     `json:"id"`
	Number        string     `json:"number"`
	Item          string     `json:"item"`
	ItemVersion   int        `json:"item_version"`
	ApplicantKind authz.Kind `json:"applicant_kind"`
	ApplicantID   string     `json:"applicant_id"`
	CaseID        string     `json:"case_id"`
	DeptID        string     `json:"dept_id"`
	Division      string     `json:"division"`
	BundleID      string     `json:"bundle_id,omitempty"`
	At            time.Time  `json:"at"`
}

// Audit actions of applications.
const (
	ActionSubmitted       = "govservice.application.submitted"
	ActionBundleSubmitted = "govservice.bundle_application.submitted"
	ActionAnswered        = "govservice.application.answered"
	ActionWithdrawn       = "govservice.application.withdrawn"
	// ActionRead: staff read an application's personal data (values, materials).
	ActionRead     = "govservice.application.read"
	ActionFileRead = "govservice.file.read"
)

// RefPrefix starts the workflow ref of an application's case: "application:<id>".
const RefPrefix = "application:"

// CaseKey is the workflow definition key of an item's cases.
func CaseKey(itemCode string) string { return "service:" + itemCode }

// Errors of applications.
var (
	ErrItemInactive = &i18n.Error{Code: "govservice.item_inactive", Status: http.StatusConflict, Field: "item_code",
		Msg: i18n.T("该事项已停止网上办理", "this item can no longer be applied for online")}
	ErrBundleInactive = &i18n.Error{Code: "govservice.bundle_inactive", Status: http.StatusConflict, Field: "bundle_code",
		Msg: i18n.T("该“一件事”已停止网上办理", "this bundle can no longer be applied for online")}
	ErrApplicantKind = &i18n.Error{Code: "govservice.applicant_kind", Status: http.StatusForbidden,
		Msg: i18n.T("该事项不受理此类申请人的申请", "this item does not take applications from this kind of applicant")}
	ErrDivision = &i18n.Error{Code: "govservice.division", Status: http.StatusBadRequest, Field: "division",
		Msg: i18n.T("请选择有效的办理地区（GB/T 2260 行政区划代码）", "choose a valid division (GB/T 2260 code) to apply in")}
	ErrNoDepartment = &i18n.Error{Code: "govservice.no_department", Status: http.StatusUnprocessableEntity, Field: "division",
		Msg: i18n.T("所选地区暂无承办该事项的部门", "no department handles this item in the chosen division")}
	ErrMaterialUnknown = &i18n.Error{Code: "govservice.material_unknown", Status: http.StatusBadRequest,
		Msg: i18n.T("该事项没有这项申请材料", "the item asks for no such material")}
	ErrMaterialSource = &i18n.Error{Code: "govservice.material_source", Status: http.StatusBadRequest,
		Msg: i18n.T("材料来源应为上传文件、我的空间中的文件或电子证照", "a material is an upload, a file of your personal space or an e-licence")}
	ErrLicenseUnavailable = &i18n.Error{Code: "govservice.license_unavailable", Status: http.StatusNotImplemented,
		Msg: i18n.T("电子证照调用暂未开通，请上传材料或从“我的空间”选择文件", "e-licences are not available yet: upload the material or pick a file of your personal space")}
	// ErrBundleLicense: a use grant names one department and one application, and a bundle
	// fans out to several; licences stand in for materials of single items only, for now.
	ErrBundleLicense = &i18n.Error{Code: "govservice.bundle_license", Status: http.StatusBadRequest,
		Msg: i18n.T("“一件事”申请暂不能以电子证照代替材料，请上传材料或从“我的空间”选择文件", "a bundle application cannot use an e-licence instead of a material yet: upload it or pick a file of your personal space")}
	ErrFileType = &i18n.Error{Code: "govservice.file_type", Status: http.StatusUnsupportedMediaType,
		Msg: i18n.T("材料只能是 PDF、JPG 或 PNG 文件", "a material must be a PDF, JPG or PNG file")}
	ErrFileEmpty = &i18n.Error{Code: "govservice.file_empty", Status: http.StatusBadRequest,
		Msg: i18n.T("上传的文件是空的", "the uploaded file is empty")}
	ErrTooManyMaterials = &i18n.Error{Code: "govservice.too_many_materials", Status: http.StatusBadRequest, Field: "materials",
		Msg: i18n.T(fmt.Sprintf("一次最多提交 %d 份材料", maxMaterials), fmt.Sprintf("at most %d materials at once", maxMaterials))}
	ErrFileNotFound = &i18n.Error{Code: "govservice.file_not_found", Status: http.StatusNotFound,
		Msg: i18n.T("文件不存在", "no such file")}
)

// ErrFileTooLarge is the error for an upload over the limit.
func ErrFileTooLarge(limit int64) *i18n.Error {
	return i18n.Errorf(http.StatusRequestEntityTooLarge, "govservice.file_too_large", "单个材料不能超过 %d MB", "a material may be at most %d MB", limit>>20)
}

// maxMaterials bounds the materials of one submission or answer.
const maxMaterials = 50

// FormError is the error of a submission whose values the form refuses: an *i18n.Error for
// the single-problem answer (its Err), with every field's fault in Errors for marking them.
// errors.As(err, &fe) with fe a *FormError finds it; FieldErrors(err) returns the list.
type FormError struct {
	Errors form.Errors
	err    *i18n.Error
}

func (e *FormError) Error() string { return e.err.Error() }

// Unwrap lets i18n.As find the *i18n.Error (code "form.invalid", status 400).
func (e *FormError) Unwrap() error { return e.err }

// As also fills a *form.Errors target, for when the form package makes Errors an error.
func (e *FormError) As(target any) bool {
	if p, ok := target.(*form.Errors); ok {
		*p = e.Errors
		return true
	}
	return false
}

func invalidForm(errs form.Errors) error {
	e, _ := i18n.As(errs.Err())
	return &FormError{Errors: errs, err: e}
}

// FieldErrors returns the per-field faults of a refused submission.
func FieldErrors(err error) (form.Errors, bool) {
	var fe *FormError
	if errors.As(err, &fe) {
		return fe.Errors, true
	}
	return nil, false
}

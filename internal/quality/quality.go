// Package quality checks the data quality of datasets (issue D5): rules per dataset —
// completeness, format (Chinese identifiers, dates, patterns), uniqueness, references into
// the base libraries and timeliness against the catalogue resource's update cycle — and
// reports per dataset and per department.
//
// A run streams the active version of a dataset once (dataset.Service.Each), evaluating every
// rule on every row, and stores a report: the counts of each rule exactly, and the findings
// (row, column, rule, reason in both languages) up to Options.MaxFindings. Rules come from two
// places: defaults derived from the schema of the active version (required and key columns →
// completeness, typed identifiers and dates → format, unique and key columns → uniqueness, a
// timeliness rule when the dataset is attached to a resource with a regular update cycle),
// and explicit rules staff add, e.g. a format rule on a column loaded as plain text, or a
// reference into the population library. An explicit rule replaces the default of the same
// kind on the same column. Each fault is reported once: an empty value only by completeness,
// and a malformed identifier only by its format rule when there is one (otherwise by the
// reference rule, which cannot find it).
//
// The Service itself does not authorize: jobs and the demo call it as the system. Staff reach
// it through Access, which checks the subject's right in the division of the catalogue resource
// a dataset is attached to, so the console and the API authorize alike. Changes by staff
// (rules, attachments, runs) are audited in their transaction. Findings never quote values, so
// a report shows no personal data.
//
// Checks also run by themselves (jobs.go): a periodic sweep finds attached datasets whose
// active version has no report yet (a load completed) or whose timeliness verdict has changed
// since the last report, and queues a check of each on the job queue.
package quality

import (
	"context"
	"embed"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations create quality_targets, quality_rules, quality_reports and quality_findings;
// they reference no other package's tables.
var Migrations = db.Migrations("quality", migrationFiles, "migrations")

// Kind of a rule.
type Kind string

const (
	Completeness Kind = "completeness" // the column has a value
	Format       Kind = "format"       // the value has the rule's Format
	Uniqueness   Kind = "uniqueness"   // no earlier row has the same value
	Reference    Kind = "reference"    // the value exists in the rule's base Library
	Timeliness   Kind = "timeliness"   // the active version is no older than the update cycle allows
)

// KindNames are the kinds' display names.
var KindNames = map[Kind]i18n.Text{
	Completeness: i18n.T("完整性", "completeness"),
	Format:       i18n.T("格式规范", "format"),
	Uniqueness:   i18n.T("唯一性", "uniqueness"),
	Reference:    i18n.T("关联一致性", "reference"),
	Timeliness:   i18n.T("时效性", "timeliness"),
}

// Name is the display name of a kind.
func (k Kind) Name() i18n.Text { return KindNames[k] }

// Formats a format rule checks.
const (
	FormatResidentID = "resident_id" // 公民身份号码, GB 11643 (check digit, division, birth date)
	FormatCreditCode = "credit_code" // 统一社会信用代码, GB 32100
	FormatDivision   = "division"    // 行政区划代码, GB/T 2260
	FormatMobile     = "mobile"      // mainland mobile number
	FormatDate       = "date"        // YYYY-MM-DD
	FormatRegex      = "regex"       // the whole value matches Rule.Pattern
)

// FormatNames are the formats' display names.
var FormatNames = map[string]i18n.Text{
	FormatResidentID: i18n.T("公民身份号码", "resident ID number"),
	FormatCreditCode: i18n.T("统一社会信用代码", "unified social credit code"),
	FormatDivision:   i18n.T("行政区划代码", "division code"),
	FormatMobile:     i18n.T("手机号码", "mobile number"),
	FormatDate:       i18n.T("日期", "date"),
	FormatRegex:      i18n.T("正则表达式", "regular expression"),
}

// Base libraries a reference rule looks values up in.
const (
	LibraryPopulation    = "population"     // by ID number
	LibraryLegalEntities = "legal_entities" // by unified social credit code
)

// LibraryNames are the libraries' display names.
var LibraryNames = map[string]i18n.Text{
	LibraryPopulation:    i18n.T("人口库（按身份证号）", "population (by ID number)"),
	LibraryLegalEntities: i18n.T("法人库（按统一社会信用代码）", "legal entities (by credit code)"),
}

// Rule is one check of a dataset.
type Rule struct {
	ID        string `json:"id"` // "default:<kind>:<column>" for a rule derived from the schema
	DatasetID string `json:"dataset_id"`
	Kind      Kind   `json:"kind"`
	Column    string `json:"column,omitempty"`  // every kind but timeliness
	Format    string `json:"format,omitempty"`  // Format: one of the Format* constants
	Pattern   string `json:"pattern,omitempty"` // FormatRegex
	Library   string `json:"library,omitempty"` // Reference: one of the Library* constants
	// GraceHours is how long past its update cycle a dataset may be before it is stale
	// (Timeliness); 0 means DefaultGrace.
	GraceHours int       `json:"grace_hours,omitempty"`
	Default    bool      `json:"default,omitempty"` // derived from the schema, not stored
	CreatedBy  string    `json:"created_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Describe is a short display of what the rule checks.
func (r Rule) Describe() i18n.Text {
	switch r.Kind {
	case Format:
		f := FormatNames[r.Format]
		if r.Format == FormatRegex {
			return i18n.T(r.Column+" 符合 "+r.Pattern, r.Column+" matches "+r.Pattern)
		}
		return i18n.T(r.Column+" 为有效的"+f.ZH, r.Column+" is a valid "+f.EN)
	case Completeness:
		return i18n.T(r.Column+" 不为空", r.Column+" has a value")
	case Uniqueness:
		return i18n.T(r.Column+" 不重复", r.Column+" is unique")
	case Reference:
		l := LibraryNames[r.Library]
		return i18n.T(r.Column+" 存在于"+l.ZH, r.Column+" exists in "+l.EN)
	case Timeliness:
		return i18n.T("按更新周期及时更新", "updated as often as the update cycle says")
	}
	return i18n.T(string(r.Kind), string(r.Kind))
}

// Target is the catalogue resource a dataset stands behind: its provider department and
// division (for the department report and authorization) and its update cycle (timeliness).
type Target struct {
	DatasetID    string    `json:"dataset_id"`
	ResourceID   string    `json:"resource_id"`
	ResourceName string    `json:"resource_name"`
	DeptID       string    `json:"dept_id"`
	DeptName     string    `json:"dept_name"`
	DivisionCode string    `json:"division_code"`
	UpdateCycle  string    `json:"update_cycle"` // catalog.UpdateCycle
	UpdatedAt    time.Time `json:"updated_at"`
}

// RuleResult is how one rule fared in a run.
type RuleResult struct {
	Rule    Rule  `json:"rule"`
	Checked int64 `json:"checked"` // rows checked (1 for timeliness)
	Failed  int64 `json:"failed"`  // rows that failed
}

// Passed is Checked − Failed.
func (r RuleResult) Passed() int64 { return r.Checked - r.Failed }

// Score is the share of rows that passed, in percent (100 when nothing was checked).
func (r RuleResult) Score() float64 { return score(r.Checked-r.Failed, r.Checked) }

// Finding is one failure of one rule on one row (RowNo 0: the whole dataset, e.g. timeliness).
type Finding struct {
	RowNo  int64     `json:"row_no"`
	Line   int64     `json:"line"` // in the source file the version was loaded from
	Column string    `json:"column,omitempty"`
	RuleID string    `json:"rule_id"`
	Kind   Kind      `json:"kind"`
	Code   string    `json:"code"`
	Reason i18n.Text `json:"reason"`
}

// Report is the result of one run over a version of a dataset.
type Report struct {
	ID           string       `json:"id"`
	DatasetID    string       `json:"dataset_id"`
	Version      int          `json:"version"`
	ResourceID   string       `json:"resource_id,omitempty"`
	DeptID       string       `json:"dept_id,omitempty"`
	DivisionCode string       `json:"division_code,omitempty"`
	RanAt        time.Time    `json:"ran_at"`
	TotalRows    int64        `json:"total_rows"`
	BadRows      int64        `json:"bad_rows"` // rows failing at least one row rule
	Stale        bool         `json:"stale"`    // the timeliness rule failed
	Rules        []RuleResult `json:"rules"`
	// FindingsTotal counts every finding; Findings holds the first MaxFindings (or, from
	// ReportFor, as many as asked for), in row order.
	FindingsTotal int64     `json:"findings_total"`
	Findings      []Finding `json:"findings,omitempty"`
}

// Score is the share of rows that passed every row rule, in percent.
func (r Report) Score() float64 { return score(r.TotalRows-r.BadRows, r.TotalRows) }

// BadRowNumbers are the row numbers of the stored findings, without the whole-dataset ones,
// ascending and distinct.
func (r Report) BadRowNumbers() []int64 {
	var out []int64
	for _, f := range r.Findings {
		if f.RowNo > 0 && (len(out) == 0 || out[len(out)-1] != f.RowNo) {
			out = append(out, f.RowNo)
		}
	}
	return out
}

func score(passed, total int64) float64 {
	if total <= 0 {
		return 100
	}
	return float64(passed) * 100 / float64(total)
}

// Datasets is what quality needs of the dataset engine; *dataset.Service has it.
type Datasets interface {
	Active(ctx context.Context, datasetID string) (dataset.Version, error)
	Each(ctx context.Context, datasetID string, version int, fn func(dataset.Row) error) error
}

// BaseLibraries is what reference rules need of the base libraries; *baselib.Service has it.
type BaseLibraries interface {
	FindPersonByIDNumber(ctx context.Context, number string) (baselib.Person, error)
	FindEntityByCreditCode(ctx context.Context, code string) (baselib.Entity, error)
}

// AuditFunc records one event inside the transaction that makes the change (as catalog's).
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Audit actions; the object is "dataset:<id>".
const (
	ActionRuleAdd    = "quality.rule.add"
	ActionRuleDelete = "quality.rule.delete"
	ActionRulesSet   = "quality.rules.set"
	ActionAttach     = "quality.attach"
	ActionRun        = "quality.run"
)

// Options configure New.
type Options struct {
	Now func() time.Time // default time.Now
	// MaxFindings caps the findings stored per report; 0 = DefaultMaxFindings. Counts are exact.
	MaxFindings int
	// Audit, when set, is called inside the transaction of every change staff make.
	Audit AuditFunc
}

// Defaults.
const (
	DefaultMaxFindings = 1000
	DefaultGrace       = 24 * time.Hour
)

// Errors of the package; compare with errors.Is.
var (
	ErrRule     = i18n.New("quality.rule", "质量规则无效", "invalid quality rule")
	ErrNoTarget = &i18n.Error{Code: "quality.no_target", Status: http.StatusNotFound,
		Msg: i18n.T("该数据集尚未关联目录资源", "the dataset is not attached to a catalogue resource")}
	ErrNoReport = &i18n.Error{Code: "quality.no_report", Status: http.StatusNotFound,
		Msg: i18n.T("该数据集尚无质量报告", "the dataset has no quality report yet")}
)

// Service runs quality rules and keeps reports. It is safe for concurrent use.
type Service struct {
	d     *db.DB
	data  Datasets
	base  BaseLibraries
	now   func() time.Time
	max   int
	audit AuditFunc
}

// New returns the quality service on d.
func New(d *db.DB, data Datasets, base BaseLibraries, opts ...Options) *Service {
	s := &Service{d: d, data: data, base: base, now: time.Now, max: DefaultMaxFindings}
	for _, o := range opts {
		if o.Now != nil {
			s.now = o.Now
		}
		if o.MaxFindings > 0 {
			s.max = o.MaxFindings
		}
		if o.Audit != nil {
			s.audit = o.Audit
		}
	}
	return s
}

func (s *Service) clock() time.Time { return db.Now(s.now()) }

// record audits a change by actor in tx (nothing without an AuditFunc).
func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, datasetID string, detail map[string]any) error {
	if s.audit == nil {
		return nil
	}
	return s.audit(ctx, tx, actor, action, "dataset:"+datasetID, detail)
}

// Package govservice is the catalogue of government service items (政务服务事项, issue P5):
// each item's standard elements — code, name, type, implementing department and level, legal
// basis, conditions, statutory and promised time limits, materials (and the e-licenses that can
// stand in for them), fees, process steps, channels, the "zero visits" flag, result and FAQ —
// the form an applicant fills in, and 一件事 bundles that combine several items behind one form.
//
// Items are data in a pack (packs/shanxi/services/*.json), never code: LoadPack reads and
// validates a pack, Service.Sync stores it (a changed item gets a new version, an item gone
// from the pack is deactivated, never deleted, so applications made under it keep their
// guide), and Indexer makes the guides searchable in Chinese.
//
// The catalogue is public: anyone, signed in or not, may read the guides (办事指南), so reads
// take no actor. Changing it is loading a pack, an operator's act recorded in the audit log.
package govservice

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Item is one service item as the pack declares it (the "Pack content" part of the P5 design
// contract). Version, Active and UpdatedAt are the store's: a pack must not set them.
type Item struct {
	Code          string     `json:"code"` // GB/T 39554.1 basic code, see ParseItemCode
	Name          string     `json:"name"`
	NameEn        string     `json:"name_en"`
	Type          string     `json:"type"`       // one of Types
	Department    string     `json:"department"` // department kind code (org.DepartmentKinds)
	Level         string     `json:"level"`      // province | city | county
	LegalBasis    []string   `json:"legal_basis"`
	Conditions    string     `json:"conditions"`
	StatutoryDays int        `json:"statutory_days"` // working days the law allows
	PromisedDays  int        `json:"promised_days"`  // working days promised (承诺时限), ≤ statutory
	Materials     []Material `json:"materials"`
	Fees          []Fee      `json:"fees"`
	Steps         []Step     `json:"steps"`
	Channels      []string   `json:"channels"` // web | app | hall
	ZeroVisit     bool       `json:"zero_visit"`
	Result        Result     `json:"result"`
	FAQ           []FAQ      `json:"faq"`
	// Form is the form declaration (see the form engine); kept raw here and checked only for
	// what the catalogue needs: field keys, types, prefill sources and conditions.
	Form     json.RawMessage `json:"form"`
	Keywords []string        `json:"keywords"`

	// Additions to the contract (optional in the pack).

	// Applicants are who may apply: citizen, enterprise or both (default both).
	Applicants []authz.Kind `json:"applicants,omitempty"`
	// Summary is one line for lists and search results.
	Summary string `json:"summary,omitempty"`

	// Filled by the store on reads.
	Version   int        `json:"version,omitempty"`
	Active    bool       `json:"active,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// Material is one required or optional document (申请材料).
type Material struct {
	Key      string `json:"key"`
	Name     string `json:"name"`
	NameEn   string `json:"name_en"`
	Required bool   `json:"required"`
	// LicenseType is the e-license (电子证照) type that can stand in for the paper, e.g.
	// 居民身份证, 营业执照; "" when none can. One of LicenseTypes.
	LicenseType string `json:"license_type"`
	Note        string `json:"note"`
}

// Fee is one charge. Most items are free (no fees).
type Fee struct {
	Name      string `json:"name"`
	AmountFen int64  `json:"amount_fen"` // per Unit, in fen
	Basis     string `json:"basis"`      // the pricing document
	Unit      string `json:"unit,omitempty"`
}

// Step is one step of the item's process, in the workflow engine's Step JSON (pre_review 预审,
// accept 受理, review 审查, decide 决定, deliver 送达, or any other key).
type Step struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	NameEn string `json:"name_en"`
	Role   string `json:"role"` // authz role that may act; "" = officer
	Days   int    `json:"days"` // working days allowed for this step
}

// Result is what the applicant receives (办理结果).
type Result struct {
	Name        string `json:"name"`
	NameEn      string `json:"name_en,omitempty"`
	LicenseType string `json:"license_type"` // the e-license issued, "" when none
	// Items fill the issued licence's data items (the type's template) that the form does
	// not name alike: licence item key → a form field key, "$number" for the application
	// number, or else the text itself. Items the form names alike are copied without it.
	Items map[string]string `json:"items,omitempty"`
}

// FAQ is one common question (常见问题).
type FAQ struct {
	Q string `json:"q"`
	A string `json:"a"`
}

// Bundle is a 一件事 package: one application with one combined form that fans out to several
// items, each receiving the listed fields of the combined form.
type Bundle struct {
	Code    string          `json:"code"`
	Name    string          `json:"name"`
	NameEn  string          `json:"name_en"`
	Summary string          `json:"summary"`
	Items   []string        `json:"items"` // item codes, in the order they are handled
	Form    json.RawMessage `json:"form"`
	// Fields maps each member item code to the combined form's field keys it receives.
	Fields map[string][]string `json:"fields"`

	// Additions to the contract (optional in the pack).

	// Lead is the department kind that leads the bundle (牵头部门); "" for none.
	Lead     string   `json:"lead,omitempty"`
	Keywords []string `json:"keywords,omitempty"`

	// Filled by the store on reads.
	Version   int        `json:"version,omitempty"`
	Active    bool       `json:"active,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// Item types (事项类型) a pack may declare; the national basic directory's administrative
// powers that citizens and enterprises apply for, plus public services.
const (
	TypeLicensing    = "行政许可"
	TypeConfirmation = "行政确认"
	TypeBenefit      = "行政给付"
	TypeAdjudication = "行政裁决"
	TypeReward       = "行政奖励"
	TypeOtherPower   = "其他行政权力"
	TypePublic       = "公共服务"
)

// Levels at which an item is implemented (行使层级).
const (
	LevelProvince = "province"
	LevelCity     = "city"
	LevelCounty   = "county"
)

// Channels through which an item can be handled.
const (
	ChannelWeb  = "web"  // 网上办 (portal)
	ChannelApp  = "app"  // 掌上办 (mobile)
	ChannelHall = "hall" // 窗口办 (service hall)
)

// Types lists the item types with their display names.
var Types = map[string]i18n.Text{
	TypeLicensing:    i18n.T("行政许可", "administrative licensing"),
	TypeConfirmation: i18n.T("行政确认", "administrative confirmation"),
	TypeBenefit:      i18n.T("行政给付", "administrative benefit"),
	TypeAdjudication: i18n.T("行政裁决", "administrative adjudication"),
	TypeReward:       i18n.T("行政奖励", "administrative reward"),
	TypeOtherPower:   i18n.T("其他行政权力", "other administrative power"),
	TypePublic:       i18n.T("公共服务", "public service"),
}

// Levels lists the implementing levels with their display names.
var Levels = map[string]i18n.Text{
	LevelProvince: i18n.T("省级", "province"),
	LevelCity:     i18n.T("市级", "city"),
	LevelCounty:   i18n.T("县级", "county"),
}

// ChannelNames lists the channels with their display names.
var ChannelNames = map[string]i18n.Text{
	ChannelWeb:  i18n.T("网上办", "online"),
	ChannelApp:  i18n.T("掌上办", "mobile"),
	ChannelHall: i18n.T("窗口办", "service hall"),
}

// LicenseTypes are the e-license (电子证照) types a material may be replaced by or an item may
// issue. A pack naming another type is refused, so that a typo cannot silently turn off the
// "pick from my e-licenses" choice.
var LicenseTypes = []string{
	// Identity and civil status.
	"居民身份证", "户口簿", "居住证", "结婚证", "离婚证", "出生医学证明", "残疾人证",
	"机动车驾驶证", "机动车行驶证",
	// Social security and welfare.
	"社会保障卡", "医疗保障电子凭证", "低保证", "特困人员救助供养证",
	// Education and professions.
	"毕业证书", "学位证书", "教师资格证", "职业资格证书", "职业技能等级证书", "医师执业证书",
	"护士执业证书",
	// Enterprises and licences.
	"营业执照", "食品经营许可证", "药品经营许可证", "卫生许可证", "特种设备使用登记证",
	"道路运输经营许可证", "危险化学品经营许可证", "取水许可证", "排污许可证",
	// Land and construction.
	"不动产权证书", "不动产登记证明", "建设用地规划许可证", "建设工程规划许可证", "建筑工程施工许可证",
}

// Errors of the catalogue.
var (
	ErrNotFound = &i18n.Error{Code: "govservice.not_found", Status: http.StatusNotFound,
		Msg: i18n.T("未找到该服务事项", "no such service item")}
	ErrBundleNotFound = &i18n.Error{Code: "govservice.bundle_not_found", Status: http.StatusNotFound,
		Msg: i18n.T("未找到该“一件事”", "no such bundle")}
	ErrPackInvalid = &i18n.Error{Code: "govservice.pack_invalid", Status: http.StatusBadRequest,
		Msg: i18n.T("事项包内容有误", "the pack is invalid")}
)

// AuditFunc records one event inside the transaction that makes the change (as org's).
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Options configure the Service.
type Options struct {
	Now   func() time.Time // default time.Now
	Audit AuditFunc        // called inside the transaction of every change
}

// Event subjects, published in the transaction of the change.
const (
	// EventItemChanged: an item was added, changed (new version), deactivated or reactivated.
	EventItemChanged = "dgov.govservice.item.changed"
	// EventBundleChanged: the same for a bundle.
	EventBundleChanged = "dgov.govservice.bundle.changed"
)

// Event is the payload of the catalogue's events.
type Event struct {
	Code    string    `json:"code"`
	Version int       `json:"version"`
	Active  bool      `json:"active"`
	Change  string    `json:"change"` // added | changed | deactivated | reactivated
	At      time.Time `json:"at"`
}

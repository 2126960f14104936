package license

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Type is a licence type with its metadata and template (证照类型, after GB/T 36902's
// catalogue information and GB/T 36903's metadata).
type Type struct {
	// Code is the type code in the identifier: 1–32 of 0-9A-Z. The seeded types use the
	// initials of their pinyin names (YYZZ 营业执照); a pack may define types under the codes of
	// the national e-licence catalogue instead.
	Code       string     `json:"code"`
	Name       i18n.Text  `json:"name"`
	HolderKind HolderKind `json:"holder_kind"`
	// IssuerKinds are the department kinds (org's Department.Kind) that issue this type;
	// empty lets any registered issuer issue it.
	IssuerKinds []string  `json:"issuer_kinds"`
	Validity    Validity  `json:"validity"`
	Basis       string    `json:"basis,omitempty"` // the law or regulation the licence is issued under
	Items       []ItemDef `json:"items"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// Validity is how long a licence of a type is valid from its start; zero is without limit
// (长期有效).
type Validity struct {
	Years  int `json:"years,omitempty"`
	Months int `json:"months,omitempty"`
}

// LongTerm reports a validity without limit.
func (v Validity) LongTerm() bool { return v.Years == 0 && v.Months == 0 }

// Until is the end (exclusive) of a validity that starts at from: midnight in Beijing at the
// start of the same calendar date Years and Months later, so a five-year licence from
// 24 January 2025 is valid through 23 January 2030 (有效期至 2030年01月23日). nil without limit.
func (v Validity) Until(from time.Time) *time.Time {
	if v.LongTerm() {
		return nil
	}
	y, m, d := from.In(calendar.Beijing).Date()
	t := time.Date(y, m, d, 0, 0, 0, 0, calendar.Beijing).AddDate(v.Years, v.Months, 0).UTC()
	return &t
}

// ItemType is the type of a data item's value.
type ItemType string

const (
	ItemText   ItemType = "text"
	ItemDate   ItemType = "date"   // YYYY-MM-DD (GB/T 7408)
	ItemNumber ItemType = "number" // decimal, optional sign and fraction
)

// ItemDef is one data item of a type's template.
type ItemDef struct {
	Key      string    `json:"key"`
	Label    i18n.Text `json:"label"`
	Type     ItemType  `json:"type"`
	Required bool      `json:"required,omitempty"`
}

const maxItemValue = 2000 // characters

//go:embed types.json
var seedTypes []byte

// DefaultTypes are the common licence types this engine ships with (居民身份证 is not among
// them: the Ministry of Public Security issues it, not the province).
func DefaultTypes() []Type {
	var out []Type
	if err := json.Unmarshal(seedTypes, &out); err != nil {
		panic(fmt.Sprintf("license: types.json: %v", err))
	}
	return out
}

var itemKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// validate checks a type definition and normalises it.
func (t *Type) validate() error {
	t.Code = strings.ToUpper(strings.TrimSpace(t.Code))
	t.Name.ZH, t.Name.EN = strings.TrimSpace(t.Name.ZH), strings.TrimSpace(t.Name.EN)
	switch {
	case !codePart(t.Code):
		return invalid("code", "license.type.code", "证照类型代码应为1至32位数字或大写字母", "the type code is 1 to 32 digits or capital letters")
	case t.Name.ZH == "" || utf8.RuneCountInString(t.Name.ZH) > 100 || utf8.RuneCountInString(t.Name.EN) > 200:
		return invalid("name", "license.type.name", "请填写证照类型名称（最多100字）", "name the type (at most 100 characters)")
	case HolderKindNames[t.HolderKind] == (i18n.Text{}):
		return invalid("holder_kind", "license.type.holder_kind", "未知的持证主体类别", "unknown holder kind")
	case t.Validity.Years < 0 || t.Validity.Years > 100 || t.Validity.Months < 0 || t.Validity.Months > 11:
		return invalid("validity", "license.type.validity", "有效期应为0至100年又0至11个月", "validity is 0 to 100 years and 0 to 11 months")
	case len(t.Items) == 0 || len(t.Items) > 100:
		return invalid("items", "license.type.items", "证照模板应有1至100个信息项", "a template has 1 to 100 data items")
	case utf8.RuneCountInString(t.Basis) > 500:
		return invalid("basis", "license.type.basis", "设定依据最多500字", "the legal basis is at most 500 characters")
	}
	for i, k := range t.IssuerKinds {
		t.IssuerKinds[i] = strings.TrimSpace(k)
		if t.IssuerKinds[i] == "" {
			return invalid("issuer_kinds", "license.type.issuer_kinds", "发证部门类别不能为空", "an issuer kind is empty")
		}
	}
	seen := map[string]bool{}
	for i := range t.Items {
		it := &t.Items[i]
		it.Label.ZH = strings.TrimSpace(it.Label.ZH)
		switch {
		case !itemKey.MatchString(it.Key):
			return invalid("items", "license.type.item_key", "信息项代码“%s”无效（小写字母开头，字母、数字、下划线）", "data item key %q is invalid (a lower-case letter, then letters, digits, _)", clip(it.Key))
		case seen[it.Key]:
			return invalid("items", "license.type.item_dup", "信息项代码“%s”重复", "data item key %q is repeated", it.Key)
		case it.Label.ZH == "" || utf8.RuneCountInString(it.Label.ZH) > 50:
			return invalid("items", "license.type.item_label", "信息项“%s”须有名称（最多50字）", "data item %q needs a label (at most 50 characters)", it.Key)
		case it.Type != ItemText && it.Type != ItemDate && it.Type != ItemNumber:
			return invalid("items", "license.type.item_type", "信息项“%s”的类型无效", "data item %q has an invalid type", it.Key)
		}
		seen[it.Key] = true
	}
	return nil
}

// mayIssue reports whether a department of kind issues this type.
func (t Type) mayIssue(kind string) bool {
	return len(t.IssuerKinds) == 0 || slices.Contains(t.IssuerKinds, kind)
}

// checkHolder validates the holder against the type: kind, identity code type and number.
func (t Type) checkHolder(h Holder, now time.Time) (Holder, error) {
	h.Name = strings.TrimSpace(h.Name)
	if h.Name == "" || utf8.RuneCountInString(h.Name) > 200 {
		return h, invalid("holder.name", "license.holder.name", "请填写持证主体名称（最多200字）", "name the holder (at most 200 characters)")
	}
	info, ok := IDTypes[h.IDType]
	if !ok {
		return h, invalid("holder.id_type", "license.holder.id_type", "未知的持证主体代码类型", "unknown holder identity code type")
	}
	if t.HolderKind != AnyHolder && info.Kind != t.HolderKind {
		return h, ErrHolderKind
	}
	h.Kind = info.Kind
	n, err := normaliseHolderID(h.IDType, h.IDNumber, now)
	if err != nil {
		return h, err
	}
	h.IDNumber = n
	return h, nil
}

var (
	passportNo   = regexp.MustCompile(`^[A-Z0-9]{5,17}$`)
	hkMacaoNo    = regexp.MustCompile(`^[HM][0-9]{8,10}$`)
	taiwanNo     = regexp.MustCompile(`^[0-9]{8}([0-9]{2})?$`)
	foreignPRNo  = regexp.MustCompile(`^[A-Z0-9]{15}$|^9[0-9]{16}[0-9X]$`)
	errHolderNum = invalid("holder.id_number", "license.holder.id_number", "持证主体代码格式无效", "the holder's identity number is malformed")
)

// normaliseHolderID validates an identity number of type t and returns its canonical form:
// GB 11643 for resident ID numbers, GB 32100 for credit codes, the document's format otherwise.
func normaliseHolderID(t IDType, s string, now time.Time) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch t {
	case IDResident:
		r, err := ids.ValidateResidentAt(s, now)
		if err != nil {
			return "", err
		}
		return r.Number, nil
	case IDCreditCode:
		c, err := ids.ValidateCreditCode(s)
		if err != nil {
			return "", err
		}
		return c.Code, nil
	case IDPassport:
		if passportNo.MatchString(s) {
			return s, nil
		}
	case IDHKMacao:
		if hkMacaoNo.MatchString(s) {
			return s, nil
		}
	case IDTaiwan:
		if taiwanNo.MatchString(s) {
			return s, nil
		}
	case IDForeignPR:
		if foreignPRNo.MatchString(s) {
			return s, nil
		}
	}
	return "", errHolderNum
}

// checkItems validates values against the template and returns them as the licence's
// items, in template order, labelled. Unknown keys are refused; empty optional items are left out.
func (t Type) checkItems(values map[string]string) ([]Item, error) {
	for k := range values {
		if !slices.ContainsFunc(t.Items, func(d ItemDef) bool { return d.Key == k }) {
			return nil, invalid("items", "license.item.unknown", "证照类型没有信息项“%s”", "the licence type has no data item %q", clip(k))
		}
	}
	out := make([]Item, 0, len(t.Items))
	for _, d := range t.Items {
		v := strings.TrimSpace(values[d.Key])
		if v == "" {
			if d.Required {
				return nil, itemInvalid(d, "license.item.required", "请填写“%s”", "%s is required")
			}
			continue
		}
		if utf8.RuneCountInString(v) > maxItemValue || !utf8.ValidString(v) {
			return nil, itemInvalid(d, "license.item.too_long", "“%s”最多2000字", "%s is at most 2000 characters")
		}
		switch d.Type {
		case ItemDate:
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				return nil, itemInvalid(d, "license.item.date", "“%s”应为日期（如2025-01-24）", "%s must be a date (e.g. 2025-01-24)")
			}
		case ItemNumber:
			if _, err := strconv.ParseFloat(v, 64); err != nil || strings.ContainsAny(v, "eEinfINFxX_") {
				return nil, itemInvalid(d, "license.item.number", "“%s”应为数字", "%s must be a number")
			}
		}
		out = append(out, Item{Key: d.Key, Label: d.Label.ZH, Value: v})
	}
	return out, nil
}

// itemInvalid is a bad value of data item d; zh and en each take the item's label once.
func itemInvalid(d ItemDef, code, zh, en string) error {
	return &i18n.Error{Code: code, Status: http.StatusBadRequest, Field: "items." + d.Key,
		Msg: i18n.T(fmt.Sprintf(zh, d.Label.ZH), fmt.Sprintf(en, d.Label.In(i18n.EN)))}
}

func clip(v string) string {
	if utf8.RuneCountInString(v) <= 40 {
		return v
	}
	return string([]rune(v)[:40]) + "…"
}

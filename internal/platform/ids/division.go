package ids

import (
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Errors of administrative division codes; compare with errors.Is.
var (
	ErrDivisionLength   = i18n.New("ids.division.length", "行政区划代码应为6位或9位", "division code must be 6 or 9 digits")
	ErrDivisionFormat   = i18n.New("ids.division.format", "行政区划代码应全为数字", "division code must be all digits")
	ErrDivisionProvince = i18n.New("ids.division.province", "行政区划代码的省级代码无效", "division code has an unknown province")
	ErrDivisionTownship = i18n.New("ids.division.township", "乡级行政区划代码无效", "township code is invalid")
)

// DivisionLevel is the tier of a division code.
type DivisionLevel uint8

const (
	LevelUnknown    DivisionLevel = iota
	LevelProvince                 // 省级: 110000
	LevelPrefecture               // 地级: 110100
	LevelCounty                   // 县级: 110101
	LevelTownship                 // 乡级: 110101001
)

func (l DivisionLevel) String() string {
	switch l {
	case LevelProvince:
		return "province"
	case LevelPrefecture:
		return "prefecture"
	case LevelCounty:
		return "county"
	case LevelTownship:
		return "township"
	}
	return "unknown"
}

// Text is the level for display.
func (l DivisionLevel) Text() i18n.Text {
	switch l {
	case LevelProvince:
		return i18n.T("省级", "province level")
	case LevelPrefecture:
		return i18n.T("地级", "prefecture level")
	case LevelCounty:
		return i18n.T("县级", "county level")
	case LevelTownship:
		return i18n.T("乡级", "township level")
	}
	return i18n.T("未知", "unknown")
}

// Division is a parsed division code: 6 digits of GB/T 2260 (province, prefecture, county),
// or 9 digits, GB/T 10114 adding 3 for the township.
type Division struct {
	Code  string
	Level DivisionLevel
}

// ValidateDivision validates and parses a 6- or 9-digit division code. Only the province is
// checked against GB/T 2260; whether the rest names a division that exists (or existed) needs
// a dated table this package does not carry.
func ValidateDivision(s string) (Division, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n != 6 && n != 9 {
		return Division{}, fail(ErrDivisionLength, "行政区划代码应为6位或9位数字，实际为%d位", "division code must be 6 or 9 digits, got %d", n)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return Division{}, fail(ErrDivisionFormat, "行政区划代码第%d位应为数字，实际为%q", "division code character %d must be a digit, got %q", utf8.RuneCountInString(s[:i])+1, string(r))
	}
	if !ProvinceKnown(s) {
		return Division{}, fail(ErrDivisionProvince, "行政区划代码%s的省级代码%s无效", "division code %s has an unknown province code %s", s, s[:2])
	}
	base := Division{Code: s[:6], Level: sixDigitLevel(s[:6])}
	if len(s) == 6 {
		return base, nil
	}
	// GB/T 10114: townships hang under a county, or under a prefecture-level city with no
	// counties (e.g. Dongguan 441900); never directly under a province.
	if base.Level == LevelProvince {
		return Division{}, fail(ErrDivisionTownship, "乡级代码%s不能直接隶属省级行政区%s", "township code %s cannot sit directly under province %s", s, s[:6])
	}
	if s[6:] == "000" {
		return Division{}, fail(ErrDivisionTownship, "乡级代码%s的后3位不能为000", "township code %s cannot end in 000", s)
	}
	return Division{Code: s, Level: LevelTownship}, nil
}

// GB/T 2260: digits 1–2 province, 3–4 prefecture, 5–6 county; zeros mean "this tier itself".
func sixDigitLevel(code string) DivisionLevel {
	switch {
	case code[2:] == "0000":
		return LevelProvince
	case code[4:] == "00":
		return LevelPrefecture
	default:
		return LevelCounty
	}
}

// Province is the province-level code the division belongs to.
func (d Division) Province() string {
	if len(d.Code) < 2 {
		return ""
	}
	return d.Code[:2] + "0000"
}

// ProvinceName names the province the division belongs to.
func (d Division) ProvinceName() i18n.Text { return ProvinceName(d.Code) }

// Parent is the code one tier up, read from the code's structure: township → county (or
// prefecture), county → prefecture, prefecture → province. The parent may not be listed in
// GB/T 2260 — e.g. 110100 (市辖区) for Beijing's districts has been dropped from recent
// tables, and 429000 groups Hubei's province-administered cities — and a county numbered
// xx00yy has the province itself as parent. ok is false for a province.
func (d Division) Parent() (parent Division, ok bool) {
	switch d.Level {
	case LevelTownship:
		return Division{Code: d.Code[:6], Level: sixDigitLevel(d.Code[:6])}, true
	case LevelCounty:
		p := d.Code[:4] + "00"
		return Division{Code: p, Level: sixDigitLevel(p)}, true
	case LevelPrefecture:
		return Division{Code: d.Code[:2] + "0000", Level: LevelProvince}, true
	}
	return Division{}, false
}

// Contains reports whether other lies within d (or is d).
func (d Division) Contains(other Division) bool {
	for o, ok := other, true; ok; o, ok = o.Parent() {
		if o.Code == d.Code {
			return true
		}
	}
	return false
}

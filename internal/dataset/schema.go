package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Type is the declared type of a column. Every value is stored as normalised text (see each
// type), so one storage form and one comparison serve both databases.
type Type string

const (
	String  Type = "string"  // text as given, surrounding white space trimmed
	Integer Type = "integer" // int64, stored in decimal without sign + or leading zeros
	// Decimal is an exact decimal number stored as normalised text ("-12.5", never floats);
	// Column.Scale, when set, caps the digits after the point.
	Decimal Type = "decimal"
	// Fen is an amount of money given in yuan ("1,234.50", "￥12") and stored as integer fen,
	// as the architecture keeps all money.
	Fen        Type = "fen"
	Date       Type = "date"     // stored YYYY-MM-DD
	DateTime   Type = "datetime" // stored RFC 3339 in UTC; times without a zone are Beijing time
	Boolean    Type = "boolean"  // stored true / false
	ResidentID Type = "resident_id"
	CreditCode Type = "credit_code"
	Division   Type = "division"
	Mobile     Type = "mobile"
)

var types = map[Type]bool{String: true, Integer: true, Decimal: true, Fen: true, Date: true, DateTime: true,
	Boolean: true, ResidentID: true, CreditCode: true, Division: true, Mobile: true}

// Column declares one column of a dataset.
type Column struct {
	Name     string `json:"name"` // header text in the source file; Chinese names are fine
	Type     Type   `json:"type"`
	Required bool   `json:"required,omitempty"`
	Unique   bool   `json:"unique,omitempty"`
	// Sensitive values are sealed (SM4-GCM) at rest and masked by Query; a sensitive key is
	// found through a blind index. A sensitive column cannot be used in a Query filter.
	Sensitive bool `json:"sensitive,omitempty"`
	MaxLength int  `json:"max_length,omitempty"` // in characters of the normalised value; 0 = MaxValueLength
	Scale     int  `json:"scale,omitempty"`      // Decimal only: most digits after the point; 0 = any
}

// Schema is the declared shape of a dataset's rows.
type Schema struct {
	Columns []Column `json:"columns"`
	// Key names the lookup column (e.g. 身份证号); it is implicitly required and unique.
	// Empty: the dataset has no key and Lookup is not available.
	Key string `json:"key,omitempty"`
	// Division names the column (of type division, not sensitive) that row scopes apply to;
	// its values are indexed, so a county's rows are found without reading the province's.
	// Empty: the first such column, if any (DivisionColumn).
	Division string `json:"division,omitempty"`
}

// DivisionColumn is the column row scopes apply to (Schema.Division, or the first column of
// type division that is not sensitive), or "" when the rows are not divisional.
func (s Schema) DivisionColumn() string {
	if s.Division != "" {
		return s.Division
	}
	for _, c := range s.Columns {
		if c.Type == Division && !c.Sensitive {
			return c.Name
		}
	}
	return ""
}

// Limits of a schema and its values.
const (
	MaxColumns     = 500
	MaxNameLength  = 64
	MaxValueLength = 4096 // characters, when a column sets no MaxLength
)

// beijing is Asia/Shanghai without needing the tz database: China has kept UTC+8 without
// daylight saving since 1991.
var beijing = time.FixedZone("CST", 8*3600)

// Validate checks the schema itself: names, types, the key.
func (s Schema) Validate() error {
	if len(s.Columns) == 0 {
		return schemaErr("数据集模式至少需要一列", "a dataset schema needs at least one column")
	}
	if len(s.Columns) > MaxColumns {
		return schemaErr(fmt.Sprintf("数据集模式最多 %d 列", MaxColumns), fmt.Sprintf("a dataset schema has at most %d columns", MaxColumns))
	}
	seen := map[string]bool{}
	for i, c := range s.Columns {
		n := strings.TrimSpace(c.Name)
		switch {
		case n == "" || n != c.Name:
			return schemaErr(fmt.Sprintf("第%d列的列名为空或首尾有空格", i+1), fmt.Sprintf("column %d has an empty name or one with surrounding spaces", i+1))
		case utf8.RuneCountInString(n) > MaxNameLength || !utf8.ValidString(n):
			return schemaErr(fmt.Sprintf("列名“%s”过长或不是有效文本", n), fmt.Sprintf("column name %q is too long or not valid text", n))
		case strings.ContainsAny(n, "\"\\") || strings.IndexFunc(n, unicode.IsControl) >= 0:
			// The name becomes a JSON path in Query filters; quotes and controls have no place in a header anyway.
			return schemaErr(fmt.Sprintf("列名“%s”不能含引号、反斜杠或控制字符", n), fmt.Sprintf("column name %q may not contain quotes, backslashes or control characters", n))
		case seen[n]:
			return schemaErr(fmt.Sprintf("列名“%s”重复", n), fmt.Sprintf("column name %q appears twice", n))
		case !types[c.Type]:
			return schemaErr(fmt.Sprintf("列“%s”的类型“%s”未知", n, c.Type), fmt.Sprintf("column %q has an unknown type %q", n, c.Type))
		case c.MaxLength < 0 || c.Scale < 0 || (c.Scale > 0 && c.Type != Decimal):
			return schemaErr(fmt.Sprintf("列“%s”的长度或小数位设置无效", n), fmt.Sprintf("column %q has an invalid max length or scale", n))
		}
		seen[n] = true
	}
	if s.Key != "" && !seen[s.Key] {
		return schemaErr(fmt.Sprintf("主键列“%s”不在列中", s.Key), fmt.Sprintf("key column %q is not one of the columns", s.Key))
	}
	if s.Division != "" {
		if i := s.column(s.Division); i < 0 || s.Columns[i].Type != Division || s.Columns[i].Sensitive {
			return schemaErr(fmt.Sprintf("行政区划列“%s”须为非敏感的行政区划类型列", s.Division),
				fmt.Sprintf("division column %q must be a column of type division that is not sensitive", s.Division))
		}
	}
	return nil
}

func schemaErr(zh, en string) error { return i18n.New("dataset.schema", zh, en).WithField("schema") }

// column returns the index of the column named n, or -1.
func (s Schema) column(n string) int {
	for i, c := range s.Columns {
		if c.Name == n {
			return i
		}
	}
	return -1
}

func (s Schema) marshal() string {
	b, _ := json.Marshal(s) // only strings, ints and bools: cannot fail
	return string(b)
}

// Issue is one fault of one value (or of a whole record, when Column is empty).
type Issue struct {
	Column string
	Err    *i18n.Error
}

// Reasons of rejection; the message of each issue names the exact fault, the code is one of these.
var (
	ErrRequired  = i18n.New("dataset.required", "缺少必填项", "required value is missing")
	ErrType      = i18n.New("dataset.type", "值与列类型不符", "value does not match the column type")
	ErrTooLong   = i18n.New("dataset.too_long", "值过长", "value is too long")
	ErrText      = i18n.New("dataset.text", "值不是有效文本", "value is not valid text")
	ErrDuplicate = i18n.New("dataset.duplicate", "值与前面的行重复", "value repeats an earlier row")
	ErrRecord    = i18n.New("dataset.record", "记录格式错误", "the record is malformed")
)

func issue(base *i18n.Error, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(base.HTTPStatus(), base.Code, zh, en, args...)
}

// normalizer turns raw cell text into the stored text of a column's type.
type normalizer struct {
	now func() time.Time
	// excel: the source is a spreadsheet whose raw cell values give dates as serial numbers.
	excel bool
}

// value validates raw against c and returns its normalised text ("" for an empty optional
// value). The error names the fault in both languages.
func (n normalizer) value(c *Column, raw string) (string, *i18n.Error) {
	if !utf8.ValidString(raw) {
		return "", issue(ErrText, "值含有无效的 UTF-8 字节（文件编码是否正确？）", "value has invalid UTF-8 bytes (is the file encoding right?)")
	}
	v := strings.TrimSpace(raw)
	if v == "" {
		if c.Required {
			return "", ErrRequired
		}
		return "", nil
	}
	out, err := n.typed(c, v)
	if err != nil {
		return "", err
	}
	max := c.MaxLength
	if max == 0 {
		max = MaxValueLength
	}
	if l := utf8.RuneCountInString(out); l > max {
		return "", issue(ErrTooLong, "值长度为%d个字符，超过上限%d", "value is %d characters long, more than the limit of %d", l, max)
	}
	return out, nil
}

func (n normalizer) typed(c *Column, v string) (string, *i18n.Error) {
	switch c.Type {
	case String:
		if i := strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }); i >= 0 {
			return "", issue(ErrText, "值含有控制字符（位置%d）", "value contains a control character (at byte %d)", i+1)
		}
		return v, nil
	case Integer:
		return normInteger(v)
	case Decimal:
		return normDecimal(v, c.Scale)
	case Fen:
		return normFen(v)
	case Date:
		return n.normDate(v)
	case DateTime:
		return n.normDateTime(v)
	case Boolean:
		switch strings.ToLower(v) {
		case "true", "t", "yes", "y", "1", "是", "真", "对":
			return "true", nil
		case "false", "f", "no", "n", "0", "否", "假", "错":
			return "false", nil
		}
		return "", issue(ErrType, "“%s”不是布尔值（是/否、true/false、1/0）", "%q is not a boolean (是/否, true/false, 1/0)", clip(v))
	case ResidentID:
		r, err := ids.ValidateResidentAt(v, n.now())
		if err != nil {
			return "", asIssue(err)
		}
		return r.Number, nil
	case CreditCode:
		cc, err := ids.ValidateCreditCode(v)
		if err != nil {
			return "", asIssue(err)
		}
		return cc.Code, nil
	case Division:
		d, err := ids.ValidateDivision(v)
		if err != nil {
			return "", asIssue(err)
		}
		return d.Code, nil
	case Mobile:
		m, err := ids.ValidateMobile(v)
		if err != nil {
			return "", asIssue(err)
		}
		return m, nil
	}
	return "", issue(ErrType, "未知类型%s", "unknown type %s", c.Type)
}

func asIssue(err error) *i18n.Error {
	if e, ok := i18n.As(err); ok {
		return e
	}
	return issue(ErrType, "值无效", "value is invalid")
}

// clip shortens a value quoted in a message, so one huge cell does not make a huge reason.
func clip(v string) string {
	if utf8.RuneCountInString(v) <= 40 {
		return v
	}
	r := []rune(v)
	return string(r[:40]) + "…"
}

// grouping drops thousands separators people type in numbers ("1,234,567"); in Chinese
// usage the comma only ever groups digits.
var grouping = strings.NewReplacer(",", "", "，", "", " ", "")

// splitNumber reads [sign] digits [. digits], returning the sign, integer and fraction digits.
func splitNumber(v string) (neg bool, intPart, frac string, ok bool) {
	v = grouping.Replace(v)
	if v != "" && (v[0] == '+' || v[0] == '-') {
		neg = v[0] == '-'
		v = v[1:]
	}
	intPart, frac, hasPoint := strings.Cut(v, ".")
	if (intPart == "" && frac == "") || (hasPoint && frac == "" && intPart == "") || !digits(intPart) || !digits(frac) {
		return false, "", "", false
	}
	return neg, intPart, frac, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func normInteger(v string) (string, *i18n.Error) {
	neg, ip, frac, ok := splitNumber(v)
	if !ok || ip == "" || strings.Trim(frac, "0") != "" {
		return "", issue(ErrType, "“%s”不是整数", "%q is not an integer", clip(v))
	}
	n, err := strconv.ParseInt(ip, 10, 64)
	if err != nil {
		return "", issue(ErrType, "整数“%s”超出范围", "integer %q is out of range", clip(v))
	}
	if neg {
		n = -n
	}
	return strconv.FormatInt(n, 10), nil
}

func normDecimal(v string, scale int) (string, *i18n.Error) {
	neg, ip, frac, ok := splitNumber(v)
	if !ok {
		return "", issue(ErrType, "“%s”不是数字", "%q is not a number", clip(v))
	}
	ip = strings.TrimLeft(ip, "0")
	frac = strings.TrimRight(frac, "0")
	if len(ip)+len(frac) > 38 {
		return "", issue(ErrType, "数字“%s”超过38位有效数字", "number %q has more than 38 digits", clip(v))
	}
	if scale > 0 && len(frac) > scale {
		return "", issue(ErrType, "数字“%s”的小数位超过%d位", "number %q has more than %d decimal places", clip(v), scale)
	}
	if ip == "" {
		ip = "0"
	}
	out := ip
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out, nil
}

func normFen(v string) (string, *i18n.Error) {
	s := strings.TrimSpace(strings.TrimSuffix(v, "元"))
	s = strings.TrimLeft(s, "￥¥ ")
	neg, ip, frac, ok := splitNumber(s)
	if !ok {
		return "", issue(ErrType, "“%s”不是金额", "%q is not an amount of money", clip(v))
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 2 {
		return "", issue(ErrType, "金额“%s”精确到分，最多两位小数", "amount %q has more than two decimal places (fen)", clip(v))
	}
	yuan := int64(0)
	if ip != "" {
		var err error
		if yuan, err = strconv.ParseInt(ip, 10, 64); err != nil || yuan > math.MaxInt64/100-1 {
			return "", issue(ErrType, "金额“%s”超出范围", "amount %q is out of range", clip(v))
		}
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt((frac + "0")[:2], 10, 64)
	}
	fen := yuan*100 + f
	if neg {
		fen = -fen
	}
	return strconv.FormatInt(fen, 10), nil
}

var dateLayouts = []string{"2006-01-02", "2006-1-2", "2006/1/2", "2006.1.2", "20060102", "2006年1月2日"}

func (n normalizer) normDate(v string) (string, *i18n.Error) {
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.Format("2006-01-02"), nil
		}
	}
	if t, ok := n.excelSerial(v); ok {
		return t.Format("2006-01-02"), nil
	}
	return "", issue(ErrType, "“%s”不是有效日期（如 2024-03-01）", "%q is not a valid date (e.g. 2024-03-01)", clip(v))
}

var dateTimeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006/1/2 15:04:05", "2006/1/2 15:04"}

func (n normalizer) normDateTime(v string) (string, *i18n.Error) {
	const out = "2006-01-02T15:04:05.999999Z07:00"
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(out), nil
	}
	for _, l := range dateTimeLayouts {
		if t, err := time.ParseInLocation(l, v, beijing); err == nil {
			return t.UTC().Format(out), nil
		}
	}
	if t, ok := n.excelSerial(v); ok {
		// A spreadsheet's date-time has no zone: it is the wall clock of Beijing.
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, beijing)
		return t.UTC().Format(out), nil
	}
	return "", issue(ErrType, "“%s”不是有效的日期时间（如 2024-03-01 08:30:00）", "%q is not a valid date and time (e.g. 2024-03-01 08:30:00)", clip(v))
}

// excelSerial reads a spreadsheet date serial (days since 1899-12-30, 1900 date system) when
// the source is a spreadsheet.
func (n normalizer) excelSerial(v string) (time.Time, bool) {
	if !n.excel {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 || f > 2958465 { // 2958465 = 9999-12-31
		return time.Time{}, false
	}
	days := math.Floor(f)
	secs := math.Round((f - days) * 86400)
	t := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days)).Add(time.Duration(secs) * time.Second)
	return t, true
}

package form

import (
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Values are a form's values by field key, as strings: money in integer fen, dates
// YYYY-MM-DD, checkboxes "true" or "false".
type Values map[string]string

// Only returns the values of keys, e.g. the fields a 一件事 bundle hands one member item.
func (v Values) Only(keys ...string) Values {
	out := make(Values, len(keys))
	for _, k := range keys {
		if s, ok := v[k]; ok {
			out[k] = s
		}
	}
	return out
}

// FieldError is what is wrong with one field. Field is the field key (or, for a value the form
// does not declare, that unknown key); Code is stable, e.g. "form.required" or, for
// identifiers, the code of internal/platform/ids such as "ids.resident.checksum".
type FieldError struct {
	Field   string    `json:"field"`
	Code    string    `json:"code"`
	Message i18n.Text `json:"message"`
}

// Errors are the faults of one submission, in field order; unknown keys come last.
type Errors []FieldError

// For returns the error of field key.
func (e Errors) For(key string) (FieldError, bool) {
	for _, fe := range e {
		if fe.Field == key {
			return fe, true
		}
	}
	return FieldError{}, false
}

// Err is nil when there is no error, and otherwise one *i18n.Error (code "form.invalid",
// naming the first field) for callers that answer with a single problem; the API should
// also send the list itself so that every field can be marked.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	first := e[0]
	return &i18n.Error{Code: "form.invalid", Status: http.StatusBadRequest, Field: first.Field, Msg: i18n.T(
		fmt.Sprintf("表单有%d处需要修改。%s：%s", len(e), first.Field, first.Message.ZH),
		fmt.Sprintf("the form has %d problem(s) to correct. %s: %s", len(e), first.Field, first.Message.In(i18n.EN)))}
}

// Options tune validation. The zero value is usable: the wall clock and the national
// GB/T 2260 table of internal/org/divisions.
type Options struct {
	// Now is the moment against which an ID number's birth date in the future is refused.
	// Services pass their injected clock.
	Now func() time.Time
	// Divisions decides whether a 6-digit division code exists; default divisions.Known.
	Divisions func(code string) bool
}

// Validate checks v against the declaration with default Options; see ValidateWith.
func (f *Form) Validate(v Values) (Values, Errors) { return f.ValidateWith(v, Options{}) }

// ValidateWith checks v and returns the normalised values of the visible fields: those
// whose section and own condition hold, evaluated in declaration order on the values
// already normalised. Values of hidden fields are dropped, never stored; a key the form
// does not declare is an error. Empty optional fields are left out, a checkbox is always
// "true" or "false".
//
// When errors are returned, the values are for showing the form again (View): the
// normalised value of each valid field and the trimmed input of each invalid one. They must
// not be stored.
func (f *Form) ValidateWith(v Values, o Options) (Values, Errors) {
	c := checker{opts: o}
	out := make(Values, len(f.fields))
	var errs Errors
	f.eachField(func(_ *Section, sectionShown bool, fd *Field, fieldShown bool) string {
		if !sectionShown || !fieldShown {
			return ""
		}
		norm, err := fd.normalise(v[fd.Key], &c)
		if err != nil {
			errs = append(errs, FieldError{Field: fd.Key, Code: err.Code, Message: err.Msg})
			norm = strings.TrimSpace(v[fd.Key])
		}
		if norm != "" {
			out[fd.Key] = norm
		}
		return norm
	})
	var unknown []string
	for k := range v {
		if _, ok := f.byKey[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		e := i18n.Errorf(http.StatusBadRequest, "form.unknown_field", "表单没有字段“%s”", "the form has no field %q", clip(k))
		errs = append(errs, FieldError{Field: k, Code: e.Code, Message: e.Msg})
	}
	return out, errs
}

// eachField visits every field in declaration order with whether its section and it are
// shown. Conditions are evaluated on the effective values visit returns for shown fields;
// a hidden field counts as empty, so a condition on it fails too, as in the browser.
func (f *Form) eachField(visit func(s *Section, sectionShown bool, fd *Field, fieldShown bool) (effective string)) {
	var eff map[string]string
	if len(f.referenced) > 0 {
		eff = make(map[string]string, len(f.referenced))
	}
	for i := range f.Sections {
		s := &f.Sections[i]
		sShown := s.When == nil || s.When.holds(eff[s.When.Field])
		for j := range s.Fields {
			fd := &s.Fields[j]
			fShown := fd.When == nil || fd.When.holds(eff[fd.When.Field])
			val := visit(s, sShown, fd, fShown)
			if sShown && fShown && f.referenced[fd.Key] {
				eff[fd.Key] = val
			}
		}
	}
}

// FromURLValues picks the declared fields out of a posted HTML form (which also carries a
// CSRF token and the like), ready for Validate. An unchecked checkbox sends nothing; it
// becomes "false" in Validate.
func (f *Form) FromURLValues(q url.Values) Values {
	out := make(Values, len(f.fields))
	for _, fd := range f.fields {
		if vs, ok := q[fd.Key]; ok && len(vs) > 0 {
			out[fd.Key] = vs[len(vs)-1]
		}
	}
	return out
}

// Prefill returns a copy of v in which every empty field that declares a prefill source is
// filled from lookup(source), when lookup has a non-empty value. Fields already filled keep
// what the applicant typed.
func (f *Form) Prefill(v Values, lookup func(source string) (string, bool)) Values {
	out := make(Values, len(v)+len(f.fields))
	maps.Copy(out, v)
	for _, fd := range f.fields {
		if fd.Prefill == "" || strings.TrimSpace(out[fd.Key]) != "" {
			continue
		}
		if val, ok := lookup(fd.Prefill); ok {
			if val = strings.TrimSpace(val); val != "" {
				out[fd.Key] = val
			}
		}
	}
	return out
}

// checker carries the options of one validation; the clock is read at most once.
type checker struct {
	opts  Options
	now   time.Time
	timed bool
}

func (c *checker) today() time.Time {
	if !c.timed {
		c.timed = true
		if c.opts.Now != nil {
			c.now = c.opts.Now()
		} else {
			c.now = time.Now()
		}
	}
	return c.now
}

func (c *checker) divisionKnown(code string) bool {
	if c.opts.Divisions != nil {
		return c.opts.Divisions(code)
	}
	return divisions.Known(code)
}

// Default length limits when a declaration sets none, so that no field takes unbounded text.
const (
	defaultTextLen     = 500
	defaultTextareaLen = 5000
	maxEmailLen        = 254 // RFC 5321 path limit
	maxNumberLen       = 32
)

func fieldErr(code, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(http.StatusBadRequest, code, zh, en, args...)
}

var (
	errRequired       = fieldErr("form.required", "此项为必填", "this field is required")
	errRequiredChoice = fieldErr("form.required", "请选择一项", "please choose one")
	errRequiredTick   = fieldErr("form.required", "请勾选此项", "please tick this box")
	errEncoding       = fieldErr("form.encoding", "含有无效的字符编码", "contains invalid character encoding")
	errControl        = fieldErr("form.control_char", "含有不可见的控制字符", "contains invisible control characters")
	errPattern        = fieldErr("form.pattern", "格式不符合要求", "is not in the required format")
	errNumber         = fieldErr("form.number", "应为数字，如 12 或 3.5", "must be a number, such as 12 or 3.5")
	errMoney          = fieldErr("form.money", "应为金额（元），最多两位小数，如 1200 或 35.50", "must be an amount in yuan with at most two decimals, such as 1200 or 35.50")
	errDate           = fieldErr("form.date", "应为有效日期，格式为 YYYY-MM-DD", "must be a real date written YYYY-MM-DD")
	errOption         = fieldErr("form.option", "不是可选的值", "is not one of the choices")
	errCheckbox       = fieldErr("form.checkbox", "应为 true 或 false", "must be true or false")
	errEmail          = fieldErr("form.email", "不是有效的电子邮箱地址", "is not a valid email address")
	errDivisionFormat = fieldErr("form.division", "行政区划代码应为6位数字", "a division code is 6 digits")
	errDivisionNone   = fieldErr("form.division_unknown", "没有这个行政区划代码", "there is no division with this code")
)

// normalise checks one visible field's raw value and returns its stored form.
func (fd *Field) normalise(raw string, c *checker) (string, *i18n.Error) {
	if !utf8.ValidString(raw) {
		return "", errEncoding
	}
	s := raw
	if fd.Type == Textarea {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		switch {
		case fd.Type == Checkbox && fd.Required:
			return "", errRequiredTick
		case fd.Type == Checkbox:
			return "false", nil
		case fd.Required && (fd.Type == Select || fd.Type == Radio):
			return "", errRequiredChoice
		case fd.Required:
			return "", errRequired
		}
		return "", nil
	}
	switch fd.Type {
	case Text, Textarea:
		if badControl(s, fd.Type == Textarea) {
			return "", errControl
		}
		limit := fd.MaxLength
		if limit == 0 {
			limit = defaultTextLen
			if fd.Type == Textarea {
				limit = defaultTextareaLen
			}
		}
		if err := checkLength(s, limit); err != nil {
			return "", err
		}
		if fd.re != nil && !fd.re.MatchString(s) {
			return "", errPattern
		}
		return s, nil
	case Email:
		limit := fd.MaxLength
		if limit == 0 || limit > maxEmailLen {
			limit = maxEmailLen
		}
		if err := checkLength(s, limit); err != nil {
			return "", err
		}
		if !validEmail(s) {
			return "", errEmail
		}
		return s, nil
	case Number:
		n, ok := normaliseDecimal(s)
		if !ok {
			return "", errNumber
		}
		x, _ := strconv.ParseFloat(n, 64) // a plain decimal of at most 32 characters always parses
		if fd.Min != nil && x < *fd.Min {
			return "", fieldErr("form.min", "不能小于%s", "must be at least %s", formatBound(*fd.Min))
		}
		if fd.Max != nil && x > *fd.Max {
			return "", fieldErr("form.max", "不能大于%s", "must be at most %s", formatBound(*fd.Max))
		}
		return n, nil
	case Money:
		fen, ok := parseYuan(s)
		if !ok {
			return "", errMoney
		}
		if fd.Min != nil && fen < fd.minFen {
			return "", fieldErr("form.min", "不能少于%s元", "must be at least %s yuan", YuanText(fd.minFen))
		}
		if fd.Max != nil && fen > fd.maxFen {
			return "", fieldErr("form.max", "不能多于%s元", "must be at most %s yuan", YuanText(fd.maxFen))
		}
		return strconv.FormatInt(fen, 10), nil
	case Date:
		// time.Parse is strict about days: 2023-02-29 is refused.
		if len(s) != len(time.DateOnly) {
			return "", errDate
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return "", errDate
		}
		return s, nil
	case Select, Radio:
		for _, o := range fd.Options {
			if o.Value == s {
				return s, nil
			}
		}
		return "", errOption
	case Checkbox:
		if s != "true" && s != "false" {
			return "", errCheckbox
		}
		if s == "false" && fd.Required {
			return "", errRequiredTick
		}
		return s, nil
	case IDNumber:
		// GB 11643-1999: 18 characters, ISO 7064 MOD 11-2 check character, a real birth date.
		r, err := ids.ResidentOptions{}.ValidateAt(s, c.today())
		if err != nil {
			return "", asFieldErr(err)
		}
		return r.Number, nil
	case CreditCode:
		// GB 32100-2015, both check characters.
		cc, err := ids.ValidateCreditCode(s)
		if err != nil {
			return "", asFieldErr(err)
		}
		return cc.Code, nil
	case Phone:
		m, err := ids.ValidateMobile(s)
		if err != nil {
			return "", asFieldErr(err)
		}
		return m, nil
	case Division:
		// GB/T 2260: a division code is 6 digits (townships' 9-digit GB/T 10114 codes are not
		// divisions in this sense).
		if len(s) != 6 || !allDigits(s) {
			return "", errDivisionFormat
		}
		if _, err := ids.ValidateDivision(s); err != nil {
			return "", asFieldErr(err)
		}
		if !c.divisionKnown(s) {
			return "", errDivisionNone
		}
		return s, nil
	}
	return "", fieldErr("form.type", "未知的字段类型", "unknown field type") // Parse admits no other type
}

func asFieldErr(err error) *i18n.Error {
	if e, ok := i18n.As(err); ok {
		return e
	}
	return fieldErr("form.invalid_value", "值无效", "the value is not valid")
}

func checkLength(s string, limit int) *i18n.Error {
	if n := utf8.RuneCountInString(s); n > limit {
		return fieldErr("form.too_long", "最多%d个字符，现有%d个", "at most %d characters, got %d", limit, n)
	}
	return nil
}

// badControl reports C0/C1 control characters; a textarea keeps line feeds and tabs.
func badControl(s string, multiline bool) bool {
	for _, r := range s {
		if (r < 0x20 || (r >= 0x7f && r < 0xa0)) && !(multiline && (r == '\n' || r == '\t')) {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// normaliseDecimal accepts -?digits(.digits)? and writes it without redundant zeros
// ("007.50" → "7.5", "-0" → "0"), so equal numbers are stored equally.
func normaliseDecimal(s string) (string, bool) {
	if len(s) > maxNumberLen {
		return "", false
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if !allDigits(intPart) || (hasDot && !allDigits(frac)) {
		return "", false
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	frac = strings.TrimRight(frac, "0")
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out, true
}

// parseYuan reads a non-negative amount in yuan with at most two decimals into fen.
func parseYuan(s string) (int64, bool) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if !allDigits(intPart) || len(intPart) > moneyDigits || (hasDot && (len(frac) == 0 || len(frac) > 2 || !allDigits(frac))) {
		return 0, false
	}
	yuan, _ := strconv.ParseInt(intPart, 10, 64) // at most 15 digits
	fen := yuan * 100
	switch len(frac) {
	case 1:
		fen += int64(frac[0]-'0') * 10
	case 2:
		fen += int64(frac[0]-'0')*10 + int64(frac[1]-'0')
	}
	return fen, true
}

// YuanText writes an amount in fen as yuan: 120000 → "1200", 3550 → "35.50".
func YuanText(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	y, f := fen/100, fen%100
	if f == 0 {
		return sign + strconv.FormatInt(y, 10)
	}
	return sign + strconv.FormatInt(y, 10) + "." + strconv.Itoa(int(f/10)) + strconv.Itoa(int(f%10))
}

func formatBound(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// validEmail accepts a bare address (no display name) whose domain has a dot: what a person
// types in a government form, not everything RFC 5322 allows.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") &&
		!strings.ContainsAny(s, " \"()<>[]\\,;")
}

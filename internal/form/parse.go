package form

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Limits of a declaration. Forms come from packs that operators load, so they are outside
// input: the limits keep a broken or hostile pack from costing unbounded memory or time.
const (
	MaxDeclarationBytes = 1 << 20
	maxSections         = 100
	maxFields           = 500
	maxOptions          = 500
	maxKeyLen           = 64
	maxTitleLen         = 200 // titles, labels, option labels and values
	maxHelpLen          = 2000
	maxPatternLen       = 1000
	// moneyDigits bounds money to 15 integer digits of yuan: fen then fit in int64 with room.
	moneyDigits = 15
)

// keyPattern is the form of field and section keys: they become HTML names and ids and JSON
// keys, so they stay plain.
var keyPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// formKeyPattern is the form of a form's own key, e.g. "geti-register".
var formKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)

// bad builds a declaration error that names the JSON path it is about.
func bad(path, code, zh, en string, args ...any) *i18n.Error {
	return badText(path, code, i18n.T(fmt.Sprintf(zh, args...), fmt.Sprintf(en, args...)))
}

func badText(path, code string, msg i18n.Text) *i18n.Error {
	if path != "" {
		msg = i18n.T(path+"："+msg.ZH, path+": "+msg.EN)
	}
	return &i18n.Error{Code: code, Status: http.StatusBadRequest, Msg: msg, Field: path}
}

// Parse reads a form declaration strictly: unknown or repeated keys, wrong JSON types,
// trailing data and every inconsistency (unknown type, duplicate field key, missing label,
// bad regexp, options missing, a condition on an unknown or later field, min above max, an
// unknown prefill source…) are refused with a bilingual *i18n.Error whose Field and message
// name the path, e.g. sections[1].fields[3].pattern.
func Parse(data []byte) (*Form, error) {
	if len(data) > MaxDeclarationBytes {
		return nil, bad("", "form.too_large", "表单声明超过%d字节", "the form declaration is larger than %d bytes", MaxDeclarationBytes)
	}
	if err := checkShape(data); err != nil {
		return nil, err
	}
	var f Form
	if err := json.Unmarshal(data, &f); err != nil {
		// checkShape accepted the text, so this is a bug here, not bad input.
		return nil, bad("", "form.syntax", "表单声明无法解析", "the form declaration cannot be read").Wrap(err)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if err := f.index(); err != nil {
		return nil, err
	}
	return &f, nil
}

// ---- structure: keys and JSON types, with paths ----

type jsonKind uint8

const (
	jString jsonKind = iota + 1
	jBool
	jInt
	jNumber
	jObject
	jArray
)

func (k jsonKind) text() i18n.Text {
	switch k {
	case jString:
		return i18n.T("字符串", "a string")
	case jBool:
		return i18n.T("布尔值", "a boolean")
	case jInt:
		return i18n.T("整数", "an integer")
	case jNumber:
		return i18n.T("数字", "a number")
	case jObject:
		return i18n.T("对象", "an object")
	}
	return i18n.T("数组", "an array")
}

// shape is the expected JSON of a part of a declaration.
type shape struct {
	kind  jsonKind
	props map[string]*shape // object members
	elem  *shape            // array elements
}

var declShape = func() *shape {
	str, boolean, integer, number := &shape{kind: jString}, &shape{kind: jBool}, &shape{kind: jInt}, &shape{kind: jNumber}
	strs := &shape{kind: jArray, elem: str}
	when := &shape{kind: jObject, props: map[string]*shape{"field": str, "equals": str, "in": strs}}
	option := &shape{kind: jObject, props: map[string]*shape{"value": str, "label": str, "label_en": str}}
	field := &shape{kind: jObject, props: map[string]*shape{
		"key": str, "label": str, "label_en": str, "type": str, "required": boolean,
		"min": number, "max": number, "max_length": integer, "pattern": str, "prefill": str,
		"help": str, "help_en": str, "options": {kind: jArray, elem: option}, "when": when,
	}}
	section := &shape{kind: jObject, props: map[string]*shape{
		"key": str, "title": str, "title_en": str, "when": when, "fields": {kind: jArray, elem: field},
	}}
	return &shape{kind: jObject, props: map[string]*shape{
		"key": str, "version": integer, "title": str, "title_en": str, "sections": {kind: jArray, elem: section},
	}}
}()

// checkShape walks the JSON tokens against declShape, so that every structural fault is
// reported with its path (encoding/json alone names neither the index nor, for duplicate
// keys, anything at all: it keeps the last value silently).
func checkShape(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, declShape, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("", "form.syntax", "表单声明在第%d字节后还有多余内容", "the form declaration has extra content after byte %d", dec.InputOffset())
	}
	return nil
}

func syntaxErr(dec *json.Decoder, err error) *i18n.Error {
	return bad("", "form.syntax", "表单声明不是有效的JSON（第%d字节附近）", "the form declaration is not valid JSON (near byte %d)", dec.InputOffset()).Wrap(err)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func walk(dec *json.Decoder, sh *shape, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(dec, err)
	}
	wrongType := func() error {
		want := sh.kind.text()
		return badText(path, "form.json_type", i18n.T("应为"+want.ZH, "must be "+want.EN))
	}
	switch sh.kind {
	case jObject:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return wrongType()
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return syntaxErr(dec, err)
			}
			key, _ := kt.(string) // object keys are always strings
			p := join(path, key)
			if seen[key] {
				return bad(p, "form.duplicate_key", "键重复", "the key appears twice")
			}
			seen[key] = true
			sub, ok := sh.props[key]
			if !ok {
				return bad(p, "form.unknown_key", "未知的键“%s”", "unknown key %q", clip(key))
			}
			if err := walk(dec, sub, p); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // '}'
			return syntaxErr(dec, err)
		}
	case jArray:
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return wrongType()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, sh.elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return syntaxErr(dec, err)
		}
	case jString:
		if _, ok := tok.(string); !ok {
			return wrongType()
		}
	case jBool:
		if _, ok := tok.(bool); !ok {
			return wrongType()
		}
	case jInt:
		n, ok := tok.(json.Number)
		if !ok {
			return wrongType()
		}
		if v, err := strconv.ParseInt(string(n), 10, 32); err != nil || v < 0 {
			return bad(path, "form.json_type", "应为不大于%d的非负整数", "must be a non-negative integer up to %d", math.MaxInt32)
		}
	case jNumber:
		n, ok := tok.(json.Number)
		if !ok {
			return wrongType()
		}
		if v, err := strconv.ParseFloat(string(n), 64); err != nil || math.IsInf(v, 0) {
			return bad(path, "form.json_type", "数值超出范围", "the number is out of range")
		}
	}
	return nil
}

// ---- meaning ----

func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}

func checkText(path, s string, limit int, required bool) error {
	switch {
	case required && s == "":
		return bad(path, "form.missing", "不能为空", "is required")
	case utf8.RuneCountInString(s) > limit:
		return bad(path, "form.too_long", "最多%d个字符", "is at most %d characters", limit)
	}
	return nil
}

// Rules of keys, as the error messages state them.
var (
	keyRule     = i18n.T("字母开头，只含字母、数字、下划线和连字符", "a letter, then letters, digits, underscores and hyphens")
	formKeyRule = i18n.T("字母或数字开头，只含字母、数字和 _ . : -", "a letter or digit, then letters, digits and _ . : -")
)

func checkKey(path, key string, pattern *regexp.Regexp, rule i18n.Text) error {
	if key == "" {
		return bad(path, "form.missing", "不能为空", "is required")
	}
	if len(key) > maxKeyLen || !pattern.MatchString(key) {
		return bad(path, "form.bad_key", "“%s”不是有效的键（"+rule.ZH+"；最多%d个字符）",
			"%q is not a valid key ("+rule.EN+"; at most %d characters)", clip(key), maxKeyLen)
	}
	return nil
}

// check verifies everything the JSON shape cannot express.
func (f *Form) check() error {
	if err := checkKey("key", f.Key, formKeyPattern, formKeyRule); err != nil {
		return err
	}
	if f.Version < 1 {
		return bad("version", "form.version", "版本号应为正整数", "must be a positive integer")
	}
	if err := checkText("title", f.Title, maxTitleLen, true); err != nil {
		return err
	}
	if err := checkText("title_en", f.TitleEn, maxTitleLen, false); err != nil {
		return err
	}
	switch n := len(f.Sections); {
	case n == 0:
		return bad("sections", "form.missing", "至少需要一个分组", "needs at least one section")
	case n > maxSections:
		return bad("sections", "form.limit", "最多%d个分组", "at most %d sections", maxSections)
	}
	// declared maps each field key to its position, filled as the walk goes, so that a
	// condition can only see fields before it.
	declared := map[string]*Field{}
	sections := map[string]bool{}
	total := 0
	for i := range f.Sections {
		s := &f.Sections[i]
		sp := fmt.Sprintf("sections[%d]", i)
		if err := checkKey(sp+".key", s.Key, keyPattern, keyRule); err != nil {
			return err
		}
		if sections[s.Key] {
			return bad(sp+".key", "form.duplicate_section", "分组键“%s”重复", "section key %q is used twice", s.Key)
		}
		sections[s.Key] = true
		if err := checkText(sp+".title", s.Title, maxTitleLen, true); err != nil {
			return err
		}
		if err := checkText(sp+".title_en", s.TitleEn, maxTitleLen, false); err != nil {
			return err
		}
		// A section's condition may name only fields of earlier sections: its own are after it.
		if err := checkWhen(sp+".when", s.When, declared); err != nil {
			return err
		}
		if len(s.Fields) == 0 {
			return bad(sp+".fields", "form.missing", "分组至少需要一个字段", "a section needs at least one field")
		}
		if total += len(s.Fields); total > maxFields {
			return bad(sp+".fields", "form.limit", "表单最多%d个字段", "a form has at most %d fields", maxFields)
		}
		for j := range s.Fields {
			fd := &s.Fields[j]
			fp := fmt.Sprintf("%s.fields[%d]", sp, j)
			if err := fd.check(fp, declared); err != nil {
				return err
			}
			if _, dup := declared[fd.Key]; dup {
				return bad(fp+".key", "form.duplicate_field", "字段键“%s”重复（字段键在整个表单中须唯一）", "field key %q is used twice (keys are unique across the form)", fd.Key)
			}
			declared[fd.Key] = fd
		}
	}
	return nil
}

func (fd *Field) check(fp string, declared map[string]*Field) error {
	if err := checkKey(fp+".key", fd.Key, keyPattern, keyRule); err != nil {
		return err
	}
	if fd.Type == "" {
		return bad(fp+".type", "form.missing", "不能为空", "is required")
	}
	if !slices.Contains(fieldTypes, fd.Type) {
		return bad(fp+".type", "form.type", "未知的字段类型“%s”", "unknown field type %q", clip(string(fd.Type)))
	}
	if err := checkText(fp+".label", fd.Label, maxTitleLen, true); err != nil {
		return err
	}
	for _, t := range []struct {
		path, s string
		max     int
	}{{".label_en", fd.LabelEn, maxTitleLen}, {".help", fd.Help, maxHelpLen}, {".help_en", fd.HelpEn, maxHelpLen}} {
		if err := checkText(fp+t.path, t.s, t.max, false); err != nil {
			return err
		}
	}

	choice := fd.Type == Select || fd.Type == Radio
	switch {
	case choice && len(fd.Options) == 0:
		return bad(fp+".options", "form.options", "下拉或单选字段需要选项", "select and radio fields need options")
	case !choice && len(fd.Options) > 0:
		return bad(fp+".options", "form.not_allowed", "只有下拉和单选字段可以有选项", "only select and radio fields have options")
	case len(fd.Options) > maxOptions:
		return bad(fp+".options", "form.limit", "最多%d个选项", "at most %d options", maxOptions)
	}
	values := map[string]bool{}
	for k, o := range fd.Options {
		op := fmt.Sprintf("%s.options[%d]", fp, k)
		if err := checkText(op+".value", o.Value, maxTitleLen, true); err != nil {
			return err
		}
		if values[o.Value] {
			return bad(op+".value", "form.duplicate_option", "选项值“%s”重复", "option value %q is used twice", clip(o.Value))
		}
		values[o.Value] = true
		if err := checkText(op+".label", o.Label, maxTitleLen, true); err != nil {
			return err
		}
		if err := checkText(op+".label_en", o.LabelEn, maxTitleLen, false); err != nil {
			return err
		}
	}

	numeric := fd.Type == Number || fd.Type == Money
	if !numeric && fd.Min != nil {
		return bad(fp+".min", "form.not_allowed", "只有数字和金额字段可以设最小值", "only number and money fields have a minimum")
	}
	if !numeric && fd.Max != nil {
		return bad(fp+".max", "form.not_allowed", "只有数字和金额字段可以设最大值", "only number and money fields have a maximum")
	}
	if fd.Min != nil && fd.Max != nil && *fd.Min > *fd.Max {
		return bad(fp+".min", "form.min_max", "最小值%v大于最大值%v", "the minimum %v is above the maximum %v", *fd.Min, *fd.Max)
	}
	if fd.Type == Money {
		var err error
		if fd.Min != nil {
			if fd.minFen, err = boundFen(fp+".min", *fd.Min); err != nil {
				return err
			}
		}
		if fd.Max != nil {
			if fd.maxFen, err = boundFen(fp+".max", *fd.Max); err != nil {
				return err
			}
		}
	}

	texty := fd.Type == Text || fd.Type == Textarea || fd.Type == Email
	if fd.MaxLength != 0 && !texty {
		return bad(fp+".max_length", "form.not_allowed", "只有文本、多行文本和电子邮箱字段可以设最大长度", "only text, textarea and email fields have a maximum length")
	}
	if fd.Pattern != "" {
		if fd.Type != Text && fd.Type != Textarea {
			return bad(fp+".pattern", "form.not_allowed", "只有文本和多行文本字段可以设正则表达式", "only text and textarea fields have a pattern")
		}
		if len(fd.Pattern) > maxPatternLen {
			return bad(fp+".pattern", "form.too_long", "正则表达式最多%d字节", "the pattern is at most %d bytes", maxPatternLen)
		}
		// The pattern must match the whole value, as HTML's pattern attribute does.
		re, err := regexp.Compile(`^(?:` + fd.Pattern + `)$`)
		if err != nil {
			return bad(fp+".pattern", "form.pattern", "正则表达式无效（%v）", "the pattern is not a valid regular expression (%v)", err)
		}
		fd.re = re
	}
	if fd.Prefill != "" && !slices.Contains(prefillSources, fd.Prefill) {
		return bad(fp+".prefill", "form.prefill", "未知的预填来源“%s”", "unknown prefill source %q", clip(fd.Prefill))
	}
	return checkWhen(fp+".when", fd.When, declared)
}

// boundFen converts a money bound in yuan to fen; a bound finer than a fen is a mistake.
func boundFen(path string, yuan float64) (int64, error) {
	fen := yuan * 100
	r := math.Round(fen)
	if math.Abs(fen-r) > 1e-6 || math.Abs(r) >= math.Pow10(moneyDigits+2) {
		return 0, bad(path, "form.money_bound", "金额界限应为最多两位小数、不超过%d位整数的元", "a money bound is yuan with at most two decimals and %d integer digits", moneyDigits)
	}
	return int64(r), nil
}

// checkWhen checks a condition against the fields declared before it.
func checkWhen(path string, w *When, declared map[string]*Field) error {
	if w == nil {
		return nil
	}
	if w.Field == "" {
		return bad(path+".field", "form.missing", "不能为空", "is required")
	}
	target, ok := declared[w.Field]
	if !ok {
		return bad(path+".field", "form.when", "条件引用的字段“%s”不存在或不在此之前（只能引用前面的字段）",
			"the condition refers to %q, which is not a field declared before it (only earlier fields may be named)", clip(w.Field))
	}
	switch {
	case w.Equals == nil && len(w.In) == 0:
		return bad(path, "form.when", "条件需要 equals 或非空的 in", "a condition needs equals or a non-empty in")
	case w.Equals != nil && w.In != nil:
		return bad(path, "form.when", "条件只能有 equals 或 in 之一", "a condition has either equals or in, not both")
	}
	// A value the field can never hold makes the condition dead: almost surely a typo.
	var allowed []string
	switch target.Type {
	case Select, Radio:
		for _, o := range target.Options {
			allowed = append(allowed, o.Value)
		}
	case Checkbox:
		allowed = []string{"true", "false"}
	}
	for k, v := range w.values() {
		vp := path + ".equals"
		if w.Equals == nil {
			vp = fmt.Sprintf("%s.in[%d]", path, k)
		}
		if allowed != nil && !slices.Contains(allowed, v) {
			return bad(vp, "form.when", "字段“%s”没有取值“%s”", "field %q never has the value %q", w.Field, clip(v))
		}
	}
	return nil
}

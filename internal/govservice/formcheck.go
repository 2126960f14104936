package govservice

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// The catalogue keeps each form declaration raw (the form engine owns its meaning) but checks
// it against the P5 contract's shape when a pack loads, so that a pack never ships a form the
// form engine would refuse for a reason visible here: unknown properties, duplicate or
// malformed keys, unknown field types or prefill sources, options missing, patterns that do
// not compile, conditions on fields that do not exist. It also yields the field keys a bundle
// maps to its member items.

type formDecl struct {
	Key      string        `json:"key"`
	Version  int           `json:"version"`
	Title    string        `json:"title"`
	TitleEn  string        `json:"title_en"`
	Sections []formSection `json:"sections"`
}

type formSection struct {
	Key     string      `json:"key"`
	Title   string      `json:"title"`
	TitleEn string      `json:"title_en"`
	When    *formWhen   `json:"when"`
	Fields  []formField `json:"fields"`
}

type formField struct {
	Key       string       `json:"key"`
	Label     string       `json:"label"`
	LabelEn   string       `json:"label_en"`
	Type      string       `json:"type"`
	Required  bool         `json:"required"`
	Min       *float64     `json:"min"`
	Max       *float64     `json:"max"`
	MaxLength int          `json:"max_length"`
	Pattern   string       `json:"pattern"`
	Prefill   string       `json:"prefill"`
	Help      string       `json:"help"`
	HelpEn    string       `json:"help_en"`
	Options   []formOption `json:"options"`
	When      *formWhen    `json:"when"`
}

type formOption struct {
	Value   string `json:"value"`
	Label   string `json:"label"`
	LabelEn string `json:"label_en"`
}

type formWhen struct {
	Field  string   `json:"field"`
	Equals *string  `json:"equals"`
	In     []string `json:"in"`
}

// FieldTypes are the form field types of the P5 contract.
var FieldTypes = map[string]bool{
	"text": true, "textarea": true, "number": true, "money": true, "date": true, "select": true,
	"radio": true, "checkbox": true, "idnumber": true, "creditcode": true, "phone": true,
	"email": true, "division": true,
}

// PrefillSources are the prefill sources of the P5 contract.
var PrefillSources = map[string]bool{
	"applicant.name": true, "applicant.id_number": true, "applicant.phone": true, "applicant.kind": true,
	"person.address": true, "person.division": true, "person.gender": true, "person.birth_date": true,
	"entity.name": true, "entity.credit_code": true, "entity.legal_rep": true, "entity.address": true,
	"entity.division": true,
}

var (
	keyPattern     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	formKeyPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
)

// checkForm validates a form declaration at path (e.g. "form") and returns its field keys in
// declaration order, with their declarations.
func checkForm(raw json.RawMessage, path string, add func(path, zh, en string)) ([]string, map[string]formField) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		add(path, "缺少表单声明", "the form declaration is missing")
		return nil, nil
	}
	var f formDecl
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		add(path, "表单声明无法解析："+err.Error(), "the form declaration cannot be read: "+err.Error())
		return nil, nil
	}
	if !formKeyPattern.MatchString(f.Key) {
		add(path+".key", "表单标识应为小写字母开头的字母、数字和连字符", "the form key must be lower-case letters, digits and hyphens, starting with a letter")
	}
	if f.Version < 1 {
		add(path+".version", "表单版本应为正整数", "the form version must be a positive integer")
	}
	if strings.TrimSpace(f.Title) == "" {
		add(path+".title", "缺少表单标题", "the form title is missing")
	}
	if len(f.Sections) == 0 {
		add(path+".sections", "表单至少应有一个分组", "the form needs at least one section")
	}
	var keys []string
	fields := map[string]formField{}
	sections := map[string]bool{}
	type cond struct {
		path string
		w    *formWhen
		self string
	}
	var conds []cond
	for i, s := range f.Sections {
		sp := fmt.Sprintf("%s.sections[%d]", path, i)
		if !keyPattern.MatchString(s.Key) {
			add(sp+".key", "分组标识应为小写字母开头的字母、数字和下划线", "the section key must be lower-case letters, digits and underscores, starting with a letter")
		} else if sections[s.Key] {
			add(sp+".key", fmt.Sprintf("分组标识“%s”重复", s.Key), fmt.Sprintf("section key %q appears twice", s.Key))
		}
		sections[s.Key] = true
		if strings.TrimSpace(s.Title) == "" {
			add(sp+".title", "缺少分组标题", "the section title is missing")
		}
		if s.When != nil {
			conds = append(conds, cond{sp + ".when", s.When, ""})
		}
		if len(s.Fields) == 0 {
			add(sp+".fields", "分组至少应有一个字段", "the section needs at least one field")
		}
		for j, fd := range s.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", sp, j)
			switch {
			case !keyPattern.MatchString(fd.Key):
				add(fp+".key", "字段标识应为小写字母开头的字母、数字和下划线", "the field key must be lower-case letters, digits and underscores, starting with a letter")
			case fields[fd.Key].Key != "":
				add(fp+".key", fmt.Sprintf("字段标识“%s”重复", fd.Key), fmt.Sprintf("field key %q appears twice", fd.Key))
			default:
				keys = append(keys, fd.Key)
				fields[fd.Key] = fd
			}
			checkField(fd, fp, add)
			if fd.When != nil {
				conds = append(conds, cond{fp + ".when", fd.When, fd.Key})
			}
		}
	}
	for _, c := range conds {
		checkWhen(c.w, c.path, c.self, fields, add)
	}
	return keys, fields
}

func checkField(fd formField, fp string, add func(path, zh, en string)) {
	if strings.TrimSpace(fd.Label) == "" {
		add(fp+".label", "缺少字段名称", "the field label is missing")
	}
	if !FieldTypes[fd.Type] {
		add(fp+".type", fmt.Sprintf("未知的字段类型“%s”", fd.Type), fmt.Sprintf("unknown field type %q", fd.Type))
	}
	choice := fd.Type == "select" || fd.Type == "radio"
	switch {
	case choice && len(fd.Options) < 2:
		add(fp+".options", "下拉和单选字段至少应有两个选项", "select and radio fields need at least two options")
	case !choice && len(fd.Options) > 0:
		add(fp+".options", "只有下拉和单选字段可以有选项", "only select and radio fields have options")
	}
	seen := map[string]bool{}
	for k, o := range fd.Options {
		op := fmt.Sprintf("%s.options[%d]", fp, k)
		if o.Value == "" || strings.TrimSpace(o.Label) == "" {
			add(op, "选项的值和名称不能为空", "an option needs a value and a label")
		}
		if seen[o.Value] {
			add(op+".value", fmt.Sprintf("选项值“%s”重复", o.Value), fmt.Sprintf("option value %q appears twice", o.Value))
		}
		seen[o.Value] = true
	}
	if fd.Prefill != "" && !PrefillSources[fd.Prefill] {
		add(fp+".prefill", fmt.Sprintf("未知的预填来源“%s”", fd.Prefill), fmt.Sprintf("unknown prefill source %q", fd.Prefill))
	}
	if fd.Pattern != "" {
		if _, err := regexp.Compile(fd.Pattern); err != nil {
			add(fp+".pattern", "校验规则不是有效的正则表达式", "the pattern is not a valid regular expression")
		}
	}
	if fd.MaxLength < 0 {
		add(fp+".max_length", "最大长度不能为负数", "max_length cannot be negative")
	}
	if fd.Min != nil && fd.Max != nil && *fd.Min > *fd.Max {
		add(fp+".min", "最小值大于最大值", "min is greater than max")
	}
	if (fd.Min != nil || fd.Max != nil) && fd.Type != "number" && fd.Type != "money" {
		add(fp+".min", "只有数字和金额字段可以有最小值、最大值", "only number and money fields have min and max")
	}
}

// checkWhen checks a condition: it names another field of the form, with either equals or in,
// and for a choice field only values among its options.
func checkWhen(w *formWhen, path, self string, fields map[string]formField, add func(path, zh, en string)) {
	target, ok := fields[w.Field]
	switch {
	case w.Field == "" || !ok:
		add(path+".field", fmt.Sprintf("条件引用了不存在的字段“%s”", w.Field), fmt.Sprintf("the condition names field %q, which the form does not have", w.Field))
		return
	case w.Field == self:
		add(path+".field", "字段的显示条件不能引用自身", "a field's condition cannot name the field itself")
		return
	}
	if (w.Equals == nil) == (len(w.In) == 0) {
		add(path, "条件应有且只有 equals 或 in 之一", "a condition needs exactly one of equals and in")
		return
	}
	if len(target.Options) == 0 {
		return
	}
	valid := map[string]bool{}
	for _, o := range target.Options {
		valid[o.Value] = true
	}
	vals := w.In
	if w.Equals != nil {
		vals = []string{*w.Equals}
	}
	for _, v := range vals {
		if !valid[v] {
			add(path, fmt.Sprintf("条件值“%s”不是字段“%s”的选项", v, w.Field), fmt.Sprintf("condition value %q is not an option of field %q", v, w.Field))
		}
	}
}

// FormFields returns the field keys of a form declaration, in order, or an error when the
// declaration is invalid.
func FormFields(raw json.RawMessage) ([]string, error) {
	var ps Problems
	keys, _ := checkForm(raw, "form", func(path, zh, en string) { ps.add("", path, zh, en) })
	if len(ps) > 0 {
		return nil, ps.Err()
	}
	return keys, nil
}

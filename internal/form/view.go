package form

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// View is a form ready for the template partial "form-fields" (web/templates/partials/
// form.html): every text already in one language, so the template needs no functions.
type View struct {
	Key      string
	Version  int
	Lang     string // "zh-CN" or "en"
	Title    string
	Sections []SectionView
	// Errors lists every error in field order, for the summary at the top of the form.
	Errors []ErrorView
	Text   ViewText
}

// ViewText holds the fixed words of the partial in the view's language.
type ViewText struct {
	Required     string // explains the * of required fields
	ErrorSummary string // heading of the error summary
	Colon        string // between a label and its message
}

// SectionView is one section; Hidden means its condition does not hold for the values shown.
type SectionView struct {
	Key    string
	ID     string // HTML id of the fieldset
	Title  string
	Hidden bool
	When   *WhenView
	Fields []FieldView
}

// FieldView is one field as the partial renders it.
type FieldView struct {
	Key   string // the input's name
	ID    string // the input's HTML id ("f-<key>"); error and help ids derive from it
	Type  FieldType
	Label string
	Help  string
	// Input is the control: text, textarea, date, email, tel, select, radio or checkbox.
	Input string
	// InputMode is the HTML inputmode hint for phone keyboards ("" for none).
	InputMode    string
	Autocomplete string
	Upper        bool   // letters are capitals (ID numbers, credit codes): autocapitalize, no spellcheck
	Choose       string // the empty first entry of a select
	Suffix       string // unit after the input, e.g. 元 for money
	Value        string // what the input shows (money in yuan)
	Display      string // the value for reading: option label, 是/否, amount with unit
	Checked      bool   // checkbox
	Options      []OptionView
	Required     bool
	Hidden       bool // its own condition does not hold (see also the section's)
	MaxLength    int
	Error        string // message in the view's language, "" when valid
	ErrorCode    string
	HelpID       string // "" when there is no help
	ErrorID      string // "" when there is no error
	DescribedBy  string // ids for aria-describedby: help and error
	When         *WhenView
}

// OptionView is a choice of a select or radio field.
type OptionView struct {
	Value    string
	Label    string
	ID       string // HTML id of the radio input
	Selected bool
}

// WhenView is a condition as data-when-* attributes for web/static/js/form.js.
type WhenView struct {
	Field     string
	Equals    string
	HasEquals bool
	In        string // JSON array of the accepted values, when !HasEquals
}

// ErrorView is one line of the error summary; ID is the input to jump to ("" for a key the
// form does not have).
type ErrorView struct {
	Field   string
	ID      string
	Label   string
	Message string
}

// FieldID is the HTML id of a field's input.
func FieldID(key string) string { return "f-" + key }

// View prepares the form for rendering in lang ("en" for English, anything else Chinese).
// values are what Validate returned (money in fen) or a prefilled set; a field that has an
// error in errs shows its value as typed. Visibility is computed as Validate does, so the
// page starts in the state the browser script would put it in.
func (f *Form) View(values Values, errs Errors, lang string) View {
	l := i18n.Parse(lang)
	in := func(zh, en string) string { return i18n.T(zh, en).In(l) }
	v := View{Key: f.Key, Version: f.Version, Lang: string(l), Title: in(f.Title, f.TitleEn),
		Sections: make([]SectionView, len(f.Sections)),
		Text: ViewText{
			Required:     in("为必填项", "marks a required field"),
			ErrorSummary: in("请修改以下内容后再提交", "Please correct the following before you submit"),
			Colon:        in("：", ": "),
		},
	}
	for i, s := range f.Sections {
		v.Sections[i] = SectionView{Key: s.Key, ID: "fs-" + s.Key, Title: in(s.Title, s.TitleEn), When: whenView(s.When),
			Fields: make([]FieldView, 0, len(s.Fields))}
	}
	f.eachField(func(_ *Section, sectionShown bool, fd *Field, fieldShown bool) string {
		si := f.sectionOf[fd.Key]
		v.Sections[si].Hidden = !sectionShown
		fe, hasErr := errs.For(fd.Key)
		fv := fd.view(values[fd.Key], hasErr, l)
		fv.Hidden = !fieldShown
		if hasErr {
			fv.Error, fv.ErrorCode, fv.ErrorID = fe.Message.In(l), fe.Code, fv.ID+"-error"
			fv.DescribedBy = strings.TrimSpace(fv.HelpID + " " + fv.ErrorID)
			target := fv.ID
			if len(fv.Options) > 0 && fv.Input == "radio" {
				target = fv.Options[0].ID // a radio group is reached through its first choice
			}
			v.Errors = append(v.Errors, ErrorView{Field: fd.Key, ID: target, Label: fv.Label, Message: fv.Error})
		}
		v.Sections[si].Fields = append(v.Sections[si].Fields, fv)
		if fd.Type == Checkbox && !fv.Checked {
			return "false"
		}
		return strings.TrimSpace(values[fd.Key])
	})
	for _, fe := range errs {
		if _, ok := f.byKey[fe.Field]; !ok {
			v.Errors = append(v.Errors, ErrorView{Field: fe.Field, Message: fe.Message.In(l)})
		}
	}
	return v
}

// inputs maps a field type to its control and keyboard hint. Numbers and money may have
// decimals, so they ask for the decimal keypad (numeric has no point on iOS); an ID number
// ends in X one time in eleven, so it keeps the full keyboard rather than the numeric pad.
var inputs = map[FieldType]struct{ input, mode string }{
	Text:       {"text", ""},
	Textarea:   {"textarea", ""},
	Number:     {"text", "decimal"},
	Money:      {"text", "decimal"},
	Date:       {"date", ""},
	Select:     {"select", ""},
	Radio:      {"radio", ""},
	Checkbox:   {"checkbox", ""},
	IDNumber:   {"text", ""},
	CreditCode: {"text", ""},
	Phone:      {"tel", "tel"},
	Email:      {"email", "email"},
	Division:   {"text", "numeric"},
}

// autocompletes are the HTML autofill tokens of the prefill sources a browser can know.
var autocompletes = map[string]string{
	SourceApplicantName:  "name",
	SourceApplicantPhone: "tel",
	SourcePersonAddress:  "street-address",
	SourceEntityName:     "organization",
}

func (fd *Field) view(raw string, hasErr bool, l i18n.Lang) FieldView {
	in := func(zh, en string) string { return i18n.T(zh, en).In(l) }
	id := FieldID(fd.Key)
	fv := FieldView{Key: fd.Key, ID: id, Type: fd.Type, Label: in(fd.Label, fd.LabelEn), Help: in(fd.Help, fd.HelpEn),
		Input: inputs[fd.Type].input, InputMode: inputs[fd.Type].mode, Autocomplete: autocompletes[fd.Prefill],
		Required: fd.Required, MaxLength: fd.MaxLength, When: whenView(fd.When), Value: raw, Display: strings.TrimSpace(raw)}
	if fv.Autocomplete == "" {
		switch fd.Type {
		case Phone:
			fv.Autocomplete = "tel"
		case Email:
			fv.Autocomplete = "email"
		case IDNumber, CreditCode, Division:
			fv.Autocomplete = "off"
		}
	}
	if fv.Help != "" {
		fv.HelpID = id + "-help"
		fv.DescribedBy = fv.HelpID
	}
	switch fd.Type {
	case IDNumber, CreditCode:
		fv.Upper, fv.MaxLength = true, 18
	case Division:
		fv.MaxLength = 6
	case Select:
		fv.Choose = in("请选择", "Choose…")
	}
	switch fd.Type {
	case Money:
		fv.Suffix = in("元", "yuan")
		if !hasErr {
			if fen, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64); err == nil {
				fv.Value = YuanText(fen)
				fv.Display = fv.Value + " " + fv.Suffix
			}
		}
	case Checkbox:
		fv.Checked = strings.TrimSpace(raw) == "true"
		fv.Display = in("否", "No")
		if fv.Checked {
			fv.Display = in("是", "Yes")
		}
	case Select, Radio:
		val := strings.TrimSpace(raw)
		fv.Options = make([]OptionView, len(fd.Options))
		for k, o := range fd.Options {
			fv.Options[k] = OptionView{Value: o.Value, Label: in(o.Label, o.LabelEn), ID: id + "-" + strconv.Itoa(k), Selected: o.Value == val}
			if o.Value == val {
				fv.Display = fv.Options[k].Label
			}
		}
	}
	return fv
}

func whenView(w *When) *WhenView {
	if w == nil {
		return nil
	}
	if w.Equals != nil {
		return &WhenView{Field: w.Field, Equals: *w.Equals, HasEquals: true}
	}
	b, _ := json.Marshal(w.In) // strings only: cannot fail
	return &WhenView{Field: w.Field, In: string(b)}
}

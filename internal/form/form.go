// Package form is the form engine of online government services: a form is declared once as
// JSON (in a pack), and that one declaration validates what the API receives, renders the
// web form, prefills it from the applicant's identity and the base libraries, and is stored
// per version so that an application is always read with the form it was made with.
package form

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/dgov/dgov/internal/platform/crypto"
)

// FieldType is the kind of value a field holds; it decides validation, normalisation and the
// input rendered for it.
type FieldType string

const (
	Text       FieldType = "text"
	Textarea   FieldType = "textarea"
	Number     FieldType = "number"     // decimal
	Money      FieldType = "money"      // yuan in the form, integer fen in values
	Date       FieldType = "date"       // YYYY-MM-DD
	Select     FieldType = "select"     // one of options
	Radio      FieldType = "radio"      // one of options
	Checkbox   FieldType = "checkbox"   // "true" or "false"
	IDNumber   FieldType = "idnumber"   // resident identity number, GB 11643-1999
	CreditCode FieldType = "creditcode" // unified social credit code, GB 32100-2015
	Phone      FieldType = "phone"      // mainland mobile number
	Email      FieldType = "email"
	Division   FieldType = "division" // GB/T 2260 code, 6 digits
)

// fieldTypes is every FieldType, in the order the documentation lists them.
var fieldTypes = []FieldType{Text, Textarea, Number, Money, Date, Select, Radio, Checkbox, IDNumber, CreditCode, Phone, Email, Division}

// Prefill sources: where a field's initial value may come from. The caller's lookup resolves
// them (identity for applicant.*, the population library for person.*, the legal-entity
// library for entity.*).
const (
	SourceApplicantName     = "applicant.name"
	SourceApplicantIDNumber = "applicant.id_number"
	SourceApplicantPhone    = "applicant.phone"
	SourceApplicantKind     = "applicant.kind"
	SourcePersonAddress     = "person.address"
	SourcePersonDivision    = "person.division"
	SourcePersonGender      = "person.gender"
	SourcePersonBirthDate   = "person.birth_date"
	SourceEntityName        = "entity.name"
	SourceEntityCreditCode  = "entity.credit_code"
	SourceEntityLegalRep    = "entity.legal_rep"
	SourceEntityAddress     = "entity.address"
	SourceEntityDivision    = "entity.division"
)

var prefillSources = []string{
	SourceApplicantName, SourceApplicantIDNumber, SourceApplicantPhone, SourceApplicantKind,
	SourcePersonAddress, SourcePersonDivision, SourcePersonGender, SourcePersonBirthDate,
	SourceEntityName, SourceEntityCreditCode, SourceEntityLegalRep, SourceEntityAddress, SourceEntityDivision,
}

// PrefillSources lists every source a declaration may name in "prefill".
func PrefillSources() []string { return append([]string(nil), prefillSources...) }

// Form is a parsed, checked declaration. Build it with Parse; it is immutable afterwards and
// safe for concurrent use.
type Form struct {
	Key      string    `json:"key"`
	Version  int       `json:"version"`
	Title    string    `json:"title"`
	TitleEn  string    `json:"title_en,omitempty"`
	Sections []Section `json:"sections"`

	fields    []*Field          // every field in declaration order
	byKey     map[string]*Field // field key → field
	sectionOf map[string]int    // field key → index of its section
	// referenced holds the keys that conditions name: only their values are kept while
	// evaluating visibility.
	referenced map[string]bool
	canonical  []byte
	hash       string
}

// Section groups fields under a heading; it may be shown only when a condition holds.
type Section struct {
	Key     string  `json:"key"`
	Title   string  `json:"title"`
	TitleEn string  `json:"title_en,omitempty"`
	When    *When   `json:"when,omitempty"`
	Fields  []Field `json:"fields"`
}

// Field is one input.
type Field struct {
	Key       string    `json:"key"`
	Label     string    `json:"label"`
	LabelEn   string    `json:"label_en,omitempty"`
	Type      FieldType `json:"type"`
	Required  bool      `json:"required,omitempty"`
	Min       *float64  `json:"min,omitempty"` // number and money (in yuan)
	Max       *float64  `json:"max,omitempty"`
	MaxLength int       `json:"max_length,omitempty"` // in characters; text, textarea, email
	Pattern   string    `json:"pattern,omitempty"`    // Go regexp the whole value must match; text, textarea
	Prefill   string    `json:"prefill,omitempty"`    // one of PrefillSources
	Help      string    `json:"help,omitempty"`
	HelpEn    string    `json:"help_en,omitempty"`
	Options   []Option  `json:"options,omitempty"` // select and radio
	When      *When     `json:"when,omitempty"`

	re             *regexp.Regexp
	minFen, maxFen int64 // money bounds in fen, when Min/Max are set
}

// Option is a choice of a select or radio field.
type Option struct {
	Value   string `json:"value"`
	Label   string `json:"label"`
	LabelEn string `json:"label_en,omitempty"`
}

// When makes a section or field visible only while an earlier field has one of some values:
// exactly one of Equals and In is set.
type When struct {
	Field  string   `json:"field"`
	Equals *string  `json:"equals,omitempty"`
	In     []string `json:"in,omitempty"`
}

// holds reports whether value satisfies the condition.
func (w *When) holds(value string) bool {
	if w.Equals != nil {
		return value == *w.Equals
	}
	for _, v := range w.In {
		if value == v {
			return true
		}
	}
	return false
}

// values lists the values the condition accepts.
func (w *When) values() []string {
	if w.Equals != nil {
		return []string{*w.Equals}
	}
	return w.In
}

// Hash is the lower-case hex SM3 digest (GB/T 32905) of the canonical JSON: the identity of
// a version. Two declarations differing only in layout or key order have the same hash.
func (f *Form) Hash() string { return f.hash }

// Canonical is the declaration as compact JSON with keys in a fixed order; it is what the
// versions store keeps, and Parse(f.Canonical()) gives an equal form with the same hash.
func (f *Form) Canonical() []byte { return bytes.Clone(f.canonical) }

// Field returns the field with key.
func (f *Form) Field(key string) (Field, bool) {
	fd, ok := f.byKey[key]
	if !ok {
		return Field{}, false
	}
	return *fd, true
}

// Keys lists every field key in declaration order.
func (f *Form) Keys() []string {
	out := make([]string, len(f.fields))
	for i, fd := range f.fields {
		out[i] = fd.Key
	}
	return out
}

// index fills the derived lookups and the hash of a checked form.
func (f *Form) index() error {
	f.byKey = map[string]*Field{}
	f.sectionOf = map[string]int{}
	f.referenced = map[string]bool{}
	f.fields = f.fields[:0]
	for i := range f.Sections {
		if w := f.Sections[i].When; w != nil {
			f.referenced[w.Field] = true
		}
	}
	for i := range f.Sections {
		for j := range f.Sections[i].Fields {
			fd := &f.Sections[i].Fields[j]
			f.fields = append(f.fields, fd)
			f.byKey[fd.Key] = fd
			f.sectionOf[fd.Key] = i
			if fd.When != nil {
				f.referenced[fd.When.Field] = true
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the canonical form is data, never embedded in HTML as is
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("canonical form %s: %w", f.Key, err)
	}
	f.canonical = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	f.hash = crypto.SM3Hex(f.canonical)
	return nil
}

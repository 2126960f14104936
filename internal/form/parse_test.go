package form_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// decl wraps sections in a minimal form.
func decl(sections string) string {
	return `{"key": "t", "version": 1, "title": "测试", "sections": ` + sections + `}`
}

// sec is one section "s" holding fields.
func sec(fields string) string {
	return decl(`[{"key": "s", "title": "分组", "fields": [` + fields + `]}]`)
}

const radioYesNo = `{"key": "a", "label": "甲", "type": "radio", "options": [{"value": "yes", "label": "是"}, {"value": "no", "label": "否"}]}`

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, json, code, path string
	}{
		{"not JSON", `{"key": `, "form.syntax", ""},
		{"trailing data", decl(`[]`) + `{}`, "form.syntax", ""},
		{"array at top", `[]`, "form.json_type", ""},
		{"unknown top key", `{"key": "t", "colour": "red"}`, "form.unknown_key", "colour"},
		{"duplicate JSON key", `{"key": "t", "key": "u"}`, "form.duplicate_key", "key"},
		{"version as string", `{"key": "t", "version": "1"}`, "form.json_type", "version"},
		{"version fractional", `{"key": "t", "version": 1.5}`, "form.json_type", "version"},
		{"null section list", `{"key": "t", "version": 1, "title": "T", "sections": null}`, "form.json_type", "sections"},
		{"missing key", `{"version": 1, "title": "T", "sections": []}`, "form.missing", "key"},
		{"bad form key", `{"key": "a b", "version": 1, "title": "T", "sections": []}`, "form.bad_key", "key"},
		{"version 0", `{"key": "t", "version": 0, "title": "T", "sections": []}`, "form.version", "version"},
		{"missing title", `{"key": "t", "version": 1, "sections": []}`, "form.missing", "title"},
		{"no sections", decl(`[]`), "form.missing", "sections"},
		{"section without fields", decl(`[{"key": "s", "title": "分组", "fields": []}]`), "form.missing", "sections[0].fields"},
		{"section without title", decl(`[{"key": "s", "fields": [{"key": "a", "label": "甲", "type": "text"}]}]`), "form.missing", "sections[0].title"},
		{"duplicate section", decl(`[{"key": "s", "title": "一", "fields": [{"key": "a", "label": "甲", "type": "text"}]},
			{"key": "s", "title": "二", "fields": [{"key": "b", "label": "乙", "type": "text"}]}]`), "form.duplicate_section", "sections[1].key"},
		{"unknown field key in JSON", sec(`{"key": "a", "label": "甲", "type": "text", "lable": "x"}`), "form.unknown_key", "sections[0].fields[0].lable"},
		{"required as string", sec(`{"key": "a", "label": "甲", "type": "text", "required": "yes"}`), "form.json_type", "sections[0].fields[0].required"},
		{"unknown type", sec(`{"key": "a", "label": "甲", "type": "text"}, {"key": "b", "label": "乙", "type": "colour"}`), "form.type", "sections[0].fields[1].type"},
		{"missing type", sec(`{"key": "a", "label": "甲"}`), "form.missing", "sections[0].fields[0].type"},
		{"missing label", sec(`{"key": "a", "type": "text"}`), "form.missing", "sections[0].fields[0].label"},
		{"bad field key", sec(`{"key": "1a", "label": "甲", "type": "text"}`), "form.bad_key", "sections[0].fields[0].key"},
		{"duplicate field across sections", decl(`[{"key": "s", "title": "一", "fields": [{"key": "a", "label": "甲", "type": "text"}]},
			{"key": "t", "title": "二", "fields": [{"key": "b", "label": "乙", "type": "text"}, {"key": "a", "label": "甲二", "type": "text"}]}]`),
			"form.duplicate_field", "sections[1].fields[1].key"},
		{"bad regexp", decl(`[{"key": "s", "title": "一", "fields": [{"key": "a", "label": "甲", "type": "text"}]},
			{"key": "t", "title": "二", "fields": [{"key": "b", "label": "乙", "type": "text"}, {"key": "c", "label": "丙", "type": "text"},
			{"key": "d", "label": "丁", "type": "text"}, {"key": "e", "label": "戊", "type": "text", "pattern": "[a-"}]}]`),
			"form.pattern", "sections[1].fields[3].pattern"},
		{"pattern on a number", sec(`{"key": "a", "label": "甲", "type": "number", "pattern": "\\d+"}`), "form.not_allowed", "sections[0].fields[0].pattern"},
		{"select without options", sec(`{"key": "a", "label": "甲", "type": "select"}`), "form.options", "sections[0].fields[0].options"},
		{"radio with empty options", sec(`{"key": "a", "label": "甲", "type": "radio", "options": []}`), "form.options", "sections[0].fields[0].options"},
		{"options on text", sec(`{"key": "a", "label": "甲", "type": "text", "options": [{"value": "x", "label": "X"}]}`), "form.not_allowed", "sections[0].fields[0].options"},
		{"duplicate option", sec(`{"key": "a", "label": "甲", "type": "select", "options": [{"value": "x", "label": "X"}, {"value": "x", "label": "Y"}]}`),
			"form.duplicate_option", "sections[0].fields[0].options[1].value"},
		{"option without label", sec(`{"key": "a", "label": "甲", "type": "select", "options": [{"value": "x"}]}`), "form.missing", "sections[0].fields[0].options[0].label"},
		{"min above max", sec(`{"key": "a", "label": "甲", "type": "number", "min": 10, "max": 2}`), "form.min_max", "sections[0].fields[0].min"},
		{"min on text", sec(`{"key": "a", "label": "甲", "type": "text", "min": 1}`), "form.not_allowed", "sections[0].fields[0].min"},
		{"money bound below a fen", sec(`{"key": "a", "label": "甲", "type": "money", "max": 1.005}`), "form.money_bound", "sections[0].fields[0].max"},
		{"max_length on a date", sec(`{"key": "a", "label": "甲", "type": "date", "max_length": 10}`), "form.not_allowed", "sections[0].fields[0].max_length"},
		{"negative max_length", sec(`{"key": "a", "label": "甲", "type": "text", "max_length": -1}`), "form.json_type", "sections[0].fields[0].max_length"},
		{"unknown prefill", sec(`{"key": "a", "label": "甲", "type": "text", "prefill": "applicant.salary"}`), "form.prefill", "sections[0].fields[0].prefill"},
		{"when on unknown field", sec(`{"key": "a", "label": "甲", "type": "text", "when": {"field": "zz", "equals": "1"}}`), "form.when", "sections[0].fields[0].when.field"},
		{"when on itself", sec(`{"key": "a", "label": "甲", "type": "text", "when": {"field": "a", "equals": "1"}}`), "form.when", "sections[0].fields[0].when.field"},
		{"when on a later field", sec(`{"key": "a", "label": "甲", "type": "text", "when": {"field": "b", "equals": "1"}}, {"key": "b", "label": "乙", "type": "text"}`),
			"form.when", "sections[0].fields[0].when.field"},
		{"section when on its own field", decl(`[{"key": "s", "title": "一", "when": {"field": "a", "equals": "yes"}, "fields": [` + radioYesNo + `]}]`),
			"form.when", "sections[0].when.field"},
		{"when without value", sec(radioYesNo + `, {"key": "b", "label": "乙", "type": "text", "when": {"field": "a"}}`), "form.when", "sections[0].fields[1].when"},
		{"when with both", sec(radioYesNo + `, {"key": "b", "label": "乙", "type": "text", "when": {"field": "a", "equals": "yes", "in": ["no"]}}`),
			"form.when", "sections[0].fields[1].when"},
		{"when on a value the radio lacks", sec(radioYesNo + `, {"key": "b", "label": "乙", "type": "text", "when": {"field": "a", "in": ["yes", "maybe"]}}`),
			"form.when", "sections[0].fields[1].when.in[1]"},
		{"when on a checkbox with yes", sec(`{"key": "a", "label": "甲", "type": "checkbox"}, {"key": "b", "label": "乙", "type": "text", "when": {"field": "a", "equals": "yes"}}`),
			"form.when", "sections[0].fields[1].when.equals"},
		{"label too long", sec(`{"key": "a", "label": "` + strings.Repeat("长", 201) + `", "type": "text"}`), "form.too_long", "sections[0].fields[0].label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := form.Parse([]byte(tt.json))
			if err == nil {
				t.Fatalf("accepted: %s", f.Canonical())
			}
			e := wantI18n(t, err, tt.code, tt.path)
			if tt.path != "" && (!strings.Contains(e.Msg.ZH, tt.path) || !strings.Contains(e.Msg.EN, tt.path)) {
				t.Errorf("message does not name the path %s: %v", tt.path, e.Msg)
			}
			if e.HTTPStatus() != 400 {
				t.Errorf("status %d", e.HTTPStatus())
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	big := sec(`{"key": "a", "label": "甲", "type": "text", "help": "` + strings.Repeat("x", form.MaxDeclarationBytes) + `"}`)
	_, err := form.Parse([]byte(big))
	wantI18n(t, err, "form.too_large", "")
}

func TestParseAccepts(t *testing.T) {
	f := geti(t)
	if f.Key != "geti-register" || f.Version != 1 || len(f.Sections) != 3 {
		t.Fatalf("parsed %+v", f)
	}
	wantKeys := "name id_number phone email birth has_shop shop_address shop_division area ownership lease_end trade_name capital channel platform entity_code agree"
	if got := strings.Join(f.Keys(), " "); got != wantKeys {
		t.Errorf("keys %s", got)
	}
	capital, ok := f.Field("capital")
	if !ok || capital.Type != form.Money || capital.Min == nil || *capital.Min != 0 || *capital.Max != 10000000 {
		t.Errorf("capital %+v", capital)
	}
	if _, ok := f.Field("nope"); ok {
		t.Error("unknown field found")
	}
	if len(f.Hash()) != 64 {
		t.Errorf("hash %q", f.Hash())
	}
	// A condition on a field of an earlier section, with equals "" (shown while empty).
	if _, err := form.Parse([]byte(decl(`[{"key": "s", "title": "一", "fields": [{"key": "a", "label": "甲", "type": "text"}]},
		{"key": "t", "title": "二", "when": {"field": "a", "equals": ""}, "fields": [{"key": "b", "label": "乙", "type": "text"}]}]`))); err != nil {
		t.Errorf("condition on an earlier section's field: %v", err)
	}
}

// The hash is a version's identity: layout and key order do not change it, content does.
func TestHashAndCanonical(t *testing.T) {
	f := geti(t)
	var generic map[string]any
	if err := json.Unmarshal([]byte(getiJSON), &generic); err != nil {
		t.Fatal(err)
	}
	reordered, _ := json.MarshalIndent(generic, "", "\t") // keys sorted, other layout
	g, err := form.Parse(reordered)
	if err != nil {
		t.Fatal(err)
	}
	if g.Hash() != f.Hash() || !bytes.Equal(g.Canonical(), f.Canonical()) {
		t.Errorf("layout changed the hash: %s vs %s", g.Hash(), f.Hash())
	}
	again, err := form.Parse(f.Canonical())
	if err != nil || again.Hash() != f.Hash() {
		t.Fatalf("canonical does not round-trip: %v", err)
	}
	changed, err := form.Parse([]byte(strings.Replace(getiJSON, `"max_length": 50`, `"max_length": 60`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if changed.Hash() == f.Hash() {
		t.Error("a changed declaration kept its hash")
	}
	if bytes.Contains(f.Canonical(), []byte("\n")) || !bytes.Contains(f.Canonical(), []byte(`"title":"个体工商户设立登记申请表"`)) {
		t.Errorf("canonical is not compact UTF-8 JSON: %.200s", f.Canonical())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		getiJSON,
		sec(radioYesNo + `, {"key": "b", "label": "乙", "type": "text", "when": {"field": "a", "in": ["yes"]}}`),
		sec(`{"key": "a", "label": "甲", "type": "money", "min": 0.5, "max": 99.99}`),
		sec(`{"key": "a", "label": "甲", "type": "text", "pattern": "(a|b)+", "max_length": 3}`),
		`{"key": "t", "key": "u"}`, `[`, `{"sections": [{"fields": [{"options": [{}]}]}]}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fm, err := form.Parse(data)
		if err != nil {
			var e *i18n.Error
			if !errors.As(err, &e) || e.Code == "" || e.Msg.ZH == "" || e.Msg.EN == "" {
				t.Fatalf("not a bilingual error: %v", err)
			}
			return
		}
		// Whatever parses round-trips through its canonical form with the same identity,
		// and can be validated, viewed and prefilled without panicking.
		again, err := form.Parse(fm.Canonical())
		if err != nil || again.Hash() != fm.Hash() {
			t.Fatalf("canonical round trip: %v", err)
		}
		vals := form.Values{}
		for _, k := range fm.Keys() {
			vals[k] = "1"
		}
		out, _ := fm.ValidateWith(vals, opts)
		fm.View(out, nil, "en")
		fm.Prefill(form.Values{}, func(string) (string, bool) { return "x", true })
	})
}

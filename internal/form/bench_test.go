package form_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/form"
)

// form30 is a 30-field form of every type, with conditions, and a valid submission.
func form30(b *testing.B) (*form.Form, form.Values) {
	b.Helper()
	kinds := []struct{ field, value string }{
		{`"type": "text", "max_length": 50, "pattern": "[\\p{Han}A-Za-z·]+"`, "王小明"},
		{`"type": "idnumber"`, idNumber},
		{`"type": "phone"`, "138 0351 1234"},
		{`"type": "email"`, "wang@example.cn"},
		{`"type": "date"`, "2025-06-30"},
		{`"type": "money", "min": 0, "max": 1000000`, "35000.50"},
		{`"type": "number", "min": 0, "max": 1000`, "120.5"},
		{`"type": "select", "options": [{"value": "a", "label": "甲"}, {"value": "b", "label": "乙"}, {"value": "c", "label": "丙"}]`, "b"},
		{`"type": "radio", "options": [{"value": "yes", "label": "是"}, {"value": "no", "label": "否"}]`, "yes"},
		{`"type": "checkbox"`, "true"},
		{`"type": "creditcode"`, "91350100M000100Y43"},
		{`"type": "division"`, "140105"},
		{`"type": "textarea", "max_length": 500`, "太原市小店区长风街1号\n二层"},
		{`"type": "text"`, "备注"},
		{`"type": "number"`, "3"},
	}
	var sections []string
	vals := form.Values{}
	n := 0
	for s := 0; s < 3; s++ {
		var fields []string
		for i := 0; i < 10; i++ {
			k := kinds[n%len(kinds)]
			key := fmt.Sprintf("f%02d", n)
			when := ""
			if n%len(kinds) == 13 && n > 8 { // a field shown by the earlier radio
				when = fmt.Sprintf(`, "when": {"field": "f%02d", "equals": "yes"}`, n-5)
			}
			fields = append(fields, fmt.Sprintf(`{"key": %q, "label": "字段%d", "required": true, %s%s}`, key, n, k.field, when))
			vals[key] = k.value
			n++
		}
		sections = append(sections, fmt.Sprintf(`{"key": "s%d", "title": "分组%d", "fields": [%s]}`, s, s, strings.Join(fields, ", ")))
	}
	fm, err := form.Parse([]byte(decl("[" + strings.Join(sections, ", ") + "]")))
	if err != nil {
		b.Fatal(err)
	}
	if out, errs := fm.ValidateWith(vals, opts); len(errs) != 0 || len(out) != 30 {
		b.Fatalf("the benchmark submission is not valid: %d values, %v", len(out), errs)
	}
	return fm, vals
}

func BenchmarkValidate30(b *testing.B) {
	fm, vals := form30(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := fm.ValidateWith(vals, opts); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkView30(b *testing.B) {
	fm, vals := form30(b)
	out, _ := fm.ValidateWith(vals, opts)
	b.ReportAllocs()
	for b.Loop() {
		fm.View(out, nil, "zh-CN")
	}
}

func BenchmarkParse30(b *testing.B) {
	fm, _ := form30(b)
	data := fm.Canonical()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := form.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

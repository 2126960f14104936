package form_test

import (
	"fmt"
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/form"
)

// one parses a form with the single field f (JSON object without key and label).
func one(t testing.TB, field string) *form.Form {
	t.Helper()
	fm, err := form.Parse([]byte(sec(`{"key": "v", "label": "值", "label_en": "Value", ` + field + `}`)))
	if err != nil {
		t.Fatalf("parse %s: %v", field, err)
	}
	return fm
}

func TestValidateTypes(t *testing.T) {
	tests := []struct {
		field string
		in    string
		want  string // normalised value; "" with code "" means left out
		code  string // error code, "" when valid
	}{
		{`"type": "text"`, "  张三  ", "张三", ""},
		{`"type": "text"`, "", "", ""},
		{`"type": "text", "required": true`, "   ", "", "form.required"},
		{`"type": "text"`, "a\nb", "", "form.control_char"},
		{`"type": "text"`, "a\x00b", "", "form.control_char"},
		{`"type": "text"`, "\xff\xfe", "", "form.encoding"},
		{`"type": "text", "max_length": 3`, "山西省", "山西省", ""}, // characters, not bytes
		{`"type": "text", "max_length": 3`, "山西省人", "", "form.too_long"},
		{`"type": "text"`, strings.Repeat("a", 501), "", "form.too_long"}, // default limit
		{`"type": "text", "pattern": "[A-Z]{2}\\d+"`, "AB12", "AB12", ""},
		{`"type": "text", "pattern": "[A-Z]{2}\\d+"`, "xAB12", "", "form.pattern"}, // whole value must match
		{`"type": "textarea"`, " 第一行\r\n第二行\t。 ", "第一行\n第二行\t。", ""},
		{`"type": "textarea"`, "a\x07", "", "form.control_char"},
		{`"type": "number"`, "007.50", "7.5", ""},
		{`"type": "number"`, "-0.0", "0", ""},
		{`"type": "number"`, "-12", "-12", ""},
		{`"type": "number"`, "1e3", "", "form.number"},
		{`"type": "number"`, "1.", "", "form.number"},
		{`"type": "number"`, ".5", "", "form.number"},
		{`"type": "number"`, "１２", "", "form.number"},
		{`"type": "number", "min": 1, "max": 10`, "0.5", "", "form.min"},
		{`"type": "number", "min": 1, "max": 10`, "10", "10", ""},
		{`"type": "number", "min": 1, "max": 10`, "10.01", "", "form.max"},
		{`"type": "money"`, "1200", "120000", ""},
		{`"type": "money"`, "35.5", "3550", ""},
		{`"type": "money"`, "0.07", "7", ""},
		{`"type": "money"`, "1.234", "", "form.money"},
		{`"type": "money"`, "-1", "", "form.money"},
		{`"type": "money"`, "1,200", "", "form.money"},
		{`"type": "money"`, "1234567890123456", "", "form.money"}, // 16 digits of yuan
		{`"type": "money"`, "999999999999999.99", "99999999999999999", ""},
		{`"type": "money", "min": 0.5, "max": 100`, "0.49", "", "form.min"},
		{`"type": "money", "min": 0.5, "max": 100`, "100.00", "10000", ""},
		{`"type": "money", "min": 0.5, "max": 100`, "100.01", "", "form.max"},
		{`"type": "date"`, "2024-02-29", "2024-02-29", ""},
		{`"type": "date"`, "2023-02-29", "", "form.date"},
		{`"type": "date"`, "2024-2-9", "", "form.date"},
		{`"type": "date"`, "2024/02/09", "", "form.date"},
		{`"type": "select", "options": [{"value": "a", "label": "甲"}]`, "a", "a", ""},
		{`"type": "select", "options": [{"value": "a", "label": "甲"}]`, "b", "", "form.option"},
		{`"type": "radio", "required": true, "options": [{"value": "a", "label": "甲"}]`, "", "", "form.required"},
		{`"type": "checkbox"`, "", "false", ""},
		{`"type": "checkbox"`, "true", "true", ""},
		{`"type": "checkbox"`, "on", "", "form.checkbox"},
		{`"type": "checkbox", "required": true`, "false", "", "form.required"},
		{`"type": "checkbox", "required": true`, "", "", "form.required"},
		{`"type": "idnumber"`, idNumber, idNumber, ""},
		{`"type": "idnumber"`, strings.ToLower(idNumberX), idNumberX, ""}, // upper-case X
		{`"type": "idnumber"`, idNumber[:17], "", "ids.resident.length"},
		{`"type": "idnumber"`, idNumber[:17] + "Y", "", "ids.resident.format"},
		{`"type": "idnumber"`, "140105" + "20270101" + "1230", "", "ids.resident.birth_future"}, // after the test clock
		{`"type": "idnumber"`, idNumber[:16] + string('0'+(idNumber[16]-'0'+1)%10) + idNumber[17:], "", "ids.resident.checksum"},
		{`"type": "creditcode"`, "91350100m000100y43", "91350100M000100Y43", ""},
		{`"type": "creditcode"`, "91350100M000100Y44", "", "ids.credit.checksum"},
		{`"type": "phone"`, "138 0351 1234", "13803511234", ""},
		{`"type": "phone"`, "+86 13803511234", "13803511234", ""},
		{`"type": "phone"`, "12803511234", "", "ids.mobile.prefix"},
		{`"type": "phone"`, "0351-1234567", "", "ids.mobile.prefix"}, // a landline
		{`"type": "phone"`, "1380351123", "", "ids.mobile.length"},
		{`"type": "email"`, "zhang.san@shanxi.gov.cn", "zhang.san@shanxi.gov.cn", ""},
		{`"type": "email"`, "Zhang <z@a.cn>", "", "form.email"},
		{`"type": "email"`, "z@localhost", "", "form.email"},
		{`"type": "email"`, "z a@b.cn", "", "form.email"},
		{`"type": "email", "max_length": 10`, "abc@def.com", "", "form.too_long"},
		{`"type": "division"`, "140105", "140105", ""},
		{`"type": "division"`, "140000", "140000", ""},
		{`"type": "division"`, "149999", "", "form.division_unknown"},
		{`"type": "division"`, "990000", "", "ids.division.province"},
		{`"type": "division"`, "140105001", "", "form.division"},
		{`"type": "division"`, "14010a", "", "form.division"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s=%q", tt.field, tt.in), func(t *testing.T) {
			fm := one(t, tt.field)
			out, errs := fm.ValidateWith(form.Values{"v": tt.in}, opts)
			if tt.code != "" {
				if len(errs) != 1 || errs[0].Field != "v" || errs[0].Code != tt.code || errs[0].Message.ZH == "" || errs[0].Message.EN == "" {
					t.Fatalf("errors %+v, want one %s", errs, tt.code)
				}
				return
			}
			if len(errs) != 0 {
				t.Fatalf("errors %+v", errs)
			}
			got, ok := out["v"]
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("value %q (present %v), want %q", got, ok, tt.want)
			}
		})
	}
}

// Divisions plugs in a table of codes; the default is the national one.
func TestValidateDivisionsOption(t *testing.T) {
	fm := one(t, `"type": "division"`)
	shanxiOnly := form.Options{Now: opts.Now, Divisions: func(c string) bool { return strings.HasPrefix(c, "14") }}
	if _, errs := fm.ValidateWith(form.Values{"v": "110101"}, shanxiOnly); len(errs) != 1 || errs[0].Code != "form.division_unknown" {
		t.Errorf("Beijing accepted by a Shanxi-only table: %+v", errs)
	}
	if _, errs := fm.Validate(form.Values{"v": "110101"}); len(errs) != 0 {
		t.Errorf("Beijing refused by the national table: %+v", errs)
	}
}

// validGeti is a complete, valid application with premises, rented, sold online.
func validGeti() form.Values {
	return form.Values{
		"name": " 王小明 ", "id_number": idNumber, "phone": "13803511234", "birth": "1990-05-17", "has_shop": "yes",
		"shop_address": "太原市小店区长风街1号", "shop_division": "140105", "area": "35.0", "ownership": "rent", "lease_end": "2028-12-31",
		"trade_name": "小明面馆", "capital": "50000", "channel": "both", "platform": "美团", "agree": "true",
	}
}

func TestValidateForm(t *testing.T) {
	fm := geti(t)
	tests := []struct {
		name   string
		change func(v form.Values)
		want   form.Values // expected values (nil: skip)
		codes  map[string]string
	}{
		{name: "complete", change: func(form.Values) {},
			want: form.Values{"name": "王小明", "id_number": idNumber, "phone": "13803511234", "birth": "1990-05-17", "has_shop": "yes",
				"shop_address": "太原市小店区长风街1号", "shop_division": "140105", "area": "35", "ownership": "rent", "lease_end": "2028-12-31",
				"trade_name": "小明面馆", "capital": "5000000", "channel": "both", "platform": "美团", "agree": "true"}},
		{name: "no premises drops the section's values",
			change: func(v form.Values) { v["has_shop"] = "no" },
			want: form.Values{"name": "王小明", "id_number": idNumber, "phone": "13803511234", "birth": "1990-05-17", "has_shop": "no",
				"trade_name": "小明面馆", "capital": "5000000", "channel": "both", "platform": "美团", "agree": "true"}},
		{name: "premises hidden, its required fields are not required",
			change: func(v form.Values) {
				v["has_shop"] = "no"
				delete(v, "shop_address")
				delete(v, "ownership")
				v["shop_division"] = "not a code" // hidden: dropped, not checked
			}},
		{name: "owned premises hide the lease end",
			change: func(v form.Values) { v["ownership"] = "own"; v["lease_end"] = "garbage" },
		},
		{name: "offline hides the platform",
			change: func(v form.Values) { v["channel"] = "offline" }},
		{name: "no channel hides the platform too",
			change: func(v form.Values) { delete(v, "channel") }},
		{name: "several errors at once, in field order, unknown keys last",
			change: func(v form.Values) {
				v["id_number"] = "123"
				v["capital"] = "12.345"
				v["lease_end"] = ""
				v["agree"] = "false"
				v["zz_extra"] = "1"
				v["aa_extra"] = "2"
			},
			codes: map[string]string{"id_number": "ids.resident.length", "lease_end": "form.required", "capital": "form.money",
				"agree": "form.required", "aa_extra": "form.unknown_field", "zz_extra": "form.unknown_field"}},
		{name: "required fields missing",
			change: func(v form.Values) { clear(v) },
			codes: map[string]string{"name": "form.required", "id_number": "form.required", "phone": "form.required",
				"has_shop": "form.required", "capital": "form.required", "agree": "form.required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validGeti()
			tt.change(in)
			out, errs := fm.ValidateWith(in, opts)
			got := map[string]string{}
			for _, e := range errs {
				got[e.Field] = e.Code
			}
			if !maps.Equal(got, tt.codes) && !(len(got) == 0 && tt.codes == nil) {
				t.Fatalf("errors %v, want %v", got, tt.codes)
			}
			if tt.want != nil && !maps.Equal(out, tt.want) {
				t.Errorf("values\n got %v\nwant %v", out, tt.want)
			}
			if tt.codes != nil {
				order := make([]string, len(errs))
				for i, e := range errs {
					order[i] = e.Field
				}
				if strings.Join(order, ",") != fieldOrder(fm, got) {
					t.Errorf("errors not in field order: %v", order)
				}
				if e := errs.Err(); e == nil {
					t.Error("Err() is nil with errors")
				} else {
					wantI18n(t, e, "form.invalid", errs[0].Field)
				}
			} else if errs.Err() != nil {
				t.Error("Err() is not nil without errors")
			}
			// Nothing hidden is ever kept.
			if in["has_shop"] != "yes" {
				for _, k := range []string{"shop_address", "shop_division", "area", "ownership", "lease_end"} {
					if _, ok := out[k]; ok {
						t.Errorf("hidden %s kept", k)
					}
				}
			}
		})
	}
}

// fieldOrder is the keys of got in declaration order, then the unknown ones sorted.
func fieldOrder(fm *form.Form, got map[string]string) string {
	var out []string
	for _, k := range fm.Keys() {
		if _, ok := got[k]; ok {
			out = append(out, k)
		}
	}
	var unknown []string
	for k := range got {
		if _, ok := fm.Field(k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 2 && unknown[0] > unknown[1] {
		unknown[0], unknown[1] = unknown[1], unknown[0]
	}
	return strings.Join(append(out, unknown...), ",")
}

func TestPrefill(t *testing.T) {
	fm := geti(t)
	sources := map[string]string{
		form.SourceApplicantName: "王小明", form.SourceApplicantIDNumber: idNumber, form.SourceApplicantPhone: " 13803511234 ",
		form.SourcePersonBirthDate: "", // known but empty: left alone
	}
	var asked []string
	lookup := func(src string) (string, bool) {
		asked = append(asked, src)
		v, ok := sources[src]
		return v, ok
	}
	in := form.Values{"name": "李四", "email": "a@b.cn"}
	out := fm.Prefill(in, lookup)
	want := form.Values{"name": "李四", "email": "a@b.cn", "id_number": idNumber, "phone": "13803511234"}
	if !maps.Equal(out, want) {
		t.Errorf("prefilled %v, want %v", out, want)
	}
	if in["id_number"] != "" {
		t.Error("Prefill changed its input")
	}
	if strings.Join(asked, ",") != "applicant.id_number,applicant.phone,person.birth_date" {
		t.Errorf("asked %v: a filled field must not be looked up", asked)
	}
	if got := fm.Prefill(nil, func(string) (string, bool) { return "", false }); len(got) != 0 {
		t.Errorf("nothing to fill: %v", got)
	}
}

func TestFromURLValuesAndOnly(t *testing.T) {
	fm := geti(t)
	q := url.Values{"csrf_token": {"x"}, "name": {"王小明"}, "agree": {"true"}, "capital": {"1", "2"}}
	got := fm.FromURLValues(q)
	if !maps.Equal(got, form.Values{"name": "王小明", "agree": "true", "capital": "2"}) {
		t.Errorf("from post: %v", got)
	}
	if only := got.Only("name", "phone"); !maps.Equal(only, form.Values{"name": "王小明"}) {
		t.Errorf("only: %v", only)
	}
}

func FuzzValidate(f *testing.F) {
	fm := geti(f)
	all := []*form.Form{fm}
	for _, field := range []string{`"type": "number", "min": -5, "max": 5`, `"type": "money", "max": 10`, `"type": "date"`,
		`"type": "idnumber"`, `"type": "creditcode"`, `"type": "phone"`, `"type": "email"`, `"type": "division"`,
		`"type": "textarea", "max_length": 5`, `"type": "text", "pattern": "[a-z]+"`, `"type": "checkbox"`} {
		all = append(all, one(f, field))
	}
	for _, s := range []string{"", "1", "-0.50", "12.345", "2024-02-29", idNumber, idNumberX, "91350100M000100Y43", "+86 138 0351 1234",
		"a@b.cn", "140105", "yes", "true", "\xff", "a\r\nb", "１２３"} {
		f.Add(uint8(0), "has_shop", s)
		f.Add(uint8(1), "v", s)
	}
	f.Fuzz(func(t *testing.T, which uint8, key, value string) {
		fm := all[int(which)%len(all)]
		in := validGeti()
		if fm.Key != "geti-register" {
			in = form.Values{}
		}
		in[key] = value
		out, errs := fm.ValidateWith(in, opts)
		for _, e := range errs {
			if e.Code == "" || e.Message.ZH == "" || e.Message.EN == "" {
				t.Fatalf("error without code or text: %+v", e)
			}
		}
		for k := range out {
			if _, ok := fm.Field(k); !ok {
				t.Fatalf("undeclared key %q in the values", k)
			}
		}
		if len(errs) > 0 {
			fm.View(out, errs, "zh-CN")
			return
		}
		// Valid values are normalised: validating them again gives the same, except money,
		// which the form takes in yuan and keeps in fen.
		for k, v := range out {
			if fd, _ := fm.Field(k); fd.Type == form.Money {
				out[k] = form.YuanText(mustInt(t, v))
			}
		}
		again, errs := fm.ValidateWith(out, opts)
		if len(errs) > 0 {
			t.Fatalf("normalised values refused: %v → %+v", out, errs)
		}
		for k, v := range again {
			if fd, _ := fm.Field(k); fd.Type != form.Money && out[k] != v {
				t.Fatalf("%s: %q normalised again to %q", k, out[k], v)
			}
		}
	})
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("fen %q: %v", s, err)
	}
	return n
}

package govservice_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// A small valid pack: two items and a bundle over them. Tests change one thing at a time.
const (
	baseItemA = `{
  "code": "010020100100", "name": "个体工商户设立登记", "name_en": "Individual business registration",
  "type": "行政许可", "department": "scjg", "level": "county",
  "legal_basis": ["《市场主体登记管理条例》第三条"], "conditions": "有经营能力的自然人",
  "statutory_days": 3, "promised_days": 2,
  "materials": [{"key": "id", "name": "身份证", "name_en": "ID card", "required": true, "license_type": "居民身份证", "note": ""}],
  "fees": [],
  "steps": [{"key": "accept", "name": "受理", "name_en": "Acceptance", "role": "", "days": 1},
            {"key": "decide", "name": "决定", "name_en": "Decision", "role": "", "days": 1}],
  "channels": ["web", "hall"], "zero_visit": true,
  "result": {"name": "营业执照", "license_type": "营业执照"},
  "faq": [{"q": "要钱吗？", "a": "免费。"}],
  "keywords": ["个体户"],
  "form": {"key": "geti", "version": 1, "title": "申请表", "sections": [
    {"key": "main", "title": "信息", "fields": [
      {"key": "name", "label": "姓名", "type": "text", "required": true, "prefill": "applicant.name"},
      {"key": "shop", "label": "字号", "type": "text", "required": true},
      {"key": "kind", "label": "形式", "type": "radio", "required": true,
       "options": [{"value": "one", "label": "个人"}, {"value": "family", "label": "家庭"}]},
      {"key": "member", "label": "家庭成员", "type": "text", "required": true, "when": {"field": "kind", "equals": "family"}}
    ]}]}
}`
	baseItemB = `{
  "code": "010031000100", "name": "食品经营许可", "name_en": "Food business licence",
  "type": "行政许可", "department": "xzsp", "level": "county",
  "legal_basis": ["《中华人民共和国食品安全法》第三十五条"], "conditions": "有场所",
  "statutory_days": 10, "promised_days": 5,
  "materials": [], "fees": [{"name": "无", "amount_fen": 0, "basis": ""}],
  "steps": [{"key": "review", "name": "审查", "name_en": "Review", "role": "officer", "days": 5}],
  "channels": ["hall"], "zero_visit": false,
  "result": {"name": "食品经营许可证", "license_type": "食品经营许可证"},
  "faq": [], "keywords": [],
  "form": {"key": "food", "version": 1, "title": "申请表", "sections": [
    {"key": "main", "title": "信息", "fields": [
      {"key": "shop", "label": "名称", "type": "text", "required": true},
      {"key": "online", "label": "网络经营", "type": "radio", "required": true,
       "options": [{"value": "yes", "label": "是"}, {"value": "no", "label": "否"}]}
    ]}]}
}`
	baseBundle = `{
  "code": "restaurant", "name": "开餐馆一件事", "name_en": "Opening a restaurant", "summary": "一次办",
  "items": ["010020100100", "010031000100"],
  "fields": {"010020100100": ["shop", "kind", "member"], "010031000100": ["shop", "online"]},
  "form": {"key": "restaurant", "version": 1, "title": "联办表", "sections": [
    {"key": "main", "title": "信息", "fields": [
      {"key": "shop", "label": "字号", "type": "text", "required": true},
      {"key": "kind", "label": "形式", "type": "radio", "required": true,
       "options": [{"value": "one", "label": "个人"}, {"value": "family", "label": "家庭"}]},
      {"key": "member", "label": "家庭成员", "type": "text", "when": {"field": "kind", "equals": "family"}},
      {"key": "online", "label": "网络经营", "type": "radio", "required": true,
       "options": [{"value": "yes", "label": "是"}, {"value": "no", "label": "否"}]}
    ]}]}
}`
)

func basePack() fstest.MapFS {
	return fstest.MapFS{
		"services/geti.json":      {Data: []byte(baseItemA)},
		"services/food.json":      {Data: []byte(baseItemB)},
		"bundles/restaurant.json": {Data: []byte(baseBundle)},
		"README.md":               {Data: []byte("not loaded")},
	}
}

// edit decodes a file of fsys, lets change alter it and writes it back.
func edit(t *testing.T, fsys fstest.MapFS, file string, change func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fsys[file].Data, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fsys[file] = &fstest.MapFile{Data: b}
}

// at walks a decoded JSON document: at(m, "form", "sections", 0, "fields", 1).
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func field(m map[string]any, i int) map[string]any {
	return at(m, "form", "sections", 0, "fields", i).(map[string]any)
}

func TestLoadPackValid(t *testing.T) {
	p, err := govservice.LoadPack(basePack())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 || len(p.Bundles) != 1 {
		t.Fatalf("got %d items, %d bundles", len(p.Items), len(p.Bundles))
	}
	if p.Items[0].Code != "010020100100" || p.Items[1].Code != "010031000100" {
		t.Errorf("items not sorted by code: %s %s", p.Items[0].Code, p.Items[1].Code)
	}
	if it, ok := p.Item("010031000100"); !ok || it.Name != "食品经营许可" || it.Steps[0].Role != "officer" {
		t.Errorf("Item: %+v %v", it, ok)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate of a loaded pack: %v", err)
	}
	keys, err := govservice.FormFields(p.Bundles[0].Form)
	if err != nil || strings.Join(keys, ",") != "shop,kind,member,online" {
		t.Errorf("FormFields: %v %v", keys, err)
	}
}

func TestLoadPackProblems(t *testing.T) {
	const a, b, bun = "services/geti.json", "services/food.json", "bundles/restaurant.json"
	cases := []struct {
		name   string
		change func(t *testing.T, fs fstest.MapFS)
		file   string
		path   string
		msg    string // part of the English message
	}{
		{"code not 12 digits", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["code"] = "01003100010" })
		}, b, "code", "must be 12 digits"},
		{"code with letters", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["code"] = "01003100010X" })
		}, b, "code", "must be 12 digits"},
		{"code type digits unknown", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["code"] = "020031000100" })
		}, b, "code", "type code"},
		{"code main item zero", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["code"] = "010000000100" })
		}, b, "code", "main-item code 00000"},
		{"code type digits disagree with type", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["type"] = "公共服务" })
		}, b, "code", "not the item's type 公共服务"},
		{"duplicate code", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["code"] = "010020100100"; m["name"] = "其他" })
		}, "services/geti.json", "code", "already used in services/food.json"},
		{"duplicate name", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["name"] = "个体工商户设立登记" })
		}, a, "name", "already used"},
		{"unknown type", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["type"] = "行政处罚" })
		}, b, "type", "unknown item type"},
		{"unknown department", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["department"] = "tax" })
		}, b, "department", "unknown department kind"},
		{"bad level", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["level"] = "town" })
		}, b, "level", "province, city or county"},
		{"no legal basis", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["legal_basis"] = []any{} })
		}, b, "legal_basis", "missing"},
		{"statutory days zero", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["statutory_days"] = 0 })
		}, b, "statutory_days", "positive"},
		{"promised over statutory", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["promised_days"] = 11 })
		}, b, "promised_days", "exceeds the statutory limit"},
		{"duplicate material key", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) {
				m["materials"] = append(m["materials"].([]any), at(m, "materials", 0))
			})
		}, a, "materials[1].key", "appears twice"},
		{"unknown license type", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) { at(m, "materials", 0).(map[string]any)["license_type"] = "身份证" })
		}, a, "materials[0].license_type", "unknown e-license type"},
		{"negative fee", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { at(m, "fees", 0).(map[string]any)["amount_fen"] = -1 })
		}, b, "fees[0].amount_fen", "negative"},
		{"fee without basis", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { at(m, "fees", 0).(map[string]any)["amount_fen"] = 8000 })
		}, b, "fees[0].basis", "missing"},
		{"no steps", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["steps"] = []any{} })
		}, b, "steps", "at least one step"},
		{"duplicate step key", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) { at(m, "steps", 1).(map[string]any)["key"] = "accept" })
		}, a, "steps[1].key", "appears twice"},
		{"step days zero", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) { at(m, "steps", 1).(map[string]any)["days"] = 0 })
		}, a, "steps[1].days", "positive"},
		{"steps longer than the promise", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) { at(m, "steps", 1).(map[string]any)["days"] = 2 })
		}, a, "steps", "more than the promised 2"},
		{"bad role", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) { at(m, "steps", 1).(map[string]any)["role"] = "Chief Officer" })
		}, a, "steps[1].role", "not a valid role"},
		{"unknown channel", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["channels"] = []any{"fax"} })
		}, b, "channels[0]", "unknown channel"},
		{"zero visit only in the hall", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["zero_visit"] = true })
		}, b, "zero_visit", "web or the app"},
		{"store field in the pack", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["version"] = 3 })
		}, b, "", "kept by the system"},
		{"unknown property", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["deadline"] = 3 })
		}, b, "", `unknown field "deadline"`},
		{"syntax error names the line", func(t *testing.T, fs fstest.MapFS) {
			fs[b] = &fstest.MapFile{Data: []byte("{\n  \"code\": \"010031000100\",\n  \"name\" \"x\"\n}")}
		}, b, "", "line 3, column"},
		{"wrong type names the property", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { m["statutory_days"] = "ten" })
		}, b, "", "statutory_days must be of type int"},
		{"bad file name", func(t *testing.T, fs fstest.MapFS) {
			fs["services/Food Licence.json"] = fs[b]
		}, "services/Food Licence.json", "", "short slug"},
		{"form missing", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { delete(m, "form") })
		}, b, "form", "missing"},
		{"form unknown property", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { field(m, 0)["hidden"] = true })
		}, b, "form", `unknown field "hidden"`},
		{"form unknown field type", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { field(m, 0)["type"] = "string" })
		}, b, "form.sections[0].fields[0].type", "unknown field type"},
		{"form duplicate field key", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { field(m, 1)["key"] = "shop" })
		}, b, "form.sections[0].fields[1].key", "appears twice"},
		{"form bad field key", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { field(m, 0)["key"] = "Shop-Name" })
		}, b, "form.sections[0].fields[0].key", "lower-case"},
		{"form unknown prefill", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { field(m, 0)["prefill"] = "applicant.email" })
		}, b, "form.sections[0].fields[0].prefill", "unknown prefill source"},
		{"form radio without options", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { delete(field(m, 1), "options") })
		}, b, "form.sections[0].fields[1].options", "at least two options"},
		{"form options on text", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { field(m, 0)["options"] = field(m, 1)["options"] })
		}, b, "form.sections[0].fields[0].options", "only select and radio"},
		{"form bad pattern", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { field(m, 0)["pattern"] = "([a-z]" })
		}, b, "form.sections[0].fields[0].pattern", "regular expression"},
		{"form min over max", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, b, func(m map[string]any) { f := field(m, 0); f["type"] = "number"; f["min"] = 5; f["max"] = 1 })
		}, b, "form.sections[0].fields[0].min", "greater than max"},
		{"form condition on unknown field", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) { field(m, 3)["when"] = map[string]any{"field": "nope", "equals": "x"} })
		}, a, "form.sections[0].fields[3].when.field", "does not have"},
		{"form condition value not an option", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) {
				field(m, 3)["when"] = map[string]any{"field": "kind", "in": []any{"one", "clan"}}
			})
		}, a, "form.sections[0].fields[3].when", `"clan" is not an option`},
		{"form condition with equals and in", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, a, func(m map[string]any) {
				field(m, 3)["when"] = map[string]any{"field": "kind", "equals": "one", "in": []any{"one"}}
			})
		}, a, "form.sections[0].fields[3].when", "exactly one of equals and in"},
		{"bundle unknown item", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) { m["items"] = []any{"010020100100", "110099900000"} })
		}, bun, "items[1]", "does not exist"},
		{"bundle of one item", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) {
				m["items"] = []any{"010020100100"}
				delete(m["fields"].(map[string]any), "010031000100")
			})
		}, bun, "items", "at least two items"},
		{"bundle member without fields", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) { delete(m["fields"].(map[string]any), "010031000100") })
		}, bun, "fields", `item "010031000100" receives are missing`},
		{"bundle fields for a non-member", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) { m["fields"].(map[string]any)["110011000100"] = []any{"shop"} })
		}, bun, "fields.110011000100", "not an item of this bundle"},
		{"bundle field not in the bundle form", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) {
				m["fields"].(map[string]any)["010031000100"] = []any{"shop", "online", "phone"}
			})
		}, bun, "fields.010031000100[2]", `the bundle form has no field "phone"`},
		{"bundle field not in the member's form", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) {
				m["fields"].(map[string]any)["010031000100"] = []any{"shop", "online", "kind"}
			})
		}, bun, "fields.010031000100[2]", `the form of item "010031000100" has no field "kind"`},
		{"bundle field type differs", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) { field(m, 0)["type"] = "textarea" })
		}, bun, "fields.010020100100[0]", "textarea in the bundle form but text"},
		{"bundle leaves a required field empty", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) { m["fields"].(map[string]any)["010031000100"] = []any{"shop"} })
		}, bun, "fields.010031000100", `required field "online" of item "010031000100" is not supplied`},
		{"bundle bad code", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) { m["code"] = "Restaurant" })
		}, bun, "code", "lower-case"},
		{"bundle unknown lead", func(t *testing.T, fs fstest.MapFS) {
			edit(t, fs, bun, func(m map[string]any) { m["lead"] = "tax" })
		}, bun, "lead", "unknown department kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := basePack()
			c.change(t, fs)
			_, err := govservice.LoadPack(fs)
			if err == nil {
				t.Fatal("no error")
			}
			e, ok := i18n.As(err)
			if !ok || e.Code != govservice.ErrPackInvalid.Code || e.Msg.ZH == "" || e.Msg.EN == "" {
				t.Fatalf("not a bilingual pack error: %v", err)
			}
			var ps govservice.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("no Problems in %v", err)
			}
			for _, p := range ps {
				if p.File == c.file && p.Path == c.path && strings.Contains(p.Msg.EN, c.msg) {
					if p.Msg.ZH == "" {
						t.Errorf("problem without Chinese text: %v", p)
					}
					return
				}
			}
			t.Errorf("want %s: %s: …%s…; got\n%v", c.file, c.path, c.msg, ps)
		})
	}
}

func TestLoadPackReportsEverything(t *testing.T) {
	fs := basePack()
	edit(t, fs, "services/food.json", func(m map[string]any) { m["level"] = "town"; m["department"] = "tax" })
	edit(t, fs, "bundles/restaurant.json", func(m map[string]any) { m["name"] = "" })
	_, err := govservice.LoadPack(fs)
	var ps govservice.Problems
	if !errors.As(err, &ps) || len(ps) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	e, _ := i18n.As(err)
	if e.Field != "services/food.json: department" && e.Field != "services/food.json: level" {
		t.Errorf("field: %q", e.Field)
	}
	for _, want := range []string{"services/food.json: level", "bundles/restaurant.json: name"} {
		if !strings.Contains(e.Msg.ZH, want) || !strings.Contains(e.Msg.EN, want) {
			t.Errorf("message lacks %q:\n%s\n%s", want, e.Msg.ZH, e.Msg.EN)
		}
	}
}

func TestLoadPackWithoutServices(t *testing.T) {
	_, err := govservice.LoadPack(fstest.MapFS{"bundles/x.json": {Data: []byte("{}")}})
	var ps govservice.Problems
	if !errors.As(err, &ps) || ps[0].File != "services" {
		t.Fatalf("got %v", err)
	}
}

func TestParseItemCode(t *testing.T) {
	for _, c := range []struct {
		code, typ, main, sub, handling string
		ok                             bool
	}{
		{"010020100100", govservice.TypeLicensing, "00201", "001", "00", true},
		{"070051000301", govservice.TypeConfirmation, "00510", "003", "01", true},
		{"110031000100", govservice.TypePublic, "00310", "001", "00", true},
		{"050011000000", govservice.TypeBenefit, "00110", "000", "00", true},
		{"100011000000", govservice.TypeOtherPower, "00110", "000", "00", true},
		{"080010000000", govservice.TypeReward, "00100", "000", "00", true},
		{"090010000000", govservice.TypeAdjudication, "00100", "000", "00", true},
		{"020011000000", "", "", "", "", false}, // 行政处罚 is not a service item
		{"010000000100", "", "", "", "", false},
		{"01002010010", "", "", "", "", false},
		{"0100201001000", "", "", "", "", false},
		{"01002010010a", "", "", "", "", false},
		{"０１００２０１００１００", "", "", "", "", false},
		{"", "", "", "", "", false},
	} {
		got, err := govservice.ParseItemCode(c.code)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.code, err, c.ok)
			continue
		}
		if !c.ok {
			if e, ok := i18n.As(err); !ok || e.Msg.ZH == "" || e.Msg.EN == "" {
				t.Errorf("%q: not bilingual: %v", c.code, err)
			}
			continue
		}
		if got.Type != c.typ || got.Main != c.main || got.Sub != c.sub || got.Handling != c.handling || got.String() != c.code {
			t.Errorf("%q: %+v", c.code, got)
		}
	}
}

func FuzzParseItemCode(f *testing.F) {
	for _, s := range []string{"010020100100", "070051000301", "020011000000", "", "0100201001000", "01002010010a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		c, err := govservice.ParseItemCode(code)
		if err != nil {
			return
		}
		if c.String() != code || govservice.TypeCodes[c.Type] != c.TypeCode {
			t.Fatalf("%q parsed to %+v", code, c)
		}
	})
}

// FuzzLoadPack feeds arbitrary service files to the loader: it never panics, and a pack it
// accepts passes Validate and can be stored.
func FuzzLoadPack(f *testing.F) {
	f.Add([]byte(baseItemB))
	f.Add([]byte(baseItemA))
	f.Add([]byte(`{"code": "010031000100"}`))
	f.Add([]byte(`{"form": {"sections": [{"fields": [{"when": {"field": "x"}}]}]}}`))
	f.Add([]byte(`[1, 2, 3]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := fstest.MapFS{"services/a.json": {Data: data}}
		p, err := govservice.LoadPack(fs)
		if err != nil {
			if _, ok := i18n.As(err); !ok {
				t.Fatalf("error is not user-facing: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted by LoadPack, refused by Validate: %v", err)
		}
	})
}

// FuzzFormFields checks the form check on arbitrary declarations: no panic, and the keys it
// returns are unique.
func FuzzFormFields(f *testing.F) {
	var m map[string]json.RawMessage
	_ = json.Unmarshal([]byte(baseBundle), &m)
	f.Add([]byte(m["form"]))
	f.Add([]byte(`{"key": "x", "version": 1, "title": "t", "sections": []}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := govservice.FormFields(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Fatalf("key %q twice", k)
			}
			seen[k] = true
		}
	})
}

package form_test

import (
	"testing"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// getiJSON is a realistic declaration: 个体工商户设立登记 with a conditional section, a
// condition inside it, an "in" condition and every field type.
const getiJSON = `{
  "key": "geti-register", "version": 1,
  "title": "个体工商户设立登记申请表", "title_en": "Individual business registration",
  "sections": [
    {"key": "operator", "title": "经营者信息", "title_en": "Operator", "fields": [
      {"key": "name", "label": "姓名", "label_en": "Name", "type": "text", "required": true, "max_length": 50,
       "prefill": "applicant.name", "help": "与身份证一致", "help_en": "As on the ID card"},
      {"key": "id_number", "label": "身份证号码", "label_en": "ID number", "type": "idnumber", "required": true, "prefill": "applicant.id_number"},
      {"key": "phone", "label": "手机号码", "label_en": "Mobile", "type": "phone", "required": true, "prefill": "applicant.phone"},
      {"key": "email", "label": "电子邮箱", "label_en": "Email", "type": "email"},
      {"key": "birth", "label": "出生日期", "label_en": "Date of birth", "type": "date", "prefill": "person.birth_date"},
      {"key": "has_shop", "label": "是否有经营场所", "label_en": "Has premises", "type": "radio", "required": true,
       "options": [{"value": "yes", "label": "有", "label_en": "Yes"}, {"value": "no", "label": "无", "label_en": "No"}]}
    ]},
    {"key": "shop", "title": "经营场所", "title_en": "Premises", "when": {"field": "has_shop", "equals": "yes"}, "fields": [
      {"key": "shop_address", "label": "经营场所地址", "label_en": "Address", "type": "textarea", "required": true, "max_length": 200},
      {"key": "shop_division", "label": "所在区划", "label_en": "Division", "type": "division", "required": true},
      {"key": "area", "label": "面积（平方米）", "label_en": "Area (m²)", "type": "number", "min": 1, "max": 100000},
      {"key": "ownership", "label": "产权", "label_en": "Ownership", "type": "select", "required": true,
       "options": [{"value": "own", "label": "自有", "label_en": "Owned"}, {"value": "rent", "label": "租赁", "label_en": "Rented"}]},
      {"key": "lease_end", "label": "租赁到期日", "label_en": "Lease ends", "type": "date", "required": true,
       "when": {"field": "ownership", "equals": "rent"}}
    ]},
    {"key": "business", "title": "经营信息", "title_en": "Business", "fields": [
      {"key": "trade_name", "label": "字号名称", "label_en": "Trade name", "type": "text", "pattern": "[\\p{Han}A-Za-z0-9（）]{2,30}"},
      {"key": "capital", "label": "资金数额", "label_en": "Capital", "type": "money", "required": true, "min": 0, "max": 10000000},
      {"key": "channel", "label": "经营方式", "label_en": "Channel", "type": "radio",
       "options": [{"value": "online", "label": "网店"}, {"value": "offline", "label": "实体店"}, {"value": "both", "label": "两者兼有"}]},
      {"key": "platform", "label": "网店平台", "label_en": "Platform", "type": "text", "when": {"field": "channel", "in": ["online", "both"]}},
      {"key": "entity_code", "label": "关联企业统一社会信用代码", "label_en": "Related enterprise code", "type": "creditcode"},
      {"key": "agree", "label": "本人承诺所填信息真实", "label_en": "I confirm the information is true", "type": "checkbox", "required": true}
    ]}
  ]
}`

// now is the fixed clock of the tests.
var now = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

var opts = form.Options{Now: func() time.Time { return now }}

func geti(t testing.TB) *form.Form {
	t.Helper()
	f, err := form.Parse([]byte(getiJSON))
	if err != nil {
		t.Fatalf("parse geti: %v", err)
	}
	return f
}

// idNumber is a valid resident ID number from Taiyuan (140105).
var idNumber = ids.MakeResident("140105", time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC), 123, true)

// idNumberX is a valid number whose check character is X, found by trying sequence codes.
var idNumberX = func() string {
	for seq := 0; seq < 1000; seq++ {
		n := ids.MakeResident("140105", time.Date(1985, 1, 1, 0, 0, 0, 0, time.UTC), seq, seq%2 == 1)
		if n[17] == 'X' {
			return n
		}
	}
	panic("no X check character in 1000 sequence codes")
}()

func wantI18n(t *testing.T, err error, code, field string) *i18n.Error {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok {
		t.Fatalf("got %v, want a %s error", err, code)
	}
	if e.Code != code || e.Field != field || e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Fatalf("got %s at %q (%v), want %s at %q with both languages", e.Code, e.Field, e.Msg, code, field)
	}
	return e
}

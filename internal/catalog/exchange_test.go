package catalog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/platform/i18n"
)

func drafts(rs []catalog.Resource) []catalog.Draft {
	out := make([]catalog.Draft, len(rs))
	for i, r := range rs {
		out[i] = r.Draft
	}
	return out
}

func wantProblems(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok || e.Code != "catalog.import.invalid" {
		t.Fatalf("%s: got %v, want an import error", what, err)
	}
	var ps catalog.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("%s: no Problems in %v", what, err)
	}
	for _, w := range want {
		if !strings.Contains(e.Msg.ZH, w) && !strings.Contains(e.Msg.EN, w) {
			t.Errorf("%s: %q not in\n%s\n%s", what, w, e.Msg.ZH, e.Msg.EN)
		}
	}
}

func TestJSON(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		a := f.publish(f.tyOfficer, f.tyAdmin, sample("太原市市场主体登记信息", ""))
		b := sample("太原市企业年报信息", "")
		b.Classification = catalog.Classification{Class: catalog.ClassDepartment, Item: "07", Entry: "014", SubEntry: "01", Theme: "市场监管"}
		b.ShareType, b.ShareCondition, b.OpenType = catalog.ShareUnconditional, "", catalog.OpenConditional
		b.Items[2].Sensitive = false
		bb := f.publish(f.tyOfficer, f.tyAdmin, b)
		rs := must[[]catalog.Resource](t, "list")(f.svc.ListAll(f.ctx, f.tyOfficer, catalog.Filter{Division: "140100"}))

		var buf bytes.Buffer
		if err := catalog.WriteJSON(&buf, rs); err != nil {
			t.Fatal(err)
		}
		batch := must[*catalog.Batch](t, "parse")(catalog.ParseJSON(bytes.NewReader(buf.Bytes())))
		if !reflect.DeepEqual(batch.Drafts, drafts(rs)) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", batch.Drafts, drafts(rs))
		}

		// Import back: known codes are revised (a draft over the published version), a new record created.
		batch.Drafts[0].Summary = "更新后的摘要"
		nd := sample("太原市公安局户籍信息", "")
		nd.Provider = "太原市公安局"
		nd.Classification = catalog.Classification{Class: catalog.ClassBase, Item: "01", Entry: "001"}
		batch.Drafts = append(batch.Drafts, nd)
		got := must[[]catalog.Resource](t, "import")(f.svc.Import(f.ctx, f.tyOfficer, batch))
		if len(got) != 3 || got[0].ID != a.ID || got[0].Status != catalog.StatusDraft || got[0].Summary != "更新后的摘要" ||
			got[1].ID != bb.ID || got[2].Code != "101001/1401000001" || got[2].ProviderDeptID != f.dept["140100/ga"].ID {
			t.Fatalf("import: %+v", got)
		}

		// Every bad record is reported with its number; nothing is imported.
		bad := `[
			{"name": "缺摘要", "classification": {"class": 1, "item": "02", "entry": "001"}, "format": "database",
			 "items": [{"name": "名称", "type": "C", "length": 10}], "share_type": 2, "open_type": 3,
			 "update_cycle": "daily", "contact": {"name": "王", "phone": "0351-4567890"}},
			{"name": "好记录", "summary": "s", "classification": {"class": 1, "item": "02", "entry": "001"}, "format": "database",
			 "items": [{"name": "名称", "type": "C", "length": 10}], "share_type": 1, "open_type": 3,
			 "update_cycle": "daily", "contact": {"name": "王", "phone": "0351-4567890"}},
			{"name": 5},
			{"name": "x", "colour": "red"}
		]`
		_, err := catalog.ParseJSON(strings.NewReader(bad))
		wantProblems(t, "bad JSON records", err, "第 1 条记录 summary", "第 1 条记录 share_condition", "record 3", "record 4", "colour")
		if strings.Contains(err.Error(), "record 2") {
			t.Errorf("the good record was reported: %v", err)
		}
		_, err = catalog.ParseJSON(strings.NewReader(`{"not": "an array"}`))
		if e, ok := i18n.As(err); !ok || e.Code != "catalog.import.json" {
			t.Fatalf("not an array: %v", err)
		}

		// Database checks are reported alike and roll the whole batch back.
		out := sample("大同的资源", f.dept["140200/scjg"].ID)
		unknown := sample("无名部门的资源", "")
		unknown.Provider = "不存在的局"
		fine := sample("应当回滚的资源", "")
		before := len(must[[]catalog.Resource](t, "list")(f.svc.List(f.ctx, f.tyOfficer, catalog.Filter{Status: catalog.StatusDraft})))
		_, err = f.svc.Import(f.ctx, f.tyOfficer, &catalog.Batch{Drafts: []catalog.Draft{fine, out, unknown}})
		if err == nil {
			t.Fatal("import across scope succeeded")
		}
		// A Batch built by hand has no locator: use ParseJSON's.
		var buf2 bytes.Buffer
		_ = json.NewEncoder(&buf2).Encode([]catalog.Draft{fine, out, unknown})
		batch2 := must[*catalog.Batch](t, "parse")(catalog.ParseJSON(&buf2))
		_, err = f.svc.Import(f.ctx, f.tyOfficer, batch2)
		wantProblems(t, "import errors", err, "第 2 条记录", "第 3 条记录 provider", "不存在的局")
		after := len(must[[]catalog.Resource](t, "list")(f.svc.List(f.ctx, f.tyOfficer, catalog.Filter{Status: catalog.StatusDraft})))
		if after != before {
			t.Fatalf("a failed import stored drafts: %d → %d", before, after)
		}
	})
}

// sampleResources covers every enumerated value the workbook carries.
func sampleResources() []catalog.Resource {
	pub := time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC) // 2026-03-02 in Shanxi
	a := sample("太原市市场主体登记信息", "")
	a.Code, a.Provider = "102001/1401000001", "太原市市场监督管理局"
	a.Classification.Theme = "法人单位"
	b := sample("太原市企业年报信息", "")
	b.Code, b.Provider = "30700140/1401000007", "太原市市场监督管理局"
	b.Classification = catalog.Classification{Class: catalog.ClassDepartment, Item: "07", Entry: "001", SubEntry: "40", Theme: "市场监管"}
	b.Format, b.FormatDetail = catalog.FormatAPI, ""
	b.ShareType, b.ShareCondition, b.OpenType, b.UpdateCycle = catalog.ShareNone, "《企业信息公示暂行条例》第十条", catalog.OpenNone, catalog.CycleYearly
	b.Items = []catalog.DataItem{
		{Name: "年报年度", Type: catalog.TypeNumber, Length: 4},
		{Name: "报送时间", Type: catalog.TypeDateTime},
		{Name: "是否公示", Type: catalog.TypeBool, EnglishName: "published"},
		{Name: "附件", Type: catalog.TypeBinary, Description: "PDF 文件"},
	}
	c := sample("太原市空气质量监测数据", "")
	c.Code, c.Provider = "211001/1401000001", "太原市生态环境局"
	c.Classification = catalog.Classification{Class: catalog.ClassTheme, Item: "11", Entry: "001", Theme: "生态环保"}
	c.ShareType, c.ShareCondition, c.OpenType, c.UpdateCycle = catalog.ShareUnconditional, "", catalog.OpenUnconditional, catalog.CycleRealtime
	c.Format, c.FormatDetail = catalog.FormatSpreadsheet, "xlsx"
	c.Items = []catalog.DataItem{{Name: "PM2.5", Type: catalog.TypeNumber, Length: 6, Description: "微克/立方米"}}
	c.Contact.Phone = "(0351) 765-4321"
	return []catalog.Resource{
		{Draft: a, PublishedAt: &pub, Version: 1, Status: catalog.StatusPublished},
		{Draft: b, Status: catalog.StatusDraft},
		{Draft: c, PublishedAt: &pub, Version: 3, Status: catalog.StatusPublished},
	}
}

func TestExcelRoundTrip(t *testing.T) {
	rs := sampleResources()
	var buf bytes.Buffer
	if err := catalog.WriteExcel(&buf, rs); err != nil {
		t.Fatal(err)
	}
	batch := must[*catalog.Batch](t, "parse")(catalog.ParseExcel(bytes.NewReader(buf.Bytes())))
	if !reflect.DeepEqual(batch.Drafts, drafts(rs)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", batch.Drafts, drafts(rs))
	}
	// What departments see: Chinese headers and values, dates in Shanxi time.
	x, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := x.GetRows(catalog.SheetResources)
	if strings.Join(rows[0], ",") != "资源代码,资源名称,资源提供方,资源摘要,资源分类,资源格式,共享类型,共享条件,开放类型,更新周期,发布日期,联系人,联系电话" {
		t.Fatalf("headers: %v", rows[0])
	}
	if got := strings.Join(rows[1][4:11], ","); got != "102001 基础信息资源/法人单位,数据库/PostgreSQL,有条件共享,用于市场监管和政务服务,不予开放,每日,2026-03-02" {
		t.Fatalf("row 2: %s", got)
	}
	items, _ := x.GetRows(catalog.SheetItems)
	if strings.Join(items[0], ",") != "资源代码,信息项名称,数据类型,长度,描述,是否敏感,英文名称" || len(items) != 1+3+4+1 {
		t.Fatalf("items sheet: %v", items)
	}
}

// workbook builds an .xlsx from rows per sheet.
func workbook(t *testing.T, sheets map[string][][]any) []byte {
	t.Helper()
	x := excelize.NewFile()
	for name, rows := range sheets {
		if _, err := x.NewSheet(name); err != nil {
			t.Fatal(err)
		}
		for i, row := range rows {
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			if err := x.SetSheetRow(name, cell, &row); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = x.DeleteSheet("Sheet1")
	var buf bytes.Buffer
	if err := x.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExcelErrors(t *testing.T) {
	head := []any{"资源代码", "资源名称", "资源提供方", "资源摘要", "资源分类", "资源格式", "共享类型", "共享条件", "开放类型", "更新周期", "发布日期", "联系人", "联系电话"}
	good := []any{"102001/1401000001", "市场主体", "太原市市场监督管理局", "摘要", "102001", "数据库", "无条件共享", "", "不予开放", "每日", "", "王", "0351-4567890"}
	row := func(edit func(r []any)) []any {
		r := append([]any{}, good...)
		edit(r)
		return r
	}
	data := workbook(t, map[string][][]any{
		catalog.SheetResources: {
			head,
			good,
			row(func(r []any) { r[0], r[6] = "102001/1401000002", "随便共享" }),                  // row 3: bad share type (column 7)
			row(func(r []any) { r[0], r[1], r[12] = "102001/1401000003", "", "电话" }),         // row 4: no name, bad phone
			row(func(r []any) { r[0], r[4], r[6] = "102001/1401000004", "102001", "有条件共享" }), // row 5: no condition
			row(func(r []any) { r[0] = "102001/1401000001" }),                                // row 6: code repeats row 2
			row(func(r []any) { r[0], r[10] = "102001/1401000005", "3月2日" }),                 // row 7: bad date
		},
		catalog.SheetItems: {
			{"资源代码", "信息项名称", "数据类型", "长度", "描述", "是否敏感"},
			{"102001/1401000001", "统一社会信用代码", "字符型", 18, "", "否"},
			{"102001/1401000002", "名称", "字符型C", "abc", "", "否"}, // row 3: bad length
			{"102001/1401000003", "名称", "文本", 10, "", "也许"},     // row 4: bad type and sensitive
			{"102001/1401000004", "名称", "C", 0, "", ""},         // row 5: character without length
			{"102001/1409999999", "名称", "C", 10, "", ""},        // row 6: unknown resource
			{"102001/1401000005", "名称", "C", 10, "", ""},
		},
	})
	_, err := catalog.ParseExcel(bytes.NewReader(data))
	wantProblems(t, "bad workbook", err,
		"第3行第7列（共享类型）：“随便共享”不是有效的共享类型",
		"row 3 column 7 (共享类型)",
		"第4行第2列（资源名称）：资源名称不能为空",
		"第4行第13列（联系电话）",
		"第5行第8列（共享条件）：有条件共享的资源须写明共享条件",
		"第6行第1列（资源代码）：资源代码 102001/1401000001 与第2行重复",
		"第7行第11列（发布日期）",
		"信息项表第3行第4列（长度）",
		"sheet 信息项, row 3 column 4 (长度)",
		"信息项表第4行第3列（数据类型）",
		"信息项表第4行第6列（是否敏感）",
		"信息项表第5行第4列（长度）：字符型信息项须填写长度",
		"信息项表第6行第1列（资源代码）",
	)
	if n := len(errAsProblems(err)); n != 12 { // row 6 also has no items: they belong to row 2
		t.Errorf("want 12 problems, got %d: %v", n, err)
	}

	// A workbook without the expected columns, and a file that is no workbook.
	_, err = catalog.ParseExcel(bytes.NewReader(workbook(t, map[string][][]any{catalog.SheetResources: {{"名称"}}})))
	wantProblems(t, "missing columns", err, "第1行：缺少列“资源代码”", "row 1: column \"资源分类\" is missing")
	_, err = catalog.ParseExcel(strings.NewReader("PK\x03\x04 not really"))
	if e, ok := i18n.As(err); !ok || e.Code != "catalog.import.xlsx" {
		t.Fatalf("not a workbook: %v", err)
	}
}

func errAsProblems(err error) catalog.Problems {
	var ps catalog.Problems
	errors.As(err, &ps)
	return ps
}

func TestExcelImport(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		rs := sampleResources()[:2] // both provided by 太原市市场监督管理局
		var buf bytes.Buffer
		if err := catalog.WriteExcel(&buf, rs); err != nil {
			t.Fatal(err)
		}
		batch := must[*catalog.Batch](t, "parse")(catalog.ParseExcel(&buf))
		_, err := f.svc.Import(f.ctx, f.dtOfficer, batch)
		wantProblems(t, "大同 imports 太原's", err, "第2行第3列（资源提供方）", "第3行第3列（资源提供方）")
		got := must[[]catalog.Resource](t, "import")(f.svc.Import(f.ctx, f.tyOfficer, batch))
		if len(got) != 2 || got[0].Code != rs[0].Code || got[1].Code != rs[1].Code || got[1].ProviderDeptID != f.dept["140100/scjg"].ID {
			t.Fatalf("imported: %+v", got)
		}
	})
}

func TestDCAT(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		open := sample("太原市空气质量监测数据", "")
		open.Classification = catalog.Classification{Class: catalog.ClassTheme, Item: "11", Entry: "001"}
		open.ShareType, open.ShareCondition, open.OpenType = catalog.ShareUnconditional, "", catalog.OpenUnconditional
		open.Items[2].Sensitive = false
		cond := open
		cond.Name, cond.OpenType = "太原市企业信用信息", catalog.OpenConditional
		closed := sample("太原市市场主体登记信息", "")
		o := f.publish(f.tyOfficer, f.tyAdmin, open)
		c := f.publish(f.tyOfficer, f.tyAdmin, cond)
		f.publish(f.tyOfficer, f.tyAdmin, closed)
		dt := open
		dt.Name = "大同市空气质量监测数据"
		f.publish(f.dtOfficer, f.provAdmin, dt)
		draft := open
		draft.Name = "未发布的开放数据"
		must[catalog.Resource](t, "draft")(f.svc.CreateDraft(f.ctx, f.tyOfficer, draft))

		var buf bytes.Buffer
		if err := f.svc.ExportDCAT(f.ctx, &buf, catalog.DCATOptions{BaseURL: "https://data.example.gov.cn/open/", Division: "140100"}); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, buf.String())
		}
		checkJSONLD(t, doc)
		if doc["@type"] != "dcat:Catalog" || doc["@id"] != "https://data.example.gov.cn/open/catalog" {
			t.Fatalf("catalog node: %v", doc)
		}
		ds, _ := doc["dcat:dataset"].([]any)
		var ids []string
		for _, x := range ds {
			m := x.(map[string]any)
			if m["@type"] != "dcat:Dataset" {
				t.Errorf("dataset type %v", m["@type"])
			}
			ids = append(ids, m["dct:identifier"].(string))
		}
		if strings.Join(ids, " ") != o.Code+" "+c.Code {
			t.Fatalf("datasets %v, want the open %s and the conditionally open %s of 太原 only\n%s", ids, o.Code, c.Code, buf.String())
		}
		first := ds[0].(map[string]any)
		if first["@id"] != "https://data.example.gov.cn/open/datasets/"+strings.ReplaceAll(o.Code, "/", "-") ||
			first["dct:accrualPeriodicity"].(map[string]any)["@id"] != "http://purl.org/cld/freq/daily" ||
			first["dct:accessRights"].(map[string]any)["@id"] != "http://publications.europa.eu/resource/authority/access-right/PUBLIC" ||
			first["dct:modified"].(map[string]any)["@value"] != "2026-03-02" {
			t.Fatalf("dataset: %v", first)
		}
		if contact := first["dcat:contactPoint"].(map[string]any); contact["vcard:hasTelephone"].(map[string]any)["@id"] != "tel:0351-4567890" {
			t.Fatalf("contact: %v", contact)
		}
		// The province's catalog rolls up 大同's open dataset too.
		buf.Reset()
		if err := f.svc.ExportDCAT(f.ctx, &buf, catalog.DCATOptions{BaseURL: "https://data.example.gov.cn/open"}); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), `"dcat:Dataset"`); n != 3 {
			t.Fatalf("province: %d datasets", n)
		}
	})
}

// checkJSONLD checks the document is well-formed compact JSON-LD: a context of absolute IRI
// prefixes, every property a keyword or a prefixed name of the context, every @id and @type
// an absolute IRI or prefixed name, every value object with @value and a language or type.
func checkJSONLD(t *testing.T, doc map[string]any) {
	t.Helper()
	ctx, ok := doc["@context"].(map[string]any)
	if !ok {
		t.Fatalf("no @context")
	}
	for p, iri := range ctx {
		if u, err := url.Parse(iri.(string)); err != nil || !u.IsAbs() || p == "" {
			t.Fatalf("context %s: %v", p, iri)
		}
	}
	term := func(s string) bool {
		p, _, ok := strings.Cut(s, ":")
		_, known := ctx[p]
		return ok && known
	}
	iri := func(s string) bool {
		u, err := url.Parse(s)
		return term(s) || (err == nil && u.IsAbs())
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(path, e)
			}
		case map[string]any:
			if _, isValue := x["@value"]; isValue {
				if _, lang := x["@language"]; !lang {
					if ty, _ := x["@type"].(string); !term(ty) {
						t.Errorf("%s: value object without language or type: %v", path, x)
					}
				}
				return
			}
			for k, e := range x {
				switch k {
				case "@context":
				case "@id":
					if s, _ := e.(string); !iri(s) {
						t.Errorf("%s: @id %v is not an IRI", path, e)
					}
				case "@type":
					if s, _ := e.(string); !term(s) {
						t.Errorf("%s: @type %v", path, e)
					}
				default:
					if !term(k) {
						t.Errorf("%s: property %q is not in the context", path, k)
					}
					walk(path+"/"+k, e)
				}
			}
		case string:
		default:
			t.Errorf("%s: unexpected %T", path, v)
		}
	}
	walk("", doc)
}

func FuzzParseJSON(f *testing.F) {
	var buf bytes.Buffer
	_ = catalog.WriteJSON(&buf, sampleResources())
	f.Add(buf.Bytes())
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{}]`))
	f.Add([]byte(`[{"items": [{"type": "BY", "length": -1}], "classification": {"class": 3, "item": "99", "entry": "999", "sub_entry": "123456789"}}]`))
	f.Add([]byte(`[{"name": "\u0000", "code": "1/1"}]`))
	f.Add([]byte(`{"a": 1}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := catalog.ParseJSON(bytes.NewReader(data))
		if err != nil {
			if _, ok := i18n.As(err); !ok {
				t.Fatalf("error %v (%T) is not an *i18n.Error", err, err)
			}
			return
		}
		// What parses is valid and survives a second round trip unchanged.
		for i, d := range b.Drafts {
			if err := catalog.Validate(d); err != nil {
				t.Fatalf("record %d parsed but is invalid: %v", i, err)
			}
		}
		rs := make([]catalog.Resource, len(b.Drafts))
		for i, d := range b.Drafts {
			rs[i].Draft = d
		}
		var out bytes.Buffer
		if err := catalog.WriteJSON(&out, rs); err != nil {
			t.Fatal(err)
		}
		b2, err := catalog.ParseJSON(&out)
		if err != nil || !reflect.DeepEqual(b2.Drafts, b.Drafts) {
			t.Fatalf("second round trip: %v\n%+v\n%+v", err, b.Drafts, b2)
		}
	})
}

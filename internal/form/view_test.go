package form_test

import (
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/web"
)

func TestView(t *testing.T) {
	fm := geti(t)
	in := validGeti()
	in["ownership"] = "own"
	in["capital"] = "12.5x"
	in["channel"] = "offline"
	out, errs := fm.ValidateWith(in, opts)
	if len(errs) != 1 {
		t.Fatalf("errors %v", errs)
	}
	v := fm.View(out, errs, "en")
	if v.Title != "Individual business registration" || v.Lang != "en" || len(v.Sections) != 3 {
		t.Fatalf("view %+v", v)
	}
	fields := map[string]form.FieldView{}
	for _, s := range v.Sections {
		if s.Hidden {
			t.Errorf("section %s hidden", s.Key)
		}
		for _, f := range s.Fields {
			fields[f.Key] = f
		}
	}
	if s := v.Sections[1]; s.When == nil || s.When.Field != "has_shop" || !s.When.HasEquals || s.When.Equals != "yes" || s.ID != "fs-shop" {
		t.Errorf("shop section %+v", s)
	}
	if f := fields["platform"]; !f.Hidden || f.When == nil || f.When.HasEquals || f.When.In != `["online","both"]` {
		t.Errorf("platform %+v", f)
	}
	if f := fields["lease_end"]; !f.Hidden {
		t.Error("lease end shown for owned premises")
	}
	cap := fields["capital"]
	if cap.Value != "12.5x" || cap.Error == "" || cap.ErrorCode != "form.money" || cap.ErrorID != "f-capital-error" ||
		cap.DescribedBy != "f-capital-error" || cap.Suffix != "yuan" || cap.InputMode != "decimal" {
		t.Errorf("capital with error %+v", cap)
	}
	if len(v.Errors) != 1 || v.Errors[0].ID != "f-capital" || v.Errors[0].Label != "Capital" {
		t.Errorf("summary %+v", v.Errors)
	}
	name := fields["name"]
	if name.Label != "Name" || name.Help != "As on the ID card" || name.HelpID != "f-name-help" || name.DescribedBy != "f-name-help" ||
		name.Value != "王小明" || !name.Required || name.MaxLength != 50 || name.Autocomplete != "name" {
		t.Errorf("name %+v", name)
	}
	if f := fields["has_shop"]; f.Input != "radio" || len(f.Options) != 2 || !f.Options[0].Selected || f.Options[0].Label != "Yes" ||
		f.Options[1].ID != "f-has_shop-1" || f.Display != "Yes" {
		t.Errorf("radio %+v", f)
	}
	if f := fields["ownership"]; f.Input != "select" || f.Choose == "" || f.Display != "Owned" {
		t.Errorf("select %+v", f)
	}
	if f := fields["id_number"]; !f.Upper || f.MaxLength != 18 || f.Autocomplete != "off" {
		t.Errorf("id number %+v", f)
	}
	if f := fields["agree"]; !f.Checked || f.Input != "checkbox" || f.Display != "Yes" {
		t.Errorf("checkbox %+v", f)
	}
	if f := fields["phone"]; f.Input != "tel" || f.InputMode != "tel" {
		t.Errorf("phone %+v", f)
	}
	if f := fields["shop_division"]; f.InputMode != "numeric" || f.MaxLength != 6 {
		t.Errorf("division %+v", f)
	}

	// Stored values show money in yuan; the section follows the values.
	out, errs = fm.ValidateWith(validGeti(), opts)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	out["has_shop"] = "no"
	v = fm.View(out, nil, "zh-CN")
	if !v.Sections[1].Hidden || len(v.Errors) != 0 || v.Title != "个体工商户设立登记申请表" {
		t.Errorf("zh view %+v", v.Sections[1])
	}
	if c := v.Sections[2].Fields[1]; c.Key != "capital" || c.Value != "50000" || c.Display != "50000 元" {
		t.Errorf("stored capital %+v", c)
	}
	if f := fm.View(form.Values{"capital": "3550"}, nil, "zh-CN").Sections[2].Fields[1]; f.Value != "35.50" {
		t.Errorf("35.50 shown as %q", f.Value)
	}

	// Unknown keys appear in the summary without a link.
	_, errs = fm.ValidateWith(form.Values{"zz": "1"}, opts)
	v = fm.View(nil, errs, "zh-CN")
	if last := v.Errors[len(v.Errors)-1]; last.Field != "zz" || last.ID != "" || !strings.Contains(last.Message, "zz") {
		t.Errorf("unknown key in summary %+v", last)
	}
	// A radio group's summary link goes to its first choice.
	for _, e := range v.Errors {
		if e.Field == "has_shop" && e.ID != "f-has_shop-0" {
			t.Errorf("radio error links to %s", e.ID)
		}
	}
}

func TestYuanText(t *testing.T) {
	for fen, want := range map[int64]string{0: "0", 7: "0.07", 50: "0.50", 3550: "35.50", 120000: "1200", -1: "-0.01"} {
		if got := form.YuanText(fen); got != want {
			t.Errorf("YuanText(%d) = %s, want %s", fen, got, want)
		}
	}
}

// renderPage renders a test view that uses the partials, through the web package's real
// renderer (layouts, partials and template functions as in production).
func renderPage(t *testing.T, body string, data any) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates/portal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "templates/portal/formtest.html"), []byte(`{{define "content"}}`+body+`{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := web.NewRenderer(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := r.Render(w, 200, "portal/formtest", web.Page{Lang: i18n.ZH, Title: i18n.T("表单", "Form"), Data: data}); err != nil {
		t.Fatal(err)
	}
	return w.Body.String()
}

func TestPartialRenders(t *testing.T) {
	fm := geti(t)
	in := validGeti()
	in["id_number"] = "140105"
	in["ownership"] = "own"
	in["agree"] = ""
	in["trade_name"] = `<script>alert(1)</script>`
	out, errs := fm.ValidateWith(in, opts)
	html := renderPage(t, `<form method="post">{{template "form-fields" .Data}}</form>`, fm.View(out, errs, "zh-CN"))

	for _, want := range []string{
		`<link rel="stylesheet" href="/static/css/form.css">`,
		`<script src="/static/js/form.js" defer></script>`,
		`id="form-errors" role="alert"`,
		`<a href="#f-id_number">身份证号码</a>：`,
		// label, help and error tied to the input
		`<label for="f-name">姓名<span class="form-req" aria-hidden="true"> *</span></label>`,
		`<p class="form-help" id="f-name-help">与身份证一致</p>`,
		`aria-describedby="f-name-help"`,
		`<p class="form-error" id="f-id_number-error">`,
		`name="id_number" value="140105" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="18" required aria-invalid="true" aria-describedby="f-id_number-error">`,
		`name="agree" value="true" required aria-invalid="true" aria-describedby="f-agree-error">`,
		// phone keyboards
		`type="tel" id="f-phone" name="phone" value="13803511234" inputmode="tel" autocomplete="tel"`,
		`name="shop_division" value="140105" inputmode="numeric"`,
		`name="capital" value="50000" inputmode="decimal"`,
		`<span class="form-suffix">元</span>`,
		`type="date" id="f-birth"`,
		`<textarea id="f-shop_address" name="shop_address" rows="4" maxlength="200" required>太原市小店区长风街1号</textarea>`,
		`<option value="own" selected>自有</option>`,
		`<input type="radio" id="f-has_shop-0" name="has_shop" value="yes" checked required>`,
		// conditions for form.js; hidden parts are hidden and disabled
		`<fieldset class="form-section" id="fs-shop" data-when-field="has_shop" data-when-equals="yes">`,
		`id="f-lease_end-field" data-when-field="ownership" data-when-equals="rent" hidden>`,
		`data-when-in="[&#34;online&#34;,&#34;both&#34;]"`,
		`id="f-lease_end" name="lease_end" value="" required disabled>`,
		// untrusted values are escaped
		`value="&lt;script&gt;alert(1)&lt;/script&gt;"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(html, "<script>alert") {
		t.Error("a value was not escaped")
	}
	// Every aria-describedby names elements that exist.
	for _, m := range regexp.MustCompile(`aria-describedby="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		for _, id := range strings.Fields(m[1]) {
			if !strings.Contains(html, `id="`+id+`"`) {
				t.Errorf("aria-describedby names missing %s", id)
			}
		}
	}
	// Ids are unique.
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(` id="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if seen[m[1]] {
			t.Errorf("id %s twice", m[1])
		}
		seen[m[1]] = true
	}

	// Without errors: no summary and no aria-invalid; a hidden section is disabled.
	in = validGeti()
	in["has_shop"] = "no"
	out, errs = fm.ValidateWith(in, opts)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	html = renderPage(t, `{{template "form-fields" .Data}}`, fm.View(out, nil, "en"))
	if strings.Contains(html, "form-errors") || strings.Contains(html, "aria-invalid") {
		t.Error("error markup without errors")
	}
	if !strings.Contains(html, `data-when-equals="yes" hidden disabled>`) || !strings.Contains(html, `<legend>Premises</legend>`) {
		t.Error("hidden section not hidden and disabled")
	}

	// The read-only summary shows visible values in words.
	html = renderPage(t, `{{template "form-summary" .Data}}`, fm.View(out, nil, "zh-CN"))
	for _, want := range []string{`<dt>资金数额</dt><dd>50000 元</dd>`, `<dt>是否有经营场所</dt><dd>无</dd>`, `<dt>本人承诺所填信息真实</dt><dd>是</dd>`} {
		if !strings.Contains(html, want) {
			t.Errorf("summary lacks %s", want)
		}
	}
	if strings.Contains(html, "经营场所地址") {
		t.Error("summary shows a hidden section")
	}
}

// The browser script and stylesheet are embedded and served like every asset.
func TestAssetsEmbedded(t *testing.T) {
	js, err := fs.ReadFile(web.Static(), "js/form.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"data-when-field", "data-when-equals", "data-when-in", "disabled"} {
		if !strings.Contains(string(js), want) {
			t.Errorf("form.js lacks %s", want)
		}
	}
	if strings.Contains(string(js), "http") {
		t.Error("form.js refers to an outside address")
	}
	if css, err := fs.ReadFile(web.Static(), "css/form.css"); err != nil || !strings.Contains(string(css), "[hidden]") {
		t.Errorf("form.css: %v", err)
	}
}

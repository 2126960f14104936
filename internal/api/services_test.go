package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/platform/search"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/packs"
)

// Items of the Shanxi pack the tests read and apply for.
const (
	itemGeti  = "010020100100" // 个体工商户设立登记: scjg, county, citizens only
	bundleBth = "birth"        // 出生一件事
)

var servicesSources = []db.Source{crypto.Migrations, bus.Migrations, workflow.Migrations, form.Migrations, govservice.Migrations}

// serviceDepartments: the 市场监督管理局 of 小店区 and every kind in 太原市.
type serviceDepartments map[string]org.Department

func (d serviceDepartments) DepartmentIn(_ context.Context, division, code string) (org.Department, error) {
	if dep, ok := d[division+"/"+code]; ok {
		return dep, nil
	}
	return org.Department{}, i18n.ErrNotFound
}

func (d serviceDepartments) Department(_ context.Context, id string) (org.Department, error) {
	for _, dep := range d {
		if dep.ID == id {
			return dep, nil
		}
	}
	return org.Department{}, i18n.ErrNotFound
}

// tokenPeople stands in for the app's identity adapter (internal/app/api_people.go, tested
// there through the real OpenID provider): tokens by name.
type tokenPeople map[string]govservice.Applicant

func (p tokenPeople) SubjectForToken(_ context.Context, bearer string) (govservice.Applicant, error) {
	if bearer == "system" {
		return govservice.Applicant{}, ErrPersonOnly
	}
	if ap, ok := p[bearer]; ok {
		return ap, nil
	}
	return govservice.Applicant{}, i18n.ErrUnauthorized
}

// storedForms is ItemForms as the app builds it: the item's form under its stored version.
type storedForms struct {
	items *govservice.Service
	forms *form.Versions
	d     *db.DB
	mu    sync.Mutex
}

func (s *storedForms) BlankForm(ctx context.Context, code string) (govservice.FormDraft, error) {
	it, err := s.items.Get(ctx, code)
	if err != nil {
		return govservice.FormDraft{}, err
	}
	if !it.Active {
		return govservice.FormDraft{}, govservice.ErrItemInactive
	}
	f, err := form.Parse(it.Form)
	if err != nil {
		return govservice.FormDraft{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var id string
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		id, err = s.forms.SaveTx(ctx, tx, f)
		return err
	})
	return govservice.FormDraft{Item: it, FormVersionID: id, Form: f}, err
}

type servicesFixture struct {
	handler http.Handler
	apps    *govservice.Applications
	zhang   govservice.Applicant
	number  string // 张三's ID number
}

func newServicesFixture(t testing.TB, d *db.DB) *servicesFixture {
	t.Helper()
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC) }
	k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), now)
	if err != nil {
		t.Fatal(err)
	}
	items := govservice.New(d, govservice.Options{Now: now})
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := items.Sync(ctx, p); err != nil {
		t.Fatal(err)
	}
	policy := authz.NewPolicy(divisions.Contains)
	workflow.RegisterPermissions(policy)
	cases := workflow.New(d, policy, workflow.Options{Now: now})
	if _, err := items.DefineCases(ctx, cases); err != nil {
		t.Fatal(err)
	}
	depts := serviceDepartments{}
	for _, div := range []string{"140100", "140105"} {
		for _, kind := range org.DepartmentKinds {
			depts[div+"/"+kind.Code] = org.Department{ID: "dept-" + div + "-" + kind.Code, DivisionCode: div, Code: kind.Code, Name: div + kind.Code, Active: true}
		}
	}
	blobs, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	forms := form.NewVersions(d, now)
	apps := govservice.NewApplications(d, items, forms, cases, depts, nil, blobs, k.FieldCipher(), govservice.ApplicationOptions{Now: now})
	idx, err := search.OpenBleve(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	index := &govservice.Indexer{Index: idx, Service: items}
	if _, err := index.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	number := ids.MakeResident("140105", time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC), 123, true)
	zhang := govservice.Applicant{Subject: authz.Subject{Kind: authz.Citizen, ID: "acc-zhang", Name: "张三"}, Name: "张三", IDNumber: number, Phone: "13800000001"}
	li := govservice.Applicant{Subject: authz.Subject{Kind: authz.Citizen, ID: "acc-li", Name: "李四"}, Name: "李四"}
	firm := govservice.Applicant{Subject: authz.Subject{Kind: authz.Enterprise, ID: "ent-1", Name: "山西晋味餐饮有限公司"}, Name: "张三", IDNumber: number}
	a := &API{Items: items, Index: index, Apps: apps, Forms: &storedForms{items: items, forms: forms, d: d},
		People: tokenPeople{"zhang": zhang, "li": li, "firm": firm}}
	mux := http.NewServeMux()
	a.Routes(mux)
	return &servicesFixture{handler: mux, apps: apps, zhang: zhang, number: number}
}

// getiJSON is a valid 个体工商户设立登记 application body with some values changed.
func getiJSON(number string, change map[string]any, extra string) string {
	v := map[string]any{"operator_name": "张三", "operator_id_number": number, "phone": "13800000001", "org_form": "individual",
		"shop_name": "晋阳小吃", "address": "太原市小店区亲贤北街 9 号", "division": "140105", "business_scope": "小吃、饮品零售",
		"employees": 2, "capital": "50000"}
	for k, x := range change {
		if x == nil {
			delete(v, k)
		} else {
			v[k] = x
		}
	}
	b, _ := json.Marshal(v)
	return `{"division": "140105", "values": ` + string(b) + extra + `}`
}

type apiAnswer struct {
	status int
	header http.Header
	body   string
}

func (f *servicesFixture) call(method, path, token, body string, hdr ...string) apiAnswer {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return apiAnswer{rec.Code, rec.Header(), rec.Body.String()}
}

// The catalogue, read by anyone: lists with filters, ranked search, guides, the form with
// its version, bundles; unknown items and filter values.
func TestServicesCatalogueAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newServicesFixture(t, d)
		form := f.call("GET", "/api/v1/services/"+itemGeti+"/form", "", "")
		var fm itemForm
		if err := json.Unmarshal([]byte(form.body), &fm); err != nil || form.status != 200 || fm.FormVersionID == "" {
			t.Fatalf("form: %d %v\n%.1000s", form.status, err, form.body)
		}
		for _, c := range []struct {
			name, path     string
			hdr            []string
			status         int
			want, unwanted []string
		}{
			{"every item", "/api/v1/services?limit=500", nil, 200, []string{`"code":"` + itemGeti + `"`, `"name":"个体工商户设立登记"`, `"channels":[`},
				[]string{`"form"`, `"bundles"`}},
			{"by department", "/api/v1/services?department=scjg&limit=500", nil, 200, []string{"个体工商户设立登记"}, []string{"出生医学证明"}},
			{"by level and zero visits", "/api/v1/services?level=county&zero_visit=true&limit=500", nil, 200, []string{`"level":"county","zero_visit":true`},
				[]string{`"level":"province"`, `"zero_visit":false`}},
			{"a page", "/api/v1/services?limit=1", nil, 200, []string{`"items":[{"code"`}, []string{`},{"code"`}},
			{"an unknown department", "/api/v1/services?department=nope", nil, 400, []string{`"code":"api.bad_parameter"`, `"field":"department"`}, nil},
			{"an unknown type", "/api/v1/services?type=行政处罚", nil, 400, []string{`"field":"type"`}, nil},
			{"an unknown level", "/api/v1/services?level=town", nil, 400, []string{`"field":"level"`}, nil},
			{"a bad flag", "/api/v1/services?zero_visit=maybe", nil, 400, []string{`"field":"zero_visit"`}, nil},
			{"search", "/api/v1/services?q=" + "%E4%B8%AA%E4%BD%93%E6%88%B7", nil, 200, []string{`"code":"` + itemGeti + `"`, `"score":`, `\u003cmark\u003e`, `"total":`}, nil},
			{"search finds bundles", "/api/v1/services?q=%E5%87%BA%E7%94%9F", nil, 200, []string{`"bundles":[{"code":"birth"`}, nil},
			{"a filter leaves bundles out", "/api/v1/services?q=%E5%87%BA%E7%94%9F&department=wj", nil, 200, []string{`"bundles":[]`}, []string{itemGeti}},
			{"a search text too long", "/api/v1/services?q=" + strings.Repeat("a", 101), nil, 400, []string{`"code":"govservice.query_too_long"`}, nil},
			{"the guide", "/api/v1/services/" + itemGeti, nil, 200, []string{"《促进个体工商户发展条例》", `"key":"operator_id"`, `"license_type":"居民身份证"`,
				`"form_url":"/api/v1/services/` + itemGeti + `/form"`, `"type_name":{"zh":"行政许可"`}, []string{`"sections"`}},
			{"an unknown item", "/api/v1/services/999999999999", nil, 404, []string{`"code":"govservice.not_found"`}, nil},
			{"the form", "/api/v1/services/" + itemGeti + "/form", nil, 200, []string{`"form_version_id":"` + fm.FormVersionID + `"`, `"sections":[`,
				`"key":"operator_id_number","label":"`, `"prefill":"applicant.id_number"`, `"materials":[`}, nil},
			{"the form unchanged", "/api/v1/services/" + itemGeti + "/form", []string{"If-None-Match", `"` + fm.FormVersionID + `"`}, 304, nil, nil},
			{"the form of an unknown item", "/api/v1/services/999999999999/form", nil, 404, nil, nil},
			{"bundles", "/api/v1/bundles", nil, 200, []string{`"code":"birth"`, `"items":["`}, nil},
			{"a bundle", "/api/v1/bundles/" + bundleBth, nil, 200, []string{`"members":[{"code":"`, "出生医学证明"}, nil},
			{"an unknown bundle", "/api/v1/bundles/nope", nil, 404, []string{`"code":"govservice.bundle_not_found"`}, nil},
		} {
			a := f.call("GET", c.path, "", "", c.hdr...)
			if a.status != c.status {
				t.Errorf("%s: status %d, want %d\n%.1500s", c.name, a.status, c.status, a.body)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(a.body, w) {
					t.Errorf("%s: no %s in\n%.3000s", c.name, w, a.body)
				}
			}
			for _, u := range c.unwanted {
				if strings.Contains(a.body, u) {
					t.Errorf("%s: %s in\n%.3000s", c.name, u, a.body)
				}
			}
		}
		if et := form.header.Get("ETag"); et != `"`+fm.FormVersionID+`"` {
			t.Errorf("ETag %q, want the version id %q", et, fm.FormVersionID)
		}
		// The declaration served is the one govservice validates against, under the id
		// that applications keep.
		dr, err := f.apps.Draft(context.Background(), f.zhang, itemGeti)
		if err != nil {
			t.Fatal(err)
		}
		if dr.FormVersionID != fm.FormVersionID || dr.Form.Hash() != fm.FormHash || !bytes.Equal(dr.Form.Canonical(), fm.Form) {
			t.Errorf("the API's form %s (%s) is not the draft's %s (%s)", fm.FormVersionID, fm.FormHash, dr.FormVersionID, dr.Form.Hash())
		}
	}, servicesSources...)
}

// A person's applications: who may, the form's refusals as 422 with every field, stale
// forms, materials by reference, and reading them back (one's own only).
func TestApplicationsAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newServicesFixture(t, d)
		ctx := context.Background()
		// A file in 张三's personal space, from an earlier application made on the web.
		if _, err := f.apps.Submit(ctx, f.zhang, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105",
			Values: map[string]string{"operator_name": "张三", "operator_id_number": f.number, "phone": "13800000001", "org_form": "individual",
				"address": "太原市小店区", "division": "140105", "business_scope": "零售", "employees": "1", "capital": "1000"},
			Materials: []govservice.MaterialInput{{Key: "operator_id", Source: govservice.SourceUpload, FileName: "身份证.pdf",
				Content: strings.NewReader("%PDF-1.4\n% id\n%%EOF\n")}}}); err != nil {
			t.Fatal(err)
		}
		files, err := f.apps.Files(ctx, f.zhang.Subject)
		if err != nil || len(files) != 1 {
			t.Fatalf("files: %v %v", files, err)
		}
		var fm itemForm
		_ = json.Unmarshal([]byte(f.call("GET", "/api/v1/services/"+itemGeti+"/form", "", "").body), &fm)
		apply := "/api/v1/services/" + itemGeti + "/applications"
		withFile := `, "materials": [{"key": "operator_id", "file_id": "` + files[0].ID + `"}], "form_version_id": "` + fm.FormVersionID + `"`
		var created string
		for _, c := range []struct {
			name, token, method, path, body string
			status                          int
			want, unwanted                  []string
		}{
			{"no token", "", "POST", apply, getiJSON(f.number, nil, ""), 401, []string{`"code":"unauthorized"`}, nil},
			{"a token of nobody", "forged", "POST", apply, getiJSON(f.number, nil, ""), 401, nil, nil},
			{"a system's token", "system", "POST", apply, getiJSON(f.number, nil, ""), 403, []string{`"code":"api.person_token_required"`}, nil},
			{"an enterprise may not apply for a citizens' item", "firm", "POST", apply, getiJSON(f.number, nil, ""), 403,
				[]string{`"code":"govservice.applicant_kind"`}, nil},
			{"the form's refusals, every field", "zhang", "POST", apply, getiJSON(f.number, map[string]any{"phone": "123", "business_scope": nil,
				"operator_id_number": f.number[:17] + "X"}, ""), 422,
				[]string{`"status":422`, `"code":"form.invalid"`, `"errors":[`, `"field":"phone"`, `"field":"business_scope","code":"form.required"`,
					`"field":"operator_id_number","code":"ids.`, `"message":{"zh":"`}, nil},
			{"a field the form does not have", "zhang", "POST", apply, getiJSON(f.number, map[string]any{"favourite": "x"}, ""), 422,
				[]string{`"field":"favourite"`}, nil},
			{"a value of the wrong kind", "zhang", "POST", apply, getiJSON(f.number, map[string]any{"employees": []int{2}}, ""), 400,
				[]string{`"code":"api.value_type"`, `"field":"employees"`}, nil},
			{"an unknown member of the body", "zhang", "POST", apply, `{"division": "140105", "values": {}, "channel": "app"}`, 400,
				[]string{`"code":"request.unknown_field"`}, nil},
			{"a stale form", "zhang", "POST", apply, getiJSON(f.number, nil, `, "form_version_id": "0190b0a0-0000-7000-8000-000000000000"`), 409,
				[]string{`"code":"api.form_changed"`}, nil},
			{"a file that is not mine", "li", "POST", apply, getiJSON(f.number, map[string]any{"operator_name": "李四"}, withFile), 404, nil, nil},
			{"a material without a file", "zhang", "POST", apply, getiJSON(f.number, nil, `, "materials": [{"key": "operator_id"}]`), 400,
				[]string{`"code":"api.material_ref"`, `"field":"materials[0]"`}, nil},
			{"an unknown item", "zhang", "POST", "/api/v1/services/999999999999/applications", getiJSON(f.number, nil, ""), 404, nil, nil},
			{"a division that does not exist", "zhang", "POST", apply, strings.Replace(getiJSON(f.number, nil, ""), `"division": "140105"`, `"division": "149999"`, 1), 400,
				[]string{`"code":"govservice.division"`}, nil},
			{"submitted", "zhang", "POST", apply, getiJSON(f.number, nil, withFile), 201,
				[]string{`"item_code":"` + itemGeti + `"`, `"status":"submitted"`, `"form_version_id":"` + fm.FormVersionID + `"`, `"dept_id":"dept-140105-scjg"`}, nil},
			{"mine", "zhang", "GET", "/api/v1/applications", "", 200, []string{`"items":[{"id":"`, `"status":"submitted"`}, nil},
			{"none of someone else's", "li", "GET", "/api/v1/applications", "", 200, []string{`"items":[]`}, nil},
			{"one", "zhang", "GET", "/api/v1/applications/{created}", "", 200, []string{`"shop_name":"晋阳小吃"`, `"employees":"2"`, `"sections":[`,
				`"name":"身份证.pdf"`, `"history":[`}, nil},
			{"not someone else's", "li", "GET", "/api/v1/applications/{created}", "", 404, []string{`"code":"govservice.application_not_found"`}, []string{"晋阳小吃"}},
			{"reading needs a token", "", "GET", "/api/v1/applications", "", 401, nil, nil},
		} {
			path := strings.ReplaceAll(c.path, "{created}", created)
			a := f.call(c.method, path, c.token, c.body)
			if a.status != c.status {
				t.Errorf("%s: status %d, want %d\n%.2000s", c.name, a.status, c.status, a.body)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(a.body, w) {
					t.Errorf("%s: no %s in\n%.3000s", c.name, w, a.body)
				}
			}
			for _, u := range c.unwanted {
				if strings.Contains(a.body, u) {
					t.Errorf("%s: %s in\n%.3000s", c.name, u, a.body)
				}
			}
			if a.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", c.name, a.header.Get("WWW-Authenticate"))
			}
			if a.status == 422 && a.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: Content-Type %q", c.name, a.header.Get("Content-Type"))
			}
			if a.status == 201 {
				var out govservice.Application
				if err := json.Unmarshal([]byte(a.body), &out); err != nil || a.header.Get("Location") != "/api/v1/applications/"+out.ID {
					t.Fatalf("created: %v, Location %q", err, a.header.Get("Location"))
				}
				created = out.ID
			}
		}
		// Submitted through the API, read through the service: the same values, sealed at rest.
		det, err := f.apps.Get(ctx, f.zhang.Subject, created)
		if err != nil {
			t.Fatal(err)
		}
		if det.Values["shop_name"] != "晋阳小吃" || det.Values["employees"] != "2" || len(det.Materials) != 1 || det.Materials[0].Source != govservice.SourceFile {
			t.Errorf("stored: %v %+v", det.Values, det.Materials)
		}
	}, servicesSources...)
}

// A node without online services answers their routes 404, never a panic.
func TestServicesOff(t *testing.T) {
	a := &API{}
	mux := http.NewServeMux()
	a.Routes(mux)
	for _, p := range []string{"/api/v1/services", "/api/v1/bundles", "/api/v1/applications"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "api.services_off") {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body.String())
		}
	}
}

func TestFormValuesJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want form.Values
		code string
	}{
		{`{"a": "x", "b": 12, "c": -1.5, "d": true, "e": false, "f": null}`, form.Values{"a": "x", "b": "12", "c": "-1.5", "d": "true", "e": "false"}, ""},
		{`{"money": 50000.00}`, form.Values{"money": "50000.00"}, ""},
		{`{}`, form.Values{}, ""},
		{`{"a": {"b": 1}}`, nil, "api.value_type"},
		{`{"a": [1]}`, nil, "api.value_type"},
		{`[1, 2]`, nil, "api.values"},
		{`"x"`, nil, "api.values"},
	} {
		var v formValues
		err := json.Unmarshal([]byte(c.in), &v)
		if c.code != "" {
			var ie *i18n.Error
			if !errors.As(err, &ie) || ie.Code != c.code {
				t.Errorf("%s: error %v, want %s", c.in, err, c.code)
			}
			continue
		}
		if err != nil || len(v) != len(c.want) {
			t.Errorf("%s: %v %v", c.in, v, err)
			continue
		}
		for k, w := range c.want {
			if v[k] != w {
				t.Errorf("%s: %s = %q, want %q", c.in, k, v[k], w)
			}
		}
	}
}

// FuzzFormValues: any body either decodes to string values or is refused with a user error.
func FuzzFormValues(f *testing.F) {
	for _, s := range []string{`{"a": "x", "b": 12, "c": true, "d": null}`, `{"a": {"b": 1}}`, `[]`, `{"a": "\u0000"}`, `{"a": 1e400}`, `{"":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v formValues
		err := json.Unmarshal(b, &v)
		if err != nil {
			var ie *i18n.Error
			var se *json.SyntaxError
			if !errors.As(err, &ie) && !errors.As(err, &se) {
				t.Fatalf("%q: %T %v", b, err, err)
			}
			return
		}
		for k, s := range v {
			if s == "" && !json.Valid(b) {
				t.Fatalf("%q: %q from invalid JSON", b, k)
			}
		}
	})
}

// FuzzBearerToken: the Authorization header of anyone.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc ", "Basic abc", "Bearer", "", "Bearer \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{h}
		tok, ok := bearerToken(r)
		if ok && (tok == "" || tok != strings.TrimSpace(tok)) {
			t.Fatalf("%q gave token %q", h, tok)
		}
	})
}

// BenchmarkServicesAPI measures the phone app's catalogue reads on SQLite: a guide, a page
// of the list, and a ranked search (Bleve) with its items read back from the database.
func BenchmarkServicesAPI(b *testing.B) {
	d := dbtest.SQLite(b, servicesSources...)
	f := newServicesFixture(b, d)
	for _, c := range []struct{ name, path string }{
		{"guide", "/api/v1/services/" + itemGeti},
		{"list", "/api/v1/services?limit=50"},
		{"search", "/api/v1/services?q=%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if a := f.call("GET", c.path, "", ""); a.status != 200 {
					b.Fatal(a.status, a.body)
				}
			}
		})
	}
}

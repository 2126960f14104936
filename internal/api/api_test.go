package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/quality"
)

// gatewayPrefix: the exchange gateway serves these paths, not this table; exchange's
// TestOpenAPIDocumentsGateway keeps them in step with the gateway's routes.
const gatewayPrefix = "/api/v1/exchange/"

// mountedByApp are API paths the app mounts from other engines' handlers (licences' trust
// list, the payment channels' callbacks); internal/app's licence and payment tests call them.
var mountedByApp = map[string]bool{"GET /api/v1/licenses/trust-list": true, "POST /api/v1/pay/notify/{channel}": true}

// Every route of the table is documented in openapi.json, and the document names no route
// the table lacks (the gateway's aside).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		if strings.HasPrefix(path, gatewayPrefix) {
			continue
		}
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var a API
	routed := map[string]bool{}
	for _, rt := range a.table() {
		routed[rt.pattern] = true
		if !documented[rt.pattern] {
			t.Errorf("route %q is not in openapi.json", rt.pattern)
		}
	}
	for d := range documented {
		if !routed[d] && !mountedByApp[d] {
			t.Errorf("openapi.json documents %q, which is not routed", d)
		}
	}
}

// quality is an API over real services on a fresh database: 太原市民政局's small roll with
// two bad rows (row 2 without a name, row 4 with a wrong check digit), attached to its
// resource in 太原, and a dataset attached to nothing.
type qualityFixture struct {
	handler http.Handler
	deptMZ  string
	deptDT  string
	ids     []string // the roll's ID numbers
}

// subjects the tests act as, by the X-Test-As header.
var testSubjects = map[string]authz.Subject{
	"ty":      {Kind: authz.Staff, ID: "ty-1", Division: "140100", Roles: []authz.Role{authz.RoleOfficer}},
	"dt":      {Kind: authz.Staff, ID: "dt-1", Division: "140200", Roles: []authz.Role{authz.RoleOfficer}},
	"auditor": {Kind: authz.Staff, ID: "au-1", Division: "140000", Roles: []authz.Role{authz.RoleAuditor}},
	"initial": {Kind: authz.Staff, ID: "in-1", Division: "140100", Roles: []authz.Role{authz.RoleOfficer}, PasswordChangeRequired: true},
}

func newQualityFixture(t *testing.T, d *db.DB) *qualityFixture {
	t.Helper()
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC) }
	k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), now)
	if err != nil {
		t.Fatal(err)
	}
	policy := authz.NewPolicy(divisions.Contains)
	catalog.RegisterPermissions(policy)
	o := org.New(d, policy, org.Options{Argon: org.ArgonParams{Memory: 64, Time: 1, Threads: 1}, Now: now, Fields: k.FieldCipher()})
	if _, err := o.SyncDivisions(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := o.BootstrapAdmin(ctx, "admin", "管理员", "Fenhe2River7!")
	if err != nil {
		t.Fatal(err)
	}
	adminSub, err := o.Subject(ctx, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	mz, err := o.CreateDepartment(ctx, adminSub, org.DepartmentInput{DivisionCode: "140100", Code: "mz", Name: "太原市民政局"})
	if err != nil {
		t.Fatal(err)
	}
	dt, err := o.CreateDepartment(ctx, adminSub, org.DepartmentInput{DivisionCode: "140200", Code: "mz", Name: "大同市民政局"})
	if err != nil {
		t.Fatal(err)
	}
	base := baselib.New(d, k.FieldCipher(), baselib.Options{Now: now})
	var persons []baselib.PersonInput
	for i := range 4 {
		persons = append(persons, baselib.PersonInput{Name: fmt.Sprintf("居民%d", i), DivisionCode: "140105",
			IDNumber: ids.MakeResident("140105", time.Date(1960+i, 5, 1+i, 0, 0, 0, 0, time.UTC), 300+i, i%2 == 0)})
	}
	if _, err := base.AddPersons(ctx, persons); err != nil {
		t.Fatal(err)
	}
	badID := persons[3].IDNumber[:17] + map[bool]string{true: "0", false: "1"}[persons[3].IDNumber[17] != '0']
	csv := "身份证号,姓名\n" + persons[0].IDNumber + ",居民0\n" + persons[1].IDNumber + ",\n" + persons[2].IDNumber + ",居民2\n" + badID + ",居民3\n"
	ds := dataset.New(d, k.FieldCipher(), dataset.Options{Now: now})
	schema := dataset.Schema{Columns: []dataset.Column{{Name: "身份证号", Type: dataset.String, Sensitive: true}, {Name: "姓名", Type: dataset.String}}}
	for _, id := range []string{"mz-roll", "loose"} {
		if _, err := ds.Load(ctx, id, schema, dataset.Source{Name: "roll.csv", Reader: strings.NewReader(csv)}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	q := quality.New(d, ds, base, quality.Options{Now: now})
	if _, err := q.Attach(ctx, testSubjects["ty"], "mz-roll", catalog.Resource{ID: "res-1", Draft: catalog.Draft{Name: "低保名册",
		Provider: "太原市民政局", ProviderDeptID: mz.ID, UpdateCycle: catalog.CycleMonthly}, DivisionCode: "140100"}); err != nil {
		t.Fatal(err)
	}
	a := &API{Org: o, Policy: policy, Quality: q, NodeDivision: "140000"}
	mux := http.NewServeMux()
	a.Routes(mux)
	// The console's session middleware stands here in the app; the tests name the subject.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sub, ok := testSubjects[r.Header.Get("X-Test-As")]; ok {
			r = r.WithContext(authz.WithSubject(r.Context(), sub))
		}
		mux.ServeHTTP(w, r)
	})
	f := &qualityFixture{handler: h, deptMZ: mz.ID, deptDT: dt.ID}
	for _, p := range persons {
		f.ids = append(f.ids, p.IDNumber)
	}
	return f
}

// The quality API, scenario by scenario in order: who may read and change what, bad input,
// and the report of the roll — its bad rows exactly, no ID number in it.
func TestQualityAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		if _, err := d.Migrate(context.Background(), crypto.Migrations, org.Migrations, baselib.Migrations, dataset.Migrations, quality.Migrations); err != nil {
			t.Fatal(err)
		}
		f := newQualityFixture(t, d)
		const roll = "/api/v1/quality/datasets/mz-roll"
		goodRules := `{"rules": [{"kind": "completeness", "column": "姓名"}, {"kind": "format", "column": "身份证号", "format": "resident_id"},
			{"kind": "reference", "column": "身份证号", "library": "population"}, {"kind": "timeliness", "grace_hours": 48}]}`
		for _, c := range []struct {
			name, as, method, path, body string
			status                       int
			want, unwanted               []string
		}{
			{"anonymous", "", "GET", "/api/v1/quality/datasets", "", 401, []string{`"code":"unauthorized"`}, nil},
			{"initial password", "initial", "GET", "/api/v1/quality/datasets", "", 403, []string{`"code":"password_change_required"`}, nil},
			{"Taiyuan lists its datasets", "ty", "GET", "/api/v1/quality/datasets", "", 200, []string{`"dataset_id":"mz-roll"`, `"dept_name":"太原市民政局"`}, []string{"loose"}},
			{"Datong sees none", "dt", "GET", "/api/v1/quality/datasets", "", 200, []string{`"items":[]`}, []string{"mz-roll"}},
			{"rules from the schema", "ty", "GET", roll + "/rules", "", 200, []string{`"items":[{"id":"default:timeliness:"`, `"default":true`}, nil},
			{"Datong may not read the rules", "dt", "GET", roll + "/rules", "", 403, []string{`"code":"forbidden"`}, nil},
			{"a dataset attached to nothing", "ty", "GET", "/api/v1/quality/datasets/loose/rules", "", 404, []string{`"code":"quality.no_target"`}, nil},
			{"no report yet", "ty", "GET", roll + "/report", "", 404, []string{`"code":"quality.no_report"`}, nil},
			{"set the rules", "ty", "PUT", roll + "/rules", goodRules, 200, []string{`"kind":"reference"`, `"library":"population"`, `"grace_hours":48`,
				`"created_by":"staff:ty-1"`}, []string{`"default:timeliness:"`}},
			{"a rule on a missing column", "ty", "PUT", roll + "/rules", `{"rules": [{"kind": "completeness", "column": "住址"}]}`, 400,
				[]string{`"code":"quality.rule"`, `"field":"rules[0].column"`, "住址"}, nil},
			{"an unknown field", "ty", "PUT", roll + "/rules", `{"rules": [{"kind": "completeness", "column": "姓名", "value": 1}]}`, 400,
				[]string{`"code":"request.unknown_field"`}, nil},
			{"not JSON", "ty", "PUT", roll + "/rules", `rules`, 400, nil, nil},
			{"the auditor may not set rules", "auditor", "PUT", roll + "/rules", goodRules, 403, []string{`"code":"forbidden"`}, nil},
			{"the refused sets changed nothing", "ty", "GET", roll + "/rules", "", 200, []string{`"kind":"reference"`}, []string{"住址"}},
			{"Datong may not run it", "dt", "POST", roll + "/run", "", 403, nil, nil},
			{"run", "ty", "POST", roll + "/run", "", 200, []string{`"version":1`, `"total_rows":4`, `"bad_rows":2`, `"findings_total":2`, `"score":50`,
				`"row_no":2,"line":3,"column":"姓名"`, `"row_no":4,"line":5,"column":"身份证号"`, `"code":"ids.resident.checksum"`}, []string{"居民0"}},
			{"the latest report", "ty", "GET", roll + "/report", "", 200, []string{`"bad_rows":2`, `"row_no":2`, `"row_no":4`}, nil},
			{"one finding asked for", "ty", "GET", roll + "/report?findings=1", "", 200, []string{`"findings_total":2`, `"row_no":2`}, []string{`"row_no":4`}},
			{"the provincial auditor reads it", "auditor", "GET", roll + "/report", "", 200, []string{`"bad_rows":2`}, nil},
			{"Datong may not read it", "dt", "GET", roll + "/report", "", 403, nil, nil},
			{"the department's report", "ty", "GET", "/api/v1/quality/departments/" + f.deptMZ + "/report", "", 200,
				[]string{`"total_rows":4`, `"bad_rows":2`, `"score":50`, `"dataset_id":"mz-roll"`, `"kind":"completeness"`}, nil},
			{"another department has none", "dt", "GET", "/api/v1/quality/departments/" + f.deptDT + "/report", "", 200,
				[]string{`"reports":[]`, `"kinds":[]`, `"score":100`}, nil},
			{"Datong may not read Taiyuan's department", "dt", "GET", "/api/v1/quality/departments/" + f.deptMZ + "/report", "", 403, nil, nil},
			{"an unknown department", "ty", "GET", "/api/v1/quality/departments/none/report", "", 404, nil, nil},
			{"Taiyuan's division", "ty", "GET", "/api/v1/quality/divisions/140100/report", "", 200, []string{`"bad_rows":2`}, nil},
			{"the province rolls up", "auditor", "GET", "/api/v1/quality/divisions/140000/report", "", 200, []string{`"dataset_id":"mz-roll"`}, nil},
			{"Datong may not read Taiyuan's division", "dt", "GET", "/api/v1/quality/divisions/140100/report", "", 403, nil, nil},
			{"a bad division code", "ty", "GET", "/api/v1/quality/divisions/14x/report", "", 400, []string{`"field":"code"`}, nil},
		} {
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.as != "" {
				req.Header.Set("X-Test-As", c.as)
			}
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != c.status {
				t.Errorf("%s: status %d, want %d\n%.1500s", c.name, rec.Code, c.status, body)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s: no %s in\n%.3000s", c.name, w, body)
				}
			}
			for _, u := range append(c.unwanted, f.ids...) {
				if strings.Contains(body, u) {
					t.Errorf("%s: %s in\n%.3000s", c.name, u, body)
				}
			}
		}
	})
}

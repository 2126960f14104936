package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/quality"
)

var findingRowRE = regexp.MustCompile(`<td class="row-no">(\d+)</td>`)

// A department's roll, loaded and attached through the services, is checked from the
// console: the report page lists exactly the seeded bad rows, and other divisions cannot see it.
func TestConsoleQuality(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := t.Context()
		// The node's first quality sweep has run (on an empty catalogue), so no check runs
		// before the officer presses the button below; the next comes in a minute.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			list, err := n.queue.River().JobList(ctx, river.NewJobListParams().Kinds(quality.SweepArgs{}.Kind()).
				States(rivertype.JobStateCompleted).First(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Jobs) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no quality sweep at start")
			}
		}
		admin, _ := n.Org.Subject(ctx, adminID(t, n))
		mz, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: "mz", Name: "太原市民政局", Kind: "民政"})
		if err != nil {
			t.Fatal(err)
		}
		dt, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140200", Code: "mz", Name: "大同市民政局", Kind: "民政"})
		if err != nil {
			t.Fatal(err)
		}
		officer, browser := staffUser(t, n, admin, "mz-officer", mz.ID, authz.RoleOfficer)
		reviewer, _ := staffUser(t, n, admin, "mz-admin", mz.ID, authz.RoleOrgAdmin)
		_, other := staffUser(t, n, admin, "dt-officer", dt.ID, authz.RoleOfficer)

		// --- the roll: 20 good rows (all in the population library), 4 bad ones ---
		var persons []baselib.PersonInput
		for i := 0; i < 21; i++ {
			persons = append(persons, baselib.PersonInput{Name: fmt.Sprintf("居民%d", i), DivisionCode: "140105",
				IDNumber: ids.MakeResident("140105", time.Date(1950+i, 3, 1+i, 0, 0, 0, 0, time.UTC), 200+i, i%2 == 1)})
		}
		if _, err := n.Base.AddPersons(ctx, persons); err != nil {
			t.Fatal(err)
		}
		p4 := persons[4].IDNumber
		bad := map[int]string{
			2:  persons[20].IDNumber + ",",                                                                 // missing name
			7:  p4[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", p4[17])+1)%11]) + ",校验位错", // bad check digit
			12: persons[1].IDNumber + ",重复",                                                                // duplicate of good row 2
			17: ids.MakeResident("140106", time.Date(1991, 1, 1, 0, 0, 0, 0, time.UTC), 5, true) + ",不在库中",
		}
		var lines []string
		var want []int64
		for g := 0; g <= 20; g++ {
			if b, ok := bad[g]; ok {
				lines = append(lines, b)
				want = append(want, int64(len(lines)))
			}
			if g < 20 {
				lines = append(lines, persons[g].IDNumber+","+persons[g].Name)
			}
		}
		schema := dataset.Schema{Columns: []dataset.Column{{Name: "身份证号", Type: dataset.String, Sensitive: true}, {Name: "姓名", Type: dataset.String}}}
		if _, err := n.Datasets.Load(ctx, "mz-dibao", schema, dataset.Source{Name: "dibao.csv",
			Reader: strings.NewReader("身份证号,姓名\n" + strings.Join(lines, "\n") + "\n")}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := n.Catalog.CreateDraft(ctx, officer, catalog.Draft{Name: "城乡低保对象名册", ProviderDeptID: mz.ID, Summary: "全市低保对象",
			Classification: catalog.Classification{Class: catalog.ClassBase, Item: "01", Entry: "002"}, Format: catalog.FormatDatabase,
			Items:     []catalog.DataItem{{Name: "身份证号", Type: catalog.TypeChar, Length: 18, Sensitive: true}, {Name: "姓名", Type: catalog.TypeChar, Length: 50}},
			ShareType: catalog.ShareConditional, ShareCondition: "用于社会救助核对", OpenType: catalog.OpenNone,
			UpdateCycle: catalog.CycleMonthly, Contact: catalog.Contact{Name: "张科长", Phone: "0351-7654321"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Catalog.Submit(ctx, officer, res.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Catalog.Review(ctx, reviewer, res.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		for _, r := range []quality.Rule{
			{DatasetID: "mz-dibao", Kind: quality.Completeness, Column: "姓名"},
			{DatasetID: "mz-dibao", Kind: quality.Format, Column: "身份证号", Format: quality.FormatResidentID},
			{DatasetID: "mz-dibao", Kind: quality.Uniqueness, Column: "身份证号"},
		} {
			if _, err := n.Quality.AddRule(ctx, officer, r); err != nil {
				t.Fatal(err)
			}
		}

		// --- the officer attaches the dataset, adds the reference rule and runs the check ---
		_, page := get(t, browser, n.URL+"/console/quality")
		if r, body := postForm(t, browser, n.URL, "/console/quality/attach", url.Values{"csrf_token": {csrfFrom(t, page)},
			"dataset_id": {"mz-dibao"}, "resource_id": {res.ID}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("attach: %d\n%.2000s", r.StatusCode, body)
		}
		_, page = get(t, browser, n.URL+"/console/quality/datasets/mz-dibao")
		if !strings.Contains(page, `id="no-report"`) || !strings.Contains(page, "城乡低保对象名册") {
			t.Fatalf("report page before a run:\n%.3000s", page)
		}
		if r, body := postForm(t, browser, n.URL, "/console/quality/datasets/mz-dibao/rules", url.Values{"csrf_token": {csrfFrom(t, page)},
			"kind": {"reference"}, "column": {"无此列"}, "library": {"population"}}); r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "无此列") {
			t.Fatalf("rule on a missing column: %d\n%.2000s", r.StatusCode, body)
		}
		if r, body := postForm(t, browser, n.URL, "/console/quality/datasets/mz-dibao/rules", url.Values{"csrf_token": {csrfFrom(t, page)},
			"kind": {"reference"}, "column": {"身份证号"}, "library": {"population"}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("add rule: %d\n%.2000s", r.StatusCode, body)
		}
		if r, body := postForm(t, browser, n.URL, "/console/quality/datasets/mz-dibao/run", url.Values{"csrf_token": {csrfFrom(t, page)}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("run: %d\n%.2000s", r.StatusCode, body)
		}
		_, page = get(t, browser, n.URL+"/console/quality/datasets/mz-dibao")
		var got []int64
		for _, m := range findingRowRE.FindAllStringSubmatch(page, -1) {
			no, _ := strconv.ParseInt(m[1], 10, 64)
			if len(got) == 0 || got[len(got)-1] != no {
				got = append(got, no)
			}
		}
		if !reflect.DeepEqual(got, want) || !strings.Contains(page, "身份证号码校验位") || !strings.Contains(page, "人口库中不存在") ||
			!strings.Contains(page, `<dd id="bad-rows">4</dd>`) {
			t.Fatalf("findings rows %v, want %v:\n%.6000s", got, want, page)
		}
		if strings.Contains(page, persons[1].IDNumber) {
			t.Fatal("the report shows an ID number")
		}

		// --- the department summary, and a city that cannot see it ---
		_, page = get(t, browser, n.URL+"/console/quality?dept="+mz.ID)
		if !strings.Contains(page, `href="/console/quality/datasets/mz-dibao"`) || !strings.Contains(page, `<dd id="bad-rows">4</dd>`) {
			t.Fatalf("department summary:\n%.4000s", page)
		}
		if r, _ := get(t, other, n.URL+"/console/quality/datasets/mz-dibao"); r.StatusCode != http.StatusForbidden {
			t.Fatalf("another city read the report: %d", r.StatusCode)
		}
		if _, page = get(t, other, n.URL+"/console/quality"); strings.Contains(page, "mz-dibao") || !strings.Contains(page, "csrf_token") {
			t.Fatalf("another city sees the dataset:\n%.3000s", page)
		}
		if r, _ := postForm(t, other, n.URL, "/console/quality/datasets/mz-dibao/run", url.Values{"csrf_token": {csrfFrom(t, page)}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("another city ran the check: %d", r.StatusCode)
		}

		// --- the same over the JSON API, with the console session, authorized alike ---
		r, js := get(t, browser, n.URL+"/api/v1/quality/datasets/mz-dibao/report")
		var rep quality.Report
		if err := json.Unmarshal([]byte(js), &rep); r.StatusCode != http.StatusOK || err != nil || !reflect.DeepEqual(rep.BadRowNumbers(), want) {
			t.Fatalf("API report: %d %v %v\n%.2000s", r.StatusCode, err, rep.BadRowNumbers(), js)
		}
		if r, _ := get(t, other, n.URL+"/api/v1/quality/datasets/mz-dibao/report"); r.StatusCode != http.StatusForbidden {
			t.Fatalf("another city read the report over the API: %d", r.StatusCode)
		}
		_, page = get(t, browser, n.URL+"/console/quality")
		put := func(c *http.Client, body string) (*http.Response, string) {
			req, _ := http.NewRequest("PUT", n.URL+"/api/v1/quality/datasets/mz-dibao/rules", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", n.URL)
			req.Header.Set("X-CSRF-Token", csrfFrom(t, page))
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res, string(b)
		}
		// Without the duplicate check, row 13 (a repeat) is no longer a fault.
		if r, body := put(browser, `{"rules": [{"kind": "completeness", "column": "姓名"}, {"kind": "format", "column": "身份证号", "format": "resident_id"},
			{"kind": "reference", "column": "身份证号", "library": "population"}]}`); r.StatusCode != http.StatusOK || !strings.Contains(body, `"library":"population"`) {
			t.Fatalf("set rules: %d\n%.2000s", r.StatusCode, body)
		}
		if r, _ := put(other, `{"rules": []}`); r.StatusCode != http.StatusForbidden {
			t.Fatalf("another city set the rules: %d", r.StatusCode)
		}

		// --- the job queue checks a new load by itself ---
		if _, err := n.Datasets.Load(ctx, "mz-dibao", schema, dataset.Source{Name: "dibao.csv",
			Reader: strings.NewReader("身份证号,姓名\n" + strings.Join(lines, "\n") + "\n")}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		// The sweep runs every minute; queue one now rather than wait, and again while none has
		// seen the load (a sweep already running when the load completed is one that has not).
		deadline := time.Now().Add(30 * time.Second)
		for {
			rep, err := n.Quality.ReportFor(ctx, "mz-dibao", 0)
			if err == nil && rep.Version == 2 {
				if got, want := rep.BadRowNumbers(), []int64{want[0], want[1], want[3]}; !reflect.DeepEqual(got, want) {
					t.Fatalf("checked by the queue: rows %v, want %v", got, want)
				}
				break
			}
			if _, err := n.queue.Insert(ctx, quality.SweepArgs{}, nil); err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				if list, lerr := n.queue.River().JobList(ctx, river.NewJobListParams().First(20)); lerr == nil {
					for _, j := range list.Jobs {
						t.Logf("job %d %s %s attempt %d errors %v", j.ID, j.Kind, j.State, j.Attempt, j.Errors)
					}
				}
				t.Fatalf("no report of version 2 after 30 s: version %d %v", rep.Version, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/ids"
)

// staffUser creates a staff account and signs it in to the console (past the first-login
// password change); it returns the subject and the browser.
func staffUser(t *testing.T, n *node, admin authz.Subject, username, deptID string, role authz.Role) (authz.Subject, *http.Client) {
	t.Helper()
	st, err := n.Org.CreateStaff(t.Context(), admin, org.StaffInput{Username: username, Name: "测试" + username, DepartmentID: deptID,
		Roles: []authz.Role{role}, Password: "Initial#Pass2026"})
	if err != nil {
		t.Fatalf("create %s: %v", username, err)
	}
	c := client(t)
	_, page := get(t, c, n.URL+"/console/login")
	postForm(t, c, n.URL, "/console/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "username": {username}, "password": {"Initial#Pass2026"}})
	_, page = get(t, c, n.URL+"/console/password")
	if res, body := postForm(t, c, n.URL, "/console/password", url.Values{"csrf_token": {csrfFrom(t, page)}, "old": {"Initial#Pass2026"},
		"new": {"Changed#Pass2026x"}, "confirm": {"Changed#Pass2026x"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("password change for %s: %d %.800s", username, res.StatusCode, body)
	}
	sub, err := n.Org.Subject(t.Context(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	return sub, c
}

// gatewayCall calls the exchange gateway as a consumer system.
type gatewayAnswer struct {
	status  int
	body    []byte
	receipt string
	code    string
}

func callGateway(t *testing.T, method, u, token, purpose, body string) gatewayAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set(exchange.PurposeHeader, url.PathEscape(purpose))
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	a := gatewayAnswer{status: res.StatusCode, receipt: res.Header.Get(exchange.ReceiptHeader)}
	a.body, _ = io.ReadAll(res.Body)
	if a.status >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(a.body, &p)
		a.code = p.Code
	}
	return a
}

var (
	requestLinkRE = regexp.MustCompile(`/console/exchange/requests/([0-9a-f-]{36})"`)
	bindFormRE    = regexp.MustCompile(`/console/exchange/grants/([0-9a-f-]{36})/bind"`)
)

// The exchange wired into a node, end to end: 公安 publishes a population resource on
// conditions, backed by a dataset; 人社's officer applies in the console for three items;
// 公安's reviewer approves two; 人社 binds its system client, which calls the gateway with a
// client-credentials token and gets exactly those two items with a signed receipt that
// `dgov verify` accepts (and refuses once the body is changed); the citizen sees the read.
func TestExchangeEndToEnd(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		admin, _ := n.Org.Subject(ctx, adminID(t, n))
		ga, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140000", Code: "ga", Name: "山西省公安厅", Kind: "公安"})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: "rs", Name: "太原市人力资源和社会保障局", Kind: "人社"})
		if err != nil {
			t.Fatal(err)
		}
		gaOfficer, gaBrowser := staffUser(t, n, admin, "ga-officer", ga.ID, authz.RoleOfficer)
		gaAdmin, gaAdminBrowser := staffUser(t, n, admin, "ga-admin", ga.ID, authz.RoleOrgAdmin)
		_, rsBrowser := staffUser(t, n, admin, "rs-officer", rs.ID, authz.RoleOfficer)
		rsAdmin, rsAdminBrowser := staffUser(t, n, admin, "rs-admin", rs.ID, authz.RoleOrgAdmin)

		// --- the provider: a dataset with a division column, a published resource, attached ---
		const seq = 321
		number := ids.MakeResident("140105", time.Date(1985, 3, 8, 0, 0, 0, 0, time.UTC), seq, true) // registerVerified's
		datong := ids.MakeResident("140202", time.Date(1970, 5, 1, 0, 0, 0, 0, time.UTC), 12, true)
		csv := "身份证号,姓名,住址,区划\n" + number + ",郭汾阳,坞城路92号,140105\n" + datong + ",王建国,大同御河西路8号,140202\n"
		schema := dataset.Schema{Key: "身份证号", Columns: []dataset.Column{
			{Name: "身份证号", Type: dataset.ResidentID, Sensitive: true},
			{Name: "姓名", Type: dataset.String, Required: true},
			{Name: "住址", Type: dataset.String},
			{Name: "区划", Type: dataset.Division, Required: true},
		}}
		if _, err := n.Datasets.Load(ctx, "ga-population", schema, dataset.Source{Name: "population.csv", Reader: strings.NewReader(csv)}, dataset.LoadOptions{}); err != nil {
			t.Fatalf("load dataset: %v", err)
		}
		res, err := n.Catalog.CreateDraft(ctx, gaOfficer, catalog.Draft{Name: "人口基本信息", ProviderDeptID: ga.ID,
			Summary: "全省户籍人口的姓名、公民身份号码和住址", Classification: catalog.Classification{Class: catalog.ClassBase, Item: "01", Entry: "001"},
			Format: catalog.FormatAPI, Items: []catalog.DataItem{
				{Name: "姓名", Type: catalog.TypeChar, Length: 50},
				{Name: "身份证号", Type: catalog.TypeChar, Length: 18, Sensitive: true},
				{Name: "住址", Type: catalog.TypeChar, Length: 200, Sensitive: true},
			},
			ShareType: catalog.ShareConditional, ShareCondition: "用于社会保障、政务服务身份核验", OpenType: catalog.OpenNone,
			UpdateCycle: catalog.CycleDaily, Contact: catalog.Contact{Name: "李科长", Phone: "0351-1234567"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Catalog.Submit(ctx, gaOfficer, res.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Catalog.Review(ctx, gaAdmin, res.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Exchange.Attach(ctx, gaOfficer, res.ID, "ga-population", ""); err != nil {
			t.Fatalf("attach: %v", err)
		}

		// --- 人社 applies in the console ---
		_, page := get(t, rsBrowser, n.URL+"/console/exchange")
		if !strings.Contains(page, "/console/exchange/apply/"+res.ID) || !strings.Contains(page, `href="/console/exchange"`) {
			t.Fatalf("the resource cannot be applied for:\n%.3000s", page)
		}
		_, page = get(t, rsBrowser, n.URL+"/console/exchange/apply/"+res.ID)
		for _, item := range []string{"姓名", "身份证号", "住址"} {
			if !strings.Contains(page, `value="`+item+`"`) {
				t.Fatalf("item %s not offered:\n%.3000s", item, page)
			}
		}
		form := url.Values{"csrf_token": {csrfFrom(t, page)}, "fields": {"姓名", "身份证号", "住址"}, "purpose": {""}}
		if r, body := postForm(t, rsBrowser, n.URL, "/console/exchange/apply/"+res.ID, form); r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "使用用途") {
			t.Fatalf("application without a purpose: %d\n%.2000s", r.StatusCode, body)
		}
		form.Set("purpose", "社会保险待遇资格认证")
		if r, body := postForm(t, rsBrowser, n.URL, "/console/exchange/apply/"+res.ID, form); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("apply: %d\n%.2000s", r.StatusCode, body)
		}
		_, page = get(t, rsBrowser, n.URL+"/console/exchange")
		m := requestLinkRE.FindStringSubmatch(page)
		if m == nil || !strings.Contains(page, "待答复") {
			t.Fatalf("the request is not listed as pending:\n%.4000s", page)
		}
		reqID := m[1]

		// --- 公安 answers: a refusal needs reasons; approves 姓名 and 身份证号 only ---
		_, page = get(t, gaBrowser, n.URL+"/console/exchange")
		if !strings.Contains(page, "/console/exchange/requests/"+reqID) || !strings.Contains(page, "太原市人力资源和社会保障局") {
			t.Fatalf("not pending at the provider:\n%.4000s", page)
		}
		_, page = get(t, gaBrowser, n.URL+"/console/exchange/duties")
		if !strings.Contains(page, "答复申请") || !strings.Contains(page, "社会保险待遇资格认证") {
			t.Fatalf("responsibility list:\n%.4000s", page)
		}
		_, page = get(t, gaBrowser, n.URL+"/console/exchange/requests/"+reqID)
		if r, body := postForm(t, gaBrowser, n.URL, "/console/exchange/requests/"+reqID+"/refuse",
			url.Values{"csrf_token": {csrfFrom(t, page)}, "reason": {" "}}); r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "理由") {
			t.Fatalf("refusal without reasons: %d\n%.2000s", r.StatusCode, body)
		}
		if r, body := postForm(t, gaBrowser, n.URL, "/console/exchange/requests/"+reqID+"/approve", url.Values{"csrf_token": {csrfFrom(t, page)},
			"fields": {"姓名", "身份证号"}, "reason": {"住址涉及个人隐私，不予共享"}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("approve: %d\n%.2000s", r.StatusCode, body)
		}

		// A system administrator reads any department's responsibility list.
		adminBrowser := client(t)
		login(t, n, adminBrowser, "admin", testAdminPassword)
		if r, page := get(t, adminBrowser, n.URL+"/console/exchange"); r.StatusCode != http.StatusOK || !strings.Contains(page, `id="duties-link"`) {
			t.Fatalf("exchange page of an administrator: %d\n%.2000s", r.StatusCode, page)
		}
		if r, page := get(t, adminBrowser, n.URL+"/console/exchange/duties?dept="+ga.ID); r.StatusCode != http.StatusOK || !strings.Contains(page, "提供数据") {
			t.Fatalf("the provider's responsibility list, read by an administrator: %d\n%.3000s", r.StatusCode, page)
		}

		// --- 人社 binds its system client to the grant ---
		sys, secret, err := n.IdP.RegisterClient(ctx, rsAdmin, idp.ClientInput{Name: "太原市社保业务系统", Type: idp.ClientService,
			AllowedScopes: []string{exchange.ScopeExchange}})
		if err != nil {
			t.Fatal(err)
		}
		_, page = get(t, rsAdminBrowser, n.URL+"/console/exchange/requests/"+reqID)
		m = bindFormRE.FindStringSubmatch(page)
		if m == nil || !strings.Contains(page, "已同意") {
			t.Fatalf("no grant to bind:\n%.4000s", page)
		}
		if r, body := postForm(t, rsAdminBrowser, n.URL, "/console/exchange/grants/"+m[1]+"/bind",
			url.Values{"csrf_token": {csrfFrom(t, page)}, "client_id": {sys.ID}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("bind: %d\n%.2000s", r.StatusCode, body)
		}

		// --- the consumer system calls the gateway ---
		cc := clientcredentials.Config{ClientID: sys.ID, ClientSecret: secret, TokenURL: n.URL + "/oidc/oauth/token", Scopes: []string{exchange.ScopeExchange}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		lookup := n.URL + "/api/v1/exchange/" + res.ID + "/lookup"
		const purpose = "社会保险待遇资格认证"
		if a := callGateway(t, "POST", lookup, "", purpose, `{"key":"`+number+`"}`); a.status != http.StatusUnauthorized {
			t.Fatalf("no token: %d %s", a.status, a.body) // 401, not a CSRF 403: the route is exempt
		}
		if a := callGateway(t, "POST", lookup, "not-a-token", purpose, `{"key":"`+number+`"}`); a.status != http.StatusUnauthorized {
			t.Fatalf("bad token: %d %s", a.status, a.body)
		}
		if a := callGateway(t, "POST", lookup, tok.AccessToken, "", `{"key":"`+number+`"}`); a.status != http.StatusBadRequest || a.code != "exchange.purpose.required" {
			t.Fatalf("no purpose: %d %s", a.status, a.body)
		}
		a := callGateway(t, "POST", lookup, tok.AccessToken, purpose, `{"key":"`+number+`"}`)
		if a.status != http.StatusOK || a.receipt == "" {
			t.Fatalf("lookup: %d %s", a.status, a.body)
		}
		var got exchange.LookupResult
		if err := json.Unmarshal(a.body, &got); err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(got.Record))
		for k := range got.Record {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"姓名", "身份证号"}) || got.Record["姓名"] != "郭汾阳" || got.Record["身份证号"] != number {
			t.Fatalf("record: %+v", got.Record)
		}
		if b := callGateway(t, "POST", lookup+"?fields=住址", tok.AccessToken, purpose, `{"key":"`+number+`"}`); b.status != http.StatusForbidden || b.code != "exchange.field_not_granted" {
			t.Fatalf("asking for 住址: %d %s", b.status, b.body)
		}
		// 大同's resident lies outside 太原's row scope: answered as missing.
		if b := callGateway(t, "POST", lookup, tok.AccessToken, purpose, `{"key":"`+datong+`"}`); b.status != http.StatusNotFound {
			t.Fatalf("out of scope: %d %s", b.status, b.body)
		}

		// --- the receipt verifies offline, and not once the body is changed ---
		dir := t.TempDir()
		rfile, bfile, kfile := filepath.Join(dir, "receipt.txt"), filepath.Join(dir, "body.json"), filepath.Join(dir, "node.pem")
		write := func(name string, b []byte) {
			if err := os.WriteFile(name, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(rfile, []byte(a.receipt+"\n"))
		write(bfile, a.body)
		for _, k := range n.Keys.PublicKeys() {
			if k.Active {
				write(kfile, []byte(k.PEM))
			}
		}
		env := map[string]string{"DGOV_DATA_DIR": n.Cfg.DataDir, "DGOV_DATABASE_URL": n.Cfg.DatabaseURL, "DGOV_LOG_LEVEL": "warn"}
		if code, out, errOut := runCLI(t, env, "", "verify", rfile, bfile, "--public-key", kfile); code != 0 || !strings.Contains(out, "✓") {
			t.Fatalf("verify with the public key: %d\n%s%s", code, out, errOut)
		}
		if code, out, errOut := runCLI(t, env, "", "verify", rfile, bfile); code != 0 || !strings.Contains(out, "✓") {
			t.Fatalf("verify with the node's keys: %d\n%s%s", code, out, errOut)
		}
		write(bfile, []byte(strings.Replace(string(a.body), "郭汾阳", "郭汾杨", 1)))
		for _, args := range [][]string{{"verify", rfile, bfile, "--public-key", kfile}, {"verify", rfile, bfile}} {
			code, out, errOut := runCLI(t, env, "", args...)
			if code != 1 || strings.Contains(out, "✓") || !strings.Contains(errOut, "内容被改动") || !strings.Contains(errOut, "altered") {
				t.Fatalf("%v after tampering: %d\n%s%s", args[3:], code, out, errOut)
			}
		}

		// --- a bulk extract under the same grant: a job on the node's queue writes the file;
		// its receipt covers the file and `dgov verify` accepts it ---
		ex := callGateway(t, "POST", n.URL+"/api/v1/exchange/"+res.ID+"/extracts?format=csv", tok.AccessToken, purpose, "")
		if ex.status != http.StatusAccepted {
			t.Fatalf("extract: %d %s", ex.status, ex.body)
		}
		var view exchange.ExtractView
		if err := json.Unmarshal(ex.body, &view); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			st := callGateway(t, "GET", n.URL+"/api/v1/exchange/"+res.ID+"/extracts/"+view.ID, tok.AccessToken, "", "")
			if err := json.Unmarshal(st.body, &view); err != nil || st.status != http.StatusOK {
				t.Fatalf("extract status: %d %s", st.status, st.body)
			}
			if view.Status != exchange.ExtractQueued && view.Status != exchange.ExtractRunning {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("extract still %s", view.Status)
			}
		}
		if view.Status != exchange.ExtractDone || view.RowCount == nil || *view.RowCount != 1 {
			t.Fatalf("extract: %+v", view)
		}
		file := callGateway(t, "GET", n.URL+view.File, tok.AccessToken, "", "")
		if file.status != http.StatusOK || !strings.HasPrefix(string(file.body), "姓名,身份证号\n郭汾阳,") || strings.Contains(string(file.body), number) {
			t.Fatalf("extract file: %d %q", file.status, file.body)
		}
		write(rfile, []byte(file.receipt+"\n"))
		write(bfile, file.body)
		if code, out, errOut := runCLI(t, env, "", "verify", rfile, bfile, "--public-key", kfile); code != 0 || !strings.Contains(out, "✓") {
			t.Fatalf("verify the extract: %d\n%s%s", code, out, errOut)
		}
		if _, page := get(t, rsBrowser, n.URL+"/console/exchange"); !strings.Contains(page, `id="extracts"`) || !strings.Contains(page, "可下载") {
			t.Fatalf("the extract is not listed in the console:\n%.4000s", page)
		}

		// --- the provider registers a dataset served from its own API (console) ---
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"gmsfhm": number, "xm": "郭汾阳"})
		}))
		defer upstream.Close()
		_, page = get(t, gaAdminBrowser, n.URL+"/console/datasets")
		if !strings.Contains(page, `id="new-upstream"`) {
			t.Fatalf("no upstream registration on the datasets page:\n%.3000s", page)
		}
		form = url.Values{"csrf_token": {csrfFrom(t, page)}, "new": {"1"}, "dataset_id": {"ga-live"}, "base_url": {upstream.URL},
			"schema":      {`{"columns":[{"name":"身份证号","type":"resident_id","sensitive":true},{"name":"姓名","type":"string"}],"key":"身份证号"}`},
			"lookup_path": {"/rk/{key}"}, "query_path": {"/rk"}, "auth_header": {"X-Api-Key"}, "secret": {"s3cret-key"}, "timeout": {"2"},
			"fields": {"身份证号=gmsfhm\n姓名=xm"}}
		if r, body := postForm(t, gaAdminBrowser, n.URL, "/console/datasets/upstream", form); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("register upstream: %d\n%.2000s", r.StatusCode, body)
		}
		if _, page := get(t, gaAdminBrowser, n.URL+"/console/datasets/ga-live"); !strings.Contains(page, "实时调用") || !strings.Contains(page, upstream.URL) ||
			strings.Contains(page, "s3cret-key") {
			t.Fatalf("the upstream dataset's page:\n%.4000s", page)
		}
		if r, err := n.Datasets.Lookup(ctx, "ga-live", number); err != nil || r.Values["姓名"] != "郭汾阳" {
			t.Fatalf("lookup through the registered upstream: %+v %v", r, err)
		}
		// Mistakes come back on the page they were made on, in words.
		bad := url.Values{"csrf_token": form["csrf_token"], "new": {"1"}, "dataset_id": {"ga-bad"}, "base_url": {"ftp://example.org"}, "schema": form["schema"]}
		if r, body := postForm(t, gaAdminBrowser, n.URL, "/console/datasets/upstream", bad); r.StatusCode != http.StatusBadRequest ||
			!strings.Contains(body, "https://") || !strings.Contains(body, `id="new-upstream"`) {
			t.Fatalf("a bad registration: %d\n%.3000s", r.StatusCode, body)
		}
		bad = url.Values{"csrf_token": form["csrf_token"], "dataset_id": {"ga-live"}, "base_url": {upstream.URL}, "timeout": {"soon"}}
		if r, body := postForm(t, gaAdminBrowser, n.URL, "/console/datasets/upstream", bad); r.StatusCode != http.StatusBadRequest ||
			!strings.Contains(body, "秒") || !strings.Contains(body, `id="upstream"`) {
			t.Fatalf("a bad change: %d\n%.3000s", r.StatusCode, body)
		}

		// --- the citizen sees who read their data ---
		c := client(t)
		if got := registerVerified(t, n, c, "13812340321", "郭汾阳", seq); got != number {
			t.Fatalf("registered number %s, the dataset has %s", got, number)
		}
		r, page := get(t, c, n.URL+"/account/reads")
		if r.StatusCode != http.StatusOK || !strings.Contains(page, "太原市人力资源和社会保障局") || !strings.Contains(page, purpose) ||
			!strings.Contains(page, "人口基本信息") {
			t.Fatalf("reads: %d\n%.3000s", r.StatusCode, page)
		}
		if strings.Contains(page, number) {
			t.Error("the reads page shows the ID number")
		}
		// Two reads (the lookup and the extract); the refused and out-of-scope calls returned
		// nothing of theirs.
		if k := strings.Count(page, "<td>"+purpose+"</td>"); k != 2 || !strings.Contains(page, "批量导出") {
			t.Errorf("%d reads listed, want 2 (a lookup and an extract)\n%.3000s", k, page)
		}
		// Someone else sees none of it.
		other := client(t)
		registerVerified(t, n, other, "13812340322", "韩晋", seq+1)
		if _, page := get(t, other, n.URL+"/account/reads"); strings.Contains(page, "太原市人力资源和社会保障局") {
			t.Error("another citizen sees the read")
		}
	})
}

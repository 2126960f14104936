package app

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/config"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/seal"
)

// postMultipart posts a multipart form with one file, as the same-origin page would.
func postMultipart(t *testing.T, c *http.Client, base, path string, fields map[string]string, field, name string, content []byte) (*http.Response, string) {
	t.Helper()
	return postApplication(t, c, base, path, formFields(fields), map[string][2]string{field: {name, string(content)}})
}

// getBytes fetches u and fails the test unless it answers 200.
func getBytes(t *testing.T, c *http.Client, u string) []byte {
	t.Helper()
	res, body := get(t, c, u)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%.1500s", u, res.StatusCode, body)
	}
	return []byte(body)
}

// nodeKeyPEM is the node's active signing key, as /api/v1/keys publishes it.
func nodeKeyPEM(t *testing.T, n *node) string {
	t.Helper()
	for _, k := range n.Keys.PublicKeys() {
		if k.ID == n.Keys.ActiveKeyID() {
			return k.PEM
		}
	}
	t.Fatal("no active key")
	return ""
}

// issuerFixture is an issuing department of a node: 太原市行政审批服务管理局 with its officer
// and organisation administrator signed in to the console.
type issuerFixture struct {
	dept                  org.Department
	credit                string
	officer, orgAdmin     authz.Subject
	officerWeb, orgAdminB *http.Client
}

// newIssuer creates the department and its staff; its administrator makes the official seal
// and registers the department as an issuing authority through the console.
func newIssuer(t *testing.T, n *node, prefix string) issuerFixture {
	t.Helper()
	ctx := context.Background()
	admin, _ := n.Org.Subject(ctx, adminID(t, n))
	dep, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: "xzsp", Name: "太原市行政审批服务管理局",
		Kind: "行政审批服务管理局"})
	if err != nil {
		t.Fatal(err)
	}
	f := issuerFixture{dept: dep}
	f.officer, f.officerWeb = staffUser(t, n, admin, prefix+"-officer", dep.ID, authz.RoleOfficer)
	f.orgAdmin, f.orgAdminB = staffUser(t, n, admin, prefix+"-admin", dep.ID, authz.RoleOrgAdmin)
	if f.credit, err = ids.MakeCreditCode('1', '1', "140100", "DG020000"); err != nil {
		t.Fatal(err)
	}
	_, page := get(t, f.orgAdminB, n.URL+"/console/seals")
	if res, body := postMultipart(t, f.orgAdminB, n.URL, "/console/seals", map[string]string{"csrf_token": csrfFrom(t, page), "dept_id": dep.ID},
		"picture", "", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("make seal: %d\n%.2000s", res.StatusCode, body)
	}
	_, page = get(t, f.orgAdminB, n.URL+"/console/licenses")
	if res, body := postForm(t, f.orgAdminB, n.URL, "/console/licenses/issuers", url.Values{"csrf_token": {csrfFrom(t, page)},
		"dept_id": {dep.ID}, "credit_code": {f.credit}, "active": {"1"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("register issuer: %d\n%.2000s", res.StatusCode, body)
	}
	return f
}

// An officer issues a business licence in the console; its QR code's page verifies it, the
// downloaded file verifies offline with `dgov verify` and on the upload page; the enterprise
// sees it in its personal space and lets another department use it, which that department's
// officer does and the holder sees; revoked, it fails verification with the reason.
func TestLicenseLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		iss := newIssuer(t, n, "xz")
		admin, _ := n.Org.Subject(ctx, adminID(t, n))

		// The seal page shows the new seal with its picture, cleaned.
		_, page := get(t, iss.orgAdminB, n.URL+"/console/seals")
		m := regexp.MustCompile(`/console/seals/([0-9a-f-]{36})/picture`).FindStringSubmatch(page)
		if m == nil || !strings.Contains(page, "太原市行政审批服务管理局") {
			t.Fatalf("seal not listed:\n%.2000s", page)
		}
		res, svg := get(t, iss.orgAdminB, n.URL+"/console/seals/"+m[1]+"/picture")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(svg, "<svg") {
			t.Fatalf("seal picture: %d %v %.200s", res.StatusCode, res.Header, svg)
		}

		// The holder: an enterprise whose legal representative is a verified citizen.
		rep := client(t)
		repID := registerVerified(t, n, rep, "13812349001", "冯汾水", 401)
		code18, _ := ids.MakeCreditCode('9', '1', "140105", "MA0XY9B3")
		if _, err := n.Base.AddEntities(ctx, []baselib.EntityInput{{CreditCode: code18, Name: "太原市汾水餐饮有限公司", EntityType: baselib.TypeLLC,
			LegalRepName: "冯汾水", LegalRepID: repID, DivisionCode: "140105", Address: "太原市小店区坞城路1号", RegisteredCapitalFen: 50000000,
			Established: "2021-05-06", Status: baselib.StatusActive}}); err != nil {
			t.Fatal(err)
		}
		_, page = get(t, rep, n.URL+"/account")
		if res, body := postForm(t, rep, n.URL, "/account/enterprises", url.Values{"csrf_token": {csrfFrom(t, page)}, "credit_code": {code18},
			"name": {"太原市汾水餐饮有限公司"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("bind enterprise: %d\n%.1500s", res.StatusCode, body)
		}
		_, page = get(t, rep, n.URL+"/account")
		entID := regexp.MustCompile(`/account/enterprises/([^"/]+)"`).FindStringSubmatch(page)[1]
		if res, _ := postForm(t, rep, n.URL, "/account/act", url.Values{"csrf_token": {csrfFrom(t, page)}, "enterprise_id": {entID}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("act for the enterprise: %d", res.StatusCode)
		}

		// --- issue in the console ---
		_, page = get(t, iss.officerWeb, n.URL+"/console/licenses?issue=YYZZ")
		if !strings.Contains(page, `id="issue-form"`) || !strings.Contains(page, `name="item_legal_rep"`) {
			t.Fatalf("no issuance form:\n%.3000s", page)
		}
		form := url.Values{"csrf_token": {csrfFrom(t, page)}, "type": {"YYZZ"}, "holder_name": {"太原市汾水餐饮有限公司"},
			"holder_id_type": {string(license.IDCreditCode)}, "holder_id": {code18}, "item_entity_type": {"有限责任公司"},
			"item_legal_rep": {"冯汾水"}, "item_established_on": {"2021-05-06"}, "item_address": {"太原市小店区坞城路1号"}, "item_scope": {"餐饮服务"}}
		bad := url.Values{}
		for k, v := range form {
			bad[k] = v
		}
		bad.Set("holder_id", "91140105MA0XY9B3XX") // not a valid credit code
		if res, body := postForm(t, iss.officerWeb, n.URL, "/console/licenses", bad); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `value="冯汾水"`) {
			t.Fatalf("bad holder: %d, the form should come back as typed\n%.2000s", res.StatusCode, body)
		}
		res, body := postForm(t, iss.officerWeb, n.URL, "/console/licenses", form)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("issue: %d\n%.3000s", res.StatusCode, body)
		}
		licPage := location(t, n.URL, res)
		id := strings.TrimPrefix(strings.SplitN(licPage, "?", 2)[0], n.URL+"/console/licenses/")
		if _, err := license.ParseIdentifier(id); err != nil {
			t.Fatalf("identifier %q: %v", id, err)
		}
		_, page = get(t, iss.officerWeb, licPage)
		qrURL := attr(t, page, "verify-link", "href")
		if !strings.HasPrefix(qrURL, n.URL+"/licenses/verify?id=") || !strings.Contains(page, `id="license-qr"`) || !strings.Contains(page, "餐饮服务") {
			t.Fatalf("licence page: QR link %q\n%.3000s", qrURL, page)
		}

		// --- the QR code's page, for anyone ---
		anon := client(t)
		_, page = get(t, anon, qrURL)
		if !strings.Contains(page, "证照真实有效") || !strings.Contains(page, "太原市行政审批服务管理局") || !strings.Contains(page, "营业执照") {
			t.Fatalf("online verification:\n%.3000s", page)
		}
		_, page = get(t, anon, n.URL+"/licenses/verify?id="+url.QueryEscape(id)+"&d=0000000000000000")
		if !strings.Contains(page, "二维码与证照记录不符") {
			t.Fatalf("a forged digest passed:\n%.2000s", page)
		}

		// --- the file, offline: the CLI with the trust list and the node key, and the upload page ---
		file := getBytes(t, iss.officerWeb, n.URL+"/console/licenses/"+id+"/file")
		dir := t.TempDir()
		write := func(name string, b []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		licFile := write("licence"+license.FileExt, file)
		trustFile := write("trust.json", getBytes(t, anon, n.URL+"/api/v1/licenses/trust-list"))
		keyFile := write("node.pem", []byte(nodeKeyPEM(t, n)))
		if code, out, errOut := runCLI(t, nil, "", "verify", licFile, "--trust-list", trustFile, "--public-key", keyFile); code != 0 ||
			!strings.Contains(out, "✓") || !strings.Contains(out, id) {
			t.Fatalf("dgov verify: %d\n%s%s", code, out, errOut)
		}
		tampered := write("tampered"+license.FileExt, bytes.Replace(file, []byte("餐饮服务"), []byte("金融服务"), 1))
		if code, out, errOut := runCLI(t, nil, "", "verify", tampered, "--trust-list", trustFile, "--public-key", keyFile); code == 0 ||
			!strings.Contains(errOut, "内容已被改动") {
			t.Fatalf("a tampered file verified: %d\n%s%s", code, out, errOut)
		}
		_, page = get(t, anon, n.URL+"/licenses/verify")
		if res, body := postMultipart(t, anon, n.URL, "/licenses/verify", map[string]string{"csrf_token": csrfFrom(t, page)}, "file", "licence.dgovlic", file); res.StatusCode != 200 ||
			!strings.Contains(body, "离线核验") || !strings.Contains(body, `class="verify ok" id="verdict"`) {
			t.Fatalf("upload verification: %d\n%.2500s", res.StatusCode, body)
		}

		// --- the holder's space: the licence, its file, and an authorisation to use it ---
		_, page = get(t, rep, n.URL+"/account/licenses")
		if !strings.Contains(page, "/account/licenses/"+id) {
			t.Fatalf("licence not in the holder's space:\n%.3000s", page)
		}
		if f, err := license.ParseFile(getBytes(t, rep, n.URL+"/account/licenses/"+id+"/file")); err != nil || f.Content.ID != id {
			t.Fatalf("holder's file: %v", err)
		}
		scjg, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: "scjg", Name: "太原市市场监督管理局", Kind: "市场监督管理局"})
		if err != nil {
			t.Fatal(err)
		}
		_, scjgWeb := staffUser(t, n, admin, "scjg-user", scjg.ID, authz.RoleOfficer)
		_, page = get(t, rep, n.URL+"/account/licenses/"+id)
		if !strings.Contains(page, `id="license-qr"`) || !strings.Contains(page, scjg.ID) {
			t.Fatalf("holder's licence page:\n%.3000s", page)
		}
		until := time.Now().AddDate(0, 0, 10).Format(time.DateOnly)
		if res, body := postForm(t, rep, n.URL, "/account/licenses/"+id+"/grants", url.Values{"csrf_token": {csrfFrom(t, page)}, "dept_id": {scjg.ID},
			"purpose": {"食品经营许可申请"}, "ref": {"APP-2026-0001"}, "valid_until": {until}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("grant: %d\n%.2000s", res.StatusCode, body)
		}
		_, page = get(t, scjgWeb, n.URL+"/console/licenses")
		if !strings.Contains(page, "/console/licenses/"+id+"/use") {
			t.Fatalf("the authorised department does not see the licence:\n%.3000s", page)
		}
		res, body = postForm(t, scjgWeb, n.URL, "/console/licenses/"+id+"/use", url.Values{"csrf_token": {csrfFrom(t, page)}, "ref": {"APP-2026-0001"}})
		if res.StatusCode != 200 || !strings.Contains(body, `id="used"`) || !strings.Contains(body, "餐饮服务") {
			t.Fatalf("use: %d\n%.2000s", res.StatusCode, body)
		}
		_, page = get(t, rep, n.URL+"/account/licenses")
		if i := strings.Index(page, `id="uses"`); i < 0 || !strings.Contains(page[i:], "太原市市场监督管理局") {
			t.Fatalf("the holder does not see the use:\n%.3000s", page)
		}

		// --- revoked: the QR code's page fails with the reason ---
		_, page = get(t, iss.officerWeb, licPage)
		if res, body := postForm(t, iss.officerWeb, n.URL, "/console/licenses/"+id+"/revoke", url.Values{"csrf_token": {csrfFrom(t, page)},
			"reason": {"以欺骗手段取得登记，依法撤销"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d\n%.2000s", res.StatusCode, body)
		}
		_, page = get(t, anon, qrURL)
		if !strings.Contains(page, "证照已注销") || !strings.Contains(page, "以欺骗手段取得登记") || strings.Contains(page, "证照真实有效") {
			t.Fatalf("a revoked licence verified:\n%.3000s", page)
		}
		acts := strings.Join(auditActions(t, n), " ")
		for _, a := range []string{seal.ActionCreate, license.ActionIssuer, license.ActionIssue, license.ActionGrant, license.ActionUse, license.ActionRevoke} {
			if !strings.Contains(acts, a) {
				t.Errorf("audit log lacks %s", a)
			}
		}
	})
}

// A licence issued by another node (a city's, with its own keys) verifies here from its file
// once that node's trust list is imported, and not before.
func TestLicenseMutualRecognition(t *testing.T) {
	a := startNode(t, "sqlite")
	b := startNode(t, "sqlite", withConfig(func(c *config.Config) { c.NodeDivision = "140100" }))
	ctx := context.Background()
	iss := newIssuer(t, b, "b")
	l, err := b.Licenses.Issue(ctx, iss.officer, license.IssueInput{TypeCode: "SPJYXKZ", IssuerDeptID: iss.dept.ID,
		Holder: license.Holder{Name: "太原市晋阳食品有限公司", IDType: license.IDCreditCode, IDNumber: mustCredit(t, "MA0XY7C5")},
		Items: map[string]string{"permit_no": "JY11401050000001", "legal_rep": "晋阳", "address": "太原市晋源区", "premises": "太原市晋源区晋祠路1号",
			"main_form": "餐饮服务经营者", "scope": "热食类食品制售"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := b.Licenses.DownloadFile(ctx, iss.officer, l.Content.ID)
	if err != nil {
		t.Fatal(err)
	}
	file := f.Encode()

	anon := client(t)
	verifyAt := func() string {
		_, page := get(t, anon, a.URL+"/licenses/verify")
		_, body := postMultipart(t, anon, a.URL, "/licenses/verify", map[string]string{"csrf_token": csrfFrom(t, page)}, "file", f.FileName(), file)
		return body
	}
	if body := verifyAt(); !strings.Contains(body, "不在信任列表") {
		t.Fatalf("another node's licence verified without its trust list:\n%.2000s", body)
	}
	web := client(t)
	login(t, a, web, "admin", testAdminPassword)
	_, page := get(t, web, a.URL+"/console/licenses")
	list := getBytes(t, anon, b.URL+"/api/v1/licenses/trust-list")
	if res, body := postMultipart(t, web, a.URL, "/console/licenses/trust-lists", map[string]string{"csrf_token": csrfFrom(t, page),
		"node_key": nodeKeyPEM(t, a)}, "list", "trust.json", list); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a trust list checked with the wrong node key: %d\n%.1500s", res.StatusCode, body)
	}
	if res, body := postMultipart(t, web, a.URL, "/console/licenses/trust-lists", map[string]string{"csrf_token": csrfFrom(t, page),
		"node_key": nodeKeyPEM(t, b)}, "list", "trust.json", list); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("import trust list: %d\n%.2000s", res.StatusCode, body)
	}
	if body := verifyAt(); !strings.Contains(body, "签名有效") || !strings.Contains(body, "太原市数字政府平台") || !strings.Contains(body, "食品经营许可证") {
		t.Fatalf("another node's licence did not verify with its trust list:\n%.2500s", body)
	}
	if _, page := get(t, web, a.URL+"/console/licenses"); !strings.Contains(page, "140100") {
		t.Fatalf("imported list not shown:\n%.2000s", page)
	}
}

// Rotating a seal in the console ends its key's validity in the trust list (the periodic sync):
// licences it signed still verify, later ones are signed with the new key and verify too.
func TestSealRotationRetiresLicenceKey(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		iss := newIssuer(t, n, "rt")
		issue := func(body string) license.License {
			l, err := n.Licenses.Issue(ctx, iss.officer, license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: iss.dept.ID,
				Holder: license.Holder{Name: "太原市杏花岭商贸有限公司", IDType: license.IDCreditCode, IDNumber: mustCredit(t, body)},
				Items: map[string]string{"entity_type": "有限责任公司", "legal_rep": "杏花", "established_on": "2020-01-02", "address": "太原市杏花岭区",
					"scope": "日用百货销售"}})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		first := issue("MA0XY3E9")
		old, err := n.Seals.Current(ctx, iss.orgAdmin, iss.dept.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		_, page := get(t, iss.orgAdminB, n.URL+"/console/seals/"+old.ID)
		if res, body := postMultipart(t, iss.orgAdminB, n.URL, "/console/seals/"+old.ID+"/rotate", map[string]string{"csrf_token": csrfFrom(t, page)},
			"picture", "", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("rotate: %d\n%.2000s", res.StatusCode, body)
		}
		// The periodic sync may run at the same moment and retire it first.
		if k, err := n.retireEndedSealKeys(ctx); err != nil || k > 1 {
			t.Fatalf("retired %d keys: %v", k, err)
		}
		if k, err := n.retireEndedSealKeys(ctx); err != nil || k != 0 {
			t.Fatalf("a second sync retired %d keys: %v", k, err)
		}
		second := issue("MA0XY4F1")
		list, err := license.ParseTrustList(getBytes(t, client(t), n.URL+"/api/v1/licenses/trust-list"), nodeKeyPEM(t, n))
		if err != nil || len(list.Issuers) != 2 {
			t.Fatalf("trust list: %v %+v", err, list)
		}
		for _, k := range list.Issuers {
			if (k.KeyID == old.KeyID) != (k.ValidUntil != nil) {
				t.Fatalf("key %s: valid until %v (the rotated key is %s)", k.KeyID, k.ValidUntil, old.KeyID)
			}
		}
		for _, l := range []license.License{first, second} {
			if res, err := n.Licenses.VerifyOnline(ctx, l.Content.ID, l.ShortDigest()); err != nil || !res.Valid {
				t.Fatalf("%s after the rotation: %+v %v", l.Content.ID, res, err)
			}
		}
	})
}

func mustCredit(t *testing.T, body string) string {
	t.Helper()
	c, err := ids.MakeCreditCode('9', '1', "140105", body)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A citizen pays an order through the development bank simulator (its pages and callbacks
// over real HTTP on the node): the order is paid once, with a signed receipt; the department
// refunds part of it in the console; reconciliation balances, then finds a planted mismatch;
// a callback with a bad signature is refused with 401.
func TestPaymentThroughSimulator(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		admin, _ := n.Org.Subject(ctx, adminID(t, n))
		ga, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: "ga", Name: "太原市公安局", Kind: "公安"})
		if err != nil {
			t.Fatal(err)
		}
		_, gaWeb := staffUser(t, n, admin, "ga-cashier", ga.ID, authz.RoleOfficer)
		_, auditorWeb := staffUser(t, n, admin, "pay-auditor", ga.ID, authz.RoleAuditor)

		c := client(t)
		registerVerified(t, n, c, "13812349101", "柳晋阳", 411)
		payer := citizenSubject(t, n, "柳晋阳")
		o, err := n.Payments.CreateOrder(ctx, pay.OrderInput{Ref: "application:test-0001", ItemCode: "070110000300", Payer: pay.Payer{Subject: payer, Name: "柳晋阳"},
			Lines: []pay.Line{{Name: "居民身份证工本费", AmountFen: 2000, Basis: "《中华人民共和国居民身份证法》"}}, DeptID: ga.ID, DeptName: ga.Name, Division: "140100"})
		if err != nil {
			t.Fatal(err)
		}

		// The payer's pages: the order, the channel, the simulator's page, back.
		_, page := get(t, c, n.URL+"/account/payments")
		if !strings.Contains(page, o.Code) || !strings.Contains(page, "¥20.00") {
			t.Fatalf("order not listed:\n%.2000s", page)
		}
		_, page = get(t, c, n.URL+"/account/payments/"+o.ID)
		if res, body := postForm(t, c, n.URL, "/account/payments/"+o.ID+"/pay", url.Values{"csrf_token": {csrfFrom(t, page)}, "channel": {"paysim"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("start payment: %d\n%.2000s", res.StatusCode, body)
		}
		_, page = get(t, c, n.URL+"/account/payments/"+o.ID)
		payURL := attr(t, page, "go-pay", "href")
		if !strings.HasPrefix(payURL, n.URL+"/dev/paysim/pay/"+o.Code) || !strings.Contains(page, `id="pay-qr"`) {
			t.Fatalf("no pay link or QR code: %q\n%.2000s", payURL, page)
		}
		_, bank := get(t, c, payURL)
		if !strings.Contains(bank, "确认支付") || !strings.Contains(bank, "20.00") {
			t.Fatalf("simulator page:\n%.1500s", bank)
		}
		confirmOnSimulator(t, n, c, payURL)
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, page = get(t, c, n.URL+"/account/payments/"+o.ID); strings.Contains(page, `id="receipt-link"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the callback did not mark the order paid:\n%.2000s", page)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, page = get(t, c, n.URL+"/account/payments/"+o.ID+"/receipt")
		if !strings.Contains(page, `id="receipt-verified"`) || !strings.Contains(page, "电子签名有效") || !strings.Contains(page, "¥20.00") {
			t.Fatalf("receipt:\n%.2000s", page)
		}
		rc, err := pay.ParseReceipt(getBytes(t, c, n.URL+"/account/payments/"+o.ID+"/receipt?download=1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := pay.VerifyReceipt(rc, nodeKeyPEM(t, n)); err != nil || rc.TotalFen != 2000 {
			t.Fatalf("the downloaded receipt does not verify offline: %v", err)
		}

		// A callback with a bad signature changes nothing and is answered 401.
		paid, _ := n.Payments.Get(ctx, payer, o.ID)
		forged := n.PaySim.NotificationFor(pay.Txn{Kind: pay.TxnRefund, TxnID: "FORGED-1", Code: o.Code, RefundID: "R-FORGED", AmountFen: 2000, At: time.Now()}, "")
		forged.Body = bytes.Replace(forged.Body, []byte("R-FORGED"), []byte("R-FORGEX"), 1)
		req, _ := http.NewRequest("POST", n.URL+"/api/v1/pay/notify/paysim", bytes.NewReader(forged.Body))
		for k, v := range forged.Header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged callback: %v %v", res.StatusCode, err)
		}
		if after, _ := n.Payments.Get(ctx, payer, o.ID); after.Status != pay.StatusPaid || after.RefundedFen != paid.RefundedFen {
			t.Fatalf("a forged callback changed the order: %+v", after)
		}

		// The department sees it and refunds ¥5 in the console (through the simulator, in process).
		_, page = get(t, gaWeb, n.URL+"/console/payments")
		if !strings.Contains(page, o.Code) {
			t.Fatalf("console list:\n%.2000s", page)
		}
		_, page = get(t, gaWeb, n.URL+"/console/payments/"+o.ID)
		if !strings.Contains(page, `id="refund-form"`) || !strings.Contains(page, rc.Number) {
			t.Fatalf("console order page:\n%.3000s", page)
		}
		form := url.Values{"csrf_token": {csrfFrom(t, page)}, "request_id": {attrValue(page, "request_id")}, "amount": {"5.00"}, "reason": {"多收工本费"}}
		for range 2 { // a double submit is one refund
			if res, body := postForm(t, gaWeb, n.URL, "/console/payments/"+o.ID+"/refund", form); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("refund: %d\n%.2000s", res.StatusCode, body)
			}
		}
		if after, _ := n.Payments.Get(ctx, payer, o.ID); after.Status != pay.StatusPartiallyRefunded || after.RefundedFen != 500 {
			t.Fatalf("after the refund: %s, %d fen refunded", after.Status, after.RefundedFen)
		}

		// Reconciliation of the day: balanced; then the bank's statement loses the payment.
		day := time.Now()
		reports, err := n.Payments.Reconcile(ctx, day)
		if err != nil || len(reports) != 1 || !reports[0].Balanced() {
			t.Fatalf("reconcile: %v %+v", err, reports)
		}
		_, page = get(t, auditorWeb, n.URL+"/console/payments/reconciliation")
		if !strings.Contains(page, "账平") {
			t.Fatalf("reconciliation page:\n%.2000s", page)
		}
		n.PaySim.SetFaults(paysimDropPayments())
		if reports, err = n.Payments.Reconcile(ctx, day); err != nil || reports[0].Balanced() {
			t.Fatalf("planted mismatch not found: %v %+v", err, reports)
		}
		_, page = get(t, auditorWeb, n.URL+"/console/payments/reconciliation?channel=paysim&day="+reports[0].Day)
		if !strings.Contains(page, `id="mismatch-count"`) || !strings.Contains(page, "本平台有、渠道无") {
			t.Fatalf("mismatch not shown:\n%.3000s", page)
		}
	})
}

// attrValue is the value of the input named name in page ("" when none).
func attrValue(page, name string) string {
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// The sealing console: an officer seals an official document with the department's seal; the
// download verifies on the verification page, naming the department; changed, it does not.
func TestConsoleSealDocument(t *testing.T) {
	n := startNode(t, "sqlite")
	iss := newIssuer(t, n, "sd")
	_, page := get(t, iss.officerWeb, n.URL+"/console/seals")
	if !strings.Contains(page, `id="seal-document"`) {
		t.Fatalf("no sealing form for an officer:\n%.2000s", page)
	}
	res, doc := postForm(t, iss.officerWeb, n.URL, "/console/seals/document", url.Values{"csrf_token": {csrfFrom(t, page)},
		"title": {"关于同意设立登记的决定"}, "number": {"并审批〔2026〕1号"}, "body": {"经审查，准予设立登记。\n特此决定。"}})
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(doc, "application/ses-signature") {
		t.Fatalf("seal document: %d %v\n%.1000s", res.StatusCode, res.Header, doc)
	}
	verify := func(content []byte) string {
		_, page := get(t, iss.officerWeb, n.URL+"/console/seals")
		_, body := postMultipart(t, iss.officerWeb, n.URL, "/console/seals/verify", map[string]string{"csrf_token": csrfFrom(t, page)}, "document", "decision.html", content)
		return body
	}
	if body := verify([]byte(doc)); !strings.Contains(body, "签章有效，文档未被改动") || !strings.Contains(body, "太原市行政审批服务管理局") {
		t.Fatalf("sealed document does not verify:\n%.2500s", body)
	}
	if body := verify([]byte(strings.Replace(doc, "准予", "不予", 1))); !strings.Contains(body, "签章验证未通过") {
		t.Fatalf("a changed document verified:\n%.2500s", body)
	}
}

// paysimDropPayments makes the simulator's statements lose their payments (a planted mismatch).
func paysimDropPayments() paysim.Faults {
	return paysim.Faults{Statement: func(_ string, lines []pay.StatementLine) []pay.StatementLine {
		var kept []pay.StatementLine
		for _, l := range lines {
			if l.Kind != pay.TxnPay {
				kept = append(kept, l)
			}
		}
		return kept
	}}
}

// The journeys on a phone, in a real headless Chromium: a citizen pays a fee through the
// simulated bank and comes back to the electronic receipt; anyone scanning a licence's QR code
// sees it verified, and after revocation sees it fail with the reason.
func TestBrowserPayAndVerifyOnPhone(t *testing.T) {
	chromePath(t)
	n := startNode(t, "sqlite")
	ctx0 := context.Background()
	iss := newIssuer(t, n, "ph")
	l, err := n.Licenses.Issue(ctx0, iss.officer, license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: iss.dept.ID,
		Holder: license.Holder{Name: "太原市迎泽餐饮有限公司", IDType: license.IDCreditCode, IDNumber: mustCredit(t, "MA0XY5D7")},
		Items: map[string]string{"entity_type": "有限责任公司", "legal_rep": "李迎泽", "established_on": "2022-03-04", "address": "太原市迎泽区迎泽大街1号",
			"scope": "餐饮服务；食品销售"}})
	if err != nil {
		t.Fatal(err)
	}
	web := client(t)
	registerVerified(t, n, web, "13812349201", "王并州", 421)
	payer := citizenSubject(t, n, "王并州")
	o, err := n.Payments.CreateOrder(ctx0, pay.OrderInput{Ref: "application:phone-1", ItemCode: "070110000300", Payer: pay.Payer{Subject: payer, Name: "王并州"},
		Lines: []pay.Line{{Name: "居民身份证工本费", AmountFen: 2000}}, DeptID: iss.dept.ID, DeptName: iss.dept.Name, Division: "140100"})
	if err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, 390, 844)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(n.URL+"/login?next="+url.QueryEscape("/account/payments/"+o.ID)),
		chromedp.WaitVisible(chromedp.ID("login-name")),
		chromedp.SendKeys(chromedp.ID("login-name"), "13812349201"),
		chromedp.SendKeys(chromedp.ID("password"), "Fenhe#River2026"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("start-pay")),
		chromedp.Click(chromedp.ID("start-pay")),
		chromedp.WaitVisible(chromedp.ID("go-pay")),
	); err != nil {
		t.Fatalf("start the payment: %v", err)
	}
	saveScreenshot(t, "portal-payment-order-phone.png", read(t, ctx, chromedp.FullScreenshot(100)))
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("go-pay")),
		chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("message")), // the bank's answer, not the page before it
	); err != nil {
		t.Fatalf("pay at the bank: %v", err)
	}
	if msg := read(t, ctx, chromedp.Text(chromedp.ID("message"))); !strings.Contains(msg, "支付成功") {
		t.Fatalf("the bank says %q", msg)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("return")), chromedp.WaitVisible(chromedp.ID("payment-code"))); err != nil {
		t.Fatalf("back from the bank: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("payment-code"))); err != nil {
			t.Fatal(err)
		}
		if links := read(t, ctx, chromedp.Nodes(chromedp.CSS("#receipt-link"), chromedp.AtLeast(0))); len(links) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the order was not marked paid")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("receipt-link")), chromedp.WaitVisible(chromedp.ID("receipt-verified"))); err != nil {
		t.Fatalf("open the receipt: %v", err)
	}
	if v := read(t, ctx, chromedp.Text(chromedp.ID("receipt-verified"))); v != "电子签名有效" {
		t.Fatalf("receipt shows %q", v)
	}
	saveScreenshot(t, "portal-receipt-phone.png", read(t, ctx, chromedp.FullScreenshot(100)))

	// The QR code's page, on a stranger's phone.
	scan := browser(t, 390, 844)
	qr := n.Licenses.VerifyURL(l.Content.ID, l.ShortDigest())
	if err := chromedp.Do(scan, chromedp.Navigate(qr), chromedp.WaitVisible(chromedp.ID("verdict-text"))); err != nil {
		t.Fatalf("scan: %v", err)
	}
	if v := read(t, scan, chromedp.Text(chromedp.ID("verdict-text"))); v != "证照真实有效" {
		t.Fatalf("scanned licence shows %q", v)
	}
	saveScreenshot(t, "portal-license-verify-phone.png", read(t, scan, chromedp.FullScreenshot(100)))
	if _, err := n.Licenses.Revoke(ctx0, iss.officer, l.Content.ID, "营业执照被依法吊销"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(scan, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("revoke-reason"))); err != nil {
		t.Fatalf("scan after revocation: %v", err)
	}
	if v := read(t, scan, chromedp.Text(chromedp.ID("verdict-text"))); v != "证照已注销" {
		t.Fatalf("revoked licence shows %q", v)
	}
	saveScreenshot(t, "portal-license-revoked-phone.png", read(t, scan, chromedp.FullScreenshot(100)))
}

// Online verification as a scanned QR code asks for it, through the whole HTTP stack of a node
// (request id, security headers, logging, metrics, rate limit, CSRF, sessions, the page
// rendered), on SQLite: what one node answers to phones scanning licences.
func BenchmarkLicenseVerifyPage(b *testing.B) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = b.TempDir()
	cfg.RateLimit, cfg.RateBurst = 1e9, 1e9
	a, err := Open(ctx, cfg, discardLogger(), Options{Argon: cheapArgon})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	st, err := a.Org.BootstrapAdmin(ctx, "admin", "系统管理员", testAdminPassword)
	if err != nil {
		b.Fatal(err)
	}
	admin, _ := a.Org.Subject(ctx, st.ID)
	dep, err := a.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: "xzsp", Name: "太原市行政审批服务管理局", Kind: "行政审批服务管理局"})
	if err != nil {
		b.Fatal(err)
	}
	sys := authz.Subject{Kind: authz.System, ID: "bench", Division: "140000", Roles: []authz.Role{authz.RoleOrgAdmin, authz.RoleOfficer}}
	credit, _ := ids.MakeCreditCode('1', '1', "140100", "DG020000")
	holder, _ := ids.MakeCreditCode('9', '1', "140105", "MA0XY5D7")
	if _, err := a.Seals.Create(ctx, sys, seal.CreateInput{DeptID: dep.ID}); err != nil {
		b.Fatal(err)
	}
	if _, err := a.Licenses.RegisterIssuer(ctx, sys, license.Issuer{DeptID: dep.ID, Name: dep.Name, CreditCode: credit, Division: "140100",
		Kind: dep.Kind, Active: true}); err != nil {
		b.Fatal(err)
	}
	l, err := a.Licenses.Issue(ctx, sys, license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: dep.ID,
		Holder: license.Holder{Name: "太原市迎泽餐饮有限公司", IDType: license.IDCreditCode, IDNumber: holder},
		Items:  map[string]string{"entity_type": "有限责任公司", "legal_rep": "李迎泽", "established_on": "2022-03-04", "address": "太原市迎泽区", "scope": "餐饮服务"}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := a.Handler()
	if err != nil {
		b.Fatal(err)
	}
	target := strings.TrimPrefix(a.Licenses.VerifyURL(l.Content.ID, l.ShortDigest()), cfg.PublicURL())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			srv.Handler.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "证照真实有效") {
				b.Fatalf("verify page: %d", rec.Code)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

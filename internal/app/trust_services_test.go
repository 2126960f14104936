package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/seal"
	"github.com/dgov/dgov/internal/workflow"
)

// itemPropertyTransfer is 不动产登记（二手房转移登记） of the Shanxi pack: ¥90 of fees, handled by
// the county's 自然资源 department in four steps (受理, 审查, 登簿, 缮证发证), resulting in a
// 不动产权证书 and taking one in place of the seller's paper title.
const itemPropertyTransfer = "070051000301"

// trustDepartment is the 自然资源 department that handles property transfers from 小店区 and
// issues their licences: registered as an issuing authority with an official seal (as the
// demo's LoadTrust does for every such department), and its officer.
type trustDepartment struct {
	dept       org.Department
	officer    authz.Subject
	officerWeb *http.Client
}

func newTrustDepartment(t *testing.T, n *node) trustDepartment {
	t.Helper()
	ctx := t.Context()
	admin, err := n.Org.Subject(ctx, adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: "zr", Name: "太原市规划和自然资源局",
		Kind: "自然资源"})
	if err != nil {
		t.Fatal(err)
	}
	sys := authz.Subject{Kind: authz.System, ID: "trust-test", Division: n.Cfg.NodeDivision, Roles: []authz.Role{authz.RoleOrgAdmin}}
	if _, err := n.Seals.Create(ctx, sys, seal.CreateInput{DeptID: dep.ID}); err != nil {
		t.Fatalf("seal: %v", err)
	}
	credit, err := ids.MakeCreditCode('1', '1', "140100", "DG060000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Licenses.RegisterIssuer(ctx, sys, license.Issuer{DeptID: dep.ID, Name: dep.Name, CreditCode: credit, Division: "140100",
		Kind: dep.Kind, Active: true}); err != nil {
		t.Fatalf("register issuer: %v", err)
	}
	d := trustDepartment{dept: dep}
	d.officer, d.officerWeb = staffUser(t, n, admin, "ty-zr", dep.ID, authz.RoleOfficer)
	return d
}

// propertyValues are a valid transfer form of buyer (the applicant) and a seller.
func propertyValues(buyer, number, mobile string) [][2]string {
	seller := ids.MakeResident("140105", time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), 77, false)
	return [][2]string{{"buyer_name", buyer}, {"buyer_id_number", number}, {"phone", mobile}, {"seller_name", "王出卖"},
		{"seller_id_number", seller}, {"seller_phone", "13900001111"}, {"title_no", "晋（2021）太原市不动产权第0012345号"},
		{"location", "太原市小店区坞城路 88 号 3 单元 502 室"}, {"division", "140105"}, {"floor_area", "89"}, {"price", "1200000"},
		{"contract_no", "WQ2026-000123"}, {"ownership", "sole"}, {"mortgage", "no"}}
}

// citizenSubject is the verified citizen named name, as the services see them.
func citizenSubject(t *testing.T, n *node, name string) authz.Subject {
	t.Helper()
	var accID string
	if err := n.DB.QueryRow(t.Context(), `SELECT id FROM accounts WHERE name = ?`, name).Scan(&accID); err != nil {
		t.Fatal(err)
	}
	sub, err := n.Identity.Subject(t.Context(), accID, "")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// payOnSimulator pays order id as the payer's browser would over HTTP: choose the simulated
// bank, confirm on its page; the bank's signed callback marks the order paid.
func payOnSimulator(t *testing.T, n *node, c *http.Client, orderID string) {
	t.Helper()
	_, page := get(t, c, n.URL+"/account/payments/"+orderID)
	if res, body := postForm(t, c, n.URL, "/account/payments/"+orderID+"/pay", url.Values{"csrf_token": {csrfFrom(t, page)}, "channel": {"paysim"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("start payment: %d\n%.2000s", res.StatusCode, body)
	}
	_, page = get(t, c, n.URL+"/account/payments/"+orderID)
	confirmOnSimulator(t, n, c, attr(t, page, "go-pay", "href"))
}

// confirmOnSimulator confirms the payment on the simulated bank's page at payURL.
func confirmOnSimulator(t *testing.T, n *node, c *http.Client, payURL string) {
	t.Helper()
	req, _ := http.NewRequest("POST", payURL, strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", n.URL)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "支付成功") {
		t.Fatalf("pay at the simulator: %d\n%.1500s", res.StatusCode, b)
	}
}

// A fee-bearing application on both databases: the order is raised with the application and
// the decision waits for the payment; paid through the simulated bank, the applicant is told;
// approved, the licence is issued by the handling department exactly once, shows in the
// holder's space and on the application, and verifies by its QR link; a second application
// uses it in place of the paper title, the officer sees it verified and the holder the use.
func TestTrustServicesFeeAndLicence(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		zr := newTrustDepartment(t, n)
		c := client(t)
		const mobile, name = "13812349501", "郭晋源"
		number := registerVerified(t, n, c, mobile, name, 451)
		citizen := citizenSubject(t, n, name)

		// --- apply: the order is raised, the application waits for it ---
		_, page := get(t, c, n.URL+"/services/"+itemPropertyTransfer+"/apply")
		mustContain(t, "apply page", page, `name="material.title"`)
		if strings.Contains(page, `name="material.title.licence"`) {
			t.Fatal("a licence is offered before the citizen holds one")
		}
		fields := append([][2]string{{"csrf_token", csrfFrom(t, page)}, {"apply.division", "140105"}}, propertyValues(name, number, mobile)...)
		res, page := postApplication(t, c, n.URL, "/services/"+itemPropertyTransfer+"/apply", fields, map[string][2]string{
			"material.application": {"申请书.pdf", pdfBytes("application")}, "material.title": {"旧房本.pdf", pdfBytes("old title")}})
		appID := applicationIDFrom(t, res, page)
		_, page = get(t, c, n.URL+"/account/applications/"+appID)
		mustContain(t, "unpaid application", page, `id="payment"`, `id="to-pay"`, "待缴费", "¥90.00", `id="pay"`)
		det, err := n.Applications.Get(ctx, citizen, appID)
		if err != nil {
			t.Fatal(err)
		}
		if det.Payment == nil || det.Payment.TotalFen != 9000 || det.Payment.Paid || !det.Payment.Open {
			t.Fatalf("payment of the application: %+v", det.Payment)
		}
		orderID := det.Payment.OrderID
		if href := attr(t, page, "pay", "href"); href != "/account/payments/"+orderID {
			t.Fatalf("pay link %q", href)
		}
		// The submitted event raises it again: the same order, no second one.
		if o, ok, err := n.Applications.FeeOrderOf(ctx, appID); err != nil || !ok {
			t.Fatalf("fee order: %v %v", ok, err)
		} else if p, err := (serviceTrust{n.App}).RaiseOrder(ctx, o); err != nil || p.OrderID != orderID {
			t.Fatalf("raised again: %+v %v", p, err)
		}

		// --- the officers pass 受理 and 审查; 登簿 is refused while unpaid ---
		caseID := det.CaseID
		officerActs(t, n, zr.officer, caseID, workflow.Decision{Outcome: workflow.Approve, Comment: "予以受理"})
		officerActs(t, n, zr.officer, caseID, workflow.Decision{Outcome: workflow.Approve, Comment: "审查通过"})
		if _, err := n.Applications.Decide(ctx, zr.officer, caseID, workflow.Decision{Outcome: workflow.Approve}); !errors.Is(err, govservice.ErrUnpaid) {
			t.Fatalf("approval while unpaid: %v", err)
		}
		if _, err := n.Workflow.Claim(ctx, zr.officer, caseID); err != nil {
			t.Fatal(err)
		}
		_, page = get(t, zr.officerWeb, n.URL+"/console/cases/"+caseID)
		mustContain(t, "case unpaid", page, `id="case-payment" data-paid="false"`, "¥90.00")
		res, body := postForm(t, zr.officerWeb, n.URL, "/console/cases/"+caseID+"/approve", url.Values{"csrf_token": {csrfFrom(t, page)},
			"version": {attrValue(page, "version")}, "comment": {"准予登簿"}})
		if res.StatusCode != http.StatusConflict || !strings.Contains(body, "尚未缴纳") {
			t.Fatalf("console approval while unpaid: %d\n%.2000s", res.StatusCode, body)
		}
		if cs, _ := n.Workflow.Get(ctx, zr.officer, caseID); cs.StepIndex != 2 || cs.State == workflow.StateClosed {
			t.Fatalf("the refused approval moved the case: step %d, %s", cs.StepIndex, cs.State)
		}

		// --- paid through the simulated bank: the applicant is told ---
		payOnSimulator(t, n, c, orderID)
		waitFor(t, "the paid notice", func() bool {
			_, p := get(t, c, n.URL+"/account/messages")
			return strings.Contains(p, "缴费成功") && strings.Contains(p, "90.00")
		})
		_, page = get(t, c, n.URL+"/account/applications/"+appID)
		mustContain(t, "paid application", page, `id="payment-link"`)
		if strings.Contains(page, `id="to-pay"`) {
			t.Fatal("a paid application still asks to pay")
		}

		// --- approved through the last steps: the licence, once ---
		_, page = get(t, zr.officerWeb, n.URL+"/console/cases/"+caseID)
		mustContain(t, "case paid", page, `id="case-payment" data-paid="true"`)
		if res, body := postForm(t, zr.officerWeb, n.URL, "/console/cases/"+caseID+"/approve", url.Values{"csrf_token": {csrfFrom(t, page)},
			"version": {attrValue(page, "version")}, "comment": {"准予登簿"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("console approval once paid: %d\n%.2000s", res.StatusCode, body)
		}
		cs := officerActs(t, n, zr.officer, caseID, workflow.Decision{Outcome: workflow.Approve, Comment: "缮证发证"})
		if cs.State != workflow.StateClosed || cs.Outcome != workflow.OutcomeApproved {
			t.Fatalf("case after the last step: %s %s", cs.State, cs.Outcome)
		}
		var mine []license.Summary
		waitFor(t, "the licence", func() bool {
			mine, err = n.Licenses.Mine(ctx, citizen)
			return err == nil && len(mine) > 0
		})
		lic := mine[0]
		if lic.TypeCode != "BDCQZS" || lic.IssuerName != zr.dept.Name || lic.Status != license.StatusValid {
			t.Fatalf("issued licence: %+v", lic)
		}
		full, err := n.Licenses.Get(ctx, citizen, lic.ID)
		if err != nil {
			t.Fatal(err)
		}
		items := map[string]string{}
		for _, it := range full.Content.Items {
			items[it.Key] = it.Value
		}
		if items["cert_no"] != det.Number || items["location"] != "太原市小店区坞城路 88 号 3 单元 502 室" || items["area"] != "89" ||
			items["co_ownership"] != "sole" || items["usage"] != "住宅" || full.Content.Holder.Name != name {
			t.Fatalf("licence items: %v, holder %+v", items, full.Content.Holder)
		}
		waitFor(t, "the licence notice", func() bool {
			_, p := get(t, c, n.URL+"/account/messages")
			return strings.Contains(p, "电子证照已签发")
		})

		// Re-delivered, the closing event issues nothing more and tells nobody again.
		closed := closingEvent(t, n, caseID)
		for range 2 {
			if err := n.onServiceCaseClosed(ctx, closed); err != nil {
				t.Fatalf("re-delivery: %v", err)
			}
		}
		if again, issued, err := n.issueApplicationLicence(ctx, appID); err != nil || !issued || again.ID != lic.ID {
			t.Fatalf("a second issuance: %+v %v %v", again, issued, err)
		}
		if mine, _ := n.Licenses.Mine(ctx, citizen); len(mine) != 1 {
			t.Fatalf("%d licences after re-delivery", len(mine))
		}
		_, page = get(t, c, n.URL+"/account/messages")
		if k := strings.Count(page, "电子证照已签发"); k != 1 {
			t.Fatalf("%d licence notices", k)
		}

		// In the holder's space and on the application; its QR link verifies.
		_, page = get(t, c, n.URL+"/account/licenses")
		mustContain(t, "my licences", page, "/account/licenses/"+lic.ID, "不动产权证书")
		_, page = get(t, c, n.URL+"/account/applications/"+appID)
		mustContain(t, "approved application", page, `id="issued-licence"`, lic.ID)
		if href := attr(t, page, "licence-link", "href"); href != "/account/licenses/"+url.PathEscape(lic.ID) {
			t.Fatalf("licence link %q", href)
		}
		_, page = get(t, zr.officerWeb, n.URL+"/console/cases/"+caseID)
		mustContain(t, "closed case", page, `id="case-licence"`, lic.ID)
		_, page = get(t, client(t), n.Licenses.VerifyURL(full.Content.ID, full.ShortDigest()))
		mustContain(t, "QR verification", page, "证照真实有效", zr.dept.Name)

		// --- a second application uses the licence in place of the paper title ---
		_, page = get(t, c, n.URL+"/services/"+itemPropertyTransfer+"/apply")
		mustContain(t, "licence offered", page, `name="material.title.licence" value="`+lic.ID+`"`)
		fields = append([][2]string{{"csrf_token", csrfFrom(t, page)}, {"apply.division", "140105"}, {"material.title.licence", lic.ID}},
			propertyValues(name, number, mobile)...)
		// A licence that is not the applicant's is refused, with the form kept.
		bad := append([][2]string{{"csrf_token", csrfFrom(t, page)}, {"apply.division", "140105"}, {"material.title.licence", "1.2.156.3005.2.BDCQZS.0.0.1.X"}},
			propertyValues(name, number, mobile)...)
		if res, body := postApplication(t, c, n.URL, "/services/"+itemPropertyTransfer+"/apply", bad, map[string][2]string{
			"material.application": {"申请书.pdf", pdfBytes("application")}}); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("someone else's licence: %d\n%.2000s", res.StatusCode, body)
		}
		res, page = postApplication(t, c, n.URL, "/services/"+itemPropertyTransfer+"/apply", fields, map[string][2]string{
			"material.application": {"申请书.pdf", pdfBytes("application")}})
		second := applicationIDFrom(t, res, page)
		det2, err := n.Applications.Get(ctx, citizen, second)
		if err != nil {
			t.Fatal(err)
		}
		var used bool
		for _, m := range det2.Materials {
			if m.Key == "title" {
				used = m.Source == govservice.SourceLicense && m.LicenseID == lic.ID && m.File == nil
			}
		}
		if !used {
			t.Fatalf("the title is not the licence: %+v", det2.Materials)
		}
		// Each view of the case reads the verified licence; only the first records the use.
		for _, view := range []string{"first view", "second view"} {
			_, page = get(t, zr.officerWeb, n.URL+"/console/cases/"+det2.CaseID)
			mustContain(t, "verified licence in the case, "+view, page, `class="material-licence" data-verified="true"`, "电子证照已核验", lic.ID, name)
		}
		_, page = get(t, c, n.URL+"/account/licenses")
		i := strings.Index(page, `id="uses"`)
		if i < 0 || !strings.Contains(page[i:], zr.dept.Name) || !strings.Contains(page[i:], "application:"+second) && !strings.Contains(page[i:], det2.Number) {
			t.Fatalf("the holder does not see the use:\n%.4000s", page)
		}
		if uses, err := n.Licenses.Uses(ctx, citizen); err != nil || len(uses) != 1 || uses[0].Ref != govservice.RefPrefix+second {
			t.Fatalf("uses: %+v %v", uses, err)
		}
		audited := 0
		for _, a := range auditActions(t, n) {
			if a == license.ActionUse {
				audited++
			}
		}
		if audited != 1 {
			t.Errorf("the use is audited %d times, want once", audited)
		}

		// Refused, the second application's unpaid order closes: nobody pays for nothing.
		if det2.Payment == nil || !det2.Payment.Open {
			t.Fatalf("second application's order: %+v", det2.Payment)
		}
		if _, err := n.Workflow.Claim(ctx, zr.officer, det2.CaseID); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Applications.Decide(ctx, zr.officer, det2.CaseID, workflow.Decision{Outcome: workflow.Reject, Comment: "不符合登记条件"}); err != nil {
			t.Fatalf("a refusal while unpaid: %v", err)
		}
		waitFor(t, "the order closed", func() bool {
			p, err := (serviceTrust{n.App}).Payment(ctx, govservice.RefPrefix+second)
			return err == nil && p != nil && !p.Open && !p.Paid
		})
	})
}

// closingEvent is the case's closing event as the outbox relayed it.
func closingEvent(t *testing.T, n *node, caseID string) bus.Event {
	t.Helper()
	rows, err := n.DB.Query(t.Context(), `SELECT id, subject, payload FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var subjects []string
	for rows.Next() {
		var ev bus.Event
		var payload []byte
		if err := rows.Scan(&ev.ID, &ev.Subject, &payload); err != nil {
			t.Fatal(err)
		}
		ev.Data = payload
		var p workflow.EventPayload
		if ev.Subject == workflow.ActionClosed.Subject() && ev.Decode(&p) == nil && p.CaseID == caseID {
			return ev
		}
		subjects = append(subjects, ev.Subject)
	}
	t.Fatalf("no closing event of %s in the outbox: %v", caseID, subjects)
	return bus.Event{}
}

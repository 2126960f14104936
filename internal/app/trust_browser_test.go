package app

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dgov/dgov/internal/workflow"
)

// The done-when of trusted services, on a phone in a real headless Chromium: a citizen applies
// for a fee-bearing item (二手房转移登记, ¥90), pays on the simulated bank's page and comes back;
// the officers approve (the decision waits for the payment); the e-licence appears in the
// citizen's space and a stranger scanning its QR code sees it verified; the officer revokes it
// in the console and the same scan then fails with the reason.
func TestBrowserTrustServicesOnPhone(t *testing.T) {
	chromePath(t)
	n := startNode(t, "sqlite")
	ctx0 := context.Background()
	zr := newTrustDepartment(t, n)
	const mobile, name = "13812349601", "韩晋祠"
	number := registerVerified(t, n, client(t), mobile, name, 461)
	citizen := citizenSubject(t, n, name)
	form := propertyValues(name, number, mobile)
	pdf := filepath.Join(t.TempDir(), "application.pdf")
	if err := os.WriteFile(pdf, []byte(pdfBytes("application")), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, 390, 844)
	shot := func(c context.Context, name string) {
		saveScreenshot(t, "trust-"+name+".png", read(t, c, chromedp.FullScreenshot(100)))
	}
	step := func(c context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Sign in on the way to the form; fill in what is not prefilled; submit.
	step(ctx, "sign in",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(n.URL+"/login?next="+url.QueryEscape("/services/"+itemPropertyTransfer+"/apply")),
		chromedp.WaitVisible(chromedp.ID("login-name")),
		chromedp.SendKeys(chromedp.ID("login-name"), mobile),
		chromedp.SendKeys(chromedp.ID("password"), "Fenhe#River2026"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("apply-form")),
	)
	values := map[string]string{}
	for _, f := range form {
		values[f[0]] = f[1]
	}
	js, _ := json.Marshal(values)
	// Typed values for text, number and select fields; the radio buttons are clicked.
	if missing := read(t, ctx, chromedp.Evaluate[[]string](`(function(v){
		var missing = [];
		Object.keys(v).forEach(function(k){
			var els = document.querySelectorAll('#apply-form [name="'+k+'"]');
			if (!els.length) { missing.push(k); return; }
			els.forEach(function(e){
				if (e.type === "radio") { if (e.value === v[k]) { e.click(); } return; }
				if (e.value === "") { e.value = v[k]; e.dispatchEvent(new Event("input", {bubbles:true})); e.dispatchEvent(new Event("change", {bubbles:true})); }
			});
		});
		return missing;
	})(`+string(js)+`)`)); len(missing) > 0 {
		t.Fatalf("form fields not on the page: %v", missing)
	}
	step(ctx, "attach the application form", chromedp.SetUploadFiles(chromedp.ID("m-application"), []string{pdf}))
	shot(ctx, "apply")
	step(ctx, "submit", chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.CSS(`#status[data-status="submitted"]`)))
	m := regexp.MustCompile(`/account/applications/([0-9a-f-]+)`).FindStringSubmatch(read(t, ctx, chromedp.Location()))
	if m == nil {
		t.Fatal("not on the application's page after submitting")
	}
	appID := m[1]
	if got := read(t, ctx, chromedp.Text(chromedp.ID("to-pay"))); got != "待缴费" {
		t.Fatalf("payment badge %q", got)
	}
	shot(ctx, "to-pay")

	// Pay on the simulated bank's page and come back to the order.
	step(ctx, "open the order", chromedp.Click(chromedp.ID("pay")), chromedp.WaitVisible(chromedp.ID("start-pay")))
	if got := read(t, ctx, chromedp.Text(chromedp.ID("order-total"))); !strings.Contains(got, "90.00") {
		t.Fatalf("order total %q", got)
	}
	step(ctx, "pay at the bank",
		chromedp.Click(chromedp.ID("start-pay")),
		chromedp.WaitVisible(chromedp.ID("go-pay")),
		chromedp.Click(chromedp.ID("go-pay")),
		chromedp.WaitVisible(chromedp.ID("confirm")),
	)
	shot(ctx, "bank")
	step(ctx, "confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("message")))
	if msg := read(t, ctx, chromedp.Text(chromedp.ID("message"))); !strings.Contains(msg, "支付成功") {
		t.Fatalf("the bank says %q", msg)
	}
	step(ctx, "back from the bank", chromedp.Click(chromedp.ID("return")), chromedp.WaitVisible(chromedp.ID("payment-code")))
	waitFor(t, "the order paid", func() bool {
		step(ctx, "reload the order", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("payment-code")))
		return len(read(t, ctx, chromedp.Nodes(chromedp.CSS("#receipt-link"), chromedp.AtLeast(0)))) > 0
	})
	shot(ctx, "paid")

	// The officers pass the four steps; the decision (登簿) goes through the applications'
	// guard, which the payment satisfies.
	det, err := n.Applications.Get(ctx0, zr.officer, appID)
	if err != nil {
		t.Fatal(err)
	}
	for {
		cs, err := n.Workflow.Get(ctx0, zr.officer, det.CaseID)
		if err != nil {
			t.Fatal(err)
		}
		if cs.State == workflow.StateClosed {
			break
		}
		if cs.ClaimedBy == "" {
			if _, err := n.Workflow.Claim(ctx0, zr.officer, det.CaseID); err != nil {
				t.Fatalf("claim: %v", err)
			}
		}
		if _, err := n.Applications.Decide(ctx0, zr.officer, det.CaseID, workflow.Decision{Outcome: workflow.Approve, Comment: "同意"}); err != nil {
			t.Fatalf("approve step %d: %v", cs.StepIndex, err)
		}
	}

	// The licence appears on the application and in the citizen's space.
	step(ctx, "the application", chromedp.Navigate(n.URL+"/account/applications/"+appID), chromedp.WaitVisible(chromedp.ID("status")))
	waitFor(t, "the issued licence", func() bool {
		step(ctx, "reload the application", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("status")))
		return len(read(t, ctx, chromedp.Nodes(chromedp.CSS("#issued-licence"), chromedp.AtLeast(0)))) > 0
	})
	shot(ctx, "issued")
	step(ctx, "my licence", chromedp.Click(chromedp.ID("licence-link")), chromedp.WaitVisible(chromedp.ID("license-qr")))
	shot(ctx, "licence")
	qr := read(t, ctx, chromedp.AttributeValue(chromedp.ID("verify-link"), "href"))
	if !qr.Exists || !strings.HasPrefix(qr.Value, n.URL+"/licenses/verify?id=") {
		t.Fatalf("verification link %q", qr.Value)
	}
	step(ctx, "my licences", chromedp.Navigate(n.URL+"/account/licenses"), chromedp.WaitVisible(chromedp.ID("uses")))
	mine, err := n.Licenses.Mine(ctx0, citizen)
	if err != nil || len(mine) != 1 {
		t.Fatalf("licences of the citizen: %d %v", len(mine), err)
	}
	licID := mine[0].ID
	if n := read(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/account/licenses/`+url.PathEscape(licID)+`"]').length`)); n == 0 {
		t.Fatal("the licence is not listed in the citizen's space")
	}

	// A stranger scans the QR code: valid.
	scan := browser(t, 390, 844)
	step(scan, "scan", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(qr.Value), chromedp.WaitVisible(chromedp.ID("verdict-text")))
	if v := read(t, scan, chromedp.Text(chromedp.ID("verdict-text"))); v != "证照真实有效" {
		t.Fatalf("scanned licence shows %q", v)
	}
	shot(scan, "verify-valid")

	// The officer revokes it in the console.
	octx := browser(t, 1280, 900)
	step(octx, "officer signs in",
		chromedp.Navigate(n.URL+"/console/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ty-zr"),
		chromedp.SendKeys(chromedp.ID("password"), "Changed#Pass2026x"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(".stats")),
		chromedp.Navigate(n.URL+"/console/licenses/"+url.PathEscape(licID)),
		chromedp.WaitVisible(chromedp.ID("revoke-submit")),
	)
	read(t, octx, chromedp.Evaluate[bool](`(window.confirm = function(){ return true; }, true)`))
	step(octx, "revoke",
		chromedp.SendKeys(chromedp.CSS(`#revoke textarea[name="reason"]`), "登记错误，依法更正后重新发证"),
		chromedp.Click(chromedp.ID("revoke-submit")),
	)
	waitFor(t, "the revocation", func() bool {
		l, err := n.Licenses.Get(ctx0, zr.officer, licID)
		return err == nil && l.Status == "revoked"
	})
	shot(octx, "console-revoked")

	// The same scan now fails, with the reason.
	step(scan, "scan after revocation", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("revoke-reason")))
	if v := read(t, scan, chromedp.Text(chromedp.ID("verdict-text"))); v != "证照已注销" {
		t.Fatalf("revoked licence shows %q", v)
	}
	if r := read(t, scan, chromedp.Text(chromedp.ID("revoke-reason"))); !strings.Contains(r, "登记错误") {
		t.Fatalf("revocation reason %q", r)
	}
	shot(scan, "verify-revoked")
}

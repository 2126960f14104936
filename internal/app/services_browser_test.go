package app

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The whole citizen journey of online services in a real headless Chromium on a phone-sized
// screen: search, read the guide, sign in, fill in the prefilled form, upload a material,
// submit; the officer asks for a correction, the citizen answers it with a new file; the
// officers approve through the steps in the console; the citizen sees the result and rates
// the service.
func TestBrowserServicesJourney(t *testing.T) {
	chromePath(t)
	n := startNode(t, "sqlite", withClock(newTestClock()))
	officer, _ := serviceDepartment(t, n, "scjg", "太原市市场监督管理局", "市场监督管理局")
	const mobile, name = "13811110021", "周晋阳"
	number := registerVerified(t, n, client(t), mobile, name, 321)

	file := fileWriter(t, t.TempDir())
	idCard, lease, signedLease := file("id-card.pdf", pdfBytes("id")), file("lease.pdf", pdfBytes("lease v1")), file("lease-signed.pdf", pdfBytes("lease v2"))

	ctx := browser(t, 390, 844)
	shot := func(name string) {
		saveScreenshot(t, "services-"+name+".png", read(t, ctx, chromedp.FullScreenshot(100)))
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	guideLink := chromedp.CSS(`#items a[href="/services/` + itemGeti + `"]`)

	// Search, then the guide.
	step("search",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(n.URL+"/services"),
		chromedp.WaitVisible(chromedp.ID("bundles")),
		chromedp.SendKeys(chromedp.ID("q"), "个体户"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(guideLink),
	)
	shot("search")
	step("guide", chromedp.Click(guideLink), chromedp.WaitVisible(chromedp.ID("apply")))
	if got := read(t, ctx, chromedp.Text(chromedp.ID("promised-days"))); !strings.HasPrefix(got, "2") {
		t.Errorf("promised days %q", got)
	}
	shot("guide")

	// 申请 asks to sign in first and comes back to the form.
	step("sign in",
		chromedp.Click(chromedp.ID("apply")),
		chromedp.WaitVisible(chromedp.ID("login-name")),
		chromedp.SendKeys(chromedp.ID("login-name"), mobile),
		chromedp.SendKeys(chromedp.ID("password"), "Fenhe#River2026"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("apply-form")),
	)
	if got := read(t, ctx, chromedp.Value(chromedp.ID("f-operator_name"))); got != name {
		t.Errorf("name prefilled %q, want %q", got, name)
	}
	if got := read(t, ctx, chromedp.Value(chromedp.ID("f-phone"))); got != mobile {
		t.Errorf("phone prefilled %q, want %q", got, mobile)
	}
	if got := read(t, ctx, chromedp.Value(chromedp.ID("division"))); got != "140105" {
		t.Errorf("division chosen %q, want the registered 140105", got)
	}
	// What is not prefilled (the ID number, without identity's reader; the business) is typed.
	fill := []chromedp.Action[chromedp.Void]{}
	if v := read(t, ctx, chromedp.Value(chromedp.ID("f-operator_id_number"))); v == "" {
		fill = append(fill, chromedp.SendKeys(chromedp.ID("f-operator_id_number"), number))
	}
	if v := read(t, ctx, chromedp.Value(chromedp.ID("f-division"))); v == "" {
		fill = append(fill, chromedp.SendKeys(chromedp.ID("f-division"), "140105"))
	}
	fill = append(fill,
		chromedp.Click(chromedp.ID("f-org_form-0")),
		chromedp.SendKeys(chromedp.ID("f-shop_name"), "晋阳小吃"),
		chromedp.SendKeys(chromedp.ID("f-address"), "太原市小店区亲贤北街 9 号"),
		chromedp.SendKeys(chromedp.ID("f-business_scope"), "小吃、饮品零售"),
		chromedp.SendKeys(chromedp.ID("f-employees"), "2"),
		chromedp.SendKeys(chromedp.ID("f-capital"), "50000"),
		chromedp.SetUploadFiles(chromedp.ID("m-operator_id"), []string{idCard}),
		chromedp.SetUploadFiles(chromedp.ID("m-premises"), []string{lease}),
	)
	step("fill in the form", fill...)
	shot("apply")
	step("submit", chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.CSS(`#status[data-status="submitted"]`)))
	shot("submitted")
	loc := read(t, ctx, chromedp.Location())
	m := regexp.MustCompile(`/account/applications/([0-9a-f-]+)`).FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("after submitting the browser is at %s", loc)
	}
	appID := m[1]

	// The officer, in the console on a desktop, claims the case and asks for a correction of
	// the lease.
	det, err := n.Applications.Get(context.Background(), officer, appID)
	if err != nil {
		t.Fatal(err)
	}
	octx := browser(t, 1280, 900)
	ostep := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(octx, actions...); err != nil {
			t.Fatalf("officer: %s: %v", what, err)
		}
	}
	caseLink := chromedp.CSS(`#case-` + det.CaseID + ` a[href="/console/cases/` + det.CaseID + `"]`)
	ostep("sign in and open the queue",
		chromedp.Navigate(n.URL+"/console/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ty-scjg"),
		chromedp.SendKeys(chromedp.ID("password"), "Changed#Pass2026x"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(".stats")),
		chromedp.Navigate(n.URL+"/console/cases"),
		chromedp.WaitVisible(caseLink),
		chromedp.Click(caseLink),
		chromedp.WaitVisible(chromedp.ID("claim")),
		chromedp.Click(chromedp.ID("claim")),
		chromedp.WaitVisible(chromedp.ID("approve")),
	)
	// The correction form folds under its summary; the lease is one of the materials to tick.
	if ticked := read(t, octx, chromedp.Evaluate[bool](`(function(){
		document.querySelectorAll("#actions details").forEach(function(d){ d.open = true; });
		var box = Array.from(document.querySelectorAll("#correct-form input[name=items]")).find(function(b){ return b.parentElement.textContent.indexOf("经营场所使用证明") >= 0; });
		if (box) { box.checked = true; }
		return !!box;
	})()`)); !ticked {
		t.Log("the correction form offers no material to tick; the comment says it")
	}
	ostep("request a correction",
		chromedp.SendKeys(chromedp.ID("correct-comment"), "租赁合同缺少出租方签字页，请重新上传。"),
		chromedp.Click(chromedp.ID("correct")),
		chromedp.WaitVisible(chromedp.CSS(`#case-status[data-state="suspended"]`)),
	)
	saveScreenshot(t, "services-console-correction.png", read(t, octx, chromedp.FullScreenshot(100)))
	// officerApproves passes the case's current step in the console, claiming it first when
	// nobody holds it, and waits until the case has moved on.
	officerApproves := func(comment string) {
		t.Helper()
		ostep("open the case", chromedp.Navigate(n.URL+"/console/cases/"+det.CaseID), chromedp.WaitVisible(chromedp.ID("case-status")))
		before := read(t, octx, chromedp.AttributeValue(chromedp.ID("case-status"), "data-step")).Value
		if read(t, octx, chromedp.Evaluate[bool](`!!document.getElementById("claim")`)) {
			ostep("claim", chromedp.Click(chromedp.ID("claim")), chromedp.WaitVisible(chromedp.ID("approve")))
		}
		ostep("approve", chromedp.SendKeys(chromedp.ID("approve-comment"), comment), chromedp.Click(chromedp.ID("approve")))
		waitFor(t, "the case to move on", func() bool {
			st := read(t, octx, chromedp.Evaluate[[]string](`(function(){var e=document.getElementById("case-status");return e?[e.dataset.state,e.dataset.step]:["",""];})()`))
			return st[0] == "closed" || (st[1] != "" && st[1] != before)
		})
	}

	// The citizen sees what to correct and answers with the signed lease.
	step("see the correction", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("correction-form")))
	if got := read(t, ctx, chromedp.Text(chromedp.ID("correction-comment"))); !strings.Contains(got, "签字页") {
		t.Errorf("correction comment %q", got)
	}
	shot("correction")
	step("answer",
		chromedp.SetUploadFiles(chromedp.ID("m-premises"), []string{signedLease}),
		chromedp.SendKeys(chromedp.ID("answer-comment"), "已补充签字页"),
		chromedp.Click(chromedp.ID("answer")),
		chromedp.WaitVisible(chromedp.CSS(`#status[data-status="in_review"]`)),
	)
	if got := read(t, ctx, chromedp.Text(chromedp.ID("attached"))); !strings.Contains(got, "lease-signed.pdf") {
		t.Errorf("materials after the answer: %q", got)
	}

	// Accepted, then approved in the console: the result, and the rating form.
	officerApproves("材料齐全，予以受理")
	officerApproves("准予登记")
	saveScreenshot(t, "services-console-closed.png", read(t, octx, chromedp.FullScreenshot(100)))
	step("see the result", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("result")))
	if got := read(t, ctx, chromedp.Text(chromedp.ID("result-name"))); !strings.Contains(got, "个体工商户营业执照") {
		t.Errorf("result %q", got)
	}
	shot("result")
	step("rate",
		chromedp.WaitVisible(chromedp.ID("rating-form")),
		chromedp.Click(chromedp.ID("rating-level-5")),
		chromedp.Click(chromedp.ID("rating-submit")),
		chromedp.WaitVisible(chromedp.ID("rating-given")),
	)
	if got := read(t, ctx, chromedp.AttributeValue(chromedp.ID("rating-level"), "data-level")); got.Value != "5" {
		t.Errorf("rated level %q", got.Value)
	}
	if loc := read(t, ctx, chromedp.Location()); !strings.Contains(loc, "/account/applications/"+appID) {
		t.Errorf("after rating the browser is at %s", loc)
	}
	shot("rated")

	// The messages tell every step; the count shows in the tabs.
	step("messages", chromedp.Navigate(n.URL+"/account/messages"), chromedp.WaitVisible(chromedp.ID("messages")))
	waitFor(t, "messages", func() bool {
		_ = chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("messages")))
		return read(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#messages .unread").length`)) >= 3
	})
	shot("messages")
}

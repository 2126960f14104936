package app

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dgov/dgov/internal/platform/authz"
)

// An officer on a phone: the queue, the case, claim and approve through both steps of
// 个体工商户设立登记 until it is closed — in a real headless Chromium at 390×844, with no
// page wider than the screen.
func TestBrowserOfficerCaseOnPhone(t *testing.T) {
	chromePath(t)
	n := startNode(t, "sqlite", withClock(newTestClock()))
	admin, err := n.Org.Subject(t.Context(), adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	dep := caseDepartment(t, n, admin, "140105", "scjg", "太原市小店区市场监督管理局", "市场监督管理局")
	staffClient(t, n, admin, "xd-scjg-phone", dep.ID, authz.RoleOfficer) // past the first-login password change
	_, app := submitGeti(t, n, "citizen-phone-1", "李晋华")

	ctx := browser(t, 390, 844)
	const fitsScreen = `document.documentElement.scrollWidth <= window.innerWidth`
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(n.URL+"/console/cases"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "xd-scjg-phone"),
		chromedp.SendKeys(chromedp.ID("password"), "Changed#Pass2026x"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(".case-link")),
	); err != nil {
		t.Fatalf("log in to the queue: %v", err)
	}
	card := read(t, ctx, chromedp.Text(chromedp.ID("case-"+app.CaseID)))
	if !strings.Contains(card, app.Number) || !strings.Contains(card, "剩余") || !strings.Contains(card, "未认领") {
		t.Errorf("queue card: %q", card)
	}
	if !read(t, ctx, chromedp.Evaluate[bool](fitsScreen)) {
		t.Error("the queue is wider than the phone's screen")
	}
	saveScreenshot(t, "console-cases-phone.png", read(t, ctx, chromedp.FullScreenshot(100)))

	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(".case-link")),
		chromedp.WaitVisible(chromedp.ID("claim")),
		chromedp.Click(chromedp.ID("claim")),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.SendKeys(chromedp.ID("approve-comment"), "材料齐全，予以受理"),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.CSS(`#case-status[data-step="decide"]`)), // the next step
		chromedp.WaitVisible(chromedp.ID("claim")),
	); err != nil {
		t.Fatalf("claim and approve the first step: %v", err)
	}
	if step := read(t, ctx, chromedp.Text(chromedp.ID("case-step"))); !strings.Contains(step, "核准登记") {
		t.Errorf("after the first approval the step is %q", step)
	}
	if !read(t, ctx, chromedp.Evaluate[bool](fitsScreen)) {
		t.Error("the case page is wider than the phone's screen")
	}
	saveScreenshot(t, "console-case-phone.png", read(t, ctx, chromedp.FullScreenshot(100)))

	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("claim")),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.CSS(`#case-status[data-state="closed"]`)),
	); err != nil {
		t.Fatalf("approve the last step: %v", err)
	}
	status := read(t, ctx, chromedp.Text(chromedp.ID("case-status")))
	if !strings.Contains(status, "已办结") || !strings.Contains(status, "准予") {
		t.Errorf("closed case shows %q", status)
	}
	history := read(t, ctx, chromedp.Text(chromedp.ID("history")))
	if !strings.Contains(history, "办结") || !strings.Contains(history, "材料齐全，予以受理") {
		t.Errorf("history: %q", history)
	}
}

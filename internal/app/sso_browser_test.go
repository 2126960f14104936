package app

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The citizen's single sign-on journey in a real browser: register with an SMS code, pass
// real-name verification against the population library, sign in to the portal, open a
// second registered application (which requires L2) and be signed in there without another
// prompt, then sign out of both with one click.
func TestBrowserCitizenSSO(t *testing.T) {
	chromePath(t)
	eachDB(t, func(t *testing.T, n *node) {
		idNumber := addResident(t, n, "李晋阳")
		rp := newRelyingParty(t, n, "太原市不动产登记网上服务")
		ctx := browser(t, 1280, 900)
		http := client(t) // reads the development SMS sink, as a tester reads their phone
		const mobile = "13812340002"

		if err := chromedp.Do(ctx,
			chromedp.Navigate(n.URL+"/register"),
			chromedp.WaitVisible(chromedp.ID("mobile")),
			chromedp.SendKeys(chromedp.ID("mobile"), mobile),
			chromedp.Click(chromedp.ID("send-code")),
			chromedp.WaitVisible(chromedp.ID("code")),
		); err != nil {
			t.Fatalf("request a code: %v", err)
		}
		code := lastCode(t, n, http, mobile)
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("code"), code),
			chromedp.SendKeys(chromedp.ID("password"), "Fenhe#River2026"),
			chromedp.Click(chromedp.ID("register")),
			chromedp.WaitVisible(chromedp.ID("id_number")),
			chromedp.SendKeys(chromedp.ID("name"), "李晋阳"),
			chromedp.SendKeys(chromedp.ID("id_number"), idNumber),
			chromedp.Click(chromedp.ID("verify")),
			chromedp.WaitVisible(chromedp.ID("level")),
		); err != nil {
			t.Fatalf("register and verify: %v", err)
		}
		if level := read(t, ctx, chromedp.Text(chromedp.ID("level"))); !strings.Contains(level, "L2") {
			t.Fatalf("after real-name verification the portal shows %q", level)
		}
		saveScreenshot(t, "portal-account-"+string(n.DB.Dialect)+".png", read(t, ctx, chromedp.FullScreenshot(100)))

		// The second application: no login form, straight in.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(rp.srv.URL+"/"),
			chromedp.WaitVisible(chromedp.ID("welcome")),
		); err != nil {
			t.Fatalf("open the second app: %v", err)
		}
		welcome := read(t, ctx, chromedp.Text(chromedp.ID("welcome")))
		level := read(t, ctx, chromedp.Text(chromedp.ID("level")))
		if welcome != "欢迎，李晋阳" || level != "L2" {
			t.Fatalf("second app shows %q %q", welcome, level)
		}
		if rp.sessionCount() != 1 {
			t.Fatalf("app sessions: %d", rp.sessionCount())
		}

		// One sign-out ends both: the portal's session, and the app's through back-channel logout.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(n.URL+"/account"),
			chromedp.WaitVisible(chromedp.ID("logout")),
			chromedp.Click(chromedp.ID("logout")),
			chromedp.WaitVisible(chromedp.ID("nav-account")),
		); err != nil {
			t.Fatalf("sign out: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for rp.sessionCount() != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if rp.sessionCount() != 0 {
			t.Fatal("the second app still has a session after signing out")
		}
		// Back at the app, the user is asked to sign in again.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(rp.srv.URL+"/"),
			chromedp.WaitVisible(chromedp.ID("login-name")),
		); err != nil {
			t.Fatalf("after sign-out the app should ask for a login: %v", err)
		}
		saveScreenshot(t, "portal-login-for-app-"+string(n.DB.Dialect)+".png", read(t, ctx, chromedp.FullScreenshot(100)))
	})
}

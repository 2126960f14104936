package app

import (
	"context"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromePath finds Debian's headless Chromium (make test installs it); DGOV_CHROME overrides.
func chromePath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are skipped with -short")
	}
	for _, p := range []string{os.Getenv("DGOV_CHROME"), "chromium", "chromium-browser", "google-chrome"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if dbtest.Strict() {
		t.Fatal("chromium is required for a full test run (make test installs it)")
	}
	t.Skip("chromium not installed; run `make test` or install Debian's chromium")
	return ""
}

// browser starts a headless Chromium with a fresh profile and a phone-or-desktop window.
func browser(t *testing.T, width, height int) context.Context {
	path := chromePath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		// The machine has no outside network: keep Chromium from trying.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "zh-CN"),
		chromedp.Flag("accept-lang", "zh-CN,zh"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Generous: CI runs every package's tests at once on 2 cores, and a whole journey (the
	// citizen's, with the officer's steps) takes seconds alone but much longer under that load.
	ctx, cancelTimeout := context.WithTimeout(ctx, 180*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// The foundation's journey: a staff member logs in to the console and the audit page shows the
// hash chain verified — in a real headless Chromium, on both databases.
func TestBrowserStaffLoginAuditVerified(t *testing.T) {
	chromePath(t)
	eachDB(t, func(t *testing.T, n *node) {
		ctx := browser(t, 1280, 900)
		// Not logged in: the console sends us to the login page, keeping where we were going.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(n.URL+"/console/audit"),
			chromedp.WaitVisible(chromedp.ID("username")),
		); err != nil {
			t.Fatalf("open console: %v", err)
		}
		title := read(t, ctx, chromedp.Title())
		if !strings.Contains(title, "工作人员登录") {
			t.Errorf("login page title %q", title)
		}
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("username"), "admin"),
			chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("verify-status")),
		); err != nil {
			t.Fatalf("log in: %v", err)
		}
		status := read(t, ctx, chromedp.Text(chromedp.ID("verify-status")))
		verified := read(t, ctx, chromedp.AttributeValue(chromedp.CSS(".verify"), "data-verified"))
		if status != "哈希链校验通过" || verified.Value != "true" {
			t.Fatalf("audit page shows %q (data-verified=%q)", status, verified.Value)
		}
		firstRow := read(t, ctx, chromedp.Text(chromedp.CSS("#audit tbody tr:first-child")))
		if !strings.Contains(firstRow, "auth.login") {
			t.Errorf("newest audit entry should be the login: %q", firstRow)
		}
		saveScreenshot(t, "console-audit-"+string(n.DB.Dialect)+".png", read(t, ctx, chromedp.FullScreenshot(100)))

		// The auditor — not the administrator — may force a full verification (separation
		// of duties). The administrator creates the auditor; the auditor's first login asks
		// for a new password.
		ctx0 := context.Background()
		admin, err := n.Org.Subject(ctx0, adminID(t, n))
		if err != nil {
			t.Fatal(err)
		}
		deps, err := n.Org.ListDepartments(ctx0, admin, org.DepartmentFilter{Division: "140000"})
		if err != nil || len(deps) == 0 {
			t.Fatalf("departments: %v", err)
		}
		if _, err := n.Org.CreateStaff(ctx0, admin, org.StaffInput{Username: "auditor", Name: "审计员", DepartmentID: deps[0].ID,
			Roles: []authz.Role{authz.RoleAuditor}, Password: "Initial#Audit2026"}); err != nil {
			t.Fatalf("create auditor: %v", err)
		}
		// Tamper with the log behind the console's back, as someone with database access would.
		if _, err := n.DB.W.ExecContext(ctx0, disableAuditGuard(n)); err != nil {
			t.Fatalf("disable guard: %v", err)
		}
		if _, err := n.DB.Exec(ctx0, `UPDATE audit_log SET object = 'staff:forged' WHERE seq = 1`); err != nil {
			t.Fatalf("tamper: %v", err)
		}
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), "auditor"),
			chromedp.SendKeys(chromedp.ID("password"), "Initial#Audit2026"),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="new"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="old"]`), "Initial#Audit2026"),
			chromedp.SendKeys(chromedp.CSS(`input[name="new"]`), "Auditor#Fenhe2026"),
			chromedp.SendKeys(chromedp.CSS(`input[name="confirm"]`), "Auditor#Fenhe2026"),
			chromedp.Click(chromedp.CSS(`form[action="/console/password"] button`)),
			chromedp.WaitVisible(chromedp.CSS(".stats")),
			chromedp.Navigate(n.URL+"/console/audit"),
			chromedp.WaitVisible(chromedp.ID("verify-now")),
			chromedp.Click(chromedp.ID("verify-now")),
			chromedp.WaitVisible(chromedp.CSS(`.verify[data-verified="false"]`)),
		); err != nil {
			t.Fatalf("auditor verifies after tampering: %v", err)
		}
		status = read(t, ctx, chromedp.Text(chromedp.CSS(".verify")))
		if !strings.Contains(status, "哈希链已被篡改") || !strings.Contains(status, "第 1 条") {
			t.Fatalf("tampering not shown: %q", status)
		}
		saveScreenshot(t, "console-audit-tampered-"+string(n.DB.Dialect)+".png", read(t, ctx, chromedp.FullScreenshot(100)))
	})
}

// read runs an action that returns a value, failing the test on error.
func read[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The console works on a phone: the menu folds behind a button and opens on a tap.
func TestBrowserConsoleOnPhone(t *testing.T) {
	chromePath(t)
	n := startNode(t, "sqlite")
	ctx := browser(t, 390, 844)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(n.URL+"/console/login?lang=en"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
		chromedp.Click(chromedp.ID("login")),
		// The overview's figures, not the menu button: the login page has that button too, and
		// it goes away as the browser moves on.
		chromedp.WaitVisible(chromedp.CSS(".stats")),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	const navShown = `getComputedStyle(document.querySelector('.topnav')).display !== 'none'`
	before := read(t, ctx, chromedp.Evaluate[bool](navShown))
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(".navbutton"))); err != nil {
		t.Fatal(err)
	}
	after := read(t, ctx, chromedp.Evaluate[bool](navShown))
	if before || !after {
		t.Fatalf("phone menu: visible before tap %v, after tap %v", before, after)
	}
	shot := read(t, ctx, chromedp.FullScreenshot(100))
	saveScreenshot(t, "console-phone.png", shot)
}

// disableAuditGuard is what an attacker with database access does first: drop the
// append-only trigger. The hash chain is what still catches the edit.
func disableAuditGuard(n *node) string {
	if n.DB.Dialect == "postgres" {
		return `ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`
	}
	return `DROP TRIGGER IF EXISTS audit_log_no_update`
}

// adminID is the id of the bootstrap administrator.
func adminID(t *testing.T, n *node) string {
	t.Helper()
	var id string
	if err := n.DB.QueryRow(context.Background(), `SELECT id FROM staff WHERE username = 'admin'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

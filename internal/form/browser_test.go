package form_test

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/web"
)

// chrome finds Debian's headless Chromium (make test installs it); DGOV_CHROME overrides.
func chrome(t *testing.T) string {
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

// The browser script shows and hides conditional parts as a person answers, on a phone-sized
// screen, and what the browser then submits passes the server's validation: hidden required
// fields neither block the submit nor get sent.
func TestFormScriptInBrowser(t *testing.T) {
	path := chrome(t)
	fm := geti(t)
	start := validGeti()
	start["ownership"] = "own"
	delete(start, "lease_end")
	out, errs := fm.ValidateWith(start, opts)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	page := renderPage(t, `<form method="post" action="/submit">{{template "form-fields" .Data}}<button id="send" type="submit">提交</button></form>`,
		fm.View(out, nil, "zh-CN"))

	refused := maps.Clone(start)
	refused["phone"] = "123"
	out, errs = fm.ValidateWith(refused, opts)
	errorPage := renderPage(t, `<form method="post">{{template "form-fields" .Data}}</form>`, fm.View(out, errs, "zh-CN"))

	posted := make(chan url.Values, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'") // as httpx sets it
		io.WriteString(w, page)
	})
	mux.HandleFunc("GET /refused", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, errorPage)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web.Static())))
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		posted <- r.PostForm
		io.WriteString(w, "ok")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(390, 844),
		chromedp.Flag("disable-dev-shm-usage", true))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTime := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTime()

	state := func(id string) (hidden, disabled bool) {
		t.Helper()
		js := `(function(){var e=document.getElementById(` + "`" + id + "`" + `);var c=e.matches('input,select,textarea,fieldset')?e:e.querySelector('input,select,textarea');return [e.hidden||!!e.closest('[hidden]'), c.matches(':disabled')];})()`
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](js))
		if err != nil || len(got) != 2 {
			t.Fatalf("state of %s: %v", id, err)
		}
		return got[0], got[1]
	}
	want := func(step, id string, hidden bool) {
		t.Helper()
		h, d := state(id)
		if h != hidden || d != hidden {
			t.Errorf("%s: %s hidden=%v disabled=%v, want both %v", step, id, h, d, hidden)
		}
	}
	choose := func(id, value string) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function(){var e=document.getElementById("`+id+`");e.value="`+value+`";return e.dispatchEvent(new Event("change",{bubbles:true}));})()`))
		return err
	}
	click := func(id string) error { return chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))) }

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitReady(chromedp.ID("f-ownership"))); err != nil {
		t.Fatal(err)
	}
	want("start", "f-lease_end-field", true)
	want("start", "fs-shop", false)
	want("start", "f-platform-field", false)

	if err := choose("f-ownership", "rent"); err != nil {
		t.Fatal(err)
	}
	want("rented", "f-lease_end-field", false)

	// No premises: the whole section goes, with the lease end inside it.
	if err := click("f-has_shop-1"); err != nil {
		t.Fatal(err)
	}
	want("no premises", "fs-shop", true)
	if h, d := state("f-lease_end"); !h || !d {
		t.Errorf("lease end inside a hidden section: hidden=%v disabled=%v", h, d)
	}
	if err := click("f-channel-1"); err != nil {
		t.Fatal(err)
	}
	want("offline", "f-platform-field", true)
	if err := click("f-channel-0"); err != nil {
		t.Fatal(err)
	}
	want("online", "f-platform-field", false)

	// The lease end is required and empty, but hidden: the browser must submit anyway.
	if err := click("send"); err != nil {
		t.Fatal(err)
	}
	select {
	case q := <-posted:
		for _, k := range []string{"shop_address", "shop_division", "ownership", "lease_end"} {
			if _, ok := q[k]; ok {
				t.Errorf("hidden %s was submitted", k)
			}
		}
		vals, errs := fm.ValidateWith(fm.FromURLValues(q), opts)
		if len(errs) != 0 {
			t.Errorf("submitted form refused: %v", errs)
		}
		if vals["has_shop"] != "no" || vals["channel"] != "online" || vals["platform"] != "美团" {
			t.Errorf("submitted %v", vals)
		}
	case <-ctx.Done():
		t.Fatal("the browser did not submit the form (a hidden required field blocked it?)")
	}

	// A refused form comes back with the focus on its list of errors.
	// The submit's own response may still be loading: a navigation on top of it can be
	// aborted by the browser (net::ERR_ABORTED), so the first one is retried.
	err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/refused"), chromedp.WaitReady(chromedp.ID("form-errors")))
	if err != nil && strings.Contains(err.Error(), "ERR_ABORTED") {
		err = chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/refused"), chromedp.WaitReady(chromedp.ID("form-errors")))
	}
	if err != nil {
		t.Fatal(err)
	}
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	if err != nil || focused != "form-errors" {
		t.Errorf("focus on %q (%v), want the error summary", focused, err)
	}
}

package app

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/config"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// cheapArgon keeps password hashing fast in tests; production uses org.DefaultArgon.
var cheapArgon = org.ArgonParams{Memory: 64, Time: 1, Threads: 1}

const testAdminPassword = "Test@Shanxi2026!"

// node is a running dgov for a test.
type node struct {
	*App
	URL    string
	cancel context.CancelFunc
	done   chan error
}

// nodeSetup is what a test may vary in the node startNode opens: its configuration and the
// Options it is opened with.
type nodeSetup struct {
	cfg  config.Config
	opts Options
}

// nodeOption changes the setup of a node before startNode opens it.
type nodeOption func(*nodeSetup)

// withConfig adjusts the node's configuration.
func withConfig(f func(*config.Config)) nodeOption {
	return func(s *nodeSetup) { f(&s.cfg) }
}

// withClock runs the node on a clock the test controls.
func withClock(clk *testClock) nodeOption {
	return func(s *nodeSetup) { s.opts.Now = clk.Now }
}

// testClock is a node's clock that stands still until the test moves it forward, so
// deadlines pass.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// newTestClock starts at Monday 2 March 2026, 10:00 Beijing time, with no holiday in the next
// weeks: 5 working days end on Monday 9 March at 10:00.
func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, calendar.Beijing)}
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// startNode opens and serves a node on a random port over a fresh database of the given
// dialect ("sqlite" or "postgres"), with an administrator "admin".
func startNode(t *testing.T, dialect string, options ...nodeOption) *node {
	t.Helper()
	s := nodeSetup{cfg: config.Defaults(), opts: Options{Argon: cheapArgon}}
	cfg := &s.cfg
	cfg.DataDir = t.TempDir()
	// A fixed free port, not :0: the OpenID provider's issuer URL names it.
	cfg.HTTPAddr = freeAddr(t)
	cfg.RateLimit, cfg.RateBurst = 1000, 1000
	if dialect == "postgres" {
		cfg.DatabaseURL, _ = dbtest.NewSchema(t)
	}
	for _, o := range options {
		o(&s)
	}
	logw := io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	ctx := context.Background()
	a, err := Open(ctx, s.cfg, slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})), s.opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := a.Org.BootstrapAdmin(ctx, "admin", "系统管理员", testAdminPassword); err != nil {
		t.Fatalf("bootstrap admin: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	n := &node{App: a, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { n.done <- a.Serve(sctx, func(addr string) { ready <- addr }) }()
	select {
	case addr := <-ready:
		n.URL = "http://" + addr
	case err := <-n.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			t.Error("node did not stop")
		}
		a.Close()
	})
	return n
}

// eachDB runs fn against a node on SQLite and one on PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, n *node)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, startNode(t, "sqlite")) })
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("PostgreSQL tests are skipped with -short")
		}
		fn(t, startNode(t, "postgres"))
	})
}

// client is a browser-like HTTP client with a cookie jar that does not follow redirects.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// postForm posts a form as the same-origin page would (token from the page, Origin header).
func postForm(t *testing.T, c *http.Client, base, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	return postBody(t, c, base, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// postBody posts body of the content type ctype as the same-origin page would (Origin header).
func postBody(t *testing.T, c *http.Client, base, path, ctype string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Origin", base)
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// csrfFrom finds the csrf_token field's value in a page.
func csrfFrom(t *testing.T, page string) string {
	t.Helper()
	const marker = `name="csrf_token" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("no CSRF token in page:\n%.500s", page)
	}
	rest := page[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

// login logs c in as username and returns the console home page.
func login(t *testing.T, n *node, c *http.Client, username, password string) string {
	t.Helper()
	_, page := get(t, c, n.URL+"/console/login")
	res, body := postForm(t, c, n.URL, "/console/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "username": {username}, "password": {password}, "next": {"/console"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: status %d\n%.800s", username, res.StatusCode, body)
	}
	_, home := get(t, c, n.URL+"/console")
	return home
}

func screenshotDir() string {
	if d := os.Getenv("DGOV_SCREENSHOT_DIR"); d != "" {
		_ = os.MkdirAll(d, 0o755)
		return d
	}
	return ""
}

func saveScreenshot(t *testing.T, name string, png []byte) {
	if d := screenshotDir(); d != "" {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Logf("screenshot: %v", err)
		}
	}
}

// fileWriter returns a function that writes a file of the given name and content into dir
// and returns its path.
func fileWriter(t *testing.T, dir string) func(name, content string) string {
	return func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// mustConfig builds the configuration a CLI run with env would use.
func mustConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(flag.NewFlagSet("t", flag.ContinueOnError), nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// freeAddr finds a free loopback port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

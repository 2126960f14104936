// Package web holds dgov's templates and static assets, embedded in the binary so that no
// page depends on a CDN (government networks are isolated), and renders them.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed templates static
var files embed.FS

// Static is the asset tree served under /static/.
func Static() fs.FS { s, _ := fs.Sub(files, "static"); return s }

// shanghai is the zone every page shows times in (storage is UTC).
var shanghai = func() *time.Location {
	if l, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return l
	}
	return time.FixedZone("CST", 8*3600)
}()

// Page is what every view receives.
type Page struct {
	Lang      i18n.Lang
	Title     i18n.Text
	CSRF      string
	User      *User // nil when nobody is logged in
	Nav       string
	Flash     *i18n.Text
	Error     *i18n.Error
	Path      string
	Data      any
	RequestID string
}

// User is the logged-in person as pages show them.
type User struct {
	Name, Division, DivisionName, Roles string
}

// T picks the page's language.
func (p Page) T(zh, en string) string { return i18n.T(zh, en).In(p.Lang) }

// Renderer executes views inside a layout. Each view is parsed together with the layouts and
// partials, once, at start. An override directory (a province's branding) may replace any file.
type Renderer struct {
	mu    sync.Mutex
	views map[string]*template.Template
	fsys  fs.FS
}

// NewRenderer parses every view. overrideDir, when not empty, shadows embedded files of the
// same path (templates/… and static/…).
func NewRenderer(overrideDir string) (*Renderer, error) {
	var fsys fs.FS = files
	if overrideDir != "" {
		fsys = overlay{top: os.DirFS(overrideDir), base: files}
	}
	r := &Renderer{views: map[string]*template.Template{}, fsys: fsys}
	shared := []string{"templates/layouts/*.html", "templates/partials/*.html"}
	for _, dir := range []string{"portal", "console"} {
		names, err := fs.Glob(fsys, "templates/"+dir+"/*.html")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			t := template.New(path.Base(n)).Funcs(funcs)
			for _, g := range shared {
				if t, err = t.ParseFS(fsys, g); err != nil {
					return nil, fmt.Errorf("parse %s: %w", g, err)
				}
			}
			if t, err = t.ParseFS(fsys, n); err != nil {
				return nil, fmt.Errorf("parse %s: %w", n, err)
			}
			r.views[dir+"/"+strings.TrimSuffix(path.Base(n), ".html")] = t
		}
	}
	return r, nil
}

// Render writes view (e.g. "console/audit") with status. It renders into a buffer first so a
// template error becomes a clean 500 rather than half a page.
func (r *Renderer) Render(w http.ResponseWriter, status int, view string, p Page) error {
	t, ok := r.views[view]
	if !ok {
		return fmt.Errorf("no view %q", view)
	}
	var buf bytes.Buffer
	layout := "layout"
	if strings.HasPrefix(view, "console/") {
		layout = "console_layout"
	}
	if err := t.ExecuteTemplate(&buf, layout, p); err != nil {
		return fmt.Errorf("render %s: %w", view, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(p.Lang))
	w.WriteHeader(status)
	_, err := buf.WriteTo(w)
	return err
}

// StaticFS is the asset tree with overrides applied.
func (r *Renderer) StaticFS() fs.FS { s, _ := fs.Sub(r.fsys, "static"); return s }

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(shanghai).Format("2006-01-02 15:04:05")
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(shanghai).Format("2006-01-02")
	},
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"in":     func(t i18n.Text, l i18n.Lang) string { return t.In(l) },
	"add":    func(a, b int) int { return a + b },
	"levels": func() []int { return []int{0, 1, 2, 3} },
	"list":   func(v ...string) []string { return v },
	// pair hands a partial the page and one more value: {{template "x" (pair $ .Thing)}}.
	"pair": func(p Page, v any) map[string]any { return map[string]any{"P": p, "V": v} },
	"query": func(kv ...string) template.URL {
		var b strings.Builder
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(template.URLQueryEscaper(kv[i]) + "=" + template.URLQueryEscaper(kv[i+1]))
		}
		return template.URL(b.String())
	},
}

// overlay serves files from top when present there, else from base.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	if f, err := o.top.Open(name); err == nil {
		return f, nil
	}
	return o.base.Open(name)
}

func (o overlay) Glob(pattern string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, f := range []fs.FS{o.top, o.base} {
		m, _ := fs.Glob(f, pattern)
		for _, n := range m {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

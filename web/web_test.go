package web

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Every view parses and renders an empty page in both languages without error.
func TestEveryViewRenders(t *testing.T) {
	r, err := NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.views) < 8 {
		t.Fatalf("only %d views", len(r.views))
	}
	for name := range r.views {
		if name == "portal/home" || strings.HasPrefix(name, "console/") && name != "console/login" && name != "console/password" {
			continue // these need their data; the app tests render them for real
		}
		for _, lang := range []i18n.Lang{i18n.ZH, i18n.EN} {
			w := httptest.NewRecorder()
			data := any(nil)
			if name == "console/login" {
				data = struct{ Username, Next string }{}
			}
			if err := r.Render(w, 200, name, Page{Lang: lang, Title: i18n.T("标题", "Title"), Data: data}); err != nil {
				t.Errorf("%s (%s): %v", name, lang, err)
			}
			if !strings.Contains(w.Body.String(), `lang="`+string(lang)+`"`) {
				t.Errorf("%s: page language not set", name)
			}
		}
	}
}

// A province's branding can replace any template or asset without a rebuild.
func TestOverrideDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates/portal"), 0o755)
	os.MkdirAll(filepath.Join(dir, "static/css"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates/portal/error.html"), []byte(`{{define "content"}}<p>定制错误页</p>{{end}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "static/css/dgov.css"), []byte(`body{}`), 0o644)
	r, err := NewRenderer(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := r.Render(w, 404, "portal/error", Page{Lang: i18n.ZH}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Body.String(), "定制错误页") || w.Code != 404 {
		t.Fatalf("override not used: %d %s", w.Code, w.Body.String())
	}
	b, _ := fsRead(r, "css/dgov.css")
	if string(b) != "body{}" {
		t.Fatalf("static override not used: %q", b)
	}
}

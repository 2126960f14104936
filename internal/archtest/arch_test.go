// Package archtest fails the build's tests when a package imports against the house's
// direction (docs/architecture.md): cmd → app → surfaces (api, console, portal) → engines →
// platform; platform imports nothing of ours but platform; web holds assets only.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/dgov/dgov/"

// layer classifies a package path relative to the module root.
func layer(pkg string) string {
	switch {
	case strings.HasPrefix(pkg, "cmd/"):
		return "cmd"
	case pkg == "internal/app":
		return "app"
	case pkg == "internal/api", pkg == "internal/console", pkg == "internal/portal":
		return "surface"
	case strings.HasPrefix(pkg, "internal/platform/"):
		return "platform"
	case pkg == "web":
		return "web"
	case pkg == "packs":
		return "packs" // declarative content (embedded files), loaded by app and demo
	case strings.HasPrefix(pkg, "tools/"):
		return "tool"
	case pkg == "internal/demo":
		return "demo" // seeds data through engines' services; used by app only
	case pkg == "internal/archtest":
		return "test"
	case strings.HasPrefix(pkg, "internal/"):
		return "engine"
	}
	return "other"
}

// allowed[from] lists the layers a layer may import.
var allowed = map[string]map[string]bool{
	"cmd":      {"app": true},
	"app":      {"surface": true, "engine": true, "platform": true, "web": true, "demo": true, "packs": true},
	"surface":  {"engine": true, "platform": true, "web": true},
	"demo":     {"engine": true, "platform": true, "packs": true},
	"engine":   {"engine": true, "platform": true},
	"platform": {"platform": true},
	"web":      {"platform": true},
	"packs":    {},
	"tool":     {},
	"test":     {},
}

// imports maps each package (module-relative) to the module packages its non-test files import.
func imports(t *testing.T, root string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata" || name == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if out[rel] == nil {
			out[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) {
				out[rel][strings.TrimPrefix(p, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s", root)
	}
	graph := imports(t, root)
	if len(graph) < 10 {
		t.Fatalf("found only %d packages; is the walk broken?", len(graph))
	}
	for from, deps := range graph {
		lf := layer(from)
		for to := range deps {
			lt := layer(to)
			if !allowed[lf][lt] {
				t.Errorf("%s (%s) must not import %s (%s)", from, lf, to, lt)
			}
		}
	}
}

// The checker must itself catch a violation.
func TestRulesCatchViolations(t *testing.T) {
	bad := [][2]string{
		{"internal/platform/db", "internal/org"},
		{"internal/org", "internal/app"},
		{"internal/org", "internal/console"},
		{"internal/platform/audit", "web"},
		{"web", "internal/org"},
		{"cmd/dgov", "internal/org"},
		{"internal/console", "internal/app"},
		{"internal/org", "internal/demo"},
	}
	for _, b := range bad {
		if allowed[layer(b[0])][layer(b[1])] {
			t.Errorf("%s → %s should be forbidden", b[0], b[1])
		}
	}
}

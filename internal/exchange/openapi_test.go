package exchange_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// Every gateway route is documented in the node's OpenAPI document (internal/api/openapi.json,
// served at /api/openapi.json), and the document names no gateway route that does not exist.
func TestOpenAPIDocumentsGateway(t *testing.T) {
	raw, err := os.ReadFile("../api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/v1/exchange/") {
			continue
		}
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	f := newFixture(t, dbtest.SQLite(t, sources...), exchange.Options{})
	routed := map[string]bool{}
	for _, p := range f.gw.Patterns() {
		routed[p] = true
		if !documented[p] {
			t.Errorf("gateway route %q is not in openapi.json", p)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.json documents %q, which the gateway does not route", d)
		}
	}
}

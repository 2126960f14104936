package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every route of the table is documented in openapi.json, and the document names no route
// the table lacks.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var a API
	routed := map[string]bool{}
	for _, rt := range a.table() {
		routed[rt.pattern] = true
		if !documented[rt.pattern] {
			t.Errorf("route %q is not in openapi.json", rt.pattern)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.json documents %q, which is not routed", d)
		}
	}
}

package workflow_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

const goodDefinition = `{"key": "service:11140100MB0000000X-001", "version": 2, "name": "食品经营许可", "name_en": "Food business licence",
 "total_days": 10,
 "steps": [
  {"key": "pre_review", "name": "预审", "name_en": "Pre-review", "days": 1},
  {"key": "accept", "name": "受理", "name_en": "Acceptance", "role": "officer", "days": 1},
  {"key": "review", "name": "审查", "name_en": "Review", "days": 5},
  {"key": "decide", "name": "决定", "name_en": "Decision", "role": "leader", "days": 2},
  {"key": "deliver", "name": "送达", "name_en": "Delivery", "days": 0}
 ]}`

func TestParseDefinition(t *testing.T) {
	d, err := workflow.ParseDefinition([]byte(goodDefinition))
	if err != nil {
		t.Fatal(err)
	}
	if d.Key != "service:11140100MB0000000X-001" || d.Version != 2 || len(d.Steps) != 5 || d.Steps[3].HandlerRole() != workflow.RoleLeader ||
		d.Steps[0].HandlerRole() != authz.RoleOfficer || d.TotalDays != 10 {
		t.Errorf("parsed %+v", d)
	}
	bad := []struct {
		name, json, field, code string
	}{
		{"not JSON", `{`, "", "workflow.definition.json"},
		{"trailing data", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a"}]} {}`, "", "workflow.definition.json"},
		{"unknown field", `{"key":"k","version":1,"name":"n","stepz":[]}`, "stepz", "workflow.definition.json"},
		{"unknown step field", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a","limit":3}]}`, "limit", "workflow.definition.json"},
		{"wrong type", `{"key":"k","version":"1","name":"n","steps":[]}`, "version", "workflow.definition.json"},
		{"no key", `{"version":1,"name":"n","steps":[{"key":"a","name":"a"}]}`, "key", "workflow.definition.key"},
		{"bad key", `{"key":"a b","version":1,"name":"n","steps":[{"key":"a","name":"a"}]}`, "key", "workflow.definition.key"},
		{"version 0", `{"key":"k","name":"n","steps":[{"key":"a","name":"a"}]}`, "version", "workflow.definition.version"},
		{"no name", `{"key":"k","version":1,"steps":[{"key":"a","name":"a"}]}`, "name", "workflow.definition.name"},
		{"zero steps", `{"key":"k","version":1,"name":"n","steps":[]}`, "steps", "workflow.definition.no_steps"},
		{"duplicate step keys", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a"},{"key":"a","name":"b"}]}`, "steps[1].key", "workflow.definition.step_duplicate"},
		{"bad step key", `{"key":"k","version":1,"name":"n","steps":[{"key":"Accept","name":"a"}]}`, "steps[0].key", "workflow.definition.step_key"},
		{"step without name", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":" "}]}`, "steps[0].name", "workflow.definition.name"},
		{"negative days", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a","days":-1}]}`, "steps[0].days", "workflow.definition.days"},
		{"too many days", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a","days":366}]}`, "steps[0].days", "workflow.definition.days"},
		{"negative total", `{"key":"k","version":1,"name":"n","total_days":-3,"steps":[{"key":"a","name":"a"}]}`, "total_days", "workflow.definition.days"},
		{"unknown role", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a","role":"janitor"}]}`, "steps[0].role", "workflow.definition.role"},
		{"role that cannot handle", `{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a","role":"auditor"}]}`, "steps[0].role", "workflow.definition.role"},
		{"control character", `{"key":"k","version":1,"name":"n\u0007","steps":[{"key":"a","name":"a"}]}`, "name", "workflow.definition.name"},
	}
	for _, tc := range bad {
		_, err := workflow.ParseDefinition([]byte(tc.json))
		e, ok := i18n.As(err)
		if !ok {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if e.Code != tc.code || e.Field != tc.field || e.Msg.ZH == "" || e.Msg.EN == "" || e.HTTPStatus() != 400 {
			t.Errorf("%s: %s at %q (%s), want %s at %q", tc.name, e.Code, e.Field, e.Msg, tc.code, tc.field)
		}
	}
	// Too many steps.
	steps := make([]string, workflow.MaxSteps+1)
	for i := range steps {
		steps[i] = `{"key":"s` + strings.Repeat("x", i) + `","name":"n"}`
	}
	if _, err := workflow.ParseDefinition([]byte(`{"key":"k","version":1,"name":"n","steps":[` + strings.Join(steps, ",") + `]}`)); err == nil {
		t.Error("31 steps accepted")
	}
}

// TestValidateWithPolicy: with a policy, any role holding PermHandle may be a step's role
// (a hotline engine's dispatchers, say); without, the engine's own handler roles.
func TestValidateWithPolicy(t *testing.T) {
	p := authz.NewPolicy(divisions.Contains)
	workflow.RegisterPermissions(p)
	d := workflow.Definition{Key: "hotline.ticket", Version: 1, Name: "12345 工单", Steps: []workflow.Step{{Key: "dispatch", Name: "派单", Role: "dispatcher"}}}
	if err := d.Validate(p); err == nil {
		t.Fatal("dispatcher accepted before it may handle cases")
	}
	p.Grant("dispatcher", workflow.PermHandle)
	if err := d.Validate(p); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(nil); err == nil {
		t.Fatal("dispatcher accepted without a policy")
	}
}

// FuzzParseDefinition: whatever the input, no panic; an accepted definition is valid, and
// survives a round trip through JSON unchanged.
func FuzzParseDefinition(f *testing.F) {
	f.Add(goodDefinition)
	f.Add(`{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a","days":3}]}`)
	f.Add(`{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a"},{"key":"a","name":"b"}]}`)
	f.Add(`{"key":"k","version":1,"name":"n","steps":[{"key":"a","name":"a","days":-1,"role":"x"}]}`)
	f.Add(`{"key":" k ","version":9007199254740993,"name":"名","total_days":3650,"steps":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, data string) {
		d, err := workflow.ParseDefinition([]byte(data))
		if err != nil {
			if _, ok := i18n.As(err); !ok {
				t.Fatalf("error is not user-facing: %v", err)
			}
			return
		}
		if len(d.Steps) == 0 || len(d.Steps) > workflow.MaxSteps || d.Version < 1 || d.Key == "" || d.Name == "" {
			t.Fatalf("accepted an invalid definition: %+v", d)
		}
		for _, st := range d.Steps {
			if st.Days < 0 || st.Days > workflow.MaxStepDays {
				t.Fatalf("accepted days %d", st.Days)
			}
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		again, err := workflow.ParseDefinition(b)
		if err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(again)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed it:\n%s\n%s", b, b2)
		}
	})
}

// FuzzParseCursor: a cursor comes back from a URL; garbage is ErrBadCursor, never a panic.
func FuzzParseCursor(f *testing.F) {
	f.Add("MTc3MjQxNjgwMDAwMDAwMC4wMTk1YzFjMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDA")
	f.Add("")
	f.Add("LTEuYQ")
	f.Add("OTk5OTk5OTk5OTk5OTk5OTk5OS5h")
	f.Fuzz(func(t *testing.T, s string) {
		at, id, err := workflow.ParseCursor(s)
		if err != nil {
			if e, ok := i18n.As(err); !ok || e.Code != workflow.ErrBadCursor.Code {
				t.Fatalf("error %v", err)
			}
			return
		}
		if id == "" || len(id) > 64 || at.Before(time.Unix(0, 0)) || at.Location() != time.UTC {
			t.Fatalf("accepted %q → %s %q", s, at, id)
		}
	})
}

package notify

import (
	"testing"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/workflow"
)

// Whatever officers write in comments and correction items, and whatever an item is called,
// the message of a case event is one Send accepts: a refused message would be redelivered
// for ever and hold up the consumer.
func FuzzCaseMessage(f *testing.F) {
	f.Add("经营场所证明缺失", "经营场所使用证明", "个体工商户设立登记", "受理")
	f.Add("", "", "", "")
	f.Add("\x00\xff\xfe", "a\x00b", "\u202e", "\n")
	f.Fuzz(func(t *testing.T, comment, item, name, step string) {
		p := workflow.EventPayload{Comment: comment, Items: []string{item, item, item}, Outcome: workflow.OutcomeRejected}
		app := Application{ID: "app-1", Number: "20260302-140105-000001", ItemName: name, ItemNameEn: name,
			Applicant: authz.Subject{Kind: authz.Citizen, ID: "c1"}}
		for _, a := range []workflow.Action{workflow.ActionOpened, workflow.ActionAdvanced, workflow.ActionSuspended, workflow.ActionResumed,
			workflow.ActionTransferred, workflow.ActionWithdrawn, workflow.ActionClosed} {
			if _, _, err := caseMessage(a, p, app, step).check(); err != nil {
				t.Fatalf("%s: %v", a, err)
			}
		}
	})
}

package quality

import (
	"context"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/platform/authz"
)

// Access is the service as staff use it, from the console or the API: every method first
// checks the subject's right, so both surfaces authorize alike. A dataset's quality belongs to
// the catalogue resource it is attached to: reading it takes catalog.PermRead in the
// resource's division, and changing its rules, attaching it or running a check takes
// catalog.PermEdit there. A dataset not attached to a resource is nobody's to see here
// (ErrNoTarget).
type Access struct {
	Service *Service
	Policy  *authz.Policy
}

// Permissions Access checks.
const (
	PermRead = catalog.PermRead
	PermEdit = catalog.PermEdit
)

// Target returns what a dataset is attached to, if sub holds perm in its division.
func (a Access) Target(ctx context.Context, sub authz.Subject, datasetID string, perm authz.Permission) (*Target, error) {
	t, err := a.Service.Target(ctx, datasetID)
	if err != nil {
		return nil, err
	}
	if err := a.Policy.Authorize(sub, perm, t.DivisionCode); err != nil {
		return nil, err
	}
	return t, nil
}

// Targets lists the attached datasets sub may read.
func (a Access) Targets(ctx context.Context, sub authz.Subject) ([]Target, error) {
	ts, err := a.Service.Targets(ctx)
	if err != nil {
		return nil, err
	}
	out := []Target{}
	for _, t := range ts {
		if a.Policy.Allowed(sub, PermRead, t.DivisionCode) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Attach ties a dataset to a resource sub may edit; sub has read res with its own rights.
func (a Access) Attach(ctx context.Context, sub authz.Subject, datasetID string, res catalog.Resource) (Target, error) {
	if err := a.Policy.Authorize(sub, PermEdit, res.DivisionCode); err != nil {
		return Target{}, err
	}
	return a.Service.Attach(ctx, sub, datasetID, res)
}

// Rules lists the rules a run of the dataset applies.
func (a Access) Rules(ctx context.Context, sub authz.Subject, datasetID string) ([]Rule, error) {
	if _, err := a.Target(ctx, sub, datasetID, PermRead); err != nil {
		return nil, err
	}
	return a.Service.Rules(ctx, datasetID)
}

// SetRules replaces the dataset's explicit rules (see Service.SetRules).
func (a Access) SetRules(ctx context.Context, sub authz.Subject, datasetID string, rules []Rule) ([]Rule, error) {
	if _, err := a.Target(ctx, sub, datasetID, PermEdit); err != nil {
		return nil, err
	}
	return a.Service.SetRules(ctx, sub, datasetID, rules)
}

// AddRule adds an explicit rule to r.DatasetID.
func (a Access) AddRule(ctx context.Context, sub authz.Subject, r Rule) (Rule, error) {
	if _, err := a.Target(ctx, sub, r.DatasetID, PermEdit); err != nil {
		return Rule{}, err
	}
	return a.Service.AddRule(ctx, sub, r)
}

// DeleteRule removes an explicit rule of the dataset.
func (a Access) DeleteRule(ctx context.Context, sub authz.Subject, datasetID, ruleID string) error {
	if _, err := a.Target(ctx, sub, datasetID, PermEdit); err != nil {
		return err
	}
	return a.Service.DeleteRule(ctx, sub, datasetID, ruleID)
}

// Run checks the dataset now and stores the report (audited).
func (a Access) Run(ctx context.Context, sub authz.Subject, datasetID string) (Report, error) {
	if _, err := a.Target(ctx, sub, datasetID, PermEdit); err != nil {
		return Report{}, err
	}
	return a.Service.run(ctx, sub, datasetID)
}

// Report is the latest report of the dataset with up to limit findings (0: all stored).
func (a Access) Report(ctx context.Context, sub authz.Subject, datasetID string, limit int) (Report, error) {
	if _, err := a.Target(ctx, sub, datasetID, PermRead); err != nil {
		return Report{}, err
	}
	return a.Service.ReportFor(ctx, datasetID, limit)
}

// Summary aggregates the latest reports in scope, which must lie within a division sub may
// read: sc.Division, or sub's own when empty. For a department, the caller reads the
// department with its own rights and passes its division with its id.
func (a Access) Summary(ctx context.Context, sub authz.Subject, sc Scope) (Summary, error) {
	if sc.Division == "" {
		sc.Division = sub.Division
	}
	if err := a.Policy.Authorize(sub, PermRead, sc.Division); err != nil {
		return Summary{}, err
	}
	return a.Service.DepartmentReport(ctx, sc)
}

package catalog

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Service holds the catalog's rules: validation, lifecycle, versions and authorization.
type Service struct {
	d      *db.DB
	policy *authz.Policy
	depts  Departments
	audit  AuditFunc
	now    func() time.Time
}

// New returns the catalog service on d. policy must carry RegisterPermissions' grants and
// nest divisions as divisions.Contains does; depts is the organisation service.
func New(d *db.DB, policy *authz.Policy, depts Departments, opts Options) *Service {
	s := &Service{d: d, policy: policy, depts: depts, audit: opts.Audit, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Service) clock() time.Time { return db.Now(s.now()) }

func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action string, r Resource, detail map[string]any) error {
	if s.audit == nil {
		return nil
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["code"], detail["division"] = r.Code, r.DivisionCode
	if err := s.audit(ctx, tx, actor, action, "catalog_resource:"+r.ID, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, r.ID, err)
	}
	return nil
}

// mayWork reports whether actor edits or reviews resources of division.
func (s *Service) mayWork(actor authz.Subject, division string) bool {
	return s.policy.Allowed(actor, PermEdit, division) || s.policy.Allowed(actor, PermReview, division)
}

// mayRead reports whether actor may read the published catalog.
func (s *Service) mayRead(actor authz.Subject) error {
	return s.policy.Authorize(actor, PermRead, actor.Division)
}

// provider resolves the draft's provider department — by id, else by exact name within the
// actor's scope, else the actor's own department — and checks the actor may edit its drafts.
func (s *Service) provider(ctx context.Context, actor authz.Subject, d *Draft) (org.Department, error) {
	if actor.Kind == "" {
		return org.Department{}, i18n.ErrUnauthorized
	}
	id := d.ProviderDeptID
	if id == "" && d.Provider != "" {
		deps, err := s.depts.ListDepartments(ctx, actor, org.DepartmentFilter{Query: d.Provider, Limit: 1000})
		if err != nil {
			return org.Department{}, err
		}
		var hits []org.Department
		for _, dep := range deps {
			if dep.Name == d.Provider {
				hits = append(hits, dep)
			}
		}
		switch len(hits) {
		case 0:
			return org.Department{}, invalid("provider", "catalog.provider.unknown",
				fmt.Sprintf("在您的管辖范围内没有名为“%s”的部门", d.Provider), fmt.Sprintf("no department named %q within your scope", d.Provider))
		case 1:
			id = hits[0].ID
		default:
			return org.Department{}, invalid("provider", "catalog.provider.ambiguous",
				fmt.Sprintf("有多个名为“%s”的部门，请填写部门 ID", d.Provider), fmt.Sprintf("several departments are named %q; give the department id", d.Provider))
		}
	}
	if id == "" {
		id = actor.Dept
	}
	dep, err := s.depts.GetDepartment(ctx, actor, id)
	if e, ok := i18n.As(err); ok && e.Code == i18n.ErrNotFound.Code {
		return dep, invalid("provider_dept_id", "catalog.provider.unknown", "资源提供方部门不存在", "no such provider department")
	}
	if err != nil {
		return dep, err
	}
	if !dep.Active {
		return dep, invalid("provider_dept_id", "catalog.provider.inactive", "资源提供方部门已停用", "the provider department is disabled")
	}
	if err := s.policy.Authorize(actor, PermEdit, dep.DivisionCode); err != nil {
		return dep, err
	}
	d.ProviderDeptID, d.Provider = dep.ID, dep.Name
	return dep, nil
}

func firstError(errs []*i18n.Error) error {
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// CreateDraft registers a resource as a draft of its provider department. Without a code,
// one is assigned (see ParseCode).
func (s *Service) CreateDraft(ctx context.Context, actor authz.Subject, d Draft) (Resource, error) {
	if err := firstError(normalize(&d)); err != nil {
		return Resource{}, err
	}
	dep, err := s.provider(ctx, actor, &d)
	if err != nil {
		return Resource{}, err
	}
	var out Resource
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		out, err = s.create(ctx, tx, actor, d, dep)
		return err
	})
	return out, err
}

func (s *Service) create(ctx context.Context, tx *db.Tx, actor authz.Subject, d Draft, dep org.Department) (Resource, error) {
	if d.Code == "" {
		code, err := s.assignCode(ctx, tx, d.Classification, dep.DivisionCode)
		if err != nil {
			return Resource{}, err
		}
		d.Code = code
	}
	now := s.clock()
	r := Resource{ID: db.NewID(), Draft: d, DivisionCode: dep.DivisionCode, Status: StatusDraft, CreatedAt: now, UpdatedAt: now}
	if err := insertResource(ctx, tx, r, divisions.Ancestors(dep.DivisionCode)); db.IsUniqueViolation(err) {
		return r, ErrCodeTaken.Wrap(err)
	} else if err != nil {
		return r, fmt.Errorf("create resource %s: %w", d.Code, err)
	}
	return r, s.record(ctx, tx, actor, ActionCreate, r, map[string]any{"name": r.Name, "provider_dept_id": r.ProviderDeptID})
}

// assignCode takes the next free code of the classification in the division.
func (s *Service) assignCode(ctx context.Context, tx *db.Tx, c Classification, division string) (string, error) {
	prefix := c.Prefix()
	for range 1000 {
		n, err := nextSequence(ctx, tx, prefix+"/"+division)
		if err != nil {
			return "", fmt.Errorf("next code in %s/%s: %w", prefix, division, err)
		}
		code := prefix + "/" + sequenceCode(division, n)
		taken, err := codeExists(ctx, tx, code)
		if err != nil {
			return "", fmt.Errorf("check code %s: %w", code, err)
		}
		if !taken {
			return code, nil
		}
	}
	return "", ErrCodeTaken
}

// UpdateDraft replaces a resource's metadata. It works on a draft, and on a published or
// withdrawn resource, which it turns into a draft revision (the published version stays in
// force until the revision is approved). A resource under review cannot change. Once a
// resource has been published its code, and so its classification, is frozen.
func (s *Service) UpdateDraft(ctx context.Context, actor authz.Subject, id string, d Draft) (Resource, error) {
	if err := firstError(normalize(&d)); err != nil {
		return Resource{}, err
	}
	var out Resource
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := s.working(ctx, tx, actor, id, PermEdit)
		if err != nil {
			return err
		}
		out, err = s.update(ctx, tx, actor, cur, d)
		return err
	})
	return out, err
}

// working reads the working copy of id and checks actor holds perm over its division.
func (s *Service) working(ctx context.Context, tx *db.Tx, actor authz.Subject, id string, perm authz.Permission) (Resource, error) {
	if actor.Kind == "" {
		return Resource{}, i18n.ErrUnauthorized
	}
	if err := lockResource(ctx, tx, "id", id); err != nil {
		return Resource{}, fmt.Errorf("lock resource %s: %w", id, err)
	}
	cur, err := getResource(ctx, tx, id)
	if isNoRow(err) {
		return cur, i18n.ErrNotFound
	}
	if err != nil {
		return cur, fmt.Errorf("read resource %s: %w", id, err)
	}
	return cur, s.policy.Authorize(actor, perm, cur.DivisionCode)
}

func (s *Service) update(ctx context.Context, tx *db.Tx, actor authz.Subject, cur Resource, d Draft) (Resource, error) {
	if cur.Status == StatusSubmitted {
		return cur, ErrState
	}
	if d.ProviderDeptID == "" && d.Provider == "" {
		d.ProviderDeptID = cur.ProviderDeptID
	}
	dep, err := s.provider(ctx, actor, &d)
	if err != nil {
		return cur, err
	}
	if dep.DivisionCode != cur.DivisionCode {
		return cur, invalid("provider_dept_id", "catalog.provider.division",
			"资源提供方只能改为本资源所属行政区划的部门", "the provider can only change to a department of the resource's own division")
	}
	curPrefix := cur.Classification.Prefix()
	switch {
	case cur.Version > 0:
		if (d.Code != "" && d.Code != cur.Code) || d.Classification.Prefix() != curPrefix {
			return cur, ErrCodeFrozen
		}
		d.Code = cur.Code
	case d.Code == "" && d.Classification.Prefix() == curPrefix:
		d.Code = cur.Code
	case d.Code == "":
		if d.Code, err = s.assignCode(ctx, tx, d.Classification, cur.DivisionCode); err != nil {
			return cur, err
		}
	}
	next := cur
	next.Draft, next.Status, next.UpdatedAt = d, StatusDraft, s.clock()
	if err := updateResource(ctx, tx, next); db.IsUniqueViolation(err) {
		return cur, ErrCodeTaken.Wrap(err)
	} else if err != nil {
		return cur, fmt.Errorf("update resource %s: %w", cur.ID, err)
	}
	return next, s.record(ctx, tx, actor, ActionUpdate, next, map[string]any{"name": next.Name, "from_status": string(cur.Status)})
}

// Submit sends a draft for review.
func (s *Service) Submit(ctx context.Context, actor authz.Subject, id string) (Resource, error) {
	var out Resource
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := s.working(ctx, tx, actor, id, PermEdit)
		if err != nil {
			return err
		}
		if cur.Status != StatusDraft {
			return ErrState
		}
		out = cur
		out.Status, out.SubmittedBy, out.RejectReason, out.UpdatedAt = StatusSubmitted, actor.ID, "", s.clock()
		if err := updateResource(ctx, tx, out); err != nil {
			return fmt.Errorf("submit resource %s: %w", id, err)
		}
		return s.record(ctx, tx, actor, ActionSubmit, out, nil)
	})
	return out, err
}

func reasonText(reason string, required bool) (string, error) {
	v, e := text("reason", "理由", "the reason", reason, required, 1000)
	if e != nil {
		return "", e
	}
	return v, nil
}

// Review decides on a submitted resource. Approval publishes it as the next version: a
// frozen snapshot is kept, it becomes the version in force and dgov.catalog.published is
// published. Rejection sends it back to draft with the reason, which is required.
// Nobody reviews their own submission.
func (s *Service) Review(ctx context.Context, actor authz.Subject, id string, approve bool, reason string) (Resource, error) {
	reason, err := reasonText(reason, !approve)
	if err != nil {
		return Resource{}, err
	}
	var out Resource
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := s.working(ctx, tx, actor, id, PermReview)
		if err != nil {
			return err
		}
		if cur.Status != StatusSubmitted {
			return ErrState
		}
		if actor.ID == cur.SubmittedBy {
			return ErrSelfReview
		}
		now := s.clock()
		out = cur
		out.UpdatedAt = now
		if !approve {
			out.Status, out.RejectReason = StatusDraft, reason
			if err := updateResource(ctx, tx, out); err != nil {
				return fmt.Errorf("reject resource %s: %w", id, err)
			}
			return s.record(ctx, tx, actor, ActionReject, out, map[string]any{"reason": reason})
		}
		out.Status, out.Version, out.RejectReason, out.PublishedAt = StatusPublished, cur.Version+1, "", &now
		out.LiveVersion = out.Version
		if err := insertVersion(ctx, tx, out, actor.String(), now); err != nil {
			return fmt.Errorf("snapshot resource %s v%d: %w", id, out.Version, err)
		}
		if err := updateResource(ctx, tx, out); err != nil {
			return fmt.Errorf("publish resource %s: %w", id, err)
		}
		if _, err := bus.Publish(ctx, tx, EventPublished, eventOf(out, reason)); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, ActionApprove, out, map[string]any{"version": out.Version, "reason": reason})
	})
	return out, err
}

func eventOf(r Resource, reason string) Event {
	return Event{ResourceID: r.ID, Code: r.Code, Name: r.Name, Version: r.Version, DivisionCode: r.DivisionCode,
		ProviderDeptID: r.ProviderDeptID, ShareType: r.ShareType, OpenType: r.OpenType, Reason: reason}
}

// Withdraw takes a resource's version in force out of the catalog (its versions are kept).
// A published working copy becomes withdrawn; a draft revision stays a draft.
func (s *Service) Withdraw(ctx context.Context, actor authz.Subject, id, reason string) (Resource, error) {
	reason, err := reasonText(reason, true)
	if err != nil {
		return Resource{}, err
	}
	var out Resource
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := s.working(ctx, tx, actor, id, PermReview)
		if err != nil {
			return err
		}
		if cur.LiveVersion == 0 {
			return ErrState
		}
		out = cur
		out.LiveVersion, out.UpdatedAt = 0, s.clock()
		if out.Status == StatusPublished {
			out.Status = StatusWithdrawn
		}
		if err := updateResource(ctx, tx, out); err != nil {
			return fmt.Errorf("withdraw resource %s: %w", id, err)
		}
		ev := eventOf(out, reason)
		ev.Version = cur.LiveVersion
		if _, err := bus.Publish(ctx, tx, EventWithdrawn, ev); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, ActionWithdraw, out, map[string]any{"version": cur.LiveVersion, "reason": reason})
	})
	return out, err
}

// Get returns a resource: the working copy to its editors and reviewers, otherwise the
// version in force to anyone who reads the catalog.
func (s *Service) Get(ctx context.Context, actor authz.Subject, id string) (Resource, error) {
	if actor.Kind == "" {
		return Resource{}, i18n.ErrUnauthorized
	}
	cur, err := getResource(ctx, s.d, id)
	if isNoRow(err) {
		return cur, i18n.ErrNotFound
	}
	if err != nil {
		return cur, fmt.Errorf("get resource %s: %w", id, err)
	}
	if s.mayWork(actor, cur.DivisionCode) {
		return cur, nil
	}
	if err := s.mayRead(actor); err != nil {
		return Resource{}, err
	}
	if cur.LiveVersion == 0 {
		return Resource{}, i18n.ErrNotFound // unpublished work is not shown outside its division
	}
	return s.GetVersion(ctx, actor, id, cur.LiveVersion)
}

// GetVersion returns one published version of a resource.
func (s *Service) GetVersion(ctx context.Context, actor authz.Subject, id string, version int) (Resource, error) {
	if err := s.mayRead(actor); err != nil {
		return Resource{}, err
	}
	r, err := getVersion(ctx, s.d, id, version)
	if isNoRow(err) {
		return r, i18n.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("get resource %s v%d: %w", id, version, err)
	}
	return r, nil
}

// ListVersions lists a resource's published versions, oldest first.
func (s *Service) ListVersions(ctx context.Context, actor authz.Subject, id string) ([]Resource, error) {
	if err := s.mayRead(actor); err != nil {
		return nil, err
	}
	return listVersions(ctx, s.d, id)
}

// List lists resources (see Filter).
func (s *Service) List(ctx context.Context, actor authz.Subject, f Filter) ([]Resource, error) {
	switch f.Status {
	case "", StatusPublished:
		if err := s.mayRead(actor); err != nil {
			return nil, err
		}
		return listLive(ctx, s.d, f, false)
	case StatusDraft, StatusSubmitted, StatusWithdrawn:
		if actor.Kind == "" {
			return nil, i18n.ErrUnauthorized
		}
		if !s.mayWork(actor, actor.Division) {
			return nil, i18n.ErrForbidden
		}
		return listWorking(ctx, s.d, actor.Division, f)
	}
	return nil, &i18n.Error{Code: "catalog.status.invalid", Status: http.StatusBadRequest, Field: "status",
		Msg: i18n.T("状态须为 draft、submitted、published 或 withdrawn", "the status must be draft, submitted, published or withdrawn")}
}

// ListAll is List over every page.
func (s *Service) ListAll(ctx context.Context, actor authz.Subject, f Filter) ([]Resource, error) {
	f.Limit, f.Offset = 1000, 0
	var out []Resource
	for {
		page, err := s.List(ctx, actor, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out, nil
		}
		f.Offset += len(page)
	}
}

// OpenResources lists the versions in force that are open to the public (无条件开放 or
// 有条件开放) in division and below ("" for all): the public open-data catalog, no login needed.
func (s *Service) OpenResources(ctx context.Context, division string) ([]Resource, error) {
	f := Filter{Division: division, Limit: 1000}
	var out []Resource
	for {
		page, err := listLive(ctx, s.d, f, true)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out, nil
		}
		f.Offset += len(page)
	}
}

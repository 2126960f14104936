package exchange

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// record appends a staff action to the audit log inside tx.
func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if s.audit == nil {
		return nil
	}
	actorDiv := actor.Division
	name := actor.String()
	if actor.Kind == "" {
		name = audit.ActorSystem
	}
	if _, err := s.audit.AppendTx(ctx, tx, audit.Entry{Actor: name, ActorDivision: actorDiv, Action: action, Object: object,
		Outcome: audit.OutcomeOK, IP: httpx.ClientIPFrom(ctx), RequestID: httpx.RequestID(ctx), Detail: detail}); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

func staffOnly(actor authz.Subject) error {
	switch actor.Kind {
	case "":
		return i18n.ErrUnauthorized
	case authz.Staff:
		return nil
	}
	return i18n.ErrForbidden
}

// live returns the version of a resource in force in the catalogue.
func (s *Service) live(ctx context.Context, actor authz.Subject, id string) (catalog.Resource, error) {
	r, err := s.res.Get(ctx, actor, id)
	if err != nil {
		return r, err
	}
	if r.LiveVersion == 0 {
		return catalog.Resource{}, i18n.ErrNotFound
	}
	if r.Status != catalog.StatusPublished || r.Version != r.LiveVersion {
		// The provider's own staff see the working copy; the request is for the version in force.
		return s.res.GetVersion(ctx, actor, id, r.LiveVersion)
	}
	return r, nil
}

// cleanFields checks names against the resource's items and returns them in item order,
// without repeats.
func cleanFields(items []catalog.DataItem, fields []string) ([]string, error) {
	if len(fields) == 0 {
		return nil, invalid("fields", "exchange.fields.required", "请选择需要的信息项", "name the data items you need")
	}
	want := map[string]bool{}
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if !slices.ContainsFunc(items, func(it catalog.DataItem) bool { return it.Name == f }) {
			return nil, invalid("fields", "exchange.fields.unknown", "资源没有名为“%s”的信息项", "the resource has no data item %q", clip(f))
		}
		want[f] = true
	}
	var out []string
	for _, it := range items {
		if want[it.Name] {
			out = append(out, it.Name)
		}
	}
	return out, nil
}

func clip(v string) string {
	if utf8.RuneCountInString(v) <= 40 {
		return v
	}
	return string([]rune(v)[:40]) + "…"
}

func purposeText(p string) (string, error) {
	p = strings.TrimSpace(p)
	switch n := utf8.RuneCountInString(p); {
	case n == 0:
		return "", invalid("purpose", "exchange.purpose.required", "请说明使用用途", "state the purpose of use")
	case n > 500:
		return "", invalid("purpose", "exchange.purpose.too_long", "使用用途最多500字", "the purpose is at most 500 characters")
	}
	return p, nil
}

// defaultScope is the row scope of a consumer in division: its own division, or every row
// for a provincial department.
func defaultScope(division string) string {
	if d, ok := divisions.Lookup(division); ok && d.Level == divisions.Province {
		return ""
	}
	return division
}

// ApplyInput is an application.
type ApplyInput struct {
	ResourceID string
	Fields     []string // data-item names
	Purpose    string
	// ClientID optionally names the consumer's system (its OpenID client) now; else BindClient later.
	ClientID string
}

// Apply applies for a resource on behalf of the actor's department. Unconditional resources
// are granted at once (the request is approved and the grant returned); conditional ones wait
// for the provider with a deadline of Options.AnswerWorkdays working days; resources not
// shared are refused at once with their stated basis.
func (s *Service) Apply(ctx context.Context, actor authz.Subject, in ApplyInput) (SharingRequest, *Grant, error) {
	if err := staffOnly(actor); err != nil {
		return SharingRequest{}, nil, err
	}
	if actor.Dept == "" {
		return SharingRequest{}, nil, i18n.ErrForbidden
	}
	if err := s.policy.Authorize(actor, PermApply, actor.Division); err != nil {
		return SharingRequest{}, nil, err
	}
	purpose, err := purposeText(in.Purpose)
	if err != nil {
		return SharingRequest{}, nil, err
	}
	res, err := s.live(ctx, actor, in.ResourceID)
	if err != nil {
		return SharingRequest{}, nil, err
	}
	fields, err := cleanFields(res.Items, in.Fields)
	if err != nil {
		return SharingRequest{}, nil, err
	}
	dep, err := s.depts.GetDepartment(ctx, actor, actor.Dept)
	if err != nil {
		return SharingRequest{}, nil, err
	}
	if !dep.Active {
		return SharingRequest{}, nil, i18n.ErrForbidden
	}
	if dep.ID == res.ProviderDeptID {
		return SharingRequest{}, nil, ErrOwnResource
	}
	if in.ClientID != "" {
		if err := s.checkClient(ctx, in.ClientID, dep.ID); err != nil {
			return SharingRequest{}, nil, err
		}
	}
	now := s.clock()
	r := SharingRequest{ID: db.NewID(), ResourceID: res.ID, ResourceCode: res.Code, ResourceName: res.Name, ResourceVersion: res.Version,
		ShareType: res.ShareType, ProviderDeptID: res.ProviderDeptID, ProviderDivision: res.DivisionCode,
		ConsumerDeptID: dep.ID, ConsumerDeptName: dep.Name, ConsumerDivision: dep.DivisionCode, ClientID: in.ClientID,
		Fields: fields, Purpose: purpose, Status: StatusPending, Applicant: actor.String(), CreatedAt: now}
	var g *Grant
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM exchange_requests WHERE consumer_dept_id = ? AND resource_id = ? AND status = 'pending'`,
			r.ConsumerDeptID, r.ResourceID).Scan(&n); err != nil {
			return fmt.Errorf("check pending requests: %w", err)
		}
		if n > 0 {
			return ErrDuplicate
		}
		switch res.ShareType {
		case catalog.ShareUnconditional:
			r.Status, r.DecidedBy, r.DecidedAt = StatusApproved, audit.ActorSystem, &now
			r.Reason = "无条件共享 (shared unconditionally)"
		case catalog.ShareConditional:
			due := db.Now(s.opts.Calendar.AddWorkdays(now, s.opts.AnswerWorkdays))
			r.DueAt = &due
		default:
			r.Status, r.DecidedBy, r.DecidedAt = StatusRefused, audit.ActorSystem, &now
			r.Reason = "不予共享 (not shared)"
			if res.ShareCondition != "" {
				r.Reason += "：" + res.ShareCondition
			}
		}
		if err := insertRequest(ctx, tx, r); err != nil {
			return fmt.Errorf("insert request: %w", err)
		}
		if err := s.record(ctx, tx, actor, ActionApply, "exchange_request:"+r.ID, map[string]any{
			"resource_id": r.ResourceID, "fields": r.Fields, "purpose": r.Purpose, "status": string(r.Status), "due_at": r.DueAt}); err != nil {
			return err
		}
		if r.Status == StatusApproved {
			gr, err := s.issue(ctx, tx, r, r.Fields, Decision{})
			if err != nil {
				return err
			}
			g = &gr
		}
		return nil
	})
	if err != nil {
		return SharingRequest{}, nil, err
	}
	return s.withOverdue(r), g, nil
}

func (s *Service) withOverdue(r SharingRequest) SharingRequest {
	r.Overdue = r.Status == StatusPending && r.DueAt != nil && s.clock().After(*r.DueAt)
	return r
}

// issue writes the grant of an approved request.
func (s *Service) issue(ctx context.Context, tx *db.Tx, r SharingRequest, fields []string, d Decision) (Grant, error) {
	now := s.clock()
	g := Grant{ID: db.NewID(), RequestID: r.ID, ResourceID: r.ResourceID, ProviderDeptID: r.ProviderDeptID,
		ConsumerDeptID: r.ConsumerDeptID, ConsumerDeptName: r.ConsumerDeptName, ConsumerDivision: r.ConsumerDivision,
		ClientID: r.ClientID, Fields: fields, RowScope: defaultScope(r.ConsumerDivision),
		RatePerMinute: s.opts.RatePerMinute, DailyQuota: s.opts.DailyQuota, ValidUntil: now.Add(s.opts.GrantValidity), CreatedAt: now}
	if d.RowScope != nil {
		scope := strings.TrimSpace(*d.RowScope)
		// The provider may narrow the scope, never widen it beyond the consumer's division.
		if g.RowScope != "" && (scope == "" || !divisions.Contains(g.RowScope, scope)) {
			return g, invalid("row_scope", "exchange.row_scope", "数据范围只能限定在使用部门所在行政区划之内", "the row scope must lie within the consumer's division")
		}
		if scope != "" {
			if _, ok := divisions.Lookup(scope); !ok {
				return g, invalid("row_scope", "exchange.row_scope", "未知的行政区划代码", "unknown division code")
			}
		}
		g.RowScope = scope
	}
	if d.RatePerMinute > 0 {
		g.RatePerMinute = d.RatePerMinute
	}
	if d.DailyQuota > 0 {
		g.DailyQuota = d.DailyQuota
	}
	if d.ValidUntil != nil {
		if !d.ValidUntil.After(now) {
			return g, invalid("valid_until", "exchange.valid_until", "有效期须晚于当前时间", "the grant must be valid until a time in the future")
		}
		g.ValidUntil = db.Now(*d.ValidUntil)
	}
	if g.ClientID != "" {
		if err := revokeExpired(ctx, tx, g.ClientID, g.ResourceID, now); err != nil {
			return g, err
		}
	}
	if err := insertGrant(ctx, tx, g); db.IsUniqueViolation(err) {
		return g, ErrClientTaken.Wrap(err)
	} else if err != nil {
		return g, fmt.Errorf("insert grant: %w", err)
	}
	return g, nil
}

// revokeExpired retires a client's expired grant on a resource, so a new one can take its place.
func revokeExpired(ctx context.Context, tx *db.Tx, clientID, resourceID string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE exchange_grants SET revoked = TRUE, revoked_at = ?
		WHERE client_id = ? AND resource_id = ? AND revoked = FALSE AND valid_until <= ?`, now, clientID, resourceID, now)
	if err != nil {
		return fmt.Errorf("retire expired grants: %w", err)
	}
	return nil
}

// Decision is a provider's answer.
type Decision struct {
	Approve bool
	// Fields approved: a subset of those asked for; empty approves all of them.
	Fields []string
	// Reason is required for a refusal (国发〔2016〕51号: a refusal must give its reasons).
	Reason string
	// Optional terms of the grant; zero values take Options' defaults.
	RowScope      *string // narrower than the consumer's division; nil = the default
	RatePerMinute int
	DailyQuota    int
	ValidUntil    *time.Time
}

// Decide answers a pending request addressed to the actor's department. An approval issues
// the grant (possibly for fewer items than asked); a refusal must give its reasons. An answer
// after the deadline is still accepted (and stays visible as late in the audit log).
func (s *Service) Decide(ctx context.Context, actor authz.Subject, requestID string, d Decision) (SharingRequest, *Grant, error) {
	if err := staffOnly(actor); err != nil {
		return SharingRequest{}, nil, err
	}
	reason := strings.TrimSpace(d.Reason)
	if !d.Approve && reason == "" {
		return SharingRequest{}, nil, ErrReasonRequired
	}
	if utf8.RuneCountInString(reason) > 1000 {
		return SharingRequest{}, nil, invalid("reason", "exchange.reason.too_long", "理由最多1000字", "the reason is at most 1000 characters")
	}
	var out SharingRequest
	var g *Grant
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		r, err := s.lockPending(ctx, tx, requestID, actor, true)
		if err != nil {
			return err
		}
		now := s.clock()
		late := r.DueAt != nil && now.After(*r.DueAt)
		r.DecidedBy, r.DecidedAt, r.Reason = actor.String(), &now, reason
		if !d.Approve {
			r.Status = StatusRefused
			if err := updateDecision(ctx, tx, r); err != nil {
				return fmt.Errorf("refuse request %s: %w", r.ID, err)
			}
			out = r
			return s.record(ctx, tx, actor, ActionRefuse, "exchange_request:"+r.ID, map[string]any{"reason": reason, "late": late})
		}
		fields := r.Fields
		if len(d.Fields) > 0 {
			for _, f := range d.Fields {
				if !slices.Contains(r.Fields, f) {
					return invalid("fields", "exchange.fields.not_requested", "信息项“%s”不在申请范围内", "data item %q was not asked for", clip(f))
				}
			}
			fields = slices.DeleteFunc(slices.Clone(r.Fields), func(f string) bool { return !slices.Contains(d.Fields, f) })
		}
		r.Status = StatusApproved
		if err := updateDecision(ctx, tx, r); err != nil {
			return fmt.Errorf("approve request %s: %w", r.ID, err)
		}
		gr, err := s.issue(ctx, tx, r, fields, d)
		if err != nil {
			return err
		}
		g, out = &gr, r
		return s.record(ctx, tx, actor, ActionApprove, "exchange_request:"+r.ID, map[string]any{"grant_id": gr.ID,
			"fields": gr.Fields, "row_scope": gr.RowScope, "rate_per_minute": gr.RatePerMinute, "daily_quota": gr.DailyQuota,
			"valid_until": gr.ValidUntil, "late": late})
	})
	if err != nil {
		return SharingRequest{}, nil, err
	}
	return s.withOverdue(out), g, nil
}

// Withdraw takes back a pending request of the actor's department.
func (s *Service) Withdraw(ctx context.Context, actor authz.Subject, requestID string) (SharingRequest, error) {
	if err := staffOnly(actor); err != nil {
		return SharingRequest{}, err
	}
	var out SharingRequest
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		r, err := s.lockPending(ctx, tx, requestID, actor, false)
		if err != nil {
			return err
		}
		now := s.clock()
		r.Status, r.DecidedBy, r.DecidedAt = StatusWithdrawn, actor.String(), &now
		if err := updateDecision(ctx, tx, r); err != nil {
			return fmt.Errorf("withdraw request %s: %w", r.ID, err)
		}
		out = r
		return s.record(ctx, tx, actor, ActionWithdraw, "exchange_request:"+r.ID, nil)
	})
	return out, err
}

// ExpireOverdue expires pending requests left unanswered Options.ExpireAfterWorkdays working
// days past their deadline (a periodic job calls it); it does nothing when that option is 0.
func (s *Service) ExpireOverdue(ctx context.Context) (int, error) {
	if s.opts.ExpireAfterWorkdays <= 0 {
		return 0, nil
	}
	now := s.clock()
	late, err := queryRequests(ctx, s.d, `WHERE status = 'pending' AND due_at < ? ORDER BY due_at LIMIT 1000`, now)
	if err != nil {
		return 0, fmt.Errorf("list overdue requests: %w", err)
	}
	n := 0
	for _, r := range late {
		if s.opts.Calendar.AddWorkdays(*r.DueAt, s.opts.ExpireAfterWorkdays).After(now) {
			continue
		}
		err := s.d.InTx(ctx, func(tx *db.Tx) error {
			cur, err := lockRequest(ctx, tx, r.ID)
			if err != nil || cur.Status != StatusPending {
				return err
			}
			cur.Status, cur.DecidedBy, cur.DecidedAt = StatusExpired, audit.ActorSystem, &now
			cur.Reason = "逾期未答复 (no answer by the deadline)"
			if err := updateDecision(ctx, tx, cur); err != nil {
				return err
			}
			n++
			return s.record(ctx, tx, authz.Subject{}, ActionExpire, "exchange_request:"+cur.ID, map[string]any{"due_at": cur.DueAt})
		})
		if err != nil {
			return n, fmt.Errorf("expire request %s: %w", r.ID, err)
		}
	}
	return n, nil
}

// mayReadDept checks actor may see the requests and grants of department deptID: its own
// staff, or holders of PermRead over its division.
func (s *Service) mayReadDept(ctx context.Context, actor authz.Subject, deptID string) error {
	if err := staffOnly(actor); err != nil {
		return err
	}
	if deptID == "" {
		return invalid("department_id", "exchange.department.required", "请指定部门", "name the department")
	}
	if actor.Dept == deptID && s.policy.Allowed(actor, PermRead, actor.Division) {
		return nil
	}
	dep, err := s.depts.GetDepartment(ctx, actor, deptID)
	if err != nil {
		return err
	}
	return s.policy.Authorize(actor, PermRead, dep.DivisionCode)
}

// RequestFilter selects requests of one department, as provider or consumer.
type RequestFilter struct {
	ProviderDeptID string // requests addressed to this department, or
	ConsumerDeptID string // requests made by it
	Status         Status // "" for any
	OverdueOnly    bool   // pending past the deadline
	Limit, Offset  int    // default 100, at most 1000
}

// ListRequests lists requests, newest first (by deadline, soonest first, for pending ones of a provider).
func (s *Service) ListRequests(ctx context.Context, actor authz.Subject, f RequestFilter) ([]SharingRequest, error) {
	var where string
	var args []any
	switch {
	case f.ProviderDeptID != "":
		if err := s.mayReadDept(ctx, actor, f.ProviderDeptID); err != nil {
			return nil, err
		}
		where, args = `WHERE provider_dept_id = ?`, []any{f.ProviderDeptID}
	default:
		if err := s.mayReadDept(ctx, actor, f.ConsumerDeptID); err != nil {
			return nil, err
		}
		where, args = `WHERE consumer_dept_id = ?`, []any{f.ConsumerDeptID}
	}
	if f.OverdueOnly {
		f.Status = StatusPending
		where += ` AND due_at < ?`
		args = append(args, s.clock())
	}
	if f.Status != "" {
		if _, ok := StatusNames[f.Status]; !ok {
			return nil, invalid("status", "exchange.status", "未知的状态", "unknown status")
		}
		where += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	order := ` ORDER BY created_at DESC, id DESC`
	if f.Status == StatusPending {
		order = ` ORDER BY due_at, id`
	}
	args = append(args, f.Limit, max(f.Offset, 0))
	out, err := queryRequests(ctx, s.d, where+order+` LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	for i := range out {
		out[i] = s.withOverdue(out[i])
	}
	return out, nil
}

// Pending lists the requests a provider department must still answer, soonest deadline first.
func (s *Service) Pending(ctx context.Context, actor authz.Subject, providerDeptID string) ([]SharingRequest, error) {
	return s.ListRequests(ctx, actor, RequestFilter{ProviderDeptID: providerDeptID, Status: StatusPending, Limit: 1000})
}

// Overdue lists a provider department's pending requests past their deadline.
func (s *Service) Overdue(ctx context.Context, actor authz.Subject, providerDeptID string) ([]SharingRequest, error) {
	return s.ListRequests(ctx, actor, RequestFilter{ProviderDeptID: providerDeptID, OverdueOnly: true, Limit: 1000})
}

// Responsibilities is the responsibility list (责任清单) of a provider department: the
// requests it must answer, by their deadline (overdue ones flagged), then the grants it must
// serve, to whom, until when. Overdue items come first.
func (s *Service) Responsibilities(ctx context.Context, actor authz.Subject, providerDeptID string) ([]Responsibility, error) {
	if err := s.mayReadDept(ctx, actor, providerDeptID); err != nil {
		return nil, err
	}
	now := s.clock()
	pending, err := queryRequests(ctx, s.d, `WHERE provider_dept_id = ? AND status = 'pending' ORDER BY due_at, id`, providerDeptID)
	if err != nil {
		return nil, fmt.Errorf("responsibilities: %w", err)
	}
	var out []Responsibility
	for _, r := range pending {
		it := Responsibility{Kind: "answer", RequestID: r.ID, ResourceID: r.ResourceID, ResourceName: r.ResourceName,
			ConsumerDeptID: r.ConsumerDeptID, ConsumerDeptName: r.ConsumerDeptName, Fields: r.Fields, Purpose: r.Purpose}
		if r.DueAt != nil {
			it.Due, it.Overdue = *r.DueAt, now.After(*r.DueAt)
		}
		out = append(out, it)
	}
	rows, err := s.d.Query(ctx, `SELECT g.id, g.request_id, g.resource_id, r.resource_name, g.consumer_dept_id, g.consumer_dept_name,
		g.fields, r.purpose, g.valid_until, g.client_id
		FROM exchange_grants g JOIN exchange_requests r ON r.id = g.request_id
		WHERE g.provider_dept_id = ? AND g.revoked = FALSE AND g.valid_until > ? ORDER BY g.valid_until, g.id`, providerDeptID, now)
	if err != nil {
		return nil, fmt.Errorf("responsibilities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		it := Responsibility{Kind: "provide"}
		var fields, client string
		if err := rows.Scan(&it.GrantID, &it.RequestID, &it.ResourceID, &it.ResourceName, &it.ConsumerDeptID, &it.ConsumerDeptName,
			&fields, &it.Purpose, &it.Due, &client); err != nil {
			return nil, fmt.Errorf("responsibilities: %w", err)
		}
		if it.Fields, err = parseList(fields); err != nil {
			return nil, err
		}
		it.Due, it.Bound = it.Due.UTC(), client != ""
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("responsibilities: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Responsibility) int {
		switch {
		case a.Overdue && !b.Overdue:
			return -1
		case b.Overdue && !a.Overdue:
			return 1
		}
		return 0
	})
	return out, nil
}

// GrantOf returns the grant issued for a request, to the provider's and consumer's staff.
func (s *Service) GrantOf(ctx context.Context, actor authz.Subject, requestID string) (Grant, error) {
	g, err := grantOfRequest(ctx, s.d, requestID)
	if isNoRow(err) {
		return g, i18n.ErrNotFound
	}
	if err != nil {
		return g, fmt.Errorf("read grant of %s: %w", requestID, err)
	}
	if s.mayReadDept(ctx, actor, g.ConsumerDeptID) != nil {
		if err := s.mayReadDept(ctx, actor, g.ProviderDeptID); err != nil {
			return Grant{}, err
		}
	}
	return g, nil
}

// Grants lists a consumer department's grants (live and past), newest first.
func (s *Service) Grants(ctx context.Context, actor authz.Subject, consumerDeptID string) ([]Grant, error) {
	if err := s.mayReadDept(ctx, actor, consumerDeptID); err != nil {
		return nil, err
	}
	return queryGrants(ctx, s.d, `WHERE consumer_dept_id = ? ORDER BY created_at DESC, id DESC`, consumerDeptID)
}

func (s *Service) checkClient(ctx context.Context, clientID, deptID string) error {
	if s.opts.ClientOwner == nil {
		return nil
	}
	owner, err := s.opts.ClientOwner(ctx, clientID)
	if err != nil {
		return ErrClientOwner.Wrap(err)
	}
	if owner != deptID {
		return ErrClientOwner
	}
	return nil
}

// BindClient names the consumer system (its OpenID client id) that calls the gateway under
// grant grantID. The actor binds for its own department; the client must belong to it.
func (s *Service) BindClient(ctx context.Context, actor authz.Subject, grantID, clientID string) (Grant, error) {
	if err := staffOnly(actor); err != nil {
		return Grant{}, err
	}
	clientID = strings.TrimSpace(clientID)
	if clientID == "" {
		return Grant{}, invalid("client_id", "exchange.client.required", "请指定应用", "name the client")
	}
	var out Grant
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE exchange_grants SET client_id = client_id WHERE id = ?`, grantID); err != nil {
			return fmt.Errorf("lock grant %s: %w", grantID, err)
		}
		g, err := getGrant(ctx, tx, grantID)
		if isNoRow(err) {
			return i18n.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read grant %s: %w", grantID, err)
		}
		if actor.Dept != g.ConsumerDeptID {
			return i18n.ErrForbidden
		}
		if err := s.policy.Authorize(actor, PermBind, g.ConsumerDivision); err != nil {
			return err
		}
		if g.Revoked {
			return ErrGrantRevoked
		}
		if err := s.checkClient(ctx, clientID, g.ConsumerDeptID); err != nil {
			return err
		}
		now := s.clock()
		if err := revokeExpired(ctx, tx, clientID, g.ResourceID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE exchange_grants SET client_id = ? WHERE id = ?`, clientID, g.ID); db.IsUniqueViolation(err) {
			return ErrClientTaken.Wrap(err)
		} else if err != nil {
			return fmt.Errorf("bind grant %s: %w", g.ID, err)
		}
		prev := g.ClientID
		g.ClientID, out = clientID, g
		return s.record(ctx, tx, actor, ActionBind, "exchange_grant:"+g.ID, map[string]any{"client_id": clientID, "previous": prev})
	})
	return out, err
}

// RevokeGrant ends a grant at once; the actor belongs to the provider department.
func (s *Service) RevokeGrant(ctx context.Context, actor authz.Subject, grantID, reason string) (Grant, error) {
	if err := staffOnly(actor); err != nil {
		return Grant{}, err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Grant{}, ErrReasonRequired
	}
	var out Grant
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		g, err := getGrant(ctx, tx, grantID)
		if isNoRow(err) {
			return i18n.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read grant %s: %w", grantID, err)
		}
		if actor.Dept != g.ProviderDeptID {
			return i18n.ErrForbidden
		}
		r, err := getRequest(ctx, tx, g.RequestID)
		if err != nil {
			return fmt.Errorf("read request of grant %s: %w", grantID, err)
		}
		if err := s.policy.Authorize(actor, PermDecide, r.ProviderDivision); err != nil {
			return err
		}
		if g.Revoked {
			return ErrGrantRevoked
		}
		now := s.clock()
		if _, err := tx.Exec(ctx, `UPDATE exchange_grants SET revoked = TRUE, revoked_at = ? WHERE id = ?`, now, g.ID); err != nil {
			return fmt.Errorf("revoke grant %s: %w", g.ID, err)
		}
		g.Revoked, g.RevokedAt, out = true, &now, g
		return s.record(ctx, tx, actor, ActionRevoke, "exchange_grant:"+g.ID, map[string]any{"reason": reason})
	})
	return out, err
}

// Attach serves a resource of the actor's department on the gateway from dataset datasetID,
// whose columns are named as the resource's data items; the dataset may be stored rows or an
// upstream API (dataset.RegisterUpstream). divisionColumn names the column (of type division,
// not sensitive) that carries each row's division for row scopes; "" picks the dataset's own
// (dataset.Schema.DivisionColumn, which is indexed), and a dataset without one is not
// divisional (row scopes do not apply to it).
func (s *Service) Attach(ctx context.Context, actor authz.Subject, resourceID, datasetID, divisionColumn string) (Binding, error) {
	if err := staffOnly(actor); err != nil {
		return Binding{}, err
	}
	res, err := s.live(ctx, actor, resourceID)
	if err != nil {
		return Binding{}, err
	}
	if actor.Dept != res.ProviderDeptID {
		return Binding{}, i18n.ErrForbidden
	}
	if err := s.policy.Authorize(actor, PermPublish, res.DivisionCode); err != nil {
		return Binding{}, err
	}
	v, err := s.data.Active(ctx, datasetID)
	if err != nil {
		return Binding{}, err
	}
	// By default the dataset's own division column, the one its rows are indexed by.
	divCol := v.Schema.DivisionColumn()
	if divisionColumn != "" {
		divCol = ""
		for _, c := range v.Schema.Columns {
			if c.Name == divisionColumn && c.Type == dataset.Division && !c.Sensitive {
				divCol = c.Name
			}
		}
		if divCol == "" {
			return Binding{}, invalid("division_column", "exchange.division_column", "数据集没有名为“%s”的非敏感行政区划列",
				"the dataset has no division column %q that is not sensitive", clip(divisionColumn))
		}
	}
	now := s.clock()
	b := Binding{ResourceID: res.ID, DatasetID: datasetID, DivisionColumn: divCol, ProviderDeptID: res.ProviderDeptID,
		BoundBy: actor.String(), CreatedAt: now, UpdatedAt: now}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := upsertBinding(ctx, tx, b); err != nil {
			return fmt.Errorf("attach %s: %w", res.ID, err)
		}
		return s.record(ctx, tx, actor, ActionAttach, "catalog_resource:"+res.ID, map[string]any{"dataset_id": datasetID, "division_column": divCol})
	})
	if err != nil {
		return Binding{}, err
	}
	return getBinding(ctx, s.d, res.ID)
}

// ReadsOf lists the gateway calls that returned the record of the resident whose ID number has
// the blind index idx (crypto.FieldCipher.BlindIndex(IndexResidentID, number)), newest first:
// the portal's "who read my data". The caller (the portal) has established that idx is the
// signed-in citizen's own.
func (s *Service) ReadsOf(ctx context.Context, idx string) ([]Read, error) {
	if idx == "" {
		return nil, i18n.ErrNotFound
	}
	// Two indexed queries rather than a UNION: SQLite loses the column types of a compound
	// select, and with them the decoding of times.
	out := []Read{}
	seen := map[string]bool{}
	for _, q := range []string{
		`SELECT id, at, consumer_dept_name, purpose, resource_name, resource_id, kind FROM exchange_access
			WHERE subject_idx = ? AND row_count > 0 ORDER BY at DESC LIMIT 1000`,
		`SELECT a.id, a.at, a.consumer_dept_name, a.purpose, a.resource_name, a.resource_id, a.kind FROM exchange_access_subjects x
			JOIN exchange_access a ON a.id = x.access_id WHERE x.subject_idx = ? AND a.row_count > 0 ORDER BY a.at DESC LIMIT 1000`,
	} {
		rows, err := s.d.Query(ctx, q, idx)
		if err != nil {
			return nil, fmt.Errorf("reads of a resident: %w", err)
		}
		for rows.Next() {
			var id string
			var r Read
			if err := rows.Scan(&id, &r.At, &r.ConsumerDeptName, &r.Purpose, &r.Resource, &r.ResourceID, &r.Kind); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reads of a resident: %w", err)
			}
			if !seen[id] {
				seen[id], r.At = true, r.At.UTC()
				out = append(out, r)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("reads of a resident: %w", err)
		}
	}
	slices.SortStableFunc(out, func(a, b Read) int { return b.At.Compare(a.At) })
	return out, nil
}

// ResidentIndex is the blind index ReadsOf takes for a resident ID number.
func (s *Service) ResidentIndex(number string) string {
	return s.fc.BlindIndex(IndexResidentID, number)
}

// lockPending locks a pending request that the actor's department may act on: as its provider
// (deciding it) or as its consumer (withdrawing it).
func (s *Service) lockPending(ctx context.Context, tx *db.Tx, id string, actor authz.Subject, provider bool) (SharingRequest, error) {
	r, err := lockRequest(ctx, tx, id)
	if isNoRow(err) {
		return r, i18n.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read request %s: %w", id, err)
	}
	dept, perm, division := r.ConsumerDeptID, PermApply, r.ConsumerDivision
	if provider {
		dept, perm, division = r.ProviderDeptID, PermDecide, r.ProviderDivision
	}
	if actor.Dept != dept {
		return r, i18n.ErrForbidden
	}
	if err := s.policy.Authorize(actor, perm, division); err != nil {
		return r, err
	}
	if r.Status != StatusPending {
		return r, ErrState
	}
	return r, nil
}

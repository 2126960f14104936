package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Service is the case engine.
type Service struct {
	d      *db.DB
	policy *authz.Policy
	opts   Options
	// defs caches definitions by key and version; a stored version never changes.
	defs sync.Map // defKey(key, version) → Definition
}

// New returns the case engine on d. policy must carry RegisterPermissions' grants.
func New(d *db.DB, p *authz.Policy, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Calendar == nil {
		opts.Calendar = calendar.Default()
	}
	if opts.RemindDays <= 0 {
		opts.RemindDays = 1
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 5 * time.Minute
	}
	return &Service{d: d, policy: p, opts: opts}
}

func (s *Service) clock() time.Time { return db.Now(s.opts.Now()) }

// Calendar is the working-day calendar in use.
func (s *Service) Calendar() *calendar.Calendar { return s.opts.Calendar }

// ---- definitions ----

func defKey(key string, version int) string { return fmt.Sprintf("%s@%d", key, version) }

// Define stores a definition version. It is idempotent: defining the same key and version
// again with the same content does nothing, with other content it is ErrDefinitionChanged.
// Step roles must hold PermHandle in the service's policy.
func (s *Service) Define(ctx context.Context, def Definition) error {
	def.Steps = slices.Clone(def.Steps) // Validate normalises; the caller's slice stays as it was
	if err := def.Validate(s.policy); err != nil {
		return err
	}
	body := def.canonical()
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO workflow_definitions (def_key, version, name, body, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (def_key, version) DO NOTHING`, def.Key, def.Version, def.Name, body, s.clock()); err != nil {
			return fmt.Errorf("define %s: %w", defKey(def.Key, def.Version), err)
		}
		var stored string
		if err := tx.QueryRow(ctx, `SELECT body FROM workflow_definitions WHERE def_key = ? AND version = ?`, def.Key, def.Version).Scan(&stored); err != nil {
			return fmt.Errorf("define %s: %w", defKey(def.Key, def.Version), err)
		}
		if stored != body {
			return ErrDefinitionChanged
		}
		return nil
	})
	if err == nil {
		s.defs.Store(defKey(def.Key, def.Version), def)
	}
	return err
}

// DefineLatest stores def as the next version of its key unless the latest version already
// says the same (def.Version is ignored), and returns the version in force. For loaders of
// declarative content (packs) that should not have to count versions themselves.
func (s *Service) DefineLatest(ctx context.Context, def Definition) (Definition, error) {
	def.Steps = slices.Clone(def.Steps)
	def.Version = 1
	if err := def.Validate(s.policy); err != nil {
		return Definition{}, err
	}
	for range 3 { // a concurrent loader may take the number first
		latest, err := s.latest(ctx, s.d, def.Key)
		switch {
		case err == nil:
			def.Version = latest.Version
			if def.canonical() == latest.canonical() {
				return latest, nil
			}
			def.Version++
		case errors.Is(err, ErrUnknownDefinition):
			def.Version = 1
		default:
			return Definition{}, err
		}
		err = s.Define(ctx, def)
		if err == nil {
			return def, nil
		}
		if !errors.Is(err, ErrDefinitionChanged) {
			return Definition{}, err
		}
	}
	return Definition{}, ErrConflict
}

// GetDefinition returns a definition version; version 0 means the latest.
func (s *Service) GetDefinition(ctx context.Context, key string, version int) (Definition, error) {
	var d Definition
	var err error
	if version == 0 {
		d, err = s.latest(ctx, s.d, key)
	} else {
		d, err = s.definition(ctx, s.d, key, version)
	}
	d.Steps = slices.Clone(d.Steps) // the cached copy is shared
	return d, err
}

func (s *Service) latest(ctx context.Context, q db.Querier, key string) (Definition, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT version FROM workflow_definitions WHERE def_key = ? ORDER BY version DESC LIMIT 1`, key).Scan(&v)
	if isNoRow(err) {
		return Definition{}, ErrUnknownDefinition
	}
	if err != nil {
		return Definition{}, fmt.Errorf("definition %s: %w", key, err)
	}
	return s.definition(ctx, q, key, v)
}

func (s *Service) definition(ctx context.Context, q db.Querier, key string, version int) (Definition, error) {
	k := defKey(key, version)
	if d, ok := s.defs.Load(k); ok {
		return d.(Definition), nil
	}
	var body string
	err := q.QueryRow(ctx, `SELECT body FROM workflow_definitions WHERE def_key = ? AND version = ?`, key, version).Scan(&body)
	if isNoRow(err) {
		return Definition{}, ErrUnknownDefinition
	}
	if err != nil {
		return Definition{}, fmt.Errorf("definition %s: %w", k, err)
	}
	// Stored bodies were validated against the policy when defined; only decode here.
	d, err := decodeStored(body)
	if err != nil {
		return Definition{}, fmt.Errorf("definition %s: %w", k, err)
	}
	s.defs.Store(k, d)
	return d, nil
}

// ---- opening ----

// Open opens a case in its own transaction (OpenTx is for callers with one of their own).
func (s *Service) Open(ctx context.Context, in OpenCase) (Case, error) {
	var c Case
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		var err error
		c, err = s.OpenTx(ctx, tx, in)
		return err
	})
	return c, err
}

// OpenTx opens a case inside the caller's transaction, at the first step of the latest
// version of its definition, with its deadlines running from now. The caller has decided
// that the applicant may open it; the case is recorded with the applicant as actor.
func (s *Service) OpenTx(ctx context.Context, tx *db.Tx, in OpenCase) (Case, error) {
	if err := cleanOpen(&in); err != nil {
		return Case{}, err
	}
	def, err := s.latest(ctx, tx, in.Definition)
	if err != nil {
		return Case{}, err
	}
	var one int
	switch err := tx.QueryRow(ctx, `SELECT 1 FROM workflow_cases WHERE def_key = ? AND ref = ?`, def.Key, in.Ref).Scan(&one); {
	case err == nil:
		return Case{}, ErrDuplicateRef
	case !isNoRow(err):
		return Case{}, fmt.Errorf("open case for %s: %w", in.Ref, err)
	}
	now := s.clock()
	r := &caseRow{id: db.NewID(), defKey: def.Key, defVersion: def.Version, title: in.Title, ref: in.Ref,
		applicantKind: in.Applicant.Kind, applicantID: in.Applicant.ID, deptID: in.DeptID, division: in.Division,
		state: StateOpen, openedAt: now, data: in.Data, version: 1, updatedAt: now}
	if n := def.caseDays(); n > 0 {
		due := db.Now(s.opts.Calendar.AddWorkdays(now, n))
		r.due = &due
	}
	s.enterStep(r, def, 0, now)
	if err := insertCase(ctx, tx, r); err != nil {
		if db.IsUniqueViolation(err) {
			return Case{}, ErrDuplicateRef.Wrap(err)
		}
		return Case{}, fmt.Errorf("open case for %s: %w", in.Ref, err)
	}
	if err := setScopes(ctx, tx, r.id, scopesOf(r.division), false); err != nil {
		return Case{}, err
	}
	if err := s.record(ctx, tx, in.Applicant, r, def, change{action: ActionOpened}, now); err != nil {
		return Case{}, err
	}
	return s.view(r, def, now), nil
}

func cleanOpen(in *OpenCase) error {
	in.Definition = strings.TrimSpace(in.Definition)
	in.Title = strings.TrimSpace(in.Title)
	in.Ref = strings.TrimSpace(in.Ref)
	in.DeptID = strings.TrimSpace(in.DeptID)
	in.Division = strings.TrimSpace(in.Division)
	switch {
	case in.Definition == "":
		return ErrUnknownDefinition
	case in.Title == "" || utf8.RuneCountInString(in.Title) > 200 || strings.ContainsFunc(in.Title, isControl):
		return invalid("title", "workflow.case.title", "案件标题必填，最长 200 个字符", "a case title is required, at most 200 characters")
	case in.Ref == "" || len(in.Ref) > 200:
		return invalid("ref", "workflow.case.ref", "缺少业务记录标识", "the record reference is missing or too long")
	case in.Applicant.Kind == "" || in.Applicant.ID == "":
		return invalid("applicant", "workflow.case.applicant", "缺少申请人", "the applicant is missing")
	case in.DeptID == "":
		return invalid("dept_id", "workflow.case.dept", "缺少承办部门", "the handling department is missing")
	case !validDivision(in.Division):
		return invalid("division", "workflow.case.division", "行政区划代码须为 6、9 或 12 位数字（GB/T 2260）",
			"the division code must have 6, 9 or 12 digits (GB/T 2260)")
	}
	if len(in.Data) > 16 {
		return invalid("data", "workflow.case.data", "案件属性最多 16 项", "a case has at most 16 attributes")
	}
	for k, v := range in.Data {
		if k == "" || len(k) > 40 || !validKey(k) || strings.ContainsAny(k, ":/") {
			return invalid("data", "workflow.case.data", "案件属性名 %q 无效", "invalid attribute name %q", clip(k, 40))
		}
		if utf8.RuneCountInString(v) > 200 || strings.ContainsFunc(v, isControl) {
			return invalid("data."+k, "workflow.case.data", "案件属性值最长 200 个字符", "an attribute value is at most 200 characters")
		}
	}
	return nil
}

// validDivision: GB/T 2260 county (6 digits), township (9) or village (12) code.
func validDivision(s string) bool {
	if len(s) != 6 && len(s) != 9 && len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// scopesOf is the division and every division above it.
func scopesOf(division string) []string {
	return append([]string{division}, divisions.Ancestors(division)...)
}

// enterStep puts the case at step i with a fresh step clock from now: the step's own limit,
// or, for a step without one, the whole case's deadline.
func (s *Service) enterStep(r *caseRow, def Definition, i int, now time.Time) {
	st := def.Steps[i]
	r.stepIndex, r.stepKey, r.stepRole = i, st.Key, st.HandlerRole()
	r.claimedBy, r.stepStarted = "", now
	r.stepDue = r.due
	if st.Days > 0 {
		due := db.Now(s.opts.Calendar.AddWorkdays(now, st.Days))
		r.stepDue = &due
	}
	s.setAlerts(r, now)
}

// setAlerts derives the reminder time, queue rank and next alert from the step deadline, for
// a step clock (re)started at since. A step that starts within the reminder window gets no
// reminder (it is yellow from the start); the escalation still comes when it is due.
func (s *Service) setAlerts(r *caseRow, since time.Time) {
	r.alert = ""
	if r.stepDue == nil {
		r.remind, r.nextAlert, r.queueRank = nil, nil, farFuture
		return
	}
	remind := db.Now(s.opts.Calendar.AddWorkdays(*r.stepDue, -s.opts.RemindDays))
	r.remind, r.queueRank = &remind, *r.stepDue
	next := *r.stepDue
	if remind.After(since) && remind.Before(*r.stepDue) {
		next = remind
	}
	r.nextAlert = &next
}

// ---- reading ----

func (s *Service) isApplicant(actor authz.Subject, r *caseRow) bool {
	return Party{Kind: r.applicantKind, ID: r.applicantID}.Is(actor)
}

// visible: the applicant; staff of the handling department with PermRead over the case's
// division; anyone with PermSupervise over it.
func (s *Service) visible(actor authz.Subject, r *caseRow) bool {
	if s.isApplicant(actor, r) {
		return true
	}
	if actor.Kind != authz.Staff && actor.Kind != authz.System {
		return false
	}
	if s.policy.Allowed(actor, PermSupervise, r.division) {
		return true
	}
	return actor.Dept != "" && actor.Dept == r.deptID && s.policy.Allowed(actor, PermRead, r.division)
}

// mayAct: staff of the handling department holding the current step's role and PermHandle
// over the case's division.
func (s *Service) mayAct(actor authz.Subject, r *caseRow) error {
	if actor.Kind != authz.Staff || actor.Dept == "" || actor.Dept != r.deptID || !actor.Has(r.stepRole) ||
		!s.policy.Allowed(actor, PermHandle, r.division) {
		return i18n.ErrForbidden
	}
	return nil
}

// load reads a case the actor may see; any other is not found.
func (s *Service) load(ctx context.Context, q db.Querier, actor authz.Subject, id string) (caseRow, Definition, error) {
	if actor.Kind == "" {
		return caseRow{}, Definition{}, i18n.ErrUnauthorized
	}
	r, err := getCase(ctx, q, id)
	if isNoRow(err) {
		return r, Definition{}, i18n.ErrNotFound
	}
	if err != nil {
		return r, Definition{}, fmt.Errorf("read case %s: %w", id, err)
	}
	if !s.visible(actor, &r) {
		return caseRow{}, Definition{}, i18n.ErrNotFound
	}
	def, err := s.definition(ctx, q, r.defKey, r.defVersion)
	return r, def, err
}

// Get returns a case the actor may see.
func (s *Service) Get(ctx context.Context, actor authz.Subject, id string) (Case, error) {
	r, def, err := s.load(ctx, s.d, actor, id)
	if err != nil {
		return Case{}, err
	}
	return s.view(&r, def, s.clock()), nil
}

// History returns the case's history, oldest first.
func (s *Service) History(ctx context.Context, actor authz.Subject, id string) ([]Event, error) {
	if _, _, err := s.load(ctx, s.d, actor, id); err != nil {
		return nil, err
	}
	return listEvents(ctx, s.d, id)
}

// view turns a row into a Case as it stands at now.
func (s *Service) view(r *caseRow, def Definition, now time.Time) Case {
	st := def.step(r.stepIndex)
	c := Case{ID: r.id, Definition: r.defKey, DefinitionVersion: r.defVersion, Title: r.title, Ref: r.ref,
		Applicant: Party{Kind: r.applicantKind, ID: r.applicantID}, DeptID: r.deptID, Division: r.division,
		State: r.state, Outcome: r.outcome, Step: r.stepKey, StepName: st.Name, StepNameEn: st.NameEn, StepIndex: r.stepIndex,
		StepRole: r.stepRole, ClaimedBy: r.claimedBy, OpenedAt: r.openedAt, StepStartedAt: r.stepStarted,
		StepDueAt: r.stepDue, DueAt: r.due, Alert: string(r.alert), SuspendedAt: r.suspendedAt, StepTimeLeft: r.stepLeft,
		TimeLeft: r.caseLeft, Correction: r.correction, ClosedAt: r.closedAt, Data: r.data, Version: r.version, UpdatedAt: r.updatedAt}
	switch r.state {
	case StateOpen:
		c.Status = statusAt(now, r.stepDue, r.remind)
	case StateSuspended:
		c.Status = r.heldStatus
	}
	if r.elapsedWork != nil {
		c.WorkingDays = r.elapsedWork.Hours() / 24
	}
	if c.Data == nil {
		c.Data = map[string]string{}
	}
	return c
}

// ---- transitions ----

// change describes a transition for its history row, audit entry and event.
type change struct {
	action   Action
	comment  string
	items    []string
	fromStep string
	fromDept string
	// alerts: the transition set a new step deadline (or stopped it), so the alert columns
	// are written too.
	alerts bool
	scopes bool // the case's division changed
	noop   bool // nothing to change (a repeated claim)
}

// transition runs fn on the case in a transaction and saves what it changed, provided no
// other transition saved the case meanwhile (version check).
func (s *Service) transition(ctx context.Context, actor authz.Subject, id string, fn func(r *caseRow, def Definition, now time.Time) (change, error)) (Case, error) {
	var out Case
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		r, def, err := s.load(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		now := s.clock()
		prev, prevStep, prevDept := r.version, r.stepKey, r.deptID
		ch, err := fn(&r, def, now)
		if err != nil {
			return err
		}
		if ch.noop {
			out = s.view(&r, def, now)
			return nil
		}
		ch.fromStep = prevStep
		if r.deptID != prevDept {
			ch.fromDept = prevDept
		}
		r.version, r.updatedAt = prev+1, now
		ok, err := updateCase(ctx, tx, &r, prev, ch.alerts)
		if err != nil {
			return err
		}
		if !ok {
			return ErrConflict
		}
		if ch.scopes {
			if err := setScopes(ctx, tx, r.id, scopesOf(r.division), true); err != nil {
				return err
			}
		}
		if err := s.record(ctx, tx, actor, &r, def, ch, now); err != nil {
			return err
		}
		out = s.view(&r, def, now)
		return nil
	})
	return out, err
}

// record writes the history row, the audit entry and the event of a transition.
func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, r *caseRow, def Definition, ch change, now time.Time) error {
	e := Event{CaseID: r.id, Action: ch.action, Actor: actor.String(), Step: r.stepKey, DeptID: r.deptID,
		Comment: ch.comment, Items: ch.items, At: now}
	if ch.fromStep != "" && ch.fromStep != r.stepKey {
		e.Step, e.ToStep = ch.fromStep, r.stepKey
	}
	if ch.fromDept != "" {
		e.DeptID, e.ToDeptID = ch.fromDept, r.deptID
	}
	if ch.action == ActionReminded || ch.action == ActionEscalated {
		e.DueAt = r.stepDue
	}
	if err := insertEvent(ctx, tx, e); err != nil {
		return err
	}
	if s.opts.Audit != nil {
		detail := map[string]any{"definition": defKey(r.defKey, r.defVersion), "ref": r.ref, "state": string(r.state),
			"step": e.Step, "dept_id": e.DeptID, "division": r.division}
		if e.ToStep != "" {
			detail["to_step"] = e.ToStep
		}
		if e.ToDeptID != "" {
			detail["to_dept_id"] = e.ToDeptID
		}
		if r.outcome != "" {
			detail["outcome"] = string(r.outcome)
		}
		if ch.comment != "" {
			detail["comment"] = ch.comment
		}
		if len(ch.items) > 0 {
			detail["items"] = ch.items
		}
		if e.DueAt != nil {
			detail["due_at"] = e.DueAt.Format(time.RFC3339)
		}
		if err := s.opts.Audit(ctx, tx, actor, ch.action.AuditAction(), "workflow_case:"+r.id, detail); err != nil {
			return fmt.Errorf("audit %s %s: %w", ch.action, r.id, err)
		}
	}
	p := EventPayload{CaseID: r.id, Ref: r.ref, Definition: r.defKey, ApplicantKind: r.applicantKind, ApplicantID: r.applicantID,
		State: r.state, Outcome: r.outcome, Step: r.stepKey, Comment: ch.comment, At: now, Action: ch.action, Actor: e.Actor,
		DefinitionVersion: r.defVersion, Title: r.title, DeptID: r.deptID, FromDeptID: ch.fromDept, Division: r.division,
		Items: ch.items, StepDueAt: r.stepDue, DueAt: r.due}
	if _, err := bus.Publish(ctx, tx, ch.action.Subject(), p); err != nil {
		return fmt.Errorf("case %s: %w", r.id, err)
	}
	return nil
}

// cleanComment trims a comment and checks its length; required comments must not be empty.
func cleanComment(v string, required bool) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" && required {
		return "", ErrCommentRequired
	}
	if utf8.RuneCountInString(v) > 2000 {
		return "", invalid("comment", "workflow.comment_too_long", "意见最长 2000 个字符", "a comment is at most 2000 characters")
	}
	return v, nil
}

// handling checks that actor may act on the open case now and has claimed it.
func (s *Service) handling(actor authz.Subject, r *caseRow) error {
	if r.state != StateOpen {
		return ErrState
	}
	if err := s.mayAct(actor, r); err != nil {
		return err
	}
	switch r.claimedBy {
	case actor.String():
		return nil
	case "":
		return ErrNotClaimed
	}
	return ErrClaimed
}

// Claim takes the case at its current step for the actor (认领). Claiming a case one already
// holds changes nothing.
func (s *Service) Claim(ctx context.Context, actor authz.Subject, id string) (Case, error) {
	return s.transition(ctx, actor, id, func(r *caseRow, _ Definition, _ time.Time) (change, error) {
		if r.state != StateOpen {
			return change{}, ErrState
		}
		if err := s.mayAct(actor, r); err != nil {
			return change{}, err
		}
		switch r.claimedBy {
		case actor.String():
			return change{noop: true}, nil
		case "":
		default:
			return change{}, ErrClaimed
		}
		r.claimedBy = actor.String()
		return change{action: ActionClaimed}, nil
	})
}

// Release gives a claimed case back to the queue: by the officer who holds it, or by a leader
// of the department (when that officer is away).
func (s *Service) Release(ctx context.Context, actor authz.Subject, id string) (Case, error) {
	return s.transition(ctx, actor, id, func(r *caseRow, _ Definition, _ time.Time) (change, error) {
		if r.state != StateOpen {
			return change{}, ErrState
		}
		leader := actor.Kind == authz.Staff && actor.Dept == r.deptID && actor.Has(RoleLeader) && s.policy.Allowed(actor, PermHandle, r.division)
		if !leader {
			if err := s.mayAct(actor, r); err != nil {
				return change{}, err
			}
		}
		switch {
		case r.claimedBy == "":
			return change{}, ErrNotClaimed
		case r.claimedBy != actor.String() && !leader:
			return change{}, ErrClaimed
		}
		r.claimedBy = ""
		return change{action: ActionReleased}, nil
	})
}

// Decide records the claiming officer's decision at the current step. Approve moves the case
// to the next step, or closes it approved after the last; Reject closes it rejected and needs
// the reasons as comment.
func (s *Service) Decide(ctx context.Context, actor authz.Subject, id string, d Decision) (Case, error) {
	if d.Outcome != Approve && d.Outcome != Reject {
		return Case{}, invalid("outcome", "workflow.outcome", "请选择准予或不予", "choose approve or reject")
	}
	comment, err := cleanComment(d.Comment, d.Outcome == Reject)
	if err != nil {
		return Case{}, err
	}
	return s.transition(ctx, actor, id, func(r *caseRow, def Definition, now time.Time) (change, error) {
		if err := s.handling(actor, r); err != nil {
			return change{}, err
		}
		if d.Version != 0 && d.Version != r.version {
			return change{}, ErrConflict
		}
		ch := change{comment: comment, alerts: true}
		switch {
		case d.Outcome == Reject:
			s.close(r, OutcomeRejected, now)
			ch.action = ActionClosed
		case r.stepIndex+1 < len(def.Steps):
			s.enterStep(r, def, r.stepIndex+1, now)
			ch.action = ActionAdvanced
		default:
			s.close(r, OutcomeApproved, now)
			ch.action = ActionClosed
		}
		return ch, nil
	})
}

// close ends the case and records the working time it took, suspensions excluded.
func (s *Service) close(r *caseRow, o Outcome, now time.Time) {
	if r.state == StateSuspended && r.suspendedAt != nil {
		r.suspendedWork += workTime(s.opts.Calendar, *r.suspendedAt, now)
	}
	elapsed := max(0, workTime(s.opts.Calendar, r.openedAt, now)-r.suspendedWork)
	r.state, r.outcome, r.closedAt, r.elapsedWork = StateClosed, o, &now, &elapsed
	r.claimedBy, r.nextAlert = "", nil
	r.suspendedAt, r.stepLeft, r.caseLeft, r.heldStatus, r.correction = nil, nil, nil, "", nil
}

// RequestCorrection asks the applicant to correct or complete the application (补正告知):
// the case is suspended and both its step clock and its whole-case clock stop, keeping the
// working time left. comment says what is wrong; items name the materials or fields.
func (s *Service) RequestCorrection(ctx context.Context, actor authz.Subject, id, comment string, items []string) (Case, error) {
	comment, err := cleanComment(comment, true)
	if err != nil {
		return Case{}, err
	}
	items, err = cleanItems(items)
	if err != nil {
		return Case{}, err
	}
	return s.transition(ctx, actor, id, func(r *caseRow, def Definition, now time.Time) (change, error) {
		if err := s.handling(actor, r); err != nil {
			return change{}, err
		}
		if def.NoCorrection {
			return change{}, ErrNoCorrection
		}
		cal := s.opts.Calendar
		r.heldStatus = statusAt(now, r.stepDue, r.remind)
		if r.stepDue != nil {
			left := workTime(cal, now, *r.stepDue)
			r.stepLeft = &left
		}
		if r.due != nil {
			left := workTime(cal, now, *r.due)
			r.caseLeft = &left
		}
		r.state, r.suspendedAt = StateSuspended, &now
		r.stepDue, r.remind, r.due, r.nextAlert = nil, nil, nil, nil
		r.correction = &Correction{Comment: comment, Items: items, RequestedAt: now}
		return change{action: ActionSuspended, comment: comment, items: items, alerts: true}, nil
	})
}

func cleanItems(in []string) ([]string, error) {
	var out []string
	for _, it := range in {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		if utf8.RuneCountInString(it) > 200 || strings.ContainsFunc(it, isControl) {
			return nil, invalid("items", "workflow.items", "补正事项每项最长 200 个字符", "each item is at most 200 characters")
		}
		out = append(out, it)
	}
	if len(out) > 50 {
		return nil, invalid("items", "workflow.items", "补正事项最多 50 项", "at most 50 items")
	}
	return out, nil
}

// applicantOnly lets only the case's applicant through; staff who can see the case are
// forbidden, everyone else was already answered not found by load.
func (s *Service) applicantOnly(actor authz.Subject, r *caseRow) error {
	if !s.isApplicant(actor, r) {
		return i18n.ErrForbidden
	}
	return nil
}

// Resume records the applicant's answer to a correction request: the clocks run again from
// now with exactly the working time that was left when they stopped.
func (s *Service) Resume(ctx context.Context, applicant authz.Subject, id, comment string) (Case, error) {
	comment, err := cleanComment(comment, false)
	if err != nil {
		return Case{}, err
	}
	return s.transition(ctx, applicant, id, func(r *caseRow, _ Definition, now time.Time) (change, error) {
		if err := s.applicantOnly(applicant, r); err != nil {
			return change{}, err
		}
		if r.state != StateSuspended {
			return change{}, ErrState
		}
		cal := s.opts.Calendar
		if r.suspendedAt != nil {
			r.suspendedWork += workTime(cal, *r.suspendedAt, now)
		}
		r.stepDue, r.due = nil, nil
		if r.stepLeft != nil {
			t := db.Now(addWorkTime(cal, now, *r.stepLeft))
			r.stepDue = &t
		}
		if r.caseLeft != nil {
			t := db.Now(addWorkTime(cal, now, *r.caseLeft))
			r.due = &t
		}
		escalated := r.alert == ActionEscalated && r.stepLeft != nil && *r.stepLeft == 0
		s.setAlerts(r, now)
		if escalated {
			// Already escalated for this deadline before the suspension; once is enough.
			r.alert, r.nextAlert = ActionEscalated, nil
		}
		r.state, r.suspendedAt, r.stepLeft, r.caseLeft, r.heldStatus, r.correction = StateOpen, nil, nil, nil, "", nil
		return change{action: ActionResumed, comment: comment, alerts: true}, nil
	})
}

// Transfer hands the case to another department (转办), at the same step and with the same
// deadlines; it is no longer claimed. When the department's division does not contain the
// case's, the case takes the department's division, so its staff can see it.
func (s *Service) Transfer(ctx context.Context, actor authz.Subject, id, toDeptID, comment string) (Case, error) {
	toDeptID = strings.TrimSpace(toDeptID)
	if toDeptID == "" {
		return Case{}, ErrUnknownDepartment
	}
	comment, err := cleanComment(comment, true)
	if err != nil {
		return Case{}, err
	}
	var toDivision string
	if s.opts.Departments != nil {
		if toDivision, err = s.opts.Departments.DepartmentDivision(ctx, toDeptID); err != nil {
			if e, ok := i18n.As(err); ok && e.Code == i18n.ErrNotFound.Code {
				return Case{}, ErrUnknownDepartment
			}
			return Case{}, fmt.Errorf("transfer to %s: %w", toDeptID, err)
		}
	}
	return s.transition(ctx, actor, id, func(r *caseRow, _ Definition, _ time.Time) (change, error) {
		if err := s.handling(actor, r); err != nil {
			return change{}, err
		}
		if toDeptID == r.deptID {
			return change{}, ErrSameDepartment
		}
		// 转办 goes to a department within the officer's own scope, or up the case's own chain
		// of divisions (county → its city → the province); never sideways to another city.
		if toDivision != "" && s.policy.Contains != nil &&
			!s.policy.Contains(actor.Division, toDivision) && !s.policy.Contains(toDivision, r.division) {
			return change{}, ErrTransferScope
		}
		ch := change{action: ActionTransferred, comment: comment}
		if toDivision != "" && toDivision != r.division && (s.policy.Contains == nil || !s.policy.Contains(toDivision, r.division)) {
			r.division, ch.scopes = toDivision, true
		}
		r.deptID, r.claimedBy = toDeptID, ""
		return ch, nil
	})
}

// Return sends the case back to the previous step (退回), whose clock starts afresh.
func (s *Service) Return(ctx context.Context, actor authz.Subject, id, comment string) (Case, error) {
	comment, err := cleanComment(comment, true)
	if err != nil {
		return Case{}, err
	}
	return s.transition(ctx, actor, id, func(r *caseRow, def Definition, now time.Time) (change, error) {
		if err := s.handling(actor, r); err != nil {
			return change{}, err
		}
		if r.stepIndex == 0 {
			return change{}, ErrFirstStep
		}
		s.enterStep(r, def, r.stepIndex-1, now)
		return change{action: ActionReturned, comment: comment, alerts: true}, nil
	})
}

// Withdraw lets the applicant withdraw the case (撤回) while it is open or suspended.
func (s *Service) Withdraw(ctx context.Context, applicant authz.Subject, id, reason string) (Case, error) {
	reason, err := cleanComment(reason, false)
	if err != nil {
		return Case{}, err
	}
	return s.transition(ctx, applicant, id, func(r *caseRow, _ Definition, now time.Time) (change, error) {
		if err := s.applicantOnly(applicant, r); err != nil {
			return change{}, err
		}
		if r.state != StateOpen && r.state != StateSuspended {
			return change{}, ErrState
		}
		s.close(r, OutcomeWithdrawn, now)
		return change{action: ActionWithdrawn, comment: reason, alerts: true}, nil
	})
}

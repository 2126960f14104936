package rating

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// Service is the rating engine.
type Service struct {
	d      *db.DB
	policy *authz.Policy
	cases  *workflow.Service
	apps   Applications
	opts   Options

	defMu   sync.Mutex
	defined bool
}

// New returns the rating engine on d. policy must carry RegisterPermissions' grants and the
// case engine's; cases is the case engine the rectifications run on; apps looks up the
// applications rated.
func New(d *db.DB, p *authz.Policy, cases *workflow.Service, apps Applications, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RectifyDays <= 0 {
		opts.RectifyDays = 5
	}
	if opts.CallbackDays <= 0 {
		opts.CallbackDays = 3
	}
	if opts.ReviseWithin <= 0 {
		opts.ReviseWithin = 7 * 24 * time.Hour
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 10 * time.Minute
	}
	return &Service{d: d, policy: p, cases: cases, apps: apps, opts: opts}
}

func (s *Service) clock() time.Time { return db.Now(s.opts.Now()) }

// Options returns the options in force (defaults applied).
func (s *Service) Options() Options { return s.opts }

// EnsureDefinition stores the rectification case definition with the configured limits, as a
// new version when they changed (cases already open keep theirs). Rate calls it before the
// first poor rating; the app may call it at start to fail early.
func (s *Service) EnsureDefinition(ctx context.Context) error {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	if s.defined {
		return nil
	}
	if _, err := s.cases.DefineLatest(ctx, RectifyDefinition(s.opts.RectifyDays, s.opts.CallbackDays)); err != nil {
		return fmt.Errorf("define %s: %w", RectifyDefinitionKey, err)
	}
	s.defined = true
	return nil
}

// ---- rating ----

// completed checks with the case engine that the application is the actor's and completed,
// and returns its case.
func (s *Service) completed(ctx context.Context, actor authz.Subject, app Application) (workflow.Case, error) {
	if app.CaseID == "" {
		return workflow.Case{}, ErrNotCompleted
	}
	c, err := s.cases.Get(ctx, actor, app.CaseID)
	if err != nil {
		return workflow.Case{}, err
	}
	switch {
	case c.Ref != "application:"+app.ID:
		// The lookup named a case that is not this application's: trust the case engine.
		return workflow.Case{}, i18n.ErrNotFound
	case !c.Applicant.Is(actor):
		return workflow.Case{}, ErrNotApplicant
	case c.State != workflow.StateClosed || (c.Outcome != workflow.OutcomeApproved && c.Outcome != workflow.OutcomeRejected):
		// A withdrawn application was not served; one still open is not completed.
		return workflow.Case{}, ErrNotCompleted
	}
	return c, nil
}

// Rate records the applicant's rating of a completed application: the first one, or — once,
// within Options.ReviseWithin — a replacement. A poor rating opens a rectification case for
// the department that handled the application, in the same transaction (a replacement opens
// one only if the rating had none: a complaint once made is answered even if softened later).
// Only the applicant of the application may rate it, on any channel; staff never rate on
// anyone's behalf (评价自愿: GB/T 39734-2020 forbids forcing or steering a rating).
func (s *Service) Rate(ctx context.Context, actor authz.Subject, in Input) (Rating, error) {
	if actor.Kind == "" {
		return Rating{}, i18n.ErrUnauthorized
	}
	if actor.Kind != authz.Citizen && actor.Kind != authz.Enterprise {
		return Rating{}, ErrNotApplicant
	}
	in, err := in.Clean()
	if err != nil {
		return Rating{}, err
	}
	if s.apps == nil {
		return Rating{}, i18n.ErrNotFound
	}
	app, err := s.apps.RatedApplication(ctx, actor, in.ApplicationID)
	if err != nil {
		return Rating{}, err
	}
	c, err := s.completed(ctx, actor, app)
	if err != nil {
		return Rating{}, err
	}
	if in.Level.Poor() {
		if err := s.EnsureDefinition(ctx); err != nil {
			return Rating{}, err
		}
	}
	var out Rating
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		now := s.clock()
		rater := workflow.Party{Kind: actor.Kind, ID: actor.ID}
		r, err := lockRating(ctx, tx, `application_id = ? AND rater_kind = ? AND rater_id = ?`, app.ID, string(rater.Kind), rater.ID)
		subject, action := SubjectRated, "rating.rate"
		switch {
		case isNoRow(err):
			r = ratingRow{Rating: Rating{ID: db.NewID(), ApplicationID: app.ID, ApplicationNumber: app.Number, CaseID: c.ID, Rater: rater,
				ItemCode: app.ItemCode, ItemName: app.ItemName, ItemNameEn: app.ItemNameEn, DeptID: c.DeptID, DeptName: app.DeptName,
				Division: c.Division, Level: in.Level, Channel: in.Channel, Comment: in.Comment, RatedAt: now, UpdatedAt: now}}
			if r.DeptID != app.DeptID {
				// The case was transferred (转办): the department that finished it is rated.
				r.DeptName = ""
				if s.opts.DepartmentName != nil {
					r.DeptName = s.opts.DepartmentName(ctx, r.DeptID)
				}
			}
			if err := insertRating(ctx, tx, &r); err != nil {
				if db.IsUniqueViolation(err) {
					return i18n.ErrConflict.Wrap(err)
				}
				return fmt.Errorf("rate application %s: %w", app.ID, err)
			}
		case err != nil:
			return fmt.Errorf("rate application %s: %w", app.ID, err)
		default:
			if err := s.mayRevise(&r, now); err != nil {
				return err
			}
			subject, action = SubjectRevised, "rating.revise"
			first := r.Level
			r.FirstLevel, r.RevisedAt = first, &now
			r.Level, r.Channel, r.Comment, r.UpdatedAt = in.Level, in.Channel, in.Comment, now
			if _, err := tx.Exec(ctx, `UPDATE ratings SET level = ?, channel = ?, comment = ?, updated_at = ?, revised_at = ?, first_level = ?
				WHERE id = ?`, int(r.Level), string(r.Channel), r.Comment, now, now, int(first), r.ID); err != nil {
				return fmt.Errorf("revise rating %s: %w", r.ID, err)
			}
		}
		if err := setTags(ctx, tx, r.ID, in.Tags); err != nil {
			return err
		}
		if r.Level.Poor() && r.rectifyCase == "" {
			if err := s.openRectification(ctx, tx, &r, in.Tags); err != nil {
				return err
			}
		}
		if s.opts.Audit != nil {
			if err := s.opts.Audit(ctx, tx, actor, action, "rating:"+r.ID, auditDetail(&r, in.Tags)); err != nil {
				return fmt.Errorf("audit %s %s: %w", action, r.ID, err)
			}
		}
		if _, err := bus.Publish(ctx, tx, subject, r.payload(now)); err != nil {
			return fmt.Errorf("rating %s: %w", r.ID, err)
		}
		out = r.view(in.Tags)
		return nil
	})
	return out, err
}

// mayRevise applies the revision rule: once, within ReviseWithin of the rating or of the
// callback of its rectification.
func (s *Service) mayRevise(r *ratingRow, now time.Time) error {
	if r.RevisedAt != nil {
		return ErrAlreadyRevised
	}
	if now.After(s.reviseUntil(r)) {
		return ErrReviseClosed
	}
	return nil
}

func (s *Service) reviseUntil(r *ratingRow) time.Time {
	until := r.RatedAt.Add(s.opts.ReviseWithin)
	if r.callbackAt != nil && r.callbackAt.Add(s.opts.ReviseWithin).After(until) {
		until = r.callbackAt.Add(s.opts.ReviseWithin)
	}
	return until
}

// Revisable reports whether the rater may still replace the rating now, and until when.
func (s *Service) Revisable(r Rating) (bool, time.Time) {
	row := ratingRow{Rating: r}
	if r.Rectification != nil {
		row.callbackAt = r.Rectification.CallbackAt
	}
	until := s.reviseUntil(&row)
	return r.RevisedAt == nil && !s.clock().After(until), until
}

// openRectification opens the rating's rectification case in tx and records it on the row.
func (s *Service) openRectification(ctx context.Context, tx *db.Tx, r *ratingRow, tags []string) error {
	title := "差评整改：" + r.ItemName
	if r.ApplicationNumber != "" {
		title += "（" + r.ApplicationNumber + "）"
	}
	if utf8.RuneCountInString(title) > 200 {
		title = string([]rune(title)[:200])
	}
	data := map[string]string{"rating": r.ID, "application": r.ApplicationID, "item": clip(r.ItemCode, 200), "level": fmt.Sprint(int(r.Level))}
	if len(tags) > 0 {
		data["tags"] = clip(strings.Join(tags, ","), 200)
	}
	c, err := s.cases.OpenTx(ctx, tx, workflow.OpenCase{Definition: RectifyDefinitionKey, Title: title, Ref: "rating:" + r.ID,
		Applicant: r.rater(), DeptID: r.DeptID, Division: r.Division, Data: data})
	if err != nil {
		return fmt.Errorf("open rectification of rating %s: %w", r.ID, err)
	}
	r.rectifyCase, r.rectifyState, r.rectifyVersion, r.rectifyDue = c.ID, RectifyOpen, c.Version, c.StepDueAt
	if _, err := tx.Exec(ctx, `UPDATE ratings SET rectify_case_id = ?, rectify_state = ?, rectify_version = ?, rectify_due_at = ? WHERE id = ?`,
		c.ID, string(RectifyOpen), c.Version, db.NullTime(c.StepDueAt), r.ID); err != nil {
		return fmt.Errorf("rating %s rectification: %w", r.ID, err)
	}
	return nil
}

// ---- reading ----

// visible: the rater; staff of the rated department with PermRead over the rating's
// division; anyone with PermSupervise over it.
func (s *Service) visible(actor authz.Subject, r *ratingRow) bool {
	if r.Rater.Is(actor) {
		return true
	}
	if actor.Kind != authz.Staff {
		return false
	}
	if s.policy.Allowed(actor, PermSupervise, r.Division) {
		return true
	}
	return actor.Dept != "" && actor.Dept == r.DeptID && s.policy.Allowed(actor, PermRead, r.Division)
}

func (s *Service) load(ctx context.Context, q db.Querier, actor authz.Subject, id string) (ratingRow, error) {
	if actor.Kind == "" {
		return ratingRow{}, i18n.ErrUnauthorized
	}
	r, err := getRating(ctx, q, id)
	if isNoRow(err) {
		return ratingRow{}, i18n.ErrNotFound
	}
	if err != nil {
		return ratingRow{}, fmt.Errorf("read rating %s: %w", id, err)
	}
	if !s.visible(actor, &r) {
		return ratingRow{}, i18n.ErrNotFound
	}
	return r, nil
}

func (s *Service) withTags(ctx context.Context, r *ratingRow) (Rating, error) {
	tags, err := tagsOf(ctx, s.d, r.ID)
	if err != nil {
		return Rating{}, err
	}
	return r.view(tags[r.ID]), nil
}

// Get returns a rating the actor may see.
func (s *Service) Get(ctx context.Context, actor authz.Subject, id string) (Rating, error) {
	r, err := s.load(ctx, s.d, actor, id)
	if err != nil {
		return Rating{}, err
	}
	return s.withTags(ctx, &r)
}

// Mine returns the actor's rating of an application, or nil when there is none yet.
func (s *Service) Mine(ctx context.Context, actor authz.Subject, applicationID string) (*Rating, error) {
	if actor.Kind == "" {
		return nil, i18n.ErrUnauthorized
	}
	r, err := findRating(ctx, s.d, applicationID, workflow.Party{Kind: actor.Kind, ID: actor.ID})
	if isNoRow(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rating of %s: %w", applicationID, err)
	}
	v, err := s.withTags(ctx, &r)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Rateable reports whether the actor may rate the application now (it is theirs and
// completed), and their rating if they already gave one. It is for pages deciding whether to
// show the rating form; Rate checks again.
func (s *Service) Rateable(ctx context.Context, actor authz.Subject, applicationID string) (bool, *Rating, error) {
	if actor.Kind != authz.Citizen && actor.Kind != authz.Enterprise || s.apps == nil {
		return false, nil, nil
	}
	app, err := s.apps.RatedApplication(ctx, actor, applicationID)
	if err != nil {
		return false, nil, err
	}
	mine, err := s.Mine(ctx, actor, app.ID)
	if err != nil {
		return false, nil, err
	}
	if _, err := s.completed(ctx, actor, app); err != nil {
		if e, ok := i18n.As(err); ok && (errors.Is(e, ErrNotCompleted) || errors.Is(e, ErrNotApplicant)) {
			return false, mine, nil
		}
		return false, mine, err
	}
	return true, mine, nil
}

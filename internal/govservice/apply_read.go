package govservice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// Mine lists the applicant's applications, newest first, each with its status read from its
// case.
func (a *Applications) Mine(ctx context.Context, ap authz.Subject, f MineFilter) ([]Application, error) {
	if err := checkApplicantSubject(ap); err != nil {
		return nil, err
	}
	limit, offset := pageSize(f.Limit, f.Offset, 20, 100)
	q := appSelect + ` WHERE applicant_kind = ? AND applicant_id = ?`
	args := []any{string(ap.Kind), ap.ID}
	if f.BundleID != "" {
		q += ` AND bundle_id = ?`
		args = append(args, f.BundleID)
	}
	rows, err := db.Collect(ctx, a.d, q+` ORDER BY submitted_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset), scanApp)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	names := &deptNames{a: a}
	out := make([]Application, 0, len(rows))
	for _, r := range rows {
		c, err := a.cases.Get(ctx, ap, r.caseID)
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", r.number, err)
		}
		out = append(out, a.view(r, c, names.name(ctx, c.DeptID)))
	}
	return out, nil
}

// Get returns an application to its applicant, or to staff who may see its case (the
// workflow engine decides: the handling department within its division, or supervisors).
// Values and the files are opened only for the applicant and the handling department's
// staff, whose every read is audited. Anyone else gets ErrApplicationNotFound.
func (a *Applications) Get(ctx context.Context, actor authz.Subject, id string) (ApplicationDetail, error) {
	if actor.Kind == "" {
		return ApplicationDetail{}, i18n.ErrUnauthorized
	}
	r, err := getApp(ctx, a.d, "id", id)
	if err != nil {
		return ApplicationDetail{}, err
	}
	return a.detail(ctx, actor, r)
}

// ByCase is Get by the application's case id (for the officers' console, which starts from
// a case in a queue).
func (a *Applications) ByCase(ctx context.Context, actor authz.Subject, caseID string) (ApplicationDetail, error) {
	if actor.Kind == "" {
		return ApplicationDetail{}, i18n.ErrUnauthorized
	}
	r, err := getApp(ctx, a.d, "case_id", caseID)
	if err != nil {
		return ApplicationDetail{}, err
	}
	return a.detail(ctx, actor, r)
}

func (a *Applications) detail(ctx context.Context, actor authz.Subject, r appRow) (ApplicationDetail, error) {
	c, err := a.cases.Get(ctx, actor, r.caseID)
	if errors.Is(err, i18n.ErrNotFound) {
		return ApplicationDetail{}, ErrApplicationNotFound
	}
	if err != nil {
		return ApplicationDetail{}, err
	}
	hist, err := a.cases.History(ctx, actor, r.caseID)
	if err != nil {
		return ApplicationDetail{}, err
	}
	it, err := a.items.GetVersion(ctx, r.itemCode, r.itemVersion)
	if err != nil {
		return ApplicationDetail{}, fmt.Errorf("application %s: %w", r.number, err)
	}
	f, err := a.forms.Get(ctx, r.formID)
	if err != nil {
		return ApplicationDetail{}, fmt.Errorf("application %s: form: %w", r.number, err)
	}
	mats, err := a.materials(ctx, a.d, r.id, r.revision, it)
	if err != nil {
		return ApplicationDetail{}, err
	}
	names := &deptNames{a: a}
	out := ApplicationDetail{Application: a.view(r, c, names.name(ctx, c.DeptID)), Item: it, Form: f, Materials: mats,
		Case: c, History: hist, Correction: c.Correction}
	var held []attach
	for _, m := range mats {
		held = append(held, attach{key: m.Key})
	}
	out.Missing = missingMaterials(it, held)
	personal := r.applicant.Is(actor) || handlingStaff(actor, c.DeptID)
	if err := a.trustView(ctx, actor, &out, personal && !r.applicant.Is(actor)); err != nil {
		return ApplicationDetail{}, err
	}
	if !personal {
		for i := range out.Materials {
			out.Materials[i].File = nil // the list says what is there; the files are the handlers'
		}
		return out, nil
	}
	if out.Values, err = a.revisionValues(ctx, a.d, r.id, r.revision); err != nil {
		return ApplicationDetail{}, err
	}
	if !r.applicant.Is(actor) {
		if err := a.audit(ctx, actor, ActionRead, RefPrefix+r.id, map[string]any{"number": r.number, "revision": r.revision}); err != nil {
			return ApplicationDetail{}, err
		}
	}
	return out, nil
}

// revisionValues opens one revision's values.
func (a *Applications) revisionValues(ctx context.Context, q db.Querier, appID string, rev int) (map[string]string, error) {
	var enc []byte
	if err := q.QueryRow(ctx, `SELECT values_enc FROM service_application_revisions WHERE application_id = ? AND revision = ?`,
		appID, rev).Scan(&enc); err != nil {
		return nil, fmt.Errorf("application %s revision %d: %w", appID, rev, err)
	}
	return a.openValues(fieldAAD("service_application_revisions", appID, fmt.Sprintf("values:%d", rev)), enc)
}

// materials lists one revision's materials with their files, in the item's material order.
func (a *Applications) materials(ctx context.Context, q db.Querier, appID string, rev int, it Item) ([]AttachedMaterial, error) {
	type row struct {
		seq int
		AttachedMaterial
		file fileRow
		has  bool
	}
	rows, err := db.Collect(ctx, q, `SELECT m.seq, m.material_key, m.source, m.licence_id, f.id, f.file_name, f.content_type, f.size, f.sm3, f.created_at
		FROM service_application_materials m LEFT JOIN applicant_files f ON f.id = m.file_id
		WHERE m.application_id = ? AND m.revision = ? ORDER BY m.seq`, []any{appID, rev}, func(s db.Scanner) (row, error) {
		var r row
		var id, name, ct, sm3 sql.NullString
		var size sql.NullInt64
		var created sql.NullTime
		err := s.Scan(&r.seq, &r.Key, &r.Source, &r.LicenseID, &id, &name, &ct, &size, &sm3, &created)
		if err == nil && id.Valid {
			r.has = true
			r.file = fileRow{File: File{ID: id.String, Name: name.String, ContentType: ct.String, Size: size.Int64, SM3: sm3.String,
				CreatedAt: created.Time.UTC()}}
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("materials of application %s: %w", appID, err)
	}
	order := func(key string) int {
		return slices.IndexFunc(it.Materials, func(m Material) bool { return m.Key == key })
	}
	slices.SortStableFunc(rows, func(x, y row) int { return order(x.Key) - order(y.Key) })
	out := make([]AttachedMaterial, 0, len(rows))
	for _, r := range rows {
		m := r.AttachedMaterial
		if i := order(m.Key); i >= 0 {
			m.Name = i18n.T(it.Materials[i].Name, it.Materials[i].NameEn)
		}
		if r.has {
			f := r.file.File
			m.File = &f
		}
		out = append(out, m)
	}
	return out, nil
}

// Notice tells the notifier about an application: its number, item and who to tell. It is
// for the app's wiring of the notifications, which act on the engine's events, not on behalf
// of a person; it authorizes nobody.
func (a *Applications) Notice(ctx context.Context, id string) (Notice, error) {
	r, err := getApp(ctx, a.d, "id", id)
	if err != nil {
		return Notice{}, err
	}
	n := Notice{ApplicationID: r.id, Number: r.number, ItemCode: r.itemCode, ItemName: r.itemName, ItemNameEn: r.itemNameEn,
		Applicant: authz.Subject{Kind: r.applicant.Kind, ID: r.applicant.ID, Name: r.applicant.Name}, BundleID: r.bundleID}
	if r.phoneEnc != nil {
		if n.Phone, err = a.fc.Open(r.phoneEnc, fieldAAD("service_applications", r.id, "contact_phone")); err != nil {
			return Notice{}, fmt.Errorf("application %s contact phone: %w", r.number, err)
		}
	}
	return n, nil
}

// caseAsApplicant reads a case with the application's own applicant as reader: for the
// service's internal views (a bundle's overall status) once the actor's right is checked.
func (a *Applications) caseAsApplicant(ctx context.Context, r appRow) (workflow.Case, error) {
	return a.cases.Get(ctx, authz.Subject{Kind: r.applicant.Kind, ID: r.applicant.ID}, r.caseID)
}

package govservice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// bundleMember is one member item of a bundle application being prepared.
type bundleMember struct {
	item   Item
	form   *form.Form
	values form.Values
	dept   deptRef
}

// SubmitBundle submits a 一件事 application: the bundle's combined form is validated once,
// then each member item receives the fields the bundle maps to it — no prefill on members:
// what the applicant confirmed in the combined form is what every department gets — and
// becomes an application of its own, routed to its own department, with its own case. All
// of it commits in one transaction or not at all. A material's key is "<item code>/<key>"
// for one member or "<key>" for every member that asks for it; each upload is stored once.
func (a *Applications) SubmitBundle(ctx context.Context, ap Applicant, in BundleInput) (BundleApplication, error) {
	if err := checkApplicantSubject(ap.Subject); err != nil {
		return BundleApplication{}, err
	}
	b, err := a.items.Bundle(ctx, strings.TrimSpace(in.BundleCode))
	if err != nil {
		if errors.Is(err, ErrBundleNotFound) {
			return BundleApplication{}, ErrBundleNotFound.WithField("bundle_code")
		}
		return BundleApplication{}, err
	}
	if !b.Active {
		return BundleApplication{}, ErrBundleInactive
	}
	bf, err := a.bundleForm(b)
	if err != nil {
		return BundleApplication{}, err
	}
	values, errs := bf.ValidateWith(in.Values, form.Options{Now: a.opts.Now})
	if len(errs) == 0 {
		errs = bindApplicant(bf, values, ap)
	}
	if len(errs) > 0 {
		return BundleApplication{}, invalidForm(errs)
	}
	division := strings.TrimSpace(in.Division)
	members := make([]bundleMember, 0, len(b.Items))
	for i, code := range b.Items {
		// Who may apply is the first member's rule: 开办企业一件事 is applied for by the founder,
		// and its later members (seal filing, insurance registration) serve the enterprise
		// that the first one creates.
		it, f, err := a.applicableItem(ctx, ap.Subject, code, i == 0)
		if err != nil {
			if e, ok := i18n.As(err); ok {
				return BundleApplication{}, e.WithField("items." + code)
			}
			return BundleApplication{}, err
		}
		mv, errs := f.ValidateWith(values.Only(b.Fields[code]...), form.Options{Now: a.opts.Now})
		if len(errs) > 0 {
			// The pack loader makes the mapping cover every unconditional required field; a
			// conditional one can still be missing, and it is a field of the combined form too.
			return BundleApplication{}, invalidForm(errs)
		}
		div, dept, err := a.route(ctx, it, division)
		if err != nil {
			return BundleApplication{}, err
		}
		division = div
		if err := a.ensureDefinition(ctx, it); err != nil {
			return BundleApplication{}, err
		}
		members = append(members, bundleMember{item: it, form: f, values: mv, dept: dept})
	}
	for _, m := range in.Materials {
		if m.Source == SourceLicense {
			// A grant names one department and application; a bundle's fan-out has several.
			return BundleApplication{}, ErrBundleLicense.WithField("materials." + strings.TrimSpace(m.Key))
		}
	}
	mats, uploads, err := a.attachMaterials(ctx, ap.Subject, in.Materials, bundleTargets(members))
	if err != nil {
		return BundleApplication{}, err
	}
	var out BundleApplication
	err = a.d.InTx(ctx, func(tx *db.Tx) error {
		now := a.now()
		formID, err := a.forms.SaveTx(ctx, tx, bf)
		if err != nil {
			return err
		}
		if err := insertFiles(ctx, tx, ap.Subject, uploads); err != nil {
			return err
		}
		br := bundleRow{id: db.NewID(), bundleCode: b.Code, bundleVersion: b.Version, formID: formID,
			applicant: ApplicantRef{Kind: ap.Subject.Kind, ID: ap.Subject.ID, Name: applicantName(ap)}, division: division, submittedAt: now}
		if br.number, err = nextNumber(ctx, tx, division, now); err != nil {
			return err
		}
		enc, err := a.sealValues(fieldAAD("service_bundle_applications", br.id, "values"), values)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO service_bundle_applications (id, number, bundle_code, bundle_version, form_version_id,
			applicant_kind, applicant_id, applicant_name, division, values_enc, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			br.id, br.number, br.bundleCode, br.bundleVersion, br.formID, string(br.applicant.Kind), br.applicant.ID,
			br.applicant.Name, br.division, enc, now); err != nil {
			return fmt.Errorf("store bundle application: %w", err)
		}
		out = BundleApplication{ID: br.id, Number: br.number, BundleCode: b.Code, BundleName: b.Name, BundleNameEn: b.NameEn,
			BundleVersion: b.Version, FormVersionID: formID, Applicant: br.applicant, Division: division, SubmittedAt: now}
		var numbers []string
		for _, m := range members {
			mformID, err := a.forms.SaveTx(ctx, tx, m.form)
			if err != nil {
				return err
			}
			row, c, err := a.insertApplication(ctx, tx, ap, newApplication{item: m.item, formID: mformID, division: division,
				dept: m.dept, values: m.values, materials: mats[m.item.Code], bundleID: br.id, bundleNumber: br.number}, now)
			if err != nil {
				return err
			}
			out.Members = append(out.Members, a.view(row, c, m.dept.name))
			numbers = append(numbers, row.number)
		}
		out.Status, out.Counts = bundleStatus(out.Members)
		out.StatusText = BundleStatusNames[out.Status]
		return a.record(ctx, tx, ap.Subject, ActionBundleSubmitted, "bundle_application:"+br.id, map[string]any{
			"number": br.number, "bundle": b.Code, "bundle_version": b.Version, "form_version": formID, "division": division,
			"applications": numbers})
	})
	if err != nil {
		a.discard(uploads)
		return BundleApplication{}, err
	}
	return out, nil
}

// bundleTargets resolves a bundle material key: "<item code>/<key>" names one member's
// material, "<key>" every member's material with that key.
func bundleTargets(members []bundleMember) materialTargets {
	return func(key string) (map[string]string, error) {
		out := map[string]string{}
		code, mkey, one := strings.Cut(key, "/")
		for _, m := range members {
			if one && m.item.Code != code {
				continue
			}
			want := key
			if one {
				want = mkey
			}
			if slices.ContainsFunc(m.item.Materials, func(x Material) bool { return x.Key == want }) {
				out[m.item.Code] = want
			}
		}
		if len(out) == 0 {
			return nil, ErrMaterialUnknown.WithField("materials." + key)
		}
		return out, nil
	}
}

// bundleStatus is the overall status of a bundle application's members: completed when every
// member is closed, none refused and one approved at least; partly refused as soon as one is
// refused; withdrawn when all are; in progress otherwise.
func bundleStatus(members []Application) (BundleStatus, BundleCounts) {
	n := BundleCounts{Total: len(members)}
	for _, m := range members {
		switch m.Status {
		case StatusApproved:
			n.Approved++
		case StatusRejected:
			n.Rejected++
		case StatusWithdrawn:
			n.Withdrawn++
		case StatusCorrection:
			n.Correction++
		default:
			n.Open++
		}
	}
	switch {
	case n.Rejected > 0:
		return BundlePartlyRefused, n
	case n.Total > 0 && n.Withdrawn == n.Total:
		return BundleWithdrawn, n
	case n.Total > 0 && n.Approved+n.Withdrawn == n.Total:
		return BundleCompleted, n
	}
	return BundleInProgress, n
}

// bundleRow is a service_bundle_applications row.
type bundleRow struct {
	id, number    string
	bundleCode    string
	bundleVersion int
	formID        string
	applicant     ApplicantRef
	division      string
	submittedAt   time.Time
}

// Bundle returns a 一件事 application with every member and the overall status: to its
// applicant, or to staff who may see one of its members' cases (they see the overview, not
// the other departments' values). Anyone else gets ErrApplicationNotFound.
func (a *Applications) Bundle(ctx context.Context, actor authz.Subject, id string) (BundleApplication, error) {
	if actor.Kind == "" {
		return BundleApplication{}, i18n.ErrUnauthorized
	}
	var br bundleRow
	err := a.d.QueryRow(ctx, `SELECT id, number, bundle_code, bundle_version, form_version_id, applicant_kind, applicant_id,
		applicant_name, division, submitted_at FROM service_bundle_applications WHERE id = ?`, id).Scan(&br.id, &br.number,
		&br.bundleCode, &br.bundleVersion, &br.formID, &br.applicant.Kind, &br.applicant.ID, &br.applicant.Name, &br.division, &br.submittedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return BundleApplication{}, ErrApplicationNotFound
	}
	if err != nil {
		return BundleApplication{}, fmt.Errorf("read bundle application %s: %w", id, err)
	}
	b, err := a.items.BundleVersion(ctx, br.bundleCode, br.bundleVersion)
	if err != nil {
		return BundleApplication{}, fmt.Errorf("bundle application %s: %w", br.number, err)
	}
	rows, err := db.Collect(ctx, a.d, appSelect+` WHERE bundle_id = ?`, []any{br.id}, scanApp)
	if err != nil {
		return BundleApplication{}, fmt.Errorf("bundle application %s: %w", br.number, err)
	}
	slices.SortFunc(rows, func(x, y appRow) int {
		return slices.Index(b.Items, x.itemCode) - slices.Index(b.Items, y.itemCode)
	})
	allowed := br.applicant.Is(actor)
	for _, r := range rows {
		if allowed || actor.Kind != authz.Staff {
			break
		}
		if _, err := a.cases.Get(ctx, actor, r.caseID); err == nil {
			allowed = true
		}
	}
	if !allowed {
		return BundleApplication{}, ErrApplicationNotFound
	}
	out := BundleApplication{ID: br.id, Number: br.number, BundleCode: b.Code, BundleName: b.Name, BundleNameEn: b.NameEn,
		BundleVersion: br.bundleVersion, FormVersionID: br.formID, Applicant: br.applicant, Division: br.division,
		SubmittedAt: br.submittedAt.UTC()}
	names := &deptNames{a: a}
	for _, r := range rows {
		c, err := a.caseAsApplicant(ctx, r)
		if err != nil {
			return BundleApplication{}, fmt.Errorf("bundle application %s: %w", br.number, err)
		}
		out.Members = append(out.Members, a.view(r, c, names.name(ctx, c.DeptID)))
	}
	out.Status, out.Counts = bundleStatus(out.Members)
	out.StatusText = BundleStatusNames[out.Status]
	return out, nil
}

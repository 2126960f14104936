package govservice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// ownApplication reads an application of the applicant; anyone else's is not found.
func (a *Applications) ownApplication(ctx context.Context, ap authz.Subject, id string) (appRow, error) {
	if err := checkApplicantSubject(ap); err != nil {
		return appRow{}, err
	}
	r, err := getApp(ctx, a.d, "id", id)
	if err != nil {
		return appRow{}, err
	}
	if !r.applicant.Is(ap) {
		return appRow{}, ErrApplicationNotFound
	}
	return r, nil
}

// maxComment bounds an applicant's comment, as the workflow engine bounds comments.
const maxComment = 2000

// AnswerCorrection records the applicant's answer to a request for correction (补正): the
// values, validated again against the form version the application was made with (nil keeps
// the current values), and materials that replace the current ones of the same keys (the
// others are carried over). The answer becomes a new revision; then the case resumes, with
// the working time that was left. Should the case refuse to resume (withdrawn or changed
// meanwhile), the revision is taken back and the workflow's error returned.
func (a *Applications) AnswerCorrection(ctx context.Context, ap Applicant, id string, values form.Values, materials []MaterialInput, comment string) (Application, error) {
	r, err := a.ownApplication(ctx, ap.Subject, id)
	if err != nil {
		return Application{}, err
	}
	comment = strings.TrimSpace(comment)
	if utf8.RuneCountInString(comment) > maxComment {
		return Application{}, i18n.Errorf(400, "govservice.comment_too_long", "说明最长 %d 个字符", "the comment is at most %d characters", maxComment).WithField("comment")
	}
	c, err := a.cases.Get(ctx, ap.Subject, r.caseID)
	if err != nil {
		return Application{}, err
	}
	if c.State != workflow.StateSuspended {
		return Application{}, workflow.ErrState
	}
	it, err := a.items.GetVersion(ctx, r.itemCode, r.itemVersion)
	if err != nil {
		return Application{}, fmt.Errorf("application %s: %w", r.number, err)
	}
	f, err := a.forms.Get(ctx, r.formID)
	if err != nil {
		return Application{}, fmt.Errorf("application %s: form: %w", r.number, err)
	}
	changed := values != nil
	if changed {
		nv, errs := f.ValidateWith(values, form.Options{Now: a.opts.Now})
		if len(errs) == 0 {
			errs = bindApplicant(f, nv, ap)
		}
		if len(errs) > 0 {
			return Application{}, invalidForm(errs)
		}
		values = nv
	}
	if err := a.checkLicences(ctx, ap.Subject, it, materials); err != nil {
		return Application{}, err
	}
	mats, uploads, err := a.attachMaterials(ctx, ap.Subject, materials, itemTargets(it))
	if err != nil {
		return Application{}, err
	}
	grants, err := a.grantLicences(ctx, ap.Subject, it, mats[it.Code], c.DeptID, RefPrefix+r.id)
	if err != nil {
		a.discard(uploads)
		return Application{}, err
	}
	rev := r.revision + 1
	err = a.d.InTx(ctx, func(tx *db.Tx) error {
		now := a.now()
		// The guarded bump comes first: of two answers sent at once (a double click), the second
		// finds the revision moved and is refused as a conflict before writing anything.
		res, err := tx.Exec(ctx, `UPDATE service_applications SET revision = ?, updated_at = ? WHERE id = ? AND revision = ?`, rev, now, r.id, r.revision)
		if err != nil {
			return fmt.Errorf("application %s: %w", r.number, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return workflow.ErrConflict
		}
		vals := values
		if !changed {
			if vals, err = a.revisionValues(ctx, tx, r.id, r.revision); err != nil {
				return err
			}
		}
		if err := insertFiles(ctx, tx, ap.Subject, uploads); err != nil {
			return err
		}
		prev, err := revisionMaterials(ctx, tx, r.id, r.revision)
		if err != nil {
			return err
		}
		next := mats[it.Code]
		var replaced []string
		for _, m := range next {
			if !slices.Contains(replaced, m.key) {
				replaced = append(replaced, m.key)
			}
		}
		var merged []attach
		for _, m := range prev {
			if !slices.Contains(replaced, m.key) {
				merged = append(merged, m)
			}
		}
		merged = append(merged, next...)
		if err := a.insertRevision(ctx, tx, r.id, rev, vals, comment, merged, now); err != nil {
			return err
		}
		r.revision, r.updatedAt = rev, now
		return a.record(ctx, tx, ap.Subject, ActionAnswered, RefPrefix+r.id, map[string]any{"number": r.number, "revision": rev,
			"values_changed": changed, "materials": replaced, "case_id": r.caseID})
	})
	if err != nil {
		a.discard(uploads)
		a.revokeGrants(ctx, ap.Subject, grants)
		return Application{}, err
	}
	c, err = a.cases.Resume(ctx, ap.Subject, r.caseID, comment)
	if err != nil {
		if uerr := a.unanswer(ctx, r.id, rev); uerr != nil {
			return Application{}, errors.Join(err, uerr)
		}
		return Application{}, err
	}
	return a.view(r, c, (&deptNames{a: a}).name(ctx, c.DeptID)), nil
}

// unanswer takes back a revision whose case did not resume.
func (a *Applications) unanswer(ctx context.Context, appID string, rev int) error {
	return a.d.InTx(ctx, func(tx *db.Tx) error {
		// Only while rev is still the current one: a later answer that did resume keeps its own.
		res, err := tx.Exec(ctx, `UPDATE service_applications SET revision = ? WHERE id = ? AND revision = ?`, rev-1, appID, rev)
		if err != nil {
			return fmt.Errorf("take back revision %d of %s: %w", rev, appID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		for _, q := range []string{
			`DELETE FROM service_application_materials WHERE application_id = ? AND revision = ?`,
			`DELETE FROM service_application_revisions WHERE application_id = ? AND revision = ?`,
		} {
			if _, err := tx.Exec(ctx, q, appID, rev); err != nil {
				return fmt.Errorf("take back revision %d of %s: %w", rev, appID, err)
			}
		}
		return nil
	})
}

// revisionMaterials reads one revision's materials as stored.
func revisionMaterials(ctx context.Context, q db.Querier, appID string, rev int) ([]attach, error) {
	out, err := db.Collect(ctx, q, `SELECT material_key, source, COALESCE(file_id, ''), licence_id FROM service_application_materials
		WHERE application_id = ? AND revision = ? ORDER BY seq`, []any{appID, rev}, func(s db.Scanner) (attach, error) {
		var m attach
		return m, s.Scan(&m.key, &m.source, &m.fileID, &m.licenseID)
	})
	if err != nil {
		return nil, fmt.Errorf("materials of %s: %w", appID, err)
	}
	return out, nil
}

// Withdraw withdraws the applicant's application (撤回) while its case is open or waiting
// for a correction; the case closes as withdrawn.
func (a *Applications) Withdraw(ctx context.Context, ap Applicant, id, reason string) (Application, error) {
	r, err := a.ownApplication(ctx, ap.Subject, id)
	if err != nil {
		return Application{}, err
	}
	c, err := a.cases.Withdraw(ctx, ap.Subject, r.caseID, reason)
	if err != nil {
		return Application{}, err
	}
	// The case's withdrawal is audited by the workflow in its own transaction; this records
	// it against the application too.
	err = a.d.InTx(ctx, func(tx *db.Tx) error {
		now := a.now()
		if _, err := tx.Exec(ctx, `UPDATE service_applications SET updated_at = ? WHERE id = ?`, now, r.id); err != nil {
			return fmt.Errorf("application %s: %w", r.number, err)
		}
		r.updatedAt = now
		return a.record(ctx, tx, ap.Subject, ActionWithdrawn, RefPrefix+r.id, map[string]any{"number": r.number,
			"reason": strings.TrimSpace(reason), "case_id": r.caseID})
	})
	if err != nil {
		return Application{}, err
	}
	return a.view(r, c, (&deptNames{a: a}).name(ctx, c.DeptID)), nil
}

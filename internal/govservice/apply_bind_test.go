package govservice_test

import (
	"testing"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// The operator of a 个体工商户 applies in person: a valid ID number or name of someone else in
// the fields bound to the applicant is refused, field by field; the applicant's own goes through.
func TestApplyBindsApplicantIdentity(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		dr := f.draft(f.zhang, itemGeti)
		submit := func(over form.Values) error {
			_, err := f.apps.Submit(f.ctx, f.zhang, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105", Values: values(dr.Form, over)})
			return err
		}
		for _, tc := range []struct {
			name  string
			over  form.Values
			field string
		}{
			{"李四's ID number", form.Values{"operator_id_number": liID}, "operator_id_number"},
			{"李四's name", form.Values{"operator_name": "李四"}, "operator_name"},
		} {
			fe, ok := govservice.FieldErrors(submit(tc.over))
			if e, found := fe.For(tc.field); !ok || !found || e.Code != "govservice.not_applicant" || len(fe) != 1 {
				t.Errorf("%s: want one not_applicant error on %s, got %v", tc.name, tc.field, fe)
			}
		}
		if err := submit(form.Values{"operator_id_number": zhangID, "operator_name": "张三"}); err != nil {
			t.Fatalf("own identity: %v", err)
		}
		if !govservice.BoundToApplicant("operator_id_number", form.SourceApplicantIDNumber) ||
			govservice.BoundToApplicant("person_id_number", form.SourceApplicantIDNumber) {
			t.Error("binding convention: operator_… bound, person_… (the insured, a card holder) free")
		}
	}, applySources...)
}

// Two answers to one correction sent at once (a double click): one is taken, the other is
// refused with a bilingual 409 — never a 500 with driver text — and the application keeps
// exactly one new revision.
func TestApplyDoubleAnswer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		app := f.submitGeti(f.zhang)
		officer := f.officer("140105", "scjg")
		if _, err := f.cases.Claim(f.ctx, officer, app.CaseID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cases.RequestCorrection(f.ctx, officer, app.CaseID, "经营场所证明缺失", []string{"premises"}); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := f.apps.AnswerCorrection(f.ctx, f.zhang, app.ID, nil, nil, "已补正")
				errs <- err
			}()
		}
		var ok, refused int
		for range 2 {
			err := <-errs
			if err == nil {
				ok++
				continue
			}
			if e, isI18n := i18n.As(err); isI18n && e.HTTPStatus() == 409 {
				refused++
			} else {
				t.Errorf("second answer: %v", err)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("answers: %d taken, %d refused", ok, refused)
		}
		if n := f.count(`SELECT COUNT(*) FROM service_application_revisions WHERE application_id = ?`, app.ID); n != 2 {
			t.Errorf("revisions: %d, want 2", n)
		}
	}, applySources...)
}

// A bundle cannot take an e-licence for a material (a use grant names one department and one
// application): refused with a clear error naming the material, and nothing is stored.
func TestApplyBundleRefusesLicence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		_, err := f.apps.SubmitBundle(f.ctx, f.zhang, govservice.BundleInput{BundleCode: "birth", Division: "140105",
			Values: f.bundleValues("birth"), Materials: []govservice.MaterialInput{{Key: "x", Source: govservice.SourceLicense, LicenseID: "l"}}})
		e, ok := i18n.As(err)
		if !ok || e.Code != govservice.ErrBundleLicense.Code || e.Field != "materials.x" || e.HTTPStatus() != 400 {
			t.Fatalf("bundle with a licence: %v", err)
		}
		if n := f.count(`SELECT COUNT(*) FROM service_applications`); n != 0 {
			t.Errorf("%d applications stored", n)
		}
	}, applySources...)
}

package govservice

import (
	"strings"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// bindApplicant refuses values that claim another identity in the fields a form declares as
// the applicant's own (BoundToApplicant): fields keyed applicant_… or operator_… that prefill
// from applicant.name or applicant.id_number, and, when the person acts for an enterprise, the fields that prefill
// from entity.name and entity.credit_code. Prefill is only a default in the browser, while
// officers read these fields as the applicant's verified identity. Other fields with an
// applicant.* default stay free: the insured person, the card holder or a shareholder may be
// someone else (a parent applies for a child). Bundle members are not bound: their values
// come from the bundle's form.
func bindApplicant(f *form.Form, values form.Values, ap Applicant) form.Errors {
	own := map[string]string{form.SourceApplicantName: ap.Name, form.SourceApplicantIDNumber: ap.IDNumber}
	if ap.Enterprise != nil {
		own[form.SourceEntityName] = ap.Enterprise.Name
		own[form.SourceEntityCreditCode] = ap.Enterprise.CreditCode
	}
	var errs form.Errors
	for _, key := range f.Keys() {
		fd, _ := f.Field(key)
		if !BoundToApplicant(key, fd.Prefill) {
			continue
		}
		want := strings.TrimSpace(own[fd.Prefill])
		got, given := values[key]
		if want == "" || !given || strings.EqualFold(strings.TrimSpace(got), want) {
			continue
		}
		errs = append(errs, form.FieldError{Field: key, Code: "govservice.not_applicant",
			Message: i18n.T("此项须为申请人本人经实名核验的信息，不能填写他人的", "this must be the applicant's own verified identity, not someone else's")})
	}
	return errs
}

// BoundToApplicant reports whether a form field is the applicant's own identity, bound to the
// verified account on submission: by the packs' convention a field keyed applicant_… or
// operator_… (个体经营者 apply in person) with an applicant.* default, or any field with an
// entity.* name or credit-code default (the enterprise the person acts for).
func BoundToApplicant(key, prefill string) bool {
	switch prefill {
	case form.SourceEntityName, form.SourceEntityCreditCode:
		return true
	case form.SourceApplicantName, form.SourceApplicantIDNumber:
		return strings.HasPrefix(key, "applicant_") || strings.HasPrefix(key, "operator_")
	}
	return false
}

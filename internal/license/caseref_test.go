package license_test

import (
	"testing"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// A service case issues one licence: a second issuance for the same case (a racing redelivery
// of the closing event) is refused by the store, while renewing the licence carries the case on.
func TestOneLicencePerCase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		l := f.businessLicence(t)
		in := license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: "ty-scjg",
			Holder: license.Holder{Name: "太原市小店区味美餐饮有限公司", IDType: license.IDCreditCode, IDNumber: shopCC},
			Items: map[string]string{"entity_type": "有限责任公司", "legal_rep": "张伟", "registered_capital": "壹佰万圆整",
				"established_on": "2020-05-08", "business_term": "长期", "address": "山西省太原市小店区坞城路92号", "scope": "餐饮服务"},
			CaseRef: l.CaseRef}
		if _, err := f.svc.Issue(f.ctx, f.scjg, in); !db.IsUniqueViolation(err) {
			t.Fatalf("second licence of case %s: %v", l.CaseRef, err)
		}
		in.CaseRef = ""
		if _, err := f.svc.Issue(f.ctx, f.scjg, in); err != nil {
			t.Fatalf("a licence issued outside a case: %v", err)
		}
	}, sources...)
}

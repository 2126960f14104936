package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/seal"
)

// sealSigner signs licences with the seal engine, as the app's adapter does.
type sealSigner struct{ s *seal.Service }

func (s sealSigner) SignAs(ctx context.Context, deptID string, data []byte) (license.Signature, error) {
	sig, err := s.s.SignAs(ctx, deptID, data)
	return license.Signature(sig), err
}

// The trusted-services demo registers every department whose kind issues a pack item's licence
// and makes its official seal, once; a demo officer then issues a licence signed with it.
func TestLoadTrust(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Migrate(ctx, crypto.Migrations, bus.Migrations, org.Migrations, baselib.Migrations, seal.Migrations, license.Migrations); err != nil {
			t.Fatal(err)
		}
		k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), clock)
		if err != nil {
			t.Fatal(err)
		}
		policy := authz.NewPolicy(divisions.Contains)
		seal.RegisterPermissions(policy)
		license.RegisterPermissions(policy)
		deps := Deps{DB: d, Now: clock,
			Org:  org.New(d, policy, org.Options{Argon: cheap, Now: clock, Fields: k.FieldCipher()}),
			Base: baselib.New(d, k.FieldCipher(), baselib.Options{Now: clock})}
		if _, err := Load(ctx, deps, Options{Seed: 42, Residents: -1, Enterprises: -1}); err != nil {
			t.Fatal(err)
		}
		seals := seal.New(d, policy, deps.Org, k.FieldCipher(), seal.Options{Now: clock})
		lic := license.New(license.Deps{DB: d, Policy: policy, Fields: k.FieldCipher(), Signer: sealSigner{seals}, NodeKey: k},
			license.Options{Now: clock, Node: license.Node{ID: "140000", Division: "140000"}})
		if _, err := lic.SeedTypes(ctx); err != nil {
			t.Fatal(err)
		}
		tdeps := TrustDeps{Org: deps.Org, Seals: seals, Licenses: lic}

		// The pack's licence-issuing kinds are every standard kind but 政务服务管理局: 9 at the
		// province and in each of 11 cities, and in 太原's 10 districts and counties the
		// market-regulation bureau and the police.
		const want = 9*12 + 2*10
		sum, err := LoadTrust(ctx, tdeps)
		if err != nil {
			t.Fatal(err)
		}
		if sum != (TrustSummary{Departments: want, Issuers: want, Seals: want}) {
			t.Fatalf("summary %+v, want %d of each", sum, want)
		}
		if again, err := LoadTrust(ctx, tdeps); err != nil || again != (TrustSummary{Departments: want}) {
			t.Fatalf("second load: %+v %v", again, err)
		}
		issuers, err := lic.Issuers(ctx, "")
		if err != nil || len(issuers) != want {
			t.Fatalf("issuers: %d %v", len(issuers), err)
		}
		codes := map[string]bool{}
		for _, iss := range issuers {
			cc, err := ids.ValidateCreditCode(iss.CreditCode)
			if err != nil || cc.Division != iss.Division || codes[iss.CreditCode] || !strings.HasPrefix(cc.OrgCode, "DG") {
				t.Fatalf("issuer %s: credit code %s (%v)", iss.Name, iss.CreditCode, err)
			}
			codes[iss.CreditCode] = true
		}

		// 太原市行政审批服务管理局's demo officer issues a business licence at once.
		officer, err := staffSubject(ctx, deps.Org, "ty-xzsp-01")
		if err != nil {
			t.Fatal(err)
		}
		holder, _ := ids.MakeCreditCode('9', '1', "140105", "MA0XY5D7")
		l, err := lic.Issue(ctx, officer, license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: officer.Dept,
			Holder: license.Holder{Name: "太原市迎泽餐饮有限公司", IDType: license.IDCreditCode, IDNumber: holder},
			Items: map[string]string{"entity_type": "有限责任公司", "legal_rep": "李迎泽", "established_on": "2022-03-04", "address": "太原市迎泽区",
				"scope": "餐饮服务"}})
		if err != nil {
			t.Fatalf("issue as ty-xzsp-01: %v", err)
		}
		if res, err := lic.VerifyOnline(ctx, l.Content.ID, l.ShortDigest()); err != nil || !res.Valid {
			t.Fatalf("the demo licence does not verify: %+v %v", res, err)
		}
	})
}

package license_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

func TestTypes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if n, err := f.svc.SeedTypes(f.ctx); err != nil || n != 0 {
			t.Fatalf("second SeedTypes = %d, %v; want 0", n, err)
		}
		types, err := f.svc.Types(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ty := range types {
			names = append(names, ty.Name.ZH)
		}
		want := []string{"不动产权证书", "出生医学证明", "结婚证", "居住证", "社会保障卡", "食品经营许可证", "营业执照"} // by code
		if !slices.Equal(names, want) {
			t.Fatalf("types = %v, want %v", names, want)
		}
		food, err := f.svc.Type(f.ctx, "spjyxkz")
		if err != nil || food.Validity.Years != 5 || food.HolderKind != license.LegalPerson || len(food.Items) != 7 {
			t.Fatalf("食品经营许可证 = %+v, %v", food, err)
		}

		custom := license.Type{Code: "YLJGZYXKZ", Name: i18n.T("医疗机构执业许可证", "Medical institution practising licence"), HolderKind: license.LegalPerson,
			IssuerKinds: []string{"卫生健康委员会", "行政审批服务管理局"}, Validity: license.Validity{Years: 5},
			Items: []license.ItemDef{{Key: "beds", Label: i18n.T("床位", "Beds"), Type: license.ItemNumber, Required: true}}}
		for _, tt := range []struct {
			name  string
			actor authz.Subject
			edit  func(*license.Type)
			want  error
		}{
			{"officer may not", f.scjg, nil, i18n.ErrForbidden},
			{"city admin may not", staff("a", "140100", "x", authz.RoleOrgAdmin), nil, i18n.ErrForbidden},
			{"bad code", f.admin, func(t *license.Type) { t.Code = "YL.JG" }, nil},
			{"no items", f.admin, func(t *license.Type) { t.Items = nil }, nil},
			{"bad item key", f.admin, func(t *license.Type) {
				t.Items = []license.ItemDef{{Key: "Beds", Label: i18n.T("床位", ""), Type: license.ItemText}}
			}, nil},
			{"repeated item", f.admin, func(t *license.Type) { t.Items = append(t.Items, t.Items[0]) }, nil},
			{"bad item type", f.admin, func(t *license.Type) {
				t.Items = []license.ItemDef{{Key: "beds", Label: i18n.T("床位", ""), Type: "bool"}}
			}, nil},
			{"bad validity", f.admin, func(t *license.Type) { t.Validity.Months = 12 }, nil},
			{"bad holder kind", f.admin, func(t *license.Type) { t.HolderKind = "robot" }, nil},
		} {
			ty := custom
			ty.Items = slices.Clone(custom.Items)
			if tt.edit != nil {
				tt.edit(&ty)
			}
			_, err := f.svc.DefineType(f.ctx, tt.actor, ty)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
				}
				continue
			}
			if e, ok := i18n.As(err); !ok || e.HTTPStatus() != 400 {
				t.Errorf("%s: %v, want a 400", tt.name, err)
			}
		}
		got, err := f.svc.DefineType(f.ctx, f.admin, custom)
		if err != nil || got.Code != "YLJGZYXKZ" || got.Items[0].Type != license.ItemNumber {
			t.Fatalf("DefineType = %+v, %v", got, err)
		}
		if a := f.auditActions(t, "license_type:YLJGZYXKZ"); len(a) != 1 || a[0] != "license.type.define by staff:admin" {
			t.Fatalf("audit = %v", a)
		}
	}, sources...)
}

func TestValidity(t *testing.T) {
	from := time.Date(2025, 1, 24, 10, 0, 0, 0, time.UTC) // 18:00 in Beijing
	until := license.Validity{Years: 5}.Until(from)
	if want := time.Date(2030, 1, 23, 16, 0, 0, 0, time.UTC); !until.Equal(want) { // 2030-01-24 00:00 Beijing
		t.Fatalf("Until = %s, want %s", until, want)
	}
	late := time.Date(2025, 1, 24, 17, 0, 0, 0, time.UTC) // already 25 January in Beijing
	month := license.Validity{Months: 1}
	if got, want := month.Until(late), time.Date(2025, 2, 24, 16, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Until = %s, want %s", got, want)
	}
	if (license.Validity{}).Until(from) != nil {
		t.Fatal("long-term validity has an end")
	}
}

func TestIssue(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		l := f.businessLicence(t)
		id, err := license.ParseIdentifier(l.Content.ID)
		if err != nil {
			t.Fatal(err)
		}
		if id.TypeCode != "YYZZ" || id.CreditCode != tyScjg || id.Serial != "00000001" || id.Version != 1 {
			t.Fatalf("identifier %+v", id)
		}
		c := l.Content
		if c.Holder.Kind != license.LegalPerson || c.Issuer.Name != "太原市市场监督管理局" || c.ValidUntil != nil || c.Node != "sx" ||
			!c.IssuedAt.Equal(db.Now(t0)) || len(c.Items) != 7 || c.Items[0].Label != "类型" {
			t.Fatalf("content %+v", c)
		}
		if l.Status != license.StatusValid || l.Digest != c.Digest() || l.Signature.KeyID != "seal-ty-scjg-1" || l.CaseRef != "case-0001" {
			t.Fatalf("licence %+v", l)
		}
		if l2 := f.businessLicence(t); !strings.Contains(l2.Content.ID, ".00000002.001.") {
			t.Fatalf("second serial: %s", l2.Content.ID)
		}
		// The residence permit is valid one year, through 23 January 2026 in Beijing.
		rp := f.residencePermit(t)
		if want := time.Date(2026, 1, 23, 16, 0, 0, 0, time.UTC); rp.Content.ValidUntil == nil || !rp.Content.ValidUntil.Equal(want) {
			t.Fatalf("residence permit valid until %v", rp.Content.ValidUntil)
		}

		// The workflow engine issues with a system subject when a case closes approved.
		sysl, err := f.svc.Issue(f.ctx, f.sys, license.IssueInput{TypeCode: "JZZ", IssuerDeptID: "ty-ga",
			Holder: license.Holder{Name: "李娜", IDType: license.IDResident, IDNumber: liID},
			Items:  map[string]string{"sex": "女", "birth_date": "1992-11-03", "address": "太原市迎泽大街1号"}, CaseRef: "case-0002"})
		if err != nil || sysl.IssuedBy != "system:workflow" {
			t.Fatalf("system issue: %+v, %v", sysl.IssuedBy, err)
		}

		ok := license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: "ty-scjg",
			Holder: license.Holder{Name: "某公司", IDType: license.IDCreditCode, IDNumber: shopCC},
			Items:  map[string]string{"entity_type": "有限责任公司", "legal_rep": "张伟", "established_on": "2020-05-08", "address": "太原", "scope": "餐饮"}}
		for _, tt := range []struct {
			name  string
			actor authz.Subject
			edit  func(*license.IssueInput)
			want  string // error code
		}{
			{"anonymous", authz.Subject{}, nil, "unauthorized"},
			{"a citizen", f.zhang, nil, "forbidden"},
			{"another department's officer", f.ga, nil, "forbidden"},
			{"an officer of the department elsewhere", staff("x", "140200", "ty-scjg", authz.RoleOfficer), nil, "forbidden"},
			{"an auditor of the department", staff("x", "140100", "ty-scjg", authz.RoleAuditor), nil, "forbidden"},
			{"a department that is no issuer", staff("x", "140100", "ty-rs", authz.RoleOfficer), func(in *license.IssueInput) { in.IssuerDeptID = "ty-rs" }, "license.issuer.unknown"},
			{"a type it does not issue", f.scjg, func(in *license.IssueInput) { in.TypeCode = "JZZ" }, "license.issuer.type"},
			{"an unknown type", f.scjg, func(in *license.IssueInput) { in.TypeCode = "NOPE" }, "license.type.unknown"},
			{"a natural person", f.scjg, func(in *license.IssueInput) {
				in.Holder = license.Holder{Name: "张伟", IDType: license.IDResident, IDNumber: zhangID}
			}, "license.holder.kind"},
			{"a bad credit code", f.scjg, func(in *license.IssueInput) { in.Holder.IDNumber = shopCC[:17] + "0" }, "ids.credit.checksum"},
			{"no holder name", f.scjg, func(in *license.IssueInput) { in.Holder.Name = " " }, "license.holder.name"},
			{"an unknown identity type", f.scjg, func(in *license.IssueInput) { in.Holder.IDType = "999" }, "license.holder.id_type"},
			{"a missing item", f.scjg, func(in *license.IssueInput) { delete(in.Items, "scope") }, "license.item.required"},
			{"an unknown item", f.scjg, func(in *license.IssueInput) { in.Items["colour"] = "红" }, "license.item.unknown"},
			{"a bad date", f.scjg, func(in *license.IssueInput) { in.Items["established_on"] = "2020-13-01" }, "license.item.date"},
			{"an end before the start", f.scjg, func(in *license.IssueInput) { in.ValidUntil = ptr(t0.Add(-time.Hour)) }, "license.valid_until"},
		} {
			in := ok
			in.Items = map[string]string{}
			for k, v := range ok.Items {
				in.Items[k] = v
			}
			if tt.edit != nil {
				tt.edit(&in)
			}
			_, err := f.svc.Issue(f.ctx, tt.actor, in)
			if e, isI18n := i18n.As(err); !isI18n || e.Code != tt.want {
				t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
			}
		}

		// Audited and announced in the same transaction.
		if a := f.auditActions(t, "license:"+l.Content.ID); !slices.Equal(a, []string{"license.issue by staff:scjg-officer"}) {
			t.Fatalf("audit = %v", a)
		}
		var n int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM outbox WHERE subject = ?`, license.EventSubjectIssued).Scan(&n); err != nil || n != 4 {
			t.Fatalf("%d issued events, %v; want 4", n, err)
		}
		// No personal data in clear: the ID number and the address are only inside the sealed content.
		rows, err := d.Query(f.ctx, `SELECT content_enc, holder_idx, holder_name FROM licenses`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var enc []byte
			var idx, name string
			if err := rows.Scan(&enc, &idx, &name); err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{zhangID, liID, "亲贤北街", "迎泽大街"} {
				if bytes.Contains(enc, []byte(secret)) || strings.Contains(idx, secret) {
					t.Fatalf("%q stored in clear", secret)
				}
			}
		}
	}, sources...)
}

func TestAccess(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		bl := f.businessLicence(t)
		rp := f.residencePermit(t)
		for _, tt := range []struct {
			name  string
			actor authz.Subject
			id    string
			want  error
		}{
			{"the holder (enterprise)", f.shop, bl.Content.ID, nil},
			{"the holder (citizen)", f.zhang, rp.Content.ID, nil},
			{"another citizen", f.li, rp.Content.ID, i18n.ErrForbidden},
			{"a citizen reading a company's licence", f.zhang, bl.Content.ID, i18n.ErrForbidden},
			{"the issuing officer", f.scjg, bl.Content.ID, nil},
			{"an officer of another department", f.ga, bl.Content.ID, license.ErrNoGrant},
			{"an officer of the same kind elsewhere", f.dtScjg, bl.Content.ID, license.ErrNoGrant},
			{"the provincial auditor", f.auditor, bl.Content.ID, nil},
			{"a city auditor elsewhere", staff("x", "140200", "dt-zwfw", authz.RoleAuditor), bl.Content.ID, license.ErrNoGrant},
			{"anonymous", authz.Subject{}, bl.Content.ID, i18n.ErrUnauthorized},
			{"an unverified citizen", authz.Subject{Kind: authz.Citizen, ID: "c-nobody"}, rp.Content.ID, license.ErrHolderUnknown},
			{"an unknown licence", f.scjg, strings.Replace(bl.Content.ID, ".00000001.001.", ".00000009.001.", 1), license.ErrIdentifierCheck},
		} {
			l, err := f.svc.Get(f.ctx, tt.actor, tt.id)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
				}
				continue
			}
			if err != nil || l.Content.ID != tt.id || l.Content.Holder.IDNumber == "" {
				t.Errorf("%s: %+v, %v", tt.name, l.Content.ID, err)
			}
		}
		// Staff reads are audited; the holder's are not.
		if a := f.auditActions(t, "license:"+bl.Content.ID); !slices.Equal(a, []string{"license.issue by staff:scjg-officer",
			"license.read by staff:scjg-officer", "license.read by staff:auditor"}) {
			t.Fatalf("audit = %v", a)
		}

		mine, err := f.svc.Mine(f.ctx, f.zhang)
		if err != nil || len(mine) != 1 || mine[0].ID != rp.Content.ID || mine[0].TypeName != "居住证" {
			t.Fatalf("Mine = %+v, %v", mine, err)
		}
		if _, err := f.svc.Mine(f.ctx, f.scjg); !errors.Is(err, i18n.ErrForbidden) {
			t.Fatalf("staff Mine: %v", err)
		}
		list, err := f.svc.List(f.ctx, f.scjg, license.Filter{IssuerDeptID: "ty-scjg"})
		if err != nil || len(list) != 1 || list[0].ID != bl.Content.ID {
			t.Fatalf("List = %+v, %v", list, err)
		}
		list, err = f.svc.List(f.ctx, f.ga, license.Filter{IssuerDeptID: "ty-ga", Holder: &license.HolderID{Type: license.IDResident, Number: zhangID}, Status: license.StatusValid})
		if err != nil || len(list) != 1 || list[0].ID != rp.Content.ID {
			t.Fatalf("List by holder = %+v, %v", list, err)
		}
		if _, err := f.svc.List(f.ctx, f.ga, license.Filter{IssuerDeptID: "ty-scjg"}); !errors.Is(err, i18n.ErrForbidden) {
			t.Fatalf("List of another department: %v", err)
		}
		v, err := f.svc.View(f.ctx, f.zhang, rp.Content.ID)
		if err != nil || v.TypeName.EN != "Residence permit" || v.ValidThrough != "2026-01-23" || v.IssuedOn != "2025-01-24" ||
			v.Items[2].Label.EN != "Address of residence" || !strings.HasPrefix(v.VerifyURL, "https://zwfw.shanxi.gov.cn/license/verify?id=") ||
			v.HolderID != zhangID || v.FileName != "JZZ-00000001-001.dgovlic" {
			t.Fatalf("View = %+v, %v", v, err)
		}
	}, sources...)
}

func TestLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		food, err := f.svc.Issue(f.ctx, f.scjg, license.IssueInput{TypeCode: "SPJYXKZ", IssuerDeptID: "ty-scjg",
			Holder: license.Holder{Name: "太原市小店区味美餐饮有限公司", IDType: license.IDCreditCode, IDNumber: shopCC},
			Items: map[string]string{"permit_no": "JY21401050012345", "legal_rep": "张伟", "address": "坞城路92号", "premises": "坞城路92号",
				"main_form": "餐饮服务经营者", "scope": "热食类食品制售"}})
		if err != nil {
			t.Fatal(err)
		}
		v1 := food.Content.ID

		// Change (变更): a new version with the new data; the old one is superseded.
		if _, err := f.svc.Change(f.ctx, f.scjg, v1, license.ChangeInput{Items: map[string]string{"scope": "x"}}); !errors.Is(err, license.ErrReasonRequired) {
			t.Fatalf("change without reason: %v", err)
		}
		if _, err := f.svc.Change(f.ctx, f.ga, v1, license.ChangeInput{Reason: "r"}); !errors.Is(err, i18n.ErrForbidden) {
			t.Fatalf("change by another department: %v", err)
		}
		f.clock.advance(24 * time.Hour)
		changed, err := f.svc.Change(f.ctx, f.scjg, v1, license.ChangeInput{Items: map[string]string{"scope": "热食类食品制售；冷食类食品制售", "supervisor": "小店区市场监督管理局"},
			HolderName: "太原市小店区味美餐饮管理有限公司", Reason: "经营项目变更"})
		if err != nil {
			t.Fatal(err)
		}
		v2 := changed.Content.ID
		if changed.Content.Version != 2 || changed.Content.PreviousID != v1 || !strings.Contains(v2, ".00000001.002.") ||
			changed.Content.Holder.Name != "太原市小店区味美餐饮管理有限公司" || !changed.Content.ValidUntil.Equal(*food.Content.ValidUntil) {
			t.Fatalf("changed %+v", changed.Content)
		}
		if got := changed.Content.Items; len(got) != 7 || got[5].Value != "热食类食品制售；冷食类食品制售" || got[6].Value != "小店区市场监督管理局" {
			t.Fatalf("changed items %+v", got)
		}
		old, err := f.svc.Get(f.ctx, f.shop, v1)
		if err != nil || old.Status != license.StatusSuperseded || old.SupersededBy != v2 {
			t.Fatalf("old version %s: %+v, %v", v1, old.Status, err)
		}
		if _, err := f.svc.Renew(f.ctx, f.scjg, v1, license.RenewInput{}); !errors.Is(err, license.ErrState) {
			t.Fatalf("renewing a superseded version: %v", err)
		}

		// Expiry is computed: five years later (through 23 January 2030) it has expired.
		f.clock.set(time.Date(2030, 1, 24, 0, 0, 0, 0, time.FixedZone("CST", 8*3600)))
		exp, err := f.svc.Get(f.ctx, f.shop, v2)
		if err != nil || exp.Status != license.StatusExpired {
			t.Fatalf("after five years: %v, %v", exp.Status, err)
		}
		if res, err := f.svc.VerifyOnline(f.ctx, v2, ""); err != nil || res.Valid || res.Code != license.CodeExpired {
			t.Fatalf("verify expired: %+v, %v", res, err)
		}
		// Renewal (延续) of an expired licence: version 3, five more years.
		renewed, err := f.svc.Renew(f.ctx, f.scjg, v2, license.RenewInput{Reason: "延续"})
		if err != nil {
			t.Fatal(err)
		}
		v3 := renewed.Content.ID
		if renewed.Content.Version != 3 || renewed.Content.PreviousID != v2 ||
			!renewed.Content.ValidUntil.Equal(time.Date(2035, 1, 23, 16, 0, 0, 0, time.UTC)) {
			t.Fatalf("renewed %+v until %v", renewed.Content.ID, renewed.Content.ValidUntil)
		}

		// Revocation needs a reason and the department's officer; verification then fails with it.
		if _, err := f.svc.Revoke(f.ctx, f.scjg, v3, " "); !errors.Is(err, license.ErrReasonRequired) {
			t.Fatalf("revoke without reason: %v", err)
		}
		if _, err := f.svc.Revoke(f.ctx, f.dtScjg, v3, "r"); !errors.Is(err, i18n.ErrForbidden) {
			t.Fatalf("revoke by another city: %v", err)
		}
		rev, err := f.svc.Revoke(f.ctx, f.scjg, v3, "食品安全抽检不合格，依法吊销")
		if err != nil || rev.Status != license.StatusRevoked || rev.StatusReason != "食品安全抽检不合格，依法吊销" {
			t.Fatalf("revoke: %+v, %v", rev.Status, err)
		}
		if _, err := f.svc.Revoke(f.ctx, f.scjg, v3, "again"); !errors.Is(err, license.ErrState) {
			t.Fatalf("revoke twice: %v", err)
		}
		if _, err := f.svc.Renew(f.ctx, f.scjg, v3, license.RenewInput{}); !errors.Is(err, license.ErrState) {
			t.Fatalf("renew revoked: %v", err)
		}
		res, err := f.svc.VerifyOnline(f.ctx, v3, renewed.ShortDigest())
		if err != nil || res.Valid || res.Code != license.CodeRevoked || res.Reason != "食品安全抽检不合格，依法吊销" || !res.SignatureValid {
			t.Fatalf("verify revoked: %+v, %v", res, err)
		}
		if res, _ := f.svc.VerifyOnline(f.ctx, v1, ""); res.Code != license.CodeSuperseded || res.SupersededBy != v2 {
			t.Fatalf("verify superseded: %+v", res)
		}

		// The history covers every version, oldest first.
		hist, err := f.svc.History(f.ctx, f.shop, v1)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range hist {
			got = append(got, e.Action+"@"+string(rune('0'+e.Version)))
		}
		want := []string{"issued@1", "superseded@1", "changed@2", "superseded@2", "renewed@3", "revoked@3"}
		if !slices.Equal(got, want) {
			t.Fatalf("history = %v, want %v", got, want)
		}
		if hist[5].Reason != "食品安全抽检不合格，依法吊销" || hist[1].RelatedID != v2 || hist[2].RelatedID != v1 {
			t.Fatalf("history details %+v", hist)
		}
		if a := f.auditActions(t, "license:"+v3); !slices.Equal(a, []string{"license.renew by staff:scjg-officer", "license.revoke by staff:scjg-officer"}) {
			t.Fatalf("audit = %v", a)
		}
	}, sources...)
}

func TestVerifyOnline(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		rp := f.residencePermit(t)
		id := rp.Content.ID
		res, err := f.svc.VerifyOnline(f.ctx, id, rp.ShortDigest())
		if err != nil || !res.Valid || res.Code != license.CodeOK || res.Status != license.StatusValid || !res.SignatureValid {
			t.Fatalf("verify: %+v, %v", res, err)
		}
		// A verifier sees the holder masked and no data items.
		if lv := res.License; lv.HolderName != "张*" || lv.HolderID != ids.MaskResident(zhangID) || lv.IssuerName != "太原市公安局" ||
			res.SignedBy.DeptName != "太原市公安局" || res.SignedBy.Node != "sx" {
			t.Fatalf("public view %+v %+v", lv, res.SignedBy)
		}
		if b := mustJSON(t, res); bytes.Contains(b, []byte(zhangID)) || bytes.Contains(b, []byte("亲贤北街")) {
			t.Fatalf("verification leaks personal data: %s", b)
		}
		// Without the QR code's digest (an identifier guessed or typed) only the status is told.
		if res, err := f.svc.VerifyOnline(f.ctx, id, ""); err != nil || !res.Valid || res.License != nil {
			t.Fatalf("verify without digest: %+v, %v", res, err)
		}
		for _, tt := range []struct {
			id, digest, want string
		}{
			{id, "", license.CodeOK},
			{id, strings.ToUpper(rp.ShortDigest()), license.CodeOK},
			{id, rp.Digest, license.CodeOK},
			{id, "0000000000000000", license.CodeDigestMismatch},
			{"1.2.156.3005.2.JZZ", "", license.CodeMalformed},
		} {
			res, err := f.svc.VerifyOnline(f.ctx, tt.id, tt.digest)
			if err != nil {
				t.Fatal(err)
			}
			if res.Code != tt.want {
				t.Errorf("VerifyOnline(%s, %s) = %s, want %s", tt.id, tt.digest, res.Code, tt.want)
			}
		}
		// A licence that exists on another serial but not here.
		other, _ := license.MakeIdentifier(license.Identifier{TypeCode: "JZZ", CreditCode: tyGa, Serial: "00000099", Version: 1})
		if res, _ := f.svc.VerifyOnline(f.ctx, other, ""); res.Code != license.CodeNotFound {
			t.Fatalf("unknown licence: %+v", res)
		}
		// Not yet in force.
		future, err := f.svc.Issue(f.ctx, f.ga, license.IssueInput{TypeCode: "JZZ", IssuerDeptID: "ty-ga",
			Holder: license.Holder{Name: "李娜", IDType: license.IDResident, IDNumber: liID}, ValidFrom: ptr(t0.AddDate(0, 1, 0)),
			Items: map[string]string{"sex": "女", "birth_date": "1992-11-03", "address": "太原市迎泽大街1号"}})
		if err != nil {
			t.Fatal(err)
		}
		if res, _ := f.svc.VerifyOnline(f.ctx, future.Content.ID, ""); res.Code != license.CodeNotYetValid {
			t.Fatalf("future licence: %+v", res)
		}

		// Someone who edits the stored signature makes verification fail, not pass.
		sig := bytes.Clone(rp.Signature.Value)
		sig[len(sig)-3] ^= 1
		if _, err := d.Exec(f.ctx, `UPDATE licenses SET signature = ? WHERE id = ?`, sig, id); err != nil {
			t.Fatal(err)
		}
		if res, err := f.svc.VerifyOnline(f.ctx, id, ""); err != nil || res.Valid || res.Code != license.CodeBadSignature {
			t.Fatalf("edited signature: %+v, %v", res, err)
		}
		// Editing the sealed content is caught on opening.
		if _, err := d.Exec(f.ctx, `UPDATE licenses SET content_enc = (SELECT content_enc FROM licenses WHERE id = ?) WHERE id = ?`, future.Content.ID, id); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.VerifyOnline(f.ctx, id, ""); !errors.Is(err, license.ErrCorrupt) {
			t.Fatalf("moved content: %v", err)
		}
	}, sources...)
}

// TestSealChecks: what the seal service returns is checked before anything is stored, and
// key retirement in the trust list stops a key without breaking what it signed.
func TestSealChecks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.seals.forge = true
		rp := license.IssueInput{TypeCode: "JZZ", IssuerDeptID: "ty-ga", Holder: license.Holder{Name: "张伟", IDType: license.IDResident, IDNumber: zhangID},
			Items: map[string]string{"sex": "男", "birth_date": "1985-06-15", "address": "太原"}}
		if _, err := f.svc.Issue(f.ctx, f.ga, rp); !errors.Is(err, license.ErrSignature) {
			t.Fatalf("forged seal signature: %v", err)
		}
		first, err := f.svc.Issue(f.ctx, f.ga, rp)
		if err != nil {
			t.Fatal(err)
		}
		// The seal service presenting another department's key id is refused.
		f.seals.mu.Lock()
		f.seals.keys["ty-scjg"] = f.seals.keys["ty-ga"]
		f.seals.mu.Unlock()
		if _, err := f.svc.Issue(f.ctx, f.scjg, license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: "ty-scjg",
			Holder: license.Holder{Name: "某公司", IDType: license.IDCreditCode, IDNumber: shopCC},
			Items:  map[string]string{"entity_type": "有限责任公司", "legal_rep": "张伟", "established_on": "2020-05-08", "address": "太原", "scope": "餐饮"}}); !errors.Is(err, license.ErrKeyMismatch) {
			t.Fatalf("another department's key: %v", err)
		}

		f.clock.advance(time.Hour)
		if _, err := f.svc.RetireIssuerKey(f.ctx, f.ga, "seal-ty-ga-1", f.clock.now()); !errors.Is(err, i18n.ErrForbidden) {
			t.Fatalf("officer retiring a key: %v", err)
		}
		k, err := f.svc.RetireIssuerKey(f.ctx, f.admin, "seal-ty-ga-1", f.clock.now())
		if err != nil || k.ValidUntil == nil {
			t.Fatalf("retire: %+v, %v", k, err)
		}
		if _, err := f.svc.Issue(f.ctx, f.ga, rp); !errors.Is(err, license.ErrKeyMismatch) {
			t.Fatalf("signing with a retired key: %v", err)
		}
		f.seals.rotate(t, "ty-ga")
		second, err := f.svc.Issue(f.ctx, f.ga, rp)
		if err != nil || second.Signature.KeyID != "seal-ty-ga-2" {
			t.Fatalf("after rotation: %v, %v", second.Signature.KeyID, err)
		}
		for _, l := range []license.License{first, second} {
			if res, err := f.svc.VerifyOnline(f.ctx, l.Content.ID, ""); err != nil || !res.Valid {
				t.Fatalf("%s after rotation: %+v, %v", l.Signature.KeyID, res, err)
			}
			file, err := f.svc.DownloadFile(f.ctx, f.zhang, l.Content.ID)
			if err != nil {
				t.Fatal(err)
			}
			if res, err := f.svc.VerifyFile(f.ctx, file.Encode()); err != nil || !res.Valid {
				t.Fatalf("%s offline after rotation: %+v, %v", l.Signature.KeyID, res, err)
			}
		}
		keys, err := f.svc.IssuerKeys(f.ctx)
		if err != nil || len(keys) != 2 || keys[0].ValidUntil == nil || keys[1].ValidUntil != nil {
			t.Fatalf("issuer keys %+v, %v", keys, err)
		}
	}, sources...)
}

// TestConcurrency: serials stay unique under concurrent issuance, and of two concurrent
// renewals of one licence exactly one succeeds.
func TestConcurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const n = 6
		ids := make(chan string, n)
		errs := make(chan error, 2*n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				l, err := f.svc.Issue(f.ctx, f.ga, license.IssueInput{TypeCode: "JZZ", IssuerDeptID: "ty-ga",
					Holder: license.Holder{Name: "张伟", IDType: license.IDResident, IDNumber: zhangID},
					Items:  map[string]string{"sex": "男", "birth_date": "1985-06-15", "address": "太原"}})
				if err != nil {
					errs <- err
					return
				}
				ids <- l.Content.ID
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != n {
			t.Fatalf("%d distinct licences of %d (errors: %d)", len(seen), n, len(errs))
		}
		var first string
		for id := range seen {
			first = id
			break
		}
		var ok, failed atomic.Int32
		for range 2 {
			wg.Go(func() {
				_, err := f.svc.Renew(f.ctx, f.ga, first, license.RenewInput{})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, license.ErrState) || errors.Is(err, i18n.ErrConflict):
					failed.Add(1)
				default:
					errs <- err
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || failed.Load() != 1 || len(errs) != 0 {
			t.Fatalf("renewals: %d ok, %d refused, %d errors", ok.Load(), failed.Load(), len(errs))
		}
		issuers, err := f.svc.Issuers(f.ctx, "140100")
		if err != nil || len(issuers) != 2 || issuers[0].Name != "太原市公安局" {
			t.Fatalf("Issuers = %+v, %v", issuers, err)
		}
		if all, _ := f.svc.Issuers(f.ctx, ""); len(all) != 3 {
			t.Fatalf("all issuers: %+v", all)
		}
	}, sources...)
}

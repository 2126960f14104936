package license_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// TestUseInsteadOfPaper: the holder authorises a department; its officer reads the verified
// licence (recorded, audited, shown to the holder); nobody else can; the holder can end it.
func TestUseInsteadOfPaper(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		rp := f.residencePermit(t)
		id := rp.Content.ID
		week := f.clock.now().Add(7 * 24 * time.Hour)

		// Reading without an authorisation is refused.
		if _, err := f.svc.Use(f.ctx, f.rs, id, "case-9"); !errors.Is(err, license.ErrNoGrant) {
			t.Fatalf("use without grant: %v", err)
		}
		if e, _ := i18n.As(license.ErrNoGrant); e.HTTPStatus() != 403 {
			t.Fatal("ErrNoGrant is not a 403")
		}
		if _, err := f.svc.Get(f.ctx, f.rs, id); !errors.Is(err, license.ErrNoGrant) {
			t.Fatalf("get without grant: %v", err)
		}

		ok := license.GrantInput{LicenseID: id, DeptID: "ty-rs", Purpose: "申领社会保障卡，核验居住信息", Ref: "case-9", ValidUntil: week}
		for _, tt := range []struct {
			name  string
			actor authz.Subject
			edit  func(*license.GrantInput)
			want  string
		}{
			{"another citizen", f.li, nil, "forbidden"},
			{"an officer", f.rs, nil, "forbidden"},
			{"anonymous", authz.Subject{}, nil, "unauthorized"},
			{"no purpose", f.zhang, func(in *license.GrantInput) { in.Purpose = "" }, "license.grant.purpose"},
			{"in the past", f.zhang, func(in *license.GrantInput) { in.ValidUntil = t0.Add(-time.Minute) }, "license.grant.until"},
			{"too long", f.zhang, func(in *license.GrantInput) { in.ValidUntil = t0.AddDate(2, 0, 0) }, "license.grant.until"},
			{"an unknown department", f.zhang, func(in *license.GrantInput) { in.DeptID = "nowhere" }, "not_found"},
			{"a bad identifier", f.zhang, func(in *license.GrantInput) { in.LicenseID = "1.2.3" }, "license.identifier"},
		} {
			in := ok
			if tt.edit != nil {
				tt.edit(&in)
			}
			_, err := f.svc.GrantUse(f.ctx, tt.actor, in)
			if e, isI18n := i18n.As(err); !isI18n || e.Code != tt.want {
				t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
			}
		}
		g, err := f.svc.GrantUse(f.ctx, f.zhang, ok)
		if err != nil || g.DeptName != "太原市人力资源和社会保障局" || g.TypeName != "居住证" {
			t.Fatalf("grant: %+v, %v", g, err)
		}
		open, err := f.svc.GrantUse(f.ctx, f.zhang, license.GrantInput{LicenseID: id, DeptID: "dt-rs", Purpose: "异地就业登记", ValidUntil: week})
		if err != nil {
			t.Fatal(err)
		}

		// The officer of the department sees it in its list and reads it for the application.
		listed, err := f.svc.GrantsToDept(f.ctx, f.rs, "case-9")
		if err != nil || len(listed) != 1 || listed[0].ID != g.ID || listed[0].HolderName != "张伟" {
			t.Fatalf("GrantsToDept = %+v, %v", listed, err)
		}
		if _, err := f.svc.Use(f.ctx, f.rs, id, "case-other"); !errors.Is(err, license.ErrNoGrant) {
			t.Fatalf("use for another application: %v", err)
		}
		f.clock.advance(time.Hour)
		l, err := f.svc.Use(f.ctx, f.rs, id, "case-9")
		if err != nil || l.Content.Holder.IDNumber != zhangID || l.Status != license.StatusValid || l.Content.Items[2].Value == "" {
			t.Fatalf("use: %+v, %v", l.Content.ID, err)
		}
		// A grant without a named application serves any of that department's applications.
		if _, err := f.svc.Use(f.ctx, f.rsOut, id, "dt-case-1"); err != nil {
			t.Fatalf("use under an open grant: %v", err)
		}
		for _, tt := range []struct {
			name  string
			actor authz.Subject
			want  error
		}{
			{"an officer of another department", f.scjg, license.ErrNoGrant},
			{"an officer of the department in another division", staff("x", "140200", "ty-rs", authz.RoleOfficer), license.ErrNoGrant},
			{"an auditor of the department", staff("x", "140100", "ty-rs", authz.RoleAuditor), i18n.ErrForbidden},
			{"the holder", f.zhang, i18n.ErrForbidden},
			{"anonymous", authz.Subject{}, i18n.ErrUnauthorized},
		} {
			if _, err := f.svc.Use(f.ctx, tt.actor, id, "case-9"); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		}

		// The holder sees every use and can end an authorisation.
		uses, err := f.svc.Uses(f.ctx, f.zhang)
		if err != nil || len(uses) != 2 {
			t.Fatalf("uses = %+v, %v", uses, err)
		}
		if u := uses[1]; u.DeptName != "太原市人力资源和社会保障局" || u.Officer != "staff:rs-officer" || u.Ref != "case-9" ||
			u.Purpose != "申领社会保障卡，核验居住信息" || u.TypeName != "居住证" || !u.At.Equal(db.Now(f.clock.now())) {
			t.Fatalf("use %+v", u)
		}
		if other, err := f.svc.Uses(f.ctx, f.li); err != nil || len(other) != 0 {
			t.Fatalf("another citizen's uses: %+v, %v", other, err)
		}
		grants, err := f.svc.UseGrants(f.ctx, f.zhang, id)
		if err != nil || len(grants) != 2 || grants[1].Uses != 1 {
			t.Fatalf("grants = %+v, %v", grants, err)
		}
		if _, err := f.svc.RevokeUse(f.ctx, f.li, g.ID); !errors.Is(err, i18n.ErrNotFound) {
			t.Fatalf("another citizen revoking: %v", err)
		}
		if _, err := f.svc.RevokeUse(f.ctx, f.zhang, g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RevokeUse(f.ctx, f.zhang, g.ID); !errors.Is(err, license.ErrState) {
			t.Fatalf("revoking twice: %v", err)
		}
		if _, err := f.svc.Use(f.ctx, f.rs, id, "case-9"); !errors.Is(err, license.ErrNoGrant) {
			t.Fatalf("use after the holder revoked: %v", err)
		}
		// An authorisation ends at its time.
		f.clock.set(week)
		if _, err := f.svc.Use(f.ctx, f.rsOut, id, ""); !errors.Is(err, license.ErrNoGrant) {
			t.Fatalf("use of an expired grant (%s): %v", open.ID, err)
		}

		// A licence revoked after the authorisation cannot be used under it.
		f.clock.set(t0.Add(2 * time.Hour))
		g2, err := f.svc.GrantUse(f.ctx, f.zhang, license.GrantInput{LicenseID: id, DeptID: "ty-rs", Purpose: "再次办理", ValidUntil: week})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Revoke(f.ctx, f.ga, id, "持证人已迁出"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Use(f.ctx, f.rs, id, ""); !errors.Is(err, license.ErrNotUsable) {
			t.Fatalf("use of a revoked licence under %s: %v", g2.ID, err)
		}
		if _, err := f.svc.GrantUse(f.ctx, f.zhang, ok); !errors.Is(err, license.ErrNotUsable) {
			t.Fatalf("granting a revoked licence: %v", err)
		}

		// Every use is audited, as is every grant and its end.
		if a := f.auditActions(t, "license:"+id); !slices.Equal(a, []string{"license.issue by staff:ga-officer",
			"license.use by staff:rs-officer", "license.use by staff:rs-dt-officer", "license.revoke by staff:ga-officer"}) {
			t.Fatalf("audit of the licence = %v", a)
		}
		if a := f.auditActions(t, "license_grant:"+g.ID); !slices.Equal(a, []string{"license.use_grant by citizen:c-zhang",
			"license.use_grant.revoke by citizen:c-zhang"}) {
			t.Fatalf("audit of the grant = %v", a)
		}
	}, sources...)
}

package license_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// TestUseOncePerApplication: a department reading a licence again for the same application
// (a case page viewed again, by the same officer or another) still gets the verified licence
// but records, audits and announces one use; another application is another use, and so is
// each read naming none; first reads racing each other record one.
func TestUseOncePerApplication(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		id := f.residencePermit(t).Content.ID
		week := f.clock.now().Add(7 * 24 * time.Hour)
		if _, err := f.svc.GrantUse(f.ctx, f.zhang, license.GrantInput{LicenseID: id, DeptID: "ty-rs", Purpose: "核验居住信息", Ref: "case-9",
			ValidUntil: week}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GrantUse(f.ctx, f.zhang, license.GrantInput{LicenseID: id, DeptID: "dt-rs", Purpose: "异地就业登记",
			ValidUntil: week}); err != nil {
			t.Fatal(err)
		}
		firstView := f.clock.now().Add(time.Minute)
		colleague := staff("rs-officer-2", "140100", "ty-rs", authz.RoleOfficer)

		for i, tt := range []struct {
			name    string
			actor   authz.Subject
			ref     string
			newUses int
		}{
			{"first view", f.rs, "case-9", 1},
			{"the same officer again", f.rs, "case-9", 0},
			{"the ref spaced", f.rs, " case-9 ", 0},
			{"a colleague of the department", colleague, "case-9", 0},
			{"another department, one application", f.rsOut, "dt-case-1", 1},
			{"that application again", f.rsOut, "dt-case-1", 0},
			{"that department, another application", f.rsOut, "dt-case-2", 1},
			{"no application named", f.rsOut, "", 1},
			{"no application named again", f.rsOut, "", 1},
		} {
			before := f.usesOf(t, id)
			f.clock.advance(time.Minute)
			l, err := f.svc.Use(f.ctx, tt.actor, id, tt.ref)
			if err != nil || l.Status != license.StatusValid || l.Content.Holder.IDNumber != zhangID {
				t.Fatalf("%d %s: %+v, %v", i, tt.name, l.Content.ID, err)
			}
			if got := f.usesOf(t, id) - before; got != tt.newUses {
				t.Errorf("%d %s: %d new uses, want %d", i, tt.name, got, tt.newUses)
			}
		}

		uses, err := f.svc.Uses(f.ctx, f.zhang)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(uses, func(u license.Use) bool { return u.Ref == "case-9" })
		if u := uses[i]; u.Officer != "staff:rs-officer" || !u.At.Equal(db.Now(firstView)) {
			t.Fatalf("the use for case-9 is not the first view: %+v", u)
		}
		audited := 0
		for _, a := range f.auditActions(t, "license:"+id) {
			if a == "license.use by staff:rs-officer" || a == "license.use by staff:rs-officer-2" {
				audited++
			}
		}
		if audited != 1 {
			t.Errorf("case-9 audited %d times, want once", audited)
		}
		var announced int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM outbox WHERE subject = ?`, license.EventSubjectUsed).Scan(&announced); err != nil {
			t.Fatal(err)
		}
		if want := len(uses); announced != want {
			t.Errorf("%d use events for %d uses", announced, want)
		}

		// Officers opening the same new case at once: one use.
		const views = 32
		var wg sync.WaitGroup
		errs := make(chan error, views)
		before := f.usesOf(t, id)
		for range views {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.svc.Use(f.ctx, f.rsOut, id, "dt-case-3")
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent view: %v", err)
			}
		}
		if got := f.usesOf(t, id) - before; got != 1 {
			t.Fatalf("%d concurrent first views recorded %d uses, want 1", views, got)
		}
	}, sources...)
}

// usesOf counts the recorded uses of a licence.
func (f *fixture) usesOf(t testing.TB, id string) int {
	t.Helper()
	var n int
	if err := f.d.QueryRow(f.ctx, `SELECT COUNT(*) FROM license_uses WHERE license_id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

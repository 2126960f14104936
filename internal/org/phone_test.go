package org_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// rawPhone reads the stored phone columns of an account.
func (f *fixture) rawPhone(id string) (enc []byte, idx *string) {
	f.t.Helper()
	if err := f.d.QueryRow(f.ctx, `SELECT phone_enc, phone_idx FROM staff WHERE id = ?`, id).Scan(&enc, &idx); err != nil {
		f.t.Fatal(err)
	}
	return enc, idx
}

func TestStaffPhone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		_, taiyuan, xiaodian := f.seed()
		const num = "13912345678"

		// Any accepted form is stored as the normalised 11 digits, and returned in full to
		// the creator.
		st, err := f.svc.CreateStaff(f.ctx, taiyuan, org.StaffInput{Username: "sun.qi", Name: "孙七",
			DepartmentID: f.dept["140105/scjg"].ID, Roles: []authz.Role{authz.RoleOfficer}, Password: pw, Phone: "+86 139-1234-5678"})
		if err != nil || st.Phone != num {
			t.Fatalf("create: %q %v", st.Phone, err)
		}

		// At rest: ciphertext bound to the row, no digits in the clear, a keyed blind index.
		enc, idx := f.rawPhone(st.ID)
		if len(enc) == 0 || idx == nil {
			t.Fatalf("phone columns empty: %x %v", enc, idx)
		}
		// Long runs only: a hex index or random ciphertext holds a short digit run by chance
		// (a 3-digit run turns up in one hex index out of about 70).
		for _, digits := range []string{num, "12345678", "+86"} {
			if bytes.Contains(enc, []byte(digits)) || strings.Contains(*idx, digits) {
				t.Errorf("plaintext digits %q stored", digits)
			}
		}
		if *idx != f.fc.BlindIndex(org.IndexMobile, num) {
			t.Errorf("phone_idx %s is not the blind index of the number", *idx)
		}
		if got, err := f.fc.Open(enc, "org.staff:"+st.ID+":phone"); err != nil || got != num {
			t.Errorf("open with the row's aad: %q %v", got, err)
		}
		if _, err := f.fc.Open(enc, "org.staff:"+f.admin.ID+":phone"); !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("ciphertext opens under another row's aad: %v", err)
		}
		var found string
		if err := d.QueryRow(f.ctx, `SELECT id FROM staff WHERE phone_idx = ?`, f.fc.BlindIndex(org.IndexMobile, "139 1234 5678")).Scan(&found); err != nil || found != st.ID {
			t.Errorf("lookup by blind index: %q %v", found, err)
		}
		// The same number under a different row encrypts differently (random nonce, own aad).
		other := f.mustStaff(f.admin, "zhou.ba", "140105/scjg", authz.RoleOfficer) // 13812345678
		st2, err := f.svc.UpdateStaff(f.ctx, f.admin, other.ID, org.StaffPatch{Phone: ptr(num)})
		if err != nil || st2.Phone != num {
			t.Fatalf("update phone: %q %v", st2.Phone, err)
		}
		enc2, idx2 := f.rawPhone(other.ID)
		if bytes.Equal(enc, enc2) || idx2 == nil || *idx2 != *idx {
			t.Errorf("same number: ciphertexts equal %v, indexes %v / %v", bytes.Equal(enc, enc2), *idx, idx2)
		}

		// Reads: lists mask; GetStaff is in full for the holder and for editors only.
		list, err := f.svc.ListStaff(f.ctx, taiyuan, org.StaffFilter{Query: "sun.qi"})
		if err != nil || len(list) != 1 || list[0].Phone != "139****5678" {
			t.Errorf("list: %+v %v", list, err)
		}
		if _, err := f.svc.Authenticate(f.ctx, "sun.qi", pw, f.now); err != nil {
			t.Fatal(err)
		}
		sun := f.login("sun.qi")
		officer := f.login("zhou.ba")
		sys := f.mustStaff(f.admin, "sys.xd", "140105/scjg", authz.RoleSysAdmin)
		reads := []struct {
			name  string
			actor authz.Subject
			id    string
			want  string
		}{
			{"the holder", sun, st.ID, num},
			{"a city org admin (may edit)", taiyuan, st.ID, num},
			{"the district org admin (may edit)", xiaodian, st.ID, num},
			{"the sysadmin", f.admin, st.ID, num},
			{"an officer (may only read)", officer, st.ID, "139****5678"},
			{"an org admin reading a sysadmin it cannot manage", xiaodian, sys.ID, "138****5678"},
			{"the sysadmin reading another", f.admin, sys.ID, "13812345678"},
		}
		for _, c := range reads {
			got, err := f.svc.GetStaff(f.ctx, c.actor, c.id)
			if err != nil || got.Phone != c.want {
				t.Errorf("%s: phone %q %v, want %q", c.name, got.Phone, err, c.want)
			}
		}

		// Validation: a mainland mobile or nothing.
		for in, code := range map[string]string{
			"12345":           "ids.mobile.length",
			"+1 415 555 1234": "ids.mobile.country",
			"139.1234.5678":   "ids.mobile.format",
			"12912345678":     "ids.mobile.prefix",
		} {
			_, err := f.svc.CreateStaff(f.ctx, f.admin, org.StaffInput{Username: "bad.phone", Name: "错号",
				DepartmentID: f.dept["140105/scjg"].ID, Password: pw, Phone: in})
			if e, ok := i18n.As(err); !ok || e.Code != code || e.Field != "phone" || e.HTTPStatus() != 400 {
				t.Errorf("create with phone %q: %v, want %s on phone", in, err, code)
			}
			_, err = f.svc.UpdateStaff(f.ctx, f.admin, st.ID, org.StaffPatch{Phone: ptr(in)})
			if e, ok := i18n.As(err); !ok || e.Code != code || e.Field != "phone" {
				t.Errorf("update to phone %q: %v, want %s on phone", in, err, code)
			}
		}
		none, err := f.svc.CreateStaff(f.ctx, f.admin, org.StaffInput{Username: "no.phone", Name: "无号",
			DepartmentID: f.dept["140105/scjg"].ID, Password: pw, Phone: "  "})
		if err != nil || none.Phone != "" {
			t.Fatalf("no phone: %q %v", none.Phone, err)
		}
		if enc, idx := f.rawPhone(none.ID); enc != nil || idx != nil {
			t.Errorf("no phone stored as %x %v, want NULLs", enc, idx)
		}

		// Changing the number re-seals it; the audit log records only that it changed.
		f.clearAudit()
		up, err := f.svc.UpdateStaff(f.ctx, taiyuan, st.ID, org.StaffPatch{Phone: ptr("138-0000-1111")})
		if err != nil || up.Phone != "13800001111" {
			t.Fatalf("change phone: %q %v", up.Phone, err)
		}
		if _, idx3 := f.rawPhone(st.ID); idx3 == nil || *idx3 != f.fc.BlindIndex(org.IndexMobile, "13800001111") {
			t.Errorf("blind index not updated: %v", idx3)
		}
		var detail string
		if err := d.QueryRow(f.ctx, `SELECT detail FROM test_audit WHERE action = ?`, org.ActionStaffUpdate).Scan(&detail); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(detail, "1111") || !strings.Contains(detail, `"phone":"changed"`) {
			t.Errorf("audit detail %s", detail)
		}
		// Same number in another form: no change, no entry.
		f.clearAudit()
		if _, err := f.svc.UpdateStaff(f.ctx, taiyuan, st.ID, org.StaffPatch{Phone: ptr("+86 13800001111")}); err != nil {
			t.Fatal(err)
		}
		if got := f.actions(); len(got) != 0 {
			t.Errorf("unchanged phone audited: %v", got)
		}
		// Removing it clears both columns.
		if up, err := f.svc.UpdateStaff(f.ctx, taiyuan, st.ID, org.StaffPatch{Phone: ptr("")}); err != nil || up.Phone != "" {
			t.Fatalf("remove phone: %q %v", up.Phone, err)
		}
		if enc, idx := f.rawPhone(st.ID); enc != nil || idx != nil {
			t.Errorf("removed phone stored as %x %v", enc, idx)
		}

		// A ciphertext copied into another row does not open there.
		if _, err := d.Exec(f.ctx, `UPDATE staff SET phone_enc = ?, phone_idx = ? WHERE id = ?`, enc2, *idx2, st.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GetStaff(f.ctx, f.admin, st.ID); !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("moved ciphertext: %v", err)
		}
	}, crypto.Migrations, org.Migrations, dbtest.AuditTable)
}

// Without a field cipher no phone number can be written or read; everything else works.
func TestNoFieldCipher(t *testing.T) {
	d := dbtest.SQLite(t, crypto.Migrations, org.Migrations, dbtest.AuditTable)
	f := newFixture(t, d)
	f.seed()
	withPhone := f.mustStaff(f.admin, "has.phone", "140105/scjg", authz.RoleOfficer)
	bare := org.New(d, authz.NewPolicy(divisions.Contains), org.Options{Argon: cheap, Now: func() time.Time { return f.now }})
	in := org.StaffInput{Username: "wu.jiu", Name: "吴九", DepartmentID: f.dept["140105/scjg"].ID, Password: pw, Phone: "13912345678"}
	if _, err := bare.CreateStaff(f.ctx, f.admin, in); !errors.Is(err, org.ErrNoFieldCipher) {
		t.Errorf("create with a phone: %v", err)
	}
	in.Phone = ""
	st, err := bare.CreateStaff(f.ctx, f.admin, in)
	if err != nil {
		t.Fatalf("create without a phone: %v", err)
	}
	if _, err := bare.UpdateStaff(f.ctx, f.admin, st.ID, org.StaffPatch{Phone: ptr("13912345678")}); !errors.Is(err, org.ErrNoFieldCipher) {
		t.Errorf("update to a phone: %v", err)
	}
	if _, err := bare.UpdateStaff(f.ctx, f.admin, st.ID, org.StaffPatch{Name: ptr("吴久")}); err != nil {
		t.Errorf("update without a phone: %v", err)
	}
	if _, err := bare.GetStaff(f.ctx, f.admin, withPhone.ID); !errors.Is(err, org.ErrNoFieldCipher) {
		t.Errorf("read a sealed phone: %v", err)
	}
	if _, err := bare.Authenticate(f.ctx, "has.phone", pw, f.now); err != nil {
		t.Errorf("login needs no cipher: %v", err)
	}
}

// A password chosen by an administrator (initial or reset) must be changed: the subject says
// so until the holder changes it.
func TestPasswordChangeRequired(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.seed()
		if f.admin.PasswordChangeRequired {
			t.Error("the bootstrap administrator chose its own password")
		}
		st := f.mustStaff(f.admin, "zheng.shi", "140105/scjg", authz.RoleOfficer)
		check := func(what string, want bool) authz.Subject {
			t.Helper()
			sub, err := f.svc.Subject(f.ctx, st.ID)
			if err != nil || sub.PasswordChangeRequired != want {
				t.Errorf("%s: Subject: %v %v, want %v", what, sub.PasswordChangeRequired, err, want)
			}
			got, _ := f.svc.GetStaff(f.ctx, f.admin, st.ID)
			if got.MustChangePassword != want {
				t.Errorf("%s: MustChangePassword %v, want %v", what, got.MustChangePassword, want)
			}
			return sub
		}
		if me := f.login("zheng.shi"); !me.PasswordChangeRequired {
			t.Error("login with the initial password: change not required")
		}
		me := check("initial password", true)
		if err := f.svc.ChangePassword(f.ctx, me, pw, "Own-Choice-55"); err != nil {
			t.Fatal(err)
		}
		check("after change", false)
		if sub, err := f.svc.Authenticate(f.ctx, "zheng.shi", "Own-Choice-55", f.now); err != nil || sub.PasswordChangeRequired {
			t.Errorf("login after change: %+v %v", sub, err)
		}
		if err := f.svc.ResetPassword(f.ctx, f.admin, st.ID, "Reset-By-Admin7"); err != nil {
			t.Fatal(err)
		}
		check("after reset", true)
		sub, err := f.svc.Authenticate(f.ctx, "zheng.shi", "Reset-By-Admin7", f.now)
		if err != nil || !sub.PasswordChangeRequired {
			t.Errorf("login after reset: %+v %v", sub, err)
		}
		if err := f.svc.ChangePassword(f.ctx, sub, "Reset-By-Admin7", "Own-Choice-66"); err != nil {
			t.Fatal(err)
		}
		check("after second change", false)
	}, crypto.Migrations, org.Migrations, dbtest.AuditTable)
}

func TestJSON(t *testing.T) {
	keys := func(v any) []string {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	now := time.Now()
	for _, c := range []struct {
		v    any
		want []string
	}{
		{org.Department{}, []string{"active", "code", "created_at", "division_code", "division_name", "id", "kind", "name",
			"parent_id", "short_name", "updated_at"}},
		{org.Staff{LockedUntil: &now, LastLoginAt: &now}, []string{"active", "created_at", "department_id", "department_name",
			"division_code", "failed_logins", "id", "last_login_at", "locked_until", "must_change_password", "name", "phone",
			"roles", "updated_at", "username"}},
		{org.Counts{}, []string{"departments", "divisions"}},
		{divisions.Division{}, []string{"code", "level", "name", "parent"}},
	} {
		if got := keys(c.v); !slices.Equal(got, c.want) {
			t.Errorf("%T: keys %v, want %v", c.v, got, c.want)
		}
	}
	xd, _ := divisions.Lookup("140105")
	if b, _ := json.Marshal(xd); string(b) != `{"code":"140105","name":"小店区","parent":"140100","level":3}` {
		t.Errorf("division JSON %s", b)
	}
	if b, _ := json.Marshal(org.Staff{Phone: ids.MaskMobile("13812345678")}); !strings.Contains(string(b), `"phone":"138****5678"`) {
		t.Errorf("staff JSON %s", b)
	}
}

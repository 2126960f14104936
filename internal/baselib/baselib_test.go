package baselib_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

var t0 = time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)

func date(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// Residents of the tests; numbers built with ids.MakeResident so they are valid.
var (
	zhang = ids.MakeResident("140105", date(1985, 6, 15), 123, true)  // 小店区, male
	li    = ids.MakeResident("140106", date(1992, 11, 3), 46, false)  // 迎泽区, female
	wang  = ids.MakeResident("140202", date(1960, 1, 30), 311, true)  // 大同 (old code), male
	zhao  = ids.MakeResident("140802", date(2001, 2, 28), 998, false) // 运城盐湖区, female
)

type fixture struct {
	ctx context.Context
	d   *db.DB
	fc  *crypto.FieldCipher
	svc *baselib.Service
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	master := bytes.Repeat([]byte{7}, crypto.MasterKeySize)
	k, err := crypto.Open(ctx, d, master, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	fc := k.FieldCipher()
	return &fixture{ctx: ctx, d: d, fc: fc, svc: baselib.New(d, fc, baselib.Options{Now: func() time.Time { return t0 }})}
}

// wantErr checks err is the i18n error base (by code), and that its Chinese message contains zh.
func wantErr(t *testing.T, what string, err error, base *i18n.Error, zh, field string) {
	t.Helper()
	if !errors.Is(err, base) {
		t.Fatalf("%s: got %v, want %s", what, err, base.Code)
	}
	e, _ := i18n.As(err)
	if !strings.Contains(e.Msg.ZH, zh) {
		t.Errorf("%s: zh message %q lacks %q", what, e.Msg.ZH, zh)
	}
	if e.Msg.EN == "" {
		t.Errorf("%s: no English message", what)
	}
	if field != "" && e.Field != field {
		t.Errorf("%s: field %q, want %q", what, e.Field, field)
	}
}

func people() []baselib.PersonInput {
	return []baselib.PersonInput{
		{Name: "张伟", IDNumber: zhang, DivisionCode: "140105", Address: "山西省太原市小店区坞城路92号", Mobile: "+86 138-1234-5678"},
		{Name: " 李娜 ", IDNumber: strings.ToLower(li), DivisionCode: "140106", Mobile: "13912345678"},
		{Name: "王建国", IDNumber: wang, DivisionCode: "140213", Address: "山西省大同市平城区御河西路1号"},
		{Name: "阿依古丽•买买提", IDNumber: zhao, DivisionCode: "140802"},
	}
}

func TestPersons(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		got, err := f.svc.AddPersons(f.ctx, people())
		if err != nil || len(got) != 4 {
			t.Fatalf("add: %v %v", got, err)
		}

		p, err := f.svc.FindPersonByIDNumber(f.ctx, " "+zhang+" ")
		if err != nil {
			t.Fatal(err)
		}
		want := baselib.Person{ID: got[0], Name: "张伟", IDNumber: zhang, Sex: ids.Male, BirthDate: "1985-06-15",
			DivisionCode: "140105", DivisionName: "太原市小店区", Address: "山西省太原市小店区坞城路92号", Mobile: "13812345678",
			CreatedAt: t0, UpdatedAt: t0}
		if p.CreatedAt.Equal(t0) {
			p.CreatedAt, p.UpdatedAt = t0, t0
		}
		if p != want {
			t.Errorf("find:\n got %+v\nwant %+v", p, want)
		}
		// The ID number's x is stored upper-case, names trimmed and their dots unified.
		if p, err := f.svc.FindPersonByIDNumber(f.ctx, li); err != nil || p.Name != "李娜" || p.Sex != ids.Female || p.Address != "" {
			t.Errorf("find li: %+v %v", p, err)
		}
		if p, err := f.svc.FindPersonByIDNumber(f.ctx, zhao); err != nil || p.Name != "阿依古丽·买买提" {
			t.Errorf("find zhao: %+v %v", p, err)
		}
		_, err = f.svc.FindPersonByIDNumber(f.ctx, ids.MakeResident("140105", date(1985, 6, 15), 125, true))
		wantErr(t, "find unknown", err, i18n.ErrNotFound, "未找到", "")
		_, err = f.svc.FindPersonByIDNumber(f.ctx, zhang[:17]+"0")
		if !errors.Is(err, ids.ErrResidentChecksum) && zhang[17] != '0' {
			t.Errorf("find malformed: %v", err)
		}

		// Lists: masked, scoped by division, paged.
		all, err := f.svc.ListPersons(f.ctx, baselib.PersonFilter{})
		if err != nil || len(all) != 4 {
			t.Fatalf("list: %v %v", all, err)
		}
		v := all[0] // ordered by division: 小店区 first
		if v.Name != "张*" || v.IDNumber != "140105********"+zhang[14:] || v.Mobile != "138****5678" ||
			v.Sex != ids.Male || v.DivisionName != "太原市小店区" {
			t.Errorf("masked view: %+v", v)
		}
		for _, v := range all {
			for _, n := range []string{zhang, li, wang, zhao} {
				if strings.Contains(v.IDNumber, n[6:14]) { // the birth date
					t.Errorf("view leaks the birth date of %s: %+v", n, v)
				}
			}
			if strings.Contains(v.Mobile, "1234") || strings.Contains(v.Name, "伟") || strings.Contains(v.Name, "娜") {
				t.Errorf("view leaks: %+v", v)
			}
		}
		if all[3].Name != ids.MaskName("阿依古丽·买买提") {
			t.Errorf("masked minority name: %q", all[3].Name)
		}
		if all[2].Mobile != "" {
			t.Errorf("no mobile shows as %q", all[2].Mobile)
		}
		for _, c := range []struct {
			div  string
			want int
		}{{"", 4}, {"140000", 4}, {"140100", 2}, {"140105", 1}, {"140200", 1}, {"140800", 1}, {"140900", 0}} {
			n, err := f.svc.CountPersons(f.ctx, baselib.PersonFilter{Division: c.div})
			l, err2 := f.svc.ListPersons(f.ctx, baselib.PersonFilter{Division: c.div})
			if err != nil || err2 != nil || n != c.want || len(l) != c.want {
				t.Errorf("division %q: count %d list %d (%v %v), want %d", c.div, n, len(l), err, err2, c.want)
			}
		}
		page2, err := f.svc.ListPersons(f.ctx, baselib.PersonFilter{Limit: 2, Offset: 2})
		if err != nil || len(page2) != 2 || page2[0].ID != all[2].ID {
			t.Errorf("page 2: %+v %v", page2, err)
		}
		_, err = f.svc.ListPersons(f.ctx, baselib.PersonFilter{Division: "110000"})
		wantErr(t, "list outside Shanxi", err, invalid("baselib.division.invalid"), "山西省", "division_code")

		// Real-name verification: yes or no.
		for _, c := range []struct {
			name, number string
			want         bool
		}{
			{"张伟", zhang, true},
			{" 张伟", zhang, true},
			{"李娜", strings.ToLower(li), true},
			{"阿依古丽・买买提", zhao, true}, // another middle dot
			{"张卫", zhang, false},
			{"李娜", zhang, false},
			{"张伟", ids.MakeResident("140105", date(1985, 6, 15), 125, true), false},
		} {
			ok, err := f.svc.VerifyPerson(f.ctx, c.name, c.number)
			if err != nil || ok != c.want {
				t.Errorf("verify %s %s: %v %v, want %v", c.name, c.number, ok, err, c.want)
			}
		}
		_, err = f.svc.VerifyPerson(f.ctx, "张伟", "14010519850615")
		wantErr(t, "verify malformed", err, ids.ErrResidentLength, "18位", "id_number")
		_, err = f.svc.VerifyPerson(f.ctx, "", zhang)
		wantErr(t, "verify without name", err, invalid("baselib.field.required"), "姓名", "name")
	}, crypto.Migrations, baselib.Migrations)
}

func invalid(code string) *i18n.Error { return &i18n.Error{Code: code} }

func TestAddPersonsRejects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if _, err := f.svc.AddPersons(f.ctx, people()[:1]); err != nil {
			t.Fatal(err)
		}
		fresh := ids.MakeResident("140107", date(1990, 1, 1), 10, true)
		bad := func(i int, p baselib.PersonInput) []baselib.PersonInput {
			in := []baselib.PersonInput{
				{Name: "甲", IDNumber: fresh, DivisionCode: "140107"},
				{Name: "乙", IDNumber: li, DivisionCode: "140106"},
				{Name: "丙", IDNumber: wang, DivisionCode: "140213"},
			}
			in[i] = p
			return in
		}
		badCheck := zhao[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", zhao[17])+1)%11])
		for _, c := range []struct {
			name  string
			in    []baselib.PersonInput
			base  *i18n.Error
			zh    string
			field string
		}{
			{"registered already", bad(1, people()[0]), baselib.ErrPersonExists, "第2条：该身份证号码已登记", "persons[1].id_number"},
			{"twice in the batch", bad(2, baselib.PersonInput{Name: "丁", IDNumber: fresh, DivisionCode: "140107"}),
				baselib.ErrPersonExists, "第3条：身份证号码与第1条重复", "persons[2].id_number"},
			{"bad check digit", bad(2, baselib.PersonInput{Name: "丁", IDNumber: badCheck, DivisionCode: "140802"}),
				ids.ErrResidentChecksum, "第3条：身份证号码校验位", "persons[2].id_number"},
			{"birth in the future", bad(0, baselib.PersonInput{Name: "丁", IDNumber: ids.MakeResident("140105", date(2026, 3, 2), 1, true), DivisionCode: "140105"}),
				ids.ErrResidentBirthFuture, "第1条：", "persons[0].id_number"},
			{"bad mobile", bad(1, baselib.PersonInput{Name: "乙", IDNumber: li, DivisionCode: "140106", Mobile: "1281234567"}),
				ids.ErrMobileLength, "第2条：手机号码", "persons[1].mobile"},
			{"no name", bad(0, baselib.PersonInput{IDNumber: fresh, DivisionCode: "140107"}),
				invalid("baselib.field.required"), "第1条：姓名不能为空", "persons[0].name"},
			{"division outside Shanxi", bad(0, baselib.PersonInput{Name: "甲", IDNumber: fresh, DivisionCode: "110105"}),
				invalid("baselib.division.invalid"), "第1条：行政区划代码", "persons[0].division_code"},
			{"division a city, not a county", bad(0, baselib.PersonInput{Name: "甲", IDNumber: fresh, DivisionCode: "140100"}),
				invalid("baselib.division.invalid"), "县级", "persons[0].division_code"},
			{"control character in the address", bad(0, baselib.PersonInput{Name: "甲", IDNumber: fresh, DivisionCode: "140107", Address: "a\x00b"}),
				invalid("baselib.field.control"), "住址", "persons[0].address"},
		} {
			_, err := f.svc.AddPersons(f.ctx, c.in)
			wantErr(t, c.name, err, c.base, c.zh, c.field)
			if c.base == baselib.ErrPersonExists {
				if e, _ := i18n.As(err); e.HTTPStatus() != http.StatusConflict {
					t.Errorf("%s: status %d", c.name, e.HTTPStatus())
				}
			}
		}
		// All or nothing: the good rows of the rejected batches were not added.
		if n, err := f.svc.CountPersons(f.ctx, baselib.PersonFilter{}); err != nil || n != 1 {
			t.Errorf("count after rejected batches: %d %v", n, err)
		}
		if _, err := f.svc.AddPersons(f.ctx, make([]baselib.PersonInput, baselib.MaxBatch+1)); !errors.Is(err, baselib.ErrBatchTooLarge) {
			t.Errorf("huge batch: %v", err)
		}
	}, crypto.Migrations, baselib.Migrations)
}

// TestPersonsAtRest looks at the table itself: no personal field in clear, and a ciphertext
// moved to another row does not open there.
func TestPersonsAtRest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		in := people()
		if _, err := f.svc.AddPersons(f.ctx, in); err != nil {
			t.Fatal(err)
		}
		rows, err := d.Query(f.ctx, `SELECT id, id_number_enc, id_number_idx, address_enc, mobile_enc, mobile_idx FROM persons`)
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{zhang, li, wang, zhao, "13812345678", "13912345678", "坞城路", "御河西路",
			zhang[6:14], zhang[:17], "12345678"} // birth date, body, most of the mobile (short runs turn up in hex by chance)
		type raw struct {
			id                   string
			idEnc, addr, mob     []byte
			idIdx, mobIdx        string
			mobIdxValid, hasAddr bool
		}
		var all []raw
		for rows.Next() {
			var r raw
			var mobIdx *string
			if err := rows.Scan(&r.id, &r.idEnc, &r.idIdx, &r.addr, &r.mob, &mobIdx); err != nil {
				t.Fatal(err)
			}
			if mobIdx != nil {
				r.mobIdx = *mobIdx
			}
			all = append(all, r)
		}
		rows.Close()
		if len(all) != 4 {
			t.Fatalf("%d rows", len(all))
		}
		for _, r := range all {
			for _, col := range [][]byte{r.idEnc, r.addr, r.mob, []byte(r.idIdx), []byte(r.mobIdx)} {
				for _, s := range secrets {
					if bytes.Contains(col, []byte(s)) {
						t.Errorf("row %s holds %q in clear", r.id, s)
					}
				}
			}
			if len(r.idIdx) != 64 {
				t.Errorf("index %q is not a hex SM3 digest", r.idIdx)
			}
		}
		// The blind index is the documented one, so other engines can look up by it.
		if want := f.fc.BlindIndex(baselib.IndexResidentID, zhang); all[0].idIdx != want && all[1].idIdx != want &&
			all[2].idIdx != want && all[3].idIdx != want {
			t.Errorf("no row has the resident_id index of %s", zhang)
		}

		// Swap two rows' sealed ID numbers: each is bound to its row, so neither opens.
		a, b := all[0], all[1]
		if _, err := d.Exec(f.ctx, `UPDATE persons SET id_number_enc = ? WHERE id = ?`, b.idEnc, a.id); err != nil {
			t.Fatal(err)
		}
		var number string
		for _, n := range []string{zhang, li, wang, zhao} {
			if f.fc.BlindIndex(baselib.IndexResidentID, n) == a.idIdx {
				number = n
			}
		}
		_, err = f.svc.FindPersonByIDNumber(f.ctx, number)
		if !errors.Is(err, baselib.ErrCorrupt) || !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("find moved ciphertext: %v", err)
		}
		if _, err := f.svc.ListPersons(f.ctx, baselib.PersonFilter{}); !errors.Is(err, baselib.ErrCorrupt) {
			t.Errorf("list with a moved ciphertext: %v", err)
		}
	}, crypto.Migrations, baselib.Migrations)
}

func companies() []baselib.EntityInput {
	llc, _ := ids.MakeCreditCode('9', '1', "140105", "MA0K1234")
	ind, _ := ids.MakeCreditCode('9', '2', "140106", "MA0L0001")
	coop, _ := ids.MakeCreditCode('9', '3', "140802", "MA0M0002")
	lp, _ := ids.MakeCreditCode('9', '1', "140100", "MA0N0003")
	return []baselib.EntityInput{
		{CreditCode: llc, Name: "太原市晋阳新材料科技有限公司", EntityType: baselib.TypeLLC, LegalRepName: "张伟", LegalRepID: zhang,
			DivisionCode: "140105", Address: "山西省太原市小店区长治路100号", RegisteredCapitalFen: 500_0000_00,
			Established: "2018-05-20", BusinessScope: "新材料技术研发；技术服务"},
		{CreditCode: ind, Name: "迎泽区李记刀削面馆", EntityType: baselib.TypeIndividual, LegalRepName: "李娜", LegalRepID: li,
			DivisionCode: "140106", RegisteredCapitalFen: 5_0000_00, Established: "2020-09-01", Status: baselib.StatusRevoked},
		{CreditCode: coop, Name: "盐湖区汾河红枣种植专业合作社", EntityType: baselib.TypeCooperative, LegalRepName: "赵芳",
			DivisionCode: "140802", Established: "2012-03-15", Status: baselib.StatusDeregistered},
		{CreditCode: lp, Name: "太原晋商创业投资合伙企业（有限合伙）", EntityType: baselib.TypePartnership, LegalRepName: "王建国",
			LegalRepID: wang, DivisionCode: "140100", RegisteredCapitalFen: 1_0000_0000_00, Established: "2021-01-04"},
	}
}

func TestEntities(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		in := companies()
		got, err := f.svc.AddEntities(f.ctx, in)
		if err != nil || len(got) != 4 {
			t.Fatalf("add: %v %v", got, err)
		}
		e, err := f.svc.FindEntityByCreditCode(f.ctx, strings.ToLower(in[0].CreditCode))
		if err != nil {
			t.Fatal(err)
		}
		e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
		want := baselib.Entity{ID: got[0], CreditCode: in[0].CreditCode, Name: in[0].Name, EntityType: "有限责任公司",
			LegalRepName: "张伟", LegalRepID: zhang, DivisionCode: "140105", DivisionName: "太原市小店区",
			Address: in[0].Address, RegisteredCapitalFen: 500_0000_00, Established: "2018-05-20",
			BusinessScope: in[0].BusinessScope, Status: "存续", CreatedAt: t0, UpdatedAt: t0}
		if e != want {
			t.Errorf("find:\n got %+v\nwant %+v", e, want)
		}
		if e, err := f.svc.FindEntityByCreditCode(f.ctx, in[2].CreditCode); err != nil || e.LegalRepID != "" || e.RegisteredCapitalFen != 0 {
			t.Errorf("entity without representative's id: %+v %v", e, err)
		}
		other, _ := ids.MakeCreditCode('9', '1', "140105", "MA0K9999")
		_, err = f.svc.FindEntityByCreditCode(f.ctx, other)
		wantErr(t, "find unknown", err, i18n.ErrNotFound, "未找到", "")

		all, err := f.svc.ListEntities(f.ctx, baselib.EntityFilter{})
		if err != nil || len(all) != 4 {
			t.Fatalf("list: %v %v", all, err)
		}
		if v := all[1]; v.CreditCode != in[0].CreditCode || v.LegalRepName != "张*" || v.Name != in[0].Name || v.DivisionName != "太原市小店区" {
			t.Errorf("view: %+v", v) // 140100 sorts before 140105
		}
		for _, c := range []struct {
			f    baselib.EntityFilter
			want int
		}{
			{baselib.EntityFilter{Division: "140100"}, 3},
			{baselib.EntityFilter{Division: "140105"}, 1},
			{baselib.EntityFilter{Status: baselib.StatusActive}, 2},
			{baselib.EntityFilter{Division: "140800", Status: baselib.StatusDeregistered}, 1},
		} {
			n, err := f.svc.CountEntities(f.ctx, c.f)
			l, err2 := f.svc.ListEntities(f.ctx, c.f)
			if err != nil || err2 != nil || n != c.want || len(l) != c.want {
				t.Errorf("%+v: count %d list %d (%v %v), want %d", c.f, n, len(l), err, err2, c.want)
			}
		}
		_, err = f.svc.CountEntities(f.ctx, baselib.EntityFilter{Status: "在业"})
		wantErr(t, "unknown status", err, invalid("baselib.status.invalid"), "存续", "status")

		for _, c := range []struct {
			code, name, rep string
			want            bool
		}{
			{in[0].CreditCode, in[0].Name, "张伟", true},
			{in[0].CreditCode, in[0].Name, "张卫", false},
			{in[0].CreditCode, "太原市晋阳新材料有限公司", "张伟", false},
			{other, in[0].Name, "张伟", false},
			{in[1].CreditCode, in[1].Name, "李娜", true},            // revoked still verifies
			{in[2].CreditCode, in[2].Name, "赵芳", false},           // deregistered does not
			{in[3].CreditCode, "太原晋商创业投资合伙企业(有限合伙)", "王建国", true}, // half-width brackets
		} {
			ok, err := f.svc.VerifyEntity(f.ctx, c.code, c.name, c.rep)
			if err != nil || ok != c.want {
				t.Errorf("verify %s %s %s: %v %v, want %v", c.code, c.name, c.rep, ok, err, c.want)
			}
		}
		_, err = f.svc.VerifyEntity(f.ctx, "91140105MA0K12345", in[0].Name, "张伟")
		wantErr(t, "verify malformed", err, ids.ErrCreditLength, "18位", "")

		// The representative's ID number is sealed, and indexed like a person's.
		var enc []byte
		var idx string
		if err := d.QueryRow(f.ctx, `SELECT legal_rep_id_enc, legal_rep_id_idx FROM legal_entities WHERE id = ?`, got[0]).Scan(&enc, &idx); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(enc, []byte(zhang)) || bytes.Contains(enc, []byte(zhang[6:14])) || idx != f.fc.BlindIndex(baselib.IndexResidentID, zhang) {
			t.Errorf("legal_rep_id at rest: %x %s", enc, idx)
		}
	}, crypto.Migrations, baselib.Migrations)
}

func TestAddEntitiesRejects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		in := companies()
		if _, err := f.svc.AddEntities(f.ctx, in[:1]); err != nil {
			t.Fatal(err)
		}
		with := func(i int, change func(*baselib.EntityInput)) []baselib.EntityInput {
			b := companies()[1:]
			change(&b[i])
			return b
		}
		wrongCheck := in[1].CreditCode[:17] + map[bool]string{true: "1", false: "0"}[in[1].CreditCode[17] == '0']
		for _, c := range []struct {
			name  string
			in    []baselib.EntityInput
			base  *i18n.Error
			zh    string
			field string
		}{
			{"registered already", with(2, func(e *baselib.EntityInput) { *e = in[0] }), baselib.ErrEntityExists, "第3条：该统一社会信用代码已登记", "entities[2].credit_code"},
			{"twice in the batch", with(1, func(e *baselib.EntityInput) { *e = in[1] }), baselib.ErrEntityExists, "第2条：统一社会信用代码与第1条重复", "entities[1].credit_code"},
			{"bad check character", with(0, func(e *baselib.EntityInput) { e.CreditCode = wrongCheck }), ids.ErrCreditChecksum, "第1条：", "entities[0].credit_code"},
			{"type mismatch", with(0, func(e *baselib.EntityInput) { e.EntityType = baselib.TypeLLC }), invalid("baselib.entity_type.mismatch"), "个体工商户", "entities[0].entity_type"},
			{"bad representative id", with(2, func(e *baselib.EntityInput) { e.LegalRepID = "140105198506151" }), ids.ErrResidentLength, "第3条：", "entities[2].legal_rep_id"},
			{"negative capital", with(0, func(e *baselib.EntityInput) { e.RegisteredCapitalFen = -1 }), invalid("baselib.capital.negative"), "注册资本", "entities[0].registered_capital_fen"},
			{"bad date", with(0, func(e *baselib.EntityInput) { e.Established = "2020-02-30" }), invalid("baselib.date.invalid"), "成立日期", "entities[0].established"},
			{"future date", with(0, func(e *baselib.EntityInput) { e.Established = "2026-03-02" }), invalid("baselib.date.future"), "成立日期", "entities[0].established"},
			{"bad status", with(0, func(e *baselib.EntityInput) { e.Status = "歇业" }), invalid("baselib.status.invalid"), "登记状态", "entities[0].status"},
			{"township division", with(0, func(e *baselib.EntityInput) { e.DivisionCode = "140105001" }), invalid("baselib.division.invalid"), "山西省", "entities[0].division_code"},
		} {
			_, err := f.svc.AddEntities(f.ctx, c.in)
			wantErr(t, c.name, err, c.base, c.zh, c.field)
		}
		if n, err := f.svc.CountEntities(f.ctx, baselib.EntityFilter{}); err != nil || n != 1 {
			t.Errorf("count after rejected batches: %d %v", n, err)
		}
	}, crypto.Migrations, baselib.Migrations)
}

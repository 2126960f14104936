package govservice_test

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/packs"
)

// Every form the Shanxi pack ships parses in the form engine, so that every item can be
// applied for.
func TestPackFormsParse(t *testing.T) {
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range p.Items {
		if _, err := form.Parse(it.Form); err != nil {
			t.Errorf("item %s %s: %v", it.Code, it.Name, err)
		}
	}
	for _, b := range p.Bundles {
		if _, err := form.Parse(b.Form); err != nil {
			t.Errorf("bundle %s: %v", b.Code, err)
		}
	}
}

// Draft prefills from the applicant's identity and the base libraries.
func TestApplyDraftPrefill(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		dr := f.draft(f.zhang, itemGeti)
		want := form.Values{"operator_name": "张三", "operator_id_number": zhangID, "phone": "13800000001",
			"operator_address": "太原市小店区长风街 1 号", "division": "140105"}
		for k, v := range want {
			if dr.Values[k] != v {
				t.Errorf("prefill %s = %q, want %q", k, dr.Values[k], v)
			}
		}
		if dr.FormVersionID == "" || dr.Item.Code != itemGeti || dr.Form.Key != "geti-register" {
			t.Errorf("draft: %+v", dr)
		}
		// 2 promised working days from Monday 2026-03-02 10:00 Beijing.
		if want := time.Date(2026, 3, 4, 10, 0, 0, 0, time.FixedZone("CST", 8*3600)); !dr.DueBy.Equal(want) {
			t.Errorf("due by %v, want %v", dr.DueBy, want)
		}
		// 李四 is not in the population library: identity only.
		dl := f.draft(f.li, itemGeti)
		if dl.Values["operator_name"] != "李四" || dl.Values["operator_address"] != "" {
			t.Errorf("prefill without a library record: %v", dl.Values)
		}
		// An enterprise: the legal-entity library.
		de := f.draft(f.firm, itemSeal)
		if de.Values["company_name"] != "山西晋味餐饮有限公司" || de.Values["credit_code"] != firmCC || de.Values["legal_rep_name"] != "张三" ||
			de.Values["phone"] != "13800000001" {
			t.Errorf("enterprise prefill: %v", de.Values)
		}
		// Citizens only, enterprises only.
		if _, err := f.apps.Draft(f.ctx, f.firm, itemGeti); !errors.Is(err, govservice.ErrApplicantKind) {
			t.Errorf("enterprise drafts a citizens' item: %v", err)
		}
		if _, err := f.apps.Draft(f.ctx, f.zhang, "019999999900"); !errors.Is(err, govservice.ErrNotFound) {
			t.Errorf("unknown item: %v", err)
		}
		if _, err := f.apps.Draft(f.ctx, govservice.Applicant{}, itemGeti); !errors.Is(err, i18n.ErrUnauthorized) {
			t.Errorf("anonymous: %v", err)
		}
	}, applySources...)
}

var numberPattern = regexp.MustCompile(`^20260302-140105-\d{6}$`)

func TestApplySubmit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		app := f.submitGeti(f.zhang)
		if !numberPattern.MatchString(app.Number) || !strings.HasSuffix(app.Number, "-000001") {
			t.Errorf("number %q", app.Number)
		}
		if app.Status != govservice.StatusSubmitted || app.StatusText.ZH != "已提交" || app.Step != "accept" || app.StepName.ZH != "受理" {
			t.Errorf("status %s %v step %s %v", app.Status, app.StatusText, app.Step, app.StepName)
		}
		// 个体工商户 is a county item of market regulation: 小店区 has that bureau.
		if app.DeptID != "dept-140105-scjg" || app.DeptName == "" || app.Division != "140105" || app.ItemVersion != 1 ||
			app.Applicant != (govservice.ApplicantRef{Kind: authz.Citizen, ID: "acc-zhang", Name: "张三"}) || app.DueAt == nil {
			t.Errorf("application: %+v", app)
		}
		c, err := f.cases.Get(f.ctx, f.zhang.Subject, app.CaseID)
		if err != nil || c.Definition != "service:"+itemGeti || c.Ref != "application:"+app.ID || c.Title != "个体工商户设立登记" ||
			c.Data["number"] != app.Number || c.Data["item"] != itemGeti || c.DeptID != app.DeptID {
			t.Errorf("case %+v %v", c, err)
		}
		// One event, one audit entry; the values are sealed at rest.
		if n := f.count(`SELECT COUNT(*) FROM outbox WHERE subject = ?`, govservice.EventApplicationSubmitted); n != 1 {
			t.Errorf("%d submitted events", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM apply_audit WHERE action = ? AND object = ?`, govservice.ActionSubmitted, "application:"+app.ID); n != 1 {
			t.Errorf("%d audit entries", n)
		}
		var enc []byte
		if err := d.QueryRow(f.ctx, `SELECT values_enc FROM service_application_revisions WHERE application_id = ?`, app.ID).Scan(&enc); err != nil ||
			bytes.Contains(enc, []byte(zhangID)) || bytes.Contains(enc, []byte("张三")) {
			t.Errorf("values at rest are not sealed (%v)", err)
		}
		// A second one the same day in the same county is numbered next.
		if app2 := f.submitGeti(f.zhang); !strings.HasSuffix(app2.Number, "-000002") {
			t.Errorf("second number %q", app2.Number)
		}
	}, applySources...)
}

// Applications go to the department of the item's kind at the item's level, or the nearest
// one above.
func TestApplyRouting(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		cases := []struct {
			name     string
			ap       govservice.Applicant
			item     string
			division string
			dept     string
			err      *i18n.Error
		}{
			{"county item, county has the bureau", f.zhang, itemGeti, "140105", "dept-140105-scjg", nil},
			{"county item from a township", f.zhang, itemGeti, "140105001", "dept-140105-scjg", nil},
			{"county item, no county bureau: the city's", f.zhang, itemBirthCert, "140105", "dept-140100-wj", nil},
			{"city item", f.zhang, itemCompany, "140105", "dept-140100-xzsp", nil},
			{"province item", f.zhang, itemVocation, "140105", "dept-140000-rs", nil},
			{"county item in a county without departments: up to the province", f.zhang, itemGeti, "140212", "dept-140000-scjg", nil},
			{"outside the node's departments", f.zhang, itemGeti, "110105", "", govservice.ErrNoDepartment},
			{"not a division", f.zhang, itemGeti, "999999", "", govservice.ErrDivision},
			{"a province is not where one applies for a county item", f.zhang, itemGeti, "14", "", govservice.ErrDivision},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				dr := f.draft(tc.ap, tc.item)
				app, err := f.apps.Submit(f.ctx, tc.ap, govservice.SubmitInput{ItemCode: tc.item, Division: tc.division, Values: values(dr.Form, dr.Values)})
				if tc.err != nil {
					wantCode(t, err, tc.err)
					return
				}
				if err != nil || app.DeptID != tc.dept {
					t.Fatalf("dept %q, want %q (%v)", app.DeptID, tc.dept, err)
				}
			})
		}
	}, applySources...)
}

func TestApplySubmitRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d, func(o *govservice.ApplicationOptions) { o.MaxFileSize = 1 << 10 })
		dr := f.draft(f.zhang, itemGeti)
		good := values(dr.Form, dr.Values)
		submit := func(v form.Values, mats ...govservice.MaterialInput) error {
			_, err := f.apps.Submit(f.ctx, f.zhang, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105", Values: v, Materials: mats})
			return err
		}
		// Form errors name every field.
		bad := values(dr.Form, form.Values{"operator_id_number": "140105199001011234", "phone": "12345"})
		delete(bad, "business_scope")
		bad["nonsense"] = "x"
		err := submit(bad)
		fe, ok := govservice.FieldErrors(err)
		if e, isI18n := i18n.As(err); !ok || !isI18n || e.Code != "form.invalid" || e.HTTPStatus() != 400 {
			t.Fatalf("form refusal: %v", err)
		}
		for _, k := range []string{"operator_id_number", "phone", "business_scope", "nonsense"} {
			if _, ok := fe.For(k); !ok {
				t.Errorf("no error for %s in %v", k, fe)
			}
		}
		var asFE *govservice.FormError
		if !errors.As(err, &asFE) || len(asFE.Errors) != len(fe) {
			t.Errorf("errors.As FormError: %v", err)
		}
		large := bytes.Repeat([]byte("x"), 2<<10)
		copy(large, "%PDF-1.4\n")
		for _, tc := range []struct {
			name string
			mat  govservice.MaterialInput
			err  *i18n.Error
		}{
			{"licence", govservice.MaterialInput{Key: "operator_id", Source: govservice.SourceLicense, LicenseID: "x"}, govservice.ErrLicenseUnavailable},
			{"unknown material", upload("diploma", "a.pdf", pdfFile), govservice.ErrMaterialUnknown},
			{"not a PDF or image", upload("operator_id", "a.pdf", []byte("MZ\x90\x00 executable")), govservice.ErrFileType},
			{"empty", upload("operator_id", "a.pdf", nil), govservice.ErrFileEmpty},
			{"no source", govservice.MaterialInput{Key: "operator_id"}, govservice.ErrMaterialSource},
			{"someone else's file", govservice.MaterialInput{Key: "operator_id", Source: govservice.SourceFile, FileID: "nope"}, govservice.ErrFileNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := submit(good, tc.mat)
				wantCode(t, err, tc.err)
				if e, _ := i18n.As(err); e.Field != "materials."+tc.mat.Key || e.Msg.EN == "" {
					t.Errorf("field %q, message %v", e.Field, e.Msg)
				}
			})
		}
		if err := submit(good, upload("operator_id", "big.pdf", large)); err == nil || !strings.Contains(err.Error(), "file_too_large") {
			t.Errorf("too large: %v", err)
		}
		// Nothing was stored, no blob left behind.
		if n := f.count(`SELECT COUNT(*) FROM service_applications`); n != 0 {
			t.Errorf("%d applications stored", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM applicant_files`); n != 0 {
			t.Errorf("%d files stored", n)
		}
		left := 0
		if err := f.blobs.List(f.ctx, "", func(blob.Info) error { left++; return nil }); err != nil || left != 0 {
			t.Errorf("%d blobs left (%v)", left, err)
		}
	}, applySources...)
}

// The personal space: an upload is kept and can be attached again by reference; its owner
// and the handling department's officers can open it, nobody else.
func TestApplyFiles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		first := f.submitGeti(f.zhang)
		files, err := f.apps.Files(f.ctx, f.zhang.Subject)
		if err != nil || len(files) != 1 {
			t.Fatalf("files %v %v", files, err)
		}
		file := files[0]
		if file.Name != "身份证.pdf" || file.ContentType != "application/pdf" || file.Size != int64(len(pdfFile)) || len(file.SM3) != 64 {
			t.Errorf("file %+v", file)
		}
		// Reused by reference in a second application: no new file.
		dr := f.draft(f.zhang, itemGeti)
		second, err := f.apps.Submit(f.ctx, f.zhang, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105", Values: values(dr.Form, dr.Values),
			Materials: []govservice.MaterialInput{{Key: "operator_id", Source: govservice.SourceFile, FileID: file.ID},
				upload("premises", "租赁合同.png", pngFile)}})
		if err != nil {
			t.Fatal(err)
		}
		if files, _ := f.apps.Files(f.ctx, f.zhang.Subject); len(files) != 2 || files[0].Name != "租赁合同.png" || files[0].ContentType != "image/png" {
			t.Errorf("files after the second: %+v", files)
		}
		det, err := f.apps.Get(f.ctx, f.zhang.Subject, second.ID)
		if err != nil || len(det.Materials) != 2 || det.Materials[0].Key != "operator_id" || det.Materials[0].File.ID != file.ID ||
			det.Materials[0].Name.ZH != "经营者身份证明" || det.Materials[1].Key != "premises" {
			t.Fatalf("materials %+v %v", det.Materials, err)
		}
		// 申请书 is still missing: accepted with deficiencies, listed for the officer.
		if strings.Join(det.Missing, ",") != "application" {
			t.Errorf("missing %v", det.Missing)
		}
		// Another citizen cannot attach or open it.
		dl := f.draft(f.li, itemGeti)
		_, err = f.apps.Submit(f.ctx, f.li, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105", Values: values(dl.Form, dl.Values),
			Materials: []govservice.MaterialInput{{Key: "operator_id", Source: govservice.SourceFile, FileID: file.ID}}})
		wantCode(t, err, govservice.ErrFileNotFound)
		read := func(actor authz.Subject) error {
			_, rc, err := f.apps.OpenFile(f.ctx, actor, file.ID)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			if !bytes.Equal(b, pdfFile) {
				t.Errorf("content differs")
			}
			return nil
		}
		if err := read(f.zhang.Subject); err != nil {
			t.Errorf("owner: %v", err)
		}
		if err := read(f.officer("140105", "scjg")); err != nil {
			t.Errorf("handling officer: %v", err)
		}
		if n := f.count(`SELECT COUNT(*) FROM apply_audit WHERE action = ? AND object = ?`, govservice.ActionFileRead, "applicant_file:"+file.ID); n != 1 {
			t.Errorf("%d audited file reads", n)
		}
		for name, actor := range map[string]authz.Subject{"another citizen": f.li.Subject, "another department": f.officer("140105", "ga"),
			"a city officer of the same kind": f.officer("140100", "scjg")} {
			if err := read(actor); !errors.Is(err, govservice.ErrFileNotFound) {
				t.Errorf("%s opens the file: %v", name, err)
			}
		}
		_ = first
	}, applySources...)
}

// Who sees what: the applicant and the handling department's officers see everything (the
// officers' reads audited); a supervisor sees the case but not the values; others nothing.
func TestApplyAccess(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		app := f.submitGeti(f.zhang)
		f.clock.add(time.Minute)
		later := f.submitGeti(f.zhang)
		own, err := f.apps.Get(f.ctx, f.zhang.Subject, app.ID)
		if err != nil || own.Values["operator_id_number"] != zhangID || own.Form == nil || own.Item.Code != itemGeti ||
			len(own.History) != 1 || own.History[0].Action != workflow.ActionOpened {
			t.Fatalf("applicant's view: %+v %v", own, err)
		}
		officer := f.officer("140105", "scjg")
		seen, err := f.apps.ByCase(f.ctx, officer, app.CaseID)
		if err != nil || seen.ID != app.ID || seen.Values["operator_name"] != "张三" {
			t.Fatalf("officer's view: %v", err)
		}
		if n := f.count(`SELECT COUNT(*) FROM apply_audit WHERE action = ? AND actor = ?`, govservice.ActionRead, officer.String()); n != 1 {
			t.Errorf("%d audited reads", n)
		}
		sup := authz.Subject{Kind: authz.Staff, ID: "sup", Division: "140100", Roles: []authz.Role{workflow.RoleSupervisor}}
		if s, err := f.apps.Get(f.ctx, sup, app.ID); err != nil || s.Values != nil || s.Materials[0].File != nil {
			t.Errorf("supervisor's view: values %v, %v", s.Values, err)
		}
		for name, actor := range map[string]authz.Subject{"another citizen": f.li.Subject, "another department": f.officer("140105", "ga"),
			"a department elsewhere": f.officer("140100", "scjg")} {
			if _, err := f.apps.Get(f.ctx, actor, app.ID); !errors.Is(err, govservice.ErrApplicationNotFound) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := f.apps.Get(f.ctx, authz.Subject{}, app.ID); !errors.Is(err, i18n.ErrUnauthorized) {
			t.Errorf("anonymous: %v", err)
		}
		mine, err := f.apps.Mine(f.ctx, f.zhang.Subject, govservice.MineFilter{})
		if err != nil || len(mine) != 2 || mine[0].ID != later.ID || mine[1].ID != app.ID || mine[0].Status != govservice.StatusSubmitted {
			t.Errorf("mine: %+v %v", mine, err)
		}
		if mine, _ := f.apps.Mine(f.ctx, f.li.Subject, govservice.MineFilter{}); len(mine) != 0 {
			t.Errorf("someone else's list: %v", mine)
		}
		if _, err := f.apps.Mine(f.ctx, officer, govservice.MineFilter{}); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("staff's own applications: %v", err)
		}
		n, err := f.apps.Notice(f.ctx, app.ID)
		if err != nil || n.Phone != "13800000001" || n.Number != app.Number || n.ItemName != "个体工商户设立登记" || n.Applicant.ID != "acc-zhang" {
			t.Errorf("notice %+v %v", n, err)
		}
	}, applySources...)
}

// A correction round: the officer asks, the applicant answers with a corrected value and a
// new material, the case resumes and is approved; the status follows the case throughout.
func TestApplyCorrectionRound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		app := f.submitGeti(f.zhang)
		officer := f.officer("140105", "scjg")
		if _, err := f.cases.Claim(f.ctx, officer, app.CaseID); err != nil {
			t.Fatal(err)
		}
		if a, _ := f.apps.Get(f.ctx, f.zhang.Subject, app.ID); a.Status != govservice.StatusInReview {
			t.Errorf("claimed: %s", a.Status)
		}
		// Answering before anything was asked is refused.
		_, err := f.apps.AnswerCorrection(f.ctx, f.zhang, app.ID, nil, nil, "")
		wantCode(t, err, workflow.ErrState)
		if _, err := f.cases.RequestCorrection(f.ctx, officer, app.CaseID, "经营场所证明缺失，经营范围表述不规范", []string{"premises", "business_scope"}); err != nil {
			t.Fatal(err)
		}
		det, err := f.apps.Get(f.ctx, f.zhang.Subject, app.ID)
		if err != nil || det.Status != govservice.StatusCorrection || det.StatusText.ZH != "待补正" || det.Correction == nil ||
			len(det.Correction.Items) != 2 {
			t.Fatalf("suspended: %+v %v", det.Application, err)
		}
		// Somebody else cannot answer; bad values are refused and change nothing.
		_, err = f.apps.AnswerCorrection(f.ctx, f.li, app.ID, nil, nil, "")
		wantCode(t, err, govservice.ErrApplicationNotFound)
		bad := det.Values
		bad["employees"] = "0"
		_, err = f.apps.AnswerCorrection(f.ctx, f.zhang, app.ID, bad, nil, "")
		if fe, ok := govservice.FieldErrors(err); !ok || len(fe) != 1 || fe[0].Field != "employees" {
			t.Fatalf("bad answer: %v", err)
		}
		f.clock.add(time.Hour)
		fixed := det.Values
		fixed["employees"] = "3"
		fixed["business_scope"] = "餐饮服务（不含网络销售）"
		ans, err := f.apps.AnswerCorrection(f.ctx, f.zhang, app.ID, fixed, []govservice.MaterialInput{upload("premises", "房产证.pdf", pdfFile)}, "已按要求补正")
		if err != nil {
			t.Fatal(err)
		}
		if ans.Status != govservice.StatusInReview || ans.Revision != 2 {
			t.Errorf("answered: %s revision %d", ans.Status, ans.Revision)
		}
		det, err = f.apps.Get(f.ctx, officer, app.ID)
		if err != nil || det.Values["business_scope"] != "餐饮服务（不含网络销售）" || len(det.Materials) != 2 || det.Materials[1].Key != "premises" ||
			det.Materials[0].Key != "operator_id" || det.Correction != nil {
			t.Fatalf("after the answer: %+v %v", det.Materials, err)
		}
		if n := f.count(`SELECT COUNT(*) FROM service_application_revisions WHERE application_id = ?`, app.ID); n != 2 {
			t.Errorf("%d revisions", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM apply_audit WHERE action = ?`, govservice.ActionAnswered); n != 1 {
			t.Errorf("%d audited answers", n)
		}
		// The officer still holds the case: decide to the end.
		if _, err := f.cases.Decide(f.ctx, officer, app.CaseID, workflow.Decision{Outcome: workflow.Approve}); err != nil {
			t.Fatal(err)
		}
		f.approveAll(officer, app.CaseID)
		done, _ := f.apps.Get(f.ctx, f.zhang.Subject, app.ID)
		if done.Status != govservice.StatusApproved || done.StatusText.ZH != "已办结" || done.ClosedAt == nil || done.Outcome != workflow.OutcomeApproved {
			t.Errorf("closed: %+v", done.Application)
		}
		// A closed application cannot be withdrawn.
		_, err = f.apps.Withdraw(f.ctx, f.zhang, app.ID, "不办了")
		wantCode(t, err, workflow.ErrState)
	}, applySources...)
}

func TestApplyWithdraw(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		app := f.submitGeti(f.zhang)
		if _, err := f.apps.Withdraw(f.ctx, f.li, app.ID, "x"); !errors.Is(err, govservice.ErrApplicationNotFound) {
			t.Errorf("someone else withdraws: %v", err)
		}
		w, err := f.apps.Withdraw(f.ctx, f.zhang, app.ID, "信息填写有误，重新申请")
		if err != nil || w.Status != govservice.StatusWithdrawn || w.Outcome != workflow.OutcomeWithdrawn {
			t.Fatalf("withdraw: %+v %v", w, err)
		}
		if n := f.count(`SELECT COUNT(*) FROM apply_audit WHERE action = ? AND object = ?`, govservice.ActionWithdrawn, "application:"+app.ID); n != 1 {
			t.Errorf("%d audited withdrawals", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM outbox WHERE subject = ?`, workflow.ActionWithdrawn.Subject()); n != 1 {
			t.Errorf("%d withdrawal events", n)
		}
	}, applySources...)
}

// An answer whose case then refuses to resume is taken back: no new revision stays.
func TestApplyAnswerTakenBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		app := f.submitGeti(f.zhang)
		officer := f.officer("140105", "scjg")
		if _, err := f.cases.Claim(f.ctx, officer, app.CaseID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cases.RequestCorrection(f.ctx, officer, app.CaseID, "补充经营场所证明", nil); err != nil {
			t.Fatal(err)
		}
		f.failResume.Store(true)
		_, err := f.apps.AnswerCorrection(f.ctx, f.zhang, app.ID, nil, []govservice.MaterialInput{upload("premises", "p.pdf", pdfFile)}, "补上了")
		if err == nil || !strings.Contains(err.Error(), "resume refused") {
			t.Fatalf("answer: %v", err)
		}
		if n := f.count(`SELECT revision FROM service_applications WHERE id = ?`, app.ID); n != 1 {
			t.Errorf("revision %d after the refusal", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM service_application_revisions WHERE application_id = ?`, app.ID); n != 1 {
			t.Errorf("%d revisions after the refusal", n)
		}
		f.failResume.Store(false)
		ans, err := f.apps.AnswerCorrection(f.ctx, f.zhang, app.ID, nil, []govservice.MaterialInput{upload("premises", "p.pdf", pdfFile)}, "补上了")
		if err != nil || ans.Revision != 2 || ans.Status != govservice.StatusInReview {
			t.Fatalf("second answer: %+v %v", ans, err)
		}
	}, applySources...)
}

package workflow_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

func TestLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		ctx := f.ctx
		c := f.open(serviceDef.Key)
		if c.State != workflow.StateOpen || c.Step != workflow.StepAccept || c.StepIndex != 0 || c.Version != 1 ||
			c.DefinitionVersion != 1 || c.StepRole != authz.RoleOfficer || c.ClaimedBy != "" || c.StepName != "受理" {
			t.Fatalf("opened: %+v", c)
		}
		// Monday 2 March 10:00 + 1 working day; the whole case 7 (3, 4, 5, 6, 9, 10, 11 March).
		if !c.StepDueAt.Equal(bj(2026, 3, 3, 10, 0)) || !c.DueAt.Equal(bj(2026, 3, 11, 10, 0)) {
			t.Errorf("deadlines %s %s", c.StepDueAt, c.DueAt)
		}
		// A one-day step is within a day of its deadline from the start.
		if c.Status != workflow.Yellow {
			t.Errorf("status %s, want yellow", c.Status)
		}
		c = must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, c.ID))
		if c.ClaimedBy != "staff:o1" || c.Version != 2 {
			t.Fatalf("claimed: %q v%d", c.ClaimedBy, c.Version)
		}
		// Claiming again is a no-op.
		if again := must[workflow.Case](t, "claim again")(f.svc.Claim(ctx, f.officer, c.ID)); again.Version != 2 {
			t.Errorf("repeated claim made version %d", again.Version)
		}
		c = must[workflow.Case](t, "accept")(f.svc.Decide(ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Approve, Comment: "材料齐全，予以受理"}))
		if c.Step != workflow.StepReview || c.StepIndex != 1 || c.ClaimedBy != "" || c.Status != workflow.Green ||
			!c.StepDueAt.Equal(bj(2026, 3, 5, 10, 0)) {
			t.Fatalf("after acceptance: step %s claimed %q status %s due %s", c.Step, c.ClaimedBy, c.Status, c.StepDueAt)
		}
		f.clock.set(bj(2026, 3, 3, 10, 0))
		must[workflow.Case](t, "claim review")(f.svc.Claim(ctx, f.officer2, c.ID))
		c = must[workflow.Case](t, "review")(f.svc.Decide(ctx, f.officer2, c.ID, workflow.Decision{Outcome: workflow.Approve}))
		if c.Step != workflow.StepDecide || c.StepRole != workflow.RoleLeader {
			t.Fatalf("after review: %s %s", c.Step, c.StepRole)
		}
		// The decision step is the leader's.
		_, err := f.svc.Claim(ctx, f.officer, c.ID)
		wantErr(t, "officer claims the leader's step", err, i18n.ErrForbidden)
		must[workflow.Case](t, "leader claims")(f.svc.Claim(ctx, f.leader, c.ID))
		c = must[workflow.Case](t, "decide")(f.svc.Decide(ctx, f.leader, c.ID, workflow.Decision{Outcome: workflow.Approve, Comment: "准予登记", Version: 6}))
		must[workflow.Case](t, "claim delivery")(f.svc.Claim(ctx, f.officer, c.ID))
		c = must[workflow.Case](t, "deliver")(f.svc.Decide(ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Approve, Comment: "已送达"}))
		if c.State != workflow.StateClosed || c.Outcome != workflow.OutcomeApproved || c.Step != workflow.StepDeliver ||
			c.ClosedAt == nil || c.Status != "" || c.WorkingDays != 1 {
			t.Fatalf("closed: %+v", c)
		}
		if got := must[workflow.Case](t, "citizen reads")(f.svc.Get(ctx, f.citizen, c.ID)); got.Version != c.Version || got.Outcome != workflow.OutcomeApproved {
			t.Errorf("citizen sees %+v", got)
		}

		want := []workflow.Action{"opened", "claimed", "advanced", "claimed", "advanced", "claimed", "advanced", "claimed", "closed"}
		if got := f.actions(f.citizen, c.ID); !slices.Equal(got, want) {
			t.Errorf("history %v, want %v", got, want)
		}
		var subjects, audits []string
		for _, a := range want {
			subjects = append(subjects, "dgov.workflow.case."+string(a))
			audits = append(audits, "workflow.case."+string(a))
		}
		if got := f.outbox(c.ID); !slices.Equal(got, subjects) {
			t.Errorf("events %v, want %v", got, subjects)
		}
		if got := f.audits(c.ID); !slices.Equal(got, audits) {
			t.Errorf("audit %v, want %v", got, audits)
		}
		evs := must[[]workflow.Event](t, "history")(f.svc.History(ctx, f.officer, c.ID))
		if e := evs[2]; e.Step != workflow.StepAccept || e.ToStep != workflow.StepReview || e.Actor != "staff:o1" || e.Comment != "材料齐全，予以受理" {
			t.Errorf("advance row %+v", e)
		}
		ps := f.payloads(c.ID)
		last := ps[len(ps)-1]
		if last.State != workflow.StateClosed || last.Outcome != workflow.OutcomeApproved || last.Ref != c.Ref || last.Definition != serviceDef.Key ||
			last.ApplicantKind != authz.Citizen || last.ApplicantID != "c1" || last.Step != workflow.StepDeliver || last.Comment != "已送达" ||
			last.DeptID != deptTY || last.Action != workflow.ActionClosed || !last.At.Equal(bj(2026, 3, 3, 10, 0)) {
			t.Errorf("closing event %+v", last)
		}
	}, sources...)
}

func TestReject(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		c := f.open(serviceDef.Key)
		must[workflow.Case](t, "claim")(f.svc.Claim(f.ctx, f.officer, c.ID))
		_, err := f.svc.Decide(f.ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Reject, Comment: "  "})
		wantErr(t, "reject without reasons", err, workflow.ErrCommentRequired)
		c = must[workflow.Case](t, "reject")(f.svc.Decide(f.ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Reject, Comment: "经营场所不符合要求"}))
		if c.State != workflow.StateClosed || c.Outcome != workflow.OutcomeRejected || c.Step != workflow.StepAccept {
			t.Fatalf("rejected: %+v", c)
		}
		ps := f.payloads(c.ID)
		if p := ps[len(ps)-1]; p.Outcome != workflow.OutcomeRejected || p.Comment != "经营场所不符合要求" {
			t.Errorf("event %+v", p)
		}
	}, sources...)
}

// TestRefusals: every transition refused where it must be, with the right bilingual error,
// and nothing recorded.
func TestRefusals(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		ctx := f.ctx
		fresh := func() string { return f.open(serviceDef.Key).ID }
		claimed := func() string {
			id := fresh()
			must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, id))
			return id
		}
		suspended := func() string {
			id := claimed()
			must[workflow.Case](t, "correction")(f.svc.RequestCorrection(ctx, f.officer, id, "缺少租赁合同", []string{"经营场所证明"}))
			return id
		}
		closed := func() string {
			id := claimed()
			must[workflow.Case](t, "reject")(f.svc.Decide(ctx, f.officer, id, workflow.Decision{Outcome: workflow.Reject, Comment: "不符合条件"}))
			return id
		}
		atReview := func() string {
			id := claimed()
			must[workflow.Case](t, "accept")(f.svc.Decide(ctx, f.officer, id, workflow.Decision{Outcome: workflow.Approve}))
			return id
		}
		approve := workflow.Decision{Outcome: workflow.Approve}
		cases := []struct {
			name  string
			setup func() string
			call  func(id string) error
			want  *i18n.Error
		}{
			{"anonymous reads", fresh, func(id string) error { _, err := f.svc.Get(ctx, authz.Subject{}, id); return err }, i18n.ErrUnauthorized},
			{"another citizen reads", fresh, func(id string) error { _, err := f.svc.Get(ctx, f.citizen2, id); return err }, i18n.ErrNotFound},
			{"another city's officer reads", fresh, func(id string) error { _, err := f.svc.Get(ctx, f.dtOfficer, id); return err }, i18n.ErrNotFound},
			{"another department's officer reads", fresh, func(id string) error { _, err := f.svc.Get(ctx, f.xdOfficer, id); return err }, i18n.ErrNotFound},
			{"another city's supervisor reads", fresh, func(id string) error { _, err := f.svc.Get(ctx, f.dtSupervisor, id); return err }, i18n.ErrNotFound},
			{"auditor without case rights reads", fresh, func(id string) error { _, err := f.svc.History(ctx, f.auditor, id); return err }, i18n.ErrNotFound},
			{"unknown case", fresh, func(string) error { _, err := f.svc.Get(ctx, f.officer, db.NewID()); return err }, i18n.ErrNotFound},
			{"another city's officer claims", fresh, func(id string) error { _, err := f.svc.Claim(ctx, f.dtOfficer, id); return err }, i18n.ErrNotFound},
			{"applicant claims", fresh, func(id string) error { _, err := f.svc.Claim(ctx, f.citizen, id); return err }, i18n.ErrForbidden},
			{"supervisor claims", fresh, func(id string) error { _, err := f.svc.Claim(ctx, f.supervisor, id); return err }, i18n.ErrForbidden},
			{"leader claims an officer's step", fresh, func(id string) error { _, err := f.svc.Claim(ctx, f.leader, id); return err }, i18n.ErrForbidden},
			{"second officer claims", claimed, func(id string) error { _, err := f.svc.Claim(ctx, f.officer2, id); return err }, workflow.ErrClaimed},
			{"claim a closed case", closed, func(id string) error { _, err := f.svc.Claim(ctx, f.officer, id); return err }, workflow.ErrState},
			{"claim a suspended case", suspended, func(id string) error { _, err := f.svc.Claim(ctx, f.officer2, id); return err }, workflow.ErrState},
			{"decide unclaimed", fresh, func(id string) error { _, err := f.svc.Decide(ctx, f.officer, id, approve); return err }, workflow.ErrNotClaimed},
			{"decide another's claim", claimed, func(id string) error { _, err := f.svc.Decide(ctx, f.officer2, id, approve); return err }, workflow.ErrClaimed},
			{"decide on a stale version", claimed, func(id string) error {
				_, err := f.svc.Decide(ctx, f.officer, id, workflow.Decision{Outcome: workflow.Approve, Version: 1})
				return err
			}, workflow.ErrConflict},
			{"decide with no verdict", claimed, func(id string) error { _, err := f.svc.Decide(ctx, f.officer, id, workflow.Decision{}); return err },
				i18n.Errorf(400, "workflow.outcome", "x", "x")},
			{"decide a closed case", closed, func(id string) error { _, err := f.svc.Decide(ctx, f.officer, id, approve); return err }, workflow.ErrState},
			{"decide a suspended case", suspended, func(id string) error { _, err := f.svc.Decide(ctx, f.officer, id, approve); return err }, workflow.ErrState},
			{"applicant decides", claimed, func(id string) error { _, err := f.svc.Decide(ctx, f.citizen, id, approve); return err }, i18n.ErrForbidden},
			{"correction without comment", claimed, func(id string) error { _, err := f.svc.RequestCorrection(ctx, f.officer, id, "", nil); return err }, workflow.ErrCommentRequired},
			{"correction unclaimed", fresh, func(id string) error {
				_, err := f.svc.RequestCorrection(ctx, f.officer, id, "补正", nil)
				return err
			}, workflow.ErrNotClaimed},
			{"correction twice", suspended, func(id string) error {
				_, err := f.svc.RequestCorrection(ctx, f.officer, id, "补正", nil)
				return err
			}, workflow.ErrState},
			{"resume an open case", claimed, func(id string) error { _, err := f.svc.Resume(ctx, f.citizen, id, ""); return err }, workflow.ErrState},
			{"officer resumes", suspended, func(id string) error { _, err := f.svc.Resume(ctx, f.officer, id, ""); return err }, i18n.ErrForbidden},
			{"another citizen resumes", suspended, func(id string) error { _, err := f.svc.Resume(ctx, f.citizen2, id, ""); return err }, i18n.ErrNotFound},
			{"transfer to the same department", claimed, func(id string) error { _, err := f.svc.Transfer(ctx, f.officer, id, deptTY, "转办"); return err }, workflow.ErrSameDepartment},
			{"transfer to an unknown department", claimed, func(id string) error { _, err := f.svc.Transfer(ctx, f.officer, id, "nope", "转办"); return err }, workflow.ErrUnknownDepartment},
			{"transfer without a reason", claimed, func(id string) error { _, err := f.svc.Transfer(ctx, f.officer, id, deptXD, ""); return err }, workflow.ErrCommentRequired},
			{"transfer unclaimed", fresh, func(id string) error { _, err := f.svc.Transfer(ctx, f.officer, id, deptXD, "转办"); return err }, workflow.ErrNotClaimed},
			{"transfer a suspended case", suspended, func(id string) error { _, err := f.svc.Transfer(ctx, f.officer, id, deptXD, "转办"); return err }, workflow.ErrState},
			{"return from the first step", claimed, func(id string) error { _, err := f.svc.Return(ctx, f.officer, id, "退回"); return err }, workflow.ErrFirstStep},
			{"return without a reason", atReview, func(id string) error {
				must[workflow.Case](t, "claim review")(f.svc.Claim(ctx, f.officer, id))
				_, err := f.svc.Return(ctx, f.officer, id, "")
				return err
			}, workflow.ErrCommentRequired},
			{"return a closed case", closed, func(id string) error { _, err := f.svc.Return(ctx, f.officer, id, "退回"); return err }, workflow.ErrState},
			{"officer withdraws", fresh, func(id string) error { _, err := f.svc.Withdraw(ctx, f.officer, id, ""); return err }, i18n.ErrForbidden},
			{"another citizen withdraws", fresh, func(id string) error { _, err := f.svc.Withdraw(ctx, f.citizen2, id, ""); return err }, i18n.ErrNotFound},
			{"withdraw a closed case", closed, func(id string) error { _, err := f.svc.Withdraw(ctx, f.citizen, id, ""); return err }, workflow.ErrState},
			{"release unclaimed", fresh, func(id string) error { _, err := f.svc.Release(ctx, f.officer, id); return err }, workflow.ErrNotClaimed},
			{"release another's claim", claimed, func(id string) error { _, err := f.svc.Release(ctx, f.officer2, id); return err }, workflow.ErrClaimed},
		}
		for _, tc := range cases {
			id := tc.setup()
			before := must[workflow.Case](t, "read")(f.svc.Get(ctx, f.officer, id))
			history := len(f.actions(f.officer, id))
			wantErr(t, tc.name, tc.call(id), tc.want)
			after := must[workflow.Case](t, "read")(f.svc.Get(ctx, f.officer, id))
			if after.Version != before.Version && tc.name != "return without a reason" {
				t.Errorf("%s: version %d → %d", tc.name, before.Version, after.Version)
			}
			if n := len(f.actions(f.officer, id)); n != history && tc.name != "return without a reason" {
				t.Errorf("%s: history grew from %d to %d", tc.name, history, n)
			}
		}
	}, sources...)
}

func TestCorrectionStopsTheClocks(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		ctx := f.ctx
		c := f.open(serviceDef.Key) // Monday 2 March 10:00: accept due Tue 3 March 10:00, case due Wed 11 March 10:00
		must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, c.ID))
		f.clock.set(bj(2026, 3, 2, 16, 0)) // 18 working hours of the step are left
		c = must[workflow.Case](t, "correction")(f.svc.RequestCorrection(ctx, f.officer, c.ID, "请补充经营场所证明", []string{"租赁合同", " ", "房产证明"}))
		if c.State != workflow.StateSuspended || c.StepDueAt != nil || c.DueAt != nil || c.ClaimedBy != "staff:o1" ||
			*c.StepTimeLeft != 18*time.Hour || *c.TimeLeft != 6*24*time.Hour+18*time.Hour || c.Status != workflow.Yellow ||
			c.Correction == nil || !slices.Equal(c.Correction.Items, []string{"租赁合同", "房产证明"}) {
			t.Fatalf("suspended: %+v left %v %v", c, c.StepTimeLeft, c.TimeLeft)
		}
		// Officers cannot act on it; the applicant sees what to correct.
		_, err := f.svc.Decide(ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Approve})
		wantErr(t, "decide while suspended", err, workflow.ErrState)
		seen := must[workflow.Case](t, "applicant reads")(f.svc.Get(ctx, f.citizen, c.ID))
		if seen.Correction == nil || seen.Correction.Comment != "请补充经营场所证明" {
			t.Errorf("applicant sees %+v", seen.Correction)
		}
		// Two weeks later, on Monday 16 March at 9:00, the applicant answers: the step has its
		// 18 working hours again (15 on Monday, 3 on Tuesday), the case its 6 days 18 hours.
		f.clock.set(bj(2026, 3, 16, 9, 0))
		c = must[workflow.Case](t, "resume")(f.svc.Resume(ctx, f.citizen, c.ID, "已上传租赁合同"))
		if c.State != workflow.StateOpen || c.Correction != nil || c.StepTimeLeft != nil {
			t.Fatalf("resumed: %+v", c)
		}
		if !c.StepDueAt.Equal(bj(2026, 3, 17, 3, 0)) {
			t.Errorf("step due %s, want 2026-03-17 03:00", c.StepDueAt.In(calendar.Beijing))
		}
		// 162 working hours from Monday 9:00: Monday 15 h, Tuesday to Friday 96 h, Monday 23 and
		// Tuesday 24 March 48 h — 159 h — and the last 3 h on Wednesday 25 March.
		if !c.DueAt.Equal(bj(2026, 3, 25, 3, 0)) {
			t.Errorf("case due %s, want 2026-03-25 03:00", c.DueAt)
		}
		// The working time spent suspended does not count when the case closes.
		f.clock.set(bj(2026, 3, 16, 12, 0))
		c = must[workflow.Case](t, "reject")(f.svc.Decide(ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Reject, Comment: "仍不符合"}))
		if want := 9.0 / 24; c.WorkingDays < want-1e-9 || c.WorkingDays > want+1e-9 {
			t.Errorf("working days %v, want %v (6 h on 2 March + 3 h on 16 March)", c.WorkingDays, want)
		}
		want := []workflow.Action{"opened", "claimed", "suspended", "resumed", "closed"}
		if got := f.actions(f.citizen, c.ID); !slices.Equal(got, want) {
			t.Errorf("history %v", got)
		}
		evs := must[[]workflow.Event](t, "history")(f.svc.History(ctx, f.citizen, c.ID))
		if e := evs[2]; !slices.Equal(e.Items, []string{"租赁合同", "房产证明"}) || e.Comment != "请补充经营场所证明" {
			t.Errorf("suspension row %+v", e)
		}
		ps := f.payloads(c.ID)
		if p := ps[2]; p.State != workflow.StateSuspended || len(p.Items) != 2 {
			t.Errorf("suspension event %+v", p)
		}
	}, sources...)
}

func TestWithdraw(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		open := f.open(serviceDef.Key)
		c := must[workflow.Case](t, "withdraw open")(f.svc.Withdraw(f.ctx, f.citizen, open.ID, "不再需要"))
		if c.State != workflow.StateClosed || c.Outcome != workflow.OutcomeWithdrawn {
			t.Fatalf("withdrawn: %+v", c)
		}
		s := f.open(serviceDef.Key)
		must[workflow.Case](t, "claim")(f.svc.Claim(f.ctx, f.officer, s.ID))
		must[workflow.Case](t, "correction")(f.svc.RequestCorrection(f.ctx, f.officer, s.ID, "补正", nil))
		c = must[workflow.Case](t, "withdraw suspended")(f.svc.Withdraw(f.ctx, f.citizen, s.ID, ""))
		if c.State != workflow.StateClosed || c.Outcome != workflow.OutcomeWithdrawn || c.Correction != nil {
			t.Fatalf("withdrawn while suspended: %+v", c)
		}
		if got := f.outbox(s.ID); got[len(got)-1] != "dgov.workflow.case.withdrawn" {
			t.Errorf("events %v", got)
		}
	}, sources...)
}

func TestReturn(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		c := f.open(serviceDef.Key)
		must[workflow.Case](t, "claim")(f.svc.Claim(f.ctx, f.officer, c.ID))
		must[workflow.Case](t, "accept")(f.svc.Decide(f.ctx, f.officer, c.ID, workflow.Decision{Outcome: workflow.Approve}))
		f.clock.set(bj(2026, 3, 4, 10, 0))
		must[workflow.Case](t, "claim review")(f.svc.Claim(f.ctx, f.officer2, c.ID))
		c = must[workflow.Case](t, "return")(f.svc.Return(f.ctx, f.officer2, c.ID, "受理环节材料核对有误"))
		// Back at acceptance, unclaimed, with a fresh one-day clock.
		if c.Step != workflow.StepAccept || c.StepIndex != 0 || c.ClaimedBy != "" || !c.StepDueAt.Equal(bj(2026, 3, 5, 10, 0)) {
			t.Fatalf("returned: %+v", c)
		}
		evs := must[[]workflow.Event](t, "history")(f.svc.History(f.ctx, f.officer, c.ID))
		if e := evs[len(evs)-1]; e.Action != workflow.ActionReturned || e.Step != workflow.StepReview || e.ToStep != workflow.StepAccept {
			t.Errorf("return row %+v", e)
		}
	}, sources...)
}

func TestTransfer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		ctx := f.ctx
		c := f.open(serviceDef.Key)
		due := *c.StepDueAt
		must[workflow.Case](t, "claim")(f.svc.Claim(ctx, f.officer, c.ID))
		// To the district bureau: the case (小店区) is already within its division.
		c = must[workflow.Case](t, "transfer")(f.svc.Transfer(ctx, f.officer, c.ID, deptXD, "属区级事权"))
		if c.DeptID != deptXD || c.Division != "140105" || c.ClaimedBy != "" || !c.StepDueAt.Equal(due) || c.Step != workflow.StepAccept {
			t.Fatalf("transferred: %+v", c)
		}
		_, err := f.svc.Get(ctx, f.officer, c.ID)
		wantErr(t, "the old department no longer sees it", err, i18n.ErrNotFound)
		must[workflow.Case](t, "district claims")(f.svc.Claim(ctx, f.xdOfficer, c.ID))
		// Sideways to 大同 is outside the district officer's scope and not up the case's chain.
		_, err = f.svc.Transfer(ctx, f.xdOfficer, c.ID, deptDT, "申请人经营场所在大同")
		wantErr(t, "a district officer transfers to another city", err, workflow.ErrTransferScope)
		// Back up to the city bureau: its division contains the case's.
		c = must[workflow.Case](t, "transfer up")(f.svc.Transfer(ctx, f.xdOfficer, c.ID, deptTY, "需市局办理"))
		if c.DeptID != deptTY || c.Division != "140105" {
			t.Fatalf("transferred up: %+v", c)
		}
		must[workflow.Case](t, "city claims")(f.svc.Claim(ctx, f.officer, c.ID))
		// The city officer may send it to 大同? No: 大同 is outside 太原 and not above 小店区.
		_, err = f.svc.Transfer(ctx, f.officer, c.ID, deptDT, "申请人经营场所在大同")
		wantErr(t, "a city officer transfers to another city", err, workflow.ErrTransferScope)
		evs := must[[]workflow.Event](t, "history")(f.svc.History(ctx, f.citizen, c.ID))
		if e := evs[2]; e.Action != workflow.ActionTransferred || e.DeptID != deptTY || e.ToDeptID != deptXD || e.Comment != "属区级事权" {
			t.Errorf("transfer row %+v", e)
		}
		ps := f.payloads(c.ID)
		if p := ps[2]; p.FromDeptID != deptTY || p.DeptID != deptXD {
			t.Errorf("transfer event %+v", p)
		}
	}, sources...)
}

func TestReleaseAndLeader(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		c := f.open(serviceDef.Key)
		must[workflow.Case](t, "claim")(f.svc.Claim(f.ctx, f.officer, c.ID))
		// The officer is away: the department's leader releases the case for a colleague.
		c = must[workflow.Case](t, "leader releases")(f.svc.Release(f.ctx, f.leader, c.ID))
		if c.ClaimedBy != "" {
			t.Fatalf("still claimed by %q", c.ClaimedBy)
		}
		must[workflow.Case](t, "colleague claims")(f.svc.Claim(f.ctx, f.officer2, c.ID))
		c = must[workflow.Case](t, "colleague releases")(f.svc.Release(f.ctx, f.officer2, c.ID))
		if got := f.actions(f.officer, c.ID); !slices.Equal(got, []workflow.Action{"opened", "claimed", "released", "claimed", "released"}) {
			t.Errorf("history %v", got)
		}
	}, sources...)
}

// TestConcurrentClaims: officers claiming one case at once — exactly one wins; and one
// officer's decision sent twice at once (a double click) applies once.
func TestConcurrentClaims(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		c := f.open(serviceDef.Key)
		officers := make([]authz.Subject, 6)
		for i := range officers {
			officers[i] = staff("o"+string(rune('a'+i)), "140100", deptTY, authz.RoleOfficer)
		}
		errs := make([]error, len(officers))
		var wg sync.WaitGroup
		for i, o := range officers {
			wg.Go(func() { _, errs[i] = f.svc.Claim(f.ctx, o, c.ID) })
		}
		wg.Wait()
		winners := 0
		for i, err := range errs {
			if err == nil {
				winners++
				continue
			}
			if e, ok := i18n.As(err); !ok || e.HTTPStatus() != 409 {
				t.Errorf("officer %d: %v", i, err)
			}
		}
		got := must[workflow.Case](t, "read")(f.svc.Get(f.ctx, f.officer, c.ID))
		if winners != 1 || got.Version != 2 {
			t.Fatalf("%d claims won, version %d", winners, got.Version)
		}
		var holder authz.Subject
		for _, o := range officers {
			if o.String() == got.ClaimedBy {
				holder = o
			}
		}
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = f.svc.Decide(f.ctx, holder, c.ID, workflow.Decision{Outcome: workflow.Approve, Version: 2})
			})
		}
		wg.Wait()
		winners = 0
		for _, err := range errs {
			if err == nil {
				winners++
			} else if !strings.HasPrefix(err.Error(), "workflow.") {
				t.Errorf("decide: %v", err)
			}
		}
		got = must[workflow.Case](t, "read")(f.svc.Get(f.ctx, f.officer, c.ID))
		if winners != 1 || got.Step != workflow.StepReview || got.Version != 3 {
			t.Fatalf("%d decisions won; step %s version %d", winners, got.Step, got.Version)
		}
	}, sources...)
}

func TestOpenValidation(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		good := workflow.OpenCase{Definition: serviceDef.Key, Title: "标题", Ref: "application:1", Applicant: f.citizen, DeptID: deptTY, Division: "140105"}
		must[workflow.Case](t, "open")(f.svc.Open(f.ctx, good))
		_, err := f.svc.Open(f.ctx, good)
		wantErr(t, "same ref twice", err, workflow.ErrDuplicateRef)
		bad := []struct {
			name string
			mod  func(*workflow.OpenCase)
			code string
		}{
			{"unknown definition", func(o *workflow.OpenCase) { o.Definition = "service:none" }, "workflow.definition_unknown"},
			{"no title", func(o *workflow.OpenCase) { o.Title = " " }, "workflow.case.title"},
			{"no ref", func(o *workflow.OpenCase) { o.Ref = "" }, "workflow.case.ref"},
			{"no applicant", func(o *workflow.OpenCase) { o.Applicant = authz.Subject{} }, "workflow.case.applicant"},
			{"no department", func(o *workflow.OpenCase) { o.DeptID = "" }, "workflow.case.dept"},
			{"bad division", func(o *workflow.OpenCase) { o.Division = "14010" }, "workflow.case.division"},
			{"bad data key", func(o *workflow.OpenCase) { o.Data = map[string]string{"身份证": "x"} }, "workflow.case.data"},
			{"long data value", func(o *workflow.OpenCase) { o.Data = map[string]string{"k": strings.Repeat("长", 201)} }, "workflow.case.data"},
		}
		for i, tc := range bad {
			in := good
			in.Ref = "application:bad-" + string(rune('a'+i))
			tc.mod(&in)
			_, err := f.svc.Open(f.ctx, in)
			if e, ok := i18n.As(err); !ok || e.Code != tc.code || e.Msg.EN == "" {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		// The applicant's own transaction rolls back with the case: nothing is left behind.
		var n int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM workflow_cases`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d cases (%v)", n, err)
		}
		rollback := errors.New("caller fails after opening")
		err = d.InTx(f.ctx, func(tx *db.Tx) error {
			in := good
			in.Ref = "application:rolled-back"
			if _, err := f.svc.OpenTx(f.ctx, tx, in); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d events after a rolled-back open (%v)", n, err)
		}
	}, sources...)
}

func TestDefinitionVersions(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		if err := f.svc.Define(f.ctx, serviceDef); err != nil {
			t.Fatalf("defining again: %v", err)
		}
		changed := serviceDef
		changed.Steps = slices.Clone(serviceDef.Steps)
		changed.Steps[1].Days = 5
		wantErr(t, "same version, other content", f.svc.Define(f.ctx, changed), workflow.ErrDefinitionChanged)
		old := f.open(serviceDef.Key)
		changed.Version = 2
		changed.Steps = changed.Steps[:2]
		if err := f.svc.Define(f.ctx, changed); err != nil {
			t.Fatal(err)
		}
		// Unknown to the policy: nobody could act on the step.
		bad := changed
		bad.Version = 3
		bad.Steps = []workflow.Step{{Key: "x", Name: "x", Role: "auditor"}}
		if err := f.svc.Define(f.ctx, bad); err == nil || !strings.Contains(err.Error(), "steps[0].role") {
			t.Errorf("auditor step: %v", err)
		}
		nu := f.open(serviceDef.Key)
		if nu.DefinitionVersion != 2 || old.DefinitionVersion != 1 {
			t.Fatalf("versions %d %d", old.DefinitionVersion, nu.DefinitionVersion)
		}
		// The old case keeps its four steps.
		for _, step := range []string{workflow.StepAccept, workflow.StepReview, workflow.StepDecide} {
			actor := f.officer
			if step == workflow.StepDecide {
				actor = f.leader
			}
			must[workflow.Case](t, "claim "+step)(f.svc.Claim(f.ctx, actor, old.ID))
			c := must[workflow.Case](t, "approve "+step)(f.svc.Decide(f.ctx, actor, old.ID, workflow.Decision{Outcome: workflow.Approve}))
			if c.State != workflow.StateOpen {
				t.Fatalf("old case closed after %s", step)
			}
		}
		def := must[workflow.Definition](t, "latest")(f.svc.GetDefinition(f.ctx, serviceDef.Key, 0))
		if def.Version != 2 || len(def.Steps) != 2 {
			t.Errorf("latest %+v", def)
		}
		// A pack loader: the same content is the version in force, other content the next.
		changed.Version = 99
		if got := must[workflow.Definition](t, "define latest")(f.svc.DefineLatest(f.ctx, changed)); got.Version != 2 {
			t.Errorf("unchanged content got version %d", got.Version)
		}
		changed.Name = "个体工商户设立登记（新）"
		if got := must[workflow.Definition](t, "define latest")(f.svc.DefineLatest(f.ctx, changed)); got.Version != 3 || got.Name != changed.Name {
			t.Errorf("changed content got %+v", got)
		}
		changed.Key = "service:new-item"
		if got := must[workflow.Definition](t, "define latest")(f.svc.DefineLatest(f.ctx, changed)); got.Version != 1 {
			t.Errorf("new key got version %d", got.Version)
		}
	}, sources...)
}

// A definition whose applicant cannot answer corrections (a rating rectification) refuses
// the request: suspending such a case would stop it for good.
func TestNoCorrection(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, workflow.Options{})
		def := workflow.Definition{Key: "rating.rectify-test", Version: 1, Name: "差评整改", NoCorrection: true,
			Steps: []workflow.Step{{Key: "rectify", Name: "整改", Days: 5}}}
		if err := f.svc.Define(f.ctx, def); err != nil {
			t.Fatal(err)
		}
		c := f.open(def.Key)
		must[workflow.Case](t, "claim")(f.svc.Claim(f.ctx, f.officer, c.ID))
		_, err := f.svc.RequestCorrection(f.ctx, f.officer, c.ID, "请补充", []string{"材料"})
		wantErr(t, "correction of a rectification", err, workflow.ErrNoCorrection)
		if got := must[workflow.Case](t, "get")(f.svc.Get(f.ctx, f.officer, c.ID)); got.State != workflow.StateOpen {
			t.Fatalf("state %s", got.State)
		}
	}, sources...)
}

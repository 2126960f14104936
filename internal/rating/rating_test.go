package rating_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/rating"
	"github.com/dgov/dgov/internal/workflow"
)

func TestRate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, rating.Options{})
		tests := []struct {
			name      string
			actor     authz.Subject
			outcome   workflow.Outcome
			in        rating.Input
			wantTags  []string
			wantCase  bool
			wantLevel rating.Level
		}{
			{name: "five stars with praise", in: rating.Input{Level: 5, Tags: []string{"stable", "fast", "fast"}, Comment: "  很方便  "},
				wantTags: []string{"fast", "stable"}, wantLevel: 5},
			{name: "four stars, app", in: rating.Input{Level: 4, Channel: rating.ChannelApp}, wantTags: []string{}, wantLevel: 4},
			{name: "three stars says what could be better", in: rating.Input{Level: 3, Tags: []string{"many_materials"}},
				wantTags: []string{"many_materials"}, wantLevel: 3},
			{name: "two stars opens a rectification", in: rating.Input{Level: 2, Tags: []string{"slow"}}, wantTags: []string{"slow"},
				wantCase: true, wantLevel: 2},
			{name: "one star with only a text", in: rating.Input{Level: 1, Comment: "材料要求前后不一致"}, wantTags: []string{},
				wantCase: true, wantLevel: 1},
			{name: "a rejected application can be rated", outcome: workflow.OutcomeRejected,
				in: rating.Input{Level: 1, Channel: rating.ChannelHall, Tags: []string{"unfriendly"}}, wantTags: []string{"unfriendly"},
				wantCase: true, wantLevel: 1},
			{name: "an enterprise rates its own application", actor: f.enterprise, in: rating.Input{Level: 5, Channel: rating.ChannelPhone,
				Tags: []string{"skilled"}}, wantTags: []string{"skilled"}, wantLevel: 5},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				actor := tc.actor
				if actor.Kind == "" {
					actor = f.citizen
				}
				app := f.application(appSpec{applicant: actor, outcome: tc.outcome})
				tc.in.ApplicationID = app.ID
				r := f.rate(actor, tc.in)
				if r.Level != tc.wantLevel || r.ApplicationID != app.ID || r.CaseID != app.CaseID || r.DeptID != deptTY ||
					r.DeptName != deptNames[deptTY] || r.Division != "140105" || r.ItemCode != app.ItemCode || !r.Rater.Is(actor) {
					t.Errorf("rating = %+v", r)
				}
				if !slices.Equal(r.Tags, tc.wantTags) {
					t.Errorf("tags = %v, want %v", r.Tags, tc.wantTags)
				}
				if r.Channel == "" || r.Comment != "" && r.Comment[0] == ' ' {
					t.Errorf("channel %q comment %q not normalised", r.Channel, r.Comment)
				}
				got := must[rating.Rating](t, "get")(f.svc.Get(f.ctx, actor, r.ID))
				if got.Level != r.Level || !slices.Equal(got.Tags, r.Tags) || got.Comment != r.Comment {
					t.Errorf("stored %+v, rated %+v", got, r)
				}
				if (r.Rectification != nil) != tc.wantCase {
					t.Fatalf("rectification = %+v, want one: %v", r.Rectification, tc.wantCase)
				}
				if got := f.audits("rating:" + r.ID); !slices.Equal(got, []string{"rating.rate"}) {
					t.Errorf("audit = %v", got)
				}
				if !tc.wantCase {
					return
				}
				// The rectification is a case of the handling department, due in 5 working days.
				rc := r.Rectification
				c := must[workflow.Case](t, "rectification case")(f.cases.Get(f.ctx, f.officer, rc.CaseID))
				want := bj(2026, 3, 9, 10, 0) // Monday + 5 working days
				if c.Definition != rating.RectifyDefinitionKey || c.Step != rating.StepRectify || c.DeptID != deptTY ||
					c.Ref != "rating:"+r.ID || !c.Applicant.Is(actor) || c.StepDueAt == nil || !c.StepDueAt.Equal(want) {
					t.Errorf("rectification case = %+v, due %v want %v", c, c.StepDueAt, want)
				}
				if rc.State != rating.RectifyOpen || rc.DueAt == nil || !rc.DueAt.Equal(want) {
					t.Errorf("rectification = %+v", rc)
				}
				q := must[workflow.QueuePage](t, "queue")(f.cases.Queue(f.ctx, f.officer, workflow.QueueFilter{Definition: rating.RectifyDefinitionKey, Limit: 100}))
				if !slices.ContainsFunc(q.Cases, func(c workflow.Case) bool { return c.ID == rc.CaseID }) {
					t.Errorf("the rectification is not in the department's queue")
				}
			})
		}
		if got := f.subjects("dgov.rating."); len(got) != len(tests) || got[0] != rating.SubjectRated {
			t.Errorf("rating events = %v", got)
		}
	}, sources...)
}

func TestRateRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, rating.Options{})
		done := f.application(appSpec{})
		open := f.application(appSpec{outcome: "open"})
		withdrawn := f.application(appSpec{outcome: workflow.OutcomeWithdrawn})
		// An application whose lookup names another application's case.
		other := f.application(appSpec{})
		f.apps.apps["app-forged"] = appEntry{app: rating.Application{ID: "app-forged", CaseID: other.CaseID, DeptID: deptTY}, applicant: f.citizen}
		tests := []struct {
			name  string
			actor authz.Subject
			in    rating.Input
			want  *i18n.Error
		}{
			{"anonymous", authz.Subject{}, rating.Input{ApplicationID: done.ID, Level: 5}, i18n.ErrUnauthorized},
			{"staff never rate for anyone", f.officer, rating.Input{ApplicationID: done.ID, Level: 5}, rating.ErrNotApplicant},
			{"someone else's application", f.citizen2, rating.Input{ApplicationID: done.ID, Level: 5}, i18n.ErrNotFound},
			{"unknown application", f.citizen, rating.Input{ApplicationID: "app-none", Level: 5}, i18n.ErrNotFound},
			{"a lookup naming another case", f.citizen, rating.Input{ApplicationID: "app-forged", Level: 5}, i18n.ErrNotFound},
			{"still open", f.citizen, rating.Input{ApplicationID: open.ID, Level: 5}, rating.ErrNotCompleted},
			{"withdrawn", f.citizen, rating.Input{ApplicationID: withdrawn.ID, Level: 5}, rating.ErrNotCompleted},
			{"no level", f.citizen, rating.Input{ApplicationID: done.ID}, rating.ErrLevel},
			{"level 6", f.citizen, rating.Input{ApplicationID: done.ID, Level: 6}, rating.ErrLevel},
			{"unknown channel", f.citizen, rating.Input{ApplicationID: done.ID, Level: 5, Channel: "fax"}, rating.ErrChannel},
			{"a poor rating without a reason", f.citizen, rating.Input{ApplicationID: done.ID, Level: 1, Comment: "   "}, rating.ErrReasonRequired},
			{"praise with one star", f.citizen, rating.Input{ApplicationID: done.ID, Level: 1, Tags: []string{"fast"}},
				&i18n.Error{Code: "rating.tag_level", Status: 400}},
			{"an offline tag on the web", f.citizen, rating.Input{ApplicationID: done.ID, Level: 1, Tags: []string{"unfriendly"}},
				&i18n.Error{Code: "rating.tag", Status: 400}},
			{"control characters", f.citizen, rating.Input{ApplicationID: done.ID, Level: 4, Comment: "好\x00"},
				&i18n.Error{Code: "rating.comment", Status: 400}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.svc.Rate(f.ctx, tc.actor, tc.in)
				if tc.want.Msg.ZH == "" {
					tc.want.Msg = i18n.T("x", "x") // only the code and status are compared
				}
				wantErr(t, tc.name, err, tc.want)
			})
		}
		var n int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM ratings`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d ratings stored after refusals (%v)", n, err)
		}
	}, sources...)
}

func TestRevise(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, rating.Options{})
		// Softened once: the rectification opened by the first rating continues.
		app := f.application(appSpec{})
		first := f.rate(f.citizen, rating.Input{ApplicationID: app.ID, Level: 1, Tags: []string{"slow"}})
		f.clock.add(2 * time.Hour)
		if ok, _ := f.svc.Revisable(first); !ok {
			t.Errorf("not revisable within the window")
		}
		second := f.rate(f.citizen, rating.Input{ApplicationID: app.ID, Level: 4, Tags: []string{"fast"}, Comment: "后来很快解决了"})
		if second.ID != first.ID || second.Level != 4 || second.FirstLevel != 1 || second.RevisedAt == nil ||
			!slices.Equal(second.Tags, []string{"fast"}) || second.Rectification == nil || second.Rectification.CaseID != first.Rectification.CaseID {
			t.Errorf("revised = %+v", second)
		}
		if ok, _ := f.svc.Revisable(second); ok {
			t.Errorf("revisable twice")
		}
		_, err := f.svc.Rate(f.ctx, f.citizen, rating.Input{ApplicationID: app.ID, Level: 5})
		wantErr(t, "second revision", err, rating.ErrAlreadyRevised)
		if got := f.audits("rating:" + first.ID); !slices.Equal(got, []string{"rating.rate", "rating.revise"}) {
			t.Errorf("audit = %v", got)
		}

		// Sharpened: a revision to 差评 opens the rectification the first rating did not.
		app2 := f.application(appSpec{})
		r := f.rate(f.citizen, rating.Input{ApplicationID: app2.ID, Level: 3})
		if r.Rectification != nil {
			t.Fatalf("rectification for 3 stars")
		}
		r = f.rate(f.citizen, rating.Input{ApplicationID: app2.ID, Level: 2, Comment: "复核后仍不满意"})
		if r.Rectification == nil || r.Rectification.State != rating.RectifyOpen {
			t.Errorf("no rectification after a revision to 2 stars: %+v", r)
		}

		// Too late.
		app3 := f.application(appSpec{})
		f.rate(f.citizen, rating.Input{ApplicationID: app3.ID, Level: 5})
		f.clock.add(7*24*time.Hour + time.Minute)
		_, err = f.svc.Rate(f.ctx, f.citizen, rating.Input{ApplicationID: app3.ID, Level: 4})
		wantErr(t, "late revision", err, rating.ErrReviseClosed)
		if got := f.subjects("dgov.rating."); !slices.Equal(got, []string{rating.SubjectRated, rating.SubjectRevised,
			rating.SubjectRated, rating.SubjectRevised, rating.SubjectRated}) {
			t.Errorf("events = %v", got)
		}
	}, sources...)
}

func TestRectification(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, rating.Options{RectifyDays: 2})
		poor := func() rating.Rating {
			app := f.application(appSpec{})
			return f.rate(f.citizen, rating.Input{ApplicationID: app.ID, Level: 1, Tags: []string{"visits"}, Comment: "跑了三次"})
		}

		// On time, confirmed at the callback.
		r := poor()
		if r.Rectification.DueAt == nil || !r.Rectification.DueAt.Equal(bj(2026, 3, 4, 10, 0)) {
			t.Errorf("due %v with RectifyDays 2", r.Rectification.DueAt)
		}
		_, err := f.svc.Rectify(f.ctx, f.officer, r.ID, "已约谈窗口人员")
		wantErr(t, "rectify before claiming", err, workflow.ErrNotClaimed)
		_, err = f.svc.Claim(f.ctx, f.dtOfficer, r.ID)
		wantErr(t, "another department's officer", err, i18n.ErrNotFound)
		must[rating.Rating](t, "claim")(f.svc.Claim(f.ctx, f.officer, r.ID))
		f.clock.add(24 * time.Hour)
		r = must[rating.Rating](t, "rectify")(f.svc.Rectify(f.ctx, f.officer, r.ID, "已约谈窗口人员，材料清单已公开"))
		rc := r.Rectification
		if rc.State != rating.RectifyCallback || !rc.OnTime || rc.RectifiedAt == nil || rc.Result != "已约谈窗口人员，材料清单已公开" {
			t.Errorf("after rectify: %+v", rc)
		}
		must[rating.Rating](t, "claim callback")(f.svc.Claim(f.ctx, f.officer2, r.ID))
		r = must[rating.Rating](t, "callback")(f.svc.Callback(f.ctx, f.officer2, r.ID, rating.CallbackConfirmed, "电话回访，群众表示认可"))
		rc = r.Rectification
		if rc.State != rating.RectifyDone || !rc.Confirmed || rc.CallbackAt == nil || rc.CallbackNote != "电话回访，群众表示认可" || !rc.OnTime {
			t.Errorf("after callback: %+v", rc)
		}
		// The callback reopens the revision window: the applicant may now change their mind.
		f.clock.add(10 * 24 * time.Hour)
		if ok, _ := f.svc.Revisable(r); ok {
			t.Errorf("revisable 10 days after the callback")
		}

		// Late, sent back once at the callback, then closed unresolved.
		f.clock.set(bj(2026, 3, 16, 9, 0)) // a Monday
		r = poor()
		must[rating.Rating](t, "claim")(f.svc.Claim(f.ctx, f.officer, r.ID))
		f.clock.add(3 * 24 * time.Hour) // Thursday: past the 2 working days
		r = must[rating.Rating](t, "late rectify")(f.svc.Rectify(f.ctx, f.officer, r.ID, "已整改"))
		if r.Rectification.OnTime || r.Rectification.State != rating.RectifyCallback {
			t.Errorf("late rectification: %+v", r.Rectification)
		}
		must[rating.Rating](t, "claim callback")(f.svc.Claim(f.ctx, f.officer, r.ID))
		_, err = f.svc.Callback(f.ctx, f.officer, r.ID, rating.CallbackRedo, "")
		wantErr(t, "redo without a note", err, workflow.ErrCommentRequired)
		r = must[rating.Rating](t, "redo")(f.svc.Callback(f.ctx, f.officer, r.ID, rating.CallbackRedo, "群众不认可，重新整改"))
		if rc := r.Rectification; rc.State != rating.RectifyOpen || rc.RectifiedAt != nil || rc.Result != "" || rc.OnTime ||
			rc.DueAt == nil || !rc.DueAt.Equal(bj(2026, 3, 23, 9, 0)) {
			t.Errorf("after redo: %+v (due %v)", rc, rc.DueAt)
		}
		must[rating.Rating](t, "claim")(f.svc.Claim(f.ctx, f.officer, r.ID))
		r = must[rating.Rating](t, "rectify again")(f.svc.Rectify(f.ctx, f.officer, r.ID, "更换窗口人员"))
		if !r.Rectification.OnTime {
			t.Errorf("second rectification within its fresh limit: %+v", r.Rectification)
		}
		must[rating.Rating](t, "claim callback")(f.svc.Claim(f.ctx, f.officer, r.ID))
		r = must[rating.Rating](t, "unresolved")(f.svc.Callback(f.ctx, f.officer, r.ID, rating.CallbackUnresolved, "三次电话未接通"))
		if rc := r.Rectification; rc.State != rating.RectifyDone || rc.Confirmed || rc.CallbackNote != "三次电话未接通" {
			t.Errorf("unresolved: %+v", rc)
		}

		// Refused at 整改, with reasons.
		r = poor()
		must[rating.Rating](t, "claim")(f.svc.Claim(f.ctx, f.officer, r.ID))
		_, err = f.svc.Callback(f.ctx, f.officer, r.ID, rating.CallbackConfirmed, "")
		wantErr(t, "callback at 整改", err, workflow.ErrState)
		r = must[rating.Rating](t, "refuse")(f.svc.Refuse(f.ctx, f.officer, r.ID, "评价内容与本事项无关"))
		if rc := r.Rectification; rc.State != rating.RectifyRefused || rc.Result != "评价内容与本事项无关" || rc.RectifiedAt != nil {
			t.Errorf("refused: %+v", rc)
		}

		// Not a poor rating: nothing to act on.
		app := f.application(appSpec{})
		good := f.rate(f.citizen, rating.Input{ApplicationID: app.ID, Level: 5})
		_, err = f.svc.Claim(f.ctx, f.officer, good.ID)
		wantErr(t, "claim a good rating", err, rating.ErrNotPoor)

		// One event per change of state: callback, done; callback, open, callback, done; refused.
		var states []rating.RectifyState
		for _, ev := range f.outboxEvents(rating.SubjectRectification) {
			var p rating.EventPayload
			if err := ev.Decode(&p); err != nil {
				t.Fatal(err)
			}
			states = append(states, p.RectifyState)
		}
		want := []rating.RectifyState{rating.RectifyCallback, rating.RectifyDone, rating.RectifyCallback, rating.RectifyOpen,
			rating.RectifyCallback, rating.RectifyDone, rating.RectifyRefused}
		if !slices.Equal(states, want) {
			t.Errorf("rectification events %v, want %v", states, want)
		}
	}, sources...)
}

// TestSyncFromEvents: a rectification acted on through the case engine directly (the console's
// case pages) reaches the rating through the consumer and, failing that, the reconciling job.
func TestSyncFromEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, rating.Options{})
		app := f.application(appSpec{})
		r := f.rate(f.citizen, rating.Input{ApplicationID: app.ID, Level: 2, Tags: []string{"hard_to_use"}})
		id := r.Rectification.CaseID
		must[workflow.Case](t, "claim")(f.cases.Claim(f.ctx, f.officer, id))
		must[workflow.Case](t, "rectify")(f.cases.Decide(f.ctx, f.officer, id, workflow.Decision{Outcome: workflow.Approve, Comment: "优化了页面"}))
		evs := f.outboxEvents(workflow.SubjectPrefix)
		// Deliver every case event, twice and last-first: the outcome is the same.
		for i := len(evs) - 1; i >= 0; i-- {
			for range 2 {
				if err := f.svc.OnCaseEvent(f.ctx, evs[i]); err != nil {
					t.Fatalf("event %s: %v", evs[i].Subject, err)
				}
			}
		}
		got := must[rating.Rating](t, "get")(f.svc.Get(f.ctx, f.citizen, r.ID))
		if rc := got.Rectification; rc.State != rating.RectifyCallback || rc.Result != "优化了页面" || !rc.OnTime {
			t.Errorf("after events: %+v", rc)
		}
		must[workflow.Case](t, "claim")(f.cases.Claim(f.ctx, f.officer, id))
		must[workflow.Case](t, "callback")(f.cases.Decide(f.ctx, f.officer, id, workflow.Decision{Outcome: workflow.Approve, Comment: "已回访"}))
		n := must[int](t, "reconcile")(f.svc.Reconcile(f.ctx))
		if n != 1 {
			t.Errorf("reconciled %d, want 1", n)
		}
		got = must[rating.Rating](t, "get")(f.svc.Get(f.ctx, f.citizen, r.ID))
		if rc := got.Rectification; rc.State != rating.RectifyDone || !rc.Confirmed || rc.CallbackNote != "已回访" {
			t.Errorf("after reconcile: %+v", rc)
		}
		if n := must[int](t, "reconcile")(f.svc.Reconcile(f.ctx)); n != 0 {
			t.Errorf("reconciled %d after done", n)
		}
		if got := f.subjects(rating.SubjectRectification); len(got) != 2 {
			t.Errorf("rectification events = %v, want 2 (callback, done)", got)
		}
		// Other definitions' events are not ours.
		if err := f.svc.OnCaseEvent(f.ctx, f.outboxEvents(workflow.SubjectPrefix)[0]); err != nil {
			t.Errorf("a service case event: %v", err)
		}
	}, sources...)
}

func TestVisibility(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, rating.Options{})
		app := f.application(appSpec{})
		r := f.rate(f.citizen, rating.Input{ApplicationID: app.ID, Level: 2, Comment: "慢"})
		for _, tc := range []struct {
			name  string
			actor authz.Subject
			want  *i18n.Error // nil: visible
		}{
			{"the rater", f.citizen, nil},
			{"the department's officer", f.officer, nil},
			{"a supervisor of the city", f.supervisor, nil},
			{"another citizen", f.citizen2, i18n.ErrNotFound},
			{"another department", f.rsOfficer, i18n.ErrNotFound},
			{"another city's supervisor", f.dtSupervisor, i18n.ErrNotFound},
			{"an auditor", f.auditor, i18n.ErrNotFound},
			{"anonymous", authz.Subject{}, i18n.ErrUnauthorized},
		} {
			_, err := f.svc.Get(f.ctx, tc.actor, r.ID)
			if tc.want == nil {
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
				}
				continue
			}
			wantErr(t, tc.name, err, tc.want)
		}
		mine := must[*rating.Rating](t, "mine")(f.svc.Mine(f.ctx, f.citizen, app.ID))
		if mine == nil || mine.ID != r.ID {
			t.Errorf("mine = %+v", mine)
		}
		if other := must[*rating.Rating](t, "mine")(f.svc.Mine(f.ctx, f.citizen2, app.ID)); other != nil {
			t.Errorf("another citizen's Mine = %+v", other)
		}
		ok, got, err := f.svc.Rateable(f.ctx, f.citizen, app.ID)
		if err != nil || !ok || got == nil {
			t.Errorf("rateable = %v %v %v", ok, got, err)
		}
		open := f.application(appSpec{outcome: "open"})
		if ok, _, err := f.svc.Rateable(f.ctx, f.citizen, open.ID); ok || err != nil {
			t.Errorf("an open application rateable: %v %v", ok, err)
		}
	}, sources...)
}

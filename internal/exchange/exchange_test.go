package exchange_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok || e.Code != code || e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Fatalf("%s: got %v, want a bilingual %s", what, err, code)
	}
}

func wantProblem(t *testing.T, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.problem.Code != code || a.problem.TitleZH == "" || a.problem.TitleEN == "" {
		t.Fatalf("%s: status %d code %q, want %d %s: %s", what, a.status, a.problem.Code, status, code, a.body)
	}
	if a.receipt != "" {
		t.Errorf("%s: a refusal carries a receipt", what)
	}
}

func TestIndexKindMatchesBaseLibrary(t *testing.T) {
	if exchange.IndexResidentID != baselib.IndexResidentID {
		t.Fatal("the access log's blind-index kind must be the population library's, or ReadsOf finds nothing")
	}
}

// The scenario, end to end: 公安 provides a population resource on conditions; 人社
// applies; the provider answers within ten working days (across the Spring Festival); the
// gateway serves exactly the approved items within the consumer's division, logs, signs.
func TestSharingScenario(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, exchange.Options{RatePerMinute: 5})
		ctx := f.ctx
		res := f.publish("人口基本信息", catalog.ShareConditional, "用于社会保障、政务服务身份核验")
		must[exchange.Binding](t, "attach")(f.svc.Attach(ctx, f.gaOfficer, res.ID, "population", ""))
		if _, err := f.svc.Attach(ctx, f.tyRS, res.ID, "population", ""); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("a consumer attached the provider's resource: %v", err)
		}

		// --- application ---
		all := []string{"姓名", "身份证号", "住址"}
		_, _, err := f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: all})
		wantCode(t, "no purpose", err, "exchange.purpose.required")
		_, _, err = f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: []string{"学历"}, Purpose: "x"})
		wantCode(t, "unknown item", err, "exchange.fields.unknown")
		_, _, err = f.svc.Apply(ctx, f.gaOfficer, exchange.ApplyInput{ResourceID: res.ID, Fields: all, Purpose: "自用"})
		wantCode(t, "own resource", err, "exchange.own_resource")

		req, g, err := f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: all, Purpose: "社会保险待遇资格认证"})
		if err != nil {
			t.Fatal(err)
		}
		if req.Status != exchange.StatusPending || g != nil || req.DueAt == nil {
			t.Fatalf("conditional resource: %+v grant %v", req, g)
		}
		// Friday 24 Jan + 10 working days, across the Spring Festival: 26 Jan (a Sunday
		// worked), 27 Jan, 5–7 Feb, 8 Feb (a Saturday worked), 10–13 Feb.
		wantDue := time.Date(2025, 2, 13, 10, 0, 0, 0, calendar.Beijing)
		if !req.DueAt.Equal(wantDue) {
			t.Errorf("due %s, want %s", req.DueAt.In(calendar.Beijing), wantDue)
		}
		if n := f.svc.Calendar().WorkdaysBetween(req.CreatedAt, *req.DueAt); n != 10 {
			t.Errorf("%d working days to the deadline", n)
		}
		if _, _, err := f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: all, Purpose: "再次申请"}); !errors.Is(err, exchange.ErrDuplicate) {
			t.Errorf("second pending request: %v", err)
		}

		// --- the provider's lists ---
		pend := must[[]exchange.SharingRequest](t, "pending")(f.svc.Pending(ctx, f.gaOfficer, f.dept["140000/ga"].ID))
		if len(pend) != 1 || pend[0].ID != req.ID || pend[0].Overdue {
			t.Fatalf("pending: %+v", pend)
		}
		if _, err := f.svc.Pending(ctx, f.tyRS, f.dept["140000/ga"].ID); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("a city officer read the province's pending list: %v", err)
		}
		f.clock.set(time.Date(2025, 2, 13, 10, 0, 1, 0, calendar.Beijing)) // one second late
		over := must[[]exchange.SharingRequest](t, "overdue")(f.svc.Overdue(ctx, f.gaOfficer, f.dept["140000/ga"].ID))
		if len(over) != 1 || !over[0].Overdue {
			t.Fatalf("overdue: %+v", over)
		}
		resp := must[[]exchange.Responsibility](t, "responsibilities")(f.svc.Responsibilities(ctx, f.gaOfficer, f.dept["140000/ga"].ID))
		if len(resp) != 1 || resp[0].Kind != "answer" || !resp[0].Overdue || resp[0].ConsumerDeptName != f.dept["140100/rs"].Name || !resp[0].Due.Equal(wantDue) {
			t.Fatalf("responsibility list: %+v", resp)
		}

		// --- the answer ---
		_, _, err = f.svc.Decide(ctx, f.gaOfficer, req.ID, exchange.Decision{Approve: false})
		wantCode(t, "refusal without reasons", err, "exchange.reason_required")
		if _, _, err := f.svc.Decide(ctx, f.tyRS, req.ID, exchange.Decision{Approve: true}); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("the consumer answered its own request: %v", err)
		}
		_, _, err = f.svc.Decide(ctx, f.gaOfficer, req.ID, exchange.Decision{Approve: true, Fields: []string{"学历"}})
		wantCode(t, "approving an item not asked for", err, "exchange.fields.not_requested")
		req, g, err = f.svc.Decide(ctx, f.gaOfficer, req.ID, exchange.Decision{Approve: true, Fields: []string{"身份证号", "姓名"},
			Reason: "住址不予共享：涉及个人隐私", RatePerMinute: 1000, DailyQuota: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if req.Status != exchange.StatusApproved || g == nil || !slices.Equal(g.Fields, []string{"姓名", "身份证号"}) || g.RowScope != "140100" {
			t.Fatalf("approval: %+v grant %+v", req, g)
		}
		if _, _, err := f.svc.Decide(ctx, f.gaOfficer, req.ID, exchange.Decision{Approve: true}); !errors.Is(err, exchange.ErrState) {
			t.Errorf("second answer: %v", err)
		}
		resp = must[[]exchange.Responsibility](t, "responsibilities")(f.svc.Responsibilities(ctx, f.gaOfficer, f.dept["140000/ga"].ID))
		if len(resp) != 1 || resp[0].Kind != "provide" || resp[0].Bound || resp[0].GrantID != g.ID {
			t.Fatalf("responsibility list after approval: %+v", resp)
		}

		// --- the consumer's system ---
		ty := f.newConsumer(f.dept["140100/rs"])
		other := f.newConsumer(f.dept["140105/rs"])
		if _, err := f.svc.BindClient(ctx, f.tyRS, g.ID, ty.client.ID); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("an officer without exchange.bind bound a client: %v", err)
		}
		if _, err := f.svc.BindClient(ctx, f.tyRSAdmin, g.ID, other.client.ID); !errors.Is(err, exchange.ErrClientOwner) {
			t.Errorf("bound another department's client: %v", err)
		}
		must[exchange.Grant](t, "bind")(f.svc.BindClient(ctx, f.tyRSAdmin, g.ID, ty.client.ID))
		tok := ty.token(t)
		base := "/api/v1/exchange/" + res.ID
		const purpose = "社会保险待遇资格认证：核验参保人身份"

		// Exactly the approved items, with a receipt that verifies offline.
		a := f.call(t, "GET", base+"/records/"+zhang, tok, purpose, nil)
		if a.status != 200 {
			t.Fatalf("lookup: %d %s", a.status, a.body)
		}
		var lr exchange.LookupResult
		if err := json.Unmarshal(a.body, &lr); err != nil {
			t.Fatal(err)
		}
		if len(lr.Record) != 2 || lr.Record["姓名"] != "张伟" || lr.Record["身份证号"] != zhang {
			t.Errorf("record %v, want exactly 姓名 and 身份证号", lr.Record)
		}
		rc, err := exchange.ParseReceipt(a.receipt)
		if err != nil {
			t.Fatalf("receipt: %v", err)
		}
		pem := f.publicKeyPEM(t)
		if err := exchange.VerifyReceipt(rc, a.body, pem); err != nil {
			t.Fatalf("receipt does not verify: %v", err)
		}
		if rc.ClientID != ty.client.ID || rc.Purpose != purpose || rc.RowCount != 1 || rc.Resource != res.ID || !strings.Contains(rc.Target, zhang) {
			t.Errorf("receipt content: %+v", rc)
		}
		tampered := []byte(strings.Replace(string(a.body), "张伟", "张三", 1))
		if err := exchange.VerifyReceipt(rc, tampered, pem); !errors.Is(err, exchange.ErrReceiptBody) {
			t.Errorf("tampered body: %v", err)
		}
		forged := rc
		forged.Purpose = "别的用途"
		if err := exchange.VerifyReceipt(forged, a.body, pem); !errors.Is(err, exchange.ErrReceiptRequest) {
			t.Errorf("altered purpose: %v", err)
		}
		forged = rc
		forged.RowCount = 0
		if err := exchange.VerifyReceipt(forged, a.body, pem); err == nil {
			t.Error("altered row count verified")
		}
		// A saved receipt (JSON) parses too.
		saved, _ := json.Marshal(rc)
		if back, err := exchange.ParseReceipt(string(saved)); err != nil || exchange.VerifyReceipt(back, a.body, pem) != nil {
			t.Errorf("saved receipt: %v", err)
		}

		// POST lookup keeps the number out of the URL.
		a = f.call(t, "POST", base+"/lookup", tok, purpose, strings.NewReader(`{"key":"`+strings.ToLower(zhao)+`"}`))
		if a.status != 200 || !strings.Contains(string(a.body), "赵敏") || strings.Contains(string(a.body), "住址") {
			t.Fatalf("POST lookup: %d %s", a.status, a.body)
		}
		if rc, err := exchange.ParseReceipt(a.receipt); err != nil || rc.BodySM3 == "" || exchange.VerifyReceipt(rc, a.body, pem) != nil {
			t.Errorf("POST receipt: %v %+v", err, rc)
		}

		// Refusals.
		wantProblem(t, "an item outside the grant", f.call(t, "GET", base+"/records/"+zhang+"?fields=住址", tok, purpose, nil), 403, "exchange.field_not_granted")
		wantProblem(t, "filtering on an item outside the grant", f.call(t, "GET", base+"/records?住址=坞城路92号", tok, purpose, nil), 403, "exchange.field_not_granted")
		wantProblem(t, "no purpose", f.call(t, "GET", base+"/records/"+zhang, tok, "", nil), 400, "exchange.purpose.required")
		wantProblem(t, "no token", f.call(t, "GET", base+"/records/"+zhang, "", purpose, nil), 401, "unauthorized")
		wantProblem(t, "a forged token", f.call(t, "GET", base+"/records/"+zhang, "not-a-token", purpose, nil), 401, "unauthorized")
		wantProblem(t, "a client without a grant", f.call(t, "GET", base+"/records/"+zhang, other.token(t), purpose, nil), 403, "exchange.no_grant")
		noScope := f.newConsumer(f.dept["140100/rs"], "other.scope")
		wantProblem(t, "a token without the exchange scope", f.call(t, "GET", base+"/records/"+zhang, noScope.token(t), purpose, nil), 403, "exchange.scope")
		// 大同's resident is outside 太原's scope: answered as missing.
		wantProblem(t, "a row outside the scope", f.call(t, "GET", base+"/records/"+wang, tok, purpose, nil), 404, "not_found")

		// A query: only rows of 太原 (小店区, 迎泽区 and a 小店区 township), ID numbers masked,
		// in division order (the order of the division index that selects them).
		a = f.call(t, "GET", base+"/records?fields=姓名,身份证号&limit=10", tok, purpose, nil)
		if a.status != 200 {
			t.Fatalf("query: %d %s", a.status, a.body)
		}
		var qr exchange.QueryResult
		if err := json.Unmarshal(a.body, &qr); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range qr.Rows {
			names = append(names, r["姓名"])
			if len(r) != 2 || r["身份证号"] == "" || strings.Contains(r["身份证号"], zhang[6:14]) {
				t.Errorf("query row %v: want two items, the ID number masked", r)
			}
		}
		if !slices.Equal(names, []string{"张伟", "赵敏", "李娜"}) || qr.Count != 3 {
			t.Errorf("query rows %v", names)
		}
		if rc, err := exchange.ParseReceipt(a.receipt); err != nil || exchange.VerifyReceipt(rc, a.body, pem) != nil || rc.RowCount != 3 {
			t.Errorf("query receipt: %v", err)
		}
		a = f.call(t, "GET", base+"/records?姓名=王建国", tok, purpose, nil)
		if a.status != 200 || !strings.Contains(string(a.body), `"count":0`) {
			t.Errorf("query for a row outside the scope: %d %s", a.status, a.body)
		}
		a = f.call(t, "GET", base+"/records?limit=1&offset=2", tok, purpose, nil)
		if a.status != 200 || !strings.Contains(string(a.body), "李娜") || strings.Contains(string(a.body), "赵敏") {
			t.Errorf("paging within the scope: %d %s", a.status, a.body)
		}

		// --- the logs ---
		var calls, withRows int
		if err := d.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN row_count > 0 THEN 1 ELSE 0 END), 0) FROM exchange_access WHERE client_id = ?`,
			ty.client.ID).Scan(&calls, &withRows); err != nil {
			t.Fatal(err)
		}
		if calls != 6 || withRows != 4 { // 2 lookups, 1 lookup outside scope, 3 queries (one empty)
			t.Errorf("access log: %d calls, %d with rows", calls, withRows)
		}
		recs, err := f.log.List(ctx, audit.Filter{Action: exchange.ActionCall, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ok, denied int
		for _, r := range recs {
			switch r.Outcome {
			case audit.OutcomeOK:
				ok++
				var det map[string]any
				_ = json.Unmarshal(r.Detail, &det)
				if r.Actor != "client:"+ty.client.ID || det["purpose"] != purpose || det["consumer_dept"] != f.dept["140100/rs"].ID ||
					det["resource"] != res.ID || det["row_count"] == nil || det["fields"] == nil || r.RequestID == "" {
					t.Errorf("audit entry %+v %v", r, det)
				}
				if strings.Contains(string(r.Detail), zhang) {
					t.Error("an ID number in clear in the audit log")
				}
			case audit.OutcomeDenied:
				denied++
			}
		}
		if ok != 6 || denied != 4 { // denied: fields=住址, filter on 住址, no grant, no scope
			t.Errorf("audit: %d ok, %d denied", ok, denied)
		}
		if rep, err := f.log.Verify(ctx); err != nil || !rep.OK {
			t.Errorf("audit chain: %+v %v", rep, err)
		}

		// --- who read my data: the lookup, and the query that returned the record with the
		// (sealed, masked) ID number ---
		reads := must[[]exchange.Read](t, "reads")(f.svc.ReadsOf(ctx, f.svc.ResidentIndex(zhang)))
		var kinds []string
		for _, r := range reads {
			kinds = append(kinds, r.Kind)
			if r.ConsumerDeptName != f.dept["140100/rs"].Name || r.Purpose != purpose || r.Resource != "人口基本信息" {
				t.Errorf("read of zhang: %+v", r)
			}
		}
		if slices.Sort(kinds); !slices.Equal(kinds, []string{"lookup", "query"}) {
			t.Errorf("reads of zhang: %+v", reads)
		}
		if reads := must[[]exchange.Read](t, "reads")(f.svc.ReadsOf(ctx, f.svc.ResidentIndex(li))); len(reads) != 2 {
			t.Errorf("李娜 was returned by two queries: %+v", reads)
		}
		if reads := must[[]exchange.Read](t, "reads")(f.svc.ReadsOf(ctx, f.svc.ResidentIndex(wang))); len(reads) != 0 {
			t.Errorf("a lookup that returned nothing counts as a read: %+v", reads)
		}

		// --- revocation ends access at once ---
		must[exchange.Grant](t, "revoke")(f.svc.RevokeGrant(ctx, f.gaOfficer, g.ID, "用途已完成"))
		wantProblem(t, "after revocation", f.call(t, "GET", base+"/records/"+zhang, tok, purpose, nil), 403, "exchange.no_grant")
	}, sources...)
}

// A county consumer sees its county only; rate limits and daily quotas answer 429;
// unconditional resources are granted at once and 不予共享 refused at once.
func TestScopesLimitsAndShareTypes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, exchange.Options{RatePerMinute: 3})
		ctx := f.ctx
		cond := f.publish("人口基本信息", catalog.ShareConditional, "用于政务服务身份核验")
		must[exchange.Binding](t, "attach")(f.svc.Attach(ctx, f.gaOfficer, cond.ID, "population", "区划"))
		const purpose = "城乡居民养老保险参保核验"

		// County: 小店区 sees 小店区 and its townships, quota 3 a day.
		req, _ := must2(t, "apply")(f.svc.Apply(ctx, f.xdRS, exchange.ApplyInput{ResourceID: cond.ID, Fields: []string{"姓名"}, Purpose: purpose}))
		_, g := must2(t, "approve")(f.svc.Decide(ctx, f.gaAdmin, req.ID, exchange.Decision{Approve: true, RatePerMinute: 100, DailyQuota: 3}))
		if g.RowScope != "140105" {
			t.Fatalf("county scope %q", g.RowScope)
		}
		xd := f.newConsumer(f.dept["140105/rs"])
		must[exchange.Grant](t, "bind")(f.svc.BindClient(ctx, f.xdRSAdmin, g.ID, xd.client.ID))
		tok := xd.token(t)
		base := "/api/v1/exchange/" + cond.ID
		a := f.call(t, "GET", base+"/records", tok, purpose, nil)
		if a.status != 200 || !strings.Contains(string(a.body), "张伟") || !strings.Contains(string(a.body), "赵敏") ||
			strings.Contains(string(a.body), "李娜") || strings.Contains(string(a.body), "王建国") {
			t.Fatalf("county query: %d %s", a.status, a.body)
		}
		wantProblem(t, "迎泽区 from 小店区", f.call(t, "GET", base+"/records/"+li, tok, purpose, nil), 404, "not_found")
		if a := f.call(t, "GET", base+"/records/"+zhang, tok, purpose, nil); a.status != 200 {
			t.Fatalf("county lookup: %d %s", a.status, a.body)
		}
		wantProblem(t, "daily quota", f.call(t, "GET", base+"/records/"+zhang, tok, purpose, nil), 429, "exchange.quota_exceeded")
		f.clock.set(t0.Add(24 * time.Hour)) // the next Beijing day
		if a := f.call(t, "GET", base+"/records/"+zhang, tok, purpose, nil); a.status != 200 {
			t.Fatalf("quota of the next day: %d %s", a.status, a.body)
		}

		// Province, unconditional: granted at once, every row, the default rate (3 a minute).
		open := f.publish("人口统计基本项", catalog.ShareUnconditional, "")
		must[exchange.Binding](t, "attach")(f.svc.Attach(ctx, f.gaOfficer, open.ID, "population", ""))
		req, g = must2(t, "apply")(f.svc.Apply(ctx, f.provRS, exchange.ApplyInput{ResourceID: open.ID, Fields: []string{"姓名", "住址"}, Purpose: purpose}))
		if req.Status != exchange.StatusApproved || g == nil || g.RowScope != "" || g.RatePerMinute != 3 || req.DecidedBy != audit.ActorSystem {
			t.Fatalf("unconditional: %+v %+v", req, g)
		}
		prov := f.newConsumer(f.dept["140000/rs"])
		must[exchange.Grant](t, "bind")(f.svc.BindClient(ctx, f.provRS, g.ID, prov.client.ID))
		ptok := prov.token(t)
		a = f.call(t, "GET", "/api/v1/exchange/"+open.ID+"/records", ptok, purpose, nil)
		if a.status != 200 || !strings.Contains(string(a.body), "王建国") || !strings.Contains(string(a.body), `"count":4`) {
			t.Fatalf("province query: %d %s", a.status, a.body)
		}
		f.call(t, "GET", "/api/v1/exchange/"+open.ID+"/records/"+wang, ptok, purpose, nil)
		f.call(t, "GET", "/api/v1/exchange/"+open.ID+"/records/"+wang, ptok, purpose, nil)
		a = f.call(t, "GET", "/api/v1/exchange/"+open.ID+"/records/"+wang, ptok, purpose, nil)
		wantProblem(t, "rate limit", a, 429, "exchange.rate_limited")

		// 不予共享: refused at once, with the stated basis.
		closed := f.publish("人口敏感信息", catalog.ShareNone, "《中华人民共和国居民身份证法》第六条")
		req, g = must2(t, "apply")(f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: closed.ID, Fields: []string{"姓名"}, Purpose: purpose}))
		if req.Status != exchange.StatusRefused || g != nil || !strings.Contains(req.Reason, "居民身份证法") {
			t.Fatalf("not shared: %+v", req)
		}

		// A provider may narrow the scope, never widen it.
		req, _ = must2(t, "apply")(f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: cond.ID, Fields: []string{"姓名"}, Purpose: purpose}))
		wide := "140000"
		_, _, err := f.svc.Decide(ctx, f.gaOfficer, req.ID, exchange.Decision{Approve: true, RowScope: &wide})
		wantCode(t, "widened scope", err, "exchange.row_scope")
		narrow := "140105"
		if _, g, err := f.svc.Decide(ctx, f.gaOfficer, req.ID, exchange.Decision{Approve: true, RowScope: &narrow}); err != nil || g.RowScope != "140105" {
			t.Fatalf("narrowed scope: %v %+v", err, g)
		}
	}, sources...)
}

func must2(t testing.TB, what string) func(exchange.SharingRequest, *exchange.Grant, error) (exchange.SharingRequest, *exchange.Grant) {
	t.Helper()
	return func(r exchange.SharingRequest, g *exchange.Grant, err error) (exchange.SharingRequest, *exchange.Grant) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return r, g
	}
}

func TestWithdrawAndExpire(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, exchange.Options{AnswerWorkdays: 5, ExpireAfterWorkdays: 5})
		ctx := f.ctx
		res := f.publish("人口基本信息", catalog.ShareConditional, "核验")
		req, _ := must2(t, "apply")(f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: []string{"姓名"}, Purpose: "核验"}))
		// A shorter limit: 5 working days from Friday 24 Jan = 26 (Sunday worked), 27 Jan, 5, 6, 7 Feb.
		if want := time.Date(2025, 2, 7, 10, 0, 0, 0, calendar.Beijing); !req.DueAt.Equal(want) {
			t.Errorf("due %s, want %s", req.DueAt.In(calendar.Beijing), want)
		}
		if _, err := f.svc.Withdraw(ctx, f.xdRS, req.ID); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("another department withdrew: %v", err)
		}
		if r, err := f.svc.Withdraw(ctx, f.tyRS, req.ID); err != nil || r.Status != exchange.StatusWithdrawn {
			t.Fatalf("withdraw: %v %+v", err, r)
		}
		req, _ = must2(t, "apply")(f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: []string{"姓名"}, Purpose: "核验"}))
		f.clock.set(time.Date(2025, 2, 12, 11, 0, 0, 0, calendar.Beijing)) // 4 working days past due (8, 10, 11, 12 Feb)
		if n, err := f.svc.ExpireOverdue(ctx); err != nil || n != 0 {
			t.Fatalf("expired too early: %d %v", n, err)
		}
		f.clock.set(time.Date(2025, 2, 13, 11, 0, 0, 0, calendar.Beijing)) // 5 working days past due
		if n, err := f.svc.ExpireOverdue(ctx); err != nil || n != 1 {
			t.Fatalf("expire: %d %v", n, err)
		}
		list := must[[]exchange.SharingRequest](t, "list")(f.svc.ListRequests(ctx, f.tyRS, exchange.RequestFilter{ConsumerDeptID: f.dept["140100/rs"].ID}))
		if len(list) != 2 || list[0].ID != req.ID || list[0].Status != exchange.StatusExpired || list[1].Status != exchange.StatusWithdrawn {
			t.Errorf("consumer's list: %+v", list)
		}
	}, sources...)
}

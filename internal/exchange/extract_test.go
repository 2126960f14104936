package exchange_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/ids"
)

// resident is one row of a generated population dataset.
type resident struct {
	id, name, div string
}

// residentDivisions cycle over generated rows: 小店区, 迎泽区, a 小店区 township, 大同.
var residentDivisions = []string{"140105", "140106", "140105001", "140202"}

// loadResidents loads n generated residents into dataset id with the population schema.
func (f *fixture) loadResidents(t testing.TB, id string, n int) []resident {
	t.Helper()
	var b strings.Builder
	b.WriteString("身份证号,姓名,住址,区划\n")
	rs := make([]resident, 0, n)
	for i := range n {
		k := i / 1000 // distinct numbers for up to 720 000 rows
		r := resident{id: ids.MakeResident("140105", birth(1940+k%60, 1+(k/60)%12, 1+k%28), i%1000, i%2 == 0),
			name: fmt.Sprintf("居民%d", i), div: residentDivisions[i%len(residentDivisions)]}
		fmt.Fprintf(&b, "%s,%s,某街%d号,%s\n", r.id, r.name, i, r.div)
		rs = append(rs, r)
	}
	if _, err := f.data.Load(f.ctx, id, population, dataset.Source{Name: id + ".csv", Reader: strings.NewReader(b.String())},
		dataset.LoadOptions{MaxRejects: -1}); err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	return rs
}

// granted publishes a population resource served by dataset, and grants 姓名 and 身份证号 to
// 太原 人社's system; it returns the resource, the grant, the consumer and its token.
func (f *fixture) granted(t testing.TB, datasetID string, opts exchange.Decision) (catalog.Resource, *exchange.Grant, *consumer, string) {
	t.Helper()
	res := f.publish("人口基本信息", catalog.ShareConditional, "核验")
	must[exchange.Binding](t, "attach")(f.svc.Attach(f.ctx, f.gaOfficer, res.ID, datasetID, ""))
	req, _ := must2(t, "apply")(f.svc.Apply(f.ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: []string{"姓名", "身份证号", "住址"}, Purpose: "核验"}))
	opts.Approve, opts.Fields = true, []string{"姓名", "身份证号"}
	_, g := must2(t, "approve")(f.svc.Decide(f.ctx, f.gaOfficer, req.ID, opts))
	ty := f.newConsumer(f.dept["140100/rs"])
	must[exchange.Grant](t, "bind")(f.svc.BindClient(f.ctx, f.tyRSAdmin, g.ID, ty.client.ID))
	return res, g, ty, ty.token(t)
}

// waitExtract polls an extract's status until it is no longer queued or running.
func (f *fixture) waitExtract(t testing.TB, path, tok string) exchange.ExtractView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := f.call(t, "GET", path, tok, "", nil)
		if a.status != 200 {
			t.Fatalf("extract status: %d %s", a.status, a.body)
		}
		var v exchange.ExtractView
		if err := json.Unmarshal(a.body, &v); err != nil {
			t.Fatal(err)
		}
		if v.Status != exchange.ExtractQueued && v.Status != exchange.ExtractRunning {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("extract still %s", v.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Bulk extracts, end to end on the real job queue: the same refusals as a query; a CSV file of
// exactly the granted items and the scope's rows, streamed across pages, downloaded only by
// the system that asked, with a receipt over its digest, items, row count and purpose; every
// resident in it sees the read; gzip JSON Lines with a filter; revocation stops downloads;
// files expire.
func TestExtracts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, exchange.Options{})
		ctx := f.ctx
		const n = dataset.ScanPage*2 + 11
		rs := f.loadResidents(t, "people", n)
		res, g, ty, tok := f.granted(t, "people", exchange.Decision{RatePerMinute: 1000, DailyQuota: 1000})
		base := "/api/v1/exchange/" + res.ID + "/extracts"
		const purpose = "养老保险待遇资格年度认证"

		// The refusals of a query.
		wantProblem(t, "no purpose", f.call(t, "POST", base, tok, "", nil), 400, "exchange.purpose.required")
		wantProblem(t, "an item outside the grant", f.call(t, "POST", base+"?fields=住址", tok, purpose, nil), 403, "exchange.field_not_granted")
		wantProblem(t, "a filter outside the grant", f.call(t, "POST", base+"?住址=x", tok, purpose, nil), 403, "exchange.field_not_granted")
		wantProblem(t, "a bad format", f.call(t, "POST", base+"?format=xml", tok, purpose, nil), 400, "exchange.param")
		wantProblem(t, "no token", f.call(t, "POST", base, "", purpose, nil), 401, "unauthorized")
		wantProblem(t, "no queue yet", f.call(t, "POST", base, tok, purpose, nil), 503, "exchange.extract.queue")
		f.newQueue(t)

		// Asked for before the queue runs: queued, not downloadable yet.
		a := f.call(t, "POST", base, tok, purpose, nil)
		if a.status != 202 {
			t.Fatalf("extract: %d %s", a.status, a.body)
		}
		var v exchange.ExtractView
		if err := json.Unmarshal(a.body, &v); err != nil {
			t.Fatal(err)
		}
		if v.Status != exchange.ExtractQueued || v.Format != exchange.ExtractCSV || !slices.Equal(v.Fields, []string{"姓名", "身份证号"}) {
			t.Fatalf("new extract: %+v", v)
		}
		status := base + "/" + v.ID
		wantProblem(t, "a file not ready", f.call(t, "GET", status+"/file", tok, "", nil), 409, "exchange.extract.not_ready")
		other := f.newConsumer(f.dept["140105/rs"])
		wantProblem(t, "another system's extract", f.call(t, "GET", status, other.token(t), "", nil), 404, "not_found")

		f.startQueue(t)
		v = f.waitExtract(t, status, tok)
		var inScope []resident
		for _, r := range rs {
			if divisions.Contains(g.RowScope, r.div) {
				inScope = append(inScope, r)
			}
		}
		if v.Status != exchange.ExtractDone || v.RowCount == nil || *v.RowCount != int64(len(inScope)) || v.Progress != 1 ||
			v.RowsTotal != int64(len(inScope)) || v.File != status+"/file" || v.ExpiresAt == nil {
			t.Fatalf("finished extract: %+v (want %d rows)", v, len(inScope))
		}
		wantProblem(t, "another system's file", f.call(t, "GET", status+"/file", other.token(t), "", nil), 404, "not_found")

		// The file: exactly the granted items of the rows in scope, ID numbers masked.
		a = f.call(t, "GET", status+"/file", tok, "", nil)
		if a.status != 200 {
			t.Fatalf("download: %d %s", a.status, a.body)
		}
		recs, err := csv.NewReader(bytes.NewReader(a.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(recs[0], []string{"姓名", "身份证号"}) || len(recs)-1 != len(inScope) {
			t.Fatalf("csv header %v, %d rows, want %d", recs[0], len(recs)-1, len(inScope))
		}
		names := map[string]bool{}
		for _, rec := range recs[1:] {
			names[rec[0]] = true
			if !strings.Contains(rec[1], "*") || len(rec) != 2 {
				t.Fatalf("row %v: the ID number is not masked", rec)
			}
		}
		for _, r := range inScope {
			if !names[r.name] {
				t.Fatalf("%s (%s) is missing from the file", r.name, r.div)
			}
		}
		// The receipt: digest of the file, items, rows, purpose — offline.
		rc, err := exchange.ParseReceipt(a.receipt)
		if err != nil {
			t.Fatal(err)
		}
		pem := f.publicKeyPEM(t)
		if err := exchange.VerifyReceipt(rc, a.body, pem); err != nil {
			t.Fatalf("receipt: %v", err)
		}
		if err := exchange.VerifyReceiptReader(rc, bytes.NewReader(a.body), pem); err != nil {
			t.Fatalf("receipt, streamed: %v", err)
		}
		if rc.RowCount != len(inScope) || rc.Purpose != purpose || !slices.Equal(rc.Fields, []string{"姓名", "身份证号"}) ||
			rc.ClientID != ty.client.ID || rc.Method != "POST" || rc.ResponseSM3 != v.FileSM3 {
			t.Errorf("receipt %+v", rc)
		}
		if err := exchange.VerifyReceipt(rc, append(bytes.Clone(a.body), '\n'), pem); !errors.Is(err, exchange.ErrReceiptBody) {
			t.Errorf("a changed file: %v", err)
		}
		forged := rc
		forged.Fields = []string{"姓名", "身份证号", "住址"}
		if err := exchange.VerifyReceipt(forged, a.body, pem); !errors.Is(err, exchange.ErrReceiptRequest) {
			t.Errorf("altered fields: %v", err)
		}

		// Who read my data: every resident in the file, no one outside it.
		for _, r := range []resident{inScope[0], inScope[len(inScope)-1]} {
			reads := must[[]exchange.Read](t, "reads")(f.svc.ReadsOf(ctx, f.svc.ResidentIndex(r.id)))
			if len(reads) != 1 || reads[0].Kind != "extract" || reads[0].Purpose != purpose || reads[0].ConsumerDeptName != f.dept["140100/rs"].Name {
				t.Errorf("reads of %s: %+v", r.name, reads)
			}
		}
		for _, r := range rs {
			if r.div == "140202" {
				if reads := must[[]exchange.Read](t, "reads")(f.svc.ReadsOf(ctx, f.svc.ResidentIndex(r.id))); len(reads) != 0 {
					t.Errorf("大同's %s has reads: %+v", r.name, reads)
				}
				break
			}
		}

		// gzip JSON Lines, filtered.
		want := inScope[7]
		a = f.call(t, "POST", base+"?format=jsonl&gzip=true&姓名="+want.name+"&fields=姓名", tok, purpose, nil)
		if a.status != 202 {
			t.Fatalf("jsonl extract: %d %s", a.status, a.body)
		}
		_ = json.Unmarshal(a.body, &v)
		v = f.waitExtract(t, base+"/"+v.ID, tok)
		a = f.call(t, "GET", v.File, tok, "", nil)
		zr, err := gzip.NewReader(bytes.NewReader(a.body))
		if err != nil {
			t.Fatalf("gzip: %v (%d %s)", err, a.status, a.body)
		}
		var lines []map[string]string
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			var m map[string]string
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines = append(lines, m)
		}
		if len(lines) != 1 || len(lines[0]) != 1 || lines[0]["姓名"] != want.name {
			t.Fatalf("jsonl rows: %v", lines)
		}
		if rc, err := exchange.ParseReceipt(a.receipt); err != nil || exchange.VerifyReceipt(rc, a.body, pem) != nil || rc.RowCount != 1 {
			t.Errorf("jsonl receipt: %v %+v", err, rc)
		}

		// The audit log: each request, each file written, each download.
		entries, err := f.log.List(ctx, audit.Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, e := range entries {
			var det map[string]any
			_ = json.Unmarshal(e.Detail, &det)
			if e.Outcome == audit.OutcomeOK && (e.Action == exchange.ActionCall && det["kind"] == "extract" || strings.HasPrefix(e.Action, "exchange.extract")) {
				count[e.Action]++
			}
		}
		if count[exchange.ActionExtract] != 2 || count[exchange.ActionCall] != 2 || count[exchange.ActionExtractDownload] != 2 {
			t.Errorf("audit entries: %v", count)
		}
		if rep, err := f.log.Verify(ctx); err != nil || !rep.OK {
			t.Errorf("audit chain: %+v %v", rep, err)
		}
		list := must[[]exchange.Extract](t, "list")(f.svc.Extracts(ctx, f.tyRS, exchange.ExtractFilter{ConsumerDeptID: g.ConsumerDeptID}))
		if len(list) != 2 || list[0].Format != exchange.ExtractJSONL || list[1].RowsDone != int64(len(inScope)) {
			t.Errorf("the department's extracts: %+v", list)
		}
		if l, err := f.svc.Extracts(ctx, f.gaOfficer, exchange.ExtractFilter{GrantID: g.ID}); err != nil || len(l) != 2 {
			t.Errorf("the provider's view of the grant's extracts: %d %v", len(l), err)
		}
		if _, err := f.svc.Extracts(ctx, f.xdRS, exchange.ExtractFilter{GrantID: g.ID}); err == nil {
			t.Error("another department listed the grant's extracts")
		}

		// Files expire; a revoked grant downloads nothing.
		f.clock.set(t0.Add(exchange.DefaultExtractTTL + time.Hour))
		if n, err := f.ext.Expire(ctx); err != nil || n != 2 {
			t.Fatalf("expire: %d %v", n, err)
		}
		wantProblem(t, "an expired file", f.call(t, "GET", status+"/file", tok, "", nil), 410, "exchange.extract.expired")
		if _, err := f.blobs.Stat(ctx, "exchange/extracts/extract-"+list[1].ID+".csv"); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("the expired file is still stored: %v", err)
		}
		must[exchange.Grant](t, "revoke")(f.svc.RevokeGrant(ctx, f.gaOfficer, g.ID, "用途已完成"))
		wantProblem(t, "after revocation", f.call(t, "GET", status+"/file", tok, "", nil), 403, "exchange.no_grant")
		wantProblem(t, "a new extract after revocation", f.call(t, "POST", base, tok, purpose, nil), 403, "exchange.no_grant")
	}, sources...)
}

// An extract whose grant is revoked before its job runs writes nothing and says why.
func TestExtractOfRevokedGrant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, exchange.Options{})
		f.loadResidents(t, "people", 10)
		res, g, _, tok := f.granted(t, "people", exchange.Decision{})
		f.newQueue(t) // not working yet: the job waits while the grant is revoked
		a := f.call(t, "POST", "/api/v1/exchange/"+res.ID+"/extracts", tok, "核验", nil)
		if a.status != 202 {
			t.Fatalf("extract: %d %s", a.status, a.body)
		}
		var v exchange.ExtractView
		_ = json.Unmarshal(a.body, &v)
		must[exchange.Grant](t, "revoke")(f.svc.RevokeGrant(f.ctx, f.gaOfficer, g.ID, "撤销"))
		f.startQueue(t)
		deadline := time.Now().Add(20 * time.Second)
		for {
			list := must[[]exchange.Extract](t, "list")(f.svc.Extracts(f.ctx, f.tyRS, exchange.ExtractFilter{GrantID: g.ID}))
			if len(list) == 1 && list[0].Status == exchange.ExtractFailed {
				if list[0].ErrorCode != "exchange.no_grant" || list[0].Error == nil || list[0].Error.EN == "" || list[0].Bytes != 0 {
					t.Fatalf("failed extract: %+v", list[0])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("extract not failed: %+v", list)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := f.blobs.List(f.ctx, "exchange/", func(i blob.Info) error { return fmt.Errorf("file %s stored", i.Key) }); err != nil {
			t.Error(err)
		}
	}, sources...)
}

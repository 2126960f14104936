package exchange_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// publicSecurityAPI is 公安's own population service: its field names, an API key, and
// switches to misbehave.
type publicSecurityAPI struct {
	mu      sync.Mutex
	records []map[string]any
	fail    int           // answer this status
	delay   time.Duration // answer this late
	garbage bool          // answer a record that breaks the schema
}

func (p *publicSecurityAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	fail, delay, garbage := p.fail, p.delay, p.garbage
	p.mu.Unlock()
	time.Sleep(delay)
	if r.Header.Get("Authorization") != "Bearer ga-upstream-key" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if fail != 0 {
		http.Error(w, "java.sql.SQLException: connection refused", fail)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if id, ok := strings.CutPrefix(r.URL.Path, "/rkk/"); ok {
		for _, rec := range p.records {
			if rec["gmsfhm"] == id {
				if garbage {
					rec = map[string]any{"gmsfhm": id, "xm": "x", "xzqh": "99999"}
				}
				_ = json.NewEncoder(w).Encode(rec)
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	var out []map[string]any
	for _, rec := range p.records {
		if xm := r.URL.Query().Get("xm"); xm == "" || rec["xm"] == xm {
			out = append(out, rec)
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// The gateway serves a resource from the provider's own API exactly as from stored rows:
// granted items only, the row scope, masked ID numbers in queries, every returned resident's
// read recorded, signed receipts; the upstream's failures are clear 502/504 problems.
func TestUpstreamGateway(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, exchange.Options{})
		api := &publicSecurityAPI{}
		for _, r := range []struct{ id, name, addr, div string }{
			{zhang, "张伟", "坞城路92号", "140105"}, {li, "李娜", "迎泽大街1号", "140106"},
			{wang, "王建国", "大同御河西路8号", "140202"}, {zhao, "赵敏", "亲贤北街3号", "140105001"},
		} {
			api.records = append(api.records, map[string]any{"gmsfhm": r.id, "xm": r.name, "zz": r.addr, "xzqh": r.div})
		}
		up := httptest.NewServer(api)
		t.Cleanup(up.Close)
		if _, err := f.data.RegisterUpstream(f.ctx, "ga-rkk", population, dataset.Upstream{BaseURL: up.URL, LookupPath: "/rkk/{key}",
			QueryPath: "/rkk", AuthHeader: "Authorization", Secret: "Bearer ga-upstream-key", Timeout: 200 * time.Millisecond,
			Fields: map[string]string{"身份证号": "gmsfhm", "姓名": "xm", "住址": "zz", "区划": "xzqh"}}); err != nil {
			t.Fatal(err)
		}
		res, _, ty, tok := f.granted(t, "ga-rkk", exchange.Decision{RatePerMinute: 1000, DailyQuota: 1000})
		base := "/api/v1/exchange/" + res.ID
		const purpose = "就业登记身份核验"
		pem := f.publicKeyPEM(t)

		a := f.call(t, "GET", base+"/records/"+zhang, tok, purpose, nil)
		var lr exchange.LookupResult
		if a.status != 200 || json.Unmarshal(a.body, &lr) != nil || len(lr.Record) != 2 || lr.Record["姓名"] != "张伟" || lr.Record["身份证号"] != zhang {
			t.Fatalf("lookup from the upstream: %d %s", a.status, a.body)
		}
		if rc, err := exchange.ParseReceipt(a.receipt); err != nil || exchange.VerifyReceipt(rc, a.body, pem) != nil || rc.ClientID != ty.client.ID {
			t.Errorf("lookup receipt: %v", err)
		}
		wantProblem(t, "大同 from 太原", f.call(t, "GET", base+"/records/"+wang, tok, purpose, nil), 404, "not_found")
		wantProblem(t, "住址", f.call(t, "GET", base+"/records/"+zhang+"?fields=住址", tok, purpose, nil), 403, "exchange.field_not_granted")

		a = f.call(t, "GET", base+"/records", tok, purpose, nil)
		var qr exchange.QueryResult
		if a.status != 200 || json.Unmarshal(a.body, &qr) != nil || qr.Count != 3 {
			t.Fatalf("query from the upstream: %d %s", a.status, a.body)
		}
		for _, r := range qr.Rows {
			if r["姓名"] == "王建国" || len(r) != 2 || !strings.Contains(r["身份证号"], "*") {
				t.Errorf("query row %v", r)
			}
		}
		if rc, err := exchange.ParseReceipt(a.receipt); err != nil || exchange.VerifyReceipt(rc, a.body, pem) != nil || rc.RowCount != 3 {
			t.Errorf("query receipt: %v", err)
		}
		reads := must[[]exchange.Read](t, "reads")(f.svc.ReadsOf(f.ctx, f.svc.ResidentIndex(li)))
		if len(reads) != 1 || reads[0].Kind != "query" || reads[0].Purpose != purpose {
			t.Errorf("reads of 李娜 (returned masked by a query): %+v", reads)
		}

		// The upstream's failures, in the gateway's words.
		for _, tc := range []struct {
			name   string
			set    func()
			status int
			code   string
		}{
			{"an upstream error", func() { api.fail = 500 }, 502, "dataset.upstream"},
			{"an upstream timeout", func() { api.delay = 400 * time.Millisecond }, 504, "dataset.upstream_timeout"},
			{"an answer that breaks the schema", func() { api.garbage = true }, 502, "dataset.upstream_invalid"},
		} {
			api.mu.Lock()
			api.fail, api.delay, api.garbage = 0, 0, false
			tc.set()
			api.mu.Unlock()
			a := f.call(t, "GET", base+"/records/"+zhang, tok, purpose, nil)
			wantProblem(t, tc.name, a, tc.status, tc.code)
			if strings.Contains(string(a.body), "java.sql") {
				t.Errorf("%s: the upstream's text reached the consumer: %s", tc.name, a.body)
			}
		}
	}, sources...)
}

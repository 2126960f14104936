package exchange_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// BenchmarkGatewayLookup measures a key lookup through the gateway — token introspection at
// the real provider over HTTP, grant, rate limit, dataset lookup, quota + access log + audit
// entry in one transaction, SM2-signed receipt — against a direct dataset.Lookup of the same
// key in the same run, and reports both, their p99 and the ratio.
func BenchmarkGatewayLookup(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{
		{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
		{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
			f := newFixture(b, tc.open(b), exchange.Options{})
			ctx := f.ctx
			res := f.publish("人口基本信息", catalog.ShareConditional, "核验")
			must[exchange.Binding](b, "attach")(f.svc.Attach(ctx, f.gaOfficer, res.ID, "population", ""))
			req, _, err := f.svc.Apply(ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: []string{"姓名", "身份证号"}, Purpose: "核验"})
			if err != nil {
				b.Fatal(err)
			}
			_, g, err := f.svc.Decide(ctx, f.gaOfficer, req.ID, exchange.Decision{Approve: true, RatePerMinute: 1 << 30, DailyQuota: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			ty := f.newConsumer(f.dept["140100/rs"])
			must[exchange.Grant](b, "bind")(f.svc.BindClient(ctx, f.tyRSAdmin, g.ID, ty.client.ID))
			tok := ty.token(b)
			u := f.srv.URL + "/api/v1/exchange/" + res.ID + "/records/" + zhang
			purpose := url.PathEscape("核验")
			var gw, direct []time.Duration
			b.ResetTimer()
			for b.Loop() {
				t := time.Now()
				req, _ := http.NewRequest("GET", u, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set(exchange.PurposeHeader, purpose)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				gw = append(gw, time.Since(t))
				t = time.Now()
				if _, err := f.data.Lookup(ctx, "population", zhang); err != nil {
					b.Fatal(err)
				}
				direct = append(direct, time.Since(t))
			}
			mean := func(d []time.Duration) float64 {
				var s time.Duration
				for _, x := range d {
					s += x
				}
				return float64(s.Microseconds()) / float64(len(d))
			}
			p99 := func(d []time.Duration) float64 {
				d = slices.Clone(d)
				slices.Sort(d)
				return float64(d[len(d)*99/100].Microseconds())
			}
			b.ReportMetric(mean(gw), "gateway-µs/op")
			b.ReportMetric(mean(direct), "direct-µs/op")
			b.ReportMetric(p99(gw), "gateway-p99-µs")
			b.ReportMetric(p99(direct), "direct-p99-µs")
			b.ReportMetric(mean(gw)/mean(direct), "ratio")
			b.ReportMetric(1e6/mean(gw), "gateway-lookups/s")
			b.ReportMetric(1e6/mean(direct), "direct-lookups/s")
		})
	}
}

// BenchmarkExtract measures a bulk extract of 100 000 rows — the rows read by key a page at a
// time, masked, projected, written as CSV through a pipe into the blob store (SM3 on the
// way), every resident attributed in the access log in batches, the receipt signed and the
// whole audited — for a provincial consumer (every row) and a county one (its row scope,
// read through the division index). It reports rows per second and the peak heap in use
// while the file is written (the fixture's own heap included).
func BenchmarkExtract(b *testing.B) {
	const rows = 100_000
	for _, tc := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{
		{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
		{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
			f := newFixture(b, tc.open(b), exchange.Options{RatePerMinute: 1 << 30, DailyQuota: 1 << 30})
			ctx := f.ctx
			f.loadResidents(b, "people", rows)
			res := f.publish("人口基本信息", catalog.ShareUnconditional, "")
			must[exchange.Binding](b, "attach")(f.svc.Attach(ctx, f.gaOfficer, res.ID, "people", ""))
			f.newQueue(b) // jobs are inserted, and run here by hand
			for _, who := range []struct {
				name         string
				dept         string
				actor, admin authz.Subject
			}{{"province", "140000/rs", f.provRS, f.provRS}, {"county", "140105/rs", f.xdRS, f.xdRSAdmin}} {
				b.Run(who.name, func(b *testing.B) {
					dept, actor, admin := f.dept[who.dept], who.actor, who.admin
					_, g := must2(b, "apply")(f.svc.Apply(ctx, actor, exchange.ApplyInput{ResourceID: res.ID, Fields: []string{"姓名", "身份证号"}, Purpose: "统计"}))
					c := f.newConsumer(dept)
					must[exchange.Grant](b, "bind")(f.svc.BindClient(ctx, admin, g.ID, c.client.ID))
					tok := c.token(b)
					var total time.Duration
					var n int64
					var peak uint64
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						a := f.call(b, "POST", "/api/v1/exchange/"+res.ID+"/extracts", tok, "统计", nil)
						var v exchange.ExtractView
						if a.status != 202 || json.Unmarshal(a.body, &v) != nil {
							b.Fatalf("extract: %d %s", a.status, a.body)
						}
						runtime.GC()
						stop, sampled := make(chan struct{}), make(chan struct{})
						go func() { // the heap in use while the file is written: bounded, whatever the rows
							defer close(sampled)
							tick := time.NewTicker(10 * time.Millisecond)
							defer tick.Stop()
							var m runtime.MemStats
							for {
								select {
								case <-stop:
									return
								case <-tick.C:
									runtime.ReadMemStats(&m)
									peak = max(peak, m.HeapInuse)
								}
							}
						}()
						b.StartTimer()
						t := time.Now()
						if err := f.ext.Run(ctx, v.ID); err != nil {
							b.Fatal(err)
						}
						total += time.Since(t)
						b.StopTimer()
						close(stop)
						<-sampled
						list := must[[]exchange.Extract](b, "list")(f.svc.Extracts(ctx, f.sys, exchange.ExtractFilter{GrantID: g.ID, Limit: 1}))
						if list[0].Status != exchange.ExtractDone {
							b.Fatalf("extract %+v", list[0])
						}
						n = list[0].RowsDone
						b.StartTimer()
					}
					b.ReportMetric(float64(n), "rows")
					b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "rows/s")
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				})
			}
		})
	}
}

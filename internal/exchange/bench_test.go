package exchange_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/exchange"
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

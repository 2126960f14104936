package rating_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/rating"
)

var dialects = []struct {
	name string
	open func(testing.TB) *db.DB
}{
	{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
	{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
}

// reportLatency reports the p95 of per-call durations and the calls per second they imply.
func reportLatency(b *testing.B, lat []time.Duration, unit string) {
	if len(lat) == 0 {
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	b.ReportMetric(float64(s[len(s)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(time.Second)/float64(sum/time.Duration(len(s))), unit)
}

// BenchmarkRate: ratings recorded per second — the check against the case engine, the row,
// its scopes and tags, audit entry and event in one transaction; a 差评 also opens its
// rectification case in that transaction. Run with a fixed count (-benchtime=200x): each
// rating needs a completed application, made before the clock starts.
func BenchmarkRate(b *testing.B) {
	for _, dl := range dialects {
		for _, level := range []rating.Level{5, 1} {
			b.Run(fmt.Sprintf("%s/level-%d", dl.name, level), func(b *testing.B) {
				f := newFixture(b, dl.open(b), rating.Options{})
				if err := f.svc.EnsureDefinition(f.ctx); err != nil {
					b.Fatal(err)
				}
				apps := make([]rating.Application, b.N)
				for i := range apps {
					apps[i] = f.application(appSpec{})
				}
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t := time.Now()
					if _, err := f.svc.Rate(f.ctx, f.citizen, rating.Input{ApplicationID: apps[i].ID, Level: level, Tags: []string{"slow"}[:boolInt(level.Poor())]}); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t))
				}
				b.StopTimer()
				reportLatency(b, lat, "ratings/s")
			})
		}
	}
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

package govservice_test

import (
	"bytes"
	"testing"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// BenchmarkSubmit measures applications submitted per second for 个体工商户设立登记 (a
// 14-field form with an ID number, a division and money): validate, route, seal the values,
// draw the number, store the application and open its case with history, audit and events,
// in one transaction. "pdf" adds a 200 KiB scan streamed to the blob store with its SM3.
func BenchmarkSubmit(b *testing.B) {
	scan := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	copy(scan, "%PDF-1.7\n")
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			var d *db.DB
			if dialect == "sqlite" {
				d = dbtest.SQLite(b, applySources...)
			} else {
				d = dbtest.Postgres(b, applySources...)
			}
			f := newApplyFixture(b, d)
			dr := f.draft(f.zhang, itemGeti)
			v := values(dr.Form, dr.Values)
			submit := func(b *testing.B, v form.Values, mats []govservice.MaterialInput) {
				if _, err := f.apps.Submit(f.ctx, f.zhang, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105", Values: v, Materials: mats}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("form", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					submit(b, v, nil)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applications/s")
			})
			b.Run("pdf", func(b *testing.B) {
				for b.Loop() {
					submit(b, v, []govservice.MaterialInput{upload("operator_id", "scan.pdf", scan)})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applications/s")
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(2)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						submit(b, v, nil)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applications/s")
			})
		})
	}
}

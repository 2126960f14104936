package audit_test

import (
	"context"
	"testing"

	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

var benchDBs = []struct {
	name string
	open func(testing.TB, ...db.Source) *db.DB
}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}}

// BenchmarkAppend is one audited action per transaction, chained, a checkpoint signed every
// 1000 entries — what a login costs the audit log.
func BenchmarkAppend(b *testing.B) {
	for _, bd := range benchDBs {
		b.Run(bd.name, func(b *testing.B) {
			f := setup(b, bd.open(b, audit.Migrations), 1000)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, err := f.l.Append(ctx, entry(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkAppendParallel appends from many goroutines: every append waits for the head.
func BenchmarkAppendParallel(b *testing.B) {
	for _, bd := range benchDBs {
		b.Run(bd.name, func(b *testing.B) {
			f := setup(b, bd.open(b, audit.Migrations), 1000)
			ctx := context.Background()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := f.l.Append(ctx, entry(i)); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkVerify walks a chain of 20 000 entries with 20 signed checkpoints.
func BenchmarkVerify(b *testing.B) {
	const n = 20000
	for _, bd := range benchDBs {
		b.Run(bd.name, func(b *testing.B) {
			d := bd.open(b, audit.Migrations)
			f := setup(b, d, 1000)
			ctx := context.Background()
			for batch := 0; batch < n/1000; batch++ {
				if err := d.InTx(ctx, func(tx *db.Tx) error {
					for i := range 1000 {
						if _, err := f.l.AppendTx(ctx, tx, entry(batch*1000+i)); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				rep, err := f.l.Verify(ctx)
				if err != nil || !rep.OK || rep.Entries != n || rep.Checkpoints != n/1000 {
					b.Fatalf("%+v %v", rep, err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

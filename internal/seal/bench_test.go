package seal_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/seal"
)

// BenchmarkSeal measures, per database, sealing a 64 KiB file (SM3, SM2 signature, register
// entry and audit row in one transaction), sealing an official HTML document, verifying a
// sealed file (signatures, certificate chain, seal and register look-ups), and SignAs.
func BenchmarkSeal(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{
		{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
		{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b, tc.open(b))
			f.official()
			doc := bytes.Repeat([]byte("行政许可决定书 "), 64<<10/22)
			perSecond := func(b *testing.B, start time.Time) {
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
			}
			b.Run("file", func(b *testing.B) {
				start := time.Now()
				for b.Loop() {
					if _, err := f.svc.SealFile(f.ctx, f.tyOfficer, "", "决定书.pdf", doc); err != nil {
						b.Fatal(err)
					}
				}
				perSecond(b, start)
			})
			b.Run("html", func(b *testing.B) {
				start := time.Now()
				for b.Loop() {
					if _, _, err := f.svc.SealDocument(f.ctx, f.tyOfficer, "", decision()); err != nil {
						b.Fatal(err)
					}
				}
				perSecond(b, start)
			})
			sealed := must[seal.Sealed](b, "seal")(f.svc.SealFile(f.ctx, f.tyOfficer, "", "决定书.pdf", doc))
			b.Run("verify", func(b *testing.B) {
				start := time.Now()
				for b.Loop() {
					v, err := f.svc.Verify(f.ctx, doc, sealed.Signature)
					if err != nil || !v.Valid {
						b.Fatal(err, v.Problems)
					}
				}
				perSecond(b, start)
			})
			data := []byte(`{"id":"1.2.156.3005.2.11100000000013338W.001.1.Q"}`)
			b.Run("signas", func(b *testing.B) {
				start := time.Now()
				for b.Loop() {
					if _, err := f.svc.SignAs(f.ctx, f.tyOfficer.Dept, data); err != nil {
						b.Fatal(err)
					}
				}
				perSecond(b, start)
			})
		})
	}
}

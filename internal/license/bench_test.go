package license_test

import (
	"testing"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

var benchDBs = []struct {
	name string
	open func(testing.TB) *db.DB
}{
	{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
	{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
}

// BenchmarkIssue measures issuances: validation, a serial, SM2 signing by the seal key
// (in-process here), SM4 sealing of the content, and one transaction with the licence, its
// history, the issuer key, an audit entry and an outbox event.
func BenchmarkIssue(b *testing.B) {
	for _, tc := range benchDBs {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b, tc.open(b))
			b.ResetTimer()
			for b.Loop() {
				f.residencePermit(b)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issues/s")
		})
	}
}

// BenchmarkVerifyOnline measures what a scanned QR code costs: the lookup by identifier,
// opening the sealed content, the digest check, SM2 verification and the status.
func BenchmarkVerifyOnline(b *testing.B) {
	for _, tc := range benchDBs {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b, tc.open(b))
			l := f.residencePermit(b)
			id, d := l.Content.ID, l.ShortDigest()
			b.ResetTimer()
			for b.Loop() {
				res, err := f.svc.VerifyOnline(f.ctx, id, d)
				if err != nil || !res.Valid {
					b.Fatalf("%+v, %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
		})
	}
}

// BenchmarkVerifyOffline measures VerifyFile: parsing the file, the canonical form and its
// SM3 digest, the trust-list lookup and SM2 verification — no database.
func BenchmarkVerifyOffline(b *testing.B) {
	f := newFixture(b, dbtest.SQLite(b, sources...))
	l := f.residencePermit(b)
	file, err := f.svc.DownloadFile(f.ctx, f.zhang, l.Content.ID)
	if err != nil {
		b.Fatal(err)
	}
	raw := file.Encode()
	trust, err := f.svc.Trust(f.ctx)
	if err != nil {
		b.Fatal(err)
	}
	now := f.clock.now()
	b.ResetTimer()
	for b.Loop() {
		if res := license.VerifyFile(raw, trust, now); !res.Valid {
			b.Fatalf("%+v", res)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

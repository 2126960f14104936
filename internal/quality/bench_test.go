package quality_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/quality"
)

// BenchmarkRun checks a roll of 10,000 rows against every kind of rule — completeness,
// GB 11643 and GB 32100 formats, uniqueness, and a population-library lookup per row (SM3
// blind index, SM4 opening) — reading the rows decrypted page by page, and stores the report;
// and the same without the lookups, which take most of the time.
func BenchmarkRun(b *testing.B) {
	const n = 10000
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			sources := []db.Source{crypto.Migrations, dataset.Migrations, baselib.Migrations, quality.Migrations}
			var d *db.DB
			if name == "sqlite" {
				d = dbtest.SQLite(b, sources...)
			} else {
				d = dbtest.Postgres(b, sources...)
			}
			ctx := context.Background()
			now := func() time.Time { return t0 }
			k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), now)
			if err != nil {
				b.Fatal(err)
			}
			data := dataset.New(d, k.FieldCipher(), dataset.Options{Now: now})
			base := baselib.New(d, k.FieldCipher(), baselib.Options{Now: now})
			var csv strings.Builder
			csv.WriteString("身份证号,姓名,单位信用代码,区划\n")
			for start := 0; start < n; start += 1000 {
				var batch []baselib.PersonInput
				for i := start; i < start+1000; i++ {
					id := ids.MakeResident("140105", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i), i%1000, i%2 == 0)
					batch = append(batch, baselib.PersonInput{Name: fmt.Sprintf("居民%d", i), IDNumber: id, DivisionCode: "140105"})
					cc, _ := ids.MakeCreditCode('9', '1', "140105", fmt.Sprintf("MA0K%04d", i%10000))
					fmt.Fprintf(&csv, "%s,居民%d,%s,140105\n", id, i, cc)
				}
				if _, err := base.AddPersons(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := data.Load(ctx, "roll", schema, dataset.Source{Name: "roll.csv", Reader: strings.NewReader(csv.String())}, dataset.LoadOptions{}); err != nil {
				b.Fatal(err)
			}
			q := quality.New(d, data, base, quality.Options{Now: now})
			for _, rules := range []struct {
				name  string
				rules []quality.Rule
			}{{"all_rules", explicit("roll")}, {"without_reference", explicit("roll")[:4]}} {
				b.Run(rules.name, func(b *testing.B) {
					if _, err := q.SetRules(ctx, staff, "roll", rules.rules); err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						rep, err := q.Run(ctx, "roll")
						if err != nil || rep.TotalRows != n || rep.BadRows != 0 {
							b.Fatalf("run: %d rows, %d bad, %v", rep.TotalRows, rep.BadRows, err)
						}
					}
					b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
				})
			}
		})
	}
}

package dataset_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/ids"
)

// benchSchema is a realistic roll of residents: a sensitive key, a sensitive mobile.
var benchSchema = dataset.Schema{Key: "身份证号", Columns: []dataset.Column{
	{Name: "身份证号", Type: dataset.ResidentID, Sensitive: true},
	{Name: "姓名", Type: dataset.String, Required: true, MaxLength: 20},
	{Name: "手机", Type: dataset.Mobile, Sensitive: true},
	{Name: "区划", Type: dataset.Division, Required: true},
	{Name: "认定日期", Type: dataset.Date},
	{Name: "月补助", Type: dataset.Fen},
	{Name: "地址", Type: dataset.String},
}}

var benchDivisions = []string{"140105", "140106", "140107", "140108", "140109", "140110", "140202", "140212", "140302", "140402"}

// csvGenerator produces a CSV of n rows on the fly, one row at a time: the file never
// exists, in memory or on disk. Resident numbers are valid and unique: day and sequence code
// vary with i.
type csvGenerator struct {
	n, i int
	buf  []byte
	off  int
	size int64
}

func newCSVGenerator(n int) *csvGenerator {
	g := &csvGenerator{n: n}
	g.buf = append(g.buf, "身份证号,姓名,手机,区划,认定日期,月补助,地址\n"...)
	return g
}

var birth0 = time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)

func (g *csvGenerator) row(i int) {
	day, seq := i%20000, (i/20000)%1000
	div := benchDivisions[(i/20000/1000+i)%len(benchDivisions)]
	id := ids.MakeResident(div, birth0.AddDate(0, 0, day), seq, seq%2 == 1)
	g.buf = append(g.buf, id...)
	g.buf = append(g.buf, ",居民"...)
	g.buf = strconv.AppendInt(g.buf, int64(i), 10)
	g.buf = append(g.buf, ",13"...)
	g.buf = append(g.buf, fmt.Sprintf("%09d", i)...)
	g.buf = append(g.buf, ',')
	g.buf = append(g.buf, div...)
	g.buf = append(g.buf, ",2024-03-01,"...)
	g.buf = strconv.AppendInt(g.buf, int64(300+i%500), 10)
	g.buf = append(g.buf, ".50,山西省太原市小店区坞城路"...)
	g.buf = strconv.AppendInt(g.buf, int64(i%300), 10)
	g.buf = append(g.buf, "号\n"...)
}

func (g *csvGenerator) Read(p []byte) (int, error) {
	for g.off == len(g.buf) {
		if g.i == g.n {
			return 0, io.EOF
		}
		g.buf, g.off = g.buf[:0], 0
		for k := 0; k < 64 && g.i < g.n; k++ {
			g.row(g.i)
			g.i++
		}
	}
	n := copy(p, g.buf[g.off:])
	g.off += n
	g.size += int64(n)
	return n, nil
}

// BenchmarkLoadCSV1M loads a generated CSV of one million rows (DGOV_BENCH_ROWS to change)
// into SQLite and PostgreSQL, reporting rows/s and the peak heap in use (sampled every 20 ms).
// Run it alone, once: go test -run '^$' -bench LoadCSV1M -benchtime 1x ./internal/dataset/
// (DGOV_BENCH_BATCH sets LoadOptions.BatchSize).
func BenchmarkLoadCSV1M(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("DGOV_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	run := func(b *testing.B, d *db.DB) {
		ctx := context.Background()
		k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), nil)
		if err != nil {
			b.Fatal(err)
		}
		svc := dataset.New(d, k.FieldCipher())
		for i := 0; b.Loop(); i++ {
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				t := time.NewTicker(20 * time.Millisecond)
				defer t.Stop()
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						runtime.ReadMemStats(&m)
						if m.HeapInuse > peak.Load() {
							peak.Store(m.HeapInuse)
						}
					}
				}
			}()
			start := time.Now()
			res, err := svc.Load(ctx, "bench-"+strconv.Itoa(i), benchSchema, dataset.Source{Name: "bench.csv", Reader: newCSVGenerator(rows)},
				dataset.LoadOptions{MaxRejects: -1, BatchSize: benchBatch()})
			el := time.Since(start)
			close(stop)
			<-sampled
			if err != nil || res.RowsOK != int64(rows) {
				b.Fatalf("load: %+v %v", res, err)
			}
			b.ReportMetric(float64(rows)/el.Seconds(), "rows/s")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(base.HeapInuse)/(1<<20), "base-heap-MiB")
			b.ReportMetric(float64(res.Bytes)/(1<<20), "file-MiB")
			b.ReportMetric(el.Seconds(), "s/load")
			// Lookups on the loaded version, as a sanity check and a figure.
			id := ids.MakeResident(benchDivisions[(rows/2/20000/1000+rows/2)%len(benchDivisions)], birth0.AddDate(0, 0, (rows/2)%20000), (rows/2/20000)%1000, ((rows/2/20000)%1000)%2 == 1)
			if r, err := svc.Lookup(ctx, "bench-"+strconv.Itoa(i), id); err != nil || r.Values["姓名"] != "居民"+strconv.Itoa(rows/2) {
				b.Fatalf("lookup %s: %+v %v", id, r, err)
			}
		}
	}
	b.Run("sqlite", func(b *testing.B) { run(b, dbtest.SQLite(b, crypto.Migrations, dataset.Migrations)) })
	b.Run("postgres", func(b *testing.B) { run(b, dbtest.Postgres(b, crypto.Migrations, dataset.Migrations)) })
}

func benchBatch() int {
	n, _ := strconv.Atoi(os.Getenv("DGOV_BENCH_BATCH"))
	return n
}

// BenchmarkScopedQuery measures one page (50 rows) of a county's query over 100 000 rows of
// ten counties: through the division index (Select with Within), against the same page found
// the way row scopes were served before, by reading pages of the whole dataset in row order
// and keeping the county's rows.
func BenchmarkScopedQuery(b *testing.B) {
	const rows = 100_000
	run := func(b *testing.B, d *db.DB) {
		ctx := context.Background()
		k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), nil)
		if err != nil {
			b.Fatal(err)
		}
		svc := dataset.New(d, k.FieldCipher())
		if _, err := svc.Load(ctx, "scoped", benchSchema, dataset.Source{Name: "bench.csv", Reader: newCSVGenerator(rows)},
			dataset.LoadOptions{MaxRejects: -1}); err != nil {
			b.Fatal(err)
		}
		const county, offset = "140402", 4000 // the last county of benchDivisions; a page deep in it
		b.Run("index", func(b *testing.B) {
			for b.Loop() {
				page, err := svc.Select(ctx, "scoped", dataset.QueryOptions{Within: county, Limit: 50, Offset: offset})
				if err != nil || len(page) != 50 {
					b.Fatalf("%d rows: %v", len(page), err)
				}
			}
		})
		b.Run("scan", func(b *testing.B) {
			for b.Loop() {
				var got []dataset.Row
				skip := offset
				for read := 0; len(got) < 50; read += dataset.MaxQueryLimit {
					page, err := svc.Query(ctx, "scoped", nil, dataset.MaxQueryLimit, read)
					if err != nil || len(page) == 0 {
						b.Fatalf("scan: %v", err)
					}
					for _, r := range page {
						if !dataset.InScope(county, r.Values["区划"]) {
							continue
						}
						if skip > 0 {
							skip--
							continue
						}
						if got = append(got, r); len(got) == 50 {
							break
						}
					}
				}
			}
		})
	}
	b.Run("sqlite", func(b *testing.B) { run(b, dbtest.SQLite(b, crypto.Migrations, dataset.Migrations)) })
	b.Run("postgres", func(b *testing.B) { run(b, dbtest.Postgres(b, crypto.Migrations, dataset.Migrations)) })
}

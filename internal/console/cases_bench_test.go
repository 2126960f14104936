package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/workflow"
)

// seedCases writes n open cases of testDef straight into the engine's tables, mine of them
// at deptA (the rest at four other departments), across three counties of 太原市, with
// deadlines from five days overdue to fifteen ahead and one in seven claimed. Opening them
// through the service would take minutes; the workflow package's own seeding helper is
// unexported in its tests, so the page benchmark keeps this copy of the row shape.
func seedCases(tb testing.TB, d *db.DB, n, mine int, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	const cols = `id, def_key, def_version, title, ref, applicant_kind, applicant_id, dept_id, division, state, step_index,
		step_key, step_role, claimed_by, opened_at, step_started_at, step_due_at, remind_at, due_at, queue_rank, next_alert_at, version, updated_at`
	const perRow = 23
	divs := []string{"140105", "140106", "140107"}
	const batch = 400
	err := d.InTx(ctx, func(tx *db.Tx) error {
		for start := 0; start < n; start += batch {
			end := min(n, start+batch)
			var q, sq strings.Builder
			q.WriteString(`INSERT INTO workflow_cases (` + cols + `) VALUES `)
			sq.WriteString(`INSERT INTO workflow_case_scopes (ancestor, case_id) VALUES `)
			args := make([]any, 0, (end-start)*perRow)
			var sargs []any
			for i := start; i < end; i++ {
				if i > start {
					q.WriteString(", ")
					sq.WriteString(", ")
				}
				q.WriteString("(" + strings.Repeat("?, ", perRow-1) + "?)")
				sq.WriteString("(?, ?), (?, ?), (?, ?)")
				id := db.NewID()
				dept := deptA
				if i >= mine {
					dept = fmt.Sprintf("dept-other-%d", i%4)
				}
				step := testDef.Steps[i%2]
				div := divs[i%len(divs)]
				opened := db.Now(now.Add(-time.Duration(i%3000) * time.Minute))
				due := db.Now(now.Add(time.Duration(i%480-120) * time.Hour))
				remind := due.Add(-24 * time.Hour)
				claimed := ""
				if i%7 == 0 {
					claimed = "staff:o1"
				}
				args = append(args, id, testDef.Key, testDef.Version, fmt.Sprintf("个体工商户设立登记（申请 %d）", i), fmt.Sprintf("seed:%d", i),
					"citizen", fmt.Sprintf("c%d", i), dept, div, "open", i%2, step.Key, "officer", claimed, opened, opened, due, remind, due, due, remind, 1, opened)
				sargs = append(sargs, div, id, "140100", id, "140000", id)
			}
			if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
				return fmt.Errorf("seed cases: %w", err)
			}
			if _, err := tx.Exec(ctx, sq.String(), sargs...); err != nil {
				return fmt.Errorf("seed scopes: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	analyze := `ANALYZE`
	if d.Dialect == db.Postgres {
		analyze = `VACUUM ANALYZE` // as autovacuum would have by then
	}
	if _, err := d.Exec(ctx, analyze); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkQueuePage100k: the officers' queue page, rendered (/console/cases: the queue, the
// step tabs' counts and the template), with 100 000 open cases, 60 000 of them at the
// officer's department. Reports the p95 of one page in milliseconds.
func BenchmarkQueuePage100k(b *testing.B) {
	for _, dl := range []struct {
		name string
		open func(testing.TB, ...db.Source) *db.DB
	}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}} {
		b.Run(dl.name, func(b *testing.B) {
			d := dl.open(b, bus.Migrations, workflow.Migrations)
			p := newPages(b, d)
			seedStart := time.Now()
			seedCases(b, d, 100_000, 60_000, p.clock.Now())
			b.Logf("%s: seeded 100 000 open cases in %s", dl.name, time.Since(seedStart).Round(time.Millisecond))
			me := officer("o1", "140100", deptA) // the city's officer: every county's cases are in scope
			// The 50th page's cursor, found once.
			deep := ""
			for range 49 {
				pg, err := p.cases.Queue(b.Context(), me, workflow.QueueFilter{After: deep})
				if err != nil {
					b.Fatal(err)
				}
				deep = pg.Next
			}
			for _, tc := range []struct{ name, target string }{
				{"first-page", "/console/cases"},
				{"red", "/console/cases?status=red"},
				{"step-decide", "/console/cases?step=decide"},
				{"mine", "/console/cases?claimed=mine"},
				{"page-50", "/console/cases?after=" + deep},
				{"stats", "/console/cases/stats"},
			} {
				b.Run(tc.name, func(b *testing.B) {
					var lat []time.Duration
					for b.Loop() {
						req := httptest.NewRequest(http.MethodGet, tc.target, nil)
						req = req.WithContext(authz.WithSubject(req.Context(), me))
						w := httptest.NewRecorder()
						t := time.Now()
						p.mux.ServeHTTP(w, req)
						lat = append(lat, time.Since(t))
						if w.Code != http.StatusOK {
							b.Fatalf("%s: %d %.500s", tc.target, w.Code, w.Body.String())
						}
						if tc.name != "stats" && strings.Count(w.Body.String(), `<article class="card"`) != 20 {
							b.Fatalf("%s: not 20 cases on the page", tc.target)
						}
					}
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
				})
			}
		})
	}
}

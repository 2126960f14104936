package workflow_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/workflow"
)

var dialects = []struct {
	name string
	open func(testing.TB) *db.DB
}{
	{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
	{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
}

// latencies collects per-call durations and reports their mean and p95.
type latencies []time.Duration

func (l latencies) report(b *testing.B, unit string) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	mean := sum / time.Duration(len(s))
	b.ReportMetric(float64(s[len(s)*95/100].Microseconds())/1000, "p95-ms")
	if unit != "" {
		b.ReportMetric(float64(time.Second)/float64(mean), unit)
	}
}

// BenchmarkOpen: cases opened per second — the case row, its scopes, history, audit entry
// and outbox event in one transaction.
func BenchmarkOpen(b *testing.B) {
	for _, dl := range dialects {
		b.Run(dl.name, func(b *testing.B) {
			f := newFixture(b, dl.open(b), workflow.Options{})
			var lat latencies
			i := 0
			for b.Loop() {
				i++
				t := time.Now()
				if _, err := f.svc.Open(f.ctx, workflow.OpenCase{Definition: serviceDef.Key, Title: "个体工商户设立登记",
					Ref: fmt.Sprintf("application:%d", i), Applicant: f.citizen, DeptID: deptTY, Division: "140105",
					Data: map[string]string{"item": "test-item"}}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			lat.report(b, "opens/s")
		})
	}
}

// BenchmarkTransitions: transitions per second — claim, approve (advance), claim, return, …
// each a version-checked update with history, audit entry and event in one transaction.
func BenchmarkTransitions(b *testing.B) {
	for _, dl := range dialects {
		b.Run(dl.name, func(b *testing.B) {
			f := newFixture(b, dl.open(b), workflow.Options{})
			def := workflow.Definition{Key: "bench:two", Version: 1, Name: "两步", Steps: []workflow.Step{
				{Key: "accept", Name: "受理", Days: 1}, {Key: "review", Name: "审查", Days: 3}}}
			if err := f.svc.Define(f.ctx, def); err != nil {
				b.Fatal(err)
			}
			// Several cases in turn, so consecutive transitions do not hit one row.
			var ids []string
			for range 16 {
				ids = append(ids, f.open(def.Key).ID)
			}
			var lat latencies
			n := 0
			for b.Loop() {
				id := ids[n%len(ids)]
				phase := (n / len(ids)) % 4
				n++
				t := time.Now()
				var err error
				switch phase {
				case 0, 2:
					_, err = f.svc.Claim(f.ctx, f.officer, id)
				case 1:
					_, err = f.svc.Decide(f.ctx, f.officer, id, workflow.Decision{Outcome: workflow.Approve, Comment: "同意"})
				case 3:
					_, err = f.svc.Return(f.ctx, f.officer, id, "退回补充审查")
				}
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			lat.report(b, "transitions/s")
		})
	}
}

// seedOpenCases inserts n open cases straight into the tables with multi-row inserts (the
// service would take minutes for 100 000). mine of them are at the fixture officer's
// department, the rest spread over four others; steps, divisions, deadlines and claims vary.
func seedOpenCases(tb testing.TB, d *db.DB, n, mine int, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	const cols = `id, def_key, def_version, title, ref, applicant_kind, applicant_id, dept_id, division, state, outcome,
		step_index, step_key, step_role, claimed_by, opened_at, step_started_at, step_due_at, remind_at, due_at, queue_rank,
		next_alert_at, alert, suspended_work, correction, data, version, updated_at`
	const perRow = 28
	steps := []struct{ key, role string }{{"accept", "officer"}, {"review", "officer"}, {"decide", "leader"}, {"deliver", "officer"}}
	divs := []string{"140105", "140106", "140100", "140107", "140108"}
	const batch = 500
	err := d.InTx(ctx, func(tx *db.Tx) error {
		for start := 0; start < n; start += batch {
			end := min(n, start+batch)
			var q, sq strings.Builder
			q.WriteString(`INSERT INTO workflow_cases (` + cols + `) VALUES `)
			sq.WriteString(`INSERT INTO workflow_case_scopes (ancestor, case_id) VALUES `)
			args := make([]any, 0, (end-start)*perRow)
			sargs := make([]any, 0, (end-start)*6)
			for i := start; i < end; i++ {
				if i > start {
					q.WriteString(", ")
				}
				q.WriteString("(" + strings.Repeat("?, ", perRow-1) + "?)")
				id := db.NewID()
				dept := deptTY
				if i >= mine {
					dept = fmt.Sprintf("dept-other-%d", i%4)
				}
				st := steps[i%len(steps)]
				div := divs[i%len(divs)]
				opened := now.Add(-time.Duration(i%2000) * time.Minute).UTC()
				due := now.Add(time.Duration(i%480-120) * time.Hour).UTC() // from 5 days overdue to 15 days ahead
				remind := due.Add(-24 * time.Hour)
				claimed := ""
				if i%7 == 0 {
					claimed = "staff:o1"
				}
				args = append(args, id, serviceDef.Key, 1, fmt.Sprintf("个体工商户设立登记 %d", i), fmt.Sprintf("seed:%d", i), "citizen",
					fmt.Sprintf("c%d", i), dept, div, "open", "", i%len(steps), st.key, st.role, claimed, opened, opened, due, remind,
					due, due, remind, "", 0, "", `{"item":"test-item"}`, 1, opened)
				scopes := []string{div, "140100", "140000"}
				if div == "140100" {
					scopes = scopes[1:]
				}
				for _, a := range scopes {
					if len(sargs) > 0 {
						sq.WriteString(", ")
					}
					sq.WriteString("(?, ?)")
					sargs = append(sargs, a, id)
				}
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
		analyze = `VACUUM ANALYZE` // as autovacuum would: index-only scans need the visibility map
	}
	if _, err := d.Exec(ctx, analyze); err != nil {
		tb.Fatalf("analyze: %v", err)
	}
}

// BenchmarkQueue100k: the officers' queue page with 100 000 open cases, 60 000 of them in the
// officer's own department — first page, a deadline colour, a step, "mine", and the 50th page.
func BenchmarkQueue100k(b *testing.B) {
	for _, dl := range dialects {
		b.Run(dl.name, func(b *testing.B) {
			d := dl.open(b)
			f := newFixture(b, d, workflow.Options{})
			seedStart := time.Now()
			seedOpenCases(b, d, 100_000, 60_000, f.clock.Now())
			b.Logf("%s: seeded 100 000 open cases in %s", dl.name, time.Since(seedStart).Round(time.Millisecond))
			// The 50th page's cursor, found once.
			deep := ""
			for range 49 {
				p, err := f.svc.Queue(f.ctx, f.officer, workflow.QueueFilter{After: deep})
				if err != nil {
					b.Fatal(err)
				}
				deep = p.Next
			}
			for _, tc := range []struct {
				name string
				f    workflow.QueueFilter
			}{
				{"first-page", workflow.QueueFilter{}},
				{"red", workflow.QueueFilter{Status: workflow.Red}},
				{"yellow", workflow.QueueFilter{Status: workflow.Yellow}},
				{"green", workflow.QueueFilter{Status: workflow.Green}},
				{"step-review", workflow.QueueFilter{Step: workflow.StepReview}},
				{"mine", workflow.QueueFilter{Claimed: workflow.ClaimedMine}},
				{"page-50", workflow.QueueFilter{After: deep}},
			} {
				b.Run(tc.name, func(b *testing.B) {
					var lat latencies
					for b.Loop() {
						t := time.Now()
						p, err := f.svc.Queue(f.ctx, f.officer, tc.f)
						if err != nil {
							b.Fatal(err)
						}
						if len(p.Cases) != 20 {
							b.Fatalf("%d cases on the page", len(p.Cases))
						}
						lat = append(lat, time.Since(t))
					}
					lat.report(b, "")
				})
			}
			b.Run("stats", func(b *testing.B) {
				var lat latencies
				for b.Loop() {
					t := time.Now()
					st, err := f.svc.Stats(f.ctx, f.officer)
					if err != nil {
						b.Fatal(err)
					}
					if st.Open != 60_000 {
						b.Fatalf("stats: %d open", st.Open)
					}
					lat = append(lat, time.Since(t))
				}
				lat.report(b, "")
			})
		})
	}
}

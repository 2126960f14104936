package rating

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/workflow"
)

// BenchmarkStats: the statistics of a city and the public summary of the province over
// 20,000 ratings (40 departments, 34 items, the counties of Shanxi's cities), 1 in 10 差评.
func BenchmarkStats(b *testing.B) {
	sources := []db.Source{bus.Migrations, workflow.Migrations, Migrations}
	for _, dl := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{
		{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
		{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
	} {
		b.Run(dl.name, func(b *testing.B) {
			d := dl.open(b)
			ctx := context.Background()
			var counties []string
			for _, dv := range divisions.Shanxi() {
				if dv.Level == divisions.County {
					counties = append(counties, dv.Code)
				}
			}
			now := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
			const n = 20000
			err := d.InTx(ctx, func(tx *db.Tx) error {
				for i := range n {
					r := ratingRow{Rating: Rating{ID: fmt.Sprintf("r%06d", i), ApplicationID: fmt.Sprintf("a%06d", i), CaseID: fmt.Sprintf("c%06d", i),
						Rater: workflow.Party{Kind: authz.Citizen, ID: fmt.Sprintf("p%d", i%5000)}, ItemCode: fmt.Sprintf("item-%02d", i%34),
						ItemName: fmt.Sprintf("事项 %d", i%34), DeptID: fmt.Sprintf("dept-%02d", i%40), DeptName: fmt.Sprintf("部门 %d", i%40),
						Division: counties[i%len(counties)], Level: Level(5 - i%5*boolIf(i%10 == 0)), Channel: ChannelWeb,
						RatedAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now}}
					if err := insertRating(ctx, tx, &r); err != nil {
						return err
					}
					if err := setTags(ctx, tx, r.ID, []string{"fast"}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			policy := authz.NewPolicy(divisions.Contains)
			workflow.RegisterPermissions(policy)
			RegisterPermissions(policy)
			svc := New(d, policy, workflow.New(d, policy, workflow.Options{}), nil, Options{})
			supervisor := authz.Subject{Kind: authz.Staff, ID: "s", Division: "140100", Roles: []authz.Role{workflow.RoleSupervisor}}
			b.Run("city", func(b *testing.B) {
				for b.Loop() {
					if _, err := svc.Stats(ctx, supervisor, StatsFilter{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("province-summary", func(b *testing.B) {
				for b.Loop() {
					st, err := svc.Summary(ctx, StatsFilter{Division: "140000"})
					if err != nil || st.Total != n {
						b.Fatal(st.Total, err)
					}
				}
			})
		})
	}
}

func boolIf(v bool) int {
	if v {
		return 1
	}
	return 0
}

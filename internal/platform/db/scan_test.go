package db_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

func TestCollectAndOptionalTimes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		at := db.Now(time.Date(2024, 5, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600)))
		type item struct {
			name string
			at   *time.Time
		}
		scan := func(sc db.Scanner) (item, error) {
			var it item
			var at sql.NullTime
			err := sc.Scan(&it.name, &at)
			it.at = db.TimePtr(at)
			return it, err
		}
		// An empty result is an empty list, not nil (it renders as [] in JSON).
		got, err := db.Collect(ctx, d, `SELECT name, at FROM items ORDER BY name`, nil, scan)
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("empty: got %#v, %v", got, err)
		}
		for _, name := range []string{"a", "b"} {
			if _, err := d.Exec(ctx, `INSERT INTO items (name, at) VALUES (?, ?)`, name, at); err != nil {
				t.Fatal(err)
			}
		}
		got, err = db.Collect(ctx, d, `SELECT name, at FROM items WHERE name > ? ORDER BY name`, []any{""}, scan)
		if err != nil || len(got) != 2 || got[0].name != "a" || got[1].name != "b" || got[0].at == nil || !got[0].at.Equal(at) {
			t.Fatalf("got %#v, %v", got, err)
		}
		var null sql.NullTime
		if err := d.QueryRow(ctx, `SELECT NULL`).Scan(&null); err != nil || db.TimePtr(null) != nil {
			t.Fatalf("NULL time: %v, %v", db.TimePtr(null), err)
		}
		if db.NullTime(nil) != nil || db.NullTime(&at) != at {
			t.Fatal("NullTime")
		}
		if p := db.TimePtr(sql.NullTime{Time: at, Valid: true}); p == nil || !p.Equal(at) || p.Location() != time.UTC {
			t.Fatalf("TimePtr: %v", p)
		}
	}, testSource)
}

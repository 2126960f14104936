package db_test

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

var testSource = db.Source{Name: "dbtest", FS: fstest.MapFS{
	"0001_items.sql": {Data: []byte(`CREATE TABLE items (id {{SERIAL}}, name TEXT NOT NULL UNIQUE, body {{BLOB}}, at {{TIME}} NOT NULL, ok {{BOOL}} NOT NULL DEFAULT FALSE);`)},
	"0002_extra.sql": {Data: []byte(`ALTER TABLE items ADD COLUMN note TEXT; CREATE INDEX items_at ON items(at);`)},
	// The override shows a per-dialect file replacing the plain one.
	"0002_extra.postgres.sql": {Data: []byte(`ALTER TABLE items ADD COLUMN note TEXT; CREATE INDEX items_at ON items USING btree (at);`)},
}}

func TestMigrateAndQuery(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// Migrating twice is a no-op.
		again, err := d.Migrate(ctx, testSource)
		if err != nil || len(again) != 0 {
			t.Fatalf("second migrate: %v %v", again, err)
		}
		if err := d.CheckCurrent(ctx, testSource); err != nil {
			t.Fatal(err)
		}
		at := db.Now(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC))
		if _, err := d.Exec(ctx, `INSERT INTO items (name, body, at, ok, note) VALUES (?, ?, ?, ?, 'it''s ?')`, "a", []byte{0, 1, 2}, at, true); err != nil {
			t.Fatal(err)
		}
		var name, note string
		var body []byte
		var got time.Time
		var ok bool
		if err := d.QueryRow(ctx, `SELECT name, body, at, ok, note FROM items WHERE name = ?`, "a").Scan(&name, &body, &got, &ok, &note); err != nil {
			t.Fatal(err)
		}
		if name != "a" || len(body) != 3 || !got.Equal(at) || !ok || note != "it's ?" {
			t.Fatalf("round trip: %q %v %v %v %q", name, body, got, ok, note)
		}
		_, err = d.Exec(ctx, `INSERT INTO items (name, at) VALUES (?, ?)`, "a", at)
		if !db.IsUniqueViolation(err) {
			t.Fatalf("want unique violation, got %v", err)
		}
	}, testSource)
}

func TestInTxRollsBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		committed := false
		err := d.InTx(ctx, func(tx *db.Tx) error {
			tx.AfterCommit(func() { committed = true })
			if _, err := tx.Exec(ctx, `INSERT INTO items (name, at) VALUES (?, ?)`, "x", time.Now().UTC()); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || committed {
			t.Fatalf("err %v committed %v", err, committed)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rolled back row is there: %d %v", n, err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			tx.AfterCommit(func() { committed = true })
			_, err := tx.Exec(ctx, `INSERT INTO items (name, at) VALUES (?, ?)`, "y", time.Now().UTC())
			return err
		}); err != nil || !committed {
			t.Fatalf("commit: %v %v", err, committed)
		}
	}, testSource)
}

func TestNewerSchemaRefused(t *testing.T) {
	d := dbtest.SQLite(t, testSource)
	short := db.Source{Name: "dbtest", FS: fstest.MapFS{"0001_items.sql": testSource.FS.(fstest.MapFS)["0001_items.sql"]}}
	if _, err := d.Pending(context.Background(), short); err == nil {
		t.Fatal("a database newer than the code must be refused")
	}
}

func TestRebind(t *testing.T) {
	d := &db.DB{Dialect: db.Postgres}
	got := d.Rebind(`SELECT '?', "a?" FROM t WHERE a = ? AND b = ?`)
	want := `SELECT '?', "a?" FROM t WHERE a = $1 AND b = $2`
	if got != want {
		t.Fatalf("got %s", got)
	}
}

func TestBadMigrationNames(t *testing.T) {
	for name, fs := range map[string]fstest.MapFS{
		"gap":    {"0001_a.sql": {Data: []byte("SELECT 1")}, "0003_c.sql": {Data: []byte("SELECT 1")}},
		"noname": {"x.sql": {Data: []byte("SELECT 1")}},
		"dupe":   {"0001_a.sql": {Data: []byte("SELECT 1")}, "0001_b.sql": {Data: []byte("SELECT 1")}},
	} {
		if _, err := db.SQLite.Load(db.Source{Name: name, FS: fs}); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
}

// Package dbtest runs store tests against both databases dgov supports: a fresh embedded
// SQLite file always, and a fresh schema in a real PostgreSQL unless -short is given.
//
// PostgreSQL comes from DGOV_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test.
// When it cannot be reached the PostgreSQL half is skipped — except when CI or DGOV_TEST_STRICT is
// set (`make test` sets it), where it fails, so a full run never passes without PostgreSQL.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
)

// DefaultPostgresURL is used when DGOV_TEST_DATABASE_URL is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL returns the base URL of the test PostgreSQL.
func PostgresURL() string {
	if u := os.Getenv("DGOV_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Each runs fn once per database as subtests "sqlite" and "postgres", each on an empty,
// migrated database.
func Each(t *testing.T, fn func(t *testing.T, d *db.DB), sources ...db.Source) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t, sources...)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, sources...)) })
}

// SQLite returns a migrated database in a new temporary file, closed when the test ends.
func SQLite(t testing.TB, sources ...db.Source) *db.DB {
	t.Helper()
	d, err := db.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	migrate(t, d, sources)
	return d
}

// Postgres returns a migrated database in a new schema of the test PostgreSQL, dropped when
// the test ends. It skips under -short, and when PostgreSQL is unreachable outside CI.
func Postgres(t testing.TB, sources ...db.Source) *db.DB {
	t.Helper()
	u, schema := NewSchema(t)
	d, err := db.OpenPostgres(context.Background(), u)
	if err != nil {
		t.Fatalf("open postgres schema %s: %v", schema, err)
	}
	t.Cleanup(func() { d.Close() })
	migrate(t, d, sources)
	return d
}

// NewSchema creates an empty schema in the test PostgreSQL and returns a URL whose
// connections use it; the schema is dropped at cleanup. For tests that open databases themselves.
func NewSchema(t testing.TB) (string, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL tests are skipped with -short")
	}
	ctx := context.Background()
	base := PostgresURL()
	admin, err := db.OpenPostgres(ctx, base)
	if err != nil {
		if Strict() {
			t.Fatalf("PostgreSQL is required for a full test run (CI / DGOV_TEST_STRICT): %v", err)
		}
		t.Skipf("PostgreSQL not reachable (%v); set DGOV_TEST_DATABASE_URL", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + time.Now().UTC().Format("0102150405") + "_" + hex.EncodeToString(b[:])
	if _, err := admin.W.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.W.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	})
	pu, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String(), schema
}

func migrate(t testing.TB, d *db.DB, sources []db.Source) {
	t.Helper()
	if _, err := d.Migrate(context.Background(), sources...); err != nil {
		t.Fatalf("migrate %s: %v", d.Dialect, err)
	}
}

// Strict reports whether missing services must fail tests instead of skipping them: in CI and
// under `make test` (DGOV_TEST_STRICT=1). `go test -short` and plain `go test` may skip.
func Strict() bool { return os.Getenv("CI") != "" || os.Getenv("DGOV_TEST_STRICT") != "" }

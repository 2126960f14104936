package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/dgov/dgov/internal/platform/db"
)

// quiet silences River's migrator: Migrate returns what it applied, and errors, to its caller.
var quiet = slog.New(slog.DiscardHandler)

// Migrate applies River's own migrations (its tables river_job, river_leader, …, versioned in
// river_migration) and returns the versions applied. `dgov migrate` and server start call it
// beside db.Migrate. River keeps its migrations and their order; dgov does not copy them.
func Migrate(ctx context.Context, d *db.DB) ([]int, error) {
	var res *rivermigrate.MigrateResult
	switch d.Dialect {
	case db.SQLite:
		// On the app's writer: one connection, BEGIN IMMEDIATE, as every write of the app.
		m, err := rivermigrate.New(riversqlite.New(d.W), &rivermigrate.Config{Logger: quiet})
		if err != nil {
			return nil, fmt.Errorf("river migrations: %w", err)
		}
		if res, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return nil, fmt.Errorf("river migrations: %w", err)
		}
	case db.Postgres:
		schema, err := currentSchema(ctx, d)
		if err != nil {
			return nil, err
		}
		// River takes no lock while migrating; nodes starting together would race to create
		// the same tables. A session advisory lock, per schema, makes them take turns.
		conn, err := d.W.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("river migrations: %w", err)
		}
		defer conn.Close()
		key := migrateLockKey(schema)
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return nil, fmt.Errorf("river migrations: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) //nolint:errcheck // the session ends with conn anyway
		m, err := rivermigrate.New(riverdatabasesql.New(d.W), &rivermigrate.Config{Logger: quiet, Schema: schema})
		if err != nil {
			return nil, fmt.Errorf("river migrations: %w", err)
		}
		if res, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return nil, fmt.Errorf("river migrations in schema %s: %w", schema, err)
		}
	default:
		return nil, fmt.Errorf("river migrations: unknown dialect %q", d.Dialect)
	}
	applied := make([]int, 0, len(res.Versions))
	for _, v := range res.Versions {
		applied = append(applied, v.Version)
	}
	return applied, nil
}

// CheckCurrent fails when River's schema is missing or behind this build: a node refuses to
// work jobs on a stale schema, as it refuses to serve on one.
func CheckCurrent(ctx context.Context, d *db.DB) error {
	var res *rivermigrate.ValidateResult
	switch d.Dialect {
	case db.SQLite:
		m, err := rivermigrate.New(riversqlite.New(d.W), &rivermigrate.Config{Logger: quiet})
		if err != nil {
			return err
		}
		if res, err = m.Validate(ctx, nil); err != nil {
			return fmt.Errorf("check river schema: %w", err)
		}
	case db.Postgres:
		schema, err := currentSchema(ctx, d)
		if err != nil {
			return err
		}
		m, err := rivermigrate.New(riverdatabasesql.New(d.W), &rivermigrate.Config{Logger: quiet, Schema: schema})
		if err != nil {
			return err
		}
		if res, err = m.Validate(ctx, nil); err != nil {
			return fmt.Errorf("check river schema: %w", err)
		}
	default:
		return fmt.Errorf("check river schema: unknown dialect %q", d.Dialect)
	}
	if !res.OK {
		return fmt.Errorf("river schema is behind (%s); run `dgov migrate`", strings.Join(res.Messages, "; "))
	}
	return nil
}

// currentSchema is the schema River's tables go in on PostgreSQL: the first schema of the
// connection's search_path that exists (tests set search_path to a schema of their own).
func currentSchema(ctx context.Context, d *db.DB) (string, error) {
	var s sql.NullString
	if err := d.W.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&s); err != nil {
		return "", fmt.Errorf("jobs: current schema: %w", err)
	}
	if !s.Valid || s.String == "" {
		return "", errors.New("jobs: no current schema: search_path names no existing schema")
	}
	return s.String, nil
}

// migrateLockKey is the advisory lock key of River migrations in schema: advisory locks are
// per database, and each schema migrates independently.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("dgov/jobs/migrate/" + schema))
	return int64(h.Sum64())
}

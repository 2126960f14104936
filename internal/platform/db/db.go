// Package db opens dgov's database — embedded SQLite by default, PostgreSQL by URL — and holds
// the few dialect differences in one place, so every engine writes one SQL for both.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL flavour behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the database of one dgov node. Queries are written with '?' placeholders; the DB
// rebinds them for PostgreSQL. On SQLite all writes go through one connection (SQLite allows
// one writer; a single pool entry turns lock contention into queueing) and reads use a pool.
type DB struct {
	Dialect Dialect
	// W takes writes and transactions; R serves plain reads. On PostgreSQL both are the same pool.
	W, R *sql.DB
	// Pool is the pgx pool on PostgreSQL (nil on SQLite), for libraries that want pgx itself.
	Pool *pgxpool.Pool
	// Path is the SQLite file (empty on PostgreSQL); URL is the PostgreSQL URL (empty on SQLite).
	Path, URL string
}

// Open connects to url, or, when url is empty, to the embedded SQLite file dgov.db in dataDir.
func Open(ctx context.Context, rawURL, dataDir string) (*DB, error) {
	if rawURL == "" || strings.HasPrefix(rawURL, "sqlite:") || strings.HasPrefix(rawURL, "file:") {
		path := strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "file:")
		if path == "" {
			path = filepath.Join(dataDir, "dgov.db")
		}
		return OpenSQLite(ctx, path)
	}
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		return OpenPostgres(ctx, rawURL)
	}
	return nil, fmt.Errorf("database URL %q: want empty (embedded SQLite), sqlite:PATH or postgres://", redactURL(rawURL))
}

// sqlitePragmas: busy_timeout first so the others wait rather than fail; WAL lets readers
// run beside the writer; NORMAL is durable under WAL except for the last commit on power loss.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_time_format=sqlite"

// SQLiteWriterDSN is the connection string of a writing connection to the SQLite file at path:
// our pragmas, and transactions that take the write lock at BEGIN (so they wait on the busy
// timeout instead of failing halfway). Other writers on the same file (River) use it too.
func SQLiteWriterDSN(path string) string {
	return "file:" + path + "?" + sqlitePragmas + "&_txlock=immediate"
}

// OpenSQLite opens (creating if needed) the SQLite database at path.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	dsn := "file:" + path + "?" + sqlitePragmas
	w, err := sql.Open("sqlite", SQLiteWriterDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	d := &DB{Dialect: SQLite, W: w, R: r, Path: path}
	if err := w.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return d, nil
}

// OpenPostgres connects to PostgreSQL. Extra URL parameters such as search_path are passed to
// the server as run-time parameters (tests use that to give each test its own schema).
func OpenPostgres(ctx context.Context, rawURL string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL %s: %w", redactURL(rawURL), err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", redactURL(rawURL), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect %s: %w", redactURL(rawURL), err)
	}
	sdb := stdlib.OpenDBFromPool(pool)
	return &DB{Dialect: Postgres, W: sdb, R: sdb, Pool: pool, URL: rawURL}, nil
}

// Close closes every pool.
func (d *DB) Close() error {
	var errs []error
	if d.W != nil {
		errs = append(errs, d.W.Close())
	}
	if d.R != nil && d.R != d.W {
		errs = append(errs, d.R.Close())
	}
	if d.Pool != nil {
		d.Pool.Close()
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers (for /readyz).
func (d *DB) Ping(ctx context.Context) error { return d.W.PingContext(ctx) }

// Exec runs a write outside a transaction.
func (d *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.W.ExecContext(ctx, d.Rebind(q), args...)
}

// Query reads rows.
func (d *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.R.QueryContext(ctx, d.Rebind(q), args...)
}

// QueryRow reads one row.
func (d *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return d.R.QueryRowContext(ctx, d.Rebind(q), args...)
}

// Querier is what both *DB and *Tx offer, so store code can run inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, q string, args ...any) (sql.Result, error)
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
	SQLDialect() Dialect
}

// SQLDialect reports the dialect (Querier).
func (d *DB) SQLDialect() Dialect { return d.Dialect }

// Tx is a transaction on the writer.
type Tx struct {
	Tx *sql.Tx
	d  *DB
	// after runs once the transaction has committed (e.g. to nudge the outbox relay).
	after []func()
}

func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.d.Rebind(q), args...)
}
func (t *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.d.Rebind(q), args...)
}
func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.d.Rebind(q), args...)
}
func (t *Tx) SQLDialect() Dialect { return t.d.Dialect }

// AfterCommit registers f to run after a successful commit.
func (t *Tx) AfterCommit(f func()) { t.after = append(t.after, f) }

// InTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
// A serialization failure or deadlock on PostgreSQL (and SQLITE_BUSY on SQLite) is retried a
// few times, so callers write plain code and never see transient contention.
func (d *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = d.inTxOnce(ctx, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return err
}

func (d *DB) inTxOnce(ctx context.Context, fn func(tx *Tx) error) (err error) {
	stx, err := d.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{Tx: stx, d: d}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range tx.after {
		f()
	}
	return nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// IsUniqueViolation reports whether err is a unique-constraint failure on either database.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Rebind turns '?' placeholders into '$1, $2, …' for PostgreSQL, leaving quoted text alone.
func (d *DB) Rebind(q string) string {
	if d.Dialect != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(fmt.Sprint(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// NewID returns a new opaque, time-ordered identifier (UUIDv7 text): sortable by creation,
// friendly to B-tree indexes on both databases.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Now is the canonical storage form of a time: UTC, microsecond precision (what PostgreSQL keeps).
func Now(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

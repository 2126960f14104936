package db

import (
	"context"
	"database/sql"
	"time"
)

// Scanner is what *sql.Row and *sql.Rows share, so one scan function reads a row of either.
type Scanner interface{ Scan(dest ...any) error }

// Collect runs query and scans every row with scan. The result is never nil, so an empty
// list renders as [] in JSON.
func Collect[T any](ctx context.Context, q Querier, query string, args []any, scan func(Scanner) (T, error)) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// NullTime is the argument that stores an optional time: NULL when t is nil.
func NullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// TimePtr reads an optional time column back: nil for NULL, UTC otherwise.
func TimePtr(n sql.NullTime) *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time.UTC()
	return &t
}

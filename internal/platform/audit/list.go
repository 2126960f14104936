package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Filter selects entries for the console. Zero fields do not filter.
type Filter struct {
	Actor    string
	Division string // actor_division
	// Action matches exactly, or, ending in ".*", every action under that prefix ("auth.*").
	Action    string
	Object    string
	Since     time.Time // at >= Since
	Until     time.Time // at < Until
	BeforeSeq int64     // seq < BeforeSeq: pass the last seq of a page to get the next
	Limit     int       // default 50, at most 1000
}

const recordCols = `seq, at, actor, actor_division, action, object, outcome, ip, request_id, detail, prev_hash, hash`

// List returns the entries matching f, newest first.
func (l *Log) List(ctx context.Context, f Filter) ([]Record, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Actor != "" {
		add(`actor = ?`, f.Actor)
	}
	if f.Division != "" {
		add(`actor_division = ?`, f.Division)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
		// substr counts characters on both databases; LIKE would fold case on SQLite.
		add(`substr(action, 1, ?) = ?`, utf8.RuneCountInString(prefix), prefix)
	} else if f.Action != "" {
		add(`action = ?`, f.Action)
	}
	if f.Object != "" {
		add(`object = ?`, f.Object)
	}
	if !f.Since.IsZero() {
		add(`at >= ?`, f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add(`at < ?`, f.Until.UTC())
	}
	if f.BeforeSeq > 0 {
		add(`seq < ?`, f.BeforeSeq)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	q := `SELECT ` + recordCols + ` FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	out, err := l.queryRecords(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	return out, nil
}

func (l *Log) queryRecords(ctx context.Context, q string, args ...any) ([]Record, error) {
	rows, err := l.d.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanRecord(rows *sql.Rows) (Record, error) {
	var r Record
	var detail string
	if err := rows.Scan(&r.Seq, &r.At, &r.Actor, &r.ActorDivision, &r.Action, &r.Object, &r.Outcome,
		&r.IP, &r.RequestID, &detail, &r.PrevHash, &r.Hash); err != nil {
		return r, err
	}
	r.At = r.At.UTC()
	if detail != "" {
		r.Detail = []byte(detail)
	}
	return r, nil
}

package dataset

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/jsontext"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// LoadOptions tune one Load.
type LoadOptions struct {
	// BatchSize is the number of rows written per transaction; default 2,000, at most 10,000.
	// Thousands amortise the commit; one transaction for a million rows would hold SQLite's
	// only writer for the whole load and bloat PostgreSQL's WAL and locks.
	BatchSize int
	// MaxRejects: the load fails once more rows than this are rejected. 0 = DefaultMaxRejects;
	// negative = no limit.
	MaxRejects int
	// Progress, when set, is called after every committed batch and once at the end, from one
	// goroutine at a time.
	Progress func(Progress)
}

// Progress of a load.
type Progress struct {
	Rows       int64 // data rows read (accepted + rejected)
	Bytes      int64 // bytes of the file read so far
	TotalBytes int64 // Source.Size; 0 when unknown
	Rejected   int64
}

// Defaults and caps of a load.
const (
	DefaultBatchSize  = 2000
	MaxBatchSize      = 10000
	DefaultMaxRejects = 1000
	// MaxStoredRejects caps the faults kept per version; the count of rejected rows is exact.
	MaxStoredRejects = 10000
)

// Result of a load.
type Result struct {
	DatasetID    string        `json:"dataset_id"`
	Version      int           `json:"version"`
	Status       Status        `json:"status"` // active, or failed
	RowsOK       int64         `json:"rows_ok"`
	RowsRejected int64         `json:"rows_rejected"`
	Bytes        int64         `json:"bytes"`
	Duration     time.Duration `json:"duration"`
	// UnknownColumns are source columns not in the schema (ignored); MissingColumns are
	// optional schema columns absent from the source (left empty). A missing required column
	// fails the load.
	UnknownColumns []string `json:"unknown_columns,omitempty"`
	MissingColumns []string `json:"missing_columns,omitempty"`
}

// Load reads src into a new version of dataset datasetID and, when every row has been
// written and no more than MaxRejects rows were rejected, makes it the active version. On
// failure the returned Result has Status Failed, the version's rows are deleted and the
// previous version stays active; the error is an *i18n.Error (the load's rejects remain
// readable through Rejects).
func (s *Service) Load(ctx context.Context, datasetID string, schema Schema, src Source, opts LoadOptions) (Result, error) {
	start := time.Now()
	res := Result{DatasetID: datasetID, Status: Failed}
	if err := checkID(datasetID); err != nil {
		return res, err
	}
	if err := schema.Validate(); err != nil {
		return res, err
	}
	format, err := formatOf(src)
	if err != nil {
		return res, err
	}
	if src.Reader == nil {
		return res, readErr(errors.New("no reader"))
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	opts.BatchSize = min(opts.BatchSize, MaxBatchSize)
	if opts.MaxRejects == 0 {
		opts.MaxRejects = DefaultMaxRejects
	}
	// The key is what Lookup finds one row by: required and unique. Copy the columns first,
	// so the caller's schema stays as it was.
	schema.Columns = append([]Column(nil), schema.Columns...)
	if schema.Key != "" {
		k := schema.column(schema.Key)
		schema.Columns[k].Required, schema.Columns[k].Unique = true, true
	}

	version, stale, err := s.begin(ctx, datasetID, schema, src, format)
	if err != nil {
		return res, err
	}
	res.Version = version
	for _, v := range stale {
		_ = s.deleteRows(context.WithoutCancel(ctx), datasetID, v)
	}

	l := &loader{s: s, id: datasetID, version: version, schema: schema, opts: opts, total: src.Size,
		norm: normalizer{now: func() time.Time { return start }, excel: format == XLSX}}
	err = l.run(ctx, format, src)
	res.RowsOK, res.RowsRejected, res.Bytes = l.ok, l.rejected, l.bytes
	res.UnknownColumns, res.MissingColumns = l.unknown, l.missing
	if err == nil && l.ok == 0 {
		err = ErrNoRows
	}
	if err == nil {
		err = s.activate(ctx, l)
	}
	if err != nil {
		err = loadError(ctx, err)
		s.fail(ctx, l, err)
		res.Duration = time.Since(start)
		return res, err
	}
	res.Status = Active
	res.Duration = time.Since(start)
	// Cleaning up old versions is housekeeping: the load has succeeded whatever happens here,
	// and the next load tries again.
	_ = s.cleanup(context.WithoutCancel(ctx), datasetID)
	return res, nil
}

// loadError makes err user-facing: cancellation and database failures get their own text.
func loadError(ctx context.Context, err error) error {
	if _, ok := i18n.As(err); ok {
		return err
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ErrCancelled.Wrap(err)
	}
	return i18n.ErrInternal.Wrap(fmt.Errorf("load dataset: %w", err))
}

// begin records a new loading version. A loading version of the same dataset with a recent
// heartbeat means another load is running; one with an old heartbeat was abandoned and is
// failed here (its rows are returned in stale, for the caller to delete).
func (s *Service) begin(ctx context.Context, id string, schema Schema, src Source, f Format) (version int, stale []int, err error) {
	now := s.clock()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		stale = stale[:0]
		rows, err := tx.Query(ctx, `SELECT version, heartbeat_at FROM dataset_versions WHERE dataset_id = ? AND status = 'loading'`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			var hb time.Time
			if err := rows.Scan(&v, &hb); err != nil {
				rows.Close()
				return err
			}
			if now.Sub(hb) < s.staleAfter {
				rows.Close()
				return ErrLoadInProgress
			}
			stale = append(stale, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, v := range stale {
			if _, err := tx.Exec(ctx, `UPDATE dataset_versions SET status = 'failed', finished_at = ?, error_code = ?, error_zh = ?, error_en = ?
				WHERE dataset_id = ? AND version = ?`, now, "dataset.abandoned", "导入进程中断，该版本已作废", "the loading process stopped; this version was abandoned", id, v); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset_id = ?`, id).Scan(&version); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO dataset_versions (dataset_id, version, status, schema_json, source_name, format, total_bytes, started_at, heartbeat_at)
			VALUES (?, ?, 'loading', ?, ?, ?, ?, ?, ?)`, id, version, schema.marshal(), clip(src.Name), string(f), max(src.Size, 0), now, now)
		return err
	})
	if db.IsUniqueViolation(err) { // a concurrent begin on PostgreSQL took the same number
		return 0, nil, ErrLoadInProgress
	}
	if err != nil {
		if _, ok := i18n.As(err); !ok {
			err = i18n.ErrInternal.Wrap(fmt.Errorf("begin load of %s: %w", id, err))
		}
	}
	return version, stale, err
}

// activate makes l's version the active one, superseding the previous, in one transaction.
func (s *Service) activate(ctx context.Context, l *loader) error {
	now := s.clock()
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE dataset_versions SET status = 'superseded' WHERE dataset_id = ? AND status = 'active'`, l.id); err != nil {
			return err
		}
		r, err := tx.Exec(ctx, `UPDATE dataset_versions SET status = 'active', rows_ok = ?, rows_rejected = ?, bytes_read = ?, heartbeat_at = ?, finished_at = ?
			WHERE dataset_id = ? AND version = ? AND status = 'loading'`, l.ok, l.rejected, l.bytes, now, now, l.id, l.version)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return errTakenOver
		}
		return nil
	})
}

// errTakenOver: the version stopped being 'loading' under us — a later load judged it
// abandoned (heartbeat older than StaleAfter) and failed it.
var errTakenOver = &i18n.Error{Code: "dataset.taken_over", Status: http.StatusConflict,
	Msg: i18n.T("导入耗时过长，已被后来的导入判定为中断", "the load took too long and a later load declared it abandoned")}

// fail marks l's version failed with err and deletes its rows. It runs even when ctx is
// cancelled (that may be why the load failed).
func (s *Service) fail(ctx context.Context, l *loader, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	e, _ := i18n.As(err)
	now := s.clock()
	_, _ = s.d.Exec(ctx, `UPDATE dataset_versions SET status = 'failed', rows_ok = ?, rows_rejected = ?, bytes_read = ?, finished_at = ?,
		error_code = ?, error_zh = ?, error_en = ?
		WHERE dataset_id = ? AND version = ? AND status = 'loading'`,
		l.ok, l.rejected, l.bytes, now, e.Code, e.Msg.ZH, e.Msg.EN, l.id, l.version)
	_ = s.deleteRows(ctx, l.id, l.version)
}

// deleteRows deletes a version's rows a slice at a time, so that no single transaction
// holds the writer (SQLite) or a million row locks (PostgreSQL) for long.
func (s *Service) deleteRows(ctx context.Context, id string, version int) error {
	for {
		r, err := s.d.Exec(ctx, `DELETE FROM dataset_rows WHERE dataset_id = ? AND version = ? AND row_no IN
			(SELECT row_no FROM dataset_rows WHERE dataset_id = ? AND version = ? ORDER BY row_no LIMIT 10000)`, id, version, id, version)
		if err != nil {
			return fmt.Errorf("delete rows of %s v%d: %w", id, version, err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return nil
		}
	}
}

// cleanup deletes superseded versions beyond the newest s.keep, and failed ones likewise
// (a failed version keeps its record and rejects for a while: they say what went wrong).
func (s *Service) cleanup(ctx context.Context, id string) error {
	rows, err := s.d.Query(ctx, `SELECT version, status FROM dataset_versions WHERE dataset_id = ? AND status IN ('superseded', 'failed') ORDER BY version DESC`, id)
	if err != nil {
		return err
	}
	var drop []int
	seen := map[string]int{}
	for rows.Next() {
		var v int
		var st string
		if err := rows.Scan(&v, &st); err != nil {
			rows.Close()
			return err
		}
		if seen[st]++; seen[st] > s.keep {
			drop = append(drop, v)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, v := range drop {
		if err := s.deleteRows(ctx, id, v); err != nil {
			return err
		}
		err := s.d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM dataset_rejects WHERE dataset_id = ? AND version = ?`, id, v); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM dataset_upstreams WHERE dataset_id = ? AND version = ?`, id, v); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM dataset_versions WHERE dataset_id = ? AND version = ? AND status IN ('superseded', 'failed')`, id, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("delete version %s v%d: %w", id, v, err)
		}
	}
	return nil
}

// ---- the load itself ----

type loader struct {
	s       *Service
	id      string
	version int
	schema  Schema
	opts    LoadOptions
	norm    normalizer
	total   int64

	// counters, owned by the reading goroutine until run returns
	ok, rejected, bytes int64
	storedRejects       int
	unknown, missing    []string

	seed   maphash.Seed
	unique []map[uint64]int64 // by schema column; nil where the column is not unique
	keyCol int
	divCol int // Schema.DivisionColumn, -1 when the rows are not divisional
}

type rowOut struct {
	no, line int64
	key      sql.NullString
	division sql.NullString
	data     string
}

type rejectOut struct {
	seq, line int64
	column    string
	err       *i18n.Error
}

// batch is what the reader hands to the writer: rows and rejects to write, and the counters
// as they stand after them (for the version row and progress).
type batch struct {
	rows                []rowOut
	rejects             []rejectOut
	ok, rejected, bytes int64
}

// run reads, validates and writes. Reading and validating (with sealing and hashing) run in
// this goroutine, writing in another, so that the two overlap.
func (l *loader) run(ctx context.Context, f Format, src Source) error {
	cnt := &counter{r: src.Reader}
	recs, err := open(l.schema, f, src, cnt)
	if err != nil {
		l.bytes = cnt.n
		return err
	}
	defer recs.close()

	l.prepare()

	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan *batch, 1)
	done := make(chan error, 1)
	go func() { done <- l.write(wctx, cancel, ch) }()

	readErr := l.read(wctx, recs, cnt, ch)
	close(ch)
	writeErr := <-done
	l.unknown, l.missing = recs.header()
	switch {
	case writeErr != nil:
		return writeErr
	case readErr != nil:
		return readErr
	}
	return ctx.Err()
}

// prepare sets up the per-load state of check.
func (l *loader) prepare() {
	l.seed = maphash.MakeSeed()
	l.unique = make([]map[uint64]int64, len(l.schema.Columns))
	for i, c := range l.schema.Columns {
		if c.Unique {
			l.unique[i] = map[uint64]int64{}
		}
	}
	l.keyCol = -1
	if l.schema.Key != "" {
		l.keyCol = l.schema.column(l.schema.Key)
	}
	l.divCol = -1
	if d := l.schema.DivisionColumn(); d != "" {
		l.divCol = l.schema.column(d)
	}
}

func (l *loader) read(ctx context.Context, recs records, cnt *counter, ch chan<- *batch) error {
	b := &batch{rows: make([]rowOut, 0, l.opts.BatchSize)}
	send := func() error {
		b.ok, b.rejected, b.bytes = l.ok, l.rejected, cnt.n
		select {
		case ch <- b:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		b = &batch{rows: make([]rowOut, 0, l.opts.BatchSize)}
		return nil
	}
	var buf []byte
	issues := make([]Issue, 0, 4)
	values := make([]string, len(l.schema.Columns))
	for n := 0; ; n++ {
		if n&255 == 0 && ctx.Err() != nil {
			return context.Cause(ctx)
		}
		rec, err := recs.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			l.bytes = cnt.n
			return err
		}
		issues = l.check(rec, values, issues[:0])
		if len(issues) > 0 {
			l.rejected++
			for _, is := range issues {
				if l.storedRejects < MaxStoredRejects {
					l.storedRejects++
					b.rejects = append(b.rejects, rejectOut{seq: int64(l.storedRejects), line: rec.line, column: is.Column, err: is.Err})
				}
			}
			if l.opts.MaxRejects >= 0 && l.rejected > int64(l.opts.MaxRejects) {
				// Write the rejects gathered so far, so the failed version says why.
				if err := send(); err != nil {
					return err
				}
				l.bytes = cnt.n
				return i18n.Errorf(ErrTooManyRejects.Status, ErrTooManyRejects.Code,
					"被拒绝的行超过上限%d行（第%d行），导入已中止", "more than %d rows were rejected (at line %d); the load was stopped",
					l.opts.MaxRejects, rec.line)
			}
			continue
		}
		l.ok++
		row := rowOut{no: l.ok, line: rec.line}
		buf, err = l.encode(buf[:0], row.no, values)
		if err != nil {
			return err
		}
		row.data = string(buf)
		if l.keyCol >= 0 {
			row.key = sql.NullString{String: l.keyIndex(values[l.keyCol]), Valid: true}
		}
		if l.divCol >= 0 && values[l.divCol] != "" {
			row.division = sql.NullString{String: values[l.divCol], Valid: true}
		}
		b.rows = append(b.rows, row)
		if len(b.rows) >= l.opts.BatchSize || len(b.rejects) >= l.opts.BatchSize {
			if err := send(); err != nil {
				return err
			}
		}
	}
	l.bytes = cnt.n
	return send()
}

// check validates rec into values (normalised, by schema column) and returns its issues.
// Unique values are registered only for a row that is accepted, so a rejected row never
// makes a later, valid one a "duplicate".
func (l *loader) check(rec record, values []string, issues []Issue) []Issue {
	if rec.err != nil {
		return append(issues, Issue{Err: rec.err})
	}
	issues = append(issues, rec.issues...)
	for i := range l.schema.Columns {
		c := &l.schema.Columns[i]
		if hasIssue(issues, c.Name) {
			continue
		}
		v, err := l.norm.value(c, rec.cells[i])
		if err != nil {
			issues = append(issues, Issue{Column: c.Name, Err: err})
		}
		values[i] = v
	}
	if len(issues) > 0 {
		return issues
	}
	var hashes [8]uint64
	hs := hashes[:0]
	for i, set := range l.unique {
		if set == nil || values[i] == "" {
			hs = append(hs, 0)
			continue
		}
		h := maphash.String(l.seed, values[i])
		if first, dup := set[h]; dup {
			issues = append(issues, Issue{Column: l.schema.Columns[i].Name,
				Err: issue(ErrDuplicate, "值与第%d行重复", "value repeats line %d", first)})
		}
		hs = append(hs, h)
	}
	if len(issues) > 0 {
		return issues
	}
	for i, set := range l.unique {
		if set != nil && values[i] != "" {
			set[hs[i]] = rec.line
		}
	}
	return issues
}

func hasIssue(issues []Issue, col string) bool {
	for _, is := range issues {
		if is.Column == col {
			return true
		}
	}
	return false
}

// encode appends the row's JSON object to buf: column → normalised text, sensitive values
// as base64 of their sealed form.
func (l *loader) encode(buf []byte, rowNo int64, values []string) ([]byte, error) {
	buf = append(buf, '{')
	first := true
	for i, c := range l.schema.Columns {
		v := values[i]
		if v == "" {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = jsontext.AppendString(buf, c.Name)
		buf = append(buf, ':')
		if c.Sensitive {
			ct, err := l.s.fc.Seal(v, fieldAAD(l.id, l.version, rowNo, c.Name))
			if err != nil {
				return nil, fmt.Errorf("seal %s: %w", c.Name, err)
			}
			buf = append(buf, '"')
			buf = base64.StdEncoding.AppendEncode(buf, ct)
			buf = append(buf, '"')
			continue
		}
		buf = jsontext.AppendString(buf, v)
	}
	return append(buf, '}'), nil
}

func (l *loader) keyIndex(v string) string {
	return l.s.keyIndex(l.id, &l.schema.Columns[l.keyCol], v)
}

// keyIndex is what key_idx holds for key value v: its blind index when the column is
// sensitive (kind per dataset and column, so that the same person's index values cannot be
// joined across datasets), else v itself.
func (s *Service) keyIndex(id string, c *Column, v string) string {
	if c.Sensitive {
		return s.fc.BlindIndex("dataset:"+id+":"+c.Name, v)
	}
	return v
}

// fieldAAD binds a sealed value to its dataset, version, row and column.
func fieldAAD(id string, version int, rowNo int64, column string) string {
	return "dataset:" + id + ":" + strconv.Itoa(version) + ":" + strconv.FormatInt(rowNo, 10) + ":" + column
}

// write commits batches as they come, moving the version's counters and heartbeat with each.
func (l *loader) write(ctx context.Context, cancel context.CancelCauseFunc, ch <-chan *batch) error {
	var werr error
	stmts := map[int]string{}
	for b := range ch {
		if werr != nil {
			continue // drain, so the reader never blocks
		}
		if err := l.commit(ctx, b, stmts); err != nil {
			werr = err
			cancel(err)
			continue
		}
		if l.opts.Progress != nil {
			l.opts.Progress(Progress{Rows: b.ok + b.rejected, Bytes: b.bytes, TotalBytes: l.total, Rejected: b.rejected})
		}
	}
	return werr
}

const rowsPerInsert = 500 // 3,500 parameters: within both databases' limits, few round trips

func (l *loader) commit(ctx context.Context, b *batch, stmts map[int]string) error {
	d := l.s.d
	now := l.s.clock()
	return d.InTx(ctx, func(tx *db.Tx) error {
		args := make([]any, 0, 7*min(len(b.rows), rowsPerInsert))
		for i := 0; i < len(b.rows); i += rowsPerInsert {
			part := b.rows[i:min(i+rowsPerInsert, len(b.rows))]
			q, ok := stmts[len(part)]
			if !ok {
				q = d.Rebind(multiInsert(`INSERT INTO dataset_rows (dataset_id, version, row_no, line, key_idx, division, data) VALUES `, 7, len(part)))
				stmts[len(part)] = q
			}
			args = args[:0]
			for _, r := range part {
				args = append(args, l.id, l.version, r.no, r.line, r.key, r.division, r.data)
			}
			if _, err := tx.Tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("insert rows: %w", err)
			}
		}
		for i := 0; i < len(b.rejects); i += 200 {
			part := b.rejects[i:min(i+200, len(b.rejects))]
			q := d.Rebind(multiInsert(`INSERT INTO dataset_rejects (dataset_id, version, seq, line, column_name, code, reason_zh, reason_en) VALUES `, 8, len(part)))
			args := make([]any, 0, 8*len(part))
			for _, r := range part {
				args = append(args, l.id, l.version, r.seq, r.line, r.column, r.err.Code, r.err.Msg.ZH, r.err.Msg.EN)
			}
			if _, err := tx.Tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("insert rejects: %w", err)
			}
		}
		r, err := tx.Exec(ctx, `UPDATE dataset_versions SET rows_ok = ?, rows_rejected = ?, bytes_read = ?, heartbeat_at = ?
			WHERE dataset_id = ? AND version = ? AND status = 'loading'`, b.ok, b.rejected, b.bytes, now, l.id, l.version)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return errTakenOver
		}
		return nil
	})
}

// multiInsert is prefix followed by n groups of cols placeholders.
func multiInsert(prefix string, cols, n int) string {
	group := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var sb strings.Builder
	sb.Grow(len(prefix) + n*(len(group)+2))
	sb.WriteString(prefix)
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(group)
	}
	return sb.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

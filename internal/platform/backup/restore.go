package backup

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Replace deletes every row of the target (except the migration records) in the restore's
	// own transaction before inserting the backup's, and overwrites blobs whose key the backup
	// holds; blobs under other keys stay (a store can be shared, and deleting files is not
	// undone by a rollback). Without Replace, Restore touches nothing that is already there: it
	// refuses a database with any row in it, and a blob store holding a different file under a
	// key of the backup.
	//
	// A node that has started once is not empty — it made its keys, loaded divisions, and its
	// migrations seed a few rows — so restoring onto an installed node needs Replace; the CLI
	// asks for confirmation first.
	Replace bool
	// TrustedKeysPEM, when not empty, are the only keys a backup may be signed by (see
	// VerifyOptions).
	TrustedKeysPEM []string
	// Progress, if set, is called as the work advances (see the Stage constants).
	Progress func(stage string, done, total int64)
	// TempDir receives the unpacked backup while it is checked and restored (as much disk as
	// the uncompressed backup); empty means os.TempDir().
	TempDir string
	// BeforeCommit, if set, is called inside the restore's transaction when the database is
	// as it would be committed — every row inserted (under Replace, the target's own rows
	// gone), sequences moved on, triggers back — and before any blob is written. tx reads and
	// writes in that transaction; what it writes is committed with the restore.
	//
	// It is the place to check that this node can use the restored data, e.g. that the
	// restored keys open with its master key (crypto.CheckMasterKey): an error aborts the
	// restore, which then leaves the database and the blob store as they were, and Restore
	// returns it wrapped ("before commit: …") — inside ErrRestoreFailed unless it already
	// holds an i18n error; errors.Is matches the original either way. Should the database make
	// the transaction start over (db.InTx retries a deadlock or a serialization failure), it
	// is called again.
	BeforeCommit func(ctx context.Context, tx *db.Tx) error
}

func (o *RestoreOptions) progress(stage string, done, total int64) {
	if o.Progress != nil {
		o.Progress(stage, done, total)
	}
}

// Restore restores the backup read from r into d and blobs and returns its manifest.
//
// The target's schema must exist (the caller migrated it with this dgov) and be at exactly the
// backup's migration versions. Restore first reads the whole backup into TempDir and checks
// every file's SM3 digest and the signature — a tar stream can only be read once, front to
// back, and nothing may change before all of it is known good. Then, in one transaction, it
// inserts every row, parents before children, calls BeforeCommit, and writes the blobs just
// before committing: a corrupt file, a refused target, a failed insert or BeforeCommit leave
// the database as it was (and remove the blobs this restore added). Blobs that Replace
// overwrote cannot be put back, so nothing that can fail comes between them and the commit.
//
// Triggers are set aside while the rows go in (pg_dump --disable-triggers does the same):
// the rows are a copy of rows that already passed them, and append-only triggers such as the
// audit log's would otherwise forbid Replace. On PostgreSQL they are disabled with ALTER TABLE
// (which needs the table owner, the role that migrated), on SQLite dropped and re-created;
// either way in the same transaction, so they are back whatever happens.
func Restore(ctx context.Context, d *db.DB, blobs blob.Store, r io.Reader, opts RestoreOptions) (Manifest, error) {
	spool, err := os.MkdirTemp(opts.TempDir, "dgov-restore-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: temporary directory: %w", err)
	}
	defer os.RemoveAll(spool)
	a, err := readArchive(ctx, r, spool, func(n int64) { opts.progress(StageRead, n, 0) })
	if err != nil {
		return Manifest{}, err
	}
	m, err := a.check(opts.TrustedKeysPEM)
	if err != nil {
		return Manifest{}, err
	}
	if len(m.Blobs) > 0 && blobs == nil {
		return Manifest{}, fail(ErrBadOptions, "备份中有文件，但未提供文件存储", "the backup holds files but no blob store was given")
	}
	rs := &restorer{d: d, blobs: blobs, m: &m, a: a, opts: &opts}
	if !opts.Replace {
		if err := rs.checkBlobsAbsent(ctx); err != nil {
			return Manifest{}, err
		}
	}
	if err := rs.run(ctx); err != nil {
		return Manifest{}, err
	}
	opts.progress(StageRestore, 1, 1)
	return m, nil
}

type restorer struct {
	d     *db.DB
	blobs blob.Store
	m     *Manifest
	a     *archive
	opts  *RestoreOptions

	created []string // blob keys this restore added, removed again if it fails
}

// runner is what the restore needs of its transaction (the *sql.Tx of a *db.Tx, used directly
// for SQL that is already in the target's dialect).
type runner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// checkBlobsAbsent refuses, before anything is written, a blob store that holds a different
// file under a key of the backup. The same file already there is fine (and left alone).
func (rs *restorer) checkBlobsAbsent(ctx context.Context) error {
	var clash []string
	for _, b := range rs.m.Blobs {
		info, err := rs.blobs.Stat(ctx, b.Key)
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("backup: check blob %s: %w", b.Key, err)
		}
		if info.SM3 != b.SM3 {
			clash = append(clash, b.Key)
		}
	}
	if len(clash) > 0 {
		return fail(ErrTargetNotEmpty, "文件存储中已有同名的不同文件（%s）；如确认用备份替换，请使用替换模式",
			"the blob store already holds different files under the backup's keys (%s); to replace them, restore in replace mode", listSome(clash))
	}
	return nil
}

// run does the database part in one transaction, on the writer, through db.InTx (which gives
// BeforeCommit its *db.Tx). On SQLite the writer begins its transactions IMMEDIATE (see
// db.SQLiteWriterDSN), so the restore holds the write lock from the start; should COMMIT fail
// (SQLite keeps the transaction open when it does) the driver rolls it back before the
// connection returns to the pool.
func (rs *restorer) run(ctx context.Context) (err error) {
	if rs.d.Dialect != db.Postgres && rs.d.Dialect != db.SQLite {
		return fmt.Errorf("backup: unknown dialect %q", rs.d.Dialect)
	}
	committed := false
	defer func() {
		if !committed {
			rs.removeCreatedBlobs(context.WithoutCancel(ctx))
		}
		if err != nil {
			if _, ok := i18n.As(err); !ok && ctx.Err() == nil {
				err = ErrRestoreFailed.Wrap(err)
			}
		}
	}()
	if err := rs.d.InTx(ctx, func(tx *db.Tx) error { return rs.restore(ctx, tx) }); err != nil {
		return err
	}
	committed = true
	return nil
}

func (rs *restorer) restore(ctx context.Context, tx *db.Tx) error {
	var q runner = tx.Tx
	dialect := rs.d.Dialect
	switch dialect {
	case db.Postgres:
		// Restore is an offline operation; a running node holding locks makes it fail
		// clearly instead of waiting forever.
		if _, err := q.ExecContext(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
			return err
		}
	case db.SQLite:
		// Foreign keys are checked at COMMIT (and by foreign_key_check before it), so rows
		// may go in in any order.
		if _, err := q.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
	}
	s, err := discover(ctx, q, dialect)
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	if err := rs.checkSchema(ctx, q, s); err != nil {
		return err
	}
	var data []string // the target's data tables: everything but the migration records
	for _, n := range s.names {
		if !isSchemaTable(n) {
			data = append(data, n)
		}
	}
	order := insertOrder(s, data)
	if dialect == db.Postgres && len(data) > 0 {
		names := make([]string, len(data))
		for i, n := range data {
			names[i] = quote(n)
		}
		if _, err := q.ExecContext(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock tables: %w", err)
		}
	}
	var nonEmpty []string
	for _, n := range data {
		var one int
		err := q.QueryRowContext(ctx, `SELECT 1 FROM `+quote(n)+` LIMIT 1`).Scan(&one)
		if err == nil {
			nonEmpty = append(nonEmpty, n)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read %s: %w", n, err)
		}
	}
	if len(nonEmpty) > 0 && !rs.opts.Replace {
		return fail(ErrTargetNotEmpty, "目标数据库已有数据（表 %s）；如确认用备份替换，请使用替换模式",
			"the target database already holds data (tables %s); to replace it with the backup, restore in replace mode", listSome(nonEmpty))
	}
	if err := rs.setTriggers(ctx, q, s, false); err != nil {
		return err
	}
	if len(nonEmpty) > 0 {
		if err := rs.deleteAll(ctx, q, data, order); err != nil {
			return err
		}
	}
	var total, done int64
	entries := map[string]TableEntry{}
	for _, t := range rs.m.Tables {
		if !isSchemaTable(t.Name) {
			entries[t.Name] = t
			total += t.Rows
		}
	}
	for _, n := range order {
		te, ok := entries[n]
		if !ok || te.Rows == 0 {
			continue
		}
		if err := rs.insertTable(ctx, q, s.tables[n], te, func(k int64) {
			done += k
			rs.opts.progress(StageRows, done, total)
		}); err != nil {
			return err
		}
	}
	if dialect == db.Postgres {
		if err := resetSequences(ctx, q, s); err != nil {
			return err
		}
	}
	if err := rs.setTriggers(ctx, q, s, true); err != nil {
		return err
	}
	if rs.opts.BeforeCommit != nil {
		if err := rs.opts.BeforeCommit(ctx, tx); err != nil {
			return fmt.Errorf("before commit: %w", err)
		}
	}
	if dialect == db.SQLite {
		// After BeforeCommit, which may have written rows too.
		if err := foreignKeyCheck(ctx, q); err != nil {
			return err
		}
	}
	// Last: a blob that Replace overwrites cannot be put back, so nothing may fail after it
	// but the commit.
	return rs.putBlobs(ctx)
}

// checkSchema requires the target to be migrated exactly as the backup's source was, and to
// have every table and column the backup has rows for.
func (rs *restorer) checkSchema(ctx context.Context, q runner, s *schema) error {
	ms, rms, err := readMigrations(ctx, q, s)
	if err != nil {
		return err
	}
	type mig struct {
		source  string
		version int
		name    string
	}
	key := func(es []MigrationEntry) []mig {
		out := make([]mig, len(es))
		for i, e := range es {
			out[i] = mig{e.Source, e.Version, e.Name}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].source != out[j].source {
				return out[i].source < out[j].source
			}
			return out[i].version < out[j].version
		})
		return out
	}
	have, want := key(ms), key(rs.m.SchemaMigrations)
	same := len(have) == len(want)
	for i := 0; same && i < len(have); i++ {
		same = have[i] == want[i]
	}
	if !same {
		return fail(ErrSchemaMismatch, "备份的数据库结构版本与当前版本不同（备份：%s；当前：%s）",
			"the backup's schema version differs from this dgov's (backup: %s; this database: %s)",
			migrationSummary(rs.m.SchemaMigrations), migrationSummary(ms))
	}
	river := func(es []RiverMigrationEntry) string {
		parts := make([]string, len(es))
		for i, e := range es {
			parts[i] = e.Line + "/" + strconv.Itoa(e.Version)
		}
		sort.Strings(parts)
		return strings.Join(parts, ",")
	}
	if river(rms) != river(rs.m.RiverMigrations) {
		return fail(ErrSchemaMismatch, "备份的任务队列（River）结构版本与当前版本不同", "the backup's job queue (River) schema version differs from this dgov's")
	}
	for _, te := range rs.m.Tables {
		if isSchemaTable(te.Name) {
			continue
		}
		t := s.tables[te.Name]
		if t == nil {
			if te.Rows == 0 {
				continue // nothing to put there
			}
			return fail(ErrSchemaMismatch, "备份的数据库结构版本与当前版本不同：当前数据库没有表 %s",
				"the backup's schema version differs from this dgov's: this database has no table %s", te.Name)
		}
		for _, c := range te.Columns {
			if t.col(c.Name) == nil {
				return fail(ErrSchemaMismatch, "备份的数据库结构版本与当前版本不同：表 %s 没有列 %s",
					"the backup's schema version differs from this dgov's: table %s has no column %s", te.Name, c.Name)
			}
		}
	}
	return nil
}

// migrationSummary is "source@version, …" for messages.
func migrationSummary(ms []MigrationEntry) string {
	top := map[string]int{}
	for _, m := range ms {
		if m.Version > top[m.Source] {
			top[m.Source] = m.Version
		}
	}
	parts := make([]string, 0, len(top))
	for s, v := range top {
		parts = append(parts, fmt.Sprintf("%s@%d", s, v))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func listSome(names []string) string {
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + fmt.Sprintf(" … (+%d)", len(names)-8)
	}
	return strings.Join(names, ", ")
}

// setTriggers disables (on=false) or restores (on=true) the target's triggers.
func (rs *restorer) setTriggers(ctx context.Context, q runner, s *schema, on bool) error {
	switch rs.d.Dialect {
	case db.SQLite:
		for _, tr := range s.sqliteTriggers {
			stmt := `DROP TRIGGER ` + quote(tr[0])
			if on {
				stmt = tr[1]
			}
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("trigger %s: %w", tr[0], err)
			}
		}
	case db.Postgres:
		if on && len(s.pgTriggers) > 0 {
			// ALTER TABLE refuses a table with pending trigger events: fire any deferred
			// constraint checks now.
			if _, err := q.ExecContext(ctx, `SET CONSTRAINTS ALL IMMEDIATE`); err != nil {
				return err
			}
		}
		for _, tr := range s.pgTriggers {
			action := "DISABLE"
			if on {
				action = map[string]string{"A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}[tr.enabled]
				if action == "" {
					action = "ENABLE"
				}
			}
			if _, err := q.ExecContext(ctx, `ALTER TABLE `+quote(tr.table)+` `+action+` TRIGGER `+quote(tr.name)); err != nil {
				return fmt.Errorf("trigger %s on %s: %w", tr.name, tr.table, err)
			}
		}
	}
	return nil
}

// deleteAll empties the data tables for Replace.
func (rs *restorer) deleteAll(ctx context.Context, q runner, data, order []string) error {
	if rs.d.Dialect == db.Postgres {
		// One TRUNCATE of every table at once: foreign keys between them are no obstacle,
		// and it is transactional on PostgreSQL.
		names := make([]string, len(data))
		for i, n := range data {
			names[i] = quote(n)
		}
		if _, err := q.ExecContext(ctx, `TRUNCATE `+strings.Join(names, ", ")); err != nil {
			return fmt.Errorf("empty tables: %w", err)
		}
		return nil
	}
	for i := len(order) - 1; i >= 0; i-- {
		if _, err := q.ExecContext(ctx, `DELETE FROM `+quote(order[i])); err != nil {
			return fmt.Errorf("empty %s: %w", order[i], err)
		}
	}
	return nil
}

// Rows go in in multi-row INSERTs of up to maxBatchRows rows, maxBatchParams parameters
// (SQLite allows 32766, PostgreSQL 65535) and about maxBatchBytes of encoded rows.
const (
	maxBatchRows   = 256
	maxBatchParams = 8000
	maxBatchBytes  = 4 << 20
)

// insertTable inserts the rows of one table.
func (rs *restorer) insertTable(ctx context.Context, q runner, t *table, te TableEntry, progress func(int64)) error {
	f, err := os.Open(rs.a.files[tablesDir+te.Name+tableExt].path)
	if err != nil {
		return fmt.Errorf("backup: spool: %w", err)
	}
	defer f.Close()
	cols := make([]*column, len(te.Columns))
	index := make(map[string]int, len(te.Columns))
	identityAlways := false
	for i, c := range te.Columns {
		cols[i] = t.col(c.Name)
		index[c.Name] = i
		identityAlways = identityAlways || cols[i].identityAlways
	}
	batch := min(maxBatchRows, max(1, maxBatchParams/len(cols)))
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	args := make([]any, 0, batch*len(cols))
	rows, bytesIn := 0, 0
	var lineNo int64
	flush := func() error {
		if rows == 0 {
			return nil
		}
		var err error
		if rows == batch {
			if full == nil {
				if full, err = q.PrepareContext(ctx, insertSQL(rs.d.Dialect, t.name, cols, rows, identityAlways)); err != nil {
					return fmt.Errorf("insert into %s: %w", t.name, err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = q.ExecContext(ctx, insertSQL(rs.d.Dialect, t.name, cols, rows, identityAlways), args...)
		}
		if err != nil {
			return fmt.Errorf("insert into %s (rows up to %d): %w", t.name, lineNo, err)
		}
		progress(int64(rows))
		args, rows, bytesIn = args[:0], 0, 0
		return ctx.Err()
	}
	add := func(line []byte) error {
		lineNo++
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil || len(obj) != len(cols) {
			return valueError("表 %s 第 %d 行格式错误", "table %s row %d is malformed", t.name, lineNo)
		}
		start := len(args)
		args = args[:start+len(cols)]
		for name, raw := range obj {
			i, ok := index[name]
			if !ok {
				return valueError("表 %s 第 %d 行有清单未列出的列 %s", "table %s row %d has a column %s the manifest does not list", t.name, lineNo, name)
			}
			v, err := decodeValue(raw)
			if err == nil {
				v, err = convert(v, rs.d.Dialect, t.name, cols[i])
			}
			if err != nil {
				e := valueError("表 %s 第 %d 行列 %s 的值无法写入当前数据库：%v", "table %s row %d column %s cannot be stored in this database: %v", t.name, lineNo, name, err)
				e.Err = err
				return e
			}
			args[start+i] = v
		}
		rows++
		bytesIn += len(line)
		if rows == batch || bytesIn >= maxBatchBytes {
			return flush()
		}
		return nil
	}
	if spans, err := rs.rowOrder(f, t); err != nil {
		return err
	} else if spans != nil {
		// Parents first: read the rows at their offsets, in the computed order.
		var buf []byte
		for _, sp := range spans {
			if cap(buf) < sp.n {
				buf = make([]byte, sp.n)
			}
			buf = buf[:sp.n]
			if _, err := f.ReadAt(buf, sp.off); err != nil {
				return fmt.Errorf("backup: spool: %w", err)
			}
			if err := add(bytes.TrimSuffix(buf, []byte{'\n'})); err != nil {
				return err
			}
		}
		return flush()
	}
	br := bufio.NewReaderSize(f, 256<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if err := add(bytes.TrimSuffix(line, []byte{'\n'})); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("backup: spool: %w", err)
		}
	}
	return flush()
}

// valueError is an ErrValue that says, as ErrRestoreFailed does, that the restore changed
// nothing: it is found inside the restore's transaction, which is rolled back.
func valueError(zh, en string, args ...any) *i18n.Error {
	return fail(ErrValue, zh+"；目标数据库未作任何改动", en+"; the target database was not changed", args...)
}

// insertSQL is an INSERT of n rows into table.
func insertSQL(dialect db.Dialect, table string, cols []*column, n int, identityAlways bool) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + quote(table) + " (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(c.name))
	}
	b.WriteString(")")
	if identityAlways {
		b.WriteString(" OVERRIDING SYSTEM VALUE")
	}
	b.WriteString(" VALUES ")
	p := 0
	for r := 0; r < n; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			p++
			b.WriteString(placeholder(dialect, c, p))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// placeholder is the value expression of parameter p for column c.
func placeholder(dialect db.Dialect, c *column, p int) string {
	if dialect == db.SQLite {
		// Anonymous '?' only: SQLite looks numbered ones (?NNN) up in a list, which makes
		// binding a batch quadratic.
		if c.kind == KindJSON {
			// River's JSON columns hold SQLite's binary JSONB, as River writes them.
			return "(SELECT CASE WHEN json_valid(v, 1) THEN jsonb(v) ELSE v END FROM (SELECT ? AS v))"
		}
		return "?"
	}
	ph := "$" + strconv.Itoa(p)
	switch {
	case c.kind == KindArray:
		// A JSON array becomes the column's array type, element by element, in order.
		fn, elem := "jsonb_array_elements_text", c.elemType
		if c.elemJSON {
			fn = "jsonb_array_elements"
		}
		return fmt.Sprintf("CASE WHEN CAST(%[1]s AS jsonb) IS NULL THEN NULL ELSE ARRAY(SELECT CAST(e.v AS %[2]s) FROM %[3]s(CAST(%[1]s AS jsonb)) WITH ORDINALITY AS e(v, i) ORDER BY e.i) END",
			ph, elem, fn)
	case c.kind == KindBits:
		return "CAST(CAST(" + ph + " AS bigint) AS " + c.typ + ")"
	case c.kind == KindJSON, c.enum:
		return "CAST(" + ph + " AS " + c.typ + ")"
	}
	return ph
}

// span is one line of a spooled table file.
type span struct {
	off int64
	n   int
}

// rowOrder returns, for a table with a self-referencing foreign key restored into PostgreSQL,
// the order that puts every row after the row it references (nil: file order will do).
//
// PostgreSQL checks a foreign key at the end of each statement, so a child inserted before its
// parent fails. Of the two ways out — insert parents first, or insert the column as NULL and
// UPDATE it afterwards — parents first changes no value at any moment, so it also works for
// NOT NULL columns and CHECK constraints that involve the column. It costs a pass over the
// file and a few words of memory per row. SQLite needs none of this: it checks at COMMIT.
func (rs *restorer) rowOrder(f *os.File, t *table) ([]span, error) {
	if rs.d.Dialect != db.Postgres {
		return nil, nil
	}
	var self []foreignKey
	for _, fk := range t.fks {
		if fk.parent == t.name {
			self = append(self, fk)
		}
	}
	if len(self) == 0 {
		return nil, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	defer f.Seek(0, io.SeekStart) //nolint:errcheck // read with ReadAt afterwards
	var spans []span
	var deps [][]string // per row: "fk index \x00 referenced key" it needs
	keys := map[string]int{}
	br := bufio.NewReaderSize(f, 256<<10)
	var off int64
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			i := len(spans)
			spans = append(spans, span{off: off, n: len(line)})
			off += int64(len(line))
			var obj map[string]json.RawMessage
			if json.Unmarshal(line, &obj) != nil {
				return nil, valueError("表 %s 第 %d 行格式错误", "table %s row %d is malformed", t.name, i+1)
			}
			var d []string
			for k, fk := range self {
				if key, ok := rowKey(obj, fk.to); ok {
					keys[strconv.Itoa(k)+"\x00"+key] = i
				}
				if ref, ok := rowKey(obj, fk.from); ok {
					d = append(d, strconv.Itoa(k)+"\x00"+ref)
				}
			}
			deps = append(deps, d)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	// Kahn's algorithm over rows, ties in file order. A reference to a row that is not in the
	// table, or to the row itself, waits for nothing (the database judges it).
	children := make([][]int, len(spans))
	indeg := make([]int, len(spans))
	for i, d := range deps {
		for _, ref := range d {
			if p, ok := keys[ref]; ok && p != i {
				children[p] = append(children[p], i)
				indeg[i]++
			}
		}
	}
	out := make([]span, 0, len(spans))
	queue := make([]int, 0, len(spans))
	for i := range spans {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	placed := make([]bool, len(spans))
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		out = append(out, spans[i])
		placed[i] = true
		for _, c := range children[i] {
			if indeg[c]--; indeg[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	for i := range spans { // rows on a cycle: left for the database to refuse
		if !placed[i] {
			out = append(out, spans[i])
		}
	}
	return out, nil
}

// rowKey is the encoded values of cols in a row, or false when one is NULL.
func rowKey(obj map[string]json.RawMessage, cols []string) (string, bool) {
	var b strings.Builder
	for i, c := range cols {
		raw, ok := obj[c]
		if !ok || string(raw) == "null" {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0)
		}
		b.Write(raw)
	}
	return b.String(), true
}

// resetSequences moves every serial and identity sequence past the highest value restored, so
// the next insert gets a fresh id. It never moves a sequence back: setval is not undone by a
// rollback, and a failed Replace must not leave a sequence behind the rows still there.
func resetSequences(ctx context.Context, q runner, s *schema) error {
	for _, sq := range s.sequences {
		var top sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT MAX(`+quote(sq.column)+`)::bigint FROM `+quote(sq.table)).Scan(&top); err != nil {
			return fmt.Errorf("sequence %s: %w", sq.name, err)
		}
		if !top.Valid {
			continue
		}
		var last int64
		var called bool
		if err := q.QueryRowContext(ctx, `SELECT last_value, is_called FROM `+sq.name).Scan(&last, &called); err != nil {
			return fmt.Errorf("sequence %s: %w", sq.name, err)
		}
		v := top.Int64
		if called && last > v {
			v = last
		}
		if _, err := q.ExecContext(ctx, `SELECT setval($1::regclass, $2, true)`, sq.name, v); err != nil {
			return fmt.Errorf("sequence %s: %w", sq.name, err)
		}
	}
	return nil
}

// foreignKeyCheck reports rows whose parent is missing before SQLite would refuse the COMMIT.
func foreignKeyCheck(ctx context.Context, q runner) error {
	rows, err := q.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var tbl, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&tbl, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign key check: %w", err)
		}
		bad = append(bad, fmt.Sprintf("%s→%s", tbl, parent))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("foreign key check: %d rows reference missing rows (%s)", len(bad), listSome(bad))
	}
	return nil
}

// putBlobs writes the backup's blobs, skipping those already there with the same content.
func (rs *restorer) putBlobs(ctx context.Context) error {
	var total, done int64
	for _, b := range rs.m.Blobs {
		total += b.Size
	}
	for _, b := range rs.m.Blobs {
		rs.opts.progress(StageBlobs, done, total)
		info, err := rs.blobs.Stat(ctx, b.Key)
		existed := err == nil
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("blob %s: %w", b.Key, err)
		}
		if existed && info.SM3 == b.SM3 {
			done += b.Size
			continue
		}
		f, err := os.Open(rs.a.files[blobsDir+b.Key].path)
		if err != nil {
			return fmt.Errorf("backup: spool: %w", err)
		}
		_, err = rs.blobs.Put(ctx, b.Key, f, b.Size, b.ContentType)
		f.Close()
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Key, err)
		}
		if !existed {
			rs.created = append(rs.created, b.Key)
		}
		done += b.Size
	}
	rs.opts.progress(StageBlobs, total, total)
	return nil
}

func (rs *restorer) removeCreatedBlobs(ctx context.Context) {
	for _, k := range rs.created {
		_ = rs.blobs.Delete(ctx, k)
	}
	rs.created = nil
}

package backup

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/dgov/dgov/internal/platform/db"
)

// Tables that describe the schema rather than hold data. They are in the backup (their rows
// also in the manifest) but never restored: the target has its own rows, written when it was
// migrated, and Restore requires them to equal the backup's.
const (
	schemaMigrations = "schema_migrations"
	riverMigration   = "river_migration"
)

func isSchemaTable(name string) bool { return name == schemaMigrations || name == riverMigration }

// table is a table as the database describes it.
type table struct {
	name string
	cols []column
	pk   []string
	fks  []foreignKey
}

func (t *table) col(name string) *column {
	for i := range t.cols {
		if t.cols[i].name == name {
			return &t.cols[i]
		}
	}
	return nil
}

// column is a column as the database describes it.
type column struct {
	name string
	kind Kind
	typ  string // declared type (SQLite) or format_type (PostgreSQL)

	// PostgreSQL only.
	elemType       string // element type of an array column
	elemJSON       bool   // the array's elements are json or jsonb
	enum           bool   // a user-defined enum type
	identityAlways bool   // GENERATED ALWAYS AS IDENTITY: inserts need OVERRIDING SYSTEM VALUE
}

// foreignKey: columns from of the child reference columns to of parent.
type foreignKey struct {
	parent   string
	from, to []string
}

// schema is the current schema of a database: every table, in name order.
type schema struct {
	tables map[string]*table
	names  []string

	// sqliteTriggers are the triggers of a SQLite database (name, CREATE statement).
	sqliteTriggers [][2]string
	// pgTriggers are the enabled user triggers of a PostgreSQL schema.
	pgTriggers []pgTrigger
	// sequences are PostgreSQL's serial and identity sequences.
	sequences []sequence
}

type pgTrigger struct {
	table, name string
	enabled     string // pg_trigger.tgenabled: O (origin), A (always) or R (replica)
}

type sequence struct {
	table, column string
	name          string // regclass text, quoted as needed
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// discover reads the schema through q (inside the caller's transaction, so it matches the
// rows read or written there).
//
// Tables: SQLite, every type='table' entry of sqlite_master except SQLite's own sqlite_*
// (and except virtual tables and their shadow tables, which pragma_table_list tells apart:
// their rows are derived). PostgreSQL, every base table of current_schema() from
// information_schema.tables except partitions, whose rows are read and written through their
// partitioned parent. Both include River's river_* tables (so queued and scheduled jobs survive
// a restore) and schema_migrations.
func discover(ctx context.Context, q queryer, dialect db.Dialect) (*schema, error) {
	s := &schema{tables: map[string]*table{}}
	var err error
	switch dialect {
	case db.SQLite:
		err = discoverSQLite(ctx, q, s)
	case db.Postgres:
		err = discoverPostgres(ctx, q, s)
	default:
		err = fmt.Errorf("unknown dialect %q", dialect)
	}
	if err != nil {
		return nil, err
	}
	for n := range s.tables {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	return s, nil
}

func scanAll(ctx context.Context, q queryer, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func discoverSQLite(ctx context.Context, q queryer, s *schema) error {
	const tablesQ = `SELECT m.name FROM sqlite_master m
		JOIN pragma_table_list l ON l.schema = 'main' AND l.name = m.name
		WHERE m.type = 'table' AND l.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY m.name`
	if err := scanAll(ctx, q, tablesQ, func(r *sql.Rows) error {
		var n string
		if err := r.Scan(&n); err != nil {
			return err
		}
		s.tables[n] = &table{name: n}
		return nil
	}); err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	// pragma_table_info lists the stored columns (not generated ones) in declaration order.
	type pkCol struct {
		name string
		pos  int
	}
	pks := map[string][]pkCol{}
	const colsQ = `SELECT m.name, c.name, c.type, c.pk FROM sqlite_master m JOIN pragma_table_info(m.name) c
		WHERE m.type = 'table' ORDER BY m.name, c.cid`
	if err := scanAll(ctx, q, colsQ, func(r *sql.Rows) error {
		var tn, cn, typ string
		var pk int
		if err := r.Scan(&tn, &cn, &typ, &pk); err != nil {
			return err
		}
		t := s.tables[tn]
		if t == nil {
			return nil
		}
		t.cols = append(t.cols, column{name: cn, kind: sqliteKind(tn, cn, typ), typ: typ})
		if pk > 0 {
			pks[tn] = append(pks[tn], pkCol{cn, pk})
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list columns: %w", err)
	}
	for tn, cols := range pks {
		sort.Slice(cols, func(i, j int) bool { return cols[i].pos < cols[j].pos })
		for _, c := range cols {
			s.tables[tn].pk = append(s.tables[tn].pk, c.name)
		}
	}
	// A foreign key without a column list ("REFERENCES parent") references the parent's
	// primary key; pragma_foreign_key_list gives its "to" as NULL.
	type fkRow struct {
		child, parent, from string
		to                  sql.NullString
		id                  int
	}
	var fkRows []fkRow
	const fkQ = `SELECT m.name, f.id, f."table", f."from", f."to" FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
		WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq`
	if err := scanAll(ctx, q, fkQ, func(r *sql.Rows) error {
		var f fkRow
		if err := r.Scan(&f.child, &f.id, &f.parent, &f.from, &f.to); err != nil {
			return err
		}
		fkRows = append(fkRows, f)
		return nil
	}); err != nil {
		return fmt.Errorf("list foreign keys: %w", err)
	}
	for i := 0; i < len(fkRows); {
		j := i
		var fk foreignKey
		for ; j < len(fkRows) && fkRows[j].child == fkRows[i].child && fkRows[j].id == fkRows[i].id; j++ {
			fk.parent = fkRows[j].parent
			fk.from = append(fk.from, fkRows[j].from)
			if fkRows[j].to.Valid {
				fk.to = append(fk.to, fkRows[j].to.String)
			}
		}
		if p := s.tables[fk.parent]; p != nil && len(fk.to) == 0 {
			fk.to = p.pk
		}
		if c := s.tables[fkRows[i].child]; c != nil && s.tables[fk.parent] != nil {
			c.fks = append(c.fks, fk)
		}
		i = j
	}
	if err := scanAll(ctx, q, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL ORDER BY name`, func(r *sql.Rows) error {
		var tr [2]string
		if err := r.Scan(&tr[0], &tr[1]); err != nil {
			return err
		}
		s.sqliteTriggers = append(s.sqliteTriggers, tr)
		return nil
	}); err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	return nil
}

func discoverPostgres(ctx context.Context, q queryer, s *schema) error {
	const tablesQ = `SELECT t.table_name FROM information_schema.tables t
		JOIN pg_class c ON c.relname = t.table_name AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
		WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND NOT c.relispartition
		ORDER BY t.table_name`
	if err := scanAll(ctx, q, tablesQ, func(r *sql.Rows) error {
		var n string
		if err := r.Scan(&n); err != nil {
			return err
		}
		s.tables[n] = &table{name: n}
		return nil
	}); err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	// Columns with their type resolved through domains to the base type; generated columns are
	// left out (they cannot be inserted and are recomputed).
	const colsQ = `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), b.typname, b.typcategory,
			b.typtype, a.atttypmod,
			CASE WHEN b.typcategory = 'A' THEN format_type(b.typelem, NULL) ELSE '' END,
			COALESCE(e.typname, ''), a.attidentity
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_type t ON t.oid = a.atttypid
		JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
		LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
		WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relkind IN ('r', 'p')
			AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY c.relname, a.attnum`
	if err := scanAll(ctx, q, colsQ, func(r *sql.Rows) error {
		var tn, cn, typ, base, cat, typtype, elem, elemBase, ident string
		var typmod int
		if err := r.Scan(&tn, &cn, &typ, &base, &cat, &typtype, &typmod, &elem, &elemBase, &ident); err != nil {
			return err
		}
		t := s.tables[tn]
		if t == nil {
			return nil
		}
		c := column{name: cn, typ: typ, kind: pgKind(base, cat, typmod), elemType: elem,
			elemJSON: elemBase == "json" || elemBase == "jsonb", enum: typtype == "e", identityAlways: ident == "a"}
		t.cols = append(t.cols, c)
		return nil
	}); err != nil {
		return fmt.Errorf("list columns: %w", err)
	}
	const pkQ = `SELECT c.relname, a.attname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(n, ord)
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n
		WHERE i.indisprimary AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
		ORDER BY c.relname, k.ord`
	if err := scanAll(ctx, q, pkQ, func(r *sql.Rows) error {
		var tn, cn string
		if err := r.Scan(&tn, &cn); err != nil {
			return err
		}
		if t := s.tables[tn]; t != nil {
			t.pk = append(t.pk, cn)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list primary keys: %w", err)
	}
	// Foreign keys declared on the tables themselves (conparentid = 0: not the copies that
	// partitions inherit), with their column pairs in order.
	const fkQ = `SELECT ch.relname, c.conname, pa.relname, ca.attname, pc.attname
		FROM pg_constraint c
		JOIN pg_class ch ON ch.oid = c.conrelid
		JOIN pg_class pa ON pa.oid = c.confrelid
		CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(ck, pk, ord)
		JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.ck
		JOIN pg_attribute pc ON pc.attrelid = c.confrelid AND pc.attnum = k.pk
		WHERE c.contype = 'f' AND c.conparentid = 0
			AND ch.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND pa.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
		ORDER BY ch.relname, c.conname, k.ord`
	type fkKey struct{ child, name string }
	fks := map[fkKey]*foreignKey{}
	var order []fkKey
	if err := scanAll(ctx, q, fkQ, func(r *sql.Rows) error {
		var k fkKey
		var parent, from, to string
		if err := r.Scan(&k.child, &k.name, &parent, &from, &to); err != nil {
			return err
		}
		fk := fks[k]
		if fk == nil {
			fk = &foreignKey{parent: parent}
			fks[k] = fk
			order = append(order, k)
		}
		fk.from = append(fk.from, from)
		fk.to = append(fk.to, to)
		return nil
	}); err != nil {
		return fmt.Errorf("list foreign keys: %w", err)
	}
	for _, k := range order {
		if t := s.tables[k.child]; t != nil && s.tables[fks[k].parent] != nil {
			t.fks = append(t.fks, *fks[k])
		}
	}
	const trigQ = `SELECT c.relname, t.tgname, t.tgenabled::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgenabled <> 'D'
			AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
		ORDER BY c.relname, t.tgname`
	if err := scanAll(ctx, q, trigQ, func(r *sql.Rows) error {
		var tr pgTrigger
		if err := r.Scan(&tr.table, &tr.name, &tr.enabled); err != nil {
			return err
		}
		if s.tables[tr.table] != nil {
			s.pgTriggers = append(s.pgTriggers, tr)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	// Sequences owned by a column: 'a' for serial columns (OWNED BY), 'i' for identity columns.
	const seqQ = `SELECT c.relname, a.attname, s.oid::regclass::text
		FROM pg_depend d
		JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
		JOIN pg_class c ON c.oid = d.refobjid
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
		WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
			AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
		ORDER BY c.relname, a.attname`
	if err := scanAll(ctx, q, seqQ, func(r *sql.Rows) error {
		var sq sequence
		if err := r.Scan(&sq.table, &sq.column, &sq.name); err != nil {
			return err
		}
		if s.tables[sq.table] != nil {
			s.sequences = append(s.sequences, sq)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list sequences: %w", err)
	}
	return nil
}

// sqliteKind maps a declared SQLite type to a Kind, by SQLite's affinity rules (§3.1 of
// "Datatypes In SQLite": INT, then CHAR/CLOB/TEXT, then BLOB or none, then REAL/FLOA/DOUB,
// else NUMERIC), after the two conventions dgov's migrations rely on: BOOLEAN ({{BOOL}}) and
// the date types the driver reads as times (DATE, DATETIME, TIMESTAMP — {{TIME}}).
func sqliteKind(table, col, decl string) Kind {
	u := strings.ToUpper(strings.TrimSpace(decl))
	switch {
	case riverJSONColumn(table, col) && (u == "" || strings.Contains(u, "BLOB")):
		return KindJSON
	case u == "DATE" || u == "DATETIME" || u == "TIMESTAMP":
		return KindTime
	case strings.Contains(u, "BOOL"):
		return KindBool
	case strings.Contains(u, "INT"):
		return KindInt
	case strings.Contains(u, "CHAR"), strings.Contains(u, "CLOB"), strings.Contains(u, "TEXT"):
		return KindText
	case u == "", strings.Contains(u, "BLOB"):
		return KindBytes
	case strings.Contains(u, "REAL"), strings.Contains(u, "FLOA"), strings.Contains(u, "DOUB"):
		return KindFloat
	}
	return KindNumeric
}

// pgKind maps a PostgreSQL base type (name, pg_type.typcategory, typmod) to a Kind.
func pgKind(typname, category string, typmod int) Kind {
	switch {
	case category == "A":
		return KindArray
	case typname == "bool":
		return KindBool
	case typname == "int2", typname == "int4", typname == "int8", typname == "oid":
		return KindInt
	case typname == "float4", typname == "float8":
		return KindFloat
	case typname == "numeric":
		return KindNumeric
	case typname == "timestamptz", typname == "timestamp", typname == "date":
		return KindTime
	case typname == "bytea":
		return KindBytes
	case typname == "json", typname == "jsonb":
		return KindJSON
	case typname == "bit" && typmod >= 1 && typmod <= 64:
		// bit(n) travels as its integer value: River keeps its unique_states bit mask as
		// bit(8) on PostgreSQL and as an integer on SQLite, with the same bit order.
		return KindBits
	}
	return KindText
}

// River's SQLite schema keeps JSON in BLOB columns (as SQLite JSONB since its migration 7);
// SQLite declares no JSON type, so the columns are named here. On PostgreSQL the same columns
// are jsonb or arrays, which the catalog tells.
var riverJSON = map[string][]string{
	"river_job":          {"args", "attempted_by", "errors", "metadata", "tags"},
	"river_queue":        {"metadata"},
	"river_client":       {"metadata"},
	"river_client_queue": {"metadata"},
}

func riverJSONColumn(table, col string) bool {
	for _, c := range riverJSON[table] {
		if c == col {
			return true
		}
	}
	return false
}

// riverTimeLayout is how River's SQLite driver writes times, and the only form its queries
// compare correctly against SQLite's datetime('now', 'subsec'): UTC, milliseconds, no zone.
const riverTimeLayout = "2006-01-02 15:04:05.000"

func isRiverTable(name string) bool { return strings.HasPrefix(name, "river_") }

// insertOrder orders tables so that every table comes after the tables its foreign keys
// reference (Kahn's algorithm, ties by name). Self-references are left to the row order
// (parentFirst); tables on a cycle of several tables come last, by name — dgov's schema has
// none, and SQLite checks foreign keys only at commit anyway.
func insertOrder(s *schema, names []string) []string {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	indeg := map[string]int{}
	children := map[string][]string{}
	for _, n := range names {
		seen := map[string]bool{}
		for _, fk := range s.tables[n].fks {
			if fk.parent == n || !in[fk.parent] || seen[fk.parent] {
				continue
			}
			seen[fk.parent] = true
			indeg[n]++
			children[fk.parent] = append(children[fk.parent], n)
		}
	}
	var ready, out []string
	for _, n := range names {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	done := map[string]bool{}
	for len(ready) > 0 {
		sort.Strings(ready)
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		done[n] = true
		for _, c := range children[n] {
			if indeg[c]--; indeg[c] == 0 {
				ready = append(ready, c)
			}
		}
	}
	for _, n := range names {
		if !done[n] {
			out = append(out, n)
		}
	}
	return out
}

// quote quotes an identifier for both dialects.
func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// selectSQL is the query that reads every row of t for a backup, in primary-key order, and the
// positions of extra result columns after the table's own (column index → extra index).
//
// SQLite: every column as stored ("+c" has no declared type, so the driver hands over the
// stored value instead of converting what it takes for a time), plus, for River's JSON
// columns, the JSON text of SQLite's binary JSONB.
// PostgreSQL: values the driver returns natively, and text for the rest (numeric keeps its
// exact digits, arrays become JSON, enums and other types their text form).
func selectSQL(dialect db.Dialect, t *table) (string, map[int]int) {
	var b strings.Builder
	b.WriteString("SELECT ")
	extra := map[int]int{}
	var extras []string
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		q := quote(c.name)
		if dialect == db.SQLite {
			b.WriteString("+" + q)
			if c.kind == KindJSON {
				extra[i] = len(extras)
				extras = append(extras, fmt.Sprintf("CASE WHEN json_valid(%s, 9) THEN json(%s) END", q, q))
			}
			continue
		}
		switch c.kind {
		case KindArray:
			b.WriteString("to_jsonb(" + q + ")::text")
		case KindBits:
			b.WriteString(q + "::bigint")
		case KindJSON, KindNumeric, KindText:
			b.WriteString(q + "::text")
		default:
			b.WriteString(q)
		}
	}
	for _, e := range extras {
		b.WriteString(", " + e)
	}
	b.WriteString(" FROM " + quote(t.name))
	if len(t.pk) > 0 {
		b.WriteString(" ORDER BY ")
		for i, c := range t.pk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(c))
		}
	}
	return b.String(), extra
}

package dbtest

import (
	"context"
	"encoding/json"
	"testing"
	"testing/fstest"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
)

// AuditTable stands in for the audit engine in engine tests: a table test_audit that
// RecordAudit writes into, inside the caller's transaction as the real audit log does, so a
// test can check that a change and its audit entry commit or roll back together.
var AuditTable = db.Source{Name: "dbtest_audit", FS: fstest.MapFS{
	"0001_audit.sql": {Data: []byte(`CREATE TABLE test_audit (seq {{SERIAL}}, actor TEXT NOT NULL, action TEXT NOT NULL,
		object TEXT NOT NULL, detail TEXT NOT NULL)`)},
}}

// RecordAudit is an engine's audit hook (the AuditFunc every engine takes) over AuditTable.
func RecordAudit(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO test_audit (actor, action, object, detail) VALUES (?, ?, ?, ?)`,
		actor.String(), action, object, string(b))
	return err
}

// Strings runs a query of one text column and returns its values in order (audit actions,
// outbox subjects…), failing the test on an error.
func Strings(t testing.TB, d *db.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := d.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

package backup_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dgov/dgov/internal/platform/backup"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/jobs"
)

// testSource covers what a backup must carry across databases: every portable type, NULLs,
// an identity column, a chain of foreign keys whose alphabetical order is the reverse of the
// order rows must go in, a self-referencing table, and an append-only table guarded by
// triggers (as the audit log is).
var testSource = db.Source{Name: "backuptest", FS: fstest.MapFS{
	"0001_tables.sql": {Data: []byte(`
CREATE TABLE kinds (
	id         {{SERIAL}},
	label      TEXT NOT NULL,
	at         {{TIME}} NOT NULL,
	maybe_at   {{TIME}},
	data       {{BLOB}},
	flag       {{BOOL}} NOT NULL,
	maybe_flag {{BOOL}},
	big        {{BIGINT}} NOT NULL,
	ratio      DOUBLE PRECISION,
	note       TEXT
);
CREATE TABLE c_regions (
	code   TEXT PRIMARY KEY,
	name   TEXT NOT NULL,
	parent TEXT REFERENCES c_regions (code)
);
CREATE TABLE b_offices (
	id      TEXT PRIMARY KEY,
	region  TEXT NOT NULL REFERENCES c_regions (code),
	kind_id {{BIGINT}} REFERENCES kinds (id)
);
CREATE TABLE a_officers (
	id        TEXT PRIMARY KEY,
	office_id TEXT NOT NULL REFERENCES b_offices (id) ON DELETE CASCADE,
	name      TEXT NOT NULL
);
CREATE TABLE ledger (
	seq   {{BIGINT}} PRIMARY KEY,
	entry TEXT NOT NULL
);`)},
	"0002_ledger_guard.sqlite.sql": {Data: []byte(`
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;`)},
	"0002_ledger_guard.postgres.sql": {Data: []byte(`
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'ledger is append-only';
END
$$;
CREATE TRIGGER ledger_no_change BEFORE UPDATE OR DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();`)},
}}

// chainLen rows of c_regions each reference the next, in the reverse of their key order, and
// more of them than one INSERT statement takes: PostgreSQL accepts them only parents first.
const chainLen = 600

type pingArgs struct {
	N int `json:"n"`
}

func (pingArgs) Kind() string { return "backup_test_ping" }

type timerArgs struct {
	CaseID string `json:"case_id"`
	Note   string `json:"note"`
}

func (timerArgs) Kind() string { return "backup_test_timer" }

// node is one dgov node under test: its database, blob store and keys.
type node struct {
	d     *db.DB
	blobs *blob.Local
}

func newNode(t *testing.T, dialect db.Dialect, extra ...db.Source) *node {
	t.Helper()
	sources := append([]db.Source{crypto.Migrations, testSource}, extra...)
	var d *db.DB
	if dialect == db.SQLite {
		d = dbtest.SQLite(t, sources...)
	} else {
		d = dbtest.Postgres(t, sources...)
	}
	if _, err := jobs.Migrate(context.Background(), d); err != nil {
		t.Fatalf("river migrate: %v", err)
	}
	bs, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &node{d: d, blobs: bs}
}

func newMaster(t *testing.T) []byte {
	t.Helper()
	m := make([]byte, crypto.MasterKeySize)
	if _, err := rand.Read(m); err != nil {
		t.Fatal(err)
	}
	return m
}

// keys opens the node's keyring (creating its keys on first use) and returns it with the
// PEM of its active signing key.
func (n *node) keys(t *testing.T, master []byte) (*crypto.Keyring, string) {
	t.Helper()
	k, err := crypto.Open(context.Background(), n.d, master, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k, activePEM(k)
}

func activePEM(k *crypto.Keyring) string {
	for _, p := range k.PublicKeys() {
		if p.Active {
			return p.PEM
		}
	}
	return ""
}

var (
	unicodeLabel = "太原市小店区 🏛️ \"引号\" \\ <b>&amp;</b>\n第二行\t\u2028 ﷽"
	baseTime     = db.Now(time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC))
)

// fill gives the node rows in every test table, two River jobs and three blobs.
func (n *node) fill(t *testing.T) (scheduledJob, availableJob int64) {
	t.Helper()
	ctx := context.Background()
	d := n.d
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := d.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	random := make([]byte, 300)
	rand.Read(random)
	random[0], random[1] = 0, 0
	ins := `INSERT INTO kinds (label, at, maybe_at, data, flag, maybe_flag, big, ratio, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	exec(ins, unicodeLabel, baseTime, nil, random, true, nil, int64(math.MaxInt64), 0.1, nil)
	exec(ins, "", time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC), baseTime.Add(-time.Hour), []byte{}, false, false, int64(math.MinInt64), -1e300, "x")
	exec(ins, "deleted", baseTime, nil, nil, true, true, int64(1), 1.0, nil)
	exec(ins, "plain", baseTime.Add(time.Microsecond), baseTime, nil, true, true, int64(1)<<53+1, 1.0, "NULL")
	exec(ins, "inf", baseTime, nil, []byte("x"), false, nil, int64(-1), math.Inf(1), "")
	exec(`DELETE FROM kinds WHERE label = 'deleted'`) // a gap, so the highest id is not the count
	// A time as SQLite's CURRENT_TIMESTAMP writes it: a form of its own, which a restore into
	// SQLite keeps.
	if d.Dialect == db.SQLite {
		exec(`UPDATE kinds SET maybe_at = '2026-03-04 05:06:07' WHERE label = 'plain'`)
	} else {
		exec(`UPDATE kinds SET maybe_at = ? WHERE label = 'plain'`, time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	}
	// Codes sort children first: r0000's parent is r0001, …; r0599 is the root (inserted
	// first, as the source must).
	for i := chainLen - 1; i >= 0; i-- {
		var parent any
		if i < chainLen-1 {
			parent = fmt.Sprintf("r%04d", i+1)
		}
		exec(`INSERT INTO c_regions (code, name, parent) VALUES (?, ?, ?)`, fmt.Sprintf("r%04d", i), fmt.Sprintf("区划 %d", i), parent)
	}
	exec(`INSERT INTO c_regions (code, name, parent) VALUES ('self', '自指', 'self')`)
	exec(`INSERT INTO b_offices (id, region, kind_id) VALUES ('o1', 'r0000', 1), ('o2', 'self', NULL)`)
	exec(`INSERT INTO a_officers (id, office_id, name) VALUES ('p1', 'o1', '张三'), ('p2', 'o2', 'Li Si')`)
	exec(`INSERT INTO ledger (seq, entry) VALUES (1, 'opened'), (2, '已审批')`)

	q, err := jobs.New(d, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	res, err := q.InsertAt(ctx, timerArgs{CaseID: "case-1", Note: "催办 <提醒>"}, time.Now().Add(48*time.Hour), &jobs.InsertOpts{Tags: []string{"sla", "case-1"}})
	if err != nil {
		t.Fatal(err)
	}
	scheduledJob = res.Job.ID
	res, err = q.Insert(ctx, pingArgs{N: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	availableJob = res.Job.ID
	// An error and a worker name, so River's array columns (jsonb[] and text[] on
	// PostgreSQL, JSON on SQLite) carry something.
	errJSON := `{"at":"2026-03-04T05:06:07.123456Z","attempt":1,"error":"第一次失败","trace":""}`
	if d.Dialect == db.SQLite {
		exec(`UPDATE river_job SET errors = jsonb(?), attempted_by = jsonb(?) WHERE id = ?`, "["+errJSON+"]", `["node-a"]`, scheduledJob)
	} else {
		exec(`UPDATE river_job SET errors = ARRAY[?::jsonb], attempted_by = ARRAY['node-a'] WHERE id = ?`, errJSON, scheduledJob)
	}

	for _, b := range testBlobs {
		if _, err := n.blobs.Put(ctx, b.key, strings.NewReader(b.data), int64(len(b.data)), b.contentType); err != nil {
			t.Fatal(err)
		}
	}
	return scheduledJob, availableJob
}

var testBlobs = []struct{ key, data, contentType string }{
	{"materials/2026/申请表.pdf", strings.Repeat("%PDF-1.7 申请表\x00\x01", 5000), "application/pdf"},
	{"exports/empty.csv", "", "text/csv"},
	{"a/b/c.txt", "hello", ""},
}

// dump reads every test table in key order, each value in a form that compares equal across
// databases exactly when the values are equal.
func dump(t *testing.T, d *db.DB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	rows, err := d.Query(ctx, `SELECT id, label, at, maybe_at, data, data IS NULL, flag, maybe_flag, big, ratio, note FROM kinds ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, big int64
		var label string
		var at time.Time
		var maybeAt sql.NullTime
		var data []byte
		var dataNull, flag bool
		var maybeFlag sql.NullBool
		var ratio sql.NullFloat64
		var note sql.NullString
		if err := rows.Scan(&id, &label, &at, &maybeAt, &data, &dataNull, &flag, &maybeFlag, &big, &ratio, &note); err != nil {
			t.Fatal(err)
		}
		out["kinds"] = append(out["kinds"], fmt.Sprintf("%d|%q|%s|%v/%s|%x/%v|%v|%v|%d|%v|%s",
			id, label, at.UTC().Format(time.RFC3339Nano), maybeAt.Valid, maybeAt.Time.UTC().Format(time.RFC3339Nano),
			data, dataNull, flag, maybeFlag, big, ratio, fmt.Sprintf("%v/%q", note.Valid, note.String)))
	}
	rows.Close()
	for _, q := range []struct{ name, sql string }{
		{"c_regions", `SELECT code, name, COALESCE(parent, '<null>') FROM c_regions ORDER BY code`},
		{"b_offices", `SELECT id, region, COALESCE(CAST(kind_id AS TEXT), '<null>') FROM b_offices ORDER BY id`},
		{"a_officers", `SELECT id, office_id, name FROM a_officers ORDER BY id`},
		{"ledger", `SELECT CAST(seq AS TEXT), entry, '' FROM ledger ORDER BY seq`},
	} {
		rows, err := d.Query(ctx, q.sql)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b, c string
			if err := rows.Scan(&a, &b, &c); err != nil {
				t.Fatal(err)
			}
			out[q.name] = append(out[q.name], a+"|"+b+"|"+c)
		}
		rows.Close()
	}
	return out
}

func sameDump(t *testing.T, what string, want, got map[string][]string) {
	t.Helper()
	for table, rows := range want {
		if len(got[table]) != len(rows) {
			t.Errorf("%s: table %s has %d rows, want %d", what, table, len(got[table]), len(rows))
			continue
		}
		for i := range rows {
			if got[table][i] != rows[i] {
				t.Errorf("%s: %s row %d:\n got %s\nwant %s", what, table, i, got[table][i], rows[i])
			}
		}
	}
}

// jobSummary is what must survive of a River job.
func jobSummary(t *testing.T, d *db.DB, id int64) string {
	t.Helper()
	q, err := jobs.New(d, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	j, err := q.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("job %d after restore: %v", id, err)
	}
	var args any
	if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, e := range j.Errors {
		errs = append(errs, fmt.Sprintf("%d:%s@%s", e.Attempt, e.Error, e.At.UTC().Round(time.Millisecond).Format(time.RFC3339Nano)))
	}
	return fmt.Sprintf("%s %v %s %v %s q=%s p=%d max=%d tags=%v by=%v errs=%v unique=%x/%v",
		j.Kind, args, j.State, j.ScheduledAt.UTC().Round(time.Millisecond).Format(time.RFC3339Nano),
		j.CreatedAt.UTC().Round(time.Millisecond).Format(time.RFC3339Nano), j.Queue, j.Priority, j.MaxAttempts,
		j.Tags, j.AttemptedBy, errs, j.UniqueKey, j.UniqueStates)
}

func blobSummary(t *testing.T, s blob.Store) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), "", func(i blob.Info) error {
		rc, _, err := s.Get(context.Background(), i.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %s %s %s", i.Key, i.Size, i.SM3, i.ContentType, crypto.SM3Hex(b)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func create(t *testing.T, n *node, k *crypto.Keyring, pem string) ([]byte, backup.Manifest) {
	t.Helper()
	var buf bytes.Buffer
	var stages []string
	m, err := backup.Create(context.Background(), n.d, n.blobs, &buf, backup.Options{
		Signer: k, PublicKeyPEM: pem, Version: "test-1.0",
		Progress: func(stage string, done, total int64) {
			if len(stages) == 0 || stages[len(stages)-1] != stage {
				stages = append(stages, stage)
			}
		},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if strings.Join(stages, ",") != "tables,blobs" {
		t.Errorf("progress stages %v", stages)
	}
	return buf.Bytes(), m
}

// TestRoundTrips backs up, restores into the other database (or the same), backs the restored
// node up again and restores that, comparing every row, River job and blob at each hop.
func TestRoundTrips(t *testing.T) {
	for _, path := range [][]db.Dialect{
		{db.SQLite, db.Postgres, db.SQLite},
		{db.Postgres, db.SQLite, db.Postgres},
		{db.SQLite, db.SQLite},
		{db.Postgres, db.Postgres},
	} {
		var names []string
		for _, d := range path {
			names = append(names, string(d))
		}
		t.Run(strings.Join(names, "→"), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			master := newMaster(t)
			src := newNode(t, path[0])
			k, pem := src.keys(t, master)
			scheduled, available := src.fill(t)
			want := dump(t, src.d)
			wantJobs := []string{jobSummary(t, src.d, scheduled), jobSummary(t, src.d, available)}
			wantBlobs := blobSummary(t, src.blobs)
			wantRawTimes := rawTimes(t, src.d)

			cur := src
			for hop, to := range path[1:] {
				file, m := create(t, cur, k, pem)
				if m.Dialect != cur.d.Dialect || m.DgovVersion != "test-1.0" || len(m.Blobs) != len(testBlobs) || m.SignedBy != k.ActiveKeyID() {
					t.Fatalf("manifest: %+v", m)
				}
				if _, err := backup.Verify(bytes.NewReader(file), backup.VerifyOptions{TrustedKeysPEM: []string{pem}}); err != nil {
					t.Fatalf("verify: %v", err)
				}
				dst := newNode(t, to)
				var rows int64
				got, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{
					TrustedKeysPEM: []string{pem},
					Progress: func(stage string, done, total int64) {
						if stage == backup.StageRows {
							rows = done
						}
					},
				})
				if err != nil {
					t.Fatalf("hop %d (%s→%s): restore: %v", hop+1, cur.d.Dialect, to, err)
				}
				if !got.Created.Equal(m.Created) || rows < chainLen {
					t.Errorf("restore returned %v, reported %d rows", got.Created, rows)
				}
				what := fmt.Sprintf("hop %d (%s→%s)", hop+1, cur.d.Dialect, to)
				sameDump(t, what, want, dump(t, dst.d))
				checkTimeForms(t, what, dst.d)
				for i, id := range []int64{scheduled, available} {
					if s := jobSummary(t, dst.d, id); s != wantJobs[i] {
						t.Errorf("%s: job %d:\n got %s\nwant %s", what, id, s, wantJobs[i])
					}
				}
				if got := blobSummary(t, dst.blobs); strings.Join(got, "\n") != strings.Join(wantBlobs, "\n") {
					t.Errorf("%s: blobs:\n got %v\nwant %v", what, got, wantBlobs)
				}
				// The keys came along, wrapped: the master key opens them, and the node
				// signs with the same key as before.
				k2, err := crypto.Open(ctx, dst.d, master, nil)
				if err != nil {
					t.Fatalf("%s: keyring after restore: %v", what, err)
				}
				if k2.ActiveKeyID() != k.ActiveKeyID() || activePEM(k2) != pem {
					t.Errorf("%s: restored keyring has key %s, want %s", what, k2.ActiveKeyID(), k.ActiveKeyID())
				}
				if _, err := crypto.Open(ctx, dst.d, newMaster(t), nil); !errors.Is(err, crypto.ErrMasterKeyMismatch) {
					t.Errorf("%s: another master key opened the restored keys: %v", what, err)
				}
				cur = dst
			}
			// From SQLite to SQLite the stored text of times is the original's: SQLite
			// compares times as text, so the form matters, not only the instant.
			if len(path) == 2 && path[0] == db.SQLite && path[1] == db.SQLite {
				if got := rawTimes(t, cur.d); strings.Join(got, "\n") != strings.Join(wantRawTimes, "\n") {
					t.Errorf("raw SQLite times:\n got %v\nwant %v", got, wantRawTimes)
				}
			}
			afterRestore(t, cur, available)
		})
	}
}

// rawTimes is the stored text of SQLite time columns (nil on PostgreSQL).
func rawTimes(t *testing.T, d *db.DB) []string {
	t.Helper()
	if d.Dialect != db.SQLite {
		return nil
	}
	var out []string
	for _, q := range []string{
		`SELECT +at || ' ' || COALESCE(+maybe_at, '-') FROM kinds ORDER BY id`,
		`SELECT +scheduled_at || ' ' || +created_at FROM river_job ORDER BY id`,
	} {
		rows, err := d.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		rows.Close()
	}
	return out
}

// checkTimeForms: on SQLite, times from PostgreSQL are written as their writers write them —
// River's in River's own form (its queries compare them as text against datetime('now',
// 'subsec')), dgov's as the driver writes a time.Time.
func checkTimeForms(t *testing.T, what string, d *db.DB) {
	t.Helper()
	if d.Dialect != db.SQLite {
		return
	}
	river := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?$`)
	driver := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00$`)
	for _, c := range []struct {
		re *regexp.Regexp
		q  string
	}{
		{river, `SELECT +scheduled_at FROM river_job UNION ALL SELECT +created_at FROM river_job`},
		{driver, `SELECT +at FROM kinds`},
	} {
		rows, err := d.Query(context.Background(), c.q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			if !c.re.MatchString(s) {
				t.Errorf("%s: stored time %q is not in the form %s", what, s, c.re)
			}
		}
		rows.Close()
	}
}

// afterRestore checks the restored node works: new rows get fresh ids (PostgreSQL sequences
// were moved past the restored rows), the append-only triggers are back, and River works the
// restored job.
func afterRestore(t *testing.T, n *node, available int64) {
	t.Helper()
	ctx := context.Background()
	var id int64
	if n.d.Dialect == db.Postgres {
		if err := n.d.QueryRow(ctx, `INSERT INTO kinds (label, at, flag, big) VALUES ('new', ?, TRUE, 0) RETURNING id`, baseTime).Scan(&id); err != nil {
			t.Fatalf("insert after restore: %v", err)
		}
	} else {
		res, err := n.d.Exec(ctx, `INSERT INTO kinds (label, at, flag, big) VALUES ('new', ?, TRUE, 0)`, baseTime)
		if err != nil {
			t.Fatalf("insert after restore: %v", err)
		}
		id, _ = res.LastInsertId()
	}
	if id != 6 {
		t.Errorf("new row got id %d, want 6", id)
	}
	if _, err := n.d.Exec(ctx, `DELETE FROM ledger WHERE seq = 1`); err == nil {
		t.Error("the ledger's append-only trigger is gone after restore")
	}

	ran := make(chan int, 1)
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[pingArgs]) error {
		ran <- j.Args.N
		return nil
	}))
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[timerArgs]) error { return nil }))
	q, err := jobs.New(n.d, jobs.Config{Workers: w, PollInterval: 50 * time.Millisecond, Test: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = q.Stop(sctx)
		_ = q.Close()
	}()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ran:
		if got != 7 {
			t.Errorf("restored job ran with %d", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the restored available job %d did not run", available)
	}
	res, err := q.Insert(ctx, pingArgs{N: 8}, nil)
	if err != nil {
		t.Fatalf("new job after restore: %v", err)
	}
	if res.Job.ID <= available {
		t.Errorf("new job id %d reuses a restored id (≤ %d)", res.Job.ID, available)
	}
	select {
	case <-ran:
	case <-time.After(15 * time.Second):
		t.Fatal("a new job did not run after restore")
	}
}

// source builds a filled node with its keyring and a backup of it.
func source(t *testing.T, dialect db.Dialect) (*node, []byte, string) {
	t.Helper()
	n := newNode(t, dialect)
	k, pem := n.keys(t, newMaster(t))
	n.fill(t)
	file, _ := create(t, n, k, pem)
	return n, file, pem
}

func eachDialect(t *testing.T, fn func(t *testing.T, dialect db.Dialect)) {
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// otherDialect makes each test restore across databases.
func otherDialect(d db.Dialect) db.Dialect {
	if d == db.SQLite {
		return db.Postgres
	}
	return db.SQLite
}

func TestRestoreRefusesNonEmptyTarget(t *testing.T) {
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		ctx := context.Background()
		src, file, _ := source(t, otherDialect(dialect))
		dst := newNode(t, dialect)
		// The target has one row and one different file under a key of the backup.
		if _, err := dst.d.Exec(ctx, `INSERT INTO ledger (seq, entry) VALUES (99, 'mine')`); err != nil {
			t.Fatal(err)
		}
		before := dump(t, dst.d)
		_, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{})
		if !errors.Is(err, backup.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "ledger") {
			t.Fatalf("restore into a non-empty database: %v", err)
		}
		var ie *i18n.Error
		if !errors.As(err, &ie) || ie.Msg.ZH == "" || ie.Msg.EN == "" {
			t.Fatalf("want a bilingual i18n error, got %#v", err)
		}
		sameDump(t, "refused restore", before, dump(t, dst.d))
		if got := blobSummary(t, dst.blobs); len(got) != 0 {
			t.Errorf("refused restore wrote blobs: %v", got)
		}

		// A clashing file alone is refused too, and left as it was.
		if _, err := dst.d.Exec(ctx, `DELETE FROM ledger WHERE seq = 99`); err == nil {
			t.Fatal("append-only trigger missing")
		}
		dst2 := newNode(t, dialect)
		if _, err := dst2.blobs.Put(ctx, "a/b/c.txt", strings.NewReader("mine"), 4, ""); err != nil {
			t.Fatal(err)
		}
		_, err = backup.Restore(ctx, dst2.d, dst2.blobs, bytes.NewReader(file), backup.RestoreOptions{})
		if !errors.Is(err, backup.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "a/b/c.txt") {
			t.Fatalf("restore over a different file: %v", err)
		}
		if got := blobSummary(t, dst2.blobs); len(got) != 1 || !strings.HasPrefix(got[0], "a/b/c.txt 4 ") {
			t.Errorf("refused restore touched the blob store: %v", got)
		}
		if n := count(t, dst2.d, "kinds"); n != 0 {
			t.Errorf("refused restore inserted %d rows", n)
		}

		// With Replace the backup replaces both, append-only table included.
		if _, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true}); err != nil {
			t.Fatalf("restore with Replace: %v", err)
		}
		sameDump(t, "replaced", dump(t, src.d), dump(t, dst.d))
		if n := count(t, dst.d, "ledger"); n != 2 {
			t.Errorf("ledger has %d rows after Replace, want the backup's 2", n)
		}
		if _, err := backup.Restore(ctx, dst2.d, dst2.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true}); err != nil {
			t.Fatalf("restore with Replace: %v", err)
		}
		if got, want := blobSummary(t, dst2.blobs), blobSummary(t, src.blobs); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("blobs after Replace:\n got %v\nwant %v", got, want)
		}
		if _, err := dst.d.Exec(ctx, `DELETE FROM ledger WHERE seq = 1`); err == nil {
			t.Error("the append-only trigger is gone after Replace")
		}
		// Replacing again (the node now holds the backup's rows) works as well.
		if _, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true}); err != nil {
			t.Fatalf("second restore with Replace: %v", err)
		}
		sameDump(t, "replaced twice", dump(t, src.d), dump(t, dst.d))
	})
}

func count(t *testing.T, d *db.DB, table string) int {
	t.Helper()
	var n int
	if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rewrite copies a backup, letting edit change, drop (nil) or keep each entry's content, and
// append extra entries; the result is a valid tar.gz.
func rewrite(t *testing.T, file []byte, edit func(name string, data []byte) []byte, extra map[string][]byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	put := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if data = edit(h.Name, data); data != nil {
			put(h.Name, data)
		}
	}
	for name, data := range extra {
		put(name, data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func flipByte(name string) func(string, []byte) []byte {
	return func(n string, data []byte) []byte {
		if n == name {
			data = bytes.Clone(data)
			i := bytes.Index(data, []byte("张三"))
			if i < 0 {
				i = len(data) / 2
			}
			data[i] ^= 0x01
		}
		return data
	}
}

func keep(_ string, data []byte) []byte { return data }

func TestTamperedBackupIsRefused(t *testing.T) {
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		ctx := context.Background()
		_, file, pem := source(t, dialect)
		if _, err := backup.Verify(bytes.NewReader(rewrite(t, file, keep, nil)), backup.VerifyOptions{}); err != nil {
			t.Fatalf("an unchanged copy must verify: %v", err)
		}
		// A manifest with one changed value and a signature that no longer matches it.
		editManifest := func(name string, data []byte) []byte {
			if name == "manifest.json" {
				return bytes.Replace(data, []byte(`"dgov_version": "test-1.0"`), []byte(`"dgov_version": "test-1.1"`), 1)
			}
			return data
		}
		cases := map[string][]byte{
			"table byte": rewrite(t, file, flipByte("tables/a_officers.jsonl"), nil),
			"blob byte":  rewrite(t, file, flipByte("blobs/materials/2026/申请表.pdf"), nil),
			"manifest":   rewrite(t, file, editManifest, nil),
			"missing table": rewrite(t, file, func(n string, d []byte) []byte {
				return map[bool][]byte{true: nil, false: d}[n == "tables/ledger.jsonl"]
			}, nil),
			"missing sig":    rewrite(t, file, func(n string, d []byte) []byte { return map[bool][]byte{true: nil, false: d}[n == "manifest.sig"] }, nil),
			"extra blob":     rewrite(t, file, keep, map[string][]byte{"blobs/planted.txt": []byte("x")}),
			"unknown entry":  rewrite(t, file, keep, map[string][]byte{"../../etc/passwd": []byte("x")}),
			"truncated file": file[:len(file)*2/3],
			"not gzip":       []byte("this is not a backup"),
		}
		for name, bad := range cases {
			if _, err := backup.Verify(bytes.NewReader(bad), backup.VerifyOptions{}); !errors.Is(err, backup.ErrCorrupt) {
				t.Errorf("%s: Verify: %v, want ErrCorrupt", name, err)
			}
		}

		// Restore refuses it too and leaves a target it was told to replace as it was.
		dst := newNode(t, otherDialect(dialect))
		if _, err := dst.d.Exec(ctx, `INSERT INTO ledger (seq, entry) VALUES (99, 'mine')`); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.blobs.Put(ctx, "mine.txt", strings.NewReader("mine"), 4, ""); err != nil {
			t.Fatal(err)
		}
		before, beforeBlobs := dump(t, dst.d), blobSummary(t, dst.blobs)
		for _, name := range []string{"table byte", "blob byte", "manifest"} {
			_, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(cases[name]), backup.RestoreOptions{Replace: true, TrustedKeysPEM: []string{pem}})
			if !errors.Is(err, backup.ErrCorrupt) {
				t.Errorf("%s: Restore: %v, want ErrCorrupt", name, err)
			}
			sameDump(t, name, before, dump(t, dst.d))
			if got := blobSummary(t, dst.blobs); strings.Join(got, "\n") != strings.Join(beforeBlobs, "\n") {
				t.Errorf("%s: blobs changed: %v", name, got)
			}
		}
	})
}

func TestUntrustedSigningKey(t *testing.T) {
	ctx := context.Background()
	_, file, pem := source(t, db.SQLite)
	other := newNode(t, db.SQLite)
	_, otherPEM := other.keys(t, newMaster(t))
	if _, err := backup.Verify(bytes.NewReader(file), backup.VerifyOptions{TrustedKeysPEM: []string{otherPEM}}); !errors.Is(err, backup.ErrUntrustedKey) {
		t.Fatalf("Verify with another node's key: %v, want ErrUntrustedKey", err)
	}
	if _, err := backup.Verify(bytes.NewReader(file), backup.VerifyOptions{TrustedKeysPEM: []string{otherPEM, pem}}); err != nil {
		t.Fatalf("Verify with the signer among the trusted keys: %v", err)
	}
	if _, err := backup.Verify(bytes.NewReader(file), backup.VerifyOptions{TrustedKeysPEM: []string{"not a key"}}); !errors.Is(err, backup.ErrBadOptions) {
		t.Fatalf("Verify with a malformed trusted key: %v", err)
	}
	dst := newNode(t, db.SQLite)
	_, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{TrustedKeysPEM: []string{otherPEM}})
	if !errors.Is(err, backup.ErrUntrustedKey) {
		t.Fatalf("Restore with another node's key: %v, want ErrUntrustedKey", err)
	}
	if n := count(t, dst.d, "kinds"); n != 0 {
		t.Errorf("refused restore inserted %d rows", n)
	}

}

func TestSchemaVersionMismatch(t *testing.T) {
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		ctx := context.Background()
		_, file, _ := source(t, db.SQLite)
		newer := db.Source{Name: "zz_newer", FS: fstest.MapFS{"0001_x.sql": {Data: []byte(`CREATE TABLE zz (id TEXT PRIMARY KEY)`)}}}
		dst := newNode(t, dialect, newer)
		_, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true})
		if !errors.Is(err, backup.ErrSchemaMismatch) || !strings.Contains(err.Error(), "备份的数据库结构版本与当前版本不同") ||
			!strings.Contains(err.Error(), "the backup's schema version differs from this dgov's") {
			t.Fatalf("restore into a newer schema: %v", err)
		}
		if n := count(t, dst.d, "kinds"); n != 0 {
			t.Errorf("refused restore inserted %d rows", n)
		}
	})
}

// failingStore fails the Put of one key, after the restore has put others.
type failingStore struct {
	*blob.Local
	key string
}

func (f failingStore) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) (blob.Info, error) {
	if key == f.key {
		return blob.Info{}, errors.New("disk full")
	}
	return f.Local.Put(ctx, key, r, size, ct)
}

// TestFailedRestoreChangesNothing: a restore that fails after every row went in (here: a blob
// cannot be written) rolls back the rows it inserted, brings back the rows Replace deleted,
// and removes the blobs it added.
func TestFailedRestoreChangesNothing(t *testing.T) {
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		ctx := context.Background()
		_, file, _ := source(t, otherDialect(dialect))
		dst := newNode(t, dialect)
		if _, err := dst.d.Exec(ctx, `INSERT INTO ledger (seq, entry) VALUES (99, 'mine')`); err != nil {
			t.Fatal(err)
		}
		before := dump(t, dst.d)
		_, err := backup.Restore(ctx, dst.d, failingStore{dst.blobs, "materials/2026/申请表.pdf"}, bytes.NewReader(file), backup.RestoreOptions{Replace: true})
		if !errors.Is(err, backup.ErrRestoreFailed) || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("restore with a failing blob store: %v", err)
		}
		sameDump(t, "failed restore", before, dump(t, dst.d))
		if got := blobSummary(t, dst.blobs); len(got) != 0 {
			t.Errorf("failed restore left blobs: %v", got)
		}
		if _, err := dst.d.Exec(ctx, `DELETE FROM ledger WHERE seq = 99`); err == nil {
			t.Error("the append-only trigger is gone after a failed restore")
		}
		// The database is usable and the same backup restores.
		if _, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true}); err != nil {
			t.Fatalf("restore after a failed one: %v", err)
		}
	})
}

func TestCreateChecksOptions(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, db.SQLite)
	k, pem := n.keys(t, newMaster(t))
	other := newNode(t, db.SQLite)
	_, otherPEM := other.keys(t, newMaster(t))
	for name, opts := range map[string]backup.Options{
		"no signer":   {PublicKeyPEM: pem},
		"no key":      {Signer: k},
		"wrong key":   {Signer: k, PublicKeyPEM: otherPEM},
		"garbage key": {Signer: k, PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
	} {
		if _, err := backup.Create(ctx, n.d, n.blobs, io.Discard, opts); !errors.Is(err, backup.ErrBadOptions) {
			t.Errorf("%s: %v, want ErrBadOptions", name, err)
		}
	}
}

// TestManifest checks what the manifest records.
func TestManifest(t *testing.T) {
	n := newNode(t, db.SQLite)
	master := newMaster(t)
	k, pem := n.keys(t, master)
	n.fill(t)
	file, m := create(t, n, k, pem)
	tables := map[string]backup.TableEntry{}
	for _, te := range m.Tables {
		tables[te.Name] = te
	}
	for _, name := range []string{"kinds", "c_regions", "crypto_keys", "river_job", "river_queue", "schema_migrations", "river_migration", "ledger"} {
		if _, ok := tables[name]; !ok {
			t.Errorf("table %s is not in the backup", name)
		}
	}
	if te := tables["kinds"]; te.Rows != 4 || len(te.SM3) != 64 || te.Size == 0 {
		t.Errorf("kinds: %+v", te)
	}
	kinds := map[string]backup.Kind{}
	for _, c := range tables["kinds"].Columns {
		kinds[c.Name] = c.Kind
	}
	want := map[string]backup.Kind{"id": backup.KindInt, "label": backup.KindText, "at": backup.KindTime, "data": backup.KindBytes,
		"flag": backup.KindBool, "big": backup.KindInt, "ratio": backup.KindFloat}
	for c, k := range want {
		if kinds[c] != k {
			t.Errorf("column kinds.%s: kind %s, want %s", c, kinds[c], k)
		}
	}
	if len(m.SchemaMigrations) != 3 || len(m.RiverMigrations) == 0 {
		t.Errorf("migrations: %+v %+v", m.SchemaMigrations, m.RiverMigrations)
	}
	if m.Format != backup.FormatVersion || m.Created.IsZero() || m.PublicKeyPEM != pem {
		t.Errorf("manifest header: %+v", m)
	}
	// The file order puts the manifest last (it holds the digests of what precedes it), and
	// a table file is one JSON object per line.
	var names []string
	var officers []byte
	rewrite(t, file, func(name string, data []byte) []byte {
		names = append(names, name)
		if name == "tables/a_officers.jsonl" {
			officers = data
		}
		// The master key is not in the backup, in any form.
		if bytes.Contains(data, master) || bytes.Contains(data, []byte(fmt.Sprintf("%x", master))) {
			t.Errorf("%s holds the master key", name)
		}
		return data
	}, nil)
	if names[len(names)-2] != "manifest.json" || names[len(names)-1] != "manifest.sig" {
		t.Errorf("entry order: %v", names)
	}
	if want := "{\"id\":\"p1\",\"office_id\":\"o1\",\"name\":\"张三\"}\n{\"id\":\"p2\",\"office_id\":\"o2\",\"name\":\"Li Si\"}\n"; string(officers) != want {
		t.Errorf("a_officers.jsonl:\n%s", officers)
	}
}

// TestIncompatibleValue: SQLite keeps text in an INTEGER column; PostgreSQL cannot take it.
// The restore says which value, and leaves the target as it was.
func TestIncompatibleValue(t *testing.T) {
	ctx := context.Background()
	src := newNode(t, db.SQLite)
	k, pem := src.keys(t, newMaster(t))
	src.fill(t)
	if _, err := src.d.Exec(ctx, `UPDATE kinds SET big = 'many' WHERE label = 'plain'`); err != nil {
		t.Fatal(err)
	}
	file, _ := create(t, src, k, pem)
	dst := newNode(t, db.Postgres)
	_, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{})
	if !errors.Is(err, backup.ErrValue) || !strings.Contains(err.Error(), "kinds row 3 column big") || !strings.Contains(err.Error(), `"many"`) {
		t.Fatalf("restore of a text in an integer column into PostgreSQL: %v", err)
	}
	for _, table := range []string{"kinds", "c_regions", "river_job"} {
		if n := count(t, dst.d, table); n != 0 {
			t.Errorf("failed restore left %d rows in %s", n, table)
		}
	}
	if got := blobSummary(t, dst.blobs); len(got) != 0 {
		t.Errorf("failed restore left blobs: %v", got)
	}
	// SQLite takes it back as it was.
	dst2 := newNode(t, db.SQLite)
	if _, err := backup.Restore(ctx, dst2.d, dst2.blobs, bytes.NewReader(file), backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var big any
	if err := dst2.d.QueryRow(ctx, `SELECT big FROM kinds WHERE label = 'plain'`).Scan(&big); err != nil || big != "many" {
		t.Fatalf("big = %#v (%v)", big, err)
	}
}

// keyRows is the target's crypto_keys, to tell that a restore left its keys alone.
func keyRows(t *testing.T, d *db.DB) []string {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT id, purpose, private_enc, COALESCE(public_key, '') FROM crypto_keys ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, purpose, pub string
		var enc []byte
		if err := rows.Scan(&id, &purpose, &enc, &pub); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%x|%s", id, purpose, enc, crypto.SM3Hex([]byte(pub))))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBeforeCommit: BeforeCommit runs in the restore's transaction on the restored rows, and
// when it fails the restore leaves the target exactly as it was — under Replace too, with the
// target's own rows, keys and files all still there.
func TestBeforeCommit(t *testing.T) {
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		ctx := context.Background()
		srcMaster := newMaster(t)
		src := newNode(t, otherDialect(dialect))
		k, pem := src.keys(t, srcMaster)
		src.fill(t)
		file, _ := create(t, src, k, pem)

		// The target is an installed node: keys under its own master, a row of its own, and a
		// different file under one of the backup's keys.
		dstMaster := newMaster(t)
		dst := newNode(t, dialect)
		dstKeys, _ := dst.keys(t, dstMaster)
		if _, err := dst.d.Exec(ctx, `INSERT INTO ledger (seq, entry) VALUES (99, 'mine')`); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.blobs.Put(ctx, "a/b/c.txt", strings.NewReader("mine"), 4, ""); err != nil {
			t.Fatal(err)
		}
		state := func() string {
			return fmt.Sprint(dump(t, dst.d), keyRows(t, dst.d), blobSummary(t, dst.blobs),
				count(t, dst.d, "river_job"))
		}
		before := state()
		unchanged := func(what string) {
			t.Helper()
			if got := state(); got != before {
				t.Errorf("%s changed the target:\n got %s\nwant %s", what, got, before)
			}
			if _, err := dst.d.Exec(ctx, `DELETE FROM ledger WHERE seq = 99`); err == nil {
				t.Errorf("%s: the append-only trigger is gone", what)
			}
			// The node still starts: its keys open with its master.
			if err := dstKeys.Reload(ctx); err != nil {
				t.Errorf("%s: keyring: %v", what, err)
			}
		}

		// A failing BeforeCommit, after having looked at and written to the restored database.
		refused := errors.New("the hook says no")
		calls := 0
		_, err := backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true,
			BeforeCommit: func(ctx context.Context, tx *db.Tx) error {
				calls++
				if tx.SQLDialect() != dialect {
					t.Errorf("BeforeCommit got a %s transaction", tx.SQLDialect())
				}
				// It sees the backup's rows, not the target's...
				var all, mine int
				if err := tx.QueryRow(ctx, `SELECT COUNT(*), COUNT(CASE WHEN seq = 99 THEN 1 END) FROM ledger`).Scan(&all, &mine); err != nil {
					t.Fatal(err)
				}
				if all != 2 || mine != 0 {
					t.Errorf("BeforeCommit sees %d ledger rows (%d of the target's), want the backup's 2", all, mine)
				}
				// ...writes in the restore's transaction...
				if _, err := tx.Exec(ctx, `INSERT INTO ledger (seq, entry) VALUES (100, 'hook')`); err != nil {
					t.Fatal(err)
				}
				// ...with the triggers back (last: on PostgreSQL the failed statement ends the
				// transaction's usefulness).
				if _, err := tx.Exec(ctx, `DELETE FROM ledger WHERE seq = 100`); err == nil {
					t.Error("BeforeCommit runs before the triggers are back")
				}
				return refused
			}})
		if !errors.Is(err, refused) || !errors.Is(err, backup.ErrRestoreFailed) || !strings.Contains(err.Error(), "the hook says no") {
			t.Fatalf("failing BeforeCommit: %v", err)
		}
		if calls != 1 {
			t.Errorf("BeforeCommit called %d times", calls)
		}
		unchanged("a failing BeforeCommit")

		// A row BeforeCommit writes is checked like the restored ones, before any blob is
		// written (on SQLite the check is what stops it: a failing COMMIT would come after the
		// blob Replace overwrote).
		_, err = backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true,
			BeforeCommit: func(ctx context.Context, tx *db.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO b_offices (id, region) VALUES ('orphan', 'nowhere')`)
				return err
			}})
		if !errors.Is(err, backup.ErrRestoreFailed) {
			t.Fatalf("BeforeCommit writing a row with a missing parent: %v", err)
		}
		unchanged("a BeforeCommit breaking a foreign key")

		// What the CLI does: the backup's keys are wrapped under another master than this
		// node's. The i18n error comes back as it is.
		_, err = backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true,
			BeforeCommit: func(ctx context.Context, tx *db.Tx) error { return crypto.CheckMasterKey(ctx, tx, dstMaster) }})
		if ie, ok := i18n.As(err); !errors.Is(err, crypto.ErrMasterKeyMismatch) || !ok || ie.Code != crypto.ErrMasterKeyMismatch.Code {
			t.Fatalf("restore of keys under another master: %v", err)
		}
		unchanged("a master key mismatch")

		// With the master the keys were wrapped under, the restore goes through, with what
		// BeforeCommit wrote.
		calls = 0
		_, err = backup.Restore(ctx, dst.d, dst.blobs, bytes.NewReader(file), backup.RestoreOptions{Replace: true,
			BeforeCommit: func(ctx context.Context, tx *db.Tx) error {
				calls++
				if err := crypto.CheckMasterKey(ctx, tx, srcMaster); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO ledger (seq, entry) VALUES (3, 'restored')`)
				return err
			}})
		if err != nil || calls != 1 {
			t.Fatalf("restore under the right master: %v (BeforeCommit called %d times)", err, calls)
		}
		want := dump(t, src.d)
		want["ledger"] = append(want["ledger"], "3|restored|")
		sameDump(t, "restored", want, dump(t, dst.d))
		if got, want := blobSummary(t, dst.blobs), blobSummary(t, src.blobs); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("blobs:\n got %v\nwant %v", got, want)
		}
		k2, err := crypto.Open(ctx, dst.d, srcMaster, nil)
		if err != nil || k2.ActiveKeyID() != k.ActiveKeyID() {
			t.Fatalf("restored keyring: %v", err)
		}
	})
}

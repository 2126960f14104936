package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// clock steps by an odd amount with nanoseconds, so storage's microsecond precision is exercised.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))}
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(1234567891 * time.Nanosecond)
	return c.t
}

type fixture struct {
	d   *db.DB
	l   *audit.Log
	s   *sm2Signer
	clk *clock
}

func setup(t testing.TB, d *db.DB, every int) *fixture {
	t.Helper()
	f := &fixture{d: d, s: newSigner(t), clk: newClock()}
	f.l = audit.New(d, f.s, f.clk.now, audit.Options{CheckpointEvery: every, Logger: slog.New(slog.DiscardHandler)})
	return f
}

// entry i is a plausible mix of what engines record.
func entry(i int) audit.Entry {
	e := audit.Entry{
		Actor:         fmt.Sprintf("staff:%d", i%5),
		ActorDivision: "140100",
		Action:        "org.staff.create",
		Object:        fmt.Sprintf("staff:%d", 1000+i),
		Outcome:       audit.OutcomeOK,
		IP:            "10.0.0.1",
		RequestID:     fmt.Sprintf("req-%d", i),
		Detail:        map[string]any{"i": i, "name": "张三"},
	}
	switch i % 4 {
	case 1:
		e.Action, e.Outcome, e.Detail = "auth.login_failed", audit.OutcomeFailed, nil
	case 2:
		e.Actor, e.ActorDivision, e.Action = audit.ActorSystem, "", "jobs.sla.escalate"
	}
	return e
}

func (f *fixture) fill(t testing.TB, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := f.l.Append(ctx, entry(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func (f *fixture) verify(t testing.TB) audit.Report {
	t.Helper()
	rep, err := f.l.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func (f *fixture) all(t testing.TB) []audit.Record {
	t.Helper()
	rs, err := f.l.List(context.Background(), audit.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(rs)
	return rs
}

func wantOK(t *testing.T, rep audit.Report) {
	t.Helper()
	if !rep.OK || rep.FirstBad != 0 || len(rep.Problems) != 0 {
		t.Fatalf("want an intact log, got %+v", rep)
	}
}

func wantBad(t *testing.T, rep audit.Report, seq int64, kind string) {
	t.Helper()
	if rep.OK || rep.FirstBad != seq || rep.Problems[0].Kind != kind {
		t.Fatalf("want first problem %s at %d, got OK=%v FirstBad=%d problems=%+v", kind, seq, rep.OK, rep.FirstBad, rep.Problems)
	}
	if rep.Reason.ZH == "" || rep.Reason.EN == "" {
		t.Fatalf("reason must be bilingual: %+v", rep.Reason)
	}
}

// tamper runs SQL the way an intruder with database rights would: the append-only triggers
// stop dgov's own code, not someone who can drop them.
func tamper(t *testing.T, d *db.DB, q string, args ...any) {
	t.Helper()
	ctx := context.Background()
	var off []string
	if d.Dialect == db.Postgres {
		off = []string{`ALTER TABLE audit_log DISABLE TRIGGER USER`, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER`}
	} else {
		for _, tr := range []string{"audit_log_no_update", "audit_log_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
			off = append(off, `DROP TRIGGER IF EXISTS `+tr)
		}
	}
	for _, s := range off {
		if _, err := d.W.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := d.Exec(ctx, q, args...); err != nil {
		t.Fatalf("tamper %s: %v", q, err)
	}
}

// rewrite changes entry from with edit and then recomputes the chain from there to the end,
// head included, as an intruder who knows the algorithm (but not the key) would.
func rewrite(t *testing.T, f *fixture, from int64, edit func(*audit.Record)) []audit.Record {
	t.Helper()
	rs := f.all(t)
	for i := range rs {
		r := &rs[i]
		if r.Seq < from {
			continue
		}
		if r.Seq == from {
			edit(r)
		}
		r.PrevHash = rs[i-1].Hash
		r.Hash = r.ComputeHash()
		tamper(t, f.d, `UPDATE audit_log SET object = ?, prev_hash = ?, hash = ? WHERE seq = ?`, r.Object, r.PrevHash, r.Hash, r.Seq)
	}
	tamper(t, f.d, `UPDATE audit_head SET hash = ? WHERE id = 1`, rs[len(rs)-1].Hash)
	return rs
}

// forge re-signs checkpoint seq over hash with a key that is not the node's, under its key id.
func forge(t *testing.T, f *fixture, seq int64, hash string) {
	t.Helper()
	var cp audit.Checkpoint
	if err := f.d.QueryRow(context.Background(), `SELECT seq, at FROM audit_checkpoints WHERE seq = ?`, seq).Scan(&cp.Seq, &cp.At); err != nil {
		t.Fatal(err)
	}
	cp.Hash = hash
	sig, err := signWith(newKey(t), cp.Message())
	if err != nil {
		t.Fatal(err)
	}
	tamper(t, f.d, `UPDATE audit_checkpoints SET hash = ?, signature = ? WHERE seq = ?`, hash, sig, seq)
}

func TestAppendListVerify(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := setup(t, d, 10)
		wantOK(t, f.verify(t)) // empty
		f.fill(t, 25)
		rep := f.verify(t)
		wantOK(t, rep)
		if rep.Entries != 25 || rep.Head != 25 || rep.Checkpoints != 2 || rep.LastCheckpoint == nil || rep.LastCheckpoint.Seq != 20 {
			t.Fatalf("report %+v", rep)
		}
		if rep.LastCheckpoint.KeyID != "node-1" || !strings.Contains(rep.Reason.EN, "25 entries") {
			t.Fatalf("report %+v", rep)
		}
		rs := f.all(t)
		if len(rs) != 25 || rs[0].Seq != 1 || rs[0].PrevHash != audit.ZeroHash || rs[1].PrevHash != rs[0].Hash {
			t.Fatalf("chain start: %+v", rs[:2])
		}
		r := rs[0]
		var detail map[string]any
		if err := json.Unmarshal(r.Detail, &detail); err != nil || detail["name"] != "张三" {
			t.Fatalf("detail %s: %v", r.Detail, err)
		}
		if r.Actor != "staff:0" || r.Action != "org.staff.create" || r.Object != "staff:1000" || r.Outcome != "ok" ||
			r.IP != "10.0.0.1" || r.RequestID != "req-0" || r.ActorDivision != "140100" || r.At.Location() != time.UTC {
			t.Fatalf("round trip %+v", r)
		}
		if rs[1].Detail != nil {
			t.Fatalf("no detail stored as %q", rs[1].Detail)
		}
		want := newClock().now().UTC().Truncate(time.Microsecond)
		if !r.At.Equal(want) || r.Hash != r.ComputeHash() {
			t.Fatalf("at %v want %v", r.At, want)
		}
	}, audit.Migrations)
}

func TestList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d, 1000)
		f.fill(t, 40)
		rs := f.all(t)
		seqs := func(flt audit.Filter) []int64 {
			t.Helper()
			got, err := f.l.List(ctx, flt)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, r := range got {
				out = append(out, r.Seq)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    audit.Filter
			want []int64
		}{
			{"newest first with limit", audit.Filter{Limit: 3}, []int64{40, 39, 38}},
			{"next page", audit.Filter{Limit: 3, BeforeSeq: 38}, []int64{37, 36, 35}},
			{"actor", audit.Filter{Actor: "staff:3", Limit: 3}, []int64{34, 29, 24}},
			{"action", audit.Filter{Action: "auth.login_failed", Limit: 2}, []int64{38, 34}},
			{"action prefix", audit.Filter{Action: "auth.*", Limit: 2}, []int64{38, 34}},
			{"prefix matches case", audit.Filter{Action: "AUTH.*"}, nil},
			{"division", audit.Filter{Division: "140100", Action: "jobs.*"}, nil},
			{"object", audit.Filter{Object: "staff:1007"}, []int64{8}},
			{"since", audit.Filter{Since: rs[36].At}, []int64{40, 39, 38, 37}},
			{"until", audit.Filter{Until: rs[2].At}, []int64{2, 1}},
			{"since and until", audit.Filter{Since: rs[9].At, Until: rs[11].At}, []int64{11, 10}},
		} {
			if got := seqs(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("%s: got %v want %v", tc.name, got, tc.want)
			}
		}
	}, audit.Migrations)
}

func TestCheckpointOnTimer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d, 1000)
		if seq, err := f.l.Checkpoint(ctx); err != nil || seq != 0 {
			t.Fatalf("empty log: %d %v", seq, err)
		}
		f.fill(t, 3)
		if seq, err := f.l.Checkpoint(ctx); err != nil || seq != 3 {
			t.Fatalf("checkpoint: %d %v", seq, err)
		}
		if seq, err := f.l.Checkpoint(ctx); err != nil || seq != 0 {
			t.Fatalf("nothing new: %d %v", seq, err)
		}
		f.s.rotate(t, "node-2") // older checkpoints still verify with the retired key
		f.fill(t, 1)
		if seq, err := f.l.Checkpoint(ctx); err != nil || seq != 4 {
			t.Fatalf("checkpoint: %d %v", seq, err)
		}
		rep := f.verify(t)
		wantOK(t, rep)
		if rep.Checkpoints != 2 || rep.LastCheckpoint.Seq != 4 || rep.LastCheckpoint.KeyID != "node-2" {
			t.Fatalf("report %+v", rep)
		}
	}, audit.Migrations)
}

// A keyring that cannot sign must not lose entries; the checkpoint comes once it can.
func TestSignerDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d, 10)
		f.s.setFail(errors.New("keyring locked"))
		f.fill(t, 12)
		if _, err := f.l.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "keyring locked") {
			t.Fatalf("want the signer's error, got %v", err)
		}
		rep := f.verify(t)
		wantOK(t, rep)
		if rep.Entries != 12 || rep.Checkpoints != 0 {
			t.Fatalf("report %+v", rep)
		}
		f.s.setFail(nil)
		f.fill(t, 1)
		rep = f.verify(t)
		wantOK(t, rep)
		if rep.LastCheckpoint == nil || rep.LastCheckpoint.Seq != 13 {
			t.Fatalf("report %+v", rep)
		}
	}, audit.Migrations)
}

func TestAppendTxCommitsWithTheChange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d, 1000)
		boom := errors.New("boom")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := f.l.AppendTx(ctx, tx, entry(0)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		var seqs []int64
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			for i := range 2 {
				seq, err := f.l.AppendTx(ctx, tx, entry(i))
				if err != nil {
					return err
				}
				seqs = append(seqs, seq)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs, []int64{1, 2}) {
			t.Fatalf("a rolled-back entry must not use up its seq: %v", seqs)
		}
		wantOK(t, f.verify(t))
	}, audit.Migrations)
}

func TestAppendOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d, 1)
		f.fill(t, 2)
		stmts := []string{
			`UPDATE audit_log SET object = 'x' WHERE seq = 1`,
			`DELETE FROM audit_log WHERE seq = 2`,
			`UPDATE audit_checkpoints SET hash = 'x'`,
			`DELETE FROM audit_checkpoints`,
		}
		if d.Dialect == db.Postgres {
			stmts = append(stmts, `TRUNCATE audit_log`, `TRUNCATE audit_checkpoints`)
		}
		for _, q := range stmts {
			if _, err := d.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: want refused, got %v", q, err)
			}
		}
		wantOK(t, f.verify(t))
	}, audit.Migrations)
}

func TestEntryValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d, 1000)
		good := audit.Entry{Actor: "citizen:1", Action: "auth.login", Outcome: audit.OutcomeOK}
		for name, e := range map[string]audit.Entry{
			"no actor":     {Action: "auth.login", Outcome: audit.OutcomeOK},
			"no action":    {Actor: "citizen:1", Outcome: audit.OutcomeOK},
			"no outcome":   {Actor: "citizen:1", Action: "auth.login"},
			"bad outcome":  {Actor: "citizen:1", Action: "auth.login", Outcome: "maybe"},
			"bad raw json": {Actor: "citizen:1", Action: "auth.login", Outcome: audit.OutcomeOK, Detail: json.RawMessage(`{"a":`)},
			"huge detail":  {Actor: "citizen:1", Action: "auth.login", Outcome: audit.OutcomeOK, Detail: strings.Repeat("x", 70<<10)},
		} {
			if _, err := f.l.Append(ctx, e); err == nil {
				t.Errorf("%s: want error", name)
			}
		}
		// Outside input (a user name typed at a failed login) is recorded, made storable.
		e := good
		e.Action, e.Outcome = "auth.login_failed", audit.OutcomeFailed
		e.Object = "user:a\x00b\xffc" + strings.Repeat("长", 600)
		e.Detail = json.RawMessage(" {\"typed\": \"\xfe\"} ")
		if seq, err := f.l.Append(ctx, e); err != nil || seq != 1 {
			t.Fatalf("append: %d %v", seq, err)
		}
		r := f.all(t)[0]
		if !strings.HasPrefix(r.Object, "user:a\uFFFDb\uFFFDc长") || !strings.HasSuffix(r.Object, "长…") || len(r.Object) > 1024 {
			t.Fatalf("object %q (%d bytes)", r.Object, len(r.Object))
		}
		if string(r.Detail) != "{\"typed\":\"\uFFFD\"}" {
			t.Fatalf("detail %q", r.Detail)
		}
		wantOK(t, f.verify(t))
	}, audit.Migrations)
}

// The hash of an entry is a format others verify (dgov audit verify on an export, an auditor's
// tool): it must not change by accident. The value was checked independently by framing the
// fields in Python and hashing with `openssl dgst -sm3`.
func TestHashIsStable(t *testing.T) {
	r := audit.Record{Seq: 7, At: time.Date(2026, 3, 1, 0, 0, 0, 123000, time.UTC), Actor: "staff:1", ActorDivision: "140100",
		Action: "auth.login", Object: "staff:1", Outcome: "ok", IP: "10.0.0.1", RequestID: "r1",
		Detail: json.RawMessage(`{"a":1}`), PrevHash: audit.ZeroHash}
	if got, want := r.ComputeHash(), "0df5fec606cc8c276001a892583c5a353738d31181c24d939ce7d810de100de0"; got != want {
		t.Errorf("hash %s, want %s", got, want)
	}
	// Length prefixes keep field boundaries: moving a character between fields changes the hash.
	moved := r
	moved.Actor, moved.ActorDivision = "staff:11", "40100"
	if moved.ComputeHash() == r.ComputeHash() {
		t.Fatal("field boundaries are ambiguous")
	}
	// The same instant in another zone is the same entry.
	zoned := r
	zoned.At = r.At.In(time.FixedZone("CST", 8*3600))
	if zoned.ComputeHash() != r.ComputeHash() {
		t.Fatal("hash depends on the time zone")
	}
}

func TestTamperingIsDetected(t *testing.T) {
	// 35 entries, a checkpoint every 10: signed heads at 10, 20 and 30; entries 31–35 are
	// protected by the chain and the head row only.
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, f *fixture)
		seq    int64
		kind   string
		count  int // when set, exactly this many problems: the report stays local to the attack
	}{
		{"edit a middle entry", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `UPDATE audit_log SET object = 'staff:9999' WHERE seq = 17`)
		}, 17, audit.ProblemHash, 1},
		{"edit a time", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `UPDATE audit_log SET at = ? WHERE seq = 17`, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		}, 17, audit.ProblemHash, 0},
		{"edit a detail", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `UPDATE audit_log SET detail = '{"i":17,"name":"李四"}' WHERE seq = 17`)
		}, 17, audit.ProblemHash, 0},
		{"edit a hash alone", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `UPDATE audit_log SET hash = ? WHERE seq = 17`, strings.Repeat("ab", 32))
		}, 17, audit.ProblemHash, 2},
		{"delete a middle entry", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_log WHERE seq = 17`)
		}, 17, audit.ProblemGap, 1},
		{"delete middle entries", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_log WHERE seq BETWEEN 16 AND 18`)
		}, 16, audit.ProblemGap, 1},
		{"delete the first entry", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_log WHERE seq = 1`)
		}, 1, audit.ProblemGap, 0},
		{"edit an entry and recompute its hash", func(t *testing.T, f *fixture) {
			r := f.all(t)[16]
			r.Object = "staff:9999"
			tamper(t, f.d, `UPDATE audit_log SET object = ?, hash = ? WHERE seq = 17`, r.Object, r.ComputeHash())
		}, 18, audit.ProblemLink, 1},
		{"rewrite the whole tail consistently", func(t *testing.T, f *fixture) {
			rewrite(t, f, 15, func(r *audit.Record) { r.Object = "staff:9999" })
		}, 20, audit.ProblemCheckpointHash, 2},
		{"rewrite the tail and the checkpoints' hashes", func(t *testing.T, f *fixture) {
			rs := rewrite(t, f, 15, func(r *audit.Record) { r.Object = "staff:9999" })
			tamper(t, f.d, `UPDATE audit_checkpoints SET hash = ? WHERE seq = 20`, rs[19].Hash)
			tamper(t, f.d, `UPDATE audit_checkpoints SET hash = ? WHERE seq = 30`, rs[29].Hash)
		}, 20, audit.ProblemCheckpointSignature, 0},
		{"rewrite the tail and re-sign its checkpoints with another key", func(t *testing.T, f *fixture) {
			rs := rewrite(t, f, 15, func(r *audit.Record) { r.Object = "staff:9999" })
			forge(t, f, 20, rs[19].Hash)
			forge(t, f, 30, rs[29].Hash)
		}, 20, audit.ProblemCheckpointSignature, 0},
		{"forge a checkpoint signature", func(t *testing.T, f *fixture) {
			forge(t, f, 20, f.all(t)[19].Hash)
		}, 20, audit.ProblemCheckpointSignature, 1},
		{"name an unknown key", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `UPDATE audit_checkpoints SET key_id = 'node-9' WHERE seq = 20`)
		}, 20, audit.ProblemCheckpointSignature, 0},
		{"delete a checkpointed entry", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_log WHERE seq = 20`)
		}, 20, audit.ProblemGap, 0},
		{"delete the last entries", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_log WHERE seq > 31`)
		}, 32, audit.ProblemTruncated, 1},
		{"delete the last entries and rewind the head", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_log WHERE seq > 27`)
			tamper(t, f.d, `UPDATE audit_head SET seq = 27, hash = (SELECT hash FROM audit_log WHERE seq = 27) WHERE id = 1`)
		}, 28, audit.ProblemTruncated, 0},
		{"delete the last entries, rewind the head and its checkpoint mark", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_log WHERE seq > 27`)
			tamper(t, f.d, `UPDATE audit_head SET seq = 27, checkpoint_seq = 20, hash = (SELECT hash FROM audit_log WHERE seq = 27) WHERE id = 1`)
		}, 28, audit.ProblemTruncated, 0},
		{"delete the last checkpoint", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_checkpoints WHERE seq = 30`)
		}, 30, audit.ProblemCheckpointMissing, 0},
		{"insert an entry past the head", func(t *testing.T, f *fixture) {
			last := f.all(t)[34]
			r := last
			r.Seq, r.PrevHash, r.Object = 36, last.Hash, "staff:9999"
			r.Hash = r.ComputeHash()
			tamper(t, f.d, `INSERT INTO audit_log (seq, at, actor, actor_division, action, object, outcome, ip, request_id, detail, prev_hash, hash)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Seq, r.At, r.Actor, r.ActorDivision, r.Action, r.Object, r.Outcome, r.IP, r.RequestID, string(r.Detail), r.PrevHash, r.Hash)
		}, 36, audit.ProblemHead, 0},
		{"delete the head row", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `DELETE FROM audit_head`)
		}, 36, audit.ProblemHead, 1},
		{"swap two entries", func(t *testing.T, f *fixture) {
			tamper(t, f.d, `UPDATE audit_log SET seq = -1 WHERE seq = 17`)
			tamper(t, f.d, `UPDATE audit_log SET seq = 17 WHERE seq = 18`)
			tamper(t, f.d, `UPDATE audit_log SET seq = 18 WHERE seq = -1`)
		}, 17, audit.ProblemHash, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				f := setup(t, d, 10)
				f.fill(t, 35)
				wantOK(t, f.verify(t))
				tc.attack(t, f)
				rep := f.verify(t)
				wantBad(t, rep, tc.seq, tc.kind)
				if tc.count != 0 && rep.ProblemCount != tc.count {
					t.Fatalf("want %d problems, got %+v", tc.count, rep.Problems)
				}
			}, audit.Migrations)
		})
	}
}

// The limit the package documents: entries after the last checkpoint, deleted together with
// that checkpoint and with the head row rewound, leave no trace on this node. Only a checkpoint
// kept elsewhere shows it.
func TestUnsignedTailIsTheWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := setup(t, d, 10)
		f.fill(t, 35)
		tamper(t, d, `DELETE FROM audit_log WHERE seq > 27`)
		tamper(t, d, `DELETE FROM audit_checkpoints WHERE seq > 20`)
		tamper(t, d, `UPDATE audit_head SET seq = 27, checkpoint_seq = 20, hash = (SELECT hash FROM audit_log WHERE seq = 27) WHERE id = 1`)
		rep := f.verify(t)
		wantOK(t, rep)
		if rep.LastCheckpoint.Seq != 20 || rep.Head != 27 {
			t.Fatalf("report %+v", rep)
		}
	}, audit.Migrations)
}

func TestConcurrentAppends(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d, 25)
		// A second handle on the same database stands for a second process (SQLite) or a second
		// node (PostgreSQL): the head must serialise across connections, not just in one pool.
		var d2 *db.DB
		var err error
		if d.Dialect == db.SQLite {
			d2, err = db.OpenSQLite(ctx, d.Path)
		} else {
			d2, err = db.OpenPostgres(ctx, d.URL)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d2.Close() })
		l2 := audit.New(d2, f.s, f.clk.now, audit.Options{CheckpointEvery: 25})

		const workers, each = 8, 40
		var wg sync.WaitGroup
		seqs := make(chan int64, workers*each)
		errs := make(chan error, workers)
		stop, checkpointer := make(chan struct{}), make(chan error, 1)
		go func() { // the periodic checkpoint job, racing the appends
			for {
				select {
				case <-stop:
					checkpointer <- nil
					return
				default:
				}
				if _, err := f.l.Checkpoint(ctx); err != nil {
					checkpointer <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		for w := range workers {
			l := f.l
			if w%2 == 1 {
				l = l2
			}
			wg.Go(func() {
				for i := range each {
					seq, err := l.Append(ctx, entry(w*each+i))
					if err != nil {
						errs <- err
						return
					}
					seqs <- seq
				}
			})
		}
		wg.Wait()
		close(stop)
		close(seqs)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err := <-checkpointer; err != nil {
			t.Fatal(err)
		}
		var got []int64
		for s := range seqs {
			got = append(got, s)
		}
		slices.Sort(got)
		for i, s := range got {
			if s != int64(i+1) {
				t.Fatalf("seqs are not 1..%d: %v", workers*each, got)
			}
		}
		if len(got) != workers*each {
			t.Fatalf("%d appends, want %d", len(got), workers*each)
		}
		rep := f.verify(t)
		wantOK(t, rep)
		if rep.Entries != workers*each || rep.Head != workers*each || rep.Checkpoints < workers*each/25 {
			t.Fatalf("report %+v", rep)
		}
	}, audit.Migrations)
}

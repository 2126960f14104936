// Package audit is dgov's tamper-evident audit log (安全审计). Every login, read of personal
// data, exchange call and decision is appended as one entry of an SM3 hash chain; every N
// entries, and on a timer, the head of the chain is signed with the node's SM2 key. Verify walks
// the chain and names the first entry that was edited, removed or rewritten.
//
// What it proves and what it cannot: an edit, a deletion in the middle, a rewritten chain up to
// a signed checkpoint and a truncated tail (against the head row or a later checkpoint) are all
// detected. Someone holding database write access can still rewrite or drop entries after the
// last checkpoint, together with the head row, without trace; sending checkpoints off the node
// (to the province, or the transparency log) is what closes that window.
package audit

import (
	"bytes"
	"context"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates audit_log, audit_checkpoints and audit_head, and the triggers that make
// the log append-only.
var Migrations = db.Migrations("audit", migrationFiles, "migrations")

// Signer signs checkpoints. The node keyring (platform/crypto) implements it with the node's
// SM2 key; Verify must also accept the retired keys named by older checkpoints.
type Signer interface {
	// Sign signs msg with the current key and names that key.
	Sign(msg []byte) (sig []byte, keyID string, err error)
	// Verify checks sig over msg with the key keyID, failing for an unknown key.
	Verify(keyID string, msg, sig []byte) error
}

// Outcomes of an audited action.
const (
	OutcomeOK     = "ok"
	OutcomeDenied = "denied" // refused by authorization
	OutcomeFailed = "failed" // attempted and failed (bad password, error)
)

// ActorSystem is the actor of work no person started (jobs, the relay, start-up).
const ActorSystem = "system"

// ZeroHash is the prev_hash of entry 1.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Limits on what one entry stores. Short fields may carry outside input (a user name typed at
// a failed login), so they are cut rather than refused: the attempt must still be recorded.
const (
	maxField  = 1024
	maxDetail = 64 << 10
)

// Entry is what a caller records.
type Entry struct {
	Actor         string // "staff:<id>", "citizen:<id>", "client:<id>" or ActorSystem
	ActorDivision string // division code of the actor's scope, for scoped console views
	Action        string // "auth.login", "auth.login_failed", "org.staff.create", …
	Object        string // what was acted on, e.g. "staff:<id>"; never personal data in clear
	Outcome       string // OutcomeOK, OutcomeDenied or OutcomeFailed
	IP            string
	RequestID     string
	// Detail is stored as JSON: a json.RawMessage is kept (compacted), anything else is
	// marshalled; nil stores nothing.
	Detail any
}

// Record is one stored entry.
type Record struct {
	Seq           int64           `json:"seq"`
	At            time.Time       `json:"at"`
	Actor         string          `json:"actor"`
	ActorDivision string          `json:"actor_division"`
	Action        string          `json:"action"`
	Object        string          `json:"object"`
	Outcome       string          `json:"outcome"`
	IP            string          `json:"ip"`
	RequestID     string          `json:"request_id"`
	Detail        json.RawMessage `json:"detail,omitempty"` // nil when the entry has none
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
}

// Checkpoint is a signed head of the chain: entry Seq has hash Hash.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	At        time.Time `json:"at"`
	KeyID     string    `json:"key_id"`
	Signature []byte    `json:"signature"`
}

// Options tune a Log.
type Options struct {
	// CheckpointEvery signs the head once this many entries follow the last checkpoint
	// (default 1000); the periodic Checkpoint call covers quiet periods.
	CheckpointEvery int
	// Logger reports a checkpoint that could not be signed during an append (default slog.Default()).
	Logger *slog.Logger
}

// Log is the audit log of one node's database. It keeps no state of its own — the head lives
// in audit_head — so any number of Logs and nodes may append to one database.
type Log struct {
	d     *db.DB
	s     Signer
	now   func() time.Time
	every int64
	log   *slog.Logger
}

// New returns the audit log on d, signing checkpoints with s and stamping entries with now.
func New(d *db.DB, s Signer, now func() time.Time, opts Options) *Log {
	if d == nil || s == nil || now == nil {
		panic("audit.New: db, signer and clock are required")
	}
	l := &Log{d: d, s: s, now: now, every: int64(opts.CheckpointEvery), log: opts.Logger}
	if l.every <= 0 {
		l.every = 1000
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l
}

// Append records e in its own transaction and returns its seq.
func (l *Log) Append(ctx context.Context, e Entry) (int64, error) {
	var seq int64
	err := l.d.InTx(ctx, func(tx *db.Tx) error {
		var err error
		seq, err = l.AppendTx(ctx, tx, e)
		return err
	})
	return seq, err
}

// AppendTx records e inside tx, so the entry commits (or rolls back) with the change it
// records; the seq is only real once tx commits. It holds the chain's head until tx ends, which
// serialises every audited transaction from that point on: call it last in the transaction.
func (l *Log) AppendTx(ctx context.Context, tx *db.Tx, e Entry) (int64, error) {
	r, err := e.record()
	if err != nil {
		return 0, err
	}
	h, err := lockHead(ctx, tx)
	if err != nil {
		return 0, err
	}
	// The time is read under the lock, so it never goes backwards along the chain (given a
	// clock that does not).
	r.Seq, r.PrevHash, r.At = h.seq+1, h.hash, db.Now(l.now())
	r.Hash = r.ComputeHash()
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (seq, at, actor, actor_division, action, object, outcome, ip, request_id, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.At, r.Actor, r.ActorDivision, r.Action, r.Object, r.Outcome, r.IP, r.RequestID, string(r.Detail), r.PrevHash, r.Hash); err != nil {
		return 0, fmt.Errorf("audit append %s: %w", r.Action, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, r.Seq, r.Hash); err != nil {
		return 0, fmt.Errorf("audit append %s: move head: %w", r.Action, err)
	}
	if r.Seq-h.checkpoint >= l.every {
		cp := Checkpoint{Seq: r.Seq, Hash: r.Hash, At: r.At}
		// A keyring that cannot sign must not stop logins from being recorded: the entry
		// stands, the next append tries again, and the periodic Checkpoint reports the error.
		if err := l.sign(&cp); err != nil {
			l.log.Warn("audit checkpoint not signed", "seq", r.Seq, "err", err)
		} else if err := insertCheckpoint(ctx, tx, cp); err != nil {
			return 0, err
		}
	}
	return r.Seq, nil
}

// Checkpoint signs the current head when entries were appended since the last checkpoint; a
// periodic job calls it (every minute, say), so quiet periods are covered too. It returns the
// seq signed, or 0 when there was nothing new.
func (l *Log) Checkpoint(ctx context.Context) (int64, error) {
	var made int64
	err := l.d.InTx(ctx, func(tx *db.Tx) error {
		made = 0
		h, err := lockHead(ctx, tx)
		if err != nil || h.seq == h.checkpoint {
			return err
		}
		cp := Checkpoint{Seq: h.seq, Hash: h.hash, At: db.Now(l.now())}
		if err := l.sign(&cp); err != nil {
			return fmt.Errorf("audit checkpoint %d: %w", h.seq, err)
		}
		if err := insertCheckpoint(ctx, tx, cp); err != nil {
			return err
		}
		made = cp.Seq
		return nil
	})
	return made, err
}

func (l *Log) sign(cp *Checkpoint) error {
	sig, keyID, err := l.s.Sign(cp.Message())
	if err != nil {
		return err
	}
	if len(sig) == 0 || keyID == "" {
		return errors.New("signer returned no signature or no key id")
	}
	cp.Signature, cp.KeyID = sig, keyID
	return nil
}

func insertCheckpoint(ctx context.Context, tx *db.Tx, cp Checkpoint) error {
	if _, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?)`,
		cp.Seq, cp.Hash, cp.At, cp.KeyID, cp.Signature); err != nil {
		return fmt.Errorf("audit checkpoint %d: %w", cp.Seq, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_head SET checkpoint_seq = ? WHERE id = 1`, cp.Seq); err != nil {
		return fmt.Errorf("audit checkpoint %d: move head: %w", cp.Seq, err)
	}
	return nil
}

type head struct {
	seq        int64
	hash       string
	checkpoint int64
}

// lockHead reads the head row and holds it until tx ends. On PostgreSQL FOR UPDATE makes a
// concurrent appender wait and then re-read the committed head (READ COMMITTED), so seq is
// never taken twice. SQLite has no row locks and needs none: dgov's writer connection begins
// every transaction IMMEDIATE, which takes the database's write lock before this read, and
// there is a single writer connection per process (busy_timeout queues other processes).
func lockHead(ctx context.Context, tx *db.Tx) (head, error) {
	q := `SELECT seq, hash, checkpoint_seq FROM audit_head WHERE id = 1`
	if tx.SQLDialect() == db.Postgres {
		q += ` FOR UPDATE`
	}
	return readHead(ctx, tx, q)
}

func readHead(ctx context.Context, q db.Querier, query string) (head, error) {
	var h head
	if err := q.QueryRow(ctx, query).Scan(&h.seq, &h.hash, &h.checkpoint); err != nil {
		return h, fmt.Errorf("audit: read head: %w", err)
	}
	return h, nil
}

// record validates and normalises e into the fields that are stored and hashed.
func (e Entry) record() (Record, error) {
	r := Record{
		Actor:         clean(e.Actor),
		ActorDivision: clean(e.ActorDivision),
		Action:        clean(e.Action),
		Object:        clean(e.Object),
		Outcome:       e.Outcome,
		IP:            clean(e.IP),
		RequestID:     clean(e.RequestID),
	}
	if r.Actor == "" || r.Action == "" {
		return r, fmt.Errorf("audit entry %q by %q: actor and action are required", r.Action, r.Actor)
	}
	switch r.Outcome {
	case OutcomeOK, OutcomeDenied, OutcomeFailed:
	default:
		return r, fmt.Errorf("audit entry %s: outcome %q is not ok, denied or failed", r.Action, r.Outcome)
	}
	detail, err := encodeDetail(e.Detail)
	if err != nil {
		return r, fmt.Errorf("audit entry %s: detail: %w", r.Action, err)
	}
	r.Detail = detail
	return r, nil
}

// clean makes s storable on both databases — PostgreSQL TEXT refuses NUL and invalid UTF-8 —
// and cuts it to maxField bytes on a character boundary.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= maxField {
		return s
	}
	cut := maxField - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func encodeDetail(v any) (json.RawMessage, error) {
	var b []byte
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if len(x) == 0 {
			return nil, nil
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, x); err != nil {
			return nil, err
		}
		b = buf.Bytes()
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	if string(b) == "null" {
		return nil, nil
	}
	// JSON keeps control characters escaped; only invalid UTF-8 inside strings can slip through.
	b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	if len(b) > maxDetail {
		return nil, fmt.Errorf("%d bytes, more than %d", len(b), maxDetail)
	}
	return b, nil
}

// Domain tags keep an entry's encoding and a checkpoint's signed message apart.
const (
	entryTag      = "dgov.audit.entry.v1"
	checkpointTag = "dgov.audit.checkpoint.v1"
)

// frame encodes fields unambiguously: each as its length (8 bytes, big-endian) then its bytes.
func frame(fields ...string) []byte {
	n := 0
	for _, f := range fields {
		n += 8 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ComputeHash is the entry's SM3 hash (hex): over the tag, seq, at (RFC 3339, UTC), actor,
// actor_division, action, object, outcome, ip, request_id, detail and prev_hash, each
// length-prefixed.
func (r Record) ComputeHash() string {
	sum := sm3.Sum(frame(entryTag, strconv.FormatInt(r.Seq, 10), formatTime(r.At),
		r.Actor, r.ActorDivision, r.Action, r.Object, r.Outcome, r.IP, r.RequestID, string(r.Detail), r.PrevHash))
	return hex.EncodeToString(sum[:])
}

// Message is what a checkpoint's signature covers: the tag, seq, hash and at, length-prefixed.
func (c Checkpoint) Message() []byte {
	return frame(checkpointTag, strconv.FormatInt(c.Seq, 10), c.Hash, formatTime(c.At))
}

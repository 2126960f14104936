package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Report is the outcome of Verify.
type Report struct {
	Entries     int64 `json:"entries"`     // entries read and checked
	Checkpoints int64 `json:"checkpoints"` // checkpoints whose signature was checked
	// Head is the head seq when verification began; entries appended later are not covered.
	Head int64 `json:"head"`
	OK   bool  `json:"ok"`
	// FirstBad is the seq of the first problem: the edited entry, the first missing one, the
	// entry whose link to its predecessor breaks, or the checkpoint that no longer matches.
	FirstBad int64     `json:"first_bad"`
	Reason   i18n.Text `json:"reason"` // the first problem, or a summary when OK
	// LastCheckpoint is the newest checkpoint that verified: entries up to it are vouched for by
	// a signature, later ones only by the chain.
	LastCheckpoint *Checkpoint `json:"last_checkpoint"`
	Problems       []Problem   `json:"problems"`      // in seq order, at most maxProblems
	ProblemCount   int         `json:"problem_count"` // all problems found, also those not listed
}

// Problem is one finding of Verify.
type Problem struct {
	Seq    int64     `json:"seq"`
	Kind   string    `json:"kind"` // one of the Problem… constants
	Reason i18n.Text `json:"reason"`
}

// Kinds of Problem.
const (
	ProblemHash                = "hash"                 // an entry's content does not match its hash
	ProblemLink                = "link"                 // an entry's prev_hash is not its predecessor's hash
	ProblemGap                 = "gap"                  // entries are missing
	ProblemCheckpointSignature = "checkpoint_signature" // a checkpoint's signature does not verify
	ProblemCheckpointHash      = "checkpoint_hash"      // a signed head differs from the chain at that seq
	ProblemCheckpointMissing   = "checkpoint_missing"   // a checkpoint the head row records is gone
	ProblemTruncated           = "truncated"            // the log ends before its head or a checkpoint
	ProblemHead                = "head"                 // the head row disagrees with the log
)

const (
	maxProblems = 100
	verifyPage  = 1000
)

// Verify walks the whole chain in seq order, a page at a time: it recomputes every hash, checks
// every link and that seq runs 1, 2, 3… without gaps, verifies every checkpoint's signature and
// that it matches the chain, and compares the end of the log with the head row and the last
// checkpoint so a truncated tail shows. Problems are findings in the Report; the error is for
// a database that could not be read.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	var rep Report
	start, err := readHead(ctx, l.d, `SELECT seq, hash, checkpoint_seq FROM audit_head WHERE id = 1`)
	noHead := errors.Is(err, sql.ErrNoRows)
	switch {
	case noHead:
		// Deleted: verify all there is, and say the tail cannot be vouched for.
		start = head{seq: math.MaxInt64}
	case err != nil:
		return rep, err
	default:
		rep.Head = start.seq
	}
	add := func(seq int64, kind string, reason i18n.Text) {
		rep.ProblemCount++
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, Problem{Seq: seq, Kind: kind, Reason: reason})
		}
	}

	// Only entries up to the head read above: later ones may be committing right now.
	entries := pager[Record]{seq: func(r Record) int64 { return r.Seq }, fetch: func(after int64) ([]Record, error) {
		return l.queryRecords(ctx, `SELECT `+recordCols+` FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, after, start.seq, verifyPage)
	}}
	checkpoints := pager[Checkpoint]{seq: func(c Checkpoint) int64 { return c.Seq }, fetch: func(after int64) ([]Checkpoint, error) {
		return l.queryCheckpoints(ctx, after, start.seq)
	}}
	sawHeadCheckpoint := start.checkpoint == 0
	checkpoint := func(c Checkpoint, entry *Record) {
		rep.Checkpoints++
		sawHeadCheckpoint = sawHeadCheckpoint || c.Seq == start.checkpoint
		switch {
		case l.s.Verify(c.KeyID, c.Message(), c.Signature) != nil:
			add(c.Seq, ProblemCheckpointSignature, i18n.T(
				fmt.Sprintf("第 %d 条处的检查点签名无效（密钥 %s）：检查点被伪造或改写", c.Seq, c.KeyID),
				fmt.Sprintf("checkpoint at entry %d: the signature (key %s) does not verify: the checkpoint was forged or altered", c.Seq, c.KeyID)))
		case entry == nil:
			add(c.Seq, ProblemTruncated, i18n.T(
				fmt.Sprintf("已签名的检查点覆盖第 %d 条，但该记录不存在：记录被删除", c.Seq),
				fmt.Sprintf("a signed checkpoint covers entry %d, which is missing: entries were deleted", c.Seq)))
		case entry.Hash != c.Hash:
			add(c.Seq, ProblemCheckpointHash, i18n.T(
				fmt.Sprintf("第 %d 条的哈希与该处已签名的检查点不符：签名后该条及之前的记录被改写", c.Seq),
				fmt.Sprintf("entry %d does not match the signed checkpoint at it: entries up to it were rewritten after signing", c.Seq)))
		default:
			cp := c
			rep.LastCheckpoint = &cp
		}
	}

	prevHash, next := ZeroHash, int64(1)
	for {
		r, ok, err := entries.peek()
		if err != nil {
			return rep, fmt.Errorf("audit verify: read entries after %d: %w", next-1, err)
		}
		if !ok {
			break
		}
		entries.pop()
		rep.Entries++
		gap := r.Seq != next
		if gap {
			add(next, ProblemGap, missing(next, r.Seq-1))
		}
		if r.ComputeHash() != r.Hash {
			add(r.Seq, ProblemHash, i18n.T(
				fmt.Sprintf("第 %d 条记录的内容与其哈希不符：记录被篡改", r.Seq),
				fmt.Sprintf("entry %d does not match its hash: the entry was altered", r.Seq)))
		}
		// After a gap the predecessor is missing; the gap already says so.
		if !gap && r.PrevHash != prevHash {
			add(r.Seq, ProblemLink, i18n.T(
				fmt.Sprintf("第 %d 条记录的前序哈希与第 %d 条不符：链被改写", r.Seq, r.Seq-1),
				fmt.Sprintf("entry %d does not link to entry %d: the chain was rewritten", r.Seq, r.Seq-1)))
		}
		// Checkpoints up to this entry: on it, or on missing entries before it. A checkpoint is
		// compared with the stored hash, which the checks above tie to the content.
		for {
			c, ok, err := checkpoints.peek()
			if err != nil {
				return rep, fmt.Errorf("audit verify: read checkpoints: %w", err)
			}
			if !ok || c.Seq > r.Seq {
				break
			}
			checkpoints.pop()
			if c.Seq == r.Seq {
				checkpoint(c, &r)
			} else {
				checkpoint(c, nil)
			}
		}
		prevHash, next = r.Hash, r.Seq+1
	}
	last := next - 1
	for {
		c, ok, err := checkpoints.peek()
		if err != nil {
			return rep, fmt.Errorf("audit verify: read checkpoints: %w", err)
		}
		if !ok {
			break
		}
		checkpoints.pop()
		checkpoint(c, nil)
	}

	// The tail: a log may only end at its head, and never before a checkpoint.
	if noHead {
		add(last+1, ProblemHead, i18n.T(
			"头记录被删除：无法排除末尾记录被删除",
			"the head row was deleted: a deleted tail cannot be ruled out"))
	} else if err := l.checkTail(ctx, start, last, prevHash, sawHeadCheckpoint, add); err != nil {
		return rep, err
	}

	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Seq < rep.Problems[j].Seq })
	rep.OK = rep.ProblemCount == 0
	if rep.OK {
		rep.Reason = i18n.T(
			fmt.Sprintf("审计日志完整：%d 条记录，%d 个检查点签名有效", rep.Entries, rep.Checkpoints),
			fmt.Sprintf("audit log intact: %d entries, %d checkpoints with valid signatures", rep.Entries, rep.Checkpoints))
	} else {
		rep.FirstBad, rep.Reason = rep.Problems[0].Seq, rep.Problems[0].Reason
	}
	return rep, nil
}

// checkTail compares the end of the chain (last, lastHash) with the head row read at the start,
// and looks for entries and checkpoints past the head — a head row rewound to hide a truncation
// leaves a later checkpoint behind. It reads the maxima before the head again: an append
// commits its entry and the head together, so a legitimate one never shows up past the head.
func (l *Log) checkTail(ctx context.Context, start head, last int64, lastHash string, sawHeadCheckpoint bool, add func(int64, string, i18n.Text)) error {
	switch {
	case last < start.seq:
		add(last+1, ProblemTruncated, i18n.T(
			fmt.Sprintf("日志止于第 %d 条，但头记录为第 %d 条：第 %d 至 %d 条被删除", last, start.seq, last+1, start.seq),
			fmt.Sprintf("the log ends at entry %d but its head is entry %d: entries %d to %d were deleted", last, start.seq, last+1, start.seq)))
	case lastHash != start.hash:
		add(last, ProblemHead, i18n.T(
			fmt.Sprintf("头记录的哈希与第 %d 条不符", last),
			fmt.Sprintf("the head's hash does not match entry %d", last)))
	}
	if !sawHeadCheckpoint {
		add(start.checkpoint, ProblemCheckpointMissing, i18n.T(
			fmt.Sprintf("头记录所记的第 %d 条处检查点不存在：检查点被删除", start.checkpoint),
			fmt.Sprintf("the checkpoint at entry %d recorded by the head is missing: it was deleted", start.checkpoint)))
	}
	var maxEntry, maxCheckpoint sql.NullInt64
	if err := l.d.QueryRow(ctx, `SELECT MAX(seq) FROM audit_log`).Scan(&maxEntry); err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if err := l.d.QueryRow(ctx, `SELECT MAX(seq) FROM audit_checkpoints`).Scan(&maxCheckpoint); err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	now, err := readHead(ctx, l.d, `SELECT seq, hash, checkpoint_seq FROM audit_head WHERE id = 1`)
	if err != nil {
		return err
	}
	switch {
	case now.seq < start.seq:
		add(now.seq+1, ProblemHead, i18n.T(
			fmt.Sprintf("验证期间头记录从第 %d 条退回到第 %d 条", start.seq, now.seq),
			fmt.Sprintf("the head went back from entry %d to %d during verification", start.seq, now.seq)))
	case maxCheckpoint.Int64 > now.seq:
		add(now.seq+1, ProblemTruncated, i18n.T(
			fmt.Sprintf("已签名的检查点覆盖到第 %d 条，但日志头只到第 %d 条：末尾记录被删除", maxCheckpoint.Int64, now.seq),
			fmt.Sprintf("a signed checkpoint covers entry %d but the log's head is entry %d: the tail was deleted", maxCheckpoint.Int64, now.seq)))
	case maxEntry.Int64 > now.seq:
		add(now.seq+1, ProblemHead, i18n.T(
			fmt.Sprintf("第 %d 条之后有头记录以外的记录：记录被插入", now.seq),
			fmt.Sprintf("there are entries after the head (entry %d): entries were inserted", now.seq)))
	}
	return nil
}

func missing(from, to int64) i18n.Text {
	if from == to {
		return i18n.T(fmt.Sprintf("缺少第 %d 条记录：记录被删除", from), fmt.Sprintf("entry %d is missing: it was deleted", from))
	}
	return i18n.T(fmt.Sprintf("缺少第 %d 至 %d 条记录：记录被删除", from, to), fmt.Sprintf("entries %d to %d are missing: they were deleted", from, to))
}

func (l *Log) queryCheckpoints(ctx context.Context, after, upTo int64) ([]Checkpoint, error) {
	rows, err := l.d.Query(ctx, `SELECT seq, hash, at, key_id, signature FROM audit_checkpoints WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, after, upTo, verifyPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		if err := rows.Scan(&c.Seq, &c.Hash, &c.At, &c.KeyID, &c.Signature); err != nil {
			return nil, err
		}
		c.At = c.At.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// pager streams rows in seq order, one page per query, so Verify holds one page in memory.
type pager[T any] struct {
	fetch func(after int64) ([]T, error)
	seq   func(T) int64
	buf   []T
	after int64
	done  bool
}

func (p *pager[T]) peek() (T, bool, error) {
	var zero T
	if len(p.buf) == 0 && !p.done {
		page, err := p.fetch(p.after)
		if err != nil {
			return zero, false, err
		}
		p.buf, p.done = page, len(page) < verifyPage
		if len(page) > 0 {
			p.after = p.seq(page[len(page)-1])
		}
	}
	if len(p.buf) == 0 {
		return zero, false, nil
	}
	return p.buf[0], true, nil
}

func (p *pager[T]) pop() { p.buf = p.buf[1:] }

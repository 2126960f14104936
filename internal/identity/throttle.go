package identity

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
)

// limit is a back-off rule of login_throttle: Max events within Window lock the key for
// Lock, doubling with each further lock up to MaxLock. Locks are forgotten a day after the
// last one ended.
type limit struct {
	Max           int
	Window        time.Duration
	Lock, MaxLock time.Duration
}

var (
	// limitIP: failed logins from one source address, whatever the accounts tried — a
	// password-spraying client is slowed without locking anybody's account.
	limitIP = limit{Max: 20, Window: 10 * time.Minute, Lock: 10 * time.Minute, MaxLock: 24 * time.Hour}
	// limitSMSIP: SMS codes requested from one source address (each costs money and annoys
	// somebody).
	limitSMSIP = limit{Max: 20, Window: time.Hour, Lock: time.Hour, MaxLock: 24 * time.Hour}
	// limitSMSMobile: codes sent to one mobile per day, beside the 60-second gap.
	limitSMSMobile = limit{Max: 10, Window: 24 * time.Hour, Lock: 24 * time.Hour, MaxLock: 24 * time.Hour}
	// limitRealName: 5 failed real-name verifications a day per account: the check is an
	// oracle on the population library and must not be queried freely.
	limitRealName = limit{Max: 5, Window: 24 * time.Hour, Lock: 24 * time.Hour, MaxLock: 24 * time.Hour}
	// limitOTP: wrong TOTP codes of one account (three valid codes of a million at a time).
	limitOTP = limit{Max: 5, Window: 15 * time.Minute, Lock: 15 * time.Minute, MaxLock: 24 * time.Hour}
)

type throttleRow struct {
	failures    int
	windowStart time.Time
	lockedUntil sql.NullTime
	lockouts    int
}

// throttleWait is how long key stays locked at now (0: not locked). A plain read: checks
// happen before any work, and only events write.
func throttleWait(ctx context.Context, q db.Querier, key string, now time.Time) (time.Duration, error) {
	var until sql.NullTime
	err := q.QueryRow(ctx, `SELECT locked_until FROM login_throttle WHERE key = ?`, key).Scan(&until)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read throttle: %w", err)
	}
	if until.Valid && until.Time.After(now) {
		return until.Time.Sub(now), nil
	}
	return 0, nil
}

// lockThrottle makes sure key has a row and locks it until tx ends, so that nodes counting
// the same key concurrently do not lose counts. (An UPDATE that changes nothing takes the row
// lock on PostgreSQL; SQLite has one writer anyway.)
func lockThrottle(ctx context.Context, tx *db.Tx, key string, now time.Time) (throttleRow, error) {
	var r throttleRow
	if _, err := tx.Exec(ctx, `INSERT INTO login_throttle (key, failures, window_start, lockouts) VALUES (?, 0, ?, 0)
		ON CONFLICT (key) DO NOTHING`, key, now); err != nil {
		return r, fmt.Errorf("throttle %s: %w", key, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE login_throttle SET failures = failures WHERE key = ?`, key); err != nil {
		return r, fmt.Errorf("throttle %s: %w", key, err)
	}
	err := tx.QueryRow(ctx, `SELECT failures, window_start, locked_until, lockouts FROM login_throttle WHERE key = ?`, key).
		Scan(&r.failures, &r.windowStart, &r.lockedUntil, &r.lockouts)
	if err != nil {
		return r, fmt.Errorf("throttle %s: %w", key, err)
	}
	return r, nil
}

// hit counts one event of key under l at now. It returns the end of the lock when this
// event started one (zero otherwise); events while locked are not counted.
func hit(ctx context.Context, tx *db.Tx, key string, l limit, now time.Time) (time.Time, error) {
	r, err := lockThrottle(ctx, tx, key, now)
	if err != nil {
		return time.Time{}, err
	}
	if r.lockedUntil.Valid && r.lockedUntil.Time.After(now) {
		return time.Time{}, nil
	}
	if r.lockedUntil.Valid && now.Sub(r.lockedUntil.Time) > 24*time.Hour {
		r.lockouts = 0
	}
	if now.Sub(r.windowStart) >= l.Window {
		r.failures, r.windowStart = 0, now
	}
	r.failures++
	var until time.Time
	if r.failures >= l.Max {
		d := l.Lock
		for i := 0; i < r.lockouts && d < l.MaxLock; i++ {
			d *= 2
		}
		until = now.Add(min(d, l.MaxLock))
		r.lockouts++
		r.failures, r.windowStart = 0, now
		r.lockedUntil = sql.NullTime{Time: until, Valid: true}
	}
	if _, err := tx.Exec(ctx, `UPDATE login_throttle SET failures = ?, window_start = ?, locked_until = ?, lockouts = ? WHERE key = ?`,
		r.failures, r.windowStart, nullTime(r.lockedUntil), r.lockouts, key); err != nil {
		return time.Time{}, fmt.Errorf("throttle %s: %w", key, err)
	}
	return until, nil
}

// gap enforces a minimum interval between events of key: it returns the remaining wait when
// the last event was less than d ago, and otherwise records this one.
func gap(ctx context.Context, tx *db.Tx, key string, d time.Duration, now time.Time) (time.Duration, error) {
	r, err := lockThrottle(ctx, tx, key, now)
	if err != nil {
		return 0, err
	}
	if r.lockedUntil.Valid && r.lockedUntil.Time.After(now) {
		return r.lockedUntil.Time.Sub(now), nil
	}
	if _, err := tx.Exec(ctx, `UPDATE login_throttle SET window_start = ?, locked_until = ? WHERE key = ?`, now, now.Add(d), key); err != nil {
		return 0, fmt.Errorf("throttle %s: %w", key, err)
	}
	return 0, nil
}

func nullTime(t sql.NullTime) any {
	if !t.Valid {
		return nil
	}
	return t.Time
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

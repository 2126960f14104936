package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Session lifetimes: a session ends after IdleTimeout without use, and MaxAge after it began.
const (
	IdleTimeout = 2 * time.Hour
	MaxAge      = 12 * time.Hour
)

// Authentication methods (RFC 8176 amr values; sm2 for a certificate signature with SM2).
const (
	AMRPassword = "pwd"
	AMRSMS      = "sms"
	AMROTP      = "otp"
	AMRHardware = "hwk"
	AMRSM2      = "sm2"
)

var validAMR = map[string]bool{AMRPassword: true, AMRSMS: true, AMROTP: true, AMRHardware: true, AMRSM2: true, AMRFederated: true}

// Session is a single-sign-on session. ID is its public handle (for "my sessions" and
// RevokeSession); the token that proves it is known only to its holder.
type Session struct {
	ID                 string
	AccountID          string
	ActingEnterpriseID string // "" when acting as oneself
	Level              int    // the assurance reached in this session
	AMR                []string
	CreatedAt          time.Time
	LastSeen           time.Time
	ExpiresAt          time.Time // the absolute end; the idle end is LastSeen + IdleTimeout
	IP                 string
	UserAgent          string
}

// IdleExpiresAt is when the session ends unless used before.
func (s Session) IdleExpiresAt() time.Time { return s.LastSeen.Add(IdleTimeout) }

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenHash(token string) string { return crypto.SM3Hex([]byte("identity-session\x00" + token)) }

func sessionObject(id string) string { return "session:" + id }

// CreateSession starts a session for an account after the caller authenticated it with the
// methods amr, at level (at most the account's level). It returns the token to hand to the
// browser (32 random bytes, base64url); only its SM3 hash is stored.
func (s *Service) CreateSession(ctx context.Context, accountID string, level int, amr []string, ip, ua string) (string, Session, error) {
	if level < LevelRegistered || level > LevelStrong || len(amr) == 0 {
		return "", Session{}, ErrBadLevel
	}
	var methods []string
	for _, m := range amr {
		if !validAMR[m] {
			return "", Session{}, ErrBadLevel
		}
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return "", Session{}, err
	}
	if acc.Status != StatusActive {
		return "", Session{}, ErrInactive
	}
	if level > acc.Level {
		return "", Session{}, ErrBadLevel
	}
	now := s.clock()
	token := newToken()
	ses := Session{ID: db.NewID(), AccountID: acc.ID, Level: level, AMR: methods, CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(MaxAge), IP: truncate(ip, 64), UserAgent: truncate(ua, 256)}
	amrJSON, _ := json.Marshal(methods)
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sso_sessions (token_hash, id, account_id, level, amr, created_at, last_seen,
			expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, tokenHash(token), ses.ID, ses.AccountID,
			ses.Level, string(amrJSON), now, now, ses.ExpiresAt, ses.IP, ses.UserAgent); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionSessionCreated, sessionObject(ses.ID),
			map[string]any{"level": level, "amr": methods, "ip": ses.IP})
	})
	if err != nil {
		return "", Session{}, err
	}
	return token, ses, nil
}

const sessionSelect = `SELECT s.id, s.account_id, s.acting_enterprise_id, s.level, s.amr, s.created_at, s.last_seen,
	s.expires_at, s.ip, s.user_agent, s.revoked_at, a.status FROM sso_sessions s JOIN accounts a ON a.id = s.account_id`

type sessionRow struct {
	Session
	revoked bool
	status  string
}

func scanSession(sc interface{ Scan(...any) error }) (sessionRow, error) {
	var r sessionRow
	var acting sql.NullString
	var amr string
	var revoked sql.NullTime
	if err := sc.Scan(&r.ID, &r.AccountID, &acting, &r.Level, &amr, &r.CreatedAt, &r.LastSeen, &r.ExpiresAt,
		&r.IP, &r.UserAgent, &revoked, &r.status); err != nil {
		return r, err
	}
	r.ActingEnterpriseID, r.revoked = acting.String, revoked.Valid
	if err := json.Unmarshal([]byte(amr), &r.AMR); err != nil {
		return r, fmt.Errorf("session %s amr: %w", r.ID, err)
	}
	return r, nil
}

func (r sessionRow) live(now time.Time) bool {
	return !r.revoked && r.status == StatusActive && now.Before(r.ExpiresAt) && now.Sub(r.LastSeen) <= IdleTimeout
}

// GetSession returns the live session of token and slides its idle window; anything else
// (unknown, revoked, expired, idle, disabled account) is ErrSessionInvalid. When the session
// acts for an enterprise the account is no longer a member of, that is dropped here: a
// removed operator loses the enterprise in sessions already open.
func (s *Service) GetSession(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 100 {
		return Session{}, ErrSessionInvalid
	}
	h := tokenHash(token)
	r, err := scanSession(s.d.QueryRow(ctx, sessionSelect+` WHERE s.token_hash = ?`, h))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrSessionInvalid
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	now := s.clock()
	if !r.live(now) {
		return Session{}, ErrSessionInvalid
	}
	if r.ActingEnterpriseID != "" {
		role, err := activeRole(ctx, s.d, r.ActingEnterpriseID, r.AccountID)
		if err != nil {
			return Session{}, err
		}
		if role == "" {
			if _, err := s.d.Exec(ctx, `UPDATE sso_sessions SET acting_enterprise_id = NULL WHERE token_hash = ? AND acting_enterprise_id = ?`,
				h, r.ActingEnterpriseID); err != nil {
				return Session{}, fmt.Errorf("drop enterprise of session: %w", err)
			}
			r.ActingEnterpriseID = ""
		}
	}
	// Touch at most once a minute: a busy page must not turn every read into a write.
	if now.Sub(r.LastSeen) > time.Minute {
		if _, err := s.d.Exec(ctx, `UPDATE sso_sessions SET last_seen = ? WHERE token_hash = ?`, now, h); err != nil {
			return Session{}, fmt.Errorf("touch session: %w", err)
		}
		r.LastSeen = now
	}
	return r.Session, nil
}

// ListSessions lists the account's live sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, accountID string) ([]Session, error) {
	now := s.clock()
	rows, err := s.d.Query(ctx, sessionSelect+` WHERE s.account_id = ? AND s.revoked_at IS NULL AND s.expires_at > ?
		AND s.last_seen >= ? ORDER BY s.created_at DESC, s.id DESC`, accountID, now, now.Add(-IdleTimeout))
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		r, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		if r.live(now) {
			out = append(out, r.Session)
		}
	}
	return out, rows.Err()
}

// RevokeSession ends one of the account's own sessions, by its public id; another
// account's session, or one already ended, is i18n.ErrNotFound.
func (s *Service) RevokeSession(ctx context.Context, accountID, sessionID string) error {
	now := s.clock()
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE sso_sessions SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL`,
			now, sessionID, accountID)
		if err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return i18n.ErrNotFound
		}
		return s.record(ctx, tx, citizen(accountID, ""), ActionSessionRevoked, sessionObject(sessionID), map[string]any{})
	})
}

// Logout ends the session of token (an unknown or ended one is no error).
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" || len(token) > 100 {
		return nil
	}
	now := s.clock()
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		var id, account string
		err := tx.QueryRow(ctx, `SELECT id, account_id FROM sso_sessions WHERE token_hash = ? AND revoked_at IS NULL`, tokenHash(token)).
			Scan(&id, &account)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sso_sessions SET revoked_at = ? WHERE token_hash = ?`, now, tokenHash(token)); err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		return s.record(ctx, tx, citizen(account, ""), ActionLogout, sessionObject(id), map[string]any{})
	})
}

func revokeAll(ctx context.Context, tx *db.Tx, accountID string, now time.Time) (int64, error) {
	// Sessions already ended by time are left alone, so the count is what a person would see.
	res, err := tx.Exec(ctx, `UPDATE sso_sessions SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL
		AND expires_at > ? AND last_seen >= ?`, now, accountID, now, now.Add(-IdleTimeout))
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// RevokeAll ends every session of the account ("log out everywhere") and returns how many.
func (s *Service) RevokeAll(ctx context.Context, accountID string) (int, error) {
	now := s.clock()
	var n int64
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if n, err = revokeAll(ctx, tx, accountID, now); err != nil {
			return err
		}
		return s.record(ctx, tx, citizen(accountID, ""), ActionSessionsRevoked, accountObject(accountID), map[string]any{"count": n})
	})
	return int(n), err
}

// ActAs makes the session act for an enterprise the account is an active member of, or for
// the person again with enterpriseID "". Acting for a legal person needs a real-name session
// (level 2 or more).
func (s *Service) ActAs(ctx context.Context, token, enterpriseID string) (Session, error) {
	ses, err := s.GetSession(ctx, token)
	if err != nil {
		return Session{}, err
	}
	if enterpriseID != "" && ses.Level < LevelRealName {
		return Session{}, ErrLevelTooLow
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		var role string
		if enterpriseID != "" {
			var err error
			if role, err = activeRole(ctx, tx, enterpriseID, ses.AccountID); err != nil {
				return err
			}
			if role == "" {
				return ErrNotMember
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE sso_sessions SET acting_enterprise_id = ? WHERE token_hash = ? AND revoked_at IS NULL`,
			nullString(enterpriseID), tokenHash(token)); err != nil {
			return fmt.Errorf("act as: %w", err)
		}
		return s.record(ctx, tx, citizen(ses.AccountID, ""), ActionActAs, sessionObject(ses.ID),
			map[string]any{"enterprise": enterpriseID, "role": role})
	})
	if err != nil {
		return Session{}, err
	}
	ses.ActingEnterpriseID = enterpriseID
	return ses, nil
}

// RaiseSessionLevel records that the holder of the session has just been confirmed at level
// 3 by method ("hwk": a device biometric or hardware key; "sm2": an SM2 certificate) — the
// caller checked it and that it belongs to this person. The method joins the session's amr;
// the account, which must be real-name verified, becomes level 3 as well.
func (s *Service) RaiseSessionLevel(ctx context.Context, token string, level int, method string) (Session, error) {
	if level != LevelStrong || (method != AMRHardware && method != AMRSM2) {
		return Session{}, ErrBadLevel
	}
	ses, err := s.GetSession(ctx, token)
	if err != nil {
		return Session{}, err
	}
	acc, err := s.account(ctx, s.d, ses.AccountID)
	if err != nil {
		return Session{}, err
	}
	if acc.Level < LevelRealName {
		return Session{}, ErrLevelTooLow
	}
	if !slices.Contains(ses.AMR, method) {
		ses.AMR = append(ses.AMR, method)
	}
	amrJSON, _ := json.Marshal(ses.AMR)
	now := s.clock()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sso_sessions SET level = ?, amr = ? WHERE token_hash = ?`, level, string(amrJSON), tokenHash(token)); err != nil {
			return fmt.Errorf("raise session level: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET level = ?, updated_at = ? WHERE id = ? AND level < ?`, level, now, acc.ID, level); err != nil {
			return fmt.Errorf("raise account level: %w", err)
		}
		return s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionLevelRaised, sessionObject(ses.ID),
			map[string]any{"level": level, "method": method, "account_level_was": acc.Level})
	})
	if err != nil {
		return Session{}, err
	}
	ses.Level = level
	return ses, nil
}

// EndSession ends the session with this public id, whoever holds it: an application asked the
// OpenID provider to log its user out (end_session), which ends the single sign-on too.
func (s *Service) EndSession(ctx context.Context, sessionID string) error {
	now := s.clock()
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		var account string
		err := tx.QueryRow(ctx, `SELECT account_id FROM sso_sessions WHERE id = ? AND revoked_at IS NULL`, sessionID).Scan(&account)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // already ended
		} else if err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sso_sessions SET revoked_at = ? WHERE id = ?`, now, sessionID); err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		return s.record(ctx, tx, citizen(account, ""), ActionLogout, sessionObject(sessionID), map[string]any{"by": "application"})
	})
}

// SessionAlive reports whether the session with this public id has neither been ended (logout,
// revocation, password reset) nor reached its absolute end. Applications' refresh tokens live
// only as long as the sign-in they came from (idle time is the portal's own business).
func (s *Service) SessionAlive(ctx context.Context, sessionID string) (bool, error) {
	var n int
	err := s.d.QueryRow(ctx, `SELECT COUNT(*) FROM sso_sessions WHERE id = ? AND revoked_at IS NULL AND expires_at > ?`,
		sessionID, s.clock()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("session alive: %w", err)
	}
	return n == 1, nil
}

package console

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are the console's tables; they reference org's staff table, so they run after org.
var Migrations = db.Migrations("console", migrationFS, "migrations")

// Session lifetimes: idle sessions end after IdleTimeout, every session after MaxAge.
const (
	IdleTimeout = 30 * time.Minute
	MaxAge      = 12 * time.Hour
)

// Session is a logged-in staff browser.
type Session struct {
	StaffID   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Sessions keeps console sessions in the database, so any node behind a load balancer can
// serve any request.
type Sessions struct {
	d   *db.DB
	now func() time.Time
}

// NewSessions returns the session store.
func NewSessions(d *db.DB, now func() time.Time) *Sessions { return &Sessions{d: d, now: now} }

func tokenHash(token string) string { return crypto.SM3Hex([]byte("console-session\x00" + token)) }

// Create starts a session and returns the cookie token.
func (s *Sessions) Create(ctx context.Context, staffID, ip, ua string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := db.Now(s.now())
	if len(ua) > 256 {
		ua = ua[:256]
	}
	_, err := s.d.Exec(ctx, `INSERT INTO console_sessions (token_hash, staff_id, created_at, last_seen, expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		tokenHash(token), staffID, now, now, now.Add(MaxAge), ip, ua)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return token, nil
}

// errNoSession means the token names no live session.
var errNoSession = errors.New("no session")

// Get returns the live session of token and slides its idle window.
func (s *Sessions) Get(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 100 {
		return Session{}, errNoSession
	}
	h := tokenHash(token)
	var ses Session
	var last time.Time
	err := s.d.QueryRow(ctx, `SELECT staff_id, created_at, expires_at, last_seen FROM console_sessions WHERE token_hash = ?`, h).
		Scan(&ses.StaffID, &ses.CreatedAt, &ses.ExpiresAt, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, errNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	now := db.Now(s.now())
	if now.After(ses.ExpiresAt) || now.Sub(last) > IdleTimeout {
		_ = s.Delete(ctx, token)
		return Session{}, errNoSession
	}
	// Touch at most once a minute: a busy page must not turn every read into a write.
	if now.Sub(last) > time.Minute {
		if _, err := s.d.Exec(ctx, `UPDATE console_sessions SET last_seen = ? WHERE token_hash = ?`, now, h); err != nil {
			return Session{}, fmt.Errorf("touch session: %w", err)
		}
	}
	return ses, nil
}

// Delete ends a session.
func (s *Sessions) Delete(ctx context.Context, token string) error {
	_, err := s.d.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash = ?`, tokenHash(token))
	return err
}

// DeleteExpired removes ended sessions (run by a periodic job).
func (s *Sessions) DeleteExpired(ctx context.Context) (int64, error) {
	now := db.Now(s.now())
	res, err := s.d.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at < ? OR last_seen < ?`, now, now.Add(-IdleTimeout))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteOthers ends every session of a staff member except the one with keepToken (after a
// password change, the sessions opened with the old password end).
func (s *Sessions) DeleteOthers(ctx context.Context, staffID, keepToken string) error {
	_, err := s.d.Exec(ctx, `DELETE FROM console_sessions WHERE staff_id = ? AND token_hash <> ?`, staffID, tokenHash(keepToken))
	if err != nil {
		return fmt.Errorf("end other sessions: %w", err)
	}
	return nil
}

// DeleteByKey ends the session a provider knows by its key (an application asked to log out).
func (s *Sessions) DeleteByKey(ctx context.Context, key string) error {
	_, err := s.d.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash = ?`, key)
	return err
}

// Alive reports whether the session a provider knows by key still exists and has not reached
// its absolute end.
func (s *Sessions) Alive(ctx context.Context, key string) (bool, error) {
	var n int
	err := s.d.QueryRow(ctx, `SELECT COUNT(*) FROM console_sessions WHERE token_hash = ? AND expires_at > ?`, key, db.Now(s.now())).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("console session alive: %w", err)
	}
	return n == 1, nil
}

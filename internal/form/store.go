package form

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates form_versions.
var Migrations = db.Migrations("form", migrationFiles, "migrations")

// ErrVersionConflict: the same key and version were saved before with a different declaration.
var ErrVersionConflict = &i18n.Error{Code: "form.version_conflict", Status: http.StatusConflict,
	Msg: i18n.T("该表单的这个版本号已有不同的内容：修改表单时请提高版本号", "this version of the form already exists with different content: raise the version when the form changes")}

// Versions stores form declarations by version. A row is written once and never changed, so
// an application that keeps a version's id is always read with the form it was made with.
type Versions struct {
	d   *db.DB
	now func() time.Time
	// cache holds parsed forms by id; rows are immutable, so it never goes stale.
	cache sync.Map // id → *Form
}

// NewVersions returns the store; now is the injected clock (time.Now when nil).
func NewVersions(d *db.DB, now func() time.Time) *Versions {
	if now == nil {
		now = time.Now
	}
	return &Versions{d: d, now: now}
}

// SaveTx stores f inside the caller's transaction and returns its id. It is idempotent by
// hash: the same declaration (in any layout) always gets the same id. A different
// declaration under a key and version already stored is refused with ErrVersionConflict.
func (s *Versions) SaveTx(ctx context.Context, tx *db.Tx, f *Form) (string, error) {
	// ON CONFLICT DO NOTHING, not a read first: two nodes saving the same pack at once must
	// both end with the one row, and on PostgreSQL a failed INSERT would abort the caller's
	// transaction.
	id := db.NewID()
	if _, err := tx.Exec(ctx, `INSERT INTO form_versions (id, key, version, hash, declaration, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		id, f.Key, f.Version, f.hash, string(f.canonical), db.Now(s.now())); err != nil {
		return "", fmt.Errorf("save form %s v%d: %w", f.Key, f.Version, err)
	}
	var got string
	err := tx.QueryRow(ctx, `SELECT id FROM form_versions WHERE hash = ?`, f.hash).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrVersionConflict.WithField(fmt.Sprintf("%s v%d", f.Key, f.Version))
	}
	if err != nil {
		return "", fmt.Errorf("save form %s v%d: %w", f.Key, f.Version, err)
	}
	if got == id {
		tx.AfterCommit(func() { s.cache.Store(id, f) })
	}
	return got, nil
}

// Get returns the form stored under id; i18n.ErrNotFound when there is none.
func (s *Versions) Get(ctx context.Context, id string) (*Form, error) {
	if f, ok := s.cache.Load(id); ok {
		return f.(*Form), nil
	}
	var decl, hash string
	err := s.d.QueryRow(ctx, `SELECT declaration, hash FROM form_versions WHERE id = ?`, id).Scan(&decl, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, i18n.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get form %s: %w", id, err)
	}
	return s.load(id, decl, hash)
}

// Latest returns the id and form of the highest stored version of key.
func (s *Versions) Latest(ctx context.Context, key string) (string, *Form, error) {
	var id, decl, hash string
	err := s.d.QueryRow(ctx, `SELECT id, declaration, hash FROM form_versions WHERE key = ? ORDER BY version DESC, created_at DESC LIMIT 1`, key).
		Scan(&id, &decl, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, i18n.ErrNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("latest form %s: %w", key, err)
	}
	f, err := s.load(id, decl, hash)
	return id, f, err
}

// load parses a stored declaration and checks it is still the one that was saved.
func (s *Versions) load(id, decl, hash string) (*Form, error) {
	if f, ok := s.cache.Load(id); ok {
		return f.(*Form), nil
	}
	f, err := Parse([]byte(decl))
	if err != nil {
		return nil, fmt.Errorf("stored form %s no longer parses: %w", id, err)
	}
	if f.hash != hash {
		return nil, fmt.Errorf("stored form %s was altered: hash %s, declaration hashes to %s", id, hash, f.hash)
	}
	s.cache.Store(id, f)
	return f, nil
}

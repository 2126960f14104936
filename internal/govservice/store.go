package govservice

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the catalogue's tables. They reference no other engine's tables.
var Migrations = db.Migrations("govservice", migrationFiles, "migrations")

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// canonicalForm re-encodes a form declaration with sorted keys and no insignificant space, so
// that reformatting a pack file does not make a new version.
func canonicalForm(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// itemDocument is the stored JSON of an item (without the store's own fields) and its SM3.
func itemDocument(it Item) (string, string, error) {
	it.Version, it.Active, it.UpdatedAt = 0, false, nil
	form, err := canonicalForm(it.Form)
	if err != nil {
		return "", "", fmt.Errorf("item %s: form: %w", it.Code, err)
	}
	it.Form = form
	b, err := json.Marshal(it)
	if err != nil {
		return "", "", fmt.Errorf("item %s: %w", it.Code, err)
	}
	return string(b), crypto.SM3Hex(b), nil
}

// bundleDocument is the same for a bundle.
func bundleDocument(b Bundle) (string, string, error) {
	b.Version, b.Active, b.UpdatedAt = 0, false, nil
	form, err := canonicalForm(b.Form)
	if err != nil {
		return "", "", fmt.Errorf("bundle %s: form: %w", b.Code, err)
	}
	b.Form = form
	out, err := json.Marshal(b)
	if err != nil {
		return "", "", fmt.Errorf("bundle %s: %w", b.Code, err)
	}
	return string(out), crypto.SM3Hex(out), nil
}

// searchText is what the list's keyword filter looks in.
func searchText(it Item) string {
	return strings.ToLower(it.Name + "\n" + strings.Join(it.Keywords, "\n"))
}

const itemSelect = `SELECT document, version, active, updated_at FROM service_items`

func scanItem(s db.Scanner) (Item, error) {
	var it Item
	var doc string
	var at time.Time
	if err := s.Scan(&doc, &it.Version, &it.Active, &at); err != nil {
		return it, err
	}
	v, active := it.Version, it.Active
	if err := json.Unmarshal([]byte(doc), &it); err != nil {
		return it, fmt.Errorf("decode service item: %w", err)
	}
	at = at.UTC()
	it.Version, it.Active, it.UpdatedAt = v, active, &at
	return it, nil
}

const bundleSelect = `SELECT document, version, active, updated_at FROM service_bundles`

func scanBundle(s db.Scanner) (Bundle, error) {
	var b Bundle
	var doc string
	var at time.Time
	if err := s.Scan(&doc, &b.Version, &b.Active, &at); err != nil {
		return b, err
	}
	v, active := b.Version, b.Active
	if err := json.Unmarshal([]byte(doc), &b); err != nil {
		return b, fmt.Errorf("decode bundle: %w", err)
	}
	at = at.UTC()
	b.Version, b.Active, b.UpdatedAt = v, active, &at
	return b, nil
}

// stored is what Sync compares a pack entry with.
type stored struct {
	version int
	hash    string
	active  bool
}

func storedRows(ctx context.Context, tx *db.Tx, table string) (map[string]stored, error) {
	rows, err := tx.Query(ctx, `SELECT code, version, hash, active FROM `+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]stored{}
	for rows.Next() {
		var code string
		var s stored
		if err := rows.Scan(&code, &s.version, &s.hash, &s.active); err != nil {
			return nil, err
		}
		out[code] = s
	}
	return out, rows.Err()
}

// likePattern turns a user's keyword into a LIKE pattern matching it anywhere, literally.
func likePattern(kw string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(kw)) + "%"
}

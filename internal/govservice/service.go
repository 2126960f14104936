package govservice

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Service is the catalogue: it stores packs and answers reads.
type Service struct {
	d     *db.DB
	audit AuditFunc
	now   func() time.Time
}

// New returns the catalogue on d.
func New(d *db.DB, opts Options) *Service {
	s := &Service{d: d, audit: opts.Audit, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// PackActor is who a pack sync is recorded as in the audit log.
var PackActor = authz.Subject{Kind: authz.System, ID: "pack", Name: "事项包"}

// SyncCounts counts what a sync did to items or to bundles.
type SyncCounts struct {
	Added       int `json:"added"`
	Changed     int `json:"changed"`     // a new version
	Reactivated int `json:"reactivated"` // back in the pack (a new version too when changed)
	Deactivated int `json:"deactivated"` // gone from the pack
	Unchanged   int `json:"unchanged"`
}

// SyncResult is what Sync did.
type SyncResult struct {
	Items   SyncCounts `json:"items"`
	Bundles SyncCounts `json:"bundles"`
}

// Sync makes the stored catalogue match pack, in one transaction: a new item is added at
// version 1; an item whose document changed gets the next version (the old one stays
// readable by GetVersion); an active item missing from the pack is deactivated, never deleted;
// an inactive item back in the pack is reactivated. Bundles alike. Syncing the same pack
// again changes nothing. Every change is audited and published in the transaction.
func (s *Service) Sync(ctx context.Context, pack Pack) (SyncResult, error) {
	if err := pack.Validate(); err != nil {
		return SyncResult{}, err
	}
	items := syncTable{table: "service_items", versions: "service_item_versions", subject: EventItemChanged, object: "service_item",
		columns: []string{"department", "level", "name", "type", "zero_visit", "search_text"}}
	for _, it := range pack.Items {
		j, sum, err := itemDocument(it)
		if err != nil {
			return SyncResult{}, err
		}
		items.docs = append(items.docs, syncDoc{code: it.Code, name: it.Name, json: j, hash: sum,
			values: []any{it.Department, it.Level, it.Name, it.Type, it.ZeroVisit, searchText(it)}})
	}
	bundles := syncTable{table: "service_bundles", versions: "service_bundle_versions", subject: EventBundleChanged, object: "service_bundle",
		columns: []string{"name"}}
	for _, b := range pack.Bundles {
		j, sum, err := bundleDocument(b)
		if err != nil {
			return SyncResult{}, err
		}
		bundles.docs = append(bundles.docs, syncDoc{code: b.Code, name: b.Name, json: j, hash: sum, values: []any{b.Name}})
	}
	var h []string
	for _, d := range items.docs {
		h = append(h, "i"+d.code+d.hash)
	}
	for _, d := range bundles.docs {
		h = append(h, "b"+d.code+d.hash)
	}
	packHash := crypto.SM3Hex([]byte(strings.Join(h, "\n")))

	var res SyncResult
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		now := db.Now(s.now())
		if _, err := tx.Exec(ctx, `UPDATE service_sync SET pack_hash = ?, synced_at = ? WHERE id = 1`, packHash, now); err != nil {
			return fmt.Errorf("sync service items: %w", err)
		}
		var err error
		if res.Items, err = s.syncEntries(ctx, tx, items, now); err != nil {
			return err
		}
		res.Bundles, err = s.syncEntries(ctx, tx, bundles, now)
		return err
	})
	if err != nil {
		return SyncResult{}, err
	}
	return res, nil
}

// syncTable describes how one kind of pack entry is stored: its table, its frozen versions,
// the list columns beside the document, and its event.
type syncTable struct {
	table, versions string
	subject, object string
	columns         []string
	docs            []syncDoc
}

// syncDoc is one pack entry ready to store.
type syncDoc struct {
	code, name, json, hash string
	values                 []any // of syncTable.columns
}

// syncEntries makes one table match its pack entries (see Sync).
func (s *Service) syncEntries(ctx context.Context, tx *db.Tx, t syncTable, now time.Time) (SyncCounts, error) {
	var counts SyncCounts
	have, err := storedRows(ctx, tx, t.table)
	if err != nil {
		return counts, fmt.Errorf("sync %s: %w", t.table, err)
	}
	cols := strings.Join(t.columns, ", ")
	insert := `INSERT INTO ` + t.table + ` (code, version, ` + cols + `, document, hash, active, updated_at) VALUES (?, ?, ` +
		strings.Repeat("?, ", len(t.columns)) + `?, ?, ?, ?)`
	update := `UPDATE ` + t.table + ` SET version = ?, ` + strings.Join(t.columns, " = ?, ") + ` = ?, document = ?, hash = ?,
		active = ?, updated_at = ? WHERE code = ?`
	inPack := map[string]bool{}
	for _, d := range t.docs {
		inPack[d.code] = true
		cur, exists := have[d.code]
		version, change := cur.version, ""
		switch {
		case !exists:
			version, change = 1, "added"
			counts.Added++
			args := append(append([]any{d.code, version}, d.values...), d.json, d.hash, true, now)
			if _, err := tx.Exec(ctx, insert, args...); err != nil {
				return counts, fmt.Errorf("add %s %s: %w", t.object, d.code, err)
			}
		case cur.hash == d.hash && cur.active:
			counts.Unchanged++
			continue
		default:
			if cur.hash != d.hash {
				version++
			}
			if cur.active {
				change = "changed"
				counts.Changed++
			} else {
				change = "reactivated"
				counts.Reactivated++
			}
			args := append(append([]any{version}, d.values...), d.json, d.hash, true, now, d.code)
			if _, err := tx.Exec(ctx, update, args...); err != nil {
				return counts, fmt.Errorf("update %s %s: %w", t.object, d.code, err)
			}
		}
		if version != cur.version {
			if _, err := tx.Exec(ctx, `INSERT INTO `+t.versions+` (code, version, document, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
				d.code, version, d.json, d.hash, now); err != nil {
				return counts, fmt.Errorf("record %s %s version %d: %w", t.object, d.code, version, err)
			}
		}
		if err := s.changed(ctx, tx, t.subject, t.object, Event{Code: d.code, Version: version, Active: true, Change: change, At: now},
			map[string]any{"name": d.name, "hash": d.hash}); err != nil {
			return counts, err
		}
	}
	// Entries gone from the pack are deactivated, in code order.
	var gone []string
	for code, cur := range have {
		if cur.active && !inPack[code] {
			gone = append(gone, code)
		}
	}
	slices.Sort(gone)
	for _, code := range gone {
		if _, err := tx.Exec(ctx, `UPDATE `+t.table+` SET active = ?, updated_at = ? WHERE code = ?`, false, now, code); err != nil {
			return counts, fmt.Errorf("deactivate %s %s: %w", t.object, code, err)
		}
		counts.Deactivated++
		if err := s.changed(ctx, tx, t.subject, t.object, Event{Code: code, Version: have[code].version, Active: false, Change: "deactivated", At: now}, nil); err != nil {
			return counts, err
		}
	}
	return counts, nil
}

// changed publishes a change and records it in the audit log.
func (s *Service) changed(ctx context.Context, tx *db.Tx, subject, object string, ev Event, detail map[string]any) error {
	if _, err := bus.Publish(ctx, tx, subject, ev); err != nil {
		return err
	}
	if s.audit == nil {
		return nil
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["version"] = ev.Version
	action := "govservice." + strings.TrimPrefix(object, "service_") + "." + ev.Change
	if err := s.audit(ctx, tx, PackActor, action, object+":"+ev.Code, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, ev.Code, err)
	}
	return nil
}

// LastSync reports the pack last synced: the SM3 over its items' and bundles' codes and
// document hashes ("" before the first sync), and when.
func (s *Service) LastSync(ctx context.Context) (string, *time.Time, error) {
	var hash string
	var at sql.NullTime
	if err := s.d.QueryRow(ctx, `SELECT pack_hash, synced_at FROM service_sync WHERE id = 1`).Scan(&hash, &at); err != nil {
		return "", nil, fmt.Errorf("last pack sync: %w", err)
	}
	if !at.Valid {
		return hash, nil, nil
	}
	t := at.Time.UTC()
	return hash, &t, nil
}

// Filter selects items for List.
type Filter struct {
	Department string // department kind code
	Type       string // item type, e.g. 行政许可
	Level      string // province | city | county
	ZeroVisit  bool   // only zero-visit (零跑动) items
	// Keyword keeps items whose name or keywords contain it (case-insensitive). For ranked
	// full-text search over the whole guide, use Indexer.Search.
	Keyword string
	// IncludeInactive also lists items no longer in the pack.
	IncludeInactive bool
	Limit           int // default 50, at most 500
	Offset          int
}

func pageSize(limit, offset, def, most int) (int, int) {
	if limit <= 0 {
		limit = def
	}
	return min(limit, most), max(offset, 0)
}

// maxKeyword bounds a list keyword.
const maxKeyword = 100

// List returns the items that pass f, ordered by code.
func (s *Service) List(ctx context.Context, f Filter) ([]Item, error) {
	var where []string
	var args []any
	if !f.IncludeInactive {
		where, args = append(where, "active = ?"), append(args, true)
	}
	if f.Department != "" {
		where, args = append(where, "department = ?"), append(args, f.Department)
	}
	if f.Type != "" {
		where, args = append(where, "type = ?"), append(args, f.Type)
	}
	if f.Level != "" {
		where, args = append(where, "level = ?"), append(args, f.Level)
	}
	if f.ZeroVisit {
		where, args = append(where, "zero_visit = ?"), append(args, true)
	}
	if kw := strings.TrimSpace(f.Keyword); kw != "" {
		if len([]rune(kw)) > maxKeyword {
			return nil, &i18n.Error{Code: "govservice.keyword_too_long", Field: "keyword",
				Msg: i18n.T(fmt.Sprintf("关键词不能超过 %d 个字", maxKeyword), fmt.Sprintf("the keyword is limited to %d characters", maxKeyword))}
		}
		where, args = append(where, `search_text LIKE ? ESCAPE '\'`), append(args, likePattern(kw))
	}
	q := itemSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit, offset := pageSize(f.Limit, f.Offset, 50, 500)
	q += " ORDER BY code LIMIT ? OFFSET ?"
	args = append(args, limit, offset)
	out, err := db.Collect(ctx, s.d, q, args, scanItem)
	if err != nil {
		return nil, fmt.Errorf("list service items: %w", err)
	}
	return out, nil
}

// Get returns the current version of an item, active or not (Item.Active tells): an
// application made under an item that has since left the pack still shows its guide.
func (s *Service) Get(ctx context.Context, code string) (Item, error) {
	it, err := scanItem(s.d.QueryRow(ctx, itemSelect+` WHERE code = ?`, code))
	if isNoRow(err) {
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("get service item %s: %w", code, err)
	}
	return it, nil
}

// GetVersion returns one version of an item, as it was; Active and UpdatedAt are the item's now.
func (s *Service) GetVersion(ctx context.Context, code string, version int) (Item, error) {
	it, err := scanItem(s.d.QueryRow(ctx, `SELECT v.document, v.version, i.active, v.created_at
		FROM service_item_versions v JOIN service_items i ON i.code = v.code WHERE v.code = ? AND v.version = ?`, code, version))
	if isNoRow(err) {
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("get service item %s version %d: %w", code, version, err)
	}
	return it, nil
}

// ItemsByCode returns the current versions of the items with these codes, active or not;
// unknown codes are left out.
func (s *Service) ItemsByCode(ctx context.Context, codes []string) (map[string]Item, error) {
	out := make(map[string]Item, len(codes))
	if len(codes) == 0 {
		return out, nil
	}
	args := make([]any, len(codes))
	for i, c := range codes {
		args[i] = c
	}
	its, err := db.Collect(ctx, s.d, itemSelect+` WHERE code IN (?`+strings.Repeat(`, ?`, len(codes)-1)+`)`, args, scanItem)
	if err != nil {
		return nil, fmt.Errorf("get service items: %w", err)
	}
	for _, it := range its {
		out[it.Code] = it
	}
	return out, nil
}

// Bundles returns the active bundles, ordered by code.
func (s *Service) Bundles(ctx context.Context) ([]Bundle, error) {
	out, err := db.Collect(ctx, s.d, bundleSelect+` WHERE active = ? ORDER BY code`, []any{true}, scanBundle)
	if err != nil {
		return nil, fmt.Errorf("list bundles: %w", err)
	}
	return out, nil
}

// Bundle returns the current version of a bundle, active or not (Bundle.Active tells).
func (s *Service) Bundle(ctx context.Context, code string) (Bundle, error) {
	b, err := scanBundle(s.d.QueryRow(ctx, bundleSelect+` WHERE code = ?`, code))
	if isNoRow(err) {
		return Bundle{}, ErrBundleNotFound
	}
	if err != nil {
		return Bundle{}, fmt.Errorf("get bundle %s: %w", code, err)
	}
	return b, nil
}

// BundleVersion returns one version of a bundle, as it was.
func (s *Service) BundleVersion(ctx context.Context, code string, version int) (Bundle, error) {
	b, err := scanBundle(s.d.QueryRow(ctx, `SELECT v.document, v.version, b.active, v.created_at
		FROM service_bundle_versions v JOIN service_bundles b ON b.code = v.code WHERE v.code = ? AND v.version = ?`, code, version))
	if isNoRow(err) {
		return Bundle{}, ErrBundleNotFound
	}
	if err != nil {
		return Bundle{}, fmt.Errorf("get bundle %s version %d: %w", code, version, err)
	}
	return b, nil
}

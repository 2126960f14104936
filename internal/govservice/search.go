package govservice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/search"
)

// Guide search (办事指南检索). The index holds one document per active item ("item:<code>")
// and per active bundle ("bundle:<code>"): names, keywords, department, conditions, materials,
// FAQ and result, in Chinese (CJK bigrams, see platform/search) and English. It is a cache of
// the catalogue, kept up to date by the catalogue's events and rebuilt by Reindex; results
// always come from the database, so a hit never shows an item that has left the pack.

// SearchConsumer is the name of the durable consumer that keeps an index up to date. Every
// node has its own index, so each node needs its own durable: SearchConsumer + "-" + node.
const SearchConsumer = "govservice-search"

// SearchSubjects is the filter subject of that consumer.
const SearchSubjects = "dgov.govservice.>"

// Indexer keeps Index in step with Service's catalogue and searches it.
// Use it by pointer; the zero value is not usable.
type Indexer struct {
	Index   search.Index
	Service *Service

	// mu serialises Reindex and Sync, so that a reindex, which reads the catalogue and then
	// writes, cannot overwrite a newer state an event has just written.
	mu sync.Mutex
}

// guideBoosts weights matches: what the item is called and the words people use for it
// count most; what it issues next (people search "营业执照" for the item that issues one).
var guideBoosts = map[string]float64{"name": 6, "keywords": 4, "result": 3, "summary": 2, "department": 1.5}

// Document kinds and filter keys of the index.
const (
	KindItem   = "item"
	KindBundle = "bundle"

	keyKind       = "kind"
	keyDepartment = "department"
	keyType       = "type"
	keyLevel      = "level"
	keyZeroVisit  = "zero_visit"
)

func itemDocID(code string) string   { return KindItem + ":" + code }
func bundleDocID(code string) string { return KindBundle + ":" + code }

// departmentNames are the names people know a department kind by, e.g. "市场监督管理局 市场监管".
func departmentNames(code string) string {
	for _, k := range org.DepartmentKinds {
		if k.Code == code {
			return strings.Join([]string{k.Kind, k.Province, k.City, k.EN}, " ")
		}
	}
	return ""
}

func itemDoc(it Item) search.Doc {
	var materials, faq []string
	for _, m := range it.Materials {
		materials = append(materials, strings.TrimSpace(m.Name+" "+m.NameEn+" "+m.LicenseType+" "+m.Note))
	}
	for _, q := range it.FAQ {
		faq = append(faq, q.Q+" "+q.A)
	}
	zero := "0"
	if it.ZeroVisit {
		zero = "1"
	}
	return search.Doc{
		Fields: map[string]string{
			"name":        it.Name + "\n" + it.NameEn,
			"keywords":    strings.Join(it.Keywords, "\n"),
			"summary":     it.Summary,
			"department":  departmentNames(it.Department),
			"conditions":  it.Conditions,
			"materials":   strings.Join(materials, "\n"),
			"faq":         strings.Join(faq, "\n"),
			"result":      strings.TrimSpace(it.Result.Name + " " + it.Result.NameEn + " " + it.Result.LicenseType),
			"legal_basis": strings.Join(it.LegalBasis, "\n"),
		},
		Filters: map[string]string{keyKind: KindItem, keyDepartment: it.Department, keyType: it.Type,
			keyLevel: it.Level, keyZeroVisit: zero},
	}
}

// bundleDoc indexes a bundle with its members' names, so "新生儿入户" also finds 出生一件事.
func bundleDoc(b Bundle, members map[string]Item) search.Doc {
	var names, depts []string
	for _, code := range b.Items {
		if it, ok := members[code]; ok {
			names = append(names, it.Name)
			depts = append(depts, departmentNames(it.Department))
		}
	}
	return search.Doc{
		Fields: map[string]string{
			"name":       b.Name + "\n" + b.NameEn,
			"keywords":   strings.Join(b.Keywords, "\n"),
			"summary":    b.Summary,
			"department": strings.Join(depts, "\n"),
			"materials":  strings.Join(names, "\n"),
		},
		Filters: map[string]string{keyKind: KindBundle},
	}
}

// Reindex makes the index hold exactly the active catalogue and returns the number of
// documents written.
func (x *Indexer) Reindex(ctx context.Context) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	docs := map[string]search.Doc{}
	members := map[string]Item{}
	for f := (Filter{Limit: 500}); ; f.Offset += f.Limit {
		page, err := x.Service.List(ctx, f)
		if err != nil {
			return 0, fmt.Errorf("reindex service guides: %w", err)
		}
		for _, it := range page {
			docs[itemDocID(it.Code)] = itemDoc(it)
			members[it.Code] = it
		}
		if len(page) < f.Limit {
			break
		}
	}
	bundles, err := x.Service.Bundles(ctx)
	if err != nil {
		return 0, fmt.Errorf("reindex service guides: %w", err)
	}
	for _, b := range bundles {
		docs[bundleDocID(b.Code)] = bundleDoc(b, members)
	}
	if err := search.ReplaceAll(ctx, x.Index, docs); err != nil {
		return 0, fmt.Errorf("reindex service guides: %w", err)
	}
	return len(docs), nil
}

// ReindexIfEmpty rebuilds an empty index (new, or started afresh) and reports whether it did.
func (x *Indexer) ReindexIfEmpty(ctx context.Context) (bool, error) {
	return search.RebuildIfEmpty(ctx, x.Index, x.Reindex)
}

// SyncItem brings one item's document up to date: indexed when active, absent otherwise.
// Bundles name their members, so a changed item's bundles are refreshed too.
func (x *Indexer) SyncItem(ctx context.Context, code string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	it, err := x.Service.Get(ctx, code)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && !it.Active):
		if err := x.Index.Delete(ctx, itemDocID(code)); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("index service item %s: %w", code, err)
	default:
		if err := x.Index.Upsert(ctx, itemDocID(code), itemDoc(it)); err != nil {
			return err
		}
	}
	bundles, err := x.Service.Bundles(ctx)
	if err != nil {
		return fmt.Errorf("index service item %s: %w", code, err)
	}
	for _, b := range bundles {
		for _, m := range b.Items {
			if m == code {
				if err := x.syncBundle(ctx, b.Code); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// SyncBundle brings one bundle's document up to date.
func (x *Indexer) SyncBundle(ctx context.Context, code string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.syncBundle(ctx, code)
}

func (x *Indexer) syncBundle(ctx context.Context, code string) error {
	b, err := x.Service.Bundle(ctx, code)
	if errors.Is(err, ErrBundleNotFound) || (err == nil && !b.Active) {
		return x.Index.Delete(ctx, bundleDocID(code))
	}
	if err != nil {
		return fmt.Errorf("index bundle %s: %w", code, err)
	}
	members, err := x.Service.ItemsByCode(ctx, b.Items)
	if err != nil {
		return fmt.Errorf("index bundle %s: %w", code, err)
	}
	return x.Index.Upsert(ctx, bundleDocID(code), bundleDoc(b, members))
}

// OnEvent is the bus handler of the index's consumer. Sync is idempotent and the index is
// not in the database, so it needs no HandleOnce.
func (x *Indexer) OnEvent(ctx context.Context, ev bus.Event) error {
	if ev.Subject != EventItemChanged && ev.Subject != EventBundleChanged {
		return nil
	}
	var e Event
	if err := ev.Decode(&e); err != nil {
		return err
	}
	if e.Code == "" {
		return nil // nothing to do, and redelivering would not help
	}
	if ev.Subject == EventItemChanged {
		return x.SyncItem(ctx, e.Code)
	}
	return x.SyncBundle(ctx, e.Code)
}

// Page is a page of search results.
type Page struct {
	Limit  int // default 20, at most 100
	Offset int
}

// GuideHit is one found guide: an item or a bundle (Kind tells which is set).
type GuideHit struct {
	Kind   string  `json:"kind"` // item | bundle
	Item   *Item   `json:"item,omitempty"`
	Bundle *Bundle `json:"bundle,omitempty"`
	Score  float64 `json:"score"`
	// Highlights holds, by field (name, keywords, conditions, materials, faq …), HTML
	// fragments with the matched words in <mark>; the rest is escaped, safe to render.
	Highlights map[string][]string `json:"highlights,omitempty"`
}

// SearchResult is a page of found guides, best match first.
type SearchResult struct {
	Total int        `json:"total"`
	Hits  []GuideHit `json:"hits"`
}

// maxQuery bounds a search text.
const maxQuery = 100

// Search finds active items and bundles by full text in Chinese or English — words of any
// length, all of which must match somewhere in a guide — best match first. An empty query
// lists everything (bundles and items) in index order.
func (x *Indexer) Search(ctx context.Context, query string, page Page) (SearchResult, error) {
	query = strings.TrimSpace(query)
	if len([]rune(query)) > maxQuery {
		return SearchResult{}, &i18n.Error{Code: "govservice.query_too_long", Field: "q",
			Msg: i18n.T(fmt.Sprintf("检索词不能超过 %d 个字", maxQuery), fmt.Sprintf("the search text is limited to %d characters", maxQuery))}
	}
	limit, offset := pageSize(page.Limit, page.Offset, 20, 100)
	res, err := x.Index.Search(ctx, search.Query{Text: query, Boosts: guideBoosts, Limit: limit, Offset: offset, Highlight: query != ""})
	if err != nil {
		return SearchResult{}, fmt.Errorf("search service guides: %w", err)
	}
	var itemCodes []string
	for _, h := range res.Hits {
		if code, ok := strings.CutPrefix(h.ID, KindItem+":"); ok {
			itemCodes = append(itemCodes, code)
		}
	}
	items, err := x.Service.ItemsByCode(ctx, itemCodes)
	if err != nil {
		return SearchResult{}, err
	}
	out := SearchResult{Total: res.Total, Hits: make([]GuideHit, 0, len(res.Hits))}
	for _, h := range res.Hits {
		hit := GuideHit{Score: h.Score, Highlights: h.Highlights}
		if code, ok := strings.CutPrefix(h.ID, KindItem+":"); ok {
			it, found := items[code]
			if !found || !it.Active {
				out.Total-- // left the pack after it was indexed; the event is on its way
				continue
			}
			hit.Kind, hit.Item = KindItem, &it
		} else if code, ok := strings.CutPrefix(h.ID, KindBundle+":"); ok {
			b, err := x.Service.Bundle(ctx, code)
			if errors.Is(err, ErrBundleNotFound) || (err == nil && !b.Active) {
				out.Total--
				continue
			}
			if err != nil {
				return SearchResult{}, err
			}
			hit.Kind, hit.Bundle = KindBundle, &b
		} else {
			out.Total--
			continue
		}
		out.Hits = append(out.Hits, hit)
	}
	return out, nil
}

package catalog

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/search"
)

// Full-text search of the catalogue in force. The index holds one document per resource that
// has a version in force (its live version), keyed by resource id; it is a cache of
// catalog_versions, kept up to date by the catalog's events and rebuilt by Reindex.
// Results always come from the database, so a stale hit never shows withdrawn data.

// SearchConsumer is the name of the durable consumer that keeps an index up to date. Every
// node has its own index, so each node needs its own durable: use SearchConsumer + "-" + node.
const SearchConsumer = "catalog-search"

// SearchSubjects is the filter subject of that consumer (EventPublished and EventWithdrawn).
const SearchSubjects = "dgov.catalog.>"

// Indexer keeps Index in step with Service's published catalogue and searches it.
// Use it by pointer; the zero value is not usable.
type Indexer struct {
	Index   search.Index
	Service *Service

	// mu serialises Reindex and Sync, so that a reindex, which reads the catalogue and then
	// writes, cannot overwrite a newer state an event has just written.
	mu sync.Mutex
}

// searchBoosts weights matches: the name and the code count most.
var searchBoosts = map[string]float64{"name": 4, "code": 3, "provider": 1.5}

// Filter keys of the index documents.
const (
	keyDivision = "division" // the provider's own division
	keyIn       = "in"       // + depth: the division or an ancestor at that depth (roll-up)
	keyDept     = "dept"
	keyShare    = "share"
	keyOpen     = "open"
	keyClass    = "class"
)

// depth is a division's distance from the top (province 0, prefecture 1, county 2 …).
func depth(code string) int { return len(divisions.Ancestors(code)) }

// searchDoc is the index document of a version in force.
func searchDoc(r Resource) search.Doc {
	var items []string
	for _, it := range r.Items {
		items = append(items, strings.TrimSpace(it.Name+" "+it.EnglishName+" "+it.Description))
	}
	f := map[string]string{
		keyDivision: r.DivisionCode,
		keyDept:     r.ProviderDeptID,
		keyShare:    strconv.Itoa(int(r.ShareType)),
		keyOpen:     strconv.Itoa(int(r.OpenType)),
		keyClass:    r.Classification.Prefix(),
	}
	for _, a := range append([]string{r.DivisionCode}, divisions.Ancestors(r.DivisionCode)...) {
		f[keyIn+strconv.Itoa(depth(a))] = a
	}
	return search.Doc{
		Fields: map[string]string{
			"name":     r.Name,
			"code":     r.Code,
			"summary":  r.Summary,
			"provider": r.Provider,
			"items":    strings.Join(items, "\n"),
		},
		Filters: f,
	}
}

// searchFilters turns a Filter into the index's exact filters.
func searchFilters(f Filter) map[string]string {
	out := map[string]string{}
	if f.Division != "" {
		if f.Exact {
			out[keyDivision] = f.Division
		} else {
			out[keyIn+strconv.Itoa(depth(f.Division))] = f.Division
		}
	}
	if f.DepartmentID != "" {
		out[keyDept] = f.DepartmentID
	}
	if f.ShareType != 0 {
		out[keyShare] = strconv.Itoa(int(f.ShareType))
	}
	if f.OpenType != 0 {
		out[keyOpen] = strconv.Itoa(int(f.OpenType))
	}
	return out
}

// Reindex makes the index hold exactly the catalogue in force: every live version is
// (re)written and documents of resources no longer in force are removed. It returns the
// number of resources indexed.
func (x *Indexer) Reindex(ctx context.Context) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	docs := map[string]search.Doc{}
	f := Filter{Limit: 1000}
	for {
		page, err := listLive(ctx, x.Service.d, f, false)
		if err != nil {
			return 0, fmt.Errorf("reindex catalogue: %w", err)
		}
		for _, r := range page {
			docs[r.ID] = searchDoc(r)
		}
		if len(page) < f.Limit {
			break
		}
		f.Offset += len(page)
	}
	if err := search.ReplaceAll(ctx, x.Index, docs); err != nil {
		return 0, fmt.Errorf("reindex catalogue: %w", err)
	}
	return len(docs), nil
}

// ReindexIfEmpty rebuilds an empty index (new, or started afresh) and reports whether it did.
func (x *Indexer) ReindexIfEmpty(ctx context.Context) (bool, error) {
	return search.RebuildIfEmpty(ctx, x.Index, x.Reindex)
}

// Sync brings one resource's document up to date with the database: its version in force,
// or no document when it has none. It is idempotent and does not depend on the order in
// which events arrive.
func (x *Indexer) Sync(ctx context.Context, id string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	cur, err := getResource(ctx, x.Service.d, id)
	if isNoRow(err) || (err == nil && cur.LiveVersion == 0) {
		return x.Index.Delete(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("index resource %s: %w", id, err)
	}
	live, err := getVersion(ctx, x.Service.d, id, cur.LiveVersion)
	if isNoRow(err) {
		return x.Index.Delete(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("index resource %s v%d: %w", id, cur.LiveVersion, err)
	}
	return x.Index.Upsert(ctx, id, searchDoc(live))
}

// OnEvent is the bus handler of the index's consumer: on dgov.catalog.published and
// dgov.catalog.withdrawn it syncs the resource; other events are ignored. It needs no
// HandleOnce: Sync is idempotent, and the index is not in the database.
func (x *Indexer) OnEvent(ctx context.Context, ev bus.Event) error {
	if ev.Subject != EventPublished && ev.Subject != EventWithdrawn {
		return nil
	}
	var e Event
	if err := ev.Decode(&e); err != nil {
		return err
	}
	if e.ResourceID == "" {
		return nil // nothing to do, and redelivering would not help
	}
	return x.Sync(ctx, e.ResourceID)
}

// SearchHit is one found resource: its version in force.
type SearchHit struct {
	Resource
	Score float64
	// Highlights holds, by field (name, code, summary, provider, items), HTML fragments
	// with the matched words in <mark>; the rest is escaped, so they are safe to render.
	Highlights map[string][]string
}

// SearchResult is a page of found resources, best match first.
type SearchResult struct {
	Total int // matching resources in all pages
	Hits  []SearchHit
}

// Resources returns the hits' resources, in order.
func (r SearchResult) Resources() []Resource {
	out := make([]Resource, len(r.Hits))
	for i, h := range r.Hits {
		out[i] = h.Resource
	}
	return out
}

// Search finds resources in force by full text — in the name, code, summary, provider and
// data items; Chinese words of any length, codes whole or in part — best match first. It
// searches the published catalogue only, readable by every holder of PermRead, and applies
// f's division, department, sharing and opening filters and its page (Limit, Offset); f.Status
// must be "" or published. Without text (text and f.Query empty) it is List.
func (x *Indexer) Search(ctx context.Context, actor authz.Subject, text string, f Filter) (SearchResult, error) {
	if f.Status != "" && f.Status != StatusPublished {
		return SearchResult{}, invalid("status", "catalog.search.status", "全文检索只检索已发布的资源", "full-text search covers published resources only")
	}
	if err := x.Service.mayRead(actor); err != nil {
		return SearchResult{}, err
	}
	if text = strings.TrimSpace(text); text == "" {
		text = strings.TrimSpace(f.Query)
	}
	if text == "" {
		rs, err := x.Service.List(ctx, actor, f)
		if err != nil {
			return SearchResult{}, err
		}
		out := SearchResult{Total: f.Offset + len(rs), Hits: make([]SearchHit, len(rs))}
		for i, r := range rs {
			out.Hits[i] = SearchHit{Resource: r}
		}
		return out, nil
	}
	if len([]rune(text)) > 200 {
		return SearchResult{}, invalid("q", "catalog.search.too_long", "检索词不能超过 200 个字", "the search text is limited to 200 characters")
	}
	limit, offset := pageSize(f.Limit, f.Offset)
	res, err := x.Index.Search(ctx, search.Query{Text: text, Boosts: searchBoosts, Filters: searchFilters(f),
		Limit: limit, Offset: offset, Highlight: true})
	if err != nil {
		return SearchResult{}, err
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	live, err := liveByIDs(ctx, x.Service, ids)
	if err != nil {
		return SearchResult{}, err
	}
	out := SearchResult{Total: res.Total, Hits: make([]SearchHit, 0, len(res.Hits))}
	for _, h := range res.Hits {
		r, ok := live[h.ID]
		if !ok {
			out.Total-- // withdrawn after it was indexed; the withdrawal event is on its way
			continue
		}
		out.Hits = append(out.Hits, SearchHit{Resource: r, Score: h.Score, Highlights: h.Highlights})
	}
	return out, nil
}

// liveByIDs reads the versions in force of resources by id.
func liveByIDs(ctx context.Context, s *Service, ids []string) (map[string]Resource, error) {
	out := make(map[string]Resource, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	text := versionSelect + ` WHERE v.version = r.live_version AND v.resource_id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
	rs, err := collect(ctx, s.d, text, args, scanVersion)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		out[r.ID] = r
	}
	return out, nil
}

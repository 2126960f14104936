package search

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/datetime/flexible"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/highlight/format/html"
	bquery "github.com/blevesearch/bleve/v2/search/query"
)

// Document layout inside Bleve: {"t": {field: text}, "f": {filter: value}}. Text fields are
// indexed as "t.<name>" with the CJK analyzer, filters as "f.<name>" with the keyword analyzer.
const (
	textPrefix   = "t."
	filterPrefix = "f."
	// mappingVersion is stored in the index; an index made with another mapping is rebuilt.
	mappingVersion = "dgov-search-1"
	versionKey     = "dgov_mapping"
	noDates        = "dgov_no_dates"
)

// newMapping is the index mapping: everything dynamic, text under "t" analysed as CJK bigrams,
// filters under "f" as single keywords. No string is ever taken for a date.
func newMapping() (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	// A parser whose only layout is a string no value equals: dynamic strings stay text.
	if err := im.AddCustomDateTimeParser(noDates, map[string]any{
		"type": flexible.Name, "layouts": []any{"\x00dgov: not a date\x00"},
	}); err != nil {
		return nil, err
	}
	im.DefaultDateTimeParser = noDates
	im.DefaultAnalyzer = cjk.AnalyzerName
	im.DocValuesDynamic = false

	text := bleve.NewDocumentMapping()
	text.DefaultAnalyzer = cjk.AnalyzerName
	filters := bleve.NewDocumentMapping()
	filters.DefaultAnalyzer = keyword.Name
	im.DefaultMapping.AddSubDocumentMapping("t", text)
	im.DefaultMapping.AddSubDocumentMapping("f", filters)
	return im, nil
}

// Bleve is the embedded Index.
type Bleve struct {
	mu     sync.RWMutex // guards idx against Close; bleve.Index itself is concurrent
	idx    bleve.Index
	closed bool
	// fields are the text fields known to the index, searched by a query's words.
	fields sync.Map // string → struct{}
}

var _ Batcher = (*Bleve)(nil)

// OpenBleve opens the index in dir, creating it when missing. An index that cannot be opened or
// was made with another mapping is removed and created empty: the caller rebuilds it from the
// database (it is a cache).
func OpenBleve(dir string) (*Bleve, error) {
	im, err := newMapping()
	if err != nil {
		return nil, err
	}
	// A second process on the same data dir must not wait for ever on the index's file lock,
	// nor take the lock error for corruption and delete the other's index.
	idx, err := bleve.OpenUsing(dir, map[string]interface{}{"bolt_timeout": "5s"})
	if err != nil && strings.Contains(err.Error(), "timeout") {
		return nil, fmt.Errorf("search index %s is in use by another dgov process: %w", dir, err)
	}
	if err == nil {
		v, verr := idx.GetInternal([]byte(versionKey))
		if verr == nil && string(v) == mappingVersion {
			return wrap(idx)
		}
		_ = idx.Close()
		err = fmt.Errorf("mapping %q, want %q", v, mappingVersion)
	}
	if !errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		// Corrupt, foreign or outdated: start afresh.
		if rerr := os.RemoveAll(dir); rerr != nil {
			return nil, fmt.Errorf("search index %s: %v; remove: %w", dir, err, rerr)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return nil, fmt.Errorf("search index %s: %w", dir, err)
	}
	if idx, err = bleve.New(dir, im); err != nil {
		return nil, fmt.Errorf("create search index %s: %w", dir, err)
	}
	if err := idx.SetInternal([]byte(versionKey), []byte(mappingVersion)); err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("search index %s: %w", dir, err)
	}
	return wrap(idx)
}

// Memory returns an empty index held in memory, for tests and small tools.
func Memory() (*Bleve, error) {
	im, err := newMapping()
	if err != nil {
		return nil, err
	}
	idx, err := bleve.NewMemOnly(im)
	if err != nil {
		return nil, err
	}
	return wrap(idx)
}

func wrap(idx bleve.Index) (*Bleve, error) {
	b := &Bleve{idx: idx}
	names, err := idx.Fields()
	if err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("search index fields: %w", err)
	}
	for _, n := range names {
		if name, ok := strings.CutPrefix(n, textPrefix); ok {
			b.fields.Store(name, struct{}{})
		}
	}
	return b, nil
}

// body is the document Bleve indexes.
func (b *Bleve) body(d Doc) map[string]any {
	t := make(map[string]any, len(d.Fields))
	for k, v := range d.Fields {
		if k == "" || strings.Contains(k, ".") || v == "" {
			continue
		}
		t[k] = v
		b.fields.LoadOrStore(k, struct{}{})
	}
	f := make(map[string]any, len(d.Filters))
	for k, v := range d.Filters {
		if k == "" || strings.Contains(k, ".") {
			continue
		}
		f[k] = v
	}
	return map[string]any{"t": t, "f": f}
}

func (b *Bleve) use(ctx context.Context) (bleve.Index, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, nil, ErrClosed
	}
	return b.idx, b.mu.RUnlock, nil
}

// Upsert implements Index.
func (b *Bleve) Upsert(ctx context.Context, id string, d Doc) error {
	idx, done, err := b.use(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := idx.Index(id, b.body(d)); err != nil {
		return fmt.Errorf("index %s: %w", id, err)
	}
	return nil
}

// batchSize bounds one Bleve batch, which is held in memory until executed.
const batchSize = 500

// UpsertBatch implements Batcher.
func (b *Bleve) UpsertBatch(ctx context.Context, docs map[string]Doc) error {
	idx, done, err := b.use(ctx)
	if err != nil {
		return err
	}
	defer done()
	batch := idx.NewBatch()
	for id, d := range docs {
		if err := batch.Index(id, b.body(d)); err != nil {
			return fmt.Errorf("index %s: %w", id, err)
		}
		if batch.Size() >= batchSize {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := idx.Batch(batch); err != nil {
				return fmt.Errorf("index batch: %w", err)
			}
			batch.Reset()
		}
	}
	if batch.Size() > 0 {
		if err := idx.Batch(batch); err != nil {
			return fmt.Errorf("index batch: %w", err)
		}
	}
	return nil
}

// Delete implements Index.
func (b *Bleve) Delete(ctx context.Context, id string) error {
	idx, done, err := b.use(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := idx.Delete(id); err != nil {
		return fmt.Errorf("delete %s from index: %w", id, err)
	}
	return nil
}

// Search implements Index.
func (b *Bleve) Search(ctx context.Context, q Query) (Result, error) {
	idx, done, err := b.use(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	limit, offset := pageSize(q.Limit, q.Offset)
	var musts []bquery.Query
	words := strings.Fields(q.Text)
	fields := b.textFields()
	for _, w := range words {
		musts = append(musts, wordQuery(w, fields, q.Boosts))
	}
	keys := make([]string, 0, len(q.Filters))
	for k := range q.Filters {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var filters []bquery.Query
	for _, k := range keys {
		tq := bleve.NewTermQuery(q.Filters[k])
		tq.SetField(filterPrefix + k)
		filters = append(filters, tq)
	}
	var main bquery.Query
	switch {
	case len(musts) == 0 && len(filters) == 0:
		main = bleve.NewMatchAllQuery()
	case len(musts) == 0:
		main = bleve.NewConjunctionQuery(filters...)
	default:
		bq := bleve.NewBooleanQuery()
		bq.AddMust(musts...)
		if len(filters) > 0 {
			// Filters restrict without changing the score.
			bq.Filter = bleve.NewConjunctionQuery(filters...)
		}
		main = bq
	}
	req := bleve.NewSearchRequestOptions(main, limit, offset, false)
	req.SortBy([]string{"-_score", "_id"})
	if q.Highlight && len(words) > 0 {
		req.Highlight = bleve.NewHighlightWithStyle(html.Name)
		for _, f := range fields {
			req.Highlight.AddField(textPrefix + f)
		}
	}
	res, err := idx.SearchInContext(ctx, req)
	if err != nil {
		return Result{}, fmt.Errorf("search %q: %w", q.Text, err)
	}
	out := Result{Total: int(res.Total), Hits: make([]Hit, 0, len(res.Hits))}
	for _, h := range res.Hits {
		hit := Hit{ID: h.ID, Score: h.Score}
		for f, frags := range h.Fragments {
			frags = slices.DeleteFunc(frags, func(s string) bool { return !strings.Contains(s, "<mark>") })
			if name, ok := strings.CutPrefix(f, textPrefix); ok && len(frags) > 0 {
				if hit.Highlights == nil {
					hit.Highlights = map[string][]string{}
				}
				hit.Highlights[name] = frags
			}
		}
		out.Hits = append(out.Hits, hit)
	}
	return out, nil
}

func (b *Bleve) textFields() []string {
	var out []string
	b.fields.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// wordQuery matches one word of the query in any text field: as a phrase (the word's
// bigrams in a row, so "户籍人口" does not match 户籍 … 人口 far apart), and for a
// Latin/number word also as a prefix (a code typed in part: "1010" finds 101001).
func wordQuery(w string, fields []string, boosts map[string]float64) bquery.Query {
	lw := strings.ToLower(w)
	prefix := utf8.RuneCountInString(lw) >= 2 && !strings.ContainsFunc(lw, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	})
	r, _ := utf8.DecodeRuneInString(lw)
	single := utf8.RuneCountInString(lw) == 1 && r >= utf8.RuneSelf && unicode.IsLetter(r)
	var alts []bquery.Query
	for _, f := range fields {
		boost := 1.0
		if v, ok := boosts[f]; ok && v > 0 {
			boost = v
		}
		pq := bleve.NewMatchPhraseQuery(w)
		pq.SetField(textPrefix + f)
		pq.SetBoost(boost)
		alts = append(alts, pq)
		if prefix {
			px := bleve.NewPrefixQuery(lw)
			px.SetField(textPrefix + f)
			px.SetBoost(boost * 0.5)
			alts = append(alts, px)
		}
		if single {
			// One Chinese character is in the index only inside bigrams: look for those.
			for _, pat := range []string{regexp.QuoteMeta(lw) + ".", "." + regexp.QuoteMeta(lw)} {
				rq := bleve.NewRegexpQuery(pat)
				rq.SetField(textPrefix + f)
				rq.SetBoost(boost * 0.5)
				alts = append(alts, rq)
			}
		}
	}
	if len(alts) == 0 {
		return bleve.NewMatchNoneQuery()
	}
	return bleve.NewDisjunctionQuery(alts...)
}

// Close implements Index.
func (b *Bleve) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.idx.Close()
}

// Package search is dgov's full-text search: an Index of documents with text fields, searched
// with relevance ranking, and keyword fields for exact filters.
//
// The default implementation is an embedded Bleve index (OpenBleve on disk, Memory for tests)
// whose text fields go through Bleve's CJK analyzer: Chinese text is indexed as overlapping
// character bigrams ("全市户籍人口基本信息" → 全市 市户 户籍 籍人 人口 …), so a query for the
// two-character word "人口" or the four-character word "户籍人口" finds it without a dictionary
// segmenter; Latin words and numbers (codes such as 101001) are indexed as whole lower-case words.
// An external engine (Elasticsearch, OpenSearch, Meilisearch …) can implement Index instead.
//
// An index is a cache of the database: its owner can always rebuild it from there (see
// catalog.Indexer.Reindex), so OpenBleve simply starts afresh on an index it cannot open.
package search

import (
	"context"
	"errors"
)

// Index is a full-text index. Implementations are safe for concurrent use.
type Index interface {
	// Upsert adds or replaces the document id.
	Upsert(ctx context.Context, id string, doc Doc) error
	// Delete removes the document id; deleting an absent id is not an error.
	Delete(ctx context.Context, id string) error
	// Search runs a query.
	Search(ctx context.Context, q Query) (Result, error)
	// Close releases the index. Other methods fail with ErrClosed afterwards.
	Close() error
}

// Batcher is implemented by indexes that write many documents at once faster than one by one;
// UpsertAll uses it.
type Batcher interface {
	UpsertBatch(ctx context.Context, docs map[string]Doc) error
}

// Doc is one document.
type Doc struct {
	// Fields are the searchable texts by field name (e.g. "name", "summary").
	Fields map[string]string
	// Filters are keyword values matched exactly by Query.Filters (e.g. "status": "published").
	// They are not searched as text.
	Filters map[string]string
}

// Query is a search.
type Query struct {
	// Text is what the user typed. Words separated by white space must all match (each in any
	// text field); an empty Text matches every document that passes the filters.
	Text string
	// Boosts weights matches in some text fields (e.g. "name": 3); others weigh 1.
	Boosts map[string]float64
	// Filters keeps documents whose filter field has exactly this value, for every entry.
	Filters map[string]string
	// Limit is the page size (default 20, at most 1000); Offset skips that many hits.
	Limit, Offset int
	// Highlight asks for fragments of the matching text fields in Hit.Highlights.
	Highlight bool
}

// Result is a page of hits, best first.
type Result struct {
	Total int // all matching documents, not only this page
	Hits  []Hit
}

// Hit is one matching document.
type Hit struct {
	ID    string
	Score float64
	// Highlights holds, by text field, fragments of the field with the matched words wrapped
	// in <mark>…</mark>; everything else in a fragment is HTML-escaped.
	Highlights map[string][]string
}

// ErrClosed is returned by a closed index.
var ErrClosed = errors.New("search: index closed")

// DefaultLimit and MaxLimit bound Query.Limit.
const (
	DefaultLimit = 20
	MaxLimit     = 1000
)

func pageSize(limit, offset int) (int, int) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return min(limit, MaxLimit), max(offset, 0)
}

// UpsertAll writes docs, in one batch when idx is a Batcher.
func UpsertAll(ctx context.Context, idx Index, docs map[string]Doc) error {
	if b, ok := idx.(Batcher); ok {
		return b.UpsertBatch(ctx, docs)
	}
	for id, d := range docs {
		if err := idx.Upsert(ctx, id, d); err != nil {
			return err
		}
	}
	return nil
}

// IDs lists every document id in the index (for reconciling it with its source).
func IDs(ctx context.Context, idx Index) (map[string]bool, error) {
	out := map[string]bool{}
	for off := 0; ; off += MaxLimit {
		res, err := idx.Search(ctx, Query{Limit: MaxLimit, Offset: off})
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			out[h.ID] = true
		}
		if len(res.Hits) < MaxLimit {
			return out, nil
		}
	}
}

// ReplaceAll makes idx hold exactly docs: it writes them all and deletes every other document
// (a full reindex from the source of truth).
func ReplaceAll(ctx context.Context, idx Index, docs map[string]Doc) error {
	have, err := IDs(ctx, idx)
	if err != nil {
		return err
	}
	if err := UpsertAll(ctx, idx, docs); err != nil {
		return err
	}
	for id := range have {
		if _, ok := docs[id]; !ok {
			if err := idx.Delete(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// RebuildIfEmpty runs rebuild when idx holds no document (new, or started afresh) and
// reports whether it did.
func RebuildIfEmpty(ctx context.Context, idx Index, rebuild func(context.Context) (int, error)) (bool, error) {
	n, err := Count(ctx, idx)
	if err != nil || n > 0 {
		return false, err
	}
	_, err = rebuild(ctx)
	return err == nil, err
}

// Count returns how many documents the index holds.
func Count(ctx context.Context, idx Index) (int, error) {
	res, err := idx.Search(ctx, Query{Limit: 1})
	return res.Total, err
}

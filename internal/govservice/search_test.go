package govservice_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/search"
	"github.com/dgov/dgov/packs"
)

func newIndexer(t testing.TB, f *fixture) *govservice.Indexer {
	t.Helper()
	idx, err := search.Memory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return &govservice.Indexer{Index: idx, Service: f.svc}
}

func hitKeys(res govservice.SearchResult) []string {
	var out []string
	for _, h := range res.Hits {
		if h.Item != nil {
			out = append(out, h.Item.Name)
		} else {
			out = append(out, h.Bundle.Name)
		}
	}
	return out
}

// TestGuideSearch searches the shipped pack with the real Bleve index.
func TestGuideSearch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		p, err := govservice.LoadPack(packs.Shanxi())
		if err != nil {
			t.Fatal(err)
		}
		f.sync(t, p)
		x := newIndexer(t, f)
		n, err := x.Reindex(f.ctx)
		if err != nil || n != len(p.Items)+len(p.Bundles) {
			t.Fatalf("reindex: %d %v", n, err)
		}
		for _, c := range []struct {
			query string
			top   []string // the first hits, in any order
			also  []string // somewhere in the first page
			none  []string // not on the first page
		}{
			// A colloquial word only in the keywords.
			{query: "个体户", top: []string{"个体工商户设立登记"}, also: []string{"开办餐饮店一件事"}},
			// What the item issues.
			{query: "营业执照", top: []string{"个体工商户设立登记", "企业设立登记"}},
			{query: "新生儿", top: []string{"户口登记（新生儿入户）"},
				also: []string{"出生一件事", "出生医学证明首次签发", "城乡居民基本医疗保险参保登记", "社会保障卡申领"}, none: []string{"企业设立登记"}},
			{query: "出生", top: []string{"出生一件事", "出生医学证明首次签发"}},
			{query: "居住证", top: []string{"居住证办理"}},
			// Two words must both match.
			{query: "二手房 过户", top: []string{"不动产登记（二手房转移登记）"}, none: []string{"不动产抵押登记"}},
			// Department names are searchable.
			{query: "医疗保障局", also: []string{"异地就医备案", "生育保险待遇申领"}},
			// English.
			{query: "residence permit", top: []string{"居住证办理"}},
			// FAQ text.
			{query: "带押过户", top: []string{"不动产登记（二手房转移登记）"}},
		} {
			res, err := x.Search(f.ctx, c.query, govservice.Page{})
			if err != nil {
				t.Errorf("%s: %v", c.query, err)
				continue
			}
			got := hitKeys(res)
			if len(got) < len(c.top) {
				t.Errorf("%s: got %v, want %v first", c.query, got, c.top)
				continue
			}
			for _, want := range c.top {
				if !slices.Contains(got[:len(c.top)], want) {
					t.Errorf("%s: %s not among the first %d of %v", c.query, want, len(c.top), got)
				}
			}
			for _, want := range c.also {
				if !slices.Contains(got, want) {
					t.Errorf("%s: %s not found in %v", c.query, want, got)
				}
			}
			for _, bad := range c.none {
				if slices.Contains(got, bad) {
					t.Errorf("%s: %s should not match: %v", c.query, bad, got)
				}
			}
			if res.Total < len(res.Hits) {
				t.Errorf("%s: total %d < %d hits", c.query, res.Total, len(res.Hits))
			}
		}

		// Highlights mark the words and escape the rest.
		res, err := x.Search(f.ctx, "居住证", govservice.Page{Limit: 1})
		if err != nil || len(res.Hits) != 1 || !strings.Contains(strings.Join(res.Hits[0].Highlights["name"], ""), "<mark>") {
			t.Errorf("highlights: %+v %v", res, err)
		}
		// Paging.
		page2, err := x.Search(f.ctx, "新生儿", govservice.Page{Limit: 2, Offset: 2})
		first, _ := x.Search(f.ctx, "新生儿", govservice.Page{Limit: 4})
		if err != nil || len(page2.Hits) != 2 || !slices.Equal(hitKeys(page2), hitKeys(first)[2:4]) {
			t.Errorf("page 2: %v, first 4: %v, %v", hitKeys(page2), hitKeys(first), err)
		}
		if _, err := x.Search(f.ctx, strings.Repeat("证", 101), govservice.Page{}); err == nil {
			t.Error("a 101-character query was accepted")
		}

		// An item leaving the pack leaves the results at once (read from the database), and
		// its document goes when its event is handled.
		smaller := p
		smaller.Items = slices.DeleteFunc(slices.Clone(p.Items), func(it govservice.Item) bool { return it.Name == "居住证办理" })
		f.sync(t, smaller)
		res, _ = x.Search(f.ctx, "居住证", govservice.Page{})
		if slices.Contains(hitKeys(res), "居住证办理") {
			t.Errorf("deactivated item still found: %v", hitKeys(res))
		}
		rows, err := d.Query(f.ctx, `SELECT payload FROM outbox WHERE subject = ?`, govservice.EventItemChanged)
		if err != nil {
			t.Fatal(err)
		}
		var events []bus.Event
		for rows.Next() {
			var payload []byte
			if err := rows.Scan(&payload); err != nil {
				t.Fatal(err)
			}
			events = append(events, bus.Event{Subject: govservice.EventItemChanged, Data: json.RawMessage(payload)})
		}
		rows.Close()
		for _, ev := range events { // every event, in any order: the handler is idempotent
			if err := x.OnEvent(f.ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		ids, _ := search.IDs(f.ctx, x.Index)
		if ids["item:070011500000"] || len(ids) != len(p.Items)+len(p.Bundles)-1 {
			t.Errorf("index after the event: %d documents, residence permit %v", len(ids), ids["item:070011500000"])
		}
		// Back again: the event adds it.
		f.sync(t, p)
		if err := x.SyncItem(f.ctx, "070011500000"); err != nil {
			t.Fatal(err)
		}
		res, _ = x.Search(f.ctx, "居住证", govservice.Page{})
		if len(res.Hits) == 0 || hitKeys(res)[0] != "居住证办理" {
			t.Errorf("reactivated item: %v", hitKeys(res))
		}
		// Reindex drops documents that have no source.
		if err := x.Index.Upsert(f.ctx, "item:000000000000", search.Doc{Fields: map[string]string{"name": "孤儿"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Reindex(f.ctx); err != nil {
			t.Fatal(err)
		}
		if ids, _ := search.IDs(f.ctx, x.Index); ids["item:000000000000"] {
			t.Error("reindex kept a stale document")
		}
	}, sources...)
}

// BenchmarkGuideSearch measures a Chinese guide search over the shipped pack (Bleve in memory,
// results read from SQLite).
func BenchmarkGuideSearch(b *testing.B) {
	d := dbtest.SQLite(b, sources...)
	svc := govservice.New(d, govservice.Options{})
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := svc.Sync(ctx, p); err != nil {
		b.Fatal(err)
	}
	idx, err := search.Memory()
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	x := &govservice.Indexer{Index: idx, Service: svc}
	if _, err := x.Reindex(ctx); err != nil {
		b.Fatal(err)
	}
	queries := []string{"新生儿", "营业执照", "个体户", "二手房 过户", "居住证"}
	i := 0
	for b.Loop() {
		if _, err := x.Search(ctx, queries[i%len(queries)], govservice.Page{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSync measures storing the shipped pack when nothing changed (the common case at
// every start) on SQLite.
func BenchmarkSync(b *testing.B) {
	d := dbtest.SQLite(b, sources...)
	svc := govservice.New(d, govservice.Options{})
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := svc.Sync(ctx, p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := svc.Sync(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

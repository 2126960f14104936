package search_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dgov/dgov/internal/platform/search"
)

var ctx = context.Background()

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func doc(name, summary, code, division, status string) search.Doc {
	return search.Doc{
		Fields:  map[string]string{"name": name, "summary": summary, "code": code},
		Filters: map[string]string{"division": division, "status": status},
	}
}

func seed(t testing.TB, idx search.Index) {
	t.Helper()
	docs := map[string]search.Doc{
		"hj": doc("全市户籍人口基本信息", "本市户籍人口的姓名、性别、出生日期", "101001/1401000001", "140100", "published"),
		"ld": doc("流动人口居住登记信息", "居住证办理和流动人口登记", "101002/1401000002", "140100", "published"),
		"fr": doc("法人单位基本信息", "统一社会信用代码、法定代表人", "102001/1402000001", "140200", "published"),
		"hk": doc("户口迁移审批记录", "户籍迁入迁出", "101003/1401050001", "140105", "draft"),
		"en": doc("Enterprise Credit Records", "uscc and penalties", "103001/1400000001", "140000", "published"),
	}
	if err := search.UpsertAll(ctx, idx, docs); err != nil {
		t.Fatal(err)
	}
}

func ids(r search.Result) []string {
	out := []string{}
	for _, h := range r.Hits {
		out = append(out, h.ID)
	}
	return out
}

func find(t *testing.T, idx search.Index, q search.Query) []string {
	t.Helper()
	return ids(must[search.Result](t)(idx.Search(ctx, q)))
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestChinese(t *testing.T) {
	idx := must[*search.Bleve](t)(search.Memory())
	defer idx.Close()
	seed(t, idx)
	for _, c := range []struct {
		text string
		want []string // sorted
	}{
		{"户籍人口", []string{"hj"}},     // four-character word
		{"人口", []string{"hj", "ld"}}, // two-character word
		{"户籍", []string{"hj", "hk"}}, // in the name of one, the summary of the other
		{"流动人口", []string{"ld"}},
		{"人口户籍", []string{}},                  // the bigrams must follow each other
		{"101001", []string{"hj"}},            // a classification code
		{"1401000001", []string{"hj"}},        // the sequence part of a code
		{"101001/1401000001", []string{"hj"}}, // a whole resource code
		{"1010", []string{"hj", "hk", "ld"}},  // a code typed in part
		{"人口 101002", []string{"ld"}},         // Chinese and a code together: both must match
		{"基本信息 140", []string{"fr", "hj"}},    // word plus code prefix
		{"户", []string{"hj", "hk"}},           // a single character
		{"enterprise", []string{"en"}},        // case-insensitive Latin words
		{"ＵＳＣＣ", []string{"en"}},              // full-width letters
		{"不存在的资源", []string{}},
	} {
		got := find(t, idx, search.Query{Text: c.text})
		if !slices.Equal(sorted(got), c.want) {
			t.Errorf("%q: got %v, want %v", c.text, got, c.want)
		}
	}
}

func TestRankingAndHighlights(t *testing.T) {
	idx := must[*search.Bleve](t)(search.Memory())
	defer idx.Close()
	seed(t, idx)
	// 户籍 is in hj's name and hk's summary: with the name boosted, hj comes first.
	res := must[search.Result](t)(idx.Search(ctx, search.Query{Text: "户籍", Boosts: map[string]float64{"name": 5}, Highlight: true}))
	if got := ids(res); !slices.Equal(got, []string{"hj", "hk"}) || res.Total != 2 {
		t.Fatalf("ranked %v (total %d), want [hj hk]", got, res.Total)
	}
	if res.Hits[0].Score <= res.Hits[1].Score {
		t.Errorf("scores %v, %v not descending", res.Hits[0].Score, res.Hits[1].Score)
	}
	if h := res.Hits[0].Highlights["name"]; len(h) == 0 || !strings.Contains(h[0], "<mark>户籍</mark>") {
		t.Errorf("highlights %v", res.Hits[0].Highlights)
	}
}

func TestFiltersPagingDelete(t *testing.T) {
	idx := must[*search.Bleve](t)(search.Memory())
	defer idx.Close()
	seed(t, idx)
	if got := find(t, idx, search.Query{Text: "户籍", Filters: map[string]string{"status": "published"}}); !slices.Equal(got, []string{"hj"}) {
		t.Errorf("status filter: %v", got)
	}
	if got := sorted(find(t, idx, search.Query{Filters: map[string]string{"division": "140100"}})); !slices.Equal(got, []string{"hj", "ld"}) {
		t.Errorf("filter only: %v", got)
	}
	if got := find(t, idx, search.Query{Text: "人口", Filters: map[string]string{"division": "140200"}}); len(got) != 0 {
		t.Errorf("no match in division: %v", got)
	}
	// Filter values are not text: "published" finds nothing.
	if got := find(t, idx, search.Query{Text: "published"}); len(got) != 0 {
		t.Errorf("filter value searched as text: %v", got)
	}
	all := find(t, idx, search.Query{})
	if len(all) != 5 {
		t.Fatalf("match all: %v", all)
	}
	p1 := find(t, idx, search.Query{Limit: 2})
	p2 := find(t, idx, search.Query{Limit: 2, Offset: 2})
	p3 := find(t, idx, search.Query{Limit: 2, Offset: 4})
	if got := slices.Concat(p1, p2, p3); !slices.Equal(got, all) {
		t.Errorf("pages %v, want %v", got, all)
	}
	// Replace and delete.
	if err := idx.Upsert(ctx, "hj", doc("全市常住人口信息", "", "101001/1401000001", "140100", "published")); err != nil {
		t.Fatal(err)
	}
	if got := find(t, idx, search.Query{Text: "户籍人口"}); len(got) != 0 {
		t.Errorf("old text still found: %v", got)
	}
	if got := find(t, idx, search.Query{Text: "常住"}); !slices.Equal(got, []string{"hj"}) {
		t.Errorf("new text: %v", got)
	}
	if err := idx.Delete(ctx, "hj"); err != nil {
		t.Fatal(err)
	}
	if err := idx.Delete(ctx, "absent"); err != nil {
		t.Fatal(err)
	}
	if n := must[int](t)(search.Count(ctx, idx)); n != 4 {
		t.Errorf("count %d after delete", n)
	}
	if got := must[map[string]bool](t)(search.IDs(ctx, idx)); len(got) != 4 || got["hj"] {
		t.Errorf("ids %v", got)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := idx.Search(ctx, search.Query{}); err != search.ErrClosed {
		t.Errorf("after close: %v", err)
	}
	if err := idx.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "search")
	idx := must[*search.Bleve](t)(search.OpenBleve(dir))
	seed(t, idx)
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	idx = must[*search.Bleve](t)(search.OpenBleve(dir))
	// The text fields are known again after reopening.
	if got := sorted(find(t, idx, search.Query{Text: "人口"})); !slices.Equal(got, []string{"hj", "ld"}) {
		t.Errorf("after reopen: %v", got)
	}
	idx.Close()

	// A broken index is a cache: it is started afresh.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index_meta.json"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	idx = must[*search.Bleve](t)(search.OpenBleve(dir))
	defer idx.Close()
	if n := must[int](t)(search.Count(ctx, idx)); n != 0 {
		t.Errorf("fresh index holds %d", n)
	}
	seed(t, idx)
	if got := find(t, idx, search.Query{Text: "户籍人口"}); !slices.Equal(got, []string{"hj"}) {
		t.Errorf("rebuilt: %v", got)
	}
}

func TestConcurrent(t *testing.T) {
	idx := must[*search.Bleve](t)(search.Memory())
	defer idx.Close()
	seed(t, idx)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := idx.Upsert(ctx, id, doc("人口统计"+id, "", "", "140100", "published")); err != nil {
					t.Error(err)
					return
				}
				if _, err := idx.Search(ctx, search.Query{Text: "人口"}); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := idx.Delete(ctx, id); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if n := must[int](t)(search.Count(ctx, idx)); n != 5+8*25 {
		t.Errorf("count %d", n)
	}
}

// Generated resource names: department × subject × kind, so words repeat across documents as
// in a real catalogue.
var (
	genDepts    = []string{"公安", "民政", "人社", "卫健", "市场监管", "自然资源", "住建", "交通运输", "教育", "税务"}
	genSubjects = []string{"户籍人口", "婚姻登记", "社会保险", "医疗机构", "企业登记", "不动产", "建筑工程", "道路运输", "学校", "纳税人"}
	genKinds    = []string{"基本信息", "变更记录", "统计数据", "审批结果", "证照信息"}
	genCities   = []string{"太原", "大同", "阳泉", "长治", "晋城", "朔州", "晋中", "运城", "忻州", "临汾"}
)

// GenDoc is the i-th generated resource document.
func genDoc(i int) search.Doc {
	name := genCities[i%10] + "市" + genDepts[(i/10)%10] + genSubjects[(i/100)%10] + genKinds[(i/7)%5]
	return search.Doc{
		Fields: map[string]string{
			"name":    name,
			"summary": name + "，包括" + genSubjects[(i/3)%10] + "和" + genKinds[(i/11)%5] + "。",
			"code":    fmt.Sprintf("1%02d%03d/14%02d00%04d", i%3+1, i%50, i%10+1, i),
		},
		Filters: map[string]string{"division": fmt.Sprintf("14%02d00", i%10+1), "status": "published"},
	}
}

func BenchmarkSearch10k(b *testing.B) {
	idx := must[*search.Bleve](b)(search.OpenBleve(filepath.Join(b.TempDir(), "search")))
	defer idx.Close()
	docs := make(map[string]search.Doc, 10000)
	for i := range 10000 {
		docs[fmt.Sprintf("r%05d", i)] = genDoc(i)
	}
	if err := search.UpsertAll(ctx, idx, docs); err != nil {
		b.Fatal(err)
	}
	queries := []search.Query{
		{Text: "户籍人口", Limit: 20},
		{Text: "人口", Limit: 20},
		{Text: "太原 社会保险 变更记录", Limit: 20},
		{Text: "101", Limit: 20},
		{Text: "企业登记", Filters: map[string]string{"division": "140300"}, Limit: 20},
		{Text: "审批", Highlight: true, Limit: 20},
	}
	for _, q := range queries {
		r := must[search.Result](b)(idx.Search(ctx, q))
		if r.Total == 0 {
			b.Fatalf("%q finds nothing", q.Text)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := idx.Search(ctx, queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIndex10k(b *testing.B) {
	docs := make(map[string]search.Doc, 10000)
	for i := range 10000 {
		docs[fmt.Sprintf("r%05d", i)] = genDoc(i)
	}
	for b.Loop() {
		idx := must[*search.Bleve](b)(search.Memory())
		if err := search.UpsertAll(ctx, idx, docs); err != nil {
			b.Fatal(err)
		}
		idx.Close()
	}
}

func TestReplaceAllAndRebuildIfEmpty(t *testing.T) {
	idx := must[*search.Bleve](t)(search.Memory())
	defer idx.Close()
	docs := map[string]search.Doc{
		"hj": doc("全市户籍人口基本信息", "", "101001", "140100", "published"),
		"fr": doc("法人单位基本信息", "", "102001", "140200", "published"),
	}
	rebuilds := 0
	rebuild := func(ctx context.Context) (int, error) {
		rebuilds++
		return len(docs), search.ReplaceAll(ctx, idx, docs)
	}
	if did, err := search.RebuildIfEmpty(ctx, idx, rebuild); err != nil || !did || rebuilds != 1 {
		t.Fatalf("empty index: did %v, %v, %d rebuilds", did, err, rebuilds)
	}
	if did, err := search.RebuildIfEmpty(ctx, idx, rebuild); err != nil || did || rebuilds != 1 {
		t.Fatalf("full index: did %v, %v, %d rebuilds", did, err, rebuilds)
	}
	// A document no longer in the source goes; a new one comes.
	delete(docs, "hj")
	docs["ld"] = doc("流动人口居住登记信息", "", "101002", "140100", "published")
	if err := search.ReplaceAll(ctx, idx, docs); err != nil {
		t.Fatal(err)
	}
	if got := sorted(find(t, idx, search.Query{})); !slices.Equal(got, []string{"fr", "ld"}) {
		t.Errorf("after ReplaceAll: %v", got)
	}
}

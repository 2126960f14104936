package portal_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/search"
	"github.com/dgov/dgov/internal/portal"
	"github.com/dgov/dgov/packs"
	"github.com/dgov/dgov/web"
)

// catalogue is the Shanxi pack synced into d, with its guide index.
func catalogue(t testing.TB, d *db.DB) (*govservice.Service, *govservice.Indexer) {
	t.Helper()
	ctx := context.Background()
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		t.Fatal(err)
	}
	items := govservice.New(d, govservice.Options{})
	if _, err := items.Sync(ctx, p); err != nil {
		t.Fatal(err)
	}
	idx, err := search.Memory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	x := &govservice.Indexer{Index: idx, Service: items}
	if _, err := x.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	return items, x
}

func renderer(t testing.TB) *web.Renderer {
	t.Helper()
	r, err := web.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// scenario is one request and what its answer must and must not contain.
type scenario struct {
	name, url string
	header    map[string]string
	status    int
	want      []string
	notWant   []string
	location  string // for redirects: the Location must start with it
}

func run(t *testing.T, h http.Handler, cases []scenario) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", c.url, nil)
			req.Header.Set("Accept", "text/html")
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			page := string(body)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d\n%.2000s", rec.Code, c.status, page)
			}
			if c.location != "" && !strings.HasPrefix(rec.Header().Get("Location"), c.location) {
				t.Errorf("Location %q, want %q…", rec.Header().Get("Location"), c.location)
			}
			for _, w := range c.want {
				if !strings.Contains(page, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(page, w) {
					t.Errorf("unexpected %q", w)
				}
			}
		})
	}
}

// The guide pages anyone may read: browsing by department, type, level and zero visits,
// Chinese full-text search, an item's guide with every standard element, a bundle's guide.
func TestServiceGuidePages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		items, idx := catalogue(t, d)
		s := &portal.Services{Accounts: &portal.Accounts{Render: renderer(t)}, Items: items, Index: idx}
		mux := http.NewServeMux()
		s.Routes(mux)
		run(t, mux, []scenario{
			{name: "browse leads with bundles", url: "/services", status: 200,
				want: []string{"出生一件事", "开办企业一件事", "开办餐饮店一件事", "个体工商户设立登记", `href="/services/010020100100"`, "零跑动"}},
			{name: "english", url: "/services?lang=en", status: 200,
				want: []string{"Having a baby", "Registration of an individual business", "Online services"}, notWant: []string{"服务事项</h2>"}},
			{name: "by department", url: "/services?department=ga", status: 200,
				want: []string{"居住证办理", "无犯罪记录证明开具"}, notWant: []string{"个体工商户设立登记", `id="bundles"`}},
			{name: "by type and level", url: "/services?type=%E8%A1%8C%E6%94%BF%E8%AE%B8%E5%8F%AF&level=county", status: 200,
				want: []string{"个体工商户设立登记"}, notWant: []string{"社会保障卡申领"}},
			{name: "unknown department selects nothing", url: "/services?department=nope", status: 200,
				want: []string{`id="no-items"`}},
			{name: "search in Chinese", url: "/services?q=%E4%B8%AA%E4%BD%93%E6%88%B7", status: 200, // 个体户
				want: []string{"个体工商户设立登记", "开办餐饮店一件事", "<mark>"}, notWant: []string{"居住证办理"}},
			{name: "search narrowed by department", url: "/services?q=%E6%96%B0%E7%94%9F%E5%84%BF&department=ga", status: 200, // 新生儿
				want: []string{"户口登记（新生儿入户）"}, notWant: []string{"出生医学证明首次签发", `id="bundles"`}},
			{name: "search text too long", url: "/services?q=" + strings.Repeat("%E5%8A%9E", 101), status: 200,
				want: []string{"检索词不能超过 100 个字"}},
			{name: "guide", url: "/services/010020100100", status: 200,
				want: []string{"个体工商户设立登记", "行政许可", "县级", "市场监督管理局", "《促进个体工商户发展条例》", "受理条件",
					"经营者身份证明", "居民身份证", "不收费", "核准登记", "个体工商户营业执照", "个体工商户必须起字号吗？",
					`href="/services/010020100100/apply"`, "开办餐饮店一件事", `id="statutory-days">3 `, `id="promised-days">2 `}},
			{name: "guide in English", url: "/services/010020100100?lang=en", status: 200,
				want: []string{"Registration of an individual business", "Operator&#39;s identity document", "Administration for Market Regulation", "Apply online"}},
			{name: "unknown item", url: "/services/999999999999", status: 404},
			{name: "bundle guide", url: "/bundles/birth", status: 200,
				want: []string{"出生一件事", "出生医学证明首次签发", "户口登记（新生儿入户）", "社会保障卡申领", "城乡居民基本医疗保险参保登记",
					`href="/bundles/birth/apply"`, "卫生健康委员会"}},
			{name: "unknown bundle", url: "/bundles/nope", status: 404},
		})
		// Without the search index (a command beside the node), the text matches names and
		// keywords in the catalogue.
		plain := &portal.Services{Accounts: s.Accounts, Items: items}
		mux = http.NewServeMux()
		plain.Routes(mux)
		run(t, mux, []scenario{
			{name: "keyword without an index", url: "/services?q=%E4%B8%AA%E4%BD%93%E6%88%B7", status: 200, // 个体户
				want: []string{"个体工商户设立登记"}, notWant: []string{"居住证办理", "<mark>"}},
		})
	}, bus.Migrations, govservice.Migrations)
}

// The guide pages as a visitor loads them (SQLite, in-memory index): a ranked Chinese
// search, the unfiltered list with bundles, and one item's guide.
func BenchmarkServicePages(b *testing.B) {
	d := dbtest.SQLite(b, bus.Migrations, govservice.Migrations)
	items, idx := catalogue(b, d)
	r, err := web.NewRenderer("")
	if err != nil {
		b.Fatal(err)
	}
	s := &portal.Services{Accounts: &portal.Accounts{Render: r}, Items: items, Index: idx}
	mux := http.NewServeMux()
	s.Routes(mux)
	for _, c := range []struct{ name, url string }{
		{"search", "/services?q=%E6%96%B0%E7%94%9F%E5%84%BF"}, // 新生儿
		{"browse", "/services"},
		{"guide", "/services/010020100100"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest("GET", c.url, nil))
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/search"
)

func newIndexer(t testing.TB, svc *catalog.Service) *catalog.Indexer {
	t.Helper()
	idx, err := search.Memory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return &catalog.Indexer{Index: idx, Service: svc}
}

func (f *fixture) find(x *catalog.Indexer, actor authz.Subject, text string, flt catalog.Filter) []string {
	f.t.Helper()
	res, err := x.Search(f.ctx, actor, text, flt)
	if err != nil {
		f.t.Fatalf("search %q: %v", text, err)
	}
	out := []string{}
	for _, h := range res.Hits {
		out = append(out, h.Name)
	}
	return out
}

// deliver hands every outbox event after seq to the indexer, as the bus consumer would, and
// returns the last seq.
func (f *fixture) deliver(x *catalog.Indexer, after int64) int64 {
	f.t.Helper()
	rows, err := f.d.Query(f.ctx, `SELECT seq, id, subject, payload FROM outbox WHERE seq > ? ORDER BY seq`, after)
	if err != nil {
		f.t.Fatal(err)
	}
	var evs []bus.Event
	for rows.Next() {
		var ev bus.Event
		var payload string
		if err := rows.Scan(&after, &ev.ID, &ev.Subject, &payload); err != nil {
			f.t.Fatal(err)
		}
		ev.Data = json.RawMessage(payload)
		evs = append(evs, ev)
	}
	rows.Close()
	for _, ev := range evs {
		for range 2 { // at-least-once: a redelivery changes nothing
			if err := x.OnEvent(f.ctx, ev); err != nil {
				f.t.Fatalf("event %s: %v", ev.Subject, err)
			}
		}
	}
	return after
}

func TestSearch(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		hj := f.publish(f.tyOfficer, f.tyAdmin, sample("全市户籍人口基本信息", ""))
		ld := f.publish(f.tyOfficer, f.tyAdmin, sample("流动人口居住登记信息", ""))
		fr := f.publish(f.dtOfficer, f.provAdmin, sample("大同市法人单位基本信息", ""))
		xd := f.publish(f.xdOfficer, f.tyAdmin, sample("小店区户籍迁移审批记录", ""))
		must[catalog.Resource](t, "draft")(f.svc.CreateDraft(f.ctx, f.tyOfficer, sample("户籍人口草稿资源", "")))

		x := newIndexer(t, f.svc)
		if did, err := x.ReindexIfEmpty(f.ctx); err != nil || !did {
			t.Fatalf("reindex if empty: %v %v", did, err)
		}
		if did, err := x.ReindexIfEmpty(f.ctx); err != nil || did {
			t.Fatalf("second reindex if empty: %v %v", did, err)
		}
		if n := must[int](t, "count")(search.Count(f.ctx, x.Index)); n != 4 {
			t.Fatalf("indexed %d, want the 4 published", n)
		}

		// The published catalogue of every division is searchable by any reader (大同's
		// officer finds 太原's resources); drafts are not.
		for _, c := range []struct {
			text string
			want []string
		}{
			{"户籍人口", []string{hj.Name}},
			{"人口", []string{hj.Name, ld.Name}},
			{"户籍", []string{hj.Name, xd.Name}},
			{"基本信息", []string{fr.Name, hj.Name}},
			{hj.Code, []string{hj.Name}},
			{"102001 人口", []string{hj.Name, ld.Name}},                  // classification code and a word
			{"1401000001", []string{hj.Name}},                          // the sequence part of the code
			{"市场监督管理局", []string{fr.Name, hj.Name, ld.Name}},           // the provider's name
			{"统一社会信用代码", []string{fr.Name, hj.Name, ld.Name, xd.Name}}, // a data item
			{"草稿", []string{}},
		} {
			got := f.find(x, f.dtOfficer, c.text, catalog.Filter{})
			if c.text == "市场监督管理局" {
				// 小店区's department is also a 市场监督管理局 of its district.
				got = slices.DeleteFunc(got, func(s string) bool { return s == xd.Name })
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("%q: got %v, want %v", c.text, got, want)
			}
		}

		// The name ranks above the summary and items; highlights mark the words.
		res := must[catalog.SearchResult](t, "search")(x.Search(f.ctx, f.auditor, "户籍人口", catalog.Filter{}))
		if res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != hj.ID || res.Hits[0].Version != 1 || res.Hits[0].Status != catalog.StatusPublished {
			t.Fatalf("result %+v", res)
		}
		if h := res.Hits[0].Highlights["name"]; len(h) == 0 || h[0] != "全市<mark>户籍人口</mark>基本信息" || res.Hits[0].Highlights["code"] != nil {
			t.Errorf("highlights %v", res.Hits[0].Highlights)
		}

		// Filters: division roll-up and exact, department, paging.
		if got := f.find(x, f.auditor, "户籍", catalog.Filter{Division: "140100"}); len(got) != 2 {
			t.Errorf("太原 rolled up: %v", got)
		}
		if got := f.find(x, f.auditor, "户籍", catalog.Filter{Division: "140100", Exact: true}); !slices.Equal(got, []string{hj.Name}) {
			t.Errorf("太原 itself: %v", got)
		}
		if got := f.find(x, f.auditor, "户籍", catalog.Filter{Division: "140105"}); !slices.Equal(got, []string{xd.Name}) {
			t.Errorf("小店区: %v", got)
		}
		if got := f.find(x, f.auditor, "基本信息", catalog.Filter{Division: "140000"}); len(got) != 2 {
			t.Errorf("province: %v", got)
		}
		if got := f.find(x, f.auditor, "基本信息", catalog.Filter{DepartmentID: f.dept["140200/scjg"].ID}); !slices.Equal(got, []string{fr.Name}) {
			t.Errorf("department: %v", got)
		}
		if got := f.find(x, f.auditor, "基本信息", catalog.Filter{OpenType: catalog.OpenUnconditional}); len(got) != 0 {
			t.Errorf("open type: %v", got)
		}
		p1 := f.find(x, f.auditor, "人口", catalog.Filter{Limit: 1})
		p2 := f.find(x, f.auditor, "人口", catalog.Filter{Limit: 1, Offset: 1})
		if len(p1) != 1 || len(p2) != 1 || p1[0] == p2[0] {
			t.Errorf("pages %v %v", p1, p2)
		}
		// Without text, Search lists.
		if got := f.find(x, f.auditor, "", catalog.Filter{Division: "140200"}); !slices.Equal(got, []string{fr.Name}) {
			t.Errorf("no text: %v", got)
		}

		// Authorization and bad input.
		if _, err := x.Search(f.ctx, authz.Subject{}, "人口", catalog.Filter{}); err == nil {
			t.Error("anonymous search allowed")
		}
		if _, err := x.Search(f.ctx, staff("nobody", "140100", "", authz.Role("nobody")), "人口", catalog.Filter{}); err == nil {
			t.Error("search without catalog.read allowed")
		}
		if _, err := x.Search(f.ctx, f.tyOfficer, "人口", catalog.Filter{Status: catalog.StatusDraft}); err == nil {
			t.Error("search of drafts allowed")
		}

		// Events keep the index in step: withdraw, revise and republish, publish anew.
		seq := f.deliver(x, 0)
		must[catalog.Resource](t, "withdraw")(f.svc.Withdraw(f.ctx, f.tyAdmin, ld.ID, "数据停止更新"))
		// Before the event arrives the hit is already dropped: results come from the database.
		if got := f.find(x, f.auditor, "流动人口", catalog.Filter{}); len(got) != 0 {
			t.Errorf("withdrawn, event pending: %v", got)
		}
		seq = f.deliver(x, seq)
		if got := must[map[string]bool](t, "ids")(search.IDs(f.ctx, x.Index)); got[ld.ID] || len(got) != 3 {
			t.Errorf("withdrawn still indexed: %v", got)
		}
		d := sample("全市常住人口基本信息", "")
		d.Code = hj.Code
		must[catalog.Resource](t, "revise")(f.svc.UpdateDraft(f.ctx, f.tyOfficer, hj.ID, d))
		// The revision is a draft: the version in force is still found by its old name.
		seq = f.deliver(x, seq)
		if got := f.find(x, f.auditor, "户籍人口", catalog.Filter{}); !slices.Equal(got, []string{hj.Name}) {
			t.Errorf("during revision: %v", got)
		}
		must[catalog.Resource](t, "submit")(f.svc.Submit(f.ctx, f.tyOfficer, hj.ID))
		must[catalog.Resource](t, "approve")(f.svc.Review(f.ctx, f.tyAdmin, hj.ID, true, ""))
		nw := f.publish(f.tyOfficer, f.tyAdmin, sample("全市新生儿出生登记信息", ""))
		f.deliver(x, seq)
		if got := f.find(x, f.auditor, "户籍人口", catalog.Filter{}); len(got) != 0 {
			t.Errorf("old name after revision: %v", got)
		}
		if got := f.find(x, f.auditor, "常住人口", catalog.Filter{}); !slices.Equal(got, []string{d.Name}) {
			t.Errorf("new name after revision: %v", got)
		}
		if got := f.find(x, f.auditor, "出生", catalog.Filter{}); !slices.Equal(got, []string{nw.Name}) {
			t.Errorf("newly published: %v", got)
		}
		// Unknown and malformed events.
		if err := x.OnEvent(f.ctx, bus.Event{ID: "x", Subject: "dgov.catalog.other", Data: json.RawMessage(`{}`)}); err != nil {
			t.Error(err)
		}
		if err := x.OnEvent(f.ctx, bus.Event{ID: "y", Subject: catalog.EventPublished, Data: json.RawMessage(`[`)}); err == nil {
			t.Error("malformed event accepted")
		}

		// Reindex from the database reconciles a stale index: a stray document goes, a missing
		// one comes back.
		if err := x.Index.Upsert(f.ctx, "stray", search.Doc{Fields: map[string]string{"name": "幽灵资源"}}); err != nil {
			t.Fatal(err)
		}
		if err := x.Index.Delete(f.ctx, fr.ID); err != nil {
			t.Fatal(err)
		}
		if n := must[int](t, "reindex")(x.Reindex(f.ctx)); n != 4 {
			t.Errorf("reindexed %d", n)
		}
		ids := must[map[string]bool](t, "ids")(search.IDs(f.ctx, x.Index))
		if len(ids) != 4 || ids["stray"] || !ids[fr.ID] || ids[ld.ID] {
			t.Errorf("after reindex: %v", ids)
		}
	})
}

// BenchmarkSearch10k searches a catalogue of 10,000 published resources (SQLite; rows written
// directly, the index built by Reindex).
func BenchmarkSearch10k(b *testing.B) {
	ctx := context.Background()
	d := dbtest.SQLite(b, org.Migrations, bus.Migrations, catalog.Migrations)
	policy := authz.NewPolicy(func(a, c string) bool { return true })
	catalog.RegisterPermissions(policy)
	svc := catalog.New(d, policy, nil, catalog.Options{})
	depts := []string{"公安局", "民政局", "人力资源和社会保障局", "卫生健康委员会", "市场监督管理局", "自然资源局", "住房和城乡建设局", "交通运输局", "教育局", "税务局"}
	subjects := []string{"户籍人口", "婚姻登记", "社会保险", "医疗机构", "企业登记", "不动产", "建筑工程", "道路运输", "学校", "纳税人"}
	kinds := []string{"基本信息", "变更记录", "统计数据", "审批结果", "证照信息"}
	cities := []string{"太原", "大同", "阳泉", "长治", "晋城", "朔州", "晋中", "运城", "忻州", "临汾"}
	now := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	err := d.InTx(ctx, func(tx *db.Tx) error {
		for i := range 10000 {
			div := fmt.Sprintf("14%02d00", i%10+1)
			dr := sample(cities[i%10]+"市"+depts[(i/10)%10]+subjects[(i/100)%10]+kinds[(i/7)%5], "")
			dr.Provider = cities[i%10] + "市" + depts[(i/10)%10]
			dr.Code = fmt.Sprintf("1%02d%03d/%s%04d", i%3+1, i%50, div, i)
			body, _ := json.Marshal(dr)
			id := fmt.Sprintf("r%05d", i)
			if _, err := tx.Exec(ctx, `INSERT INTO catalog_resources (id, code, name, summary, provider_dept_id, division_code,
				share_type, open_type, status, version, live_version, body, reject_reason, submitted_by, published_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, '', 'x', ?, ?, ?)`, id, dr.Code, dr.Name, dr.Summary, "dept", div,
				int(dr.ShareType), int(dr.OpenType), string(catalog.StatusPublished), string(body), now, now, now); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO catalog_versions (resource_id, version, code, name, summary, provider_dept_id, division_code,
				share_type, open_type, body, published_at, published_by, created_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'x', ?)`,
				id, dr.Code, dr.Name, dr.Summary, "dept", div, int(dr.ShareType), int(dr.OpenType), string(body), now, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	x := newIndexer(b, svc)
	start := time.Now()
	if n, err := x.Reindex(ctx); err != nil || n != 10000 {
		b.Fatalf("reindex: %d %v", n, err)
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "reindex-ms")
	reader := staff("reader", "140000", "", authz.RoleAuditor)
	queries := []string{"户籍人口", "人口", "太原 社会保险 变更记录", "101", "企业登记 审批结果"}
	for _, q := range queries {
		if res, err := x.Search(ctx, reader, q, catalog.Filter{Limit: 20}); err != nil || res.Total == 0 || len(res.Hits) == 0 {
			b.Fatalf("%q: %+v %v", q, res.Total, err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := x.Search(ctx, reader, queries[i%len(queries)], catalog.Filter{Limit: 20}); err != nil {
			b.Fatal(err)
		}
	}
}

package govservice_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/packs"
)

var sources = []db.Source{bus.Migrations, govservice.Migrations}

type fixture struct {
	ctx context.Context
	d   *db.DB
	svc *govservice.Service
	now time.Time
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), d: d, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	if _, err := d.Exec(f.ctx, `CREATE TABLE test_audit (actor TEXT, action TEXT, object TEXT, detail TEXT)`); err != nil {
		t.Fatal(err)
	}
	f.svc = govservice.New(d, govservice.Options{
		Now: func() time.Time { return f.now },
		Audit: func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
			b, err := json.Marshal(detail)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO test_audit (actor, action, object, detail) VALUES (?, ?, ?, ?)`,
				actor.String(), action, object, string(b))
			return err
		},
	})
	return f
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.d.QueryRow(f.ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) sync(t *testing.T, p govservice.Pack) govservice.SyncResult {
	t.Helper()
	res, err := f.svc.Sync(f.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func loadBase(t *testing.T) govservice.Pack {
	t.Helper()
	p, err := govservice.LoadPack(basePack())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func codes(items []govservice.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Code
	}
	return out
}

func TestSync(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		p := loadBase(t)

		if hash, at, err := f.svc.LastSync(f.ctx); err != nil || hash != "" || at != nil {
			t.Errorf("last sync before any: %q %v %v", hash, at, err)
		}
		res := f.sync(t, p)
		hash, at, err := f.svc.LastSync(f.ctx)
		if err != nil || len(hash) != 64 || at == nil || !at.Equal(f.now) {
			t.Errorf("last sync: %q %v %v", hash, at, err)
		}
		want := govservice.SyncResult{Items: govservice.SyncCounts{Added: 2}, Bundles: govservice.SyncCounts{Added: 1}}
		if res != want {
			t.Fatalf("first sync: %+v", res)
		}
		it, err := f.svc.Get(f.ctx, "010020100100")
		if err != nil {
			t.Fatal(err)
		}
		if it.Version != 1 || !it.Active || it.UpdatedAt == nil || !it.UpdatedAt.Equal(f.now) || it.Name != "个体工商户设立登记" ||
			len(it.Steps) != 2 || it.Materials[0].LicenseType != "居民身份证" {
			t.Errorf("stored item: %+v", it)
		}
		if _, err := govservice.FormFields(it.Form); err != nil {
			t.Errorf("stored form: %v", err)
		}

		// The same pack again, reformatted: nothing changes, nothing is published or audited.
		outbox := f.count(t, `SELECT COUNT(*) FROM outbox`)
		audits := f.count(t, `SELECT COUNT(*) FROM test_audit`)
		if outbox != 3 || audits != 3 {
			t.Errorf("first sync: %d events, %d audit entries, want 3 and 3", outbox, audits)
		}
		fs := basePack()
		edit(t, fs, "services/geti.json", func(map[string]any) {}) // re-encoded: other spacing and key order
		f.now = f.now.Add(time.Hour)
		res = f.sync(t, mustLoad(t, fs))
		if res != (govservice.SyncResult{Items: govservice.SyncCounts{Unchanged: 2}, Bundles: govservice.SyncCounts{Unchanged: 1}}) {
			t.Errorf("second sync: %+v", res)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM outbox`); n != outbox {
			t.Errorf("an unchanged sync published %d events", n-outbox)
		}

		// A changed item gets version 2; version 1 stays readable.
		edit(t, fs, "services/food.json", func(m map[string]any) { m["promised_days"] = 7; m["steps"].([]any)[0].(map[string]any)["days"] = 7 })
		res = f.sync(t, mustLoad(t, fs))
		if res.Items != (govservice.SyncCounts{Changed: 1, Unchanged: 1}) {
			t.Errorf("change: %+v", res)
		}
		cur, err := f.svc.Get(f.ctx, "010031000100")
		if err != nil || cur.Version != 2 || cur.PromisedDays != 7 {
			t.Errorf("changed item: v%d promised %d, %v", cur.Version, cur.PromisedDays, err)
		}
		old, err := f.svc.GetVersion(f.ctx, "010031000100", 1)
		if err != nil || old.Version != 1 || old.PromisedDays != 5 {
			t.Errorf("version 1: v%d promised %d, %v", old.Version, old.PromisedDays, err)
		}
		if _, err := f.svc.GetVersion(f.ctx, "010031000100", 3); !errors.Is(err, govservice.ErrNotFound) {
			t.Errorf("version 3: %v", err)
		}

		// An item gone from the pack is deactivated (and the bundle that named it too, as the
		// bundle has to go for the pack to stay valid), never deleted.
		delete(fs, "services/food.json")
		delete(fs, "bundles/restaurant.json")
		res = f.sync(t, mustLoad(t, fs))
		if res.Items != (govservice.SyncCounts{Deactivated: 1, Unchanged: 1}) || res.Bundles != (govservice.SyncCounts{Deactivated: 1}) {
			t.Errorf("removal: %+v", res)
		}
		gone, err := f.svc.Get(f.ctx, "010031000100")
		if err != nil || gone.Active || gone.Version != 2 {
			t.Errorf("deactivated item: active %v v%d %v", gone.Active, gone.Version, err)
		}
		list, err := f.svc.List(f.ctx, govservice.Filter{})
		if err != nil || !slices.Equal(codes(list), []string{"010020100100"}) {
			t.Errorf("list after removal: %v %v", codes(list), err)
		}
		all, err := f.svc.List(f.ctx, govservice.Filter{IncludeInactive: true})
		if err != nil || len(all) != 2 {
			t.Errorf("list with inactive: %v %v", codes(all), err)
		}
		if bs, err := f.svc.Bundles(f.ctx); err != nil || len(bs) != 0 {
			t.Errorf("bundles after removal: %v %v", bs, err)
		}
		if b, err := f.svc.Bundle(f.ctx, "restaurant"); err != nil || b.Active {
			t.Errorf("deactivated bundle: %+v %v", b, err)
		}

		// Back in the pack unchanged: reactivated at the same version.
		res = f.sync(t, p)
		if res.Items != (govservice.SyncCounts{Reactivated: 1, Unchanged: 1}) || res.Bundles != (govservice.SyncCounts{Reactivated: 1}) {
			t.Errorf("reactivation: %+v", res)
		}
		back, _ := f.svc.Get(f.ctx, "010031000100")
		if !back.Active || back.Version != 3 || back.PromisedDays != 5 {
			// The pack's item is version 1's document, which differs from version 2: a new version.
			t.Errorf("reactivated item: active %v v%d promised %d", back.Active, back.Version, back.PromisedDays)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM service_item_versions WHERE code = ?`, "010031000100"); n != 3 {
			t.Errorf("%d versions kept, want 3", n)
		}

		// Every change was audited as the pack actor and published.
		var actor, action, object string
		if err := d.QueryRow(f.ctx, `SELECT actor, action, object FROM test_audit WHERE action = ?`, "govservice.item.deactivated").
			Scan(&actor, &action, &object); err != nil || actor != "system:pack" || object != "service_item:010031000100" {
			t.Errorf("audit: %s %s %s %v", actor, action, object, err)
		}
		var payload string
		if err := d.QueryRow(f.ctx, `SELECT payload FROM outbox WHERE subject = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
			govservice.EventBundleChanged).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		var ev govservice.Event
		if err := json.Unmarshal([]byte(payload), &ev); err != nil || ev.Code != "restaurant" || ev.Change != "reactivated" || !ev.Active {
			t.Errorf("event: %s %v", payload, err)
		}
	}, sources...)
}

func mustLoad(t *testing.T, fs fstest.MapFS) govservice.Pack {
	t.Helper()
	p, err := govservice.LoadPack(fs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSyncRefusesInvalidPack(t *testing.T) {
	d := dbtest.SQLite(t, sources...)
	f := newFixture(t, d)
	p := loadBase(t)
	p.Items[1].PromisedDays = 99
	_, err := f.svc.Sync(f.ctx, p)
	var ps govservice.Problems
	if !errors.As(err, &ps) || ps[0].File != "services/010031000100" || ps[0].Path != "promised_days" {
		t.Fatalf("got %v", err)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM service_items`); n != 0 {
		t.Errorf("%d items stored from an invalid pack", n)
	}
}

func TestListAndGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		p, err := govservice.LoadPack(packs.Shanxi())
		if err != nil {
			t.Fatal(err)
		}
		f.sync(t, p)
		for _, c := range []struct {
			name   string
			filter govservice.Filter
			check  func(its []govservice.Item) bool
			want   []string // exact codes, when given
		}{
			{"all", govservice.Filter{Limit: 500}, func(its []govservice.Item) bool { return len(its) == len(p.Items) }, nil},
			{"department", govservice.Filter{Department: "ga"}, func(its []govservice.Item) bool {
				return all(its, func(it govservice.Item) bool { return it.Department == "ga" })
			},
				[]string{"070011000101", "070011200200", "070011500000", "100011000000", "110021000000"}},
			{"type", govservice.Filter{Type: govservice.TypeBenefit}, func(its []govservice.Item) bool {
				return len(its) > 0 && all(its, func(it govservice.Item) bool { return it.Type == govservice.TypeBenefit })
			}, nil},
			{"level", govservice.Filter{Level: govservice.LevelProvince}, nil, []string{"070071000000"}},
			{"zero visit", govservice.Filter{ZeroVisit: true, Department: "zr"}, nil, []string{"010061000000", "070051000500"}},
			{"keyword in name", govservice.Filter{Keyword: "居住证"}, nil, []string{"070011500000"}},
			{"keyword in keywords", govservice.Filter{Keyword: "个体户"}, func(its []govservice.Item) bool {
				return slices.Contains(codes(its), "010020100100")
			}, nil},
			{"keyword is literal", govservice.Filter{Keyword: "%"}, nil, []string{}},
			{"keyword case", govservice.Filter{Keyword: "NOPE_"}, nil, []string{}},
			{"combined", govservice.Filter{Department: "rs", Type: govservice.TypePublic, Level: govservice.LevelCity},
				nil, []string{"110011000100", "110013000100"}},
			{"page", govservice.Filter{Limit: 2, Offset: 1}, func(its []govservice.Item) bool {
				return len(its) == 2 && its[0].Code == p.Items[1].Code && its[1].Code == p.Items[2].Code
			}, nil},
		} {
			its, err := f.svc.List(f.ctx, c.filter)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if c.want != nil && !slices.Equal(codes(its), c.want) {
				t.Errorf("%s: got %v, want %v", c.name, codes(its), c.want)
			}
			if c.check != nil && !c.check(its) {
				t.Errorf("%s: got %v", c.name, codes(its))
			}
		}
		if _, err := f.svc.List(f.ctx, govservice.Filter{Keyword: strings.Repeat("长", 101)}); err == nil {
			t.Error("a 101-character keyword was accepted")
		}

		it, err := f.svc.Get(f.ctx, "070051000301")
		if err != nil || it.Name != "不动产登记（二手房转移登记）" || it.Fees[0].AmountFen != 8000 || it.Fees[0].Unit != "件" {
			t.Errorf("get: %+v %v", it, err)
		}
		if _, err := f.svc.Get(f.ctx, "079999999999"); !errors.Is(err, govservice.ErrNotFound) {
			t.Errorf("unknown item: %v", err)
		}
		got, err := f.svc.ItemsByCode(f.ctx, []string{"070051000301", "079999999999"})
		if err != nil || len(got) != 1 || got["070051000301"].Code == "" {
			t.Errorf("ItemsByCode: %v %v", got, err)
		}
		bs, err := f.svc.Bundles(f.ctx)
		if err != nil || len(bs) != len(p.Bundles) {
			t.Fatalf("bundles: %d %v", len(bs), err)
		}
		b, err := f.svc.Bundle(f.ctx, "birth")
		if err != nil || b.Version != 1 || !b.Active || len(b.Items) != 4 || len(b.Fields) != 4 || b.Lead != "wj" {
			t.Errorf("bundle: %+v %v", b, err)
		}
		if _, err := f.svc.BundleVersion(f.ctx, "birth", 1); err != nil {
			t.Errorf("bundle version: %v", err)
		}
		if _, err := f.svc.Bundle(f.ctx, "nope"); !errors.Is(err, govservice.ErrBundleNotFound) {
			t.Errorf("unknown bundle: %v", err)
		}
	}, sources...)
}

func all(its []govservice.Item, ok func(govservice.Item) bool) bool {
	for _, it := range its {
		if !ok(it) {
			return false
		}
	}
	return true
}

package demo

import (
	"context"
	"testing"

	"bytes"
	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

func TestLoadBaseLibraries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Migrate(ctx, crypto.Migrations, bus.Migrations, audit.Migrations, org.Migrations, baselib.Migrations,
			catalog.Migrations, dataset.Migrations, exchange.Migrations); err != nil {
			t.Fatal(err)
		}
		k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), clock)
		if err != nil {
			t.Fatal(err)
		}
		policy := authz.NewPolicy(divisions.Contains)
		catalog.RegisterPermissions(policy)
		exchange.RegisterPermissions(policy)
		deps := Deps{DB: d, Now: clock,
			Org:  org.New(d, policy, org.Options{Argon: cheap, Now: clock, Fields: k.FieldCipher()}),
			Base: baselib.New(d, k.FieldCipher(), baselib.Options{Now: clock})}
		opts := Options{Seed: 42, Residents: 120, Enterprises: 30}
		if _, err := Load(ctx, deps, opts); err != nil {
			t.Fatal(err)
		}
		cat := catalog.New(d, policy, deps.Org, catalog.Options{Now: clock})
		ds := dataset.New(d, k.FieldCipher(), dataset.Options{Now: clock})
		ex := exchange.New(d, policy, cat, deps.Org, ds, k.FieldCipher(), audit.New(d, k, clock, audit.Options{}), exchange.Options{Now: clock})
		bdeps := BaseLibDeps{Org: deps.Org, Catalog: cat, Datasets: ds, Exchange: ex}
		bopts := BaseLibOptions{Seed: 42, Residents: 120, Enterprises: 30, Licenses: 200}
		sum, err := LoadBaseLibraries(ctx, bdeps, bopts)
		if err != nil {
			t.Fatal(err)
		}
		nSpatial := 0
		for _, dv := range divisions.Shanxi() {
			if dv.Level == divisions.City || dv.Level == divisions.County {
				nSpatial++
			}
		}
		want := map[string]int64{DatasetPopulation: 120, DatasetEntities: 30, DatasetCredit: 30,
			DatasetMacro: 11 * 6, DatasetSpatial: int64(nSpatial), DatasetLicenses: 200}
		for id, n := range want {
			if sum.Loaded[id] != n {
				t.Errorf("%s: loaded %d, want %d", id, sum.Loaded[id], n)
			}
			v, err := ds.Active(ctx, id)
			if err != nil || v.RowsOK != n || v.RowsRejected != 0 {
				t.Errorf("%s: active %+v %v", id, v, err)
			}
		}
		admin, err := staffSubject(ctx, deps.Org, AdminUsername)
		if err != nil {
			t.Fatal(err)
		}
		live, err := cat.ListAll(ctx, admin, catalog.Filter{Division: "140000", Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]catalog.Resource{}
		for _, r := range live {
			names[r.Name] = r
		}
		for _, n := range []string{"人口基础信息库", "法人单位基础信息库", "公共信用信息库", "宏观经济数据库", "空间地理信息库", "电子证照信息库"} {
			r, ok := names[n]
			if !ok || r.Status != catalog.StatusPublished || r.LiveVersion != 1 {
				t.Errorf("%s: %+v", n, r)
			}
		}
		if r := names["人口基础信息库"]; r.Classification.Prefix() != "101001" || r.Provider != "山西省公安厅" {
			t.Errorf("population resource: %s %s", r.Classification.Prefix(), r.Provider)
		}

		// Again: nothing changes.
		sum, err = LoadBaseLibraries(ctx, bdeps, bopts)
		if err != nil || len(sum.Loaded) != 0 || len(sum.Skipped) != 6 {
			t.Fatalf("second load: %+v %v", sum, err)
		}
		if v, _ := ds.Active(ctx, DatasetPopulation); v.Version != 1 {
			t.Errorf("population reloaded: version %d", v.Version)
		}
	})
}

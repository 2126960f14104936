package govservice_test

import (
	"slices"
	"testing"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/packs"
)

// TestShanxiPack checks the shipped pack: it loads, covers every department kind with at
// least 30 items, holds the items issue 5 names, and every bundle resolves to its members.
func TestShanxiPack(t *testing.T) {
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) < 30 {
		t.Errorf("%d items, want at least 30", len(p.Items))
	}
	depts := map[string]int{}
	types := map[string]int{}
	for _, it := range p.Items {
		depts[it.Department]++
		types[it.Type]++
		if len(it.FAQ) < 2 || len(it.FAQ) > 3 {
			t.Errorf("%s %s: %d FAQ entries, want 2–3", it.Code, it.Name, len(it.FAQ))
		}
		if len(it.Keywords) == 0 || it.Summary == "" || len(it.Applicants) == 0 {
			t.Errorf("%s %s: keywords, summary and applicants are expected in the shipped pack", it.Code, it.Name)
		}
		if it.PromisedDays >= it.StatutoryDays && it.StatutoryDays > 1 {
			t.Errorf("%s %s: promised %d days, statutory %d: the promise should be shorter", it.Code, it.Name, it.PromisedDays, it.StatutoryDays)
		}
	}
	for _, k := range org.DepartmentKinds {
		if depts[k.Code] == 0 {
			t.Errorf("no item of department kind %s (%s)", k.Code, k.Kind)
		}
	}
	if len(types) < 5 {
		t.Errorf("item types: %v", types)
	}
	names := map[string]govservice.Item{}
	for _, it := range p.Items {
		names[it.Name] = it
	}
	for name, dept := range map[string]string{
		"个体工商户设立登记":         "scjg",
		"食品经营许可":            "xzsp",
		"居住证办理":             "ga",
		"社会保障卡申领":           "rs",
		"不动产登记（二手房转移登记）":    "zr",
		"企业设立登记":            "xzsp",
		"出生医学证明首次签发":        "wj",
		"户口登记（新生儿入户）":       "ga",
		"城乡居民基本医疗保险参保登记":    "yb",
		"失业保险金申领":           "rs",
		"最低生活保障申请":          "mz",
		"婚姻登记预约（结婚登记）":      "mz",
		"义务教育新生入学报名":        "jy",
		"专业技术人员职业资格证书核发":    "rs",
		"养老金领取资格认证":         "rs",
		"公章刻制备案":            "ga",
		"企业社会保险登记（单位及职工参保）": "rs",
	} {
		it, ok := names[name]
		if !ok {
			t.Errorf("missing item %s", name)
		} else if it.Department != dept {
			t.Errorf("%s: department %s, want %s", name, it.Department, dept)
		}
	}
	if it := names["不动产登记（二手房转移登记）"]; len(it.Fees) == 0 || it.Fees[0].AmountFen != 8000 {
		t.Errorf("real-estate registration fee: %+v", it.Fees)
	}

	bundles := map[string]govservice.Bundle{}
	for _, b := range p.Bundles {
		bundles[b.Code] = b
		for _, code := range b.Items {
			if _, ok := p.Item(code); !ok {
				t.Errorf("bundle %s: item %s missing", b.Code, code)
			}
			if len(b.Fields[code]) == 0 {
				t.Errorf("bundle %s: item %s receives no fields", b.Code, code)
			}
		}
	}
	for code, wantDepts := range map[string][]string{
		"birth":           {"wj", "ga", "rs", "yb"},
		"company-opening": {"xzsp", "ga", "rs"},
	} {
		b, ok := bundles[code]
		if !ok {
			t.Errorf("missing bundle %s", code)
			continue
		}
		var got []string
		for _, c := range b.Items {
			it, _ := p.Item(c)
			got = append(got, it.Department)
		}
		if !slices.Equal(got, wantDepts) {
			t.Errorf("bundle %s: departments %v, want %v", code, got, wantDepts)
		}
	}
}

// BenchmarkLoadShanxiPack measures reading and validating the whole shipped pack.
func BenchmarkLoadShanxiPack(b *testing.B) {
	fsys := packs.Shanxi()
	for b.Loop() {
		if _, err := govservice.LoadPack(fsys); err != nil {
			b.Fatal(err)
		}
	}
}

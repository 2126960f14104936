package portal

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/packs"
)

func TestDivisionChoices(t *testing.T) {
	selected := func(opts []divisionOption) string {
		for _, o := range opts {
			if o.Selected {
				return o.Code
			}
		}
		return ""
	}
	has := func(opts []divisionOption, code string) bool {
		return slices.ContainsFunc(opts, func(o divisionOption) bool { return o.Code == code })
	}
	for _, c := range []struct {
		name, home, city, chosen string
		wantCity, wantCounty     string
		alsoCounty               string // another county offered
	}{
		{name: "a county of Taiyuan", home: "140105", wantCity: "140100", wantCounty: "140105", alsoCounty: "140106"},
		{name: "a township: its county", home: "140105001", wantCity: "140100", wantCounty: "140105"},
		{name: "another city asked for", home: "140105", city: "140200", wantCity: "140200", alsoCounty: "140213"},
		{name: "the choice made before wins", home: "140105", chosen: "140212", wantCity: "140200", wantCounty: "140212"},
		{name: "from outside Shanxi: the capital", home: "110105", wantCity: "140100", alsoCounty: "140105"},
		{name: "nobody known", wantCity: "140100", alsoCounty: "140109"},
		{name: "a bogus city is ignored", home: "140105", city: "999999", wantCity: "140100", wantCounty: "140105"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cities, counties := divisionChoices(c.home, c.city, c.chosen)
			if len(cities) != 11 {
				t.Errorf("Shanxi has 11 cities, got %d", len(cities))
			}
			if got := selected(cities); got != c.wantCity {
				t.Errorf("city %q, want %q", got, c.wantCity)
			}
			if got := selected(counties); got != c.wantCounty {
				t.Errorf("county %q, want %q", got, c.wantCounty)
			}
			if c.alsoCounty != "" && !has(counties, c.alsoCounty) {
				t.Errorf("county %s not offered", c.alsoCounty)
			}
			for _, o := range counties {
				if !strings.HasPrefix(o.Code, c.wantCity[:4]) {
					t.Errorf("county %s is not in city %s", o.Code, c.wantCity)
				}
			}
		})
	}
}

// A bundle asks once for what its members mean alike, and per member where they differ.
func TestBundleMaterials(t *testing.T) {
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		t.Fatal(err)
	}
	fields := func(code string) map[string]materialField {
		var b govservice.Bundle
		for _, x := range p.Bundles {
			if x.Code == code {
				b = x
			}
		}
		var members []govservice.Item
		for _, c := range b.Items {
			it, _ := p.Item(c)
			members = append(members, it)
		}
		out := map[string]materialField{}
		for _, f := range bundleMaterials(members) {
			if _, dup := out[f.Key]; dup {
				t.Errorf("%s: key %s twice", code, f.Key)
			}
			if f.Input != "material."+f.Key || strings.ContainsAny(f.ID, "/.") {
				t.Errorf("%s: input %q id %q", code, f.Input, f.ID)
			}
			out[f.Key] = f
		}
		return out
	}
	company := fields("company-opening")
	if f, ok := company["licence"]; !ok || len(f.ItemNames) != 2 || !f.Required {
		t.Errorf("营业执照 should be asked once for the seal and the insurance: %+v", f)
	}
	restaurant := fields("restaurant-opening")
	if _, ok := restaurant["application"]; ok {
		t.Error("two different application forms share one input")
	}
	if _, ok := restaurant["010020100100/application"]; !ok {
		t.Error("个体工商户's application form has no input of its own")
	}
	if _, ok := restaurant["010031000100/application"]; !ok {
		t.Error("食品经营许可's application form has no input of its own")
	}
	birth := fields("birth")
	if f := birth["birth_cert"]; len(f.ItemNames) != 2 || !f.Required {
		t.Errorf("出生医学证明 is required by one member and optional for another: required overall, once: %+v", f)
	}
}

// The applicant's history leaves out the department's internal moves, names the steps and
// comes newest first.
func TestHistoryOf(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	names := map[string]i18n.Text{"accept": i18n.T("受理", "Acceptance"), "decide": i18n.T("决定", "Decision")}
	events := []workflow.Event{
		{Action: workflow.ActionOpened, Actor: "citizen:a", Step: "accept", At: at},
		{Action: workflow.ActionClaimed, Actor: "staff:1", Step: "accept", At: at.Add(time.Minute)},
		{Action: workflow.ActionSuspended, Actor: "staff:1", Step: "accept", Comment: "请补充", Items: []string{"身份证"}, At: at.Add(2 * time.Minute)},
		{Action: workflow.ActionResumed, Actor: "citizen:a", Step: "accept", At: at.Add(3 * time.Minute)},
		{Action: workflow.ActionReminded, Actor: "system:workflow", Step: "accept", At: at.Add(4 * time.Minute)},
		{Action: workflow.ActionAdvanced, Actor: "staff:1", Step: "accept", ToStep: "decide", At: at.Add(5 * time.Minute)},
		{Action: workflow.ActionReturned, Actor: "staff:2", Step: "decide", ToStep: "accept", At: at.Add(6 * time.Minute)},
		{Action: workflow.ActionClosed, Actor: "staff:2", Step: "decide", Comment: "准予", At: at.Add(7 * time.Minute)},
	}
	h := historyOf(events, names)
	var got []string
	for _, e := range h {
		got = append(got, e.What.ZH+"/"+e.Who.ZH)
	}
	want := []string{"办结/工作人员", "进入“决定”环节/工作人员", "已提交补正/申请人", "要求补正材料/工作人员", "提交申请/申请人"}
	if !slices.Equal(got, want) {
		t.Fatalf("history %q, want %q", got, want)
	}
	if h[3].Comment != "请补充" || !slices.Equal(h[3].Items, []string{"身份证"}) || h[3].Step.ZH != "受理" {
		t.Errorf("correction entry: %+v", h[3])
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 900: "900 B", 1024: "1 KB", 870_000: "850 KB", 2_500_000: "2.4 MB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzServiceFilter: whatever the query, the filter holds known values or "-" (nothing).
func FuzzServiceFilter(f *testing.F) {
	for _, s := range []string{"", "q=%E4%B8%AA%E4%BD%93%E6%88%B7", "department=ga&type=%E8%A1%8C%E6%94%BF%E8%AE%B8%E5%8F%AF&level=county&zero_visit=1",
		"department=x&level=y&offset=-5", "offset=99999999999999999999", "q=a&q=b&department=ga&department=rs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		fl := parseServiceFilter(q)
		if fl.Offset < 0 {
			t.Fatalf("offset %d", fl.Offset)
		}
		if fl.Department != "" && fl.Department != "-" && !slices.ContainsFunc(kindChoices(""), func(c choice) bool { return c.Value == fl.Department }) {
			t.Fatalf("department %q", fl.Department)
		}
		if fl.Type != "" && fl.Type != "-" && !slices.Contains(itemTypes, fl.Type) {
			t.Fatalf("type %q", fl.Type)
		}
		if _, ok := govservice.Levels[fl.Level]; fl.Level != "" && fl.Level != "-" && !ok {
			t.Fatalf("level %q", fl.Level)
		}
		back, err := url.ParseQuery(string(fl.query(fl.Offset)))
		if err != nil || back.Get("q") != fl.Q {
			t.Fatalf("query %q does not round-trip: %v", fl.query(fl.Offset), err)
		}
	})
}

func TestRefusal(t *testing.T) {
	mats := func() []materialField { return []materialField{{Key: "id_card"}, {Key: "photo"}} }
	bad := i18n.New("material.missing", "缺少材料", "missing material")

	// A fault of one material stands beside it, not on top.
	m := mats()
	e, fields, top, ok := refusal(bad.WithField("materials.photo"), m)
	if !ok || e == nil || len(fields) != 0 || top != nil || m[1].Error == nil || m[0].Error != nil {
		t.Fatalf("material fault: ok %v top %v fields %v marks %v/%v", ok, top, fields, m[0].Error, m[1].Error)
	}
	// Any other refusal goes on top.
	m = mats()
	if _, _, top, ok := refusal(bad, m); !ok || top == nil || m[0].Error != nil || m[1].Error != nil {
		t.Fatalf("general fault: ok %v top %v", ok, top)
	}
	// A failure (5xx, or no *i18n.Error at all) is no refusal.
	for _, err := range []error{i18n.ErrInternal, errors.New("disk full")} {
		if _, _, _, ok := refusal(err, mats()); ok {
			t.Errorf("%v taken for a refusal", err)
		}
	}
}

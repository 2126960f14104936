package ids_test

import (
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

func TestValidateDivision(t *testing.T) {
	tests := []struct {
		in     string
		want   *i18n.Error
		level  ids.DivisionLevel
		parent string // "" for none
		inMsg  string
	}{
		{in: "110000", level: ids.LevelProvince},
		{in: "820000", level: ids.LevelProvince},
		{in: "440300", level: ids.LevelPrefecture, parent: "440000"},
		{in: "440305", level: ids.LevelCounty, parent: "440300"},
		{in: "110101", level: ids.LevelCounty, parent: "110100"},
		{in: "429004", level: ids.LevelCounty, parent: "429000"}, // Xiantao, administered by Hubei directly
		{in: "440305001", level: ids.LevelTownship, parent: "440305"},
		{in: "441900003", level: ids.LevelTownship, parent: "441900"}, // Dongguan has no counties
		{in: " 440305 ", level: ids.LevelCounty, parent: "440300"},

		{in: "", want: ids.ErrDivisionLength, inMsg: "实际为0位"},
		{in: "11000", want: ids.ErrDivisionLength},
		{in: "1100000", want: ids.ErrDivisionLength, inMsg: "实际为7位"},
		{in: "440305001001", want: ids.ErrDivisionLength, inMsg: "实际为12位"},
		{in: "44030a", want: ids.ErrDivisionFormat, inMsg: "第6位"},
		{in: "４40305", want: ids.ErrDivisionFormat, inMsg: "第1位"},
		{in: "-44030", want: ids.ErrDivisionFormat},
		{in: "990000", want: ids.ErrDivisionProvince, inMsg: "99"},
		{in: "000000", want: ids.ErrDivisionProvince},
		{in: "100000", want: ids.ErrDivisionProvince}, // national level exists in credit codes only
		{in: "440305000", want: ids.ErrDivisionTownship, inMsg: "000"},
		{in: "440000001", want: ids.ErrDivisionTownship},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ids.ValidateDivision(tt.in)
			if e := wantErr(t, err, tt.want); e != nil {
				if !strings.Contains(e.Msg.ZH, tt.inMsg) {
					t.Errorf("zh message %q lacks %q", e.Msg.ZH, tt.inMsg)
				}
				return
			}
			if d.Code != strings.TrimSpace(tt.in) || d.Level != tt.level {
				t.Errorf("got %+v, want level %v", d, tt.level)
			}
			p, ok := d.Parent()
			if ok != (tt.parent != "") || p.Code != tt.parent {
				t.Errorf("Parent() = %+v, %v; want %q", p, ok, tt.parent)
			}
			if d.Province() != tt.in[:2]+"0000" && d.Province() != strings.TrimSpace(tt.in)[:2]+"0000" {
				t.Errorf("Province() = %s", d.Province())
			}
		})
	}
}

func TestDivisionTree(t *testing.T) {
	town, err := ids.ValidateDivision("440305001")
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for d, ok := town, true; ok; d, ok = d.Parent() {
		chain = append(chain, d.Code+":"+d.Level.String())
	}
	if got := strings.Join(chain, " "); got != "440305001:township 440305:county 440300:prefecture 440000:province" {
		t.Errorf("chain = %s", got)
	}
	shenzhen, _ := ids.ValidateDivision("440300")
	beijing, _ := ids.ValidateDivision("110000")
	if !shenzhen.Contains(town) || !shenzhen.Contains(shenzhen) || beijing.Contains(town) || town.Contains(shenzhen) {
		t.Error("Contains")
	}
	if town.ProvinceName().ZH != "广东省" || ids.LevelTownship.Text().ZH != "乡级" {
		t.Error("names")
	}
}

func FuzzDivision(f *testing.F) {
	for _, s := range []string{"110000", "440300", "440305", "440305001", "441900003", "440305000", "990000", "", "44030a", "４40305"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ids.ValidateDivision(s)
		if err != nil {
			checkErr(t, err)
			return
		}
		again, err := ids.ValidateDivision(d.Code)
		if err != nil || again != d {
			t.Fatalf("normalised %q does not re-validate to itself: %+v, %v", d.Code, again, err)
		}
		// Walking up always ends at the province, through valid codes each a tier higher.
		for cur, ok := d, true; ok; {
			p, more := cur.Parent()
			if !more {
				if cur.Level != ids.LevelProvince || cur.Code != d.Province() {
					t.Fatalf("%s: walk ended at %+v", d.Code, cur)
				}
				break
			}
			if pv, err := ids.ValidateDivision(p.Code); err != nil || pv != p || p.Level >= cur.Level || !p.Contains(d) {
				t.Fatalf("%s: parent %+v of %+v: %+v, %v", d.Code, p, cur, pv, err)
			}
			cur = p
		}
	})
}

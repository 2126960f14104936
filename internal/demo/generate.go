package demo

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/ids"
)

// The generator is a pure function of the seed: every section draws from its own PCG
// stream (so the number of residents does not change the staff's names), only from slices
// in a fixed order, and with integer arithmetic only.
const (
	streamStaff       = 1
	streamResidents   = 2
	streamEnterprises = 3
)

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

func date(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// randomDate is a uniformly drawn day in [from, to].
func randomDate(r intner, from, to time.Time) time.Time {
	days := int(to.Sub(from) / (24 * time.Hour))
	return from.AddDate(0, 0, r.IntN(days+1))
}

// Fixed date ranges, independent of the clock, so the data are the same whenever loaded.
var (
	birthFirst      = date(1940, 1, 1)
	birthLast       = date(2020, 12, 31)
	establishedLast = date(2024, 12, 31)
	// GB 32100 codes replaced the old registration numbers from 1 October 2015: entities
	// established before carry their old 9-character organisation code inside the credit
	// code; later ones got a new body, in Shanxi starting MA0.
	creditCodeStart = date(2015, 10, 1)
)

// geography is Shanxi's divisions as the generator uses them.
type geography struct {
	byCode    map[string]divisions.Division
	cityPick  weighted[divisions.Division] // by population
	counties  map[string][]divisions.Division
	towns     map[string][]divisions.Division // townships by county
	all       []divisions.Division            // every county, by code
	cityCodes []string
}

func newGeography() *geography {
	g := &geography{byCode: map[string]divisions.Division{}, counties: map[string][]divisions.Division{},
		towns: map[string][]divisions.Division{}}
	for _, d := range divisions.Shanxi() { // sorted by code: parents first
		g.byCode[d.Code] = d
		switch d.Level {
		case divisions.County:
			g.counties[d.Parent] = append(g.counties[d.Parent], d)
			g.all = append(g.all, d)
		case divisions.Township:
			g.towns[d.Parent] = append(g.towns[d.Parent], d)
		}
	}
	var cs []divisions.Division
	var ws []int
	for _, c := range cities {
		cs, ws = append(cs, g.byCode[c.code]), append(ws, c.pop)
		g.cityCodes = append(g.cityCodes, c.code)
	}
	g.cityPick = newWeighted(cs, ws)
	return g
}

func mobile(r intner) string {
	return fmt.Sprintf("%s%08d", pick(r, mobilePrefixes), r.IntN(100_000_000))
}

// homeAddress is a household address: city, county, township, then a street address in a
// sub-district (街道) or a village in a town or township (镇, 乡).
func (g *geography) homeAddress(r intner, city, county divisions.Division) string {
	var b strings.Builder
	b.WriteString("山西省" + city.Name + county.Name)
	towns := g.towns[county.Code]
	town := ""
	if len(towns) > 0 {
		town = pick(r, towns).Name
		b.WriteString(town)
	}
	if strings.HasSuffix(town, "镇") || strings.HasSuffix(town, "乡") {
		fmt.Fprintf(&b, "%s村%d号", pick(r, villages), 1+r.IntN(200))
		return b.String()
	}
	fmt.Fprintf(&b, "%s%d号", pick(r, roads), 1+r.IntN(300))
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, "%d号楼%d单元%d%02d室", 1+r.IntN(30), 1+r.IntN(6), 1+r.IntN(18), 1+r.IntN(4))
	}
	return b.String()
}

// generateResidents draws n residents with unique ID numbers: household registration in a
// county drawn by city population; the ID number's address code is that county, or for one
// in ten another Shanxi county (where the number was first issued); births 1940–2020; a
// mobile for everyone born before 2012.
func generateResidents(seed int64, n int, g *geography) []baselib.PersonInput {
	r := newRand(seed, streamResidents)
	out := make([]baselib.PersonInput, 0, n)
	seen := make(map[string]bool, n)
	for len(out) < n {
		city := g.cityPick.pick(r)
		county := pick(r, g.counties[city.Code])
		issued := county
		if r.IntN(10) == 0 {
			issued = pick(r, g.all)
		}
		birth := randomDate(r, birthFirst, birthLast)
		male := r.IntN(2) == 0
		number := ids.MakeResident(issued.Code, birth, r.IntN(1000), male)
		if seen[number] {
			continue
		}
		seen[number] = true
		p := baselib.PersonInput{Name: fullName(r, male), IDNumber: number, DivisionCode: county.Code,
			Address: g.homeAddress(r, city, county)}
		if birth.Year() < 2012 {
			p.Mobile = mobile(r)
		}
		out = append(out, p)
	}
	return out
}

// entityKind is a type of market subject, its GB 32100 organisation type under market
// regulation (authority 9) and its share of the demo's enterprises.
type entityKind struct {
	entityType string
	orgType    byte
	since      time.Time // the law that created the form (公司法 1994, 合作社法 2007 …)
}

var entityKinds = newWeighted([]entityKind{
	{baselib.TypeLLC, '1', date(1994, 7, 1)},
	{baselib.TypeIndividual, '2', date(1990, 1, 1)},
	{baselib.TypeCooperative, '3', date(2007, 7, 1)},
	{baselib.TypeJointStock, '1', date(1994, 7, 1)},
	{baselib.TypeSoleProprietor, '1', date(2000, 1, 1)},
	{baselib.TypePartnership, '1', date(2007, 6, 1)},
}, []int{58, 25, 7, 5, 3, 2})

var statuses = newWeighted([]string{baselib.StatusActive, baselib.StatusDeregistered, baselib.StatusRevoked}, []int{88, 8, 4})

// creditChars are GB 32100's characters (no I, O, Z, S, V).
const creditChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// orgBody is the 8-character body of the organisation code in a credit code: numeric for
// codes converted from the old organisation code, MA0 and five characters for new ones.
func orgBody(r intner, established time.Time) string {
	var b [8]byte
	if established.Before(creditCodeStart) {
		b[0] = byte('1' + r.IntN(9))
		for i := 1; i < 8; i++ {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b[:])
	}
	copy(b[:], "MA0")
	for i := 3; i < 8; i++ {
		b[i] = creditChars[r.IntN(len(creditChars))]
	}
	return string(b[:])
}

// surnameOf is the surname of a generated name.
func surnameOf(name string) string {
	rs := []rune(name)
	for _, c := range []string{"令狐", "司马", "欧阳", "上官"} {
		if strings.HasPrefix(name, c) {
			return c
		}
	}
	return string(rs[:1])
}

// adultOn reports whether the holder of a resident ID number was 18 on day.
func adultOn(idNumber string, day time.Time) bool {
	return idNumber[6:14] <= day.AddDate(-18, 0, 0).Format("20060102")
}

var errNoAdults = errors.New("demo: too few adult residents to be the enterprises' legal representatives")

// generateEnterprises draws n market subjects with unique credit codes and names. Their
// legal representatives are residents who were adults when the entity was established,
// preferably of the same city.
func generateEnterprises(seed int64, n int, residents []baselib.PersonInput, g *geography) ([]baselib.EntityInput, error) {
	r := newRand(seed, streamEnterprises)
	byCity := map[string][]int{}
	for i, p := range residents {
		c := p.DivisionCode[:4] + "00"
		byCity[c] = append(byCity[c], i)
	}
	out := make([]baselib.EntityInput, 0, n)
	codes, names := map[string]bool{}, map[string]bool{}
	for attempts := 0; len(out) < n; attempts++ {
		if attempts > 100*n+1000 || len(residents) == 0 {
			return nil, errNoAdults
		}
		kind := entityKinds.pick(r)
		city := g.cityPick.pick(r)
		county := pick(r, g.counties[city.Code])
		established := randomDate(r, kind.since, establishedLast)

		rep := -1
		for try := 0; try < 60 && rep < 0; try++ {
			pool := byCity[city.Code]
			if try >= 30 || len(pool) == 0 {
				pool = nil
			}
			i := r.IntN(len(residents))
			if pool != nil {
				i = pool[r.IntN(len(pool))]
			}
			if adultOn(residents[i].IDNumber, established) {
				rep = i
			}
		}
		if rep < 0 {
			continue
		}
		person := residents[rep]

		e := baselib.EntityInput{EntityType: kind.entityType, LegalRepName: person.Name, LegalRepID: person.IDNumber,
			DivisionCode: county.Code, Established: established.Format(time.DateOnly), Status: statuses.pick(r)}
		registeredAt := county.Code // the county's market regulation bureau registers most
		trade := pick(r, tradeNames)
		cityShort := strings.TrimSuffix(city.Name, "市")
		var capital int64
		switch kind.entityType {
		case baselib.TypeLLC:
			ind := pick(r, industries)
			prefix := city.Name
			if r.IntN(5) < 2 {
				// A name under the province's name is registered by the provincial bureau.
				prefix, registeredAt = "山西", "140000"
			}
			e.Name, e.BusinessScope, capital = prefix+trade+ind.name+"有限公司", ind.scope, pick(r, capitalLLC)
		case baselib.TypeJointStock:
			ind := pick(r, industries)
			e.Name, e.BusinessScope, capital = "山西"+trade+ind.name+"股份有限公司", ind.scope, pick(r, capitalJointStock)
			registeredAt = "140000"
		case baselib.TypeSoleProprietor:
			ind := pick(r, industries)
			e.Name, e.BusinessScope, capital = city.Name+county.Name+trade+ind.name+"经营部", ind.scope, pick(r, capitalSole)
		case baselib.TypePartnership:
			f := pick(r, funds)
			e.Name, e.BusinessScope, capital = cityShort+trade+f.name+"合伙企业（有限合伙）", f.scope, pick(r, capitalPartnership)
			registeredAt = city.Code
		case baselib.TypeIndividual:
			s := pick(r, shops)
			brand := trade
			if s.food {
				brand = surnameOf(person.Name) + "记"
			}
			e.Name, e.BusinessScope, capital = county.Name+brand+s.name, s.scope, pick(r, capitalIndividual)
		case baselib.TypeCooperative:
			crop := pick(r, crops)
			e.Name, capital = county.Name+trade+crop+"专业合作社", pick(r, capitalCooperative)
			e.BusinessScope = crop + "；农产品销售；为成员提供农业生产资料购买、技术培训、信息服务。"
		}
		e.RegisteredCapitalFen = capital * 10_000 * 100 // 万元 → 元 → 分
		e.Address = fmt.Sprintf("山西省%s%s%s%d号", city.Name, county.Name, pick(r, roads), 1+r.IntN(300))
		if kind.entityType != baselib.TypeIndividual && kind.entityType != baselib.TypeCooperative && r.IntN(3) == 0 {
			e.Address += fmt.Sprintf("%s大厦%d层", pick(r, tradeNames), 2+r.IntN(25))
		}
		code, err := ids.MakeCreditCode('9', kind.orgType, registeredAt, orgBody(r, established))
		if err != nil {
			return nil, fmt.Errorf("demo: credit code: %w", err)
		}
		if codes[code] || names[e.Name] {
			continue
		}
		codes[code], names[e.Name] = true, true
		e.CreditCode = code
		out = append(out, e)
	}
	return out, nil
}

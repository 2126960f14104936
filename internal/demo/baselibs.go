package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/quality"
)

// The six base libraries (D2) as catalogue resources with datasets behind them.
//
// Each library is registered by an officer of its provider department at the province,
// submitted by that officer, approved by the provincial organisation administrator (never
// their own submission), loaded into a dataset through dataset.Load from an in-memory CSV
// stream, and attached to the exchange gateway by the provider's officer.
//
// Providers: 人口 — 山西省公安厅, 法人单位 — 山西省市场监督管理局, 空间地理 — 山西省自然资源厅.
// The demo's organisation has no 发展和改革委员会, 统计局 or 信用办, so the public-credit and
// macro-economy libraries and the e-licence library are provided by 山西省政务服务管理局.
// The officers sx-ga-01 and sx-zr-01 are created when missing (the demo has no staff in
// those departments otherwise).
//
// Data: population and legal entities are the residents and enterprises of Load, generated
// again from the same seed and counts (so they match the baselib tables row for row). Credit
// ratings, macro-economic indicators, centroids and licences are SYNTHETIC: deterministic
// draws of plausible magnitude, not official statistics; centroids are placed inside
// Shanxi's bounding box (34.5–40.7°N, 110.2–114.6°E), not surveyed.

// Dataset ids of the base libraries.
const (
	DatasetPopulation = "baselib.population"
	DatasetEntities   = "baselib.legal_entities"
	DatasetCredit     = "baselib.public_credit"
	DatasetMacro      = "baselib.macro_economy"
	DatasetSpatial    = "baselib.spatial_geography"
	DatasetLicenses   = "baselib.e_licenses"
)

// DefaultLicenses is the number of e-licence records by default.
const DefaultLicenses = 3000

// Macro-economy years.
const (
	macroFirstYear = 2019
	macroLastYear  = 2024
)

// BaseLibDeps are the services LoadBaseLibraries writes through.
type BaseLibDeps struct {
	Org      *org.Service
	Catalog  *catalog.Service
	Datasets *dataset.Service
	Exchange *exchange.Service
	// Quality, when set, gets every library attached to its resource for the quality reports,
	// and the data-quality demo (quality.go: 太原市民政局's subsistence-allowance roll with
	// nine seeded bad rows, checked at once).
	Quality *quality.Service
}

// BaseLibOptions choose what LoadBaseLibraries generates. Seed, Residents and Enterprises
// must be those Load used, so the population and legal-entity datasets match the libraries.
type BaseLibOptions struct {
	Seed        int64 // 0 means DefaultSeed
	Residents   int   // 0 means DefaultResidents; negative means none
	Enterprises int   // 0 means DefaultEnterprises; negative means none
	Licenses    int   // 0 means DefaultLicenses; negative means none
	// Progress, when set, is called as each library's load advances (what is the dataset id).
	Progress func(done, total int, what string)
}

// BaseLibSummary reports what LoadBaseLibraries did per dataset id: rows loaded now, or
// skipped because the library was already registered and loaded. Quality is the quality
// demo's first report and seeded faults, when it was loaded now.
type BaseLibSummary struct {
	Loaded  map[string]int64
	Skipped []string
	Quality *QualityDemo
}

// baseLibrary is one library: its catalogue draft, dataset schema and rows.
type baseLibrary struct {
	datasetID string
	provider  string // org department code at the province
	officer   string // username of the provider's officer
	divCol    string // division column for row scopes
	draft     catalog.Draft
	schema    dataset.Schema
	rows      func() [][]string
}

// libOfficers are the provincial officers of the providers, created when missing.
var libOfficers = map[string]string{"ga": "sx-ga-01", "scjg": "sx-scjg-01", "zr": "sx-zr-01", "zwfw": "sx-zwfw-01"}

const libReviewer = "sx-admin"

// LoadBaseLibraries registers, publishes, loads and attaches the six base libraries. A
// library whose resource is already in the catalogue (by name, at the province) and whose
// dataset has an active version is skipped, so calling it again changes nothing. It needs
// the organisation of Load (admin, sx-admin and the provincial departments).
func LoadBaseLibraries(ctx context.Context, deps BaseLibDeps, opts BaseLibOptions) (BaseLibSummary, error) {
	o := Options{Seed: opts.Seed, Residents: opts.Residents, Enterprises: opts.Enterprises}.withDefaults()
	switch {
	case opts.Licenses == 0:
		opts.Licenses = DefaultLicenses
	case opts.Licenses < 0:
		opts.Licenses = 0
	}
	if opts.Progress == nil {
		opts.Progress = func(int, int, string) {}
	}
	sum := BaseLibSummary{Loaded: map[string]int64{}}

	reviewer, err := staffSubject(ctx, deps.Org, libReviewer)
	if err != nil {
		return sum, err
	}
	g := newGeography()
	libs, err := baseLibraries(o, opts.Licenses, g)
	if err != nil {
		return sum, err
	}
	for _, lib := range libs {
		officer, err := libOfficer(ctx, deps.Org, lib.provider)
		if err != nil {
			return sum, err
		}
		res, fresh, err := publish(ctx, deps.Catalog, officer, reviewer, "140000", lib.draft)
		if err != nil {
			return sum, fmt.Errorf("demo: %s: %w", lib.draft.Name, err)
		}
		if _, err := deps.Datasets.Active(ctx, lib.datasetID); err == nil && !fresh {
			sum.Skipped = append(sum.Skipped, lib.datasetID)
			continue
		} else if err != nil && !errors.Is(err, dataset.ErrNoActive) {
			return sum, fmt.Errorf("demo: %s: %w", lib.datasetID, err)
		}
		rows := lib.rows()
		if len(rows) == 0 {
			continue
		}
		data, err := csvOf(lib.schema, rows)
		if err != nil {
			return sum, err
		}
		total := len(rows)
		r, err := deps.Datasets.Load(ctx, lib.datasetID, lib.schema, dataset.Source{Name: lib.datasetID + ".csv",
			Format: dataset.CSV, Reader: bytes.NewReader(data), Size: int64(len(data)), Encoding: "utf-8"},
			dataset.LoadOptions{MaxRejects: -1, Progress: func(p dataset.Progress) { opts.Progress(int(p.Rows), total, lib.datasetID) }})
		if err != nil {
			return sum, fmt.Errorf("demo: load %s: %w", lib.datasetID, err)
		}
		if r.RowsRejected > 0 {
			rej, _ := deps.Datasets.Rejects(ctx, lib.datasetID, r.Version, 1)
			return sum, fmt.Errorf("demo: load %s: %d rows rejected (%v)", lib.datasetID, r.RowsRejected, rej)
		}
		sum.Loaded[lib.datasetID] = r.RowsOK
		if _, err := deps.Exchange.Attach(ctx, officer, res.ID, lib.datasetID, lib.divCol); err != nil {
			return sum, fmt.Errorf("demo: attach %s: %w", lib.datasetID, err)
		}
		if err := attachQuality(ctx, deps.Quality, officer, lib.datasetID, res); err != nil {
			return sum, err
		}
	}
	if deps.Quality != nil {
		qd, err := loadDibao(ctx, deps, o, g)
		if err != nil {
			return sum, err
		}
		if qd != nil {
			sum.Loaded[DatasetDibao] = qd.Report.TotalRows
			sum.Quality = qd
		}
	}
	return sum, nil
}

// staffSubject returns the subject of the demo account username.
func staffSubject(ctx context.Context, o *org.Service, username string) (authz.Subject, error) {
	list, err := o.ListStaff(ctx, reader, org.StaffFilter{Query: username, Limit: 1000})
	if err != nil {
		return authz.Subject{}, fmt.Errorf("demo: look for %s: %w", username, err)
	}
	for _, s := range list {
		if s.Username == username {
			return o.Subject(ctx, s.ID)
		}
	}
	return authz.Subject{}, fmt.Errorf("demo: no account %s: load the demo organisation first: %w", username, i18n.ErrNotFound)
}

// libOfficer returns the provincial officer of department code, creating it when missing.
func libOfficer(ctx context.Context, o *org.Service, code string) (authz.Subject, error) {
	return officerOf(ctx, o, libOfficers[code], "140000", code)
}

// officerOf returns the officer username of the department code in division, creating the
// account when missing.
func officerOf(ctx context.Context, o *org.Service, username, division, code string) (authz.Subject, error) {
	s, err := staffSubject(ctx, o, username)
	if err == nil || !errors.Is(err, i18n.ErrNotFound) {
		return s, err
	}
	admin, err := staffSubject(ctx, o, AdminUsername)
	if err != nil {
		return s, err
	}
	depts, err := o.ListDepartments(ctx, reader, org.DepartmentFilter{Division: division, Limit: 1000})
	if err != nil {
		return s, fmt.Errorf("demo: departments: %w", err)
	}
	for _, d := range depts {
		if d.DivisionCode == division && d.Code == code {
			r := newRand(int64(len(username))*7919, streamBaseLibs)
			st, err := o.CreateStaff(ctx, admin, org.StaffInput{Username: username, Name: fullName(r, r.IntN(2) == 0),
				DepartmentID: d.ID, Phone: mobile(r), Roles: []authz.Role{authz.RoleOfficer}, Password: DemoPassword})
			if err != nil {
				return s, fmt.Errorf("demo: staff %s: %w", username, err)
			}
			return o.Subject(ctx, st.ID)
		}
	}
	return s, fmt.Errorf("demo: no department %s in %s", code, division)
}

// publish finds the resource named d.Name in division's own catalogue, or registers it as
// officer and publishes it with reviewer's approval (fresh = true).
func publish(ctx context.Context, cat *catalog.Service, officer, reviewer authz.Subject, division string, d catalog.Draft) (catalog.Resource, bool, error) {
	live, err := cat.List(ctx, officer, catalog.Filter{Division: division, Exact: true, Query: d.Name, Limit: 1000})
	if err != nil {
		return catalog.Resource{}, false, err
	}
	for _, r := range live {
		if r.Name == d.Name {
			return r, false, nil
		}
	}
	d.ProviderDeptID = officer.Dept
	r, err := cat.CreateDraft(ctx, officer, d)
	if err != nil {
		return r, false, err
	}
	if _, err := cat.Submit(ctx, officer, r.ID); err != nil {
		return r, false, err
	}
	r, err = cat.Review(ctx, reviewer, r.ID, true, "演示数据 / demo data")
	return r, true, err
}

// csvOf writes rows under the schema's header.
func csvOf(s dataset.Schema, rows [][]string) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := make([]string, len(s.Columns))
	for i, c := range s.Columns {
		head[i] = c.Name
	}
	_ = w.Write(head)
	_ = w.WriteAll(rows)
	return b.Bytes(), w.Error()
}

// streamBaseLibs is the generator stream of the synthetic libraries (after Load's three).
const streamBaseLibs = 4

// field is a data item of the catalogue and the dataset column of the same name.
type field struct {
	name, en  string
	item      catalog.ItemType
	length    int
	typ       dataset.Type
	required  bool
	sensitive bool
	scale     int
}

func (f field) dataItem() catalog.DataItem {
	return catalog.DataItem{Name: f.name, EnglishName: f.en, Type: f.item, Length: f.length, Sensitive: f.sensitive}
}

func (f field) column() dataset.Column {
	return dataset.Column{Name: f.name, Type: f.typ, Required: f.required, Sensitive: f.sensitive, Scale: f.scale}
}

func library(id, provider, divCol, name, summary string, cls catalog.Classification, share catalog.ShareType, cond string,
	open catalog.OpenType, cycle catalog.UpdateCycle, key string, fields []field, rows func() [][]string) baseLibrary {
	lib := baseLibrary{datasetID: id, provider: provider, officer: libOfficers[provider], divCol: divCol, rows: rows}
	lib.draft = catalog.Draft{Name: name, Summary: summary, Classification: cls, Format: catalog.FormatDatabase,
		FormatDetail: "dataset " + id, ShareType: share, ShareCondition: cond, OpenType: open, UpdateCycle: cycle,
		Contact: catalog.Contact{Name: "数据管理处", Phone: "0351-1234567"}}
	for _, f := range fields {
		lib.draft.Items = append(lib.draft.Items, f.dataItem())
		lib.schema.Columns = append(lib.schema.Columns, f.column())
	}
	lib.schema.Key = key
	return lib
}

func base(item string) catalog.Classification {
	return catalog.Classification{Class: catalog.ClassBase, Item: item, Entry: "001"}
}

const (
	tC = catalog.TypeChar
	tN = catalog.TypeNumber
	tD = catalog.TypeDate
	tB = catalog.TypeBool
)

// baseLibraries describes the six libraries; rows are generated when asked for.
func baseLibraries(o Options, licenses int, g *geography) ([]baseLibrary, error) {
	residents := generateResidents(o.Seed, o.Residents, g)
	var enterprises []baselibEntity
	if o.Enterprises > 0 {
		es, err := generateEnterprises(o.Seed, o.Enterprises, residents, g)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			enterprises = append(enterprises, baselibEntity{e.CreditCode, e.Name, e.EntityType, e.LegalRepName, e.DivisionCode,
				e.Address, e.RegisteredCapitalFen, e.Established, e.BusinessScope, e.Status})
		}
	}
	const condPII = "仅限依法履行职责需要，按最小必要原则申请所需信息项"
	libs := []baseLibrary{
		library(DatasetPopulation, "ga", "户籍地区划", "人口基础信息库", "全省户籍人口的身份、户籍地和联系方式（演示数据为合成数据）",
			base("01"), catalog.ShareConditional, condPII, catalog.OpenNone, catalog.CycleDaily, "身份证号", []field{
				{"身份证号", "id_number", tC, 18, dataset.ResidentID, true, true, 0},
				{"姓名", "name", tC, 50, dataset.String, true, true, 0},
				{"性别", "sex", tC, 2, dataset.String, true, false, 0},
				{"出生日期", "birth_date", tD, 0, dataset.Date, true, false, 0},
				{"户籍地区划", "division_code", tC, 6, dataset.Division, true, false, 0},
				{"住址", "address", tC, 200, dataset.String, false, true, 0},
				{"手机号码", "mobile", tC, 11, dataset.Mobile, false, true, 0},
			}, func() [][]string {
				out := make([][]string, 0, len(residents))
				for _, p := range residents {
					sex := "女"
					if (p.IDNumber[16]-'0')%2 == 1 {
						sex = "男"
					}
					birth := p.IDNumber[6:10] + "-" + p.IDNumber[10:12] + "-" + p.IDNumber[12:14]
					out = append(out, []string{p.IDNumber, p.Name, sex, birth, p.DivisionCode, p.Address, p.Mobile})
				}
				return out
			}),
		library(DatasetEntities, "scjg", "住所地区划", "法人单位基础信息库", "全省登记注册的企业、个体工商户和农民专业合作社等市场主体的登记信息（演示数据为合成数据）",
			base("02"), catalog.ShareUnconditional, "", catalog.OpenUnconditional, catalog.CycleDaily, "统一社会信用代码", []field{
				{"统一社会信用代码", "uscc", tC, 18, dataset.CreditCode, true, false, 0},
				{"名称", "name", tC, 200, dataset.String, true, false, 0},
				{"类型", "entity_type", tC, 50, dataset.String, true, false, 0},
				{"法定代表人", "legal_rep", tC, 50, dataset.String, true, false, 0},
				{"住所地区划", "division_code", tC, 6, dataset.Division, true, false, 0},
				{"住所", "address", tC, 200, dataset.String, false, false, 0},
				{"注册资本", "registered_capital", tN, 20, dataset.Fen, false, false, 0},
				{"成立日期", "established", tD, 0, dataset.Date, true, false, 0},
				{"经营范围", "business_scope", tC, 2000, dataset.String, false, false, 0},
				{"登记状态", "status", tC, 20, dataset.String, true, false, 0},
			}, func() [][]string {
				out := make([][]string, 0, len(enterprises))
				for _, e := range enterprises {
					capital := strconv.FormatInt(e.capitalFen/100, 10) + "." + fmt.Sprintf("%02d", e.capitalFen%100)
					out = append(out, []string{e.code, e.name, e.kind, e.rep, e.division, e.address, capital, e.established, e.scope, e.status})
				}
				return out
			}),
		library(DatasetCredit, "zwfw", "所在区划", "公共信用信息库", "市场主体的公共信用综合评价等级及红黑名单标记（合成数据）",
			base("04"), catalog.ShareUnconditional, "", catalog.OpenConditional, catalog.CycleMonthly, "统一社会信用代码", []field{
				{"统一社会信用代码", "uscc", tC, 18, dataset.CreditCode, true, false, 0},
				{"名称", "name", tC, 200, dataset.String, true, false, 0},
				{"所在区划", "division_code", tC, 6, dataset.Division, true, false, 0},
				{"信用等级", "rating", tC, 1, dataset.String, true, false, 0},
				{"红名单", "red_list", tB, 0, dataset.Boolean, true, false, 0},
				{"黑名单", "black_list", tB, 0, dataset.Boolean, true, false, 0},
				{"评价日期", "rated_on", tD, 0, dataset.Date, true, false, 0},
			}, func() [][]string { return creditRows(o.Seed, enterprises) }),
		library(DatasetMacro, "zwfw", "区划代码", "宏观经济数据库", "全省11个设区市2019–2024年主要经济指标（合成数据，量级近似，非官方统计）",
			// 宏观经济 is not an item of the basic class in the guide's list (catalog.Themes),
			// so it is registered as a departmental resource with its own item.
			catalog.Classification{Class: catalog.ClassDepartment, Item: "01", Entry: "001", Theme: "宏观经济"},
			catalog.ShareUnconditional, "", catalog.OpenUnconditional, catalog.CycleYearly, "记录编号", []field{
				{"记录编号", "record_id", tC, 20, dataset.String, true, false, 0},
				{"区划代码", "division_code", tC, 6, dataset.Division, true, false, 0},
				{"城市", "city", tC, 20, dataset.String, true, false, 0},
				{"年份", "year", tN, 4, dataset.Integer, true, false, 0},
				{"地区生产总值（亿元）", "gdp", tN, 12, dataset.Decimal, true, false, 2},
				{"常住人口（万人）", "population", tN, 10, dataset.Decimal, true, false, 2},
				{"固定资产投资（亿元）", "fixed_asset_investment", tN, 12, dataset.Decimal, true, false, 2},
			}, func() [][]string { return macroRows(o.Seed, g) }),
		library(DatasetSpatial, "zr", "区划代码", "空间地理信息库", "全省设区市和县级行政区划的代码、名称和中心点坐标（坐标为合成数据）",
			base("03"), catalog.ShareUnconditional, "", catalog.OpenUnconditional, catalog.CycleYearly, "区划代码", []field{
				{"区划代码", "division_code", tC, 6, dataset.Division, true, false, 0},
				{"名称", "name", tC, 50, dataset.String, true, false, 0},
				{"级别", "level", tC, 10, dataset.String, true, false, 0},
				{"上级区划", "parent_code", tC, 6, dataset.Division, false, false, 0},
				{"中心点经度", "lon", tN, 12, dataset.Decimal, true, false, 6},
				{"中心点纬度", "lat", tN, 12, dataset.Decimal, true, false, 6},
			}, func() [][]string { return spatialRows(o.Seed) }),
		library(DatasetLicenses, "zwfw", "所在区划", "电子证照信息库", "各部门签发的电子证照目录信息（合成数据）",
			base("05"), catalog.ShareConditional, "仅限办理政务服务事项时核验持证主体的证照", catalog.OpenNone, catalog.CycleRealtime, "证照编号", []field{
				{"证照编号", "license_no", tC, 32, dataset.String, true, false, 0},
				{"证照类型", "license_type", tC, 50, dataset.String, true, false, 0},
				{"持证主体类型", "holder_kind", tC, 10, dataset.String, true, false, 0},
				{"持证主体名称", "holder_name", tC, 200, dataset.String, true, true, 0},
				{"持证主体证件号码", "holder_id", tC, 18, dataset.String, true, true, 0},
				{"发证机关", "issuer", tC, 100, dataset.String, true, false, 0},
				{"所在区划", "division_code", tC, 6, dataset.Division, true, false, 0},
				{"发证日期", "issued_on", tD, 0, dataset.Date, true, false, 0},
				{"有效期至", "valid_until", tD, 0, dataset.Date, false, false, 0},
			}, func() [][]string { return licenseRows(o.Seed, licenses, residents, enterprises, g) }),
	}
	return libs, nil
}

type baselibEntity struct {
	code, name, kind, rep, division, address string
	capitalFen                               int64
	established, scope, status               string
}

func creditRows(seed int64, es []baselibEntity) [][]string {
	r := newRand(seed, streamBaseLibs*10+1)
	ratings := newWeighted([]string{"A", "B", "C", "D"}, []int{30, 50, 15, 5})
	out := make([][]string, 0, len(es))
	for _, e := range es {
		rating := ratings.pick(r)
		red := rating == "A" && r.IntN(5) == 0
		black := rating == "D" && r.IntN(2) == 0
		rated := randomDate(r, date(2024, 1, 1), date(2024, 12, 31)).Format("2006-01-02")
		out = append(out, []string{e.code, e.name, e.division, rating, strconv.FormatBool(red), strconv.FormatBool(black), rated})
	}
	return out
}

// cityGDP2019 is each city's synthetic 2019 GDP in 亿元 (of the order of the published
// figures, not copied from them), in the order of cities.
var cityGDP2019 = []int{4029, 1377, 732, 1652, 1451, 1034, 1451, 1562, 946, 1452, 1448}

func macroRows(seed int64, g *geography) [][]string {
	r := newRand(seed, streamBaseLibs*10+2)
	var out [][]string
	for i, c := range cities {
		gdp := cityGDP2019[i] * 100 // in 百万元, integer arithmetic
		pop := c.pop * 100          // in 百人
		for y := macroFirstYear; y <= macroLastYear; y++ {
			fai := gdp * (35 + r.IntN(25)) / 100
			out = append(out, []string{c.code + "-" + strconv.Itoa(y), c.code, g.byCode[c.code].Name, strconv.Itoa(y),
				hundredths(gdp), hundredths(pop), hundredths(fai)})
			gdp = gdp * (1000 + 20 + r.IntN(60)) / 1000 // +2 … +8 %
			pop = pop * (1000 - 8 + r.IntN(12)) / 1000  // −0.8 … +0.3 %
		}
	}
	return out
}

func hundredths(n int) string { return fmt.Sprintf("%d.%02d", n/100, n%100) }

// Shanxi's bounding box in micro-degrees.
const (
	minLat, maxLat = 34_500_000, 40_700_000
	minLon, maxLon = 110_200_000, 114_600_000
)

func spatialRows(seed int64) [][]string {
	r := newRand(seed, streamBaseLibs*10+3)
	center := map[string][2]int{}
	var out [][]string
	for _, d := range divisions.Shanxi() { // sorted by code: cities before their counties
		var lat, lon int
		switch d.Level {
		case divisions.City:
			lat, lon = minLat+500_000+r.IntN(maxLat-minLat-1_000_000), minLon+400_000+r.IntN(maxLon-minLon-800_000)
		case divisions.County:
			p, ok := center[d.Parent]
			if !ok {
				continue
			}
			lat = min(max(p[0]-400_000+r.IntN(800_000), minLat), maxLat)
			lon = min(max(p[1]-400_000+r.IntN(800_000), minLon), maxLon)
		default:
			continue
		}
		center[d.Code] = [2]int{lat, lon}
		out = append(out, []string{d.Code, d.Name, d.Level.Chinese(), d.Parent, micro(lon), micro(lat)})
	}
	return out
}

func micro(n int) string { return fmt.Sprintf("%d.%06d", n/1_000_000, n%1_000_000) }

type licenseKind struct{ name, issuer, prefix string }

var (
	personLicenses = []licenseKind{{"机动车驾驶证", "公安局交通警察支队", "JSZ"}, {"结婚证", "民政局", "JHZ"},
		{"出生医学证明", "卫生健康委员会", "CSZ"}, {"不动产权证书", "自然资源局", "BDC"}}
	entityLicenses = []licenseKind{{"营业执照", "市场监督管理局", "YYZZ"}, {"食品经营许可证", "市场监督管理局", "SPJY"},
		{"卫生许可证", "卫生健康委员会", "WSXK"}, {"建筑工程施工许可证", "行政审批服务管理局", "SGXK"}}
)

func licenseRows(seed int64, n int, residents []baselib.PersonInput, es []baselibEntity, g *geography) [][]string {
	r := newRand(seed, streamBaseLibs*10+4)
	out := make([][]string, 0, n)
	for i := range n {
		var kind licenseKind
		var holderKind, name, id, division string
		if len(es) > 0 && (len(residents) == 0 || r.IntN(2) == 0) {
			e := es[r.IntN(len(es))]
			kind, holderKind, name, id, division = pick(r, entityLicenses), "法人", e.name, e.code, e.division
		} else if len(residents) > 0 {
			p := residents[r.IntN(len(residents))]
			kind, holderKind, name, id, division = pick(r, personLicenses), "自然人", p.Name, p.IDNumber, p.DivisionCode
		} else {
			break
		}
		city := division[:4] + "00"
		issuer := g.byCode[city].Name + kind.issuer
		issued := randomDate(r, date(2016, 1, 1), date(2024, 12, 31))
		until := ""
		if kind.name != "营业执照" && kind.name != "结婚证" && kind.name != "出生医学证明" {
			until = issued.AddDate(5+r.IntN(6), 0, 0).Format("2006-01-02")
		}
		out = append(out, []string{fmt.Sprintf("%s%s%08d", kind.prefix, city, i+1), kind.name, holderKind, name, id,
			issuer, division, issued.Format("2006-01-02"), until})
	}
	return out
}

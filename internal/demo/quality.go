package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/quality"
)

// The data-quality demo (D5): 太原市民政局's roll of 城乡最低生活保障 (subsistence allowance)
// recipients, registered in the catalogue by the bureau's officer ty-mz-01, published by the
// city's organisation administrator, loaded as the dataset DatasetDibao and checked against
// quality rules, so that the console's quality report has something real to show.
//
// The roll is what a civil-affairs bureau keeps in a spreadsheet: identity numbers, phones and
// dates as plain text, so the file loads as it is and the quality rules, not the loader, find
// its faults. Good rows are heads of household drawn from the population library's residents of
// 太原 (adults with a mobile); amounts and dates are SYNTHETIC. Among them nine bad rows are
// seeded on purpose, spread evenly, one fault each (Faults lists them by row, line and key):
//
//  1. 身份证号 with a wrong check digit (GB 11643-1999 §5.3)
//  2. 身份证号 with an impossible birth date (19830230) and a correct check digit
//  3. 身份证号 missing
//  4. 姓名 missing
//  5. 身份证号 repeating the good row just before it (the same person registered twice)
//  6. 身份证号 valid, but of nobody in the population library
//  7. 联系电话 of 10 digits
//  8. 保障类别 "城镇低保", not one of 城市低保 / 农村低保
//  9. 认定日期 written "2023年6月1日", not YYYY-MM-DD
//
// No other row breaks any rule: the report must flag exactly these nine. With the default seed
// and library (10,000 residents) the roll has 40 good rows and the faults sit on rows 5, 10, …,
// 45 in the order above (keys TYMZ-DB-0005 … TYMZ-DB-0045, CSV lines 6 … 46).

// DatasetDibao is the dataset id of the quality demo's roll.
const DatasetDibao = "taiyuan.mz.dibao"

// dibaoGoodRows is how many good rows the roll has when the population library has enough
// adult residents of 太原; a smaller library gives fewer (at least dibaoMinGood).
const (
	dibaoGoodRows = 40
	dibaoMinGood  = 3
)

// dibao columns.
const (
	colRollNo   = "名册编号"
	colName     = "姓名"
	colIDNumber = "身份证号"
	colDivision = "户籍地区划"
	colPhone    = "联系电话"
	colCategory = "保障类别"
	colMembers  = "保障人数"
	colAmount   = "月保障金额"
	colDecided  = "认定日期"
)

// The officer and reviewer of the roll: 太原市民政局's officer (created when missing) and 太原's
// organisation administrator.
const (
	dibaoOfficer  = "ty-mz-01"
	dibaoReviewer = "ty-admin"
)

// SeededFault is one bad row the quality demo seeds on purpose, and what the report says of it.
type SeededFault struct {
	Row    int64        // row number in the dataset, from 1
	Line   int64        // line in the CSV file (the header is line 1)
	Key    string       // 名册编号 of the row
	Column string       // the column at fault
	Kind   quality.Kind // the rule kind that flags it
	Code   string       // the finding's code
	What   string       // the fault, for people
}

// dibaoRoll is the generated roll: CSV rows (without header) and the faults seeded in it.
type dibaoRoll struct {
	rows   [][]string
	faults []SeededFault
}

// dibaoFields: the key is the roll number; identity numbers, phones, categories and dates are
// text, as in the bureau's spreadsheet. Names, ID numbers and phones are personal data.
var dibaoFields = []field{
	{colRollNo, "roll_no", tC, 20, dataset.String, true, false, 0},
	{colName, "name", tC, 50, dataset.String, false, true, 0},
	{colIDNumber, "id_number", tC, 18, dataset.String, false, true, 0},
	{colDivision, "division_code", tC, 6, dataset.Division, true, false, 0},
	{colPhone, "phone", tC, 11, dataset.String, false, true, 0},
	{colCategory, "category", tC, 10, dataset.String, false, false, 0},
	{colMembers, "members", tN, 2, dataset.Integer, true, false, 0},
	{colAmount, "monthly_amount", tN, 12, dataset.Fen, true, false, 0},
	{colDecided, "decided_on", tD, 0, dataset.String, false, false, 0},
}

func dibaoSchema() dataset.Schema {
	s := dataset.Schema{Key: colRollNo}
	for _, f := range dibaoFields {
		s.Columns = append(s.Columns, f.column())
	}
	return s
}

// dibaoRules are the rules 太原市民政局 sets on the roll, beyond those the schema gives
// (completeness and uniqueness of the key, the division's format, timeliness).
func dibaoRules() []quality.Rule {
	return []quality.Rule{
		{Kind: quality.Completeness, Column: colIDNumber},
		{Kind: quality.Completeness, Column: colName},
		{Kind: quality.Format, Column: colIDNumber, Format: quality.FormatResidentID},
		{Kind: quality.Uniqueness, Column: colIDNumber},
		{Kind: quality.Reference, Column: colIDNumber, Library: quality.LibraryPopulation},
		{Kind: quality.Format, Column: colPhone, Format: quality.FormatMobile},
		{Kind: quality.Format, Column: colCategory, Format: quality.FormatRegex, Pattern: "城市低保|农村低保"},
		{Kind: quality.Format, Column: colDecided, Format: quality.FormatDate},
	}
}

func dibaoDraft() catalog.Draft {
	d := catalog.Draft{Name: "太原市城乡最低生活保障对象名册",
		Summary:        "太原市城乡最低生活保障对象的户主身份、户籍地、保障类别、保障人数和月保障金额（演示数据为合成数据，含用于演示数据质量检查的问题记录）",
		Classification: catalog.Classification{Class: catalog.ClassTheme, Item: "03", Entry: "001"}, Format: catalog.FormatDatabase,
		FormatDetail: "dataset " + DatasetDibao, ShareType: catalog.ShareConditional,
		ShareCondition: "仅限社会救助、医疗救助等依法履行职责需要，按最小必要原则申请", OpenType: catalog.OpenNone,
		UpdateCycle: catalog.CycleMonthly, Contact: catalog.Contact{Name: "社会救助科", Phone: "0351-4040123"}}
	for _, f := range dibaoFields {
		d.Items = append(d.Items, f.dataItem())
	}
	return d
}

// errFewResidents: the population library is too small for the roll; the demo then skips it.
var errFewResidents = errors.New("demo: too few adult residents of 太原 for the subsistence-allowance roll")

// generateDibao draws the roll from the residents of the population library (the same seed and
// count as Load) and seeds the nine faults.
func generateDibao(seed int64, residents []baselib.PersonInput, g *geography) (dibaoRoll, error) {
	inLibrary := make(map[string]bool, len(residents))
	var eligible []baselib.PersonInput
	for _, p := range residents {
		inLibrary[p.IDNumber] = true
		if strings.HasPrefix(p.DivisionCode, "1401") && p.Mobile != "" && adultOn(p.IDNumber, date(2025, 1, 1)) {
			eligible = append(eligible, p)
		}
	}
	// Four faults need persons of the library who are not among the good rows.
	const helpers = 4
	good := min(dibaoGoodRows, len(eligible)-helpers)
	if good < dibaoMinGood {
		return dibaoRoll{}, errFewResidents
	}
	r := newRand(seed, streamBaseLibs*10+5)
	decided := func() string { return randomDate(r, date(2021, 1, 1), date(2025, 6, 30)).Format("2006-01-02") }
	row := func(p baselib.PersonInput) []string {
		category := "农村低保"
		if county, ok := g.byCode[p.DivisionCode]; ok && strings.HasSuffix(county.Name, "区") {
			category = "城市低保"
		}
		members := 1 + r.IntN(4)
		// Synthetic: a monthly top-up of 200–780 yuan per member, in whole yuan.
		amountFen := int64(members) * int64(200+r.IntN(59)*10) * 100
		return []string{"", p.Name, p.IDNumber, p.DivisionCode, p.Mobile, category, fmt.Sprint(members),
			fmt.Sprintf("%d.%02d", amountFen/100, amountFen%100), decided()}
	}
	stranger := func(male bool) baselib.PersonInput {
		county := pick(r, g.counties["140100"])
		for {
			birth := randomDate(r, date(1950, 1, 1), date(1995, 12, 31))
			n := ids.MakeResident(county.Code, birth, r.IntN(1000), male)
			if !inLibrary[n] {
				return baselib.PersonInput{Name: fullName(r, male), IDNumber: n, DivisionCode: county.Code, Mobile: mobile(r)}
			}
		}
	}
	helper := eligible[good : good+helpers]

	// The faults in the order they appear; make builds the row, given the last good row before
	// it (which the duplicate copies).
	type fault struct {
		column string
		kind   quality.Kind
		code   string
		what   string
		make   func(lastGood []string) []string
	}
	faults := []fault{
		{colIDNumber, quality.Format, ids.ErrResidentChecksum.Code, "身份证号校验位错误", func([]string) []string {
			p := stranger(true)
			wrong := "0123456789X"[(strings.IndexByte("0123456789X", p.IDNumber[17])+1)%11]
			p.IDNumber = p.IDNumber[:17] + string(wrong)
			return row(p)
		}},
		{colIDNumber, quality.Format, ids.ErrResidentBirth.Code, "身份证号出生日期不存在（2月30日）", func([]string) []string {
			p := stranger(false)
			first17 := p.DivisionCode + "19830230" + fmt.Sprintf("%03d", 2*r.IntN(500))
			check, err := ids.ResidentCheckDigit(first17)
			if err != nil {
				panic(err) // 17 digits by construction
			}
			p.IDNumber = first17 + string(check)
			return row(p)
		}},
		{colIDNumber, quality.Completeness, "quality.missing", "缺少身份证号", func([]string) []string {
			p := stranger(true)
			p.IDNumber = ""
			return row(p)
		}},
		{colName, quality.Completeness, "quality.missing", "缺少姓名", func([]string) []string {
			p := helper[0]
			p.Name = ""
			return row(p)
		}},
		{colIDNumber, quality.Uniqueness, "quality.duplicate", "同一户主重复登记（身份证号与上一行相同）", func(last []string) []string {
			return row(baselib.PersonInput{Name: last[1], IDNumber: last[2], DivisionCode: last[3], Mobile: last[4]})
		}},
		{colIDNumber, quality.Reference, "quality.not_in_library", "身份证号有效，但人口库中查无此人", func([]string) []string {
			return row(stranger(false))
		}},
		{colPhone, quality.Format, ids.ErrMobileLength.Code, "联系电话只有10位", func([]string) []string {
			out := row(helper[1])
			out[4] = out[4][:10]
			return out
		}},
		{colCategory, quality.Format, "quality.pattern", "保障类别“城镇低保”不是规定的取值", func([]string) []string {
			out := row(helper[2])
			out[5] = "城镇低保"
			return out
		}},
		{colDecided, quality.Format, "quality.date", "认定日期写作“2023年6月1日”，不是YYYY-MM-DD", func([]string) []string {
			out := row(helper[3])
			out[8] = "2023年6月1日"
			return out
		}},
	}

	// Fault i follows the first (i+1)·good/(faults+1) good rows: spread evenly.
	var roll dibaoRoll
	var lastGood []string
	emitted := 0
	add := func(rec []string) {
		rec[0] = rollNo(len(roll.rows) + 1)
		roll.rows = append(roll.rows, rec)
	}
	for i, f := range faults {
		for ; emitted < (i+1)*good/(len(faults)+1); emitted++ {
			lastGood = row(eligible[emitted])
			add(lastGood)
		}
		if lastGood == nil && f.kind == quality.Uniqueness {
			return dibaoRoll{}, errFewResidents
		}
		add(f.make(lastGood))
		n := len(roll.rows)
		roll.faults = append(roll.faults, SeededFault{Row: int64(n), Line: int64(n) + 1, Key: rollNo(n), Column: f.column,
			Kind: f.kind, Code: f.code, What: f.what})
	}
	for ; emitted < good; emitted++ {
		add(row(eligible[emitted]))
	}
	return roll, nil
}

func rollNo(n int) string { return fmt.Sprintf("TYMZ-DB-%04d", n) }

// QualityDemo is what loadDibao did.
type QualityDemo struct {
	Report quality.Report
	Faults []SeededFault // the bad rows seeded, by row
}

// loadDibao registers, publishes, loads, sets the rules of and checks the roll. It does nothing
// and returns nil when the roll's dataset already has an active version, or when the
// population library is too small to draw the roll from.
func loadDibao(ctx context.Context, deps BaseLibDeps, o Options, g *geography) (*QualityDemo, error) {
	if _, err := deps.Datasets.Active(ctx, DatasetDibao); err == nil {
		return nil, nil
	} else if !errors.Is(err, dataset.ErrNoActive) {
		return nil, fmt.Errorf("demo: %s: %w", DatasetDibao, err)
	}
	roll, err := generateDibao(o.Seed, generateResidents(o.Seed, o.Residents, g), g)
	if errors.Is(err, errFewResidents) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	officer, err := officerOf(ctx, deps.Org, dibaoOfficer, "140100", "mz")
	if err != nil {
		return nil, err
	}
	reviewer, err := staffSubject(ctx, deps.Org, dibaoReviewer)
	if err != nil {
		return nil, err
	}
	res, _, err := publish(ctx, deps.Catalog, officer, reviewer, "140100", dibaoDraft())
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", DatasetDibao, err)
	}
	schema := dibaoSchema()
	data, err := csvOf(schema, roll.rows)
	if err != nil {
		return nil, err
	}
	lr, err := deps.Datasets.Load(ctx, DatasetDibao, schema, dataset.Source{Name: DatasetDibao + ".csv", Format: dataset.CSV,
		Reader: bytes.NewReader(data), Size: int64(len(data)), Encoding: "utf-8"}, dataset.LoadOptions{MaxRejects: -1})
	if err != nil {
		return nil, fmt.Errorf("demo: load %s: %w", DatasetDibao, err)
	}
	if lr.RowsRejected > 0 || lr.RowsOK != int64(len(roll.rows)) {
		rej, _ := deps.Datasets.Rejects(ctx, DatasetDibao, lr.Version, 1)
		return nil, fmt.Errorf("demo: load %s: %d rows rejected (%v): the seeded faults must pass the schema", DatasetDibao, lr.RowsRejected, rej)
	}
	if _, err := deps.Exchange.Attach(ctx, officer, res.ID, DatasetDibao, colDivision); err != nil {
		return nil, fmt.Errorf("demo: attach %s: %w", DatasetDibao, err)
	}
	if _, err := deps.Quality.Attach(ctx, officer, DatasetDibao, res); err != nil {
		return nil, fmt.Errorf("demo: quality of %s: %w", DatasetDibao, err)
	}
	if _, err := deps.Quality.SetRules(ctx, officer, DatasetDibao, dibaoRules()); err != nil {
		return nil, fmt.Errorf("demo: quality rules of %s: %w", DatasetDibao, err)
	}
	rep, err := deps.Quality.Run(ctx, DatasetDibao)
	if err != nil {
		return nil, fmt.Errorf("demo: quality check of %s: %w", DatasetDibao, err)
	}
	return &QualityDemo{Report: rep, Faults: roll.faults}, nil
}

// attachQuality ties a freshly loaded base library to its resource for the quality reports;
// the job queue checks it once a node serves.
func attachQuality(ctx context.Context, q *quality.Service, officer authz.Subject, datasetID string, res catalog.Resource) error {
	if q == nil {
		return nil
	}
	if _, err := q.Attach(ctx, officer, datasetID, res); err != nil {
		return fmt.Errorf("demo: quality of %s: %w", datasetID, err)
	}
	return nil
}

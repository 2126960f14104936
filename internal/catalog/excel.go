package catalog

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// The workbook departments exchange: one row per resource on the sheet 信息资源, the data
// items on the sheet 信息项, keyed by resource code. Headers are found by name, so columns may
// be in any order; 英文名称 is optional.
const (
	SheetResources = "信息资源"
	SheetItems     = "信息项"
)

// Columns of the resource sheet, in the order written.
const (
	colCode         = "资源代码"
	colName         = "资源名称"
	colProvider     = "资源提供方"
	colSummary      = "资源摘要"
	colClass        = "资源分类"
	colFormat       = "资源格式"
	colShareType    = "共享类型"
	colShareCond    = "共享条件"
	colOpenType     = "开放类型"
	colCycle        = "更新周期"
	colPublished    = "发布日期"
	colContact      = "联系人"
	colContactPhone = "联系电话"

	colItemName      = "信息项名称"
	colItemType      = "数据类型"
	colItemLength    = "长度"
	colItemDesc      = "描述"
	colItemSensitive = "是否敏感"
	colItemEnglish   = "英文名称"
)

var (
	resourceCols = []string{colCode, colName, colProvider, colSummary, colClass, colFormat, colShareType, colShareCond,
		colOpenType, colCycle, colPublished, colContact, colContactPhone}
	itemCols         = []string{colCode, colItemName, colItemType, colItemLength, colItemDesc, colItemSensitive, colItemEnglish}
	optionalItemCols = map[string]bool{colItemEnglish: true}

	// resourceField maps Draft JSON fields to resource-sheet columns, itemField item fields
	// to items-sheet columns, for locating validation errors.
	resourceField = map[string]string{
		"code": colCode, "name": colName, "provider": colProvider, "provider_dept_id": colProvider, "summary": colSummary,
		"classification": colClass, "format": colFormat, "format_detail": colFormat, "share_type": colShareType,
		"share_condition": colShareCond, "open_type": colOpenType, "update_cycle": colCycle,
		"contact.name": colContact, "contact.phone": colContactPhone, "items": colCode,
	}
	itemField = map[string]string{
		"name": colItemName, "english_name": colItemEnglish, "type": colItemType, "length": colItemLength,
		"description": colItemDesc, "sensitive": colItemSensitive,
	}
)

// china is Asia/Shanghai (UTC+8, no daylight saving), for dates people read.
var china = time.FixedZone("CST", 8*3600)

const dateLayout = "2006-01-02"

// WriteExcel writes resources as an .xlsx workbook of the exchange layout.
func WriteExcel(w io.Writer, rs []Resource) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", SheetResources); err != nil {
		return err
	}
	if _, err := f.NewSheet(SheetItems); err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	header := func(sheet string, cols []string) error {
		row := make([]any, len(cols))
		for i, c := range cols {
			row[i] = c
		}
		if err := f.SetSheetRow(sheet, "A1", &row); err != nil {
			return err
		}
		return f.SetRowStyle(sheet, 1, 1, bold)
	}
	if err := header(SheetResources, resourceCols); err != nil {
		return err
	}
	if err := header(SheetItems, itemCols); err != nil {
		return err
	}
	ir := 2
	for i, r := range rs {
		published := ""
		if r.PublishedAt != nil {
			published = r.PublishedAt.In(china).Format(dateLayout)
		}
		format := r.Format.Name().ZH
		if r.FormatDetail != "" {
			format += "/" + r.FormatDetail
		}
		row := []any{r.Code, r.Name, r.Provider, r.Summary, r.Classification.String(), format, r.ShareType.Name().ZH,
			r.ShareCondition, r.OpenType.Name().ZH, r.UpdateCycle.Name().ZH, published, r.Contact.Name, r.Contact.Phone}
		if err := f.SetSheetRow(SheetResources, cell(1, i+2), &row); err != nil {
			return err
		}
		for _, it := range r.Items {
			sensitive := "否"
			if it.Sensitive {
				sensitive = "是"
			}
			row := []any{r.Code, it.Name, it.Type.Name().ZH, it.Length, it.Description, sensitive, it.EnglishName}
			if err := f.SetSheetRow(SheetItems, cell(1, ir), &row); err != nil {
				return err
			}
			ir++
		}
	}
	for _, s := range []struct {
		sheet, from, to string
		width           float64
	}{{SheetResources, "A", "C", 24}, {SheetResources, "D", "D", 48}, {SheetResources, "E", "M", 18}, {SheetItems, "A", "G", 18}} {
		if err := f.SetColWidth(s.sheet, s.from, s.to, s.width); err != nil {
			return err
		}
	}
	return f.Write(w)
}

func cell(col, row int) string {
	c, _ := excelize.CoordinatesToCellName(col, row)
	return c
}

// sheetWhere locates a cell for people: "第2行第3列（资源提供方）", on the items sheet
// prefixed with its name.
func sheetWhere(sheet string, row, col int, header string) i18n.Text {
	return sheetProblem(sheet, row, col, header).Where
}

// sheetProblem is a Problem at a cell, without its error yet.
func sheetProblem(sheet string, row, col int, header string) Problem {
	order := [3]int{0, row, col}
	if sheet != SheetResources {
		order[0] = 1
	}
	return Problem{Where: sheetText(sheet, row, col, header), order: order}
}

func sheetText(sheet string, row, col int, header string) i18n.Text {
	zh, en := "", ""
	if sheet != SheetResources {
		zh, en = sheet+"表", "sheet "+sheet+", "
	}
	if col == 0 {
		return i18n.T(fmt.Sprintf("%s第%d行", zh, row), fmt.Sprintf("%srow %d", en, row))
	}
	return i18n.T(fmt.Sprintf("%s第%d行第%d列（%s）", zh, row, col, header), fmt.Sprintf("%srow %d column %d (%s)", en, row, col, header))
}

// sheet is one worksheet read with its header.
type sheet struct {
	name string
	rows [][]string
	col  map[string]int // header → 1-based column
}

func (s *sheet) get(row []string, header string) string {
	c := s.col[header]
	if c == 0 || c > len(row) {
		return ""
	}
	return strings.TrimSpace(row[c-1])
}

func readSheet(f *excelize.File, name string, want []string, optional map[string]bool) (*sheet, Problems, error) {
	rows, err := f.GetRows(name)
	if err != nil {
		return nil, nil, err
	}
	s := &sheet{name: name, rows: rows, col: map[string]int{}}
	if len(rows) > 0 {
		for i, h := range rows[0] {
			h = strings.TrimSpace(strings.Trim(strings.TrimSpace(h), "*＊"))
			if _, dup := s.col[h]; !dup && h != "" {
				s.col[h] = i + 1
			}
		}
	}
	var ps Problems
	for _, h := range want {
		if s.col[h] == 0 && !optional[h] {
			ps = append(ps, Problem{Where: sheetWhere(name, 1, 0, ""), Err: invalid("", "catalog.import.column",
				fmt.Sprintf("缺少列“%s”", h), fmt.Sprintf("column %q is missing", h))})
		}
	}
	return s, ps, nil
}

func emptyRow(row []string) bool {
	for _, c := range row {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// ParseExcel reads an .xlsx workbook of the exchange layout (see WriteExcel). Every cell is
// checked; the error lists every problem as "第N行第M列（列名）：…". 发布日期 is checked but not
// imported: a resource's publication date is set when it is approved here.
func ParseExcel(r io.Reader) (*Batch, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read Excel import: %w", err)
	}
	if len(data) > MaxImportBytes {
		return nil, tooLarge()
	}
	f, err := excelize.OpenReader(strings.NewReader(string(data)), excelize.Options{UnzipSizeLimit: 8 * MaxImportBytes})
	if err != nil {
		return nil, i18n.Errorf(http.StatusBadRequest, "catalog.import.xlsx", "文件不是有效的 Excel（.xlsx）工作簿",
			"the file is not a valid Excel (.xlsx) workbook").Wrap(err)
	}
	defer f.Close()
	resName := SheetResources
	if idx, _ := f.GetSheetIndex(resName); idx < 0 {
		resName = f.GetSheetList()[0]
	}
	res, ps, err := readSheet(f, resName, resourceCols, map[string]bool{colPublished: true})
	if err != nil {
		return nil, i18n.Errorf(http.StatusBadRequest, "catalog.import.xlsx", "无法读取工作表“%s”", "cannot read sheet %q", resName).Wrap(err)
	}
	var items *sheet
	if idx, _ := f.GetSheetIndex(SheetItems); idx >= 0 {
		var ips Problems
		if items, ips, err = readSheet(f, SheetItems, itemCols, optionalItemCols); err != nil {
			return nil, i18n.Errorf(http.StatusBadRequest, "catalog.import.xlsx", "无法读取工作表“%s”", "cannot read sheet %q", SheetItems).Wrap(err)
		}
		ps = append(ps, ips...)
	}
	if len(ps) > 0 {
		return nil, ps.importError()
	}

	p := &excelParser{res: res, items: items, bad: map[string]bool{}}
	p.readResources()
	if len(p.drafts) > MaxImportRecords {
		return nil, tooMany()
	}
	p.readItems()
	b := &Batch{Drafts: p.drafts, where: p.where}
	for i := range p.drafts {
		for _, e := range normalize(&p.drafts[i]) {
			if !p.bad[fmt.Sprintf("%d/%s", i, e.Field)] {
				p.problem(p.at(i, e.Field), e)
			}
		}
	}
	if len(p.ps) > 0 {
		slices.SortStableFunc(p.ps, func(a, b Problem) int { return slices.Compare(a.order[:], b.order[:]) })
		return nil, p.ps.importError()
	}
	return b, nil
}

type excelParser struct {
	res, items *sheet
	drafts     []Draft
	resRow     []int          // sheet row of each draft
	itemRows   [][]int        // sheet row of each draft's items
	byCode     map[string]int // draft index by code
	bad        map[string]bool
	ps         Problems
}

func (p *excelParser) problem(at Problem, e *i18n.Error) {
	at.Err = e
	p.ps = append(p.ps, at)
}

// cellError records a problem with a cell and marks the field so validation does not report
// it a second time.
func (p *excelParser) cellError(i int, field string, s *sheet, row int, header string, e *i18n.Error) {
	p.bad[fmt.Sprintf("%d/%s", i, field)] = true
	p.problem(sheetProblem(s.name, row, s.col[header], header), e)
}

func (p *excelParser) where(i int, field string) i18n.Text { return p.at(i, field).Where }

func (p *excelParser) at(i int, field string) Problem {
	if i < 0 || i >= len(p.drafts) {
		return Problem{}
	}
	if rest, ok := strings.CutPrefix(field, "items["); ok {
		n, sub, _ := strings.Cut(rest, "].")
		k, err := strconv.Atoi(n)
		if err == nil && k >= 0 && k < len(p.itemRows[i]) && p.items != nil {
			h := itemField[sub]
			return sheetProblem(p.items.name, p.itemRows[i][k], p.items.col[h], h)
		}
	}
	h, ok := resourceField[field]
	if !ok {
		h, ok = resourceField[strings.SplitN(field, ".", 2)[0]]
	}
	if !ok || field == "items" {
		return sheetProblem(p.res.name, p.resRow[i], 0, "")
	}
	return sheetProblem(p.res.name, p.resRow[i], p.res.col[h], h)
}

func (p *excelParser) readResources() {
	s := p.res
	p.byCode = map[string]int{}
	for ri := 1; ri < len(s.rows); ri++ {
		row, n := s.rows[ri], ri+1
		if emptyRow(row) {
			continue
		}
		i := len(p.drafts)
		if i >= MaxImportRecords {
			p.drafts = append(p.drafts, Draft{})
			return
		}
		d := Draft{
			Code: s.get(row, colCode), Name: s.get(row, colName), Provider: s.get(row, colProvider),
			Summary: s.get(row, colSummary), ShareCondition: s.get(row, colShareCond),
			Contact: Contact{Name: s.get(row, colContact), Phone: s.get(row, colContactPhone)},
		}
		fail := func(field, header string, e *i18n.Error) { p.cellError(i, field, s, n, header, e) }
		cls, err := parseClassCell(s.get(row, colClass), d.Code)
		if err != nil {
			fail("classification", colClass, err)
		}
		d.Classification = cls
		if v := s.get(row, colFormat); v != "" {
			kind, detail, _ := strings.Cut(v, "/")
			if d.Format, err = parseLabel(formats, strings.TrimSpace(kind), "format", colFormat); err != nil {
				fail("format", colFormat, err)
			}
			d.FormatDetail = strings.TrimSpace(detail)
		}
		if v := s.get(row, colShareType); v != "" {
			if d.ShareType, err = parseLabel(shareTypes, v, "share_type", colShareType); err != nil {
				fail("share_type", colShareType, err)
			}
		}
		if v := s.get(row, colOpenType); v != "" {
			if d.OpenType, err = parseLabel(openTypes, v, "open_type", colOpenType); err != nil {
				fail("open_type", colOpenType, err)
			}
		}
		if v := s.get(row, colCycle); v != "" {
			if d.UpdateCycle, err = parseLabel(cycles, v, "update_cycle", colCycle); err != nil {
				fail("update_cycle", colCycle, err)
			}
		}
		if v := s.get(row, colPublished); v != "" {
			if _, perr := time.ParseInLocation(dateLayout, v, china); perr != nil {
				fail("published_at", colPublished, invalid("published_at", "catalog.import.date",
					"发布日期须为 YYYY-MM-DD 格式的日期", "the publication date must be a date as YYYY-MM-DD"))
			}
		}
		if d.Code != "" {
			if j, dup := p.byCode[d.Code]; dup {
				fail("code", colCode, invalid("code", "catalog.import.duplicate_code",
					fmt.Sprintf("资源代码 %s 与第%d行重复", d.Code, p.resRow[j]), fmt.Sprintf("resource code %s repeats row %d", d.Code, p.resRow[j])))
			} else {
				p.byCode[d.Code] = i
			}
		} else {
			// The items sheet is keyed by code: a workbook resource needs one.
			fail("code", colCode, invalid("code", "catalog.import.code_required",
				"Excel 导入须填写资源代码（信息项表按资源代码对应）", "an Excel import needs the resource code (the items sheet refers to it)"))
		}
		p.drafts = append(p.drafts, d)
		p.resRow = append(p.resRow, n)
		p.itemRows = append(p.itemRows, nil)
	}
}

func (p *excelParser) readItems() {
	s := p.items
	if s == nil {
		return
	}
	for ri := 1; ri < len(s.rows); ri++ {
		row, n := s.rows[ri], ri+1
		if emptyRow(row) {
			continue
		}
		code := s.get(row, colCode)
		i, ok := p.byCode[code]
		if !ok {
			p.problem(sheetProblem(s.name, n, s.col[colCode], colCode), invalid("code", "catalog.import.item_code",
				fmt.Sprintf("信息资源表中没有资源代码为“%s”的资源", code), fmt.Sprintf("no resource with code %q on the resource sheet", code)))
			continue
		}
		k := len(p.drafts[i].Items)
		field := func(f string) string { return fmt.Sprintf("items[%d].%s", k, f) }
		fail := func(f, header string, e *i18n.Error) { p.cellError(i, field(f), s, n, header, e) }
		it := DataItem{Name: s.get(row, colItemName), EnglishName: s.get(row, colItemEnglish), Description: s.get(row, colItemDesc)}
		var err *i18n.Error
		if v := s.get(row, colItemType); v != "" {
			if it.Type, err = parseItemType(v); err != nil {
				fail("type", colItemType, err)
			}
		}
		if v := s.get(row, colItemLength); v != "" {
			l, perr := strconv.Atoi(v)
			if perr != nil || l < 0 {
				fail("length", colItemLength, invalid("length", "catalog.item_length.invalid", "长度须为非负整数", "the length must be a non-negative integer"))
			}
			it.Length = l
		}
		switch v := s.get(row, colItemSensitive); v {
		case "", "否", "N", "n", "no", "false", "0":
		case "是", "Y", "y", "yes", "true", "1":
			it.Sensitive = true
		default:
			fail("sensitive", colItemSensitive, invalid("sensitive", "catalog.import.bool", "是否敏感须填“是”或“否”", "sensitive must be 是 (yes) or 否 (no)"))
		}
		if k >= MaxItems {
			continue // normalize reports the count
		}
		p.drafts[i].Items = append(p.drafts[i].Items, it)
		p.itemRows[i] = append(p.itemRows[i], n)
	}
}

// parseLabel reads an enumerated cell: its Chinese name, English name or code.
func parseLabel[T comparable](ls []label[T], v, field, header string) (T, *i18n.Error) {
	for _, l := range ls {
		if v == l.Name.ZH || strings.EqualFold(v, l.Name.EN) || v == fmt.Sprint(l.Code) {
			return l.Code, nil
		}
	}
	var zero T
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name.ZH
	}
	return zero, invalid(field, "catalog.import.value", fmt.Sprintf("“%s”不是有效的%s，应为：%s", v, header, strings.Join(names, "、")),
		fmt.Sprintf("%q is not a valid %s; expected one of: %s", v, header, strings.Join(names, ", ")))
}

// parseItemType reads 字符型, C, 字符型C or 字符型(C).
func parseItemType(v string) (ItemType, *i18n.Error) {
	v = strings.NewReplacer("（", "(", "）", ")", " ", "").Replace(v)
	for _, l := range itemTypes {
		code := string(l.Code)
		if strings.EqualFold(v, code) || v == l.Name.ZH || v == l.Name.ZH+code || v == l.Name.ZH+"("+code+")" || strings.EqualFold(v, l.Name.EN) {
			return l.Code, nil
		}
	}
	return "", invalid("type", "catalog.item_type.invalid", fmt.Sprintf("“%s”不是有效的数据类型，应为字符型C、数值型N、日期型D、日期时间型T、布尔型B或二进制BY", v),
		fmt.Sprintf("%q is not a valid data type: C, N, D, T, B or BY", v))
}

// parseClassCell reads 资源分类 as written by Classification.String ("101001 基础信息资源/人口"):
// the leading digits are the classification code; a theme after "/" is kept for the
// departmental class. An empty cell takes the classification from the resource code.
func parseClassCell(v, code string) (Classification, *i18n.Error) {
	if v == "" {
		if code == "" {
			return Classification{}, invalid("classification", "catalog.field.required", "资源分类不能为空", "the classification is required")
		}
		c, _, _ := ParseCode(code) // a bad code is reported on its own cell
		return c, nil
	}
	digits := v
	if i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = v[:i]
	}
	c, err := ParsePrefix(digits)
	if err != nil {
		e, _ := i18n.As(err)
		return c, e
	}
	if _, theme, ok := strings.Cut(v, "/"); ok && c.Class == ClassDepartment {
		c.Theme = strings.TrimSpace(theme)
	}
	return c, nil
}

package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Format is the file format of a Source.
type Format string

const (
	CSV  Format = "csv"
	XLSX Format = "xlsx"
	JSON Format = "json"
)

// Source is one file to load.
type Source struct {
	Name   string    // file name, shown in the version history; its extension gives Format when unset
	Format Format    // csv, xlsx or json; "" = from Name
	Reader io.Reader // read once, front to back
	Size   int64     // total bytes when known (for progress); 0 = unknown
	// Encoding of a CSV file: "" detects (UTF-8 with or without BOM, otherwise GB18030, the
	// superset of GBK and GB2312 that Chinese Excel writes), or "utf-8", "gbk", "gb18030".
	Encoding string
	Comma    rune   // CSV field separator; 0 = ','
	Sheet    string // XLSX sheet; "" = the first
}

// Errors that fail a whole load (not one row).
var (
	ErrFormat = i18n.New("dataset.format", "不支持的文件格式，请使用 CSV、Excel (.xlsx) 或 JSON", "unsupported file format: use CSV, Excel (.xlsx) or JSON")
	ErrHeader = i18n.New("dataset.header", "表头与数据集模式不符", "the header does not match the dataset schema")
	// ErrMalformed: the file cannot be read on (JSON syntax, a broken spreadsheet, a line too long).
	ErrMalformed = i18n.New("dataset.malformed", "文件格式错误，无法继续读取", "the file is malformed and cannot be read further")
)

// MaxLineBytes bounds one CSV line, so that a file without line breaks cannot make the
// loader hold it whole.
const MaxLineBytes = 16 << 20

// record is one data row read from a source: the cells in schema column order ("" where the
// source has none), or, when err is set, a fault of the record as a whole.
type record struct {
	line  int64
	cells []string
	// issues found while reading (a JSON value that is not a scalar …), by schema column
	issues []Issue
	err    *i18n.Error
}

// records reads the data rows of a source. next returns io.EOF at the end; any other error
// stops the load.
type records interface {
	next() (record, error)
	// header reports what the header said: source columns not in the schema, schema columns
	// not in the source.
	header() (unknown, missing []string)
	close() error
}

// counter counts the bytes read from the source, for progress, and — for CSV — refuses lines
// longer than MaxLineBytes.
type counter struct {
	r       io.Reader
	n       int64
	sinceNL int64
	maxLine int64
	tooLong bool
}

var errLineTooLong = errors.New("line too long")

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.maxLine > 0 && n > 0 {
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			c.sinceNL = int64(n - i - 1)
		} else {
			c.sinceNL += int64(n)
		}
		if c.sinceNL > c.maxLine {
			c.tooLong = true
			return n, errLineTooLong
		}
	}
	return n, err
}

func formatOf(src Source) (Format, error) {
	f := Format(strings.ToLower(string(src.Format)))
	if f == "" {
		switch strings.ToLower(filepath.Ext(src.Name)) {
		case ".csv", ".txt":
			f = CSV
		case ".xlsx", ".xlsm":
			f = XLSX
		case ".json":
			f = JSON
		}
	}
	switch f {
	case CSV, XLSX, JSON:
		return f, nil
	}
	return "", ErrFormat
}

// headerMap maps the source's header cells to schema columns: cols[i] is the schema index of
// source column i, or -1.
func headerMap(s Schema, head []string) (cols []int, unknown, missing []string, err error) {
	cols = make([]int, len(head))
	seen := make([]bool, len(s.Columns))
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
		j := s.column(h)
		cols[i] = j
		switch {
		case j >= 0 && seen[j]:
			return nil, nil, nil, issue(ErrHeader, "表头列“%s”出现了两次", "header column %q appears twice", clip(h))
		case j >= 0:
			seen[j] = true
		case h != "":
			unknown = append(unknown, clip(h))
		}
	}
	var missingRequired []string
	for j, c := range s.Columns {
		if !seen[j] {
			missing = append(missing, c.Name)
			if c.Required || c.Name == s.Key {
				missingRequired = append(missingRequired, c.Name)
			}
		}
	}
	if len(missingRequired) > 0 {
		l := strings.Join(missingRequired, "、")
		return nil, nil, nil, issue(ErrHeader, "表头缺少必填列：%s", "the header lacks required columns: %s", l)
	}
	return cols, unknown, missing, nil
}

// ---- CSV ----

type csvRecords struct {
	r                *csv.Reader
	cnt              *counter
	cols             []int
	ncols            int
	unknown, missing []string
}

func openCSV(s Schema, src Source, cnt *counter) (records, error) {
	cnt.maxLine = MaxLineBytes
	br := bufio.NewReaderSize(cnt, 64<<10)
	var text io.Reader = br
	enc := strings.ToLower(strings.ReplaceAll(src.Encoding, "-", ""))
	switch enc {
	case "", "utf8":
		peek, err := br.Peek(64 << 10)
		if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, readErr(err)
		}
		switch {
		case bytes.HasPrefix(peek, []byte{0xEF, 0xBB, 0xBF}):
			_, _ = br.Discard(3)
		case bytes.HasPrefix(peek, []byte{0xFF, 0xFE}), bytes.HasPrefix(peek, []byte{0xFE, 0xFF}):
			return nil, issue(ErrFormat, "不支持 UTF-16 编码的文本，请另存为“CSV UTF-8”", "UTF-16 text is not supported: save as \"CSV UTF-8\"")
		case enc == "" && !validUTF8Prefix(peek, err == nil):
			text = transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder())
		}
	case "gbk", "gb2312", "gb18030":
		text = transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder())
	default:
		return nil, issue(ErrFormat, "不支持的文本编码“%s”（可用 UTF-8、GBK、GB18030）", "unsupported text encoding %q (use UTF-8, GBK or GB18030)", clip(src.Encoding))
	}
	r := csv.NewReader(text)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	if src.Comma != 0 {
		r.Comma = src.Comma
	}
	c := &csvRecords{r: r, cnt: cnt, ncols: len(s.Columns)}
	for {
		head, err := r.Read()
		if err == io.EOF {
			return nil, issue(ErrHeader, "文件为空，没有表头", "the file is empty: no header row")
		}
		if err != nil {
			return nil, c.fatal(err)
		}
		if len(head) == 1 && strings.TrimSpace(head[0]) == "" {
			continue
		}
		c.cols, c.unknown, c.missing, err = headerMap(s, head)
		return c, err
	}
}

// validUTF8Prefix reports whether p is UTF-8, allowing a rune cut at the end when more follows.
func validUTF8Prefix(p []byte, more bool) bool {
	if utf8.Valid(p) {
		return true
	}
	if !more {
		return false
	}
	for k := 1; k <= 3 && k < len(p); k++ {
		if utf8.Valid(p[:len(p)-k]) {
			return true
		}
	}
	return false
}

func (c *csvRecords) fatal(err error) error {
	if c.cnt.tooLong {
		return issue(ErrMalformed, "文件中有一行超过 %d MiB（是否不是 CSV 文件？）", "a line of the file is longer than %d MiB (is it really CSV?)", MaxLineBytes>>20)
	}
	return readErr(err)
}

func (c *csvRecords) header() ([]string, []string) { return c.unknown, c.missing }
func (c *csvRecords) close() error                 { return nil }

func (c *csvRecords) next() (record, error) {
	fields, err := c.r.Read()
	if err == io.EOF {
		return record{}, io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) && (errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote)) {
		return record{line: int64(pe.StartLine), err: issue(ErrRecord, "CSV 引号使用错误（第%d行第%d列附近）", "misplaced quote in CSV (near line %d, column %d)", pe.Line, pe.Column)}, nil
	}
	if err != nil {
		return record{}, c.fatal(err)
	}
	line, _ := c.r.FieldPos(0)
	if len(fields) != len(c.cols) {
		if len(fields) == 1 && strings.TrimSpace(fields[0]) == "" {
			return c.next() // a line of spaces
		}
		return record{line: int64(line), err: issue(ErrRecord, "该行有%d个字段，表头有%d个", "the row has %d fields, the header has %d", len(fields), len(c.cols))}, nil
	}
	cells := make([]string, c.ncols)
	for i, f := range fields {
		if j := c.cols[i]; j >= 0 {
			cells[j] = f
		}
	}
	return record{line: int64(line), cells: cells}, nil
}

func readErr(err error) error {
	return (&i18n.Error{Code: "dataset.read", Status: 400, Msg: i18n.T("读取文件失败", "reading the file failed")}).Wrap(err)
}

// ---- JSON ----

// lineTracker remembers where the newlines are in what has been read, so that a byte offset
// reported by the JSON decoder (which reads ahead) can be turned into a line number. Offsets
// are asked in increasing order, so only the newlines of the read-ahead are kept.
type lineTracker struct {
	r    io.Reader
	pos  int64
	nl   []int64
	line int64
}

func (t *lineTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for i := 0; i < n; {
		k := bytes.IndexByte(p[i:n], '\n')
		if k < 0 {
			break
		}
		t.nl = append(t.nl, t.pos+int64(i+k))
		i += k + 1
	}
	t.pos += int64(n)
	return n, err
}

// lineAt is the 1-based line of byte offset off.
func (t *lineTracker) lineAt(off int64) int64 {
	k := 0
	for k < len(t.nl) && t.nl[k] < off {
		k++
	}
	t.line += int64(k)
	if k > 0 {
		t.nl = append(t.nl[:0], t.nl[k:]...)
	}
	return t.line + 1
}

type jsonRecords struct {
	dec     *json.Decoder
	lines   *lineTracker
	s       Schema
	n       int // objects read
	unknown map[string]bool
	done    bool
}

const maxUnknownReported = 50

func openJSON(s Schema, cnt *counter) (records, error) {
	lt := &lineTracker{r: cnt}
	j := &jsonRecords{dec: json.NewDecoder(lt), lines: lt, s: s, unknown: map[string]bool{}}
	j.dec.UseNumber()
	tok, err := j.dec.Token()
	if err != nil {
		return nil, j.fatal(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, issue(ErrFormat, "JSON 文件的顶层应为对象数组 [ {...}, {...} ]", "a JSON file must hold an array of objects at the top: [ {...}, {...} ]")
	}
	return j, nil
}

func (j *jsonRecords) fatal(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return issue(ErrMalformed, "JSON 语法错误（第%d行）：%s", "JSON syntax error (line %d): %s", j.lines.lineAt(se.Offset), se.Error())
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return issue(ErrMalformed, "JSON 文件意外结束（数组未闭合）", "the JSON file ends early (the array is not closed)")
	}
	return readErr(err)
}

func (j *jsonRecords) header() (unknown, missing []string) {
	for k := range j.unknown {
		unknown = append(unknown, k)
	}
	return unknown, nil
}

func (j *jsonRecords) close() error { return nil }

func (j *jsonRecords) next() (record, error) {
	if j.done {
		return record{}, io.EOF
	}
	if !j.dec.More() {
		if _, err := j.dec.Token(); err != nil { // the closing ]
			return record{}, j.fatal(err)
		}
		if _, err := j.dec.Token(); err != io.EOF {
			if err == nil {
				return record{}, issue(ErrMalformed, "JSON 数组之后还有多余内容", "there is more content after the JSON array")
			}
			return record{}, j.fatal(err)
		}
		j.done = true
		return record{}, io.EOF
	}
	j.n++
	tok, err := j.dec.Token()
	if err != nil {
		return record{}, j.fatal(err)
	}
	line := j.lines.lineAt(j.dec.InputOffset() - 1)
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if ok {
			if err := j.skip(); err != nil {
				return record{}, err
			}
		}
		return record{line: line, err: issue(ErrRecord, "数组第%d个元素不是对象", "array element %d is not an object", j.n)}, nil
	}
	rec := record{line: line, cells: make([]string, len(j.s.Columns))}
	for j.dec.More() {
		kt, err := j.dec.Token()
		if err != nil {
			return record{}, j.fatal(err)
		}
		key, _ := kt.(string)
		col := j.s.column(key)
		vt, err := j.dec.Token()
		if err != nil {
			return record{}, j.fatal(err)
		}
		var v string
		switch x := vt.(type) {
		case string:
			v = x
		case json.Number:
			v = x.String()
		case bool:
			v = fmt.Sprint(x)
		case nil:
		case json.Delim:
			if err := j.skip(); err != nil {
				return record{}, err
			}
			if col >= 0 {
				rec.issues = append(rec.issues, Issue{Column: key, Err: issue(ErrType, "值应为文本、数字或布尔值，不能是对象或数组", "value must be text, a number or a boolean, not an object or array")})
			}
			continue
		}
		if col < 0 {
			if len(j.unknown) < maxUnknownReported {
				j.unknown[clip(key)] = true
			}
			continue
		}
		rec.cells[col] = v
	}
	if _, err := j.dec.Token(); err != nil { // the closing }
		return record{}, j.fatal(err)
	}
	return rec, nil
}

// skip consumes the rest of an object or array whose opening delimiter was just read.
func (j *jsonRecords) skip() error {
	for depth := 1; depth > 0; {
		tok, err := j.dec.Token()
		if err != nil {
			return j.fatal(err)
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '[' || d == '{' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// ---- XLSX ----

type xlsxRecords struct {
	f                *excelize.File
	rows             *excelize.Rows
	tmp              string
	cols             []int
	ncols            int
	line             int64
	unknown, missing []string
}

// openXLSX opens the spreadsheet. A .xlsx file is a zip archive, which needs random access,
// so a Reader that is not a file is first copied to a temporary file; excelize then streams
// the sheet XML (through its own temporary file beyond 16 MiB) rather than loading it.
func openXLSX(s Schema, src Source, cnt *counter) (_ records, err error) {
	x := &xlsxRecords{ncols: len(s.Columns)}
	path := ""
	if f, ok := src.Reader.(*os.File); ok && f.Name() != "" {
		if _, err := f.Stat(); err == nil {
			path = f.Name()
		}
	}
	if path == "" {
		tmp, err := os.CreateTemp("", "dgov-dataset-*.xlsx")
		if err != nil {
			return nil, fmt.Errorf("spool spreadsheet: %w", err)
		}
		x.tmp = tmp.Name()
		_, err = io.Copy(tmp, cnt)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			x.close()
			return nil, readErr(err)
		}
		path = x.tmp
	}
	defer func() {
		if err != nil {
			x.close()
		}
	}()
	x.f, err = excelize.OpenFile(path)
	if err != nil {
		return nil, issue(ErrMalformed, "无法打开 Excel 文件（需为 .xlsx 格式）", "cannot open the Excel file (it must be .xlsx)").Wrap(err)
	}
	sheet := src.Sheet
	if sheet == "" {
		list := x.f.GetSheetList()
		if len(list) == 0 {
			return nil, issue(ErrMalformed, "Excel 文件中没有工作表", "the Excel file has no sheets")
		}
		sheet = list[0]
	}
	x.rows, err = x.f.Rows(sheet)
	if err != nil {
		return nil, issue(ErrHeader, "Excel 文件中没有名为“%s”的工作表", "the Excel file has no sheet named %q", clip(sheet)).Wrap(err)
	}
	for {
		head, err := x.row()
		if err == io.EOF {
			return nil, issue(ErrHeader, "工作表为空，没有表头", "the sheet is empty: no header row")
		}
		if err != nil {
			return nil, err
		}
		if blank(head) {
			continue
		}
		x.cols, x.unknown, x.missing, err = headerMap(s, head)
		return x, err
	}
}

func (x *xlsxRecords) row() ([]string, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, issue(ErrMalformed, "读取 Excel 工作表失败", "reading the Excel sheet failed").Wrap(err)
		}
		return nil, io.EOF
	}
	x.line++ // Next steps through every row number, gaps included
	cells, err := x.rows.Columns(excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, issue(ErrMalformed, "读取 Excel 第%d行失败", "reading Excel row %d failed", x.line).Wrap(err)
	}
	return cells, nil
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func (x *xlsxRecords) header() ([]string, []string) { return x.unknown, x.missing }

func (x *xlsxRecords) next() (record, error) {
	for {
		cells, err := x.row()
		if err != nil {
			return record{}, err
		}
		if blank(cells) {
			continue
		}
		rec := record{line: x.line, cells: make([]string, x.ncols)}
		for i, v := range cells {
			if i >= len(x.cols) {
				if strings.TrimSpace(v) != "" {
					return record{line: x.line, err: issue(ErrRecord, "第%d列有值，但表头只有%d列", "column %d has a value but the header has only %d columns", i+1, len(x.cols))}, nil
				}
				continue
			}
			if j := x.cols[i]; j >= 0 {
				rec.cells[j] = v
			}
		}
		return rec, nil
	}
}

func (x *xlsxRecords) close() error {
	var errs []error
	if x.rows != nil {
		errs = append(errs, x.rows.Close())
	}
	if x.f != nil {
		errs = append(errs, x.f.Close())
	}
	if x.tmp != "" {
		errs = append(errs, os.Remove(x.tmp))
	}
	return errors.Join(errs...)
}

// open starts reading src as format f.
func open(s Schema, f Format, src Source, cnt *counter) (records, error) {
	switch f {
	case CSV:
		return openCSV(s, src, cnt)
	case JSON:
		return openJSON(s, cnt)
	case XLSX:
		return openXLSX(s, src, cnt)
	}
	return nil, ErrFormat
}

package dataset_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

var t0 = time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)

func date(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// Residents of the tests; valid numbers from ids.MakeResident.
var (
	zhang = ids.MakeResident("140105", date(1985, 6, 15), 123, true)
	li    = ids.MakeResident("140106", date(1992, 11, 3), 46, false)
	wang  = ids.MakeResident("140202", date(1960, 1, 30), 311, true)
	zhao  = ids.MakeResident("140802", date(2001, 2, 28), 998, false)
	// badCheck is zhang with a wrong check digit.
	badCheck = zhang[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", zhang[17])+1)%11])
)

// subsidy is the test schema: a 低保 (minimum living allowance) roll keyed by ID number.
var subsidy = dataset.Schema{
	Key: "身份证号",
	Columns: []dataset.Column{
		{Name: "身份证号", Type: dataset.ResidentID, Sensitive: true},
		{Name: "姓名", Type: dataset.String, Required: true, MaxLength: 20},
		{Name: "手机", Type: dataset.Mobile, Sensitive: true},
		{Name: "区划", Type: dataset.Division, Required: true},
		{Name: "人数", Type: dataset.Integer},
		{Name: "月补助", Type: dataset.Fen},
		{Name: "认定日期", Type: dataset.Date},
		{Name: "有效", Type: dataset.Boolean},
		{Name: "地址", Type: dataset.String},
	},
}

type fixture struct {
	ctx context.Context
	d   *db.DB
	svc *dataset.Service
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{ctx: ctx, d: d, svc: dataset.New(d, k.FieldCipher(), dataset.Options{Now: func() time.Time { return t0 }})}
}

func each(t *testing.T, fn func(t *testing.T, f *fixture)) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) { fn(t, newFixture(t, d)) }, crypto.Migrations, dataset.Migrations)
}

// The CSV of the tests. Line numbers matter: the expected rejects name them.
var subsidyCSV = strings.Join([]string{
	/* 1 */ "身份证号,姓名,手机,区划,人数,月补助,认定日期,有效,地址,备注",
	/* 2 */ zhang + ",张伟,138-1234-5678,140105,3,\"1,250.50\",2024/3/1,是,坞城路92号,",
	/* 3 */ badCheck + ",张冒,,140105,1,100,2024-03-01,否,,",
	/* 4 */ li + ",,,140106,2,200,2024-03-01,是,,",
	/* 5 */ zhang + ",张伟二,,140105,1,100,2024-03-01,是,,",
	/* 6 */ wang + ",王建国,,140202,三,100,2024-03-01,是,,",
	/* 7 */ li + ",李娜,13912345678,140106,2,200,20240301,true,\"迎泽区",
	/* 8 */ "桥东街1号\",多行地址",
	/* 9 */ zhao + ",赵敏,,140802,1,￥99.9,2024年3月5日,0,,",
	/* 10 */ "140105,太短,,140105,1,1,2024-13-01,maybe,,",
	/* 11 */ zhao + ",赵敏二,,140802,4,,,,,",
}, "\r\n") + "\r\n"

type wantReject struct {
	line   int64
	column string
	code   string
	zh     string // part of the Chinese reason
}

func checkRejects(t *testing.T, got []dataset.Reject, want []wantReject) {
	t.Helper()
	if len(got) != len(want) {
		for _, r := range got {
			t.Logf("reject: %+v", r)
		}
		t.Fatalf("%d rejects, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || g.Column != w.column || g.Code != w.code || !strings.Contains(g.Reason.ZH, w.zh) || g.Reason.EN == "" {
			t.Errorf("reject %d: got %+v, want %+v", i, g, w)
		}
	}
}

var subsidyRejects = []wantReject{
	{3, "身份证号", "ids.resident.checksum", "校验位"},
	{4, "姓名", "dataset.required", "必填"},
	{5, "身份证号", "dataset.duplicate", "第2行"},
	{6, "人数", "dataset.type", "不是整数"},
	{10, "身份证号", "ids.resident.length", "18位"},
	{10, "认定日期", "dataset.type", "日期"},
	{10, "有效", "dataset.type", "布尔"},
	{11, "身份证号", "dataset.duplicate", "第9行"},
}

func TestLoadCSV(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		var progress []dataset.Progress
		res, err := f.svc.Load(f.ctx, "subsidy", subsidy, dataset.Source{Name: "低保.csv", Reader: strings.NewReader(subsidyCSV), Size: int64(len(subsidyCSV))},
			dataset.LoadOptions{BatchSize: 2, Progress: func(p dataset.Progress) { progress = append(progress, p) }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != dataset.Active || res.Version != 1 || res.RowsOK != 3 || res.RowsRejected != 6 || res.Bytes != int64(len(subsidyCSV)) {
			t.Errorf("result %+v", res)
		}
		if fmt.Sprint(res.UnknownColumns) != "[备注]" || len(res.MissingColumns) != 0 {
			t.Errorf("header report: unknown %v missing %v", res.UnknownColumns, res.MissingColumns)
		}
		// Batches of 2 rows: progress after each, the last with everything.
		if len(progress) < 2 {
			t.Fatalf("progress called %d times", len(progress))
		}
		last := progress[len(progress)-1]
		if last.Rows != 9 || last.Rejected != 6 || last.Bytes != int64(len(subsidyCSV)) || last.TotalBytes != int64(len(subsidyCSV)) {
			t.Errorf("last progress %+v", last)
		}
		rej, err := f.svc.Rejects(f.ctx, "subsidy", 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkRejects(t, rej, subsidyRejects)

		// Lookup by the sensitive key, in another spelling of the same number.
		r, err := f.svc.Lookup(f.ctx, "subsidy", " "+strings.ToLower(li)+" ")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"身份证号": li, "姓名": "李娜", "手机": "13912345678", "区划": "140106", "人数": "2",
			"月补助": "20000", "认定日期": "2024-03-01", "有效": "true", "地址": "迎泽区\n桥东街1号"}
		if fmt.Sprint(r.Values) != fmt.Sprint(want) || r.No != 2 || r.Line != 7 {
			t.Errorf("lookup li: %+v\nwant values %v", r, want)
		}
		if r, err := f.svc.Lookup(f.ctx, "subsidy", zhang); err != nil || r.Values["月补助"] != "125050" || r.Values["手机"] != "13812345678" || r.Values["有效"] != "true" {
			t.Errorf("lookup zhang: %+v %v", r, err)
		}
		if r, err := f.svc.Lookup(f.ctx, "subsidy", zhao); err != nil || r.Values["月补助"] != "9990" || r.Values["认定日期"] != "2024-03-05" || r.Line != 9 {
			t.Errorf("lookup zhao: %+v %v", r, err)
		}
		if _, err := f.svc.Lookup(f.ctx, "subsidy", wang); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("lookup rejected wang: %v", err)
		}
		if _, err := f.svc.Lookup(f.ctx, "subsidy", badCheck); !errors.Is(err, ids.ErrResidentChecksum) {
			t.Errorf("lookup malformed key: %v", err)
		}

		// Query: exact match on plain columns, normalised like the data; sensitive masked.
		rows, err := f.svc.Query(f.ctx, "subsidy", map[string]string{"认定日期": "2024-3-1"}, 0, 0)
		if err != nil || len(rows) != 2 || rows[0].Values["姓名"] != "张伟" || rows[1].Values["姓名"] != "李娜" {
			t.Fatalf("query by date: %+v %v", rows, err)
		}
		if got := rows[0].Values["身份证号"]; got != ids.MaskResident(zhang) || rows[0].Values["手机"] != "138****5678" {
			t.Errorf("query does not mask: %v", rows[0].Values)
		}
		if rows, err := f.svc.Query(f.ctx, "subsidy", map[string]string{"区划": "140106", "有效": "是"}, 10, 0); err != nil || len(rows) != 1 || rows[0].Line != 7 {
			t.Errorf("query two columns: %+v %v", rows, err)
		}
		if rows, err := f.svc.Query(f.ctx, "subsidy", map[string]string{"地址": ""}, 10, 0); err != nil || len(rows) != 1 || rows[0].Values["姓名"] != "赵敏" {
			t.Errorf("query empty: %+v %v", rows, err)
		}
		if rows, err := f.svc.Query(f.ctx, "subsidy", nil, 2, 1); err != nil || len(rows) != 2 || rows[0].No != 2 {
			t.Errorf("page: %+v %v", rows, err)
		}
		if _, err := f.svc.Query(f.ctx, "subsidy", map[string]string{"手机": "13912345678"}, 0, 0); !errors.Is(err, dataset.ErrFilter) {
			t.Errorf("filter on sensitive column: %v", err)
		}
		if _, err := f.svc.Query(f.ctx, "subsidy", map[string]string{"年龄": "3"}, 0, 0); !errors.Is(err, dataset.ErrFilter) {
			t.Errorf("filter on unknown column: %v", err)
		}
		if _, err := f.svc.Query(f.ctx, "subsidy", map[string]string{"人数": "x"}, 0, 0); !errors.Is(err, dataset.ErrType) {
			t.Errorf("filter with a bad value: %v", err)
		}

		// At rest: no plaintext of a sensitive value, anywhere in the row.
		q, err := f.d.Query(f.ctx, `SELECT key_idx, data FROM dataset_rows`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for q.Next() {
			var k, data string
			if err := q.Scan(&k, &data); err != nil {
				t.Fatal(err)
			}
			n++
			for _, s := range []string{zhang, li, zhao, strings.ToLower(li), "13912345678", "1234-5678", "12345678", zhang[6:14]} {
				if strings.Contains(k, s) || strings.Contains(data, s) {
					t.Errorf("row stores %q in clear: %s %s", s, k, data)
				}
			}
			if !strings.Contains(data, "区划") {
				t.Errorf("plain columns should be readable: %s", data)
			}
		}
		q.Close()
		if n != 3 {
			t.Errorf("%d stored rows", n)
		}
		v, err := f.svc.Active(f.ctx, "subsidy")
		if err != nil || v.Version != 1 || v.RowsOK != 3 || v.RowsRejected != 6 || v.SourceName != "低保.csv" || v.Format != dataset.CSV || v.FinishedAt == nil {
			t.Errorf("active version %+v %v", v, err)
		}
	})
}

// gbk encodes s as GBK, as Excel on a Chinese Windows saves "CSV (逗号分隔)".
func gbk(t *testing.T, s string) []byte {
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadEncodings(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		for i, c := range []struct {
			name string
			data []byte
			enc  string
		}{
			{"gbk detected", gbk(t, subsidyCSV), ""},
			{"gbk declared", gbk(t, subsidyCSV), "GBK"},
			{"utf-8 with BOM", append([]byte("\uFEFF"), subsidyCSV...), ""},
			{"utf-8 declared", []byte(subsidyCSV), "utf-8"},
		} {
			res, err := f.svc.Load(f.ctx, "enc", subsidy, dataset.Source{Name: "x.csv", Reader: bytes.NewReader(c.data), Encoding: c.enc}, dataset.LoadOptions{})
			if err != nil || res.RowsOK != 3 || res.Version != i+1 {
				t.Fatalf("%s: %+v %v", c.name, res, err)
			}
			rej, _ := f.svc.Rejects(f.ctx, "enc", res.Version, 0)
			checkRejects(t, rej, subsidyRejects)
			if r, err := f.svc.Lookup(f.ctx, "enc", li); err != nil || r.Values["姓名"] != "李娜" || r.Values["地址"] != "迎泽区\n桥东街1号" {
				t.Errorf("%s: lookup %+v %v", c.name, r, err)
			}
		}
		// GBK read as UTF-8 on purpose: every Chinese cell is invalid text, so the header does not match.
		_, err := f.svc.Load(f.ctx, "enc", subsidy, dataset.Source{Name: "x.csv", Reader: bytes.NewReader(gbk(t, subsidyCSV)), Encoding: "utf-8"}, dataset.LoadOptions{})
		if !errors.Is(err, dataset.ErrHeader) {
			t.Errorf("wrong declared encoding: %v", err)
		}
		if v, _ := f.svc.Active(f.ctx, "enc"); v.Version != 4 {
			t.Errorf("active after a failed load: v%d", v.Version)
		}
	})
}

func xlsxFile(t *testing.T, rows [][]any) []byte {
	t.Helper()
	x := excelize.NewFile()
	defer x.Close()
	sw, err := x.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r == nil {
			continue // a gap in the sheet
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := x.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadXLSX(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		data := xlsxFile(t, [][]any{
			/* 1 */ {"身份证号", "姓名", "区划", "人数", "月补助", "认定日期", "有效"},
			/* 2 */ {zhang, "张伟", "140105", 3, 1250.5, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), true},
			/* 3 */ {badCheck, "张冒", 140105, 1, "100", "2024-03-01", false},
			/* 4 */ nil,
			/* 5 */ {li, "", "140106", 2, 200, "2024-03-01", "是"},
			/* 6 */ {zhang, "张伟二", "140105", 1, 100, "2024-03-01", "是"},
			/* 7 */ {wang, "王建国", "140202", "三", 100, "2024-03-01", "是"},
			/* 8 */ {zhao, "赵敏", "140802", 1, "￥99.9", 45356, 0, nil, "多余"},
		})
		res, err := f.svc.Load(f.ctx, "xlsx", subsidy, dataset.Source{Name: "低保.xlsx", Reader: bytes.NewReader(data)}, dataset.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.RowsOK != 1 || res.RowsRejected != 5 || fmt.Sprint(res.MissingColumns) != "[手机 地址]" {
			t.Errorf("result %+v", res)
		}
		rej, err := f.svc.Rejects(f.ctx, "xlsx", res.Version, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkRejects(t, rej, []wantReject{
			{3, "身份证号", "ids.resident.checksum", "校验位"},
			{5, "姓名", "dataset.required", "必填"},
			{6, "身份证号", "dataset.duplicate", "第2行"},
			{7, "人数", "dataset.type", "不是整数"},
			{8, "", "dataset.record", "第9列有值"},
		})
		r, err := f.svc.Lookup(f.ctx, "xlsx", zhang)
		if err != nil || r.Values["月补助"] != "125050" || r.Values["认定日期"] != "2024-03-01" || r.Values["有效"] != "true" || r.Values["人数"] != "3" {
			t.Errorf("lookup: %+v %v", r, err)
		}
		// A date cell given as a serial number, and a named sheet that does not exist.
		data = xlsxFile(t, [][]any{{"身份证号", "姓名", "区划", "认定日期"}, {zhao, "赵敏", "140802", 45356}})
		if res, err := f.svc.Load(f.ctx, "xlsx", subsidy, dataset.Source{Name: "b.xlsx", Reader: bytes.NewReader(data)}, dataset.LoadOptions{}); err != nil || res.RowsOK != 1 {
			t.Fatalf("serial date: %+v %v", res, err)
		}
		if r, err := f.svc.Lookup(f.ctx, "xlsx", zhao); err != nil || r.Values["认定日期"] != "2024-03-05" {
			t.Errorf("serial date: %+v %v", r, err)
		}
		_, err = f.svc.Load(f.ctx, "xlsx", subsidy, dataset.Source{Name: "b.xlsx", Reader: bytes.NewReader(data), Sheet: "不存在"}, dataset.LoadOptions{})
		if !errors.Is(err, dataset.ErrHeader) {
			t.Errorf("missing sheet: %v", err)
		}
		_, err = f.svc.Load(f.ctx, "xlsx", subsidy, dataset.Source{Name: "b.xlsx", Reader: strings.NewReader("not a zip")}, dataset.LoadOptions{})
		if !errors.Is(err, dataset.ErrMalformed) {
			t.Errorf("not a spreadsheet: %v", err)
		}
	})
}

const subsidyJSON = `[
  {"身份证号": "` + "ZHANG" + `", "姓名": "张伟", "区划": "140105", "人数": 3, "月补助": 1250.5, "有效": true},
  {"身份证号": "` + "BAD" + `", "姓名": "张冒", "区划": "140105"},
  {
    "身份证号": "` + "LI" + `",
    "区划": "140106"
  },
  {"身份证号": "` + "ZHANG" + `", "姓名": "张伟二", "区划": "140105"},
  {"身份证号": "` + "WANG" + `", "姓名": "王建国", "区划": "140202", "人数": 1.5},
  "not an object",
  {"身份证号": "` + "ZHAO" + `", "姓名": {"first": "敏"}, "区划": "140802"},
  {"身份证号": "` + "LI" + `", "姓名": "李娜", "区划": 140106, "手机": null, "别名": "娜娜"}
]`

func TestLoadJSON(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		data := strings.NewReplacer("ZHANG", zhang, "BAD", badCheck, "LI", li, "WANG", wang, "ZHAO", zhao).Replace(subsidyJSON)
		res, err := f.svc.Load(f.ctx, "json", subsidy, dataset.Source{Name: "低保.json", Reader: strings.NewReader(data)}, dataset.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.RowsOK != 2 || res.RowsRejected != 6 || fmt.Sprint(res.UnknownColumns) != "[别名]" {
			t.Errorf("result %+v", res)
		}
		rej, _ := f.svc.Rejects(f.ctx, "json", res.Version, 0)
		checkRejects(t, rej, []wantReject{
			{3, "身份证号", "ids.resident.checksum", "校验位"},
			{4, "姓名", "dataset.required", "必填"},
			{8, "身份证号", "dataset.duplicate", "第2行"},
			{9, "人数", "dataset.type", "不是整数"},
			{10, "", "dataset.record", "第6个元素不是对象"},
			{11, "姓名", "dataset.type", "不能是对象"},
		})
		if r, err := f.svc.Lookup(f.ctx, "json", li); err != nil || r.Line != 12 || r.Values["区划"] != "140106" {
			t.Errorf("lookup li: %+v %v", r, err)
		}
		if r, err := f.svc.Lookup(f.ctx, "json", zhang); err != nil || r.Values["月补助"] != "125050" || r.Values["有效"] != "true" {
			t.Errorf("lookup zhang: %+v %v", r, err)
		}
		for _, c := range []struct {
			data string
			want *i18n.Error
		}{
			{`{"a": 1}`, dataset.ErrFormat},
			{`[{"身份证号": "` + zhang + `", "姓名": "x", "区划": "140105"},` + "\n" + `{"姓名": }]`, dataset.ErrMalformed},
			{`[{"身份证号": "` + zhang + `", "姓名": "x", "区划": "140105"}`, dataset.ErrMalformed},
			{`[{"身份证号": "` + zhang + `", "姓名": "x", "区划": "140105"}] []`, dataset.ErrMalformed},
		} {
			_, err := f.svc.Load(f.ctx, "json", subsidy, dataset.Source{Name: "x.json", Reader: strings.NewReader(c.data)}, dataset.LoadOptions{})
			if !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %s", c.data, err, c.want.Code)
			}
		}
		if _, err := f.svc.Lookup(f.ctx, "json", li); err != nil {
			t.Errorf("after failed loads: %v", err)
		}
	})
}

// failingReader yields data, then fails.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// residentsCSV writes n valid rows (and every badEvery-th row with a bad ID) for the
// schema of the tests.
func residentsCSV(n, badEvery int) string {
	var b strings.Builder
	b.WriteString("身份证号,姓名,区划\n")
	for i := 0; i < n; i++ {
		id := ids.MakeResident("140105", date(1950+i%50, 1+i%12, 1+i%28), i%1000, i%2 == 0)
		if i >= 1000 {
			id = ids.MakeResident("140106", date(1950+i%50, 1+i%12, 1+i%28), i%1000, i%2 == 0)
		}
		if badEvery > 0 && i%badEvery == badEvery-1 {
			id = id[:17] + "Y"
		}
		fmt.Fprintf(&b, "%s,居民%d,140105\n", id, i)
	}
	return b.String()
}

func TestFailedLoadKeepsPrevious(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		if _, err := f.svc.Load(f.ctx, "roll", subsidy, dataset.Source{Name: "v1.csv", Reader: strings.NewReader(subsidyCSV)}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		stillV1 := func(what string) {
			t.Helper()
			v, err := f.svc.Active(f.ctx, "roll")
			if err != nil || v.Version != 1 {
				t.Fatalf("%s: active %+v %v", what, v, err)
			}
			if r, err := f.svc.Lookup(f.ctx, "roll", li); err != nil || r.Values["姓名"] != "李娜" {
				t.Errorf("%s: lookup %+v %v", what, r, err)
			}
			if rows, err := f.svc.Query(f.ctx, "roll", nil, 100, 0); err != nil || len(rows) != 3 {
				t.Errorf("%s: query %d %v", what, len(rows), err)
			}
		}
		failed := func(what string, version int, code string) {
			t.Helper()
			v, err := f.svc.Version(f.ctx, "roll", version)
			if err != nil || v.Status != dataset.Failed || v.ErrorCode != code || v.Error == nil || v.Error.ZH == "" || v.Error.EN == "" {
				t.Errorf("%s: version %+v %v", what, v, err)
			}
			var n int
			if err := f.d.QueryRow(f.ctx, `SELECT COUNT(*) FROM dataset_rows WHERE dataset_id = 'roll' AND version = ?`, version).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s: %d rows left (%v)", what, n, err)
			}
		}

		// 1. The reader fails after 3,000 rows had been written in batches of 1,000.
		big := residentsCSV(3500, 0)
		src := &failingReader{r: strings.NewReader(big), err: errors.New("connection reset by peer")}
		res, err := f.svc.Load(f.ctx, "roll", subsidy, dataset.Source{Name: "v2.csv", Reader: src}, dataset.LoadOptions{BatchSize: 1000})
		if e, ok := i18n.As(err); !ok || e.Code != "dataset.read" || res.Status != dataset.Failed || res.Version != 2 || res.RowsOK < 3000 {
			t.Fatalf("reader error: %+v %v", res, err)
		}
		stillV1("reader error")
		failed("reader error", 2, "dataset.read")

		// 2. Too many rejects: every 10th row is bad, at most 20 allowed.
		res, err = f.svc.Load(f.ctx, "roll", subsidy, dataset.Source{Name: "v3.csv", Reader: strings.NewReader(residentsCSV(3000, 10))}, dataset.LoadOptions{BatchSize: 500, MaxRejects: 20})
		if !errors.Is(err, dataset.ErrTooManyRejects) || res.RowsRejected != 21 {
			t.Fatalf("too many rejects: %+v %v", res, err)
		}
		if e, _ := i18n.As(err); !strings.Contains(e.Msg.ZH, "第211行") {
			t.Errorf("too many rejects names the line: %v", err)
		}
		stillV1("too many rejects")
		failed("too many rejects", 3, "dataset.too_many_rejects")
		if rej, _ := f.svc.Rejects(f.ctx, "roll", 3, 100); len(rej) != 21 || rej[0].Line != 11 || rej[20].Line != 211 {
			t.Errorf("rejects of the failed load: %d, first %+v", len(rej), rej)
		}

		// 3. Cancelled midway, from the progress callback.
		ctx, cancel := context.WithCancel(f.ctx)
		res, err = f.svc.Load(ctx, "roll", subsidy, dataset.Source{Name: "v4.csv", Reader: strings.NewReader(residentsCSV(5000, 0))},
			dataset.LoadOptions{BatchSize: 500, Progress: func(p dataset.Progress) {
				if p.Rows >= 1000 {
					cancel()
				}
			}})
		if !errors.Is(err, dataset.ErrCancelled) || res.Status != dataset.Failed {
			t.Fatalf("cancelled: %+v %v", res, err)
		}
		stillV1("cancelled")
		failed("cancelled", 4, "dataset.cancelled")

		// 4. A header without a required column, and a file without rows.
		_, err = f.svc.Load(f.ctx, "roll", subsidy, dataset.Source{Name: "v5.csv", Reader: strings.NewReader("身份证号,名字,区划\n" + zhang + ",张伟,140105\n")}, dataset.LoadOptions{})
		if e, ok := i18n.As(err); !ok || !errors.Is(err, dataset.ErrHeader) || !strings.Contains(e.Msg.ZH, "姓名") || !strings.Contains(e.Msg.EN, "姓名") {
			t.Errorf("missing column: %v", err)
		}
		_, err = f.svc.Load(f.ctx, "roll", subsidy, dataset.Source{Name: "v6.csv", Reader: strings.NewReader("身份证号,姓名,区划\n")}, dataset.LoadOptions{})
		if !errors.Is(err, dataset.ErrNoRows) {
			t.Errorf("no rows: %v", err)
		}
		stillV1("bad header")

		// 5. A good load replaces v1; then v1's rows go (keep 1 superseded), and old failures too.
		res, err = f.svc.Load(f.ctx, "roll", subsidy, dataset.Source{Name: "v7.csv", Reader: strings.NewReader(residentsCSV(2500, 0))}, dataset.LoadOptions{})
		if err != nil || res.Version != 7 || res.RowsOK != 2500 {
			t.Fatalf("good load: %+v %v", res, err)
		}
		if _, err := f.svc.Lookup(f.ctx, "roll", li); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("v1 row still found: %v", err)
		}
		if _, err := f.svc.Load(f.ctx, "roll", subsidy, dataset.Source{Name: "v8.csv", Reader: strings.NewReader(subsidyCSV)}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		vs, err := f.svc.Versions(f.ctx, "roll")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range vs {
			got = append(got, fmt.Sprintf("%d:%s", v.Version, v.Status))
		}
		if fmt.Sprint(got) != "[8:active 7:superseded 6:failed]" {
			t.Errorf("versions after cleanup: %v", got)
		}
		var n int
		if err := f.d.QueryRow(f.ctx, `SELECT COUNT(*) FROM dataset_rows`).Scan(&n); err != nil || n != 2503 {
			t.Errorf("rows kept: %d %v", n, err)
		}
	})
}

// blockingReader hands out data only when told to.
type blockingReader struct {
	data    io.Reader
	release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	<-b.release
	return b.data.Read(p)
}

func TestOneLoadAtATime(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		br := &blockingReader{data: strings.NewReader(subsidyCSV), release: make(chan struct{})}
		done := make(chan error, 1)
		go func() {
			_, err := f.svc.Load(f.ctx, "busy", subsidy, dataset.Source{Name: "a.csv", Reader: br}, dataset.LoadOptions{})
			done <- err
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			vs, _ := f.svc.Versions(f.ctx, "busy")
			if len(vs) == 1 && vs[0].Status == dataset.Loading {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("first load did not start")
			}
			time.Sleep(5 * time.Millisecond)
		}
		_, err := f.svc.Load(f.ctx, "busy", subsidy, dataset.Source{Name: "b.csv", Reader: strings.NewReader(subsidyCSV)}, dataset.LoadOptions{})
		if !errors.Is(err, dataset.ErrLoadInProgress) {
			t.Errorf("second load: %v", err)
		}
		close(br.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// An abandoned load (its process died) is failed by the next one after StaleAfter.
		if _, err := f.d.Exec(f.ctx, `INSERT INTO dataset_versions (dataset_id, version, status, schema_json, format, started_at, heartbeat_at)
			VALUES ('busy', 2, 'loading', '{}', 'csv', ?, ?)`, t0.Add(-time.Hour), t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		res, err := f.svc.Load(f.ctx, "busy", subsidy, dataset.Source{Name: "c.csv", Reader: strings.NewReader(subsidyCSV)}, dataset.LoadOptions{})
		if err != nil || res.Version != 3 {
			t.Fatalf("after an abandoned load: %+v %v", res, err)
		}
		if v, err := f.svc.Version(f.ctx, "busy", 2); err != nil || v.Status != dataset.Failed || v.ErrorCode != "dataset.abandoned" {
			t.Errorf("abandoned version: %+v %v", v, err)
		}
	})
}

func TestPlainKeyAndErrors(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := dataset.Schema{Key: "统一社会信用代码", Columns: []dataset.Column{
			{Name: "统一社会信用代码", Type: dataset.CreditCode},
			{Name: "名称", Type: dataset.String, Required: true},
			{Name: "注册资本", Type: dataset.Decimal, Scale: 2},
		}}
		cc, err := ids.MakeCreditCode('9', '1', "140105", "MA0XXXXX")
		if err != nil {
			t.Fatal(err)
		}
		csv := "统一社会信用代码,名称,注册资本\n" + strings.ToLower(cc) + ",山西某某有限公司,001000.500\n"
		if _, err := f.svc.Load(f.ctx, "ent", s, dataset.Source{Name: "e.csv", Reader: strings.NewReader(csv)}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		r, err := f.svc.Lookup(f.ctx, "ent", cc)
		if err != nil || r.Values["注册资本"] != "1000.5" || r.Values["统一社会信用代码"] != cc {
			t.Errorf("lookup: %+v %v", r, err)
		}
		var k string
		if err := f.d.QueryRow(f.ctx, `SELECT key_idx FROM dataset_rows`).Scan(&k); err != nil || k != cc {
			t.Errorf("plain key stored as %q %v", k, err)
		}
		if _, err := f.svc.Lookup(f.ctx, "nothing", cc); !errors.Is(err, dataset.ErrNoActive) {
			t.Errorf("no dataset: %v", err)
		}
		if _, err := f.svc.Lookup(f.ctx, "bad id!", cc); !errors.Is(err, dataset.ErrDatasetID) {
			t.Errorf("bad id: %v", err)
		}
		for _, bad := range []dataset.Schema{
			{},
			{Columns: []dataset.Column{{Name: "a", Type: "float"}}},
			{Columns: []dataset.Column{{Name: "a", Type: dataset.String}, {Name: "a", Type: dataset.String}}},
			{Columns: []dataset.Column{{Name: `a"b`, Type: dataset.String}}},
			{Columns: []dataset.Column{{Name: "a", Type: dataset.String}}, Key: "b"},
		} {
			_, err := f.svc.Load(f.ctx, "ent", bad, dataset.Source{Name: "e.csv", Reader: strings.NewReader(csv)}, dataset.LoadOptions{})
			if e, ok := i18n.As(err); !ok || e.Code != "dataset.schema" || e.Msg.EN == "" {
				t.Errorf("schema %+v: %v", bad, err)
			}
		}
		if _, err := f.svc.Load(f.ctx, "ent", s, dataset.Source{Name: "e.xls", Reader: strings.NewReader(csv)}, dataset.LoadOptions{}); !errors.Is(err, dataset.ErrFormat) {
			t.Errorf(".xls: %v", err)
		}
	})
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	bar := dataset.ProgressBar(&buf)
	bar(dataset.Progress{Rows: 10, Bytes: 50, TotalBytes: 100, Rejected: 1})
	bar(dataset.Progress{Rows: 20, Bytes: 100, TotalBytes: 100, Rejected: 2}) // the end always draws
	if s := buf.String(); !strings.Contains(s, " 50%") || !strings.Contains(s, "100%  20 行/rows  2 拒绝/rejected") {
		t.Errorf("bar: %q", s)
	}
	buf.Reset()
	dataset.ProgressBar(&buf)(dataset.Progress{Rows: 7, Bytes: 3 << 20})
	if s := buf.String(); !strings.Contains(s, "7 行/rows  3.0 MiB") {
		t.Errorf("bar without size: %q", s)
	}
}

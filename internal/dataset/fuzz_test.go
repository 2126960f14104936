package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// fuzzSchema has a column of every type (none sensitive: sealing needs a keyring, and is
// not parsing).
var fuzzSchema = Schema{Key: "id", Columns: []Column{
	{Name: "id", Type: ResidentID, Required: true, Unique: true},
	{Name: "名称", Type: String, MaxLength: 10},
	{Name: "n", Type: Integer},
	{Name: "d", Type: Decimal, Scale: 3},
	{Name: "fen", Type: Fen},
	{Name: "date", Type: Date},
	{Name: "dt", Type: DateTime},
	{Name: "b", Type: Boolean},
	{Name: "cc", Type: CreditCode, Unique: true},
	{Name: "div", Type: Division},
	{Name: "m", Type: Mobile},
}}

var fuzzNow = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func bilingual(t *testing.T, what string, err error) {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok || e.Code == "" || e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Fatalf("%s: not a bilingual error: %#v", what, err)
	}
}

// readAll reads and validates every record of data as the loader does, checking that every
// fault is bilingual and every accepted row encodes to a JSON object of its values.
func readAll(t *testing.T, f Format, data []byte) {
	cnt := &counter{r: bytes.NewReader(data)}
	recs, err := open(fuzzSchema, f, Source{Reader: cnt}, cnt)
	if err != nil {
		bilingual(t, "open", err)
		return
	}
	defer recs.close()
	l := &loader{schema: fuzzSchema, norm: normalizer{now: func() time.Time { return fuzzNow }}}
	l.prepare()
	values := make([]string, len(fuzzSchema.Columns))
	var buf []byte
	for n := 0; n < 100000; n++ {
		rec, err := recs.next()
		if err == io.EOF {
			return
		}
		if err != nil {
			bilingual(t, "next", err)
			return
		}
		if rec.line < 1 {
			t.Fatalf("record at line %d", rec.line)
		}
		issues := l.check(rec, values, nil)
		for _, is := range issues {
			bilingual(t, "issue", is.Err)
		}
		if len(issues) > 0 {
			continue
		}
		buf, err = l.encode(buf[:0], int64(n+1), values)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		if err := json.Unmarshal(buf, &got); err != nil {
			t.Fatalf("row JSON %q: %v", buf, err)
		}
		for i, c := range fuzzSchema.Columns {
			if got[c.Name] != values[i] {
				t.Fatalf("column %s: stored %q, validated %q", c.Name, got[c.Name], values[i])
			}
		}
	}
}

func FuzzCSVRows(f *testing.F) {
	id := ids.MakeResident("140105", time.Date(1985, 6, 15, 0, 0, 0, 0, time.UTC), 123, true)
	head := "id,名称,n,d,fen,date,dt,b,cc,div,m,extra\n"
	f.Add([]byte(head + id + ",张三,1,1.5,\"1,000.00\",2024/3/1,2024-03-01 08:00,是,,140105,13812345678,x\n"))
	f.Add([]byte(head + id + ",\"多\n行\",x,1.2345,1.001,2024-02-30,bad,maybe,91140105MA0XXXXXX0,99,+1 555\n"))
	f.Add([]byte("\xEF\xBB\xBF" + head + id + "\n\"unterminated"))
	f.Add([]byte("\xd5\xc5\xc8\xfd,id\n\xd5\xc5," + id + "\n")) // GBK
	f.Add([]byte(head + strings.Repeat(id+",a\"b,,,,,,,,,,\n", 3)))
	f.Fuzz(func(t *testing.T, data []byte) { readAll(t, CSV, data) })
}

func FuzzJSONRows(f *testing.F) {
	id := ids.MakeResident("140105", time.Date(1985, 6, 15, 0, 0, 0, 0, time.UTC), 123, true)
	f.Add([]byte(`[{"id":"` + id + `","名称":"张三","n":1,"d":1.5e3,"b":true,"x":[1,{"y":2}]}]`))
	f.Add([]byte(`[{"id":"` + id + `"},{"id":"` + id + `"}, 3, [], null, {"名称":{"a":[]}}]`))
	f.Add([]byte(`[{"id":` + "\n" + `"` + id + `", "dt": "2024-03-01T08:00:00+08:00"}`))
	f.Add([]byte(`{"not":"array"}`))
	f.Add([]byte(`[] trailing`))
	f.Fuzz(func(t *testing.T, data []byte) { readAll(t, JSON, data) })
}

// FuzzValue: normalising never panics, faults are bilingual, and a normalised value
// normalises to itself (so Lookup and Query, which normalise their input the same way, find
// what a load stored). Fen is the exception: its stored form is fen, its input yuan.
func FuzzValue(f *testing.F) {
	for _, s := range []string{"", " 12 ", "-0.50", "1,234.5", "￥12.3元", "2024年3月1日", "2024-03-01T08:00:00+08:00",
		"是", "FALSE", "14010519850615123X", "91140105MA0XXXXXX0", "140105001", "+86 138 1234 5678", "\x00", "\xff"} {
		for ty := range types {
			f.Add(string(ty), s)
		}
	}
	n := normalizer{now: func() time.Time { return fuzzNow }}
	f.Fuzz(func(t *testing.T, ty, v string) {
		c := Column{Name: "c", Type: Type(ty), MaxLength: 30, Scale: 4}
		if c.Type != Decimal {
			c.Scale = 0
		}
		out, err := n.value(&c, v)
		if err != nil {
			bilingual(t, "value", err)
			if !types[c.Type] && !errors.Is(err, ErrType) && !errors.Is(err, ErrText) {
				t.Fatalf("unknown type %q: %v", ty, err)
			}
			return
		}
		if c.Type == Fen || out == "" {
			return
		}
		again, err := n.value(&c, out)
		if err != nil || again != out {
			t.Fatalf("%s %q → %q → %q, %v", ty, v, out, again, err)
		}
	})
}

// FuzzUpstreamAnswer: whatever an upstream API answers, reading it never panics, every
// refusal is a bilingual 502, and every accepted record's values are what the schema's
// normalisation makes of them (so an upstream cannot pass off an unchecked value).
func FuzzUpstreamAnswer(f *testing.F) {
	id := ids.MakeResident("140105", time.Date(1985, 6, 15, 0, 0, 0, 0, time.UTC), 123, true)
	f.Add([]byte(`{"data":{"id":"`+id+`","名称":"张三","n":12,"b":true,"div":"140105"}}`), false)
	f.Add([]byte(`{"rows":[{"id":"`+id+`","n":1.5e3},{"id":null}]}`), true)
	f.Add([]byte(`[{"id":"`+id+`","名称":{"a":1}}]`), true)
	f.Add([]byte(`{"record":[1]}`), false)
	f.Add([]byte(`[] []`), true)
	f.Add([]byte(`{"id":"`+id+`","fen":"￥1,234.5","dt":"2024-03-01 08:00"}`), false)
	n := normalizer{now: func() time.Time { return fuzzNow }}
	u := &Upstream{Fields: map[string]string{"名称": "mc"}}
	f.Fuzz(func(t *testing.T, body []byte, many bool) {
		recs, err := parseUpstream(body, many)
		if err != nil {
			bilingual(t, "parse", err)
			if e, _ := i18n.As(err); e.HTTPStatus() != 502 {
				t.Fatalf("parse refusal with status %d", e.HTTPStatus())
			}
			return
		}
		if !many && len(recs) != 1 {
			t.Fatalf("%d records for a lookup", len(recs))
		}
		for _, rec := range recs {
			vals, err := n.upstreamValues(fuzzSchema, u, rec)
			if err != nil {
				bilingual(t, "values", err)
				if e, _ := i18n.As(err); e.HTTPStatus() != 502 {
					t.Fatalf("value refusal with status %d", e.HTTPStatus())
				}
				continue
			}
			for name, v := range vals {
				c := fuzzSchema.Columns[fuzzSchema.column(name)]
				if c.Type == Fen {
					continue // stored as fen, given as yuan
				}
				if again, err := n.value(&c, v); err != nil || again != v {
					t.Fatalf("column %s: %q is not a normalised value (%q, %v)", name, v, again, err)
				}
			}
		}
	})
}

// FuzzDivisionRange: a row scope's SQL range [lo, hi) holds exactly the digit codes that
// start with its prefix (the rule InScope applies), and the scope itself.
func FuzzDivisionRange(f *testing.F) {
	for _, s := range []string{"140000", "140100", "140105", "140105001", "149900", "999999", "14010", "1401050011", "x40000"} {
		f.Add(s, "140105001")
	}
	f.Fuzz(func(t *testing.T, scope, code string) {
		lo, hi, err := divisionRange(scope)
		if err != nil {
			bilingual(t, "range", err)
			if InScope(scope, code) {
				t.Fatalf("a malformed scope %q holds %q", scope, code)
			}
			return
		}
		if !(lo < hi) || !strings.HasPrefix(strings.TrimSpace(scope), lo) {
			t.Fatalf("scope %q: range [%q, %q)", scope, lo, hi)
		}
		if !InScope(scope, strings.TrimSpace(scope)) {
			t.Fatalf("scope %q does not hold itself", scope)
		}
		if code == "" || !digits(code) {
			return
		}
		if inRange := code >= lo && code < hi; inRange != InScope(scope, code) {
			t.Fatalf("scope %q, code %q: the range [%q, %q) says %v", scope, code, lo, hi, inRange)
		}
	})
}

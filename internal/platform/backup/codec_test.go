package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/jsontext"
)

func TestValueEncoding(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for _, c := range []struct {
		dialect db.Dialect
		kind    Kind
		in      any
		side    any
		enc     string
		dec     any
	}{
		{db.SQLite, KindInt, nil, nil, `null`, nil},
		{db.Postgres, KindBool, true, nil, `true`, true},
		{db.SQLite, KindBool, int64(0), nil, `false`, false},
		{db.SQLite, KindBool, int64(2), nil, `2`, int64(2)}, // SQLite keeps what it has
		{db.SQLite, KindInt, int64(math.MaxInt64), nil, `9223372036854775807`, int64(math.MaxInt64)},
		{db.SQLite, KindInt, int64(math.MinInt64), nil, `-9223372036854775808`, int64(math.MinInt64)},
		{db.SQLite, KindFloat, 1.0, nil, `1.0`, 1.0},
		{db.SQLite, KindFloat, -2.0, nil, `-2.0`, -2.0},
		{db.SQLite, KindFloat, 1e21, nil, `1e+21`, 1e21},
		{db.SQLite, KindFloat, 5e-324, nil, `5e-324`, 5e-324},
		{db.SQLite, KindFloat, 0.1, nil, `0.1`, 0.1},
		{db.SQLite, KindFloat, math.Inf(-1), nil, `{"float":"-Inf"}`, math.Inf(-1)},
		{db.SQLite, KindText, "a\"b\\c\n\x01<&>中", nil, `"a\"b\\c\n\u0001<&>中"`, "a\"b\\c\n\x01<&>中"},
		{db.SQLite, KindText, "\xff\xfe", nil, `{"rawtext":"//4="}`, rawText("\xff\xfe")},
		{db.SQLite, KindBytes, []byte(nil), nil, `{"bytes":""}`, []byte{}},
		{db.Postgres, KindBytes, []byte{0, 1, 2}, nil, `{"bytes":"AAEC"}`, []byte{0, 1, 2}},
		{db.Postgres, KindTime, at, nil, `{"time":"2026-01-02T03:04:05.123456789Z"}`, timeValue{t: at}},
		{db.SQLite, KindTime, "2026-01-02 03:04:05", nil, `{"time":"2026-01-02T03:04:05Z","sqlite":"2026-01-02 03:04:05"}`,
			timeValue{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), raw: "2026-01-02 03:04:05"}},
		{db.SQLite, KindTime, "soon", nil, `"soon"`, "soon"}, // not a time: kept as text
		{db.Postgres, KindJSON, `{"a": [1, 2]}`, nil, `{"json":{"a":[1,2]}}`, jsonValue(`{"a":[1,2]}`)},
		{db.Postgres, KindArray, `["x", "y"]`, nil, `{"json":["x","y"]}`, jsonValue(`["x","y"]`)},
		{db.SQLite, KindJSON, []byte{0xcc}, `{"n":1}`, `{"json":{"n":1}}`, jsonValue(`{"n":1}`)},
		{db.SQLite, KindJSON, []byte{0xcc}, nil, `{"bytes":"zA=="}`, []byte{0xcc}},
		{db.Postgres, KindNumeric, "12.50", nil, `{"numeric":"12.50"}`, numericValue("12.50")},
	} {
		enc, err := appendValue(nil, c.dialect, c.kind, c.in, c.side)
		if err != nil || string(enc) != c.enc {
			t.Errorf("%s %s %#v: encoded %s (%v), want %s", c.dialect, c.kind, c.in, enc, err, c.enc)
			continue
		}
		dec, err := decodeValue(enc)
		if err != nil || !reflect.DeepEqual(dec, c.dec) {
			t.Errorf("%s: decoded %#v (%v), want %#v", enc, dec, err, c.dec)
		}
	}
	// NaN is not equal to itself: check it apart.
	enc, _ := appendValue(nil, db.Postgres, KindFloat, math.NaN(), nil)
	if v, err := decodeValue(enc); err != nil || !math.IsNaN(v.(float64)) {
		t.Errorf("NaN: %s → %v %v", enc, v, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{
		``, `nul`, `tru`, `"unterminated`, `01x`, `9223372036854775808`, `{}`, `{"bytes":"!!"}`,
		`{"bytes":"AA==","time":"2026-01-01T00:00:00Z"}`, `{"sqlite":"x"}`, `{"time":"yesterday"}`,
		`{"numeric":"12,5"}`, `{"color":"red"}`, `[1]`, `{"float":"many"}`,
	} {
		if v, err := decodeValue(json.RawMessage(in)); err == nil {
			t.Errorf("%s: decoded as %#v, want an error", in, v)
		}
	}
}

func TestConvertPostgres(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ok := []struct {
		kind Kind
		in   any
		out  any
	}{
		{KindBool, int64(1), true},
		{KindInt, true, int64(1)},
		{KindInt, 3.0, int64(3)},
		{KindBits, int64(245), int64(245)},
		{KindFloat, int64(3), 3.0},
		{KindNumeric, 1.25, "1.25"},
		{KindNumeric, int64(7), "7"},
		{KindTime, timeValue{t: at, raw: "x"}, at},
		{KindTime, "2026-01-02 03:04:05.000", at},
		{KindBytes, "abc", []byte("abc")},
		{KindJSON, jsonValue(`{"a":1}`), `{"a":1}`},
		{KindArray, jsonValue(`["a"]`), `["a"]`},
		{KindText, timeValue{t: at}, "2026-01-02T03:04:05Z"},
		{KindText, int64(12), "12"},
	}
	for _, c := range ok {
		got, err := convert(c.in, db.Postgres, "t", &column{name: "c", kind: c.kind, typ: string(c.kind)})
		if err != nil || !reflect.DeepEqual(got, c.out) {
			t.Errorf("%s ← %#v: %#v %v, want %#v", c.kind, c.in, got, err, c.out)
		}
	}
	bad := []struct {
		kind Kind
		in   any
	}{
		{KindBool, int64(2)}, {KindInt, 1.5}, {KindInt, "abc"}, {KindTime, "soon"}, {KindTime, int64(5)},
		{KindJSON, "not json"}, {KindArray, jsonValue(`{"a":1}`)}, {KindText, rawText("\xff")}, {KindBytes, true},
	}
	for _, c := range bad {
		if got, err := convert(c.in, db.Postgres, "t", &column{name: "c", kind: c.kind, typ: string(c.kind)}); err == nil {
			t.Errorf("%s ← %#v: converted to %#v, want an error", c.kind, c.in, got)
		}
	}
	// SQLite takes values as they come, and times in the form of their writer.
	for _, c := range []struct {
		table string
		in    any
		out   any
	}{
		{"kinds", timeValue{t: at, raw: "2026-01-02 03:04:05"}, "2026-01-02 03:04:05"},
		{"kinds", timeValue{t: at}, at},
		{"river_job", timeValue{t: at.Add(1500 * time.Microsecond)}, "2026-01-02 03:04:05.002"},
		{"kinds", int64(2), int64(2)},
		{"kinds", numericValue("1.5"), "1.5"},
	} {
		got, err := convert(c.in, db.SQLite, c.table, &column{name: "c", kind: KindTime})
		if err != nil || !reflect.DeepEqual(got, c.out) {
			t.Errorf("sqlite %s ← %#v: %#v %v, want %#v", c.table, c.in, got, err, c.out)
		}
	}
}

func TestParseSQLiteTime(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	for _, s := range []string{
		"2026-01-02 03:04:05.6", "2026-01-02T03:04:05.600Z", "2026-01-02 11:04:05.6+08:00",
		"2026-01-02 03:04:05.6 +0000 UTC", "2026-01-02 03:04:05.6 +0000 UTC m=+0.000000001",
	} {
		if got, ok := parseSQLiteTime(s); !ok || !got.Equal(want) {
			t.Errorf("%q: %v %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "2026", "yesterday", "2026-13-01"} {
		if got, ok := parseSQLiteTime(s); ok {
			t.Errorf("%q parsed as %v", s, got)
		}
	}
}

func TestInsertOrder(t *testing.T) {
	s := &schema{tables: map[string]*table{
		"a": {name: "a", fks: []foreignKey{{parent: "b"}}},
		"b": {name: "b", fks: []foreignKey{{parent: "c"}, {parent: "b"}}},
		"c": {name: "c"},
		"x": {name: "x", fks: []foreignKey{{parent: "y"}}},
		"y": {name: "y", fks: []foreignKey{{parent: "x"}}},
		"z": {name: "z"},
	}}
	got := insertOrder(s, []string{"a", "b", "c", "x", "y", "z"})
	if want := []string{"c", "b", "a", "z", "x", "y"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{`null`, `true`, `-12`, `1.5e3`, `"x"`, `{"bytes":"AA=="}`, `{"time":"2026-01-02T03:04:05Z","sqlite":"x"}`,
		`{"json":{"a":[1,{"b":null}]}}`, `{"numeric":"-1.5e10"}`, `{"float":"NaN"}`, `{"rawtext":"/w=="}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := decodeValue(in)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes to the same value.
		kind, dialect := KindText, db.SQLite
		switch x := v.(type) {
		case timeValue:
			if x.raw != "" {
				return // the pair came from the file; the encoder derives it from raw
			}
			v = x.t
		case jsonValue:
			kind, dialect, v = KindJSON, db.Postgres, string(x)
		case numericValue:
			kind, dialect, v = KindNumeric, db.Postgres, string(x)
		case rawText:
			v = string(x)
		case float64:
			if math.IsNaN(x) {
				return
			}
		}
		enc, err := appendValue(nil, dialect, kind, v, nil)
		if err != nil {
			t.Fatalf("%s decoded to %#v, which does not encode: %v", in, v, err)
		}
		again, err := decodeValue(enc)
		if err != nil {
			t.Fatalf("%s → %#v → %s: %v", in, v, enc, err)
		}
		enc2, _ := appendValue(nil, dialect, kind, unwrap(again), nil)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: encodes as %s, then %s", in, enc, enc2)
		}
	})
}

func unwrap(v any) any {
	switch x := v.(type) {
	case timeValue:
		return x.t
	case jsonValue:
		return string(x)
	case numericValue:
		return string(x)
	case rawText:
		return string(x)
	}
	return v
}

func FuzzAppendString(f *testing.F) {
	f.Add("太原 \"q\" \\ \n\t\x00\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		var back string
		if err := json.Unmarshal(jsontext.AppendString(nil, s), &back); err != nil || back != s {
			t.Fatalf("%q → %s → %q (%v)", s, jsontext.AppendString(nil, s), back, err)
		}
	})
}

// FuzzVerify feeds Verify archives that are valid gzip around arbitrary bytes (so the fuzzer
// reaches the tar and manifest parsers rather than the gzip checksum): it must return an
// error, never panic.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("manifest.json"))
	f.Add(bytes.Repeat([]byte{0}, 1024))
	var seed bytes.Buffer
	tw := tar.NewWriter(&seed)
	for name, data := range map[string]string{
		"tables/t.jsonl": "{\"a\":1}\n",
		"manifest.json":  `{"format":1,"tables":[{"name":"t","rows":1,"size":8,"sm3":"00","columns":[{"name":"a","kind":"int"}]}]}`,
		"manifest.sig":   `{"alg":"SM2-SM3","key_id":"k","signature":"MEUCIQ=="}`,
	} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600})
		tw.Write([]byte(data))
	}
	tw.Close()
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, tarBytes []byte) {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		gz.Write(tarBytes)
		gz.Close()
		_, err := Verify(&buf, VerifyOptions{})
		if err == nil {
			t.Fatal("an archive without a valid signature verified")
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not match ErrCorrupt", err)
		}
	})
}

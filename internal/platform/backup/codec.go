package backup

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/jsontext"

	"github.com/dgov/dgov/internal/platform/db"
)

// Kind is the portable type of a column, what a value is converted to on restore.
type Kind string

const (
	KindInt     Kind = "int"     // 64-bit integer
	KindFloat   Kind = "float"   // IEEE 754 double
	KindNumeric Kind = "numeric" // exact decimal (PostgreSQL numeric; SQLite NUMERIC affinity)
	KindBool    Kind = "bool"
	KindText    Kind = "text" // text, and on PostgreSQL every type without a kind of its own
	KindTime    Kind = "time"
	KindBytes   Kind = "bytes"
	KindJSON    Kind = "json"
	KindArray   Kind = "array" // PostgreSQL one-dimensional array, carried as a JSON array
	KindBits    Kind = "bits"  // PostgreSQL bit(n), n ≤ 64, carried as its integer value
)

// The row encoding of tables/<name>.jsonl: one JSON object per line, column name → value.
// A value is JSON where JSON is unambiguous, and a one-member object naming its type where it
// is not, so that it survives a round trip and a restore into the other database:
//
//	null                     NULL
//	true, false              boolean
//	-12, 9223372036854775807 integer (always written without '.' or exponent; exact to 64 bits)
//	0.5, 1.0, 1e+300         float (always written with '.' or an exponent)
//	"text"                   text (valid UTF-8)
//	{"float": "NaN"}         the floats JSON cannot write: "NaN", "+Inf", "-Inf"
//	{"numeric": "12.50"}     exact decimal, digits as the database printed them
//	{"bytes": "AAE="}        binary, standard base64
//	{"time": "2026-01-02T03:04:05.123456Z"}
//	                         a time, RFC 3339 in UTC; from SQLite also "sqlite": the text as
//	                         stored, so a restore into SQLite writes back the same text
//	                         (SQLite compares times as text; the writer's format matters)
//	{"json": {...}}          a JSON document (jsonb, River's JSON columns, arrays)
//	{"rawtext": "base64"}    text that is not valid UTF-8 (SQLite allows it; JSON cannot hold it)
type taggedValue struct {
	Float   *string         `json:"float,omitempty"`
	Numeric *string         `json:"numeric,omitempty"`
	Bytes   *string         `json:"bytes,omitempty"`
	Time    *string         `json:"time,omitempty"`
	SQLite  *string         `json:"sqlite,omitempty"`
	JSON    json.RawMessage `json:"json,omitempty"`
	RawText *string         `json:"rawtext,omitempty"`
}

// Values decoded from a backup, besides nil, bool, int64, float64, string and []byte.
type (
	timeValue struct {
		t   time.Time
		raw string // SQLite's stored text, when the backup came from SQLite
	}
	jsonValue    string // compact JSON text
	numericValue string // decimal digits
	rawText      string // text that is not valid UTF-8
)

// appendValue encodes v, as read from a database of dialect for a column of kind, onto b.
// side is the JSON text SQLite computed for a River JSON column (nil when not valid JSON).
func appendValue(b []byte, dialect db.Dialect, kind Kind, v, side any) ([]byte, error) {
	if kind == KindJSON {
		if js, ok := side.(string); ok {
			return appendJSONValue(b, js)
		}
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		if kind == KindBool && dialect == db.SQLite && (x == 0 || x == 1) {
			return strconv.AppendBool(b, x == 1), nil
		}
		return strconv.AppendInt(b, x, 10), nil
	case float64:
		return appendFloat(b, x), nil
	case time.Time:
		return appendTime(b, x, ""), nil
	case []byte:
		if kind == KindJSON && dialect == db.Postgres {
			return appendJSONValue(b, string(x))
		}
		if x == nil {
			x = []byte{} // a zero-length BLOB, which the driver hands over as a nil slice
		}
		b = append(b, `{"bytes":"`...)
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, `"}`...), nil
	case string:
		switch {
		case kind == KindTime && dialect == db.SQLite:
			if t, ok := parseSQLiteTime(x); ok {
				return appendTime(b, t, x), nil
			}
		case (kind == KindJSON || kind == KindArray) && dialect == db.Postgres:
			return appendJSONValue(b, x)
		case kind == KindNumeric && dialect == db.Postgres:
			b = append(b, `{"numeric":`...)
			b = jsontext.AppendString(b, x)
			return append(b, '}'), nil
		}
		if !utf8.ValidString(x) {
			b = append(b, `{"rawtext":"`...)
			b = base64.StdEncoding.AppendEncode(b, []byte(x))
			return append(b, `"}`...), nil
		}
		return jsontext.AppendString(b, x), nil
	}
	return b, fmt.Errorf("unsupported value of type %T", v)
}

func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `{"float":"NaN"}`...)
	case math.IsInf(f, 1):
		return append(b, `{"float":"+Inf"}`...)
	case math.IsInf(f, -1):
		return append(b, `{"float":"-Inf"}`...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...)
	}
	return b
}

func appendTime(b []byte, t time.Time, sqliteText string) []byte {
	b = append(b, `{"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if sqliteText != "" {
		b = append(b, `,"sqlite":`...)
		b = jsontext.AppendString(b, sqliteText)
	}
	return append(b, '}')
}

func appendJSONValue(b []byte, js string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(js)); err != nil {
		return b, fmt.Errorf("invalid JSON: %w", err)
	}
	b = append(b, `{"json":`...)
	b = append(b, buf.Bytes()...)
	return append(b, '}'), nil
}

// sqliteTimeLayouts are the forms SQLite's date functions and the modernc driver write
// (the driver's own list, formats 1–7 of https://www.sqlite.org/lang_datefunc.html); a time
// without a zone is UTC, as SQLite's functions take it.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseSQLiteTime reads a time as SQLite stores it.
func parseSQLiteTime(s string) (time.Time, bool) {
	if len(s) < 10 || len(s) > 64 {
		return time.Time{}, false
	}
	ts, _ := strings.CutSuffix(s, "Z")
	for _, l := range sqliteTimeLayouts {
		if t, err := time.Parse(l, ts); err == nil {
			return t.UTC(), true
		}
	}
	// time.Time.String(), which the driver writes when no _time_format is set.
	if i := strings.Index(s, " m="); i > 0 {
		s = s[:i]
	}
	if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

// errFormat is a line that does not follow the row encoding.
var errFormat = errors.New("malformed value")

// decodeValue decodes one value of the row encoding.
func decodeValue(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errFormat
	}
	switch c := raw[0]; {
	case c == 'n':
		if string(raw) != "null" {
			return nil, errFormat
		}
		return nil, nil
	case c == 't' || c == 'f':
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, errFormat
		}
		return v, nil
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errFormat
		}
		return s, nil
	case c == '-' || (c >= '0' && c <= '9'):
		if !json.Valid(raw) {
			return nil, errFormat
		}
		if bytes.ContainsAny(raw, ".eE") {
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil {
				return nil, errFormat
			}
			return f, nil
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: integer %s out of range", errFormat, raw)
		}
		return n, nil
	case c == '{':
		return decodeTagged(raw)
	}
	return nil, errFormat
}

func decodeTagged(raw json.RawMessage) (any, error) {
	var tv taggedValue
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tv); err != nil {
		return nil, errFormat
	}
	set := 0
	for _, p := range []bool{tv.Float != nil, tv.Numeric != nil, tv.Bytes != nil, tv.Time != nil, tv.JSON != nil, tv.RawText != nil} {
		if p {
			set++
		}
	}
	if set != 1 || (tv.SQLite != nil && tv.Time == nil) {
		return nil, errFormat
	}
	switch {
	case tv.Float != nil:
		switch *tv.Float {
		case "NaN":
			return math.NaN(), nil
		case "+Inf":
			return math.Inf(1), nil
		case "-Inf":
			return math.Inf(-1), nil
		}
		f, err := strconv.ParseFloat(*tv.Float, 64)
		if err != nil {
			return nil, errFormat
		}
		return f, nil
	case tv.Numeric != nil:
		if !isDecimal(*tv.Numeric) {
			return nil, errFormat
		}
		return numericValue(*tv.Numeric), nil
	case tv.Bytes != nil:
		b, err := base64.StdEncoding.DecodeString(*tv.Bytes)
		if err != nil {
			return nil, errFormat
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case tv.Time != nil:
		t, err := time.Parse(time.RFC3339Nano, *tv.Time)
		if err != nil {
			return nil, errFormat
		}
		v := timeValue{t: t.UTC()}
		if tv.SQLite != nil {
			v.raw = *tv.SQLite
		}
		return v, nil
	case tv.JSON != nil:
		return jsonValue(tv.JSON), nil
	default:
		b, err := base64.StdEncoding.DecodeString(*tv.RawText)
		if err != nil {
			return nil, errFormat
		}
		return rawText(b), nil
	}
}

// isDecimal accepts what PostgreSQL prints for numeric: digits with an optional sign, point
// and exponent, or NaN and ±Infinity.
func isDecimal(s string) bool {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	if s == "" || len(s) > 1<<17 {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	var ne *strconv.NumError
	return err == nil || (errors.As(err, &ne) && ne.Err == strconv.ErrRange)
}

// convert turns a decoded value into what the target column takes. SQLite keeps what came
// (it is dynamically typed; a backup from SQLite restores the stored values exactly);
// PostgreSQL gets the value converted to the column's kind, or an error saying why not.
func convert(v any, dialect db.Dialect, table string, c *column) (any, error) {
	if v == nil {
		return nil, nil
	}
	if dialect == db.SQLite {
		switch x := v.(type) {
		case timeValue:
			switch {
			case x.raw != "":
				return x.raw, nil
			case isRiverTable(table):
				return x.t.Round(time.Millisecond).Format(riverTimeLayout), nil
			}
			return x.t, nil // the driver writes it as dgov's own writes do
		case jsonValue:
			return string(x), nil
		case numericValue:
			return string(x), nil // NUMERIC and REAL affinity turn the text into a number
		case rawText:
			return string(x), nil
		}
		return v, nil
	}
	return convertPostgres(v, c)
}

func convertPostgres(v any, c *column) (any, error) {
	bad := func() (any, error) {
		return nil, fmt.Errorf("%s value %s for a %s column", typeName(v), preview(v), c.typ)
	}
	switch c.kind {
	case KindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		}
	case KindInt, KindBits:
		switch x := v.(type) {
		case int64:
			return x, nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				return int64(x), nil
			}
		case numericValue:
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return n, nil
			}
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return n, nil
			}
		}
	case KindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case numericValue:
			if f, err := strconv.ParseFloat(string(x), 64); err == nil {
				return f, nil
			}
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
		}
	case KindNumeric:
		switch x := v.(type) {
		case numericValue:
			return string(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case string:
			return x, nil // the server parses it, and refuses what is not a number
		}
	case KindTime:
		switch x := v.(type) {
		case timeValue:
			return x.t, nil
		case time.Time:
			return x.UTC(), nil
		case string:
			if t, ok := parseSQLiteTime(x); ok {
				return t, nil
			}
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return t.UTC(), nil
			}
		}
	case KindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		case rawText:
			return []byte(x), nil
		}
	case KindJSON:
		switch x := v.(type) {
		case jsonValue:
			return string(x), nil
		case string:
			if json.Valid([]byte(x)) {
				return x, nil
			}
		case []byte:
			if json.Valid(x) {
				return string(x), nil
			}
		}
	case KindArray:
		var js string
		switch x := v.(type) {
		case jsonValue:
			js = string(x)
		case string:
			js = x
		case []byte:
			js = string(x)
		}
		if trimmed := strings.TrimSpace(js); strings.HasPrefix(trimmed, "[") && json.Valid([]byte(trimmed)) {
			return trimmed, nil
		}
	default: // KindText and every type without a kind of its own
		switch x := v.(type) {
		case string:
			return x, nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case bool:
			return strconv.FormatBool(x), nil
		case timeValue:
			return x.t.Format(time.RFC3339Nano), nil
		case jsonValue:
			return string(x), nil
		case numericValue:
			return string(x), nil
		case []byte:
			if utf8.Valid(x) && !bytes.ContainsRune(x, 0) {
				return string(x), nil
			}
		}
	}
	return bad()
}

func typeName(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "float"
	case string:
		return "text"
	case []byte:
		return "binary"
	case timeValue:
		return "time"
	case jsonValue:
		return "JSON"
	case numericValue:
		return "decimal"
	case rawText:
		return "non-UTF-8 text"
	}
	return fmt.Sprintf("%T", v)
}

func preview(v any) string {
	var s string
	switch x := v.(type) {
	case []byte:
		return fmt.Sprintf("(%d bytes)", len(x))
	case rawText:
		return fmt.Sprintf("(%d bytes)", len(x))
	case timeValue:
		s = x.t.Format(time.RFC3339Nano)
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// Package baselib holds the base libraries (基础库, D2) that every other engine reads: so far
// the population library (人口库, table persons) and the legal-entity library (法人库, table
// legal_entities). The other four (natural resources and spatial geography, macro-economy,
// electronic licences, credit) come later; the data catalog will describe these tables.
//
// Personal data is encrypted at rest, as the architecture requires: the ID number, address
// and mobile of a person and the ID number of a legal representative are sealed with SM4-GCM
// (crypto.FieldCipher) under associated data naming the row and the column (see fieldAAD),
// and the ID number and mobile carry a keyed SM3 blind index for exact lookup. List views
// mask what they show (ids.MaskResident, ids.MaskMobile, ids.MaskName); the full record is
// only returned by the lookups that take the exact identifier.
//
// The service takes no acting subject: it is the store-and-rules layer that the engines
// built on it (data catalog, identity verification, exchange) call after they have authorized
// and audited the request.
package baselib

import (
	"context"
	"crypto/subtle"
	"embed"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations create the persons and legal_entities tables. They reference no other
// package's tables; apply after crypto.Migrations (the keyring the fields are sealed with).
var Migrations = db.Migrations("baselib", migrationFiles, "migrations")

// Blind-index kinds. The legal representative's ID number uses the same kind as a person's,
// so one index value finds both the person and the entities they represent.
const (
	IndexResidentID = "resident_id"
	IndexMobile     = "mobile"
)

// fieldAAD is the associated data a field of a row is sealed under: table, row id and
// column, so a ciphertext moved to another row or column fails to open (crypto.ErrDecrypt).
// Binding to the row id (rather than only a field label) is why ids are assigned before
// sealing; it costs nothing, as rows are never re-keyed to another id.
func fieldAAD(table, id, column string) string {
	return "baselib." + table + ":" + id + ":" + column
}

// MaxBatch bounds one AddPersons or AddEntities call, so one request cannot hold the
// database's writer for long; callers loading more split their input (the demo uses 1,000).
const MaxBatch = 10000

// Service is the base-library store and its rules. It is safe for concurrent use.
type Service struct {
	d   *db.DB
	fc  *crypto.FieldCipher
	now func() time.Time
	// dummy is a sealed value opened when a verification finds no row, so a miss costs
	// about what a hit costs.
	dummy []byte
}

// Options tune New.
type Options struct {
	// Now is the clock for timestamps and for "not in the future" checks; default time.Now.
	Now func() time.Time
}

// New returns the base-library service on d, sealing personal fields with fc.
func New(d *db.DB, fc *crypto.FieldCipher, opts ...Options) *Service {
	s := &Service{d: d, fc: fc, now: time.Now}
	for _, o := range opts {
		if o.Now != nil {
			s.now = o.Now
		}
	}
	// FieldCipher.Seal fails only without keys, which Open of the keyring rules out; should
	// it fail, verification simply runs without the dummy work.
	s.dummy, _ = fc.Seal("000000000000000000", fieldAAD("persons", "dummy", "id_number"))
	return s
}

func (s *Service) clock() time.Time { return db.Now(s.now()) }

// ---- errors ----

// Errors of this package; compare with errors.Is (i18n errors match by code). Validation
// errors of identifiers keep the code of package ids (e.g. ids.ErrResidentChecksum).
var (
	ErrPersonExists = &i18n.Error{Code: "baselib.person_exists", Status: http.StatusConflict, Field: "id_number",
		Msg: i18n.T("该身份证号码已登记在人口库中", "this ID number is already in the population library")}
	ErrEntityExists = &i18n.Error{Code: "baselib.entity_exists", Status: http.StatusConflict, Field: "credit_code",
		Msg: i18n.T("该统一社会信用代码已登记在法人库中", "this unified social credit code is already in the legal-entity library")}
	ErrBatchTooLarge = &i18n.Error{Code: "baselib.batch_too_large", Status: http.StatusRequestEntityTooLarge,
		Msg: i18n.T(fmt.Sprintf("一次最多提交 %d 条记录", MaxBatch), fmt.Sprintf("at most %d records per request", MaxBatch))}
	// ErrCorrupt: a row's blind index does not match its decrypted value, or a field does not
	// decrypt. Someone edited the table behind the service's back.
	ErrCorrupt = &i18n.Error{Code: "baselib.corrupt", Status: http.StatusInternalServerError,
		Msg: i18n.T("基础库记录已损坏或被篡改", "a base-library record is corrupt or was tampered with")}
)

func invalid(field, code, zh, en string) *i18n.Error {
	return &i18n.Error{Code: code, Status: http.StatusBadRequest, Field: field, Msg: i18n.T(zh, en)}
}

// atRow names the record of a batch an error is about: "第3条：…" / "record 3: …" in the
// message (counting from 1, as people do) and "persons[2].id_number" in Field (the index
// in the request, as JSON paths do). The code, and so errors.Is, is unchanged.
func atRow(list string, i int, err error) error {
	e, ok := i18n.As(err)
	if !ok {
		return fmt.Errorf("%s[%d]: %w", list, i, err)
	}
	c := *e
	c.Msg = i18n.T(fmt.Sprintf("第%d条：%s", i+1, e.Msg.ZH), fmt.Sprintf("record %d: %s", i+1, e.Msg.EN))
	c.Field = fmt.Sprintf("%s[%d]", list, i)
	if e.Field != "" {
		c.Field += "." + e.Field
	}
	return &c
}

// ---- validation ----

// cleanText trims v and checks it is present (when required), at most max characters and
// free of control characters.
func cleanText(field, zh, en, v string, required bool, max int) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "" && required:
		return "", invalid(field, "baselib.field.required", zh+"不能为空", en+" is required")
	case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "", invalid(field, "baselib.field.control", zh+"含有不可见的控制字符", en+" contains control characters")
	case utf8.RuneCountInString(v) > max:
		return "", invalid(field, "baselib.field.too_long",
			fmt.Sprintf("%s不能超过 %d 个字符", zh, max), fmt.Sprintf("%s must have at most %d characters", en, max))
	}
	return v, nil
}

// nameDots are the look-alikes people type for the separator of transcribed names
// (阿依古丽·买买提); the register writes U+00B7 (GB 18030 middle dot).
var nameDots = strings.NewReplacer("•", "·", "・", "·", "‧", "·", "∙", "·", "．", "·", "⋅", "·")

// cleanName normalises a person's name (NFKC, one kind of middle dot), so that the name a
// person types at verification compares equal to the registered one.
func cleanName(field, zh, en, v string) (string, error) {
	v, err := cleanText(field, zh, en, v, true, 64)
	if err != nil {
		return "", err
	}
	return nameDots.Replace(norm.NFKC.String(v)), nil
}

// cleanDate checks a YYYY-MM-DD calendar date between 1900 and today.
func cleanDate(field, zh, en, v string, now time.Time) (string, error) {
	v = strings.TrimSpace(v)
	t, err := time.Parse(time.DateOnly, v)
	if err != nil || t.Year() < 1900 {
		return "", invalid(field, "baselib.date.invalid",
			zh+"须为 1900 年以后的有效日期，格式 YYYY-MM-DD", en+" must be a real date from 1900 on, as YYYY-MM-DD")
	}
	if t.After(now) {
		return "", invalid(field, "baselib.date.future", zh+"不能晚于今天", en+" cannot be in the future")
	}
	return t.Format(time.DateOnly), nil
}

// shanxiDivision checks that code is a Shanxi division of one of the allowed levels.
func shanxiDivision(code string, levels ...divisions.Level) (divisions.Division, error) {
	code = strings.TrimSpace(code)
	d, ok := divisions.Lookup(code)
	if ok && strings.HasPrefix(code, "14") && len(code) == 6 {
		for _, l := range levels {
			if d.Level == l {
				return d, nil
			}
		}
	}
	names := make([]string, 0, len(levels))
	enNames := make([]string, 0, len(levels))
	for _, l := range levels {
		names = append(names, l.Chinese())
		enNames = append(enNames, l.English())
	}
	return d, invalid("division_code", "baselib.division.invalid",
		fmt.Sprintf("行政区划代码%q不是山西省的%s行政区划（GB/T 2260）", code, strings.Join(names, "或")),
		fmt.Sprintf("division code %q is not a Shanxi %s-level division (GB/T 2260)", code, strings.Join(enNames, " or ")))
}

// divisionRange turns a filter division into the code range [lo, hi) of the divisions in
// it: GB/T 2260 codes of a county's, city's or province's divisions share its first 6, 4 or
// 2 digits. A range (rather than LIKE) lets both databases use the division index.
func divisionRange(code string) (lo, hi string, err error) {
	d, err := shanxiDivision(code, divisions.Province, divisions.City, divisions.County)
	if err != nil {
		return "", "", err
	}
	n := 6
	switch d.Level {
	case divisions.Province:
		n = 2
	case divisions.City:
		n = 4
	}
	lo = d.Code[:n]
	next, _ := strconv.Atoi(lo) // digits: checked by the lookup
	return lo, fmt.Sprintf("%0*d", n, next+1), nil
}

// divisionName is the display name of a division code, or "" when unknown.
func divisionName(code string) string {
	d, ok := divisions.Lookup(code)
	if !ok {
		return ""
	}
	if d.Level == divisions.County {
		if p, ok := divisions.Lookup(d.Parent); ok && p.Level == divisions.City {
			return p.Name + d.Name
		}
	}
	return d.Name
}

// page applies the list defaults: 50 rows, at most 1000.
func page(limit, offset int) (int, int) {
	if limit <= 0 {
		limit = 50
	}
	return min(limit, 1000), max(offset, 0)
}

// nullBytes stores an empty ciphertext as NULL (the field was not given).
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// open decrypts an optional field; NULL reads as "".
func (s *Service) open(ct []byte, table, id, column string) (string, error) {
	if ct == nil {
		return "", nil
	}
	v, err := s.fc.Open(ct, fieldAAD(table, id, column))
	if err != nil {
		return "", ErrCorrupt.Wrap(fmt.Errorf("%s %s %s: %w", table, id, column, err))
	}
	return v, nil
}

// insertRows runs "prefix (?,..),(?,..)" in statements of at most maxParams bound
// parameters: few round trips, far below both databases' limits (SQLite 32766, PostgreSQL
// 65535).
func insertRows(ctx context.Context, q db.Querier, prefix string, cols int, rows []any) error {
	const maxParams = 6000
	per := max(1, maxParams/cols)
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	for start := 0; start < len(rows)/cols; start += per {
		end := min(start+per, len(rows)/cols)
		var b strings.Builder
		b.Grow(len(prefix) + (end-start)*(len(tuple)+2))
		b.WriteString(prefix)
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
		}
		if _, err := q.Exec(ctx, b.String(), rows[start*cols:end*cols]...); err != nil {
			return err
		}
	}
	return nil
}

// existing returns which of values already occur in column of table, asking in chunks.
func existing(ctx context.Context, q db.Querier, table, column string, values []string) (map[string]bool, error) {
	out := map[string]bool{}
	const chunk = 500
	for start := 0; start < len(values); start += chunk {
		part := values[start:min(start+chunk, len(values))]
		args := make([]any, len(part))
		for i, v := range part {
			args[i] = v
		}
		rows, err := q.Query(ctx, `SELECT `+column+` FROM `+table+` WHERE `+column+` IN (?`+strings.Repeat(", ?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			out[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sameText compares two strings in time independent of where they differ and of their
// lengths (both are hashed first), for verification answers.
func sameText(a, b string) bool {
	ha, hb := crypto.SM3([]byte(a)), crypto.SM3([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// residentNumber validates a resident ID number as of now; the error names field.
func residentNumber(field, v string, now time.Time) (ids.Resident, error) {
	r, err := ids.ValidateResidentAt(v, now)
	if err != nil {
		if e, ok := i18n.As(err); ok && e.Field == "" {
			return r, e.WithField(field)
		}
		return r, err
	}
	return r, nil
}

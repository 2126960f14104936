package dataset

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// QueryOptions select rows for Select, Scan and Count.
type QueryOptions struct {
	// Filter: columns whose values must equal these (after each type's normalisation; an
	// empty value matches an empty cell). Sensitive columns cannot be filtered on.
	Filter map[string]string
	// Within is a row scope: only rows whose division lies within this GB/T 2260 code
	// (a province, prefecture, county or township). "" = every row.
	Within string
	// WithinColumn names the division column Within applies to; "" = Schema.DivisionColumn,
	// the indexed one. Another column works too, by reading the rows of the version.
	WithinColumn string
	// Limit and Offset page Select (Scan and Count ignore them); Limit 0 means 50, at most
	// MaxQueryLimit.
	Limit, Offset int
	// Subject, when set, is called with the plain value of the key column of every row
	// returned, when that column holds resident ID numbers, and its result is kept in
	// Row.Subject: the exchange gives the blind index that attributes the read to the
	// resident ("who read my data"), even though the number itself leaves masked.
	Subject func(residentID string) string
	// MaxScan bounds the rows read from an upstream API to fill a page within a row scope
	// (an upstream cannot be asked for a scope); default DefaultMaxScan.
	MaxScan int
}

// DefaultMaxScan is QueryOptions.MaxScan's default.
const DefaultMaxScan = 200_000

// Errors of selections.
var (
	ErrNotDivisional = i18n.New("dataset.not_divisional", "数据集没有行政区划列，不能按行政区划限定范围",
		"the dataset has no division column to scope its rows by")
	ErrScanTooLarge = &i18n.Error{Code: "dataset.scan_too_large", Status: http.StatusUnprocessableEntity,
		Msg: i18n.T("查询范围过大，请增加查询条件（如行政区划）", "the query reads too many rows; add a filter (for example the division column)")}
	// ErrChanged: the version being read was deleted meanwhile (two newer loads replaced it).
	ErrChanged = &i18n.Error{Code: "dataset.changed", Status: http.StatusConflict,
		Msg: i18n.T("读取期间数据集已更新两次以上，请重试", "the dataset was replaced while it was read; try again")}
)

// selection is QueryOptions checked against one version: SQL conditions and what the rows
// of an upstream must match.
type selection struct {
	where  string
	args   []any
	filter map[string]string // column → normalised value
	// The row scope: rows whose division column (divCol) starts with one of the code
	// prefixes in [lo, hi). indexed: divCol is the indexed column dataset_rows.division.
	within, divCol, lo, hi string
	indexed                bool
	keyCol                 int // the key column when it holds resident IDs (for Subject), else -1
	subject                func(string) string
	maxScan                int
}

// divisionRange is the range of code prefixes of the divisions within code (GB/T 2260: a
// province's descendants share its first 2 digits, a prefecture's 4, a county's 6; a
// township (9 digits) contains itself): every such code c has lo <= c < hi.
func divisionRange(code string) (lo, hi string, err error) {
	d, err := ids.ValidateDivision(code)
	if err != nil {
		return "", "", err
	}
	c := d.Code
	n := 6
	switch {
	case len(c) == 9:
		n = 9
	case c[2:6] == "0000":
		n = 2
	case c[4:6] == "00":
		n = 4
	}
	lo = c[:n]
	// The prefix plus one, with carry ("1499" → "1500"). Codes are digits only, which every
	// collation orders alike. A prefix of nines has no successor among codes: "A" sorts after
	// every digit string in every collation (digits come before letters).
	b := []byte(lo)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return lo, string(b[:i+1]), nil
		}
		b[i] = '0'
	}
	return lo, "A", nil
}

// divisionWithin reports whether code starts with the prefix lo — for codes (digits only)
// the same as lying in the SQL range [lo, hi).
func divisionWithin(code, lo string) bool { return code != "" && strings.HasPrefix(code, lo) }

// InScope reports whether the division code lies within scope by the rule row scopes use
// (QueryOptions.Within); false for a malformed scope or an empty code.
func InScope(scope, code string) bool {
	lo, _, err := divisionRange(scope)
	return err == nil && divisionWithin(code, lo)
}

// selection checks q against v.
func (s *Service) selection(v Version, q QueryOptions) (*selection, error) {
	sel := &selection{filter: map[string]string{}, keyCol: -1, subject: q.Subject, maxScan: q.MaxScan}
	if sel.maxScan <= 0 {
		sel.maxScan = DefaultMaxScan
	}
	names := make([]string, 0, len(q.Filter))
	for n := range q.Filter {
		names = append(names, n)
	}
	sort.Strings(names)
	norm := normalizer{now: s.now}
	for _, n := range names {
		i := v.Schema.column(n)
		if i < 0 {
			return nil, i18n.Errorf(400, ErrFilter.Code, "数据集没有名为“%s”的列", "the dataset has no column %q", clip(n)).WithField(n)
		}
		c := v.Schema.Columns[i]
		if c.Sensitive {
			return nil, i18n.Errorf(400, ErrFilter.Code, "列“%s”是敏感字段，不能作为查询条件", "column %q is sensitive and cannot be filtered on", n).WithField(n)
		}
		c.Required = false
		val, ierr := norm.value(&c, q.Filter[n])
		if ierr != nil {
			return nil, ierr.WithField(n)
		}
		sel.filter[n] = val
		expr, arg := jsonField(s.d.Dialect, n)
		if val == "" {
			sel.where += ` AND ` + expr + ` IS NULL`
			sel.args = append(sel.args, arg)
			continue
		}
		sel.where += ` AND ` + expr + ` = ?`
		sel.args = append(sel.args, arg, val)
	}
	if q.Within != "" {
		col := q.WithinColumn
		if col == "" {
			col = v.Schema.DivisionColumn()
		}
		i := v.Schema.column(col)
		if col == "" || i < 0 || v.Schema.Columns[i].Type != Division {
			return nil, ErrNotDivisional
		}
		if v.Schema.Columns[i].Sensitive {
			// A sealed column cannot be compared in SQL; a scope on it would have to open every row.
			return nil, i18n.Errorf(400, ErrNotDivisional.Code, "行政区划列“%s”是敏感字段，不能按其限定范围",
				"division column %q is sensitive and cannot scope rows", col)
		}
		lo, hi, err := divisionRange(q.Within)
		if err != nil {
			return nil, asIssue(err).WithField("within")
		}
		sel.within, sel.divCol, sel.lo, sel.hi = q.Within, col, lo, hi
		sel.indexed = col == v.Schema.DivisionColumn()
		if sel.indexed {
			sel.where += ` AND division >= ? AND division < ?`
			sel.args = append(sel.args, lo, hi)
		} else {
			expr, arg := jsonField(s.d.Dialect, col)
			sel.where += ` AND ` + expr + ` >= ? AND ` + expr + ` < ?`
			sel.args = append(sel.args, arg, lo, arg, hi)
		}
	}
	if k := v.Schema.column(v.Schema.Key); k >= 0 && v.Schema.Columns[k].Type == ResidentID {
		sel.keyCol = k
	}
	return sel, nil
}

// order is the ORDER BY of a selection: rows of a scope come in (division, row) order, which
// the division index gives without sorting; others in row order.
func (sel *selection) order() string {
	if sel.indexed {
		return ` ORDER BY division, row_no`
	}
	return ` ORDER BY row_no`
}

// finish sets a row's Subject from its opened key and masks its sensitive values.
func (s *Service) finish(v Version, sel *selection, r *Row) {
	if sel.subject != nil && sel.keyCol >= 0 {
		if k := r.Values[v.Schema.Columns[sel.keyCol].Name]; k != "" {
			r.Subject = sel.subject(k)
		}
	}
	for _, c := range v.Schema.Columns {
		if val, ok := r.Values[c.Name]; ok && c.Sensitive {
			r.Values[c.Name] = mask(c.Type, val)
		}
	}
}

// Select returns rows of the active version chosen by q, a page at a time: in row order, or
// for a row scope in (division, row) order through the division index. Sensitive values come
// back masked.
func (s *Service) Select(ctx context.Context, datasetID string, q QueryOptions) ([]Row, error) {
	v, err := s.Active(ctx, datasetID)
	if err != nil {
		return nil, err
	}
	sel, err := s.selection(v, q)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxQueryLimit)
	offset := max(q.Offset, 0)
	if v.Format == UpstreamAPI {
		return s.upstreamSelect(ctx, v, sel, limit, offset)
	}
	args := append([]any{datasetID, v.Version}, sel.args...)
	args = append(args, limit, offset)
	return s.selectRows(ctx, v, sel, selectColumns+sel.where+sel.order()+` LIMIT ? OFFSET ?`, args)
}

const selectColumns = `SELECT row_no, line, data, COALESCE(division, '') FROM dataset_rows WHERE dataset_id = ? AND version = ?`

// selectRows runs one page's query and returns its rows, masked, the query closed.
func (s *Service) selectRows(ctx context.Context, v Version, sel *selection, q string, args []any) ([]Row, error) {
	rows, err := s.d.Query(ctx, q, args...)
	if err != nil {
		return nil, internal("query", err)
	}
	defer rows.Close()
	out := []Row{}
	for rows.Next() {
		var r Row
		var data string
		if err := rows.Scan(&r.No, &r.Line, &data, &r.division); err != nil {
			return nil, internal("query", err)
		}
		if r.Values, err = s.decode(v, r.No, data, false); err != nil {
			return nil, err
		}
		s.finish(v, sel, &r)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("query", err)
	}
	return out, nil
}

// ScanPage is how many rows Scan reads per query.
const ScanPage = 1000

// Scan calls fn with every row of the active version chosen by q (Limit and Offset are
// ignored), masked as Select masks them, in Select's order: the whole result without paging,
// for bulk extracts. The version is fixed when Scan starts, so a load meanwhile does not mix
// versions; rows are read in pages of ScanPage by key (no offsets), each page's query closed
// before fn sees its rows, so fn may use the database and memory stays bounded by one page.
// fn returning ErrStop ends the scan without an error. Scan returns the version it read.
func (s *Service) Scan(ctx context.Context, datasetID string, q QueryOptions, fn func(Row) error) (Version, error) {
	v, err := s.Active(ctx, datasetID)
	if err != nil {
		return v, err
	}
	sel, err := s.selection(v, q)
	if err != nil {
		return v, err
	}
	if v.Format == UpstreamAPI {
		return v, s.upstreamScan(ctx, v, sel, fn)
	}
	base := append([]any{v.DatasetID, v.Version}, sel.args...)
	var last *Row
	for {
		page, err := s.scanPage(ctx, v, sel, base, last)
		if err != nil {
			return v, err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				if errors.Is(err, ErrStop) {
					return v, nil
				}
				return v, err
			}
		}
		if len(page) < ScanPage {
			break
		}
		last = &page[len(page)-1]
	}
	// Old versions are deleted two loads later; if that happened during the scan, its end
	// may have been cut off.
	var st Status
	err = s.d.QueryRow(ctx, `SELECT status FROM dataset_versions WHERE dataset_id = ? AND version = ?`, v.DatasetID, v.Version).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && st != Active && st != Superseded) {
		return v, ErrChanged
	}
	if err != nil {
		return v, internal("scan", err)
	}
	return v, nil
}

// scanPage reads the page of Scan after row last (nil: the first page). Without a row scope
// the primary key gives rows in order after last. Within a scope the order is (division,
// row): the rest of last's division is one index range (division = d AND row_no > n), the
// divisions after it another (division > d) — two seeks instead of one condition on
// (division, row_no), which SQLite would check row by row from the start of the scope.
func (s *Service) scanPage(ctx context.Context, v Version, sel *selection, base []any, last *Row) ([]Row, error) {
	limit := []any{ScanPage}
	switch {
	case last == nil:
		return s.selectRows(ctx, v, sel, selectColumns+sel.where+sel.order()+` LIMIT ?`, append(slices.Clone(base), limit...))
	case !sel.indexed:
		return s.selectRows(ctx, v, sel, selectColumns+sel.where+` AND row_no > ?`+sel.order()+` LIMIT ?`,
			append(slices.Clone(base), last.No, ScanPage))
	}
	page, err := s.selectRows(ctx, v, sel, selectColumns+sel.where+` AND division = ? AND row_no > ? ORDER BY row_no LIMIT ?`,
		append(slices.Clone(base), last.division, last.No, ScanPage))
	if err != nil || len(page) == ScanPage {
		return page, err
	}
	more, err := s.selectRows(ctx, v, sel, selectColumns+sel.where+` AND division > ?`+sel.order()+` LIMIT ?`,
		append(slices.Clone(base), last.division, ScanPage-len(page)))
	return append(page, more...), err
}

// Count returns how many rows of the active version q selects, or -1 when the rows live at
// an upstream (which is not asked to count).
func (s *Service) Count(ctx context.Context, datasetID string, q QueryOptions) (int64, error) {
	v, err := s.Active(ctx, datasetID)
	if err != nil {
		return 0, err
	}
	sel, err := s.selection(v, q)
	if err != nil {
		return 0, err
	}
	if v.Format == UpstreamAPI {
		return -1, nil
	}
	var n int64
	args := append([]any{datasetID, v.Version}, sel.args...)
	if err := s.d.QueryRow(ctx, `SELECT COUNT(*) FROM dataset_rows WHERE dataset_id = ? AND version = ?`+sel.where, args...).Scan(&n); err != nil {
		return 0, internal("count", err)
	}
	return n, nil
}

// CheckQuery reports whether q is a valid selection of the active version (filter columns,
// values, row scope) without reading rows.
func (s *Service) CheckQuery(ctx context.Context, datasetID string, q QueryOptions) error {
	v, err := s.Active(ctx, datasetID)
	if err != nil {
		return err
	}
	_, err = s.selection(v, q)
	return err
}

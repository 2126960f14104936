package quality

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"

	"github.com/dgov/dgov/internal/org/divisions"
)

const reportColumns = `id, dataset_id, version, resource_id, dept_id, division_code, ran_at, total_rows, bad_rows, findings_total, stale, rules_json`

func scanReport(sc interface{ Scan(...any) error }) (Report, error) {
	var r Report
	var rules string
	if err := sc.Scan(&r.ID, &r.DatasetID, &r.Version, &r.ResourceID, &r.DeptID, &r.DivisionCode, &r.RanAt, &r.TotalRows, &r.BadRows,
		&r.FindingsTotal, &r.Stale, &rules); err != nil {
		return r, err
	}
	r.RanAt = r.RanAt.UTC()
	return r, json.Unmarshal([]byte(rules), &r.Rules)
}

// ReportFor returns the latest report of a dataset with up to limit of its stored findings
// (0: all stored), or ErrNoReport.
func (s *Service) ReportFor(ctx context.Context, datasetID string, limit int) (Report, error) {
	r, err := scanReport(s.d.QueryRow(ctx, `SELECT `+reportColumns+` FROM quality_reports WHERE dataset_id = ?
		ORDER BY ran_at DESC, id DESC LIMIT 1`, datasetID))
	if errors.Is(err, sql.ErrNoRows) {
		return Report{}, ErrNoReport
	}
	if err != nil {
		return Report{}, internal("read report", err)
	}
	if limit <= 0 {
		limit = s.max
	}
	rows, err := s.d.Query(ctx, `SELECT row_no, line, column_name, rule_id, kind, code, reason_zh, reason_en FROM quality_findings
		WHERE report_id = ? ORDER BY seq LIMIT ?`, r.ID, limit)
	if err != nil {
		return Report{}, internal("read findings", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f Finding
		if err := rows.Scan(&f.RowNo, &f.Line, &f.Column, &f.RuleID, &f.Kind, &f.Code, &f.Reason.ZH, &f.Reason.EN); err != nil {
			return Report{}, internal("read findings", err)
		}
		r.Findings = append(r.Findings, f)
	}
	return r, internal("read findings", rows.Err())
}

// Scope selects the datasets of a department report: those of one provider department and/or
// those whose resource's division lies within Division (rolled up). Both empty: all.
type Scope struct {
	DeptID   string
	Division string
}

// KindScore sums the results of every rule of one kind across datasets.
type KindScore struct {
	Kind    Kind  `json:"kind"`
	Checked int64 `json:"checked"`
	Failed  int64 `json:"failed"`
}

// Score is the share of checks passed, in percent.
func (k KindScore) Score() float64 { return score(k.Checked-k.Failed, k.Checked) }

// Summary is the quality of a department's (or a division's) datasets: the latest report of
// each, without findings, and the totals.
type Summary struct {
	Reports   []Report    `json:"reports"`
	TotalRows int64       `json:"total_rows"`
	BadRows   int64       `json:"bad_rows"`
	Stale     int         `json:"stale"` // datasets whose timeliness rule failed
	Kinds     []KindScore `json:"kinds"` // in the order of KindOrder, kinds without checks left out
}

// Score is the share of rows passing every row rule across the datasets, in percent.
func (s Summary) Score() float64 { return score(s.TotalRows-s.BadRows, s.TotalRows) }

// KindOrder is the order kinds are listed in.
var KindOrder = []Kind{Completeness, Format, Uniqueness, Reference, Timeliness}

// DepartmentReport aggregates the latest report of every dataset in scope.
func (s *Service) DepartmentReport(ctx context.Context, sc Scope) (Summary, error) {
	q := `SELECT ` + reportColumns + ` FROM quality_reports r WHERE NOT EXISTS (SELECT 1 FROM quality_reports n
		WHERE n.dataset_id = r.dataset_id AND (n.ran_at > r.ran_at OR (n.ran_at = r.ran_at AND n.id > r.id)))`
	var args []any
	if sc.DeptID != "" {
		q += ` AND r.dept_id = ?`
		args = append(args, sc.DeptID)
	}
	q += ` ORDER BY r.dataset_id`
	rows, err := s.d.Query(ctx, q, args...)
	if err != nil {
		return Summary{}, internal("department report", err)
	}
	defer rows.Close()
	out := Summary{Reports: []Report{}}
	kinds := map[Kind]*KindScore{}
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return Summary{}, internal("department report", err)
		}
		if sc.Division != "" && (r.DivisionCode == "" || !divisions.Contains(sc.Division, r.DivisionCode)) {
			continue
		}
		out.Reports = append(out.Reports, r)
		out.TotalRows += r.TotalRows
		out.BadRows += r.BadRows
		if r.Stale {
			out.Stale++
		}
		for _, rr := range r.Rules {
			k := kinds[rr.Rule.Kind]
			if k == nil {
				k = &KindScore{Kind: rr.Rule.Kind}
				kinds[rr.Rule.Kind] = k
			}
			k.Checked += rr.Checked
			k.Failed += rr.Failed
		}
	}
	if err := rows.Err(); err != nil {
		return Summary{}, internal("department report", err)
	}
	for _, k := range KindOrder {
		if ks := kinds[k]; ks != nil && ks.Checked > 0 {
			out.Kinds = append(out.Kinds, *ks)
		}
	}
	sort.SliceStable(out.Reports, func(i, j int) bool { return out.Reports[i].DatasetID < out.Reports[j].DatasetID })
	return out, nil
}

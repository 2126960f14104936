package quality

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Reasons of findings; the code of a format finding is the validator's (e.g. ids.resident.checksum).
var (
	reasonMissing   = i18n.T("缺少值", "value is missing")
	reasonDuplicate = "值与第%d行重复"
	reasonNotFound  = map[string]i18n.Text{
		LibraryPopulation:    i18n.T("身份证号在人口库中不存在", "the ID number is not in the population library"),
		LibraryLegalEntities: i18n.T("统一社会信用代码在法人库中不存在", "the credit code is not in the legal entities library"),
	}
	reasonNotValid = map[string]i18n.Text{
		LibraryPopulation:    i18n.T("不是有效的身份证号，无法在人口库中核对", "not a valid ID number, so not in the population library"),
		LibraryLegalEntities: i18n.T("不是有效的统一社会信用代码，无法在法人库中核对", "not a valid credit code, so not in the legal entities library"),
	}
)

// evaluator holds the state of one run.
type evaluator struct {
	s       *Service
	ctx     context.Context
	now     time.Time
	rules   []Rule
	results []RuleResult
	regex   []*regexp.Regexp
	seen    []map[uint64]int64 // per uniqueness rule: hash of value → first row
	// formatted: per reference rule, whether a format rule checks the same column for the
	// library's identifier; then a malformed value is that rule's finding, not this one's too.
	formatted []bool
	report    *Report
}

// Run checks the active version of a dataset against its rules and stores the report.
func (s *Service) Run(ctx context.Context, datasetID string) (Report, error) {
	return s.run(ctx, authz.Subject{}, datasetID)
}

// run is Run on behalf of actor (audited unless the zero Subject: the system).
func (s *Service) run(ctx context.Context, actor authz.Subject, datasetID string) (Report, error) {
	v, err := s.data.Active(ctx, datasetID)
	if err != nil {
		return Report{}, err
	}
	t, err := s.Target(ctx, datasetID)
	if err != nil && !errors.Is(err, ErrNoTarget) {
		return Report{}, err
	}
	rules, err := s.rules(ctx, datasetID, v.Schema, t)
	if err != nil {
		return Report{}, err
	}
	rep := &Report{ID: db.NewID(), DatasetID: datasetID, Version: v.Version, RanAt: s.clock()}
	if t != nil {
		rep.ResourceID, rep.DeptID, rep.DivisionCode = t.ResourceID, t.DeptID, t.DivisionCode
	}
	e, err := s.newEvaluator(ctx, rules, rep)
	if err != nil {
		return Report{}, err
	}
	for i, r := range rules {
		if r.Kind == Timeliness {
			e.timeliness(i, v, t)
		}
	}
	if err := s.data.Each(ctx, datasetID, v.Version, e.row); err != nil {
		return Report{}, err
	}
	rep.Rules = e.results
	if err := s.store(ctx, actor, rep); err != nil {
		return Report{}, err
	}
	return *rep, nil
}

func (e *evaluator) find(f Finding) {
	e.report.FindingsTotal++
	if len(e.report.Findings) < e.s.max {
		e.report.Findings = append(e.report.Findings, f)
	}
}

// newEvaluator prepares a run of rules that records into rep.
func (s *Service) newEvaluator(ctx context.Context, rules []Rule, rep *Report) (*evaluator, error) {
	e := &evaluator{s: s, ctx: ctx, now: s.now(), rules: rules, report: rep,
		results: make([]RuleResult, len(rules)), regex: make([]*regexp.Regexp, len(rules)), seen: make([]map[uint64]int64, len(rules)),
		formatted: make([]bool, len(rules))}
	for i, r := range rules {
		e.results[i].Rule = r
		switch {
		case r.Kind == Format && r.Format == FormatRegex:
			var err error
			if e.regex[i], err = compilePattern(r.Pattern); err != nil {
				return nil, ruleErr("pattern", "正则表达式无效", "the regular expression is invalid")
			}
		case r.Kind == Uniqueness:
			e.seen[i] = map[uint64]int64{}
		case r.Kind == Reference:
			want := map[string]string{LibraryPopulation: FormatResidentID, LibraryLegalEntities: FormatCreditCode}[r.Library]
			for _, o := range rules {
				e.formatted[i] = e.formatted[i] || (o.Kind == Format && o.Column == r.Column && o.Format == want)
			}
		}
	}
	return e, nil
}

// compilePattern compiles a regex rule's pattern to match whole values.
func compilePattern(p string) (*regexp.Regexp, error) { return regexp.Compile(`^(?:` + p + `)$`) }

// loadedAt is when a version became active: its age counts from then.
func loadedAt(v dataset.Version) time.Time {
	if v.FinishedAt != nil {
		return *v.FinishedAt
	}
	return v.StartedAt
}

// staleness measures a version against the update cycle of the resource behind it, at now:
// measured is false when there is nothing to measure against (not attached, or an irregular
// cycle); limit is the cycle plus the grace period (graceHours, 0 = DefaultGrace).
func staleness(v dataset.Version, t *Target, graceHours int, now time.Time) (measured, stale bool, age, limit time.Duration) {
	if t == nil {
		return false, false, 0, 0
	}
	period, ok := cycleLength[catalog.UpdateCycle(t.UpdateCycle)]
	if !ok {
		return false, false, 0, 0
	}
	grace := DefaultGrace
	if graceHours > 0 {
		grace = time.Duration(graceHours) * time.Hour
	}
	age, limit = now.Sub(loadedAt(v)), period+grace
	return true, age > limit, age, limit
}

// timeliness checks the age of the version (since it became active) against the cycle.
func (e *evaluator) timeliness(i int, v dataset.Version, t *Target) {
	r := e.rules[i]
	measured, stale, age, limit := staleness(v, t, r.GraceHours, e.now)
	if !measured {
		return // nothing to measure against: not counted
	}
	e.results[i].Checked = 1
	if !stale {
		return
	}
	e.results[i].Failed = 1
	e.report.Stale = true
	days := int64(math.Floor(age.Hours() / 24))
	hours := int64(limit.Hours())
	cycle := catalog.UpdateCycle(t.UpdateCycle).Name()
	e.find(Finding{RuleID: r.ID, Kind: Timeliness, Code: "quality.stale",
		Reason: i18n.T(fmt.Sprintf("数据已%d天未更新，更新周期为%s（含宽限共%d小时）", days, cycle.ZH, hours),
			fmt.Sprintf("not updated for %d days; the update cycle is %s (%d hours with grace)", days, cycle.EN, hours))})
}

// row evaluates every row rule on one row.
func (e *evaluator) row(row dataset.Row) error {
	e.report.TotalRows++
	bad := false
	for i, r := range e.rules {
		if r.Kind == Timeliness {
			continue
		}
		e.results[i].Checked++
		code, reason, err := e.check(i, r, row)
		if err != nil {
			return err
		}
		if code == "" {
			continue
		}
		e.results[i].Failed++
		bad = true
		e.find(Finding{RowNo: row.No, Line: row.Line, Column: r.Column, RuleID: r.ID, Kind: r.Kind, Code: code, Reason: reason})
	}
	if bad {
		e.report.BadRows++
	}
	return nil
}

// check returns the code and reason of a failure ("" when the row passes).
func (e *evaluator) check(i int, r Rule, row dataset.Row) (string, i18n.Text, error) {
	v := row.Values[r.Column]
	if r.Kind == Completeness {
		if v == "" {
			return "quality.missing", reasonMissing, nil
		}
		return "", i18n.Text{}, nil
	}
	if v == "" { // an empty value is completeness's business
		return "", i18n.Text{}, nil
	}
	switch r.Kind {
	case Format:
		if err := e.format(i, r, v); err != nil {
			ie, _ := i18n.As(err)
			return ie.Code, ie.Msg, nil
		}
	case Uniqueness:
		h := fnv.New64a()
		h.Write([]byte(v))
		k := h.Sum64()
		if first, ok := e.seen[i][k]; ok {
			return "quality.duplicate", i18n.T(fmt.Sprintf(reasonDuplicate, first), fmt.Sprintf("value repeats row %d", first)), nil
		}
		e.seen[i][k] = row.No
	case Reference:
		var err error
		if r.Library == LibraryPopulation {
			_, err = e.s.base.FindPersonByIDNumber(e.ctx, v)
		} else {
			_, err = e.s.base.FindEntityByCreditCode(e.ctx, v)
		}
		switch {
		case err == nil:
		case errors.Is(err, i18n.ErrNotFound):
			return "quality.not_in_library", reasonNotFound[r.Library], nil
		default:
			if ie, ok := i18n.As(err); ok && ie.HTTPStatus() < 500 {
				if e.formatted[i] {
					return "", i18n.Text{}, nil
				}
				return "quality.not_in_library", reasonNotValid[r.Library], nil
			}
			return "", i18n.Text{}, err
		}
	}
	return "", i18n.Text{}, nil
}

var dateFormatErr = i18n.New("quality.date", "不是有效日期（如 2024-03-01）", "not a valid date (e.g. 2024-03-01)")
var regexFormatErr = i18n.New("quality.pattern", "不符合规定的格式", "does not match the required pattern")

func (e *evaluator) format(i int, r Rule, v string) error {
	var err error
	switch r.Format {
	case FormatResidentID:
		_, err = ids.ValidateResidentAt(v, e.now)
	case FormatCreditCode:
		_, err = ids.ValidateCreditCode(v)
	case FormatDivision:
		_, err = ids.ValidateDivision(v)
	case FormatMobile:
		_, err = ids.ValidateMobile(v)
	case FormatDate:
		if _, perr := time.Parse("2006-01-02", v); perr != nil {
			err = dateFormatErr
		}
	case FormatRegex:
		if !e.regex[i].MatchString(v) {
			err = regexFormatErr
		}
	}
	if err != nil {
		if _, ok := i18n.As(err); !ok {
			err = regexFormatErr.Wrap(err)
		}
	}
	return err
}

// store writes the report and its findings in one transaction, audited when a person ran it.
func (s *Service) store(ctx context.Context, actor authz.Subject, r *Report) error {
	rules, err := json.Marshal(r.Rules)
	if err != nil {
		return internal("store report", err)
	}
	return internal("store report", s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO quality_reports (id, dataset_id, version, resource_id, dept_id, division_code, ran_at,
			total_rows, bad_rows, findings_total, stale, rules_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.DatasetID, r.Version, r.ResourceID, r.DeptID, r.DivisionCode, r.RanAt, r.TotalRows, r.BadRows, r.FindingsTotal, r.Stale, string(rules)); err != nil {
			return err
		}
		const per = 200 // findings per statement: 10 values each, well under both databases' limits
		for start := 0; start < len(r.Findings); start += per {
			end := min(start+per, len(r.Findings))
			q := `INSERT INTO quality_findings (report_id, seq, row_no, line, column_name, rule_id, kind, code, reason_zh, reason_en) VALUES `
			args := make([]any, 0, (end-start)*10)
			for j := start; j < end; j++ {
				if j > start {
					q += ", "
				}
				q += "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
				f := r.Findings[j]
				args = append(args, r.ID, j+1, f.RowNo, f.Line, f.Column, f.RuleID, f.Kind, f.Code, f.Reason.ZH, f.Reason.EN)
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return err
			}
		}
		if actor.Kind == "" {
			return nil
		}
		return s.record(ctx, tx, actor, ActionRun, r.DatasetID, map[string]any{"report": r.ID, "version": r.Version,
			"total_rows": r.TotalRows, "bad_rows": r.BadRows})
	}))
}

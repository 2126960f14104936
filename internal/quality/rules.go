package quality

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// cycleLength is how old a dataset of each update cycle may be (before the grace period);
// realtime data is expected to be reloaded at least daily, irregular data has no deadline.
var cycleLength = map[catalog.UpdateCycle]time.Duration{
	catalog.CycleRealtime:  24 * time.Hour,
	catalog.CycleDaily:     24 * time.Hour,
	catalog.CycleWeekly:    7 * 24 * time.Hour,
	catalog.CycleMonthly:   31 * 24 * time.Hour,
	catalog.CycleQuarterly: 92 * 24 * time.Hour,
	catalog.CycleYearly:    366 * 24 * time.Hour,
}

// typedFormats maps dataset column types to the format a default rule checks.
var typedFormats = map[dataset.Type]string{
	dataset.ResidentID: FormatResidentID,
	dataset.CreditCode: FormatCreditCode,
	dataset.Division:   FormatDivision,
	dataset.Mobile:     FormatMobile,
	dataset.Date:       FormatDate,
}

func defaultID(k Kind, column string) string { return "default:" + string(k) + ":" + column }

// DefaultRules derives rules from a schema and, when the dataset is attached (t not nil), the
// resource's update cycle.
func DefaultRules(datasetID string, schema dataset.Schema, t *Target) []Rule {
	var out []Rule
	add := func(k Kind, column, format string) {
		out = append(out, Rule{ID: defaultID(k, column), DatasetID: datasetID, Kind: k, Column: column, Format: format, Default: true})
	}
	for _, c := range schema.Columns {
		key := c.Name == schema.Key
		if c.Required || key {
			add(Completeness, c.Name, "")
		}
		if f, ok := typedFormats[c.Type]; ok {
			add(Format, c.Name, f)
		}
		if c.Unique || key {
			add(Uniqueness, c.Name, "")
		}
	}
	if t != nil {
		if _, ok := cycleLength[catalog.UpdateCycle(t.UpdateCycle)]; ok {
			add(Timeliness, "", "")
		}
	}
	return out
}

func ruleErr(field, zh, en string) error {
	return (&i18n.Error{Code: ErrRule.Code, Status: 400, Msg: i18n.T(zh, en)}).WithField(field)
}

// check validates an explicit rule against the schema of the active version, if any.
func (r *Rule) check(schema *dataset.Schema) error {
	r.Column = strings.TrimSpace(r.Column)
	if r.Kind != Timeliness && r.Column == "" {
		return ruleErr("column", "请指定列", "name the column")
	}
	if r.Kind != Timeliness && (utf8.RuneCountInString(r.Column) > dataset.MaxNameLength || !utf8.ValidString(r.Column)) {
		return ruleErr("column", "列名过长或不是有效文本", "the column name is too long or not valid text")
	}
	if schema != nil && r.Kind != Timeliness {
		found := false
		for _, c := range schema.Columns {
			found = found || c.Name == r.Column
		}
		if !found {
			return ruleErr("column", fmt.Sprintf("数据集没有名为“%s”的列", r.Column), fmt.Sprintf("the dataset has no column %q", r.Column))
		}
	}
	switch r.Kind {
	case Completeness, Uniqueness:
	case Format:
		if _, ok := FormatNames[r.Format]; !ok {
			return ruleErr("format", "未知的格式", "unknown format")
		}
		if r.Format == FormatRegex {
			if r.Pattern == "" {
				return ruleErr("pattern", "请填写正则表达式", "give the regular expression")
			}
			if len(r.Pattern) > MaxPatternLength {
				return ruleErr("pattern", fmt.Sprintf("正则表达式最长 %d 字节", MaxPatternLength), fmt.Sprintf("the regular expression is at most %d bytes", MaxPatternLength))
			}
			// Compiled alone, not wrapped as a run wraps it: "a)|(b" compiles only wrapped, and
			// then matches what its author never meant.
			if _, err := regexp.Compile(r.Pattern); err != nil {
				return ruleErr("pattern", "正则表达式无效", "the regular expression is invalid")
			}
		}
	case Reference:
		if _, ok := LibraryNames[r.Library]; !ok {
			return ruleErr("library", "未知的基础库", "unknown base library")
		}
	case Timeliness:
		r.Column = ""
		if r.GraceHours < 0 || r.GraceHours > MaxGraceHours {
			return ruleErr("grace_hours", fmt.Sprintf("宽限时间应在 0–%d 小时之间", MaxGraceHours), fmt.Sprintf("the grace period is 0–%d hours", MaxGraceHours))
		}
	default:
		return ruleErr("kind", "未知的规则类型", "unknown rule kind")
	}
	if r.Kind != Format {
		r.Format = ""
	}
	if r.Format != FormatRegex {
		r.Pattern = ""
	}
	if r.Kind != Reference {
		r.Library = ""
	}
	if r.Kind != Timeliness {
		r.GraceHours = 0
	}
	return nil
}

// Limits of explicit rules, which come from outside (forms, the API).
const (
	MaxRulesPerDataset = 200
	MaxPatternLength   = 500 // bytes; RE2 matches in linear time, the cap bounds its memory
	MaxGraceHours      = 366 * 24
)

// schemaOf is the schema of the active version, or nil when there is none yet.
func (s *Service) schemaOf(ctx context.Context, datasetID string) (*dataset.Schema, error) {
	v, err := s.data.Active(ctx, datasetID)
	switch {
	case err == nil:
		return &v.Schema, nil
	case errors.Is(err, dataset.ErrNoActive):
		return nil, nil
	}
	return nil, err
}

// AddRule stores an explicit rule of a dataset (checked against the active version's schema
// when there is one) and returns it with its ID.
func (s *Service) AddRule(ctx context.Context, actor authz.Subject, r Rule) (Rule, error) {
	schema, err := s.schemaOf(ctx, r.DatasetID)
	if err != nil {
		return Rule{}, err
	}
	if err := r.check(schema); err != nil {
		return Rule{}, err
	}
	r.ID, r.Default, r.CreatedBy, r.CreatedAt = db.NewID(), false, actor.String(), s.clock()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM quality_rules WHERE dataset_id = ?`, r.DatasetID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxRulesPerDataset {
			return errTooManyRules
		}
		if err := insertRule(ctx, tx, r); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, ActionRuleAdd, r.DatasetID, ruleDetail(r))
	})
	if err != nil {
		return Rule{}, internal("add rule", err)
	}
	return r, nil
}

var errTooManyRules = ruleErr("rules", fmt.Sprintf("每个数据集最多 %d 条规则", MaxRulesPerDataset),
	fmt.Sprintf("a dataset has at most %d rules", MaxRulesPerDataset))

func insertRule(ctx context.Context, tx *db.Tx, r Rule) error {
	_, err := tx.Exec(ctx, `INSERT INTO quality_rules (id, dataset_id, kind, column_name, format, pattern, library, grace_hours, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.DatasetID, r.Kind, r.Column, r.Format, r.Pattern, r.Library, r.GraceHours, r.CreatedBy, r.CreatedAt)
	return err
}

func ruleDetail(r Rule) map[string]any {
	d := map[string]any{"rule": r.ID, "kind": string(r.Kind)}
	for k, v := range map[string]string{"column": r.Column, "format": r.Format, "pattern": r.Pattern, "library": r.Library} {
		if v != "" {
			d[k] = v
		}
	}
	if r.GraceHours > 0 {
		d["grace_hours"] = r.GraceHours
	}
	return d
}

// SetRules replaces every explicit rule of a dataset with rules, in one transaction: all are
// checked first, and a bad one changes nothing (its error names "rules[i]"). Identical rules
// are refused: each would report the same faults twice. It returns the rules a run now applies.
func (s *Service) SetRules(ctx context.Context, actor authz.Subject, datasetID string, rules []Rule) ([]Rule, error) {
	if len(rules) > MaxRulesPerDataset {
		return nil, errTooManyRules
	}
	schema, err := s.schemaOf(ctx, datasetID)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	seen := map[Rule]int{}
	out := make([]Rule, len(rules))
	for i, r := range rules {
		r.DatasetID = datasetID
		if err := r.check(schema); err != nil {
			e, _ := i18n.As(err)
			return nil, e.WithField(fmt.Sprintf("rules[%d].%s", i, e.Field))
		}
		k := Rule{Kind: r.Kind, Column: r.Column, Format: r.Format, Pattern: r.Pattern, Library: r.Library, GraceHours: r.GraceHours}
		if j, dup := seen[k]; dup {
			return nil, ruleErr(fmt.Sprintf("rules[%d]", i), fmt.Sprintf("第%d条规则与第%d条相同", i+1, j+1), fmt.Sprintf("rule %d is the same as rule %d", i+1, j+1))
		}
		seen[k] = i
		// Rules keep their order: created_at ascends by a microsecond each (the precision stored).
		r.ID, r.Default, r.CreatedBy, r.CreatedAt = db.NewID(), false, actor.String(), now.Add(time.Duration(i)*time.Microsecond)
		out[i] = r
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM quality_rules WHERE dataset_id = ?`, datasetID); err != nil {
			return err
		}
		for _, r := range out {
			if err := insertRule(ctx, tx, r); err != nil {
				return err
			}
		}
		return s.record(ctx, tx, actor, ActionRulesSet, datasetID, map[string]any{"rules": len(out)})
	})
	if err != nil {
		return nil, internal("set rules", err)
	}
	return s.Rules(ctx, datasetID)
}

// DeleteRule removes an explicit rule (i18n.ErrNotFound if the dataset has none with this ID).
func (s *Service) DeleteRule(ctx context.Context, actor authz.Subject, datasetID, id string) error {
	return internal("delete rule", s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM quality_rules WHERE dataset_id = ? AND id = ?`, datasetID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return i18n.ErrNotFound
		}
		return s.record(ctx, tx, actor, ActionRuleDelete, datasetID, map[string]any{"rule": id})
	}))
}

// ExplicitRules lists the rules staff added to a dataset, oldest first.
func (s *Service) ExplicitRules(ctx context.Context, datasetID string) ([]Rule, error) {
	rows, err := s.d.Query(ctx, `SELECT id, dataset_id, kind, column_name, format, pattern, library, grace_hours, created_by, created_at
		FROM quality_rules WHERE dataset_id = ? ORDER BY created_at, id`, datasetID)
	if err != nil {
		return nil, internal("list rules", err)
	}
	defer rows.Close()
	var out []Rule
	for rows.Next() {
		var r Rule
		if err := rows.Scan(&r.ID, &r.DatasetID, &r.Kind, &r.Column, &r.Format, &r.Pattern, &r.Library, &r.GraceHours, &r.CreatedBy, &r.CreatedAt); err != nil {
			return nil, internal("list rules", err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		out = append(out, r)
	}
	return out, internal("list rules", rows.Err())
}

// Rules are the rules a run of the dataset applies: the defaults of the active version's
// schema (none without an active version), except where an explicit rule of the same kind and
// column replaces one, then the explicit rules.
func (s *Service) Rules(ctx context.Context, datasetID string) ([]Rule, error) {
	v, err := s.data.Active(ctx, datasetID)
	if err != nil && !errors.Is(err, dataset.ErrNoActive) {
		return nil, err
	}
	t, err := s.Target(ctx, datasetID)
	if err != nil && !errors.Is(err, ErrNoTarget) {
		return nil, err
	}
	return s.rules(ctx, datasetID, v.Schema, t)
}

func (s *Service) rules(ctx context.Context, datasetID string, schema dataset.Schema, t *Target) ([]Rule, error) {
	explicit, err := s.ExplicitRules(ctx, datasetID)
	if err != nil {
		return nil, err
	}
	replaced := map[string]bool{}
	for _, r := range explicit {
		replaced[defaultID(r.Kind, r.Column)] = true
	}
	var out []Rule
	for _, r := range DefaultRules(datasetID, schema, t) {
		if !replaced[r.ID] {
			out = append(out, r)
		}
	}
	return append(out, explicit...), nil
}

// Attach records the catalogue resource a dataset stands behind; attach again after the
// resource's provider or update cycle changed. The caller has read res with its own rights.
func (s *Service) Attach(ctx context.Context, actor authz.Subject, datasetID string, res catalog.Resource) (Target, error) {
	if _, err := s.data.Active(ctx, datasetID); err != nil && !errors.Is(err, dataset.ErrNoActive) {
		return Target{}, err
	}
	t := Target{DatasetID: datasetID, ResourceID: res.ID, ResourceName: res.Name, DeptID: res.ProviderDeptID, DeptName: res.Provider,
		DivisionCode: res.DivisionCode, UpdateCycle: string(res.UpdateCycle), UpdatedAt: s.clock()}
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := upsertTarget(ctx, tx, t); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, ActionAttach, datasetID, map[string]any{"resource": res.ID})
	})
	if err != nil {
		return Target{}, internal("attach", err)
	}
	return t, nil
}

func upsertTarget(ctx context.Context, tx *db.Tx, t Target) error {
	_, err := tx.Exec(ctx, `INSERT INTO quality_targets (dataset_id, resource_id, resource_name, dept_id, dept_name, division_code, update_cycle, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id) DO UPDATE SET resource_id = excluded.resource_id, resource_name = excluded.resource_name,
		dept_id = excluded.dept_id, dept_name = excluded.dept_name, division_code = excluded.division_code, update_cycle = excluded.update_cycle,
		updated_at = excluded.updated_at`,
		t.DatasetID, t.ResourceID, t.ResourceName, t.DeptID, t.DeptName, t.DivisionCode, t.UpdateCycle, t.UpdatedAt)
	return err
}

const targetColumns = `dataset_id, resource_id, resource_name, dept_id, dept_name, division_code, update_cycle, updated_at`

func scanTarget(sc interface{ Scan(...any) error }) (Target, error) {
	var t Target
	err := sc.Scan(&t.DatasetID, &t.ResourceID, &t.ResourceName, &t.DeptID, &t.DeptName, &t.DivisionCode, &t.UpdateCycle, &t.UpdatedAt)
	t.UpdatedAt = t.UpdatedAt.UTC()
	return t, err
}

// Target returns what a dataset is attached to, or ErrNoTarget.
func (s *Service) Target(ctx context.Context, datasetID string) (*Target, error) {
	t, err := scanTarget(s.d.QueryRow(ctx, `SELECT `+targetColumns+` FROM quality_targets WHERE dataset_id = ?`, datasetID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoTarget
	}
	if err != nil {
		return nil, internal("read target", err)
	}
	return &t, nil
}

// Targets lists the attached datasets, by dataset id.
func (s *Service) Targets(ctx context.Context) ([]Target, error) {
	rows, err := s.d.Query(ctx, `SELECT `+targetColumns+` FROM quality_targets ORDER BY dataset_id`)
	if err != nil {
		return nil, internal("list targets", err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		t, err := scanTarget(rows)
		if err != nil {
			return nil, internal("list targets", err)
		}
		out = append(out, t)
	}
	return out, internal("list targets", rows.Err())
}

func internal(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := i18n.As(err); ok {
		return err
	}
	return i18n.ErrInternal.Wrap(fmt.Errorf("quality: %s: %w", what, err))
}

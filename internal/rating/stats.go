package rating

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Counts are the ratings of a group.
type Counts struct {
	Total int `json:"total"`
	// ByLevel[l] is the number of ratings at level l (index 0 unused).
	ByLevel [6]int `json:"by_level"`
	// Poor is 差评: levels 1 and 2.
	Poor int `json:"poor"`
	// Satisfaction is the satisfaction rate (好评率) in [0, 1]: ratings at 非常满意, 满意 and
	// 基本满意 over all ratings, as the national 好差评 system counts it (国办发〔2019〕51号
	// names the two lowest levels 差评 and the other three 好评); 0 when there are none.
	Satisfaction float64 `json:"satisfaction"`
	// Rectifications opened (one per poor rating, at its first poor level), of which
	// Rectified have been rectified (step 整改 done), RectifiedOnTime within the 整改 limit,
	// RectifyOpen are still at 整改 and Overdue of those past their deadline; Confirmed were
	// accepted by the applicant at the callback.
	Rectifications  int `json:"rectifications"`
	Rectified       int `json:"rectified"`
	RectifiedOnTime int `json:"rectified_on_time"`
	RectifyOpen     int `json:"rectify_open"`
	Overdue         int `json:"overdue"`
	Confirmed       int `json:"confirmed"`
}

// Satisfied is the number of ratings at levels 3 to 5.
func (c Counts) Satisfied() int { return c.ByLevel[3] + c.ByLevel[4] + c.ByLevel[5] }

// OnTimeRate is RectifiedOnTime over the rectifications that are no longer open, in [0, 1].
func (c Counts) OnTimeRate() float64 {
	if settled := c.Rectifications - c.RectifyOpen; settled > 0 {
		return float64(c.RectifiedOnTime) / float64(settled)
	}
	return 0
}

func (c *Counts) add(o Counts) {
	c.Total += o.Total
	for i := range c.ByLevel {
		c.ByLevel[i] += o.ByLevel[i]
	}
	c.Poor += o.Poor
	c.Rectifications += o.Rectifications
	c.Rectified += o.Rectified
	c.RectifiedOnTime += o.RectifiedOnTime
	c.RectifyOpen += o.RectifyOpen
	c.Overdue += o.Overdue
	c.Confirmed += o.Confirmed
}

func (c *Counts) finish() {
	if c.Total > 0 {
		c.Satisfaction = float64(c.Satisfied()) / float64(c.Total)
	}
}

// Group is the counts of one department, item or division.
type Group struct {
	Key    string `json:"key"` // department id, item code or division code
	Name   string `json:"name"`
	NameEn string `json:"name_en,omitempty"`
	Counts
}

// TagCount is how often a reason tag was chosen.
type TagCount struct {
	Code   string    `json:"code"`
	Name   i18n.Text `json:"name"`
	Praise bool      `json:"praise"`
	Count  int       `json:"count"`
}

// Stats are the ratings within a scope, in all and per department, item and division.
type Stats struct {
	Division     string     `json:"division"`
	DivisionName string     `json:"division_name"`
	DeptID       string     `json:"dept_id,omitempty"`
	ItemCode     string     `json:"item_code,omitempty"`
	From         *time.Time `json:"from,omitempty"`
	To           *time.Time `json:"to,omitempty"`
	Counts
	ByDepartment []Group `json:"by_department"` // most ratings first
	ByItem       []Group `json:"by_item"`
	// ByDivision groups by the divisions directly below Division.
	ByDivision []Group    `json:"by_division"`
	Tags       []TagCount `json:"tags"` // most chosen first
}

// StatsFilter narrows statistics.
type StatsFilter struct {
	Division string    // GB/T 2260 code; "" = the actor's division
	DeptID   string    // "" = every department the actor may read
	ItemCode string    // "" = every item
	From, To time.Time // rated in [From, To); zero = unbounded
}

// Stats counts the ratings in the actor's scope: within the filter's division (inside the
// actor's) for a holder of PermSupervise, else those of the actor's own department.
func (s *Service) Stats(ctx context.Context, actor authz.Subject, f StatsFilter) (Stats, error) {
	if err := s.scope(actor, &f.Division, &f.DeptID); err != nil {
		return Stats{}, err
	}
	return s.stats(ctx, f, true)
}

// scope applies the actor's rights to a division and department filter.
func (s *Service) scope(actor authz.Subject, division, deptID *string) error {
	if actor.Kind == "" {
		return i18n.ErrUnauthorized
	}
	if actor.Kind != authz.Staff {
		return i18n.ErrForbidden
	}
	if *division == "" {
		*division = actor.Division
	}
	if s.policy.Allowed(actor, PermSupervise, *division) {
		return nil
	}
	if actor.Dept == "" || !s.policy.Allowed(actor, PermRead, *division) {
		return i18n.ErrForbidden
	}
	if *deptID != "" && *deptID != actor.Dept {
		return i18n.ErrForbidden
	}
	*deptID = actor.Dept
	return nil
}

// Summary is the public summary (no login): the same counts over a division, without any
// text a person wrote or anything that names them.
func (s *Service) Summary(ctx context.Context, f StatsFilter) (Stats, error) {
	if f.Division == "" {
		return Stats{}, invalid("division", "rating.division", "请指定行政区划", "a division is required")
	}
	if !validDivision(f.Division) {
		return Stats{}, invalid("division", "rating.division", "行政区划代码须为 6 或 9 位数字（GB/T 2260）",
			"the division code must have 6 or 9 digits (GB/T 2260)")
	}
	return s.stats(ctx, f, true)
}

func validDivision(s string) bool {
	if len(s) != 6 && len(s) != 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (s *Service) stats(ctx context.Context, f StatsFilter, withTags bool) (Stats, error) {
	now := s.clock()
	st := Stats{Division: f.Division, DeptID: f.DeptID, ItemCode: f.ItemCode, ByDepartment: []Group{}, ByItem: []Group{},
		ByDivision: []Group{}, Tags: []TagCount{}}
	if d, ok := divisions.Lookup(f.Division); ok {
		st.DivisionName = d.Name
	}
	if !f.From.IsZero() {
		t := f.From.UTC()
		st.From = &t
	}
	if !f.To.IsZero() {
		t := f.To.UTC()
		st.To = &t
	}
	where, args := statsWhere(f)
	// Three narrow groupings rather than one by every key: a province's ratings would come
	// back nearly one row each otherwise.
	depts, items, divs := map[string]*Group{}, map[string]*Group{}, map[string]*Group{}
	err := s.groupCounts(ctx, now, `r.dept_id, MAX(r.dept_name), ''`, `r.dept_id`, where, args, func(key, name, _ string, c Counts) {
		st.Counts.add(c)
		group(depts, key, name, "").add(c)
	})
	if err == nil {
		err = s.groupCounts(ctx, now, `r.item_code, MAX(r.item_name), MAX(r.item_name_en)`, `r.item_code`, where, args,
			func(key, name, nameEn string, c Counts) { group(items, key, name, nameEn).add(c) })
	}
	if err == nil {
		children := map[string]string{} // division → the child of the scope holding it
		err = s.groupCounts(ctx, now, `r.division, '', ''`, `r.division`, where, args, func(division, _, _ string, c Counts) {
			child, ok := children[division]
			if !ok {
				child = childOf(f.Division, division)
				children[division] = child
			}
			if child == "" {
				return
			}
			name := child
			if d, ok := divisions.Lookup(child); ok {
				name = d.Name
			}
			group(divs, child, name, "").add(c)
		})
	}
	if err != nil {
		return Stats{}, err
	}
	st.Counts.finish()
	st.ByDepartment, st.ByItem, st.ByDivision = sortedGroups(depts), sortedGroups(items), sortedGroups(divs)
	if withTags {
		if st.Tags, err = s.tagCounts(ctx, where, args); err != nil {
			return Stats{}, err
		}
	}
	return st, nil
}

func group(m map[string]*Group, key, name, nameEn string) *Group {
	g := m[key]
	if g == nil {
		g = &Group{Key: key, Name: name, NameEn: nameEn}
		m[key] = g
	}
	return g
}

// groupCounts counts the ratings matching where per key and level, and hands each row's
// counts to fn. cols selects the key, a name and an English name.
func (s *Service) groupCounts(ctx context.Context, now time.Time, cols, key, where string, args []any, fn func(key, name, nameEn string, c Counts)) error {
	q := `SELECT ` + cols + `, r.level, COUNT(*),
		SUM(CASE WHEN r.rectify_case_id <> '' THEN 1 ELSE 0 END),
		SUM(CASE WHEN r.rectified_at IS NOT NULL THEN 1 ELSE 0 END),
		SUM(CASE WHEN r.rectified_on_time THEN 1 ELSE 0 END),
		SUM(CASE WHEN r.rectify_state = 'open' THEN 1 ELSE 0 END),
		SUM(CASE WHEN r.rectify_state = 'open' AND r.rectify_due_at < ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN r.confirmed THEN 1 ELSE 0 END)
		FROM rating_scopes s JOIN ratings r ON r.id = s.rating_id WHERE ` + where + ` GROUP BY ` + key + `, r.level`
	rows, err := s.d.Query(ctx, q, append([]any{now}, args...)...)
	if err != nil {
		return fmt.Errorf("rating statistics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, name, nameEn string
		var level Level
		var c Counts
		if err := rows.Scan(&k, &name, &nameEn, &level, &c.Total, &c.Rectifications, &c.Rectified, &c.RectifiedOnTime,
			&c.RectifyOpen, &c.Overdue, &c.Confirmed); err != nil {
			return fmt.Errorf("rating statistics: %w", err)
		}
		if !level.Valid() {
			continue
		}
		c.ByLevel[level] = c.Total
		if level.Poor() {
			c.Poor = c.Total
		}
		fn(k, name, nameEn, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rating statistics: %w", err)
	}
	return nil
}

func statsWhere(f StatsFilter) (string, []any) {
	var b strings.Builder
	b.WriteString(`s.ancestor = ?`)
	args := []any{f.Division}
	if !f.From.IsZero() {
		b.WriteString(` AND s.rated_at >= ?`)
		args = append(args, f.From.UTC())
	}
	if !f.To.IsZero() {
		b.WriteString(` AND s.rated_at < ?`)
		args = append(args, f.To.UTC())
	}
	if f.DeptID != "" {
		b.WriteString(` AND r.dept_id = ?`)
		args = append(args, f.DeptID)
	}
	if f.ItemCode != "" {
		b.WriteString(` AND r.item_code = ?`)
		args = append(args, f.ItemCode)
	}
	return b.String(), args
}

func (s *Service) tagCounts(ctx context.Context, where string, args []any) ([]TagCount, error) {
	rows, err := s.d.Query(ctx, `SELECT t.tag, COUNT(*) FROM rating_scopes s JOIN ratings r ON r.id = s.rating_id
		JOIN rating_tags t ON t.rating_id = r.id WHERE `+where+` GROUP BY t.tag`, args...)
	if err != nil {
		return nil, fmt.Errorf("rating tag statistics: %w", err)
	}
	defer rows.Close()
	out := []TagCount{}
	for rows.Next() {
		var tc TagCount
		if err := rows.Scan(&tc.Code, &tc.Count); err != nil {
			return nil, fmt.Errorf("rating tag statistics: %w", err)
		}
		t, ok := TagByCode(tc.Code)
		if !ok {
			continue
		}
		tc.Name, tc.Praise = t.Name, t.Praise
		out = append(out, tc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rating tag statistics: %w", err)
	}
	slices.SortFunc(out, func(a, b TagCount) int { return cmp.Or(b.Count-a.Count, strings.Compare(a.Code, b.Code)) })
	return out, nil
}

// childOf is the division directly below scope that contains division ("" when division is
// scope itself or outside it).
func childOf(scope, division string) string {
	if division == scope {
		return ""
	}
	chain := append([]string{division}, divisions.Ancestors(division)...)
	for i, a := range chain {
		if a == scope && i > 0 {
			return chain[i-1]
		}
	}
	return ""
}

func sortedGroups(m map[string]*Group) []Group {
	out := make([]Group, 0, len(m))
	for _, g := range m {
		g.finish()
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int { return cmp.Or(b.Total-a.Total, strings.Compare(a.Key, b.Key)) })
	return out
}

// ---- lists ----

// ListFilter narrows a list of ratings.
type ListFilter struct {
	Division string       // "" = the actor's division
	DeptID   string       // "" = every department the actor may read
	ItemCode string       // "" = every item
	Poor     bool         // only 差评 (levels 1–2)
	Rectify  RectifyState // only rectifications in this state; "" = any
	After    string       // the Next of the previous page
	Limit    int          // default 20, at most 100
}

// Page is one page of ratings, newest first.
type Page struct {
	Ratings []Rating `json:"ratings"`
	Next    string   `json:"next,omitempty"`
}

// List lists the ratings the actor may read, newest first, keyset-paged.
func (s *Service) List(ctx context.Context, actor authz.Subject, f ListFilter) (Page, error) {
	if err := s.scope(actor, &f.Division, &f.DeptID); err != nil {
		return Page{}, err
	}
	switch {
	case f.Limit <= 0:
		f.Limit = 20
	case f.Limit > 100:
		f.Limit = 100
	}
	if _, ok := RectifyStateNames[f.Rectify]; !ok {
		return Page{}, invalid("rectify", "rating.filter", "整改状态无效", "invalid rectification state")
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + prefixed("r.", ratingCols) + ` FROM rating_scopes s JOIN ratings r ON r.id = s.rating_id WHERE s.ancestor = ?`)
	args := []any{f.Division}
	if f.DeptID != "" {
		b.WriteString(` AND r.dept_id = ?`)
		args = append(args, f.DeptID)
	}
	if f.ItemCode != "" {
		b.WriteString(` AND r.item_code = ?`)
		args = append(args, f.ItemCode)
	}
	if f.Poor {
		b.WriteString(` AND r.level <= 2`)
	}
	if f.Rectify != "" {
		b.WriteString(` AND r.rectify_state = ?`)
		args = append(args, string(f.Rectify))
	}
	if f.After != "" {
		at, id, err := parseCursor(f.After)
		if err != nil {
			return Page{}, err
		}
		b.WriteString(` AND (s.rated_at, s.rating_id) < (?, ?)`)
		args = append(args, at, id)
	}
	b.WriteString(` ORDER BY s.rated_at DESC, s.rating_id DESC LIMIT ?`)
	args = append(args, f.Limit+1)
	rows, err := s.d.Query(ctx, b.String(), args...)
	if err != nil {
		return Page{}, fmt.Errorf("list ratings: %w", err)
	}
	defer rows.Close()
	var list []ratingRow
	for rows.Next() {
		r, err := scanRating(rows)
		if err != nil {
			return Page{}, fmt.Errorf("list ratings: %w", err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("list ratings: %w", err)
	}
	rows.Close()
	page := Page{Ratings: make([]Rating, 0, min(len(list), f.Limit))}
	if len(list) > f.Limit {
		last := list[f.Limit-1]
		page.Next = cursor(last.RatedAt, last.ID)
		list = list[:f.Limit]
	}
	ids := make([]string, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	tags, err := tagsOf(ctx, s.d, ids...)
	if err != nil {
		return Page{}, err
	}
	for i := range list {
		page.Ratings = append(page.Ratings, list[i].view(tags[list[i].ID]))
	}
	return page, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// cursor encodes a list position: the rating time in Unix microseconds and the id.
func cursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "." + id))
}

// parseCursor decodes a list cursor (outside input: it comes back in a URL).
func parseCursor(s string) (time.Time, string, error) {
	if len(s) > 200 {
		return time.Time{}, "", ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	num, id, ok := strings.Cut(string(raw), ".")
	if !ok || id == "" || len(id) > 64 || !idChars(id) {
		return time.Time{}, "", ErrBadCursor
	}
	us, err := strconv.ParseInt(num, 10, 64)
	if err != nil || us < 0 || us > maxMicros {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// maxMicros is 9999-12-31 in Unix microseconds: no rating is later.
var maxMicros = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMicro()

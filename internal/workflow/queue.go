package workflow

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Claimed filters a queue by who holds the cases.
const (
	ClaimedAny  = ""
	ClaimedMine = "mine"      // claimed by the actor
	ClaimedNone = "unclaimed" // claimed by nobody
)

// QueueFilter narrows an officer's queue.
type QueueFilter struct {
	Step       string // step key; "" = any
	Definition string // definition key; "" = any
	Status     Status // green | yellow | red; "" = any
	Claimed    string // ClaimedAny | ClaimedMine | ClaimedNone
	// State is StateOpen (the default: cases to act on) or StateSuspended (waiting for the
	// applicants' corrections; Status then is the colour held at the suspension).
	State State
	After string // the Next of the previous page; "" = first page
	Limit int    // default 20, at most 100
}

// QueuePage is one page of a queue, most urgent first (by step deadline, then id).
type QueuePage struct {
	Cases []Case `json:"cases"`
	Next  string `json:"next,omitempty"` // cursor of the next page; "" on the last
}

// handlerRoles are the actor's roles that may handle cases.
func (s *Service) handlerRoles(actor authz.Subject) []authz.Role {
	var out []authz.Role
	for _, r := range actor.Roles {
		if slices.Contains(s.policy.Permissions(r), PermHandle) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Queue lists the cases the actor may act on: of the actor's department, within the actor's
// division, at steps whose role the actor holds. Pages are keyset-paged on one index, so a
// page costs the same with a hundred or a hundred thousand open cases.
func (s *Service) Queue(ctx context.Context, actor authz.Subject, f QueueFilter) (QueuePage, error) {
	if actor.Kind == "" {
		return QueuePage{}, i18n.ErrUnauthorized
	}
	if actor.Kind != authz.Staff || actor.Dept == "" {
		return QueuePage{}, i18n.ErrForbidden
	}
	if err := s.policy.Authorize(actor, PermHandle, actor.Division); err != nil {
		return QueuePage{}, err
	}
	roles := s.handlerRoles(actor)
	if len(roles) == 0 {
		return QueuePage{}, i18n.ErrForbidden
	}
	if f.State == "" {
		f.State = StateOpen
	}
	if f.State != StateOpen && f.State != StateSuspended {
		return QueuePage{}, invalid("state", "workflow.filter", "状态只能是 open 或 suspended", "state must be open or suspended")
	}
	switch {
	case f.Limit <= 0:
		f.Limit = 20
	case f.Limit > 100:
		f.Limit = 100
	}
	now := s.clock()
	var b strings.Builder
	b.WriteString(`SELECT ` + caseColsC + ` FROM workflow_cases c WHERE c.dept_id = ? AND c.state = ? AND c.step_role IN (?` +
		strings.Repeat(", ?", len(roles)-1) + `)`)
	args := []any{actor.Dept, string(f.State)}
	for _, r := range roles {
		args = append(args, string(r))
	}
	if f.Step != "" {
		b.WriteString(` AND c.step_key = ?`)
		args = append(args, f.Step)
	}
	if f.Definition != "" {
		b.WriteString(` AND c.def_key = ?`)
		args = append(args, f.Definition)
	}
	switch {
	case f.Status == "":
	case f.State == StateSuspended:
		if f.Status != Green && f.Status != Yellow && f.Status != Red {
			return QueuePage{}, badStatus()
		}
		b.WriteString(` AND c.held_status = ?`)
		args = append(args, string(f.Status))
	case f.Status == Red:
		b.WriteString(` AND c.queue_rank <= ?`)
		args = append(args, now)
	case f.Status == Yellow:
		b.WriteString(` AND c.queue_rank > ? AND c.remind_at <= ?`)
		args = append(args, now, now)
	case f.Status == Green:
		b.WriteString(` AND c.queue_rank > ? AND (c.remind_at IS NULL OR c.remind_at > ?)`)
		args = append(args, now, now)
	default:
		return QueuePage{}, badStatus()
	}
	switch f.Claimed {
	case ClaimedAny:
	case ClaimedMine:
		b.WriteString(` AND c.claimed_by = ?`)
		args = append(args, actor.String())
	case ClaimedNone:
		b.WriteString(` AND c.claimed_by = ''`)
	default:
		return QueuePage{}, invalid("claimed", "workflow.filter", "认领筛选只能是 mine 或 unclaimed", "claimed must be mine or unclaimed")
	}
	b.WriteString(` AND EXISTS (SELECT 1 FROM workflow_case_scopes s WHERE s.ancestor = ? AND s.case_id = c.id)`)
	args = append(args, actor.Division)
	if f.After != "" {
		rank, id, err := ParseCursor(f.After)
		if err != nil {
			return QueuePage{}, err
		}
		// A row value, so both databases seek the index to the position.
		b.WriteString(` AND (c.queue_rank, c.id) > (?, ?)`)
		args = append(args, rank, id)
	}
	b.WriteString(` ORDER BY c.queue_rank, c.id LIMIT ?`)
	args = append(args, f.Limit+1)

	rows, err := s.d.Query(ctx, b.String(), args...)
	if err != nil {
		return QueuePage{}, fmt.Errorf("queue of %s: %w", actor, err)
	}
	defer rows.Close()
	var list []caseRow
	for rows.Next() {
		r, err := scanCase(rows)
		if err != nil {
			return QueuePage{}, fmt.Errorf("queue of %s: %w", actor, err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return QueuePage{}, fmt.Errorf("queue of %s: %w", actor, err)
	}
	rows.Close()
	page := QueuePage{Cases: make([]Case, 0, min(len(list), f.Limit))}
	if len(list) > f.Limit {
		last := list[f.Limit-1]
		page.Next = cursor(last.queueRank, last.id)
		list = list[:f.Limit]
	}
	for i := range list {
		def, err := s.definition(ctx, s.d, list[i].defKey, list[i].defVersion)
		if err != nil {
			return QueuePage{}, err
		}
		page.Cases = append(page.Cases, s.view(&list[i], def, now))
	}
	return page, nil
}

func badStatus() error {
	return invalid("status", "workflow.filter", "期限状态只能是 green、yellow 或 red", "status must be green, yellow or red")
}

// cursor encodes a queue position: the rank in Unix microseconds and the case id.
func cursor(rank time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(rank.UnixMicro(), 10) + "." + id))
}

// ParseCursor decodes a queue cursor (outside input: it comes back in a URL).
func ParseCursor(s string) (time.Time, string, error) {
	if len(s) > 200 {
		return time.Time{}, "", ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	num, id, ok := strings.Cut(string(raw), ".")
	if !ok || id == "" || len(id) > 64 || num == "" {
		return time.Time{}, "", ErrBadCursor
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return time.Time{}, "", ErrBadCursor
		}
	}
	us, err := strconv.ParseInt(num, 10, 64)
	if err != nil || us < 0 || us > farFuture.UnixMicro() {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// Stats are counts over the cases in an actor's scope.
type Stats struct {
	Open       int            `json:"open"`
	Suspended  int            `json:"suspended"`
	Closed     int            `json:"closed"`
	OpenByStep map[string]int `json:"open_by_step"` // open cases by current step key
	ByStatus   map[Status]int `json:"by_status"`    // open cases by deadline colour
	// ClosedByOutcome counts closed cases by outcome.
	ClosedByOutcome map[Outcome]int `json:"closed_by_outcome"`
	// AvgWorkingDays is the mean working time, suspensions excluded, of the cases closed by a
	// decision (approved or rejected), in working days.
	AvgWorkingDays float64 `json:"avg_working_days"`
}

// Stats counts the cases in the actor's scope: every case within the actor's division for a
// holder of PermSupervise, else the cases of the actor's department within it.
func (s *Service) Stats(ctx context.Context, actor authz.Subject) (Stats, error) {
	if actor.Kind == "" {
		return Stats{}, i18n.ErrUnauthorized
	}
	if actor.Kind != authz.Staff {
		return Stats{}, i18n.ErrForbidden
	}
	now := s.clock()
	st := Stats{OpenByStep: map[string]int{}, ByStatus: map[Status]int{Green: 0, Yellow: 0, Red: 0}, ClosedByOutcome: map[Outcome]int{}}
	// A department's cases are counted per division from the stats index alone, and the
	// divisions outside the actor's dropped here; a supervisor's come through the scope table.
	var from string
	var args []any
	var inScope func(division string) bool
	switch {
	case s.policy.Allowed(actor, PermSupervise, actor.Division):
		from = `workflow_case_scopes s JOIN workflow_cases c ON c.id = s.case_id WHERE s.ancestor = ?`
		args = []any{actor.Division}
		inScope = func(string) bool { return true }
	case actor.Dept != "" && s.policy.Allowed(actor, PermRead, actor.Division):
		from = `workflow_cases c WHERE c.dept_id = ?`
		args = []any{actor.Dept}
		inScope = func(division string) bool { return s.policy.Allowed(actor, PermRead, division) }
	default:
		return Stats{}, i18n.ErrForbidden
	}
	q := `SELECT c.state, c.step_key, c.division, COUNT(*),
		SUM(CASE WHEN c.queue_rank <= ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN c.queue_rank > ? AND c.remind_at <= ? THEN 1 ELSE 0 END)
		FROM ` + from + ` AND c.state IN ('open', 'suspended') GROUP BY c.state, c.step_key, c.division`
	rows, err := s.d.Query(ctx, q, append([]any{now, now, now}, args...)...)
	if err != nil {
		return Stats{}, fmt.Errorf("case statistics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state State
		var step, division string
		var n, red, yellow int
		if err := rows.Scan(&state, &step, &division, &n, &red, &yellow); err != nil {
			return Stats{}, fmt.Errorf("case statistics: %w", err)
		}
		if !inScope(division) {
			continue
		}
		if state == StateSuspended {
			st.Suspended += n
			continue
		}
		st.Open += n
		st.OpenByStep[step] += n
		st.ByStatus[Red] += red
		st.ByStatus[Yellow] += yellow
		st.ByStatus[Green] += n - red - yellow
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("case statistics: %w", err)
	}
	rows.Close()
	rows, err = s.d.Query(ctx, `SELECT c.outcome, c.division, COUNT(*), COALESCE(SUM(c.elapsed_work), 0) FROM `+from+
		` AND c.state = 'closed' GROUP BY c.outcome, c.division`, args...)
	if err != nil {
		return Stats{}, fmt.Errorf("case statistics: %w", err)
	}
	defer rows.Close()
	var decided int
	var work int64
	for rows.Next() {
		var o Outcome
		var division string
		var n int
		var w int64
		if err := rows.Scan(&o, &division, &n, &w); err != nil {
			return Stats{}, fmt.Errorf("case statistics: %w", err)
		}
		if !inScope(division) {
			continue
		}
		st.Closed += n
		st.ClosedByOutcome[o] += n
		if o == OutcomeApproved || o == OutcomeRejected {
			decided += n
			work += w
		}
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("case statistics: %w", err)
	}
	if decided > 0 {
		st.AvgWorkingDays = float64(work) / float64(decided) / float64((24 * time.Hour).Microseconds())
	}
	return st, nil
}

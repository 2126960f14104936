package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/rating"
	"github.com/dgov/dgov/internal/workflow"
)

// 好差评 pages (P5 item 7): statistics per department, item and division with the 差评 list
// and each rectification's state; a rating's page with its rectification case, history and
// the actions — claim, record the rectification (or refuse it with reasons), record the
// callback. rating.Service authorizes reads (its own department for officers, the whole
// division for supervisors) and the case engine every action.

var (
	ratingsTitle = i18n.T("好差评", "Service ratings")
	ratingTitle  = i18n.T("评价详情", "Rating")
)

type ratingPages struct {
	c   *Console
	svc *rating.Service
}

// RatingRoutes registers the 好差评 pages.
func (c *Console) RatingRoutes(mux *http.ServeMux, svc *rating.Service) {
	p := &ratingPages{c: c, svc: svc}
	mux.Handle("GET /console/ratings", c.staffOnly(p.listPage))
	mux.Handle("GET /console/ratings/{id}", c.staffOnly(p.ratingPage))
	mux.Handle("POST /console/ratings/{id}/{action}", c.staffOnly(p.action))
}

// ratingBar is one bar of the level chart; Width is in hundredths.
type ratingBar struct {
	Level   int
	Name    i18n.Text
	Count   int
	Width   int
	Percent string
}

type ratingGroupRow struct {
	rating.Group
	Satisfaction, OnTime string
	Width                int
}

type ratingsData struct {
	// The filter as typed.
	Division, DeptID, ItemCode, From, To, State string
	All                                         bool // every rating, not only 差评
	Supervisor                                  bool // may choose departments and divisions
	Departments                                 []org.Department
	States                                      []ratingState

	Stats        rating.Stats
	Satisfaction string
	OnTime       string
	Levels       []ratingBar
	ByDepartment []ratingGroupRow
	ByItem       []ratingGroupRow
	ByDivision   []ratingGroupRow
	Ratings      []ratingRow
	Next         string // query of the next page
	Now          time.Time
}

type ratingState struct {
	Key  rating.RectifyState
	Name i18n.Text
}

type ratingRow struct {
	rating.Rating
	LevelName i18n.Text
	TagNames  []i18n.Text
	State     i18n.Text
	Overdue   bool
}

func (p *ratingPages) supervisor(sub authz.Subject, division string) bool {
	return p.c.Policy.Allowed(sub, rating.PermSupervise, division)
}

// parseDay reads a YYYY-MM-DD date of the filter as the start of that day in Beijing.
func parseDay(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02", v, calendar.Beijing)
	if err != nil {
		return time.Time{}, i18n.New("rating.date", "日期格式应为 YYYY-MM-DD", "dates are YYYY-MM-DD").WithField(field)
	}
	return t, nil
}

func (p *ratingPages) listData(r *http.Request, sub authz.Subject) (*ratingsData, error) {
	ctx := r.Context()
	q := r.URL.Query()
	d := &ratingsData{Division: strings.TrimSpace(q.Get("division")), DeptID: strings.TrimSpace(q.Get("dept")),
		ItemCode: strings.TrimSpace(q.Get("item")), From: q.Get("from"), To: q.Get("to"), State: q.Get("state"),
		All: q.Get("all") != "", Now: p.c.Now()}
	if d.Division == "" {
		d.Division = sub.Division
	}
	for _, s := range []rating.RectifyState{rating.RectifyOpen, rating.RectifyCallback, rating.RectifyDone, rating.RectifyRefused, rating.RectifyWithdrawn} {
		d.States = append(d.States, ratingState{Key: s, Name: rating.RectifyStateNames[s]})
	}
	d.Supervisor = p.supervisor(sub, d.Division)
	if d.Supervisor {
		d.Departments, _ = p.c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{Division: sub.Division, IncludeSub: true, Limit: 1000})
	} else {
		d.DeptID = ""
	}
	from, err := parseDay("from", d.From)
	if err != nil {
		return d, err
	}
	to, err := parseDay("to", d.To)
	if err != nil {
		return d, err
	}
	if !to.IsZero() {
		to = to.AddDate(0, 0, 1) // the whole last day
	}
	if d.Stats, err = p.svc.Stats(ctx, sub, rating.StatsFilter{Division: d.Division, DeptID: d.DeptID, ItemCode: d.ItemCode, From: from, To: to}); err != nil {
		return d, err
	}
	st := d.Stats
	d.Satisfaction = percentOf(st.Satisfaction, st.Total)
	d.OnTime = percentOf(st.OnTimeRate(), st.Rectifications-st.RectifyOpen)
	for _, l := range rating.Levels {
		n := st.ByLevel[l]
		d.Levels = append(d.Levels, ratingBar{Level: int(l), Name: l.Name(), Count: n, Width: hundredths(n, st.Total),
			Percent: percentOf(fraction(n, st.Total), st.Total)})
	}
	rows := func(gs []rating.Group) []ratingGroupRow {
		out := make([]ratingGroupRow, 0, len(gs))
		for _, g := range gs {
			out = append(out, ratingGroupRow{Group: g, Satisfaction: percentOf(g.Satisfaction, g.Total),
				OnTime: percentOf(g.OnTimeRate(), g.Rectifications-g.RectifyOpen), Width: int(g.Satisfaction*100 + 0.5)})
		}
		return out
	}
	d.ByDepartment, d.ByItem, d.ByDivision = rows(st.ByDepartment), rows(st.ByItem), rows(st.ByDivision)
	page, err := p.svc.List(ctx, sub, rating.ListFilter{Division: d.Division, DeptID: d.DeptID, ItemCode: d.ItemCode, Poor: !d.All,
		Rectify: rating.RectifyState(d.State), After: q.Get("after"), Limit: 50})
	if err != nil {
		return d, err
	}
	for _, g := range page.Ratings {
		row := ratingRow{Rating: g, LevelName: g.Level.Name()}
		for _, t := range g.Tags {
			row.TagNames = append(row.TagNames, rating.TagName(t))
		}
		if rc := g.Rectification; rc != nil {
			row.State, row.Overdue = rating.RectifyStateNames[rc.State], rc.Overdue(d.Now)
		}
		d.Ratings = append(d.Ratings, row)
	}
	if page.Next != "" {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("after", page.Next)
		d.Next = next.Encode()
	}
	return d, nil
}

func (p *ratingPages) listPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	pg := p.c.page(r, "ratings", ratingsTitle, nil)
	d, err := p.listData(r, sub)
	pg.Data = d
	if err != nil {
		p.c.fail(w, r, err, "console/ratings", pg)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/ratings", pg)
}

// ---- one rating ----

type ratingDetail struct {
	Rating    rating.Rating
	LevelName i18n.Text
	TagNames  []i18n.Text
	Channel   i18n.Text
	State     i18n.Text
	Overdue   bool
	Case      *workflow.Case
	History   []ratingEvent
	// What the viewer is offered (the case engine decides whether it is allowed).
	CanClaim, CanRectify, CanCallback bool
	Form                              struct{ Result, Note, Outcome string }
}

type ratingEvent struct {
	workflow.Event
	Name i18n.Text
	By   i18n.Text // who acted, when not a staff member named by id
}

var ratingActionNames = map[workflow.Action]i18n.Text{
	workflow.ActionOpened:      i18n.T("差评，立案整改", "poor rating: rectification opened"),
	workflow.ActionClaimed:     i18n.T("认领", "claimed"),
	workflow.ActionReleased:    i18n.T("释放", "released"),
	workflow.ActionAdvanced:    i18n.T("整改完成，转回访", "rectified, to callback"),
	workflow.ActionSuspended:   i18n.T("暂停", "suspended"),
	workflow.ActionResumed:     i18n.T("恢复", "resumed"),
	workflow.ActionTransferred: i18n.T("转办", "transferred"),
	workflow.ActionReturned:    i18n.T("退回重新整改", "sent back to rectify again"),
	workflow.ActionWithdrawn:   i18n.T("撤回", "withdrawn"),
	workflow.ActionClosed:      i18n.T("办结", "closed"),
	workflow.ActionReminded:    i18n.T("临期提醒", "reminded"),
	workflow.ActionEscalated:   i18n.T("超期督办", "escalated"),
}

func (p *ratingPages) detailData(r *http.Request, sub authz.Subject) (*ratingDetail, error) {
	ctx := r.Context()
	g, err := p.svc.Get(ctx, sub, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := &ratingDetail{Rating: g, LevelName: g.Level.Name(), Channel: rating.ChannelNames[g.Channel]}
	for _, t := range g.Tags {
		d.TagNames = append(d.TagNames, rating.TagName(t))
	}
	if g.Rectification == nil {
		return d, nil
	}
	d.State, d.Overdue = rating.RectifyStateNames[g.Rectification.State], g.Rectification.Overdue(p.c.Now())
	c, hist, err := p.svc.Rectification(ctx, sub, g.ID)
	if errors.Is(err, i18n.ErrNotFound) {
		return d, nil // the rating is readable, the case not (it went to another department)
	}
	if err != nil {
		return nil, err
	}
	d.Case = &c
	for _, e := range hist {
		ev := ratingEvent{Event: e, Name: ratingActionNames[e.Action]}
		switch {
		case e.Actor == g.Rater.String():
			ev.By = i18n.T("评价人", "the rater")
		case strings.HasPrefix(e.Actor, string(authz.System)+":"):
			ev.By = i18n.T("系统", "the system")
		}
		d.History = append(d.History, ev)
	}
	if c.State == workflow.StateOpen && sub.Dept == c.DeptID && sub.Has(c.StepRole) {
		switch {
		case c.ClaimedBy != sub.String():
			d.CanClaim = c.ClaimedBy == ""
		case c.Step == rating.StepRectify:
			d.CanRectify = true
		case c.Step == rating.StepCallback:
			d.CanCallback = true
		}
	}
	return d, nil
}

func (p *ratingPages) ratingPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d, err := p.detailData(r, sub)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/ratings_detail", p.c.page(r, "ratings", ratingTitle, d))
}

// action runs claim, rectify, refuse or callback on the rating's rectification case.
func (p *ratingPages) action(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	id := r.PathValue("id")
	result, note := r.PostFormValue("result"), r.PostFormValue("note")
	var err error
	switch r.PathValue("action") {
	case "claim":
		_, err = p.svc.Claim(ctx, sub, id)
	case "rectify":
		_, err = p.svc.Rectify(ctx, sub, id, result)
	case "refuse":
		_, err = p.svc.Refuse(ctx, sub, id, result)
	case "callback":
		_, err = p.svc.Callback(ctx, sub, id, rating.CallbackOutcome(r.PostFormValue("outcome")), note)
	default:
		err = i18n.ErrNotFound
	}
	if err == nil {
		http.Redirect(w, r, "/console/ratings/"+url.PathEscape(id)+"?ok=1", http.StatusSeeOther)
		return
	}
	d, derr := p.detailData(r, sub)
	if derr != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d.Form.Result, d.Form.Note, d.Form.Outcome = result, note, r.PostFormValue("outcome")
	p.c.fail(w, r, err, "console/ratings_detail", p.c.page(r, "ratings", ratingTitle, d))
}

func fraction(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

func hundredths(n, total int) int {
	if total == 0 {
		return 0
	}
	return (n*100 + total/2) / total
}

// percentOf formats a rate over of cases; "—" when there are none.
func percentOf(rate float64, of int) string {
	if of <= 0 {
		return "—"
	}
	return strconv.FormatFloat(rate*100, 'f', 1, 64) + "%"
}

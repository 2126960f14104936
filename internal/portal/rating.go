package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/rating"
	"github.com/dgov/dgov/web"
)

// Ratings serves 好差评 on the portal: the applicant's rating of a completed application (the
// partial "rating-form", which the application page includes with the data Form returns, and
// its handler), and the public summary at /ratings for anyone.
type Ratings struct {
	*Accounts
	Service *rating.Service
	// Division is where the public summary starts (the node's division, e.g. 140000).
	Division string

	// The public summary is the same for every visitor: it is kept for summaryTTL so that a
	// busy page costs one count a minute, not one per view.
	mu      sync.Mutex
	summary map[string]cachedSummary
}

type cachedSummary struct {
	at time.Time
	st rating.Stats
}

const summaryTTL = time.Minute

// Routes registers the rating pages.
func (rt *Ratings) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /account/applications/{id}/rating", rt.signedIn(rt.ratingPage))
	mux.HandleFunc("POST /account/applications/{id}/rating", rt.signedIn(rt.rate))
	mux.HandleFunc("GET /ratings", rt.summaryPage)
}

// RatingForm is the data of the partial "rating-form": the rating form of a completed
// application and the rating already given, every text in the page's language (so the partial
// needs no functions). The application page includes it as
// {{with .Data.Rating}}{{template "rating-form" .}}{{end}} with the value Form returns.
type RatingForm struct {
	Action, CSRF string
	Channel      string
	Title        string
	Intro        string
	LevelLegend  string
	Levels       []RatingLevel
	// Praise is shown for 4–5 stars, Criticism for 1–3 (static/js/form.js shows the group that
	// fits the chosen level; without script both show, each headed by its levels).
	Praise, Criticism RatingTagGroup
	CommentLabel      string
	CommentHelp       string
	Comment           string
	CommentMax        int
	Submit            string
	Error             string // why the last submission was refused (on the rating page)
	ErrorField        string
	// Rated is the rating already given (nil before the first); the form then shows only
	// while the rating may still be changed (CanRevise), folded under ReviseLabel.
	Rated       *RatedView
	CanRevise   bool
	ReviseLabel string
	ReviseNote  string
}

// RatingLevel is one of the five choices.
type RatingLevel struct {
	Value   int
	ID      string
	Name    string
	Stars   []bool // five: filled or not
	Checked bool
}

// RatingTagGroup is the reason tags for a set of levels.
type RatingTagGroup struct {
	ID, Legend string
	When       string // JSON array of the levels it is for (data-when-in of static/js/form.js)
	Tags       []RatingTag
}

// RatingTag is one reason checkbox.
type RatingTag struct {
	Code, ID, Name string
	Checked        bool
}

// RatedView is a given rating, for its rater to read.
type RatedView struct {
	Heading     string
	Level       int
	LevelName   string
	Stars       []bool
	Tags        []string
	Comment     string
	RatedAt     string
	Revised     string // "" unless changed
	Rectify     string // the 差评's rectification state, "" when none
	RectifyDue  string // its deadline while being rectified
	RectifyNote string // what the department did
	Overdue     bool
	Labels      struct{ Tags, Comment, RatedAt, Rectify, RectifyDue, RectifyNote string }
}

var ratingTitle = i18n.T("服务评价", "Rate this service")

// subject is who the session acts as.
func (rt *Ratings) subject(r *http.Request, ses identity.Session) (authz.Subject, error) {
	return rt.Identity.Subject(r.Context(), ses.AccountID, ses.ActingEnterpriseID)
}

// Form returns the partial's data for the application, or nil when there is nothing to show:
// the application is not sub's or not completed, and it was never rated.
func (rt *Ratings) Form(r *http.Request, sub authz.Subject, applicationID string) (*RatingForm, error) {
	if rt == nil || rt.Service == nil {
		return nil, nil // a node without ratings shows no form
	}
	f, err := rt.form(r, sub, applicationID)
	if e, isUser := i18n.As(err); isUser && e.HTTPStatus() == http.StatusNotFound {
		return nil, nil
	}
	return f, err
}

// form is Form with "not found" as an error, for the rating page's own answer.
func (rt *Ratings) form(r *http.Request, sub authz.Subject, applicationID string) (*RatingForm, error) {
	ok, mine, err := rt.Service.Rateable(r.Context(), sub, applicationID)
	if err != nil {
		return nil, err
	}
	if !ok && mine == nil {
		return nil, nil
	}
	f := newRatingForm(r, applicationID, rating.Input{Channel: rating.ChannelWeb})
	if mine != nil {
		f.Rated = rt.ratedView(r, *mine)
		revisable, until := rt.Service.Revisable(*mine)
		f.CanRevise = ok && revisable
		if f.CanRevise {
			lang := i18n.FromRequest(r)
			f.ReviseNote = fmt.Sprintf(i18n.T("评价只能修改一次，%s 前有效。", "A rating can be changed once, until %s.").In(lang),
				until.In(calendar.Beijing).Format("2006-01-02 15:04"))
			f.Submit = i18n.T("提交修改", "Save the change").In(lang)
		}
	}
	return f, nil
}

// newRatingForm builds the form with in's choices checked.
func newRatingForm(r *http.Request, applicationID string, in rating.Input) *RatingForm {
	lang := i18n.FromRequest(r)
	t := func(zh, en string) string { return i18n.T(zh, en).In(lang) }
	f := &RatingForm{Action: "/account/applications/" + url.PathEscape(applicationID) + "/rating", CSRF: httpx.CSRFToken(r),
		Channel: string(in.Channel), Title: ratingTitle.In(lang),
		Intro: t("您的评价将帮助我们改进服务。选择“不满意”或“非常不满意”时，承办部门须限期整改并回访您。",
			"Your rating helps us improve. If you choose “dissatisfied” or “very dissatisfied”, the department must put it right within a time limit and call you back."),
		LevelLegend: t("总体评价", "Overall"), CommentLabel: t("评价内容（选填）", "Comments (optional)"),
		CommentHelp: fmt.Sprintf(t("最多 %d 字。请勿填写身份证号、电话等个人信息。",
			"At most %d characters. Please do not write ID numbers, phone numbers or other personal data."), rating.MaxComment),
		Comment: in.Comment, CommentMax: rating.MaxComment, Submit: t("提交评价", "Submit rating"),
		ReviseLabel: t("修改评价", "Change my rating")}
	if f.Channel == "" {
		f.Channel = string(rating.ChannelWeb)
	}
	channel := rating.Channel(f.Channel)
	for _, l := range rating.Levels {
		f.Levels = append(f.Levels, RatingLevel{Value: int(l), ID: "rating-level-" + strconv.Itoa(int(l)), Name: l.Name().In(lang),
			Stars: stars(l), Checked: in.Level == l})
	}
	chosen := map[string]bool{}
	for _, c := range in.Tags {
		chosen[c] = true
	}
	group := func(id, legend, when string, l rating.Level) RatingTagGroup {
		g := RatingTagGroup{ID: id, Legend: legend, When: when}
		for _, tag := range rating.TagsFor(channel, l) {
			g.Tags = append(g.Tags, RatingTag{Code: tag.Code, ID: "rating-tag-" + tag.Code, Name: tag.Name.In(lang), Checked: chosen[tag.Code]})
		}
		return g
	}
	f.Praise = group("rating-praise", t("满意的方面（4–5 星）", "What went well (4–5 stars)"), `["4","5"]`, rating.Satisfied)
	f.Criticism = group("rating-criticism", t("需要改进的方面（1–3 星）", "What should be better (1–3 stars)"), `["1","2","3"]`, rating.Dissatisfied)
	return f
}

func stars(l rating.Level) []bool {
	out := make([]bool, 5)
	for i := range out {
		out[i] = i < int(l)
	}
	return out
}

// ratedView shows a given rating to its rater.
func (rt *Ratings) ratedView(r *http.Request, g rating.Rating) *RatedView {
	lang := i18n.FromRequest(r)
	t := func(zh, en string) string { return i18n.T(zh, en).In(lang) }
	v := &RatedView{Heading: t("您的评价", "Your rating"), Level: int(g.Level), LevelName: g.Level.Name().In(lang), Stars: stars(g.Level),
		Comment: g.Comment, RatedAt: g.RatedAt.In(calendar.Beijing).Format("2006-01-02 15:04")}
	v.Labels.Tags, v.Labels.Comment, v.Labels.RatedAt = t("原因", "Reasons"), t("评价内容", "Comments"), t("评价时间", "Rated at")
	v.Labels.Rectify, v.Labels.RectifyDue, v.Labels.RectifyNote = t("差评整改", "Rectification"), t("整改期限", "Due by"), t("整改情况", "What was done")
	for _, c := range g.Tags {
		v.Tags = append(v.Tags, rating.TagName(c).In(lang))
	}
	if g.RevisedAt != nil {
		v.Revised = fmt.Sprintf(t("已于 %s 修改（原为%s）", "changed on %s (was %s)"), g.RevisedAt.In(calendar.Beijing).Format("2006-01-02 15:04"),
			g.FirstLevel.Name().In(lang))
	}
	if rc := g.Rectification; rc != nil {
		v.Rectify = rating.RectifyStateNames[rc.State].In(lang)
		if rc.DueAt != nil && rc.State == rating.RectifyOpen {
			v.RectifyDue = rc.DueAt.In(calendar.Beijing).Format("2006-01-02 15:04")
			v.Overdue = rc.Overdue(rt.now())
		}
		v.RectifyNote = rc.Result
	}
	return v
}

func (rt *Ratings) now() time.Time {
	if rt.Now != nil {
		return rt.Now()
	}
	return time.Now()
}

type ratingPageData struct {
	ApplicationID string
	Form          *RatingForm
}

// ratingPage is the form on a page of its own: where an SMS invitation to rate leads, and
// where a refused submission comes back to.
func (rt *Ratings) ratingPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	sub, err := rt.subject(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	f, err := rt.form(r, sub, id)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if f == nil {
		httpx.WriteError(w, r, rating.ErrNotCompleted)
		return
	}
	p := rt.page(r, ratingTitle, ratingPageData{ApplicationID: id, Form: f})
	w.Header().Set("Cache-Control", "no-store")
	rt.render(w, r, http.StatusOK, "portal/ratings_form", p)
}

// rate records the rating from the form and goes back to the application's page; a refused
// one comes back on the rating page with what was chosen.
func (rt *Ratings) rate(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	sub, err := rt.subject(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, r, i18n.New("rating.form", "表单无法解析", "the form could not be read").Wrap(err))
		return
	}
	id := r.PathValue("id")
	in := rating.Input{ApplicationID: id, Channel: rating.Channel(r.PostForm.Get("channel")), Tags: r.PostForm["tags"],
		Comment: r.PostForm.Get("comment")}
	if in.Channel == "" || in.Channel != rating.ChannelApp { // the web form says web; only the app's webview says app
		in.Channel = rating.ChannelWeb
	}
	in.Level, err = rating.ParseLevel(r.PostForm.Get("level"))
	if err == nil {
		_, err = rt.Service.Rate(r.Context(), sub, in)
	}
	if err != nil {
		e, ok := i18n.As(err)
		if !ok || e.HTTPStatus() != http.StatusBadRequest && e.HTTPStatus() != http.StatusConflict {
			httpx.WriteError(w, r, err)
			return
		}
		f, ferr := rt.Form(r, sub, id)
		if ferr != nil || f == nil {
			httpx.WriteError(w, r, err)
			return
		}
		// Keep what was chosen, and open the change form if it was one.
		keep := newRatingForm(r, id, in)
		f.Levels, f.Praise, f.Criticism, f.Comment = keep.Levels, keep.Praise, keep.Criticism, keep.Comment
		f.Error, f.ErrorField = e.Msg.In(i18n.FromRequest(r)), e.Field
		p := rt.page(r, ratingTitle, ratingPageData{ApplicationID: id, Form: f})
		w.Header().Set("Cache-Control", "no-store")
		rt.render(w, r, e.HTTPStatus(), "portal/ratings_form", p)
		return
	}
	http.Redirect(w, r, "/account/applications/"+url.PathEscape(id)+"?rated=1#rating", http.StatusSeeOther)
}

// ---- the public summary ----

// Bar is one bar of a chart: Width is in hundredths of the chart's width.
type Bar struct {
	Label   string
	Count   int
	Width   int
	Percent string
}

type summaryRow struct {
	Key, Name    string
	Total, Poor  int
	Satisfaction string
	Width        int // the satisfaction rate's bar, 0–100
	OnTime       string
	Link         string
}

type summaryData struct {
	Division     string
	DivisionName string
	Trail        []divisions.Division // from the node's division down to this one
	Year         int
	Years        []int
	Stats        rating.Stats
	Satisfaction string
	OnTime       string
	Levels       []Bar
	Departments  []summaryRow
	Items        []summaryRow
	Divisions    []summaryRow
	UpdatedAt    string
	MoreItems    int
	MoreDepts    int
}

var summaryTitle = i18n.T("好差评公示", "Service ratings")

const summaryTop = 20 // departments and items listed on the public page

func (rt *Ratings) summaryPage(w http.ResponseWriter, r *http.Request) {
	lang := i18n.FromRequest(r)
	top := rt.Division
	if top == "" {
		top = "140000"
	}
	division := strings.TrimSpace(r.URL.Query().Get("division"))
	if division == "" {
		division = top
	}
	if !divisions.Contains(top, division) {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	now := rt.now().In(calendar.Beijing)
	f := rating.StatsFilter{Division: division}
	year := 0
	if y := r.URL.Query().Get("year"); y != "" {
		n, err := strconv.Atoi(y)
		if err != nil || n < 2019 || n > now.Year() { // 好差评 began with 国办发〔2019〕51号
			httpx.WriteError(w, r, i18n.New("rating.year", "年份无效", "invalid year").WithField("year"))
			return
		}
		year = n
		f.From = time.Date(n, 1, 1, 0, 0, 0, 0, calendar.Beijing)
		f.To = f.From.AddDate(1, 0, 0)
	}
	st, at, err := rt.cachedSummary(r, f)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := summaryData{Division: division, DivisionName: st.DivisionName, Year: year, Stats: st, Satisfaction: percent(st.Satisfaction, st.Total),
		OnTime: percent(st.OnTimeRate(), st.Rectifications-st.RectifyOpen), UpdatedAt: at.In(calendar.Beijing).Format("2006-01-02 15:04")}
	for y := now.Year(); y >= max(2019, now.Year()-4); y-- {
		d.Years = append(d.Years, y)
	}
	chain := append([]string{division}, divisions.Ancestors(division)...)
	for i := len(chain) - 1; i >= 0; i-- {
		if dv, ok := divisions.Lookup(chain[i]); ok && divisions.Contains(top, chain[i]) {
			d.Trail = append(d.Trail, dv)
		}
	}
	for _, l := range rating.Levels {
		n := st.ByLevel[l]
		d.Levels = append(d.Levels, Bar{Label: l.Name().In(lang), Count: n, Width: share(n, st.Total), Percent: percent(ratio(n, st.Total), st.Total)})
	}
	row := func(g rating.Group, name string) summaryRow {
		return summaryRow{Key: g.Key, Name: name, Total: g.Total, Poor: g.Poor, Satisfaction: percent(g.Satisfaction, g.Total),
			Width: int(g.Satisfaction*100 + 0.5), OnTime: percent(g.OnTimeRate(), g.Rectifications-g.RectifyOpen)}
	}
	for i, g := range st.ByDepartment {
		if i == summaryTop {
			d.MoreDepts = len(st.ByDepartment) - summaryTop
			break
		}
		name := g.Name
		if name == "" {
			name = i18n.T("（未具名部门）", "(unnamed department)").In(lang)
		}
		d.Departments = append(d.Departments, row(g, name))
	}
	for i, g := range st.ByItem {
		if i == summaryTop {
			d.MoreItems = len(st.ByItem) - summaryTop
			break
		}
		name := g.Name
		if lang == i18n.EN && g.NameEn != "" {
			name = g.NameEn
		}
		d.Items = append(d.Items, row(g, name))
	}
	for _, g := range st.ByDivision {
		sr := row(g, g.Name)
		sr.Link = "/ratings?" + url.Values{"division": {g.Key}, "year": {yearParam(year)}}.Encode()
		d.Divisions = append(d.Divisions, sr)
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	p := web.Page{Lang: lang, Title: summaryTitle, Nav: "ratings", Path: r.URL.Path, CSRF: httpx.CSRFToken(r), Data: d,
		RequestID: httpx.RequestID(r.Context())}
	rt.render(w, r, http.StatusOK, "portal/ratings", p)
}

func yearParam(y int) string {
	if y == 0 {
		return ""
	}
	return strconv.Itoa(y)
}

// cachedSummary answers the public summary from the cache when it is fresh.
func (rt *Ratings) cachedSummary(r *http.Request, f rating.StatsFilter) (rating.Stats, time.Time, error) {
	key := f.Division + "|" + f.From.String()
	now := rt.now()
	rt.mu.Lock()
	c, ok := rt.summary[key]
	rt.mu.Unlock()
	if ok && now.Sub(c.at) < summaryTTL && !now.Before(c.at) {
		return c.st, c.at, nil
	}
	st, err := rt.Service.Summary(r.Context(), f)
	if err != nil {
		return st, now, err
	}
	rt.mu.Lock()
	if rt.summary == nil || len(rt.summary) > 1000 { // divisions × years: bounded, but never let it grow unchecked
		rt.summary = map[string]cachedSummary{}
	}
	rt.summary[key] = cachedSummary{at: now, st: st}
	rt.mu.Unlock()
	return st, now, nil
}

func ratio(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// share is n of total in hundredths, for a bar's width.
func share(n, total int) int {
	if total == 0 {
		return 0
	}
	return (n*100 + total/2) / total
}

// percent formats a rate; "—" when there is nothing to rate.
func percent(rate float64, of int) string {
	if of <= 0 {
		return "—"
	}
	return strconv.FormatFloat(rate*100, 'f', 1, 64) + "%"
}

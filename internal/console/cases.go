package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// Case handling (事项办理, P5 item 6): the officer's work queues per step for their department
// and division, the case page with the application behind it, and the actions — claim,
// approve or reject, request a correction (补正), transfer, return. workflow.Service
// authorizes every read and transition; these handlers only decide which buttons to offer.

var (
	casesTitle     = i18n.T("事项办理", "Case handling")
	caseStatsTitle = i18n.T("办件统计", "Case statistics")
)

// caseRoutes registers the case pages; a console without the case engine has none.
func (c *Console) caseRoutes(mux *http.ServeMux) {
	if c.Cases == nil {
		return
	}
	mux.Handle("GET /console/cases", c.staffOnly(c.queuePage))
	mux.Handle("GET /console/cases/stats", c.staffOnly(c.caseStatsPage))
	mux.Handle("GET /console/cases/{id}", c.staffOnly(c.casePage))
	mux.Handle("POST /console/cases/{id}/{action}", c.staffOnly(c.caseAction))
	mux.Handle("GET /console/cases/{id}/files/{file}", c.staffOnly(c.caseFile))
	if c.Items != nil {
		mux.Handle("GET /console/services", c.staffOnly(c.servicesPage))
	}
}

// ---- queue ----

// queueTab is one tab or filter chip of the queue page.
type queueTab struct {
	Key     string
	Name    i18n.Text
	Count   int
	Href    string
	Current bool
}

// queueRow is one case in the queue.
type queueRow struct {
	workflow.Case
	Deadline deadline
	Mine     bool
}

type queueData struct {
	DeptName  string
	Filter    workflow.QueueFilter
	Steps     []queueTab // 全部, each step, 待补正
	Colours   []queueTab
	Claims    []queueTab
	Rows      []queueRow
	NextHref  string // "" on the last page
	FirstHref string // "" on the first page
}

// queueFilter reads the queue's filters from the query string. The engine validates them.
func queueFilter(q url.Values) workflow.QueueFilter {
	f := workflow.QueueFilter{Step: strings.TrimSpace(q.Get("step")), Status: workflow.Status(q.Get("status")),
		Claimed: q.Get("claimed"), After: q.Get("after"), Limit: 20}
	if q.Get("state") == string(workflow.StateSuspended) {
		f.State = workflow.StateSuspended
	}
	if len(f.Step) > 64 {
		f.Step = f.Step[:64]
	}
	return f
}

// queueHref is the queue page with filter f (its cursor included).
func queueHref(f workflow.QueueFilter) string {
	v := url.Values{}
	if f.State == workflow.StateSuspended {
		v.Set("state", string(f.State))
	}
	for k, s := range map[string]string{"step": f.Step, "status": string(f.Status), "claimed": f.Claimed, "after": f.After} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return "/console/cases"
	}
	return "/console/cases?" + v.Encode()
}

func (c *Console) queuePage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	f := queueFilter(r.URL.Query())
	d := &queueData{Filter: f}
	p := c.page(r, "cases", casesTitle, d)
	page, err := c.Cases.Queue(ctx, sub, f)
	if err != nil {
		c.fail(w, r, err, "console/cases", p)
		return
	}
	d.DeptName = c.departmentName(ctx, sub, sub.Dept)
	now := c.Now()
	cal := c.Cases.Calendar()
	// Tabs: the standard steps, and any other step a case on the page is at. No counts: the
	// department-wide statistics cost tens of milliseconds at 60 000 open cases (SQLite), more
	// than the page itself; they are on the statistics page.
	names := map[string]i18n.Text{}
	keys := []string{workflow.StepPreReview, workflow.StepAccept, workflow.StepReview, workflow.StepDecide, workflow.StepDeliver}
	for _, cs := range page.Cases {
		d.Rows = append(d.Rows, queueRow{Case: cs, Deadline: deadlineOf(cal, now, cs), Mine: cs.ClaimedBy == sub.String()})
		if cs.StepName != "" {
			names[cs.Step] = i18n.T(cs.StepName, cs.StepNameEn)
		}
		if !slices.Contains(keys, cs.Step) {
			keys = append(keys, cs.Step)
		}
	}
	if f.Step != "" && !slices.Contains(keys, f.Step) {
		keys = append(keys, f.Step)
	}
	stepName := func(k string) i18n.Text {
		if n, ok := stepNames[k]; ok {
			return n
		}
		if n, ok := names[k]; ok {
			return n
		}
		return i18n.T(k, k)
	}

	base := f
	base.After = ""
	all := base
	all.Step, all.State = "", ""
	d.Steps = append(d.Steps, queueTab{Name: i18n.T("全部待办", "All to do"), Href: queueHref(all),
		Current: f.Step == "" && f.State != workflow.StateSuspended})
	for _, k := range stepOrder(keys) {
		t := base
		t.Step, t.State = k, ""
		d.Steps = append(d.Steps, queueTab{Key: k, Name: stepName(k), Href: queueHref(t),
			Current: f.Step == k && f.State != workflow.StateSuspended})
	}
	susp := base
	susp.Step, susp.State = "", workflow.StateSuspended
	d.Steps = append(d.Steps, queueTab{Key: "suspended", Name: i18n.T("待补正", "Awaiting correction"), Href: queueHref(susp),
		Current: f.State == workflow.StateSuspended})

	for _, s := range []workflow.Status{"", workflow.Green, workflow.Yellow, workflow.Red} {
		t := base
		t.Status = s
		name := i18n.T("全部", "All")
		if s != "" {
			name = workflow.StatusNames[s]
		}
		d.Colours = append(d.Colours, queueTab{Key: string(s), Name: name, Href: queueHref(t), Current: f.Status == s})
	}
	for _, cl := range []struct {
		key  string
		name i18n.Text
	}{{workflow.ClaimedAny, i18n.T("全部", "All")}, {workflow.ClaimedNone, i18n.T("未认领", "Unclaimed")}, {workflow.ClaimedMine, i18n.T("我认领的", "Claimed by me")}} {
		t := base
		t.Claimed = cl.key
		d.Claims = append(d.Claims, queueTab{Key: cl.key, Name: cl.name, Href: queueHref(t), Current: f.Claimed == cl.key})
	}
	if page.Next != "" {
		nx := base
		nx.After = page.Next
		d.NextHref = queueHref(nx)
	}
	if f.After != "" {
		d.FirstHref = queueHref(base)
	}
	c.render(w, r, http.StatusOK, "console/cases", p)
}

// departmentName is a department's name for display, or its id when the actor may not read it.
func (c *Console) departmentName(ctx context.Context, sub authz.Subject, id string) string {
	if id == "" || c.Org == nil {
		return id
	}
	dep, err := c.Org.GetDepartment(ctx, sub, id)
	if err != nil {
		return id
	}
	return dep.Name
}

// ---- one case ----

// caseForm is what the officer typed into an action form, kept when it is refused.
type caseForm struct {
	Action  string
	Comment string
	Items   []string
	Other   string // further correction items, one a line
	ToDept  string
}

// historyRow is one history event for display.
type historyRow struct {
	workflow.Event
	Name     i18n.Text
	Class    string
	Actor    string
	StepName i18n.Text
	ToStep   i18n.Text
	ToDept   string
}

// stepView is one step of the case's definition, marked done, current or to come.
type stepView struct {
	workflow.Step
	Index   int
	Done    bool
	Current bool
}

// choice is a material or field the officer may name in a correction request.
type choice struct {
	Value   string
	Label   string
	Checked bool // offered ticked: a required material that is missing (容缺), or as typed
}

type caseData struct {
	Case     workflow.Case
	Deadline deadline
	DeptName string
	Steps    []stepView
	History  []historyRow
	Item     *govservice.Item
	App      *caseApplication // the application behind a service case, when there is one

	// What the viewer may do now.
	CanClaim, CanRelease, CanDecide, CanReturn bool
	CanCorrect                                 bool // the definition lets the applicant answer corrections
	ClaimedByMe                                bool
	ClaimedBy                                  string // the holder's name when someone else holds it
	Departments                                []org.Department
	Choices                                    []choice // materials and fields to name in a correction
	Form                                       caseForm

	StateNames map[workflow.State]i18n.Text
	TypeNames  map[string]i18n.Text
	PartyKinds map[authz.Kind]i18n.Text
}

// caseData reads everything the case page shows; the engine decides what the actor may see.
func (c *Console) caseData(ctx context.Context, r *http.Request, sub authz.Subject, id string) (*caseData, error) {
	cs, err := c.Cases.Get(ctx, sub, id)
	if err != nil {
		return nil, err
	}
	lang := i18n.FromRequest(r)
	d := &caseData{Case: cs, Deadline: deadlineOf(c.Cases.Calendar(), c.Now(), cs), DeptName: c.departmentName(ctx, sub, cs.DeptID),
		StateNames: workflow.StateNames, TypeNames: govservice.Types, PartyKinds: partyKinds}
	def, err := c.Cases.GetDefinition(ctx, cs.Definition, cs.DefinitionVersion)
	if err != nil {
		return nil, err
	}
	names := map[string]i18n.Text{}
	for i, st := range def.Steps {
		names[st.Key] = i18n.T(st.Name, st.NameEn)
		d.Steps = append(d.Steps, stepView{Step: st, Index: i + 1,
			Done:    i < cs.StepIndex || cs.State == workflow.StateClosed && cs.Outcome == workflow.OutcomeApproved,
			Current: i == cs.StepIndex && cs.State != workflow.StateClosed})
	}
	stepName := func(k string) i18n.Text {
		if n, ok := names[k]; ok {
			return n
		}
		return i18n.T(k, k)
	}
	events, err := c.Cases.History(ctx, sub, id)
	if err != nil {
		return nil, err
	}
	people := map[string]string{}
	for i := len(events) - 1; i >= 0; i-- { // newest first
		e := events[i]
		h := historyRow{Event: e, Name: actionNames[e.Action], Class: actionClass(e.Action, cs.Outcome),
			Actor: c.actorName(ctx, sub, lang, cs, e.Actor, people), StepName: stepName(e.Step)}
		if h.Name.ZH == "" {
			h.Name = i18n.T(string(e.Action), string(e.Action))
		}
		if e.ToStep != "" {
			h.ToStep = stepName(e.ToStep)
		}
		if e.ToDeptID != "" {
			h.ToDept = c.departmentName(ctx, sub, e.ToDeptID)
		}
		d.History = append(d.History, h)
	}
	if d.App, err = c.caseApplication(ctx, r, sub, cs); err != nil {
		return nil, err
	}
	if d.App != nil {
		d.Item = &d.App.Item // the version applied under
	} else if code, ok := strings.CutPrefix(cs.Definition, "service:"); ok && c.Items != nil {
		if it, err := c.Items.Get(ctx, code); err == nil {
			d.Item = &it
		}
	}
	if d.App != nil {
		d.Choices = d.App.Choices
	} else if d.Item != nil && strings.HasPrefix(cs.Ref, govservice.RefPrefix) {
		for _, m := range d.Item.Materials {
			d.Choices = append(d.Choices, choice{Value: m.Name, Label: i18n.T("材料", "Material").In(lang) + "：" + m.Name})
		}
	}

	// Offer only what the engine would allow; it checks again on every action.
	handler := sub.Kind == authz.Staff && sub.Dept != "" && sub.Dept == cs.DeptID && sub.Has(cs.StepRole) &&
		c.Policy.Allowed(sub, workflow.PermHandle, cs.Division)
	leader := sub.Kind == authz.Staff && sub.Dept == cs.DeptID && sub.Has(workflow.RoleLeader) && c.Policy.Allowed(sub, workflow.PermHandle, cs.Division)
	if cs.State == workflow.StateOpen {
		d.ClaimedByMe = cs.ClaimedBy == sub.String()
		d.CanClaim = handler && cs.ClaimedBy == ""
		d.CanRelease = cs.ClaimedBy != "" && (d.ClaimedByMe && handler || leader)
		d.CanDecide = handler && d.ClaimedByMe
		d.CanReturn = d.CanDecide && cs.StepIndex > 0
		if d.CanDecide {
			def, err := c.Cases.GetDefinition(ctx, cs.Definition, cs.DefinitionVersion)
			d.CanCorrect = err == nil && !def.NoCorrection
		}
		if cs.ClaimedBy != "" && !d.ClaimedByMe {
			d.ClaimedBy = c.actorName(ctx, sub, lang, cs, cs.ClaimedBy, people)
		}
	}
	if d.CanDecide && c.Org != nil {
		deps, err := c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{Division: sub.Division, IncludeSub: true, ActiveOnly: true, Limit: 1000})
		if err == nil {
			for _, dep := range deps {
				if dep.ID != cs.DeptID {
					d.Departments = append(d.Departments, dep)
				}
			}
		}
	}
	return d, nil
}

// actorName names who acted in a history entry: a staff member by name where the viewer may
// read the account, the applicant as such, the engine as the system.
func (c *Console) actorName(ctx context.Context, sub authz.Subject, lang i18n.Lang, cs workflow.Case, actor string, cache map[string]string) string {
	if n, ok := cache[actor]; ok {
		return n
	}
	kind, id, _ := strings.Cut(actor, ":")
	name := actor
	switch {
	case actor == cs.Applicant.String():
		name = i18n.T("申请人", "applicant").In(lang)
	case authz.Kind(kind) == authz.System:
		name = i18n.T("系统", "system").In(lang)
	case authz.Kind(kind) == authz.Staff && id == sub.ID:
		name = sub.Name
	case authz.Kind(kind) == authz.Staff && c.Org != nil:
		if st, err := c.Org.GetStaff(ctx, sub, id); err == nil {
			name = st.Name
			if st.DepartmentName != "" {
				name += "（" + st.DepartmentName + "）"
			}
		} else {
			name = partyKinds[authz.Staff].In(lang)
		}
	}
	cache[actor] = name
	return name
}

func (c *Console) casePage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	d, err := c.caseData(ctx, r, sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "console/cases_detail", c.page(r, "cases", i18n.T("办件详情", "Case"), d))
}

// caseAction carries out one action on a case and shows the case again: with the change, or
// with the refusal and what was typed.
func (c *Console) caseAction(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	id, action := r.PathValue("id"), r.PathValue("action")
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, r, i18n.New("request.bad_form", "表单无法解析", "the form could not be read"))
		return
	}
	f := caseForm{Action: action, Comment: r.PostFormValue("comment"), Items: r.PostForm["items"],
		Other: r.PostFormValue("items_other"), ToDept: strings.TrimSpace(r.PostFormValue("to_dept_id"))}
	version, _ := strconv.Atoi(r.PostFormValue("version"))
	next := "/console/cases/" + url.PathEscape(id) + "?ok=1"
	var err error
	switch action {
	case "claim":
		_, err = c.Cases.Claim(ctx, sub, id)
	case "release":
		_, err = c.Cases.Release(ctx, sub, id)
	case "approve":
		dec := workflow.Decision{Outcome: workflow.Approve, Comment: f.Comment, Version: version}
		if c.Apps != nil {
			// Applications refuse the decision step's approval while the fees are unpaid.
			_, err = c.Apps.Decide(ctx, sub, id, dec)
		} else {
			_, err = c.Cases.Decide(ctx, sub, id, dec)
		}
	case "reject":
		_, err = c.Cases.Decide(ctx, sub, id, workflow.Decision{Outcome: workflow.Reject, Comment: f.Comment, Version: version})
	case "correct":
		items := slices.Clone(f.Items)
		for _, line := range strings.Split(f.Other, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				items = append(items, line)
			}
		}
		if len(items) == 0 {
			err = i18n.New("console.case.items", "请选择或填写需要补正的材料或事项", "choose or name what must be corrected").WithField("items")
			break
		}
		_, err = c.Cases.RequestCorrection(ctx, sub, id, f.Comment, items)
	case "transfer":
		_, err = c.Cases.Transfer(ctx, sub, id, f.ToDept, f.Comment)
		next = "/console/cases?ok=1" // the case has left the officer's department
	case "return":
		_, err = c.Cases.Return(ctx, sub, id, f.Comment)
	default:
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	if err != nil {
		e, ok := i18n.As(err)
		if !ok {
			httpx.WriteError(w, r, err)
			return
		}
		d, derr := c.caseData(ctx, r, sub, id)
		if derr != nil {
			httpx.WriteError(w, r, err)
			return
		}
		d.Form = f
		if action == "correct" {
			for i := range d.Choices {
				d.Choices[i].Checked = slices.Contains(f.Items, d.Choices[i].Value)
			}
		}
		p := c.page(r, "cases", i18n.T("办件详情", "Case"), d)
		p.Error = e
		c.render(w, r, e.HTTPStatus(), "console/cases_detail", p)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// ---- statistics ----

// bar is one bar of a chart: its share of the largest in percent, for an SVG width.
type bar struct {
	Key   string
	Name  i18n.Text
	Count int
	Pct   float64
	Class string
	Fill  string
}

type caseStatsData struct {
	Stats     workflow.Stats
	Scope     i18n.Text
	ByStatus  []bar
	ByStep    []bar
	ByOutcome []bar
	At        time.Time
}

// bars scales counts to the largest of them.
func bars(in []bar) []bar {
	most := 0
	for _, b := range in {
		most = max(most, b.Count)
	}
	for i := range in {
		if most > 0 {
			in[i].Pct = float64(in[i].Count) * 100 / float64(most)
		}
	}
	return in
}

// Colours of the bars, the stylesheet's --ok, --warn, --bad and --red (SVG attributes, as the
// content security policy allows no inline style).
const (
	fillOK, fillWarn, fillBad, fillRed, fillMuted = "#1a7f37", "#9a6700", "#cf222e", "#b3261e", "#5f6b7a"
)

func (c *Console) caseStatsPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d := &caseStatsData{At: c.Now()}
	p := c.page(r, "case-stats", caseStatsTitle, d)
	st, err := c.Cases.Stats(r.Context(), sub)
	if err != nil {
		c.fail(w, r, err, "console/cases_stats", p)
		return
	}
	d.Stats = st
	if c.Policy.Allowed(sub, workflow.PermSupervise, sub.Division) {
		d.Scope = i18n.T("本区划内全部部门的办件", "every department's cases in your division")
	} else {
		name := c.departmentName(r.Context(), sub, sub.Dept)
		d.Scope = i18n.T("本部门（"+name+"）在本区划内的办件", "cases of your department ("+name+") in your division")
	}
	d.ByStatus = bars([]bar{
		{Key: "green", Name: workflow.StatusNames[workflow.Green], Count: st.ByStatus[workflow.Green], Class: "ok", Fill: fillOK},
		{Key: "yellow", Name: workflow.StatusNames[workflow.Yellow], Count: st.ByStatus[workflow.Yellow], Class: "warn", Fill: fillWarn},
		{Key: "red", Name: workflow.StatusNames[workflow.Red], Count: st.ByStatus[workflow.Red], Class: "bad", Fill: fillBad},
	})
	keys := make([]string, 0, len(st.OpenByStep))
	for k := range st.OpenByStep {
		keys = append(keys, k)
	}
	var steps []bar
	for _, k := range stepOrder(keys) {
		name, ok := stepNames[k]
		if !ok {
			name = i18n.T(k, k)
		}
		steps = append(steps, bar{Key: k, Name: name, Count: st.OpenByStep[k], Fill: fillRed})
	}
	if st.Suspended > 0 {
		steps = append(steps, bar{Key: "suspended", Name: i18n.T("待补正（暂停计时）", "awaiting correction (clock stopped)"), Count: st.Suspended, Fill: fillMuted})
	}
	d.ByStep = bars(steps)
	d.ByOutcome = bars([]bar{
		{Key: "approved", Name: workflow.OutcomeNames[workflow.OutcomeApproved], Count: st.ClosedByOutcome[workflow.OutcomeApproved], Class: "ok", Fill: fillOK},
		{Key: "rejected", Name: workflow.OutcomeNames[workflow.OutcomeRejected], Count: st.ClosedByOutcome[workflow.OutcomeRejected], Class: "bad", Fill: fillBad},
		{Key: "withdrawn", Name: workflow.OutcomeNames[workflow.OutcomeWithdrawn], Count: st.ClosedByOutcome[workflow.OutcomeWithdrawn], Fill: fillMuted},
	})
	c.render(w, r, http.StatusOK, "console/cases_stats", p)
}

package portal

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/notify"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/web"
)

// Services serves online government services (一网通办) to citizens and enterprises: the
// service guides (办事指南) anyone may read and search, and, signed in, applying, tracking,
// answering a request for correction (补正), 一件事 bundles, the personal space of earlier
// files (我的文件) and in-site messages. The rules live in govservice (catalogue and
// applications) and notify; these handlers parse, call and render.
type Services struct {
	*Accounts
	Items *govservice.Service
	// Index is the guide search; nil (a command without the search index) falls back to
	// the catalogue's keyword match.
	Index  *govservice.Indexer
	Apps   *govservice.Applications
	Notify *notify.Service // nil: no messages
	// IDNumber reveals a signed-in person's verified resident ID number, for prefilling
	// their forms (applicant.id_number) and finding them in the population library
	// (person.*). identity keeps it sealed and has no reader for it yet; nil leaves those
	// fields for the person to fill in.
	IDNumber func(ctx context.Context, accountID string) (string, error)
	// Ratings gives the 好差评 form a completed application shows (its Form; the form's own
	// routes are mounted by the ratings side); nil, or one without a Service, shows none.
	Ratings *Ratings
}

// Routes registers the pages, readable top to bottom.
func (s *Services) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /services", s.servicesPage)
	mux.HandleFunc("GET /services/{code}", s.guidePage)
	mux.HandleFunc("GET /bundles/{code}", s.bundlePage)
	mux.HandleFunc("GET /services/{code}/apply", s.signedIn(s.applyPage))
	mux.HandleFunc("POST /services/{code}/apply", s.signedIn(s.apply))
	mux.HandleFunc("GET /bundles/{code}/apply", s.signedIn(s.bundleApplyPage))
	mux.HandleFunc("POST /bundles/{code}/apply", s.signedIn(s.bundleApply))
	mux.HandleFunc("GET /account/applications", s.signedIn(s.applicationsPage))
	mux.HandleFunc("GET /account/applications/{id}", s.signedIn(s.applicationPage))
	mux.HandleFunc("POST /account/applications/{id}/correction", s.signedIn(s.answerCorrection))
	mux.HandleFunc("POST /account/applications/{id}/withdraw", s.signedIn(s.withdraw))
	mux.HandleFunc("GET /account/bundles/{id}", s.signedIn(s.bundleApplicationPage))
	mux.HandleFunc("GET /account/files", s.signedIn(s.filesPage))
	mux.HandleFunc("GET /account/files/{id}", s.signedIn(s.file))
	mux.HandleFunc("GET /account/messages", s.signedIn(s.messagesPage))
	mux.HandleFunc("GET /account/messages/{id}", s.signedIn(s.openMessage))
	mux.HandleFunc("POST /account/messages/read", s.signedIn(s.readAll))
}

// ---- display names ----

// departmentName is what people call a department kind at a level, e.g. 公安厅 (province),
// 公安局 (city and county).
func departmentName(kind, level string) i18n.Text {
	for _, k := range org.DepartmentKinds {
		if k.Code == kind {
			if level == govservice.LevelProvince {
				return i18n.T(k.Province, k.EN)
			}
			return i18n.T(k.City, k.EN)
		}
	}
	return i18n.T(kind, kind)
}

// both is a pack text with its optional English (Chinese when there is none).
func both(zh, en string) i18n.Text { return i18n.T(zh, en) }

// choice is one entry of a filter select.
type choice struct {
	Value    string
	Label    i18n.Text
	Selected bool
}

func kindChoices(selected string) []choice {
	out := make([]choice, 0, len(org.DepartmentKinds))
	for _, k := range org.DepartmentKinds {
		out = append(out, choice{Value: k.Code, Label: i18n.T(k.Kind, k.EN), Selected: k.Code == selected})
	}
	return out
}

// itemTypes are the item types in the order of the national directory.
var itemTypes = []string{govservice.TypeLicensing, govservice.TypeConfirmation, govservice.TypeBenefit,
	govservice.TypeAdjudication, govservice.TypeReward, govservice.TypeOtherPower, govservice.TypePublic}

func typeChoices(selected string) []choice {
	out := make([]choice, 0, len(itemTypes))
	for _, t := range itemTypes {
		out = append(out, choice{Value: t, Label: govservice.Types[t], Selected: t == selected})
	}
	return out
}

func levelChoices(selected string) []choice {
	var out []choice
	for _, l := range []string{govservice.LevelProvince, govservice.LevelCity, govservice.LevelCounty} {
		out = append(out, choice{Value: l, Label: govservice.Levels[l], Selected: l == selected})
	}
	return out
}

// itemCard is an item as lists show it.
type itemCard struct {
	Code, Link string
	Name       i18n.Text
	Summary    string
	Type       i18n.Text
	Department i18n.Text
	Level      i18n.Text
	ZeroVisit  bool
	Promised   int
	// Snippet is a search highlight (escaped by the index, matches in <mark>).
	Snippet template.HTML
}

func cardOf(it govservice.Item) itemCard {
	return itemCard{Code: it.Code, Link: "/services/" + url.PathEscape(it.Code), Name: both(it.Name, it.NameEn), Summary: it.Summary,
		Type: govservice.Types[it.Type], Department: departmentName(it.Department, it.Level), Level: govservice.Levels[it.Level],
		ZeroVisit: it.ZeroVisit, Promised: it.PromisedDays}
}

// bundleCard is a 一件事 bundle as lists show it.
type bundleCard struct {
	Code, Link string
	Name       i18n.Text
	Summary    string
	Members    int
	Snippet    template.HTML
}

func bundleCardOf(b govservice.Bundle) bundleCard {
	return bundleCard{Code: b.Code, Link: "/bundles/" + url.PathEscape(b.Code), Name: both(b.Name, b.NameEn),
		Summary: b.Summary, Members: len(b.Items)}
}

// ---- /services: browse and search ----

// serviceFilter is what the browse page was asked for.
type serviceFilter struct {
	Q, Department, Type, Level string
	ZeroVisit                  bool
	Offset                     int
}

func (f serviceFilter) any() bool {
	return f.Q != "" || f.Department != "" || f.Type != "" || f.Level != "" || f.ZeroVisit
}

// keeps reports whether an item passes the filters other than the text.
func (f serviceFilter) keeps(it govservice.Item) bool {
	return (f.Department == "" || it.Department == f.Department) && (f.Type == "" || it.Type == f.Type) &&
		(f.Level == "" || it.Level == f.Level) && (!f.ZeroVisit || it.ZeroVisit)
}

func (f serviceFilter) query(offset int) template.URL {
	q := url.Values{}
	for k, v := range map[string]string{"q": f.Q, "department": f.Department, "type": f.Type, "level": f.Level} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.ZeroVisit {
		q.Set("zero_visit", "1")
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	return template.URL(q.Encode()) //nolint:gosec // url.Values.Encode escapes every value
}

func parseServiceFilter(q url.Values) serviceFilter {
	f := serviceFilter{Q: strings.TrimSpace(q.Get("q")), Department: q.Get("department"), Type: q.Get("type"),
		Level: q.Get("level"), ZeroVisit: q.Get("zero_visit") != ""}
	// Unknown filter values select nothing rather than everything.
	if f.Department != "" && !slices.ContainsFunc(org.DepartmentKinds, func(k org.DepartmentKind) bool { return k.Code == f.Department }) {
		f.Department = "-"
	}
	if f.Type != "" && !slices.Contains(itemTypes, f.Type) {
		f.Type = "-"
	}
	if _, ok := govservice.Levels[f.Level]; f.Level != "" && !ok {
		f.Level = "-"
	}
	f.Offset, _ = strconv.Atoi(q.Get("offset"))
	f.Offset = max(f.Offset, 0)
	return f
}

// browsePage is how many items a page of the unfiltered or filtered list shows; a text
// search shows its best searchLimit hits on one page.
const (
	browsePage  = 50
	searchLimit = 100
)

type servicesData struct {
	Filter                 serviceFilter
	Departments, Types     []choice
	Levels                 []choice
	Bundles                []bundleCard // 一件事, shown first
	Items                  []itemCard
	Searched               bool // a text search ran: Items are ranked hits
	Total                  int
	Prev, Next             template.URL // query strings of the neighbouring pages, "" for none
	PrevText, NextText     i18n.Text
	SearchError            *i18n.Error
	ShowBundles, AnyFilter bool
	Filtered               bool // a filter other than the text: the filters show unfolded
}

var servicesTitle = i18n.T("办事服务", "Online services")

func (s *Services) servicesPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := parseServiceFilter(r.URL.Query())
	d := servicesData{Filter: f, Departments: kindChoices(f.Department), Types: typeChoices(f.Type), Levels: levelChoices(f.Level),
		AnyFilter: f.any(), Items: []itemCard{}, Filtered: f.Department != "" || f.Type != "" || f.Level != "" || f.ZeroVisit}
	p := s.pageFor(r, servicesTitle, nil)
	var err error
	if f.Q != "" && s.Index != nil {
		err = s.search(ctx, f, &d)
	} else {
		err = s.browse(ctx, f, &d)
	}
	if e, ok := i18n.As(err); ok && e.HTTPStatus() < 500 {
		d.SearchError, err = e, nil // a search text too long: say so on the page
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "portal/services", p)
}

// search ranks guides by full text; the other filters narrow the hits (bundles have no
// department or type, so any filter leaves them out).
func (s *Services) search(ctx context.Context, f serviceFilter, d *servicesData) error {
	res, err := s.Index.Search(ctx, f.Q, govservice.Page{Limit: searchLimit})
	if err != nil {
		return err
	}
	d.Searched = true
	filtered := f.Department != "" || f.Type != "" || f.Level != "" || f.ZeroVisit
	for _, h := range res.Hits {
		switch {
		case h.Item != nil && f.keeps(*h.Item):
			c := cardOf(*h.Item)
			c.Snippet = snippet(h.Highlights)
			d.Items = append(d.Items, c)
		case h.Bundle != nil && !filtered:
			c := bundleCardOf(*h.Bundle)
			c.Snippet = snippet(h.Highlights)
			d.Bundles = append(d.Bundles, c)
		}
	}
	d.ShowBundles = len(d.Bundles) > 0
	d.Total = len(d.Items) + len(d.Bundles)
	return nil
}

// snippet picks one highlighted fragment to show under a hit, preferring the text people
// read first. The index escapes everything but its <mark> tags.
func snippet(hl map[string][]string) template.HTML {
	for _, field := range []string{"summary", "keywords", "conditions", "materials", "result", "faq", "department", "legal_basis"} {
		if fr := hl[field]; len(fr) > 0 {
			return template.HTML(fr[0]) //nolint:gosec // escaped by the index (govservice.GuideHit)
		}
	}
	return ""
}

// browse lists items by code with the filters (and, without an index, a keyword match);
// the unfiltered first page leads with the 一件事 bundles.
func (s *Services) browse(ctx context.Context, f serviceFilter, d *servicesData) error {
	items, err := s.Items.List(ctx, govservice.Filter{Department: f.Department, Type: f.Type, Level: f.Level,
		ZeroVisit: f.ZeroVisit, Keyword: f.Q, Limit: browsePage + 1, Offset: f.Offset})
	if err != nil {
		return err
	}
	if len(items) > browsePage {
		items = items[:browsePage]
		d.Next, d.NextText = f.query(f.Offset+browsePage), i18n.T("下一页", "Next")
	}
	if f.Offset > 0 {
		d.Prev, d.PrevText = f.query(max(f.Offset-browsePage, 0)), i18n.T("上一页", "Previous")
		if d.Prev == "" {
			d.Prev = "offset=0"
		}
	}
	for _, it := range items {
		d.Items = append(d.Items, cardOf(it))
	}
	if !f.any() && f.Offset == 0 {
		bundles, err := s.Items.Bundles(ctx)
		if err != nil {
			return err
		}
		for _, b := range bundles {
			d.Bundles = append(d.Bundles, bundleCardOf(b))
		}
		d.ShowBundles = true
	}
	d.Total = len(d.Items)
	return nil
}

// ---- /services/{code}: the guide ----

type feeView struct {
	Name, Basis, Unit string
	Yuan              string
}

type stepView struct {
	Key  string
	Name i18n.Text
	Days int
}

type guideData struct {
	Item       govservice.Item
	Name       i18n.Text
	Type       i18n.Text
	Department i18n.Text
	Level      i18n.Text
	Materials  []materialField
	Fees       []feeView
	Steps      []stepView
	Channels   []i18n.Text
	Online     bool // the web channel is offered and the item is in the pack: 申请 is shown
	Applicants []i18n.Text
	Result     i18n.Text
	Bundles    []bundleCard // 一件事 bundles this item is part of
	ApplyLink  string
}

var applicantNames = map[string]i18n.Text{
	"citizen":    i18n.T("自然人", "citizens"),
	"enterprise": i18n.T("法人", "enterprises"),
}

func stepsOf(it govservice.Item) []stepView {
	out := make([]stepView, 0, len(it.Steps))
	for _, st := range it.Steps {
		out = append(out, stepView{Key: st.Key, Name: both(st.Name, st.NameEn), Days: st.Days})
	}
	return out
}

func (s *Services) guidePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	it, err := s.Items.Get(ctx, r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := guideData{Item: it, Name: both(it.Name, it.NameEn), Type: govservice.Types[it.Type],
		Department: departmentName(it.Department, it.Level), Level: govservice.Levels[it.Level],
		Materials: itemMaterials(it), Steps: stepsOf(it), Result: both(it.Result.Name, it.Result.NameEn),
		Online: it.Active && slices.Contains(it.Channels, govservice.ChannelWeb), ApplyLink: "/services/" + url.PathEscape(it.Code) + "/apply"}
	for _, f := range it.Fees {
		d.Fees = append(d.Fees, feeView{Name: f.Name, Basis: f.Basis, Unit: f.Unit, Yuan: form.YuanText(f.AmountFen)})
	}
	for _, c := range it.Channels {
		d.Channels = append(d.Channels, govservice.ChannelNames[c])
	}
	kinds := it.Applicants
	if len(kinds) == 0 {
		d.Applicants = []i18n.Text{applicantNames["citizen"], applicantNames["enterprise"]}
	}
	for _, k := range kinds {
		if n, ok := applicantNames[string(k)]; ok {
			d.Applicants = append(d.Applicants, n)
		}
	}
	bundles, err := s.Items.Bundles(ctx)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	for _, b := range bundles {
		if slices.Contains(b.Items, it.Code) {
			d.Bundles = append(d.Bundles, bundleCardOf(b))
		}
	}
	s.render(w, r, http.StatusOK, "portal/services_guide", s.pageFor(r, d.Name, d))
}

// ---- /bundles/{code}: a 一件事 guide ----

type memberView struct {
	Item       itemCard
	Department i18n.Text
	Result     i18n.Text
	Steps      []stepView
}

type bundleData struct {
	Bundle    govservice.Bundle
	Name      i18n.Text
	Lead      i18n.Text // 牵头部门, empty when none
	Members   []memberView
	Materials []materialField // every member's materials, one entry for what members share
	Promised  int             // the longest member's promised days: members run side by side
	Online    bool
	ApplyLink string
}

// bundleGuide gathers what the guide of a bundle shows.
func (s *Services) bundleGuide(ctx context.Context, code string) (bundleData, error) {
	b, err := s.Items.Bundle(ctx, code)
	if err != nil {
		return bundleData{}, err
	}
	members, err := s.Items.ItemsByCode(ctx, b.Items)
	if err != nil {
		return bundleData{}, err
	}
	d := bundleData{Bundle: b, Name: both(b.Name, b.NameEn), Online: b.Active, ApplyLink: "/bundles/" + url.PathEscape(b.Code) + "/apply"}
	if b.Lead != "" {
		d.Lead = departmentName(b.Lead, govservice.LevelCity)
	}
	var ordered []govservice.Item
	for _, code := range b.Items {
		it, ok := members[code]
		if !ok {
			continue
		}
		if !it.Active {
			d.Online = false // a member has left the pack: the bundle cannot be applied for
		}
		d.Members = append(d.Members, memberView{Item: cardOf(it), Department: departmentName(it.Department, it.Level),
			Result: both(it.Result.Name, it.Result.NameEn), Steps: stepsOf(it)})
		d.Promised = max(d.Promised, it.PromisedDays)
		ordered = append(ordered, it)
	}
	d.Materials = bundleMaterials(ordered)
	return d, nil
}

func (s *Services) bundlePage(w http.ResponseWriter, r *http.Request) {
	d, err := s.bundleGuide(r.Context(), r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "portal/bundle", s.pageFor(r, d.Name, d))
}

// ---- shared ----

// pageFor is a services page with its navigation entry.
func (s *Services) pageFor(r *http.Request, title i18n.Text, data any) web.Page {
	p := s.page(r, title, data)
	p.Nav = "services"
	return p
}

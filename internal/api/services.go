package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Online services (掌上办) for the phone app. The guides are public, as on the portal. The
// form is the pack's declaration — the one the portal renders and govservice validates
// against — with the id of its stored version, so the app, the web page and the validation
// can never disagree on a rule. Applying needs a person: a bearer access token the node's
// OpenID provider issued to a citizen (acting for an enterprise, or not) through single
// sign-on. Materials are referenced by files of the personal space; uploads stay on the web.

// ItemForms gives an item's current form, not prefilled: FormDraft's Item, FormVersionID and
// Form (govservice.ErrNotFound for an unknown item, ErrItemInactive for one that left the
// pack). The id is the one Submit stores for an application made now.
type ItemForms interface {
	BlankForm(ctx context.Context, itemCode string) (govservice.FormDraft, error)
}

// People tells who a bearer access token speaks for, as the portal's session does: the
// citizen, or the enterprise the person acts for, with their name, verified ID number and
// mobile for prefill and notices. A token that is not a live token of a person answers
// i18n.ErrUnauthorized (or another 401); a system's or staff member's token ErrPersonOnly.
type People interface {
	SubjectForToken(ctx context.Context, bearer string) (govservice.Applicant, error)
}

// Errors of the services API.
var (
	// ErrPersonOnly answers a valid token that is not a citizen's: a system client's own
	// token (client credentials) or a staff member's.
	ErrPersonOnly = &i18n.Error{Code: "api.person_token_required", Status: http.StatusForbidden,
		Msg: i18n.T("此接口仅受理个人或企业用户的访问令牌", "this API takes the access token of a citizen or an enterprise user only")}
	// ErrRealNameRequired: an application is made in one's legal name (实名办事).
	ErrRealNameRequired = &i18n.Error{Code: "api.real_name_required", Status: http.StatusForbidden,
		Msg: i18n.T("请先完成实名认证再办理", "verify your real name before applying")}
	// ErrFormChanged: the app filled in a form version that is no longer current.
	ErrFormChanged = &i18n.Error{Code: "api.form_changed", Status: http.StatusConflict, Field: "form_version_id",
		Msg: i18n.T("办事表单已更新，请重新获取表单后填写", "the form has changed: fetch it again and fill it in")}
	errServicesOff = &i18n.Error{Code: "api.services_off", Status: http.StatusNotFound,
		Msg: i18n.T("本节点未开通网上办事", "this node offers no online services")}
)

// ---- the catalogue: anyone ----

// catalogue answers 404 on a node built without online services.
func (a *API) catalogue(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.Items == nil || a.Forms == nil {
			httpx.WriteError(w, r, errServicesOff)
			return
		}
		h(w, r)
	}
}

// itemSummary is an item as lists show it; the guide has every element.
type itemSummary struct {
	Code          string              `json:"code"`
	Name          string              `json:"name"`
	NameEn        string              `json:"name_en"`
	Summary       string              `json:"summary,omitempty"`
	Type          string              `json:"type"`
	Department    string              `json:"department"`
	Level         string              `json:"level"`
	ZeroVisit     bool                `json:"zero_visit"`
	PromisedDays  int                 `json:"promised_days"`
	StatutoryDays int                 `json:"statutory_days"`
	Channels      []string            `json:"channels"`
	Version       int                 `json:"version"`
	Score         float64             `json:"score,omitempty"`
	Highlights    map[string][]string `json:"highlights,omitempty"`
}

func summaryOf(it govservice.Item) itemSummary {
	return itemSummary{Code: it.Code, Name: it.Name, NameEn: it.NameEn, Summary: it.Summary, Type: it.Type, Department: it.Department,
		Level: it.Level, ZeroVisit: it.ZeroVisit, PromisedDays: it.PromisedDays, StatutoryDays: it.StatutoryDays,
		Channels: nonNil(it.Channels), Version: it.Version}
}

// bundleSummary is a 一件事 bundle as lists show it.
type bundleSummary struct {
	Code       string              `json:"code"`
	Name       string              `json:"name"`
	NameEn     string              `json:"name_en"`
	Summary    string              `json:"summary"`
	Items      []string            `json:"items"`
	Lead       string              `json:"lead,omitempty"`
	Version    int                 `json:"version"`
	Score      float64             `json:"score,omitempty"`
	Highlights map[string][]string `json:"highlights,omitempty"`
}

func bundleSummaryOf(b govservice.Bundle) bundleSummary {
	return bundleSummary{Code: b.Code, Name: b.Name, NameEn: b.NameEn, Summary: b.Summary, Items: nonNil(b.Items), Lead: b.Lead, Version: b.Version}
}

// badParam names a query parameter whose value the API does not know.
func badParam(name string) error {
	return &i18n.Error{Code: "api.bad_parameter", Status: http.StatusBadRequest, Field: name,
		Msg: i18n.T("参数 "+name+" 的取值无效", "the value of parameter "+name+" is not valid")}
}

// serviceFilter reads the list filters. An unknown value is refused, not matched against
// nothing: an app's typo should show, not look like an empty catalogue.
func serviceFilter(r *http.Request) (govservice.Filter, error) {
	q := r.URL.Query()
	f := govservice.Filter{Department: q.Get("department"), Type: q.Get("type"), Level: q.Get("level"),
		Limit: intParam(r, "limit", 50), Offset: intParam(r, "offset", 0)}
	if f.Department != "" && !slices.ContainsFunc(org.DepartmentKinds, func(k org.DepartmentKind) bool { return k.Code == f.Department }) {
		return f, badParam("department")
	}
	if _, ok := govservice.Types[f.Type]; f.Type != "" && !ok {
		return f, badParam("type")
	}
	if _, ok := govservice.Levels[f.Level]; f.Level != "" && !ok {
		return f, badParam("level")
	}
	if v := q.Get("zero_visit"); v != "" {
		zv, err := strconv.ParseBool(v)
		if err != nil {
			return f, badParam("zero_visit")
		}
		f.ZeroVisit = zv
	}
	return f, nil
}

// keeps reports whether an item found by text passes the other filters.
func keeps(f govservice.Filter, it govservice.Item) bool {
	return (f.Department == "" || it.Department == f.Department) && (f.Type == "" || it.Type == f.Type) &&
		(f.Level == "" || it.Level == f.Level) && (!f.ZeroVisit || it.ZeroVisit)
}

// searchDepth is how many ranked hits a text search filters and pages through.
const searchDepth = 100

// listServices lists active items by code, or, with ?q= and the guide index, ranks items and
// bundles by full text (the other filters narrow the items; bundles have no department or
// type, so any filter leaves them out).
func (a *API) listServices(w http.ResponseWriter, r *http.Request) {
	f, err := serviceFilter(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	text := strings.TrimSpace(r.URL.Query().Get("q"))
	if text == "" || a.Index == nil {
		f.Keyword = text
		list, err := a.Items.List(r.Context(), f)
		if err != nil {
			httpx.WriteError(w, r, withField(err, "q"))
			return
		}
		items := make([]itemSummary, len(list))
		for i, it := range list {
			items[i] = summaryOf(it)
		}
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
		return
	}
	res, err := a.Index.Search(r.Context(), text, govservice.Page{Limit: searchDepth})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	filtered := f.Department != "" || f.Type != "" || f.Level != "" || f.ZeroVisit
	items, bundles := []itemSummary{}, []bundleSummary{}
	for _, h := range res.Hits {
		switch {
		case h.Item != nil && keeps(f, *h.Item):
			s := summaryOf(*h.Item)
			s.Score, s.Highlights = h.Score, h.Highlights
			items = append(items, s)
		case h.Bundle != nil && !filtered:
			s := bundleSummaryOf(*h.Bundle)
			s.Score, s.Highlights = h.Score, h.Highlights
			bundles = append(bundles, s)
		}
	}
	total := len(items)
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, searchDepth)
	start := min(f.Offset, len(items))
	items = items[start:min(start+limit, len(items))]
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "total": total, "bundles": bundles})
}

// itemGuide is an item's guide (办事指南): every element but the form, which is served with
// its version id at FormURL.
type itemGuide struct {
	govservice.Item
	Form      *struct{} `json:"form,omitempty"` // hides Item.Form
	FormURL   string    `json:"form_url"`
	TypeName  i18n.Text `json:"type_name"`
	LevelName i18n.Text `json:"level_name"`
}

func (a *API) serviceGuide(w http.ResponseWriter, r *http.Request) {
	it, err := a.Items.Get(r.Context(), r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, withField(err, "code"))
		return
	}
	it.Materials, it.Fees, it.Steps, it.FAQ = nonNil(it.Materials), nonNil(it.Fees), nonNil(it.Steps), nonNil(it.FAQ)
	_ = httpx.WriteJSON(w, http.StatusOK, itemGuide{Item: it, FormURL: "/api/v1/services/" + it.Code + "/form",
		TypeName: govservice.Types[it.Type], LevelName: govservice.Levels[it.Level]})
}

// itemForm is what the app renders and submits against.
type itemForm struct {
	ItemCode      string `json:"item_code"`
	ItemVersion   int    `json:"item_version"`
	FormVersionID string `json:"form_version_id"`
	// FormHash is the SM3 (GB/T 32905) digest of the canonical declaration.
	FormHash string          `json:"form_hash"`
	Form     json.RawMessage `json:"form"`
	// Materials are the keys an application may attach personal-space files under.
	Materials []govservice.Material `json:"materials"`
}

// serviceForm answers the current form declaration; its version id is also the ETag, so an
// app revalidates its cached copy with If-None-Match.
func (a *API) serviceForm(w http.ResponseWriter, r *http.Request) {
	d, err := a.Forms.BlankForm(r.Context(), r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, withField(err, "code"))
		return
	}
	etag := `"` + d.FormVersionID + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, itemForm{ItemCode: d.Item.Code, ItemVersion: d.Item.Version, FormVersionID: d.FormVersionID,
		FormHash: d.Form.Hash(), Form: d.Form.Canonical(), Materials: nonNil(d.Item.Materials)})
}

func (a *API) listBundles(w http.ResponseWriter, r *http.Request) {
	list, err := a.Items.Bundles(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := make([]bundleSummary, len(list))
	for i, b := range list {
		out[i] = bundleSummaryOf(b)
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": out})
}

// bundleGuide is a 一件事 bundle with its member items (summaries, in handling order).
type bundleGuide struct {
	govservice.Bundle
	Members []itemSummary `json:"members"`
}

func (a *API) bundleGuide(w http.ResponseWriter, r *http.Request) {
	b, err := a.Items.Bundle(r.Context(), r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, withField(err, "code"))
		return
	}
	its, err := a.Items.ItemsByCode(r.Context(), b.Items)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	g := bundleGuide{Bundle: b, Members: []itemSummary{}}
	for _, code := range b.Items {
		if it, ok := its[code]; ok {
			g.Members = append(g.Members, summaryOf(it))
		}
	}
	_ = httpx.WriteJSON(w, http.StatusOK, g)
}

// ---- applications: a person with a bearer token ----

// bearerToken is the token of an "Authorization: Bearer …" header (RFC 6750 §2.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// applicantOnly authenticates a person by their access token, never by a cookie: these
// routes are exempt from the CSRF check, which a cookie would need.
func (a *API) applicantOnly(h func(http.ResponseWriter, *http.Request, govservice.Applicant)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.People == nil || a.Apps == nil || a.Forms == nil {
			httpx.WriteError(w, r, errServicesOff)
			return
		}
		bearer, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dgov"`)
			httpx.WriteError(w, r, i18n.ErrUnauthorized)
			return
		}
		ap, err := a.People.SubjectForToken(r.Context(), bearer)
		if err != nil {
			if e, ok := i18n.As(err); ok && e.HTTPStatus() == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="dgov", error="invalid_token"`)
			}
			httpx.WriteError(w, r, err)
			return
		}
		h(w, r, ap)
	}
}

// formValues are a form's values as an app sends them: strings, or numbers and booleans,
// which are taken as their JSON text ("50000", "true") for the form to validate as the web
// page's inputs are. A null leaves the field out.
type formValues form.Values

func (v *formValues) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &i18n.Error{Code: "api.values", Status: http.StatusBadRequest, Field: "values", Err: err,
			Msg: i18n.T("values 应为以字段键为名的对象", "values must be an object keyed by field")}
	}
	out := make(formValues, len(raw))
	for k, m := range raw {
		m = bytes.TrimSpace(m)
		switch {
		case len(m) == 0 || string(m) == "null":
			continue
		case m[0] == '"':
			var s string
			if err := json.Unmarshal(m, &s); err != nil {
				return badValue(k, err)
			}
			out[k] = s
		case string(m) == "true" || string(m) == "false":
			out[k] = string(m)
		case m[0] == '-' || (m[0] >= '0' && m[0] <= '9'):
			var n json.Number
			if err := json.Unmarshal(m, &n); err != nil {
				return badValue(k, err)
			}
			out[k] = n.String()
		default:
			return badValue(k, nil)
		}
	}
	*v = out
	return nil
}

func badValue(key string, cause error) error {
	return &i18n.Error{Code: "api.value_type", Status: http.StatusBadRequest, Field: key, Err: cause,
		Msg: i18n.T("字段 "+key+" 的值应为字符串、数字或布尔值", "the value of "+key+" must be a string, a number or a boolean")}
}

// materialRef attaches a file of the applicant's personal space (我的空间) as a material.
type materialRef struct {
	Key    string `json:"key"`
	FileID string `json:"file_id"`
}

type applyRequest struct {
	Division  string        `json:"division"`
	Values    formValues    `json:"values"`
	Materials []materialRef `json:"materials"`
	// FormVersionID, when sent, must be the current form's: a form filled in under an older
	// version is refused (409) rather than validated against rules the person did not see.
	FormVersionID string `json:"form_version_id"`
}

// maxMaterialRefs bounds the materials of one request before the service sees them.
const maxMaterialRefs = 50

func (a *API) submitApplication(w http.ResponseWriter, r *http.Request, ap govservice.Applicant) {
	var in applyRequest
	if err := httpx.DecodeJSON(r, &in, maxBody); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	code := r.PathValue("code")
	if in.FormVersionID != "" {
		d, err := a.Forms.BlankForm(r.Context(), code)
		if err != nil {
			httpx.WriteError(w, r, withField(err, "code"))
			return
		}
		if d.FormVersionID != in.FormVersionID {
			httpx.WriteError(w, r, ErrFormChanged)
			return
		}
	}
	if len(in.Materials) > maxMaterialRefs {
		httpx.WriteError(w, r, govservice.ErrTooManyMaterials)
		return
	}
	mats := make([]govservice.MaterialInput, 0, len(in.Materials))
	for i, m := range in.Materials {
		if strings.TrimSpace(m.Key) == "" || strings.TrimSpace(m.FileID) == "" {
			httpx.WriteError(w, r, &i18n.Error{Code: "api.material_ref", Status: http.StatusBadRequest, Field: "materials[" + strconv.Itoa(i) + "]",
				Msg: i18n.T("每份材料须给出 key 和“我的空间”中的 file_id", "each material needs a key and the file_id of a file of your personal space")})
			return
		}
		mats = append(mats, govservice.MaterialInput{Key: m.Key, Source: govservice.SourceFile, FileID: m.FileID})
	}
	out, err := a.Apps.Submit(r.Context(), ap, govservice.SubmitInput{ItemCode: code, Division: in.Division,
		Values: form.Values(in.Values), Materials: mats})
	if err != nil {
		writeSubmitError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/applications/"+out.ID)
	_ = httpx.WriteJSON(w, http.StatusCreated, out)
}

// validationProblem is a problem (RFC 9457) with every field the form refused, for the app
// to mark them all at once; the extension member is "errors".
type validationProblem struct {
	*httpx.Problem
	Errors form.Errors `json:"errors"`
}

// writeSubmitError answers a submission the form refused with 422 and the per-field errors
// (code and text in both languages, as the web form shows them), anything else as usual.
func writeSubmitError(w http.ResponseWriter, r *http.Request, err error) {
	errs, ok := govservice.FieldErrors(err)
	ie, isUser := i18n.As(err)
	if !ok || !isUser {
		httpx.WriteError(w, r, err)
		return
	}
	unprocessable := *ie
	unprocessable.Status = http.StatusUnprocessableEntity
	p := httpx.NewProblem(r, &unprocessable)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", string(p.Lang))
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(validationProblem{Problem: p, Errors: errs})
}

func (a *API) myApplications(w http.ResponseWriter, r *http.Request, ap govservice.Applicant) {
	list, err := a.Apps.Mine(r.Context(), ap.Subject, govservice.MineFilter{BundleID: r.URL.Query().Get("bundle_id"),
		Limit: intParam(r, "limit", 20), Offset: intParam(r, "offset", 0)})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": nonNil(list)})
}

// applicationJSON is an application as its applicant reads it, with the form declaration
// it was made under (to label the values).
type applicationJSON struct {
	govservice.ApplicationDetail
	Form json.RawMessage `json:"form"`
}

func (a *API) myApplication(w http.ResponseWriter, r *http.Request, ap govservice.Applicant) {
	det, err := a.Apps.Get(r.Context(), ap.Subject, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := applicationJSON{ApplicationDetail: det}
	if det.Form != nil {
		out.Form = det.Form.Canonical()
	}
	det.Item.Form = nil // the form it was made under is Form
	out.Item = det.Item
	out.Materials = nonNil(det.Materials)
	_ = httpx.WriteJSON(w, http.StatusOK, out)
}

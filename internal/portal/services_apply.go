package portal

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Applying (网上申请): the item's or bundle's form from the pack, prefilled; where to apply;
// the materials, uploaded or picked from the personal space. Input names outside the form's
// own fields carry a dot, which form field keys cannot, so they never collide.
const (
	divisionInput = "apply.division"
	materialInput = "material." // + material key: the upload; + ".file": a personal-space file id
	fileSuffix    = ".file"
	licenceSuffix = ".licence" // + the licence identifier: use my e-licence instead of an upload
)

// applicant is who a signed-in session applies as: the person, or the enterprise they act
// for, with what prefill and notices need.
func (s *Services) applicant(ctx context.Context, ses identity.Session) (govservice.Applicant, identity.Account, error) {
	acc, err := s.Identity.GetAccount(ctx, ses.AccountID)
	if err != nil {
		return govservice.Applicant{}, acc, err
	}
	sub, err := s.Identity.Subject(ctx, ses.AccountID, ses.ActingEnterpriseID)
	if err != nil {
		return govservice.Applicant{}, acc, err
	}
	ap := govservice.Applicant{Subject: sub, Name: acc.Name, Phone: acc.Mobile}
	if acc.Level >= identity.LevelRealName && s.IDNumber != nil {
		if ap.IDNumber, err = s.IDNumber(ctx, acc.ID); err != nil {
			return govservice.Applicant{}, acc, fmt.Errorf("applicant's ID number: %w", err)
		}
	}
	if ses.ActingEnterpriseID != "" {
		e, err := s.Identity.GetEnterprise(ctx, ses.ActingEnterpriseID)
		if err != nil {
			return govservice.Applicant{}, acc, err
		}
		ap.Enterprise = &govservice.EnterpriseRef{Name: e.Name, CreditCode: e.CreditCode}
	}
	return ap, acc, nil
}

// realApplicant is the applicant of ses when they have verified their real name: an
// application is made in one's legal name (实名办事), and prefill needs the ID number. A
// person who has not is sent to do so first; then, or on an error, it has answered the
// request and reports false.
func (s *Services) realApplicant(w http.ResponseWriter, r *http.Request, ses identity.Session) (govservice.Applicant, bool) {
	ap, acc, err := s.applicant(r.Context(), ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return ap, false
	}
	if acc.Level < identity.LevelRealName {
		http.Redirect(w, r, "/account/realname?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
		return ap, false
	}
	return ap, true
}

// ---- where to apply ----

type divisionOption struct {
	Code, Name string
	Selected   bool
}

// divisionChoices lists the counties of a city for the applicant to apply in, and the cities
// of Shanxi to switch to. The city is the one asked for, else the applicant's; the county
// selected is the one chosen before, else the applicant's own (registered residence or
// registration of the enterprise).
func divisionChoices(home, city, chosen string) (cities, counties []divisionOption) {
	all := divisions.Shanxi()
	cityOf := func(code string) string {
		if dv, ok := divisions.Lookup(code); ok && dv.Level == divisions.City {
			return code
		}
		for _, a := range divisions.Ancestors(code) {
			if dv, ok := divisions.Lookup(a); ok && dv.Level == divisions.City {
				return a
			}
		}
		return ""
	}
	countyOf := func(code string) string {
		if dv, ok := divisions.Lookup(code); ok && dv.Level == divisions.County {
			return code
		}
		for _, a := range divisions.Ancestors(code) {
			if dv, ok := divisions.Lookup(a); ok && dv.Level == divisions.County {
				return a
			}
		}
		return ""
	}
	valid := func(c string) bool {
		return slices.ContainsFunc(all, func(d divisions.Division) bool { return d.Code == c && d.Level == divisions.City })
	}
	if !valid(city) {
		city = cityOf(chosen)
	}
	if !valid(city) {
		city = cityOf(home)
	}
	if !valid(city) {
		city = "140100" // 太原市, the capital, for applicants from outside Shanxi
	}
	want := countyOf(chosen)
	if want == "" {
		want = countyOf(home)
	}
	for _, d := range all {
		switch {
		case d.Level == divisions.City:
			cities = append(cities, divisionOption{Code: d.Code, Name: d.Name, Selected: d.Code == city})
		case d.Level == divisions.County && d.Parent == city:
			counties = append(counties, divisionOption{Code: d.Code, Name: d.Name, Selected: d.Code == want})
		}
	}
	return cities, counties
}

// ---- materials ----

// materialField is one material input: upload, or pick a file of the personal space.
type materialField struct {
	Key       string // the material key the service takes: "<key>", or "<item code>/<key>" in a bundle
	Input     string // the upload's input name; + fileSuffix for the personal-space choice
	ID        string // HTML id of the upload input
	Name      i18n.Text
	Required  bool
	License   string
	Note      string
	ItemNames []i18n.Text // bundles: the members that receive it
	Error     *i18n.Text
	Current   string // answers to a correction: the file attached now
	// Licences are the applicant's licences in force that may stand in for the material
	// ("use my e-licence", input Input + licenceSuffix).
	Licences []govservice.HeldLicence
}

func newMaterialField(key string, m govservice.Material) materialField {
	id := "m-" + strings.NewReplacer("/", "-", ".", "-").Replace(key)
	return materialField{Key: key, Input: materialInput + key, ID: id, Name: both(m.Name, m.NameEn), Required: m.Required,
		License: m.LicenseType, Note: m.Note}
}

func itemMaterials(it govservice.Item) []materialField {
	out := make([]materialField, 0, len(it.Materials))
	for _, m := range it.Materials {
		out = append(out, newMaterialField(m.Key, m))
	}
	return out
}

// bundleMaterials lists a bundle's materials: one input for a key every member that asks
// for it names alike (营业执照 for the seal and for social insurance — "<key>" reaches them
// all), one per member where members mean different things by the same key (each item's own
// application form — "<item code>/<key>").
func bundleMaterials(members []govservice.Item) []materialField {
	names := map[string]map[string]bool{}
	for _, it := range members {
		for _, m := range it.Materials {
			if names[m.Key] == nil {
				names[m.Key] = map[string]bool{}
			}
			names[m.Key][m.Name] = true
		}
	}
	var out []materialField
	shared := map[string]int{}
	for _, it := range members {
		for _, m := range it.Materials {
			itemName := both(it.Name, it.NameEn)
			if len(names[m.Key]) > 1 {
				f := newMaterialField(it.Code+"/"+m.Key, m)
				f.ItemNames = []i18n.Text{itemName}
				out = append(out, f)
				continue
			}
			if i, ok := shared[m.Key]; ok {
				out[i].Required = out[i].Required || m.Required
				out[i].ItemNames = append(out[i].ItemNames, itemName)
				continue
			}
			f := newMaterialField(m.Key, m)
			f.ItemNames = []i18n.Text{itemName}
			shared[m.Key] = len(out)
			out = append(out, f)
		}
	}
	return out
}

// materialInputs reads the posted materials of fields: an upload when a file was chosen,
// else a personal-space file when one was picked. The caller closes the uploads with done.
func materialInputs(r *http.Request, fields []materialField) (in []govservice.MaterialInput, uploaded bool, done func()) {
	var files []io.Closer
	done = func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	for _, f := range fields {
		if r.MultipartForm != nil {
			if fhs := r.MultipartForm.File[f.Input]; len(fhs) > 0 && fhs[0].Filename != "" {
				uploaded = true
				file, err := fhs[0].Open()
				if err != nil {
					continue // the part is gone: treated as not attached
				}
				files = append(files, file)
				in = append(in, govservice.MaterialInput{Key: f.Key, Source: govservice.SourceUpload, FileName: fhs[0].Filename, Content: file})
				continue
			}
		}
		if id := strings.TrimSpace(r.PostFormValue(f.Input + licenceSuffix)); id != "" {
			in = append(in, govservice.MaterialInput{Key: f.Key, Source: govservice.SourceLicense, LicenseID: id})
			continue
		}
		if id := strings.TrimSpace(r.PostFormValue(f.Input + fileSuffix)); id != "" {
			in = append(in, govservice.MaterialInput{Key: f.Key, Source: govservice.SourceFile, FileID: id})
		}
	}
	return in, uploaded, done
}

// refusal sorts the error of a refused submission (or answer to a correction): the faults of
// fields, a fault of one material put beside it, and the fault left to show on top (nil when
// it stands beside a field or a material). ok is false when err is no refusal but a failure.
func refusal(err error, materials []materialField) (e *i18n.Error, fields form.Errors, top *i18n.Error, ok bool) {
	e, ok = i18n.As(err)
	if !ok || e.HTTPStatus() >= 500 {
		return nil, nil, nil, false
	}
	fields, _ = govservice.FieldErrors(err)
	if len(fields) == 0 && !markMaterial(materials, e) {
		top = e
	}
	return e, fields, top, true
}

// markMaterial puts a refusal about one material ("materials.<key>") beside its input and
// reports whether it found one.
func markMaterial(fields []materialField, e *i18n.Error) bool {
	key, ok := strings.CutPrefix(e.Field, "materials.")
	if !ok {
		return false
	}
	for i := range fields {
		if fields[i].Key == key {
			msg := e.Msg
			fields[i].Error = &msg
			return true
		}
	}
	return false
}

// fileOption is a personal-space file to pick instead of uploading again.
type fileOption struct {
	ID, Name  string
	Size      string
	CreatedAt time.Time
}

func (s *Services) fileOptions(ctx context.Context, ap govservice.Applicant) ([]fileOption, error) {
	files, err := s.Apps.Files(ctx, ap.Subject)
	if err != nil {
		return nil, err
	}
	out := make([]fileOption, 0, len(files))
	for _, f := range files {
		out = append(out, fileOption{ID: f.ID, Name: f.Name, Size: sizeText(f.Size), CreatedAt: f.CreatedAt})
	}
	return out, nil
}

// sizeText writes a file size for people: 850 KB, 2.4 MB.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+1<<9)>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// ---- the apply pages ----

type applyData struct {
	Title      i18n.Text
	Guide      string // the guide's path
	Action     string // where the form posts
	Department i18n.Text
	Promised   int
	DueBy      time.Time
	Who        string // the applicant as the form is made out: name, or enterprise (name)
	Form       form.View
	Cities     []divisionOption
	Counties   []divisionOption
	Materials  []materialField
	Files      []fileOption
	MaxSize    int
	Reupload   bool // a refused submission lost the uploads: choose them again
	Bundle     bool
	Members    []i18n.Text
}

func who(ap govservice.Applicant) string {
	if ap.Enterprise != nil {
		return ap.Enterprise.Name + "（" + ap.Name + "）"
	}
	return ap.Name
}

var applyTitle = i18n.T("在线申请", "Apply online")

func (s *Services) applyPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ap, draft, d, ok := s.itemApply(w, r, ses)
	if !ok {
		return
	}
	s.showApply(w, r, ap, draft.Form, draft.Values, d)
}

// showApply renders a blank (prefilled) application form, of an item or of a bundle.
func (s *Services) showApply(w http.ResponseWriter, r *http.Request, ap govservice.Applicant, f *form.Form, values form.Values, d applyData) {
	d.Form = f.View(values, nil, string(i18n.FromRequest(r)))
	d.Cities, d.Counties = divisionChoices(ap.Subject.Division, r.URL.Query().Get("city"), "")
	w.Header().Set("Cache-Control", "no-store") // prefilled personal data
	s.render(w, r, http.StatusOK, "portal/services_apply", s.pageFor(r, applyTitle, d))
}

// itemApply reads what both the form of an item and its submission need: the applicant (with
// a real name), the prefilled draft and the page. When it reports false it has answered.
func (s *Services) itemApply(w http.ResponseWriter, r *http.Request, ses identity.Session) (govservice.Applicant, govservice.FormDraft, applyData, bool) {
	ap, ok := s.realApplicant(w, r, ses)
	if !ok {
		return ap, govservice.FormDraft{}, applyData{}, false
	}
	draft, err := s.Apps.Draft(r.Context(), ap, r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return ap, draft, applyData{}, false
	}
	d, err := s.itemApplyData(r.Context(), r, ap, draft)
	if err != nil {
		httpx.WriteError(w, r, err)
		return ap, draft, d, false
	}
	return ap, draft, d, true
}

func (s *Services) itemApplyData(ctx context.Context, r *http.Request, ap govservice.Applicant, draft govservice.FormDraft) (applyData, error) {
	it := draft.Item
	d := applyData{Title: both(it.Name, it.NameEn), Guide: "/services/" + url.PathEscape(it.Code), Action: r.URL.Path,
		Department: departmentName(it.Department, it.Level), Promised: it.PromisedDays, DueBy: draft.DueBy, Who: who(ap),
		Materials: itemMaterials(it), MaxSize: govservice.DefaultMaxFileSize >> 20}
	for i := range d.Materials {
		d.Materials[i].Licences = draft.Licences[d.Materials[i].Key]
	}
	var err error
	d.Files, err = s.fileOptions(ctx, ap)
	return d, err
}

func (s *Services) apply(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ap, draft, d, ok := s.itemApply(w, r, ses)
	if !ok {
		return
	}
	values := draft.Form.FromURLValues(r.PostForm)
	division := strings.TrimSpace(r.PostFormValue(divisionInput))
	mats, uploaded, done := materialInputs(r, d.Materials)
	defer done()
	app, err := s.Apps.Submit(r.Context(), ap, govservice.SubmitInput{ItemCode: draft.Item.Code, Division: division, Values: values, Materials: mats})
	if err != nil {
		s.refused(w, r, err, draft.Form, values, d, ap, division, uploaded)
		return
	}
	http.Redirect(w, r, "/account/applications/"+url.PathEscape(app.ID)+"?submitted=1", http.StatusSeeOther)
}

// refused shows the form again after a refused submission: the values as typed, every
// field's fault beside it, a material's fault beside that material, anything else on top.
// Uploads cannot be kept by the browser, so the page asks to choose them again.
func (s *Services) refused(w http.ResponseWriter, r *http.Request, err error, f *form.Form, values form.Values, d applyData,
	ap govservice.Applicant, division string, uploaded bool) {
	e, errs, top, ok := refusal(err, d.Materials)
	if !ok {
		httpx.WriteError(w, r, err)
		return
	}
	p := s.pageFor(r, applyTitle, nil)
	p.Error = top
	d.Form = f.View(values, errs, string(p.Lang))
	d.Cities, d.Counties = divisionChoices(ap.Subject.Division, "", division)
	d.Reupload = uploaded
	p.Data = d
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, e.HTTPStatus(), "portal/services_apply", p)
}

// ---- 一件事 ----

// bundleDraft is the combined form of a bundle prefilled with what the applicant's identity
// says (applicant.*); the members get their fields from it, never prefilled on their own.
func (s *Services) bundleDraft(ctx context.Context, r *http.Request, ap govservice.Applicant, code string) (*form.Form, form.Values, applyData, error) {
	g, err := s.bundleGuide(ctx, code)
	if err != nil {
		return nil, nil, applyData{}, err
	}
	if !g.Online {
		return nil, nil, applyData{}, govservice.ErrBundleInactive
	}
	f, err := form.Parse(g.Bundle.Form)
	if err != nil {
		return nil, nil, applyData{}, fmt.Errorf("bundle %s form: %w", code, err)
	}
	known := map[string]string{form.SourceApplicantName: ap.Name, form.SourceApplicantIDNumber: ap.IDNumber,
		form.SourceApplicantPhone: ap.Phone, form.SourceApplicantKind: string(ap.Subject.Kind)}
	if ap.Enterprise != nil {
		known[form.SourceEntityName], known[form.SourceEntityCreditCode] = ap.Enterprise.Name, ap.Enterprise.CreditCode
	}
	values := f.Prefill(form.Values{}, func(src string) (string, bool) { v, ok := known[src]; return v, ok && v != "" })
	members, err := s.Items.ItemsByCode(ctx, g.Bundle.Items)
	if err != nil {
		return nil, nil, applyData{}, err
	}
	ordered := make([]govservice.Item, 0, len(g.Bundle.Items))
	for _, c := range g.Bundle.Items {
		if it, ok := members[c]; ok {
			ordered = append(ordered, it)
		}
	}
	d := applyData{Title: g.Name, Guide: "/bundles/" + url.PathEscape(code), Action: r.URL.Path, Department: g.Lead, Promised: g.Promised,
		Who: who(ap), Materials: bundleMaterials(ordered), MaxSize: govservice.DefaultMaxFileSize >> 20, Bundle: true}
	for _, m := range g.Members {
		d.Members = append(d.Members, m.Item.Name)
	}
	d.Files, err = s.fileOptions(ctx, ap)
	return f, values, d, err
}

func (s *Services) bundleApplyPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ap, ok := s.realApplicant(w, r, ses)
	if !ok {
		return
	}
	f, values, d, err := s.bundleDraft(r.Context(), r, ap, r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s.showApply(w, r, ap, f, values, d)
}

func (s *Services) bundleApply(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	ap, ok := s.realApplicant(w, r, ses)
	if !ok {
		return
	}
	code := r.PathValue("code")
	f, _, d, err := s.bundleDraft(ctx, r, ap, code)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	values := f.FromURLValues(r.PostForm)
	division := strings.TrimSpace(r.PostFormValue(divisionInput))
	mats, uploaded, done := materialInputs(r, d.Materials)
	defer done()
	b, err := s.Apps.SubmitBundle(ctx, ap, govservice.BundleInput{BundleCode: code, Division: division, Values: values, Materials: mats})
	if err != nil {
		s.refused(w, r, err, f, values, d, ap, division, uploaded)
		return
	}
	http.Redirect(w, r, "/account/bundles/"+url.PathEscape(b.ID)+"?submitted=1", http.StatusSeeOther)
}

package portal

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/notify"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// The applicant's side after submitting: 我的办件 (list and tracking, answering a request for
// correction, withdrawing, the result and the rating), 一件事 overviews, 我的文件 (the
// personal space) and 消息 (in-site messages).

// accountTabs is the sub-navigation of these pages, with the unread messages.
type accountTabs struct {
	Current string
	Unread  int
}

func (s *Services) tabs(ctx context.Context, who authz.Subject, current string) accountTabs {
	t := accountTabs{Current: current}
	if s.Notify != nil {
		if n, err := s.Notify.Unread(ctx, who); err == nil {
			t.Unread = n
		} else {
			httpx.Logger(ctx).Warn("unread messages", "err", err) // the page still works without the count
		}
	}
	return t
}

func (s *Services) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// subject is who the session acts as: the person, or the enterprise they act for.
func (s *Services) subject(ctx context.Context, ses identity.Session) (authz.Subject, error) {
	return s.Identity.Subject(ctx, ses.AccountID, ses.ActingEnterpriseID)
}

// statusClass is the badge colour of an application status.
func statusClass(st govservice.Status) string {
	switch st {
	case govservice.StatusApproved:
		return "ok"
	case govservice.StatusRejected:
		return "bad"
	case govservice.StatusCorrection:
		return "warn"
	}
	return ""
}

func bundleStatusClass(st govservice.BundleStatus) string {
	switch st {
	case govservice.BundleCompleted:
		return "ok"
	case govservice.BundlePartlyRefused:
		return "bad"
	}
	return ""
}

// appRow is an application as lists show it.
type appRow struct {
	ID, Number, Link string
	Item             i18n.Text
	Status           govservice.Status
	StatusText       i18n.Text
	StatusClass      string
	Step             i18n.Text
	Department       string
	DueAt            *time.Time
	SubmittedAt      time.Time
	ClosedAt         *time.Time
	BundleLink       string
}

func rowOf(a govservice.Application) appRow {
	r := appRow{ID: a.ID, Number: a.Number, Link: "/account/applications/" + url.PathEscape(a.ID), Item: both(a.ItemName, a.ItemNameEn),
		Status: a.Status, StatusText: a.StatusText, StatusClass: statusClass(a.Status), Step: a.StepName, Department: a.DeptName,
		DueAt: a.DueAt, SubmittedAt: a.SubmittedAt, ClosedAt: a.ClosedAt}
	if a.BundleID != "" {
		r.BundleLink = "/account/bundles/" + url.PathEscape(a.BundleID)
	}
	return r
}

// ---- /account/applications ----

const applicationsPageSize = 20

type applicationsData struct {
	Tabs         accountTabs
	Applications []appRow
	Prev, Next   string
}

var applicationsTitle = i18n.T("我的办件", "My applications")

func (s *Services) applicationsPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	apps, err := s.Apps.Mine(ctx, sub, govservice.MineFilter{Limit: applicationsPageSize + 1, Offset: offset})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := applicationsData{Tabs: s.tabs(ctx, sub, "applications"), Applications: []appRow{}}
	if len(apps) > applicationsPageSize {
		apps = apps[:applicationsPageSize]
		d.Next = "?offset=" + strconv.Itoa(offset+applicationsPageSize)
	}
	if offset > 0 {
		d.Prev = "?offset=" + strconv.Itoa(max(offset-applicationsPageSize, 0))
	}
	for _, a := range apps {
		d.Applications = append(d.Applications, rowOf(a))
	}
	p := s.page(r, applicationsTitle, d)
	p.Nav = "applications"
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "portal/applications", p)
}

// ---- /account/applications/{id} ----

// historyEntry is one step of the application's history as the applicant sees it. The
// department's internal moves (claims, returns, reminders, escalations) are its own business.
type historyEntry struct {
	At      time.Time
	What    i18n.Text
	Step    i18n.Text
	Comment string
	Items   []string
	Who     i18n.Text
}

var historyNames = map[workflow.Action]i18n.Text{
	workflow.ActionOpened:      i18n.T("提交申请", "Submitted"),
	workflow.ActionAdvanced:    i18n.T("环节办结，进入下一环节", "Step completed"),
	workflow.ActionSuspended:   i18n.T("要求补正材料", "Correction requested"),
	workflow.ActionResumed:     i18n.T("已提交补正", "Correction submitted"),
	workflow.ActionTransferred: i18n.T("转交其他部门办理", "Transferred to another department"),
	workflow.ActionWithdrawn:   i18n.T("撤回申请", "Withdrawn"),
	workflow.ActionClosed:      i18n.T("办结", "Closed"),
}

func actorName(actor string) i18n.Text {
	switch {
	case strings.HasPrefix(actor, string(authz.Staff)+":"):
		return i18n.T("工作人员", "officer")
	case strings.HasPrefix(actor, string(authz.System)+":"):
		return i18n.T("系统", "system")
	}
	return i18n.T("申请人", "applicant")
}

// stepNames names an item's steps by key.
func stepNames(it govservice.Item) map[string]i18n.Text {
	out := make(map[string]i18n.Text, len(it.Steps))
	for _, st := range it.Steps {
		out[st.Key] = both(st.Name, st.NameEn)
	}
	return out
}

func historyOf(events []workflow.Event, steps map[string]i18n.Text) []historyEntry {
	var out []historyEntry
	for _, e := range events {
		what, ok := historyNames[e.Action]
		if !ok {
			continue
		}
		h := historyEntry{At: e.At, What: what, Step: steps[e.Step], Comment: e.Comment, Items: e.Items, Who: actorName(e.Actor)}
		if e.Action == workflow.ActionAdvanced {
			if to, ok := steps[e.ToStep]; ok {
				h.What = i18n.T("进入“"+to.ZH+"”环节", "Moved on to "+to.In(i18n.EN))
			}
		}
		out = append(out, h)
	}
	slices.Reverse(out) // newest first
	return out
}

// attachedView is one attached material on the tracking page.
type attachedView struct {
	Name      i18n.Text
	FileName  string
	Link      string
	Size      string
	Source    string
	LicenseID string
}

type applicationData struct {
	Tabs        accountTabs
	App         appRow
	Division    string
	DeptName    string
	Overdue     bool // open past the promised date (the whole case's deadline)
	Summary     form.View
	Materials   []attachedView
	Missing     []i18n.Text
	History     []historyEntry
	Correction  *workflow.Correction
	Answer      *form.View      // the correction form, while one is asked for
	AnswerFiles []materialField // materials that may be replaced in the answer
	Files       []fileOption
	MaxSize     int
	Comment     string
	CanWithdraw bool
	Closed      bool
	Outcome     workflow.Outcome
	Result      i18n.Text // what an approved application yields
	ResultNote  string    // the closing comment (the reasons, when refused)
	License     string
	// Payment is the order of the item's fees (nil: none); Issued the e-licence issued.
	Payment   *govservice.Payment
	Issued    *govservice.HeldLicence
	Rating    *RatingForm // the "rating-form" partial's data; nil for none
	Submitted bool
	Rated     bool
	Answered  bool
	Reupload  bool
	Guide     string
}

var applicationTitle = i18n.T("办件详情", "Application")

func (s *Services) applicationPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ap := govservice.Applicant{Subject: sub} // reading needs no more of the person
	det, err := s.Apps.Get(ctx, ap.Subject, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d, err := s.applicationData(ctx, r, ap, det)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	d.Submitted, d.Answered, d.Rated = q.Get("submitted") != "", q.Get("answered") != "", q.Get("rated") != ""
	if d.Answer != nil {
		v := det.Form.View(det.Values, nil, string(i18n.FromRequest(r)))
		d.Answer = &v
	}
	s.renderApplication(w, r, http.StatusOK, d, nil)
}

func (s *Services) renderApplication(w http.ResponseWriter, r *http.Request, status int, d applicationData, failure *i18n.Error) {
	p := s.page(r, applicationTitle, d)
	p.Nav = "applications"
	p.Error = failure
	// The notes of what was just done, while they are still true (a reload keeps the query).
	switch st := d.App.Status; {
	case d.Submitted && st == govservice.StatusSubmitted:
		t := i18n.T("申请已提交，受理编号 "+d.App.Number+"。办理进度会通过站内消息和短信通知您。",
			"Submitted. Your application number is "+d.App.Number+"; we will tell you of every step by message and SMS.")
		p.Flash = &t
	case d.Answered && (st == govservice.StatusInReview || st == govservice.StatusSubmitted):
		t := i18n.T("补正材料已提交，办理时限继续计算。", "Your correction was submitted; the clock runs again.")
		p.Flash = &t
	case d.Rated:
		t := i18n.T("感谢您的评价", "Thank you for your rating")
		p.Flash = &t
	}
	w.Header().Set("Cache-Control", "no-store") // personal data
	s.render(w, r, status, "portal/applications_detail", p)
}

// applicationData gathers the tracking page; the correction form (Answer) is left for the
// caller to fill with the values it shows.
func (s *Services) applicationData(ctx context.Context, r *http.Request, ap govservice.Applicant, det govservice.ApplicationDetail) (applicationData, error) {
	lang := string(i18n.FromRequest(r))
	d := applicationData{Tabs: s.tabs(ctx, ap.Subject, "applications"), App: rowOf(det.Application), DeptName: det.DeptName,
		Correction: det.Correction, MaxSize: govservice.DefaultMaxFileSize >> 20,
		Closed: det.Case.State == workflow.StateClosed, Outcome: det.Outcome, Guide: "/services/" + url.PathEscape(det.ItemCode)}
	if dv, ok := divisions.Lookup(det.Division); ok {
		d.Division = dv.Name
	}
	if det.Case.State == workflow.StateOpen && det.Case.DueAt != nil && s.now().After(*det.Case.DueAt) {
		d.Overdue = true
	}
	if det.Form != nil {
		d.Summary = det.Form.View(det.Values, nil, lang)
	}
	for _, m := range det.Materials {
		v := attachedView{Name: m.Name, Source: m.Source, LicenseID: m.LicenseID}
		if m.File != nil {
			v.FileName, v.Size = m.File.Name, sizeText(m.File.Size)
			v.Link = "/account/files/" + url.PathEscape(m.File.ID)
		}
		d.Materials = append(d.Materials, v)
	}
	for _, key := range det.Missing {
		for _, m := range det.Item.Materials {
			if m.Key == key {
				d.Missing = append(d.Missing, both(m.Name, m.NameEn))
			}
		}
	}
	d.History = historyOf(det.History, stepNames(det.Item))
	d.Payment, d.Issued = det.Payment, det.Licence
	switch det.Case.State {
	case workflow.StateSuspended:
		d.Answer = &form.View{} // filled by the caller
		d.AnswerFiles = itemMaterials(det.Item)
		for i := range d.AnswerFiles {
			for _, m := range det.Materials {
				if m.Key == d.AnswerFiles[i].Key && m.File != nil {
					d.AnswerFiles[i].Current = m.File.Name
				}
			}
		}
		var err error
		if d.Files, err = s.fileOptions(ctx, ap); err != nil {
			return d, err
		}
		d.CanWithdraw = true
	case workflow.StateOpen:
		d.CanWithdraw = true
	case workflow.StateClosed:
		if det.Outcome == workflow.OutcomeApproved {
			d.Result, d.License = both(det.Item.Result.Name, det.Item.Result.NameEn), det.Item.Result.LicenseType
		}
		for _, e := range det.History {
			if e.Action == workflow.ActionClosed || e.Action == workflow.ActionWithdrawn {
				d.ResultNote = e.Comment
			}
		}
		if s.Ratings != nil && s.Ratings.Service != nil && det.Outcome != workflow.OutcomeWithdrawn {
			f, err := s.Ratings.Form(r, ap.Subject, det.ID)
			if err != nil {
				return d, err
			}
			d.Rating = f
		}
	}
	return d, nil
}

// answerCorrection takes the applicant's answer to a request for correction: the form again
// (values as corrected), replaced materials and a note; then the clocks run again.
func (s *Services) answerCorrection(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	ap, _, err := s.applicant(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	det, err := s.Apps.Get(ctx, ap.Subject, id)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d, err := s.applicationData(ctx, r, ap, det)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if d.Answer == nil || det.Form == nil { // no correction is asked for (any more)
		httpx.WriteError(w, r, workflow.ErrState)
		return
	}
	values := det.Form.FromURLValues(r.PostForm)
	comment := r.PostFormValue("comment")
	mats, uploaded, done := materialInputs(r, d.AnswerFiles)
	defer done()
	if _, err := s.Apps.AnswerCorrection(ctx, ap, id, values, mats, comment); err != nil {
		e, errs, top, ok := refusal(err, d.AnswerFiles)
		if !ok {
			httpx.WriteError(w, r, err)
			return
		}
		v := det.Form.View(values, errs, string(i18n.FromRequest(r)))
		d.Answer, d.Comment, d.Reupload = &v, comment, uploaded
		s.renderApplication(w, r, e.HTTPStatus(), d, top)
		return
	}
	http.Redirect(w, r, "/account/applications/"+url.PathEscape(id)+"?answered=1", http.StatusSeeOther)
}

func (s *Services) withdraw(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	ap, _, err := s.applicant(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if _, err := s.Apps.Withdraw(ctx, ap, id, r.PostFormValue("reason")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account/applications/"+url.PathEscape(id), http.StatusSeeOther)
}

// ---- /account/bundles/{id} ----

type bundleApplicationData struct {
	Tabs        accountTabs
	Bundle      govservice.BundleApplication
	Name        i18n.Text
	StatusClass string
	Members     []appRow
	Division    string
	Submitted   bool
	Guide       string
}

func (s *Services) bundleApplicationPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	b, err := s.Apps.Bundle(ctx, sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := bundleApplicationData{Tabs: s.tabs(ctx, sub, "applications"), Bundle: b, Name: both(b.BundleName, b.BundleNameEn),
		StatusClass: bundleStatusClass(b.Status), Submitted: r.URL.Query().Get("submitted") != "", Guide: "/bundles/" + url.PathEscape(b.BundleCode)}
	if dv, ok := divisions.Lookup(b.Division); ok {
		d.Division = dv.Name
	}
	for _, m := range b.Members {
		d.Members = append(d.Members, rowOf(m))
	}
	p := s.page(r, d.Name, d)
	p.Nav = "applications"
	if d.Submitted {
		t := i18n.T("“一件事”申请已提交，受理编号 "+b.Number+"。各部门同步办理，进度统一在本页查看。",
			"Submitted. Your application number is "+b.Number+"; the departments work on it side by side and this page shows where each stands.")
		p.Flash = &t
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "portal/bundle_application", p)
}

// ---- /account/files: 我的文件 ----

type filesData struct {
	Tabs  accountTabs
	Files []fileOption
}

var filesTitle = i18n.T("我的文件", "My files")

func (s *Services) filesPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	files, err := s.fileOptions(ctx, govservice.Applicant{Subject: sub})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p := s.page(r, filesTitle, filesData{Tabs: s.tabs(ctx, sub, "files"), Files: files})
	p.Nav = "applications"
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "portal/files", p)
}

// file sends one of the person's files as a download: never shown inline, so a file cannot
// run as a page of ours whatever it holds.
func (s *Services) file(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	f, body, err := s.Apps.OpenFile(ctx, sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	if _, err := io.Copy(w, body); err != nil && !errors.Is(err, context.Canceled) {
		httpx.Logger(ctx).Warn("send file", "file", f.ID, "err", err)
	}
}

// ---- /account/messages: 消息 ----

type messageView struct {
	ID, Link  string
	Title     i18n.Text
	Body      i18n.Text
	CreatedAt time.Time
	Unread    bool
}

type messagesData struct {
	Tabs       accountTabs
	Messages   []messageView
	UnreadOnly bool
	Next       string
}

var messagesTitle = i18n.T("消息", "Messages")

func (s *Services) messagesPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	d := messagesData{UnreadOnly: q.Get("unread") != "", Messages: []messageView{}, Tabs: accountTabs{Current: "messages"}}
	if s.Notify != nil {
		in, err := s.Notify.Inbox(ctx, sub, notify.Page{Before: q.Get("before"), UnreadOnly: d.UnreadOnly})
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		d.Tabs.Unread = in.Unread
		for _, m := range in.Messages {
			link := "/account/messages/" + url.PathEscape(m.ID)
			if m.Link != "" {
				link += "?" + url.Values{"to": {m.Link}}.Encode()
			}
			d.Messages = append(d.Messages, messageView{ID: m.ID, Link: link, Title: m.Title,
				Body: m.Body, CreatedAt: m.CreatedAt, Unread: m.ReadAt == nil})
		}
		if in.Next != "" {
			v := url.Values{"before": {in.Next}}
			if d.UnreadOnly {
				v.Set("unread", "1")
			}
			d.Next = "?" + v.Encode()
		}
	}
	p := s.page(r, messagesTitle, d)
	p.Nav = "messages"
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "portal/messages", p)
}

// openMessage marks a message read and goes where it points: the list links each message
// here with its own link in "to" (a local path only; anything else goes back to the list).
func (s *Services) openMessage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if s.Notify == nil {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	if err := s.Notify.MarkRead(ctx, sub, r.PathValue("id")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, httpx.LocalPath(r.URL.Query().Get("to"), "/account/messages"), http.StatusSeeOther)
}

func (s *Services) readAll(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := s.subject(ctx, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if s.Notify != nil {
		if _, err := s.Notify.MarkAllRead(ctx, sub); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/account/messages", http.StatusSeeOther)
}

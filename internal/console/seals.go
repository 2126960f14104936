package console

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/seal"
)

// Department seals (电子印章, GB/T 38540): the seals within the viewer's division; creating,
// rotating and revoking them (organisation administrators); the seal's picture, certificate
// and sealing register; sealing an official document or any file with the officer's own
// department seal; and verifying a sealed document — who sealed it, when, and whether it
// changed since.

var (
	sealsTitle      = i18n.T("电子印章", "Electronic seals")
	sealTitle       = i18n.T("印章详情", "Seal")
	sealVerifyTitle = i18n.T("签章验证结果", "Seal verification")
)

// Upload limits: a seal picture, and a document to seal or verify (the engine refuses HTML
// documents over 8 MiB; files are signed as they are).
const (
	maxSealPicture   = 1 << 20
	maxSealDocument  = 8 << 20
	maxSealSignature = 64 << 10
)

type sealPages struct {
	c *Console
	s *seal.Service
}

func (c *Console) sealRoutes(mux *http.ServeMux, s *seal.Service) {
	p := &sealPages{c: c, s: s}
	mux.Handle("GET /console/seals", c.staffOnly(p.listPage))
	mux.Handle("POST /console/seals", c.staffOnly(p.create))
	mux.Handle("POST /console/seals/verify", c.staffOnly(p.verify))
	mux.Handle("POST /console/seals/document", c.staffOnly(p.sealDocument))
	mux.Handle("POST /console/seals/file", c.staffOnly(p.sealFile))
	mux.Handle("GET /console/seals/{id}", c.staffOnly(p.sealPage))
	mux.Handle("GET /console/seals/{id}/picture", c.staffOnly(p.picture))
	mux.Handle("POST /console/seals/{id}/rotate", c.staffOnly(p.rotate))
	mux.Handle("POST /console/seals/{id}/revoke", c.staffOnly(p.revoke))
}

// sealForm is the create form as typed.
type sealForm struct {
	DeptID, Purpose, Name string
}

// documentForm is the official-document form as typed.
type documentForm struct {
	Title, Number, Recipient, Body string
}

type sealsData struct {
	DeptID      string
	Seals       []seal.Seal
	Departments []org.Department // in the viewer's scope: the filter, and where seals are made
	CanManage   bool
	CanSeal     bool // an officer of a department: seals with its official seal
	Create      sealForm
	Document    documentForm
	StatusNames map[seal.Status]i18n.Text
}

func (p *sealPages) listData(r *http.Request, sub authz.Subject) (*sealsData, error) {
	ctx := r.Context()
	d := &sealsData{DeptID: strings.TrimSpace(r.URL.Query().Get("dept")), StatusNames: seal.StatusNames,
		CanManage: p.c.Policy.Allowed(sub, seal.PermManage, sub.Division),
		CanSeal:   sub.Dept != "" && p.c.Policy.Allowed(sub, seal.PermUse, sub.Division)}
	var err error
	if d.Seals, err = p.s.List(ctx, sub, seal.Filter{DeptID: d.DeptID, Limit: 500}); err != nil {
		return d, err
	}
	d.Departments, err = p.c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{ActiveOnly: true, Limit: 1000})
	return d, err
}

func (p *sealPages) listPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	pg := p.c.page(r, "seals", sealsTitle, nil)
	d, err := p.listData(r, sub)
	pg.Data = d
	if err != nil {
		p.c.fail(w, r, err, "console/seals", pg)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/seals", pg)
}

// failList shows err on the seals page, keeping the forms as typed.
func (p *sealPages) failList(w http.ResponseWriter, r *http.Request, sub authz.Subject, err error, keep func(*sealsData)) {
	pg := p.c.page(r, "seals", sealsTitle, nil)
	d, derr := p.listData(r, sub)
	if derr != nil {
		httpx.WriteError(w, r, derr)
		return
	}
	if keep != nil {
		keep(d)
	}
	pg.Data = d
	p.c.fail(w, r, err, "console/seals", pg)
}

// uploadedPicture reads the optional seal picture of a form: SVG or PNG by its name or
// content; nil when none was chosen. The engine cleans an SVG (seal.CleanSVG) before it
// keeps it.
func uploadedPicture(r *http.Request) (*seal.Picture, error) {
	file, hdr, err := r.FormFile("picture")
	if err != nil {
		return nil, nil // none chosen
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxSealPicture+1))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > maxSealPicture {
		return nil, seal.ErrPicture
	}
	typ := seal.PictureSVG
	if strings.EqualFold(filepath.Ext(hdr.Filename), ".png") || bytes.HasPrefix(b, []byte("\x89PNG")) {
		typ = seal.PicturePNG
	}
	size, _ := strconv.Atoi(strings.TrimSpace(r.PostFormValue("size_mm")))
	return &seal.Picture{Type: typ, Data: b, WidthMM: size, HeightMM: size}, nil
}

func (p *sealPages) create(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	f := sealForm{DeptID: strings.TrimSpace(r.PostFormValue("dept_id")), Purpose: r.PostFormValue("purpose"), Name: r.PostFormValue("name")}
	sl, err := func() (seal.Seal, error) {
		pic, err := uploadedPicture(r)
		if err != nil {
			return seal.Seal{}, err
		}
		return p.s.Create(r.Context(), sub, seal.CreateInput{DeptID: f.DeptID, Purpose: f.Purpose, Name: f.Name, Picture: pic})
	}()
	if err != nil {
		p.failList(w, r, sub, err, func(d *sealsData) { d.Create = f })
		return
	}
	http.Redirect(w, r, "/console/seals/"+url.PathEscape(sl.ID)+"?ok=1", http.StatusSeeOther)
}

type sealData struct {
	Seal        seal.Seal
	Uses        []seal.Use
	CanManage   bool
	StatusNames map[seal.Status]i18n.Text
}

func (p *sealPages) data(r *http.Request, sub authz.Subject) (*sealData, error) {
	id := r.PathValue("id")
	sl, err := p.s.Get(r.Context(), sub, id)
	if err != nil {
		return nil, err
	}
	d := &sealData{Seal: sl, StatusNames: seal.StatusNames, CanManage: p.c.Policy.Allowed(sub, seal.PermManage, sl.Division)}
	if d.Uses, err = p.s.Uses(r.Context(), sub, id, 100, 0); err != nil {
		return nil, err
	}
	return d, nil
}

func (p *sealPages) sealPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d, err := p.data(r, sub)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/seals_view", p.c.page(r, "seals", sealTitle, d))
}

// failSeal shows err on a seal's page.
func (p *sealPages) failSeal(w http.ResponseWriter, r *http.Request, sub authz.Subject, err error) {
	d, derr := p.data(r, sub)
	if derr != nil {
		httpx.WriteError(w, r, derr)
		return
	}
	p.c.fail(w, r, err, "console/seals_view", p.c.page(r, "seals", sealTitle, d))
}

// sealPictureCSP lets a browser that opens the picture on its own draw it and nothing else.
const sealPictureCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"

// picture serves a seal's picture. An SVG is cleaned again on the way out (seal.CleanSVG): the
// stored one was cleaned on upload, and a page must never show an SVG that was not.
func (p *sealPages) picture(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	sl, err := p.s.Get(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	body, ctype := sl.Picture, "image/png"
	if sl.PictureType == seal.PictureSVG {
		if body, err = seal.CleanSVG(sl.Picture); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		ctype = "image/svg+xml"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Security-Policy", sealPictureCSP)
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write(body)
}

func (p *sealPages) rotate(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	sl, err := func() (seal.Seal, error) {
		pic, err := uploadedPicture(r)
		if err != nil {
			return seal.Seal{}, err
		}
		return p.s.Rotate(r.Context(), sub, r.PathValue("id"), seal.RotateInput{Picture: pic})
	}()
	if err != nil {
		p.failSeal(w, r, sub, err)
		return
	}
	http.Redirect(w, r, "/console/seals/"+url.PathEscape(sl.ID)+"?ok=1", http.StatusSeeOther)
}

func (p *sealPages) revoke(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	sl, err := p.s.Revoke(r.Context(), sub, r.PathValue("id"), r.PostFormValue("reason"))
	if err != nil {
		p.failSeal(w, r, sub, err)
		return
	}
	http.Redirect(w, r, "/console/seals/"+url.PathEscape(sl.ID)+"?ok=1", http.StatusSeeOther)
}

// readUpload reads the uploaded file field up to limit bytes; ok is false when none was chosen.
func readUpload(r *http.Request, field string, limit int64) (b []byte, name string, ok bool, err error) {
	file, hdr, err := r.FormFile(field)
	if err != nil {
		return nil, "", false, nil
	}
	defer file.Close()
	b, err = io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, "", false, err
	}
	if int64(len(b)) > limit {
		return nil, "", false, i18n.Errorf(http.StatusRequestEntityTooLarge, "console.upload_too_large",
			"文件不能超过 %d MB", "the file may not exceed %d MB", limit>>20).WithField(field)
	}
	return b, hdr.Filename, true, nil
}

type sealVerifyData struct {
	Name   string
	V      seal.Verification
	Checks []sealCheck
}

// sealCheck is one line of a verification's checklist.
type sealCheck struct {
	Name i18n.Text
	OK   bool
}

// verify checks an uploaded sealed document: an HTML document with its signature inside, or
// any file with its detached signature.
func (p *sealPages) verify(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d, err := func() (*sealVerifyData, error) {
		doc, name, ok, err := readUpload(r, "document", maxSealDocument)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, i18n.New("seal.document_missing", "请选择要验证的文件", "choose the document to verify").WithField("document")
		}
		sig, _, hasSig, err := readUpload(r, "signature", maxSealSignature)
		if err != nil {
			return nil, err
		}
		var v seal.Verification
		if hasSig {
			v, err = p.s.Verify(r.Context(), doc, sig)
		} else {
			v, err = p.s.VerifyHTML(r.Context(), doc)
		}
		if err != nil {
			return nil, err
		}
		return &sealVerifyData{Name: name, V: v, Checks: []sealCheck{
			{i18n.T("文档未被改动", "the document is unchanged"), v.DocumentIntact},
			{i18n.T("签名有效", "the signatures verify"), v.SignatureIntact},
			{i18n.T("印章由可信的制章系统制作", "the seal was made by a trusted seal maker"), v.Trusted},
			{i18n.T("签章时间在印章与证书有效期内", "sealed within the seal's and certificate's period"), v.InPeriod},
			{i18n.T("本平台制作的印章", "a seal this node made"), v.Known},
			{i18n.T("签章时印章有效（未更换、未吊销）", "the seal was in force when it sealed"), v.ValidAtSigning},
			{i18n.T("用印登记中有这次签章", "the sealing is in the sealing register"), v.Registered},
		}}, nil
	}()
	if err != nil {
		p.failList(w, r, sub, err, nil)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/seals_verify", p.c.page(r, "seals", sealVerifyTitle, d))
}

// paragraphs splits a typed body into paragraphs, one per non-empty line.
func paragraphs(body string) []string {
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// sealDocument renders an official document (公文) and seals it with the officer's department
// seal; the sealed HTML file is the download.
func (p *sealPages) sealDocument(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	f := documentForm{Title: r.PostFormValue("title"), Number: r.PostFormValue("number"), Recipient: r.PostFormValue("recipient"),
		Body: r.PostFormValue("body")}
	page, sealed, err := p.s.SealDocument(r.Context(), sub, "", seal.Document{Title: strings.TrimSpace(f.Title),
		Number: strings.TrimSpace(f.Number), Recipient: strings.TrimSpace(f.Recipient), Paragraphs: paragraphs(f.Body)})
	if err != nil {
		p.failList(w, r, sub, err, func(d *sealsData) { d.Document = f })
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Disposition", attachment(strings.TrimSpace(f.Title)+".html"))
	w.Header().Set("X-Dgov-Seal-Use", sealed.UseID)
	_, _ = w.Write(page)
}

// sealFile seals any file with a detached signature: the download is the signature (.ses),
// to keep beside the unchanged file.
func (p *sealPages) sealFile(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	sealed, name, err := func() (seal.Sealed, string, error) {
		b, name, ok, err := readUpload(r, "file", maxSealDocument)
		if err != nil {
			return seal.Sealed{}, "", err
		}
		if !ok {
			return seal.Sealed{}, "", i18n.New("seal.file_missing", "请选择要签章的文件", "choose the file to seal").WithField("file")
		}
		s, err := p.s.SealFile(r.Context(), sub, "", name, b)
		return s, name, err
	}()
	if err != nil {
		p.failList(w, r, sub, err, nil)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", attachment(filepath.Base(name)+".ses"))
	w.Header().Set("X-Dgov-Seal-Use", sealed.UseID)
	_, _ = w.Write(sealed.Signature)
}

package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/workflow"
)

// The application behind a service case (ref "application:<id>"), read through
// govservice.Applications, which decrypts the values and files for the handling department's
// staff only and audits each of their reads.

// caseApplication is the application as the case page shows it.
type caseApplication struct {
	ID, Number    string
	ApplicantKind authz.Kind
	ApplicantName string
	ApplicantIDNo string // the applicant's ID number from the form, masked (GB/T 35273 de-identification)
	Enterprise    string // name and credit code when acting for an enterprise
	SubmittedAt   time.Time
	StatusText    i18n.Text
	Revision      int
	BundleID      string
	Item          govservice.Item // the item version applied under
	// Form is the submitted form for the "form-summary" partial; nil when the viewer may see
	// the case but not the personal data (a supervisor).
	Form      *form.View
	Materials []caseMaterial
	Choices   []choice // what a correction request may name: materials, then visible fields
	// Payment is the order of the item's fees (nil: none); Licence the licence issued.
	Payment *govservice.Payment
	Licence *govservice.HeldLicence
}

// caseMaterial is one attached material with its download link.
type caseMaterial struct {
	Name, FileName, Source, Href, SM3 string
	// Licence is the e-licence standing in for the material, verified (nil for files).
	Licence  *govservice.UsedLicence
	SizeText string // e.g. 1.2 MB
}

// sizeText writes a file size for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Prefill sources that say which form fields hold the applicant's identity.
const (
	prefillIDNumber   = "applicant.id_number"
	prefillEntityName = "entity.name"
	prefillCreditCode = "entity.credit_code"
)

// caseApplication reads the application behind a service case; nil for other cases.
func (c *Console) caseApplication(ctx context.Context, r *http.Request, sub authz.Subject, cs workflow.Case) (*caseApplication, error) {
	if c.Apps == nil || !strings.HasPrefix(cs.Ref, govservice.RefPrefix) {
		return nil, nil
	}
	det, err := c.Apps.ByCase(ctx, sub, cs.ID)
	if err != nil {
		if errors.Is(err, i18n.ErrNotFound) || errors.Is(err, govservice.ErrApplicationNotFound) {
			return nil, nil // a case whose record is not an application (or not yet visible)
		}
		return nil, err
	}
	lang := i18n.FromRequest(r)
	a := &caseApplication{ID: det.ID, Number: det.Number, ApplicantKind: det.Applicant.Kind, ApplicantName: det.Applicant.Name,
		SubmittedAt: det.SubmittedAt, StatusText: det.StatusText, Revision: det.Revision, BundleID: det.BundleID,
		Item: det.Item, Payment: det.Payment, Licence: det.Licence}
	missing := det.Missing
	for _, m := range det.Materials {
		cm := caseMaterial{Name: m.Name.In(lang), Source: m.Source}
		if cm.Name == "" {
			cm.Name = m.Key
		}
		switch {
		case m.File != nil:
			cm.FileName, cm.SizeText, cm.SM3 = m.File.Name, sizeText(m.File.Size), m.File.SM3
			cm.Href = "/console/cases/" + cs.ID + "/files/" + m.File.ID
		case m.LicenseID != "":
			cm.FileName = i18n.T("电子证照 ", "e-licence ").In(lang) + m.LicenseID
			cm.Licence = m.Licence
		}
		a.Materials = append(a.Materials, cm)
	}
	for _, m := range det.Item.Materials {
		name := i18n.T(m.Name, m.NameEn).In(lang)
		a.Choices = append(a.Choices, choice{Value: m.Name, Label: i18n.T("材料", "Material").In(lang) + "：" + name,
			Checked: m.Required && slices.Contains(missing, m.Key)})
	}
	if det.Form != nil && det.Values != nil {
		v := det.Form.View(det.Values, nil, string(lang))
		a.Form = &v
		for _, s := range v.Sections {
			if s.Hidden {
				continue
			}
			for _, fv := range s.Fields {
				if fv.Hidden {
					continue
				}
				fd, _ := det.Form.Field(fv.Key)
				a.Choices = append(a.Choices, choice{Value: fd.Label, Label: i18n.T("填写内容", "Field").In(lang) + "：" + fv.Label})
				switch fd.Prefill {
				case prefillIDNumber:
					// Only fields bound to the verified identity name the applicant; others (a
					// card holder, the insured) may be someone else.
					if govservice.BoundToApplicant(fv.Key, fd.Prefill) {
						a.ApplicantIDNo = ids.MaskResident(det.Values[fv.Key])
					}
				case prefillEntityName:
					a.Enterprise = strings.TrimSpace(det.Values[fv.Key] + " " + a.Enterprise)
				case prefillCreditCode:
					a.Enterprise = strings.TrimSpace(a.Enterprise + " " + det.Values[fv.Key])
				}
			}
		}
	}
	return a, nil
}

// caseFile streams a material of a case's application to an officer of the handling
// department; Applications.OpenFile authorizes and audits the read.
func (c *Console) caseFile(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if c.Apps == nil {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	f, rc, err := c.Apps.OpenFile(r.Context(), sub, r.PathValue("file"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	defer rc.Close()
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	h.Set("Cache-Control", "private, no-store") // personal data: no shared or lasting copies
	h.Set("X-Content-Type-Options", "nosniff")  // an uploaded file is never run as a page
	if _, err := io.Copy(w, rc); err != nil {
		httpx.Logger(r.Context()).Warn("case file download", "file", f.ID, "err", fmt.Sprint(err))
	}
}

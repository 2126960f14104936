package govservice

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// applicableItem reads an item the applicant may apply for now, with its form. checkKind
// false skips the item's applicant kinds (a bundle's later members, see SubmitBundle).
func (a *Applications) applicableItem(ctx context.Context, ap authz.Subject, code string, checkKind bool) (Item, *form.Form, error) {
	it, err := a.items.Get(ctx, code)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Item{}, nil, ErrNotFound.WithField("item_code")
		}
		return Item{}, nil, err
	}
	if !it.Active {
		return Item{}, nil, ErrItemInactive
	}
	if checkKind && len(it.Applicants) > 0 && !slices.Contains(it.Applicants, ap.Kind) {
		return Item{}, nil, ErrApplicantKind
	}
	f, err := a.itemForm(it)
	if err != nil {
		return Item{}, nil, err
	}
	return it, f, nil
}

// Draft returns the current form of an item prefilled for the applicant: applicant.* from
// their identity, person.* from the population library (by their ID number), entity.* from
// the legal-entity library (by the enterprise's credit code). A source the libraries do not
// know is left empty for the applicant to fill in.
func (a *Applications) Draft(ctx context.Context, ap Applicant, itemCode string) (FormDraft, error) {
	if err := checkApplicantSubject(ap.Subject); err != nil {
		return FormDraft{}, err
	}
	it, f, err := a.applicableItem(ctx, ap.Subject, strings.TrimSpace(itemCode), true)
	if err != nil {
		return FormDraft{}, err
	}
	id, err := a.formVersionID(ctx, f)
	if err != nil {
		return FormDraft{}, err
	}
	lookup, err := a.prefillLookup(ctx, ap, f)
	if err != nil {
		return FormDraft{}, err
	}
	lics, err := a.LicenceChoices(ctx, ap.Subject, it)
	if err != nil {
		return FormDraft{}, err
	}
	return FormDraft{Item: it, FormVersionID: id, Form: f, Values: f.Prefill(form.Values{}, lookup),
		DueBy: a.opts.Calendar.AddWorkdays(a.now(), it.PromisedDays), Licences: lics}, nil
}

// BlankForm is an active item's current form without prefill, under the version id Submit
// stores it with: what an app (the phone channel) renders before anyone signs in.
func (a *Applications) BlankForm(ctx context.Context, itemCode string) (FormDraft, error) {
	it, err := a.items.Get(ctx, strings.TrimSpace(itemCode))
	if err != nil {
		return FormDraft{}, err
	}
	if !it.Active {
		return FormDraft{}, ErrItemInactive
	}
	f, err := a.itemForm(it)
	if err != nil {
		return FormDraft{}, err
	}
	id, err := a.formVersionID(ctx, f)
	if err != nil {
		return FormDraft{}, err
	}
	return FormDraft{Item: it, FormVersionID: id, Form: f}, nil
}

// prefillLookup resolves the prefill sources f uses, reading each base library at most once
// and only when a field asks for it.
func (a *Applications) prefillLookup(ctx context.Context, ap Applicant, f *form.Form) (func(string) (string, bool), error) {
	var person, entity bool
	for _, k := range f.Keys() {
		fd, _ := f.Field(k)
		person = person || strings.HasPrefix(fd.Prefill, "person.")
		entity = entity || strings.HasPrefix(fd.Prefill, "entity.")
	}
	v := map[string]string{
		form.SourceApplicantName:     ap.Name,
		form.SourceApplicantIDNumber: ap.IDNumber,
		form.SourceApplicantPhone:    ap.Phone,
		form.SourceApplicantKind:     string(ap.Subject.Kind),
	}
	if person && ap.IDNumber != "" && a.base != nil {
		p, err := a.base.FindPersonByIDNumber(ctx, ap.IDNumber)
		switch {
		case err == nil:
			v[form.SourcePersonAddress], v[form.SourcePersonDivision] = p.Address, p.DivisionCode
			v[form.SourcePersonBirthDate] = p.BirthDate
			if g := p.Sex.String(); g != "unknown" {
				v[form.SourcePersonGender] = g
			}
		case isUserError(err): // not in the library, or a malformed number: nothing to prefill
		default:
			return nil, fmt.Errorf("prefill from the population library: %w", err)
		}
	}
	if ent := ap.Enterprise; ent != nil {
		v[form.SourceEntityName], v[form.SourceEntityCreditCode] = ent.Name, ent.CreditCode
		if entity && ent.CreditCode != "" && a.base != nil {
			e, err := a.base.FindEntityByCreditCode(ctx, ent.CreditCode)
			switch {
			case err == nil:
				v[form.SourceEntityName], v[form.SourceEntityCreditCode] = e.Name, e.CreditCode
				v[form.SourceEntityLegalRep], v[form.SourceEntityAddress], v[form.SourceEntityDivision] = e.LegalRepName, e.Address, e.DivisionCode
			case isUserError(err):
			default:
				return nil, fmt.Errorf("prefill from the legal-entity library: %w", err)
			}
		}
	}
	return func(src string) (string, bool) { s, ok := v[src]; return s, ok && s != "" }, nil
}

// isUserError: a refusal about the input (not found, malformed), not a failure.
func isUserError(err error) bool {
	e, ok := i18n.As(err)
	return ok && e.HTTPStatus() < 500
}

// Submit validates and stores an application for an item and opens its case, in one
// transaction. Values are validated against the item's current form, whose version the
// application keeps; a refusal is a *FormError naming every field (FieldErrors). The
// application goes to the department of the item's kind for the chosen division at the
// item's level, or the nearest one above. Uploads are streamed to the blob store first and
// kept in the applicant's personal space; files of the personal space are attached by
// reference. Required materials left out are accepted with deficiencies (容缺受理) and
// listed in the detail's Missing for the officer.
func (a *Applications) Submit(ctx context.Context, ap Applicant, in SubmitInput) (Application, error) {
	if err := checkApplicantSubject(ap.Subject); err != nil {
		return Application{}, err
	}
	it, f, err := a.applicableItem(ctx, ap.Subject, strings.TrimSpace(in.ItemCode), true)
	if err != nil {
		return Application{}, err
	}
	values, errs := f.ValidateWith(in.Values, form.Options{Now: a.opts.Now})
	if len(errs) == 0 {
		errs = bindApplicant(f, values, ap)
	}
	if len(errs) > 0 {
		return Application{}, invalidForm(errs)
	}
	division, dept, err := a.route(ctx, it, strings.TrimSpace(in.Division))
	if err != nil {
		return Application{}, err
	}
	if err := a.ensureDefinition(ctx, it); err != nil {
		return Application{}, err
	}
	if err := a.checkLicences(ctx, ap.Subject, it, in.Materials); err != nil {
		return Application{}, err
	}
	mats, uploads, err := a.attachMaterials(ctx, ap.Subject, in.Materials, itemTargets(it))
	if err != nil {
		return Application{}, err
	}
	// The id is drawn first: the licence grants name the application they are for.
	appID := db.NewID()
	grants, err := a.grantLicences(ctx, ap.Subject, it, mats[it.Code], dept.id, RefPrefix+appID)
	if err != nil {
		a.discard(uploads)
		return Application{}, err
	}
	var out Application
	err = a.d.InTx(ctx, func(tx *db.Tx) error {
		now := a.now()
		formID, err := a.forms.SaveTx(ctx, tx, f)
		if err != nil {
			return err
		}
		if err := insertFiles(ctx, tx, ap.Subject, uploads); err != nil {
			return err
		}
		row, c, err := a.insertApplication(ctx, tx, ap, newApplication{id: appID, item: it, formID: formID, division: division, dept: dept,
			values: values, materials: mats[it.Code]}, now)
		if err != nil {
			return err
		}
		out = a.view(row, c, dept.name)
		return nil
	})
	if err != nil {
		a.discard(uploads)
		a.revokeGrants(ctx, ap.Subject, grants)
		return Application{}, err
	}
	a.raiseOrder(ctx, ap, out, it, division)
	return out, nil
}

// newApplication is what insertApplication stores.
type newApplication struct {
	id           string // drawn by the caller, or "" for a new one
	item         Item
	formID       string
	division     string
	dept         deptRef
	values       form.Values
	materials    []attach
	bundleID     string
	bundleNumber string
}

// insertApplication stores one application with revision 1 and opens its case, in tx.
func (a *Applications) insertApplication(ctx context.Context, tx *db.Tx, ap Applicant, in newApplication, now time.Time) (appRow, workflow.Case, error) {
	it := in.item
	if in.id == "" {
		in.id = db.NewID()
	}
	row := appRow{id: in.id, itemCode: it.Code, itemVersion: it.Version, itemName: it.Name, itemNameEn: it.NameEn,
		formID: in.formID, applicant: ApplicantRef{Kind: ap.Subject.Kind, ID: ap.Subject.ID, Name: applicantName(ap)},
		division: in.division, bundleID: in.bundleID, revision: 1, submittedAt: now, updatedAt: now}
	var err error
	if row.number, err = nextNumber(ctx, tx, in.division, now); err != nil {
		return appRow{}, workflow.Case{}, err
	}
	data := map[string]string{"item": it.Code, "number": row.number}
	if in.bundleNumber != "" {
		data["bundle"] = in.bundleNumber
	}
	c, err := a.cases.OpenTx(ctx, tx, workflow.OpenCase{Definition: CaseKey(it.Code), Title: it.Name, Ref: RefPrefix + row.id,
		Applicant: ap.Subject, DeptID: in.dept.id, Division: in.division, Data: data})
	if err != nil {
		return appRow{}, workflow.Case{}, fmt.Errorf("open the case of application %s: %w", row.number, err)
	}
	row.caseID = c.ID
	var phone []byte
	if ap.Phone != "" {
		if phone, err = a.fc.Seal(ap.Phone, fieldAAD("service_applications", row.id, "contact_phone")); err != nil {
			return appRow{}, workflow.Case{}, fmt.Errorf("seal contact phone: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO service_applications (id, number, item_code, item_version, item_name, item_name_en,
		form_version_id, applicant_kind, applicant_id, applicant_name, contact_phone_enc, division, case_id, bundle_id, revision,
		submitted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		row.id, row.number, row.itemCode, row.itemVersion, row.itemName, row.itemNameEn, row.formID, string(row.applicant.Kind),
		row.applicant.ID, row.applicant.Name, nullBytes(phone), row.division, row.caseID, nullString(row.bundleID), row.revision,
		now, now); err != nil {
		return appRow{}, workflow.Case{}, fmt.Errorf("store application %s: %w", row.number, err)
	}
	if err := a.insertRevision(ctx, tx, row.id, 1, in.values, "", in.materials, now); err != nil {
		return appRow{}, workflow.Case{}, err
	}
	detail := map[string]any{"number": row.number, "item": it.Code, "item_version": it.Version, "form_version": row.formID,
		"case_id": c.ID, "dept_id": in.dept.id, "division": in.division, "materials": len(in.materials)}
	if missing := missingMaterials(it, in.materials); len(missing) > 0 {
		detail["missing"] = missing
	}
	if in.bundleID != "" {
		detail["bundle_id"] = in.bundleID
	}
	if err := a.record(ctx, tx, ap.Subject, ActionSubmitted, RefPrefix+row.id, detail); err != nil {
		return appRow{}, workflow.Case{}, err
	}
	if _, err := bus.Publish(ctx, tx, EventApplicationSubmitted, SubmittedEvent{ID: row.id, Number: row.number, Item: it.Code,
		ItemVersion: it.Version, ApplicantKind: ap.Subject.Kind, ApplicantID: ap.Subject.ID, CaseID: c.ID, DeptID: in.dept.id,
		Division: in.division, BundleID: in.bundleID, At: now}); err != nil {
		return appRow{}, workflow.Case{}, err
	}
	return row, c, nil
}

func applicantName(ap Applicant) string {
	if ap.Subject.Kind == authz.Enterprise && ap.Enterprise != nil && ap.Enterprise.Name != "" {
		return ap.Enterprise.Name
	}
	if ap.Name != "" {
		return ap.Name
	}
	return ap.Subject.Name
}

// record calls the audit function inside tx.
func (a *Applications) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if a.opts.Audit == nil {
		return nil
	}
	if err := a.opts.Audit(ctx, tx, actor, action, object, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

// insertRevision stores one revision's sealed values and its materials.
func (a *Applications) insertRevision(ctx context.Context, tx *db.Tx, appID string, rev int, values form.Values, comment string, mats []attach, now time.Time) error {
	enc, err := a.sealValues(fieldAAD("service_application_revisions", appID, fmt.Sprintf("values:%d", rev)), values)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO service_application_revisions (application_id, revision, values_enc, comment, created_at)
		VALUES (?, ?, ?, ?, ?)`, appID, rev, enc, comment, now); err != nil {
		return fmt.Errorf("store application %s revision %d: %w", appID, rev, err)
	}
	for i, m := range mats {
		if _, err := tx.Exec(ctx, `INSERT INTO service_application_materials (application_id, revision, seq, material_key, source, file_id, licence_id)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, appID, rev, i+1, m.key, m.source, nullString(m.fileID), m.licenseID); err != nil {
			return fmt.Errorf("store application %s material %s: %w", appID, m.key, err)
		}
	}
	return nil
}

func fieldAAD(table, id, column string) string {
	return "govservice." + table + ":" + id + ":" + column
}

func (a *Applications) sealValues(aad string, v form.Values) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode values: %w", err)
	}
	enc, err := a.fc.Seal(string(b), aad)
	if err != nil {
		return nil, fmt.Errorf("seal values: %w", err)
	}
	return enc, nil
}

func (a *Applications) openValues(aad string, enc []byte) (form.Values, error) {
	s, err := a.fc.Open(enc, aad)
	if err != nil {
		return nil, fmt.Errorf("open values: %w", err)
	}
	var v form.Values
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode values: %w", err)
	}
	return v, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nextNumber draws the next 受理编号 of the day (Beijing time) in the county-level division:
// YYYYMMDD-<6-digit division>-<sequence>, e.g. 20261125-140105-000123. The counter row
// serialises submissions of one county and day, and nothing else.
func nextNumber(ctx context.Context, tx *db.Tx, division string, now time.Time) (string, error) {
	day := now.In(calendar.Beijing).Format("20060102")
	county := division[:6]
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO service_application_numbers (day, division, last_seq) VALUES (?, ?, 1)
		ON CONFLICT (day, division) DO UPDATE SET last_seq = service_application_numbers.last_seq + 1 RETURNING last_seq`,
		day, county).Scan(&seq)
	if err != nil {
		return "", fmt.Errorf("draw application number: %w", err)
	}
	return fmt.Sprintf("%s-%s-%06d", day, county, seq), nil
}

// ---- materials ----

// attach is one material of a revision.
type attach struct {
	key       string
	source    string
	fileID    string
	licenseID string
}

// materialTargets maps an input's key to the material key it fills in each item (by code).
type materialTargets func(key string) (map[string]string, error)

func itemTargets(it Item) materialTargets {
	return func(key string) (map[string]string, error) {
		if slices.ContainsFunc(it.Materials, func(m Material) bool { return m.Key == key }) {
			return map[string]string{it.Code: key}, nil
		}
		return nil, ErrMaterialUnknown.WithField("materials." + key)
	}
}

// attachMaterials checks the inputs — known keys, a source each, files of the owner's own
// personal space — then streams the uploads to the blob store. It returns the materials per
// item code and the uploads, whose rows the caller writes with the submission (or discards).
func (a *Applications) attachMaterials(ctx context.Context, owner authz.Subject, inputs []MaterialInput, targets materialTargets) (map[string][]attach, []storedFile, error) {
	if len(inputs) > maxMaterials {
		return nil, nil, ErrTooManyMaterials
	}
	type planned struct {
		in        MaterialInput
		targets   map[string]string
		fileID    string
		licenseID string
	}
	plan := make([]planned, 0, len(inputs))
	for _, m := range inputs {
		m.Key = strings.TrimSpace(m.Key)
		field := "materials." + m.Key
		t, err := targets(m.Key)
		if err != nil {
			return nil, nil, err
		}
		p := planned{in: m, targets: t}
		switch m.Source {
		case SourceUpload:
		case SourceLicense:
			if a.opts.Trust == nil {
				return nil, nil, ErrLicenseUnavailable.WithField(field)
			}
			// The caller has checked the licence is the applicant's (checkLicences).
			p.licenseID = strings.TrimSpace(m.LicenseID)
		case SourceFile:
			f, err := ownFile(ctx, a.d, owner, strings.TrimSpace(m.FileID))
			if err != nil {
				e, _ := i18n.As(err)
				if e == nil {
					return nil, nil, err
				}
				return nil, nil, e.WithField(field)
			}
			p.fileID = f.ID
		default:
			return nil, nil, ErrMaterialSource.WithField(field)
		}
		plan = append(plan, p)
	}
	var uploads []storedFile
	out := map[string][]attach{}
	for _, p := range plan {
		if p.in.Source == SourceUpload {
			u, err := a.upload(ctx, p.in)
			if err != nil {
				a.discard(uploads)
				return nil, nil, err
			}
			uploads = append(uploads, u)
			p.fileID = u.ID
		}
		codes := make([]string, 0, len(p.targets))
		for code := range p.targets {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		for _, code := range codes {
			out[code] = append(out[code], attach{key: p.targets[code], source: p.in.Source, fileID: p.fileID, licenseID: p.licenseID})
		}
	}
	return out, uploads, nil
}

// missingMaterials lists the item's required materials that mats leave out.
func missingMaterials(it Item, mats []attach) []string {
	var out []string
	for _, m := range it.Materials {
		if m.Required && !slices.ContainsFunc(mats, func(x attach) bool { return x.key == m.Key }) {
			out = append(out, m.Key)
		}
	}
	return out
}

// ---- rows ----

// appRow is a service_applications row.
type appRow struct {
	id, number             string
	itemCode               string
	itemVersion            int
	itemName, itemNameEn   string
	formID                 string
	applicant              ApplicantRef
	phoneEnc               []byte
	division               string
	caseID, bundleID       string
	revision               int
	submittedAt, updatedAt time.Time
}

const appSelect = `SELECT id, number, item_code, item_version, item_name, item_name_en, form_version_id, applicant_kind,
	applicant_id, applicant_name, contact_phone_enc, division, case_id, bundle_id, revision, submitted_at, updated_at
	FROM service_applications`

func scanApp(s db.Scanner) (appRow, error) {
	var r appRow
	var bundle sql.NullString
	err := s.Scan(&r.id, &r.number, &r.itemCode, &r.itemVersion, &r.itemName, &r.itemNameEn, &r.formID, &r.applicant.Kind,
		&r.applicant.ID, &r.applicant.Name, &r.phoneEnc, &r.division, &r.caseID, &bundle, &r.revision, &r.submittedAt, &r.updatedAt)
	r.bundleID = bundle.String
	r.submittedAt, r.updatedAt = r.submittedAt.UTC(), r.updatedAt.UTC()
	return r, err
}

// getApp reads an application row; a missing one is ErrApplicationNotFound.
func getApp(ctx context.Context, q db.Querier, where string, arg any) (appRow, error) {
	r, err := scanApp(q.QueryRow(ctx, appSelect+` WHERE `+where+` = ?`, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return appRow{}, ErrApplicationNotFound
	}
	if err != nil {
		return appRow{}, fmt.Errorf("read application: %w", err)
	}
	return r, nil
}

// ErrApplicationNotFound: no such application, or none the reader may see.
var ErrApplicationNotFound = &i18n.Error{Code: "govservice.application_not_found", Status: 404,
	Msg: i18n.T("未找到该申请", "no such application")}

// view is an application as it stands: the row with its case.
func (a *Applications) view(r appRow, c workflow.Case, deptName string) Application {
	st := StatusOf(c)
	out := Application{ID: r.id, Number: r.number, ItemCode: r.itemCode, ItemName: r.itemName, ItemNameEn: r.itemNameEn,
		ItemVersion: r.itemVersion, FormVersionID: r.formID, Applicant: r.applicant, Division: r.division, DeptID: c.DeptID,
		DeptName: deptName, CaseID: r.caseID, BundleID: r.bundleID, Status: st, StatusText: StatusNames[st], Step: c.Step,
		StepName: i18n.T(c.StepName, c.StepNameEn), DueAt: c.DueAt, SubmittedAt: r.submittedAt, UpdatedAt: r.updatedAt,
		ClosedAt: c.ClosedAt, Outcome: c.Outcome, Revision: r.revision}
	if c.UpdatedAt.After(out.UpdatedAt) {
		out.UpdatedAt = c.UpdatedAt.UTC()
	}
	return out
}

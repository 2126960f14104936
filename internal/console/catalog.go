package console

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// The government information resource catalogue (政务信息资源目录, GB/T 21063): the catalogue
// in force rolled up from every division in scope, the department's working copies, a form
// for a new resource, review, versions, and Excel/JSON import and export.

var catalogTitle = i18n.T("资源目录", "Resource catalogue")

type catalogData struct {
	Published   []catalog.Resource
	Working     []catalog.Resource
	Query       string
	Status      map[catalog.Status]i18n.Text
	CanEdit     bool
	Departments []org.Department
	Form        catalogForm
	Problems    catalog.Problems
}

type catalogForm struct {
	Name, DeptID, Summary, Prefix, Theme, Format, ShareCondition, Cycle, ContactName, ContactPhone, Items string
	ShareType, OpenType                                                                                   int
}

func (c *Console) catalogData(r *http.Request, sub authz.Subject) (catalogData, error) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	// Text goes to the Chinese full-text index (CJK bigrams); no text lists the catalogue.
	var pub []catalog.Resource
	var err error
	if q != "" && c.CatalogSearch != nil {
		var res catalog.SearchResult
		if res, err = c.CatalogSearch.Search(ctx, sub, q, catalog.Filter{Limit: 200}); err == nil {
			pub = res.Resources()
		}
	} else {
		pub, err = c.Catalog.List(ctx, sub, catalog.Filter{Query: q, Limit: 200})
	}
	if err != nil {
		return catalogData{}, err
	}
	d := catalogData{Published: pub, Query: q, Status: catalog.StatusNames, CanEdit: c.Policy.Allowed(sub, catalog.PermEdit, sub.Division),
		Form: catalogForm{ShareType: 1, OpenType: 3, Format: string(catalog.FormatDatabase), Cycle: string(catalog.CycleDaily), Prefix: "101001"}}
	if d.CanEdit {
		for _, st := range []catalog.Status{catalog.StatusDraft, catalog.StatusSubmitted} {
			w, err := c.Catalog.List(ctx, sub, catalog.Filter{Status: st, Query: q, Limit: 200})
			if err != nil {
				return catalogData{}, err
			}
			d.Working = append(d.Working, w...)
		}
		if d.Departments, err = c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{ActiveOnly: true, Limit: 1000}); err != nil {
			return catalogData{}, err
		}
	}
	return d, nil
}

func (c *Console) catalogPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	p := c.page(r, "catalog", catalogTitle, nil)
	d, err := c.catalogData(r, sub)
	if err != nil {
		c.fail(w, r, err, "console/catalog", p)
		return
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "console/catalog", p)
}

// parseItems reads one data item per line: 名称|类型|长度|敏感 (e.g. "身份证号|C|18|是").
func parseItems(s string) []catalog.DataItem {
	var items []catalog.DataItem
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) == 0 || f[0] == "" {
			continue
		}
		it := catalog.DataItem{Name: strings.TrimSpace(f[0]), Type: catalog.TypeChar}
		if len(f) > 1 {
			it.Type = catalog.ItemType(strings.ToUpper(strings.TrimSpace(f[1])))
		}
		if len(f) > 2 {
			it.Length, _ = strconv.Atoi(strings.TrimSpace(f[2]))
		}
		if len(f) > 3 {
			v := strings.TrimSpace(f[3])
			it.Sensitive = v == "是" || strings.EqualFold(v, "yes") || v == "1"
		}
		items = append(items, it)
	}
	return items
}

func (c *Console) createResource(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	f := catalogForm{Name: r.PostFormValue("name"), DeptID: r.PostFormValue("dept"), Summary: r.PostFormValue("summary"),
		Prefix: strings.TrimSpace(r.PostFormValue("prefix")), Theme: r.PostFormValue("theme"), Format: r.PostFormValue("format"),
		ShareCondition: r.PostFormValue("share_condition"), Cycle: r.PostFormValue("cycle"),
		ContactName: r.PostFormValue("contact_name"), ContactPhone: r.PostFormValue("contact_phone"), Items: r.PostFormValue("items")}
	f.ShareType, _ = strconv.Atoi(r.PostFormValue("share_type"))
	f.OpenType, _ = strconv.Atoi(r.PostFormValue("open_type"))
	cls, err := catalog.ParsePrefix(f.Prefix)
	var res catalog.Resource
	if err == nil {
		cls.Theme = f.Theme
		res, err = c.Catalog.CreateDraft(r.Context(), sub, catalog.Draft{Name: f.Name, ProviderDeptID: f.DeptID, Summary: f.Summary,
			Classification: cls, Format: catalog.Format(f.Format), Items: parseItems(f.Items), ShareType: catalog.ShareType(f.ShareType),
			ShareCondition: f.ShareCondition, OpenType: catalog.OpenType(f.OpenType), UpdateCycle: catalog.UpdateCycle(f.Cycle),
			Contact: catalog.Contact{Name: f.ContactName, Phone: f.ContactPhone}})
	}
	if err != nil {
		p := c.page(r, "catalog", catalogTitle, nil)
		d, derr := c.catalogData(r, sub)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		d.Form = f
		p.Data = d
		c.fail(w, r, err, "console/catalog", p)
		return
	}
	http.Redirect(w, r, "/console/catalog/"+res.ID, http.StatusSeeOther)
}

type resourceData struct {
	Resource  catalog.Resource
	Versions  []catalog.Resource
	CanEdit   bool
	CanReview bool
}

func (c *Console) resourcePage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	p := c.page(r, "catalog", catalogTitle, nil)
	res, err := c.Catalog.Get(ctx, sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	vs, err := c.Catalog.ListVersions(ctx, sub, res.ID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p.Title = i18n.T(res.Name, res.Name)
	p.Data = resourceData{Resource: res, Versions: vs, CanEdit: c.Policy.Allowed(sub, catalog.PermEdit, res.DivisionCode),
		CanReview: c.Policy.Allowed(sub, catalog.PermReview, res.DivisionCode)}
	if r.URL.Query().Get("ok") != "" {
		t := i18n.T("已保存", "Saved")
		p.Flash = &t
	}
	c.render(w, r, http.StatusOK, "console/resource", p)
}

// resourceAction runs submit, approve, reject or withdraw.
func (c *Console) resourceAction(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx, id, reason := r.Context(), r.PathValue("id"), strings.TrimSpace(r.PostFormValue("reason"))
	var err error
	switch r.PathValue("action") {
	case "submit":
		_, err = c.Catalog.Submit(ctx, sub, id)
	case "approve":
		_, err = c.Catalog.Review(ctx, sub, id, true, reason)
	case "reject":
		_, err = c.Catalog.Review(ctx, sub, id, false, reason)
	case "withdraw":
		_, err = c.Catalog.Withdraw(ctx, sub, id, reason)
	default:
		err = i18n.ErrNotFound
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/catalog/"+id+"?ok=1", http.StatusSeeOther)
}

// exportCatalog downloads the catalogue in force, as departments exchange it.
func (c *Console) exportCatalog(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	rs, err := c.Catalog.ListAll(r.Context(), sub, catalog.Filter{})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var buf bytes.Buffer
	switch r.PathValue("format") {
	case "xlsx":
		err = catalog.WriteExcel(&buf, rs)
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	case "json":
		err = catalog.WriteJSON(&buf, rs)
		w.Header().Set("Content-Type", "application/json")
	default:
		err = i18n.ErrNotFound
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="catalog.`+r.PathValue("format")+`"`)
	_, _ = buf.WriteTo(w)
}

// importCatalog takes an Excel or JSON file; every problem is listed and nothing is imported
// unless the whole file is good.
func (c *Console) importCatalog(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	file, hdr, err := r.FormFile("file")
	if err != nil {
		httpx.WriteError(w, r, i18n.New("catalog.import_file", "请选择要导入的 Excel 或 JSON 文件", "choose an Excel or JSON file to import").WithField("file"))
		return
	}
	defer file.Close()
	var b *catalog.Batch
	if strings.HasSuffix(strings.ToLower(hdr.Filename), ".json") {
		b, err = catalog.ParseJSON(io.LimitReader(file, 32<<20))
	} else {
		b, err = catalog.ParseExcel(io.LimitReader(file, 32<<20))
	}
	if err == nil {
		_, err = c.Catalog.Import(r.Context(), sub, b)
	}
	if err != nil {
		p := c.page(r, "catalog", catalogTitle, nil)
		d, derr := c.catalogData(r, sub)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		if e, ok := i18n.As(err); ok {
			if ps, ok := e.Err.(catalog.Problems); ok {
				d.Problems = ps
			}
		}
		p.Data = d
		c.fail(w, r, err, "console/catalog", p)
		return
	}
	http.Redirect(w, r, "/console/catalog?ok=1", http.StatusSeeOther)
}

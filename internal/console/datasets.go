package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Datasets behind catalogue resources: their versions, a new version loaded from an uploaded
// file with live progress, the rows a load rejected, and datasets served from the providing
// department's own API (registered here: address, auth header and secret, timeout, field mapping).
//
// Who may load: a catalogue reviewer of the node's division (the dataset engine keeps no owner;
// the provider's own officers load through `dgov dataset load` or their upstream feeds).

var datasetsTitle = i18n.T("数据集", "Datasets")

// loadTimeout bounds one background load.
var loadTimeout = 2 * time.Hour

type datasetRow struct {
	ID     string
	Active *dataset.Version
	Last   *dataset.Version
}

func (c *Console) canLoad(sub authz.Subject) bool {
	return c.Policy.Allowed(sub, catalog.PermReview, c.NodeDivision)
}

func (c *Console) datasetsPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := c.Policy.Authorize(sub, catalog.PermRead, sub.Division); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d, err := c.datasetsData(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d["CanLoad"] = c.canLoad(sub)
	d["Upstream"] = upstreamForm{New: true, LookupPath: "/records/{key}", QueryPath: "/records", Timeout: "5"}
	c.render(w, r, http.StatusOK, "console/datasets", c.page(r, "datasets", datasetsTitle, d))
}

func (c *Console) datasetsData(ctx context.Context) (map[string]any, error) {
	ids, err := c.Datasets.List(ctx)
	if err != nil {
		return nil, err
	}
	var list []datasetRow
	for _, id := range ids {
		vs, err := c.Datasets.Versions(ctx, id)
		if err != nil {
			return nil, err
		}
		row := datasetRow{ID: id}
		for i := range vs {
			v := vs[i]
			if row.Last == nil || v.Version > row.Last.Version {
				row.Last = &v
			}
			if v.Status == dataset.Active {
				row.Active = &v
			}
		}
		list = append(list, row)
	}
	return map[string]any{"Datasets": list}, nil
}

func (c *Console) datasetPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := c.Policy.Authorize(sub, catalog.PermRead, sub.Division); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d, err := c.datasetData(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d["CanLoad"] = c.canLoad(sub)
	c.render(w, r, http.StatusOK, "console/dataset", c.page(r, "datasets", datasetsTitle, d))
}

// datasetData is one dataset's page: its versions, the latest load and its rejects, and the
// upstream API serving it, if one does.
func (c *Console) datasetData(ctx context.Context, id string) (map[string]any, error) {
	vs, err := c.Datasets.Versions(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, i18n.ErrNotFound
	}
	latest := vs[0]
	for _, v := range vs {
		if v.Version > latest.Version {
			latest = v
		}
	}
	rejects, err := c.Datasets.Rejects(ctx, id, latest.Version, 100)
	if err != nil {
		return nil, err
	}
	d := map[string]any{"ID": id, "Versions": vs, "Latest": latest, "Rejects": rejects,
		"Upstream": upstreamForm{DatasetID: id, LookupPath: "/records/{key}", QueryPath: "/records", Timeout: "5"}}
	up, err := c.Datasets.Upstream(ctx, id)
	switch {
	case err == nil:
		d["Upstream"], d["Served"] = formOf(id, up), true
	case !errors.Is(err, i18n.ErrNotFound):
		return nil, err
	}
	return d, nil
}

// datasetStatus is what the page's progress bar polls.
func (c *Console) datasetStatus(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := c.Policy.Authorize(sub, catalog.PermRead, sub.Division); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	vs, err := c.Datasets.Versions(r.Context(), r.PathValue("id"))
	if err != nil || len(vs) == 0 {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	latest := vs[0]
	for _, v := range vs {
		if v.Version > latest.Version {
			latest = v
		}
	}
	_ = httpx.WriteJSON(w, http.StatusOK, latest)
}

// loadDataset stores the upload in a temporary file, answers at once, and loads it in the
// background with the active version's schema; the page shows the progress.
func (c *Console) loadDataset(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	id := r.PathValue("id")
	if !c.canLoad(sub) {
		httpx.WriteError(w, r, i18n.ErrForbidden)
		return
	}
	active, err := c.Datasets.Active(r.Context(), id)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	file, hdr, err := r.FormFile("file")
	if err != nil {
		httpx.WriteError(w, r, i18n.New("dataset.upload_file", "请选择要导入的 CSV、Excel 或 JSON 文件", "choose a CSV, Excel or JSON file").WithField("file"))
		return
	}
	defer file.Close()
	tmp, err := os.CreateTemp("", "dgov-upload-*"+filepath.Ext(hdr.Filename))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	size, err := io.Copy(tmp, file)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		httpx.WriteError(w, r, err)
		return
	}
	format := dataset.Format(strings.TrimPrefix(strings.ToLower(filepath.Ext(hdr.Filename)), "."))
	ctx := c.BackgroundContext
	if ctx == nil {
		ctx = context.Background()
	}
	started := make(chan struct{})
	go func() {
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		lctx, cancel := context.WithTimeout(ctx, loadTimeout)
		defer cancel()
		close(started)
		if _, err := c.Datasets.Load(lctx, id, active.Schema, dataset.Source{Name: hdr.Filename, Format: format, Reader: tmp, Size: size},
			dataset.LoadOptions{}); err != nil {
			c.Log.Warn("dataset load failed", "dataset", id, "err", err)
		}
	}()
	<-started
	c.auditEvent(r, sub, "dataset.load", "dataset:"+id)
	http.Redirect(w, r, "/console/datasets/"+id, http.StatusSeeOther)
}

// ---- datasets served from the provider's own API ----

// UpstreamRoutes registers the registration of upstream datasets (dataset.RegisterUpstream).
func (c *Console) UpstreamRoutes(mux *http.ServeMux) {
	mux.Handle("POST /console/datasets/upstream", c.staffOnly(c.registerUpstream))
}

// upstreamForm is the registration form of a dataset served from the providing department's
// API, as typed.
type upstreamForm struct {
	DatasetID  string
	BaseURL    string
	LookupPath string
	QueryPath  string
	AuthHeader string
	Timeout    string // seconds
	Fields     string // one "column=upstream field" a line
	Schema     string // JSON; required for a new dataset, else the active version's
	HasSecret  bool
	New        bool // posted from the list (a new dataset)
}

// formOf fills the form from a registration.
func formOf(id string, u dataset.Upstream) upstreamForm {
	f := upstreamForm{DatasetID: id, BaseURL: u.BaseURL, LookupPath: u.LookupPath, QueryPath: u.QueryPath, AuthHeader: u.AuthHeader,
		Timeout: strconv.FormatFloat(u.Timeout.Seconds(), 'f', -1, 64), HasSecret: u.HasSecret}
	cols := make([]string, 0, len(u.Fields))
	for col := range u.Fields {
		cols = append(cols, col)
	}
	sort.Strings(cols)
	for _, col := range cols {
		f.Fields += col + "=" + u.Fields[col] + "\n"
	}
	return f
}

var errUpstreamForm = i18n.New("dataset.upstream_form", "字段映射每行一项，格式为“列名=接口字段名”", `field mapping: one "column=upstream field" a line`).WithField("fields")

// registerUpstream registers (or changes) a dataset served from the provider's API. Who may:
// whoever may load datasets (canLoad).
func (c *Console) registerUpstream(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if !c.canLoad(sub) {
		httpx.WriteError(w, r, i18n.ErrForbidden)
		return
	}
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, r, i18n.New("request.bad_form", "表单无法解析", "the form could not be read"))
		return
	}
	ctx := r.Context()
	form := upstreamForm{DatasetID: strings.TrimSpace(r.PostFormValue("dataset_id")), BaseURL: r.PostFormValue("base_url"),
		LookupPath: strings.TrimSpace(r.PostFormValue("lookup_path")), QueryPath: strings.TrimSpace(r.PostFormValue("query_path")),
		AuthHeader: r.PostFormValue("auth_header"), Timeout: strings.TrimSpace(r.PostFormValue("timeout")),
		Fields: r.PostFormValue("fields"), Schema: strings.TrimSpace(r.PostFormValue("schema")), New: r.PostFormValue("new") != ""}
	up := dataset.Upstream{BaseURL: form.BaseURL, LookupPath: form.LookupPath, QueryPath: form.QueryPath, AuthHeader: form.AuthHeader,
		Secret: r.PostFormValue("secret")}
	err := func() error {
		if form.Timeout != "" {
			sec, err := strconv.ParseFloat(form.Timeout, 64)
			if err != nil || sec <= 0 {
				return i18n.New("dataset.upstream_config", "超时须为秒数", "the timeout is a number of seconds").WithField("timeout")
			}
			up.Timeout = time.Duration(sec * float64(time.Second))
		}
		for line := range strings.Lines(form.Fields) {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			col, name, ok := strings.Cut(line, "=")
			if !ok {
				return errUpstreamForm
			}
			if up.Fields == nil {
				up.Fields = map[string]string{}
			}
			up.Fields[strings.TrimSpace(col)] = strings.TrimSpace(name)
		}
		var schema dataset.Schema
		if form.Schema != "" {
			dec := json.NewDecoder(strings.NewReader(form.Schema))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&schema); err != nil {
				return i18n.New("dataset.schema", "表结构须为 JSON：{\"columns\": [{\"name\": …, \"type\": …}], \"key\": …}",
					`the schema must be JSON: {"columns": [{"name": …, "type": …}], "key": …}`).WithField("schema")
			}
		} else {
			v, err := c.Datasets.Active(ctx, form.DatasetID)
			if errors.Is(err, dataset.ErrNoActive) {
				return i18n.New("dataset.schema", "新数据集须填写表结构", "a new dataset needs its schema").WithField("schema")
			}
			if err != nil {
				return err
			}
			schema = v.Schema
		}
		_, err := c.Datasets.RegisterUpstream(ctx, form.DatasetID, schema, up)
		return err
	}()
	if err != nil {
		if form.New {
			d, derr := c.datasetsData(ctx)
			if derr != nil {
				httpx.WriteError(w, r, err)
				return
			}
			d["CanLoad"], d["Upstream"] = true, form
			c.fail(w, r, err, "console/datasets", c.page(r, "datasets", datasetsTitle, d))
			return
		}
		d, derr := c.datasetData(ctx, form.DatasetID)
		if derr != nil {
			httpx.WriteError(w, r, err)
			return
		}
		form.HasSecret = d["Upstream"].(upstreamForm).HasSecret
		d["CanLoad"], d["Upstream"] = true, form
		c.fail(w, r, err, "console/dataset", c.page(r, "datasets", datasetsTitle, d))
		return
	}
	c.auditEvent(r, sub, "dataset.upstream", "dataset:"+form.DatasetID)
	http.Redirect(w, r, "/console/datasets/"+url.PathEscape(form.DatasetID)+"?ok=1", http.StatusSeeOther)
}

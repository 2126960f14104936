package console

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Datasets behind catalogue resources: their versions, a new version loaded from an uploaded
// file with live progress, and the rows a load rejected.
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
	ctx := r.Context()
	if err := c.Policy.Authorize(sub, catalog.PermRead, sub.Division); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ids, err := c.Datasets.List(ctx)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var list []datasetRow
	for _, id := range ids {
		vs, err := c.Datasets.Versions(ctx, id)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
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
	c.render(w, r, http.StatusOK, "console/datasets", c.page(r, "datasets", datasetsTitle,
		map[string]any{"Datasets": list, "CanLoad": c.canLoad(sub)}))
}

func (c *Console) datasetPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx, id := r.Context(), r.PathValue("id")
	if err := c.Policy.Authorize(sub, catalog.PermRead, sub.Division); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	vs, err := c.Datasets.Versions(ctx, id)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if len(vs) == 0 {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	latest := vs[0]
	for _, v := range vs {
		if v.Version > latest.Version {
			latest = v
		}
	}
	rejects, err := c.Datasets.Rejects(ctx, id, latest.Version, 100)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "console/dataset", c.page(r, "datasets", datasetsTitle,
		map[string]any{"ID": id, "Versions": vs, "Latest": latest, "Rejects": rejects, "CanLoad": c.canLoad(sub)}))
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

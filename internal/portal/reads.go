package portal

import (
	"net/http"

	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Reads serves "who read my data" (谁查看了我的数据): every exchange gateway call that returned
// the signed-in citizen's record — when, which department, for what purpose, from which
// resource, and how (a lookup by ID number, a query, a bulk extract). The records are found by
// the blind index of the account's verified ID number, so neither the access log nor this page
// handles the number itself.
type Reads struct {
	*Accounts
	Exchange *exchange.Service
}

// Routes registers the page.
func (rd *Reads) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /account/reads", rd.signedIn(rd.readsPage))
}

type readsData struct {
	Verified bool // reads are found through a verified ID number
	Reads    []exchange.Read
	Kinds    map[string]i18n.Text
}

// readKinds name the ways a record was read.
var readKinds = map[string]i18n.Text{
	"lookup":  i18n.T("按身份证号查询", "looked up by ID number"),
	"query":   i18n.T("条件查询", "query"),
	"extract": i18n.T("批量导出", "bulk extract"),
}

var readsTitle = i18n.T("谁查看了我的数据", "Who read my data")

func (rd *Reads) readsPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	idx, err := rd.Identity.ResidentIndex(ctx, ses.AccountID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := readsData{Verified: idx != "", Reads: []exchange.Read{}, Kinds: readKinds}
	if d.Verified {
		if d.Reads, err = rd.Exchange.ReadsOf(ctx, idx); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	rd.render(w, r, http.StatusOK, "portal/reads", rd.page(r, readsTitle, d))
}

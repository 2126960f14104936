package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Sharing and exchange (共享交换, D4): a department applies for published resources (items and
// purpose) and follows its requests; the provider answers what is addressed to it — approving
// some or all items within a row scope, or refusing with reasons — before the deadline;
// grants are bound to the consumer's system client; each department's responsibility list
// (责任清单) shows what it owes whom, overdue first; bulk extracts are listed with the
// department's requests and under each grant (status, rows, file digest, expiry).

var exchangeTitle = i18n.T("共享交换", "Data sharing")

type exchangeData struct {
	Dept      string // the actor's department ("" for staff without one)
	Mine      []requestRow
	Pending   []exchange.SharingRequest
	Resources []catalog.Resource // published resources of other departments, to apply for
	Status    map[exchange.Status]i18n.Text
	CanApply  bool
	CanDecide bool
	CanBind   bool
	Clients   []idp.Client // the department's system clients, for binding
	Overdue   int          // pending requests addressed to the department past their deadline
	// Extracts are the bulk file extracts the department's systems asked for, newest first.
	Extracts      []exchange.Extract
	ExtractStatus map[exchange.ExtractStatus]i18n.Text
}

// requestRow is one of the department's own requests, with its grant once approved.
type requestRow struct {
	exchange.SharingRequest
	Grant *exchange.Grant
}

func (c *Console) exchangeData(ctx context.Context, sub authz.Subject) (exchangeData, error) {
	d := exchangeData{Dept: sub.Dept, Status: exchange.StatusNames, ExtractStatus: exchange.ExtractStatusNames,
		CanApply:  sub.Dept != "" && c.Policy.Allowed(sub, exchange.PermApply, sub.Division),
		CanDecide: sub.Dept != "" && c.Policy.Allowed(sub, exchange.PermDecide, sub.Division),
		CanBind:   sub.Dept != "" && c.Policy.Allowed(sub, exchange.PermBind, sub.Division)}
	if sub.Dept == "" {
		return d, nil
	}
	mine, err := c.Exchange.ListRequests(ctx, sub, exchange.RequestFilter{ConsumerDeptID: sub.Dept, Limit: 200})
	if err != nil {
		return d, err
	}
	grants, err := c.Exchange.Grants(ctx, sub, sub.Dept)
	if err != nil {
		return d, err
	}
	for _, r := range mine {
		row := requestRow{SharingRequest: r}
		for i := range grants {
			if grants[i].RequestID == r.ID {
				row.Grant = &grants[i]
			}
		}
		d.Mine = append(d.Mine, row)
	}
	if d.Pending, err = c.Exchange.Pending(ctx, sub, sub.Dept); err != nil {
		return d, err
	}
	if d.Extracts, err = c.Exchange.Extracts(ctx, sub, exchange.ExtractFilter{ConsumerDeptID: sub.Dept, Limit: 20}); err != nil {
		return d, err
	}
	for _, r := range d.Pending {
		if r.Overdue {
			d.Overdue++
		}
	}
	if d.CanApply {
		all, err := c.Catalog.List(ctx, sub, catalog.Filter{Limit: 500})
		if err != nil {
			return d, err
		}
		for _, r := range all {
			if r.ProviderDeptID != sub.Dept {
				d.Resources = append(d.Resources, r)
			}
		}
	}
	if d.CanBind && c.IdP != nil {
		cs, err := c.IdP.ListClients(ctx, sub)
		if err != nil {
			return d, err
		}
		for _, cl := range cs {
			if cl.Type == idp.ClientService && !cl.Disabled && cl.DepartmentID == sub.Dept {
				d.Clients = append(d.Clients, cl)
			}
		}
	}
	return d, nil
}

func (c *Console) exchangePage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	p := c.page(r, "exchange", exchangeTitle, nil)
	d, err := c.exchangeData(r.Context(), sub)
	if err != nil {
		c.fail(w, r, err, "console/exchange", p)
		return
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "console/exchange", p)
}

// ---- applying ----

type applyData struct {
	Resource catalog.Resource
	Fields   []string // ticked
	Purpose  string
	ClientID string
}

// liveResource is the version of a resource in force, as the exchange applies for it.
func (c *Console) liveResource(ctx context.Context, sub authz.Subject, id string) (catalog.Resource, error) {
	res, err := c.Catalog.Get(ctx, sub, id)
	if err != nil {
		return res, err
	}
	if res.LiveVersion == 0 {
		return catalog.Resource{}, i18n.ErrNotFound
	}
	if res.Status != catalog.StatusPublished || res.Version != res.LiveVersion {
		return c.Catalog.GetVersion(ctx, sub, id, res.LiveVersion)
	}
	return res, nil
}

func (c *Console) applyPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	res, err := c.liveResource(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := applyData{Resource: res}
	for _, it := range res.Items {
		d.Fields = append(d.Fields, it.Name)
	}
	c.render(w, r, http.StatusOK, "console/exchange_apply", c.page(r, "exchange", exchangeTitle, d))
}

func (c *Console) apply(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, r, i18n.New("request.bad_form", "表单无法解析", "the form could not be read"))
		return
	}
	id := r.PathValue("id")
	in := exchange.ApplyInput{ResourceID: id, Fields: r.PostForm["fields"], Purpose: r.PostFormValue("purpose"),
		ClientID: strings.TrimSpace(r.PostFormValue("client_id"))}
	if _, _, err := c.Exchange.Apply(r.Context(), sub, in); err != nil {
		res, rerr := c.liveResource(r.Context(), sub, id)
		if rerr != nil {
			httpx.WriteError(w, r, err)
			return
		}
		c.fail(w, r, err, "console/exchange_apply", c.page(r, "exchange", exchangeTitle,
			applyData{Resource: res, Fields: in.Fields, Purpose: in.Purpose, ClientID: in.ClientID}))
		return
	}
	http.Redirect(w, r, "/console/exchange?ok=1", http.StatusSeeOther)
}

// ---- one request: the provider's answer, the consumer's withdrawal ----

type sharingRequestData struct {
	Request     exchange.SharingRequest
	Grant       *exchange.Grant
	Status      map[exchange.Status]i18n.Text
	CanDecide   bool // the actor's department provides it, and the request waits for an answer
	CanWithdraw bool
	CanBind     bool   // the consumer's staff may bind the grant to its system client
	CanRevoke   bool   // the provider's staff may revoke the grant
	RowScope    string // the default row scope of a grant (the consumer's division; "" = every row)
	Approve     []string
	Reason      string
	// Extracts under the grant, for both departments to see what left in bulk.
	Extracts      []exchange.Extract
	ExtractStatus map[exchange.ExtractStatus]i18n.Text
}

func (c *Console) sharingRequestData(ctx context.Context, sub authz.Subject, id string) (sharingRequestData, error) {
	req, err := c.Exchange.Request(ctx, sub, id)
	if err != nil {
		return sharingRequestData{}, err
	}
	d := sharingRequestData{Request: req, Status: exchange.StatusNames, Approve: req.Fields, RowScope: defaultRowScope(req.ConsumerDivision),
		ExtractStatus: exchange.ExtractStatusNames}
	pending := req.Status == exchange.StatusPending
	d.CanDecide = pending && sub.Dept == req.ProviderDeptID && c.Policy.Allowed(sub, exchange.PermDecide, req.ProviderDivision)
	d.CanWithdraw = pending && sub.Dept == req.ConsumerDeptID && c.Policy.Allowed(sub, exchange.PermApply, sub.Division)
	if req.Status == exchange.StatusApproved {
		if g, err := c.Exchange.GrantOf(ctx, sub, req.ID); err == nil {
			d.Grant = &g
			if d.Extracts, err = c.Exchange.Extracts(ctx, sub, exchange.ExtractFilter{GrantID: g.ID, Limit: 20}); err != nil {
				return d, err
			}
		}
		d.CanBind = sub.Dept == req.ConsumerDeptID && c.Policy.Allowed(sub, exchange.PermBind, req.ConsumerDivision)
		d.CanRevoke = sub.Dept == req.ProviderDeptID && c.Policy.Allowed(sub, exchange.PermDecide, req.ProviderDivision)
	}
	return d, nil
}

// defaultRowScope mirrors the exchange's default: the consumer's own division, every row for
// a provincial department.
func defaultRowScope(division string) string {
	if d, ok := divisions.Lookup(division); ok && d.Level == divisions.Province {
		return ""
	}
	return division
}

func (c *Console) sharingRequestPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d, err := c.sharingRequestData(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "console/exchange_request", c.page(r, "exchange", exchangeTitle, d))
}

func (c *Console) sharingRequestAction(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, r, i18n.New("request.bad_form", "表单无法解析", "the form could not be read"))
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	reason := r.PostFormValue("reason")
	var err error
	switch r.PathValue("action") {
	case "approve":
		dec := exchange.Decision{Approve: true, Fields: r.PostForm["fields"], Reason: reason}
		if len(dec.Fields) == 0 {
			err = i18n.New("exchange.fields.required", "请至少同意一个信息项，或不予共享并说明理由",
				"approve at least one data item, or refuse with reasons").WithField("fields")
			break
		}
		if scope := strings.TrimSpace(r.PostFormValue("row_scope")); scope != "" {
			dec.RowScope = &scope
		}
		_, _, err = c.Exchange.Decide(ctx, sub, id, dec)
	case "refuse":
		_, _, err = c.Exchange.Decide(ctx, sub, id, exchange.Decision{Approve: false, Reason: reason})
	case "withdraw":
		_, err = c.Exchange.Withdraw(ctx, sub, id)
	default:
		err = i18n.ErrNotFound
	}
	if err != nil {
		d, derr := c.sharingRequestData(ctx, sub, id)
		if derr != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if r.PathValue("action") == "approve" {
			d.Approve = r.PostForm["fields"]
		}
		d.Reason = reason
		c.fail(w, r, err, "console/exchange_request", c.page(r, "exchange", exchangeTitle, d))
		return
	}
	http.Redirect(w, r, "/console/exchange/requests/"+id+"?ok=1", http.StatusSeeOther)
}

// grantAction binds a grant to the consumer's system client, or (the provider) revokes it.
func (c *Console) grantAction(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx, id := r.Context(), r.PathValue("id")
	var g exchange.Grant
	var err error
	switch r.PathValue("action") {
	case "bind":
		g, err = c.Exchange.BindClient(ctx, sub, id, r.PostFormValue("client_id"))
	case "revoke":
		g, err = c.Exchange.RevokeGrant(ctx, sub, id, r.PostFormValue("reason"))
	default:
		err = i18n.ErrNotFound
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/exchange/requests/"+g.RequestID+"?ok=1", http.StatusSeeOther)
}

// ---- responsibility list ----

type dutiesData struct {
	DeptID      string
	Departments []org.Department
	Items       []exchange.Responsibility
	Overdue     int
}

func (c *Console) dutiesPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	p := c.page(r, "exchange", i18n.T("责任清单", "Responsibility list"), nil)
	d := dutiesData{DeptID: strings.TrimSpace(r.URL.Query().Get("dept"))}
	if d.DeptID == "" {
		d.DeptID = sub.Dept
	}
	// The departments in the actor's scope, to pick another's list (the service decides
	// whose lists the actor may read).
	d.Departments, _ = c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{Limit: 1000})
	var err error
	p.Data = d
	if d.DeptID == "" {
		c.render(w, r, http.StatusOK, "console/exchange_duties", p)
		return
	}
	if d.Items, err = c.Exchange.Responsibilities(ctx, sub, d.DeptID); err != nil {
		c.fail(w, r, err, "console/exchange_duties", p)
		return
	}
	for _, it := range d.Items {
		if it.Overdue {
			d.Overdue++
		}
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "console/exchange_duties", p)
}

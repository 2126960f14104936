package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// TokenValidator checks a bearer access token issued by the identity provider to a system
// client (client credentials grant) and names the client and the token's scopes. The app
// implements it with idp; it must fail for expired, revoked and unknown tokens and for tokens
// of disabled clients.
type TokenValidator interface {
	Validate(ctx context.Context, bearer string) (clientID string, scopes []string, err error)
}

// ScopeExchange is the scope a token must carry to call the gateway (GatewayConfig.Scope).
const ScopeExchange = "dgov.exchange"

// PurposeHeader states the purpose of a call (使用用途); required. UTF-8, or percent-encoded.
const PurposeHeader = "X-Dgov-Purpose"

// GatewayConfig configures NewGateway.
type GatewayConfig struct {
	Service *Service
	Tokens  TokenValidator
	Signer  Signer // signs receipts: the node keyring
	// Scope a token must carry; "" = ScopeExchange.
	Scope string
	// Prefix the gateway is mounted at; "" = /api/v1/exchange.
	Prefix string
	// MaxScanRows bounds the rows a row-scoped query reads from an upstream API to fill one
	// page (stored datasets read the scope's rows through an index); default 200 000.
	MaxScanRows int
	// Extracts produces bulk file extracts; nil answers their routes with 501.
	Extracts *Extracts
	Logger   *slog.Logger
}

// Gateway is the exchange gateway: an http.Handler serving grants to consumer systems.
//
//	GET  {prefix}/{resource}/records/{key}   one record by the dataset's key
//	POST {prefix}/{resource}/lookup          the same with {"key": …} in the body (keeps ID numbers out of URLs and logs)
//	GET  {prefix}/{resource}/records?col=value&fields=a,b&limit=&offset=   exact-match query, paged
//	POST {prefix}/{resource}/extracts?col=value&fields=a,b&format=csv|jsonl&gzip=true   a bulk file extract (202)
//	GET  {prefix}/{resource}/extracts/{id}        its status and progress
//	GET  {prefix}/{resource}/extracts/{id}/file   its file, with the signed receipt
type Gateway struct {
	cfg GatewayConfig
	s   *Service
	mux *http.ServeMux

	mu       sync.Mutex
	limiters map[string]*limiter // by grant id
}

type limiter struct {
	perMinute int
	l         *rate.Limiter
}

// Errors of the gateway.
var (
	ErrPurposeRequired = &i18n.Error{Code: "exchange.purpose.required", Status: http.StatusBadRequest, Field: PurposeHeader,
		Msg: i18n.T("请在 X-Dgov-Purpose 请求头中说明使用用途", "state the purpose of the call in the X-Dgov-Purpose header")}
	ErrNoGrant = &i18n.Error{Code: "exchange.no_grant", Status: http.StatusForbidden,
		Msg: i18n.T("本应用没有该资源的有效共享授权", "this client holds no live grant for this resource")}
	ErrFieldNotGranted = &i18n.Error{Code: "exchange.field_not_granted", Status: http.StatusForbidden, Field: "fields",
		Msg: i18n.T("所请求的信息项不在共享授权范围内", "a data item asked for is outside the grant")}
	ErrScope = &i18n.Error{Code: "exchange.scope", Status: http.StatusForbidden,
		Msg: i18n.T("访问令牌不含数据交换权限", "the access token does not carry the exchange scope")}
	ErrRateLimited = &i18n.Error{Code: "exchange.rate_limited", Status: http.StatusTooManyRequests,
		Msg: i18n.T("调用过于频繁，超出授权的频率限制", "too many calls: the grant's rate limit is exceeded")}
	ErrQuotaExceeded = &i18n.Error{Code: "exchange.quota_exceeded", Status: http.StatusTooManyRequests,
		Msg: i18n.T("今日调用次数已达授权上限", "the grant's daily quota is used up")}
	// ErrScanTooLarge: a row-scoped query of an upstream dataset read MaxScanRows rows
	// without filling its page.
	ErrScanTooLarge = dataset.ErrScanTooLarge
)

// NewGateway builds the gateway.
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	switch {
	case cfg.Service == nil:
		return nil, errors.New("exchange: GatewayConfig.Service is required")
	case cfg.Tokens == nil:
		return nil, errors.New("exchange: GatewayConfig.Tokens is required")
	case cfg.Signer == nil:
		return nil, errors.New("exchange: GatewayConfig.Signer is required")
	case cfg.Service.audit == nil:
		return nil, errors.New("exchange: the service needs an Auditor for the gateway: every call is audited")
	}
	if cfg.Scope == "" {
		cfg.Scope = ScopeExchange
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/api/v1/exchange"
	}
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
	if cfg.MaxScanRows <= 0 {
		cfg.MaxScanRows = 200_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Gateway{cfg: cfg, s: cfg.Service, mux: http.NewServeMux(), limiters: map[string]*limiter{}}
	for _, rt := range g.table() {
		g.mux.HandleFunc(rt.pattern, rt.handler)
	}
	return g, nil
}

type gatewayRoute struct {
	pattern string
	handler http.HandlerFunc
}

// table is the gateway's route table, top to bottom; the API's openapi.json documents each.
func (g *Gateway) table() []gatewayRoute {
	p := g.cfg.Prefix
	return []gatewayRoute{
		{"GET " + p + "/{resource}/records/{key}", g.lookup},
		{"POST " + p + "/{resource}/lookup", g.lookup},
		{"GET " + p + "/{resource}/records", g.query},
		{"POST " + p + "/{resource}/extracts", g.createExtract},
		{"GET " + p + "/{resource}/extracts/{id}", g.extractStatus},
		{"GET " + p + "/{resource}/extracts/{id}/file", g.extractFile},
	}
}

// Patterns lists the gateway's routes ("METHOD /path"), for documentation checks.
func (g *Gateway) Patterns() []string {
	var out []string
	for _, rt := range g.table() {
		out = append(out, rt.pattern)
	}
	return out
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// call is one authorized gateway call in progress.
type call struct {
	clientID, purpose, requestID, resourceID string
	grant                                    Grant
	binding                                  Binding
	version                                  dataset.Version
	fields                                   []string
	at                                       time.Time
	bodySM3                                  string // of a POST body, signed in the receipt
	ip                                       string
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func purposeOf(r *http.Request) (string, error) {
	p := r.Header.Get(PurposeHeader)
	if strings.Contains(p, "%") {
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
	}
	if strings.TrimSpace(p) == "" {
		return "", ErrPurposeRequired
	}
	p, err := purposeText(p)
	if err != nil {
		return "", ErrPurposeRequired.Wrap(err)
	}
	return p, nil
}

// authenticate checks the bearer token and its scope, and starts the call of the client it
// names. A refusal of an identified client is audited.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (*call, error) {
	ctx := r.Context()
	tok := bearer(r)
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dgov-exchange"`)
		return nil, i18n.ErrUnauthorized
	}
	clientID, scopes, err := g.cfg.Tokens.Validate(ctx, tok)
	if err != nil || clientID == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dgov-exchange", error="invalid_token"`)
		return nil, i18n.ErrUnauthorized.Wrap(err)
	}
	c := &call{clientID: clientID, resourceID: r.PathValue("resource"), at: g.s.clock(), requestID: httpx.RequestID(ctx),
		ip: httpx.ClientIPFrom(ctx)}
	if c.requestID == "" {
		c.requestID = db.NewID()
	}
	if !slices.Contains(scopes, g.cfg.Scope) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dgov-exchange", error="insufficient_scope", scope="`+g.cfg.Scope+`"`)
		return nil, g.deny(ctx, c, ErrScope)
	}
	return c, nil
}

// begin authenticates the client, requires a purpose, finds the grant and checks the items
// asked for and the rate. Refusals of an identified client are audited.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request) (*call, error) {
	ctx := r.Context()
	c, err := g.authenticate(w, r)
	if err != nil {
		return nil, err
	}
	if c.purpose, err = purposeOf(r); err != nil {
		return nil, err
	}
	c.grant, err = liveGrant(ctx, g.s.d, c.clientID, c.resourceID)
	if isNoRow(err) || (err == nil && !c.grant.Live(c.at)) {
		return nil, g.deny(ctx, c, ErrNoGrant)
	}
	if err != nil {
		return nil, fmt.Errorf("read grant: %w", err)
	}
	c.binding, err = getBinding(ctx, g.s.d, c.resourceID)
	if isNoRow(err) {
		return nil, ErrNotAttached
	}
	if err != nil {
		return nil, fmt.Errorf("read binding: %w", err)
	}
	c.fields = c.grant.Fields
	if fs := r.URL.Query().Get("fields"); fs != "" {
		var asked []string
		for f := range strings.SplitSeq(fs, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if !slices.Contains(c.grant.Fields, f) {
				// Refused rather than silently dropped: the consumer learns its grant is narrower.
				e := ErrFieldNotGranted.Wrap(fmt.Errorf("field %q", f))
				e.Msg = i18n.T(fmt.Sprintf("信息项“%s”不在共享授权范围内", clip(f)), fmt.Sprintf("data item %q is outside the grant", clip(f)))
				return nil, g.deny(ctx, c, e)
			}
			asked = append(asked, f)
		}
		if len(asked) > 0 {
			c.fields = slices.DeleteFunc(slices.Clone(c.grant.Fields), func(f string) bool { return !slices.Contains(asked, f) })
		}
	}
	if !g.allow(c.grant, c.at) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, 60/c.grant.RatePerMinute)))
		return nil, g.deny(ctx, c, ErrRateLimited)
	}
	if c.version, err = g.s.data.Active(ctx, c.binding.DatasetID); err != nil {
		return nil, err
	}
	return c, nil
}

// allow takes a token from the grant's bucket (per node: a cluster of N nodes allows up to N
// times the rate; the daily quota is shared through the database).
func (g *Gateway) allow(gr Grant, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.limiters[gr.ID]
	if l == nil || l.perMinute != gr.RatePerMinute {
		l = &limiter{perMinute: gr.RatePerMinute,
			l: rate.NewLimiter(rate.Every(time.Minute/time.Duration(gr.RatePerMinute)), gr.RatePerMinute)}
		g.limiters[gr.ID] = l
	}
	return l.l.AllowN(now, 1)
}

// deny audits a refusal of an identified client and returns err.
func (g *Gateway) deny(ctx context.Context, c *call, err *i18n.Error) error {
	return g.s.denyCall(ctx, c, err)
}

func (s *Service) denyCall(ctx context.Context, c *call, err *i18n.Error) error {
	aerr := s.d.InTx(ctx, func(tx *db.Tx) error {
		_, err := s.audit.AppendTx(ctx, tx, c.auditEntry(ActionCall, audit.OutcomeDenied,
			map[string]any{"code": err.Code, "purpose": c.purpose, "grant_id": c.grant.ID}))
		return err
	})
	if aerr != nil {
		return fmt.Errorf("audit refused call: %w", aerr)
	}
	return err
}

// auditEntry is an audit entry of the call's client about its resource.
func (c *call) auditEntry(action, outcome string, detail map[string]any) audit.Entry {
	return audit.Entry{Actor: "client:" + c.clientID, ActorDivision: c.grant.ConsumerDivision, Action: action,
		Object: "catalog_resource:" + c.resourceID, Outcome: outcome, IP: c.ip, RequestID: c.requestID, Detail: detail}
}

// inScope reports whether a row may leave under the grant's row scope (the rule of
// dataset.QueryOptions.Within, which selects the rows of queries and extracts).
func (c *call) inScope(row dataset.Row) bool {
	if c.grant.RowScope == "" || c.binding.DivisionColumn == "" {
		return true
	}
	return dataset.InScope(c.grant.RowScope, row.Values[c.binding.DivisionColumn])
}

// selection is what the call may read: the filter, within the grant's row scope, each row
// attributed to its resident.
func (g *Gateway) selection(c *call, filter map[string]string) dataset.QueryOptions {
	q := dataset.QueryOptions{Filter: filter, Subject: g.s.ResidentIndex, MaxScan: g.cfg.MaxScanRows}
	if c.grant.RowScope != "" && c.binding.DivisionColumn != "" {
		q.Within, q.WithinColumn = c.grant.RowScope, c.binding.DivisionColumn
	}
	return q
}

// project keeps the call's fields of a row.
func (c *call) project(row dataset.Row) map[string]string {
	out := make(map[string]string, len(c.fields))
	for _, f := range c.fields {
		if v, ok := row.Values[f]; ok {
			out[f] = v
		}
	}
	return out
}

func (c *call) column(name string) (dataset.Column, bool) {
	for _, col := range c.version.Schema.Columns {
		if col.Name == name {
			return col, true
		}
	}
	return dataset.Column{}, false
}

// LookupResult is the body of a lookup.
type LookupResult struct {
	Resource string            `json:"resource"`
	Fields   []string          `json:"fields"`
	Record   map[string]string `json:"record"`
}

func (g *Gateway) lookup(w http.ResponseWriter, r *http.Request) {
	c, err := g.begin(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	key := r.PathValue("key")
	if r.Method == http.MethodPost {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		var in struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(raw, &in); err != nil || in.Key == "" {
			httpx.WriteError(w, r, invalid("key", "exchange.key", "请求体须为 {\"key\": \"…\"}", `the body must be {"key": "…"}`))
			return
		}
		key, c.bodySM3 = in.Key, sm3Hex(raw)
	}
	keyCol, ok := c.column(c.version.Schema.Key)
	if !ok {
		httpx.WriteError(w, r, dataset.ErrNoKey)
		return
	}
	row, err := g.s.data.Lookup(r.Context(), c.binding.DatasetID, key)
	found := err == nil
	if err != nil && !errors.Is(err, i18n.ErrNotFound) {
		httpx.WriteError(w, r, err)
		return
	}
	// A row outside the scope is answered exactly as a missing one.
	found = found && c.inScope(row)
	a := c.access("lookup")
	if keyCol.Type == dataset.ResidentID {
		k := key
		if found {
			k = row.Values[keyCol.Name]
		}
		a.SubjectIdx = g.s.fc.BlindIndex(IndexResidentID, k)
	}
	if !found {
		if err := g.log(r.Context(), c, a); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	a.RowCount = 1
	g.answer(w, r, c, a, LookupResult{Resource: c.resourceID, Fields: c.fields, Record: c.project(row)})
}

// QueryResult is the body of a query.
type QueryResult struct {
	Resource string              `json:"resource"`
	Fields   []string            `json:"fields"`
	Rows     []map[string]string `json:"rows"`
	Limit    int                 `json:"limit"`
	Offset   int                 `json:"offset"`
	Count    int                 `json:"count"`
}

var reservedParams = map[string]bool{"fields": true, "limit": true, "offset": true, "lang": true, "format": true, "gzip": true}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, invalid(name, "exchange.param", "参数 %s 须为 %d 到 %d 之间的整数", "parameter %s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

func (g *Gateway) query(w http.ResponseWriter, r *http.Request) {
	c, err := g.begin(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	limit, err := intParam(q, "limit", 50, 1, dataset.MaxQueryLimit)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	offset, err := intParam(q, "offset", 0, 0, 1<<30)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	filter, err := g.filter(r.Context(), c, q)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	sel := g.selection(c, filter)
	sel.Limit, sel.Offset = limit, offset
	rows, err := g.s.data.Select(r.Context(), c.binding.DatasetID, sel)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	a := c.access("query")
	res := QueryResult{Resource: c.resourceID, Fields: c.fields, Rows: make([]map[string]string, 0, len(rows)), Limit: limit, Offset: offset}
	for _, row := range rows {
		if !c.inScope(row) { // the selection keeps the scope; this is the gateway's own check
			continue
		}
		res.Rows = append(res.Rows, c.project(row))
		// The resident's blind index, made by the dataset from the unmasked key: a query
		// returns the ID number masked, and the read is still theirs to see.
		if row.Subject != "" {
			a.Subjects = append(a.Subjects, row.Subject)
		}
	}
	res.Count, a.RowCount = len(res.Rows), len(res.Rows)
	g.answer(w, r, c, a, res)
}

// filter reads a query's (or an extract's) filters: every parameter that is not one of the
// call's own, each naming a granted item, with one value.
func (g *Gateway) filter(ctx context.Context, c *call, q url.Values) (map[string]string, error) {
	filter := map[string]string{}
	for k, vs := range q {
		if reservedParams[k] {
			continue
		}
		if !slices.Contains(c.grant.Fields, k) {
			// Filtering on an item outside the grant would reveal it.
			return nil, g.deny(ctx, c, ErrFieldNotGranted.WithField(k))
		}
		if len(vs) != 1 {
			return nil, invalid(k, "exchange.param", "每个查询条件只能给一个值", "give one value per filter")
		}
		filter[k] = vs[0]
	}
	return filter, nil
}

func (c *call) access(kind string) access {
	return access{ID: db.NewID(), RequestID: c.requestID, GrantID: c.grant.ID, ClientID: c.clientID, ResourceID: c.resourceID,
		ConsumerDept: c.grant.ConsumerDeptID, ConsumerDeptName: c.grant.ConsumerDeptName, Purpose: c.purpose, Kind: kind,
		Fields: c.fields, At: c.at}
}

// log counts the call against the daily quota and writes the access log and the audit entry,
// in one transaction: over quota, nothing is written and nothing leaves.
func (g *Gateway) log(ctx context.Context, c *call, a access) error {
	name, err := g.s.resourceName(ctx, c.grant.RequestID)
	if err != nil {
		return err
	}
	a.ResourceName = name
	day := c.at.In(calendar.Beijing).Format(time.DateOnly)
	var over bool
	err = g.s.d.InTx(ctx, func(tx *db.Tx) error {
		n, err := countCall(ctx, tx, c.grant.ID, day)
		if err != nil {
			return fmt.Errorf("count call: %w", err)
		}
		if n > int64(c.grant.DailyQuota) {
			over = true
			return ErrQuotaExceeded
		}
		if err := insertAccess(ctx, tx, a); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		_, err = g.s.audit.AppendTx(ctx, tx, c.auditEntry(ActionCall, audit.OutcomeOK,
			map[string]any{"access_id": a.ID, "grant_id": c.grant.ID, "consumer_dept": c.grant.ConsumerDeptID,
				"client": c.clientID, "purpose": c.purpose, "resource": c.resourceID, "fields": a.Fields,
				"kind": a.Kind, "row_count": a.RowCount}))
		return err
	})
	if over {
		return g.deny(ctx, c, ErrQuotaExceeded)
	}
	return err
}

// resourceName is the resource's name as the grant's request recorded it.
func (s *Service) resourceName(ctx context.Context, requestID string) (string, error) {
	var name string
	if err := s.d.QueryRow(ctx, `SELECT resource_name FROM exchange_requests WHERE id = ?`, requestID).Scan(&name); err != nil {
		return "", fmt.Errorf("resource name: %w", err)
	}
	return name, nil
}

// answer logs the call, then sends the body with its signed receipt.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, c *call, a access, v any) {
	if err := g.log(r.Context(), c, a); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	body, err := json.Marshal(v)
	if err != nil {
		httpx.WriteError(w, r, fmt.Errorf("encode answer: %w", err))
		return
	}
	rc := Receipt{RequestID: c.requestID, Method: r.Method, Target: canonicalTarget(r.URL), ClientID: c.clientID,
		Purpose: c.purpose, Resource: c.resourceID, GrantID: c.grant.ID, BodySM3: c.bodySM3, Fields: c.fields, RowCount: a.RowCount, At: c.at}
	if err := rc.sign(g.cfg.Signer, body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	h := w.Header()
	h.Set(ReceiptHeader, rc.Encode())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// canonicalTarget is the escaped path and the query sorted by key (url.Values.Encode).
func canonicalTarget(u *url.URL) string {
	t := u.EscapedPath()
	if q := u.Query().Encode(); q != "" {
		t += "?" + q
	}
	return t
}

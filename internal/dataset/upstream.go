package dataset

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Upstream is a dataset served from the providing department's own API instead of rows
// loaded here (D2: "or served from a registered upstream API"). The node asks it on every
// lookup and query and checks each answer against the declared schema as a load checks a
// file, so what leaves the exchange is typed, filtered, scoped, audited and signed exactly as
// for stored rows.
//
// The upstream speaks plain HTTP with JSON:
//
//	GET {BaseURL}{LookupPath, "{key}" = the normalised key, path-escaped}
//	    200: one JSON object, the record (or {"record": {…}} / {"data": {…}}); 404: no such record
//	GET {BaseURL}{QueryPath}?{field}={value}&…&limit={n}&offset={m}
//	    200: a JSON array of records (or {"rows"|"records"|"data": […]}), at most n, matching every filter
//
// A record's members are strings, numbers, booleans or null, named as the schema's columns
// or as Fields maps them. The auth header, if any, is sent with every call; its secret is
// sealed at rest (SM4) and never shown again.
type Upstream struct {
	BaseURL    string `json:"base_url"`    // http(s)://host[:port][/path], no query
	LookupPath string `json:"lookup_path"` // default "/records/{key}"
	QueryPath  string `json:"query_path"`  // default "/records"
	AuthHeader string `json:"auth_header,omitempty"`
	// Secret is the auth header's value. On registration, empty keeps the secret of the
	// previous registration when the header is the same. Never returned.
	Secret    string        `json:"-"`
	HasSecret bool          `json:"has_secret"`
	Timeout   time.Duration `json:"timeout"` // per call; default 5 s, 100 ms – 60 s
	// Fields maps schema columns to the upstream's member names where they differ.
	Fields map[string]string `json:"fields,omitempty"`
}

// UpstreamAPI is the Format of a version served from an Upstream (it holds no rows).
const UpstreamAPI Format = "upstream"

// Limits of upstream calls.
const (
	DefaultUpstreamTimeout = 5 * time.Second
	MaxUpstreamTimeout     = time.Minute
	// MaxUpstreamBody bounds one answer; a page of MaxQueryLimit records fits easily.
	MaxUpstreamBody = 32 << 20
)

// Errors of upstream datasets. Whatever the upstream did, the consumer gets one of these,
// never its raw text (the cause is logged).
var (
	ErrUpstream = &i18n.Error{Code: "dataset.upstream", Status: http.StatusBadGateway,
		Msg: i18n.T("提供部门的数据接口调用失败", "the providing department's data service failed")}
	ErrUpstreamTimeout = &i18n.Error{Code: "dataset.upstream_timeout", Status: http.StatusGatewayTimeout,
		Msg: i18n.T("提供部门的数据接口响应超时", "the providing department's data service did not answer in time")}
	ErrUpstreamInvalid = &i18n.Error{Code: "dataset.upstream_invalid", Status: http.StatusBadGateway,
		Msg: i18n.T("提供部门的数据接口返回的数据与数据集模式不符", "the providing department's data service answered with data that does not match the dataset schema")}
	ErrUpstreamConfig = i18n.New("dataset.upstream_config", "上游数据接口的登记信息无效", "invalid upstream registration")
	// ErrUpstreamWalk: the rows of an upstream dataset are not here to walk (quality checks, Each).
	ErrUpstreamWalk = &i18n.Error{Code: "dataset.upstream_walk", Status: http.StatusConflict,
		Msg: i18n.T("该数据集由提供部门的接口实时提供，本地没有可遍历的数据", "this dataset is served live from the provider's API; there are no rows here to walk")}
)

func upstreamConfigErr(field, zh, en string, args ...any) error {
	return i18n.Errorf(http.StatusBadRequest, ErrUpstreamConfig.Code, zh, en, args...).WithField(field)
}

var headerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// forbiddenHeaders are set by the HTTP client itself.
var forbiddenHeaders = map[string]bool{"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"accept": true, "accept-encoding": true, "user-agent": true}

// check validates and normalises a registration against the schema.
func (u *Upstream) check(schema Schema) error {
	b, err := url.Parse(strings.TrimSpace(u.BaseURL))
	switch {
	case err != nil || (b.Scheme != "http" && b.Scheme != "https") || b.Host == "":
		return upstreamConfigErr("base_url", "接口地址须为 http:// 或 https:// 开头的完整地址", "the base URL must be a full http:// or https:// URL")
	case b.User != nil || b.RawQuery != "" || b.Fragment != "":
		return upstreamConfigErr("base_url", "接口地址不能含用户信息、查询参数或片段", "the base URL may not carry user info, a query or a fragment")
	}
	b.Path = strings.TrimSuffix(b.Path, "/")
	b.RawPath = ""
	u.BaseURL = b.String()
	if u.LookupPath == "" {
		u.LookupPath = "/records/{key}"
	}
	if u.QueryPath == "" {
		u.QueryPath = "/records"
	}
	if !strings.HasPrefix(u.LookupPath, "/") || strings.Count(u.LookupPath, "{key}") != 1 || strings.ContainsAny(u.LookupPath, "?# ") {
		return upstreamConfigErr("lookup_path", "按键查询路径须以“/”开头，且恰好含一个 {key}", "the lookup path must start with '/' and hold {key} exactly once")
	}
	if !strings.HasPrefix(u.QueryPath, "/") || strings.ContainsAny(u.QueryPath, "?# {}") {
		return upstreamConfigErr("query_path", "查询路径须以“/”开头，不能含查询参数", "the query path must start with '/' and carry no query")
	}
	u.AuthHeader = strings.TrimSpace(u.AuthHeader)
	if u.AuthHeader != "" && (!headerName.MatchString(u.AuthHeader) || forbiddenHeaders[strings.ToLower(u.AuthHeader)]) {
		return upstreamConfigErr("auth_header", "认证请求头名称无效", "invalid auth header name")
	}
	if len(u.Secret) > 4096 || strings.IndexFunc(u.Secret, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return upstreamConfigErr("secret", "认证密钥过长或含控制字符", "the secret is too long or holds control characters")
	}
	if u.Secret != "" && u.AuthHeader == "" {
		return upstreamConfigErr("auth_header", "给出密钥时须指定认证请求头", "name the auth header the secret is sent in")
	}
	switch {
	case u.Timeout == 0:
		u.Timeout = DefaultUpstreamTimeout
	case u.Timeout < 100*time.Millisecond || u.Timeout > MaxUpstreamTimeout:
		return upstreamConfigErr("timeout", "超时须在 100 毫秒到 60 秒之间", "the timeout must be from 100 ms to 60 s")
	}
	seen := map[string]bool{}
	for col, name := range u.Fields {
		if schema.column(col) < 0 {
			return upstreamConfigErr("fields", "字段映射中的列“%s”不在数据集模式中", "mapped column %q is not in the schema", clip(col))
		}
		if name == "" || utf8.RuneCountInString(name) > 128 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return upstreamConfigErr("fields", "列“%s”映射的接口字段名无效", "the upstream name mapped to column %q is invalid", clip(col))
		}
		if seen[name] {
			return upstreamConfigErr("fields", "接口字段“%s”被映射了两次", "upstream field %q is mapped twice", clip(name))
		}
		seen[name] = true
	}
	for _, c := range schema.Columns {
		if _, mapped := u.Fields[c.Name]; !mapped && seen[c.Name] {
			return upstreamConfigErr("fields", "接口字段“%s”既是映射目标又是未映射的列名", "upstream field %q is both a mapping target and an unmapped column", clip(c.Name))
		}
	}
	return nil
}

// remote is the upstream name of column col.
func (u *Upstream) remote(col string) string {
	if n, ok := u.Fields[col]; ok {
		return n
	}
	return col
}

func upstreamAAD(id string, version int) string {
	return "dataset-upstream:" + id + ":" + strconv.Itoa(version)
}

// RegisterUpstream makes the dataset served from up, with schema, from now on: a new active
// version (format "upstream", no rows) supersedes the current one. Like a load it takes no
// acting subject: the caller authorizes and audits.
func (s *Service) RegisterUpstream(ctx context.Context, datasetID string, schema Schema, up Upstream) (Version, error) {
	if err := checkID(datasetID); err != nil {
		return Version{}, err
	}
	if err := schema.Validate(); err != nil {
		return Version{}, err
	}
	if err := up.check(schema); err != nil {
		return Version{}, err
	}
	fields, _ := json.Marshal(up.Fields) // strings only: cannot fail
	if up.Fields == nil {
		fields = []byte("{}")
	}
	now := s.clock()
	var version int
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		var loading int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM dataset_versions WHERE dataset_id = ? AND status = 'loading' AND heartbeat_at > ?`,
			datasetID, now.Add(-s.staleAfter)).Scan(&loading); err != nil {
			return err
		}
		if loading > 0 {
			return ErrLoadInProgress
		}
		secret := up.Secret
		if secret == "" && up.AuthHeader != "" {
			// Keep the previous secret when only other settings change.
			prev, sealed, pv, err := s.activeUpstream(ctx, tx, datasetID)
			if err == nil && prev.AuthHeader == up.AuthHeader && len(sealed) > 0 {
				if secret, err = s.fc.Open(sealed, upstreamAAD(datasetID, pv)); err != nil {
					return ErrCorrupt.Wrap(err)
				}
			}
			if secret == "" {
				return upstreamConfigErr("secret", "请填写认证密钥", "give the secret of the auth header")
			}
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset_id = ?`, datasetID).Scan(&version); err != nil {
			return err
		}
		var sealed []byte
		if secret != "" {
			var err error
			if sealed, err = s.fc.Seal(secret, upstreamAAD(datasetID, version)); err != nil {
				return fmt.Errorf("seal upstream secret: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE dataset_versions SET status = 'superseded' WHERE dataset_id = ? AND status = 'active'`, datasetID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO dataset_versions (dataset_id, version, status, schema_json, source_name, format, started_at, heartbeat_at, finished_at)
			VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?)`, datasetID, version, schema.marshal(), clip(up.BaseURL), string(UpstreamAPI), now, now, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO dataset_upstreams (dataset_id, version, base_url, lookup_path, query_path, auth_header, secret, timeout_ms, fields)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, datasetID, version, up.BaseURL, up.LookupPath, up.QueryPath, up.AuthHeader, sealed,
			up.Timeout.Milliseconds(), string(fields))
		return err
	})
	if db.IsUniqueViolation(err) { // a load began meanwhile (PostgreSQL)
		return Version{}, ErrLoadInProgress
	}
	if err != nil {
		return Version{}, internal("register upstream", err)
	}
	_ = s.cleanup(context.WithoutCancel(ctx), datasetID)
	return s.Version(ctx, datasetID, version)
}

// activeUpstream reads the registration of the active version, if it is an upstream one.
func (s *Service) activeUpstream(ctx context.Context, q db.Querier, id string) (Upstream, []byte, int, error) {
	var u Upstream
	var sealed []byte
	var version int
	var ms int64
	var fields string
	err := q.QueryRow(ctx, `SELECT u.version, u.base_url, u.lookup_path, u.query_path, u.auth_header, u.secret, u.timeout_ms, u.fields
		FROM dataset_upstreams u JOIN dataset_versions v ON v.dataset_id = u.dataset_id AND v.version = u.version
		WHERE u.dataset_id = ? AND v.status = 'active'`, id).
		Scan(&version, &u.BaseURL, &u.LookupPath, &u.QueryPath, &u.AuthHeader, &sealed, &ms, &fields)
	if err != nil {
		return u, nil, 0, err
	}
	u.Timeout, u.HasSecret = time.Duration(ms)*time.Millisecond, len(sealed) > 0
	if err := json.Unmarshal([]byte(fields), &u.Fields); err != nil {
		return u, nil, 0, ErrCorrupt.Wrap(err)
	}
	return u, sealed, version, nil
}

// Upstream returns the registration serving the dataset's active version, without its
// secret; i18n.ErrNotFound when the active version is stored rows.
func (s *Service) Upstream(ctx context.Context, datasetID string) (Upstream, error) {
	if err := checkID(datasetID); err != nil {
		return Upstream{}, err
	}
	u, _, _, err := s.activeUpstream(ctx, s.d, datasetID)
	if errors.Is(err, sql.ErrNoRows) {
		return Upstream{}, i18n.ErrNotFound
	}
	if err != nil {
		return Upstream{}, internal("read upstream", err)
	}
	return u, nil
}

// upstreamOf reads the registration of version v, with its secret opened.
func (s *Service) upstreamOf(ctx context.Context, v Version) (Upstream, error) {
	var u Upstream
	var sealed []byte
	var ms int64
	var fields string
	err := s.d.QueryRow(ctx, `SELECT base_url, lookup_path, query_path, auth_header, secret, timeout_ms, fields
		FROM dataset_upstreams WHERE dataset_id = ? AND version = ?`, v.DatasetID, v.Version).
		Scan(&u.BaseURL, &u.LookupPath, &u.QueryPath, &u.AuthHeader, &sealed, &ms, &fields)
	if err != nil {
		return u, internal("read upstream", err)
	}
	u.Timeout = time.Duration(ms) * time.Millisecond
	if err := json.Unmarshal([]byte(fields), &u.Fields); err != nil {
		return u, ErrCorrupt.Wrap(err)
	}
	if len(sealed) > 0 {
		if u.Secret, err = s.fc.Open(sealed, upstreamAAD(v.DatasetID, v.Version)); err != nil {
			return u, ErrCorrupt.Wrap(err)
		}
		u.HasSecret = true
	}
	return u, nil
}

// call GETs target from the upstream and returns the body of a 200 answer; found is false
// for a 404 (a lookup's "no such record").
func (s *Service) call(ctx context.Context, u Upstream, target string) (body []byte, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, u.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.BaseURL+target, nil)
	if err != nil {
		return nil, false, ErrUpstream.Wrap(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dgov-exchange")
	if u.AuthHeader != "" {
		req.Header.Set(u.AuthHeader, u.Secret)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, false, ErrUpstreamTimeout.Wrap(err)
		}
		return nil, false, ErrUpstream.Wrap(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, false, ErrUpstream.Wrap(fmt.Errorf("upstream %s answered %s", u.BaseURL, resp.Status))
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxUpstreamBody+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return nil, false, ErrUpstreamTimeout.Wrap(err)
		}
		return nil, false, ErrUpstream.Wrap(err)
	}
	if len(body) > MaxUpstreamBody {
		return nil, false, ErrUpstreamInvalid.Wrap(fmt.Errorf("upstream answer over %d bytes", MaxUpstreamBody))
	}
	return body, true, nil
}

// parseUpstream reads an upstream answer: one record (many false) or a list of them. Each
// record is a JSON object of scalar members.
func parseUpstream(body []byte, many bool) ([]map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, ErrUpstreamInvalid.Wrap(err)
	}
	if dec.More() {
		return nil, ErrUpstreamInvalid.Wrap(errors.New("data after the JSON value"))
	}
	if obj, ok := top.(map[string]any); ok && len(obj) == 1 {
		for _, wrap := range []string{"rows", "records", "data", "record"} {
			inner, ok := obj[wrap]
			if !ok {
				continue
			}
			_, isList := inner.([]any)
			_, isObj := inner.(map[string]any)
			if (many && isList) || (!many && isObj) {
				top = inner
			}
		}
	}
	var list []any
	if many {
		l, ok := top.([]any)
		if !ok {
			return nil, ErrUpstreamInvalid.Wrap(errors.New("the answer to a query is not a list"))
		}
		list = l
	} else {
		list = []any{top}
	}
	out := make([]map[string]any, 0, len(list))
	for _, it := range list {
		rec, ok := it.(map[string]any)
		if !ok {
			return nil, ErrUpstreamInvalid.Wrap(errors.New("a record is not a JSON object"))
		}
		out = append(out, rec)
	}
	return out, nil
}

// upstreamValues checks one upstream record against the schema as a load checks a row, and
// returns its values (normalised, empty ones absent). The error names the column, never
// the value.
func (n normalizer) upstreamValues(schema Schema, u *Upstream, rec map[string]any) (map[string]string, error) {
	vals := make(map[string]string, len(schema.Columns))
	for i := range schema.Columns {
		c := &schema.Columns[i]
		raw := ""
		switch x := rec[u.remote(c.Name)].(type) {
		case nil:
		case string:
			raw = x
		case json.Number:
			raw = x.String()
		case bool:
			raw = strconv.FormatBool(x)
		default:
			return nil, upstreamInvalid(c.Name, "不是标量值", "is not a scalar value")
		}
		v, err := n.value(c, raw)
		if err != nil {
			return nil, upstreamInvalid(c.Name, err.Msg.ZH, err.Msg.EN)
		}
		if v != "" {
			vals[c.Name] = v
		}
	}
	return vals, nil
}

func upstreamInvalid(col, zh, en string) error {
	return &i18n.Error{Code: ErrUpstreamInvalid.Code, Status: ErrUpstreamInvalid.Status, Field: col, Msg: i18n.T(
		fmt.Sprintf("提供部门的数据接口返回的“%s”不符合数据集模式：%s", clip(col), zh),
		fmt.Sprintf("the providing department's data service answered a %q that does not match the dataset schema: %s", clip(col), en))}
}

// upstreamLookup asks the upstream for the record with key norm (normalised).
func (s *Service) upstreamLookup(ctx context.Context, v Version, keyCol *Column, norm string) (Row, error) {
	u, err := s.upstreamOf(ctx, v)
	if err != nil {
		return Row{}, err
	}
	body, found, err := s.call(ctx, u, strings.Replace(u.LookupPath, "{key}", url.PathEscape(norm), 1))
	if err != nil {
		return Row{}, err
	}
	if !found {
		return Row{}, i18n.ErrNotFound
	}
	recs, err := parseUpstream(body, false)
	if err != nil {
		return Row{}, err
	}
	vals, err := normalizer{now: s.now}.upstreamValues(v.Schema, &u, recs[0])
	if err != nil {
		return Row{}, err
	}
	if vals[keyCol.Name] != norm {
		// An answer about someone else must not leave under this key.
		return Row{}, upstreamInvalid(keyCol.Name, "与查询的键不一致", "differs from the key asked for")
	}
	return Row{No: 1, Values: vals}, nil
}

// upstreamPage asks the upstream for one page of rows matching sel's filter, checked and
// numbered from offset+1, unmasked.
func (s *Service) upstreamPage(ctx context.Context, v Version, u *Upstream, sel *selection, limit, offset int) ([]Row, error) {
	q := url.Values{}
	names := make([]string, 0, len(sel.filter))
	for n := range sel.filter {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		q.Set(u.remote(n), sel.filter[n])
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("offset", strconv.Itoa(offset))
	body, found, err := s.call(ctx, *u, u.QueryPath+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrUpstream.Wrap(errors.New("the query path answered 404"))
	}
	recs, err := parseUpstream(body, true)
	if err != nil {
		return nil, err
	}
	if len(recs) > limit {
		return nil, ErrUpstreamInvalid.Wrap(fmt.Errorf("%d records for a limit of %d", len(recs), limit))
	}
	norm := normalizer{now: s.now}
	out := make([]Row, 0, len(recs))
	for i, rec := range recs {
		vals, err := norm.upstreamValues(v.Schema, u, rec)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if vals[n] != sel.filter[n] {
				// The upstream ignored a filter: its rows cannot be trusted to be the ones asked for.
				return nil, upstreamInvalid(n, "与查询条件不符", "does not match the filter")
			}
		}
		out = append(out, Row{No: int64(offset + i + 1), Values: vals})
	}
	return out, nil
}

// inScope reports whether an upstream row lies in sel's row scope.
func (sel *selection) inScope(r Row) bool {
	return sel.within == "" || divisionWithin(r.Values[sel.divCol], sel.lo)
}

// upstreamSelect is Select for an upstream dataset. A row scope cannot be asked of the
// upstream: pages are read and kept within the scope until this page is full, reading at
// most sel.maxScan rows (offset counts rows within the scope).
func (s *Service) upstreamSelect(ctx context.Context, v Version, sel *selection, limit, offset int) ([]Row, error) {
	u, err := s.upstreamOf(ctx, v)
	if err != nil {
		return nil, err
	}
	if sel.within == "" {
		rows, err := s.upstreamPage(ctx, v, &u, sel, limit, offset)
		for i := range rows {
			s.finish(v, sel, &rows[i])
		}
		return rows, err
	}
	out := []Row{}
	skip := offset
	err = s.upstreamPages(ctx, v, &u, sel, func(r Row) error {
		if skip > 0 {
			skip--
			return nil
		}
		out = append(out, r)
		if len(out) == limit {
			return ErrStop
		}
		return nil
	})
	return out, err
}

// upstreamScan is Scan for an upstream dataset.
func (s *Service) upstreamScan(ctx context.Context, v Version, sel *selection, fn func(Row) error) error {
	u, err := s.upstreamOf(ctx, v)
	if err != nil {
		return err
	}
	return s.upstreamPages(ctx, v, &u, sel, fn)
}

// upstreamPages reads the upstream's pages in order and calls fn with the rows in sel's
// scope, finished (masked, Subject set), until the upstream runs out or fn returns ErrStop;
// reading more than sel.maxScan rows fails with ErrScanTooLarge.
func (s *Service) upstreamPages(ctx context.Context, v Version, u *Upstream, sel *selection, fn func(Row) error) error {
	for read := 0; ; {
		page, err := s.upstreamPage(ctx, v, u, sel, MaxQueryLimit, read)
		if err != nil {
			return err
		}
		read += len(page)
		for _, r := range page {
			if !sel.inScope(r) {
				continue
			}
			s.finish(v, sel, &r)
			if err := fn(r); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		if len(page) < MaxQueryLimit {
			return nil
		}
		if read >= sel.maxScan {
			return ErrScanTooLarge
		}
	}
}

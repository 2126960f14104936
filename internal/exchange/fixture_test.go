package exchange_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/platform/jobs"
)

var sources = []db.Source{crypto.Migrations, audit.Migrations, org.Migrations, bus.Migrations, catalog.Migrations,
	dataset.Migrations, idp.Migrations, exchange.Migrations}

// t0 is Friday 24 January 2025, 10:00 in Beijing: the Spring Festival span (28 Jan – 4 Feb,
// with 26 Jan and 8 Feb worked) lies within the next ten working days.
var t0 = time.Date(2025, 1, 24, 10, 0, 0, 0, calendar.Beijing)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func birth(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// Residents of the population dataset: division of the row, and the ID numbers.
var (
	zhang = ids.MakeResident("140105", birth(1985, 6, 15), 123, true)  // 小店区
	li    = ids.MakeResident("140106", birth(1992, 11, 3), 46, false)  // 迎泽区
	wang  = ids.MakeResident("140202", birth(1960, 1, 30), 311, true)  // 大同
	zhao  = ids.MakeResident("140105", birth(2001, 2, 28), 998, false) // a 小店区 township
)

var population = dataset.Schema{
	Key: "身份证号",
	Columns: []dataset.Column{
		{Name: "身份证号", Type: dataset.ResidentID, Sensitive: true},
		{Name: "姓名", Type: dataset.String, Required: true},
		{Name: "住址", Type: dataset.String},
		{Name: "区划", Type: dataset.Division, Required: true},
	},
}

var populationCSV = "身份证号,姓名,住址,区划\n" +
	zhang + ",张伟,坞城路92号,140105\n" +
	li + ",李娜,迎泽大街1号,140106\n" +
	wang + ",王建国,大同御河西路8号,140202\n" +
	zhao + ",赵敏,亲贤北街3号,140105001\n"

// noUsers: service tokens carry no user; the provider never asks for one in these tests.
type noUsers struct{}

func (noUsers) Claims(context.Context, string, string) (idp.UserClaims, error) {
	return idp.UserClaims{}, errors.New("no users in the exchange tests")
}

// introspector validates bearer tokens the way a resource server does: RFC 7662 introspection
// at the real provider, authenticated as the gateway's own service client.
type introspector struct {
	url, id, secret string
}

func (v introspector) Validate(ctx context.Context, token string) (string, []string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, v.url, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(v.id), url.QueryEscape(v.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	var in struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK || !in.Active {
		return "", nil, errors.New("token inactive")
	}
	return in.ClientID, strings.Fields(in.Scope), nil
}

type fixture struct {
	t     testing.TB
	ctx   context.Context
	d     *db.DB
	clock *clock
	keys  *crypto.Keyring
	log   *audit.Log
	org   *org.Service
	cat   *catalog.Service
	data  *dataset.Service
	svc   *exchange.Service
	idp   *idp.Provider
	gw    *exchange.Gateway
	srv   *httptest.Server
	blobs blob.Store
	ext   *exchange.Extracts
	queue *jobs.Queue               // started by startQueue
	dept  map[string]org.Department // "division/code"

	sys                                      authz.Subject
	gaOfficer, gaAdmin                       authz.Subject // 山西省公安厅: the provider
	tyRS, tyRSAdmin, xdRS, xdRSAdmin, provRS authz.Subject // 人社 at 太原, 小店区 and the province
}

func staff(id, division, dept string, roles ...authz.Role) authz.Subject {
	return authz.Subject{Kind: authz.Staff, ID: id, Name: id, Division: division, Dept: dept, Roles: roles}
}

func newFixture(t testing.TB, d *db.DB, opts exchange.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), d: d, clock: &clock{t: t0}, dept: map[string]org.Department{}}
	var err error
	if f.keys, err = crypto.Open(f.ctx, d, bytes.Repeat([]byte{5}, crypto.MasterKeySize), time.Now); err != nil {
		t.Fatal(err)
	}
	f.log = audit.New(d, f.keys, f.clock.now, audit.Options{})
	policy := authz.NewPolicy(divisions.Contains)
	catalog.RegisterPermissions(policy)
	exchange.RegisterPermissions(policy)
	f.org = org.New(d, policy, org.Options{Argon: org.ArgonParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if _, err := f.org.SyncDivisions(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.sys = staff("sys", "140000", "", authz.RoleSysAdmin)
	for _, dc := range [][2]string{{"140000", "ga"}, {"140000", "rs"}, {"140100", "rs"}, {"140105", "rs"}} {
		div, _ := divisions.Lookup(dc[0])
		name := div.Name + dc[1]
		for _, k := range org.DepartmentKinds {
			if k.Code == dc[1] {
				name = k.NameIn(div)
			}
		}
		dep, err := f.org.CreateDepartment(f.ctx, f.sys, org.DepartmentInput{DivisionCode: dc[0], Code: dc[1], Name: name})
		if err != nil {
			t.Fatalf("create department %v: %v", dc, err)
		}
		f.dept[dc[0]+"/"+dc[1]] = dep
	}
	f.gaOfficer = staff("ga_officer", "140000", f.dept["140000/ga"].ID, authz.RoleOfficer)
	f.gaAdmin = staff("ga_admin", "140000", f.dept["140000/ga"].ID, authz.RoleOrgAdmin)
	f.tyRS = staff("ty_rs", "140100", f.dept["140100/rs"].ID, authz.RoleOfficer)
	f.tyRSAdmin = staff("ty_rs_admin", "140100", f.dept["140100/rs"].ID, authz.RoleOrgAdmin)
	f.xdRS = staff("xd_rs", "140105", f.dept["140105/rs"].ID, authz.RoleOfficer)
	f.xdRSAdmin = staff("xd_rs_admin", "140105", f.dept["140105/rs"].ID, authz.RoleOrgAdmin)
	f.provRS = staff("prov_rs", "140000", f.dept["140000/rs"].ID, authz.RoleOrgAdmin)

	f.cat = catalog.New(d, policy, f.org, catalog.Options{Now: f.clock.now})
	f.data = dataset.New(d, f.keys.FieldCipher(), dataset.Options{Now: f.clock.now})
	if _, err := f.data.Load(f.ctx, "population", population, dataset.Source{Name: "population.csv", Reader: strings.NewReader(populationCSV)}, dataset.LoadOptions{}); err != nil {
		t.Fatalf("load population: %v", err)
	}

	mux := http.NewServeMux()
	f.srv = httptest.NewServer(httpx.Chain(mux, httpx.AssignRequestID))
	t.Cleanup(f.srv.Close)
	f.idp, err = idp.New(idp.Config{DB: d, Fields: f.keys.FieldCipher(), Issuer: f.srv.URL + "/oidc", Users: noUsers{},
		LoginURL: func(id string) string { return "/login?authRequestID=" + id }, Policy: policy,
		CryptoKey: [32]byte{4, 5, 6}, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/oidc/", f.idp.Handler())
	gwClient, gwSecret, err := f.idp.RegisterClient(f.ctx, f.sys, idp.ClientInput{Name: "交换网关", Type: idp.ClientService})
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = f.clock.now
	opts.ClientOwner = func(ctx context.Context, id string) (string, error) {
		c, err := f.idp.Client(ctx, f.sys, id)
		return c.DepartmentID, err
	}
	f.svc = exchange.New(d, policy, f.cat, f.org, f.data, f.keys.FieldCipher(), f.log, opts)
	if f.blobs, err = blob.NewLocal(filepath.Join(t.TempDir(), "blobs")); err != nil {
		t.Fatal(err)
	}
	f.ext, err = exchange.NewExtracts(exchange.ExtractsConfig{Service: f.svc, Blobs: f.blobs, Signer: f.keys, Attempts: 1,
		Queue: func() exchange.JobQueue {
			if f.queue == nil {
				return nil
			}
			return f.queue
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.gw, err = exchange.NewGateway(exchange.GatewayConfig{Service: f.svc, Signer: f.keys, Extracts: f.ext,
		Tokens: introspector{url: f.srv.URL + "/oidc/oauth/introspect", id: gwClient.ID, secret: gwSecret}})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/api/v1/exchange/", f.gw)
	return f
}

// newQueue builds the real job queue (River) with the extract workers, not yet working: jobs
// inserted now wait for startQueue.
func (f *fixture) newQueue(t testing.TB) {
	t.Helper()
	if _, err := jobs.Migrate(f.ctx, f.d); err != nil {
		t.Fatal(err)
	}
	workers := jobs.NewWorkers()
	periodic := f.ext.RegisterJobs(workers, time.Hour)
	q, err := jobs.New(f.d, jobs.Config{Workers: workers, Periodic: periodic, PollInterval: 50 * time.Millisecond, Test: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.queue = q
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
		_ = q.Close()
	})
}

// startQueue starts the job queue (building it first if need be).
func (f *fixture) startQueue(t testing.TB) {
	t.Helper()
	if f.queue == nil {
		f.newQueue(t)
	}
	if err := f.queue.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
}

func must[T any](t testing.TB, what string) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// publish registers and publishes a population resource of the provincial 公安厅.
func (f *fixture) publish(name string, share catalog.ShareType, condition string) catalog.Resource {
	f.t.Helper()
	d := catalog.Draft{
		Name: name, ProviderDeptID: f.dept["140000/ga"].ID, Summary: name + "，包括姓名、公民身份号码和住址。",
		Classification: catalog.Classification{Class: catalog.ClassBase, Item: "01", Entry: "001"},
		Format:         catalog.FormatAPI,
		Items: []catalog.DataItem{
			{Name: "姓名", Type: catalog.TypeChar, Length: 50},
			{Name: "身份证号", Type: catalog.TypeChar, Length: 18, Sensitive: true},
			{Name: "住址", Type: catalog.TypeChar, Length: 200, Sensitive: true},
		},
		ShareType: share, ShareCondition: condition, OpenType: catalog.OpenNone, UpdateCycle: catalog.CycleDaily,
		Contact: catalog.Contact{Name: "李科长", Phone: "0351-1234567"},
	}
	r := must[catalog.Resource](f.t, "create")(f.cat.CreateDraft(f.ctx, f.gaOfficer, d))
	must[catalog.Resource](f.t, "submit")(f.cat.Submit(f.ctx, f.gaOfficer, r.ID))
	return must[catalog.Resource](f.t, "approve")(f.cat.Review(f.ctx, f.gaAdmin, r.ID, true, ""))
}

// consumer is a department's system: its OpenID client and a token source.
type consumer struct {
	client idp.Client
	cc     clientcredentials.Config
}

func (f *fixture) newConsumer(dept org.Department, scopes ...string) *consumer {
	f.t.Helper()
	if scopes == nil {
		scopes = []string{exchange.ScopeExchange}
	}
	c, secret, err := f.idp.RegisterClient(f.ctx, f.sys, idp.ClientInput{Name: dept.Name + "业务系统", Type: idp.ClientService,
		DepartmentID: dept.ID, DivisionCode: dept.DivisionCode, AllowedScopes: scopes})
	if err != nil {
		f.t.Fatal(err)
	}
	return &consumer{client: c, cc: clientcredentials.Config{ClientID: c.ID, ClientSecret: secret,
		TokenURL: f.srv.URL + "/oidc/oauth/token", Scopes: scopes}}
}

func (c *consumer) token(t testing.TB) string {
	t.Helper()
	tok, err := c.cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	return tok.AccessToken
}

type answer struct {
	status  int
	body    []byte
	receipt string
	problem struct {
		Code    string `json:"code"`
		TitleZH string `json:"title_zh"`
		TitleEN string `json:"title_en"`
	}
}

// call calls the gateway; purpose "" sends no purpose header.
func (f *fixture) call(t testing.TB, method, path, token, purpose string, body io.Reader) answer {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set(exchange.PurposeHeader, url.PathEscape(purpose))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	a.status = resp.StatusCode
	a.body, _ = io.ReadAll(resp.Body)
	a.receipt = resp.Header.Get(exchange.ReceiptHeader)
	if a.status >= 400 {
		_ = json.Unmarshal(a.body, &a.problem)
	}
	return a
}

func (f *fixture) publicKeyPEM(t testing.TB) string {
	t.Helper()
	for _, k := range f.keys.PublicKeys() {
		if k.Active {
			return k.PEM
		}
	}
	t.Fatal("no active key")
	return ""
}

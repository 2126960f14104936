package dataset_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// upstreamAPI is a providing department's own data service: records keyed by ID number,
// with its own field names (sfzh, xm, xzqh), behind an API key.
type upstreamAPI struct {
	mu      sync.Mutex
	records []map[string]any
	key     string
	// misbehaviour, switched on by the tests
	status      int           // answer this status to everything
	delay       time.Duration // answer this late
	ignoreQuery bool          // return every record whatever the filter
	wrongKey    bool          // a lookup answers someone else's record
	bad         any           // answer this body instead
	calls       []string
}

func (u *upstreamAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	delay := u.delay
	u.mu.Unlock()
	time.Sleep(delay)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, r.URL.RequestURI())
	if r.Header.Get("X-Api-Key") != u.key {
		http.Error(w, "no key", http.StatusUnauthorized)
		return
	}
	if u.status != 0 {
		http.Error(w, "database down: ORA-12541", u.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if u.bad != nil {
		_ = json.NewEncoder(w).Encode(u.bad)
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/api/people/"); ok {
		for i, rec := range u.records {
			if rec["sfzh"] == id {
				if u.wrongKey {
					rec = u.records[(i+1)%len(u.records)]
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"data": rec})
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	if r.URL.Path != "/api/people" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	offset, _ := strconv.Atoi(q.Get("offset"))
	var out []map[string]any
	for _, rec := range u.records {
		if !u.ignoreQuery {
			if x := q.Get("xm"); x != "" && rec["xm"] != x {
				continue
			}
			if x := q.Get("xb"); x != "" && rec["xb"] != x {
				continue
			}
		}
		out = append(out, rec)
	}
	out = out[min(offset, len(out)):]
	out = out[:min(limit, len(out))]
	_ = json.NewEncoder(w).Encode(map[string]any{"rows": out})
}

func (u *upstreamAPI) lastCall() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[len(u.calls)-1]
}

func (u *upstreamAPI) set(fn func()) { u.mu.Lock(); defer u.mu.Unlock(); fn() }

func upstreamFixture(t *testing.T, f *fixture, n int) (*upstreamAPI, *httptest.Server, []person) {
	t.Helper()
	_, ps := peopleCSV(n)
	api := &upstreamAPI{key: "k-123456"}
	for _, p := range ps {
		rec := map[string]any{"sfzh": p.id, "xm": p.name, "xb": p.sx, "xzqh": p.div}
		if p.div == "" {
			rec["xzqh"] = nil
		}
		api.records = append(api.records, rec)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return api, srv, ps
}

var peopleUpstream = dataset.Upstream{LookupPath: "/api/people/{key}", QueryPath: "/api/people", AuthHeader: "X-Api-Key",
	Secret: "k-123456", Timeout: 2 * time.Second, Fields: map[string]string{"身份证号": "sfzh", "姓名": "xm", "性别": "xb", "区划": "xzqh"}}

func wantCode(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok || e.Code != code || e.HTTPStatus() != status || e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Fatalf("%s: got %v, want a bilingual %d %s", what, err, status, code)
	}
	if strings.Contains(e.Msg.ZH+e.Msg.EN, "ORA-") {
		t.Fatalf("%s: the upstream's own text reached the message: %s", what, e.Msg)
	}
}

// A dataset served from the provider's API: lookups and queries are asked of it and its
// answers checked against the schema; a row scope reads its pages; its failures are clear
// 502 and 504 errors; the secret is sealed and kept across re-registration.
func TestUpstreamDataset(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		api, srv, ps := upstreamFixture(t, f, dataset.MaxQueryLimit+20)
		up := peopleUpstream
		up.BaseURL = srv.URL + "/"
		v, err := f.svc.RegisterUpstream(f.ctx, "people", people, up)
		if err != nil {
			t.Fatal(err)
		}
		if v.Format != dataset.UpstreamAPI || v.Status != dataset.Active || v.SourceName != srv.URL {
			t.Fatalf("version %+v", v)
		}
		got, err := f.svc.Upstream(f.ctx, "people")
		if err != nil || got.Secret != "" || !got.HasSecret || got.BaseURL != srv.URL || got.Fields["姓名"] != "xm" || got.Timeout != 2*time.Second {
			t.Fatalf("registration read back: %+v %v", got, err)
		}
		var sealed []byte
		if err := f.d.QueryRow(f.ctx, `SELECT secret FROM dataset_upstreams`).Scan(&sealed); err != nil || strings.Contains(string(sealed), "k-123456") {
			t.Fatalf("the secret is not sealed: %q %v", sealed, err)
		}

		// Lookup: full values, by the key's normalised form.
		p := ps[3]
		r, err := f.svc.Lookup(f.ctx, "people", strings.ToLower(p.id))
		if err != nil || r.Values["身份证号"] != p.id || r.Values["姓名"] != p.name || r.Values["区划"] != p.div {
			t.Fatalf("lookup: %+v %v", r, err)
		}
		if _, err := f.svc.Lookup(f.ctx, "people", zhang); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("a key the upstream does not know: %v", err)
		}
		// Query: filters go to the upstream under its names, values come back masked.
		rows, err := f.svc.Select(f.ctx, "people", dataset.QueryOptions{Filter: map[string]string{"姓名": p.name}, Subject: subjectOf})
		if err != nil || len(rows) != 1 || rows[0].Subject != subjectOf(p.id) || rows[0].Values["身份证号"] == p.id {
			t.Fatalf("query: %+v %v", rows, err)
		}
		if last := api.lastCall(); !strings.Contains(last, "xm=") || !strings.Contains(last, "limit=50") {
			t.Errorf("query sent as %s", last)
		}
		// A row scope reads pages and keeps the scope's rows; so does Scan.
		want := expect(ps, "140105", "")
		var scanned []dataset.Row
		if _, err := f.svc.Scan(f.ctx, "people", dataset.QueryOptions{Within: "140105", Subject: subjectOf}, func(r dataset.Row) error {
			scanned = append(scanned, r)
			return nil
		}); err != nil || len(scanned) != len(want) {
			t.Fatalf("scan within 140105: %d rows, want %d: %v", len(scanned), len(want), err)
		}
		for _, r := range scanned {
			if !dataset.InScope("140105", r.Values["区划"]) || !strings.HasPrefix(r.Subject, "subject:") {
				t.Fatalf("scanned %+v", r)
			}
		}
		page, err := f.svc.Select(f.ctx, "people", dataset.QueryOptions{Within: "140105", Limit: 5, Offset: 3})
		if err != nil || len(page) != 5 || page[0].Values["姓名"] != scanned[3].Values["姓名"] {
			t.Fatalf("a scoped page: %+v %v", page, err)
		}
		if _, err := f.svc.Select(f.ctx, "people", dataset.QueryOptions{Within: "140105", Limit: dataset.MaxQueryLimit, MaxScan: 10}); !errors.Is(err, dataset.ErrScanTooLarge) {
			t.Errorf("scan cap: %v", err)
		}
		if c, err := f.svc.Count(f.ctx, "people", dataset.QueryOptions{}); err != nil || c != -1 {
			t.Errorf("count of an upstream: %d %v", c, err)
		}
		if err := f.svc.Each(f.ctx, "people", v.Version, func(dataset.Row) error { return nil }); !errors.Is(err, dataset.ErrUpstreamWalk) {
			t.Errorf("each over an upstream: %v", err)
		}

		// Failures are the upstream's, said clearly, never in its own words.
		api.set(func() { api.status = http.StatusInternalServerError })
		_, err = f.svc.Lookup(f.ctx, "people", p.id)
		wantCode(t, "a failing upstream", err, "dataset.upstream", 502)
		api.set(func() { api.status, api.delay = 0, 300*time.Millisecond })
		slow := up
		slow.Secret, slow.Timeout = "", 100*time.Millisecond // the secret is kept
		if _, err := f.svc.RegisterUpstream(f.ctx, "people", people, slow); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Select(f.ctx, "people", dataset.QueryOptions{})
		wantCode(t, "a slow upstream", err, "dataset.upstream_timeout", 504)
		api.set(func() { api.delay = 0 })
		if _, err := f.svc.Lookup(f.ctx, "people", p.id); err != nil {
			t.Fatalf("the kept secret: %v", err)
		}
		for _, tc := range []struct {
			name string
			set  func()
		}{
			{"an ID number that fails its check digit", func() { api.bad = map[string]any{"data": map[string]any{"sfzh": p.id[:17] + "0", "xm": "x"}} }},
			{"a record that is not an object", func() { api.bad = []any{1, 2} }},
			{"a missing required value", func() { api.bad = map[string]any{"data": map[string]any{"sfzh": p.id}} }},
			{"a nested value", func() { api.bad = map[string]any{"data": map[string]any{"sfzh": p.id, "xm": []any{"a"}}} }},
			{"someone else's record", func() { api.wrongKey = true }},
		} {
			api.set(func() { api.bad, api.wrongKey = nil, false; tc.set() })
			_, err := f.svc.Lookup(f.ctx, "people", p.id)
			wantCode(t, tc.name, err, "dataset.upstream_invalid", 502)
		}
		api.set(func() { api.bad, api.wrongKey, api.ignoreQuery = nil, false, true })
		_, err = f.svc.Select(f.ctx, "people", dataset.QueryOptions{Filter: map[string]string{"姓名": p.name}})
		wantCode(t, "an upstream that ignores the filter", err, "dataset.upstream_invalid", 502)
		api.set(func() { api.ignoreQuery = false })
		dead := up
		dead.BaseURL = "http://127.0.0.1:1"
		if _, err := f.svc.RegisterUpstream(f.ctx, "people", people, dead); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Lookup(f.ctx, "people", p.id)
		wantCode(t, "an unreachable upstream", err, "dataset.upstream", 502)

		// Registrations are checked.
		for _, bad := range []func(*dataset.Upstream){
			func(u *dataset.Upstream) { u.BaseURL = "ftp://example.org" },
			func(u *dataset.Upstream) { u.BaseURL = "https://user:pw@example.org" },
			func(u *dataset.Upstream) { u.LookupPath = "/people" },
			func(u *dataset.Upstream) { u.QueryPath = "/people?x=1" },
			func(u *dataset.Upstream) { u.AuthHeader = "Host" },
			func(u *dataset.Upstream) { u.Secret = "a\r\nX-Evil: 1" },
			func(u *dataset.Upstream) { u.Timeout = time.Hour },
			func(u *dataset.Upstream) { u.Fields = map[string]string{"学历": "xl"} },
			func(u *dataset.Upstream) { u.Fields = map[string]string{"姓名": "n", "性别": "n"} },
			func(u *dataset.Upstream) { u.AuthHeader, u.Secret = "X-Other", "" }, // a new header needs its secret
		} {
			u := up
			u.Fields = peopleUpstream.Fields
			bad(&u)
			_, err := f.svc.RegisterUpstream(f.ctx, "people", people, u)
			wantCode(t, "bad registration", err, "dataset.upstream_config", 400)
		}

		// Loading a file makes the dataset stored again; the upstream's registration stays with its version.
		csv, _ := peopleCSV(3)
		if _, err := f.svc.Load(f.ctx, "people", people, dataset.Source{Name: "p.csv", Reader: strings.NewReader(csv)}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Upstream(f.ctx, "people"); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("upstream of a stored dataset: %v", err)
		}
		if r, err := f.svc.Lookup(f.ctx, "people", ps[1].id); err != nil || r.Values["姓名"] != ps[1].name {
			t.Errorf("lookup after the load: %+v %v", r, err)
		}
		// Older versions and their registrations are cleaned up (KeepVersions 1).
		var regs int
		if err := f.d.QueryRow(f.ctx, `SELECT COUNT(*) FROM dataset_upstreams`).Scan(&regs); err != nil || regs > 2 {
			t.Errorf("%d registrations kept: %v", regs, err)
		}
	})
}

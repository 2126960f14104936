package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/catalog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/dgov/dgov/internal/api"
	"github.com/dgov/dgov/internal/console"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/platform/search"
	"github.com/dgov/dgov/internal/portal"
	"github.com/dgov/dgov/web"
)

// Server is the HTTP side of a node.
type Server struct {
	Handler http.Handler
	Health  *httpx.Health
	Console *console.Console
}

// csrfKey is derived from the master key: secret, the same on every node of a cluster (they
// share the master key), and unchanged by signing-key rotation.
func (a *App) csrfKey() []byte { return crypto.DeriveKey(a.master, "dgov csrf v1", 32) }

// Handler builds the node's routes: portal /, console /console, API /api, health and metrics.
func (a *App) Handler() (*Server, error) {
	proxies, err := httpx.ParseTrustedProxies(splitList(a.Cfg.TrustedProxies)...)
	if err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	render, err := web.NewRenderer(a.Cfg.ThemeDir)
	if err != nil {
		return nil, err
	}
	csrf, err := httpx.NewCSRF(httpx.CSRFConfig{Key: a.csrfKey(), TrustedProxies: proxies})
	if err != nil {
		return nil, err
	}
	// The provider's endpoints are called by applications' servers (Basic auth, form posts),
	// not by our pages; they carry their own protection (client authentication, PKCE, state).
	for _, pattern := range append(append(append(api.CSRFExempt, a.IdP.CSRFExempt()...), exchangeCSRFExempt...), a.trustCSRFExempt()...) {
		csrf.Exempt(pattern)
	}
	reg := prometheus.NewRegistry()
	metrics := httpx.NewMetrics(reg)
	health := httpx.NewHealth(3 * time.Second)
	health.Register("database", a.DB.Ping)
	if a.nc != nil {
		nc := a.nc
		health.Register("nats", func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("NATS not connected")
			}
			return nil
		})
		health.Register("outbox_relay", func(context.Context) error {
			if p := a.relayErr.Load(); p != nil {
				return *p
			}
			return nil
		})
	}

	con := &console.Console{Org: a.Org, Audit: a.Audit, Keys: a.Keys, IdP: a.IdP, Catalog: a.Catalog, Exchange: a.Exchange, Cases: a.Workflow, Apps: a.Applications, Items: a.Services, SSO: loginProvider{a.IdP}, Datasets: a.Datasets, CatalogSearch: a.CatalogIndex, BackgroundContext: a.serving, Sessions: console.NewSessions(a.DB, a.Now),
		Render: render, Policy: a.Policy, Now: a.Now, NodeDivision: a.Cfg.NodeDivision, Log: a.Log,
		ClientIP: func(r *http.Request) string { return httpx.ClientIPFrom(r.Context()) },
		Secure:   func(r *http.Request) bool { return httpx.IsHTTPS(r, proxies) }}
	pt := &portal.Portal{Render: render, Org: a.Org, Secure: con.Secure}
	accounts := &portal.Accounts{Identity: a.Identity, Provider: loginProvider{a.IdP}, Render: render, Secure: con.Secure,
		ClientIP: con.ClientIP, Now: a.Now}
	if sink, ok := a.SMS.(*identity.SinkGateway); ok {
		accounts.Sink = sink
	}
	apiv1 := &api.API{Org: a.Org, Audit: a.Audit, Keys: a.Keys, Policy: a.Policy, NodeDivision: a.Cfg.NodeDivision, Version: Version,
		Quality: a.Quality, Items: a.Services, Index: a.ServicesIndex, Apps: a.Applications, Forms: a.Applications, People: apiPeople{a}}

	mux := http.NewServeMux()
	if c := a.Cfg; c.FederationIssuer != "" {
		fed := &portal.Federation{Accounts: accounts, Fields: a.Keys.FieldCipher(), Upstream: portal.FederationConfig{Issuer: c.FederationIssuer,
			ClientID: c.FederationClientID, ClientSecret: c.FederationClientSecret, RedirectURL: c.PublicURL() + "/login/federated/callback", DisplayName: c.FederationName}}
		accounts.Federation = c.FederationName
		fed.Routes(mux)
	}
	// One route table per surface, each readable top to bottom in its package.
	pt.Routes(mux)
	accounts.Routes(mux)
	strong, err := portal.NewStrong(accounts, a.Cfg.PublicURL()) // level-3 sign-in (passkeys, SM2 certificates)
	if err != nil {
		return nil, err
	}
	strong.Routes(mux)
	(&portal.Reads{Accounts: accounts, Exchange: a.Exchange}).Routes(mux) // who read my data
	ratings := a.ratingRoutes(mux, con, accounts)                         // 好差评: the rating form's POST, /ratings, /console/ratings (ratings.go)
	(&portal.Services{Accounts: accounts, Items: a.Services, Index: a.ServicesIndex, Apps: a.Applications, Notify: a.Notify,
		IDNumber: a.Identity.VerifiedIDNumber, Ratings: ratings}).Routes(mux)
	con.Routes(mux)
	con.QualityRoutes(mux, a.Quality)
	con.UpstreamRoutes(mux) // datasets served from a provider's own API
	// Seals, e-licences and payments; /licenses/verify; the bank simulator.
	a.trustRoutes(mux, con, accounts)
	apiv1.Routes(mux)
	mux.Handle("/oidc/", a.IdP.Handler())
	gateway, err := a.exchangeGateway()
	if err != nil {
		return nil, err
	}
	mux.Handle(exchangePrefix+"/", gateway)
	// The open part of the catalogue as W3C DCAT (JSON-LD), for anyone.
	mux.HandleFunc("GET /open/catalog.jsonld", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/ld+json")
		if err := a.Catalog.ExportDCAT(r.Context(), w, catalog.DCATOptions{BaseURL: a.Cfg.PublicURL() + "/open"}); err != nil {
			httpx.WriteError(w, r, err)
		}
	})
	mux.HandleFunc("GET /healthz", health.Healthz)
	mux.HandleFunc("GET /readyz", health.Readyz)
	mux.Handle("GET /metrics", metrics.Handler())
	static := http.FileServerFS(render.StaticFS())
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(static)))

	// Sessions are read inside the kernel (after request id, CSRF and rate limits), before routes.
	stack := httpx.Stack(httpx.Config{
		Logger: a.Log, TrustedProxies: proxies, Metrics: metrics, CSRF: csrf,
		RateLimiter:       httpx.NewRateLimiter(httpx.RateLimitConfig{Rate: rate.Limit(a.Cfg.RateLimit), Burst: a.Cfg.RateBurst, TrustedProxies: proxies}),
		HTMLErrorRenderer: pt.ErrorPage,
	})
	h := httpx.Chain(mux, append(stack, con.Authenticate)...)
	return &Server{Handler: h, Health: health, Console: con}, nil
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Serve runs the node until ctx ends: NATS (embedded or external), the outbox relay, the
// job queue with its periodic jobs, and the HTTP server. ready, if not nil, is called with
// the listening address once requests are served.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.startNATS(); err != nil {
		return err
	}
	if err := a.startJobs(ctx); err != nil {
		return err
	}
	relay := bus.NewRelay(a.DB, a.js, bus.RelayOptions{Logger: a.Log})
	relayDone := make(chan error, 1)
	a.relayErr.Store(nil)
	go func() {
		err := relay.Run(ctx)
		if err != nil && ctx.Err() == nil {
			// The relay only stops early when it cannot set up the stream: events would pile up
			// in the outbox unseen, so /readyz reports it and the log says why.
			a.Log.Error("outbox relay stopped", "err", err)
			a.relayErr.Store(&err)
		}
		relayDone <- err
	}()

	a.serving = ctx
	var err error
	if a.Search, err = search.OpenBleve(filepath.Join(a.Cfg.DataDir, "search", "catalog")); err != nil {
		return err
	}
	a.CatalogIndex = &catalog.Indexer{Index: a.Search, Service: a.Catalog}
	// The search index is a cache: rebuild it from the database at every start (a crash may
	// have lost its last writes), then keep it current from the catalogue's events. Each node
	// keeps its own index, so each needs its own durable consumer.
	go func() {
		if _, err := a.CatalogIndex.Reindex(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("catalog search reindex", "err", err)
		}
	}()
	searchSub, err := bus.Subscribe(ctx, a.js, catalog.SearchConsumer+"-"+nodeName(), catalog.SearchSubjects, a.CatalogIndex.OnEvent)
	if err != nil {
		return err
	}
	defer searchSub.Stop()
	stopServices, err := a.serveServices(ctx) // guide search, notifications
	if err != nil {
		return err
	}
	defer stopServices()
	stopRatings, err := a.serveRatings(ctx) // rectification cases mirrored onto their ratings
	if err != nil {
		return err
	}
	defer stopRatings()
	srv, err := a.Handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.Cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Cfg.HTTPAddr, err)
	}
	hs := httpx.Server(a.Cfg.HTTPAddr, srv.Handler)
	if strings.HasPrefix(a.IdP.Issuer(), "http://") {
		a.Log.Warn("the OpenID provider's issuer is plain http: fine on one machine, use https (DGOV_BASE_URL) in production", "issuer", a.IdP.Issuer())
	}
	a.Log.Info("dgov serving", "addr", ln.Addr().String(), "url", a.Cfg.PublicURL(), "database", a.DB.Dialect, "version", Version)
	if ready != nil {
		ready(ln.Addr().String())
	}
	err = httpx.Run(ctx, hs, ln, 10*time.Second)
	cancel()
	if rerr := <-relayDone; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
		err = rerr
	}
	return err
}

func (a *App) startNATS() error {
	var err error
	if a.Cfg.NATSURL != "" {
		if a.nc, err = bus.Connect(a.Cfg.NATSURL); err != nil {
			return fmt.Errorf("NATS %s: %w", a.Cfg.Redacted().NATSURL, err)
		}
	} else {
		if a.nats, err = bus.StartEmbedded(bus.EmbeddedOptions{DataDir: a.Cfg.DataDir, Listen: a.Cfg.NATSListen}); err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		if a.nc, err = a.nats.Connect(); err != nil {
			return err
		}
	}
	a.js, err = bus.JetStream(a.nc)
	return err
}

// Job kinds of the foundation.
type checkpointArgs struct{}

func (checkpointArgs) Kind() string { return "audit_checkpoint" }

type sessionSweepArgs struct{}

func (sessionSweepArgs) Kind() string { return "console_session_sweep" }

func (a *App) startJobs(ctx context.Context) error {
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[checkpointArgs]) error {
		_, err := a.Audit.Checkpoint(ctx)
		return err
	}))
	sessions := console.NewSessions(a.DB, a.Now)
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[oidcSweepArgs]) error {
		_, err := a.IdP.Sweep(ctx)
		return err
	}))
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[sessionSweepArgs]) error {
		_, err := sessions.DeleteExpired(ctx)
		return err
	}))
	periodic := []*jobs.PeriodicJob{
		jobs.Every(a.Cfg.AuditCheckpointInterval, false, func() (jobs.JobArgs, *jobs.InsertOpts) { return checkpointArgs{}, nil }),
		jobs.Every(10*time.Minute, true, func() (jobs.JobArgs, *jobs.InsertOpts) { return sessionSweepArgs{}, nil }),
		jobs.Every(10*time.Minute, false, func() (jobs.JobArgs, *jobs.InsertOpts) { return oidcSweepArgs{}, nil }),
	}
	periodic = append(periodic, a.qualityJobs(workers)...)
	periodic = append(periodic, a.exchangeJobs(workers)...)
	periodic = append(periodic, a.servicesJobs(workers)...) // case deadlines, SMS retries
	periodic = append(periodic, a.trustJobs(workers)...)
	periodic = append(periodic, a.ratingJobs(workers)...)
	q, err := jobs.New(a.DB, jobs.Config{Workers: workers, Logger: a.Log, Periodic: periodic})
	if err != nil {
		return err
	}
	a.queue = q
	return q.Start(ctx)
}

// nodeName names this node for per-node consumers: the host name, reduced to what NATS allows.
func nodeName() string {
	h, _ := os.Hostname()
	var b strings.Builder
	for _, r := range h {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "node"
	}
	return b.String()
}

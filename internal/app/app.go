// Package app wires dgov's engines and platform pieces into one node — the only package that
// knows them all. Open brings up what every command needs (database, migrations, keys,
// audit, organisation); Serve adds what a running server needs (NATS, the outbox relay, the
// job queue, HTTP).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/console"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/notify"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/config"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/platform/search"
	"github.com/dgov/dgov/internal/quality"
	"github.com/dgov/dgov/internal/rating"
	"github.com/dgov/dgov/internal/seal"
	"github.com/dgov/dgov/internal/workflow"
)

// Version is set at build time (-ldflags -X).
var Version = "dev"

// Migrations lists every package's schema in dependency order (a package whose tables
// reference another's comes after it). River's own schema is migrated by jobs.Migrate.
var Migrations = []db.Source{
	crypto.Migrations,
	bus.Migrations,
	audit.Migrations,
	org.Migrations,
	console.Migrations,
	baselib.Migrations,
	identity.Migrations,
	seal.Migrations,
	license.Migrations,
	pay.Migrations,
	idp.Migrations,
	catalog.Migrations,
	dataset.Migrations,
	exchange.Migrations,
	quality.Migrations,
	workflow.Migrations,
	rating.Migrations,
	form.Migrations,
	govservice.Migrations,
	notify.Migrations,
}

// App is one dgov node.
type App struct {
	Cfg    config.Config
	Log    *slog.Logger
	Now    func() time.Time
	DB     *db.DB
	Keys   *crypto.Keyring
	Audit  *audit.Log
	Policy *authz.Policy
	Org    *org.Service
	Base   *baselib.Service
	// Identity is citizens' and enterprises' unified identity; SMS is its gateway (the
	// development sink unless configured otherwise).
	Identity *identity.Service
	SMS      identity.SMSGateway
	IdP      *idp.Provider
	Catalog  *catalog.Service
	// Search is the full-text index of the catalogue (a cache of the database, rebuilt at start).
	Search       search.Index
	CatalogIndex *catalog.Indexer
	// Datasets hold the rows behind catalogue resources; Exchange shares them between
	// departments (D4) and serves them on the gateway at /api/v1/exchange/.
	Datasets *dataset.Service
	Exchange *exchange.Service
	// Quality checks datasets against their quality rules (D5).
	Quality *quality.Service
	Blobs   blob.Store

	// Online government services (P5): the case engine, form versions, the service catalogue
	// with its applications, and notifications; ServicesIndex (guide search) is set by Serve.
	Workflow      *workflow.Service
	Forms         *form.Versions
	Services      *govservice.Service
	Applications  *govservice.Applications
	Notify        *notify.Service
	ServicesIndex *govservice.Indexer
	Ratings       *rating.Service // 好差评 (P5 item 7): ratings of completed applications, 差评 rectification

	// Seals are departments' electronic seals; Licenses the e-licences they sign; Payments
	// non-tax payment through channels — in development PaySim, the bank simulator (A3/A4).
	Seals    *seal.Service
	Licenses *license.Service
	Payments *pay.Service
	PaySim   *paysim.Sim

	// Set by Serve.
	nats  *bus.Embedded
	nc    *nats.Conn
	js    jetstream.JetStream
	queue *jobs.Queue
	// serving lives while Serve runs: background work started by requests is bound to it.
	serving context.Context
	// master is the master key, for keys derived from it (CSRF) and restore checks.
	master []byte
	// relayErr holds why the outbox relay stopped early, for /readyz.
	relayErr atomic.Pointer[error]
}

// Options adjust Open for tests and special commands.
type Options struct {
	Now func() time.Time
	// Argon overrides the password hashing cost (tests only).
	Argon org.ArgonParams
}

// Open connects to the database, brings the schema up to date, unlocks the node's keys and
// builds the services.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*App, error) {
	if ps := cfg.Check(); len(ps) > 0 {
		return nil, fmt.Errorf("configuration: %s", ps[0])
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	a := &App{Cfg: cfg, Log: log, Now: now}
	var err error
	if a.DB, err = db.Open(ctx, cfg.DatabaseURL, cfg.DataDir); err != nil {
		return nil, err
	}
	fail := func(err error) (*App, error) { a.Close(); return nil, err }
	if err := a.Migrate(ctx); err != nil {
		return fail(err)
	}
	master, err := crypto.LoadOrCreateMasterKey(cfg.MasterKeyPath())
	if err != nil {
		return fail(err)
	}
	a.master = master
	if a.Keys, err = crypto.Open(ctx, a.DB, master, now); err != nil {
		return fail(err)
	}
	a.Audit = audit.New(a.DB, a.Keys, now, audit.Options{CheckpointEvery: cfg.AuditCheckpointEvery, Logger: log})
	a.Policy = authz.NewPolicy(divisions.Contains)
	catalog.RegisterPermissions(a.Policy)
	exchange.RegisterPermissions(a.Policy)
	a.Org = org.New(a.DB, a.Policy, org.Options{Argon: opts.Argon, Audit: a.auditOrg, Now: now, Fields: a.Keys.FieldCipher()})
	if _, err := a.Org.SyncDivisions(ctx); err != nil {
		return fail(err)
	}
	a.Base = baselib.New(a.DB, a.Keys.FieldCipher())
	// Only the development sink exists so far; a real SMS gateway is configuration to come.
	a.SMS = identity.NewSinkGateway(a.DB, now)
	a.Identity = identity.New(a.DB, a.Keys.FieldCipher(), a.Base, a.SMS, identity.Options{Argon: opts.Argon, Now: now, Audit: a.auditOrg})
	a.Catalog = catalog.New(a.DB, a.Policy, a.Org, catalog.Options{Audit: a.auditOrg, Now: now})
	// The search index is opened by Serve only: commands (demo, backup, restore…) run beside a
	// serving node and must not contend for its files.
	if err := a.openIDP(); err != nil {
		return fail(err)
	}
	a.openExchange()
	a.Quality = quality.New(a.DB, a.Datasets, a.Base, quality.Options{Now: now, Audit: a.auditOrg})
	if err := a.openTrust(ctx); err != nil {
		return fail(err)
	}
	if a.Blobs, err = blob.Open(blob.Config{DataDir: cfg.DataDir, S3: blob.S3Config{Endpoint: cfg.S3Endpoint,
		Bucket: cfg.S3Bucket, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Region: cfg.S3Region, TLS: cfg.S3TLS}}); err != nil {
		return fail(err)
	}
	if err := a.openServices(ctx); err != nil {
		return fail(err)
	}
	a.openRatings() // on the case engine and the applications
	return a, nil
}

// Migrate applies every pending migration, ours and River's.
func (a *App) Migrate(ctx context.Context) error {
	applied, err := a.DB.Migrate(ctx, Migrations...)
	for _, m := range applied {
		a.Log.Info("migrated", "source", m.Source, "version", m.Version, "name", m.Name)
	}
	if err != nil {
		return err
	}
	if _, err := jobs.Migrate(ctx, a.DB); err != nil {
		return fmt.Errorf("job queue schema: %w", err)
	}
	return nil
}

// auditOrg records organisation changes and staff logins in the audit log, in the same
// transaction as the change.
func (a *App) auditOrg(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	outcome := audit.OutcomeOK
	switch action {
	case org.ActionLoginFailed, org.ActionLocked:
		outcome = audit.OutcomeFailed
	}
	e := audit.Entry{Actor: actor.String(), ActorDivision: actor.Division, Action: action, Object: object,
		Outcome: outcome, IP: httpx.ClientIPFrom(ctx), RequestID: httpx.RequestID(ctx), Detail: detail}
	if actor.Kind == "" {
		e.Actor = audit.ActorSystem
	}
	_, err := a.Audit.AppendTx(ctx, tx, e)
	return err
}

// Close releases everything Open and Serve acquired.
func (a *App) Close() error {
	var errs []error
	if a.queue != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, a.queue.Stop(ctx))
		cancel()
		errs = append(errs, a.queue.Close())
	}
	if a.nc != nil {
		a.nc.Close()
	}
	if a.nats != nil {
		a.nats.Shutdown()
	}
	if a.Search != nil {
		errs = append(errs, a.Search.Close())
	}
	if a.DB != nil {
		errs = append(errs, a.DB.Close())
	}
	return errors.Join(errs...)
}

package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/dgov/dgov/internal/console"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/portal"
	"github.com/dgov/dgov/internal/seal"
)

// Trusted services (issue 6, A3/A4): department electronic seals, e-licences signed with those
// seals, and non-tax payment. The three engines do not know each other; this file joins them:
// the licence engine signs through the seal engine (sealSigner), finds holders through
// identity (holderIDs) and departments through org (orgDepartments).
//
// A service case closed "approved" will issue its licence here, and an item with fees will
// raise its order, once the applications layer lands: a `func (a *App) onCaseClosed(ctx,
// case)` then calls a.Licenses.Issue with a system subject of the issuing department
// (authz.System, Division of the department, RoleOfficer) and IssueInput.CaseRef = the case
// id, and a.Payments.CreateOrder with Ref "application:<id>". Neither needs more wiring than
// the services built in openTrust.

// Paths of the trusted services that the app mounts itself (the surfaces mount the pages).
const (
	// licenseVerifyPath is the public page a licence's QR code opens (?id=…&d=…).
	licenseVerifyPath = "/licenses/verify"
	// trustListPath publishes this node's signed trust list of issuer keys (mutual recognition).
	trustListPath = "/api/v1/licenses/trust-list"
	// payNotifyPath is where payment channels call back, + the channel's name.
	payNotifyPath = "/api/v1/pay/notify/"
	// paySimPrefix is where the development bank simulator is served.
	paySimPrefix = "/dev/paysim"
)

// Periods of the payment jobs.
const (
	// paySyncInterval: how often orders left paying are asked about at their channel (a lost
	// callback costs the payer at most this long) and past-deadline orders expire.
	paySyncInterval = 3 * time.Minute
	// payReconcileInterval: how often the leader offers the previous Beijing day's
	// reconciliation; the job is unique by its day, so each day runs once.
	payReconcileInterval = time.Hour
	// sealKeySyncInterval: how soon a rotated or revoked seal's key stops vouching for new
	// licences in the trust list.
	sealKeySyncInterval = 5 * time.Minute
)

// openTrust builds the seal, licence and payment services with their adapters and gives
// their permissions to the foundation roles. The licence types this engine ships with are
// added when missing.
func (a *App) openTrust(ctx context.Context) error {
	seal.RegisterPermissions(a.Policy)
	license.RegisterPermissions(a.Policy)
	pay.RegisterPermissions(a.Policy)
	pub := a.Cfg.PublicURL()
	fields := a.Keys.FieldCipher()

	a.Seals = seal.New(a.DB, a.Policy, a.Org, fields, seal.Options{Audit: a.auditTrust, Now: a.Now})
	a.Licenses = license.New(license.Deps{DB: a.DB, Policy: a.Policy, Fields: fields, Signer: sealSigner{a.Seals}, NodeKey: a.Keys,
		Holders: holderIDs{a.Identity}, Departments: orgDepartments{org: a.Org, reader: a.orgReader("license")}},
		license.Options{Audit: a.auditTrust, Now: a.Now, Node: a.licenseNode(), VerifyURL: pub + licenseVerifyPath})
	if _, err := a.Licenses.SeedTypes(ctx); err != nil {
		return fmt.Errorf("licence types: %w", err)
	}

	var channels []pay.Channel
	if a.paySimEnabled() {
		// The node reaches its own simulator in process, with a key of this process: the
		// simulator's merchant API is not published (only its pay pages are), so nobody else can
		// refund or close through it. It calls back through the public URL, as a bank would.
		merchant := make([]byte, 16)
		_, _ = rand.Read(merchant)
		sim, err := paysim.New(paysim.Options{BaseURL: pub + paySimPrefix, MerchantKey: hex.EncodeToString(merchant), Now: a.Now, Logger: a.Log})
		if err != nil {
			return err
		}
		a.PaySim = sim
		hc := &http.Client{Timeout: 15 * time.Second, Transport: handlerTransport{http.StripPrefix(paySimPrefix, sim.Handler())}}
		channels = append(channels, sim.Client(pub+paySimPrefix, hc))
	}
	a.Payments = pay.New(a.DB, a.Policy, a.Keys, channels, pay.Options{Audit: a.auditTrust, Now: a.Now, Logger: a.Log,
		NotifyURL: func(channel string) string { return pub + payNotifyPath + url.PathEscape(channel) },
		ReturnURL: func(o pay.Order) string { return pub + "/account/payments/" + url.PathEscape(o.ID) }})
	return nil
}

// paySimEnabled: the development bank simulator is the only payment channel so far, as the SMS
// sink is the only SMS gateway; DGOV_PAY_SIM=false turns it off (then no channel can take
// payments until a real one is configured).
func (a *App) paySimEnabled() bool { return a.Cfg.PaySim }

// licenseNode names this node in trust lists and licence files: its division code (stable,
// and distinct between the province and its cities' nodes) and the division's name.
func (a *App) licenseNode() license.Node {
	div := a.Cfg.NodeDivision
	name := "dgov " + div
	if d, ok := divisions.Lookup(div); ok {
		name = d.Name + "数字政府平台"
	}
	return license.Node{ID: div, Name: name, Division: div, TrustListURL: a.Cfg.PublicURL() + trustListPath}
}

// orgReader is a system subject that may read the organisation of the node's division: the
// adapters look departments up with it, for people who are not staff.
func (a *App) orgReader(id string) authz.Subject {
	return authz.Subject{Kind: authz.System, ID: id, Name: "dgov " + id, Division: a.Cfg.NodeDivision, Roles: []authz.Role{authz.RoleOfficer}}
}

// auditTrust records the trusted services' changes in the audit log, in the same transaction
// as the change; what a channel reported and we refused is recorded as a failure.
func (a *App) auditTrust(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	outcome := audit.OutcomeOK
	switch action {
	case pay.ActionTxnRejected, pay.ActionRefundFail:
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

// ---- adapters ----

// sealSigner is license.Signer on the seal engine: a department's official seal key signs.
type sealSigner struct{ seals *seal.Service }

func (s sealSigner) SignAs(ctx context.Context, deptID string, data []byte) (license.Signature, error) {
	sig, err := s.seals.SignAs(ctx, deptID, data)
	if err != nil {
		return license.Signature{}, err
	}
	// The two types have the same fields by the engines' contract: a conversion, checked by
	// the compiler, rather than a copy that could drift.
	return license.Signature(sig), nil
}

// holderIDs is license.Holders on identity: a citizen holds the real-name verified ID number
// of their account, an enterprise its unified social credit code.
type holderIDs struct{ identity *identity.Service }

func (h holderIDs) HolderID(ctx context.Context, s authz.Subject) (license.HolderID, error) {
	switch s.Kind {
	case authz.Enterprise:
		e, err := h.identity.GetEnterprise(ctx, s.ID)
		if errors.Is(err, i18n.ErrNotFound) {
			return license.HolderID{}, license.ErrHolderUnknown
		}
		if err != nil {
			return license.HolderID{}, fmt.Errorf("enterprise %s: %w", s.ID, err)
		}
		return license.HolderID{Type: license.IDCreditCode, Number: e.CreditCode}, nil
	case authz.Citizen:
		n, err := h.identity.VerifiedIDNumber(ctx, s.ID)
		if errors.Is(err, i18n.ErrNotFound) || (err == nil && n == "") {
			return license.HolderID{}, license.ErrHolderUnknown
		}
		if err != nil {
			return license.HolderID{}, fmt.Errorf("account %s: %w", s.ID, err)
		}
		return license.HolderID{Type: license.IDResident, Number: n}, nil
	}
	return license.HolderID{}, i18n.ErrForbidden
}

// orgDepartments is license.Departments on org, for holders who are not staff: active
// departments of the node's division.
type orgDepartments struct {
	org    *org.Service
	reader authz.Subject
}

func (d orgDepartments) Department(ctx context.Context, id string) (license.Department, error) {
	dep, err := d.org.GetDepartment(ctx, d.reader, id)
	if errors.Is(err, i18n.ErrForbidden) || (err == nil && !dep.Active) {
		return license.Department{}, i18n.ErrNotFound
	}
	if err != nil {
		return license.Department{}, err
	}
	return license.Department{ID: dep.ID, Name: dep.Name, Division: dep.DivisionCode}, nil
}

// ActiveDepartments lists the node's active departments (portal.DepartmentDirectory): those a
// holder may authorise to use a licence.
func (d orgDepartments) ActiveDepartments(ctx context.Context) ([]org.Department, error) {
	return d.org.ListDepartments(ctx, d.reader, org.DepartmentFilter{ActiveOnly: true, Limit: 1000})
}

// handlerTransport serves HTTP requests with a handler in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	t.h.ServeHTTP(w, r)
	return &http.Response{Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: w.header, Body: io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()), Request: r}, nil
}

// bufferedResponse is an http.ResponseWriter that keeps the answer in memory.
type bufferedResponse struct {
	header      http.Header
	body        bytes.Buffer
	status      int
	wroteHeader bool
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// ---- HTTP ----

// trustCSRFExempt are the trusted services' routes that browsers' forms of this node do not
// call: the channels' server-to-server callbacks, and the simulator's own pay page, which
// posts to itself as a bank's page would.
func (a *App) trustCSRFExempt() []string {
	out := []string{"POST " + payNotifyPath + "{channel}"}
	if a.PaySim != nil {
		out = append(out, "POST "+paySimPrefix+"/pay/{code}")
	}
	return out
}

// trustRoutes mounts the trusted services: the console's seal, licence and payment pages, the
// portal's verification page and the holder's licences and payments, the trust list, the
// channels' callbacks and, in development, the bank simulator.
func (a *App) trustRoutes(mux *http.ServeMux, con *console.Console, accounts *portal.Accounts) {
	con.TrustRoutes(mux, console.TrustServices{Licenses: a.Licenses, Seals: a.Seals, Payments: a.Payments})
	depts := orgDepartments{org: a.Org, reader: a.orgReader("portal")}
	(&portal.Licenses{Accounts: accounts, Licenses: a.Licenses, Departments: depts}).Routes(mux)
	(&portal.Payments{Accounts: accounts, Payments: a.Payments}).Routes(mux)
	mux.HandleFunc("GET "+trustListPath, a.trustList)
	mux.Handle("POST "+payNotifyPath+"{channel}", a.Payments.NotifyHandler())
	if a.PaySim != nil {
		// Only the bank's pay page is public; the node calls the simulator's API in process.
		page := http.StripPrefix(paySimPrefix, a.PaySim.Handler())
		mux.Handle("GET "+paySimPrefix+"/pay/{code}", page)
		mux.Handle("POST "+paySimPrefix+"/pay/{code}", page)
		// The simulator retries callbacks in the background: they end with the server.
		if a.serving != nil {
			context.AfterFunc(a.serving, a.PaySim.Close)
		}
	}
}

// trustList publishes the node's trust list: every seal key that signed a licence here, signed
// with the node key (verify it with a key from /api/v1/keys).
func (a *App) trustList(w http.ResponseWriter, r *http.Request) {
	doc, err := a.Licenses.PublishTrustList(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
}

// ---- jobs ----

// paySyncArgs is the periodic repair of orders left paying (lost callbacks), expiry of orders
// past their deadline and re-pushing of pending refunds.
type paySyncArgs struct{}

func (paySyncArgs) Kind() string { return "pay_sync" }

// InsertOpts keep one sync at a time.
func (paySyncArgs) InsertOpts() jobs.InsertOpts {
	return jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByState: waitingOrRunning}}
}

// payReconcileArgs reconciles one Beijing day (YYYY-MM-DD) against every channel's statement.
type payReconcileArgs struct {
	Day string `json:"day"`
}

func (payReconcileArgs) Kind() string { return "pay_reconcile" }

// InsertOpts make a day's reconciliation unique: the hourly offers after the first are skipped
// while the completed job is kept (24 h), by when the previous day has changed.
func (payReconcileArgs) InsertOpts() jobs.InsertOpts {
	return jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByArgs: true}}
}

// waitingOrRunning are the job states in which a second equal job is not inserted (River
// requires the first four).
var waitingOrRunning = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable}

// sealKeySyncArgs ends, in the licence engine's trust list, the validity of seal keys that the
// seal engine has since retired (rotation) or revoked.
type sealKeySyncArgs struct{}

func (sealKeySyncArgs) Kind() string { return "license_seal_key_sync" }

// InsertOpts keep one sync at a time.
func (sealKeySyncArgs) InsertOpts() jobs.InsertOpts {
	return jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByState: waitingOrRunning}}
}

// retireEndedSealKeys retires in the licence engine's trust list every key that signed licences
// and whose seal was rotated or revoked since, at the moment it was: licences signed before
// still verify, a signature dated later (a stolen old key, back-dated) does not. It returns how
// many keys it retired; running it again retires nothing more.
func (a *App) retireEndedSealKeys(ctx context.Context) (int, error) {
	sealKeys, err := a.Seals.PublicKeys(ctx)
	if err != nil {
		return 0, err
	}
	issuerKeys, err := a.Licenses.IssuerKeys(ctx)
	if err != nil {
		return 0, err
	}
	open := map[string]bool{}
	for _, k := range issuerKeys {
		if k.ValidUntil == nil {
			open[k.KeyID] = true
		}
	}
	sys := authz.Subject{Kind: authz.System, ID: "seal-key-sync", Name: "dgov seal key sync", Division: a.Cfg.NodeDivision,
		Roles: []authz.Role{authz.RoleSysAdmin}}
	n := 0
	for _, k := range sealKeys {
		ended := k.RetiredAt
		if k.RevokedAt != nil && (ended == nil || k.RevokedAt.Before(*ended)) {
			ended = k.RevokedAt
		}
		if ended == nil || !open[k.KeyID] {
			continue
		}
		if _, err := a.Licenses.RetireIssuerKey(ctx, sys, k.KeyID, *ended); errors.Is(err, license.ErrState) {
			continue // retired meanwhile by another run of the sync (the periodic job)
		} else if err != nil {
			return n, fmt.Errorf("retire seal key %s: %w", k.KeyID, err)
		}
		n++
	}
	return n, nil
}

// previousBeijingDay is the Beijing calendar day before the one of now.
func previousBeijingDay(now time.Time) string {
	return now.In(calendar.Beijing).AddDate(0, 0, -1).Format(time.DateOnly)
}

// trustJobs registers the workers of the trusted services — the seal-key sync, payment sync and
// daily reconciliation — and returns their periodic jobs, for startJobs.
func (a *App) trustJobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[paySyncArgs]) error {
		res, err := a.Payments.Sync(ctx)
		if res.Recorded > 0 || res.Expired > 0 {
			a.Log.Info("pay sync", "checked", res.Checked, "recorded", res.Recorded, "expired", res.Expired, "refunds", res.Refunds)
		}
		return err
	}))
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[payReconcileArgs]) error {
		day, err := time.ParseInLocation(time.DateOnly, j.Args.Day, calendar.Beijing)
		if err != nil {
			return fmt.Errorf("reconcile day %q: %w", j.Args.Day, err)
		}
		reports, err := a.Payments.Reconcile(ctx, day)
		for _, r := range reports {
			if !r.Balanced() {
				a.Log.Warn("pay reconciliation found mismatches", "channel", r.Channel, "day", r.Day, "mismatches", len(r.Mismatches))
			}
		}
		return err
	}))
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[sealKeySyncArgs]) error {
		_, err := a.retireEndedSealKeys(ctx)
		return err
	}))
	return []*jobs.PeriodicJob{
		jobs.Every(sealKeySyncInterval, true, func() (jobs.JobArgs, *jobs.InsertOpts) { return sealKeySyncArgs{}, nil }),
		jobs.Every(paySyncInterval, true, func() (jobs.JobArgs, *jobs.InsertOpts) { return paySyncArgs{}, nil }),
		jobs.Every(payReconcileInterval, true, func() (jobs.JobArgs, *jobs.InsertOpts) {
			return payReconcileArgs{Day: previousBeijingDay(a.Now())}, nil
		}),
	}
}

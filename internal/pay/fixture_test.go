package pay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
)

var sources = []db.Source{crypto.Migrations, audit.Migrations, bus.Migrations, pay.Migrations}

// clock is real time plus an offset that tests move forward; the simulator shares it.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.offset += d; c.mu.Unlock() }

// syncBuffer is a log sink tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Subjects of the tests: 太原市小店区 (140105) 公安分局 collects the fees.
var (
	citizen  = authz.Subject{Kind: authz.Citizen, ID: "c-zhang", Name: "张伟"}
	stranger = authz.Subject{Kind: authz.Citizen, ID: "c-li", Name: "李娜"}
	officer  = authz.Subject{Kind: authz.Staff, ID: "s-1", Division: "140105", Dept: "dept-ga", Roles: []authz.Role{authz.RoleOfficer}}
	// otherOfficer works in the same county, another department.
	otherOfficer = authz.Subject{Kind: authz.Staff, ID: "s-2", Division: "140105", Dept: "dept-rs", Roles: []authz.Role{authz.RoleOfficer}}
	// farOfficer is an officer of the same department id in another city (out of division).
	farOfficer = authz.Subject{Kind: authz.Staff, ID: "s-3", Division: "140202", Dept: "dept-ga", Roles: []authz.Role{authz.RoleOfficer}}
	auditor    = authz.Subject{Kind: authz.Staff, ID: "s-4", Division: "140000", Dept: "dept-sj", Roles: []authz.Role{authz.RoleAuditor}}
)

type fixture struct {
	t      testing.TB
	ctx    context.Context
	d      *db.DB
	keys   *crypto.Keyring
	clock  *clock
	sim    *paysim.Sim
	simSrv *httptest.Server
	srv    *httptest.Server // our node: the callback endpoint
	svc    *pay.Service
	log    *syncBuffer
	// down makes our callback endpoint answer 503, as a node that is not running.
	down atomic.Bool
	// failAudit makes the audit of the next n payments fail, rolling their transactions back
	// (the node dying between the channel's charge and our record).
	failAudit atomic.Int32
}

type fixtureOptions struct {
	manual bool
	faults paysim.Faults
}

func newFixture(t testing.TB, d *db.DB, fo fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), d: d, clock: &clock{}, log: &syncBuffer{}}
	master := make([]byte, crypto.MasterKeySize)
	_, _ = rand.Read(master)
	keys, err := crypto.Open(f.ctx, d, master, f.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	f.keys = keys
	alog := audit.New(d, keys, f.clock.now, audit.Options{})
	auditFn := func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
		if action == pay.ActionPaid && f.failAudit.Load() > 0 {
			f.failAudit.Add(-1)
			return errors.New("the node died")
		}
		e := audit.Entry{Actor: actor.String(), ActorDivision: actor.Division, Action: action, Object: object, Outcome: audit.OutcomeOK, Detail: detail}
		if actor.Kind == "" {
			e.Actor = audit.ActorSystem
		}
		_, err := alog.AppendTx(ctx, tx, e)
		return err
	}
	logger := slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelInfo}))

	f.sim, err = paysim.New(paysim.Options{Now: f.clock.now, Manual: fo.manual, RetryBase: 20 * time.Millisecond,
		RetryMax: 200 * time.Millisecond, MaxAttempts: 200, Faults: fo.faults, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.simSrv = httptest.NewServer(f.sim.Handler())
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/pay/notify/{channel}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, "node down", http.StatusServiceUnavailable)
			return
		}
		f.svc.NotifyHandler().ServeHTTP(w, r)
	}))
	f.srv = httptest.NewServer(mux)
	// Stop deliveries before the servers and the database go.
	t.Cleanup(func() { f.sim.Close(); f.simSrv.Close(); f.srv.Close() })

	policy := authz.NewPolicy(divisions.Contains)
	pay.RegisterPermissions(policy)
	f.svc = pay.New(d, policy, keys, []pay.Channel{f.sim.Client(f.simSrv.URL, nil)}, pay.Options{
		Audit: auditFn, Now: f.clock.now, Logger: logger,
		NotifyURL: func(ch string) string { return f.srv.URL + "/api/v1/pay/notify/" + ch },
		ReturnURL: func(o pay.Order) string { return "http://portal.example/pay/" + o.ID },
	})
	return f
}

// order raises an order of the citizen for 公安分局 with the given fee lines (fen).
func (f *fixture) order(amounts ...int64) pay.Order {
	f.t.Helper()
	in := pay.OrderInput{Ref: "application:" + db.NewID(), ItemCode: "140105-GA-0001", Payer: pay.Payer{Subject: citizen, Name: "张伟"},
		DeptID: "dept-ga", DeptName: "太原市公安局小店分局", Division: "140105"}
	for i, a := range amounts {
		in.Lines = append(in.Lines, pay.Line{Name: []string{"工本费", "证照费", "加急费"}[i%3], AmountFen: a, Basis: "晋价费〔2024〕1号"})
	}
	o, err := f.svc.CreateOrder(f.ctx, in)
	if err != nil {
		f.t.Fatalf("create order: %v", err)
	}
	return o
}

// start opens the order's charge at the simulator.
func (f *fixture) start(o pay.Order) pay.Checkout {
	f.t.Helper()
	c, err := f.svc.StartPayment(f.ctx, citizen, o.ID, f.sim.Name())
	if err != nil {
		f.t.Fatalf("start payment: %v", err)
	}
	return c
}

// get reads an order as its officer.
func (f *fixture) get(id string) pay.Order {
	f.t.Helper()
	o, err := f.svc.Get(f.ctx, officer, id)
	if err != nil {
		f.t.Fatalf("get %s: %v", id, err)
	}
	return o
}

// waitStatus waits for an order to reach want (callbacks arrive asynchronously).
func (f *fixture) waitStatus(id string, want pay.Status) pay.Order {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o := f.get(id)
		if o.Status == want {
			return o
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("order %s: status %s, want %s", o.Code, o.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count runs a COUNT query.
func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.d.QueryRow(f.ctx, q, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// audits counts audit entries of action on an object.
func (f *fixture) audits(action, object string) int {
	return f.count(`SELECT COUNT(*) FROM audit_log WHERE action = ? AND object = ?`, action, object)
}

// post sends a notification to our endpoint and returns the status.
func (f *fixture) post(n paysim.Notification) int {
	f.t.Helper()
	status, err := f.sim.Deliver(f.ctx, n)
	if err != nil {
		f.t.Fatalf("deliver: %v", err)
	}
	return status
}

func (f *fixture) notifyURL() string { return f.srv.URL + "/api/v1/pay/notify/" + f.sim.Name() }

// publicKey is the PEM of the node's key that signed a receipt.
func (f *fixture) publicKey(keyID string) string {
	for _, k := range f.keys.PublicKeys() {
		if k.ID == keyID {
			return k.PEM
		}
	}
	f.t.Fatalf("no public key %s", keyID)
	return ""
}

// events decodes the outbox's events of subject.
func (f *fixture) events(subject string) []pay.Event {
	f.t.Helper()
	rows, err := f.d.Query(f.ctx, `SELECT payload FROM outbox WHERE subject = ? ORDER BY seq`, subject)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []pay.Event
	for rows.Next() {
		var b []byte
		var e pay.Event
		if err := rows.Scan(&b); err != nil {
			f.t.Fatal(err)
		}
		if err := json.Unmarshal(b, &e); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

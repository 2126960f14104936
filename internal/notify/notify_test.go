package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/notify"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

var sources = []db.Source{crypto.Migrations, bus.Migrations, notify.Migrations}

// gateway records SMS and fails while fail is set.
type gateway struct {
	mu   sync.Mutex
	sent []string // "mobile text"
	fail bool
}

func (g *gateway) Send(_ context.Context, mobile, text string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail {
		return errors.New("gateway down")
	}
	g.sent = append(g.sent, mobile+" "+text)
	return nil
}

func (g *gateway) messages() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.sent...)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	ctx   context.Context
	d     *db.DB
	clock *clock
	sms   *gateway
	svc   *notify.Service
	apps  map[string]notify.Application
}

var (
	zhang = authz.Subject{Kind: authz.Citizen, ID: "acc-zhang"}
	li    = authz.Subject{Kind: authz.Citizen, ID: "acc-li"}
)

// definitions names the steps of the fixture's case definition.
type definitions struct{}

func (definitions) GetDefinition(_ context.Context, key string, version int) (workflow.Definition, error) {
	return workflow.Definition{Key: key, Version: version, Name: "个体工商户设立登记", Steps: []workflow.Step{
		{Key: "accept", Name: "受理"}, {Key: "decide", Name: "核准登记"}}}, nil
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), d: d, clock: &clock{t: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)}, sms: &gateway{},
		apps: map[string]notify.Application{}}
	keys, err := crypto.Open(f.ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = notify.New(d, f.sms, notify.Options{Now: f.clock.Now, Fields: keys.FieldCipher(), Definitions: definitions{},
		Application: func(_ context.Context, id string) (notify.Application, error) {
			a, ok := f.apps[id]
			if !ok {
				return notify.Application{}, i18n.ErrNotFound
			}
			return a, nil
		}})
	return f
}

func (f *fixture) send(t *testing.T, m notify.Message) string {
	t.Helper()
	var id string
	err := f.d.InTx(f.ctx, func(tx *db.Tx) error {
		var err error
		id, err = f.svc.Send(f.ctx, tx, m)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func msg(to authz.Subject, n int) notify.Message {
	return notify.Message{Recipient: to, Title: i18n.T(fmt.Sprintf("消息 %d", n), fmt.Sprintf("Message %d", n)),
		Body: i18n.T("您的申请已提交。", "Your application was submitted."), Link: "/account/applications/1"}
}

func TestInbox(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		var ids []string
		for i := range 5 {
			ids = append(ids, f.send(t, msg(zhang, i)))
		}
		f.send(t, msg(li, 9))
		page, err := f.svc.Inbox(f.ctx, zhang, notify.Page{Limit: 3})
		if err != nil || len(page.Messages) != 3 || page.Unread != 5 || page.Next == "" || page.Messages[0].ID != ids[4] ||
			page.Messages[0].Title.EN != "Message 4" || page.Messages[0].Link != "/account/applications/1" {
			t.Fatalf("first page: %+v %v", page, err)
		}
		next, err := f.svc.Inbox(f.ctx, zhang, notify.Page{Limit: 3, Before: page.Next})
		if err != nil || len(next.Messages) != 2 || next.Next != "" || next.Messages[1].ID != ids[0] {
			t.Fatalf("second page: %+v %v", next, err)
		}
		if err := f.svc.MarkRead(f.ctx, zhang, ids[4]); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.MarkRead(f.ctx, zhang, ids[4]); err != nil { // again: nothing changes
			t.Fatal(err)
		}
		if n, _ := f.svc.Unread(f.ctx, zhang); n != 4 {
			t.Errorf("unread %d", n)
		}
		if err := f.svc.MarkRead(f.ctx, li, ids[3]); !errors.Is(err, notify.ErrNotFound) {
			t.Errorf("marking another's message: %v", err)
		}
		unread, _ := f.svc.Inbox(f.ctx, zhang, notify.Page{UnreadOnly: true})
		if len(unread.Messages) != 4 || unread.Messages[0].ReadAt != nil {
			t.Errorf("unread only: %d", len(unread.Messages))
		}
		if n, err := f.svc.MarkAllRead(f.ctx, zhang); err != nil || n != 4 {
			t.Errorf("mark all: %d %v", n, err)
		}
		if n, _ := f.svc.Unread(f.ctx, li); n != 1 {
			t.Errorf("li's unread %d", n)
		}
		if _, err := f.svc.Inbox(f.ctx, authz.Subject{}, notify.Page{}); !errors.Is(err, i18n.ErrUnauthorized) {
			t.Errorf("anonymous inbox: %v", err)
		}
		for name, m := range map[string]notify.Message{
			"no recipient": {Title: i18n.T("a", "a"), Body: i18n.T("b", "b")},
			"no title":     {Recipient: zhang, Body: i18n.T("b", "b")},
			"no body":      {Recipient: zhang, Title: i18n.T("a", "a")},
			"foreign link": {Recipient: zhang, Title: i18n.T("a", "a"), Body: i18n.T("b", "b"), Link: "//evil.example/x"},
			"url link":     {Recipient: zhang, Title: i18n.T("a", "a"), Body: i18n.T("b", "b"), Link: "https://evil.example/"},
			"bad phone":    {Recipient: zhang, Title: i18n.T("a", "a"), Body: i18n.T("b", "b"), SMSPhone: "12345"},
		} {
			err := f.d.InTx(f.ctx, func(tx *db.Tx) error { _, err := f.svc.Send(f.ctx, tx, m); return err })
			if _, ok := i18n.As(err); !ok {
				t.Errorf("%s: %v", name, err)
			}
		}
	}, sources...)
}

func TestSMS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		m := msg(zhang, 1)
		m.SMSPhone, m.SMSText = "138 0000 0001", "您申请的事项已办结。"
		id := f.send(t, m)
		if got := f.sms.messages(); len(got) != 1 || got[0] != "13800000001 【山西政务】您申请的事项已办结。" {
			t.Fatalf("sent %q", got)
		}
		var state string
		var phone []byte
		if err := d.QueryRow(f.ctx, `SELECT sms_state, sms_phone_enc FROM notifications WHERE id = ?`, id).Scan(&state, &phone); err != nil ||
			state != "sent" || phone != nil {
			t.Errorf("after sending: %s %v %v", state, phone, err)
		}
		// A rolled-back transaction sends nothing.
		_ = d.InTx(f.ctx, func(tx *db.Tx) error {
			if _, err := f.svc.Send(f.ctx, tx, m); err != nil {
				return err
			}
			return errors.New("rollback")
		})
		if len(f.sms.messages()) != 1 {
			t.Errorf("a rolled-back message was sent")
		}
		// The gateway is down: the message is kept, the SMS retried with backoff, then given up.
		f.sms.fail = true
		id = f.send(t, m)
		if err := d.QueryRow(f.ctx, `SELECT sms_state, sms_phone_enc FROM notifications WHERE id = ?`, id).Scan(&state, &phone); err != nil ||
			state != "pending" || phone == nil || bytes.Contains(phone, []byte("13800000001")) {
			t.Fatalf("pending: %s %v", state, err)
		}
		if res, _ := f.svc.DeliverSMS(f.ctx); res.Sent+res.Failed != 0 {
			t.Errorf("retried before the backoff: %+v", res)
		}
		f.clock.add(3 * time.Minute)
		if res, _ := f.svc.DeliverSMS(f.ctx); res.Failed != 1 {
			t.Errorf("second attempt: %+v", res)
		}
		f.sms.fail = false
		f.clock.add(5 * time.Minute)
		if res, err := f.svc.DeliverSMS(f.ctx); res.Sent != 1 || err != nil {
			t.Errorf("third attempt: %+v %v", res, err)
		}
		if got := f.sms.messages(); len(got) != 2 {
			t.Errorf("sent %d", len(got))
		}
		// Given up after MaxSMSAttempts.
		f.sms.fail = true
		id = f.send(t, m)
		for range 6 {
			f.clock.add(7 * time.Hour)
			_, _ = f.svc.DeliverSMS(f.ctx)
		}
		if err := d.QueryRow(f.ctx, `SELECT sms_state, sms_phone_enc FROM notifications WHERE id = ?`, id).Scan(&state, &phone); err != nil ||
			state != "failed" || phone != nil {
			t.Errorf("given up: %s %v", state, err)
		}
		// The message itself is there all along.
		if page, _ := f.svc.Inbox(f.ctx, zhang, notify.Page{}); len(page.Messages) != 3 || page.Messages[0].SMS != "failed" {
			t.Errorf("inbox %+v", page)
		}
	}, sources...)
}

// caseEvent is a workflow case event as the bus delivers it.
func caseEvent(t *testing.T, id string, a workflow.Action, p workflow.EventPayload) bus.Event {
	t.Helper()
	p.Action = a
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return bus.Event{ID: id, Subject: a.Subject(), Time: time.Now(), Data: data}
}

func TestOnCaseEvent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.apps["app-1"] = notify.Application{ID: "app-1", Number: "20260302-140105-000001", ItemName: "个体工商户设立登记",
			ItemNameEn: "Registration of an individual business", Applicant: zhang, Phone: "13800000001"}
		base := workflow.EventPayload{CaseID: "case-1", Ref: "application:app-1", Definition: "service:010020100100", DefinitionVersion: 1,
			ApplicantKind: authz.Citizen, ApplicantID: "acc-zhang", State: workflow.StateOpen, Step: "accept"}
		suspended := base
		suspended.State, suspended.Comment, suspended.Items = workflow.StateSuspended, "经营场所证明缺失", []string{"经营场所使用证明"}
		advanced := base
		advanced.Step = "decide"
		rejected := base
		rejected.State, rejected.Outcome, rejected.Comment = workflow.StateClosed, workflow.OutcomeRejected, "经营范围属于禁止项目"
		other := base
		other.Ref = "hotline:42"
		unknown := base
		unknown.Ref = "application:gone"
		events := []bus.Event{
			caseEvent(t, "e1", workflow.ActionOpened, base),
			caseEvent(t, "e2", workflow.ActionClaimed, base), // the department's business: no message
			caseEvent(t, "e3", workflow.ActionSuspended, suspended),
			caseEvent(t, "e3", workflow.ActionSuspended, suspended), // redelivered: still one message
			caseEvent(t, "e4", workflow.ActionAdvanced, advanced),
			caseEvent(t, "e5", workflow.ActionReminded, base),
			caseEvent(t, "e6", workflow.ActionClosed, rejected),
			caseEvent(t, "e7", workflow.ActionOpened, other),   // not an application
			caseEvent(t, "e8", workflow.ActionOpened, unknown), // an application that is gone
		}
		for _, ev := range events {
			if err := f.svc.OnCaseEvent(f.ctx, ev); err != nil {
				t.Fatalf("%s: %v", ev.Subject, err)
			}
		}
		page, err := f.svc.Inbox(f.ctx, zhang, notify.Page{})
		if err != nil || len(page.Messages) != 4 {
			t.Fatalf("%d messages %v", len(page.Messages), err)
		}
		want := []struct{ title, body string }{
			{"申请不予许可：个体工商户设立登记", "理由：经营范围属于禁止项目"},
			{"办理进度：个体工商户设立登记", "已进入“核准登记”环节"},
			{"请补正材料：个体工商户设立登记", "补正事项：经营场所使用证明"},
			{"申请已提交：个体工商户设立登记", "受理编号 20260302-140105-000001"},
		}
		for i, w := range want {
			m := page.Messages[i]
			if m.Title.ZH != w.title || !strings.Contains(m.Body.ZH, w.body) || m.Title.EN == "" || m.Body.EN == "" || m.Link != "/account/applications/app-1" {
				t.Errorf("message %d: %+v", i, m)
			}
		}
		sms := f.sms.messages()
		if len(sms) != 4 || !strings.Contains(sms[1], "需要补正材料") || !strings.HasPrefix(sms[0], "13800000001 【山西政务】您申请的“个体工商户设立登记”") {
			t.Errorf("sms %q", sms)
		}
	}, sources...)
}

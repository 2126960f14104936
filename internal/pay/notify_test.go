package pay_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// TestDuplicateAndOutOfOrderCallbacks delivers the simulator's notifications by hand: twice,
// and a refund's before its payment's.
func TestDuplicateAndOutOfOrderCallbacks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{manual: true})
		o := f.order(3000)
		f.start(o)
		if _, err := f.sim.Pay(o.Code); err != nil {
			t.Fatal(err)
		}
		// The bank refunds part of it on its own (a dispute) before we heard of the payment.
		if _, err := f.sim.BankRefund(o.Code, "BR-1", 1000); err != nil {
			t.Fatal(err)
		}
		queued := f.sim.Pending()
		if len(queued) != 2 || queued[0].Txn.Kind != pay.TxnPay || queued[1].Txn.Kind != pay.TxnRefund {
			t.Fatalf("queued %+v", queued)
		}
		payN, refundN := queued[0], queued[1]

		// The refund arrives first: accepted (200), held, the order untouched.
		if s := f.post(refundN); s != 200 {
			t.Fatalf("refund first: %d", s)
		}
		if got := f.get(o.ID); got.Status != pay.StatusPaying || got.RefundedFen != 0 {
			t.Fatalf("after an early refund: %+v", got)
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_txns WHERE status = 'held'`); n != 1 {
			t.Fatalf("%d held transactions", n)
		}
		if s := f.post(refundN); s != 200 { // and again: still held, once
			t.Fatalf("refund again: %d", s)
		}

		// The payment arrives: paid, then the held refund applies at once.
		if s := f.post(payN); s != 200 {
			t.Fatalf("payment: %d", s)
		}
		got := f.get(o.ID)
		if got.Status != pay.StatusPartiallyRefunded || got.PaidFen != 3000 || got.RefundedFen != 1000 {
			t.Fatalf("after the payment: %+v", got)
		}
		// Duplicates of both, in any order, change nothing; the state never goes back.
		for _, n := range []paysim.Notification{payN, refundN, payN, payN} {
			if s := f.post(n); s != 200 {
				t.Fatalf("duplicate %s: %d", n.Txn.Kind, s)
			}
		}
		again := f.get(o.ID)
		if again.Status != got.Status || again.RefundedFen != 1000 || !again.UpdatedAt.Equal(got.UpdatedAt) {
			t.Fatalf("duplicates changed the order: %+v", again)
		}
		refunds, err := f.svc.Refunds(f.ctx, citizen, o.ID)
		if err != nil || len(refunds) != 1 || refunds[0].RequestID != "channel:BR-1" || refunds[0].Status != pay.RefundSucceeded {
			t.Fatalf("refunds %+v %v", refunds, err)
		}
		obj := "pay_order:" + o.ID
		for action, want := range map[string]int{pay.ActionPaid: 1, pay.ActionRefundRecorded: 1} {
			if n := f.audits(action, obj); n != want {
				t.Errorf("audit %s: %d, want %d", action, n, want)
			}
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_txns WHERE status = 'applied'`); n != 2 {
			t.Errorf("%d applied transactions, want 2", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_receipts`); n != 1 {
			t.Errorf("%d receipts, want 1", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM outbox WHERE subject IN (?, ?)`, pay.EventPaid, pay.EventRefunded); n != 2 {
			t.Errorf("%d events, want 2", n)
		}

		// The same notification many times at once (a bank retrying over several connections):
		// one payment.
		o2 := f.order(700)
		f.start(o2)
		if _, err := f.sim.Pay(o2.Code); err != nil {
			t.Fatal(err)
		}
		pending := f.sim.Pending()
		burst := pending[len(pending)-1]
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		for i := range statuses {
			wg.Go(func() { statuses[i], _ = f.sim.Deliver(f.ctx, burst) })
		}
		wg.Wait()
		for i, s := range statuses {
			if s != 200 {
				t.Fatalf("concurrent delivery %d: %d", i, s)
			}
		}
		assertOnce(t, f, o2)

		// The rest of the money back: refunded in full; nothing more can be refunded.
		r, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "rest", AmountFen: 2000, Reason: "不予受理，退还余款"})
		if err != nil || r.Status != pay.RefundSucceeded {
			t.Fatalf("refund the rest: %+v %v", r, err)
		}
		if got := f.get(o.ID); got.Status != pay.StatusRefunded || got.RefundedFen != 3000 {
			t.Fatalf("after refunding the rest: %+v", got)
		}
		// Its notification, queued by the bank, is a duplicate of what the answer recorded.
		// (The queue still holds the three notifications delivered by hand above: duplicates too.)
		if n, err := f.sim.DeliverAll(f.ctx); err != nil || n != 4 {
			t.Fatalf("deliver the refund's notification: %d %v", n, err)
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_txns`); n != 4 {
			t.Errorf("%d channel transactions, want 4", n)
		}
	}, sources...)
}

func TestCallbackSignatureAndConsistency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{manual: true})
		o := f.order(1500)
		f.start(o)
		txn, err := f.sim.Pay(o.Code)
		if err != nil {
			t.Fatal(err)
		}
		good := f.sim.Pending()[0]

		// Signed with a key that is not the bank's: 401, logged, nothing stored.
		f.sim.SetFaults(paysim.Faults{BadSignature: true})
		forged := f.sim.NotificationFor(txn, f.notifyURL())
		f.sim.SetFaults(paysim.Faults{})
		tampered := good
		tampered.Body = bytes.Replace(good.Body, []byte(`"amount_fen":1500`), []byte(`"amount_fen":15`), 1)
		unsigned := good
		unsigned.Header = good.Header.Clone()
		unsigned.Header.Del(paysim.SignatureHeader)
		for name, n := range map[string]paysim.Notification{"foreign key": forged, "body altered": tampered, "unsigned": unsigned} {
			if s := f.post(n); s != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", name, s)
			}
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_txns`); n != 0 {
			t.Fatalf("%d transactions stored from bad signatures", n)
		}
		if got := f.get(o.ID); got.Status != pay.StatusPaying {
			t.Fatalf("bad signatures moved the order: %s", got.Status)
		}
		if !strings.Contains(f.log.String(), "bad signature") {
			t.Errorf("bad signatures not logged:\n%s", f.log.String())
		}

		// Authentic but wrong: an amount that is not the order's. 422, recorded, order untouched.
		wrong := txn
		wrong.TxnID, wrong.AmountFen = "P-WRONG-1", 1
		if s := f.post(f.sim.NotificationFor(wrong, f.notifyURL())); s != http.StatusUnprocessableEntity {
			t.Fatalf("wrong amount: %d", s)
		}
		unknown := txn
		unknown.TxnID, unknown.Code = "P-UNKNOWN-1", withCheck("1401052503090999999")
		if s := f.post(f.sim.NotificationFor(unknown, f.notifyURL())); s != http.StatusUnprocessableEntity {
			t.Fatalf("unknown code: %d", s)
		}
		if got := f.get(o.ID); got.Status != pay.StatusPaying {
			t.Fatalf("a wrong amount moved the order: %s", got.Status)
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_txns WHERE status = 'rejected'`); n != 2 {
			t.Fatalf("%d rejected transactions recorded, want 2", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM audit_log WHERE action = ?`, pay.ActionTxnRejected); n != 2 {
			t.Fatalf("%d rejection audit entries", n)
		}

		// The real one still goes through; then an authentic second payment is refused.
		if s := f.post(good); s != 200 {
			t.Fatalf("good notification: %d", s)
		}
		second := txn
		second.TxnID = "P-SECOND-1"
		if s := f.post(f.sim.NotificationFor(second, f.notifyURL())); s != http.StatusUnprocessableEntity {
			t.Fatalf("second payment: %d", s)
		}
		if got := f.get(o.ID); got.Status != pay.StatusPaid || got.ChannelTxnID != txn.TxnID {
			t.Fatalf("after a second payment: %+v", got)
		}

		// Malformed input through the handler: method, channel, body.
		for _, tc := range []struct {
			method, path, body string
			want               int
		}{
			{"GET", "/api/v1/pay/notify/paysim", "", http.StatusMethodNotAllowed},
			{"POST", "/api/v1/pay/notify/nosuchbank", "{}", http.StatusNotFound},
			{"POST", "/api/v1/pay/notify/paysim", "not json", http.StatusUnauthorized},
			{"POST", "/api/v1/pay/notify/paysim", strings.Repeat("x", 70<<10), http.StatusBadRequest},
		} {
			req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want && !(tc.method == "GET" && resp.StatusCode == http.StatusMethodNotAllowed) {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
		}
	}, sources...)
}

// TestCrashBetweenChargeAndRecording: the bank took the money but our node did not record
// it — it was down when the callback came, or it died inside the transaction. Nothing is
// lost (the bank's retries and Sync bring the payment in) and nothing is doubled.
func TestCrashBetweenChargeAndRecording(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{})

		// 1. The node is down while the payer pays; Sync, run when it is back, finds the payment
		// by querying the bank; the bank's retry arrives after and changes nothing.
		f.down.Store(true)
		o := f.order(4200)
		f.start(o)
		if _, err := f.sim.Pay(o.Code); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return f.sim.Stats().Refused >= 2 }, "the bank retries")
		if got := f.get(o.ID); got.Status != pay.StatusPaying {
			t.Fatalf("recorded while down: %s", got.Status)
		}
		res, err := f.svc.Sync(f.ctx)
		if err != nil || res.Checked != 1 || res.Recorded != 1 {
			t.Fatalf("sync: %+v %v", res, err)
		}
		if got := f.get(o.ID); got.Status != pay.StatusPaid || got.PaidFen != 4200 {
			t.Fatalf("after sync: %+v", got)
		}
		delivered := f.sim.Stats().Delivered
		f.down.Store(false)
		waitFor(t, func() bool { return f.sim.Stats().Delivered > delivered }, "the bank's retry is acknowledged")
		if res, err := f.svc.Sync(f.ctx); err != nil || res.Checked != 0 {
			t.Fatalf("second sync: %+v %v", res, err)
		}
		assertOnce(t, f, o)

		// 2. The node dies inside the recording transaction (twice): it rolls back, answers
		// 500, and the bank's next retry records the payment once.
		f.failAudit.Store(2)
		o2 := f.order(4300)
		f.start(o2)
		if _, err := f.sim.Pay(o2.Code); err != nil {
			t.Fatal(err)
		}
		f.waitStatus(o2.ID, pay.StatusPaid)
		if f.failAudit.Load() != 0 {
			t.Fatal("the failures were not exercised")
		}
		assertOnce(t, f, o2)

		// 3. Sync and callbacks racing on the same payment: still once.
		o3 := f.order(4400)
		f.start(o3)
		if _, err := f.sim.Pay(o3.Code); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Sync(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.waitStatus(o3.ID, pay.StatusPaid)
		time.Sleep(50 * time.Millisecond)
		assertOnce(t, f, o3)
	}, sources...)
}

// assertOnce checks that an order's payment was recorded exactly once.
func assertOnce(t *testing.T, f *fixture, o pay.Order) {
	t.Helper()
	obj := "pay_order:" + o.ID
	if n := f.count(`SELECT COUNT(*) FROM pay_txns WHERE code = ? AND kind = 'pay'`, o.Code); n != 1 {
		t.Errorf("order %s: %d payment transactions", o.Code, n)
	}
	if n := f.count(`SELECT COUNT(*) FROM pay_receipts WHERE order_id = ?`, o.ID); n != 1 {
		t.Errorf("order %s: %d receipts", o.Code, n)
	}
	if n := f.audits(pay.ActionPaid, obj); n != 1 {
		t.Errorf("order %s: %d paid audit entries", o.Code, n)
	}
	n := 0
	for _, e := range f.events(pay.EventPaid) {
		if e.OrderID == o.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("order %s: %d paid events", o.Code, n)
	}
	if got := f.get(o.ID); got.PaidFen != o.TotalFen {
		t.Errorf("order %s: paid %d of %d", o.Code, got.PaidFen, o.TotalFen)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRefunds(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{faults: paysim.Faults{DuplicateRate: 1}})
		o := f.order(1000, 500)
		if _, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "r0", AmountFen: 100, Reason: "多收"}); !errors.Is(err, pay.ErrState) {
			t.Fatalf("refund of an unpaid order: %v", err)
		}
		f.start(o)
		if _, err := f.sim.Pay(o.Code); err != nil {
			t.Fatal(err)
		}
		f.waitStatus(o.ID, pay.StatusPaid)

		for _, tc := range []struct {
			name  string
			in    pay.RefundInput
			field string
		}{
			{"no request id", pay.RefundInput{AmountFen: 100, Reason: "x"}, "request_id"},
			{"reserved request id", pay.RefundInput{RequestID: "channel:x", AmountFen: 100, Reason: "x"}, "request_id"},
			{"zero", pay.RefundInput{RequestID: "z", Reason: "x"}, "amount_fen"},
			{"no reason", pay.RefundInput{RequestID: "z", AmountFen: 100}, "reason"},
		} {
			_, err := f.svc.Refund(f.ctx, officer, o.ID, tc.in)
			if e, ok := i18n.As(err); !ok || e.Field != tc.field || e.HTTPStatus() != 400 {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
		if _, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "big", AmountFen: 1501, Reason: "多收"}); !errors.Is(err, pay.ErrRefundTooMuch) {
			t.Fatalf("more than paid: %v", err)
		}

		r1, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "r1", AmountFen: 500, Reason: "加急未办"})
		if err != nil || r1.Status != pay.RefundSucceeded || r1.TxnID == "" {
			t.Fatalf("partial refund: %+v %v", r1, err)
		}
		// The same request again is the same refund, not a second one.
		again, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "r1", AmountFen: 500, Reason: "加急未办"})
		if err != nil || again.ID != r1.ID {
			t.Fatalf("repeat: %+v %v", again, err)
		}
		if _, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "r1", AmountFen: 400, Reason: "x"}); !errors.Is(err, pay.ErrRefundConflict) {
			t.Fatalf("same id, other amount: %v", err)
		}
		if got := f.get(o.ID); got.Status != pay.StatusPartiallyRefunded || got.RefundedFen != 500 {
			t.Fatalf("after a partial refund: %+v", got)
		}
		if _, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "r2", AmountFen: 1001, Reason: "x"}); !errors.Is(err, pay.ErrRefundTooMuch) {
			t.Fatalf("beyond the rest: %v", err)
		}

		// The bank is down: the refund stays pending (outcome unknown), holds its amount, and
		// Sync completes it when the bank is back.
		f.sim.SetFaults(paysim.Faults{Unavailable: true, DuplicateRate: 1})
		r2, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "r2", AmountFen: 1000, Reason: "不予受理"})
		if err != nil || r2.Status != pay.RefundPending {
			t.Fatalf("refund while the bank is down: %+v %v", r2, err)
		}
		if _, err := f.svc.Refund(f.ctx, officer, o.ID, pay.RefundInput{RequestID: "r3", AmountFen: 1, Reason: "x"}); !errors.Is(err, pay.ErrRefundTooMuch) {
			t.Fatalf("a pending refund must hold its amount: %v", err)
		}
		if _, err := f.svc.Sync(f.ctx); err != nil {
			t.Fatalf("sync while down: %v", err) // unknown outcomes are not errors
		}
		f.sim.SetFaults(paysim.Faults{DuplicateRate: 1})
		res, err := f.svc.Sync(f.ctx)
		if err != nil || res.Refunds != 1 {
			t.Fatalf("sync: %+v %v", res, err)
		}
		if got := f.get(o.ID); got.Status != pay.StatusRefunded || got.RefundedFen != 1500 {
			t.Fatalf("after sync: %+v", got)
		}
		// Every notification was sent twice (DuplicateRate 1); all were absorbed.
		waitFor(t, func() bool { return f.sim.Stats().Duplicates >= 3 }, "duplicated notifications")
		time.Sleep(50 * time.Millisecond)
		if n := f.count(`SELECT COUNT(*) FROM pay_txns`); n != 3 {
			t.Fatalf("%d transactions, want 3", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM audit_log WHERE action = ?`, pay.ActionRefundDone); n != 2 {
			t.Fatalf("%d refund audit entries, want 2", n)
		}
		refunds, _ := f.svc.Refunds(f.ctx, officer, o.ID)
		if len(refunds) != 2 {
			t.Fatalf("refunds %+v", refunds)
		}
	}, sources...)
}

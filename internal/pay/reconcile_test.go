package pay_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

func TestMain(m *testing.M) {
	// The kernel's error writer logs rejected callbacks to the default logger; the tests
	// assert on their own logger instead.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// TestReconcile plants mismatches on both sides and finds each of them.
func TestReconcile(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{manual: true})
		today := f.clock.now().In(calendar.Beijing)
		day := today.Format(time.DateOnly)

		var orders []pay.Order
		for _, amount := range []int64{1000, 2000, 3000, 4000} {
			o := f.order(amount)
			f.start(o)
			if _, err := f.sim.Pay(o.Code); err != nil {
				t.Fatal(err)
			}
			orders = append(orders, o)
		}
		if _, err := f.sim.DeliverAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Refund(f.ctx, officer, orders[0].ID, pay.RefundInput{RequestID: "rr", AmountFen: 300, Reason: "多收"}); err != nil {
			t.Fatal(err)
		}
		// A clean day first.
		reps, err := f.svc.Reconcile(f.ctx, today)
		if err != nil || len(reps) != 1 {
			t.Fatalf("reconcile: %+v %v", reps, err)
		}
		r := reps[0]
		if !r.Balanced() || r.Matched != 5 || r.ChannelCount != 5 || r.OurCount != 5 || r.ChannelPayFen != 10000 ||
			r.OurPayFen != 10000 || r.ChannelRefundFen != 300 || r.OurRefundFen != 300 || r.Day != day {
			t.Fatalf("clean day: %+v", r)
		}

		// Plant: the bank's file loses one payment, misstates another, and lists a payment we
		// never heard of; on our side a payment is held up (its notification rejected).
		lost, misstated := orders[1], orders[2]
		held := f.order(5000)
		f.start(held)
		heldTxn, err := f.sim.Pay(held.Code)
		if err != nil {
			t.Fatal(err)
		}
		wrong := heldTxn
		wrong.AmountFen = 50 // our side records it as rejected: the amount does not match
		if s := f.post(f.sim.NotificationFor(wrong, f.notifyURL())); s != 422 {
			t.Fatalf("planting a rejected transaction: %d", s)
		}
		f.sim.SetFaults(paysim.Faults{Statement: func(d string, lines []pay.StatementLine) []pay.StatementLine {
			var out []pay.StatementLine
			for _, l := range lines {
				switch l.Code {
				case lost.Code:
					continue
				case misstated.Code:
					l.AmountFen++
				case held.Code:
					l.AmountFen = 50 // the bank's file agrees with the rejected notification
				}
				out = append(out, l)
			}
			return append(out, pay.StatementLine{Date: d, TxnID: "P-STRANGER", Code: withCheck("1401052503090000999"), AmountFen: 777, Kind: pay.TxnPay})
		}})
		reps, err = f.svc.Reconcile(f.ctx, today)
		if err != nil {
			t.Fatal(err)
		}
		r = reps[0]
		want := map[string]pay.MismatchKind{
			"P-STRANGER":                     pay.MissingOurs,
			f.get(lost.ID).ChannelTxnID:      pay.MissingChannel,
			f.get(misstated.ID).ChannelTxnID: pay.AmountDiffers,
			heldTxn.TxnID:                    pay.StatusDiffers,
		}
		if len(r.Mismatches) != len(want) {
			t.Fatalf("mismatches %+v", r.Mismatches)
		}
		for _, m := range r.Mismatches {
			if want[m.TxnID] != m.Kind {
				t.Errorf("mismatch %+v, want kind %s", m, want[m.TxnID])
			}
			if m.Kind == pay.AmountDiffers && (m.OurAmountFen != 3000 || m.ChannelAmountFen != 3001) {
				t.Errorf("amounts %+v", m)
			}
		}
		if r.Matched != 3 || r.Balanced() {
			t.Errorf("report %+v", r)
		}

		// The report is stored, and a rerun of the day replaces it (the bank's true file now
		// differs from our rejected record in amount).
		stored, err := f.svc.ReconReport(f.ctx, auditor, f.sim.Name(), day)
		if err != nil || stored.ID != r.ID || len(stored.Mismatches) != 4 {
			t.Fatalf("stored report: %+v %v", stored, err)
		}
		f.sim.SetFaults(paysim.Faults{})
		if _, err := f.svc.Reconcile(f.ctx, today); err != nil {
			t.Fatal(err)
		}
		list, err := f.svc.ReconReports(f.ctx, auditor, 10)
		if err != nil || len(list) != 1 || len(list[0].Mismatches) != 1 ||
			list[0].Mismatches[0].TxnID != heldTxn.TxnID || list[0].Mismatches[0].Kind != pay.AmountDiffers {
			t.Fatalf("after the rerun: %+v %v", list, err)
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_recon_items`); n != 1 {
			t.Fatalf("%d stored mismatches after the rerun", n)
		}
		if n := f.count(`SELECT COUNT(*) FROM audit_log WHERE action = ?`, pay.ActionReconcile); n != 3 {
			t.Fatalf("%d reconciliation audit entries", n)
		}
		// A channel that cannot give its statement is an error, and no report.
		f.sim.SetFaults(paysim.Faults{Unavailable: true})
		if _, err := f.svc.Reconcile(f.ctx, today.AddDate(0, 0, -1)); !errors.Is(err, pay.ErrChannelUnavailable) {
			t.Fatalf("statement unavailable: %v", err)
		}
	}, sources...)
}

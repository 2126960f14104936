package pay_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// TestPayByQR is the payer's journey: an order, the QR code of its pay page, the click on
// 确认支付 at the bank, the signed callback, and a receipt anyone can verify offline.
func TestPayByQR(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{})
		o := f.order(2000, 500)
		if o.TotalFen != 2500 || o.Status != pay.StatusUnpaid || len(o.Lines) != 2 {
			t.Fatalf("order %+v", o)
		}
		if _, err := pay.ValidateCode(o.Code); err != nil || o.Code[:6] != "140105" {
			t.Fatalf("payment code %s: %v", o.Code, err)
		}

		png1, c, err := f.svc.PaymentQR(f.ctx, citizen, o.ID, f.sim.Name())
		if err != nil {
			t.Fatal(err)
		}
		if c.Order.Status != pay.StatusPaying || !strings.HasPrefix(c.PayURL, f.simSrv.URL+"/pay/"+o.Code) {
			t.Fatalf("checkout %+v", c)
		}
		assertQR(t, png1, c.PayURL)
		// A second start (a reload, another device) is the same charge.
		if c2 := f.start(o); c2.PayURL != c.PayURL {
			t.Fatalf("second start: %s, first %s", c2.PayURL, c.PayURL)
		}

		// The payer scans, sees the bank's page and clicks 确认支付.
		page := httpGet(t, c.PayURL)
		for _, want := range []string{"确认支付", "¥25.00", o.Code, "工本费、证照费"} {
			if !strings.Contains(page, want) {
				t.Fatalf("pay page lacks %q:\n%s", want, page)
			}
		}
		resp, err := http.PostForm(c.PayURL, url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "支付成功") || strings.Contains(string(body), `id="confirm"`) {
			t.Fatalf("confirm: %d\n%s", resp.StatusCode, body)
		}

		paid := f.waitStatus(o.ID, pay.StatusPaid)
		if paid.PaidFen != 2500 || paid.ChannelTxnID == "" || paid.PaidAt == nil || paid.Channel != f.sim.Name() {
			t.Fatalf("paid order %+v", paid)
		}
		rc, err := f.svc.Receipt(f.ctx, citizen, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rc.TotalFen != 2500 || rc.PayerName != "张伟" || rc.PayeeDept != "太原市公安局小店分局" || len(rc.Lines) != 2 ||
			len(rc.Code) != 8 || rc.Code[:2] != "14" || len(rc.Number) != 10 || len(rc.CheckCode) != 6 || rc.PaymentCode != o.Code {
			t.Fatalf("receipt %+v", rc)
		}
		pem := f.publicKey(rc.KeyID)
		if err := pay.VerifyReceipt(rc, pem); err != nil {
			t.Fatalf("offline verification: %v", err)
		}
		if err := f.svc.VerifyReceipt(rc); err != nil {
			t.Fatalf("online verification: %v", err)
		}
		forged := rc
		forged.TotalFen = 25
		if err := pay.VerifyReceipt(forged, pem); !errors.Is(err, pay.ErrReceiptAltered) {
			t.Fatalf("altered amount: %v", err)
		}
		forged = rc
		forged.Lines = append([]pay.Line(nil), rc.Lines...)
		forged.Lines[0].Name = "罚没款"
		if err := pay.VerifyReceipt(forged, pem); !errors.Is(err, pay.ErrReceiptAltered) {
			t.Fatalf("altered line: %v", err)
		}
		forged = rc
		forged.KeyID = "another-key"
		if err := pay.VerifyReceipt(forged, pem); !errors.Is(err, crypto.ErrBadSignature) {
			t.Fatalf("altered key id: %v", err)
		}
		if err := pay.VerifyReceipt(rc, otherPEM(t)); !errors.Is(err, crypto.ErrBadSignature) {
			t.Fatalf("another node's key: %v", err)
		}
		saved, _ := json.Marshal(rc)
		if back, err := pay.ParseReceipt(saved); err != nil || pay.VerifyReceipt(back, pem) != nil {
			t.Fatalf("saved receipt: %v", err)
		}

		// The change, its audit entry and its event committed together.
		obj := "pay_order:" + o.ID
		for _, a := range []string{pay.ActionCreate, pay.ActionStart, pay.ActionPaid} {
			if n := f.audits(a, obj); n != 1 {
				t.Errorf("audit %s: %d entries, want 1", a, n)
			}
		}
		if n := f.count(`SELECT COUNT(*) FROM outbox WHERE subject = ?`, pay.EventPaid); n != 1 {
			t.Errorf("%d paid events, want 1", n)
		}
		// A second click pays nothing more.
		resp, err = http.PostForm(c.PayURL, url.Values{})
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(50 * time.Millisecond)
		if n := f.count(`SELECT COUNT(*) FROM pay_txns`); n != 1 {
			t.Errorf("%d channel transactions after a second click, want 1", n)
		}
	}, sources...)
}

func otherPEM(t *testing.T) string {
	t.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := crypto.MarshalPublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

// assertQR checks that the PNG draws the QR code of content module for module.
func assertQR(t *testing.T, b []byte, content string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("QR PNG: %v", err)
	}
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bits := q.Bitmap()
	n := len(bits)
	size := img.Bounds().Dx()
	if size != n*pay.QRModulePixels || img.Bounds().Dy() != size {
		t.Fatalf("QR image %v for %d modules", img.Bounds(), n)
	}
	for y := range n {
		for x := range n {
			px := img.At(x*pay.QRModulePixels+pay.QRModulePixels/2, y*pay.QRModulePixels+pay.QRModulePixels/2)
			r, _, _, _ := px.RGBA()
			if dark := r < 0x8000; dark != bits[y][x] {
				t.Fatalf("QR module (%d,%d): dark=%v, want %v", x, y, dark, bits[y][x])
			}
		}
	}
}

func TestCreateOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{})
		base := func() pay.OrderInput {
			return pay.OrderInput{Ref: "application:a1", ItemCode: "140105-GA-0001", Payer: pay.Payer{Subject: citizen, Name: "张伟"},
				DeptID: "dept-ga", DeptName: "小店分局", Division: "140105", Lines: []pay.Line{{Name: "工本费", AmountFen: 1000}}}
		}
		for _, tc := range []struct {
			name  string
			edit  func(*pay.OrderInput)
			field string
		}{
			{"no ref", func(in *pay.OrderInput) { in.Ref = " " }, "ref"},
			{"no item", func(in *pay.OrderInput) { in.ItemCode = "" }, "item_code"},
			{"no department", func(in *pay.OrderInput) { in.DeptID = "" }, "dept_id"},
			{"staff payer", func(in *pay.OrderInput) { in.Payer.Subject = officer }, "payer"},
			{"anonymous payer", func(in *pay.OrderInput) { in.Payer.Subject = authz.Subject{} }, "payer"},
			{"no payer name", func(in *pay.OrderInput) { in.Payer.Name = "" }, "payer.name"},
			{"bad division", func(in *pay.OrderInput) { in.Division = "991234" }, "division"},
			{"no lines", func(in *pay.OrderInput) { in.Lines = nil }, "lines"},
			{"zero fee", func(in *pay.OrderInput) { in.Lines[0].AmountFen = 0 }, "lines"},
			{"negative fee", func(in *pay.OrderInput) { in.Lines[0].AmountFen = -100 }, "lines"},
			{"unnamed fee", func(in *pay.OrderInput) { in.Lines[0].Name = "" }, "lines"},
			{"overflow", func(in *pay.OrderInput) {
				in.Lines = []pay.Line{{Name: "a", AmountFen: 1 << 62}, {Name: "b", AmountFen: 1 << 62}}
			}, "lines"},
			{"past deadline", func(in *pay.OrderInput) { in.ExpiresAt = time.Now().Add(-time.Hour) }, "expires_at"},
		} {
			in := base()
			tc.edit(&in)
			_, err := f.svc.CreateOrder(f.ctx, in)
			e, ok := i18n.As(err)
			if !ok || e.HTTPStatus() != 400 || e.Field != tc.field {
				t.Errorf("%s: got %v, want a 400 on %s", tc.name, err, tc.field)
			}
		}
		if n := f.count(`SELECT COUNT(*) FROM pay_orders`); n != 0 {
			t.Fatalf("%d orders after invalid input", n)
		}

		o1, err := f.svc.CreateOrder(f.ctx, base())
		if err != nil {
			t.Fatal(err)
		}
		if !o1.ExpiresAt.Equal(db.Now(o1.CreatedAt.Add(7 * 24 * time.Hour))) {
			t.Errorf("default deadline %v, created %v", o1.ExpiresAt, o1.CreatedAt)
		}
		// The same ref again is the same order (the service engine may retry).
		o2, err := f.svc.CreateOrder(f.ctx, base())
		if err != nil || o2.ID != o1.ID || o2.Code != o1.Code {
			t.Fatalf("again: %+v %v; first %s", o2, err, o1.ID)
		}
		other := base()
		other.Lines[0].AmountFen = 2000
		if _, err := f.svc.CreateOrder(f.ctx, other); !errors.Is(err, pay.ErrRefConflict) {
			t.Fatalf("same ref, other fees: %v", err)
		}
		// Codes of one division and day run in sequence.
		next := base()
		next.Ref = "application:a2"
		o3, err := f.svc.CreateOrder(f.ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		c1, _ := pay.ValidateCode(o1.Code)
		c3, _ := pay.ValidateCode(o3.Code)
		if c3.Seq != c1.Seq+1 || c1.Seq != 1 {
			t.Fatalf("sequence %d then %d", c1.Seq, c3.Seq)
		}
		// Once closed, the ref may be raised again, with a new code.
		if _, err := f.svc.Close(f.ctx, officer, o1.ID, "申请已撤回"); err != nil {
			t.Fatal(err)
		}
		o4, err := f.svc.CreateOrder(f.ctx, other)
		if err != nil || o4.ID == o1.ID || o4.Code == o1.Code || o4.TotalFen != 2000 {
			t.Fatalf("after close: %+v %v", o4, err)
		}
		if n := f.audits(pay.ActionCreate, "pay_order:"+o1.ID); n != 1 {
			t.Errorf("%d create entries for the first order", n)
		}
	}, sources...)
}

func TestAuthorization(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{})
		o := f.order(1000)
		enterprise := authz.Subject{Kind: authz.Enterprise, ID: citizen.ID}
		for _, tc := range []struct {
			name  string
			actor authz.Subject
			want  error
		}{
			{"payer", citizen, nil},
			{"department officer", officer, nil},
			{"provincial auditor", auditor, nil},
			{"another citizen", stranger, i18n.ErrNotFound},
			{"an enterprise with the payer's id", enterprise, i18n.ErrNotFound},
			{"another department's officer", otherOfficer, i18n.ErrNotFound},
			{"same department id, another city", farOfficer, i18n.ErrNotFound},
			{"anonymous", authz.Subject{}, i18n.ErrUnauthorized},
		} {
			_, err := f.svc.Get(f.ctx, tc.actor, o.ID)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("Get as %s: %v, want %v", tc.name, err, tc.want)
			}
			list, err := f.svc.List(f.ctx, tc.actor, pay.Filter{})
			seen := err == nil && len(list) == 1 && list[0].ID == o.ID
			if seen != (tc.want == nil) {
				t.Errorf("List as %s: %d orders, %v", tc.name, len(list), err)
			}
		}
		// Only the payer starts the payment; only the department's officers refund or close.
		if _, err := f.svc.StartPayment(f.ctx, officer, o.ID, f.sim.Name()); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("officer starts payment: %v", err)
		}
		if _, err := f.svc.StartPayment(f.ctx, stranger, o.ID, f.sim.Name()); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("stranger starts payment: %v", err)
		}
		if _, err := f.svc.StartPayment(f.ctx, citizen, o.ID, "nosuchbank"); !errors.Is(err, pay.ErrUnknownChannel) {
			t.Errorf("unknown channel: %v", err)
		}
		if _, err := f.svc.Close(f.ctx, auditor, o.ID, ""); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("auditor closes: %v", err)
		}
		f.start(o)
		if _, err := f.sim.Pay(o.Code); err != nil {
			t.Fatal(err)
		}
		f.waitStatus(o.ID, pay.StatusPaid)
		for _, actor := range []authz.Subject{citizen, auditor} {
			if _, err := f.svc.Refund(f.ctx, actor, o.ID, pay.RefundInput{RequestID: "r1", AmountFen: 100, Reason: "多收"}); !errors.Is(err, i18n.ErrForbidden) {
				t.Errorf("refund as %s: %v", actor.ID, err)
			}
		}
		if _, err := f.svc.Receipt(f.ctx, stranger, o.ID); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("stranger reads the receipt: %v", err)
		}
		if _, err := f.svc.ReconReports(f.ctx, officer, 10); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("officer reads reconciliation: %v", err)
		}
		// Filters: an auditor narrows to a department; an officer's own department is forced.
		if l, _ := f.svc.List(f.ctx, auditor, pay.Filter{DeptID: "dept-rs"}); len(l) != 0 {
			t.Errorf("auditor's department filter: %d", len(l))
		}
		if l, _ := f.svc.List(f.ctx, officer, pay.Filter{DeptID: "dept-rs"}); len(l) != 1 {
			t.Errorf("officer's list with another department asked: %d", len(l))
		}
		if l, _ := f.svc.List(f.ctx, citizen, pay.Filter{Status: pay.StatusUnpaid}); len(l) != 0 {
			t.Errorf("status filter: %d", len(l))
		}
	}, sources...)
}

func TestClose(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{})
		// Closing an order the payer is paying closes the charge: the bank refuses the click.
		o := f.order(800)
		c := f.start(o)
		closed, err := f.svc.Close(f.ctx, citizen, o.ID, "不再办理")
		if err != nil || closed.Status != pay.StatusClosed || closed.ClosedReason != "不再办理" {
			t.Fatalf("close: %+v %v", closed, err)
		}
		resp, err := http.PostForm(c.PayURL, url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("paying a closed charge: %d", resp.StatusCode)
		}
		if _, err := f.svc.Close(f.ctx, officer, o.ID, ""); !errors.Is(err, pay.ErrState) {
			t.Fatalf("closing twice: %v", err)
		}
		if _, err := f.svc.StartPayment(f.ctx, citizen, o.ID, f.sim.Name()); !errors.Is(err, pay.ErrState) {
			t.Fatalf("paying a closed order: %v", err)
		}

		// The payer paid a moment before the officer closed: the payment wins, and is recorded.
		f.down.Store(true) // its callback has not arrived yet
		o2 := f.order(900)
		f.start(o2)
		if _, err := f.sim.Pay(o2.Code); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Close(f.ctx, officer, o2.ID, "撤回"); !errors.Is(err, pay.ErrState) {
			t.Fatalf("closing a paid charge: %v", err)
		}
		if got := f.get(o2.ID); got.Status != pay.StatusPaid || got.PaidFen != 900 {
			t.Fatalf("after the refused close: %+v", got)
		}
		f.down.Store(false)
	}, sources...)
}

func TestExpiry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, fixtureOptions{})
		never := f.order(100)  // never started
		paying := f.order(200) // started, not paid
		c := f.start(paying)
		paid := f.order(300)
		f.start(paid)
		if _, err := f.sim.Pay(paid.Code); err != nil {
			t.Fatal(err)
		}
		f.waitStatus(paid.ID, pay.StatusPaid)

		res, err := f.svc.Sync(f.ctx)
		if err != nil || res.Expired != 0 || res.Recorded != 0 {
			t.Fatalf("sync before the deadline: %+v %v", res, err)
		}
		f.clock.advance(8 * 24 * time.Hour)
		res, err = f.svc.Sync(f.ctx)
		if err != nil || res.Expired != 2 {
			t.Fatalf("sync after the deadline: %+v %v", res, err)
		}
		for _, o := range []pay.Order{never, paying} {
			if got := f.get(o.ID); got.Status != pay.StatusExpired {
				t.Errorf("order %s: %s", o.Code, got.Status)
			}
			if n := f.audits(pay.ActionExpire, "pay_order:"+o.ID); n != 1 {
				t.Errorf("order %s: %d expiry entries", o.Code, n)
			}
		}
		if got := f.get(paid.ID); got.Status != pay.StatusPaid {
			t.Errorf("a paid order expired: %s", got.Status)
		}
		resp, err := http.PostForm(c.PayURL, url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("paying an expired charge: %d", resp.StatusCode)
		}
		if _, err := f.svc.StartPayment(f.ctx, citizen, never.ID, f.sim.Name()); !errors.Is(err, pay.ErrState) {
			t.Fatalf("starting an expired order: %v", err)
		}
		if n := f.count(`SELECT COUNT(*) FROM outbox WHERE subject = ?`, pay.EventClosed); n != 2 {
			t.Errorf("%d closed events, want 2", n)
		}
	}, sources...)
}

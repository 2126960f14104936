package paysim_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/calendar"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const code = "14010525030900000421" // any 20 digits: the simulator does not check ours

func newSim(t *testing.T, opts paysim.Options) (*paysim.Sim, *httptest.Server, *paysim.Client) {
	t.Helper()
	opts.Logger = quiet
	s, err := paysim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv, s.Client(srv.URL, nil)
}

// merchant records the notifications it receives and answers with status(n) for the n-th.
type merchant struct {
	mu     sync.Mutex
	got    []pay.Txn
	at     []time.Time
	status func(n int) int
	client *paysim.Client
}

func (m *merchant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	t, err := m.client.ParseNotification(r.Header, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	m.mu.Lock()
	m.got = append(m.got, t)
	m.at = append(m.at, time.Now())
	n := len(m.got)
	m.mu.Unlock()
	status := http.StatusOK
	if m.status != nil {
		status = m.status(n)
	}
	w.WriteHeader(status)
}

func (m *merchant) received() ([]pay.Txn, []time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]pay.Txn(nil), m.got...), append([]time.Time(nil), m.at...)
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChargeLifecycle(t *testing.T) {
	ctx := context.Background()
	s, srv, c := newSim(t, paysim.Options{Manual: true})
	req := pay.ChargeRequest{Code: code, AmountFen: 1234, Subject: "工本费", NotifyURL: "http://127.0.0.1:1/notify", ExpiresAt: time.Now().Add(time.Hour)}
	ch, err := c.CreateCharge(ctx, req)
	if err != nil || ch.PayURL != srv.URL+"/pay/"+code {
		t.Fatalf("create: %+v %v", ch, err)
	}
	if again, err := c.CreateCharge(ctx, req); err != nil || again != ch {
		t.Fatalf("create again: %+v %v", again, err)
	}
	other := req
	other.AmountFen = 1
	if _, err := c.CreateCharge(ctx, other); !errors.Is(err, pay.ErrChannelRefused) {
		t.Fatalf("same code, other amount: %v", err)
	}
	if st, err := c.QueryCharge(ctx, code); err != nil || st.State != pay.ChargePending || st.Payment != nil {
		t.Fatalf("query pending: %+v %v", st, err)
	}
	if _, err := c.Refund(ctx, pay.RefundRequest{Code: code, RefundID: "r", AmountFen: 1}); !errors.Is(err, pay.ErrChannelRefused) {
		t.Fatalf("refund of an unpaid charge: %v", err)
	}

	page := get(t, ch.PayURL, 200)
	for _, want := range []string{"¥12.34", "工本费", "确认支付", code} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %q", want)
		}
	}
	if page := post(t, ch.PayURL, 200); !strings.Contains(page, "支付成功") || strings.Contains(page, `id="confirm"`) {
		t.Fatalf("after paying:\n%s", page)
	}
	post(t, ch.PayURL, 200) // a second click: still paid, once
	st, err := c.QueryCharge(ctx, code)
	if err != nil || st.State != pay.ChargePaid || st.Payment == nil || st.Payment.AmountFen != 1234 {
		t.Fatalf("query paid: %+v %v", st, err)
	}
	if len(s.Pending()) != 1 {
		t.Fatalf("%d notifications queued, want 1", len(s.Pending()))
	}
	if err := c.CloseCharge(ctx, code); !errors.Is(err, pay.ErrChannelPaid) {
		t.Fatalf("closing a paid charge: %v", err)
	}

	r1, err := c.Refund(ctx, pay.RefundRequest{Code: code, RefundID: "r1", AmountFen: 234})
	if err != nil || r1.Kind != pay.TxnRefund || r1.RefundID != "r1" {
		t.Fatalf("refund: %+v %v", r1, err)
	}
	if again, err := c.Refund(ctx, pay.RefundRequest{Code: code, RefundID: "r1", AmountFen: 234}); err != nil || again.TxnID != r1.TxnID {
		t.Fatalf("refund again: %+v %v", again, err)
	}
	if _, err := c.Refund(ctx, pay.RefundRequest{Code: code, RefundID: "r2", AmountFen: 1001}); !errors.Is(err, pay.ErrChannelRefused) {
		t.Fatalf("refund beyond what was paid: %v", err)
	}
	lines, err := c.Statement(ctx, time.Now())
	if err != nil || len(lines) != 2 || lines[0].Kind != pay.TxnPay || lines[1].Kind != pay.TxnRefund ||
		lines[0].Date != time.Now().In(calendar.Beijing).Format(time.DateOnly) {
		t.Fatalf("statement: %+v %v", lines, err)
	}
	if lines, err := c.Statement(ctx, time.Now().AddDate(0, 0, -1)); err != nil || len(lines) != 0 {
		t.Fatalf("yesterday: %+v %v", lines, err)
	}

	// A closed charge and an expired one cannot be paid.
	closed := pay.ChargeRequest{Code: "14010525030900000439", AmountFen: 5, NotifyURL: req.NotifyURL}
	chc, _ := c.CreateCharge(ctx, closed)
	if err := c.CloseCharge(ctx, closed.Code); err != nil {
		t.Fatal(err)
	}
	if page := post(t, chc.PayURL, http.StatusConflict); !strings.Contains(page, "支付失败") {
		t.Fatalf("paying a closed charge:\n%s", page)
	}
	expired := pay.ChargeRequest{Code: "14010525030900000447", AmountFen: 5, NotifyURL: req.NotifyURL, ExpiresAt: time.Now().Add(-time.Second)}
	che, _ := c.CreateCharge(ctx, expired)
	if page := get(t, che.PayURL, 200); strings.Contains(page, `id="confirm"`) {
		t.Fatal("an expired charge offers the button")
	}
	post(t, che.PayURL, http.StatusConflict)
	get(t, srv.URL+"/pay/00000000000000000000", http.StatusNotFound)
}

func TestAPIAuthenticationAndSignatures(t *testing.T) {
	ctx := context.Background()
	s, srv, _ := newSim(t, paysim.Options{MerchantKey: "k1"})
	// The merchant's key is required.
	resp, err := http.Get(srv.URL + "/api/charges/" + code)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no merchant key: %d", resp.StatusCode)
	}
	wrongKey, err := paysim.NewClient(paysim.ClientOptions{BaseURL: srv.URL, MerchantKey: "k2", PublicKeyPEM: s.PublicKeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrongKey.QueryCharge(ctx, code); !errors.Is(err, pay.ErrChannelUnavailable) {
		t.Fatalf("wrong merchant key: %v", err)
	}
	// Answers signed by another key (a man in the middle) are refused.
	impostor, _ := paysim.New(paysim.Options{Logger: quiet})
	defer impostor.Close()
	trusting, err := paysim.NewClient(paysim.ClientOptions{BaseURL: srv.URL, MerchantKey: "k1", PublicKeyPEM: impostor.PublicKeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trusting.QueryCharge(ctx, code); !errors.Is(err, pay.ErrBadSignature) {
		t.Fatalf("answer signed by another key: %v", err)
	}
	if _, err := trusting.Statement(ctx, time.Now()); !errors.Is(err, pay.ErrBadSignature) {
		t.Fatalf("statement signed by another key: %v", err)
	}
	for _, bad := range []paysim.ClientOptions{{BaseURL: "ftp://x", PublicKeyPEM: s.PublicKeyPEM()}, {BaseURL: srv.URL, PublicKeyPEM: "nope"}} {
		if _, err := paysim.NewClient(bad); err == nil {
			t.Errorf("NewClient(%+v) accepted", bad)
		}
	}
	s.SetFaults(paysim.Faults{Unavailable: true})
	if _, err := s.Client(srv.URL, nil).QueryCharge(ctx, code); !errors.Is(err, pay.ErrChannelUnavailable) {
		t.Fatalf("unavailable: %v", err)
	}
}

// TestRetriesWithBackoff: a merchant that fails three times gets the notification a fourth
// time, each wait at least twice the one before.
func TestRetriesWithBackoff(t *testing.T) {
	ctx := context.Background()
	base := 20 * time.Millisecond
	s, _, c := newSim(t, paysim.Options{RetryBase: base, RetryMax: time.Second})
	m := &merchant{client: c, status: func(n int) int {
		if n <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}}
	msrv := httptest.NewServer(m)
	defer msrv.Close()
	if _, err := c.CreateCharge(ctx, pay.ChargeRequest{Code: code, AmountFen: 100, NotifyURL: msrv.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pay(code); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Delivered == 1 }, "delivery")
	got, at := m.received()
	if len(got) != 4 || s.Stats().Attempts != 4 || s.Stats().Refused != 3 {
		t.Fatalf("%d received, stats %+v", len(got), s.Stats())
	}
	for i := 1; i < len(at); i++ {
		if gap, min := at[i].Sub(at[i-1]), base<<(i-1); gap < min {
			t.Errorf("retry %d after %v, want at least %v", i, gap, min)
		}
	}
	time.Sleep(5 * base)
	if s.Stats().Attempts != 4 {
		t.Fatalf("kept sending after a 200: %+v", s.Stats())
	}
}

// TestFaults: duplicates, and a refund's notification overtaking its payment's.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	s, _, c := newSim(t, paysim.Options{RetryBase: 10 * time.Millisecond,
		Faults: paysim.Faults{DuplicateRate: 1, PayDelay: 150 * time.Millisecond}})
	m := &merchant{client: c}
	msrv := httptest.NewServer(m)
	defer msrv.Close()
	if _, err := c.CreateCharge(ctx, pay.ChargeRequest{Code: code, AmountFen: 100, NotifyURL: msrv.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pay(code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BankRefund(code, "B1", 40); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Delivered == 4 }, "four deliveries")
	got, _ := m.received()
	kinds := make([]string, len(got))
	for i, g := range got {
		kinds[i] = string(g.Kind)
	}
	if strings.Join(kinds, ",") != "refund,refund,pay,pay" {
		t.Fatalf("received %v, want the refund (twice) before the payment (twice)", kinds)
	}
	if s.Stats().Duplicates != 2 {
		t.Fatalf("stats %+v", s.Stats())
	}

	// A bad signature fault: the merchant refuses, the simulator keeps trying.
	s.SetFaults(paysim.Faults{BadSignature: true})
	if _, err := c.CreateCharge(ctx, pay.ChargeRequest{Code: "14010525030900000439", AmountFen: 5, NotifyURL: msrv.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pay("14010525030900000439"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Refused >= 2 }, "refusals of a bad signature")
	if got, _ := m.received(); len(got) != 4 {
		t.Fatalf("the merchant accepted a bad signature: %d", len(got))
	}
}

func get(t *testing.T, u string, want int) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", u, resp.StatusCode, want, b)
	}
	return string(b)
}

func post(t *testing.T, u string, want int) string {
	t.Helper()
	resp, err := http.PostForm(u, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d, want %d: %s", u, resp.StatusCode, want, b)
	}
	return string(b)
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 1234: "12.34", -250: "-2.50", 100000000: "1000000.00"} {
		if got := paysim.Yuan(fen); got != want {
			t.Errorf("Yuan(%d) = %s, want %s", fen, got, want)
		}
	}
}

// Package paysim is a development bank / wallet: a payment channel simulator that behaves like
// a real one, for development, demos and tests of package pay. It is an http.Handler with
//
//	POST /api/charges                 open a charge (idempotent by payment code)
//	POST /api/charges/{code}/close    close an unpaid charge
//	GET  /api/charges/{code}          query a charge, its payment and refunds
//	POST /api/refunds                 refund (idempotent by refund id, never more than paid)
//	GET  /api/statements/{date}       the day's statement, CSV (pay.ParseStatement's form)
//	GET  /pay/{code}                  the payer's page, with the 确认支付 button
//	POST /pay/{code}                  the button: the payer pays
//
// Everything it sends us — API answers and notifications — is signed with its own SM2 key
// (GB/T 32918, SM3 digest, default user ID) in the X-Paysim-Signature header; the merchant
// calls its API with a bearer key. After a payment or refund it POSTs a notification to the
// charge's notify URL and retries with exponential backoff until it gets a 200, as banks do.
// Faults make it misbehave the ways real channels do: duplicated notifications, payment
// notifications overtaken by refund ones, notifications signed with the wrong key, an API
// that is down, a statement that disagrees. Client is the pay.Channel that speaks to it.
package paysim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
)

// SignatureHeader carries the base64 ASN.1 SM2 signature of a message's body.
const SignatureHeader = "X-Paysim-Signature"

// Faults make the simulator misbehave. Change them at run time with SetFaults.
type Faults struct {
	// DuplicateRate is the chance that an acknowledged notification is sent once more.
	DuplicateRate float64
	// PayDelay holds back payment notifications this long before their first attempt, so that
	// a refund made meanwhile is notified first (out of order).
	PayDelay time.Duration
	// NoNotify sends no notifications at all (the merchant learns only by querying).
	NoNotify bool
	// BadSignature signs notifications with a key that is not the channel's.
	BadSignature bool
	// Unavailable makes the API answer 503 (the pay page still works).
	Unavailable bool
	// Statement, when set, rewrites a day's statement lines before they are served.
	Statement func(day string, lines []pay.StatementLine) []pay.StatementLine
}

// Options configure a Sim.
type Options struct {
	Name        string // the channel's name; default "paysim"
	MerchantKey string // the bearer key the merchant's API calls carry; default "paysim-dev-merchant"
	// BaseURL is the simulator's public URL (pay pages); default the Host of the API request.
	BaseURL string
	Now     func() time.Time
	// Manual queues notifications (Pending) until Deliver or DeliverAll sends them, for tests
	// that choose the order; otherwise they are sent at once, retried with backoff.
	Manual      bool
	RetryBase   time.Duration // first retry delay; default 100 ms, doubling
	RetryMax    time.Duration // delay cap; default 30 s
	MaxAttempts int           // default 20
	HTTPClient  *http.Client
	Seed        uint64 // of the fault dice
	Logger      *slog.Logger
	Faults      Faults
}

// Notification is one callback to the merchant.
type Notification struct {
	Seq    int
	Txn    pay.Txn
	URL    string
	Body   []byte
	Header http.Header
}

// Stats count the simulator's notification traffic.
type Stats struct {
	Attempts   int // POSTs made
	Delivered  int // answered 200
	Duplicates int // sent again after a 200 (fault)
	Refused    int // answered something else
}

type charge struct {
	req      pay.ChargeRequest
	state    pay.ChargeState
	payment  *pay.Txn
	refunds  []pay.Txn
	byRefund map[string]pay.Txn
}

// Sim is the simulated channel.
type Sim struct {
	opts    Options
	key     *sm2.PrivateKey
	pubPEM  string
	rogue   *sm2.PrivateKey // signs notifications under the BadSignature fault
	mux     *http.ServeMux
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	faults  Faults
	rng     *mrand.Rand
	charges map[string]*charge
	ledger  []pay.StatementLine
	queue   []Notification
	seq     int
	txnSeq  int
	stats   Stats
}

// New starts a simulator with a fresh SM2 key. Close it to stop its deliveries.
func New(opts Options) (*Sim, error) {
	if opts.Name == "" {
		opts.Name = "paysim"
	}
	if opts.MerchantKey == "" {
		opts.MerchantKey = "paysim-dev-merchant"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 100 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 20
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("paysim key: %w", err)
	}
	rogue, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("paysim key: %w", err)
	}
	pub, err := crypto.MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{opts: opts, key: key, pubPEM: pub, rogue: rogue, ctx: ctx, cancel: cancel, faults: opts.Faults,
		rng: mrand.New(mrand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), charges: map[string]*charge{}}
	s.routes()
	return s, nil
}

// Close stops retrying deliveries and waits for them to end.
func (s *Sim) Close() {
	s.cancel()
	s.wg.Wait()
}

// Name is the channel's name.
func (s *Sim) Name() string { return s.opts.Name }

// PublicKeyPEM is the simulator's SM2 public key, which the merchant verifies with.
func (s *Sim) PublicKeyPEM() string { return s.pubPEM }

// MerchantKey is the bearer key of the merchant's API calls.
func (s *Sim) MerchantKey() string { return s.opts.MerchantKey }

// SetFaults changes the faults.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Stats returns the notification counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Handler is the simulator's HTTP interface.
func (s *Sim) Handler() http.Handler { return s.mux }

func (s *Sim) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/charges", s.api(s.createCharge))
	m.HandleFunc("POST /api/charges/{code}/close", s.api(s.closeCharge))
	m.HandleFunc("GET /api/charges/{code}", s.api(s.queryCharge))
	m.HandleFunc("POST /api/refunds", s.api(s.refund))
	m.HandleFunc("GET /api/statements/{date}", s.statement)
	m.HandleFunc("GET /pay/{code}", s.payPage)
	m.HandleFunc("POST /pay/{code}", s.payConfirm)
	s.mux = m
}

func (s *Sim) sign(key *sm2.PrivateKey, body []byte) string {
	sig, err := key.Sign(rand.Reader, body, sm2.DefaultSM2SignerOpts)
	if err != nil {
		panic("paysim: sm2 sign: " + err.Error()) // only on a broken random source
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// apiError is the body of a refused API call.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"` // paid, not_found, exceeds, conflict, expired, bad_request
}

// api wraps an API endpoint: merchant authentication, the Unavailable fault, a signed JSON answer.
func (s *Sim) api(h func(r *http.Request) (int, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.opts.MerchantKey {
			http.Error(w, "merchant key required", http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		down := s.faults.Unavailable
		s.mu.Unlock()
		if down {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		status, v := h(r)
		body, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(SignatureHeader, s.sign(s.key, body))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (s *Sim) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

func (s *Sim) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return strings.TrimRight(s.opts.BaseURL, "/")
	}
	return "http://" + r.Host
}

func (s *Sim) createCharge(r *http.Request) (int, any) {
	var req pay.ChargeRequest
	if err := decodeBody(r, &req); err != nil {
		return http.StatusBadRequest, apiError{Error: err.Error(), Code: "bad_request"}
	}
	if len(req.Code) != pay.CodeLen || req.AmountFen <= 0 || req.NotifyURL == "" {
		return http.StatusBadRequest, apiError{Error: "payment code, amount and notify URL are required", Code: "bad_request"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.charges[req.Code]; ok {
		if c.req.AmountFen != req.AmountFen {
			return http.StatusConflict, apiError{Error: "this payment code has a charge of another amount", Code: "conflict"}
		}
		return http.StatusOK, pay.Charge{PayURL: s.baseURL(r) + "/pay/" + req.Code}
	}
	s.charges[req.Code] = &charge{req: req, state: pay.ChargePending, byRefund: map[string]pay.Txn{}}
	return http.StatusOK, pay.Charge{PayURL: s.baseURL(r) + "/pay/" + req.Code}
}

func (s *Sim) closeCharge(r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.charges[r.PathValue("code")]
	switch {
	case !ok:
		return http.StatusOK, pay.ChargeStatus{Code: r.PathValue("code"), State: pay.ChargeNotFound}
	case c.state == pay.ChargePaid:
		return http.StatusConflict, apiError{Error: "the charge is paid", Code: "paid"}
	}
	c.state = pay.ChargeClosed
	return http.StatusOK, s.statusOf(c)
}

func (s *Sim) statusOf(c *charge) pay.ChargeStatus {
	st := pay.ChargeStatus{Code: c.req.Code, State: c.state, AmountFen: c.req.AmountFen, Payment: c.payment}
	st.Refunds = append(st.Refunds, c.refunds...)
	return st
}

func (s *Sim) queryCharge(r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.charges[r.PathValue("code")]
	if !ok {
		return http.StatusOK, pay.ChargeStatus{Code: r.PathValue("code"), State: pay.ChargeNotFound}
	}
	return http.StatusOK, s.statusOf(c)
}

func (s *Sim) refund(r *http.Request) (int, any) {
	var req pay.RefundRequest
	if err := decodeBody(r, &req); err != nil {
		return http.StatusBadRequest, apiError{Error: err.Error(), Code: "bad_request"}
	}
	if req.RefundID == "" || req.AmountFen <= 0 {
		return http.StatusBadRequest, apiError{Error: "refund id and a positive amount are required", Code: "bad_request"}
	}
	t, code, err := s.makeRefund(req.Code, req.RefundID, req.AmountFen)
	if err != nil {
		return code, apiError{Error: err.Error(), Code: map[int]string{404: "not_found", 409: "exceeds"}[code]}
	}
	return http.StatusOK, t
}

// makeRefund refunds a paid charge once per refund id, never beyond what was paid.
func (s *Sim) makeRefund(code, refundID string, amount int64) (pay.Txn, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.charges[code]
	if !ok || c.payment == nil {
		return pay.Txn{}, http.StatusNotFound, errors.New("no paid charge with this payment code")
	}
	if t, ok := c.byRefund[refundID]; ok {
		if t.AmountFen != amount {
			return pay.Txn{}, http.StatusConflict, errors.New("this refund id was used for another amount")
		}
		return t, http.StatusOK, nil
	}
	var refunded int64
	for _, t := range c.refunds {
		refunded += t.AmountFen
	}
	if refunded+amount > c.payment.AmountFen {
		return pay.Txn{}, http.StatusConflict, fmt.Errorf("refunds of %d fen would exceed the %d fen paid", refunded+amount, c.payment.AmountFen)
	}
	t := pay.Txn{Kind: pay.TxnRefund, TxnID: s.newTxnID("R"), Code: code, RefundID: refundID, AmountFen: amount, At: s.now()}
	c.refunds = append(c.refunds, t)
	c.byRefund[refundID] = t
	s.book(t)
	s.notify(c, t)
	return t, http.StatusOK, nil
}

// Pay is the payer confirming the payment of code, as the pay page's button does.
func (s *Sim) Pay(code string) (pay.Txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.charges[code]
	switch {
	case !ok:
		return pay.Txn{}, errors.New("no charge with this payment code")
	case c.state == pay.ChargePaid:
		return *c.payment, nil // a second click pays nothing more
	case c.state == pay.ChargeClosed:
		return pay.Txn{}, errors.New("the charge is closed")
	case !c.req.ExpiresAt.IsZero() && !s.now().Before(c.req.ExpiresAt):
		return pay.Txn{}, errors.New("the charge has expired")
	}
	t := pay.Txn{Kind: pay.TxnPay, TxnID: s.newTxnID("P"), Code: code, AmountFen: c.req.AmountFen, At: s.now()}
	c.state, c.payment = pay.ChargePaid, &t
	s.book(t)
	s.notify(c, t)
	return t, nil
}

// BankRefund is a refund the bank makes on its own (at its counter, on a dispute): the
// merchant hears of it only by notification or query. refundID is the bank's.
func (s *Sim) BankRefund(code, refundID string, amount int64) (pay.Txn, error) {
	t, _, err := s.makeRefund(code, refundID, amount)
	return t, err
}

// newTxnID makes a channel transaction id; the caller holds mu.
func (s *Sim) newTxnID(prefix string) string {
	s.txnSeq++
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%s%06d%x", prefix, s.now().In(calendar.Beijing).Format("20060102"), s.txnSeq, b)
}

// book writes t into the ledger that statements are cut from; the caller holds mu.
func (s *Sim) book(t pay.Txn) {
	s.ledger = append(s.ledger, pay.StatementLine{Date: t.At.In(calendar.Beijing).Format(time.DateOnly), TxnID: t.TxnID,
		Code: t.Code, AmountFen: t.AmountFen, Kind: t.Kind})
}

// Statement is the day's statement lines (Beijing date YYYY-MM-DD), faults applied.
func (s *Sim) Statement(day string) []pay.StatementLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pay.StatementLine
	for _, l := range s.ledger {
		if l.Date == day {
			out = append(out, l)
		}
	}
	if s.faults.Statement != nil {
		out = s.faults.Statement(day, out)
	}
	return out
}

func (s *Sim) statement(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.opts.MerchantKey {
		http.Error(w, "merchant key required", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	down := s.faults.Unavailable
	s.mu.Unlock()
	if down {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	day := r.PathValue("date")
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		http.Error(w, "date: want YYYY-MM-DD", http.StatusBadRequest)
		return
	}
	var b bytes.Buffer
	if err := pay.WriteStatement(&b, s.Statement(day)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set(SignatureHeader, s.sign(s.key, b.Bytes()))
	_, _ = w.Write(b.Bytes())
}

// ---- notifications ----

// wireTxn is a transaction as the simulator's messages carry it.
type wireTxn struct {
	Type      string    `json:"type"` // pay or refund
	TxnID     string    `json:"txn_id"`
	Code      string    `json:"payment_code"`
	RefundID  string    `json:"refund_id,omitempty"`
	AmountFen int64     `json:"amount_fen"`
	At        time.Time `json:"at"`
	Nonce     string    `json:"nonce"`
}

// NotificationFor builds the signed notification of t to url, as the simulator sends it (for
// tests that need a notification the simulator would not send, such as a wrong amount).
func (s *Sim) NotificationFor(t pay.Txn, url string) Notification {
	s.mu.Lock()
	bad := s.faults.BadSignature
	s.mu.Unlock()
	return s.buildNotification(t, url, bad)
}

func (s *Sim) buildNotification(t pay.Txn, url string, badSignature bool) Notification {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	body, _ := json.Marshal(wireTxn{Type: string(t.Kind), TxnID: t.TxnID, Code: t.Code, RefundID: t.RefundID, AmountFen: t.AmountFen,
		At: t.At, Nonce: base64.RawURLEncoding.EncodeToString(nonce[:])})
	key := s.key
	if badSignature {
		key = s.rogue
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, s.sign(key, body))
	return Notification{Txn: t, URL: url, Body: body, Header: h}
}

// notify queues or sends the notification of t; the caller holds mu.
func (s *Sim) notify(c *charge, t pay.Txn) {
	if s.faults.NoNotify {
		return
	}
	n := s.buildNotification(t, c.req.NotifyURL, s.faults.BadSignature)
	s.seq++
	n.Seq = s.seq
	if s.opts.Manual {
		s.queue = append(s.queue, n)
		return
	}
	var delay time.Duration
	if t.Kind == pay.TxnPay {
		delay = s.faults.PayDelay
	}
	s.wg.Add(1)
	go s.deliverLoop(n, delay)
}

// deliverLoop sends n until it is answered 200, backing off exponentially between attempts.
func (s *Sim) deliverLoop(n Notification, delay time.Duration) {
	defer s.wg.Done()
	wait := delay
	backoff := s.opts.RetryBase
	for attempt := 1; attempt <= s.opts.MaxAttempts; attempt++ {
		if wait > 0 {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		status, err := s.Deliver(s.ctx, n)
		if err == nil && status == http.StatusOK {
			s.mu.Lock()
			dup := s.faults.DuplicateRate > 0 && s.rng.Float64() < s.faults.DuplicateRate
			if dup {
				s.stats.Duplicates++
			}
			s.mu.Unlock()
			if dup {
				_, _ = s.Deliver(s.ctx, n)
			}
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		s.opts.Logger.Debug("paysim: notification not acknowledged, will retry", "seq", n.Seq, "txn_id", n.Txn.TxnID,
			"attempt", attempt, "status", status, "err", err)
		wait, backoff = backoff, min(backoff*2, s.opts.RetryMax)
	}
	s.opts.Logger.Warn("paysim: notification given up", "seq", n.Seq, "txn_id", n.Txn.TxnID)
}

// Deliver POSTs n once and returns the merchant's status.
func (s *Sim) Deliver(ctx context.Context, n Notification) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(n.Body))
	if err != nil {
		return 0, err
	}
	req.Header = n.Header.Clone()
	s.mu.Lock()
	s.stats.Attempts++
	s.mu.Unlock()
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	s.mu.Lock()
	if resp.StatusCode == http.StatusOK {
		s.stats.Delivered++
	} else {
		s.stats.Refused++
	}
	s.mu.Unlock()
	return resp.StatusCode, nil
}

// Pending lists the queued notifications (Manual mode), oldest first.
func (s *Sim) Pending() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.queue...)
}

// DeliverAll sends the queued notifications once each, in order, and keeps those not
// answered 200 queued. It returns how many were acknowledged.
func (s *Sim) DeliverAll(ctx context.Context) (int, error) {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	var keep []Notification
	var errs []error
	ok := 0
	for _, n := range q {
		status, err := s.Deliver(ctx, n)
		if err != nil || status != http.StatusOK {
			keep = append(keep, n)
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		ok++
	}
	s.mu.Lock()
	s.queue = append(keep, s.queue...)
	sort.SliceStable(s.queue, func(i, j int) bool { return s.queue[i].Seq < s.queue[j].Seq })
	s.mu.Unlock()
	return ok, errors.Join(errs...)
}

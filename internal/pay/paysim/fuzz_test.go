package paysim

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/pay"
)

// FuzzParseNotification feeds the client authentic signatures over arbitrary bodies, the
// input that reaches the decoder in production: it must refuse or return a transaction that
// passes pay.CheckTxn, and never panic.
func FuzzParseNotification(f *testing.F) {
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	c := s.Client("http://127.0.0.1:1", nil)
	good := s.buildNotification(pay.Txn{Kind: pay.TxnPay, TxnID: "P1", Code: "14010525030900000421", AmountFen: 100,
		At: time.Date(2025, 3, 9, 1, 2, 3, 0, time.UTC)}, "http://x", false)
	f.Add(good.Body)
	f.Add([]byte(`{"type":"refund","txn_id":"R1","payment_code":"14010525030900000421","refund_id":"x","amount_fen":1,"at":"2025-03-09T00:00:00Z","nonce":""}`))
	f.Add([]byte(`{"type":"pay","amount_fen":-1}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 { // never sent (SM2 signs no empty message); refused unread
			if _, err := c.ParseNotification(http.Header{}, body); !errors.Is(err, pay.ErrBadNotification) {
				t.Fatalf("empty body: %v", err)
			}
			return
		}
		h := http.Header{}
		h.Set(SignatureHeader, s.sign(s.key, body))
		txn, err := c.ParseNotification(h, body)
		if err != nil {
			if !errors.Is(err, pay.ErrBadNotification) {
				t.Fatalf("%q: %v, want ErrBadNotification", body, err)
			}
			return
		}
		if err := pay.CheckTxn(txn); err != nil {
			t.Fatalf("%q accepted as %+v: %v", body, txn, err)
		}
		// The signature covers every byte: one changed byte is refused.
		mut := append([]byte(nil), body...)
		mut[0] ^= 1
		if _, err := c.ParseNotification(h, mut); !errors.Is(err, pay.ErrBadSignature) {
			t.Fatalf("altered body: %v", err)
		}
	})
}

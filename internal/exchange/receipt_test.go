package exchange

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

func testKeys(t testing.TB) (*crypto.Keyring, string) {
	t.Helper()
	d := dbtest.SQLite(t, crypto.Migrations)
	k, err := crypto.Open(context.Background(), d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range k.PublicKeys() {
		if p.Active {
			return k, p.PEM
		}
	}
	t.Fatal("no active key")
	return nil, ""
}

// Receipts of version 2 sign the items; receipts saved before (version 1, without items) still
// verify, and cannot be given items after the fact.
func TestReceiptVersions(t *testing.T) {
	keys, pem := testKeys(t)
	body := []byte(`{"rows":[]}`)
	at := time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
	rc := Receipt{RequestID: "r1", Method: "GET", Target: "/api/v1/exchange/x/records", ClientID: "c", Purpose: "核验",
		Resource: "x", GrantID: "g", Fields: []string{"姓名", "身份证号"}, RowCount: 0, At: at}
	if err := rc.sign(keys, body); err != nil {
		t.Fatal(err)
	}
	back, err := ParseReceipt(rc.Encode())
	if err != nil || back.Version != 2 || VerifyReceipt(back, body, pem) != nil {
		t.Fatalf("v2: %+v %v", back, err)
	}
	back.Fields = back.Fields[:1]
	if err := VerifyReceipt(back, body, pem); !errors.Is(err, ErrReceiptRequest) {
		t.Errorf("v2 with an item dropped: %v", err)
	}

	// A version 1 receipt, made as the node made them before.
	v1 := Receipt{Version: 1, RequestID: "r1", Method: "GET", Target: "/t", ClientID: "c", Purpose: "p", Resource: "x", GrantID: "g", RowCount: 1, At: at}
	v1.RequestSM3 = sm3Hex(v1.canonicalRequest())
	v1.ResponseSM3 = sm3Hex(body)
	v1.KeyID = keys.ActiveKeyID()
	if v1.Signature, _, err = keys.Sign(v1.message()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(v1.canonicalRequest()), "dgov-exchange-request/1") {
		t.Fatal("v1 framing changed")
	}
	old, err := ParseReceipt(v1.Encode())
	if err != nil || VerifyReceipt(old, body, pem) != nil || VerifyReceiptReader(old, bytes.NewReader(body), pem) != nil {
		t.Fatalf("a saved v1 receipt no longer verifies: %v", err)
	}
	old.Fields = []string{"姓名"}
	if _, err := ParseReceipt(old.Encode()); !errors.Is(err, ErrReceipt) {
		t.Errorf("a v1 receipt with items parsed: %v", err)
	}
	if err := VerifyReceipt(old, body, pem); !errors.Is(err, ErrReceipt) {
		t.Errorf("a v1 receipt with items verified: %v", err)
	}
	old.Fields, old.Version = nil, 3
	if _, err := ParseReceipt(old.Encode()); !errors.Is(err, ErrReceipt) {
		t.Errorf("an unknown version parsed: %v", err)
	}
}

// FuzzParseReceipt: a receipt from outside never panics the parser or the verifier, and every
// refusal is bilingual.
func FuzzParseReceipt(f *testing.F) {
	at := time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
	good := Receipt{Version: 2, RequestID: "r", Method: "GET", Target: "/t", ClientID: "c", Purpose: "p", Resource: "x", GrantID: "g",
		Fields: []string{"姓名"}, RowCount: 1, RequestSM3: strings.Repeat("a", 64), ResponseSM3: strings.Repeat("b", 64), At: at, KeyID: "k", Signature: []byte{1, 2}}
	f.Add(good.Encode())
	f.Add(`{"v":1,"key_id":"k","signature":"AQI=","at":"2025-03-01T02:00:00Z"}`)
	f.Add(`{"v":2,"fields":[1]}`)
	f.Add("!!!")
	f.Add(`{"v":2,"key_id":"k","signature":"AQI=","at":"2025-03-01T02:00:00Z","extra":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReceipt(s)
		if err != nil {
			if e, ok := i18n.As(err); !ok || e.Msg.ZH == "" || e.Msg.EN == "" {
				t.Fatalf("not a bilingual refusal: %v", err)
			}
			return
		}
		if r.Version != 1 && r.Version != 2 {
			t.Fatalf("version %d parsed", r.Version)
		}
		_ = VerifyReceipt(r, []byte("body"), "not a key")
	})
}

// FuzzExtractParams: an extract's own parameters parse to a known format or a bilingual 400.
func FuzzExtractParams(f *testing.F) {
	for _, s := range [][2]string{{"", ""}, {"CSV", "true"}, {"jsonl", "1"}, {"xml", ""}, {"csv", "maybe"}, {" jsonl ", "NO"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, format, gz string) {
		ft, _, err := parseExtractParams(format, gz)
		if err != nil {
			if e, ok := i18n.As(err); !ok || e.HTTPStatus() != 400 || e.Msg.EN == "" {
				t.Fatalf("not a bilingual 400: %v", err)
			}
			return
		}
		if ft != ExtractCSV && ft != ExtractJSONL {
			t.Fatalf("format %q", ft)
		}
	})
}

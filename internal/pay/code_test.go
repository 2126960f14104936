package pay_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/calendar"
)

func TestCheckDigit(t *testing.T) {
	// Worked by hand with GB/T 17710 MOD 11,10 (P₁ = 10, Sⱼ = (Pⱼ + aⱼ) mod 10 or 10,
	// Pⱼ₊₁ = 2Sⱼ mod 11, check a = (11 − P) mod 10):
	// "0": S=10, P=20 mod 11=9, a=2.   "1": S=1, P=2, a=9.   "12": P=2 → S=4, P=8, a=3.
	for _, tc := range []struct {
		digits string
		want   byte
	}{{"0", '2'}, {"1", '9'}, {"12", '3'}, {"9", '4'}} {
		if got := pay.CheckDigit(tc.digits); got != tc.want {
			t.Errorf("CheckDigit(%s) = %c, want %c", tc.digits, got, tc.want)
		}
	}
}

func TestMakeAndValidateCode(t *testing.T) {
	day := time.Date(2025, 3, 9, 23, 30, 0, 0, calendar.Beijing)
	code, err := pay.MakeCode("140105", day, 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 20 || !strings.HasPrefix(code, "1401052503090000042") {
		t.Fatalf("code %s", code)
	}
	// A UTC time is placed on its Beijing day: 2025-03-09 16:00 UTC is 10 March in Beijing.
	if c2, _ := pay.MakeCode("140105001", time.Date(2025, 3, 9, 16, 0, 0, 0, time.UTC), 1); c2[6:12] != "250310" || c2[:6] != "140105" {
		t.Fatalf("code %s: want Beijing date 250310 and six-digit division", c2)
	}
	c, err := pay.ValidateCode(code)
	if err != nil {
		t.Fatal(err)
	}
	if c.Division != "140105" || c.Seq != 42 || !c.Date.Equal(time.Date(2025, 3, 9, 0, 0, 0, 0, calendar.Beijing)) {
		t.Fatalf("parsed %+v", c)
	}
	bad := []struct {
		name, code string
		want       error
	}{
		{"empty", "", pay.ErrCodeFormat},
		{"short", code[:19], pay.ErrCodeFormat},
		{"long", code + "0", pay.ErrCodeFormat},
		{"letter", "14010525030900000A42" + "", pay.ErrCodeFormat},
		{"full-width digit", strings.Replace(code, "1", "１", 1), pay.ErrCodeFormat},
		{"check digit", code[:19] + string('0'+(code[19]-'0'+1)%10), pay.ErrCodeChecksum},
		{"unknown province", withCheck("990105250309000004" + "2"), pay.ErrCodeFormat},
		{"bad date", withCheck("140105251309000004" + "2"), pay.ErrCodeFormat},
		{"sequence 0", withCheck("1401052503090000000"), pay.ErrCodeFormat},
	}
	for _, tc := range bad {
		if _, err := pay.ValidateCode(tc.code); !errors.Is(err, tc.want) {
			t.Errorf("%s (%q): got %v, want %v", tc.name, tc.code, err, tc.want)
		}
	}
	if _, err := pay.MakeCode("1401", day, 1); err == nil {
		t.Error("a four-digit division must be refused")
	}
	if _, err := pay.MakeCode("140105", day, 10_000_000); err == nil {
		t.Error("a sequence beyond seven digits must be refused")
	}
}

func withCheck(first19 string) string { return first19 + string(pay.CheckDigit(first19)) }

// TestCheckDigitCatchesTypos checks the properties the scheme was chosen for: every
// single-digit error changes the check, and nearly every transposition of two adjacent
// different digits does (GB/T 17710's hybrid systems do not promise all of them).
func TestCheckDigitCatchesTypos(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	swaps, missed := 0, 0
	for range 300 {
		code, err := pay.MakeCode("140105", time.Date(2025, time.Month(1+r.IntN(12)), 1+r.IntN(28), 12, 0, 0, 0, calendar.Beijing), 1+r.IntN(9_999_999))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			for d := byte('0'); d <= '9'; d++ {
				if d == code[i] {
					continue
				}
				typo := code[:i] + string(d) + code[i+1:]
				if pay.CheckDigit(typo[:19]) == typo[19] {
					t.Fatalf("%s → %s: single-digit error not caught", code, typo)
				}
			}
			if i < 19 && code[i] != code[i+1] {
				swaps++
				swapped := code[:i] + string(code[i+1]) + string(code[i]) + code[i+2:]
				if pay.CheckDigit(swapped[:19]) == swapped[19] {
					missed++
				}
			}
		}
	}
	if rate := float64(swaps-missed) / float64(swaps); rate < 0.95 {
		t.Fatalf("only %.1f %% of %d adjacent transpositions caught", rate*100, swaps)
	}
}

func FuzzValidateCode(f *testing.F) {
	good, _ := pay.MakeCode("140105", time.Date(2025, 3, 9, 0, 0, 0, 0, calendar.Beijing), 42)
	for _, s := range []string{good, "", "00000000000000000000", "14010525030900000421", "１４０１０５", strings.Repeat("9", 20)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := pay.ValidateCode(s)
		if err != nil {
			return
		}
		// Whatever passes is 20 digits that MakeCode rebuilds exactly.
		again, err := pay.MakeCode(c.Division, c.Date, c.Seq)
		if err != nil || again != s {
			t.Fatalf("ValidateCode(%q) = %+v; MakeCode gives %q, %v", s, c, again, err)
		}
	})
}

func TestParseStatement(t *testing.T) {
	code := withCheck("1401052503090000042")
	lines := []pay.StatementLine{
		{Date: "2025-03-09", TxnID: "P20250309000001ab", Code: code, AmountFen: 2500, Kind: pay.TxnPay},
		{Date: "2025-03-09", TxnID: "R20250309000002cd", Code: code, AmountFen: 500, Kind: pay.TxnRefund},
	}
	var b bytes.Buffer
	if err := pay.WriteStatement(&b, lines); err != nil {
		t.Fatal(err)
	}
	got, err := pay.ParseStatement(&b)
	if err != nil || !reflect.DeepEqual(got, lines) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// A spreadsheet's byte-order mark and CRLF lines are read as well.
	bom := "\ufeffdate,txn_id,payment_code,amount_fen,type\r\n2025-03-09,P1," + code + ",100,pay\r\n"
	if got, err := pay.ParseStatement(strings.NewReader(bom)); err != nil || len(got) != 1 || got[0].AmountFen != 100 {
		t.Fatalf("BOM and CRLF: %+v, %v", got, err)
	}
	header := "date,txn_id,payment_code,amount_fen,type\n"
	for name, text := range map[string]string{
		"empty":          "",
		"wrong header":   "day,txn,code,amount,type\n",
		"missing column": header + "2025-03-09,P1," + code + ",100\n",
		"bad date":       header + "2025-02-30,P1," + code + ",100,pay\n",
		"bad code":       header + "2025-03-09,P1,123,100,pay\n",
		"negative":       header + "2025-03-09,P1," + code + ",-100,pay\n",
		"zero":           header + "2025-03-09,P1," + code + ",0,pay\n",
		"decimal":        header + "2025-03-09,P1," + code + ",1.00,pay\n",
		"plus sign":      header + "2025-03-09,P1," + code + ",+100,pay\n",
		"type":           header + "2025-03-09,P1," + code + ",100,charge\n",
		"space in id":    header + "2025-03-09,P 1," + code + ",100,pay\n",
		"twice":          header + "2025-03-09,P1," + code + ",100,pay\n2025-03-09,P1," + code + ",100,pay\n",
	} {
		if _, err := pay.ParseStatement(strings.NewReader(text)); !errors.Is(err, pay.ErrStatement) {
			t.Errorf("%s: got %v, want ErrStatement", name, err)
		}
	}
}

func FuzzParseStatement(f *testing.F) {
	code := withCheck("1401052503090000042")
	f.Add("date,txn_id,payment_code,amount_fen,type\n2025-03-09,P1," + code + ",100,pay\n")
	f.Add("date,txn_id,payment_code,amount_fen,type\n")
	f.Add("\ufeffdate,txn_id,payment_code,amount_fen,type\r\n\"2025-03-09\",R1," + code + ",1,refund\r\n")
	f.Add("a,b\n\"unterminated")
	f.Fuzz(func(t *testing.T, text string) {
		lines, err := pay.ParseStatement(strings.NewReader(text))
		if err != nil {
			return
		}
		// What parses writes back and parses to the same lines.
		var b bytes.Buffer
		if err := pay.WriteStatement(&b, lines); err != nil {
			t.Fatal(err)
		}
		again, err := pay.ParseStatement(&b)
		if err != nil || !reflect.DeepEqual(fmt.Sprint(again), fmt.Sprint(lines)) {
			t.Fatalf("round trip of %q: %+v, %v", text, again, err)
		}
		for _, l := range lines {
			if l.AmountFen <= 0 || (l.Kind != pay.TxnPay && l.Kind != pay.TxnRefund) || len(l.Code) != 20 {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	f.Add([]byte(`{"v":1,"code":"14010125","number":"0000000001","check_code":"ABCDEF","order_id":"o","payment_code":"1","item_code":"i","payer_name":"张伟","lines":[{"name":"工本费","amount_fen":100}],"total_fen":100,"payee_dept_id":"d","payee_dept":"小店分局","division":"140105","channel":"paysim","channel_txn_id":"P1","paid_at":"2025-03-09T00:00:00Z","issued_at":"2025-03-09T00:00:00Z","key_id":"k","signature":"AQID"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"extra":true}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := pay.ParseReceipt(b)
		if err != nil {
			if !errors.Is(err, pay.ErrReceipt) {
				t.Fatalf("%q: %v", b, err)
			}
			return
		}
		// A parsed receipt goes to the verifier, which must answer without panicking; with no
		// valid key it never verifies.
		if err := pay.VerifyReceipt(r, "not a key"); err == nil {
			t.Fatalf("%q verified against no key", b)
		}
	})
}

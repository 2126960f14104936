package license_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/license"
)

// TestCheckCharKnownAnswers checks ISO/IEC 7064 MOD 37,36 (GB/T 17710-2008 §9–10, hybrid
// system, M = 36, alphabet 0-9A-Z valued 0–35) against answers worked by hand from the
// definition: P starts at M; per character a, S = (P + a) mod 36 with 0 read as 36, then
// P = 2S mod 37; the check character c satisfies (P + c) mod 36 = 1, i.e. c = (37 − P) mod 36.
//
//	"0":   S = (36+0) mod 36 = 0 → 36, P = 72 mod 37 = 35;  c = 2      → '2'
//	"A":   S = (36+10) mod 36 = 10,    P = 20;              c = 17     → 'H'
//	"Z":   S = (36+35) mod 36 = 35,    P = 70 mod 37 = 33;  c = 4      → '4'
//	"1A2": '1' S = 1, P = 2;  'A' S = 12, P = 24;  '2' S = 26, P = 52 mod 37 = 15;
//	       c = 22 → 'M'
//	"Y":   S = (36+34) mod 36 = 34,    P = 68 mod 37 = 31;  c = 6      → '6'
//	"00":  '0' P = 35; '0' S = 35, P = 70 mod 37 = 33;      c = 4      → '4'
//
// Verification: appending c and running the same steps ends with S = 1 (for "A", P = 20,
// then 'H' gives S = (20+17) mod 36 = 1).
//
// An independent published answer: ISAN (ISO 15706-2) uses this same system. Its sample
// ISAN 0000-0000-D07A-0090-Q-0000-0000-X has check character Q over the 16 hex digits of
// root and episode, and X over those and the 8 of the version.
func TestCheckCharKnownAnswers(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want byte
	}{
		{"0", '2'},
		{"A", 'H'},
		{"Z", '4'},
		{"1A2", 'M'},
		{"Y", '6'},
		{"00", '4'},
		{"1.A.2", 'M'}, // separators are not characters of the system
		{"00000000D07A0090", 'Q'},
		{"00000000D07A009000000000", 'X'},
	} {
		got, ok := license.CheckChar(tt.in)
		if !ok || got != tt.want {
			t.Errorf("CheckChar(%q) = %c, %v; want %c", tt.in, got, ok, tt.want)
		}
	}
	for _, bad := range []string{"", ".", "a", "1-2", "中"} {
		if _, ok := license.CheckChar(bad); ok {
			t.Errorf("CheckChar(%q) accepted", bad)
		}
	}
}

// TestCheckCharDetectsErrors: the system detects every single substitution (ISO 7064's
// guarantee for hybrid systems) and, on this identifier, every adjacent transposition.
func TestCheckCharDetectsErrors(t *testing.T) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	base := "1215630052YYZZ91140100MA0K1234560000000100"
	c, _ := license.CheckChar(base)
	full := base + string(c)
	valid := func(s string) bool {
		want, ok := license.CheckChar(s[:len(s)-1])
		return ok && want == s[len(s)-1]
	}
	if !valid(full) {
		t.Fatal("base does not verify")
	}
	for i := 0; i < len(full); i++ {
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] == full[i] {
				continue
			}
			s := full[:i] + string(alphabet[j]) + full[i+1:]
			if valid(s) {
				t.Fatalf("substitution at %d by %c undetected", i, alphabet[j])
			}
		}
		if i+1 < len(full) && full[i] != full[i+1] {
			s := full[:i] + string(full[i+1]) + string(full[i]) + full[i+2:]
			if valid(s) {
				t.Fatalf("transposition at %d undetected", i)
			}
		}
	}
}

const testCredit = "91350100M000100Y43" // GB 32100 sample (see ids tests)

func TestIdentifier(t *testing.T) {
	id := license.Identifier{TypeCode: "YYZZ", CreditCode: testCredit, Serial: "00000001", Version: 1}
	s, err := license.MakeIdentifier(id)
	if err != nil {
		t.Fatal(err)
	}
	body := "1.2.156.3005.2.YYZZ." + testCredit + ".00000001.001"
	c, _ := license.CheckChar(body)
	if want := body + "." + string(c); s != want {
		t.Fatalf("MakeIdentifier = %s, want %s", s, want)
	}
	got, err := license.ParseIdentifier("  " + strings.ToLower(s) + " ")
	if err != nil || got != id || got.String() != s {
		t.Fatalf("ParseIdentifier(%s) = %+v, %v", s, got, err)
	}

	wrongCheck := s[:len(s)-1] + string(map[bool]byte{true: '1', false: '0'}[s[len(s)-1] == '0'])
	badCredit := strings.Replace(s, testCredit, "91350100M000100Y44", 1)
	for _, tt := range []struct {
		in   string
		want error
	}{
		{"", license.ErrIdentifier},
		{"1.2.156.3005.1.YYZZ." + testCredit + ".00000001.001.X", license.ErrIdentifier},
		{"1.2.156.3005.2.YYZZ." + testCredit + ".00000001.001", license.ErrIdentifier},
		{"1.2.156.3005.2.YYZZ." + testCredit + ".00000001.1." + string(c), license.ErrIdentifier}, // version not 3 digits
		{"1.2.156.3005.2.YYZZ." + testCredit + ".00000001.000.0", license.ErrIdentifier},
		{"1.2.156.3005.2.YY-ZZ." + testCredit + ".00000001.001.0", license.ErrIdentifier},
		{"1.2.156.3005.2..." + testCredit + ".00000001.001.0", license.ErrIdentifier},
		{"1.2.156.3005.2.YYZZ." + testCredit + "..001.0", license.ErrIdentifier},
		{"1.2.156.3005.2.YYZZ." + testCredit + ".00000001.001.", license.ErrIdentifier},
		{"1.2.156.3005.2.YYZZ." + testCredit + ".00000001.001.##", license.ErrIdentifier},
		{badCredit, license.ErrIdentifier}, // the credit code's own check character is wrong
		{wrongCheck, license.ErrIdentifierCheck},
		{s + ".1", license.ErrIdentifier},
		{strings.Repeat("1", 200), license.ErrIdentifier},
	} {
		if _, err := license.ParseIdentifier(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("ParseIdentifier(%q) = %v, want %v", tt.in, err, tt.want)
		}
	}
	if _, err := license.MakeIdentifier(license.Identifier{TypeCode: "YYZZ", CreditCode: testCredit, Serial: "1", Version: 1000}); err == nil {
		t.Error("version 1000 accepted")
	}
}

func FuzzParseIdentifier(f *testing.F) {
	id, _ := license.MakeIdentifier(license.Identifier{TypeCode: "YYZZ", CreditCode: testCredit, Serial: "00000001", Version: 1})
	for _, s := range []string{id, "", "1.2.156.3005.2", id + ".", strings.ToLower(id), "1.2.156.3005.2.A.B.C.D.E", "1.2.156.3005.2.中.文"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := license.ParseIdentifier(s)
		if err != nil {
			return
		}
		canon := got.String()
		again, err := license.ParseIdentifier(canon)
		if err != nil || again != got || again.String() != canon {
			t.Fatalf("%q parsed to %+v, whose form %q does not round-trip: %v", s, got, canon, err)
		}
		if !strings.EqualFold(strings.TrimSpace(s), canon) {
			t.Fatalf("%q accepted as %q", s, canon)
		}
	})
}

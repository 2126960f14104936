package ids_test

import (
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

func TestValidateCreditCode(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  *i18n.Error
		code  string // normalised, when valid
		inMsg string
	}{
		// Real codes, checked by hand against both GB 11714 and GB 32100 rules.
		{name: "real code, Fuzhou", in: "91350100M000100Y43", code: "91350100M000100Y43"},
		{name: "real code, Beijing", in: "91110000802100433B", code: "91110000802100433B"},
		// Vectors computed outside this package for the edge values of each check.
		{name: "organisation check X", in: "9144030000000006XE", code: "9144030000000006XE"},
		{name: "organisation check 11 written 0", in: "91440300000000000E", code: "91440300000000000E"},
		{name: "check 31 written 0", in: "914403000000004570", code: "914403000000004570"},
		{name: "national registration office 100000", in: "11100000000013127D", code: "11100000000013127D"},

		{name: "lower case and spaces", in: " 91350100m000100y43 ", code: "91350100M000100Y43"},

		{name: "empty", in: "", want: ids.ErrCreditLength, inMsg: "实际为0位"},
		{name: "17 characters", in: "91350100M000100Y4", want: ids.ErrCreditLength, inMsg: "实际为17位"},
		{name: "15-digit business registration number", in: "110108000000016", want: ids.ErrCreditLength},
		{name: "letter O", in: "91350100MO00100Y43", want: ids.ErrCreditCharset, inMsg: "第10位"},
		{name: "letter I", in: "9I350100M000100Y43", want: ids.ErrCreditCharset, inMsg: "第2位"},
		{name: "letters Z S V", in: "91350100M000100Z43", want: ids.ErrCreditCharset, inMsg: "第16位"},
		{name: "punctuation", in: "91350100-000100Y43", want: ids.ErrCreditCharset, inMsg: "第9位"},
		{name: "full-width", in: "９1350100M000100Y43", want: ids.ErrCreditCharset, inMsg: "第1位"},
		{name: "authority 0", in: "01350100M000100Y43", want: ids.ErrCreditAuthority, inMsg: "第1位"},
		{name: "authority B", in: "B1350100M000100Y43", want: ids.ErrCreditAuthority},
		{name: "type 0", in: "90350100M000100Y43", want: ids.ErrCreditType, inMsg: "第2位"},
		{name: "type letter", in: "9A350100M000100Y43", want: ids.ErrCreditType},
		{name: "division letter", in: "9135A100M000100Y43", want: ids.ErrCreditDivision, inMsg: "35A100"},
		{name: "division province 99", in: "91990100M000100Y43", want: ids.ErrCreditDivision, inMsg: "990100"},
		{name: "division 000000", in: "91000000M000100Y43", want: ids.ErrCreditDivision},
		{name: "organisation check wrong", in: "91350100M000100Y53", want: ids.ErrCreditOrgChecksum, inMsg: "第9–16位不符"},
		{name: "organisation body typo", in: "91350100M000200Y43", want: ids.ErrCreditOrgChecksum},
		{name: "final check wrong", in: "91350100M000100Y44", want: ids.ErrCreditChecksum, inMsg: "前17位不符"},
		{name: "division typo caught by final check", in: "91350200M000100Y43", want: ids.ErrCreditChecksum},
		{name: "authority typo caught by final check", in: "51350100M000100Y43", want: ids.ErrCreditChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ids.ValidateCreditCode(tt.in)
			if e := wantErr(t, err, tt.want); e != nil {
				if !strings.Contains(e.Msg.ZH, tt.inMsg) {
					t.Errorf("zh message %q lacks %q", e.Msg.ZH, tt.inMsg)
				}
				return
			}
			want := ids.CreditCode{Code: tt.code, Authority: tt.code[0], Type: tt.code[1], Division: tt.code[2:8], OrgCode: tt.code[8:17]}
			if c != want {
				t.Errorf("got %+v, want %+v", c, want)
			}
		})
	}
}

func TestCreditCodeTexts(t *testing.T) {
	c, err := ids.ValidateCreditCode("91350100M000100Y43")
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthorityText().ZH != "工商" || c.TypeText().ZH != "企业" {
		t.Errorf("texts: %v %v", c.AuthorityText(), c.TypeText())
	}
	odd, err := ids.MakeCreditCode('9', '8', "350100", "M0001000")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := ids.ValidateCreditCode(odd); c.TypeText() != (i18n.Text{}) {
		t.Errorf("type 8 under authority 9 is undefined, got %v", c.TypeText())
	}
}

func TestMakeCreditCode(t *testing.T) {
	tests := []struct {
		authority, orgType byte
		division, body     string
		want               string
		err                *i18n.Error
	}{
		{'9', '1', "350100", "M000100Y", "91350100M000100Y43", nil},
		{'9', '1', "110000", "80210043", "91110000802100433B", nil},
		{'9', '1', "440300", "00000006", "9144030000000006XE", nil},
		{'1', '1', "100000", "00001312", "11100000000013127D", nil},
		{'N', '2', "320583", "12345678", "", nil}, // valid; checked by round trip below
		{'B', '1', "350100", "M000100Y", "", ids.ErrCreditAuthority},
		{'9', '0', "350100", "M000100Y", "", ids.ErrCreditType},
		{'9', '1', "990100", "M000100Y", "", ids.ErrCreditDivision},
		{'9', '1', "3501", "M000100Y", "", ids.ErrCreditLength},
		{'9', '1', "350100", "M000100", "", ids.ErrCreditLength},
		{'9', '1', "350100", "m000100Y", "", ids.ErrCreditCharset},
		{'9', '1', "350100", "MO00100Y", "", ids.ErrCreditCharset},
		{0xff, '1', "350100", "M000100Y", "", ids.ErrCreditCharset},
	}
	for _, tt := range tests {
		got, err := ids.MakeCreditCode(tt.authority, tt.orgType, tt.division, tt.body)
		if wantErr(t, err, tt.err); tt.err != nil {
			continue
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("MakeCreditCode(%c, %c, %s, %s) = %s, want %s", tt.authority, tt.orgType, tt.division, tt.body, got, tt.want)
		}
		if _, err := ids.ValidateCreditCode(got); err != nil {
			t.Errorf("generated %s does not validate: %v", got, err)
		}
	}
}

func FuzzCreditCode(f *testing.F) {
	for _, s := range []string{
		"91350100M000100Y43", "91110000802100433B", "9144030000000006XE", "914403000000004570",
		"11100000000013127D", "91350100m000100y43", "", "91350100MO00100Y43", "９1350100M000100Y43",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkCreditCode(t, s)
		// Random text rarely carries two right check characters, so also fold the input
		// into the code set and let MakeCreditCode complete it.
		const charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
		first16 := make([]byte, 16)
		for i := range first16 {
			switch {
			case i >= len(s):
				first16[i] = '1'
			case strings.IndexByte(charset, s[i]) >= 0: // so seeds stay valid
				first16[i] = s[i]
			default:
				first16[i] = charset[int(s[i])%len(charset)]
			}
		}
		made, err := ids.MakeCreditCode(first16[0], first16[1], string(first16[2:8]), string(first16[8:]))
		if err != nil {
			checkErr(t, err)
			return
		}
		if _, err := ids.ValidateCreditCode(made); err != nil {
			t.Fatalf("MakeCreditCode(%s) = %s does not validate: %v", first16, made, err)
		}
		checkCreditCode(t, made)
	})
}

func checkCreditCode(t *testing.T, s string) {
	c, err := ids.ValidateCreditCode(s)
	if err != nil {
		checkErr(t, err)
		return
	}
	again, err := ids.ValidateCreditCode(c.Code)
	if err != nil || again != c {
		t.Fatalf("normalised %q does not re-validate to itself: %+v, %v", c.Code, again, err)
	}
	made, err := ids.MakeCreditCode(c.Authority, c.Type, c.Division, c.OrgCode[:8])
	if err != nil || made != c.Code {
		t.Fatalf("MakeCreditCode from %+v = %s, %v; want %s", c, made, err, c.Code)
	}
	if c.AuthorityText().ZH == "" {
		t.Fatalf("valid code %s has no authority name", c.Code)
	}
	// The MOD 31 check catches every single-character substitution.
	for i := 0; i < 18; i++ {
		for _, r := range "0123456789ABCDEFGHJKLMNPQRTUWXY" {
			if byte(r) == c.Code[i] {
				continue
			}
			typo := c.Code[:i] + string(r) + c.Code[i+1:]
			if _, err := ids.ValidateCreditCode(typo); err == nil {
				t.Fatalf("typo %s of %s validates", typo, c.Code)
			}
		}
	}
}

func BenchmarkValidateCreditCode(b *testing.B) {
	for b.Loop() {
		if _, err := ids.ValidateCreditCode("91350100M000100Y43"); err != nil {
			b.Fatal(err)
		}
	}
}

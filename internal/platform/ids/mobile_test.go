package ids_test

import (
	"testing"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

func TestValidateMobile(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  *i18n.Error
	}{
		{in: "13812345678", want: "13812345678"},
		{in: "19912345678", want: "19912345678"},
		{in: "138 1234 5678", want: "13812345678"},
		{in: "138-1234-5678", want: "13812345678"},
		{in: "+86 138 1234 5678", want: "13812345678"},
		{in: "+8613812345678", want: "13812345678"},
		{in: "0086-138-1234-5678", want: "13812345678"},
		{in: "86 13812345678", want: "13812345678"},
		{in: " 13812345678 ", want: "13812345678"},

		{in: "", err: ids.ErrMobileLength},
		{in: "1381234567", err: ids.ErrMobileLength},
		{in: "138123456789", err: ids.ErrMobileLength},
		{in: "+86 1381234567", err: ids.ErrMobileLength},
		{in: "861381234567", err: ids.ErrMobileLength}, // 12 digits: not a prefixed number
		{in: "+1 415 555 1234", err: ids.ErrMobileCountry},
		{in: "+852 9123 4567", err: ids.ErrMobileCountry},
		{in: "001 415 555 1234", err: ids.ErrMobileCountry},
		{in: "138.1234.5678", err: ids.ErrMobileFormat},
		{in: "(138)12345678", err: ids.ErrMobileFormat},
		{in: "１3812345678", err: ids.ErrMobileFormat},
		{in: "+86+8613812345678", err: ids.ErrMobileFormat},
		{in: "12812345678", err: ids.ErrMobilePrefix},
		{in: "10012345678", err: ids.ErrMobilePrefix},
		{in: "23812345678", err: ids.ErrMobilePrefix},
		{in: "01012345678", err: ids.ErrMobilePrefix}, // a landline with area code 010
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ids.ValidateMobile(tt.in)
			if wantErr(t, err, tt.err); tt.err == nil && got != tt.want {
				t.Errorf("ValidateMobile(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzMobile(f *testing.F) {
	for _, s := range []string{"13812345678", "+86 138-1234-5678", "0086 13812345678", "8613812345678", "", "+1 4155551234", "12812345678", "１3812345678"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		masked := ids.MaskMobile(s)
		n, err := ids.ValidateMobile(s)
		if err != nil {
			checkErr(t, err)
			return
		}
		if again, err := ids.ValidateMobile(n); err != nil || again != n || len(n) != 11 {
			t.Fatalf("normalised %q does not re-validate to itself: %q, %v", n, again, err)
		}
		if masked != n[:3]+"****"+n[7:] {
			t.Fatalf("MaskMobile(%q) = %q", s, masked)
		}
	})
}

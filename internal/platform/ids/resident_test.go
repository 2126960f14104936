package ids_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// withCheck appends the right check digit to 17 digits, so a case can break one rule only.
func withCheck(t testing.TB, first17 string) string {
	t.Helper()
	c, err := ids.ResidentCheckDigit(first17)
	if err != nil {
		t.Fatal(err)
	}
	return first17 + string(c)
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestValidateResident(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		now    time.Time
		want   *i18n.Error
		number string // normalised, when valid
		birth  time.Time
		sex    ids.Sex
		seq    int
		inMsg  string // substring the Chinese message must contain
	}{
		// The two worked examples printed in GB 11643-1999.
		{name: "standard example, check X", in: "11010519491231002X", number: "11010519491231002X", birth: date(1949, 12, 31), sex: ids.Female, seq: 2},
		{name: "standard example 1880 is before 1900", in: "440524188001010014", want: ids.ErrResidentBirthEarly, inMsg: "1880-01-01"},

		{name: "lower-case x normalised", in: "11010519491231002x", number: "11010519491231002X", birth: date(1949, 12, 31), sex: ids.Female, seq: 2},
		{name: "surrounding spaces ignored", in: "  11010519491231002X\t", number: "11010519491231002X", birth: date(1949, 12, 31), sex: ids.Female, seq: 2},
		{name: "odd sequence is male", in: withCheck(t, "14010519900101123"), number: withCheck(t, "14010519900101123"), birth: date(1990, 1, 1), sex: ids.Male, seq: 123},
		{name: "leap day 2000", in: withCheck(t, "31010420000229002"), number: withCheck(t, "31010420000229002"), birth: date(2000, 2, 29), sex: ids.Female, seq: 2},
		{name: "born today", in: withCheck(t, "82000020260301001"), number: withCheck(t, "82000020260301001"), birth: date(2026, 3, 1), sex: ids.Male, seq: 1},
		{name: "born 1900-01-01", in: withCheck(t, "65010219000101001"), number: withCheck(t, "65010219000101001"), birth: date(1900, 1, 1), sex: ids.Male, seq: 1},

		{name: "empty", in: "", want: ids.ErrResidentLength, inMsg: "实际为0位"},
		{name: "17 characters", in: "11010519491231002", want: ids.ErrResidentLength, inMsg: "实际为17位"},
		{name: "19 characters", in: "11010519491231002X1", want: ids.ErrResidentLength},
		{name: "15-digit first-generation number", in: "110105491231002", want: ids.ErrResidentLength, inMsg: "实际为15位"},
		{name: "letter in body", in: "1101A519491231002X", want: ids.ErrResidentFormat, inMsg: "第5位"},
		{name: "X inside body", in: "1101051949123100X2", want: ids.ErrResidentFormat, inMsg: "第17位"},
		{name: "full-width digits are 18 characters but not digits", in: "１１０１０５１９４９１２３１００２Ｘ", want: ids.ErrResidentFormat, inMsg: "第1位"},
		{name: "bad check character", in: "11010519491231002Y", want: ids.ErrResidentFormat, inMsg: "第18位"},
		{name: "unknown province 99", in: withCheck(t, "99010519491231002"), want: ids.ErrResidentDivision, inMsg: "990105"},
		{name: "province 83 (Taiwan residence permit) not in GB/T 2260", in: withCheck(t, "83000019491231002"), want: ids.ErrResidentDivision},
		{name: "month 13", in: withCheck(t, "11010519491331002"), want: ids.ErrResidentBirth, inMsg: "19491331"},
		{name: "month 00", in: withCheck(t, "11010519490001002"), want: ids.ErrResidentBirth},
		{name: "day 00", in: withCheck(t, "11010519491200002"), want: ids.ErrResidentBirth},
		{name: "30 February", in: withCheck(t, "11010519490230002"), want: ids.ErrResidentBirth, inMsg: "19490230"},
		{name: "29 February 1900 (not a leap year)", in: withCheck(t, "11010519000229002"), want: ids.ErrResidentBirth},
		{name: "1899-12-31", in: withCheck(t, "11010518991231002"), want: ids.ErrResidentBirthEarly},
		{name: "born tomorrow", in: withCheck(t, "11010520260302002"), want: ids.ErrResidentBirthFuture, inMsg: "2026-03-02"},
		{name: "born 2030", in: withCheck(t, "11010520300101002"), want: ids.ErrResidentBirthFuture},
		{name: "year 0000", in: withCheck(t, "11010500000101002"), want: ids.ErrResidentBirthEarly},
		{name: "wrong check digit says which", in: "110105194912310021", want: ids.ErrResidentChecksum, inMsg: "前17位不符"},
		{name: "transposed digits caught", in: "11010519491213002X", want: ids.ErrResidentChecksum},
		// The clock's own zone decides "today": 1 March 07:00 in Beijing is still
		// 28 February in UTC, and a child born on 1 March Beijing time is valid.
		{name: "today in now's zone", in: withCheck(t, "11010520260301002"), now: time.Date(2026, 3, 1, 7, 0, 0, 0, time.FixedZone("CST", 8*3600)), number: withCheck(t, "11010520260301002"), birth: date(2026, 3, 1), sex: ids.Female, seq: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			r, err := ids.ValidateResidentAt(tt.in, at)
			if e := wantErr(t, err, tt.want); e != nil {
				if !strings.Contains(e.Msg.ZH, tt.inMsg) {
					t.Errorf("zh message %q lacks %q", e.Msg.ZH, tt.inMsg)
				}
				return
			}
			want := ids.Resident{Number: tt.number, Division: tt.number[:6], Birth: tt.birth, Seq: tt.seq, Sex: tt.sex}
			if r != want {
				t.Errorf("got %+v\nwant %+v", r, want)
			}
		})
	}
}

// The message must not reveal the expected check digit: a typo elsewhere plus the "fixed"
// last digit would otherwise pass as a different, valid-looking number.
func TestResidentChecksumMessage(t *testing.T) {
	_, err := ids.ValidateResidentAt("110105194912310021", now)
	e := checkErr(t, err)
	if strings.Contains(e.Msg.ZH, "X") || strings.Contains(e.Msg.EN, " X") || e.Msg.ZH == "" {
		t.Errorf("message = %q", e.Msg)
	}
}

func TestResidentDivisionKnown(t *testing.T) {
	// A stricter table: only Chaoyang district, Beijing.
	strict := ids.ResidentOptions{DivisionKnown: func(code string) bool { return code == "110105" }}
	if _, err := strict.ValidateAt("11010519491231002X", now); err != nil {
		t.Errorf("known code rejected: %v", err)
	}
	_, err := strict.ValidateAt(withCheck(t, "11010619491231002"), now)
	wantErr(t, err, ids.ErrResidentDivision)

	// A wider one: residence permits of Taiwan residents use 830000.
	wide := ids.ResidentOptions{DivisionKnown: func(code string) bool { return ids.ProvinceKnown(code) || code == "830000" }}
	if _, err := wide.ValidateAt(withCheck(t, "83000019491231002"), now); err != nil {
		t.Errorf("widened rule rejected 830000: %v", err)
	}
}

func TestValidateResidentUsesClock(t *testing.T) {
	// Born in 2200: only the real clock is involved, and it is not 2200 yet.
	_, err := ids.ValidateResident(withCheck(t, "11010522000101002"))
	wantErr(t, err, ids.ErrResidentBirthFuture)
	if _, err := ids.ValidateResident("11010519491231002X"); err != nil {
		t.Error(err)
	}
}

func TestResidentCheckDigit(t *testing.T) {
	tests := []struct {
		in   string
		want byte
		err  *i18n.Error
	}{
		{in: "11010519491231002", want: 'X'},
		{in: "44052418800101001", want: '4'},
		{in: "14010519900101123", want: '8'}, // computed independently of this package
		{in: "1101051949123100", err: ids.ErrResidentLength},
		{in: "110105194912310021", err: ids.ErrResidentLength},
		{in: "1101051949123100X", err: ids.ErrResidentFormat},
	}
	for _, tt := range tests {
		got, err := ids.ResidentCheckDigit(tt.in)
		if wantErr(t, err, tt.err); tt.err == nil && got != tt.want {
			t.Errorf("ResidentCheckDigit(%s) = %c, want %c", tt.in, got, tt.want)
		}
	}
}

func TestMakeResident(t *testing.T) {
	tests := []struct {
		division string
		birth    time.Time
		seq      int
		male     bool
		want     string
	}{
		{"110105", date(1949, 12, 31), 2, false, "11010519491231002X"},
		{"110105", date(1949, 12, 31), 3, false, "11010519491231002X"}, // 3 is odd: flipped to 2 for a woman
		{"440524", date(1880, 1, 1), 1, true, "440524188001010014"},
		{"440524", date(1880, 1, 1), 0, true, "440524188001010014"}, // 0 is even: flipped to 1 for a man
		{"650102", date(2000, 2, 29), 999, false, withCheck(t, "65010220000229998")},
		{"650102", date(2000, 2, 29), 999, true, withCheck(t, "65010220000229999")},
	}
	for _, tt := range tests {
		if got := ids.MakeResident(tt.division, tt.birth, tt.seq, tt.male); got != tt.want {
			t.Errorf("MakeResident(%s, %s, %d, %v) = %s, want %s", tt.division, tt.birth.Format(time.DateOnly), tt.seq, tt.male, got, tt.want)
		}
	}

	// The birth date is read in the time's own zone.
	beijing := time.Date(1990, 1, 1, 0, 30, 0, 0, time.FixedZone("CST", 8*3600)) // 31 Dec 1989 in UTC
	r, err := ids.ValidateResidentAt(ids.MakeResident("140105", beijing, 123, true), now)
	if err != nil || !r.Birth.Equal(date(1990, 1, 1)) || r.Sex != ids.Male {
		t.Errorf("MakeResident with a zoned time: %+v, %v", r, err)
	}

	for _, bad := range []func(){
		func() { ids.MakeResident("11010", now, 1, true) },
		func() { ids.MakeResident("11010a", now, 1, true) },
		func() { ids.MakeResident("110105", now, -1, true) },
		func() { ids.MakeResident("110105", now, 1000, true) },
		func() { ids.MakeResident("110105", date(10000, 1, 1), 1, true) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("MakeResident with bad literal input did not panic")
				}
			}()
			bad()
		}()
	}
}

func TestResidentAgeAndSex(t *testing.T) {
	r, err := ids.ValidateResidentAt("11010519491231002X", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{date(2026, 3, 1), 76},
		{date(2025, 12, 30), 75},
		{date(2025, 12, 31), 76},
		{date(1949, 12, 31), 0},
	} {
		if got := r.AgeAt(tt.at); got != tt.want {
			t.Errorf("AgeAt(%s) = %d, want %d", tt.at.Format(time.DateOnly), got, tt.want)
		}
	}
	if r.Sex.Text().ZH != "女" || ids.Male.Text().ZH != "男" || ids.Male.String() != "male" || ids.SexUnknown.String() != "unknown" {
		t.Error("sex texts")
	}
}

func FuzzResident(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X", "11010519491231002x", "440524188001010014", "110105194912310021",
		"", "1101051949123100２X", " 14010519900101123X ", "82000020260301001X", "11010519000229002X",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = ids.MaskResident(s)
		checkResident(t, s)
		// Random text rarely carries a right check digit, so also fold the input into 17
		// digits and complete it: that drives the division and date rules and the round trip.
		body := make([]byte, 17)
		for i := range body {
			body[i] = '0'
			if i < len(s) {
				body[i] += (s[i] - '0') % 10 // digits map to themselves, so seeds stay valid
			}
		}
		checkResident(t, withCheck(t, string(body)))
	})
}

func checkResident(t *testing.T, s string) {
	r, err := ids.ValidateResidentAt(s, now)
	if err != nil {
		checkErr(t, err)
		return
	}
	again, err := ids.ValidateResidentAt(r.Number, now)
	if err != nil || again != r {
		t.Fatalf("normalised %q does not re-validate to itself: %+v, %v", r.Number, again, err)
	}
	if made := ids.MakeResident(r.Division, r.Birth, r.Seq, r.Sex == ids.Male); made != r.Number {
		t.Fatalf("MakeResident from %+v = %s, want %s", r, made, r.Number)
	}
	if m := ids.MaskResident(r.Number); m != r.Number[:6]+"********"+r.Number[14:] {
		t.Fatalf("MaskResident(%s) = %s", r.Number, m)
	}
	// MOD 11-2 catches every single-character substitution.
	for i := 0; i < 18; i++ {
		for _, c := range "0123456789X" {
			if byte(c) == r.Number[i] {
				continue
			}
			typo := r.Number[:i] + string(c) + r.Number[i+1:]
			if _, err := ids.ValidateResidentAt(typo, now); err == nil {
				t.Fatalf("typo %s of %s validates", typo, r.Number)
			}
		}
	}
}

func BenchmarkValidateResident(b *testing.B) {
	for b.Loop() {
		if _, err := ids.ValidateResidentAt("11010519491231002X", now); err != nil {
			b.Fatal(err)
		}
	}
}

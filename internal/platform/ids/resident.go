package ids

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Errors of the resident identity number (公民身份号码). The returned errors carry these codes
// with a message naming the exact fault; compare with errors.Is.
var (
	ErrResidentLength      = i18n.New("ids.resident.length", "身份证号码应为18位", "ID number must be 18 characters")
	ErrResidentFormat      = i18n.New("ids.resident.format", "身份证号码前17位应为数字，第18位应为数字或X", "ID number must be 17 digits followed by a digit or X")
	ErrResidentDivision    = i18n.New("ids.resident.division", "身份证号码的地址码不是有效的行政区划代码", "ID number address code is not a known administrative division")
	ErrResidentBirth       = i18n.New("ids.resident.birth", "身份证号码的出生日期不是有效日期", "ID number birth date is not a real date")
	ErrResidentBirthFuture = i18n.New("ids.resident.birth_future", "身份证号码的出生日期晚于今天", "ID number birth date is in the future")
	ErrResidentBirthEarly  = i18n.New("ids.resident.birth_before_1900", "身份证号码的出生日期早于1900年", "ID number birth date is before 1900")
	ErrResidentChecksum    = i18n.New("ids.resident.checksum", "身份证号码校验位错误", "ID number check digit is wrong")
)

// Sex is the sex recorded in a resident identity number.
type Sex uint8

const (
	SexUnknown Sex = iota
	Male
	Female
)

func (s Sex) String() string {
	switch s {
	case Male:
		return "male"
	case Female:
		return "female"
	}
	return "unknown"
}

// Text is the sex for display.
func (s Sex) Text() i18n.Text {
	switch s {
	case Male:
		return i18n.T("男", "male")
	case Female:
		return i18n.T("女", "female")
	}
	return i18n.T("未知", "unknown")
}

// Resident is a parsed resident identity number.
type Resident struct {
	Number   string    // normalised: 18 characters, check character upper-case
	Division string    // address code (地址码), 6 digits: where the number was first issued
	Birth    time.Time // date of birth, at midnight UTC; only the date is meaningful
	Seq      int       // sequence code (顺序码), 0–999; its parity is the sex
	Sex      Sex
}

// AgeAt is the age in whole years on now's calendar date.
func (r Resident) AgeAt(now time.Time) int {
	y, m, d := now.Date()
	age := y - r.Birth.Year()
	if m < r.Birth.Month() || (m == r.Birth.Month() && d < r.Birth.Day()) {
		age--
	}
	return age
}

// ResidentOptions tunes validation of resident identity numbers.
type ResidentOptions struct {
	// DivisionKnown decides whether an address code is acceptable. When nil, a code is
	// accepted if its first two digits are a GB/T 2260 province (ProvinceKnown). The default
	// is deliberately loose: under GB 11643-1999 a number keeps for life the address code
	// (地址码) of where it was first issued, so numbers still carry the codes of counties
	// merged or abolished since, which the current GB/T 2260 table would wrongly reject.
	// A caller with a table of every code ever issued may plug it in here. The function
	// replaces the default rule entirely, so it may also widen it (e.g. to 830000, the
	// address code of Taiwan residents' residence permits).
	DivisionKnown func(code string) bool
}

// ValidateResident validates s as of the wall clock; see ValidateResidentAt. Services,
// which get their clock passed in, should call ValidateResidentAt with it.
func ValidateResident(s string) (Resident, error) {
	return ResidentOptions{}.ValidateAt(s, time.Now())
}

// ValidateResidentAt validates s with the default options; now is the moment against which
// a birth date in the future is rejected.
func ValidateResidentAt(s string, now time.Time) (Resident, error) {
	return ResidentOptions{}.ValidateAt(s, now)
}

// ValidateAt validates and parses a resident identity number (GB 11643-1999). Surrounding
// spaces are ignored and a lower-case x is accepted. The structural rules are checked before
// the check digit, so a typo in the date is reported as such rather than as a wrong check digit.
func (o ResidentOptions) ValidateAt(s string, now time.Time) (Resident, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n != 18 {
		return Resident{}, fail(ErrResidentLength, "身份证号码应为18位，实际为%d位", "ID number must be 18 characters, got %d", n)
	}
	// GB 11643-1999: 17 digits of body code (本体码), then the check character 0–9 or X.
	pos := 0
	last := byte(0)
	for _, r := range s {
		pos++
		if pos <= 17 {
			if r < '0' || r > '9' {
				return Resident{}, fail(ErrResidentFormat, "身份证号码第%d位应为数字，实际为%q", "ID number character %d must be a digit, got %q", pos, string(r))
			}
			continue
		}
		switch {
		case r >= '0' && r <= '9', r == 'X':
			last = byte(r)
		case r == 'x':
			last = 'X'
		default:
			return Resident{}, fail(ErrResidentFormat, "身份证号码第18位应为数字或X，实际为%q", "ID number character 18 must be a digit or X, got %q", string(r))
		}
	}
	// All 18 runes are ASCII now, so byte offsets equal positions.
	number := s[:17] + string(last)

	division := number[:6]
	known := o.DivisionKnown
	if known == nil {
		known = ProvinceKnown
	}
	if !known(division) {
		return Resident{}, fail(ErrResidentDivision, "身份证号码的地址码%s不是有效的行政区划代码", "ID number address code %s is not a known administrative division", division)
	}

	// GB 11643-1999 birth date code (出生日期码): YYYYMMDD as in GB/T 7408.
	y, m, d := atoi(number[6:10]), atoi(number[10:12]), atoi(number[12:14])
	birth := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if m < 1 || m > 12 || birth.Day() != d || birth.Month() != time.Month(m) {
		return Resident{}, fail(ErrResidentBirth, "身份证号码的出生日期%s不是有效日期", "ID number birth date %s is not a real date", number[6:14])
	}
	if y < 1900 {
		return Resident{}, fail(ErrResidentBirthEarly, "身份证号码的出生日期%s早于1900年", "ID number birth date %s is before 1900", birth.Format(time.DateOnly))
	}
	ny, nm, nd := now.Date()
	if today := time.Date(ny, nm, nd, 0, 0, 0, 0, time.UTC); birth.After(today) {
		return Resident{}, fail(ErrResidentBirthFuture, "身份证号码的出生日期%s晚于今天（%s）", "ID number birth date %s is after today (%s)", birth.Format(time.DateOnly), today.Format(time.DateOnly))
	}

	if want := residentCheck(number[:17]); number[17] != want {
		return Resident{}, fail(ErrResidentChecksum, "身份证号码校验位与前17位不符，请逐位核对号码", "the ID number's check digit does not match its first 17 digits; check every digit")
	}

	seq := atoi(number[14:17])
	sex := Female
	if seq%2 == 1 { // GB 11643-1999 sequence code (顺序码): odd for men, even for women
		sex = Male
	}
	return Resident{Number: number, Division: division, Birth: birth, Seq: seq, Sex: sex}, nil
}

// residentWeights are W_i = 2^(17-i) mod 11 of ISO 7064 MOD 11-2, the check of GB 11643-1999.
var residentWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// residentChecks maps the weighted sum mod 11 to the check character; 10 is written X.
const residentChecks = "10X98765432"

// residentCheck computes the check character of 17 ASCII digits.
func residentCheck(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * residentWeights[i]
	}
	return residentChecks[sum%11]
}

// ResidentCheckDigit computes the check character ('0'–'9' or 'X') for the first 17 digits
// of a resident identity number.
func ResidentCheckDigit(first17 string) (byte, error) {
	if n := utf8.RuneCountInString(first17); n != 17 {
		return 0, fail(ErrResidentLength, "身份证号码本体码应为17位，实际为%d位", "ID number body must be 17 digits, got %d", n)
	}
	if !isDigits(first17) {
		return 0, fail(ErrResidentFormat, "身份证号码本体码应全为数字", "ID number body must be all digits")
	}
	return residentCheck(first17), nil
}

// MakeResident builds a resident identity number for demo data and tests. seq is the
// 3-digit sequence code; when its parity does not match male, its last bit is flipped, as
// GB 11643-1999 gives odd sequence codes to men. It panics if division is not 6 digits, seq is
// outside 0–999 or birth's year outside 0–9999: those are mistakes in the caller's literals.
// The result is only valid if the inputs are (known division, birth from 1900 to today).
func MakeResident(division string, birth time.Time, seq int, male bool) string {
	if len(division) != 6 || !isDigits(division) {
		panic(fmt.Sprintf("ids.MakeResident: division %q is not 6 digits", division))
	}
	if seq < 0 || seq > 999 {
		panic(fmt.Sprintf("ids.MakeResident: seq %d is outside 0–999", seq))
	}
	y, m, d := birth.Date()
	if y < 0 || y > 9999 {
		panic(fmt.Sprintf("ids.MakeResident: birth year %d is outside 0–9999", y))
	}
	if (seq%2 == 1) != male {
		seq ^= 1
	}
	first17 := fmt.Sprintf("%s%04d%02d%02d%03d", division, y, int(m), d, seq)
	return first17 + string(residentCheck(first17))
}

package ids

import (
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Errors of mobile numbers; compare with errors.Is.
var (
	ErrMobileLength  = i18n.New("ids.mobile.length", "手机号码应为11位数字", "mobile number must be 11 digits")
	ErrMobileFormat  = i18n.New("ids.mobile.format", "手机号码只能包含数字、空格和连字符", "mobile number may contain only digits, spaces and dashes")
	ErrMobileCountry = i18n.New("ids.mobile.country", "仅支持中国大陆手机号码（+86）", "only mainland China mobile numbers (+86) are accepted")
	ErrMobilePrefix  = i18n.New("ids.mobile.prefix", "手机号码应以1开头，第2位为3–9", "mobile number must start with 1 followed by 3–9")
)

// separators are what people type between digit groups: 138 1234 5678, 138-1234-5678.
var separators = strings.NewReplacer(" ", "", "-", "")

// ValidateMobile validates a mainland China mobile number and returns it normalised to 11
// digits. Spaces and dashes anywhere are ignored, as is a country prefix +86, 0086 or 86.
// Only the shape is checked (1, then 3–9, then 9 digits, per the MIIT numbering plan): which
// blocks are allocated changes too often to hard-code, and only an SMS proves a number works.
func ValidateMobile(s string) (string, error) {
	s = separators.Replace(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, "+86"):
		s = s[3:]
	case strings.HasPrefix(s, "0086"):
		s = s[4:]
	case strings.HasPrefix(s, "+") || strings.HasPrefix(s, "00"):
		return "", fail(ErrMobileCountry, "仅支持中国大陆手机号码（+86）", "only mainland China mobile numbers (+86) are accepted")
	case len(s) == 13 && strings.HasPrefix(s, "86"):
		s = s[2:]
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return "", fail(ErrMobileFormat, "手机号码含有无效字符%q（只能包含数字、空格和连字符）", "mobile number has an invalid character %q (only digits, spaces and dashes)", string(r))
	}
	if len(s) != 11 {
		return "", fail(ErrMobileLength, "手机号码应为11位数字，实际为%d位", "mobile number must be 11 digits, got %d", len(s))
	}
	if s[0] != '1' || s[1] < '3' {
		return "", fail(ErrMobilePrefix, "手机号码应以1开头、第2位为3–9，实际以%s开头", "mobile number must start with 1 followed by 3–9, got %s", s[:2])
	}
	return s, nil
}

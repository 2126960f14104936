package license

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// IdentifierPrefix is the object-identifier arc of electronic licences (GB/T 36904-2018,
// 电子证照 标识规范): 1 ISO, 2 member body, 156 China, 3005 e-licences, 2 licence identifiers.
const IdentifierPrefix = "1.2.156.3005.2"

// Identifier is a parsed licence identifier (证照标识):
//
//	1.2.156.3005.2.<type code>.<issuer credit code>.<serial>.<version>.<check character>
//
// The type code and serial are 1–32 characters of 0-9A-Z; the issuer's code is its unified
// social credit code (GB 32100-2015); the version is three decimal digits, 001…999 (one
// written form only, so that the text of an identifier is canonical); the check character
// is ISO 7064 MOD 37,36.
type Identifier struct {
	TypeCode   string
	CreditCode string
	Serial     string
	Version    int
}

// Errors of identifiers; compare with errors.Is.
var (
	ErrIdentifier = &i18n.Error{Code: "license.identifier", Status: http.StatusBadRequest, Field: "id",
		Msg: i18n.T("证照标识格式无效", "the licence identifier is malformed")}
	ErrIdentifierCheck = &i18n.Error{Code: "license.identifier.check", Status: http.StatusBadRequest, Field: "id",
		Msg: i18n.T("证照标识校验位错误", "the licence identifier's check character is wrong")}
)

// MaxVersion is the highest version an identifier can carry (three digits).
const MaxVersion = 999

// alphabet is the character set of ISO/IEC 7064 (GB/T 17710-2008) MOD 37,36: the value of a
// character is its index.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func charValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return -1
}

// CheckChar computes the ISO/IEC 7064 MOD 37,36 check character (hybrid system, M = 36,
// GB/T 17710-2008 §9–10) of s, whose characters must be 0-9A-Z ('.' separators are skipped:
// they are not in the system's alphabet). Starting from P = M, for each character a in turn
// S = (P + a) mod M, with 0 read as M, then P = 2S mod (M+1); the check character c makes
// (P + c) mod M = 1, so c = (M + 1 − P) mod M. ok is false for any other character.
func CheckChar(s string) (c byte, ok bool) {
	const m = 36
	p := m
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			continue
		}
		a := charValue(s[i])
		if a < 0 {
			return 0, false
		}
		sum := (p + a) % m
		if sum == 0 {
			sum = m
		}
		p = (2 * sum) % (m + 1)
		n++
	}
	if n == 0 {
		return 0, false
	}
	return alphabet[(m+1-p)%m], true
}

// codePart reports whether s is 1–32 characters of 0-9A-Z.
func codePart(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if charValue(s[i]) < 0 {
			return false
		}
	}
	return true
}

// String formats the identifier with its check character. It does not validate: use
// MakeIdentifier for values from outside.
func (id Identifier) String() string {
	body := IdentifierPrefix + "." + id.TypeCode + "." + id.CreditCode + "." + id.Serial + "." + fmt.Sprintf("%03d", id.Version)
	c, _ := CheckChar(body)
	return body + "." + string(c)
}

// MakeIdentifier validates the parts and returns the identifier's text.
func MakeIdentifier(id Identifier) (string, error) {
	if err := id.validate(); err != nil {
		return "", err
	}
	return id.String(), nil
}

func (id Identifier) validate() error {
	switch {
	case !codePart(id.TypeCode):
		return ErrIdentifier.Wrap(fmt.Errorf("type code %q: want 1-32 of 0-9A-Z", id.TypeCode))
	case !codePart(id.Serial):
		return ErrIdentifier.Wrap(fmt.Errorf("serial %q: want 1-32 of 0-9A-Z", id.Serial))
	case id.Version < 1 || id.Version > MaxVersion:
		return ErrIdentifier.Wrap(fmt.Errorf("version %d out of range", id.Version))
	}
	if _, err := ids.ValidateCreditCode(id.CreditCode); err != nil {
		return ErrIdentifier.Wrap(err)
	}
	return nil
}

// ParseIdentifier parses and validates a licence identifier: the prefix, each part's
// syntax, the issuer's credit code (GB 32100, its own check character included) and the
// ISO 7064 MOD 37,36 check character over every character before it. Surrounding space is
// ignored and lower-case letters are read as capitals; the String of the result is the
// canonical form.
func ParseIdentifier(s string) (Identifier, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) > 160 {
		return Identifier{}, ErrIdentifier.Wrap(fmt.Errorf("%d characters", len(s)))
	}
	rest, ok := strings.CutPrefix(s, IdentifierPrefix+".")
	if !ok {
		return Identifier{}, ErrIdentifier.Wrap(fmt.Errorf("prefix is not %s", IdentifierPrefix))
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 5 {
		return Identifier{}, ErrIdentifier.Wrap(fmt.Errorf("%d parts after the prefix, want 5", len(parts)))
	}
	ver := parts[3]
	if len(ver) != 3 || strings.Trim(ver, "0123456789") != "" {
		return Identifier{}, ErrIdentifier.Wrap(fmt.Errorf("version %q: want three digits", ver))
	}
	v, _ := strconv.Atoi(ver)
	id := Identifier{TypeCode: parts[0], CreditCode: parts[1], Serial: parts[2], Version: v}
	if err := id.validate(); err != nil {
		return Identifier{}, err
	}
	if len(parts[4]) != 1 || charValue(parts[4][0]) < 0 {
		return Identifier{}, ErrIdentifier.Wrap(fmt.Errorf("check character %q", parts[4]))
	}
	want, _ := CheckChar(s[:len(s)-2])
	if parts[4][0] != want {
		return Identifier{}, ErrIdentifierCheck
	}
	return id, nil
}

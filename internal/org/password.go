package org

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// ArgonParams are the Argon2id cost parameters (RFC 9106). They are written into every hash,
// so they can be raised later: hashes made with other parameters still verify, and
// NeedsRehash tells the login path to upgrade them.
type ArgonParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultArgon is the production setting, the OWASP Password Storage Cheat Sheet's
// recommended Argon2id configuration: 19 MiB (19456 KiB), 2 passes, 1 lane; 16-byte salt,
// 32-byte key. It costs some tens of milliseconds of one core. Concurrent hashing is bounded
// (Options.MaxHashing) so a burst of logins cannot exhaust memory. To raise the cost later,
// pass higher parameters: stored hashes keep theirs and are upgraded at the next login.
var DefaultArgon = ArgonParams{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// withDefaults fills zero fields from DefaultArgon.
func (p ArgonParams) withDefaults() ArgonParams {
	if p.Memory == 0 {
		p.Memory = DefaultArgon.Memory
	}
	if p.Time == 0 {
		p.Time = DefaultArgon.Time
	}
	if p.Threads == 0 {
		p.Threads = DefaultArgon.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = DefaultArgon.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultArgon.KeyLen
	}
	// Argon2 needs at least 8 KiB per lane.
	if p.Memory < 8*uint32(p.Threads) {
		p.Memory = 8 * uint32(p.Threads)
	}
	return p
}

// Limits on parameters read back from a stored hash: a tampered row must not make a login
// allocate gigabytes or spin for minutes.
const (
	maxArgonMemory = 1 << 21 // 2 GiB in KiB
	maxArgonTime   = 64
	maxArgonKeyLen = 128
)

var b64 = base64.RawStdEncoding // PHC string format: standard alphabet, no padding

// HashPassword hashes password with Argon2id and a fresh random salt, returning the PHC string
// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>".
func HashPassword(password string, p ArgonParams) (string, error) {
	p = p.withDefaults()
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodeHash(p, salt, key), nil
}

func encodeHash(p ArgonParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadHash = errors.New("not an argon2id PHC hash")

// decodeHash parses a PHC argon2id string.
func decodeHash(hash string) (p ArgonParams, salt, key []byte, err error) {
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: version %q", errBadHash, parts[2])
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, perr := strconv.ParseUint(v, 10, 32)
		if !ok || perr != nil {
			return p, nil, nil, fmt.Errorf("%w: parameter %q", errBadHash, kv)
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, fmt.Errorf("%w: parameter %q", errBadHash, kv)
			}
			p.Threads = uint8(n)
		default:
			return p, nil, nil, fmt.Errorf("%w: parameter %q", errBadHash, kv)
		}
	}
	if p.Time == 0 || p.Time > maxArgonTime || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemory {
		return p, nil, nil, fmt.Errorf("%w: parameters out of range", errBadHash)
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("%w: salt", errBadHash)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > maxArgonKeyLen {
		return p, nil, nil, fmt.Errorf("%w: key", errBadHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// VerifyPassword reports whether password matches the PHC hash, comparing in constant time.
// A malformed hash is an error, never a match.
func VerifyPassword(hash, password string) (bool, error) {
	p, salt, key, err := decodeHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether hash was made with parameters other than want (or is not a
// valid argon2id hash), so the next successful login should store a fresh hash.
func NeedsRehash(hash string, want ArgonParams) bool {
	p, _, _, err := decodeHash(hash)
	if err != nil {
		return true
	}
	want = want.withDefaults()
	return p.Memory != want.Memory || p.Time != want.Time || p.Threads != want.Threads ||
		p.KeyLen != want.KeyLen || p.SaltLen < want.SaltLen
}

// dummyHash is a well-formed hash with the given parameters that no password matches
// (random key): verifying against it costs what verifying a real one costs, which hides
// whether a username exists.
func dummyHash(p ArgonParams) string {
	p = p.withDefaults()
	salt := make([]byte, p.SaltLen)
	key := make([]byte, p.KeyLen)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	return encodeHash(p, salt, key)
}

// Password policy.
const (
	MinPasswordLen      = 10  // characters
	LongPasswordLen     = 16  // from here on any characters will do (a passphrase)
	MaxPasswordLen      = 128 // characters; bounds the work one login can ask for
	minPasswordClassCnt = 3
)

// Password policy errors, one per rule; each names the field "password".
var (
	ErrPasswordTooShort = &i18n.Error{Code: "org.password.too_short", Status: http.StatusBadRequest, Field: "password",
		Msg: i18n.T("密码至少需要 10 个字符", "the password must have at least 10 characters")}
	ErrPasswordTooLong = &i18n.Error{Code: "org.password.too_long", Status: http.StatusBadRequest, Field: "password",
		Msg: i18n.T("密码不能超过 128 个字符", "the password must have at most 128 characters")}
	ErrPasswordIsUsername = &i18n.Error{Code: "org.password.username", Status: http.StatusBadRequest, Field: "password",
		Msg: i18n.T("密码不能与用户名相同", "the password must not be the username")}
	ErrPasswordCommon = &i18n.Error{Code: "org.password.common", Status: http.StatusBadRequest, Field: "password",
		Msg: i18n.T("密码过于常见，容易被猜中，请换一个", "the password is too common and easy to guess; choose another")}
	ErrPasswordWeak = &i18n.Error{Code: "org.password.classes", Status: http.StatusBadRequest, Field: "password",
		Msg: i18n.T("密码需包含大写字母、小写字母、数字、符号中的至少三类，或长度不少于 16 个字符",
			"the password needs at least three of: upper-case letters, lower-case letters, digits, symbols — or at least 16 characters")}
)

// commonPasswords are passwords that satisfy the length and class rules yet head every
// guessing list (breach corpora and default passwords of Chinese admin consoles). Compared
// case-insensitively.
var commonPasswords = map[string]bool{}

func init() {
	for _, p := range []string{
		"Password123!", "Password@123", "Password1234", "Passw0rd123", "P@ssw0rd123", "P@ssw0rd1234",
		"P@ssword123", "Pa$$w0rd123", "Password123", "Password12345", "12345678Aa", "12345678aA!",
		"1234567890Aa", "Aa123456789", "Aa1234567890", "Aa123456!@#", "Admin@123", "Admin@1234",
		"Admin@12345", "Admin123456", "Admin123!@#", "Administrator1", "Qwerty123!", "Qwerty12345",
		"Qwer1234!@#$", "1qaz2wsx3edc", "1qaz@WSX3edc", "1qaz!QAZ2wsx", "Abc123456!", "Abcd1234!@",
		"Abc@123456", "Welcome123!", "Welcome@123", "Root@12345", "Test@12345", "Huawei@123",
		"Huawei12#$", "Changeme123!", "Zxcvbnm123!", "Woaini1314!", "Woaini520!", "Iloveyou123!",
		"Shanxi@123", "Shanxi@2024", "Shanxi@2025", "Shanxi@2026", "Taiyuan@123", "Dgov@123456",
	} {
		commonPasswords[strings.ToLower(p)] = true
	}
}

// ValidatePassword checks password against the policy for the account username, returning
// the first rule it breaks as a bilingual error naming the field "password".
func ValidatePassword(username, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return ErrPasswordTooShort
	case n > MaxPasswordLen:
		return ErrPasswordTooLong
	case username != "" && strings.EqualFold(strings.TrimSpace(password), strings.TrimSpace(username)):
		return ErrPasswordIsUsername
	case commonPasswords[strings.ToLower(password)]:
		return ErrPasswordCommon
	}
	if n >= LongPasswordLen {
		return nil
	}
	var upper, lower, digit, symbol int
	for _, r := range password {
		switch {
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			symbol = 1
		}
	}
	if upper+lower+digit+symbol < minPasswordClassCnt {
		return ErrPasswordWeak
	}
	return nil
}

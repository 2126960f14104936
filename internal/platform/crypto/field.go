package crypto

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/text/unicode/norm"
)

// FieldCipher encrypts personal-data fields (ID number, phone, address …) at rest with
// SM4-GCM, and computes blind indexes (a keyed SM3 hash) for the columns looked up by exact
// value. Get it from Keyring.FieldCipher; it is safe for concurrent use.
//
// A sealed field is
//
//	version (1 byte) || nonce (12 random bytes) || SM4-GCM ciphertext and tag
//
// authenticated with the associated data version || aad. The version names the field key,
// so RotateFieldKey can introduce a new key while older data still opens.
//
// Key rotation and the engines: the field keys are random keys wrapped by the master key,
// so rotating the master key (RewrapMaster) rewraps those keys and never requires touching
// encrypted columns. Rotating the field key itself (RotateFieldKey) leaves existing
// ciphertexts under their old version; re-sealing them under the new key — reading each
// row, Open, Seal, writing it back, for rows where NeedsReseal — is the job of the engine
// that owns the table, since only it knows its tables and the aad of each field.
// The blind-index key is never rotated: a new one would change every index value.
type FieldCipher struct {
	keys atomic.Pointer[fieldKeys]
}

type fieldKeys struct {
	current byte
	aead    [256]cipher.AEAD // by version; nil where unknown
	blind   sync.Pool        // of HMAC-SM3 hashes keyed with the blind-index key
}

func (fk *fieldKeys) setBlindKey(key []byte) {
	key = append([]byte(nil), key...)
	fk.blind.New = func() any { return hmac.New(sm3.New, key) }
}

const fieldHeader = 1 + gcmNonceSize

var errNoFieldKeys = errors.New("crypto: FieldCipher has no keys (use Keyring.FieldCipher)")

// fieldAD is the associated data: the version byte, so that it is authenticated too, then
// the caller's context (e.g. "identity.person:<id>:id_number"), binding a ciphertext to the
// row and column it belongs to so that it cannot be copied elsewhere.
func fieldAD(buf []byte, version byte, aad string) []byte {
	return append(append(buf[:0], version), aad...)
}

// Seal encrypts plaintext under the current field key, bound to aad, with a random nonce
// (so equal values give different ciphertexts; use BlindIndex to find them).
func (f *FieldCipher) Seal(plaintext string, aad string) ([]byte, error) {
	fk := f.keys.Load()
	if fk == nil {
		return nil, errNoFieldKeys
	}
	out := make([]byte, fieldHeader, fieldHeader+len(plaintext)+gcmTagSize)
	out[0] = fk.current
	_, _ = rand.Read(out[1:fieldHeader]) // crypto/rand.Read never fails (Go ≥ 1.24)
	var buf [64]byte
	return fk.aead[fk.current].Seal(out, out[1:fieldHeader], []byte(plaintext), fieldAD(buf[:], fk.current, aad)), nil
}

// Open decrypts a value made by Seal with the same aad. A wrong aad, a tampered or truncated
// ciphertext or an unknown key version fail with ErrDecrypt.
func (f *FieldCipher) Open(ct []byte, aad string) (string, error) {
	fk := f.keys.Load()
	if fk == nil {
		return "", errNoFieldKeys
	}
	if len(ct) < fieldHeader+gcmTagSize {
		return "", ErrDecrypt.Wrap(fmt.Errorf("ciphertext of %d bytes is too short", len(ct)))
	}
	a := fk.aead[ct[0]]
	if a == nil {
		return "", ErrDecrypt.Wrap(fmt.Errorf("unknown field key version %d", ct[0]))
	}
	var buf [64]byte
	pt, err := a.Open(nil, ct[1:fieldHeader], ct[fieldHeader:], fieldAD(buf[:], ct[0], aad))
	if err != nil {
		return "", ErrDecrypt.Wrap(err)
	}
	return string(pt), nil
}

// NeedsReseal reports whether ct was sealed under an older field key than the current one.
func (f *FieldCipher) NeedsReseal(ct []byte) bool {
	fk := f.keys.Load()
	return fk != nil && len(ct) > 0 && ct[0] != fk.current
}

// BlindIndex is the lower-case hex HMAC-SM3, under the blind-index key, of
// kind || 0x00 || normalised value: a stable, keyed stand-in for value in a lookup column
// (find a person by ID number without decrypting every row). kind separates the value
// spaces ("resident-id", "mobile" …), so equal strings of different kinds do not match; it
// is a constant of the calling code and must not contain 0x00.
//
// The value is normalised generically: Unicode NFKC (full-width digits and letters become
// ASCII), upper case (a trailing x of an ID number matches X), white space removed. Rules
// of a kind (a +86 prefix of a mobile number …) are the caller's: validate and canonicalise
// first (see package ids).
func (f *FieldCipher) BlindIndex(kind, value string) string {
	if strings.IndexByte(kind, 0) >= 0 {
		panic("crypto: BlindIndex kind contains NUL")
	}
	fk := f.keys.Load()
	if fk == nil {
		panic(errNoFieldKeys)
	}
	m := fk.blind.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(normaliseIndexValue(value)))
	var sum [32]byte
	m.Sum(sum[:0])
	fk.blind.Put(m)
	return hex.EncodeToString(sum[:])
}

func normaliseIndexValue(s string) string {
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
	return s
}

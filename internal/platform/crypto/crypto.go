// Package crypto is the node's Chinese commercial cryptography: SM2 signatures with a keyring
// kept in the database, SM4-GCM encryption of personal-data fields with a keyed SM3 blind
// index for exact lookup, and SM3 hashing. All of it runs on github.com/emmansun/gmsm.
//
// Key hierarchy:
//
//	master key file (32 random bytes, hex, mode 0600, never in the database)
//	├─ key-encryption key = HMAC-SM3(master, "dgov key-encryption v1")[:16]   (SM4)
//	│  └─ wraps every row of crypto_keys with SM4-GCM:
//	│     node-sm2     the node's SM2 signing keys (one active, retired ones kept to verify)
//	│     field-sm4    SM4 keys for personal-data fields (one active, older ones kept to open)
//	│     blind-index  the HMAC-SM3 key of the blind-index columns (one, never rotated)
//	└─ DeriveKey(master, label): keys of short-lived values (e.g. CSRF tokens), one label per use
//
// The field and blind-index keys are random and stored wrapped, rather than derived from the
// master directly, so that rotating the master key (RewrapMaster) re-encrypts a handful of
// key rows in one transaction and leaves every encrypted field and every blind index in the
// engines' tables valid.
package crypto

import (
	"crypto/cipher"
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// MasterKeySize is the length of the master key in bytes.
const MasterKeySize = 32

// Errors. They are i18n errors so that a CLI or an API can show them as they are; errors.Is
// matches them by code after Wrap.
var (
	ErrMasterKeyMismatch = &i18n.Error{Code: "crypto.master_key_mismatch", Status: http.StatusInternalServerError,
		Msg: i18n.T("主密钥与数据库中的密钥不匹配", "master key does not match the keys in the database")}
	ErrMasterKeyFile = &i18n.Error{Code: "crypto.master_key_file", Status: http.StatusInternalServerError,
		Msg: i18n.T("主密钥文件无效", "the master key file is not valid")}
	ErrKeyCorrupt = &i18n.Error{Code: "crypto.key_corrupt", Status: http.StatusInternalServerError,
		Msg: i18n.T("数据库中的密钥记录已损坏或被篡改", "a key record in the database is corrupt or was tampered with")}
	ErrUnknownKey = &i18n.Error{Code: "crypto.unknown_key", Status: http.StatusBadRequest,
		Msg: i18n.T("未知的签名密钥", "unknown signing key")}
	ErrBadSignature = &i18n.Error{Code: "crypto.bad_signature", Status: http.StatusBadRequest,
		Msg: i18n.T("签名验证失败", "the signature does not verify")}
	ErrBadPublicKey = &i18n.Error{Code: "crypto.bad_public_key", Status: http.StatusBadRequest,
		Msg: i18n.T("公钥不是有效的 SM2 PEM 公钥", "the public key is not a valid SM2 PEM public key")}
	ErrDecrypt = &i18n.Error{Code: "crypto.decrypt", Status: http.StatusInternalServerError,
		Msg: i18n.T("加密数据无法解密（密钥或关联数据不符，或数据被篡改）", "encrypted data cannot be decrypted (wrong key or context, or tampered)")}
)

// SM3 hashes the concatenation of parts (GB/T 32905-2016). Concatenation is not injective
// (SM3([]byte("ab"), []byte("c")) == SM3([]byte("a"), []byte("bc"))): callers that hash
// several fields frame them, e.g. with lengths or a separator that cannot occur in them.
func SM3(parts ...[]byte) [32]byte {
	if len(parts) == 1 {
		return sm3.Sum(parts[0])
	}
	h := sm3.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// SM3Hex is the lower-case hex SM3 digest of b.
func SM3Hex(b []byte) string {
	s := sm3.Sum(b)
	return hex.EncodeToString(s[:])
}

// hmacSM3 is HMAC (RFC 2104) over SM3, the KDF and MAC of this package.
func hmacSM3(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sm3.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// DeriveKey derives an n-byte key (1 ≤ n ≤ 32) from master for the one use that label
// names: HMAC-SM3(master, label), truncated to n bytes. The same master and label always give
// the same key; different labels give independent keys.
//
// Labels must be unique per use: two uses that share a label share the key, and a weakness or
// leak in one becomes one in the other. Name the application, the use and a version, e.g.
// "dgov csrf v1". "dgov key-encryption v1" is taken — it derives the key that wraps the
// keyring — and DeriveKey panics on it, as it does on n out of range (both are programming
// errors).
//
// A derived key changes when the master key is rotated (RotateMasterKeyFile): use it for
// short-lived values such as CSRF tokens, never for anything stored that must outlive a
// rotation — that is what the keys kept wrapped in crypto_keys are for.
func DeriveKey(master []byte, label string, n int) []byte {
	if label == kekLabel {
		panic("crypto: DeriveKey: the label " + kekLabel + " is reserved for the keyring")
	}
	return deriveKey(master, label, n)
}

// deriveKey is DeriveKey without the reserved-label guard, for the keyring's own label; the
// label separates purposes, and its version lets a future scheme derive different keys.
func deriveKey(master []byte, label string, n int) []byte {
	if n < 1 || n > sm3.Size {
		panic(fmt.Sprintf("crypto: derived key length %d, want 1 to %d", n, sm3.Size))
	}
	return hmacSM3(master, []byte(label))[:n]
}

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// NewSM4GCM is SM4-GCM (12-byte nonce, 16-byte tag) under key, for engines that encrypt
// streams themselves in chunks (applicants' files) with a data key sealed by FieldCipher.
func NewSM4GCM(key []byte) (cipher.AEAD, error) { return newSM4GCM(key) }

// newSM4GCM returns SM4 in GCM mode (12-byte nonce, 16-byte tag). Go's cipher.NewGCM uses
// its fast path only for AES; gmsm's SM4 blocks carry their own assembly GCM (GB/T 36624
// names SM4-GCM), so ask the block first and fall back to the generic construction.
func newSM4GCM(key []byte) (cipher.AEAD, error) {
	b, err := sm4.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if g, ok := b.(interface {
		NewGCM(nonceSize, tagSize int) (cipher.AEAD, error)
	}); ok {
		return g.NewGCM(gcmNonceSize, gcmTagSize)
	}
	return cipher.NewGCM(b)
}

package crypto

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations creates the crypto_keys table.
var Migrations = db.Migrations("crypto", migrationFS, "migrations")

// Key purposes, the purpose column of crypto_keys.
const (
	PurposeNodeSM2 = "node-sm2"    // the node's SM2 signing key pairs
	purposeField   = "field-sm4"   // SM4 keys of personal-data fields
	purposeBlind   = "blind-index" // HMAC-SM3 key of blind-index columns
)

var keyAlg = map[string]string{PurposeNodeSM2: "SM2", purposeField: "SM4-GCM", purposeBlind: "HMAC-SM3"}

// kekLabel derives the key-encryption key, of kekSize bytes (SM4), from the master key.
const (
	kekLabel = "dgov key-encryption v1"
	kekSize  = 16
)

// newKEK is the key-encryption key of master.
func newKEK(master []byte) (cipher.AEAD, error) {
	if len(master) != MasterKeySize {
		return nil, masterSizeError("master key", master)
	}
	return newSM4GCM(deriveKey(master, kekLabel, kekSize))
}

func masterSizeError(what string, master []byte) error {
	return fmt.Errorf("crypto: %s is %d bytes, want %d", what, len(master), MasterKeySize)
}

// Keyring is the node's keys: SM2 signing keys (the active one signs, retired ones still
// verify) and the keys behind FieldCipher. It is safe for concurrent use.
//
// Several dgov nodes may share one database and so one keyring. A node sees keys another
// node created (by Rotate) only after Reload; until then it keeps signing with its own
// active key, which stays verifiable everywhere because retired keys are never deleted.
type Keyring struct {
	d   *db.DB
	now func() time.Time

	// opMu serialises the operations that read or write crypto_keys (reload, key creation,
	// RewrapMaster), so none of them works with a key-encryption key another is replacing.
	opMu   sync.Mutex
	kekKey []byte      // the 16-byte key-encryption key, to tell a new master from the old; opMu
	kek    cipher.AEAD // wraps the secrets of crypto_keys; opMu

	// mu guards the signing keys, which Sign, Verify and the rest read.
	mu     sync.RWMutex
	keys   map[string]*signingKey
	order  []*signingKey // by version
	active *signingKey

	field *FieldCipher
}

type signingKey struct {
	id      string
	version int
	pub     *ecdsa.PublicKey
	pem     string
	priv    *sm2.PrivateKey // only for the active key; retired keys only verify
	created time.Time
	retired time.Time // zero while active
}

// PublicKey describes one of the node's SM2 public keys, for publishing (e.g. at a
// well-known URL) so that others can check the node's signatures offline.
type PublicKey struct {
	ID        string     `json:"id"`
	Alg       string     `json:"alg"` // "SM2"
	PEM       string     `json:"pem"` // PKIX "PUBLIC KEY" PEM
	Active    bool       `json:"active"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// Open loads the keyring from d (migrated with Migrations), unwrapping every key with the
// key-encryption key derived from master. On first start it creates the node's SM2 key pair,
// the field-encryption key and the blind-index key. A master key that is not the one the
// keys were wrapped with fails with ErrMasterKeyMismatch; nothing is created in that case.
// now is the clock (nil means time.Now).
func Open(ctx context.Context, d *db.DB, master []byte, now func() time.Time) (*Keyring, error) {
	if len(master) != MasterKeySize {
		return nil, masterSizeError("master key", master)
	}
	if now == nil {
		now = time.Now
	}
	if err := d.CheckCurrent(ctx, Migrations); err != nil {
		return nil, err
	}
	kekKey := deriveKey(master, kekLabel, kekSize)
	kek, err := newSM4GCM(kekKey)
	if err != nil {
		return nil, err
	}
	k := &Keyring{d: d, now: now, kekKey: kekKey, kek: kek, field: &FieldCipher{}}
	k.opMu.Lock()
	defer k.opMu.Unlock()
	missing, err := k.reload(ctx)
	if err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		return k, nil
	}
	for _, purpose := range missing {
		if err := k.addKey(ctx, purpose, false); err != nil && !db.IsUniqueViolation(err) {
			// A unique violation means another node created the key at the same moment: use theirs.
			return nil, fmt.Errorf("create %s key: %w", purpose, err)
		}
	}
	if missing, err = k.reload(ctx); err != nil {
		return nil, err
	} else if len(missing) > 0 {
		return nil, fmt.Errorf("crypto: keys %v still missing after creation", missing)
	}
	return k, nil
}

// Reload rereads the keyring from the database, to see keys that another node sharing the
// database created.
func (k *Keyring) Reload(ctx context.Context) error {
	k.opMu.Lock()
	defer k.opMu.Unlock()
	return k.reloadComplete(ctx)
}

func (k *Keyring) reloadComplete(ctx context.Context) error {
	missing, err := k.reload(ctx)
	if err == nil && len(missing) > 0 {
		err = fmt.Errorf("crypto: no active key for %v", missing)
	}
	return err
}

type keyRow struct {
	id, purpose, alg string
	version          int
	pub              sql.NullString
	enc              []byte
	created          time.Time
	retired          sql.NullTime
	active           bool
}

const selectKeys = `SELECT id, purpose, version, alg, public_key, private_enc, created_at, retired_at, active FROM crypto_keys`

func loadRows(ctx context.Context, q db.Querier) ([]keyRow, error) {
	rows, err := q.Query(ctx, selectKeys+` ORDER BY purpose, version`)
	if err != nil {
		return nil, fmt.Errorf("read crypto_keys: %w", err)
	}
	defer rows.Close()
	var out []keyRow
	for rows.Next() {
		var r keyRow
		if err := rows.Scan(&r.id, &r.purpose, &r.version, &r.alg, &r.pub, &r.enc, &r.created, &r.retired, &r.active); err != nil {
			return nil, fmt.Errorf("read crypto_keys: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read crypto_keys: %w", err)
	}
	return out, nil
}

// reload reads and unwraps every key, then swaps the in-memory state. It returns the
// purposes that have no active key. The caller holds opMu.
func (k *Keyring) reload(ctx context.Context) (missing []string, err error) {
	ks, err := readKeys(ctx, k.d, k.kek) // k.kek is stable: opMu is held
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys, k.order, k.active = ks.keys, ks.order, ks.active
	if ks.haveField && ks.haveBlind {
		k.field.keys.Store(ks.field)
	}
	return ks.missing(), nil
}

// keySet is the keyring as read from crypto_keys, every key unwrapped and checked.
type keySet struct {
	keys      map[string]*signingKey
	order     []*signingKey // by version
	active    *signingKey
	field     *fieldKeys
	haveField bool // an active field key
	haveBlind bool // an active blind-index key
}

// missing lists the purposes that have no active key.
func (ks *keySet) missing() []string {
	var out []string
	if ks.active == nil {
		out = append(out, PurposeNodeSM2)
	}
	if !ks.haveField {
		out = append(out, purposeField)
	}
	if !ks.haveBlind {
		out = append(out, purposeBlind)
	}
	return out
}

// readKeys reads every row of crypto_keys through q and unwraps it with kek, checking each
// as loading the keyring requires. None unwrapping is ErrMasterKeyMismatch (the wrong
// master); some but not all, or a row that opens but is not a sound key, is ErrKeyCorrupt.
func readKeys(ctx context.Context, q db.Querier, kek cipher.AEAD) (*keySet, error) {
	rows, err := loadRows(ctx, q)
	if err != nil {
		return nil, err
	}

	secrets := make([][]byte, len(rows))
	var failed []string
	for i, r := range rows {
		s, err := unwrap(kek, r.id, r.purpose, r.enc)
		if err != nil {
			failed = append(failed, r.id)
			continue
		}
		secrets[i] = s
	}
	switch {
	case len(failed) > 0 && len(failed) == len(rows):
		return nil, ErrMasterKeyMismatch
	case len(failed) > 0:
		// Some keys open and some do not: the master is right and those rows were damaged.
		return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("keys %v cannot be unwrapped", failed))
	}

	ks := &keySet{keys: map[string]*signingKey{}, field: &fieldKeys{}}
	for i, r := range rows {
		if r.alg != keyAlg[r.purpose] {
			return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("key %s: purpose %q with algorithm %q", r.id, r.purpose, r.alg))
		}
		secret := secrets[i]
		switch r.purpose {
		case PurposeNodeSM2:
			sk, err := parseSigningKey(r, secret)
			if err != nil {
				return nil, err
			}
			ks.keys[sk.id] = sk
			ks.order = append(ks.order, sk)
			if r.active {
				ks.active = sk
			} else {
				sk.priv = nil
			}
		case purposeField:
			if r.version < 1 || r.version > 255 || len(secret) != 16 {
				return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("field key %s: version %d, %d bytes", r.id, r.version, len(secret)))
			}
			a, err := newSM4GCM(secret)
			if err != nil {
				return nil, err
			}
			ks.field.aead[r.version] = a
			if r.active {
				ks.field.current = byte(r.version)
				ks.haveField = true
			}
		case purposeBlind:
			if r.active {
				if len(secret) != 32 {
					return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("blind-index key %s: %d bytes", r.id, len(secret)))
				}
				ks.field.setBlindKey(secret)
				ks.haveBlind = true
			}
		default:
			return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("key %s: unknown purpose %q", r.id, r.purpose))
		}
	}
	return ks, nil
}

// CheckMasterKey reports whether the keys in crypto_keys, read through q, open with master,
// without loading them into a keyring: q may be a transaction that has written them and not
// yet committed — for instance a restore, which can so refuse a backup whose keys this
// node's master key cannot open before it replaces anything.
//
// It checks what Open checks when it loads the keys, with the same code: every row must
// unwrap under master (none unwrapping is ErrMasterKeyMismatch; some but not all is
// ErrKeyCorrupt, the rows are damaged), and each must be a sound key — an SM2 row's stored
// public key must be the public half of its private key, and so on — or it is ErrKeyCorrupt.
// A master of the wrong length is an error too. It does not require a complete keyring: an
// empty crypto_keys passes, and Open creates the keys that are missing at the next start
// (Reload, which creates nothing, then fails until it has).
func CheckMasterKey(ctx context.Context, q db.Querier, master []byte) error {
	kek, err := newKEK(master)
	if err != nil {
		return err
	}
	_, err = readKeys(ctx, q, kek)
	return err
}

func parseSigningKey(r keyRow, secret []byte) (*signingKey, error) {
	anyKey, err := smx509.ParsePKCS8PrivateKey(secret)
	if err != nil {
		return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("key %s: %w", r.id, err))
	}
	priv, ok := anyKey.(*sm2.PrivateKey)
	if !ok {
		return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("key %s: not an SM2 private key (%T)", r.id, anyKey))
	}
	pemText, err := MarshalPublicKeyPEM(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	// The public_key column is not covered by the wrapping's authentication: trust it only
	// when it is the public half of the (authenticated) private key, so that editing the
	// column cannot make a forged signature verify under this key id.
	if !r.pub.Valid || r.pub.String != pemText {
		return nil, ErrKeyCorrupt.Wrap(fmt.Errorf("key %s: stored public key does not match the private key", r.id))
	}
	sk := &signingKey{id: r.id, version: r.version, pub: &priv.PublicKey, pem: pemText, priv: priv, created: r.created.UTC()}
	if r.retired.Valid {
		sk.retired = r.retired.Time.UTC()
	} else if !r.active {
		sk.retired = sk.created // inactive without a date cannot happen through this package
	}
	return sk, nil
}

// MarshalPublicKeyPEM encodes an SM2 public key as PKIX "PUBLIC KEY" PEM, the form
// PublicKeys publishes.
func MarshalPublicKeyPEM(pub *ecdsa.PublicKey) (string, error) {
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal SM2 public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// wrapAD binds a wrapped secret to its row: moving private_enc to another row, or relabelling
// its purpose, makes it fail to open.
func wrapAD(id, purpose string) []byte {
	return []byte(id + "\x00" + purpose)
}

func wrap(kek cipher.AEAD, id, purpose string, secret []byte) []byte {
	out := make([]byte, gcmNonceSize, gcmNonceSize+len(secret)+gcmTagSize)
	_, _ = rand.Read(out)
	return kek.Seal(out, out[:gcmNonceSize], secret, wrapAD(id, purpose))
}

func unwrap(kek cipher.AEAD, id, purpose string, enc []byte) ([]byte, error) {
	if len(enc) < gcmNonceSize+gcmTagSize {
		return nil, errors.New("wrapped key too short")
	}
	return kek.Open(nil, enc[:gcmNonceSize], enc[gcmNonceSize:], wrapAD(id, purpose))
}

// newSecret makes the key material of a purpose: the secret to wrap and, for SM2, the
// public key PEM.
func newSecret(purpose string) (secret []byte, pubPEM sql.NullString, err error) {
	switch purpose {
	case PurposeNodeSM2:
		priv, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			return nil, pubPEM, fmt.Errorf("generate SM2 key: %w", err)
		}
		secret, err = smx509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, pubPEM, fmt.Errorf("marshal SM2 key: %w", err)
		}
		p, err := MarshalPublicKeyPEM(&priv.PublicKey)
		if err != nil {
			return nil, pubPEM, err
		}
		return secret, sql.NullString{String: p, Valid: true}, nil
	case purposeField:
		secret = make([]byte, 16)
	case purposeBlind:
		secret = make([]byte, 32)
	default:
		return nil, pubPEM, fmt.Errorf("crypto: unknown key purpose %q", purpose)
	}
	_, _ = rand.Read(secret)
	return secret, pubPEM, nil
}

// addKey creates a new active key of purpose in one transaction. With retire, the current
// active key of that purpose is retired first (rotation); without, nothing is created when
// an active key already exists (first start). Two nodes doing this at once collide on the
// unique indexes of crypto_keys, and the loser gets a unique violation. The caller holds opMu.
func (k *Keyring) addKey(ctx context.Context, purpose string, retire bool) error {
	secret, pubPEM, err := newSecret(purpose)
	if err != nil {
		return err
	}
	id := db.NewID()
	enc := wrap(k.kek, id, purpose, secret)
	at := db.Now(k.now())
	return k.d.InTx(ctx, func(tx *db.Tx) error {
		if err := lockKeys(ctx, tx); err != nil {
			return err
		}
		// Another node may have rewrapped the keyring under a new master since we loaded it:
		// a row wrapped under the old one would then be unreadable. Check on one row.
		var oid, opurpose string
		var oenc []byte
		switch err := tx.QueryRow(ctx, `SELECT id, purpose, private_enc FROM crypto_keys ORDER BY id LIMIT 1`).Scan(&oid, &opurpose, &oenc); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read crypto_keys: %w", err)
		default:
			if _, err := unwrap(k.kek, oid, opurpose, oenc); err != nil {
				return ErrMasterKeyMismatch.Wrap(fmt.Errorf("the keyring was rewrapped under another master key; restart with the new key file"))
			}
		}
		var version int
		var nActive int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0), COUNT(CASE WHEN active THEN 1 END) FROM crypto_keys WHERE purpose = ?`, purpose).
			Scan(&version, &nActive); err != nil {
			return fmt.Errorf("read crypto_keys: %w", err)
		}
		if nActive > 0 && !retire {
			return nil
		}
		version++
		if purpose == purposeField && version > 255 {
			// The version is the first byte of every field ciphertext.
			return fmt.Errorf("crypto: field key version %d exceeds 255", version)
		}
		if retire {
			if _, err := tx.Exec(ctx, `UPDATE crypto_keys SET active = FALSE, retired_at = ? WHERE purpose = ? AND active`, at, purpose); err != nil {
				return fmt.Errorf("retire %s key: %w", purpose, err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO crypto_keys (id, purpose, version, alg, public_key, private_enc, created_at, active) VALUES (?, ?, ?, ?, ?, ?, ?, TRUE)`,
			id, purpose, version, keyAlg[purpose], pubPEM, enc, at)
		return err
	})
}

// Rotate makes a new active SM2 signing key and retires the current one, which is kept so
// that signatures it made still verify. It rotates the signing key only: field keys and the
// blind index are untouched (see RotateFieldKey).
func (k *Keyring) Rotate(ctx context.Context) error {
	return k.rotate(ctx, PurposeNodeSM2)
}

// RotateFieldKey makes a new active field-encryption key; FieldCipher seals with it from
// then on and still opens data sealed under older versions (up to 255 versions). Existing
// ciphertexts are not touched: re-sealing them under the new key (see
// FieldCipher.NeedsReseal) is the job of each engine that owns encrypted columns, for
// instance after a suspected key compromise.
func (k *Keyring) RotateFieldKey(ctx context.Context) error {
	return k.rotate(ctx, purposeField)
}

func (k *Keyring) rotate(ctx context.Context, purpose string) error {
	k.opMu.Lock()
	defer k.opMu.Unlock()
	if err := k.addKey(ctx, purpose, true); err != nil {
		if db.IsUniqueViolation(err) {
			return i18n.ErrConflict.Wrap(fmt.Errorf("rotate %s key: another node rotated at the same time: %w", purpose, err))
		}
		return fmt.Errorf("rotate %s key: %w", purpose, err)
	}
	return k.reloadComplete(ctx)
}

// lockKeys makes the transactions that add or rewrap keys wait for one another, on both
// databases: on PostgreSQL the no-op update takes every row's lock (and the statements
// after it see what the other transaction committed); SQLite runs one writer at a time anyway.
func lockKeys(ctx context.Context, tx *db.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE crypto_keys SET version = version`); err != nil {
		return fmt.Errorf("lock crypto_keys: %w", err)
	}
	return nil
}

// RewrapMaster re-encrypts every wrapped key under a key-encryption key derived from
// newMaster, in one transaction; the caller then replaces the master key file (or uses
// RotateMasterKeyFile, which orders the steps crash-safely). The keys themselves do not
// change: signatures, field ciphertexts and blind indexes stay valid, so no engine data
// needs rewriting on a master rotation. This keyring switches to the new master at once.
func (k *Keyring) RewrapMaster(ctx context.Context, newMaster []byte) error {
	if len(newMaster) != MasterKeySize {
		return masterSizeError("new master key", newMaster)
	}
	newKEKKey := deriveKey(newMaster, kekLabel, kekSize)
	newKEK, err := newSM4GCM(newKEKKey)
	if err != nil {
		return err
	}
	k.opMu.Lock()
	defer k.opMu.Unlock()
	if subtle.ConstantTimeCompare(newKEKKey, k.kekKey) == 1 {
		return fmt.Errorf("crypto: the new master key is the current one")
	}
	err = k.d.InTx(ctx, func(tx *db.Tx) error {
		if err := lockKeys(ctx, tx); err != nil {
			return err
		}
		rows, err := loadRows(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			secret, err := unwrap(k.kek, r.id, r.purpose, r.enc)
			if err != nil {
				return ErrMasterKeyMismatch.Wrap(fmt.Errorf("key %s: %w", r.id, err))
			}
			enc := wrap(newKEK, r.id, r.purpose, secret)
			// Matching on the old ciphertext makes a concurrent rewrap fail instead of
			// double-wrapping.
			res, err := tx.Exec(ctx, `UPDATE crypto_keys SET private_enc = ? WHERE id = ? AND private_enc = ?`, enc, r.id, r.enc)
			if err != nil {
				return fmt.Errorf("rewrap key %s: %w", r.id, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return i18n.ErrConflict.Wrap(fmt.Errorf("rewrap key %s: row changed meanwhile (%d, %v)", r.id, n, err))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	k.kekKey, k.kek = newKEKKey, newKEK
	return nil
}

// ActiveKeyID is the id of the SM2 key that Sign uses.
func (k *Keyring) ActiveKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active.id
}

// Sign signs msg with the active SM2 key (GB/T 32918.2: SM3 digest over Z_A with the
// default user ID "1234567812345678", then msg), returning the ASN.1 DER signature and the
// id of the key that made it, to store beside the signature.
func (k *Keyring) Sign(msg []byte) (sig []byte, keyID string, err error) {
	k.mu.RLock()
	a := k.active
	k.mu.RUnlock()
	sig, err = a.priv.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
	if err != nil {
		return nil, "", fmt.Errorf("sm2 sign: %w", err)
	}
	return sig, a.id, nil
}

// Verify checks sig over msg against the key keyID, active or retired. It fails with
// ErrUnknownKey for a key this keyring does not hold (see Reload) and ErrBadSignature for a
// signature that does not verify.
func (k *Keyring) Verify(keyID string, msg, sig []byte) error {
	k.mu.RLock()
	sk := k.keys[keyID]
	k.mu.RUnlock()
	if sk == nil {
		return ErrUnknownKey.Wrap(fmt.Errorf("key %q", keyID))
	}
	if !sm2.VerifyASN1WithSM2(sk.pub, nil, msg, sig) {
		return ErrBadSignature
	}
	return nil
}

// PublicKeys lists the node's SM2 public keys, oldest first, for publishing.
func (k *Keyring) PublicKeys() []PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]PublicKey, 0, len(k.order))
	for _, sk := range k.order {
		p := PublicKey{ID: sk.id, Alg: "SM2", PEM: sk.pem, Active: sk == k.active, CreatedAt: sk.created}
		if !sk.retired.IsZero() {
			t := sk.retired
			p.RetiredAt = &t
		}
		out = append(out, p)
	}
	return out
}

// FieldCipher encrypts personal-data fields with this keyring's field keys. It is the same
// value for the life of the keyring and follows RotateFieldKey and Reload.
func (k *Keyring) FieldCipher() *FieldCipher { return k.field }

// ParsePublicKeyPEM parses a PKIX "PUBLIC KEY" PEM holding an SM2 key.
func ParsePublicKeyPEM(pemText string) (*ecdsa.PublicKey, error) {
	b, rest := pem.Decode([]byte(pemText))
	if b == nil || b.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, ErrBadPublicKey
	}
	anyKey, err := smx509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, ErrBadPublicKey.Wrap(err)
	}
	pub, ok := anyKey.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return nil, ErrBadPublicKey.Wrap(fmt.Errorf("not an SM2 key (%T)", anyKey))
	}
	return pub, nil
}

// VerifyWithPublicKeyPEM checks an SM2 signature (ASN.1, default user ID, as Sign makes)
// against a published public key, without a database: e.g. a saved receipt checked offline
// against the PEM listed by PublicKeys.
func VerifyWithPublicKeyPEM(pemText string, msg, sig []byte) error {
	pub, err := ParsePublicKeyPEM(pemText)
	if err != nil {
		return err
	}
	if !sm2.VerifyASN1WithSM2(pub, nil, msg, sig) {
		return ErrBadSignature
	}
	return nil
}

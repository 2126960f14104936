package seal

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Formats of sealed documents, as the register records them.
const (
	FormatFile = "file" // any file, detached SES_Signature
	FormatHTML = "html" // dgov's official-document format, signature embedded
)

// Sealed is the result of a sealing.
type Sealed struct {
	// Signature is the DER GB/T 38540 SES_Signature: detached for files, the same bytes that
	// an HTML document embeds.
	Signature   []byte    `json:"signature"`
	SealID      string    `json:"seal_id"`
	ESID        string    `json:"es_id"`
	KeyID       string    `json:"key_id"`
	DocumentSM3 string    `json:"document_sm3"`
	SignedAt    time.Time `json:"signed_at"`
	UseID       string    `json:"use_id"` // the entry in the sealing register
}

// sealFor finds the seal the actor seals with — sealID, or "" for the official seal of the
// actor's department — and checks that the actor may: an officer (PermUse) of the seal's own
// department, and the seal in force.
func (s *Service) sealFor(ctx context.Context, actor authz.Subject, sealID string) (signingRow, error) {
	if err := staffOrSystem(actor); err != nil {
		return signingRow{}, err
	}
	var r signingRow
	var err error
	if sealID = strings.TrimSpace(sealID); sealID == "" {
		if actor.Dept == "" {
			return r, i18n.ErrForbidden
		}
		r, err = getSigning(ctx, s.d, `dept_id = ? AND purpose = '' AND status = 'active'`, actor.Dept)
		if isNoRow(err) {
			return r, ErrNoSeal
		}
	} else {
		r, err = getSigning(ctx, s.d, `id = ?`, sealID)
		if isNoRow(err) {
			return r, i18n.ErrNotFound
		}
	}
	if err != nil {
		return r, fmt.Errorf("read seal: %w", err)
	}
	if actor.Dept == "" || actor.Dept != r.DeptID {
		return signingRow{}, i18n.ErrForbidden
	}
	if err := s.policy.Authorize(actor, PermUse, r.Division); err != nil {
		return signingRow{}, err
	}
	if !r.InForce(s.clock()) {
		return signingRow{}, ErrNotInForce
	}
	return r, nil
}

// privateKey opens a seal's private key, once per seal and process.
func (s *Service) privateKey(r signingRow) (*sm2.PrivateKey, error) {
	if k, ok := s.keys.Load(r.ID); ok {
		return k.(*sm2.PrivateKey), nil
	}
	k, err := s.openKey(r.privateEnc, aad("seal_seals", r.ID, "private_key"), r.PublicKey)
	if err != nil {
		return nil, err
	}
	s.keys.Store(r.ID, k)
	return k, nil
}

// seal signs content with the seal of r and registers and audits the sealing in one
// transaction. property is the SES propertyInfo (IA5).
func (s *Service) seal(ctx context.Context, actor authz.Subject, r signingRow, format, docName string, content []byte, property string) (Sealed, error) {
	key, err := s.privateKey(r)
	if err != nil {
		return Sealed{}, err
	}
	at := s.clock().Truncate(time.Second) // GeneralizedTime in TBS_Sign carries seconds
	digest := sm3Sum(content)
	der, err := encodeSignature(r.ESeal, at, digest[:], property, r.Cert, sm2Signer(key))
	if err != nil {
		return Sealed{}, err
	}
	u := Use{ID: db.NewID(), SealID: r.ID, Format: format, DocName: docName, DocumentSM3: hex.EncodeToString(digest[:]),
		SignatureSM3: crypto.SM3Hex(der), SignedAt: at, Actor: actor.String()}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := insertUse(ctx, tx, u); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, ActionUse, "seal:"+r.ID, map[string]any{"use_id": u.ID, "es_id": r.ESID,
			"key_id": r.KeyID, "format": format, "doc_name": docName, "document_sm3": u.DocumentSM3, "signature_sm3": u.SignatureSM3})
	})
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{Signature: der, SealID: r.ID, ESID: r.ESID, KeyID: r.KeyID, DocumentSM3: u.DocumentSM3, SignedAt: at, UseID: u.ID}, nil
}

func cleanDocName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 255 || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return "", invalid("name", "seal.doc_name", "文件名最多 255 个字，且不能含控制字符", "the file name is at most 255 characters, without control characters")
	}
	return name, nil
}

// fileProperty is the propertyInfo of a sealed file: ASCII (IA5), the name percent-encoded.
func fileProperty(kind, name string, size int) string {
	return "dgov:" + kind + ";name=" + url.QueryEscape(name) + ";size=" + strconv.Itoa(size)
}

// SealFile seals any file (a PDF included) with a detached SES_Signature: keep the file as it
// is and the returned Signature beside it. sealID "" seals with the official seal of the
// actor's department.
func (s *Service) SealFile(ctx context.Context, actor authz.Subject, sealID, name string, content []byte) (Sealed, error) {
	name, err := cleanDocName(name)
	if err != nil {
		return Sealed{}, err
	}
	r, err := s.sealFor(ctx, actor, sealID)
	if err != nil {
		return Sealed{}, err
	}
	return s.seal(ctx, actor, r, FormatFile, name, content, fileProperty("file", name, len(content)))
}

// SignAs signs data (SM2 with SM3, GB/T 32918 / GM/T 0009 with the default user ID) with the
// key of department deptID's official seal in force, for the licence engine. It reads and
// never writes — it may be called inside the caller's transaction, even on SQLite's single
// writer — and it neither audits nor registers: the caller's record of what it signed (an
// issuance) is the record. There is no actor: the caller authorizes its own operation.
func (s *Service) SignAs(ctx context.Context, deptID string, data []byte) (Signature, error) {
	r, err := getSigning(ctx, s.d, `dept_id = ? AND purpose = '' AND status = 'active'`, deptID)
	if isNoRow(err) {
		return Signature{}, ErrNoSeal
	}
	if err != nil {
		return Signature{}, fmt.Errorf("read seal of %s: %w", deptID, err)
	}
	now := s.clock()
	if !r.InForce(now) {
		return Signature{}, ErrNotInForce
	}
	key, err := s.privateKey(r)
	if err != nil {
		return Signature{}, err
	}
	v, err := key.Sign(rand.Reader, data, sm2.DefaultSM2SignerOpts)
	if err != nil {
		return Signature{}, fmt.Errorf("sm2 sign: %w", err)
	}
	return Signature{KeyID: r.KeyID, PublicKey: r.PublicKey, Cert: r.Cert, Value: v, SignedAt: now}, nil
}

// VerifySignature checks a Signature made by SignAs over data with the public key it carries
// (the caller decides whether it trusts that key: by KeyID, a trust list or the certificate).
func VerifySignature(sig Signature, data []byte) error {
	k, err := smx509.ParsePKIXPublicKey(sig.PublicKey)
	if err != nil {
		return crypto.ErrBadPublicKey.Wrap(err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return crypto.ErrBadPublicKey
	}
	if keyIDOfDER(sig.PublicKey) != sig.KeyID || !sm2.VerifyASN1WithSM2(pub, nil, data, sig.Value) {
		return crypto.ErrBadSignature
	}
	return nil
}

// PublicKey is a seal key as published for relying parties (the licence engine's trust
// list): every key the node ever made, with its department, status and history.
type PublicKey struct {
	KeyID     string     `json:"key_id"`
	SealID    string     `json:"seal_id"`
	ESID      string     `json:"es_id"`
	DeptID    string     `json:"dept_id"`
	DeptName  string     `json:"dept_name"`
	Division  string     `json:"division"`
	Purpose   string     `json:"purpose"`
	PublicKey []byte     `json:"public_key"` // PKIX DER
	Cert      []byte     `json:"cert"`       // DER X.509, issued by the seal maker
	Status    Status     `json:"status"`
	ValidFrom time.Time  `json:"valid_from"`
	ValidTo   time.Time  `json:"valid_to"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func publicKeyOf(sl Seal) PublicKey {
	return PublicKey{KeyID: sl.KeyID, SealID: sl.ID, ESID: sl.ESID, DeptID: sl.DeptID, DeptName: sl.DeptName, Division: sl.Division,
		Purpose: sl.Purpose, PublicKey: sl.PublicKey, Cert: sl.Cert, Status: sl.Status, ValidFrom: sl.ValidFrom, ValidTo: sl.ValidTo,
		RetiredAt: sl.RetiredAt, RevokedAt: sl.RevokedAt}
}

// KeyByID returns a seal key by its id (Signature.KeyID), whatever its status: public
// information, for verifiers. An unknown id is i18n.ErrNotFound.
func (s *Service) KeyByID(ctx context.Context, keyID string) (PublicKey, error) {
	sl, err := getSeal(ctx, s.d, `key_id = ?`, keyID)
	if isNoRow(err) {
		return PublicKey{}, i18n.ErrNotFound
	}
	if err != nil {
		return PublicKey{}, fmt.Errorf("read seal key %s: %w", keyID, err)
	}
	return publicKeyOf(sl), nil
}

// PublicKeys lists the keys of every seal the node made, oldest first, for publishing.
func (s *Service) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	all, err := querySeals(ctx, s.d, `ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list seal keys: %w", err)
	}
	out := make([]PublicKey, len(all))
	for i, sl := range all {
		out[i] = publicKeyOf(sl)
	}
	return out, nil
}

// ---- verification ----

// SealSummary is what a verification tells of the seal, from this node's records.
type SealSummary struct {
	ID           string     `json:"id"`
	ESID         string     `json:"es_id"`
	DeptID       string     `json:"dept_id"`
	DeptName     string     `json:"dept_name"`
	Division     string     `json:"division"`
	Name         string     `json:"name"`
	Purpose      string     `json:"purpose"`
	Version      int        `json:"version"`
	Status       Status     `json:"status"`
	ValidFrom    time.Time  `json:"valid_from"`
	ValidTo      time.Time  `json:"valid_to"`
	RetiredAt    *time.Time `json:"retired_at,omitempty"`
	ReplacedBy   string     `json:"replaced_by,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
}

// Verification is the answer to "who sealed this, when, and is it as sealed?".
type Verification struct {
	Check
	// Valid: every check passed — the signatures verify, the document is unchanged, the seal
	// is this node's and was in force when sealed, and the sealing is in the register.
	Valid bool `json:"valid"`
	// Known: the seal is one this node made (found by esID, with the same key).
	Known bool `json:"known"`
	// Registered: this very signature is in the node's sealing register. A signature made with
	// the seal's key outside the service (a stolen key, a back-dated time) is not.
	Registered bool `json:"registered"`
	// ValidAtSigning: the seal was in force at the sealing time — within its period, not yet
	// retired by a rotation and not yet revoked.
	ValidAtSigning bool         `json:"valid_at_signing"`
	Seal           *SealSummary `json:"seal,omitempty"`
	Format         string       `json:"format"`
}

// Verify verifies a file against its detached SES_Signature (DER). Anyone may verify; the
// answer names the seal and department, the time, and every check that failed. Only a
// signature that is not the GB/T 38540 structure is an error (ErrMalformed).
func (s *Service) Verify(ctx context.Context, content, signature []byte) (Verification, error) {
	sig, err := ParseSignature(signature)
	if err != nil {
		return Verification{}, err
	}
	d := sm3Sum(content)
	return s.verifyParsed(ctx, sig, d[:], FormatFile)
}

func (s *Service) verifyParsed(ctx context.Context, sig *SESSignature, digest []byte, format string) (Verification, error) {
	m, err := s.makerIfAny(ctx)
	if err != nil {
		return Verification{}, err
	}
	var roots []*smx509.Certificate
	if m != nil {
		roots = append(roots, m.cert)
	}
	v := Verification{Check: *checkParsed(sig, digest, roots), Format: format}
	sl, err := getSeal(ctx, s.d, `es_id = ?`, sig.Seal.ESID)
	switch {
	case isNoRow(err):
		v.problem("seal.unknown", "本平台没有制作过该印章", "this node did not make the seal")
	case err != nil:
		return Verification{}, fmt.Errorf("read seal %s: %w", sig.Seal.ESID, err)
	case sl.KeyID != v.KeyID || string(sl.ESeal) != string(sig.Seal.Raw):
		v.problem("seal.mismatch", "签章中的印章与本平台登记的印章不一致", "the seal in the signature differs from the one this node registered")
	default:
		v.Known = true
	}
	if v.Known {
		v.Seal = &SealSummary{ID: sl.ID, ESID: sl.ESID, DeptID: sl.DeptID, DeptName: sl.DeptName, Division: sl.Division, Name: sl.Name,
			Purpose: sl.Purpose, Version: sl.Version, Status: sl.Status, ValidFrom: sl.ValidFrom, ValidTo: sl.ValidTo,
			RetiredAt: sl.RetiredAt, ReplacedBy: sl.ReplacedBy, RevokedAt: sl.RevokedAt, RevokeReason: sl.RevokeReason}
		v.ValidAtSigning = sl.InForceAt(v.SignedAt)
		switch {
		case sl.RevokedAt != nil && !v.SignedAt.Before(*sl.RevokedAt):
			v.problem("seal.revoked", "签章时印章已被吊销", "the seal had been revoked when this was sealed")
		case sl.RevokedAt != nil:
			v.problem("seal.revoked_later", "印章在签章之后被吊销（签章时有效）", "the seal was revoked after this was sealed (it was in force then)")
		}
		if sl.RetiredAt != nil && !v.SignedAt.Before(*sl.RetiredAt) {
			v.problem("seal.retired", "签章时印章已更换停用", "the seal had been replaced when this was sealed")
		}
		var n int
		if err := s.d.QueryRow(ctx, `SELECT COUNT(*) FROM seal_uses WHERE sig_sm3 = ? AND seal_id = ?`,
			crypto.SM3Hex(sig.Raw), sl.ID).Scan(&n); err != nil {
			return Verification{}, fmt.Errorf("read sealing register: %w", err)
		}
		v.Registered = n > 0
		if !v.Registered {
			v.problem("seal.unregistered", "用印登记中没有这次签章", "this sealing is not in the sealing register")
		}
	}
	v.Valid = v.Verified() && v.Known && v.ValidAtSigning && v.Registered
	return v, nil
}

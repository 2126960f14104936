package identity

// SM2 digital certificates (数字证书) for level-3 login, and the one-time ceremonies (login
// challenges) that certificate and passkey logins share.
//
// The node runs its own small certificate authority: an SM2 key and a self-signed SM2
// certificate (GB/T 32918, GM/T 0015 style, via gmsm's smx509), created at first use and kept
// in identity_ca with the private key sealed by FieldCipher. A real-name verified (L2) account
// may have a certificate issued for an SM2 public key it holds — in practice in a certificate
// tool or a USB key (browsers do not do SM2). To log in, the tool signs a one-time challenge
// the server shows (SM2 with SM3 and the default user id 1234567812345678, DER-encoded); the
// server checks the certificate chains to its CA, is in its validity period, is one it issued
// and did not revoke, and that the signature over the challenge verifies. Success raises the
// account to level 3; the caller then opens a level-3 session (CreateSession) or raises the
// current one (RaiseSessionLevel) with AMRSM2.

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Certificate lifetimes and the ceremony window.
const (
	CertValidity   = 2 * 365 * 24 * time.Hour  // a citizen's certificate
	CAValidity     = 20 * 365 * 24 * time.Hour // the node's CA certificate
	CeremonyTTL    = 5 * time.Minute           // a login challenge or passkey ceremony
	MaxCertsActive = 5                         // unrevoked, unexpired certificates per account
)

// Audit actions of strong authentication, and the "method" in the detail of auth.login and
// auth.login_failed for them.
const (
	ActionCACreated      = "identity.ca_created"
	ActionCertIssued     = "identity.cert_issued"
	ActionCertRevoked    = "identity.cert_revoked"
	ActionPasskeyAdded   = "identity.passkey_added"
	ActionPasskeyRemoved = "identity.passkey_removed"
	ActionPasskeyCloned  = "auth.passkey_cloned"
	MethodCertificate    = "sm2_certificate"
	MethodPasskey        = "passkey"
)

const (
	caRowID                = "root"
	kindSM2Login           = "sm2_login"
	kindPasskeyRegister    = "passkey_register"
	kindPasskeyLogin       = "passkey_login"
	sm2ChallengePrefix     = "dgov-sm2-login:"
	certOrganization       = "山西省数字政府"
	caCommonName           = "山西省数字政府 统一身份认证 CA"
	maxPEMBytes            = 16 << 10
	maxSignatureBytes      = 160
	revokeReasonOwner      = "owner"
	revokeReasonMaxLength  = 200
	certPEMType            = "CERTIFICATE"
	publicKeyPEMType       = "PUBLIC KEY"
	certificateRequestType = "CERTIFICATE REQUEST"
)

// Errors of strong authentication.
var (
	ErrBadPublicKey = &i18n.Error{Code: "identity.cert.public_key", Status: http.StatusBadRequest, Field: "public_key",
		Msg: i18n.T("请提供 PEM 格式的 SM2 公钥或证书请求（CSR）", "provide an SM2 public key or certificate request (CSR) in PEM form")}
	ErrTooManyCerts = userErr(http.StatusConflict, "identity.cert.too_many",
		"有效证书过多，请先吊销不用的证书", "too many valid certificates; revoke one you no longer use first")
	ErrCertInvalid = &i18n.Error{Code: "identity.cert.invalid", Status: http.StatusUnauthorized, Field: "certificate",
		Msg: i18n.T("证书无效或不是本平台签发的", "the certificate is invalid or was not issued by this platform")}
	ErrCertExpired = &i18n.Error{Code: "identity.cert.expired", Status: http.StatusUnauthorized, Field: "certificate",
		Msg: i18n.T("证书不在有效期内", "the certificate is not within its validity period")}
	ErrCertRevoked = &i18n.Error{Code: "identity.cert.revoked", Status: http.StatusUnauthorized, Field: "certificate",
		Msg: i18n.T("证书已吊销", "the certificate has been revoked")}
	ErrCertSignature = &i18n.Error{Code: "identity.cert.signature", Status: http.StatusUnauthorized, Field: "signature",
		Msg: i18n.T("签名验证失败，请用证书对应的私钥对本页显示的挑战码签名", "the signature does not verify; sign the challenge shown on this page with the certificate's key")}
	ErrChallenge = userErr(http.StatusBadRequest, "identity.challenge",
		"挑战码已失效或已使用，请刷新页面重试", "the challenge has expired or was already used; reload the page and try again")
)

// ---- ceremonies ----

// ceremony is a pending challenge, as stored.
type ceremony struct {
	accountID string
	data      []byte
}

func ceremonyID(handle string) string { return crypto.SM3Hex([]byte("identity-ceremony\x00" + handle)) }
func bindingHash(b string) string     { return crypto.SM3Hex([]byte("identity-binding\x00" + b)) }

// newCeremony stores a ceremony under handle, bound to binding, for CeremonyTTL. Expired
// ceremonies are swept on the way.
func (s *Service) newCeremony(ctx context.Context, kind, handle, binding, accountID string, data []byte) (time.Time, error) {
	now := s.clock()
	exp := now.Add(CeremonyTTL)
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM identity_ceremonies WHERE expires_at < ?`, now); err != nil {
			return fmt.Errorf("sweep ceremonies: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO identity_ceremonies (id, kind, binding, account_id, data, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, ceremonyID(handle), kind, bindingHash(binding), nullString(accountID), string(data), now, exp)
		if err != nil {
			return fmt.Errorf("store ceremony: %w", err)
		}
		return nil
	})
	return exp, err
}

// takeCeremony removes and returns the live ceremony of handle; one of another kind or binding,
// expired or already used is ErrChallenge. It is used up whatever happens next.
func (s *Service) takeCeremony(ctx context.Context, kind, handle, binding string) (ceremony, error) {
	if handle == "" || len(handle) > 200 {
		return ceremony{}, ErrChallenge
	}
	now := s.clock()
	var c ceremony
	var gotKind, gotBinding, data string
	var account sql.NullString
	var exp time.Time
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		return tx.QueryRow(ctx, `DELETE FROM identity_ceremonies WHERE id = ? RETURNING kind, binding, account_id, data, expires_at`,
			ceremonyID(handle)).Scan(&gotKind, &gotBinding, &account, &data, &exp)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrChallenge
	} else if err != nil {
		return c, fmt.Errorf("take ceremony: %w", err)
	}
	if gotKind != kind || gotBinding != bindingHash(binding) || !now.Before(exp) {
		return c, ErrChallenge
	}
	c.accountID, c.data = account.String, []byte(data)
	return c, nil
}

// ---- the certificate authority ----

type certAuthority struct {
	id   string
	cert *smx509.Certificate
	pem  string
	key  *sm2.PrivateKey
}

// ca returns the node's CA, creating it at first use. Nodes racing to create it agree on the
// first row written.
func (s *Service) ca(ctx context.Context) (*certAuthority, error) {
	ca, err := s.readCA(ctx)
	if !errors.Is(err, sql.ErrNoRows) {
		return ca, err
	}
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	now := s.clock()
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &smx509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: caCommonName, Organization: []string{certOrganization}, Country: []string{"CN"},
			Province: []string{"山西省"}},
		NotBefore:             now.Add(-time.Hour).Truncate(time.Second),
		NotAfter:              now.Add(CAValidity).Truncate(time.Second),
		KeyUsage:              smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign | smx509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pkcs8, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	enc, err := s.fc.Seal(base64.StdEncoding.EncodeToString(pkcs8), fieldAAD("identity_ca", caRowID, "key"))
	if err != nil {
		return nil, fmt.Errorf("seal CA key: %w", err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: certPEMType, Bytes: der}))
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO identity_ca (id, cert_pem, key_enc, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, caRowID, certPEM, enc, now)
		if err != nil {
			return fmt.Errorf("store CA: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.record(ctx, tx, authz.Subject{}, ActionCACreated, "identity_ca:"+caRowID,
				map[string]any{"serial": hex.EncodeToString(serial.Bytes()), "subject": caCommonName})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.readCA(ctx)
}

func (s *Service) readCA(ctx context.Context) (*certAuthority, error) {
	ca := &certAuthority{id: caRowID}
	var enc []byte
	err := s.d.QueryRow(ctx, `SELECT cert_pem, key_enc FROM identity_ca WHERE id = ?`, caRowID).Scan(&ca.pem, &enc)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("read CA: %w", err)
	}
	b, _ := pem.Decode([]byte(ca.pem))
	if b == nil {
		return nil, errors.New("CA certificate: not PEM")
	}
	if ca.cert, err = smx509.ParseCertificate(b.Bytes); err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	k64, err := s.fc.Open(enc, fieldAAD("identity_ca", caRowID, "key"))
	if err != nil {
		return nil, fmt.Errorf("open CA key: %w", err)
	}
	der, err := base64.StdEncoding.DecodeString(k64)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	k, err := smx509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	var ok bool
	if ca.key, ok = k.(*sm2.PrivateKey); !ok {
		return nil, fmt.Errorf("CA key is %T, not SM2", k)
	}
	return ca, nil
}

// CACertificatePEM is the node's CA certificate (created at first use), for certificate tools
// and relying parties that check citizens' certificates themselves.
func (s *Service) CACertificatePEM(ctx context.Context) (string, error) {
	ca, err := s.ca(ctx)
	if err != nil {
		return "", err
	}
	return ca.pem, nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, positive and non-zero (RFC 5280 allows up to 20 octets).
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// ---- certificates ----

// Certificate is an SM2 certificate issued to an account.
type Certificate struct {
	Serial     string // lower-case hex
	AccountID  string
	Subject    string // the certificate's common name: the registered name
	PEM        string
	NotBefore  time.Time
	NotAfter   time.Time
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Valid tells whether the certificate may log in at now (not revoked, within its period).
func (c Certificate) Valid(now time.Time) bool {
	return c.RevokedAt == nil && !now.Before(c.NotBefore) && now.Before(c.NotAfter)
}

// parseSM2PublicKey reads an SM2 public key from a PEM "PUBLIC KEY" or a PEM certificate
// request; a request's own signature must verify (proof that its sender holds the key).
func parseSM2PublicKey(text string) (*ecdsa.PublicKey, error) {
	if len(text) > maxPEMBytes {
		return nil, ErrBadPublicKey
	}
	b, _ := pem.Decode([]byte(strings.TrimSpace(text)))
	if b == nil {
		return nil, ErrBadPublicKey
	}
	var pub any
	switch b.Type {
	case publicKeyPEMType:
		k, err := smx509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, ErrBadPublicKey.Wrap(err)
		}
		pub = k
	case certificateRequestType, "NEW CERTIFICATE REQUEST":
		req, err := smx509.ParseCertificateRequest(b.Bytes)
		if err != nil {
			return nil, ErrBadPublicKey.Wrap(err)
		}
		if err := req.CheckSignature(); err != nil {
			return nil, ErrBadPublicKey.Wrap(err)
		}
		pub = req.PublicKey
	default:
		return nil, ErrBadPublicKey
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != sm2.P256() {
		return nil, ErrBadPublicKey
	}
	return k, nil
}

// IssueCertificate issues an SM2 certificate for the public key (PEM: a PUBLIC KEY or a
// CERTIFICATE REQUEST) to a real-name verified, active account. The subject names the
// registered name (CN) and the account id (serialNumber); the ID number is not in it. Usage:
// digital signature, client authentication; valid for CertValidity.
func (s *Service) IssueCertificate(ctx context.Context, accountID, publicKeyPEM string) (Certificate, error) {
	pub, err := parseSM2PublicKey(publicKeyPEM)
	if err != nil {
		return Certificate{}, err
	}
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return Certificate{}, err
	}
	if acc.Status != StatusActive {
		return Certificate{}, ErrInactive
	}
	if acc.Level < LevelRealName {
		return Certificate{}, ErrLevelTooLow
	}
	ca, err := s.ca(ctx)
	if err != nil {
		return Certificate{}, err
	}
	now := s.clock()
	serial, err := randomSerial()
	if err != nil {
		return Certificate{}, err
	}
	tmpl := &smx509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: acc.Name, SerialNumber: acc.ID, Organization: []string{certOrganization},
			Country: []string{"CN"}},
		NotBefore:             now.Truncate(time.Second),
		NotAfter:              now.Add(CertValidity).Truncate(time.Second),
		KeyUsage:              smx509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []smx509.ExtKeyUsage{smx509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return Certificate{}, fmt.Errorf("issue certificate: %w", err)
	}
	c := Certificate{Serial: hex.EncodeToString(serial.Bytes()), AccountID: acc.ID, Subject: acc.Name,
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: certPEMType, Bytes: der})), NotBefore: tmpl.NotBefore.UTC(),
		NotAfter: tmpl.NotAfter.UTC(), CreatedAt: now}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM account_certificates WHERE account_id = ? AND revoked_at IS NULL
			AND not_after > ?`, acc.ID, now).Scan(&n); err != nil {
			return fmt.Errorf("count certificates: %w", err)
		}
		if n >= MaxCertsActive {
			return ErrTooManyCerts
		}
		if _, err := tx.Exec(ctx, `INSERT INTO account_certificates (serial, account_id, ca_id, cert_pem, not_before, not_after,
			created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, c.Serial, c.AccountID, ca.id, c.PEM, c.NotBefore, c.NotAfter, now); err != nil {
			return fmt.Errorf("store certificate: %w", err)
		}
		return s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionCertIssued, certObject(c.Serial),
			map[string]any{"serial": c.Serial, "not_after": c.NotAfter})
	})
	if err != nil {
		return Certificate{}, err
	}
	return c, nil
}

func certObject(serial string) string { return "certificate:" + serial }

const certSelect = `SELECT serial, account_id, cert_pem, not_before, not_after, created_at, last_used_at, revoked_at
	FROM account_certificates`

func scanCert(sc interface{ Scan(...any) error }) (Certificate, error) {
	var c Certificate
	var used, revoked sql.NullTime
	if err := sc.Scan(&c.Serial, &c.AccountID, &c.PEM, &c.NotBefore, &c.NotAfter, &c.CreatedAt, &used, &revoked); err != nil {
		return c, err
	}
	if used.Valid {
		t := used.Time
		c.LastUsedAt = &t
	}
	if revoked.Valid {
		t := revoked.Time
		c.RevokedAt = &t
	}
	if b, _ := pem.Decode([]byte(c.PEM)); b != nil {
		if x, err := smx509.ParseCertificate(b.Bytes); err == nil {
			c.Subject = x.Subject.CommonName
		}
	}
	return c, nil
}

// ListCertificates lists the account's certificates, newest first, revoked ones included.
func (s *Service) ListCertificates(ctx context.Context, accountID string) ([]Certificate, error) {
	rows, err := s.d.Query(ctx, certSelect+` WHERE account_id = ? ORDER BY created_at DESC, serial`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	out := []Certificate{}
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeCertificate revokes one of the account's own certificates (a lost USB key); another
// account's, or one already revoked, is i18n.ErrNotFound. A revoked certificate logs in no more.
func (s *Service) RevokeCertificate(ctx context.Context, accountID, serial, reason string) error {
	// Any hex spelling of the number (leading zeros or not, either case) names the certificate.
	if n, ok := new(big.Int).SetString(strings.TrimSpace(serial), 16); ok && n.Sign() > 0 {
		serial = hex.EncodeToString(n.Bytes())
	}
	if reason = truncate(strings.TrimSpace(reason), revokeReasonMaxLength); reason == "" {
		reason = revokeReasonOwner
	}
	now := s.clock()
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE account_certificates SET revoked_at = ?, revoke_reason = ? WHERE serial = ?
			AND account_id = ? AND revoked_at IS NULL`, now, reason, serial, accountID)
		if err != nil {
			return fmt.Errorf("revoke certificate: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return i18n.ErrNotFound
		}
		return s.record(ctx, tx, citizen(accountID, ""), ActionCertRevoked, certObject(serial), map[string]any{"reason": reason})
	})
}

// CertificateChallenge is a one-time login challenge for CertificateLogin, valid for
// CeremonyTTL and bound to binding (the portal: its per-browser cookie; "" binds to nothing).
// It is the exact text the certificate's key signs.
func (s *Service) CertificateChallenge(ctx context.Context, binding string) (string, error) {
	ch := sm2ChallengePrefix + newToken()
	if _, err := s.newCeremony(ctx, kindSM2Login, ch, binding, "", []byte("{}")); err != nil {
		return "", err
	}
	return ch, nil
}

// CertificateLogin checks a login by SM2 certificate: the challenge is one CertificateChallenge
// gave to the same binding (it is used up here), the certificate (PEM) chains to the node's CA,
// is within its validity period, was issued by this node and not revoked, and signatureDER is
// its key's SM2 signature (SM3, default user id) over the challenge text. The account must be
// active and real-name verified; it becomes level 3. The caller then opens a level-3 session
// with AMRSM2 (CreateSession) or raises the current one (RaiseSessionLevel).
func (s *Service) CertificateLogin(ctx context.Context, certPEM, challenge string, signatureDER []byte, binding string) (Account, Certificate, error) {
	fail := func(accountID, serial, reason string, err error) (Account, Certificate, error) {
		actor := authz.Subject{}
		if accountID != "" {
			actor = citizen(accountID, "")
		}
		if aerr := s.recordAlone(ctx, actor, ActionLoginFailed, "certificate:"+serial,
			map[string]any{"method": MethodCertificate, "reason": reason}); aerr != nil {
			return Account{}, Certificate{}, aerr
		}
		return Account{}, Certificate{}, err
	}
	if _, err := s.takeCeremony(ctx, kindSM2Login, challenge, binding); err != nil {
		return fail("", "", "challenge", err)
	}
	if len(certPEM) > maxPEMBytes || len(signatureDER) == 0 || len(signatureDER) > maxSignatureBytes {
		return fail("", "", "malformed", ErrCertInvalid)
	}
	b, _ := pem.Decode([]byte(strings.TrimSpace(certPEM)))
	if b == nil || b.Type != certPEMType {
		return fail("", "", "malformed", ErrCertInvalid)
	}
	x, err := smx509.ParseCertificate(b.Bytes)
	if err != nil {
		return fail("", "", "malformed", ErrCertInvalid.Wrap(err))
	}
	serial := hex.EncodeToString(x.SerialNumber.Bytes())
	ca, err := s.ca(ctx)
	if err != nil {
		return Account{}, Certificate{}, err
	}
	if err := x.CheckSignatureFrom(ca.cert); err != nil {
		return fail("", serial, "untrusted", ErrCertInvalid.Wrap(err))
	}
	now := s.clock()
	if now.Before(x.NotBefore) || now.After(x.NotAfter) {
		return fail("", serial, "expired", ErrCertExpired)
	}
	roots := smx509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := x.Verify(smx509.VerifyOptions{Roots: roots, CurrentTime: now,
		KeyUsages: []smx509.ExtKeyUsage{smx509.ExtKeyUsageClientAuth}}); err != nil {
		return fail("", serial, "untrusted", ErrCertInvalid.Wrap(err))
	}
	c, err := scanCert(s.d.QueryRow(ctx, certSelect+` WHERE serial = ?`, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return fail("", serial, "unknown", ErrCertInvalid)
	} else if err != nil {
		return Account{}, Certificate{}, fmt.Errorf("read certificate: %w", err)
	}
	if stored, _ := pem.Decode([]byte(c.PEM)); stored == nil || string(stored.Bytes) != string(b.Bytes) ||
		x.Subject.SerialNumber != c.AccountID {
		return fail(c.AccountID, serial, "mismatch", ErrCertInvalid)
	}
	if c.RevokedAt != nil {
		return fail(c.AccountID, serial, "revoked", ErrCertRevoked)
	}
	pub, ok := x.PublicKey.(*ecdsa.PublicKey)
	if !ok || !sm2.VerifyASN1WithSM2(pub, nil, []byte(challenge), signatureDER) {
		return fail(c.AccountID, serial, "signature", ErrCertSignature)
	}
	acc, err := s.strongLogin(ctx, c.AccountID, MethodCertificate, AMRSM2, certObject(serial), func(tx *db.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE account_certificates SET last_used_at = ? WHERE serial = ?`, now, serial)
		return err
	})
	if err != nil {
		return Account{}, Certificate{}, err
	}
	c.LastUsedAt = &now
	return acc, c, nil
}

// strongLogin completes a level-3 login of accountID by method: the account must be active and
// real-name verified; it is raised to level 3, extra runs in the same transaction, and the
// login is recorded.
func (s *Service) strongLogin(ctx context.Context, accountID, method, amr, object string, extra func(tx *db.Tx) error) (Account, error) {
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return Account{}, err
	}
	if acc.Status != StatusActive {
		if aerr := s.recordAlone(ctx, citizen(acc.ID, acc.Name), ActionLoginFailed, object,
			map[string]any{"method": method, "reason": "inactive"}); aerr != nil {
			return Account{}, aerr
		}
		return Account{}, ErrInactive
	}
	if acc.Level < LevelRealName {
		return Account{}, ErrLevelTooLow
	}
	now := s.clock()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if extra != nil {
			if err := extra(tx); err != nil {
				return fmt.Errorf("strong login: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET level = ?, updated_at = ? WHERE id = ? AND level < ?`,
			LevelStrong, now, acc.ID, LevelStrong); err != nil {
			return fmt.Errorf("raise account level: %w", err)
		}
		return s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionLogin, object,
			map[string]any{"method": method, "amr": amr, "level": LevelStrong, "account_level_was": acc.Level})
	})
	if err != nil {
		return Account{}, err
	}
	return s.GetAccount(ctx, acc.ID)
}

// SignCertificateChallenge is what a certificate tool does with the challenge the login page
// shows: an SM2 signature (SM3, default user id), DER-encoded. For tests, the demo and tools.
func SignCertificateChallenge(key *sm2.PrivateKey, challenge string) ([]byte, error) {
	return key.SignWithSM2(rand.Reader, nil, []byte(challenge))
}

// MarshalSM2PublicKeyPEM is the PEM "PUBLIC KEY" form of an SM2 key, as IssueCertificate takes.
func MarshalSM2PublicKeyPEM(pub *ecdsa.PublicKey) (string, error) {
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: publicKeyPEMType, Bytes: der})), nil
}

package identity

// WebAuthn passkeys (通行密钥): a device's fingerprint or face, or a security key with a PIN,
// as a level-3 login (issue A1). A real-name verified account registers passkeys while signed
// in; a passkey then logs in on its own (discoverable, no mobile typed) or after the mobile is
// entered, and the account and the new session are level 3 (amr "hwk"). User verification is
// required in every ceremony: presence alone (a tap) is not a biometric.
//
// The relying party is the node's public URL: its host is the RP ID, the URL the only origin
// accepted. WebAuthn does not work on an IP address, so a node reached as http://127.0.0.1
// has no passkeys (NewPasskeys says so); use a host name (localhost in development).
//
// Ceremony state (challenge and expected parameters) stays on the server in
// identity_ceremonies for CeremonyTTL, bound to what the caller binds it to, and is used up by
// the first answer. The signature counter detects cloned authenticators: a counter that does
// not grow marks the credential and it is refused from then on.

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// MaxPasskeys bounds the passkeys of one account.
const MaxPasskeys = 10

// Errors of passkeys.
var (
	ErrPasskeyHost = userErr(http.StatusServiceUnavailable, "identity.passkey.host",
		"本站须通过域名访问才能使用通行密钥", "passkeys need this site to be reached by a host name")
	ErrPasskeyFailed = userErr(http.StatusUnauthorized, "identity.passkey.failed",
		"通行密钥验证失败", "the passkey could not be verified")
	ErrPasskeyCloned = userErr(http.StatusUnauthorized, "identity.passkey.cloned",
		"该通行密钥的设备疑似被复制，已停用，请删除后重新添加", "this passkey's device appears to be cloned and is blocked; remove it and add it again")
	ErrPasskeyExists = userErr(http.StatusConflict, "identity.passkey.exists",
		"该通行密钥已添加", "this passkey is already registered")
	ErrTooManyPasskeys = userErr(http.StatusConflict, "identity.passkey.too_many",
		"通行密钥过多，请先删除不用的", "too many passkeys; remove one you no longer use first")
)

// Passkey is a registered WebAuthn credential as its owner sees it.
type Passkey struct {
	ID           string
	AccountID    string
	Name         string
	CredentialID string // base64url
	AAGUID       string // hex, the authenticator model ("" or zeros when not told)
	Transports   []string
	SignCount    uint32
	CloneWarning bool
	CreatedAt    time.Time
	LastUsedAt   *time.Time
}

// Passkeys runs WebAuthn ceremonies for the identity service.
type Passkeys struct {
	s  *Service
	wa *webauthn.WebAuthn
}

// Ceremony is a begun WebAuthn ceremony: Handle identifies it when the answer comes back,
// Options is what navigator.credentials.create or get takes ({"publicKey": {...}}, binary
// fields base64url).
type Ceremony struct {
	Handle    string          `json:"ceremony"`
	Options   json.RawMessage `json:"options"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// NewPasskeys sets up WebAuthn for the node reached at publicURL (scheme, host, port); the
// host is the relying party id. An IP address is ErrPasskeyHost.
func NewPasskeys(s *Service, publicURL, displayName string) (*Passkeys, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("passkeys: public URL %q: %w", publicURL, ErrPasskeyHost)
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return nil, ErrPasskeyHost
	}
	if displayName == "" {
		displayName = "山西省数字政府"
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          host,
		RPDisplayName: displayName,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &Passkeys{s: s, wa: wa}, nil
}

// RPID is the relying party id (the public URL's host).
func (p *Passkeys) RPID() string { return p.wa.Config.RPID }

// waUser is an account as go-webauthn sees it. The user handle is the account id: opaque, no
// personal data; the name shown by the device is the masked mobile, the display name the
// registered name.
type waUser struct {
	acc   accountRow
	creds []webauthn.Credential
	rows  []passkeyRow
}

func (u *waUser) WebAuthnID() []byte          { return []byte(u.acc.ID) }
func (u *waUser) WebAuthnName() string        { return ids.MaskMobile(u.acc.Mobile) }
func (u *waUser) WebAuthnDisplayName() string { return u.acc.Name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential {
	return u.creds
}

type passkeyRow struct {
	Passkey
	publicKey         []byte
	flags             int
	attestationType   string
	attestationFormat string
}

func (r passkeyRow) credential() (webauthn.Credential, error) {
	id, err := base64.RawURLEncoding.DecodeString(r.CredentialID)
	if err != nil {
		return webauthn.Credential{}, fmt.Errorf("passkey %s id: %w", r.ID, err)
	}
	aaguid, _ := hex.DecodeString(r.AAGUID)
	c := webauthn.Credential{ID: id, PublicKey: r.publicKey, AttestationType: r.attestationType,
		AttestationFormat: r.attestationFormat, Flags: webauthn.CredentialFlagsFromMsgpByte(byte(r.flags)),
		Authenticator: webauthn.Authenticator{AAGUID: aaguid, SignCount: r.SignCount, CloneWarning: r.CloneWarning}}
	for _, t := range r.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c, nil
}

const passkeySelect = `SELECT id, account_id, name, credential_id, aaguid, transports, sign_count, clone_warning, created_at,
	last_used_at, public_key, flags, attestation_type, attestation_format FROM account_passkeys`

func scanPasskey(sc interface{ Scan(...any) error }) (passkeyRow, error) {
	var r passkeyRow
	var transports string
	var count int64
	var used sql.NullTime
	if err := sc.Scan(&r.ID, &r.AccountID, &r.Name, &r.CredentialID, &r.AAGUID, &transports, &count, &r.CloneWarning,
		&r.CreatedAt, &used, &r.publicKey, &r.flags, &r.attestationType, &r.attestationFormat); err != nil {
		return r, err
	}
	r.SignCount = uint32(count)
	if used.Valid {
		t := used.Time
		r.LastUsedAt = &t
	}
	if err := json.Unmarshal([]byte(transports), &r.Transports); err != nil {
		return r, fmt.Errorf("passkey %s transports: %w", r.ID, err)
	}
	return r, nil
}

func (p *Passkeys) rows(ctx context.Context, q db.Querier, accountID string) ([]passkeyRow, error) {
	rs, err := q.Query(ctx, passkeySelect+` WHERE account_id = ? ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	defer rs.Close()
	var out []passkeyRow
	for rs.Next() {
		r, err := scanPasskey(rs)
		if err != nil {
			return nil, fmt.Errorf("list passkeys: %w", err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// user loads an account and its passkeys for go-webauthn.
func (p *Passkeys) user(ctx context.Context, acc accountRow) (*waUser, error) {
	rows, err := p.rows(ctx, p.s.d, acc.ID)
	if err != nil {
		return nil, err
	}
	u := &waUser{acc: acc, rows: rows}
	for _, r := range rows {
		c, err := r.credential()
		if err != nil {
			return nil, err
		}
		u.creds = append(u.creds, c)
	}
	return u, nil
}

// ListPasskeys lists the account's passkeys, oldest first.
func (p *Passkeys) ListPasskeys(ctx context.Context, accountID string) ([]Passkey, error) {
	rows, err := p.rows(ctx, p.s.d, accountID)
	if err != nil {
		return nil, err
	}
	out := make([]Passkey, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Passkey)
	}
	return out, nil
}

func passkeyObject(id string) string { return "passkey:" + id }

// DeletePasskey removes one of the account's own passkeys; another account's is
// i18n.ErrNotFound. (The device keeps its copy; it no longer logs in here.)
func (p *Passkeys) DeletePasskey(ctx context.Context, accountID, id string) error {
	return p.s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM account_passkeys WHERE id = ? AND account_id = ?`, id, accountID)
		if err != nil {
			return fmt.Errorf("delete passkey: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return i18n.ErrNotFound
		}
		return p.s.record(ctx, tx, citizen(accountID, ""), ActionPasskeyRemoved, passkeyObject(id), map[string]any{})
	})
}

func (p *Passkeys) begin(ctx context.Context, kind, binding, accountID string, options any, session *webauthn.SessionData) (Ceremony, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey options: %w", err)
	}
	data, err := json.Marshal(session)
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey session: %w", err)
	}
	handle := newToken()
	exp, err := p.s.newCeremony(ctx, kind, handle, binding, accountID, data)
	if err != nil {
		return Ceremony{}, err
	}
	return Ceremony{Handle: handle, Options: opts, ExpiresAt: exp}, nil
}

func (p *Passkeys) take(ctx context.Context, kind, handle, binding string) (ceremony, webauthn.SessionData, error) {
	var sd webauthn.SessionData
	c, err := p.s.takeCeremony(ctx, kind, handle, binding)
	if err != nil {
		return c, sd, err
	}
	if err := json.Unmarshal(c.data, &sd); err != nil {
		return c, sd, fmt.Errorf("passkey session: %w", err)
	}
	return c, sd, nil
}

// BeginRegistration starts adding a passkey to a real-name verified account, bound to
// binding. The device is asked for a discoverable credential with user verification; the
// account's passkeys are excluded (one device, one passkey).
func (p *Passkeys) BeginRegistration(ctx context.Context, accountID, binding string) (Ceremony, error) {
	acc, err := p.s.account(ctx, p.s.d, accountID)
	if err != nil {
		return Ceremony{}, err
	}
	if acc.Status != StatusActive {
		return Ceremony{}, ErrInactive
	}
	if acc.Level < LevelRealName {
		return Ceremony{}, ErrLevelTooLow
	}
	u, err := p.user(ctx, acc)
	if err != nil {
		return Ceremony{}, err
	}
	if len(u.creds) >= MaxPasskeys {
		return Ceremony{}, ErrTooManyPasskeys
	}
	required := true
	creation, session, err := p.wa.BeginRegistration(u,
		webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{RequireResidentKey: &required,
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return Ceremony{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	return p.begin(ctx, kindPasskeyRegister, binding, acc.ID, creation, session)
}

// FinishRegistration checks the device's answer (the JSON of the PublicKeyCredential, binary
// fields base64url) to the ceremony handle and stores the passkey under name.
func (p *Passkeys) FinishRegistration(ctx context.Context, accountID, handle, binding, name string, response []byte) (Passkey, error) {
	c, session, err := p.take(ctx, kindPasskeyRegister, handle, binding)
	if err != nil {
		return Passkey{}, err
	}
	if c.accountID != accountID {
		return Passkey{}, ErrChallenge
	}
	if name, err = cleanName(name); err != nil {
		return Passkey{}, err
	}
	if name == "" {
		name = "通行密钥"
	}
	acc, err := p.s.account(ctx, p.s.d, accountID)
	if err != nil {
		return Passkey{}, err
	}
	u, err := p.user(ctx, acc)
	if err != nil {
		return Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Passkey{}, ErrPasskeyFailed.Wrap(err)
	}
	cred, err := p.wa.CreateCredential(u, session, parsed)
	if err != nil {
		return Passkey{}, ErrPasskeyFailed.Wrap(err)
	}
	now := p.s.clock()
	pk := Passkey{ID: db.NewID(), AccountID: acc.ID, Name: name, CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID),
		AAGUID: hex.EncodeToString(cred.Authenticator.AAGUID), SignCount: cred.Authenticator.SignCount, CreatedAt: now,
		Transports: []string{}}
	for _, t := range cred.Transport {
		pk.Transports = append(pk.Transports, string(t))
	}
	transports, _ := json.Marshal(pk.Transports)
	err = p.s.d.InTx(ctx, func(tx *db.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM account_passkeys WHERE account_id = ?`, acc.ID).Scan(&n); err != nil {
			return fmt.Errorf("count passkeys: %w", err)
		}
		if n >= MaxPasskeys {
			return ErrTooManyPasskeys
		}
		_, err := tx.Exec(ctx, `INSERT INTO account_passkeys (id, account_id, credential_id, public_key, sign_count, aaguid,
			transports, flags, attestation_type, attestation_format, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			pk.ID, pk.AccountID, pk.CredentialID, cred.PublicKey, int64(pk.SignCount), pk.AAGUID, string(transports),
			int(cred.Flags.MsgpByte()), cred.AttestationType, cred.AttestationFormat, pk.Name, now)
		if db.IsUniqueViolation(err) {
			return ErrPasskeyExists.Wrap(err)
		} else if err != nil {
			return fmt.Errorf("store passkey: %w", err)
		}
		return p.s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionPasskeyAdded, passkeyObject(pk.ID),
			map[string]any{"name": pk.Name, "aaguid": pk.AAGUID, "transports": pk.Transports})
	})
	if err != nil {
		return Passkey{}, err
	}
	return pk, nil
}

// BeginLogin starts a passkey login bound to binding. With mobile "" the device offers its
// passkeys for this site (discoverable login); with a mobile number, the account's passkeys
// are asked for — an unknown number or one without passkeys gets the same answer as "", so the
// answer tells nothing about which numbers are registered.
func (p *Passkeys) BeginLogin(ctx context.Context, mobile, binding string) (Ceremony, error) {
	if mobile = strings.TrimSpace(mobile); mobile != "" {
		m, err := ids.ValidateMobile(mobile)
		if err != nil {
			return Ceremony{}, fieldErr(err, "mobile")
		}
		acc, err := p.s.readAccount(ctx, p.s.d, "mobile_idx", p.s.fc.BlindIndex(indexMobile, m))
		if err == nil {
			return p.BeginStepUp(ctx, acc.ID, binding)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return Ceremony{}, fmt.Errorf("passkey login: %w", err)
		}
	}
	assertion, session, err := p.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Ceremony{}, fmt.Errorf("begin passkey login: %w", err)
	}
	return p.begin(ctx, kindPasskeyLogin, binding, "", assertion, session)
}

// BeginStepUp starts a passkey login limited to one account's passkeys: the signed-in person
// confirms with a device (step-up to level 3). An account without passkeys gets a discoverable
// login (FinishLogin then returns whichever account the device proves).
func (p *Passkeys) BeginStepUp(ctx context.Context, accountID, binding string) (Ceremony, error) {
	acc, err := p.s.account(ctx, p.s.d, accountID)
	if err != nil {
		return Ceremony{}, err
	}
	u, err := p.user(ctx, acc)
	if err != nil {
		return Ceremony{}, err
	}
	if len(u.creds) == 0 {
		return p.BeginLogin(ctx, "", binding)
	}
	assertion, session, err := p.wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Ceremony{}, fmt.Errorf("begin passkey login: %w", err)
	}
	return p.begin(ctx, kindPasskeyLogin, binding, acc.ID, assertion, session)
}

// FinishLogin checks the device's answer to a login ceremony. On success the account (active,
// real-name verified) becomes level 3 and is returned with the passkey used; the caller opens a
// level-3 session with AMRHardware (CreateSession) or raises the current one
// (RaiseSessionLevel). A signature counter that did not grow marks the passkey cloned:
// ErrPasskeyCloned, then and on every later try.
func (p *Passkeys) FinishLogin(ctx context.Context, handle, binding string, response []byte) (Account, Passkey, error) {
	fail := func(accountID, reason string, err error) (Account, Passkey, error) {
		actor := citizen(accountID, "")
		if accountID == "" {
			actor.Kind = ""
		}
		if aerr := p.s.recordAlone(ctx, actor, ActionLoginFailed, "passkey:", map[string]any{"method": MethodPasskey, "reason": reason}); aerr != nil {
			return Account{}, Passkey{}, aerr
		}
		return Account{}, Passkey{}, err
	}
	c, session, err := p.take(ctx, kindPasskeyLogin, handle, binding)
	if err != nil {
		return fail("", "challenge", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return fail("", "malformed", ErrPasskeyFailed.Wrap(err))
	}
	// The account: the one the ceremony was for, or the one the device names (user handle).
	accountID := c.accountID
	if accountID == "" {
		accountID = string(parsed.Response.UserHandle)
	}
	acc, err := p.s.account(ctx, p.s.d, accountID)
	if errors.Is(err, i18n.ErrNotFound) {
		return fail("", "unknown_user", ErrPasskeyFailed)
	} else if err != nil {
		return Account{}, Passkey{}, err
	}
	u, err := p.user(ctx, acc)
	if err != nil {
		return Account{}, Passkey{}, err
	}
	var cred *webauthn.Credential
	if len(session.UserID) > 0 {
		cred, err = p.wa.ValidateLogin(u, session, parsed)
	} else {
		_, cred, err = p.wa.ValidatePasskeyLogin(func(_, userHandle []byte) (webauthn.User, error) {
			if string(userHandle) != acc.ID {
				return nil, errors.New("user handle changed")
			}
			return u, nil
		}, session, parsed)
	}
	if err != nil {
		return fail(acc.ID, "verification", ErrPasskeyFailed.Wrap(err))
	}
	credID := base64.RawURLEncoding.EncodeToString(cred.ID)
	var row passkeyRow
	for _, r := range u.rows {
		if r.CredentialID == credID {
			row = r
		}
	}
	if row.ID == "" {
		return fail(acc.ID, "unknown_credential", ErrPasskeyFailed)
	}
	if row.CloneWarning || cred.Authenticator.CloneWarning {
		if !row.CloneWarning {
			err := p.s.d.InTx(ctx, func(tx *db.Tx) error {
				if _, err := tx.Exec(ctx, `UPDATE account_passkeys SET clone_warning = TRUE WHERE id = ?`, row.ID); err != nil {
					return fmt.Errorf("mark passkey cloned: %w", err)
				}
				return p.s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionPasskeyCloned, passkeyObject(row.ID),
					map[string]any{"stored_count": row.SignCount, "presented_count": parsed.Response.AuthenticatorData.Counter})
			})
			if err != nil {
				return Account{}, Passkey{}, err
			}
		}
		return fail(acc.ID, "cloned", ErrPasskeyCloned)
	}
	now := p.s.clock()
	updated, err := p.s.strongLogin(ctx, acc.ID, MethodPasskey, AMRHardware, passkeyObject(row.ID), func(tx *db.Tx) error {
		// Compare-and-set on the counter: two answers racing with the same count cannot both pass.
		res, err := tx.Exec(ctx, `UPDATE account_passkeys SET sign_count = ?, flags = ?, last_used_at = ? WHERE id = ?
			AND sign_count = ? AND clone_warning = FALSE`, int64(cred.Authenticator.SignCount), int(cred.Flags.MsgpByte()),
			now, row.ID, int64(row.SignCount))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrPasskeyFailed
		}
		return nil
	})
	if err != nil {
		return Account{}, Passkey{}, err
	}
	pk := row.Passkey
	pk.SignCount, pk.LastUsedAt = cred.Authenticator.SignCount, &now
	return updated, pk, nil
}

// Package identity is the account side of unified identity authentication (统一身份认证,
// issue A1): citizen accounts (自然人) registered with a mobile number, real-name verified
// against the population library, logging in by password or SMS code with an optional TOTP
// second factor; enterprises (法人) verified against the legal-entity library and the people
// who may act for them; and the single-sign-on sessions that the OpenID Connect provider
// (internal/idp) and the portal build on. It speaks no protocol and renders no page.
//
// Assurance levels (等级): an account is L1 once its mobile is confirmed by SMS, L2 once its
// name and ID number match the population library, L3 once a certificate or a device
// biometric has confirmed it (RaiseSessionLevel, called by whoever checked it). A session
// carries its own level: what was proven in that session, never more than the account's.
//
// Personal data is sealed like everywhere else (see the migration); every change and every
// login event goes through the audit hook inside the transaction of the change.
package identity

import (
	"context"
	"embed"
	"fmt"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var files embed.FS

// Migrations create the identity tables. They reference no other package's tables; apply
// after crypto, org and baselib (the keyring seals the fields; the services are called).
var Migrations = db.Migrations("identity", files, "migrations")

// Blind-index kinds: the same as baselib's, so one index value finds a person in both.
const (
	indexMobile   = baselib.IndexMobile
	indexResident = baselib.IndexResidentID
	indexSMSCode  = "identity_sms_code"
)

// AuditFunc records one event inside the transaction that makes the change (as org's).
type AuditFunc = org.AuditFunc

// Audit actions.
const (
	ActionRegister          = "identity.register"
	ActionRealNameVerified  = "identity.realname_verified"
	ActionRealNameFailed    = "identity.realname_failed"
	ActionPasswordReset     = "identity.password_reset"
	ActionLogin             = "auth.login"
	ActionLoginFailed       = "auth.login_failed"
	ActionLocked            = "auth.locked"
	ActionLogout            = "auth.logout"
	ActionSessionCreated    = "identity.session_created"
	ActionSessionRevoked    = "identity.session_revoked"
	ActionSessionsRevoked   = "identity.sessions_revoked"
	ActionLevelRaised       = "identity.level_raised"
	ActionActAs             = "identity.act_as"
	ActionTOTPEnabled       = "identity.totp_enabled"
	ActionTOTPDisabled      = "identity.totp_disabled"
	ActionTOTPFailed        = "auth.otp_failed"
	ActionEnterpriseBound   = "identity.enterprise_bound"
	ActionEnterpriseRefused = "identity.enterprise_refused"
	ActionMemberAdded       = "identity.member_added"
	ActionMemberRemoved     = "identity.member_removed"
)

// Options tune New.
type Options struct {
	// Argon is the password hashing cost; zero fields take org.DefaultArgon. Tests pass
	// cheap parameters; production must not.
	Argon org.ArgonParams
	// Now is the clock; default time.Now. Tests move it to expire codes, locks and sessions.
	Now func() time.Time
	// Audit, when set, is called inside the transaction of every change and login event.
	Audit AuditFunc
	// MaxHashing bounds concurrent Argon2 computations; default GOMAXPROCS.
	MaxHashing int
	// TOTPIssuer names the service in authenticator apps; default "山西政务".
	TOTPIssuer string
}

// Service is the identity store and its rules; safe for concurrent use.
type Service struct {
	d       *db.DB
	fc      *crypto.FieldCipher
	base    *baselib.Service
	sms     SMSGateway
	argon   org.ArgonParams
	now     func() time.Time
	audit   AuditFunc
	issuer  string
	hashing chan struct{}
	// dummy is verified for unknown logins so they cost what known ones cost.
	dummy string
}

// New returns the identity service on d, sealing fields with fc, verifying real names with
// base and sending codes through sms.
func New(d *db.DB, fc *crypto.FieldCipher, base *baselib.Service, sms SMSGateway, opts Options) *Service {
	s := &Service{d: d, fc: fc, base: base, sms: sms, argon: opts.Argon, now: opts.Now,
		audit: opts.Audit, issuer: opts.TOTPIssuer}
	if s.now == nil {
		s.now = time.Now
	}
	if s.issuer == "" {
		s.issuer = "山西政务"
	}
	n := opts.MaxHashing
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.hashing = make(chan struct{}, n)
	// A real hash of a random password: verifying against it costs what a real one costs.
	// HashPassword fails only when crypto/rand does, which it never does (Go ≥ 1.24).
	dummy, err := org.HashPassword(newToken(), s.argon)
	if err != nil {
		panic(fmt.Sprintf("identity: dummy hash: %v", err))
	}
	s.dummy = dummy
	return s
}

func (s *Service) clock() time.Time { return db.Now(s.now()) }

func (s *Service) hash(ctx context.Context, password string) (string, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.hashing }()
	return org.HashPassword(password, s.argon)
}

func (s *Service) verify(ctx context.Context, hash, password string) (bool, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashing }()
	return org.VerifyPassword(hash, password)
}

// record calls the audit hook, when there is one, inside tx.
func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if s.audit == nil {
		return nil
	}
	if err := s.audit(ctx, tx, actor, action, object, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

// recordAlone records a failure in its own transaction: the refused change rolls back, its
// audit entry must not.
func (s *Service) recordAlone(ctx context.Context, actor authz.Subject, action, object string, detail map[string]any) error {
	return s.d.InTx(ctx, func(tx *db.Tx) error { return s.record(ctx, tx, actor, action, object, detail) })
}

func citizen(id, name string) authz.Subject {
	return authz.Subject{Kind: authz.Citizen, ID: id, Name: name}
}

func accountObject(id string) string { return "account:" + id }

// fieldAAD binds a sealed field to its table, row and column (the baselib convention).
func fieldAAD(table, id, column string) string { return "identity." + table + ":" + id + ":" + column }

// ---- errors ----

func userErr(status int, code, zh, en string) *i18n.Error {
	return &i18n.Error{Code: code, Status: status, Msg: i18n.T(zh, en)}
}

// Errors of this package; compare with errors.Is (i18n errors match by code).
var (
	// ErrBadCredentials answers every failed password login alike — unknown login, wrong
	// password, locked account — so the answer tells nothing about which accounts exist.
	ErrBadCredentials = userErr(http.StatusUnauthorized, "identity.bad_credentials",
		"账号或密码错误", "wrong account or password")
	ErrInactive = userErr(http.StatusForbidden, "identity.inactive", "该账号已停用", "this account is disabled")
	// ErrThrottled: too many failures from this source address (or of this account's real-name
	// checks); the message says how long to wait.
	ErrThrottled = userErr(http.StatusTooManyRequests, "identity.throttled",
		"尝试次数过多，请稍后再试", "too many attempts; please try again later")
	ErrCodeTooSoon = userErr(http.StatusTooManyRequests, "identity.sms.too_soon",
		"请稍后再获取验证码", "wait before requesting another code")
	ErrCodeWrong = &i18n.Error{Code: "identity.sms.wrong", Status: http.StatusBadRequest, Field: "code",
		Msg: i18n.T("验证码错误", "the verification code is wrong")}
	ErrCodeExpired = &i18n.Error{Code: "identity.sms.expired", Status: http.StatusBadRequest, Field: "code",
		Msg: i18n.T("验证码已失效，请重新获取", "the verification code is no longer valid; request a new one")}
	ErrBadPurpose = &i18n.Error{Code: "identity.sms.purpose", Status: http.StatusBadRequest, Field: "purpose",
		Msg: i18n.T("验证码用途须为注册、登录或重置密码", "the purpose must be register, login or reset")}
	ErrSMSUnavailable = userErr(http.StatusServiceUnavailable, "identity.sms.unavailable",
		"短信发送失败，请稍后再试", "the text message could not be sent; please try again later")
	ErrMobileRegistered = &i18n.Error{Code: "identity.mobile_registered", Status: http.StatusConflict, Field: "mobile",
		Msg: i18n.T("该手机号码已注册，请直接登录", "this mobile number is already registered; please log in")}
	ErrRealNameMismatch = userErr(http.StatusBadRequest, "identity.realname.mismatch",
		"姓名与身份证号码不匹配", "name and ID number do not match")
	ErrIDNumberBound = &i18n.Error{Code: "identity.realname.bound", Status: http.StatusConflict, Field: "id_number",
		Msg: i18n.T("该身份证号码已绑定其他账号", "this ID number is already bound to another account")}
	ErrAlreadyVerified = userErr(http.StatusConflict, "identity.realname.done",
		"该账号已完成实名认证", "this account is already real-name verified")
	ErrLevelTooLow = userErr(http.StatusForbidden, "identity.level",
		"请先完成实名认证", "complete real-name verification first")
	ErrSessionInvalid = userErr(http.StatusUnauthorized, "identity.session",
		"登录已失效，请重新登录", "your session has ended; please log in again")
	ErrTOTPWrong = &i18n.Error{Code: "identity.totp.wrong", Status: http.StatusBadRequest, Field: "code",
		Msg: i18n.T("动态口令错误或已使用", "the one-time code is wrong or was already used")}
	ErrTOTPNotEnrolled = userErr(http.StatusConflict, "identity.totp.none",
		"尚未绑定动态口令", "no authenticator is set up")
	ErrTOTPEnabled = userErr(http.StatusConflict, "identity.totp.enabled",
		"已绑定动态口令，如需更换请先解绑", "an authenticator is already set up; remove it first")
	ErrEntityMismatch = userErr(http.StatusBadRequest, "identity.enterprise.mismatch",
		"企业名称、统一社会信用代码与法定代表人信息不符",
		"the enterprise name, credit code and legal representative do not match the register")
	ErrNotMember = userErr(http.StatusForbidden, "identity.enterprise.not_member",
		"您不是该企业的经办人", "you may not act for this enterprise")
	ErrMemberIneligible = &i18n.Error{Code: "identity.enterprise.ineligible", Status: http.StatusBadRequest, Field: "mobile",
		Msg: i18n.T("该手机号码未注册或未完成实名认证", "this mobile number has no real-name verified account")}
	ErrMemberExists = userErr(http.StatusConflict, "identity.enterprise.member_exists",
		"该用户已是企业成员", "this person is already a member")
	ErrBadRole = &i18n.Error{Code: "identity.enterprise.role", Status: http.StatusBadRequest, Field: "role",
		Msg: i18n.T("角色须为管理员或经办人", "the role must be admin or operator")}
	ErrLegalRepStays = userErr(http.StatusConflict, "identity.enterprise.legal_rep",
		"不能移除法定代表人", "the legal representative cannot be removed")
	ErrBadLevel = userErr(http.StatusBadRequest, "identity.level.invalid",
		"认证等级或方式无效", "invalid assurance level or method")
)

// waitError is base with a message telling how long to wait: zh and en carry one %s, filled
// with "N 秒" / "N s" (under two minutes) or "N 分钟" / "N min".
func waitError(base *i18n.Error, zh, en string, wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	zhWait, enWait := fmt.Sprintf("%d 秒", secs), fmt.Sprintf("%d s", secs)
	if secs >= 120 {
		mins := (secs + 59) / 60
		zhWait, enWait = fmt.Sprintf("%d 分钟", mins), fmt.Sprintf("%d min", mins)
	}
	c := *base
	c.Msg = i18n.T(fmt.Sprintf(zh, zhWait), fmt.Sprintf(en, enWait))
	return &c
}

// ---- small helpers ----

// cleanName trims a display name and checks it: at most 64 characters, no control characters.
func cleanName(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 || utf8.RuneCountInString(v) > 64 {
		return "", &i18n.Error{Code: "identity.name.invalid", Status: http.StatusBadRequest, Field: "name",
			Msg: i18n.T("姓名不能超过 64 个字符，且不能含控制字符", "the name must have at most 64 characters and no control characters")}
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sourceKey is the throttle key of a client address: the address itself, or for IPv6 its
// /64 (one subscriber usually holds a whole /64, so single addresses would cost nothing to
// vary). Unparseable input is used as given, truncated.
func sourceKey(prefix, ip string) string {
	ip = strings.TrimSpace(ip)
	if a, err := netip.ParseAddr(ip); err == nil {
		a = a.Unmap()
		if a.Is6() {
			p, _ := a.Prefix(64)
			return prefix + p.String()
		}
		return prefix + a.String()
	}
	return prefix + truncate(ip, 64)
}

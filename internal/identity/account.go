package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Assurance levels.
const (
	LevelRegistered = 1 // mobile confirmed by SMS
	LevelRealName   = 2 // name and ID number match the population library
	LevelStrong     = 3 // confirmed by a certificate or a device biometric
)

// Account statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Account is a citizen account as its owner sees it: the mobile in full (their own), the ID
// number masked.
type Account struct {
	ID             string
	Name           string // the registered name once verified
	Mobile         string // 11 digits
	IDNumberMasked string // 140105********1234, "" until verified
	DivisionCode   string // 户籍所在地, "" until verified
	Level          int
	VerifiedAt     *time.Time
	Status         string
	TOTPEnabled    bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// accountRow is an account with what only this package sees.
type accountRow struct {
	Account
	mobileEnc   []byte
	idEnc       []byte
	hash        string
	failed      int
	lockedUntil sql.NullTime
}

func (r accountRow) locked(now time.Time) bool {
	return r.lockedUntil.Valid && r.lockedUntil.Time.After(now)
}

const accountSelect = `SELECT a.id, a.name, a.mobile_enc, a.id_number_enc, a.division_code, a.password_hash, a.level,
	a.verified_at, a.status, a.failed_logins, a.locked_until, a.created_at, a.updated_at,
	(SELECT COUNT(*) FROM account_totp t WHERE t.account_id = a.id AND t.confirmed_at IS NOT NULL)
	FROM accounts a`

// readAccount reads one account by a column of accounts (id, mobile_idx, id_number_idx) and
// decrypts its fields. A missing row is sql.ErrNoRows.
func (s *Service) readAccount(ctx context.Context, q db.Querier, column, value string) (accountRow, error) {
	var r accountRow
	var div sql.NullString
	var verified sql.NullTime
	var totp int
	err := q.QueryRow(ctx, accountSelect+` WHERE a.`+column+` = ?`, value).Scan(&r.ID, &r.Name, &r.mobileEnc, &r.idEnc,
		&div, &r.hash, &r.Level, &verified, &r.Status, &r.failed, &r.lockedUntil, &r.CreatedAt, &r.UpdatedAt, &totp)
	if err != nil {
		return r, err
	}
	r.DivisionCode, r.TOTPEnabled = div.String, totp > 0
	if verified.Valid {
		t := verified.Time
		r.VerifiedAt = &t
	}
	if r.Mobile, err = s.fc.Open(r.mobileEnc, fieldAAD("accounts", r.ID, "mobile")); err != nil {
		return r, fmt.Errorf("account %s mobile: %w", r.ID, err)
	}
	if r.idEnc != nil {
		n, err := s.fc.Open(r.idEnc, fieldAAD("accounts", r.ID, "id_number"))
		if err != nil {
			return r, fmt.Errorf("account %s id number: %w", r.ID, err)
		}
		r.IDNumberMasked = ids.MaskResident(n)
	}
	return r, nil
}

// account reads an account by id; a missing one is i18n.ErrNotFound.
func (s *Service) account(ctx context.Context, q db.Querier, id string) (accountRow, error) {
	r, err := s.readAccount(ctx, q, "id", id)
	if errors.Is(err, sql.ErrNoRows) {
		return r, i18n.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read account: %w", err)
	}
	return r, nil
}

// GetAccount returns an account, or i18n.ErrNotFound.
func (s *Service) GetAccount(ctx context.Context, id string) (Account, error) {
	r, err := s.account(ctx, s.d, id)
	return r.Account, err
}

// VerifiedIDNumber is the account's real-name verified ID number, "" while unverified. It is
// for the engines that act for the person (prefill of their applications, their e-licences),
// never for display: pages show the mask.
func (s *Service) VerifiedIDNumber(ctx context.Context, accountID string) (string, error) {
	r, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return "", err
	}
	return s.idNumber(r)
}

// idNumber decrypts the account's ID number ("" when unverified).
func (s *Service) idNumber(r accountRow) (string, error) {
	if r.idEnc == nil {
		return "", nil
	}
	return s.fc.Open(r.idEnc, fieldAAD("accounts", r.ID, "id_number"))
}

// RegisterInput opens an account.
type RegisterInput struct {
	Mobile   string // any form ids.ValidateMobile accepts
	Code     string // the SMS code sent for PurposeRegister
	Password string // org.ValidatePassword's policy, the mobile as username
	Name     string // optional until real-name verification replaces it
}

// Register opens a level-1 account for a mobile number whose owner proved it with an SMS
// code. A number already registered is ErrMobileRegistered (409) — said only after the code
// checked out, so only the number's owner learns it.
func (s *Service) Register(ctx context.Context, in RegisterInput) (Account, error) {
	mobile, err := ids.ValidateMobile(in.Mobile)
	if err != nil {
		return Account{}, fieldErr(err, "mobile")
	}
	name, err := cleanName(in.Name)
	if err != nil {
		return Account{}, err
	}
	if err := org.ValidatePassword(mobile, in.Password); err != nil {
		return Account{}, err
	}
	now := s.clock()
	idx := s.fc.BlindIndex(indexMobile, mobile)
	codeID, err := s.checkCode(ctx, idx, PurposeRegister, in.Code, now)
	if err != nil {
		return Account{}, err
	}
	hash, err := s.hash(ctx, in.Password)
	if err != nil {
		return Account{}, fmt.Errorf("hash password: %w", err)
	}
	id := db.NewID()
	enc, err := s.fc.Seal(mobile, fieldAAD("accounts", id, "mobile"))
	if err != nil {
		return Account{}, fmt.Errorf("seal mobile: %w", err)
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := consumeCode(ctx, tx, codeID, now); err != nil {
			return err
		}
		var other string
		if err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE mobile_idx = ?`, idx).Scan(&other); err == nil {
			return ErrMobileRegistered
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check mobile: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO accounts (id, name, mobile_enc, mobile_idx, password_hash, level, status,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, name, enc, idx, hash, LevelRegistered, StatusActive, now, now)
		if db.IsUniqueViolation(err) {
			return ErrMobileRegistered.Wrap(err)
		} else if err != nil {
			return fmt.Errorf("insert account: %w", err)
		}
		return s.record(ctx, tx, citizen(id, name), ActionRegister, accountObject(id),
			map[string]any{"mobile": ids.MaskMobile(mobile), "level": LevelRegistered})
	})
	if err != nil {
		return Account{}, err
	}
	return s.GetAccount(ctx, id)
}

// VerifyRealName raises an account to level 2 when name and idNumber match the population
// library (baselib.VerifyPerson): the registered name, the ID number (sealed, with its blind
// index) and the household division (户籍所在地, from the person's record) are stored. A
// mismatch is ErrRealNameMismatch and counts towards 5 failures a day per account, after
// which the check is refused (ErrThrottled): it would otherwise be an oracle on the
// population library. An ID number bound to another account is ErrIDNumberBound (409).
func (s *Service) VerifyRealName(ctx context.Context, accountID, name, idNumber string) (Account, error) {
	now := s.clock()
	key := "realname:" + accountID
	if wait, err := throttleWait(ctx, s.d, key, now); err != nil {
		return Account{}, err
	} else if wait > 0 {
		return Account{}, waitError(ErrThrottled, "实名认证失败次数过多，请 %s后再试", "too many failed verifications; try again in %s", wait)
	}
	res, err := ids.ValidateResidentAt(idNumber, now)
	if err != nil {
		return Account{}, fieldErr(err, "id_number")
	}
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return Account{}, err
	}
	if acc.Status != StatusActive {
		return Account{}, ErrInactive
	}
	if acc.Level >= LevelRealName {
		return Account{}, ErrAlreadyVerified
	}
	actor := citizen(acc.ID, acc.Name)
	ok, err := s.base.VerifyPerson(ctx, name, res.Number)
	if err != nil {
		return Account{}, err
	}
	masked := ids.MaskResident(res.Number)
	if !ok {
		err := s.d.InTx(ctx, func(tx *db.Tx) error {
			until, err := hit(ctx, tx, key, limitRealName, now)
			if err != nil {
				return err
			}
			detail := map[string]any{"id_number": masked, "reason": "mismatch"}
			if !until.IsZero() {
				detail["locked_until"] = until
			}
			return s.record(ctx, tx, actor, ActionRealNameFailed, accountObject(acc.ID), detail)
		})
		if err != nil {
			return Account{}, fmt.Errorf("record failed verification: %w", err)
		}
		return Account{}, ErrRealNameMismatch
	}
	// The register's spelling of the name, and the household division; the ID number's own
	// division code (where it was first issued) only if the record went away meanwhile.
	regName, division := strings.TrimSpace(name), res.Division
	if p, err := s.base.FindPersonByIDNumber(ctx, res.Number); err == nil {
		regName, division = p.Name, p.DivisionCode
	} else if !errors.Is(err, i18n.ErrNotFound) {
		return Account{}, err
	}
	idx := s.fc.BlindIndex(indexResident, res.Number)
	enc, err := s.fc.Seal(res.Number, fieldAAD("accounts", acc.ID, "id_number"))
	if err != nil {
		return Account{}, fmt.Errorf("seal id number: %w", err)
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		var other string
		if err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE id_number_idx = ?`, idx).Scan(&other); err == nil {
			return ErrIDNumberBound
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check id number: %w", err)
		}
		r, err := tx.Exec(ctx, `UPDATE accounts SET name = ?, id_number_enc = ?, id_number_idx = ?, division_code = ?,
			level = ?, verified_at = ?, updated_at = ? WHERE id = ? AND level < ?`,
			regName, enc, idx, division, LevelRealName, now, now, acc.ID, LevelRealName)
		if db.IsUniqueViolation(err) {
			return ErrIDNumberBound.Wrap(err)
		} else if err != nil {
			return fmt.Errorf("verify account: %w", err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return ErrAlreadyVerified
		}
		return s.record(ctx, tx, citizen(acc.ID, regName), ActionRealNameVerified, accountObject(acc.ID),
			map[string]any{"id_number": masked, "division": division, "level": LevelRealName})
	})
	if errors.Is(err, ErrIDNumberBound) {
		if aerr := s.recordAlone(ctx, actor, ActionRealNameFailed, accountObject(acc.ID),
			map[string]any{"id_number": masked, "reason": "bound_to_other_account"}); aerr != nil {
			return Account{}, aerr
		}
	}
	if err != nil {
		return Account{}, err
	}
	return s.GetAccount(ctx, acc.ID)
}

// ResetPassword sets a new password for the account of mobile, proven by a PurposeReset
// code. It clears a lock and ends every session of the account.
func (s *Service) ResetPassword(ctx context.Context, mobile, code, password string) error {
	mobile, err := ids.ValidateMobile(mobile)
	if err != nil {
		return fieldErr(err, "mobile")
	}
	if err := org.ValidatePassword(mobile, password); err != nil {
		return err
	}
	now := s.clock()
	idx := s.fc.BlindIndex(indexMobile, mobile)
	codeID, err := s.checkCode(ctx, idx, PurposeReset, code, now)
	if err != nil {
		return err
	}
	acc, err := s.readAccount(ctx, s.d, "mobile_idx", idx)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrCodeExpired // codes are sent to registered numbers only
	} else if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := consumeCode(ctx, tx, codeID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = ?
			WHERE id = ?`, hash, now, acc.ID); err != nil {
			return fmt.Errorf("reset password: %w", err)
		}
		n, err := revokeAll(ctx, tx, acc.ID, now)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionPasswordReset, accountObject(acc.ID),
			map[string]any{"sessions_revoked": n})
	})
}

// ---- login ----

// Account lockout: LockAfter consecutive failed passwords lock the account for LockBase,
// doubling with each further failure up to LockMax (the rule of staff accounts in org).
const (
	LockAfter = 5
	LockBase  = 15 * time.Minute
	LockMax   = 24 * time.Hour
)

func lockDuration(failures int) time.Duration {
	d := LockBase
	for i := LockAfter; i < failures && d < LockMax; i++ {
		d *= 2
	}
	return min(d, LockMax)
}

// loginIndex turns what a person typed as login into the column and index value it is
// found by: a mobile number, or the ID number of a verified account. Anything else finds
// nothing (but costs the same).
func (s *Service) loginIndex(login string, now time.Time) (column, value, masked string) {
	if m, err := ids.ValidateMobile(login); err == nil {
		return "mobile_idx", s.fc.BlindIndex(indexMobile, m), ids.MaskMobile(m)
	}
	if r, err := ids.ValidateResidentAt(login, now); err == nil {
		return "id_number_idx", s.fc.BlindIndex(indexResident, r.Number), ids.MaskResident(r.Number)
	}
	return "", "", ids.MaskResident(truncate(strings.TrimSpace(login), 32))
}

// ipWait refuses a source address in back-off.
func (s *Service) ipWait(ctx context.Context, ipKey string, now time.Time) error {
	if ipKey == "" {
		return nil
	}
	wait, err := throttleWait(ctx, s.d, ipKey, now)
	if err != nil {
		return err
	}
	if wait > 0 {
		return waitError(ErrThrottled, "登录失败次数过多，请 %s后再试", "too many failed logins; try again in %s", wait)
	}
	return nil
}

func ipKeyOf(ip string) string {
	if strings.TrimSpace(ip) == "" {
		return ""
	}
	return sourceKey("ip:", ip)
}

// LoginPassword checks a password login; login is a mobile number or, for a verified
// account, an ID number; ip is the client address ("" skips the per-address limit). Every
// failure — unknown login, wrong password, locked account — is ErrBadCredentials after the
// same work (one lookup, one Argon2 verification, one accounting transaction). LockAfter
// failures lock the account (see lockDuration); independently, 20 failures from one address
// in 10 minutes put the address in back-off (ErrThrottled, 10 minutes doubling to 24 h), so
// a client trying many accounts is slowed without locking them. A disabled account is
// ErrInactive, said only after the right password. When the account has TOTP enabled, the
// caller asks VerifyTOTP next and adds "otp" to the session's amr.
func (s *Service) LoginPassword(ctx context.Context, login, password, ip string) (Account, error) {
	now := s.clock()
	ipKey := ipKeyOf(ip)
	if err := s.ipWait(ctx, ipKey, now); err != nil {
		return Account{}, err
	}
	column, value, masked := s.loginIndex(login, now)
	var acc accountRow
	found := false
	if column != "" {
		r, err := s.readAccount(ctx, s.d, column, value)
		switch {
		case err == nil:
			acc, found = r, true
		case !errors.Is(err, sql.ErrNoRows):
			return Account{}, fmt.Errorf("login: %w", err)
		}
	}
	hash := s.dummy
	tooLong := len([]rune(password)) > org.MaxPasswordLen
	if found && !tooLong {
		hash = acc.hash
	}
	if tooLong {
		password = string([]rune(password)[:org.MaxPasswordLen]) // never valid; costs what others cost
	}
	ok, err := s.verify(ctx, hash, password) // always run: equal work on every path
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Account{}, err
	}
	ok = ok && err == nil && found && !tooLong
	if !found || !ok || acc.locked(now) {
		reason := "wrong_password"
		switch {
		case !found:
			reason = "unknown_login"
		case err != nil:
			reason = "bad_hash"
		}
		if err := s.loginFailed(ctx, acc.ID, masked, ipKey, now, reason, true); err != nil {
			return Account{}, err
		}
		return Account{}, ErrBadCredentials
	}
	if acc.Status != StatusActive {
		if err := s.recordAlone(ctx, authz.Subject{}, ActionLoginFailed, accountObject(acc.ID),
			map[string]any{"login": masked, "reason": "inactive", "method": "pwd"}); err != nil {
			return Account{}, err
		}
		return Account{}, ErrInactive
	}
	newHash := ""
	if org.NeedsRehash(acc.hash, s.argon) {
		if newHash, err = s.hash(ctx, password); err != nil {
			return Account{}, fmt.Errorf("rehash password: %w", err)
		}
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE accounts SET failed_logins = failed_logins WHERE id = ?`, acc.ID); err != nil {
			return fmt.Errorf("lock account: %w", err)
		}
		cur, err := s.account(ctx, tx, acc.ID)
		if err != nil {
			return err
		}
		// A concurrent request may have locked, disabled or re-keyed the account meanwhile.
		if cur.locked(now) || cur.hash != acc.hash {
			return ErrBadCredentials
		}
		if cur.Status != StatusActive {
			return ErrInactive
		}
		if newHash == "" {
			newHash = cur.hash
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET failed_logins = 0, locked_until = NULL, password_hash = ? WHERE id = ?`,
			newHash, acc.ID); err != nil {
			return fmt.Errorf("record login: %w", err)
		}
		detail := map[string]any{"login": masked, "method": "pwd"}
		if newHash != cur.hash {
			detail["rehashed"] = true
		}
		acc = cur
		return s.record(ctx, tx, citizen(cur.ID, cur.Name), ActionLogin, accountObject(cur.ID), detail)
	})
	if err != nil {
		return Account{}, err
	}
	return acc.Account, nil
}

// loginFailed records a failed login in its own transaction: the source address's count
// (and its back-off), and, for a password failure of a known account, the account's count
// and lock. The unknown-login path runs the same statements, matching no account row.
func (s *Service) loginFailed(ctx context.Context, accountID, masked, ipKey string, now time.Time, reason string, countAccount bool) error {
	method := "sms"
	if countAccount {
		method = "pwd"
	}
	object := accountObject(accountID)
	if accountID == "" {
		object = "login:" + masked
	}
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		if ipKey != "" {
			until, err := hit(ctx, tx, ipKey, limitIP, now)
			if err != nil {
				return err
			}
			if !until.IsZero() {
				if err := s.record(ctx, tx, authz.Subject{}, ActionLocked, ipKey, map[string]any{"locked_until": until}); err != nil {
					return err
				}
			}
		}
		detail := map[string]any{"login": masked, "reason": reason, "method": method}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET failed_logins = failed_logins WHERE id = ?`, accountID); err != nil {
			return err
		}
		if accountID == "" || !countAccount {
			return s.record(ctx, tx, authz.Subject{}, ActionLoginFailed, object, detail)
		}
		var failed int
		var lockedUntil sql.NullTime
		if err := tx.QueryRow(ctx, `SELECT failed_logins, locked_until FROM accounts WHERE id = ?`, accountID).
			Scan(&failed, &lockedUntil); err != nil {
			return err
		}
		if lockedUntil.Valid && lockedUntil.Time.After(now) {
			detail["reason"], detail["locked_until"] = "locked", lockedUntil.Time
			return s.record(ctx, tx, authz.Subject{}, ActionLoginFailed, object, detail)
		}
		failed++
		var until any
		if failed >= LockAfter {
			until = now.Add(lockDuration(failed))
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET failed_logins = ?, locked_until = ? WHERE id = ?`, failed, until, accountID); err != nil {
			return err
		}
		detail["failures"] = failed
		if err := s.record(ctx, tx, authz.Subject{}, ActionLoginFailed, object, detail); err != nil || until == nil {
			return err
		}
		return s.record(ctx, tx, authz.Subject{}, ActionLocked, object, map[string]any{"failures": failed, "locked_until": until})
	})
	if err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	return nil
}

// LoginSMS logs in with a PurposeLogin code sent to mobile. A wrong code counts towards the
// source address's back-off (the code itself dies after CodeMaxAttempts). Proving the phone
// also clears a password lock: the lock is against guessing passwords, not against the owner.
func (s *Service) LoginSMS(ctx context.Context, mobile, code, ip string) (Account, error) {
	now := s.clock()
	ipKey := ipKeyOf(ip)
	if err := s.ipWait(ctx, ipKey, now); err != nil {
		return Account{}, err
	}
	m, err := ids.ValidateMobile(mobile)
	if err != nil {
		return Account{}, fieldErr(err, "mobile")
	}
	masked := ids.MaskMobile(m)
	idx := s.fc.BlindIndex(indexMobile, m)
	acc, err := s.readAccount(ctx, s.d, "mobile_idx", idx)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("login: %w", err)
	}
	codeID, cerr := s.checkCode(ctx, idx, PurposeLogin, code, now)
	if cerr != nil || !found {
		if cerr == nil {
			cerr = ErrCodeExpired
		}
		if e, ok := i18n.As(cerr); !ok || (e.Code != ErrCodeWrong.Code && e.Code != ErrCodeExpired.Code) {
			return Account{}, cerr
		}
		if err := s.loginFailed(ctx, acc.ID, masked, ipKey, now, "wrong_code", false); err != nil {
			return Account{}, err
		}
		return Account{}, cerr
	}
	if acc.Status != StatusActive {
		if err := s.recordAlone(ctx, authz.Subject{}, ActionLoginFailed, accountObject(acc.ID),
			map[string]any{"login": masked, "reason": "inactive", "method": "sms"}); err != nil {
			return Account{}, err
		}
		return Account{}, ErrInactive
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if err := consumeCode(ctx, tx, codeID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = ?`, acc.ID); err != nil {
			return fmt.Errorf("record login: %w", err)
		}
		return s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionLogin, accountObject(acc.ID),
			map[string]any{"login": masked, "method": "sms"})
	})
	if err != nil {
		return Account{}, err
	}
	acc.failed, acc.lockedUntil = 0, sql.NullTime{}
	return acc.Account, nil
}

package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/ids"
)

// TOTP (RFC 6238) as authenticator apps use it: SHA-1, 6 digits, 30-second steps; a code of
// the step before or after is accepted for clock drift.
const totpPeriod = 30

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// EnrollTOTP starts setting up an authenticator: it returns the base32 secret and the
// otpauth:// URL (for a QR code). Until ConfirmTOTP checks a first code, the authenticator
// is not used; enrolling again replaces an unconfirmed secret. A confirmed one must be
// removed first (ErrTOTPEnabled).
func (s *Service) EnrollTOTP(ctx context.Context, accountID string) (secret, url string, err error) {
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return "", "", err
	}
	if acc.Status != StatusActive {
		return "", "", ErrInactive
	}
	if acc.TOTPEnabled {
		return "", "", ErrTOTPEnabled
	}
	// The account label shows in the app; a masked mobile identifies it without disclosing it.
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.issuer, AccountName: ids.MaskMobile(acc.Mobile),
		Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", "", fmt.Errorf("generate totp: %w", err)
	}
	enc, err := s.fc.Seal(key.Secret(), fieldAAD("account_totp", acc.ID, "secret"))
	if err != nil {
		return "", "", fmt.Errorf("seal totp secret: %w", err)
	}
	res, err := s.d.Exec(ctx, `INSERT INTO account_totp (account_id, secret_enc, last_counter, created_at) VALUES (?, ?, 0, ?)
		ON CONFLICT (account_id) DO UPDATE SET secret_enc = excluded.secret_enc, last_counter = 0, created_at = excluded.created_at
		WHERE account_totp.confirmed_at IS NULL`, acc.ID, enc, s.clock())
	if err != nil {
		return "", "", fmt.Errorf("store totp: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return "", "", ErrTOTPEnabled // confirmed concurrently
	}
	return key.Secret(), key.URL(), nil
}

type totpRow struct {
	secret      string
	confirmed   bool
	lastCounter int64
}

func (s *Service) readTOTP(ctx context.Context, accountID string) (totpRow, error) {
	var r totpRow
	var enc []byte
	var confirmed sql.NullTime
	err := s.d.QueryRow(ctx, `SELECT secret_enc, confirmed_at, last_counter FROM account_totp WHERE account_id = ?`, accountID).
		Scan(&enc, &confirmed, &r.lastCounter)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrTOTPNotEnrolled
	}
	if err != nil {
		return r, fmt.Errorf("read totp: %w", err)
	}
	r.confirmed = confirmed.Valid
	if r.secret, err = s.fc.Open(enc, fieldAAD("account_totp", accountID, "secret")); err != nil {
		return r, fmt.Errorf("open totp secret: %w", err)
	}
	return r, nil
}

// totpCounter returns the time step whose code is code (this step, the one before or the
// one after), or ok false.
func totpCounter(secret, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	step := now.Unix() / totpPeriod
	for _, c := range []int64{step, step - 1, step + 1} {
		if ok, err := hotp.ValidateCustom(code, uint64(c), secret, totpOpts); err == nil && ok {
			return c, true
		}
	}
	return 0, false
}

// otpCheck refuses while the account's wrong codes are in back-off.
func (s *Service) otpCheck(ctx context.Context, accountID string, now time.Time) error {
	wait, err := throttleWait(ctx, s.d, "otp:"+accountID, now)
	if err != nil {
		return err
	}
	if wait > 0 {
		return waitError(ErrThrottled, "动态口令错误次数过多，请 %s后再试", "too many wrong codes; try again in %s", wait)
	}
	return nil
}

// otpFailed counts and audits a wrong code in its own transaction.
func (s *Service) otpFailed(ctx context.Context, accountID, reason string, now time.Time) error {
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		until, err := hit(ctx, tx, "otp:"+accountID, limitOTP, now)
		if err != nil {
			return err
		}
		detail := map[string]any{"reason": reason}
		if !until.IsZero() {
			detail["locked_until"] = until
		}
		return s.record(ctx, tx, authz.Subject{}, ActionTOTPFailed, accountObject(accountID), detail)
	})
	if err != nil {
		return fmt.Errorf("record wrong code: %w", err)
	}
	return ErrTOTPWrong
}

// ConfirmTOTP checks the first code of an enrolled authenticator and turns it on.
func (s *Service) ConfirmTOTP(ctx context.Context, accountID, code string) error {
	now := s.clock()
	if err := s.otpCheck(ctx, accountID, now); err != nil {
		return err
	}
	r, err := s.readTOTP(ctx, accountID)
	if err != nil {
		return err
	}
	if r.confirmed {
		return ErrTOTPEnabled
	}
	c, ok := totpCounter(r.secret, code, now)
	if !ok {
		return s.otpFailed(ctx, accountID, "wrong_code", now)
	}
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE account_totp SET confirmed_at = ?, last_counter = ? WHERE account_id = ? AND confirmed_at IS NULL`,
			now, c, accountID)
		if err != nil {
			return fmt.Errorf("confirm totp: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrTOTPEnabled
		}
		return s.record(ctx, tx, citizen(accountID, ""), ActionTOTPEnabled, accountObject(accountID), map[string]any{})
	})
}

// VerifyTOTP checks a code of the account's authenticator as a second factor (the caller
// then adds "otp" to the session's amr). A code is accepted once: its time step must be
// later than the last accepted one. Five wrong codes in 15 minutes put the account's codes in
// back-off (ErrThrottled).
func (s *Service) VerifyTOTP(ctx context.Context, accountID, code string) error {
	now := s.clock()
	if err := s.otpCheck(ctx, accountID, now); err != nil {
		return err
	}
	r, err := s.readTOTP(ctx, accountID)
	if err != nil {
		return err
	}
	if !r.confirmed {
		return ErrTOTPNotEnrolled
	}
	c, ok := totpCounter(r.secret, code, now)
	if !ok {
		return s.otpFailed(ctx, accountID, "wrong_code", now)
	}
	// Compare-and-set: of two requests with the same code, one wins.
	res, err := s.d.Exec(ctx, `UPDATE account_totp SET last_counter = ? WHERE account_id = ? AND last_counter < ?`, c, accountID, c)
	if err != nil {
		return fmt.Errorf("use totp code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return s.otpFailed(ctx, accountID, "reused_code", now)
	}
	return nil
}

// DisableTOTP removes the account's authenticator. The caller has re-authenticated the
// person (a recent password or SMS login).
func (s *Service) DisableTOTP(ctx context.Context, accountID string) error {
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM account_totp WHERE account_id = ?`, accountID)
		if err != nil {
			return fmt.Errorf("disable totp: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrTOTPNotEnrolled
		}
		return s.record(ctx, tx, citizen(accountID, ""), ActionTOTPDisabled, accountObject(accountID), map[string]any{})
	})
}

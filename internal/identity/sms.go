package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// SMSGateway delivers a text message to a mainland mobile number (11 digits).
type SMSGateway interface {
	Send(ctx context.Context, mobile, text string) error
}

// SinkGateway is the development gateway: messages are written to the sms_sink table, where
// a development page (ListSink) shows them, instead of going to a phone.
type SinkGateway struct {
	d   *db.DB
	now func() time.Time
}

// NewSinkGateway returns the development gateway on d; now may be nil (time.Now).
func NewSinkGateway(d *db.DB, now func() time.Time) *SinkGateway {
	if now == nil {
		now = time.Now
	}
	return &SinkGateway{d: d, now: now}
}

// Send stores the message.
func (g *SinkGateway) Send(ctx context.Context, mobile, text string) error {
	_, err := g.d.Exec(ctx, `INSERT INTO sms_sink (id, mobile, text, created_at) VALUES (?, ?, ?, ?)`,
		db.NewID(), mobile, text, db.Now(g.now()))
	if err != nil {
		return fmt.Errorf("sms sink: %w", err)
	}
	return nil
}

// SinkMessage is one message of the development gateway.
type SinkMessage struct {
	ID        string
	Mobile    string
	Text      string
	CreatedAt time.Time
}

// ListSink returns the latest messages, newest first (limit default 50, at most 500).
func (g *SinkGateway) ListSink(ctx context.Context, limit int) ([]SinkMessage, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := g.d.Query(ctx, `SELECT id, mobile, text, created_at FROM sms_sink ORDER BY created_at DESC, id DESC LIMIT ?`, min(limit, 500))
	if err != nil {
		return nil, fmt.Errorf("list sms sink: %w", err)
	}
	defer rows.Close()
	out := []SinkMessage{}
	for rows.Next() {
		var m SinkMessage
		if err := rows.Scan(&m.ID, &m.Mobile, &m.Text, &m.CreatedAt); err != nil {
			return nil, fmt.Errorf("list sms sink: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Purposes of SMS codes: a code serves only the purpose it was requested for.
const (
	PurposeRegister = "register"
	PurposeLogin    = "login"
	PurposeReset    = "reset"
)

// SMS code rules.
const (
	CodeTTL         = 5 * time.Minute
	CodeResendGap   = 60 * time.Second
	CodeMaxAttempts = 5
)

// codeText is the message; 【山西政务】 is the registered SMS signature (短信签名).
func codeText(code string) string {
	return "【山西政务】您的验证码是" + code + "，5分钟内有效。如非本人操作请忽略。"
}

// newCode returns six uniformly random digits.
func newCode() string {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		// 4294000000 is the largest multiple of 10^6 below 2^32: reject above it, no bias.
		if n := binary.BigEndian.Uint32(b[:]); n < 4294000000 {
			return fmt.Sprintf("%06d", n%1000000)
		}
	}
}

func (s *Service) codeHash(id, code string) string { return s.fc.BlindIndex(indexSMSCode, id+":"+code) }

func validPurpose(p string) bool {
	return p == PurposeRegister || p == PurposeLogin || p == PurposeReset
}

// SendCode sends a verification code for purpose to mobile. At most one code per mobile
// every 60 s ("请 N 秒后再获取验证码"), ten a day, and twenty an hour from one source address
// (ip, the client address; "" skips that limit). For login and reset, a number with no
// account is answered like any other but gets no message: the answer must not reveal who
// is registered, and strangers must not receive codes. A registration code is always sent;
// Register tells a registered number apart only after its code proved the number's owner.
func (s *Service) SendCode(ctx context.Context, mobile, purpose, ip string) error {
	if !validPurpose(purpose) {
		return ErrBadPurpose
	}
	mobile, err := ids.ValidateMobile(mobile)
	if err != nil {
		return fieldErr(err, "mobile")
	}
	now := s.clock()
	ipKey := ""
	if strings.TrimSpace(ip) != "" {
		ipKey = sourceKey("sms-ip:", ip)
		if wait, err := throttleWait(ctx, s.d, ipKey, now); err != nil {
			return err
		} else if wait > 0 {
			return waitError(ErrThrottled, "请求过于频繁，请 %s后再试", "too many requests; try again in %s", wait)
		}
	}
	idx := s.fc.BlindIndex(indexMobile, mobile)
	deliver := true
	if purpose != PurposeRegister {
		var id string
		err := s.d.QueryRow(ctx, `SELECT id FROM accounts WHERE mobile_idx = ?`, idx).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			deliver = false
		} else if err != nil {
			return fmt.Errorf("send code: %w", err)
		}
	}
	code := newCode()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if wait, err := throttleWait(ctx, tx, "sms-day:"+idx, now); err != nil {
			return err
		} else if wait > 0 {
			return waitError(ErrCodeTooSoon, "该号码今日获取验证码次数过多，请 %s后再获取", "too many codes for this number today; wait %s", wait)
		}
		if wait, err := gap(ctx, tx, "sms-mobile:"+idx, CodeResendGap, now); err != nil {
			return err
		} else if wait > 0 {
			return waitError(ErrCodeTooSoon, "请 %s后再获取验证码", "wait %s before requesting another code", wait)
		}
		if _, err := hit(ctx, tx, "sms-day:"+idx, limitSMSMobile, now); err != nil {
			return err
		}
		if ipKey != "" {
			if _, err := hit(ctx, tx, ipKey, limitSMSIP, now); err != nil {
				return err
			}
		}
		if !deliver {
			return nil
		}
		id := db.NewID()
		_, err := tx.Exec(ctx, `INSERT INTO sms_codes (id, mobile_idx, purpose, code_hash, created_at, expires_at, ip)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, id, idx, purpose, s.codeHash(id, code), now, now.Add(CodeTTL), truncate(ip, 64))
		if err != nil {
			return fmt.Errorf("store code: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !deliver {
		return nil
	}
	// After the commit: the sink gateway writes through the same single SQLite writer.
	if err := s.sms.Send(ctx, mobile, codeText(code)); err != nil {
		return ErrSMSUnavailable.Wrap(err)
	}
	return nil
}

// checkCode checks code against the latest code sent to the mobile (index idx) for purpose
// and returns its id, for consumeCode in the caller's transaction. A wrong code counts an
// attempt at once (committed whatever the caller does next); after CodeMaxAttempts, or once
// used or expired, the code is dead: ErrCodeExpired.
func (s *Service) checkCode(ctx context.Context, idx, purpose, code string, now time.Time) (string, error) {
	code = strings.TrimSpace(code)
	var id, hash string
	var expires time.Time
	var attempts int
	var used sql.NullTime
	err := s.d.QueryRow(ctx, `SELECT id, code_hash, expires_at, attempts, used_at FROM sms_codes
		WHERE mobile_idx = ? AND purpose = ? ORDER BY created_at DESC, id DESC LIMIT 1`, idx, purpose).
		Scan(&id, &hash, &expires, &attempts, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrCodeExpired
	}
	if err != nil {
		return "", fmt.Errorf("check code: %w", err)
	}
	if used.Valid || !now.Before(expires) || attempts >= CodeMaxAttempts {
		return "", ErrCodeExpired
	}
	if len(code) != 6 || subtle.ConstantTimeCompare([]byte(s.codeHash(id, code)), []byte(hash)) != 1 {
		if _, err := s.d.Exec(ctx, `UPDATE sms_codes SET attempts = attempts + 1 WHERE id = ?`, id); err != nil {
			return "", fmt.Errorf("count code attempt: %w", err)
		}
		return "", ErrCodeWrong
	}
	return id, nil
}

// consumeCode marks a checked code used inside tx; a concurrent use makes it ErrCodeExpired.
func consumeCode(ctx context.Context, tx *db.Tx, id string, now time.Time) error {
	res, err := tx.Exec(ctx, `UPDATE sms_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND attempts < ?`, now, id, CodeMaxAttempts)
	if err != nil {
		return fmt.Errorf("use code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrCodeExpired
	}
	return nil
}

// fieldErr names field in a validation error that has none.
func fieldErr(err error, field string) error {
	if e, ok := i18n.As(err); ok && e.Field == "" {
		return e.WithField(field)
	}
	return err
}

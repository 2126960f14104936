package identity_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

var sources = []db.Source{crypto.Migrations, org.Migrations, baselib.Migrations, identity.Migrations, dbtest.AuditTable}

var t0 = time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)

var cheap = org.ArgonParams{Memory: 64, Time: 1, Threads: 1}

const pw = "Fenhe2River7" // passes the policy

func date(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

var (
	zhang = ids.MakeResident("140105", date(1985, 6, 15), 123, true)  // 张伟, 小店区
	li    = ids.MakeResident("140106", date(1992, 11, 3), 46, false)  // 李娜, 迎泽区
	wang  = ids.MakeResident("140202", date(1960, 1, 30), 311, true)  // 王建国, household 平城区 140213
	zhao  = ids.MakeResident("140802", date(2001, 2, 28), 998, false) // 赵敏
)

var (
	llc, _   = ids.MakeCreditCode('9', '1', "140105", "MA0K1234") // 张伟's company, rep ID recorded
	other, _ = ids.MakeCreditCode('9', '1', "140106", "MA0L0001") // 王建国's company, no rep ID
)

type fixture struct {
	t    *testing.T
	ctx  context.Context
	d    *db.DB
	now  time.Time
	svc  *identity.Service
	sink *identity.SinkGateway
	fail string // an audit action the hook refuses, as an unavailable audit store would
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), d: d, now: t0}
	clock := func() time.Time { return f.now }
	keys, err := crypto.Open(f.ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), clock)
	if err != nil {
		t.Fatalf("open keyring: %v", err)
	}
	fc := keys.FieldCipher()
	base := baselib.New(d, fc, baselib.Options{Now: clock})
	if _, err := base.AddPersons(f.ctx, []baselib.PersonInput{
		{Name: "张伟", IDNumber: zhang, DivisionCode: "140105"},
		{Name: "李娜", IDNumber: li, DivisionCode: "140106"},
		{Name: "王建国", IDNumber: wang, DivisionCode: "140213"},
		{Name: "赵敏", IDNumber: zhao, DivisionCode: "140802"},
	}); err != nil {
		t.Fatalf("add persons: %v", err)
	}
	if _, err := base.AddEntities(f.ctx, []baselib.EntityInput{
		{CreditCode: llc, Name: "太原汾河科技有限公司", EntityType: baselib.TypeLLC, LegalRepName: "张伟", LegalRepID: zhang,
			DivisionCode: "140105", Established: "2015-04-01"},
		{CreditCode: other, Name: "迎泽商贸有限公司", EntityType: baselib.TypeLLC, LegalRepName: "王建国",
			DivisionCode: "140106", Established: "2010-01-01"},
	}); err != nil {
		t.Fatalf("add entities: %v", err)
	}
	f.sink = identity.NewSinkGateway(d, clock)
	f.svc = identity.New(d, fc, base, f.sink, identity.Options{
		Argon: cheap,
		Now:   clock,
		Audit: func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
			if action == f.fail {
				return errors.New("audit store unavailable")
			}
			return dbtest.RecordAudit(ctx, tx, actor, action, object, detail)
		},
	})
	return f
}

var codeRE = regexp.MustCompile(`验证码是(\d{6})，`)

// code returns the code of the newest message to mobile in the sink, or "".
func (f *fixture) code(mobile string) string {
	f.t.Helper()
	msgs, err := f.sink.ListSink(f.ctx, 20)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Mobile == mobile {
			if c := codeRE.FindStringSubmatch(m.Text); c != nil {
				return c[1]
			}
		}
	}
	return ""
}

func (f *fixture) sendCode(mobile, purpose string) string {
	f.t.Helper()
	if err := f.svc.SendCode(f.ctx, mobile, purpose, "10.0.0.1"); err != nil {
		f.t.Fatalf("send %s code to %s: %v", purpose, mobile, err)
	}
	return f.code(mobile)
}

// register opens an account for mobile; the clock moves on past the resend gap.
func (f *fixture) register(mobile, name string) identity.Account {
	f.t.Helper()
	code := f.sendCode(mobile, identity.PurposeRegister)
	acc, err := f.svc.Register(f.ctx, identity.RegisterInput{Mobile: mobile, Code: code, Password: pw, Name: name})
	if err != nil {
		f.t.Fatalf("register %s: %v", mobile, err)
	}
	f.now = f.now.Add(identity.CodeResendGap)
	return acc
}

// verified registers and real-name verifies an account.
func (f *fixture) verified(mobile, name, idNumber string) identity.Account {
	f.t.Helper()
	acc := f.register(mobile, "")
	acc, err := f.svc.VerifyRealName(f.ctx, acc.ID, name, idNumber)
	if err != nil {
		f.t.Fatalf("verify %s: %v", name, err)
	}
	return acc
}

func (f *fixture) actions() []string {
	return dbtest.Strings(f.t, f.d, `SELECT action FROM test_audit ORDER BY seq`)
}

func (f *fixture) clearAudit() {
	f.t.Helper()
	if _, err := f.d.Exec(f.ctx, `DELETE FROM test_audit`); err != nil {
		f.t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err error, base *i18n.Error) {
	t.Helper()
	if !errors.Is(err, base) {
		t.Fatalf("%s: got %v, want %s", what, err, base.Code)
	}
	e, _ := i18n.As(err)
	if e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Errorf("%s: message not bilingual: %+v", what, e.Msg)
	}
}

func TestRegisterAndCodes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const m = "13812345678"
		if err := f.svc.SendCode(f.ctx, "+86 138-1234-5678", identity.PurposeRegister, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		msgs, _ := f.sink.ListSink(f.ctx, 10)
		if len(msgs) != 1 || msgs[0].Mobile != m || !regexp.MustCompile(`^【山西政务】您的验证码是\d{6}，5分钟内有效。如非本人操作请忽略。$`).MatchString(msgs[0].Text) {
			t.Fatalf("sink: %+v", msgs)
		}
		first := f.code(m)
		var stored int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM sms_codes WHERE code_hash = ? OR code_hash LIKE ?`, first, "%"+first+"%").Scan(&stored); err != nil || stored != 0 {
			t.Fatalf("code stored in clear: %d %v", stored, err)
		}

		// One code per mobile per minute.
		f.now = t0.Add(20 * time.Second)
		err := f.svc.SendCode(f.ctx, m, identity.PurposeRegister, "10.0.0.1")
		wantErr(t, "resend", err, identity.ErrCodeTooSoon)
		if e, _ := i18n.As(err); e.Msg.ZH != "请 40 秒后再获取验证码" || e.Msg.EN != "wait 40 s before requesting another code" || e.HTTPStatus() != http.StatusTooManyRequests {
			t.Fatalf("resend message: %+v", e)
		}

		// A wrong code counts an attempt; the policy is checked before the code.
		_, err = f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m, Code: "000000", Password: "short", Name: "张伟"})
		wantErr(t, "weak password", err, org.ErrPasswordTooShort)
		wrong := "000000"
		if wrong == first {
			wrong = "111111"
		}
		_, err = f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m, Code: wrong, Password: pw, Name: "张伟"})
		wantErr(t, "wrong code", err, identity.ErrCodeWrong)

		acc, err := f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m, Code: first, Password: pw, Name: " 张伟 "})
		if err != nil || acc.Level != identity.LevelRegistered || acc.Mobile != m || acc.Name != "张伟" || acc.Status != identity.StatusActive || acc.VerifiedAt != nil {
			t.Fatalf("register: %+v %v", acc, err)
		}
		// Reused code.
		_, err = f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m, Code: first, Password: pw})
		wantErr(t, "reused code", err, identity.ErrCodeExpired)

		// Duplicate mobile: told only with a valid code.
		f.now = t0.Add(2 * time.Minute)
		code := f.sendCode(m, identity.PurposeRegister)
		_, err = f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m, Code: code, Password: pw})
		wantErr(t, "duplicate", err, identity.ErrMobileRegistered)
		if e, _ := i18n.As(err); e.HTTPStatus() != http.StatusConflict {
			t.Fatalf("duplicate status %d", e.HTTPStatus())
		}

		// Expired code.
		const m2 = "13912345678"
		code = f.sendCode(m2, identity.PurposeRegister)
		f.now = f.now.Add(identity.CodeTTL)
		_, err = f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m2, Code: code, Password: pw})
		wantErr(t, "expired code", err, identity.ErrCodeExpired)

		// Five wrong attempts kill a code, even for the right one afterwards.
		code = f.sendCode(m2, identity.PurposeRegister)
		wrong = "000000"
		if wrong == code {
			wrong = "111111"
		}
		for i := range identity.CodeMaxAttempts {
			_, err = f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m2, Code: wrong, Password: pw})
			wantErr(t, fmt.Sprintf("attempt %d", i+1), err, identity.ErrCodeWrong)
		}
		_, err = f.svc.Register(f.ctx, identity.RegisterInput{Mobile: m2, Code: code, Password: pw})
		wantErr(t, "after 5 attempts", err, identity.ErrCodeExpired)

		// A code serves its purpose only.
		f.now = f.now.Add(time.Minute)
		code = f.sendCode(m2, identity.PurposeRegister)
		if _, err := f.svc.LoginSMS(f.ctx, m2, code, "10.0.0.9"); err == nil {
			t.Fatal("register code logged in")
		}

		// Login codes go to registered numbers only, with the same answer.
		const stranger = "13700000000"
		if err := f.svc.SendCode(f.ctx, stranger, identity.PurposeLogin, "10.0.0.1"); err != nil {
			t.Fatalf("login code to stranger: %v", err)
		}
		if c := f.code(stranger); c != "" {
			t.Fatal("a login code was sent to an unregistered number")
		}
		wantErr(t, "purpose", f.svc.SendCode(f.ctx, m, "spam", ""), identity.ErrBadPurpose)
		if err := f.svc.SendCode(f.ctx, "12345", identity.PurposeLogin, ""); !errors.Is(err, ids.ErrMobileLength) {
			t.Fatalf("bad mobile: %v", err)
		}
	}, sources...)
}

// Concurrent requests for one mobile, from several nodes: one code is sent.
func TestSendCodeConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		errs := make(chan error, 8)
		for range 8 {
			go func() { errs <- f.svc.SendCode(f.ctx, "13812345678", identity.PurposeRegister, "") }()
		}
		ok := 0
		for range 8 {
			err := <-errs
			if err == nil {
				ok++
			} else if !errors.Is(err, identity.ErrCodeTooSoon) {
				t.Fatalf("send: %v", err)
			}
		}
		msgs, _ := f.sink.ListSink(f.ctx, 100)
		if ok != 1 || len(msgs) != 1 {
			t.Fatalf("%d sends succeeded, %d messages", ok, len(msgs))
		}
	}, sources...)
}

func TestSMSSourceLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for i := range 20 {
			if err := f.svc.SendCode(f.ctx, fmt.Sprintf("135%08d", i), identity.PurposeRegister, "192.0.2.7"); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		wantErr(t, "21st from one address", f.svc.SendCode(f.ctx, "13600000001", identity.PurposeRegister, "192.0.2.7"), identity.ErrThrottled)
		if err := f.svc.SendCode(f.ctx, "13600000001", identity.PurposeRegister, "192.0.2.8"); err != nil {
			t.Fatalf("another address: %v", err)
		}
	}, sources...)
}

func TestRealName(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		a := f.register("13812345678", "小张")
		_, err := f.svc.VerifyRealName(f.ctx, a.ID, "李娜", zhang)
		wantErr(t, "mismatch", err, identity.ErrRealNameMismatch)
		if e, _ := i18n.As(err); e.Msg.ZH != "姓名与身份证号码不匹配" || e.Msg.EN != "name and ID number do not match" {
			t.Fatalf("mismatch message: %+v", e.Msg)
		}
		if _, err := f.svc.VerifyRealName(f.ctx, a.ID, "张伟", "140105198506151230"); err == nil {
			t.Fatal("a bad check digit passed")
		}
		acc, err := f.svc.VerifyRealName(f.ctx, a.ID, "张伟", strings.ToLower(zhang))
		if err != nil || acc.Level != identity.LevelRealName || acc.Name != "张伟" || acc.DivisionCode != "140105" ||
			acc.IDNumberMasked != ids.MaskResident(zhang) || acc.VerifiedAt == nil {
			t.Fatalf("verify: %+v %v", acc, err)
		}
		_, err = f.svc.VerifyRealName(f.ctx, a.ID, "张伟", zhang)
		wantErr(t, "again", err, identity.ErrAlreadyVerified)

		// The household division comes from the population library, not the ID number.
		w := f.verified("13912345678", "王建国", wang)
		if w.DivisionCode != "140213" {
			t.Fatalf("division %q, want 140213", w.DivisionCode)
		}

		// One ID number, one account.
		b := f.register("13700000001", "")
		_, err = f.svc.VerifyRealName(f.ctx, b.ID, "张伟", zhang)
		wantErr(t, "bound twice", err, identity.ErrIDNumberBound)
		if e, _ := i18n.As(err); e.HTTPStatus() != http.StatusConflict {
			t.Fatalf("bound status %d", e.HTTPStatus())
		}

		// Five failures a day per account (a number bound elsewhere is no failure).
		for i := range 5 {
			_, err = f.svc.VerifyRealName(f.ctx, b.ID, "赵四", zhao)
			wantErr(t, fmt.Sprintf("failure %d", i+1), err, identity.ErrRealNameMismatch)
		}
		_, err = f.svc.VerifyRealName(f.ctx, b.ID, "赵敏", zhao)
		wantErr(t, "after five failures", err, identity.ErrThrottled)
		f.now = f.now.Add(24 * time.Hour)
		if acc, err := f.svc.VerifyRealName(f.ctx, b.ID, "赵敏", zhao); err != nil || acc.Level != 2 {
			t.Fatalf("next day: %+v %v", acc, err)
		}

		// Stored sealed: neither the number nor the mobile in clear.
		var enc []byte
		var idx string
		if err := d.QueryRow(f.ctx, `SELECT id_number_enc, id_number_idx FROM accounts WHERE id = ?`, a.ID).Scan(&enc, &idx); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(enc, []byte(zhang)) || strings.Contains(idx, zhang) {
			t.Fatal("ID number stored in clear")
		}
	}, sources...)
}

func TestLoginPassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const m = "13812345678"
		a := f.verified(m, "张伟", zhang)
		f.register("13912345678", "") // unverified: no ID-number login

		for _, login := range []string{m, "+86 138 1234 5678", zhang, strings.ToLower(zhang)} {
			acc, err := f.svc.LoginPassword(f.ctx, login, pw, "10.0.0.1")
			if err != nil || acc.ID != a.ID || acc.Level != 2 {
				t.Fatalf("login %q: %+v %v", login, acc, err)
			}
		}
		// Unknown user and wrong password: the same error.
		for _, c := range []struct{ login, pass string }{
			{m, "Wrong-Pass99"}, {"13700000000", pw}, {li, pw}, {"nobody", pw}, {"", ""}, {m, strings.Repeat("x", 200)},
		} {
			_, err := f.svc.LoginPassword(f.ctx, c.login, c.pass, "10.0.0.2")
			if err != identity.ErrBadCredentials { // the very same value
				t.Fatalf("login %q: %v", c.login, err)
			}
		}

		// Lockout: 5 consecutive failures (two already) lock for 15 minutes.
		f.now = f.now.Add(time.Minute)
		if _, err := f.svc.LoginPassword(f.ctx, m, pw, "10.0.0.3"); err != nil { // success resets the count
			t.Fatal(err)
		}
		for i := 1; i <= identity.LockAfter; i++ {
			if _, err := f.svc.LoginPassword(f.ctx, zhang, "Wrong-Pass99", "10.0.0.3"); err != identity.ErrBadCredentials {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		lockedAt := f.now
		f.now = lockedAt.Add(14 * time.Minute)
		if _, err := f.svc.LoginPassword(f.ctx, m, pw, "10.0.0.4"); err != identity.ErrBadCredentials {
			t.Fatalf("right password while locked: %v", err)
		}
		f.now = lockedAt.Add(15*time.Minute + time.Second)
		if _, err := f.svc.LoginPassword(f.ctx, m, pw, "10.0.0.4"); err != nil {
			t.Fatalf("after the lock: %v", err)
		}
		// Doubling: the 6th failure in a row locks for 30 minutes.
		for range identity.LockAfter + 1 {
			f.now = f.now.Add(time.Second)
			_, _ = f.svc.LoginPassword(f.ctx, m, "Wrong-Pass99", "10.0.0.5")
		}
		var until time.Time
		var failed int
		if err := d.QueryRow(f.ctx, `SELECT failed_logins, locked_until FROM accounts WHERE id = ?`, a.ID).Scan(&failed, &until); err != nil {
			t.Fatal(err)
		}
		// The failure at the lock counts; those while locked do not.
		if failed != identity.LockAfter || !until.Equal(f.now.Add(-time.Second).Add(identity.LockBase)) {
			t.Fatalf("failed %d until %v (now %v)", failed, until, f.now)
		}
		acts := f.actions()
		if !slices.Contains(acts, identity.ActionLocked) || !slices.Contains(acts, identity.ActionLoginFailed) {
			t.Fatalf("audit: %v", acts)
		}
	}, sources...)
}

func TestSourceBackoff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const m = "13812345678"
		f.register(m, "")
		const ip = "203.0.113.9"
		for i := range 20 {
			_, err := f.svc.LoginPassword(f.ctx, fmt.Sprintf("135%08d", i), "Wrong-Pass99", ip)
			if err != identity.ErrBadCredentials {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		_, err := f.svc.LoginPassword(f.ctx, m, pw, ip)
		wantErr(t, "address in back-off", err, identity.ErrThrottled)
		if e, _ := i18n.As(err); e.Msg.ZH != "登录失败次数过多，请 10 分钟后再试" {
			t.Fatalf("message %q", e.Msg.ZH)
		}
		// Independent of accounts: the account is fine from elsewhere.
		if _, err := f.svc.LoginPassword(f.ctx, m, pw, "203.0.113.10"); err != nil {
			t.Fatalf("other address: %v", err)
		}
		// IPv6 addresses of one /64 share a bucket.
		for i := range 20 {
			_, _ = f.svc.LoginPassword(f.ctx, m, "Wrong-Pass99", fmt.Sprintf("2001:db8::%x", i+1))
			f.now = f.now.Add(time.Second) // the account lock does not matter here
		}
		_, err = f.svc.LoginPassword(f.ctx, m, pw, "2001:db8::ffff")
		wantErr(t, "same /64", err, identity.ErrThrottled)

		// After 10 minutes the address may try again; the next lock lasts twice as long.
		f.now = f.now.Add(10 * time.Minute)
		for i := range 20 {
			_, _ = f.svc.LoginPassword(f.ctx, fmt.Sprintf("136%08d", i), "Wrong-Pass99", ip)
		}
		f.now = f.now.Add(19 * time.Minute)
		_, err = f.svc.LoginPassword(f.ctx, "13600000000", pw, ip)
		wantErr(t, "doubled back-off", err, identity.ErrThrottled)
		f.now = f.now.Add(time.Minute + time.Second)
		if _, err := f.svc.LoginPassword(f.ctx, "13600000000", pw, ip); err != identity.ErrBadCredentials {
			t.Fatalf("after the doubled back-off: %v", err)
		}
	}, sources...)
}

func TestLoginSMS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const m = "13812345678"
		a := f.register(m, "")
		code := f.sendCode(m, identity.PurposeLogin)
		wrong := "000000"
		if wrong == code {
			wrong = "111111"
		}
		_, err := f.svc.LoginSMS(f.ctx, m, wrong, "10.0.0.1")
		wantErr(t, "wrong", err, identity.ErrCodeWrong)
		acc, err := f.svc.LoginSMS(f.ctx, m, code, "10.0.0.1")
		if err != nil || acc.ID != a.ID {
			t.Fatalf("sms login: %+v %v", acc, err)
		}
		_, err = f.svc.LoginSMS(f.ctx, m, code, "10.0.0.1")
		wantErr(t, "reused", err, identity.ErrCodeExpired)
		_, err = f.svc.LoginSMS(f.ctx, "13700000000", "123456", "10.0.0.1")
		wantErr(t, "unknown mobile", err, identity.ErrCodeExpired)

		// Reset the password with a code: sessions end, the new password works.
		tok, _, err := f.svc.CreateSession(f.ctx, a.ID, 1, []string{"sms"}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(time.Minute)
		code = f.sendCode(m, identity.PurposeReset)
		if err := f.svc.ResetPassword(f.ctx, m, code, "Another-Pass42"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GetSession(f.ctx, tok); !errors.Is(err, identity.ErrSessionInvalid) {
			t.Fatalf("session after reset: %v", err)
		}
		if _, err := f.svc.LoginPassword(f.ctx, m, "Another-Pass42", "10.0.0.1"); err != nil {
			t.Fatalf("new password: %v", err)
		}
	}, sources...)
}

func TestTOTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		a := f.register("13812345678", "")
		wantErr(t, "verify before enrol", f.svc.VerifyTOTP(f.ctx, a.ID, "123456"), identity.ErrTOTPNotEnrolled)
		secret, url, err := f.svc.EnrollTOTP(f.ctx, a.ID)
		if err != nil || secret == "" || !strings.HasPrefix(url, "otpauth://totp/") || strings.Contains(url, "13812345678") {
			t.Fatalf("enrol: %q %q %v", secret, url, err)
		}
		var enc []byte
		if err := d.QueryRow(f.ctx, `SELECT secret_enc FROM account_totp WHERE account_id = ?`, a.ID).Scan(&enc); err != nil || bytes.Contains(enc, []byte(secret)) {
			t.Fatalf("secret stored in clear (%v)", err)
		}
		wantErr(t, "verify before confirm", f.svc.VerifyTOTP(f.ctx, a.ID, "123456"), identity.ErrTOTPNotEnrolled)
		code := func() string {
			c, err := totp.GenerateCode(secret, f.now)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		wrongCode := func() string {
			c := code()
			return fmt.Sprintf("%06d", (int(c[5]-'0')+1)%10+10*int(c[4]-'0')+100*int(c[3]-'0')+1000*int(c[2]-'0')+10000*int(c[1]-'0')+100000*int(c[0]-'0'))
		}
		wantErr(t, "confirm wrong", f.svc.ConfirmTOTP(f.ctx, a.ID, wrongCode()), identity.ErrTOTPWrong)
		if err := f.svc.ConfirmTOTP(f.ctx, a.ID, code()); err != nil {
			t.Fatalf("confirm: %v", err)
		}
		if acc, _ := f.svc.GetAccount(f.ctx, a.ID); !acc.TOTPEnabled {
			t.Fatal("not enabled")
		}
		_, _, err = f.svc.EnrollTOTP(f.ctx, a.ID)
		wantErr(t, "enrol twice", err, identity.ErrTOTPEnabled)
		// The confirming code cannot be used again, nor can a verified one.
		wantErr(t, "confirm code reused", f.svc.VerifyTOTP(f.ctx, a.ID, code()), identity.ErrTOTPWrong)
		f.now = f.now.Add(30 * time.Second)
		c := code()
		if err := f.svc.VerifyTOTP(f.ctx, a.ID, c); err != nil {
			t.Fatalf("verify: %v", err)
		}
		f.now = f.now.Add(10 * time.Second)
		wantErr(t, "reuse", f.svc.VerifyTOTP(f.ctx, a.ID, c), identity.ErrTOTPWrong)
		// Drift of one step is accepted.
		f.now = f.now.Add(30 * time.Second)
		if err := f.svc.VerifyTOTP(f.ctx, a.ID, code()); err != nil {
			t.Fatalf("verify next step: %v", err)
		}
		// Wrong codes: five (three so far) put the account's codes in back-off.
		f.now = f.now.Add(30 * time.Second)
		for range 2 {
			wantErr(t, "wrong", f.svc.VerifyTOTP(f.ctx, a.ID, wrongCode()), identity.ErrTOTPWrong)
		}
		wantErr(t, "throttled", f.svc.VerifyTOTP(f.ctx, a.ID, code()), identity.ErrThrottled)
		f.now = f.now.Add(15 * time.Minute)
		if err := f.svc.VerifyTOTP(f.ctx, a.ID, code()); err != nil {
			t.Fatalf("after back-off: %v", err)
		}
		if err := f.svc.DisableTOTP(f.ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "disabled", f.svc.VerifyTOTP(f.ctx, a.ID, code()), identity.ErrTOTPNotEnrolled)
		acts := f.actions()
		if !slices.Contains(acts, identity.ActionTOTPEnabled) || !slices.Contains(acts, identity.ActionTOTPDisabled) || !slices.Contains(acts, identity.ActionTOTPFailed) {
			t.Fatalf("audit: %v", acts)
		}
	}, sources...)
}

func TestSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		a := f.register("13812345678", "")
		b := f.register("13912345678", "")
		_, _, err := f.svc.CreateSession(f.ctx, a.ID, 2, []string{"pwd"}, "", "")
		wantErr(t, "level above the account's", err, identity.ErrBadLevel)
		_, _, err = f.svc.CreateSession(f.ctx, a.ID, 1, []string{"magic"}, "", "")
		wantErr(t, "unknown amr", err, identity.ErrBadLevel)

		start := f.now
		tok, ses, err := f.svc.CreateSession(f.ctx, a.ID, 1, []string{"pwd", "pwd"}, "10.0.0.1", "Firefox")
		if err != nil || len(tok) != 43 || ses.Level != 1 || !slices.Equal(ses.AMR, []string{"pwd"}) || !ses.ExpiresAt.Equal(start.Add(identity.MaxAge)) {
			t.Fatalf("create: %q %+v %v", tok, ses, err)
		}
		var hashed int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM sso_sessions WHERE token_hash = ? OR id = ?`, tok, tok).Scan(&hashed); err != nil || hashed != 0 {
			t.Fatalf("token stored in clear: %d %v", hashed, err)
		}
		got, err := f.svc.GetSession(f.ctx, tok)
		if err != nil || got.ID != ses.ID || got.AccountID != a.ID || got.UserAgent != "Firefox" {
			t.Fatalf("get: %+v %v", got, err)
		}
		_, err = f.svc.GetSession(f.ctx, tok+"x")
		wantErr(t, "unknown token", err, identity.ErrSessionInvalid)

		// Sliding idle window, absolute maximum.
		for i := 1; i <= 6; i++ {
			f.now = start.Add(time.Duration(i) * 110 * time.Minute)
			if _, err := f.svc.GetSession(f.ctx, tok); err != nil {
				t.Fatalf("slide %d: %v", i, err)
			}
		}
		f.now = start.Add(identity.MaxAge)
		_, err = f.svc.GetSession(f.ctx, tok)
		wantErr(t, "max age", err, identity.ErrSessionInvalid)

		f.now = start.Add(13 * time.Hour)
		tok1, s1, _ := f.svc.CreateSession(f.ctx, a.ID, 1, []string{"sms"}, "", "")
		tok2, s2, _ := f.svc.CreateSession(f.ctx, a.ID, 1, []string{"pwd"}, "", "")
		tokB, _, _ := f.svc.CreateSession(f.ctx, b.ID, 1, []string{"pwd"}, "", "")
		list, err := f.svc.ListSessions(f.ctx, a.ID)
		if err != nil || len(list) != 2 || list[0].ID != s2.ID || list[1].ID != s1.ID {
			t.Fatalf("list: %+v %v", list, err)
		}
		// Another account cannot revoke it; its owner can, by public id.
		wantErr(t, "revoke someone else's", f.svc.RevokeSession(f.ctx, b.ID, s1.ID), i18n.ErrNotFound)
		if err := f.svc.RevokeSession(f.ctx, a.ID, s1.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.GetSession(f.ctx, tok1)
		wantErr(t, "revoked", err, identity.ErrSessionInvalid)
		// Idle expiry.
		f.now = f.now.Add(identity.IdleTimeout + time.Second)
		_, err = f.svc.GetSession(f.ctx, tok2)
		wantErr(t, "idle", err, identity.ErrSessionInvalid)
		if list, _ := f.svc.ListSessions(f.ctx, a.ID); len(list) != 0 {
			t.Fatalf("list after expiry: %+v", list)
		}
		// Logout and log out everywhere.
		tok3, _, _ := f.svc.CreateSession(f.ctx, a.ID, 1, []string{"pwd"}, "", "")
		tok4, _, _ := f.svc.CreateSession(f.ctx, a.ID, 1, []string{"pwd"}, "", "")
		if err := f.svc.Logout(f.ctx, tok3); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GetSession(f.ctx, tok3); err == nil {
			t.Fatal("logged-out session lives")
		}
		if n, err := f.svc.RevokeAll(f.ctx, a.ID); err != nil || n != 1 {
			t.Fatalf("revoke all: %d %v", n, err)
		}
		if _, err := f.svc.GetSession(f.ctx, tok4); err == nil {
			t.Fatal("session lives after revoke all")
		}
		if _, err := f.svc.GetSession(f.ctx, tokB); err == nil {
			t.Fatal("b's session is idle by now")
		}
	}, sources...)
}

func TestEnterprises(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		rep := f.verified("13812345678", "张伟", zhang)
		op := f.verified("13912345678", "李娜", li)
		wangAcc := f.verified("13700000001", "王建国", wang)
		l1 := f.register("13600000001", "")

		_, err := f.svc.BindEnterprise(f.ctx, l1.ID, llc, "太原汾河科技有限公司")
		wantErr(t, "level 1", err, identity.ErrLevelTooLow)
		_, err = f.svc.BindEnterprise(f.ctx, op.ID, llc, "太原汾河科技有限公司")
		wantErr(t, "wrong legal representative", err, identity.ErrEntityMismatch)
		_, err = f.svc.BindEnterprise(f.ctx, rep.ID, llc, "太原汾河科技公司")
		wantErr(t, "wrong name", err, identity.ErrEntityMismatch)
		ent, err := f.svc.BindEnterprise(f.ctx, rep.ID, llc, "太原汾河科技有限公司")
		if err != nil || ent.CreditCode != llc || ent.Name != "太原汾河科技有限公司" || ent.DivisionCode != "140105" {
			t.Fatalf("bind: %+v %v", ent, err)
		}
		if again, err := f.svc.BindEnterprise(f.ctx, rep.ID, llc, "太原汾河科技有限公司"); err != nil || again.ID != ent.ID {
			t.Fatalf("bind again: %+v %v", again, err)
		}
		if e2, err := f.svc.BindEnterprise(f.ctx, wangAcc.ID, other, "迎泽商贸有限公司"); err != nil || e2.CreditCode != other {
			t.Fatalf("bind without a recorded representative ID: %+v %v", e2, err)
		}

		// Members: the operator must be a verified account; only members with rights add.
		_, err = f.svc.AddMember(f.ctx, rep.ID, ent.ID, "13600000001", identity.RoleOperator)
		wantErr(t, "level-1 member", err, identity.ErrMemberIneligible)
		_, err = f.svc.AddMember(f.ctx, wangAcc.ID, ent.ID, "13912345678", identity.RoleOperator)
		wantErr(t, "outsider adds", err, i18n.ErrForbidden)
		_, err = f.svc.AddMember(f.ctx, rep.ID, ent.ID, "13912345678", identity.RoleLegalRep)
		wantErr(t, "bad role", err, identity.ErrBadRole)
		m, err := f.svc.AddMember(f.ctx, rep.ID, ent.ID, "139 1234 5678", identity.RoleOperator)
		if err != nil || m.AccountID != op.ID || m.MobileMasked != "139****5678" || m.Role != identity.RoleOperator {
			t.Fatalf("add: %+v %v", m, err)
		}
		_, err = f.svc.AddMember(f.ctx, rep.ID, ent.ID, "13912345678", identity.RoleAdmin)
		wantErr(t, "twice", err, identity.ErrMemberExists)
		_, err = f.svc.AddMember(f.ctx, op.ID, ent.ID, "13700000001", identity.RoleOperator)
		wantErr(t, "operator adds", err, i18n.ErrForbidden)
		members, err := f.svc.ListMembers(f.ctx, op.ID, ent.ID)
		if err != nil || len(members) != 2 || members[0].Role != identity.RoleLegalRep || members[1].AccountID != op.ID {
			t.Fatalf("members: %+v %v", members, err)
		}
		if ms, err := f.svc.ListEnterprises(f.ctx, op.ID); err != nil || len(ms) != 1 || ms[0].ID != ent.ID || ms[0].Role != identity.RoleOperator {
			t.Fatalf("enterprises: %+v %v", ms, err)
		}

		// The operator acts for the enterprise.
		tok, _, err := f.svc.CreateSession(f.ctx, op.ID, 2, []string{"pwd"}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		ses, err := f.svc.ActAs(f.ctx, tok, ent.ID)
		if err != nil || ses.ActingEnterpriseID != ent.ID {
			t.Fatalf("act as: %+v %v", ses, err)
		}
		c, err := f.svc.Claims(f.ctx, op.ID, ent.ID)
		if err != nil || c.Kind != identity.KindEnterprise || c.Subject != op.ID || c.Name != "李娜" || c.Level != 2 ||
			c.Division != "140106" || c.MobileMasked != "139****5678" || c.Enterprise == nil ||
			*c.Enterprise != (identity.EnterpriseClaim{ID: ent.ID, CreditCode: llc, Name: "太原汾河科技有限公司", Role: identity.RoleOperator}) {
			t.Fatalf("claims: %+v %v", c, err)
		}
		sub, err := f.svc.Subject(f.ctx, op.ID, ent.ID)
		if err != nil || sub.Kind != authz.Enterprise || sub.ID != ent.ID || authz.Owner(sub, authz.Enterprise, ent.ID) != nil {
			t.Fatalf("subject: %+v %v", sub, err)
		}
		sub, err = f.svc.Subject(f.ctx, op.ID, "")
		if err != nil || sub.Kind != authz.Citizen || sub.ID != op.ID || sub.Division != "140106" {
			t.Fatalf("citizen subject: %+v %v", sub, err)
		}
		_, err = f.svc.ActAs(f.ctx, tok, "no-such-enterprise")
		wantErr(t, "act for a stranger", err, identity.ErrNotMember)

		// Removal: ActAs refused, and the session already acting loses the enterprise.
		wantErr(t, "remove the legal rep", f.svc.RemoveMember(f.ctx, rep.ID, ent.ID, rep.ID), identity.ErrLegalRepStays)
		if err := f.svc.RemoveMember(f.ctx, rep.ID, ent.ID, op.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := f.svc.GetSession(f.ctx, tok); err != nil || got.ActingEnterpriseID != "" {
			t.Fatalf("session after removal: %+v %v", got, err)
		}
		_, err = f.svc.ActAs(f.ctx, tok, ent.ID)
		wantErr(t, "act after removal", err, identity.ErrNotMember)
		_, err = f.svc.Claims(f.ctx, op.ID, ent.ID)
		wantErr(t, "claims after removal", err, identity.ErrNotMember)

		// GetSession re-checks membership itself (a removal by any path, e.g. a re-bind).
		if _, err := f.svc.AddMember(f.ctx, rep.ID, ent.ID, "13912345678", identity.RoleAdmin); err != nil {
			t.Fatalf("re-add: %v", err)
		}
		if _, err := f.svc.ActAs(f.ctx, tok, ent.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(f.ctx, `UPDATE enterprise_members SET removed_at = ? WHERE account_id = ?`, f.now, op.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := f.svc.GetSession(f.ctx, tok); err != nil || got.ActingEnterpriseID != "" {
			t.Fatalf("session after direct removal: %+v %v", got, err)
		}

		// Citizen claims; level 3 by certificate.
		c, err = f.svc.Claims(f.ctx, rep.ID, "")
		if err != nil || c.Kind != identity.KindCitizen || c.Enterprise != nil || c.Name != "张伟" || c.Division != "140105" {
			t.Fatalf("citizen claims: %+v %v", c, err)
		}
		repTok, _, _ := f.svc.CreateSession(f.ctx, rep.ID, 2, []string{"pwd"}, "", "")
		_, err = f.svc.RaiseSessionLevel(f.ctx, repTok, 3, "magic")
		wantErr(t, "bad method", err, identity.ErrBadLevel)
		ses, err = f.svc.RaiseSessionLevel(f.ctx, repTok, 3, identity.AMRSM2)
		if err != nil || ses.Level != 3 || !slices.Equal(ses.AMR, []string{"pwd", "sm2"}) {
			t.Fatalf("raise: %+v %v", ses, err)
		}
		if acc, _ := f.svc.GetAccount(f.ctx, rep.ID); acc.Level != 3 {
			t.Fatalf("account level %d", acc.Level)
		}
		l1Tok, _, _ := f.svc.CreateSession(f.ctx, l1.ID, 1, []string{"pwd"}, "", "")
		_, err = f.svc.RaiseSessionLevel(f.ctx, l1Tok, 3, identity.AMRHardware)
		wantErr(t, "raise level 1", err, identity.ErrLevelTooLow)
	}, sources...)
}

// The audit hook sees every event, in order, inside the transaction of the change.
func TestAuditSequence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		rep := f.verified("13812345678", "张伟", zhang)
		_, _ = f.svc.VerifyRealName(f.ctx, f.register("13912345678", "").ID, "李四", li) // fails
		op := f.verified("13700000001", "李娜", li)
		_, _ = f.svc.LoginPassword(f.ctx, "13812345678", "Wrong-Pass99", "10.0.0.1")
		_, _ = f.svc.LoginPassword(f.ctx, "13812345678", pw, "10.0.0.1")
		tok, ses, _ := f.svc.CreateSession(f.ctx, rep.ID, 2, []string{"pwd"}, "", "")
		ent, _ := f.svc.BindEnterprise(f.ctx, rep.ID, llc, "太原汾河科技有限公司")
		_, _ = f.svc.AddMember(f.ctx, rep.ID, ent.ID, "13700000001", identity.RoleOperator)
		_ = f.svc.RemoveMember(f.ctx, rep.ID, ent.ID, op.ID)
		_ = f.svc.RevokeSession(f.ctx, rep.ID, ses.ID)
		_ = f.svc.Logout(f.ctx, tok) // already revoked: nothing to record
		want := []string{
			identity.ActionRegister, identity.ActionRealNameVerified,
			identity.ActionRegister, identity.ActionRealNameFailed,
			identity.ActionRegister, identity.ActionRealNameVerified,
			identity.ActionLoginFailed, identity.ActionLogin,
			identity.ActionSessionCreated, identity.ActionEnterpriseBound,
			identity.ActionMemberAdded, identity.ActionMemberRemoved, identity.ActionSessionRevoked,
		}
		if got := f.actions(); !slices.Equal(got, want) {
			t.Fatalf("audit:\n got %v\nwant %v", got, want)
		}
		// No personal data in clear in the log.
		var details string
		rows, _ := d.Query(f.ctx, `SELECT detail || object FROM test_audit`)
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			details += s
		}
		rows.Close()
		for _, secret := range []string{"13812345678", zhang, li} {
			if strings.Contains(details, secret) {
				t.Fatalf("audit log holds %s in clear: %s", secret, details)
			}
		}

		// A change whose audit entry cannot be written does not happen (and keeps its code).
		f.now = f.now.Add(time.Minute)
		code := f.sendCode("13600000009", identity.PurposeRegister)
		f.fail = identity.ActionRegister
		if _, err := f.svc.Register(f.ctx, identity.RegisterInput{Mobile: "13600000009", Code: code, Password: pw}); err == nil {
			t.Fatal("registered without an audit entry")
		}
		f.fail = ""
		if _, err := f.svc.Register(f.ctx, identity.RegisterInput{Mobile: "13600000009", Code: code, Password: pw}); err != nil {
			t.Fatalf("register after the audit store is back: %v", err)
		}
	}, sources...)
}

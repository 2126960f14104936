package org_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/i18n"
)

var cheap = org.ArgonParams{Memory: 64, Time: 1, Threads: 1}

func TestPasswordPolicy(t *testing.T) {
	cases := []struct {
		name, user, pw string
		want           error
	}{
		{"three classes", "zhangsan", "Jinci-Temple9", nil},
		{"upper lower digit", "zhangsan", "Fenhe2River7", nil},
		{"lower digit symbol", "zhangsan", "pingyao#1997", nil},
		{"chinese counts as a class", "zhangsan", "晋祠abc12345", nil},
		{"long passphrase of one class", "zhangsan", "correcthorsebatterystaple", nil},
		{"exactly 16 lower-case", "zhangsan", "abcdefghijklmnop", nil},
		{"nine characters", "zhangsan", "Ab1!Ab1!A", org.ErrPasswordTooShort},
		{"empty", "zhangsan", "", org.ErrPasswordTooShort},
		{"too long", "zhangsan", strings.Repeat("Ab1!", 33), org.ErrPasswordTooLong},
		{"two classes", "zhangsan", "abcdef123456", org.ErrPasswordWeak},
		{"15 lower-case", "zhangsan", "abcdefghijklmno", org.ErrPasswordWeak},
		{"equals the username", "Zhang.San-2024", "zhang.san-2024", org.ErrPasswordIsUsername},
		{"common: Password123!", "zhangsan", "Password123!", org.ErrPasswordCommon},
		{"common: 12345678Aa", "zhangsan", "12345678Aa", org.ErrPasswordCommon},
		{"common: Admin@123 is short anyway", "zhangsan", "Admin@123", org.ErrPasswordTooShort},
		{"common, other case: p@ssw0rd1234", "zhangsan", "p@SSW0RD1234", org.ErrPasswordCommon},
		{"common: Admin@12345", "zhangsan", "Admin@12345", org.ErrPasswordCommon},
	}
	for _, c := range cases {
		err := org.ValidatePassword(c.user, c.pw)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			continue
		}
		e, ok := i18n.As(err)
		if !ok || e.Field != "password" || e.Msg.ZH == "" || e.Msg.EN == "" || e.HTTPStatus() != 400 {
			t.Errorf("%s: not a bilingual field error: %#v", c.name, err)
		}
	}
}

func TestHashAndVerify(t *testing.T) {
	h, err := org.HashPassword("Jinci-Temple9", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Count(h, "$") != 5 || strings.Contains(h, "=$") {
		t.Fatalf("not a PHC string: %s", h)
	}
	h2, _ := org.HashPassword("Jinci-Temple9", cheap)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	for pw, want := range map[string]bool{"Jinci-Temple9": true, "jinci-Temple9": false, "": false, "Jinci-Temple9 ": false} {
		if ok, err := org.VerifyPassword(h, pw); err != nil || ok != want {
			t.Errorf("verify %q: %v %v", pw, ok, err)
		}
	}
	if !org.NeedsRehash(h, org.DefaultArgon) || org.NeedsRehash(h, cheap) {
		t.Error("NeedsRehash compares parameters")
	}
	if !org.NeedsRehash("$2a$10$bcrypt", cheap) {
		t.Error("a foreign hash needs rehashing")
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 95 GiB: refused
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1,x=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
	} {
		if ok, err := org.VerifyPassword(bad, "x"); ok || err == nil {
			t.Errorf("malformed hash %q accepted: %v %v", bad, ok, err)
		}
	}
}

// The production default must be real Argon2id cost, not the test setting.
func TestDefaultArgonIsProductionGrade(t *testing.T) {
	p := org.DefaultArgon
	if p.Memory < 19*1024 || p.Time < 2 || p.Threads < 1 || p.SaltLen < 16 || p.KeyLen < 32 {
		t.Fatalf("DefaultArgon below OWASP minimum: %+v", p)
	}
	start := time.Now()
	h, err := org.HashPassword("Jinci-Temple9", org.ArgonParams{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("zero params did not mean the default: %s", h)
	}
	t.Logf("one production hash: %v", time.Since(start))
}

func TestLockDuration(t *testing.T) {
	want := map[int]time.Duration{5: 15 * time.Minute, 6: 30 * time.Minute, 7: time.Hour, 8: 2 * time.Hour,
		11: 16 * time.Hour, 12: 24 * time.Hour, 40: 24 * time.Hour, 1 << 30: 24 * time.Hour}
	for n, d := range want {
		if got := org.LockDuration(n); got != d {
			t.Errorf("lock after %d failures: %v, want %v", n, got, d)
		}
	}
}

func FuzzVerifyPassword(f *testing.F) {
	h, _ := org.HashPassword("Jinci-Temple9", cheap)
	f.Add(h, "Jinci-Temple9")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$", "")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		// Must never panic nor accept a hash it cannot parse; bound the work a hash may ask for.
		if strings.Contains(hash, "m=") && !strings.Contains(hash, "m=64,") {
			return
		}
		ok, err := org.VerifyPassword(hash, pw)
		if ok && err != nil {
			t.Fatal("ok with error")
		}
	})
}

package crypto_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// clock is a test clock that moves one second per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newMaster(t testing.TB) []byte {
	t.Helper()
	m := make([]byte, crypto.MasterKeySize)
	if _, err := rand.Read(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func open(t testing.TB, d *db.DB, master []byte) *crypto.Keyring {
	t.Helper()
	k, err := crypto.Open(context.Background(), d, master, newClock().now)
	if err != nil {
		t.Fatalf("open keyring: %v", err)
	}
	return k
}

func countKeys(t *testing.T, d *db.DB) map[string]int {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT purpose, COUNT(*) FROM crypto_keys GROUP BY purpose`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			t.Fatal(err)
		}
		out[p] = n
	}
	return out
}

func TestMasterKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets", "nested")
	path := filepath.Join(dir, "master.key")
	k1, err := crypto.LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != crypto.MasterKeySize {
		t.Fatalf("key of %d bytes", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
		}
		if di, _ := os.Stat(dir); di.Mode().Perm()&0o077 != 0 {
			t.Errorf("key directory mode %04o is open to others", di.Mode().Perm())
		}
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != hex.EncodeToString(k1) {
		t.Errorf("file holds %q", b)
	}
	k2, err := crypto.LoadOrCreateMasterKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %x %v, want the same key", k2, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}

	bad := map[string]string{
		"short":   strings.Repeat("ab", 16) + "\n",
		"long":    strings.Repeat("ab", 33),
		"not hex": strings.Repeat("zz", 32),
		"empty":   "",
	}
	for name, content := range bad {
		p := filepath.Join(t.TempDir(), "master.key")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := crypto.LoadOrCreateMasterKey(p)
		if !errors.Is(err, crypto.ErrMasterKeyFile) {
			t.Errorf("%s: got %v, want ErrMasterKeyFile", name, err)
		} else if e, _ := i18n.As(err); !strings.Contains(e.Msg.EN, "64 hex digits") || !strings.Contains(e.Msg.ZH, "格式错误") {
			t.Errorf("%s: unclear error %v", name, err)
		}
	}

	if runtime.GOOS != "windows" {
		p := filepath.Join(t.TempDir(), "master.key")
		if err := os.WriteFile(p, []byte(hex.EncodeToString(k1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.LoadOrCreateMasterKey(p); !errors.Is(err, crypto.ErrMasterKeyFile) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("world-readable key file: got %v", err)
		}
	}
}

func TestMasterKeyFileConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "master.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = crypto.LoadOrCreateMasterKey(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("opener %d: %x %v; opener 0: %x", i, keys[i], errs[i], keys[0])
		}
	}
}

func TestFirstStartAndReopen(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		master := newMaster(t)
		k := open(t, d, master)
		id := k.ActiveKeyID()
		if id == "" {
			t.Fatal("no active key after first start")
		}
		pubs := k.PublicKeys()
		if len(pubs) != 1 || pubs[0].ID != id || !pubs[0].Active || pubs[0].RetiredAt != nil ||
			!strings.HasPrefix(pubs[0].PEM, "-----BEGIN PUBLIC KEY-----") || pubs[0].Alg != "SM2" {
			t.Fatalf("public keys: %+v", pubs)
		}
		if got := countKeys(t, d); got[crypto.PurposeNodeSM2] != 1 || got["field-sm4"] != 1 || got["blind-index"] != 1 || len(got) != 3 {
			t.Fatalf("keys in the database: %v", got)
		}
		// The private key is stored wrapped, never in the clear.
		var enc []byte
		if err := d.QueryRow(context.Background(), `SELECT private_enc FROM crypto_keys WHERE id = ?`, id).Scan(&enc); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(enc, []byte("PRIVATE")) || len(enc) < 100 {
			t.Fatalf("private_enc looks wrong: %d bytes", len(enc))
		}

		k2 := open(t, d, master)
		if k2.ActiveKeyID() != id {
			t.Fatalf("reopen: active key %s, want %s", k2.ActiveKeyID(), id)
		}
		if got := countKeys(t, d); got[crypto.PurposeNodeSM2] != 1 {
			t.Fatalf("reopen created keys: %v", got)
		}
		if p2 := k2.PublicKeys(); len(p2) != 1 || p2[0].PEM != pubs[0].PEM || !p2[0].CreatedAt.Equal(pubs[0].CreatedAt) {
			t.Fatalf("reopen public keys %+v, first %+v", p2, pubs)
		}
	}, crypto.Migrations)
}

func TestConcurrentFirstStart(t *testing.T) {
	// Nodes sharing one database start together: exactly one key of each kind results.
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		master := newMaster(t)
		const n = 4
		ks := make([]*crypto.Keyring, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { ks[i], errs[i] = crypto.Open(context.Background(), d, master, nil) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("opener %d: %v", i, errs[i])
			}
			if ks[i].ActiveKeyID() != ks[0].ActiveKeyID() {
				t.Fatalf("openers disagree on the active key")
			}
		}
		if got := countKeys(t, d); got[crypto.PurposeNodeSM2] != 1 || got["field-sm4"] != 1 || got["blind-index"] != 1 {
			t.Fatalf("keys: %v", got)
		}
	}, crypto.Migrations)
}

func TestWrongMaster(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		open(t, d, newMaster(t))
		before := countKeys(t, d)
		_, err := crypto.Open(context.Background(), d, newMaster(t), nil)
		if !errors.Is(err, crypto.ErrMasterKeyMismatch) {
			t.Fatalf("wrong master: got %v", err)
		}
		if !strings.Contains(err.Error(), "主密钥与数据库中的密钥不匹配") || !strings.Contains(err.Error(), "master key does not match the keys in the database") {
			t.Fatalf("unclear error: %v", err)
		}
		if after := countKeys(t, d); after[crypto.PurposeNodeSM2] != before[crypto.PurposeNodeSM2] {
			t.Fatalf("a wrong master created keys: %v → %v", before, after)
		}
		if _, err := crypto.Open(context.Background(), d, []byte("short"), nil); err == nil {
			t.Fatal("a short master key must be refused")
		}
	}, crypto.Migrations)
}

func TestTamperedKeyRows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		master := newMaster(t)
		k := open(t, d, master)
		id := k.ActiveKeyID()

		// A public key swapped for an attacker's must not be accepted for this key id.
		other, _ := sm2.GenerateKey(rand.Reader)
		otherPEM := publicPEM(t, other)
		var orig string
		if err := d.QueryRow(ctx, `SELECT public_key FROM crypto_keys WHERE id = ?`, id).Scan(&orig); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `UPDATE crypto_keys SET public_key = ? WHERE id = ?`, otherPEM, id); err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.Open(ctx, d, master, nil); !errors.Is(err, crypto.ErrKeyCorrupt) {
			t.Fatalf("swapped public key: got %v, want ErrKeyCorrupt", err)
		}
		if _, err := d.Exec(ctx, `UPDATE crypto_keys SET public_key = ? WHERE id = ?`, orig, id); err != nil {
			t.Fatal(err)
		}

		// A wrapped key moved to another row does not open there (the id is associated data).
		var fieldEnc []byte
		if err := d.QueryRow(ctx, `SELECT private_enc FROM crypto_keys WHERE purpose = 'field-sm4'`).Scan(&fieldEnc); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `UPDATE crypto_keys SET private_enc = ? WHERE purpose = 'blind-index'`, fieldEnc); err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.Open(ctx, d, master, nil); !errors.Is(err, crypto.ErrKeyCorrupt) {
			t.Fatalf("moved wrapped key: got %v, want ErrKeyCorrupt", err)
		}
	}, crypto.Migrations)
}

func publicPEM(t testing.TB, k *sm2.PrivateKey) string {
	t.Helper()
	p, err := crypto.MarshalPublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignVerify(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		k := open(t, d, newMaster(t))
		msg := []byte("办件回执 2026-0001：山西省太原市")
		sig, keyID, err := k.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if keyID != k.ActiveKeyID() {
			t.Fatalf("signed by %s, active %s", keyID, k.ActiveKeyID())
		}
		if err := k.Verify(keyID, msg, sig); err != nil {
			t.Fatalf("verify: %v", err)
		}
		changed := append([]byte(nil), msg...)
		changed[len(changed)-1] ^= 1
		if err := k.Verify(keyID, changed, sig); !errors.Is(err, crypto.ErrBadSignature) {
			t.Fatalf("changed message: got %v", err)
		}
		badSig := append([]byte(nil), sig...)
		badSig[len(badSig)-3] ^= 0x40
		if err := k.Verify(keyID, msg, badSig); !errors.Is(err, crypto.ErrBadSignature) {
			t.Fatalf("changed signature: got %v", err)
		}
		if err := k.Verify("no-such-key", msg, sig); !errors.Is(err, crypto.ErrUnknownKey) {
			t.Fatalf("unknown key: got %v", err)
		}

		// Offline, from the published PEM alone.
		pemText := k.PublicKeys()[0].PEM
		if err := crypto.VerifyWithPublicKeyPEM(pemText, msg, sig); err != nil {
			t.Fatalf("offline verify: %v", err)
		}
		if err := crypto.VerifyWithPublicKeyPEM(pemText, changed, sig); !errors.Is(err, crypto.ErrBadSignature) {
			t.Fatalf("offline changed message: got %v", err)
		}
		if err := crypto.VerifyWithPublicKeyPEM("not a key", msg, sig); !errors.Is(err, crypto.ErrBadPublicKey) {
			t.Fatalf("bad PEM: got %v", err)
		}

		// Standard SM2: gmsm verifies it with the explicit default user ID.
		pub, err := crypto.ParsePublicKeyPEM(pemText)
		if err != nil {
			t.Fatal(err)
		}
		if !sm2.VerifyASN1WithSM2(pub, []byte("1234567812345678"), msg, sig) {
			t.Fatal("signature does not verify with the standard default UID")
		}
		if sm2.VerifyASN1WithSM2(pub, []byte("another user id!"), msg, sig) {
			t.Fatal("signature verifies with another UID")
		}
	}, crypto.Migrations)
}

func TestRotate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		master := newMaster(t)
		k := open(t, d, master)
		other := open(t, d, master) // a second node on the same database
		msg := []byte("audit checkpoint 42")
		sig1, id1, err := k.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		fc := k.FieldCipher()
		ct, _ := fc.Seal("13800138000", "person:1:mobile")
		bi := fc.BlindIndex("mobile", "13800138000")

		if err := k.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		id2 := k.ActiveKeyID()
		if id2 == id1 {
			t.Fatal("rotate kept the active key")
		}
		sig2, signer, err := k.Sign(msg)
		if err != nil || signer != id2 {
			t.Fatalf("after rotate signed by %s (%v), want %s", signer, err, id2)
		}
		if err := k.Verify(id1, msg, sig1); err != nil {
			t.Fatalf("old signature after rotate: %v", err)
		}
		if err := k.Verify(id2, msg, sig2); err != nil {
			t.Fatalf("new signature: %v", err)
		}
		if err := k.Verify(id2, msg, sig1); !errors.Is(err, crypto.ErrBadSignature) {
			t.Fatalf("old signature under the new key id: got %v", err)
		}
		pubs := k.PublicKeys()
		if len(pubs) != 2 || pubs[0].ID != id1 || pubs[0].Active || pubs[0].RetiredAt == nil ||
			pubs[1].ID != id2 || !pubs[1].Active || pubs[1].RetiredAt != nil || !pubs[0].RetiredAt.After(pubs[0].CreatedAt) {
			t.Fatalf("public keys after rotate: %+v", pubs)
		}

		// Rotating the signing key leaves the field keys alone.
		if pt, err := fc.Open(ct, "person:1:mobile"); err != nil || pt != "13800138000" {
			t.Fatalf("field after rotate: %q %v", pt, err)
		}
		if fc.BlindIndex("mobile", "13800138000") != bi {
			t.Fatal("blind index changed by rotate")
		}

		// The other node learns of the new key on Reload; meanwhile its signatures still verify.
		if err := other.Verify(id2, msg, sig2); !errors.Is(err, crypto.ErrUnknownKey) {
			t.Fatalf("stale node: got %v", err)
		}
		sigOld, by, _ := other.Sign(msg)
		if by != id1 || k.Verify(id1, msg, sigOld) != nil {
			t.Fatal("stale node's signature must verify under the retired key")
		}
		if err := other.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if other.ActiveKeyID() != id2 || other.Verify(id2, msg, sig2) != nil {
			t.Fatal("reload did not pick up the new key")
		}

		// A fresh start keeps both.
		k3 := open(t, d, master)
		if k3.ActiveKeyID() != id2 || k3.Verify(id1, msg, sig1) != nil || len(k3.PublicKeys()) != 2 {
			t.Fatal("reopen after rotate")
		}
	}, crypto.Migrations)
}

func TestRewrapMaster(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		oldMaster, newM := newMaster(t), newMaster(t)
		k := open(t, d, oldMaster)
		if err := k.Rotate(ctx); err != nil { // two SM2 keys, one retired
			t.Fatal(err)
		}
		msg := []byte("license 2026-77")
		sig, id, _ := k.Sign(msg)
		fc := k.FieldCipher()
		ct, _ := fc.Seal("110105194912310029", "person:9:resident_id")
		bi := fc.BlindIndex("resident-id", "110105194912310029")

		if err := k.RewrapMaster(ctx, oldMaster); err == nil {
			t.Fatal("rewrap to the same master must be refused")
		}
		if err := k.RewrapMaster(ctx, newM); err != nil {
			t.Fatal(err)
		}
		// This keyring carries on, and can reload under the new master.
		if err := k.Reload(ctx); err != nil {
			t.Fatalf("reload after rewrap: %v", err)
		}

		if _, err := crypto.Open(ctx, d, oldMaster, nil); !errors.Is(err, crypto.ErrMasterKeyMismatch) {
			t.Fatalf("old master after rewrap: got %v", err)
		}
		k2 := open(t, d, newM)
		if k2.ActiveKeyID() != id || k2.Verify(id, msg, sig) != nil || len(k2.PublicKeys()) != 2 {
			t.Fatal("signing keys changed by the master rewrap")
		}
		fc2 := k2.FieldCipher()
		if pt, err := fc2.Open(ct, "person:9:resident_id"); err != nil || pt != "110105194912310029" {
			t.Fatalf("field data after master rewrap: %q %v", pt, err)
		}
		if fc2.BlindIndex("resident-id", "110105194912310029") != bi {
			t.Fatal("blind index changed by the master rewrap")
		}
		if err := k.Rotate(ctx); err != nil {
			t.Fatalf("rotate after rewrap: %v", err)
		}
		if _, err := crypto.Open(ctx, d, newM, nil); err != nil {
			t.Fatalf("open after rewrap+rotate: %v", err)
		}

		// A node still on the old master cannot add a key wrapped under it.
		stale := k2
		if err := k.RewrapMaster(ctx, oldMaster); err != nil {
			t.Fatal(err)
		}
		if err := stale.Rotate(ctx); !errors.Is(err, crypto.ErrMasterKeyMismatch) {
			t.Fatalf("rotate by a node on a replaced master: got %v", err)
		}
		if _, err := crypto.Open(ctx, d, oldMaster, nil); err != nil {
			t.Fatalf("keyring damaged by the refused rotate: %v", err)
		}
	}, crypto.Migrations)
}

func TestRotateMasterKeyFile(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "master.key")
		m1, err := crypto.LoadOrCreateMasterKey(path)
		if err != nil {
			t.Fatal(err)
		}
		k := open(t, d, m1)
		ct, _ := k.FieldCipher().Seal("太原市迎泽区", "addr")
		if err := k.RotateMasterKeyFile(ctx, path); err != nil {
			t.Fatal(err)
		}
		m2, err := crypto.LoadOrCreateMasterKey(path)
		if err != nil || bytes.Equal(m1, m2) {
			t.Fatalf("master key file not replaced: %v", err)
		}
		if _, err := os.Stat(path + ".new"); !os.IsNotExist(err) {
			t.Fatalf("pending file left: %v", err)
		}
		k2 := open(t, d, m2)
		if pt, err := k2.FieldCipher().Open(ct, "addr"); err != nil || pt != "太原市迎泽区" {
			t.Fatalf("field after master rotation: %q %v", pt, err)
		}
		if _, err := crypto.Open(ctx, d, m1, nil); !errors.Is(err, crypto.ErrMasterKeyMismatch) {
			t.Fatalf("old master: %v", err)
		}
		// A leftover pending file (a crash mid-rotation) stops the next rotation cold.
		if err := os.WriteFile(path+".new", []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := k2.RotateMasterKeyFile(ctx, path); !errors.Is(err, crypto.ErrMasterKeyFile) {
			t.Fatalf("leftover pending file: got %v", err)
		}
		if _, err := crypto.Open(ctx, d, m2, nil); err != nil {
			t.Fatalf("refused rotation changed the keyring: %v", err)
		}
	}, crypto.Migrations)
}

func TestFieldCipher(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		master := newMaster(t)
		k := open(t, d, master)
		fc := k.FieldCipher()
		for _, pt := range []string{"", "13800138000", "山西省太原市小店区 长治路 1 号", strings.Repeat("长", 1000)} {
			ct, err := fc.Seal(pt, "person:7:address")
			if err != nil {
				t.Fatal(err)
			}
			if pt != "" && bytes.Contains(ct, []byte(pt)) {
				t.Fatal("plaintext visible in ciphertext")
			}
			got, err := fc.Open(ct, "person:7:address")
			if err != nil || got != pt {
				t.Fatalf("round trip %q: %q %v", pt, got, err)
			}
		}
		ct, _ := fc.Seal("110105194912310029", "person:7:resident_id")
		ct2, _ := fc.Seal("110105194912310029", "person:7:resident_id")
		if bytes.Equal(ct, ct2) {
			t.Fatal("equal plaintexts gave equal ciphertexts: nonce not random")
		}
		if ct[0] != 1 {
			t.Fatalf("first field key version %d, want 1", ct[0])
		}
		if _, err := fc.Open(ct, "person:8:resident_id"); !errors.Is(err, crypto.ErrDecrypt) {
			t.Fatalf("wrong aad: got %v", err)
		}
		for i := range ct {
			bad := append([]byte(nil), ct...)
			bad[i] ^= 0x01
			if _, err := fc.Open(bad, "person:7:resident_id"); !errors.Is(err, crypto.ErrDecrypt) {
				t.Fatalf("byte %d flipped: got %v", i, err)
			}
		}
		for _, n := range []int{0, 1, 13, 28, len(ct) - 1} {
			if _, err := fc.Open(ct[:n], "person:7:resident_id"); !errors.Is(err, crypto.ErrDecrypt) {
				t.Fatalf("truncated to %d: got %v", n, err)
			}
		}

		// Stable across restarts, and independent of another node's keys.
		if pt, err := open(t, d, master).FieldCipher().Open(ct, "person:7:resident_id"); err != nil || pt != "110105194912310029" {
			t.Fatalf("after reopen: %q %v", pt, err)
		}
		foreign := open(t, dbtest.SQLite(t, crypto.Migrations), master) // same master, other database
		if _, err := foreign.FieldCipher().Open(ct, "person:7:resident_id"); !errors.Is(err, crypto.ErrDecrypt) {
			t.Fatalf("another keyring opened the field: %v", err)
		}

		// Field key rotation: new data under version 2, old data still opens.
		if fc.NeedsReseal(ct) {
			t.Fatal("NeedsReseal before any rotation")
		}
		if err := k.RotateFieldKey(ctx); err != nil {
			t.Fatal(err)
		}
		ct3, _ := fc.Seal("110105194912310029", "person:7:resident_id")
		if ct3[0] != 2 || !fc.NeedsReseal(ct) || fc.NeedsReseal(ct3) {
			t.Fatalf("after field key rotation: version %d, reseal old %v", ct3[0], fc.NeedsReseal(ct))
		}
		for _, c := range [][]byte{ct, ct3} {
			if pt, err := fc.Open(c, "person:7:resident_id"); err != nil || pt != "110105194912310029" {
				t.Fatalf("open version %d: %q %v", c[0], pt, err)
			}
		}
		if pt, err := open(t, d, master).FieldCipher().Open(ct3, "person:7:resident_id"); err != nil || pt != "110105194912310029" {
			t.Fatalf("version 2 after reopen: %q %v", pt, err)
		}
		bad := append([]byte(nil), ct3...)
		bad[0] = 9
		if _, err := fc.Open(bad, "person:7:resident_id"); !errors.Is(err, crypto.ErrDecrypt) || !strings.Contains(err.Error(), "version 9") {
			t.Fatalf("unknown version: %v", err)
		}
	}, crypto.Migrations)
}

func TestBlindIndex(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		master := newMaster(t)
		fc := open(t, d, master).FieldCipher()
		a := fc.BlindIndex("resident-id", "11010519491231002X")
		if len(a) != 64 || strings.ToLower(a) != a {
			t.Fatalf("index %q: want 64 lower-case hex digits", a)
		}
		if _, err := hex.DecodeString(a); err != nil {
			t.Fatal(err)
		}
		for _, same := range []string{"11010519491231002x", " 11010519491231002X\n", "１１０１０５１９４９１２３１００２Ｘ", "110105 19491231 002X"} {
			if got := fc.BlindIndex("resident-id", same); got != a {
				t.Errorf("%q does not normalise to the same index", same)
			}
		}
		if fc.BlindIndex("mobile", "11010519491231002X") == a {
			t.Error("kinds must separate indexes")
		}
		if fc.BlindIndex("resident-id", "110105194912310037") == a {
			t.Error("different values gave one index")
		}
		if open(t, d, master).FieldCipher().BlindIndex("resident-id", "11010519491231002X") != a {
			t.Error("blind index not stable across restarts")
		}
		other := open(t, dbtest.SQLite(t, crypto.Migrations), master).FieldCipher()
		if other.BlindIndex("resident-id", "11010519491231002X") == a {
			t.Error("blind index is not keyed per keyring")
		}
		// kind || 0x00 || value is unambiguous.
		if fc.BlindIndex("ab", "c") == fc.BlindIndex("a", "bc") {
			t.Error("kind/value boundary is ambiguous")
		}
	}, crypto.Migrations)
}

func TestSM3(t *testing.T) {
	// GB/T 32905-2016, example 1.
	const abc = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
	if got := crypto.SM3Hex([]byte("abc")); got != abc {
		t.Fatalf("SM3Hex(abc) = %s", got)
	}
	one := crypto.SM3([]byte("abc"))
	parts := crypto.SM3([]byte("a"), []byte("b"), nil, []byte("c"))
	if hex.EncodeToString(one[:]) != abc || parts != one {
		t.Fatalf("SM3 parts %x, one %x", parts, one)
	}
	// Example 2: "abcd" × 16.
	if got := crypto.SM3Hex([]byte(strings.Repeat("abcd", 16))); got != "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732" {
		t.Fatalf("SM3Hex(abcd×16) = %s", got)
	}
}

func FuzzVerifyWithPublicKeyPEM(f *testing.F) {
	priv, _ := sm2.GenerateKey(rand.Reader)
	pemText, err := crypto.MarshalPublicKeyPEM(&priv.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	msg := []byte("receipt")
	sig, _ := priv.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
	f.Add(pemText, msg, sig)
	f.Add("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", msg, []byte{0x30, 0})
	f.Add("", []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, pemText string, msg, sig []byte) {
		err := crypto.VerifyWithPublicKeyPEM(pemText, msg, sig)
		if err != nil {
			if _, ok := i18n.As(err); !ok {
				t.Fatalf("untyped error: %v", err)
			}
		}
	})
}

func benchKeyring(b *testing.B) *crypto.Keyring {
	b.Helper()
	return open(b, dbtest.SQLite(b, crypto.Migrations), newMaster(b))
}

func BenchmarkSM2Sign(b *testing.B) {
	k := benchKeyring(b)
	msg := bytes.Repeat([]byte("x"), 256)
	for b.Loop() {
		if _, _, err := k.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSM2Verify(b *testing.B) {
	k := benchKeyring(b)
	msg := bytes.Repeat([]byte("x"), 256)
	sig, id, _ := k.Sign(msg)
	for b.Loop() {
		if err := k.Verify(id, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFieldSeal(b *testing.B) {
	fc := benchKeyring(b).FieldCipher()
	const pt = "山西省太原市小店区长治路 1 号"
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := fc.Seal(pt, "person:1:address"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFieldOpen(b *testing.B) {
	fc := benchKeyring(b).FieldCipher()
	const pt = "山西省太原市小店区长治路 1 号"
	ct, _ := fc.Seal(pt, "person:1:address")
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := fc.Open(ct, "person:1:address"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlindIndex(b *testing.B) {
	fc := benchKeyring(b).FieldCipher()
	for b.Loop() {
		_ = fc.BlindIndex("resident-id", "11010519491231002X")
	}
}

// copyKeys replaces the keys of tx with those of from (rows as a restore would bring them).
func copyKeys(t *testing.T, ctx context.Context, tx *db.Tx, from *db.DB) {
	t.Helper()
	if _, err := tx.Exec(ctx, `DELETE FROM crypto_keys`); err != nil {
		t.Fatal(err)
	}
	rows, err := from.Query(ctx, `SELECT id, purpose, version, alg, public_key, private_enc, created_at, retired_at, active FROM crypto_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, purpose, alg string
		var version int
		var pub sql.NullString
		var enc []byte
		var created time.Time
		var retired sql.NullTime
		var active bool
		if err := rows.Scan(&id, &purpose, &version, &alg, &pub, &enc, &created, &retired, &active); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO crypto_keys (id, purpose, version, alg, public_key, private_enc, created_at, retired_at, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, purpose, version, alg, pub, enc, created, retired, active); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckMasterKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		master := newMaster(t)
		if err := crypto.CheckMasterKey(ctx, d, master); err != nil {
			t.Fatalf("empty keyring: %v", err) // nothing the master could fail to open
		}
		k := open(t, d, master)
		if err := k.Rotate(ctx); err != nil { // a retired SM2 key and an older field key too
			t.Fatal(err)
		}
		if err := k.RotateFieldKey(ctx); err != nil {
			t.Fatal(err)
		}
		if err := crypto.CheckMasterKey(ctx, d, master); err != nil {
			t.Fatalf("the keyring's own master: %v", err)
		}
		if err := crypto.CheckMasterKey(ctx, d, newMaster(t)); !errors.Is(err, crypto.ErrMasterKeyMismatch) {
			t.Fatalf("another master: got %v, want ErrMasterKeyMismatch", err)
		}
		if err := crypto.CheckMasterKey(ctx, d, master[:16]); err == nil {
			t.Fatal("a short master key must be refused")
		}

		// Inside a transaction it sees the rows written there and not committed, as a restore
		// has them: here another node's keys, wrapped under its master.
		otherMaster := newMaster(t)
		otherDB := dbtest.SQLite(t, crypto.Migrations)
		open(t, otherDB, otherMaster)
		errRollback := errors.New("roll back")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			copyKeys(t, ctx, tx, otherDB)
			if err := crypto.CheckMasterKey(ctx, tx, master); !errors.Is(err, crypto.ErrMasterKeyMismatch) {
				t.Errorf("restored keys under this node's master: got %v, want ErrMasterKeyMismatch", err)
			}
			if err := crypto.CheckMasterKey(ctx, tx, otherMaster); err != nil {
				t.Errorf("restored keys under their own master: %v", err)
			}

			// As when the keyring loads: a public key that is not the private key's half...
			var id, pub string
			if err := tx.QueryRow(ctx, `SELECT id, public_key FROM crypto_keys WHERE purpose = ?`, crypto.PurposeNodeSM2).Scan(&id, &pub); err != nil {
				t.Fatal(err)
			}
			forged, _ := sm2.GenerateKey(rand.Reader)
			if _, err := tx.Exec(ctx, `UPDATE crypto_keys SET public_key = ? WHERE id = ?`, publicPEM(t, forged), id); err != nil {
				t.Fatal(err)
			}
			if err := crypto.CheckMasterKey(ctx, tx, otherMaster); !errors.Is(err, crypto.ErrKeyCorrupt) {
				t.Errorf("swapped public key: got %v, want ErrKeyCorrupt", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE crypto_keys SET public_key = ? WHERE id = ?`, pub, id); err != nil {
				t.Fatal(err)
			}
			// ...and some rows that do not open while others do are damage, not the wrong master.
			if _, err := tx.Exec(ctx, `UPDATE crypto_keys SET private_enc = (SELECT private_enc FROM crypto_keys WHERE purpose = 'field-sm4') WHERE purpose = 'blind-index'`); err != nil {
				t.Fatal(err)
			}
			if err := crypto.CheckMasterKey(ctx, tx, otherMaster); !errors.Is(err, crypto.ErrKeyCorrupt) {
				t.Errorf("moved wrapped key: got %v, want ErrKeyCorrupt", err)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		// It only read: the committed keyring is untouched and still opens.
		if err := crypto.CheckMasterKey(ctx, d, master); err != nil {
			t.Fatalf("after the rolled-back transaction: %v", err)
		}
		if err := k.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}, crypto.Migrations)
}

func TestDeriveKey(t *testing.T) {
	m := newMaster(t)
	a := crypto.DeriveKey(m, "dgov csrf v1", 32)
	// HMAC-SM3(master, label), truncated.
	mac := hmac.New(sm3.New, m)
	mac.Write([]byte("dgov csrf v1"))
	if want := mac.Sum(nil); !bytes.Equal(a, want) {
		t.Fatalf("DeriveKey = %x, want HMAC-SM3 %x", a, want)
	}
	if b := crypto.DeriveKey(m, "dgov csrf v1", 16); !bytes.Equal(b, a[:16]) {
		t.Fatal("a shorter key must be a prefix of the longer one")
	}
	if !bytes.Equal(a, crypto.DeriveKey(bytes.Clone(m), "dgov csrf v1", 32)) {
		t.Fatal("derivation must be deterministic")
	}
	if bytes.Equal(a, crypto.DeriveKey(m, "dgov csrf v2", 32)) || bytes.Equal(a, crypto.DeriveKey(newMaster(t), "dgov csrf v1", 32)) {
		t.Fatal("derived keys must depend on label and master")
	}
	for name, f := range map[string]func(){
		"the keyring's label": func() { crypto.DeriveKey(m, "dgov key-encryption v1", 16) },
		"no bytes":            func() { crypto.DeriveKey(m, "dgov csrf v1", 0) },
		"more than SM3 gives": func() { crypto.DeriveKey(m, "dgov csrf v1", 33) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: DeriveKey did not panic", name)
				}
			}()
			f()
		}()
	}
}

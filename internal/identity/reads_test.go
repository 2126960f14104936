package identity_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// The account's resident index is the population library's blind index of its ID number, so
// other engines' logs keyed by it find the citizen's records.
func TestResidentIndex(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		keys, err := crypto.Open(f.ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		a := f.register("13812345678", "小张")
		if idx, err := f.svc.ResidentIndex(f.ctx, a.ID); err != nil || idx != "" {
			t.Fatalf("unverified account: %q %v", idx, err)
		}
		f.verified("13912345678", "张伟", zhang)
		v := f.verified("13700000001", "李娜", li)
		idx, err := f.svc.ResidentIndex(f.ctx, v.ID)
		if err != nil || idx == "" || idx != keys.FieldCipher().BlindIndex(baselib.IndexResidentID, li) {
			t.Fatalf("verified account: %q %v", idx, err)
		}
		if _, err := f.svc.ResidentIndex(f.ctx, "nope"); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("unknown account: %v", err)
		}
	}, sources...)
}

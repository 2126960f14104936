package identity_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// BenchmarkLoginPassword measures one successful password login on SQLite with the
// production hashing cost, org.DefaultArgon (Argon2id m=19456 KiB, t=2, p=1): lookup by
// mobile (blind index), decryption of the mobile, one Argon2id verification and the login
// transaction with its audit call. The Argon2 run dominates.
func BenchmarkLoginPassword(b *testing.B) {
	ctx := context.Background()
	d := dbtest.SQLite(b, sources...)
	keys, err := crypto.Open(ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	fc := keys.FieldCipher()
	sink := identity.NewSinkGateway(d, nil)
	svc := identity.New(d, fc, baselib.New(d, fc), sink, identity.Options{Argon: org.DefaultArgon})
	const m = "13812345678"
	if err := svc.SendCode(ctx, m, identity.PurposeRegister, ""); err != nil {
		b.Fatal(err)
	}
	msgs, _ := sink.ListSink(ctx, 1)
	code := codeRE.FindStringSubmatch(msgs[0].Text)[1]
	if _, err := svc.Register(ctx, identity.RegisterInput{Mobile: m, Code: code, Password: pw}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if _, err := svc.LoginPassword(ctx, m, pw, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()*1000/float64(b.N), "ms/op")
}

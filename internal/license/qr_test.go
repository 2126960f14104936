package license_test

import (
	"bytes"
	"errors"
	"image/png"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// TestQRCode: the QR code carries the verification URL with the identifier and the short
// digest; scanning it (the URL read back) verifies the licence online, and fails once it is
// revoked. No QR decoder is among the project's dependencies, so the image is checked
// against the code's module matrix: every module, sampled at its centre in the PNG, has the
// colour the encoder gives it for that URL.
func TestQRCode(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		bl := f.businessLicence(t)
		u := f.svc.VerifyURL(bl.Content.ID, bl.ShortDigest())
		if !strings.HasPrefix(u, "https://zwfw.shanxi.gov.cn/license/verify?id=1.2.156.3005.2.YYZZ.") || !strings.HasSuffix(u, "&d="+bl.Digest[:16]) {
			t.Fatalf("verification URL %s", u)
		}
		img, err := f.svc.QRCode(bl.Content.ID, bl.ShortDigest(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatal("not a PNG")
		}
		checkQRImage(t, img, u)

		// "Scanning": the URL read back gives the identifier and digest to verify.
		id, digest, err := license.ParseVerifyURL(u)
		if err != nil || id != bl.Content.ID || digest != bl.ShortDigest() {
			t.Fatalf("ParseVerifyURL = %s %s %v", id, digest, err)
		}
		if res, err := f.svc.VerifyOnline(f.ctx, id, digest); err != nil || !res.Valid {
			t.Fatalf("scan: %+v, %v", res, err)
		}
		if _, err := f.svc.Revoke(f.ctx, f.scjg, bl.Content.ID, "申请注销登记"); err != nil {
			t.Fatal(err)
		}
		if res, err := f.svc.VerifyOnline(f.ctx, id, digest); err != nil || res.Valid || res.Code != license.CodeRevoked || res.Reason != "申请注销登记" {
			t.Fatalf("scan after revocation: %+v, %v", res, err)
		}
		for _, bad := range []string{"https://x/verify?id=1.2.3&d=00", u + "0", "https://x/verify?id=" + bl.Content.ID + "&d=zz00000000000000", "%zz"} {
			if _, _, err := license.ParseVerifyURL(bad); !errors.Is(err, license.ErrIdentifier) && !errors.Is(err, license.ErrIdentifierCheck) {
				t.Errorf("ParseVerifyURL(%q) = %v", bad, err)
			}
		}
	}, sources...)
}

// checkQRImage checks that the PNG shows the QR code of payload module for module.
func checkQRImage(t *testing.T, pngBytes []byte, payload string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	q, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bits := q.Bitmap() // modules including the quiet zone
	n := len(bits)
	size := img.Bounds().Dx()
	if size != img.Bounds().Dy() || size < n {
		t.Fatalf("image %v for %d modules", img.Bounds(), n)
	}
	// The encoder maps each pixel to the nearest module: sample at module centres.
	centre := func(m int) int { return int((float64(m) + 0.5) * float64(size) / float64(n)) }
	for y := range n {
		for x := range n {
			r, _, _, _ := img.At(centre(x), centre(y)).RGBA()
			if dark := r < 0x8000; dark != bits[y][x] {
				t.Fatalf("module (%d,%d) is dark=%v in the image, want %v", x, y, dark, bits[y][x])
			}
		}
	}
}

func FuzzParseVerifyURL(f *testing.F) {
	id, _ := license.MakeIdentifier(license.Identifier{TypeCode: "YYZZ", CreditCode: testCredit, Serial: "00000001", Version: 1})
	f.Add("https://zwfw.shanxi.gov.cn/license/verify?id=" + id + "&d=0123456789abcdef")
	f.Add("?id=" + id)
	f.Add("%")
	f.Fuzz(func(t *testing.T, s string) {
		id, d, err := license.ParseVerifyURL(s)
		if err != nil {
			return
		}
		if _, err := license.ParseIdentifier(id); err != nil || (d != "" && len(d) != 16) {
			t.Fatalf("%q gave %q %q", s, id, d)
		}
	})
}

package seal_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/seal"
)

func decision() seal.Document {
	return seal.Document{
		Title:     "准予行政许可决定书",
		Number:    "并市监许〔2026〕12号",
		Recipient: "山西晋阳食品有限公司",
		Paragraphs: []string{
			"你单位于2026年2月20日提出的食品经营许可申请，经审查，符合《中华人民共和国食品安全法》的规定，决定准予行政许可。",
			"许可证编号：JY11401050012345，有效期至2031年3月1日。<script>alert('escaped')</script>",
		},
	}
}

func TestSealedHTMLDocument(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		sl := f.official()
		f.now = t0.Add(3 * time.Hour) // 11:00 Beijing, 2 March
		page, sealed, err := f.svc.SealDocument(f.ctx, f.tyOfficer, "", decision())
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<svg", "太原市市场监督管理局</p>", "2026年3月2日", `<script type="application/ses-signature"`,
			"&lt;script&gt;alert(&#39;escaped&#39;)&lt;/script&gt;", "并市监许〔2026〕12号"} {
			if !bytes.Contains(page, []byte(want)) {
				t.Fatalf("page lacks %q", want)
			}
		}
		if bytes.Contains(page, []byte(seal.SealMarker)) || bytes.Contains(page, []byte("<script>")) {
			t.Fatal("marker left or script not escaped")
		}
		v := must[seal.Verification](t, "verify")(f.svc.VerifyHTML(f.ctx, page))
		if !v.Valid || v.Format != seal.FormatHTML || v.Seal.ID != sl.ID || !v.SignedAt.Equal(sealed.SignedAt) {
			t.Fatalf("verification %+v", v)
		}
		maker := must[*smx509.Certificate](t, "maker")(smx509.ParseCertificate(must[[]byte](t, "maker")(f.svc.MakerCertificate(f.ctx))))
		if c := must[*seal.Check](t, "offline")(seal.CheckHTML(page, []*smx509.Certificate{maker})); !c.Verified() {
			t.Fatalf("offline %+v", c)
		}

		for _, tc := range []struct {
			name, from, to string
		}{
			{"a word of the decision", "准予行政许可。", "不予行政许可。"},
			{"the seal's colour", `fill="#e60012"`, `fill="#000000"`},
			{"the date", "2026年3月2日", "2026年3月1日"},
			{"a space", "<article", " <article"},
		} {
			changed := bytes.Replace(page, []byte(tc.from), []byte(tc.to), 1)
			if bytes.Equal(changed, page) {
				t.Fatalf("%s: nothing replaced", tc.name)
			}
			v := must[seal.Verification](t, tc.name)(f.svc.VerifyHTML(f.ctx, changed))
			if v.Valid || v.DocumentIntact || !v.SignatureIntact {
				t.Fatalf("%s changed, verification %+v", tc.name, v)
			}
		}

		content, der, err := seal.SignedContent(page)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(der, sealed.Signature) {
			t.Fatal("embedded signature differs from the one returned")
		}
		_, err = f.svc.VerifyHTML(f.ctx, content)
		wantErr(t, "signature removed", err, seal.ErrNotSealed)
		i := bytes.Index(page, []byte("<script type"))
		twice := append(append(bytes.Clone(page[:i]), page[i:]...), page[i:]...)
		_, err = f.svc.VerifyHTML(f.ctx, twice)
		wantErr(t, "two signatures", err, seal.ErrNotSealed)
		// The detached form of the same sealing verifies the signed content.
		if v := must[seal.Verification](t, "detached")(f.svc.Verify(f.ctx, content, der)); !v.Valid {
			t.Fatalf("detached %+v", v)
		}

		// Sealing an HTML page of one's own: exactly one seal position, no signature yet.
		own := []byte("<!DOCTYPE html><html><body><p>通知</p><div>" + seal.SealMarker + "</div></body></html>")
		sealedOwn, _, err := f.svc.SealHTML(f.ctx, f.tyOfficer, sl.ID, "通知.html", own)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(sealedOwn), "</script>\n</body></html>") {
			t.Fatalf("signature not before </body>: %s", sealedOwn[len(sealedOwn)-60:])
		}
		if v := must[seal.Verification](t, "own page")(f.svc.VerifyHTML(f.ctx, sealedOwn)); !v.Valid {
			t.Fatalf("own page %+v", v)
		}
		for name, bad := range map[string][]byte{
			"no seal position":   []byte("<html><body>x</body></html>"),
			"two seal positions": []byte(seal.SealMarker + seal.SealMarker),
			"already sealed":     sealedOwn,
			"not UTF-8":          []byte("\xff" + seal.SealMarker),
		} {
			_, _, err := f.svc.SealHTML(f.ctx, f.tyOfficer, sl.ID, "x.html", bad)
			wantErr(t, name, err, seal.ErrDocument)
		}
		_, _, err = f.svc.SealDocument(f.ctx, f.tyOfficer, "", seal.Document{})
		if e, ok := i18n.As(err); !ok || e.Field != "title" {
			t.Fatalf("untitled document: %v", err)
		}
	})
}

func TestPNGSealInHTML(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		sp := must[seal.Seal](t, "create")(f.svc.Create(f.ctx, f.tyAdmin, seal.CreateInput{DeptID: f.dept["140100/scjg"].ID,
			Purpose: "行政审批专用章", Picture: &seal.Picture{Type: seal.PicturePNG, Data: seal.RasterSeal(160), WidthMM: 40}}))
		page, _, err := f.svc.SealDocument(f.ctx, f.tyOfficer, sp.ID, decision())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(page, []byte(`<img class="dgov-seal" alt="太原市市场监督管理局行政审批专用章" width="151" height="151" src="data:image/png;base64,`)) {
			t.Fatalf("no PNG seal in %s", page)
		}
		if v := must[seal.Verification](t, "verify")(f.svc.VerifyHTML(f.ctx, page)); !v.Valid {
			t.Fatalf("%+v", v)
		}
	})
}

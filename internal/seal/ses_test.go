package seal

import (
	"bytes"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/xml"
	"errors"
	"image/png"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

var tt0 = time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)

// chain is a seal maker and a seal made by it, without a database.
type chain struct {
	makerKey, sealKey *sm2.PrivateKey
	makerCert         *smx509.Certificate
	makerDER, certDER []byte
	eseal             []byte
}

func newChain(t testing.TB) *chain {
	t.Helper()
	c := &chain{}
	var err error
	if c.makerKey, err = sm2.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &smx509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test maker"},
		NotBefore: tt0.Add(-time.Hour), NotAfter: tt0.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: smx509.KeyUsageCertSign | smx509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
	if c.makerDER, err = smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &c.makerKey.PublicKey, c.makerKey); err != nil {
		t.Fatal(err)
	}
	if c.makerCert, err = smx509.ParseCertificate(c.makerDER); err != nil {
		t.Fatal(err)
	}
	m := &maker{cert: c.makerCert, der: c.makerDER, key: c.makerKey}
	if c.sealKey, err = sm2.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	sl := Seal{Name: "测试局", DeptName: "测试局", Division: "140100", ESID: "140100test", ValidFrom: tt0, ValidTo: tt0.Add(365 * 24 * time.Hour)}
	if c.certDER, _, err = m.issueCert(&c.sealKey.PublicKey, sl, "山西省"); err != nil {
		t.Fatal(err)
	}
	c.eseal, err = encodeSeal(sealContent{ESID: sl.ESID, Vendor: "dgov", Name: sl.Name, Type: SealTypeOrganisation, SignerCert: c.certDER,
		CreatedAt: tt0, ValidFrom: sl.ValidFrom, ValidTo: sl.ValidTo, PictureType: PictureSVG, Picture: DrawSeal("测试局", "", 42),
		WidthMM: 42, HeightMM: 42}, c.makerDER, sm2Signer(c.makerKey))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *chain) sign(t testing.TB, content []byte, at time.Time) []byte {
	t.Helper()
	d := sm3Sum(content)
	der, err := encodeSignature(c.eseal, at, d[:], "dgov:file;name=a.txt;size=1", c.certDER, sm2Signer(c.sealKey))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSignatureRoundTrip(t *testing.T) {
	c := newChain(t)
	doc := []byte("hello")
	der := c.sign(t, doc, tt0.Add(time.Hour))
	sig, err := ParseSignature(der)
	if err != nil {
		t.Fatal(err)
	}
	d := sm3Sum(doc)
	if sig.Version != 4 || !sig.SignedAt.Equal(tt0.Add(time.Hour)) || !bytes.Equal(sig.DataHash, d[:]) || sig.HasTimeStamp ||
		sig.PropertyInfo != "dgov:file;name=a.txt;size=1" || !bytes.Equal(sig.SignerCert, c.certDER) || sig.Seal.Name != "测试局" ||
		!bytes.Equal(sig.Seal.Raw, c.eseal) {
		t.Fatalf("parsed %+v", sig)
	}
	ck := checkParsed(sig, d[:], []*smx509.Certificate{c.makerCert})
	if !ck.Verified() || len(ck.Problems) != 0 {
		t.Fatalf("check %+v", ck)
	}
	// The SES_Signature's outer structure re-encodes to the same bytes (DER, no slack).
	var outer sesSignature
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	if again, err := asn1.Marshal(outer); err != nil || !bytes.Equal(again, der) {
		t.Fatalf("re-encoding differs: %v", err)
	}
}

func TestCheckFindsEachFault(t *testing.T) {
	c := newChain(t)
	doc := []byte("document")
	d := sm3Sum(doc)
	roots := []*smx509.Certificate{c.makerCert}

	// A seal picture swapped by someone who holds the seal key but not the maker's: the maker's
	// signature over the seal fails.
	var es sesSeal
	if _, err := asn1.Unmarshal(c.eseal, &es); err != nil {
		t.Fatal(err)
	}
	var info sesSealInfo
	if _, err := asn1.Unmarshal(es.SealInfo.FullBytes, &info); err != nil {
		t.Fatal(err)
	}
	info.Picture.Data = DrawSeal("另一个局", "", 42)
	infoDER, _ := asn1.Marshal(info)
	es.SealInfo = asn1.RawValue{FullBytes: infoDER}
	swapped, _ := asn1.Marshal(es)
	forged, err := encodeSignature(swapped, tt0.Add(time.Hour), d[:], "x", c.certDER, sm2Signer(c.sealKey))
	if err != nil {
		t.Fatal(err)
	}

	// Another key, certified by the same maker but not listed in the seal.
	otherKey, _ := sm2.GenerateKey(rand.Reader)
	otherCert, _, err := (&maker{cert: c.makerCert, der: c.makerDER, key: c.makerKey}).issueCert(&otherKey.PublicKey,
		Seal{Name: "x", DeptName: "x", Division: "140100", ESID: "y", ValidFrom: tt0, ValidTo: tt0.Add(time.Hour * 9000)}, "山西省")
	if err != nil {
		t.Fatal(err)
	}
	unlisted, _ := encodeSignature(c.eseal, tt0.Add(time.Hour), d[:], "x", otherCert, sm2Signer(otherKey))

	// An untrusted maker.
	other := newChain(t)

	for _, tc := range []struct {
		name    string
		der     []byte
		roots   []*smx509.Certificate
		problem string
	}{
		{"picture swapped", forged, roots, "seal.bad_seal"},
		{"key not in the seal", unlisted, roots, "seal.cert_not_in_seal"},
		{"before the seal's period", c.sign(t, doc, tt0.Add(-time.Minute)), roots, "seal.out_of_period"},
		{"after the seal's period", c.sign(t, doc, tt0.Add(400*24*time.Hour)), roots, "seal.out_of_period"},
		{"untrusted maker", other.sign(t, doc, tt0.Add(time.Hour)), roots, "seal.untrusted"},
	} {
		ck, err := CheckSignature(tc.der, doc, tc.roots)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var codes []string
		for _, p := range ck.Problems {
			codes = append(codes, p.Code)
		}
		if ck.Verified() || !strings.Contains(strings.Join(codes, ","), tc.problem) {
			t.Fatalf("%s: verified %v, problems %v", tc.name, ck.Verified(), codes)
		}
	}
}

func TestParseRejects(t *testing.T) {
	c := newChain(t)
	der := c.sign(t, []byte("x"), tt0.Add(time.Hour))
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": der[:len(der)-1],
		"trailing":  append(bytes.Clone(der), 0),
		"seal only": c.eseal,
		"too large": make([]byte, maxSESBytes+1),
	} {
		if _, err := ParseSignature(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseSignature(f *testing.F) {
	c := newChain(f)
	der := c.sign(f, []byte("seed"), tt0.Add(time.Hour))
	f.Add(der)
	f.Add(der[:len(der)/2])
	f.Add(c.eseal)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x04})
	f.Add([]byte{})
	roots := []*smx509.Certificate{c.makerCert}
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, err := ParseSignature(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// Whatever parses can be checked without panicking, and only the real one verifies.
		d := sm3Sum([]byte("seed"))
		if ck := checkParsed(sig, d[:], roots); ck.Verified() && !bytes.Equal(data, der) {
			t.Fatalf("a different signature verifies: %x", data)
		}
		if _, err := ParseSeal(sig.Seal.Raw); err != nil {
			t.Fatalf("embedded seal parsed once, not twice: %v", err)
		}
	})
}

func FuzzSignedContent(f *testing.F) {
	c := newChain(f)
	page := RenderDocument(Document{Title: "通知", Paragraphs: []string{"正文"}, Issuer: "测试局", Date: tt0})
	content := bytes.Replace(page, []byte(SealMarker), []byte("<span class=\"dgov-seal\"></span>"), 1)
	sealed := embedSignature(content, c.sign(f, content, tt0.Add(time.Hour)))
	f.Add(sealed)
	f.Add(page)
	f.Add([]byte(sigOpen + "AAAA" + sigClose))
	f.Add([]byte(sigOpen + "!!" + sigClose))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, sig, err := SignedContent(data)
		if err != nil {
			if !errors.Is(err, ErrNotSealed) {
				t.Fatalf("error not ErrNotSealed: %v", err)
			}
			return
		}
		if len(got)+len(sigOpen)+len(sigClose) > len(data) || len(sig) > len(data) {
			t.Fatalf("content %d + signature %d from %d bytes", len(got), len(sig), len(data))
		}
		if bytes.Contains(bytes.ToLower(got), []byte(sigMention)) {
			t.Fatal("the signed content still mentions a signature")
		}
	})
}

func TestDrawSeal(t *testing.T) {
	svg := DrawSeal(`太原市<市场>&"监督"管理局`, "行政审批专用章", 42)
	clean, err := CleanSVG(svg)
	if err != nil {
		t.Fatalf("the drawn seal is not a clean SVG: %v\n%s", err, svg)
	}
	if again, err := CleanSVG(clean); err != nil || !bytes.Equal(again, clean) {
		t.Fatalf("cleaning is not idempotent: %v", err)
	}
	for _, want := range []string{`width="42mm"`, `viewBox="0 0 420.00 420.00"`, ">太<", ">&lt;<", ">&amp;<", "行政审批专用章</text>", "<circle", "<path d=\"M210.00 140.70"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("seal lacks %q", want)
		}
	}
	if n := strings.Count(string(svg), "<text "); n != len([]rune(`太原市<市场>&"监督"管理局`))+1 {
		t.Errorf("%d text elements", n)
	}
}

func TestRasterSeal(t *testing.T) {
	img, err := png.Decode(bytes.NewReader(RasterSeal(200)))
	if err != nil {
		t.Fatal(err)
	}
	alpha := func(x, y int) uint32 { _, _, _, a := img.At(x, y).RGBA(); return a >> 8 }
	for _, tc := range []struct {
		name string
		x, y int
		want bool
	}{
		{"centre of the star", 100, 100, true},
		{"the ring at the top", 100, 2, true},
		{"between ring and star", 100, 40, false},
		{"a corner", 1, 1, false},
	} {
		if got := alpha(tc.x, tc.y) > 200; got != tc.want {
			t.Errorf("%s: opaque %v (alpha %d)", tc.name, got, alpha(tc.x, tc.y))
		}
	}
}

func TestCleanSVG(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"plain", `<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>`, true},
		{"xlink fragment", `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><defs><path id="a" d="M0 0"/></defs><use xlink:href="#a"/></svg>`, true},
		{"gradient url", `<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(#g)"/></svg>`, true},
		{"script", `<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>`, false},
		{"foreignObject", `<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>`, false},
		{"event handler", `<svg xmlns="http://www.w3.org/2000/svg" onload="x"/>`, false},
		{"style attribute", `<svg xmlns="http://www.w3.org/2000/svg" style="x"/>`, false},
		{"outside href", `<svg xmlns="http://www.w3.org/2000/svg"><use href="http://evil/x.svg#a"/></svg>`, false},
		{"outside url", `<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(http://evil/#g)"/></svg>`, false},
		{"second url outside", `<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(#a) url(http://x)"/></svg>`, false},
		{"javascript", `<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:x"/></svg>`, false},
		{"doctype entity", `<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>`, false},
		{"no namespace", `<svg><circle/></svg>`, false},
		{"html root", `<html xmlns="http://www.w3.org/2000/svg"/>`, false},
		{"two roots", `<svg xmlns="http://www.w3.org/2000/svg"/><svg xmlns="http://www.w3.org/2000/svg"/>`, false},
		{"unclosed", `<svg xmlns="http://www.w3.org/2000/svg"><g>`, false},
		{"processing instruction", `<svg xmlns="http://www.w3.org/2000/svg"><?php x ?></svg>`, false},
	} {
		out, err := CleanSVG([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: ok %v, err %v", tc.name, tc.ok, err)
			continue
		}
		if err == nil {
			if again, err := CleanSVG(out); err != nil || !bytes.Equal(again, out) {
				t.Errorf("%s: cleaning is not idempotent: %v\n%s\n%s", tc.name, err, out, again)
			}
		}
	}
}

func FuzzCleanSVG(f *testing.F) {
	f.Add(DrawSeal("太原市市场监督管理局", "行政审批专用章", 42))
	f.Add([]byte(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><use xlink:href="#a"/></svg>`))
	f.Add([]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>`))
	f.Add([]byte(`<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(#g)"/></svg>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CleanSVG(in)
		if err != nil {
			if !errors.Is(err, ErrPicture) {
				t.Fatalf("error not ErrPicture: %v", err)
			}
			return
		}
		again, err := CleanSVG(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %v\n%q\n%q", err, out, again)
		}
		// What comes out holds only allowed elements and attributes.
		dec := xml.NewDecoder(bytes.NewReader(out))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if st, ok := tok.(xml.StartElement); ok {
				if !svgElements[st.Name.Local] {
					t.Fatalf("element %s came out", st.Name.Local)
				}
				for _, a := range st.Attr {
					if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") || strings.Contains(strings.ToLower(a.Value), "javascript:") {
						t.Fatalf("attribute %s=%q came out", a.Name.Local, a.Value)
					}
				}
			}
		}
	})
}

// BenchmarkCheckSignature measures offline verification of a 64 KiB file: SM3 of the file,
// parsing, the signer's and the maker's SM2 signatures and the certificate chain.
func BenchmarkCheckSignature(b *testing.B) {
	c := newChain(b)
	doc := bytes.Repeat([]byte("x"), 64<<10)
	der := c.sign(b, doc, tt0.Add(time.Hour))
	roots := []*smx509.Certificate{c.makerCert}
	start := time.Now()
	for b.Loop() {
		ck, err := CheckSignature(der, doc, roots)
		if err != nil || !ck.Verified() {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

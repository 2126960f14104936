package seal

// dgov's official-document format: one self-contained HTML file (UTF-8) that shows the seal
// picture where the seal goes and carries its GB/T 38540 SES_Signature inside.
//
//   - The seal position is the comment <!--dgov:seal--> (exactly one) before sealing; sealing
//     replaces it with the seal picture (inline SVG, or a PNG as a data: image), so the
//     picture is part of what is signed.
//   - The signature is one element, inserted just before </body> (or at the end):
//     <script type="application/ses-signature" id="dgov-ses-signature">BASE64</script>
//     followed by a newline; BASE64 is the standard base64 of the SES_Signature DER. Browsers
//     do not run scripts of an unknown type; the element is data.
//   - Canonicalisation: the signed content is the file's bytes with that element and its
//     newline cut out — nothing else is normalised, so any other byte changed fails the
//     dataHash. A file with no such element, or more than one mention of
//     "application/ses-signature" in any letter case, is not a sealed document.
//
// Documents rendered here follow the layout of GB/T 9704-2012 《党政机关公文格式》: title in
// 2号小标宋 (22 pt) centred, body in 3号仿宋 (16 pt) with 28-point lines and two-character
// indents, the issuer and the date with the seal pressing on them, centred on the date, the
// date four characters from the right edge, written in Arabic numerals (§7.3.5.1).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
)

const (
	// SealMarker marks where the seal picture goes in an HTML document to seal.
	SealMarker = "<!--dgov:seal-->"
	sigOpen    = `<script type="application/ses-signature" id="dgov-ses-signature">`
	sigClose   = "</script>\n"
	sigMention = "application/ses-signature"
	maxHTML    = 8 << 20
)

// documentStyle is the one style sheet of a rendered document. It is constant, so a page
// that serves documents may allow it by hash (DocumentStyleCSP) under a strict CSP.
const documentStyle = `body{margin:0;background:#f2f2f2;color:#000;font-family:FangSong,STFangsong,"仿宋","Noto Serif CJK SC",serif}
.dgov-doc{box-sizing:border-box;max-width:210mm;min-height:297mm;margin:0 auto;padding:37mm 26mm 35mm 28mm;background:#fff;font-size:16pt;line-height:28pt}
.dgov-doc h1{margin:0 0 28pt;font-family:"FZXiaoBiaoSong-B05S",SimSun,STSong,"宋体",serif;font-size:22pt;line-height:1.4;font-weight:normal;text-align:center}
.dgov-doc .number{margin:0 0 28pt;text-align:center}
.dgov-doc p{margin:0;text-indent:2em}
.dgov-doc p.recipient{text-indent:0}
.dgov-doc .signoff{position:relative;width:max-content;margin:56pt 4em 0 auto;text-align:center}
.dgov-doc .signoff p{text-indent:0}
.dgov-seal{position:absolute;left:50%;top:50%;transform:translate(-50%,-54%);mix-blend-mode:multiply;pointer-events:none}
@media (max-width:600px){.dgov-doc{min-height:0;padding:10mm 5mm;font-size:13pt;line-height:24pt}}
@media print{body{background:#fff}.dgov-doc{margin:0}}`

// DocumentStyleCSP is the CSP source that allows a rendered document's style sheet
// ("'sha256-…'" for style-src), so a surface can serve documents without 'unsafe-inline'.
var DocumentStyleCSP = func() string {
	h := sha256.Sum256([]byte(documentStyle))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}()

// Document is an official document (公文) to render and seal, such as a decision letter or
// a notice that a service produces. Text is plain; it is escaped when rendered.
type Document struct {
	Title      string   // 标题
	Number     string   // 发文字号, e.g. 并市监审〔2026〕12号; optional
	Recipient  string   // 主送机关 or the addressee; optional
	Paragraphs []string // 正文, one entry per paragraph
	Issuer     string   // 发文机关署名; default the seal's department
	// Date is the 成文日期 (its Beijing day); zero takes the day of sealing.
	Date time.Time
}

// RenderDocument renders doc in dgov's official-document format, unsealed: the seal
// position is SealMarker, over the issuer and the date.
func RenderDocument(doc Document) []byte {
	var b bytes.Buffer
	esc := html.EscapeString
	b.WriteString("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<meta name=\"generator\" content=\"dgov seal v1\">\n")
	b.WriteString("<title>" + esc(doc.Title) + "</title>\n<style>" + documentStyle + "</style>\n</head>\n<body>\n")
	b.WriteString("<article class=\"dgov-doc\">\n<h1>" + esc(doc.Title) + "</h1>\n")
	if doc.Number != "" {
		b.WriteString("<p class=\"number\">" + esc(doc.Number) + "</p>\n")
	}
	if doc.Recipient != "" {
		b.WriteString("<p class=\"recipient\">" + esc(doc.Recipient) + "：</p>\n")
	}
	for _, p := range doc.Paragraphs {
		b.WriteString("<p>" + esc(p) + "</p>\n")
	}
	d := doc.Date.In(calendar.Beijing)
	b.WriteString("<div class=\"signoff\">\n<p class=\"issuer\">" + esc(doc.Issuer) + "</p>\n")
	b.WriteString("<p class=\"date\">" + strconv.Itoa(d.Year()) + "年" + strconv.Itoa(int(d.Month())) + "月" + strconv.Itoa(d.Day()) + "日</p>\n")
	b.WriteString(SealMarker + "\n</div>\n</article>\n</body>\n</html>\n")
	return b.Bytes()
}

// pictureHTML is the seal's picture as it appears in a document.
func pictureHTML(sl Seal) string {
	if sl.PictureType == PictureSVG {
		// The stored SVG is ours or was cleaned on upload (CleanSVG): safe inline.
		return `<span class="dgov-seal" role="img" aria-label="` + html.EscapeString(sl.Name) + `">` + string(sl.Picture) + `</span>`
	}
	px := func(mm int) string { return strconv.Itoa(mm * 9600 / 2540) } // CSS pixels at 96 per inch
	return `<img class="dgov-seal" alt="` + html.EscapeString(sl.Name) + `" width="` + px(sl.WidthMM) + `" height="` + px(sl.HeightMM) +
		`" src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(sl.Picture) + `">`
}

// SealDocument renders doc and seals it with sealID ("" the official seal of the actor's
// department): the seal picture over the issuer and date, the SES_Signature embedded. It
// returns the sealed HTML file.
func (s *Service) SealDocument(ctx context.Context, actor authz.Subject, sealID string, doc Document) ([]byte, Sealed, error) {
	if strings.TrimSpace(doc.Title) == "" || utf8.RuneCountInString(doc.Title) > 200 {
		return nil, Sealed{}, invalid("title", "seal.title", "公文标题不能为空，最多200字", "a document needs a title of at most 200 characters")
	}
	r, err := s.sealFor(ctx, actor, sealID)
	if err != nil {
		return nil, Sealed{}, err
	}
	sl, err := s.load(ctx, s.d, r.ID)
	if err != nil {
		return nil, Sealed{}, err
	}
	if strings.TrimSpace(doc.Issuer) == "" {
		doc.Issuer = sl.DeptName
	}
	if doc.Date.IsZero() {
		doc.Date = s.clock()
	}
	return s.sealHTML(ctx, actor, r, sl, doc.Title, RenderDocument(doc))
}

// SealHTML seals an HTML document that carries SealMarker once where the seal goes (and no
// signature yet), with sealID ("" the official seal of the actor's department). name names
// it in the register.
func (s *Service) SealHTML(ctx context.Context, actor authz.Subject, sealID, name string, page []byte) ([]byte, Sealed, error) {
	name, err := cleanDocName(name)
	if err != nil {
		return nil, Sealed{}, err
	}
	r, err := s.sealFor(ctx, actor, sealID)
	if err != nil {
		return nil, Sealed{}, err
	}
	sl, err := s.load(ctx, s.d, r.ID)
	if err != nil {
		return nil, Sealed{}, err
	}
	return s.sealHTML(ctx, actor, r, sl, name, page)
}

func (s *Service) sealHTML(ctx context.Context, actor authz.Subject, r signingRow, sl Seal, name string, page []byte) ([]byte, Sealed, error) {
	if len(page) > maxHTML || !utf8.Valid(page) {
		return nil, Sealed{}, ErrDocument.Wrap(fmt.Errorf("%d bytes or not UTF-8", len(page)))
	}
	if bytes.Count(page, []byte(SealMarker)) != 1 {
		return nil, Sealed{}, ErrDocument.Wrap(fmt.Errorf("want exactly one %s", SealMarker))
	}
	content := bytes.Replace(page, []byte(SealMarker), []byte(pictureHTML(sl)), 1)
	if bytes.Contains(bytes.ToLower(content), []byte(sigMention)) {
		return nil, Sealed{}, ErrDocument.Wrap(fmt.Errorf("already mentions %s", sigMention))
	}
	sealed, err := s.seal(ctx, actor, r, FormatHTML, name, content, fileProperty("html", name, len(content)))
	if err != nil {
		return nil, Sealed{}, err
	}
	return embedSignature(content, sealed.Signature), sealed, nil
}

// embedSignature puts the signature element before the last </body>, or at the end.
func embedSignature(content, sig []byte) []byte {
	el := sigOpen + base64.StdEncoding.EncodeToString(sig) + sigClose
	at := bytes.LastIndex(bytes.ToLower(content), []byte("</body>"))
	if at < 0 {
		at = len(content)
	}
	out := make([]byte, 0, len(content)+len(el))
	out = append(out, content[:at]...)
	out = append(out, el...)
	return append(out, content[at:]...)
}

// SignedContent splits a sealed HTML document into the content that was signed and the DER
// SES_Signature it carries, by the canonicalisation rule of the format. A document that is
// not sealed that way fails with ErrNotSealed.
func SignedContent(page []byte) (content, signature []byte, err error) {
	if len(page) > maxHTML {
		return nil, nil, ErrNotSealed.Wrap(fmt.Errorf("%d bytes", len(page)))
	}
	if bytes.Count(bytes.ToLower(page), []byte(sigMention)) != 1 {
		return nil, nil, ErrNotSealed
	}
	i := bytes.Index(page, []byte(sigOpen))
	if i < 0 {
		return nil, nil, ErrNotSealed
	}
	body := page[i+len(sigOpen):]
	j := bytes.Index(body, []byte(sigClose))
	if j < 0 {
		return nil, nil, ErrNotSealed
	}
	sig := make([]byte, base64.StdEncoding.DecodedLen(j))
	n, err := base64.StdEncoding.Decode(sig, body[:j])
	if err != nil {
		return nil, nil, ErrNotSealed.Wrap(err)
	}
	content = make([]byte, 0, len(page)-len(sigOpen)-j-len(sigClose))
	content = append(content, page[:i]...)
	content = append(content, body[j+len(sigClose):]...)
	return content, sig[:n], nil
}

// VerifyHTML verifies a sealed HTML document (the signature it carries, over the content by
// the format's rule), as Verify does for a file and its detached signature.
func (s *Service) VerifyHTML(ctx context.Context, page []byte) (Verification, error) {
	content, der, err := SignedContent(page)
	if err != nil {
		return Verification{}, err
	}
	sig, err := ParseSignature(der)
	if err != nil {
		return Verification{}, err
	}
	d := sm3Sum(content)
	return s.verifyParsed(ctx, sig, d[:], FormatHTML)
}

// CheckHTML verifies a sealed HTML document offline against trusted seal makers, as
// CheckSignature does for a file.
func CheckHTML(page []byte, roots []*smx509.Certificate) (*Check, error) {
	content, der, err := SignedContent(page)
	if err != nil {
		return nil, err
	}
	return CheckSignature(der, content, roots)
}

package license

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Verification outcomes, Result.Code.
const (
	CodeOK             = "ok"
	CodeMalformed      = "malformed"       // not a licence identifier or file
	CodeNotFound       = "not_found"       // no such licence on this node
	CodeDigestMismatch = "digest_mismatch" // the QR code's digest is not the licence's
	CodeTampered       = "tampered"        // the file's content does not match its digest
	CodeUntrusted      = "untrusted"       // the signing key is in no trusted list
	CodeKeyNotValid    = "key_not_valid"   // the key was not valid when the licence was issued
	CodeBadSignature   = "bad_signature"
	CodeNotYetValid    = "not_yet_valid"
	CodeExpired        = "expired"
	CodeRevoked        = "revoked"
	CodeSuperseded     = "superseded"
)

var codeMessages = map[string]i18n.Text{
	CodeOK:             i18n.T("证照真实有效", "the licence is genuine and in force"),
	CodeMalformed:      i18n.T("证照标识或文件格式无效", "not a valid licence identifier or file"),
	CodeNotFound:       i18n.T("未找到该证照", "no such licence"),
	CodeDigestMismatch: i18n.T("二维码与证照记录不符，可能是伪造的二维码", "the QR code does not match the licence on record: it may be forged"),
	CodeTampered:       i18n.T("证照内容与其摘要不符，内容已被改动", "the licence's content does not match its digest: it was altered"),
	CodeUntrusted:      i18n.T("签发机构的签章密钥不在信任列表中", "the issuer's seal key is not in a trusted list"),
	CodeKeyNotValid:    i18n.T("签发时签章密钥不在有效期内", "the seal key was not valid when the licence was issued"),
	CodeBadSignature:   i18n.T("电子签名验证失败，内容已被改动或签名是伪造的", "the signature does not verify: the content was altered or the signature forged"),
	CodeNotYetValid:    i18n.T("证照尚未生效", "the licence is not yet in force"),
	CodeExpired:        i18n.T("证照已超过有效期", "the licence has expired"),
	CodeRevoked:        i18n.T("证照已注销", "the licence has been revoked"),
	CodeSuperseded:     i18n.T("证照已换发新版本，本版本已失效", "the licence was replaced by a newer version"),
}

// offlineOK is the message of a file that verifies offline, where revocation is unknown.
var offlineOK = i18n.T("签名有效，证照在有效期内；离线核验不能确认是否已注销，请扫码在线核验",
	"the signature is valid and the licence within its validity; offline verification cannot tell whether it was revoked: scan the QR code to check online")

// Result is the outcome of a verification, online (by identifier) or offline (a file).
type Result struct {
	Valid          bool        `json:"valid"`
	Code           string      `json:"code"`
	Message        i18n.Text   `json:"message"`
	Online         bool        `json:"online"`
	ID             string      `json:"id,omitempty"`
	Status         Status      `json:"status,omitempty"`        // online: the status now
	Reason         string      `json:"reason,omitempty"`        // revoked: why
	SupersededBy   string      `json:"superseded_by,omitempty"` // superseded: by which version
	SignatureValid bool        `json:"signature_valid"`
	License        *PublicView `json:"license,omitempty"`   // masked: what a verifier may see
	SignedBy       *SignedBy   `json:"signed_by,omitempty"` // who signed, from the trust list
	CheckedAt      time.Time   `json:"checked_at"`
}

// SignedBy names the key that signed a licence, as the trust list describes it.
type SignedBy struct {
	Node       string `json:"node"`
	NodeName   string `json:"node_name,omitempty"`
	DeptName   string `json:"dept_name"`
	CreditCode string `json:"credit_code"`
	KeyID      string `json:"key_id"`
}

func (r *Result) fail(code string) Result {
	r.Valid, r.Code, r.Message = false, code, codeMessages[code]
	return *r
}

// PublicView is a licence as a verifier sees it: no data items, the holder masked.
type PublicView struct {
	ID               string     `json:"id"`
	TypeCode         string     `json:"type_code"`
	TypeName         string     `json:"type_name"`
	HolderName       string     `json:"holder_name"`
	HolderIDType     IDType     `json:"holder_id_type"`
	HolderID         string     `json:"holder_id"`
	IssuerName       string     `json:"issuer_name"`
	IssuerCreditCode string     `json:"issuer_credit_code"`
	IssuedAt         time.Time  `json:"issued_at"`
	ValidFrom        time.Time  `json:"valid_from"`
	ValidUntil       *time.Time `json:"valid_until,omitempty"`
	Version          int        `json:"version"`
}

// PublicViewOf masks c for display to anyone holding its QR code or file.
func PublicViewOf(c Content) *PublicView {
	name := c.Holder.Name
	if c.Holder.Kind == NaturalPerson {
		name = ids.MaskName(name)
	}
	return &PublicView{ID: c.ID, TypeCode: c.TypeCode, TypeName: c.TypeName, HolderName: name, HolderIDType: c.Holder.IDType,
		HolderID: maskID(c.Holder.IDType, c.Holder.IDNumber), IssuerName: c.Issuer.Name, IssuerCreditCode: c.Issuer.CreditCode,
		IssuedAt: c.IssuedAt, ValidFrom: c.ValidFrom, ValidUntil: c.ValidUntil, Version: c.Version}
}

// maskID hides a natural person's identity number (GB/T 35273 de-identification, as
// ids.MaskResident); a credit code is public and shown whole.
func maskID(t IDType, n string) string {
	switch t {
	case IDCreditCode:
		return n
	case IDResident:
		return ids.MaskResident(n)
	}
	r := []rune(n)
	if len(r) < 6 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:2]) + strings.Repeat("*", len(r)-4) + string(r[len(r)-2:])
}

// VerifyOnline verifies licence id on this node as a scanned QR code asks: the record
// exists, matches the code's digest (when given), its signature verifies with the issuer's
// key on record, and it is in force now — revoked, superseded, expired or not yet valid
// licences fail, with the reason. Anyone may ask; with the digest the answer describes the
// licence, the holder masked. The error is for failures of the node itself, never for a
// licence that does not verify.
func (s *Service) VerifyOnline(ctx context.Context, id, digest string) (Result, error) {
	now := s.clock()
	res := Result{Online: true, CheckedAt: now}
	pid, err := ParseIdentifier(id)
	if err != nil {
		return res.fail(CodeMalformed), nil
	}
	res.ID = pid.String()
	r, k, err := getRowAndKey(ctx, s.d, res.ID)
	if errors.Is(err, i18n.ErrNotFound) {
		return res.fail(CodeNotFound), nil
	}
	if err != nil {
		return res, err
	}
	digest = strings.ToLower(strings.TrimSpace(digest))
	if digest != "" && digest != shortDigest(r.digest) && digest != r.digest {
		return res.fail(CodeDigestMismatch), nil
	}
	c, err := s.open(r)
	if err != nil {
		return res, err
	}
	pub, err := s.publicKey(k.PublicKey)
	if err != nil {
		return res, ErrCorrupt.Wrap(err)
	}
	// The digest from the QR code is what entitles a verifier to see the (masked) holder:
	// an identifier typed or guessed alone only learns whether the licence is in force.
	if digest != "" {
		res.License = PublicViewOf(c)
	}
	res.SignedBy = &SignedBy{Node: s.opts.Node.ID, NodeName: s.opts.Node.Name, DeptName: k.DeptName, CreditCode: k.CreditCode, KeyID: k.KeyID}
	if !verifySM2(pub, c.Canonical(), r.signature) {
		return res.fail(CodeBadSignature), nil
	}
	res.SignatureValid = true
	if c.IssuedAt.Before(k.ValidFrom) || (k.ValidUntil != nil && !c.IssuedAt.Before(*k.ValidUntil)) {
		return res.fail(CodeKeyNotValid), nil
	}
	res.Status = statusAt(r.stored, r.ValidUntil, now)
	switch res.Status {
	case StatusRevoked:
		res.Reason = r.statusReason
		return res.fail(CodeRevoked), nil
	case StatusSuperseded:
		res.SupersededBy = r.SupersededBy
		return res.fail(CodeSuperseded), nil
	case StatusExpired:
		return res.fail(CodeExpired), nil
	}
	if now.Before(c.ValidFrom) {
		return res.fail(CodeNotYetValid), nil
	}
	res.Valid, res.Code, res.Message = true, CodeOK, codeMessages[CodeOK]
	return res, nil
}

// ---- the licence file ----

// File format and naming.
const (
	FileFormat    = "dgov-license-file/1"
	FileExt       = ".dgovlic"
	FileMediaType = "application/vnd.dgov.license+json"
	maxFile       = 1 << 20
)

// File is a downloadable licence (GB/T 36905's licence file, in JSON): the signed content,
// its digest and signature, the issuer's public key (and certificate), and where to find
// the trust list that vouches for that key. It verifies offline from itself plus a trust
// list (VerifyFile); the embedded public key is a convenience, never the basis of trust.
type File struct {
	Format    string    `json:"format"`
	Content   Content   `json:"content"`
	Digest    string    `json:"digest"` // hex SM3 of the content's canonical form
	Signature Signature `json:"signature"`
	TrustList TrustRef  `json:"trust_list"`
	VerifyURL string    `json:"verify_url,omitempty"` // the online check, as in the QR code
}

// TrustRef says which node's trust list carries the issuer's key, and where it is published.
type TrustRef struct {
	Node string `json:"node"`
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

// ErrFile is a licence file that cannot be read.
var ErrFile = &i18n.Error{Code: "license.file", Status: http.StatusBadRequest,
	Msg: i18n.T("证照文件格式无效", "not a valid licence file")}

// FileOf builds the licence file of l.
func (s *Service) FileOf(l License) File {
	return File{Format: FileFormat, Content: l.Content, Digest: l.Digest, Signature: l.Signature,
		TrustList: TrustRef{Node: s.opts.Node.ID, Name: s.opts.Node.Name, URL: s.opts.Node.TrustListURL},
		VerifyURL: s.VerifyURL(l.Content.ID, l.ShortDigest())}
}

// Encode is the file's bytes (indented JSON, for people who open it).
func (f File) Encode() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(f) // strings, ints, times, bytes: cannot fail
	return b.Bytes()
}

// FileName is the file's download name (ASCII: type, serial, version).
func (f File) FileName() string {
	id, err := ParseIdentifier(f.Content.ID)
	if err != nil {
		return "license" + FileExt
	}
	return fmt.Sprintf("%s-%s-%03d%s", id.TypeCode, id.Serial, id.Version, FileExt)
}

// DownloadFile returns the licence file of licence id to its holder or to staff who may
// read it (audited).
func (s *Service) DownloadFile(ctx context.Context, actor authz.Subject, id string) (File, error) {
	r, c, err := s.read(ctx, actor, id, "file")
	if err != nil {
		return File{}, err
	}
	l, err := s.license(ctx, r, c, s.clock())
	if err != nil {
		return File{}, err
	}
	return s.FileOf(l), nil
}

// ParseFile reads a licence file and checks its structure: format, identifier consistent
// with the content, digest and signature present. It does no cryptography: see VerifyFile.
func ParseFile(b []byte) (File, error) {
	if len(b) > maxFile {
		return File{}, ErrFile.Wrap(fmt.Errorf("%d bytes", len(b)))
	}
	var f File
	if err := strictDecode(b, &f); err != nil {
		return File{}, ErrFile.Wrap(err)
	}
	if f.Format != FileFormat {
		return File{}, ErrFile.Wrap(fmt.Errorf("format %q", f.Format))
	}
	if err := f.Content.check(); err != nil {
		return File{}, ErrFile.Wrap(err)
	}
	if len(f.Digest) != 64 || !hexOK(f.Digest) || f.Signature.KeyID == "" || len(f.Signature.Value) == 0 {
		return File{}, ErrFile.Wrap(fmt.Errorf("digest or signature missing"))
	}
	return f, nil
}

// VerifyFile verifies a licence file offline at now against trust: the content matches its
// digest; the signing key is in trust for the issuer's credit code and was valid when the
// licence was issued; the SM2 signature over the canonical content verifies with the
// trusted key (not the one the file carries); and the licence is within its validity.
// Revocation needs the issuing node: VerifyOnline.
func VerifyFile(file []byte, trust *Trust, now time.Time) Result {
	res := Result{CheckedAt: now.UTC()}
	f, err := ParseFile(file)
	if err != nil {
		return res.fail(CodeMalformed)
	}
	res.ID = f.Content.ID
	res.License = PublicViewOf(f.Content)
	canon := f.Content.Canonical()
	if crypto.SM3Hex(canon) != strings.ToLower(f.Digest) {
		return res.fail(CodeTampered)
	}
	k, ok := trust.lookup(f.Signature.KeyID, f.Content.Issuer.CreditCode)
	if !ok || (len(f.Signature.PublicKey) > 0 && !bytes.Equal(f.Signature.PublicKey, k.PublicKey)) {
		return res.fail(CodeUntrusted)
	}
	res.SignedBy = &SignedBy{Node: k.node.ID, NodeName: k.node.Name, DeptName: k.DeptName, CreditCode: k.CreditCode, KeyID: k.KeyID}
	if f.Content.IssuedAt.Before(k.ValidFrom) || (k.ValidUntil != nil && !f.Content.IssuedAt.Before(*k.ValidUntil)) {
		return res.fail(CodeKeyNotValid)
	}
	if !verifySM2(k.pub, canon, f.Signature.Value) {
		return res.fail(CodeBadSignature)
	}
	res.SignatureValid = true
	switch {
	case now.Before(f.Content.ValidFrom):
		return res.fail(CodeNotYetValid)
	case f.Content.ValidUntil != nil && !now.Before(*f.Content.ValidUntil):
		return res.fail(CodeExpired)
	}
	res.Valid, res.Code, res.Message = true, CodeOK, offlineOK
	return res
}

// VerifyFile verifies a licence file offline against this node's trust (its own issuers and
// every imported list), at the service's clock: the verification page's upload.
func (s *Service) VerifyFile(ctx context.Context, file []byte) (Result, error) {
	t, err := s.Trust(ctx)
	if err != nil {
		return Result{}, err
	}
	return VerifyFile(file, t, s.clock()), nil
}

package seal

// The GB/T 38540-2019 data structures (《信息安全技术 安全电子签章密码技术规范》, version 4 of
// the format first published as GM/T 0031-2014), DER-encoded with encoding/asn1:
//
//	电子印章数据格式 (the seal):
//	SESeal ::= SEQUENCE {
//	  eSealInfo   SES_SealInfo,          -- 印章信息
//	  cert        OCTET STRING,          -- 制章者证书
//	  signAlgID   OBJECT IDENTIFIER,     -- 签名算法标识 (SM2 with SM3)
//	  signedValue BIT STRING }           -- 制章者对 eSealInfo 的签名
//	SES_SealInfo ::= SEQUENCE {
//	  header SES_Header, esID IA5String, property SES_ESPropertyInfo,
//	  picture SES_ESPictureInfo, extDatas ExtensionDatas OPTIONAL }
//	SES_Header ::= SEQUENCE { ID IA5String ("ES"), version INTEGER (4), Vid IA5String }
//	SES_ESPropertyInfo ::= SEQUENCE {
//	  type INTEGER, name UTF8String, certListType INTEGER,
//	  certList SES_CertList,             -- certListType 1: SEQUENCE OF OCTET STRING (certificates)
//	                                     --              2: SEQUENCE OF CertDigestObj
//	  createDate GeneralizedTime, validStart GeneralizedTime, validEnd GeneralizedTime }
//	SES_ESPictureInfo ::= SEQUENCE { type IA5String, data OCTET STRING, width INTEGER, height INTEGER }
//
//	电子签章数据格式 (a sealing):
//	SES_Signature ::= SEQUENCE {
//	  toSign TBS_Sign, cert OCTET STRING (签章者证书), signatureAlgID OBJECT IDENTIFIER,
//	  signature BIT STRING, timeStamp [0] BIT STRING OPTIONAL }
//	TBS_Sign ::= SEQUENCE {
//	  version INTEGER, eseal SESeal, timeInfo GeneralizedTime,
//	  dataHash BIT STRING (SM3 of the document), propertyInfo IA5String,
//	  extDatas [0] EXPLICIT ExtensionDatas OPTIONAL }
//
// The maker's signature is over the DER of eSealInfo and the signer's over the DER of
// toSign, both SM2 with SM3 and the default user ID (GB/T 32918.2, GM/T 0009), as the
// verifiers in use (and the standard's examples) compute them. Signatures are checked over
// the bytes received, never over a re-encoding.

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Constants of the format.
const (
	sesHeaderID     = "ES"
	sesVersion      = 4 // GB/T 38540-2019
	certListCerts   = 1 // certListType: the certificates themselves
	certListDigests = 2 // certListType: digests of the certificates
	// SealTypeOrganisation is the property type of a unit's seal (单位印章), which every
	// department seal is.
	SealTypeOrganisation = 1
	// maxSESBytes bounds what the parsers accept (a seal picture is a few KiB to a few
	// hundred; certificates under one).
	maxSESBytes = 2 << 20
)

// oidSM2WithSM3 is the SM2 signature with SM3 (GM/T 0006-2012: 1.2.156.10197.1.501).
var oidSM2WithSM3 = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}

// ErrMalformed is a seal or signature that is not the GB/T 38540 structure.
var ErrMalformed = &i18n.Error{Code: "seal.malformed", Status: http.StatusBadRequest, Field: "signature",
	Msg: i18n.T("电子签章数据格式错误（应为 GB/T 38540 SES_Signature 的 DER 编码）",
		"the electronic signature is malformed (want the DER of a GB/T 38540 SES_Signature)")}

func malformed(format string, args ...any) error {
	return ErrMalformed.Wrap(fmt.Errorf(format, args...))
}

type sesHeader struct {
	ID      string `asn1:"ia5"`
	Version int
	VID     string `asn1:"ia5"`
}

type sesPropertyInfo struct {
	Type         int
	Name         string `asn1:"utf8"`
	CertListType int
	CertList     asn1.RawValue // a CHOICE told apart by CertListType
	CreateDate   time.Time     `asn1:"generalized"`
	ValidStart   time.Time     `asn1:"generalized"`
	ValidEnd     time.Time     `asn1:"generalized"`
}

type sesPictureInfo struct {
	Type   string `asn1:"ia5"`
	Data   []byte
	Width  int
	Height int
}

type sesExtData struct {
	ExtnID    asn1.ObjectIdentifier
	Critical  bool `asn1:"optional"` // DEFAULT FALSE: DER leaves it out when false
	ExtnValue []byte
}

type sesSealInfo struct {
	Header   sesHeader
	ESID     string `asn1:"ia5"`
	Property sesPropertyInfo
	Picture  sesPictureInfo
	ExtDatas []sesExtData `asn1:"optional"`
}

type sesSeal struct {
	SealInfo    asn1.RawValue
	Cert        []byte
	SignAlgID   asn1.ObjectIdentifier
	SignedValue asn1.BitString
}

type tbsSign struct {
	Version      int
	ESeal        asn1.RawValue
	TimeInfo     time.Time `asn1:"generalized"`
	DataHash     asn1.BitString
	PropertyInfo string        `asn1:"ia5"`
	ExtDatas     asn1.RawValue `asn1:"optional,explicit,tag:0"`
}

type sesSignature struct {
	ToSign         asn1.RawValue
	Cert           []byte
	SignatureAlgID asn1.ObjectIdentifier
	Signature      asn1.BitString
	TimeStamp      asn1.RawValue `asn1:"optional,tag:0"`
}

type certDigestObj struct {
	Type  string `asn1:"printable"`
	Value []byte
}

// CertDigest is one entry of a seal's certificate digest list (certListType 2).
type CertDigest struct {
	Type  string `json:"type"` // the digest algorithm's name
	Value []byte `json:"value"`
}

// SESSeal is a parsed electronic seal (SESeal).
type SESSeal struct {
	Raw          []byte       `json:"-"` // the DER of the whole SESeal
	ESID         string       `json:"es_id"`
	Vendor       string       `json:"vendor"`  // header Vid
	Version      int          `json:"version"` // header version
	Type         int          `json:"type"`    // 1: 单位印章
	Name         string       `json:"name"`
	CertListType int          `json:"cert_list_type"`
	Certs        [][]byte     `json:"-"` // DER certificates of the keys that may use the seal (type 1)
	CertDigests  []CertDigest `json:"cert_digests,omitempty"`
	CreatedAt    time.Time    `json:"created_at"`
	ValidFrom    time.Time    `json:"valid_from"`
	ValidTo      time.Time    `json:"valid_to"`
	PictureType  string       `json:"picture_type"` // "SVG", "PNG" …
	// Picture is as the seal carries it: from a signature that is not Trusted it is outside
	// input — pass an SVG through CleanSVG before showing it inline.
	Picture     []byte                `json:"-"`
	WidthMM     int                   `json:"width_mm"`
	HeightMM    int                   `json:"height_mm"`
	MakerCert   []byte                `json:"-"` // DER certificate of the seal maker
	SignAlg     asn1.ObjectIdentifier `json:"-"`
	SignedValue []byte                `json:"-"`
	sealInfo    []byte                // the DER of eSealInfo, which the maker signed
}

// SESSignature is a parsed electronic signature (SES_Signature): one sealing of one document.
type SESSignature struct {
	Raw          []byte                `json:"-"`
	Version      int                   `json:"version"`
	Seal         SESSeal               `json:"seal"`
	SignedAt     time.Time             `json:"signed_at"`
	DataHash     []byte                `json:"data_hash"` // SM3 of the signed content
	PropertyInfo string                `json:"property_info"`
	SignerCert   []byte                `json:"-"`
	SignatureAlg asn1.ObjectIdentifier `json:"-"`
	Value        []byte                `json:"-"`
	HasTimeStamp bool                  `json:"has_time_stamp"`
	toSign       []byte
}

// parseExact decodes one DER element into v and refuses trailing bytes.
func parseExact(der []byte, v any, what string) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return malformed("%s: %w", what, err)
	}
	if len(rest) != 0 {
		return malformed("%s: %d trailing bytes", what, len(rest))
	}
	return nil
}

func bitBytes(b asn1.BitString, what string) ([]byte, error) {
	if b.BitLength != 8*len(b.Bytes) {
		return nil, malformed("%s: %d bits is not whole bytes", what, b.BitLength)
	}
	return b.Bytes, nil
}

// ParseSeal parses the DER of a GB/T 38540 SESeal (version 4). It checks the structure only;
// Check verifies signatures.
func ParseSeal(der []byte) (*SESSeal, error) {
	if len(der) > maxSESBytes {
		return nil, malformed("seal of %d bytes", len(der))
	}
	var s sesSeal
	if err := parseExact(der, &s, "SESeal"); err != nil {
		return nil, err
	}
	var info sesSealInfo
	if err := parseExact(s.SealInfo.FullBytes, &info, "SES_SealInfo"); err != nil {
		return nil, err
	}
	if info.Header.ID != sesHeaderID {
		return nil, malformed("header id %q, want %q", info.Header.ID, sesHeaderID)
	}
	if info.Header.Version != sesVersion {
		return nil, malformed("seal version %d, want %d (GB/T 38540-2019)", info.Header.Version, sesVersion)
	}
	value, err := bitBytes(s.SignedValue, "seal signedValue")
	if err != nil {
		return nil, err
	}
	p := info.Property
	out := &SESSeal{
		Raw: der, ESID: info.ESID, Vendor: info.Header.VID, Version: info.Header.Version,
		Type: p.Type, Name: p.Name, CertListType: p.CertListType,
		CreatedAt: p.CreateDate.UTC(), ValidFrom: p.ValidStart.UTC(), ValidTo: p.ValidEnd.UTC(),
		PictureType: info.Picture.Type, Picture: info.Picture.Data, WidthMM: info.Picture.Width, HeightMM: info.Picture.Height,
		MakerCert: s.Cert, SignAlg: s.SignAlgID, SignedValue: value, sealInfo: s.SealInfo.FullBytes,
	}
	switch p.CertListType {
	case certListCerts:
		if err := parseExact(p.CertList.FullBytes, &out.Certs, "certList"); err != nil {
			return nil, err
		}
	case certListDigests:
		var ds []certDigestObj
		if err := parseExact(p.CertList.FullBytes, &ds, "certDigestList"); err != nil {
			return nil, err
		}
		for _, d := range ds {
			out.CertDigests = append(out.CertDigests, CertDigest(d))
		}
	default:
		return nil, malformed("certListType %d", p.CertListType)
	}
	if out.ValidTo.Before(out.ValidFrom) {
		return nil, malformed("seal valid from %s to %s", out.ValidFrom, out.ValidTo)
	}
	return out, nil
}

// ParseSignature parses the DER of a GB/T 38540 SES_Signature (version 4), the detached
// signature of a sealed document. It checks the structure only; Check verifies it.
func ParseSignature(der []byte) (*SESSignature, error) {
	if len(der) > maxSESBytes {
		return nil, malformed("signature of %d bytes", len(der))
	}
	var s sesSignature
	if err := parseExact(der, &s, "SES_Signature"); err != nil {
		return nil, err
	}
	var tbs tbsSign
	if err := parseExact(s.ToSign.FullBytes, &tbs, "TBS_Sign"); err != nil {
		return nil, err
	}
	if tbs.Version != sesVersion {
		return nil, malformed("signature version %d, want %d", tbs.Version, sesVersion)
	}
	seal, err := ParseSeal(tbs.ESeal.FullBytes)
	if err != nil {
		return nil, err
	}
	hash, err := bitBytes(tbs.DataHash, "dataHash")
	if err != nil {
		return nil, err
	}
	value, err := bitBytes(s.Signature, "signature")
	if err != nil {
		return nil, err
	}
	return &SESSignature{
		Raw: der, Version: tbs.Version, Seal: *seal, SignedAt: tbs.TimeInfo.UTC(), DataHash: hash,
		PropertyInfo: tbs.PropertyInfo, SignerCert: s.Cert, SignatureAlg: s.SignatureAlgID, Value: value,
		HasTimeStamp: len(s.TimeStamp.FullBytes) > 0, toSign: s.ToSign.FullBytes,
	}, nil
}

// ---- encoding ----

// sealContent is what a seal says, to encode.
type sealContent struct {
	ESID, Vendor, Name            string
	Type                          int
	SignerCert                    []byte // DER: the one certificate of the seal's key
	CreatedAt, ValidFrom, ValidTo time.Time
	PictureType                   string
	Picture                       []byte
	WidthMM, HeightMM             int
}

// signer signs msg with SM2-SM3 (default user ID), returning the ASN.1 DER signature.
type signer func(msg []byte) ([]byte, error)

func sm2Signer(key *sm2.PrivateKey) signer {
	return func(msg []byte) ([]byte, error) {
		return key.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
	}
}

// encodeSeal builds the DER SESeal of c, signed by the maker.
func encodeSeal(c sealContent, makerCert []byte, sign signer) ([]byte, error) {
	certList, err := asn1.Marshal([][]byte{c.SignerCert})
	if err != nil {
		return nil, fmt.Errorf("encode certList: %w", err)
	}
	info := sesSealInfo{
		Header: sesHeader{ID: sesHeaderID, Version: sesVersion, VID: c.Vendor},
		ESID:   c.ESID,
		Property: sesPropertyInfo{Type: c.Type, Name: c.Name, CertListType: certListCerts,
			CertList:   asn1.RawValue{FullBytes: certList},
			CreateDate: c.CreatedAt.UTC(), ValidStart: c.ValidFrom.UTC(), ValidEnd: c.ValidTo.UTC()},
		Picture: sesPictureInfo{Type: c.PictureType, Data: c.Picture, Width: c.WidthMM, Height: c.HeightMM},
	}
	infoDER, err := asn1.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode SES_SealInfo: %w", err)
	}
	sig, err := sign(infoDER)
	if err != nil {
		return nil, fmt.Errorf("sign seal: %w", err)
	}
	der, err := asn1.Marshal(sesSeal{SealInfo: asn1.RawValue{FullBytes: infoDER}, Cert: makerCert, SignAlgID: oidSM2WithSM3,
		SignedValue: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		return nil, fmt.Errorf("encode SESeal: %w", err)
	}
	return der, nil
}

// encodeSignature builds the DER SES_Signature over a document whose SM3 digest is digest.
func encodeSignature(eseal []byte, at time.Time, digest []byte, property string, signerCert []byte, sign signer) ([]byte, error) {
	tbs, err := asn1.Marshal(tbsSign{Version: sesVersion, ESeal: asn1.RawValue{FullBytes: eseal}, TimeInfo: at.UTC(),
		DataHash: asn1.BitString{Bytes: digest, BitLength: 8 * len(digest)}, PropertyInfo: property})
	if err != nil {
		return nil, fmt.Errorf("encode TBS_Sign: %w", err)
	}
	sig, err := sign(tbs)
	if err != nil {
		return nil, fmt.Errorf("sign document: %w", err)
	}
	der, err := asn1.Marshal(sesSignature{ToSign: asn1.RawValue{FullBytes: tbs}, Cert: signerCert, SignatureAlgID: oidSM2WithSM3,
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		return nil, fmt.Errorf("encode SES_Signature: %w", err)
	}
	return der, nil
}

// ---- offline verification ----

// Problem is one reason a verification failed or deserves attention.
type Problem struct {
	Code string    `json:"code"`
	Msg  i18n.Text `json:"message"`
}

// Check is the verification of a sealed document that needs nothing but the document, its
// signature and the seal makers one trusts (GB/T 38540-2019, 电子签章验证流程): the format;
// the signer's certificate is one the seal lists; the signature over TBS_Sign; the maker's
// signature over the seal and the seal's period at the time of sealing; the signer's
// certificate chains to a trusted maker and was valid then; the document's digest.
type Check struct {
	Signature *SESSignature `json:"-"`
	// SignatureIntact: the signer's signature verifies with a certificate the seal lists, and
	// the maker's signature over the seal verifies.
	SignatureIntact bool `json:"signature_intact"`
	// DocumentIntact: the content's SM3 digest is the one signed (the document did not change).
	DocumentIntact bool `json:"document_intact"`
	// Trusted: the maker's certificate is one of the trusted roots and the signer's certificate
	// chains to it.
	Trusted bool `json:"trusted"`
	// InPeriod: the sealing time lies within the seal's period and the signer certificate's.
	InPeriod      bool      `json:"in_period"`
	ContentSM3    []byte    `json:"content_sm3"`
	ESID          string    `json:"es_id"`     // the seal's code, from the signature
	SealName      string    `json:"seal_name"` // the seal's name, from the signature
	CertSubject   string    `json:"cert_subject"`
	CertSerial    string    `json:"cert_serial"` // lower-case hex
	MakerSubject  string    `json:"maker_subject"`
	KeyID         string    `json:"key_id"`
	SignedAt      time.Time `json:"signed_at"`
	Problems      []Problem `json:"problems,omitempty"`
	signerCertObj *smx509.Certificate
}

func (c *Check) problem(code, zh, en string) {
	c.Problems = append(c.Problems, Problem{Code: code, Msg: i18n.T(zh, en)})
}

// Verified reports whether every check passed.
func (c *Check) Verified() bool {
	return c.SignatureIntact && c.DocumentIntact && c.Trusted && c.InPeriod
}

// CheckSignature verifies the DER SES_Signature sesDER over content, trusting the seal makers
// whose certificates are in roots (nil trusts none: everything but Trusted is still checked).
// A signature that is not the structure fails with ErrMalformed; every other failure is
// reported in the Check.
func CheckSignature(sesDER, content []byte, roots []*smx509.Certificate) (*Check, error) {
	sig, err := ParseSignature(sesDER)
	if err != nil {
		return nil, err
	}
	d := sm3Sum(content)
	return checkParsed(sig, d[:], roots), nil
}

// checkParsed checks a parsed signature against the SM3 digest of the content.
func checkParsed(sig *SESSignature, digest []byte, roots []*smx509.Certificate) *Check {
	c := &Check{Signature: sig, SignedAt: sig.SignedAt, ContentSM3: digest, ESID: sig.Seal.ESID, SealName: sig.Seal.Name}
	c.DocumentIntact = len(sig.DataHash) == len(digest) && string(sig.DataHash) == string(digest)
	if !c.DocumentIntact {
		c.problem("seal.document_changed", "文档已被修改：内容的 SM3 杂凑值与签章时不同", "the document changed: its SM3 digest differs from the one sealed")
	}

	signer, signerOK := c.checkSigner(sig)
	maker, makerOK := c.checkMaker(&sig.Seal)
	c.SignatureIntact = signerOK && makerOK

	if signer != nil {
		inSeal := !sig.SignedAt.Before(sig.Seal.ValidFrom) && !sig.SignedAt.After(sig.Seal.ValidTo)
		inCert := !sig.SignedAt.Before(signer.NotBefore) && !sig.SignedAt.After(signer.NotAfter)
		c.InPeriod = inSeal && inCert
		if !inSeal {
			c.problem("seal.out_of_period", "签章时间不在印章有效期内", "the sealing time is outside the seal's period of validity")
		}
		if !inCert {
			c.problem("seal.cert_out_of_period", "签章时间不在签章者证书有效期内", "the sealing time is outside the signer certificate's validity")
		}
	}

	if signer != nil && maker != nil {
		for _, root := range roots {
			if root == nil || !root.Equal(maker) {
				continue
			}
			// The maker must be trusted and must have issued the signer's certificate.
			if signer.CheckSignatureFrom(maker) == nil {
				c.Trusted = true
			}
			break
		}
		if !c.Trusted {
			c.problem("seal.untrusted", "印章不是受信任的制章者制作的", "the seal was not made by a trusted seal maker")
		}
	}
	return c
}

// checkSigner checks the signer's certificate against the seal and the signature over
// TBS_Sign, and returns the certificate when it parses.
func (c *Check) checkSigner(sig *SESSignature) (*smx509.Certificate, bool) {
	cert, err := smx509.ParseCertificate(sig.SignerCert)
	if err != nil {
		c.problem("seal.signer_cert", "签章者证书无法解析", "the signer's certificate cannot be parsed")
		return nil, false
	}
	c.signerCertObj = cert
	c.CertSubject = cert.Subject.String()
	c.CertSerial = fmt.Sprintf("%x", cert.SerialNumber)
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		c.problem("seal.signer_key", "签章者证书的公钥不是 SM2 公钥", "the signer's certificate does not hold an SM2 key")
		return cert, false
	}
	if id, err := keyIDOf(pub); err == nil {
		c.KeyID = id
	}
	ok = true
	listed := false
	for _, x := range sig.Seal.Certs {
		if string(x) == string(sig.SignerCert) {
			listed = true
		}
	}
	if !listed {
		ok = false
		c.problem("seal.cert_not_in_seal", "签章者证书不在电子印章的证书列表中", "the signer's certificate is not one the seal lists")
	}
	if !sig.SignatureAlg.Equal(oidSM2WithSM3) {
		c.problem("seal.algorithm", "不支持的签名算法", "unsupported signature algorithm")
		return cert, false
	}
	if !sm2.VerifyASN1WithSM2(pub, nil, sig.toSign, sig.Value) {
		c.problem("seal.bad_signature", "电子签章的签名值验证失败", "the signature over the sealing does not verify")
		ok = false
	}
	return cert, ok
}

// checkMaker checks the maker's signature over the seal and returns the maker's certificate.
func (c *Check) checkMaker(s *SESSeal) (*smx509.Certificate, bool) {
	maker, err := smx509.ParseCertificate(s.MakerCert)
	if err != nil {
		c.problem("seal.maker_cert", "制章者证书无法解析", "the seal maker's certificate cannot be parsed")
		return nil, false
	}
	c.MakerSubject = maker.Subject.String()
	pub, ok := maker.PublicKey.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) || !s.SignAlg.Equal(oidSM2WithSM3) {
		c.problem("seal.maker_key", "制章者的签名算法或公钥不受支持", "the seal maker's algorithm or key is not supported")
		return maker, false
	}
	if !sm2.VerifyASN1WithSM2(pub, nil, s.sealInfo, s.SignedValue) {
		c.problem("seal.bad_seal", "电子印章的制章者签名验证失败（印章被篡改）", "the seal maker's signature does not verify (the seal was altered)")
		return maker, false
	}
	return maker, true
}

// keyIDOf is the id of an SM2 public key: hex of the first 16 bytes of the SM3 digest of its
// PKIX DER, so that anyone holding the key can compute it.
func keyIDOf(pub *ecdsa.PublicKey) (string, error) {
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	return keyIDOfDER(der), nil
}

func keyIDOfDER(pkix []byte) string {
	d := sm3Sum(pkix)
	return fmt.Sprintf("%x", d[:16])
}

var errNotSM2 = errors.New("not an SM2 key")

// Package license is the trusted electronic-licence engine (可信电子证照, issue 6 A3) after
// GB/T 36901–36906-2018: licence types with their templates of data items, issuance signed
// by the issuing department's SM2 seal key, a licence identifier with its ISO 7064 check
// character (GB/T 36904), revocation, renewal and change as new versions with history,
// online verification by identifier (what a scanned QR code opens), offline verification of
// a downloaded licence file against a trust list, trust lists that nodes sign and exchange
// for mutual recognition, and use instead of paper (用证授权): a holder authorises a
// department to read one licence for one purpose, and sees every use.
//
// Signing keys belong to the seal engine: this package signs through Signer and keeps, per
// key that ever signed a licence, its public half and the department it belongs to — that
// is what the node's trust list publishes. Personal data never lies in clear in its tables:
// the signed content (which carries the holder's ID number and the data items) is sealed
// with SM4-GCM (crypto.FieldCipher) and the holder is found by a keyed blind index.
package license

import (
	"context"
	"crypto/ecdsa"
	"embed"
	"net/http"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the licence engine's tables. They reference no other engine's tables.
var Migrations = db.Migrations("license", migrationFiles, "migrations")

// Permissions of the licence engine.
const (
	// PermIssue issues, renews and changes licences of the holder's own department.
	PermIssue authz.Permission = "license.issue"
	// PermRevoke revokes licences of the holder's own department.
	PermRevoke authz.Permission = "license.revoke"
	// PermRead reads and lists the licences the holder's own department issued.
	PermRead authz.Permission = "license.read"
	// PermInspect reads any licence issued within the holder's division (supervision, audit).
	PermInspect authz.Permission = "license.inspect"
	// PermUse reads a licence under a holder's authorisation to the holder's own department.
	PermUse authz.Permission = "license.use"
	// PermAdmin defines licence types, registers issuing departments, imports trust lists and
	// retires issuer keys.
	PermAdmin authz.Permission = "license.admin"
)

// RegisterPermissions gives the licence engine's permissions to the foundation roles:
// officers issue, revoke, read their department's licences and use licences authorised to
// it; organisation and system administrators administer; auditors inspect.
func RegisterPermissions(p *authz.Policy) {
	p.Grant(authz.RoleOfficer, PermIssue, PermRevoke, PermRead, PermUse)
	p.Grant(authz.RoleOrgAdmin, PermRead, PermAdmin)
	p.Grant(authz.RoleSysAdmin, PermInspect, PermAdmin)
	p.Grant(authz.RoleAuditor, PermInspect)
}

// HolderKind is what kind of subject holds a licence (GB/T 36903 持证主体类别).
type HolderKind string

const (
	NaturalPerson HolderKind = "natural" // 自然人
	LegalPerson   HolderKind = "legal"   // 法人和其他组织
	// AnyHolder is for types only: a type either kind may hold (不动产权证书).
	AnyHolder HolderKind = "any"
)

// HolderKindNames are the kinds' display names.
var HolderKindNames = map[HolderKind]i18n.Text{
	NaturalPerson: i18n.T("自然人", "natural person"),
	LegalPerson:   i18n.T("法人和其他组织", "legal person or organisation"),
	AnyHolder:     i18n.T("自然人或法人", "natural or legal person"),
}

// IDType is the code type of a holder's identity (GB/T 36903-2018 持证主体代码类型). The
// values are those of the national government-service platform's 证件类型 code list that
// e-licence catalogues use: 111 居民身份证 … and 001 for the unified social credit code.
type IDType string

const (
	IDResident   IDType = "111" // 居民身份证 (GB 11643)
	IDPassport   IDType = "414" // 普通护照
	IDTaiwan     IDType = "511" // 台湾居民来往大陆通行证
	IDHKMacao    IDType = "516" // 港澳居民来往内地通行证
	IDForeignPR  IDType = "553" // 外国人永久居留身份证
	IDCreditCode IDType = "001" // 统一社会信用代码 (GB 32100)
)

// IDTypeInfo describes an identity code type.
type IDTypeInfo struct {
	Name i18n.Text
	Kind HolderKind
}

// IDTypes are the identity code types a holder may have.
var IDTypes = map[IDType]IDTypeInfo{
	IDResident:   {i18n.T("居民身份证", "resident identity card"), NaturalPerson},
	IDPassport:   {i18n.T("普通护照", "passport"), NaturalPerson},
	IDTaiwan:     {i18n.T("台湾居民来往大陆通行证", "mainland travel permit for Taiwan residents"), NaturalPerson},
	IDHKMacao:    {i18n.T("港澳居民来往内地通行证", "mainland travel permit for Hong Kong and Macao residents"), NaturalPerson},
	IDForeignPR:  {i18n.T("外国人永久居留身份证", "foreign permanent resident ID card"), NaturalPerson},
	IDCreditCode: {i18n.T("统一社会信用代码", "unified social credit code"), LegalPerson},
}

// Status is where a licence stands.
type Status string

const (
	StatusValid      Status = "valid"      // 有效
	StatusRevoked    Status = "revoked"    // 已注销（吊销、撤销）
	StatusExpired    Status = "expired"    // 已过期: valid, but past its validity (computed on read)
	StatusSuperseded Status = "superseded" // 已换发: a later version (renewal or change) replaced it
)

// StatusNames are the statuses' display names.
var StatusNames = map[Status]i18n.Text{
	StatusValid:      i18n.T("有效", "valid"),
	StatusRevoked:    i18n.T("已注销", "revoked"),
	StatusExpired:    i18n.T("已过期", "expired"),
	StatusSuperseded: i18n.T("已换发", "superseded"),
}

// Holder is who a licence is issued to.
type Holder struct {
	Name     string     `json:"name"`
	Kind     HolderKind `json:"kind"`
	IDType   IDType     `json:"id_type"`
	IDNumber string     `json:"id_number"`
}

// Issuer is a department registered to issue licences (发证机构).
type Issuer struct {
	DeptID     string `json:"dept_id"`
	Name       string `json:"name"`
	CreditCode string `json:"credit_code"` // GB 32100
	Division   string `json:"division"`    // GB/T 2260
	// Kind is the department's kind (e.g. 市场监督管理局): a type names the kinds that issue it.
	Kind      string    `json:"kind"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Signature is an SM2 signature made by a department's seal key (the contract with the
// seal engine; the app adapts seal.Signature, which has the same fields).
type Signature struct {
	KeyID     string    `json:"key_id"`
	PublicKey []byte    `json:"public_key"`     // PKIX DER of the SM2 public key
	Cert      []byte    `json:"cert,omitempty"` // DER X.509 certificate of the seal key, if any
	Value     []byte    `json:"value"`          // ASN.1 DER SM2 signature
	SignedAt  time.Time `json:"signed_at"`
}

// License is a stored licence: its signed content and where it stands.
type License struct {
	Content      Content    `json:"content"`
	Status       Status     `json:"status"` // effective now: expired is computed
	StatusReason string     `json:"status_reason,omitempty"`
	StatusAt     *time.Time `json:"status_at,omitempty"`
	SupersededBy string     `json:"superseded_by,omitempty"`
	Digest       string     `json:"digest"` // hex SM3 of the canonical content
	Signature    Signature  `json:"signature"`
	IssuerDeptID string     `json:"issuer_dept_id"`
	CaseRef      string     `json:"case_ref,omitempty"` // the service case it was issued for
	IssuedBy     string     `json:"issued_by"`          // "staff:<id>", "system:<id>"
}

// ShortDigest is the part of the digest a QR code carries.
func (l License) ShortDigest() string { return shortDigest(l.Digest) }

// Summary is a licence in a list: no personal data beyond the holder's name.
type Summary struct {
	ID           string     `json:"id"`
	TypeCode     string     `json:"type_code"`
	TypeName     string     `json:"type_name"`
	Version      int        `json:"version"`
	HolderName   string     `json:"holder_name"`
	HolderKind   HolderKind `json:"holder_kind"`
	IssuerDeptID string     `json:"issuer_dept_id"`
	IssuerName   string     `json:"issuer_name"`
	IssuedAt     time.Time  `json:"issued_at"`
	ValidFrom    time.Time  `json:"valid_from"`
	ValidUntil   *time.Time `json:"valid_until,omitempty"` // nil: 长期有效
	Status       Status     `json:"status"`
	SupersededBy string     `json:"superseded_by,omitempty"`
}

// Event is one line of a licence's history.
type Event struct {
	LicenseID string    `json:"license_id"`
	Version   int       `json:"version"`
	Action    string    `json:"action"` // EventIssued …
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason,omitempty"`
	RelatedID string    `json:"related_id,omitempty"` // the version it replaced or was replaced by
	At        time.Time `json:"at"`
}

// History actions.
const (
	EventIssued     = "issued"
	EventRenewed    = "renewed" // 换证 (延续): a new version with a new validity
	EventChanged    = "changed" // 变更: a new version with changed data
	EventSuperseded = "superseded"
	EventRevoked    = "revoked"
)

// EventNames name the events of a licence's history, for its pages.
var EventNames = map[string]i18n.Text{
	EventIssued:     i18n.T("签发", "issued"),
	EventRenewed:    i18n.T("换证（延续）", "renewed"),
	EventChanged:    i18n.T("变更", "changed"),
	EventSuperseded: i18n.T("被新版本替换", "superseded"),
	EventRevoked:    i18n.T("注销", "revoked"),
}

// UseGrant is a holder's authorisation for a department to use one licence (用证授权).
type UseGrant struct {
	ID         string     `json:"id"`
	LicenseID  string     `json:"license_id"`
	TypeName   string     `json:"type_name"`
	HolderName string     `json:"holder_name"`
	DeptID     string     `json:"dept_id"`
	DeptName   string     `json:"dept_name"`
	Division   string     `json:"division"`
	Purpose    string     `json:"purpose"`
	Ref        string     `json:"ref,omitempty"` // the application it is for, if named
	ValidUntil time.Time  `json:"valid_until"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	Revoked    bool       `json:"revoked"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Uses       int        `json:"uses"`
}

// Live reports whether g may be used at now.
func (g UseGrant) Live(now time.Time) bool { return !g.Revoked && now.Before(g.ValidUntil) }

// Use is one reading of a licence under an authorisation (用证记录), shown to the holder.
type Use struct {
	ID        string    `json:"id"`
	GrantID   string    `json:"grant_id"`
	LicenseID string    `json:"license_id"`
	TypeName  string    `json:"type_name"`
	DeptID    string    `json:"dept_id"`
	DeptName  string    `json:"dept_name"`
	Officer   string    `json:"officer"` // "staff:<id>"
	Purpose   string    `json:"purpose"`
	Ref       string    `json:"ref,omitempty"`
	At        time.Time `json:"at"`
}

// ---- what the engine needs of others ----

// Signer signs with a department's seal key. seal.Service implements it (through an
// adapter in the app, the two engines not importing each other).
type Signer interface {
	// SignAs signs data (SM2 with SM3, GB/T 32918 / GM/T 0009 with the default user ID) with
	// the seal key of department deptID.
	SignAs(ctx context.Context, deptID string, data []byte) (Signature, error)
}

// NodeSigner signs with the node's SM2 key (trust lists); *crypto.Keyring has it.
type NodeSigner interface {
	Sign(msg []byte) (sig []byte, keyID string, err error)
}

// HolderID is an identity document number.
type HolderID struct {
	Type   IDType
	Number string
}

// Holders tells which identity a signed-in citizen or enterprise holds: the real-name
// verified ID number of a citizen account, the credit code of an enterprise. The app adapts
// identity. An account without a verified identity answers an *i18n.Error (e.g. forbidden).
type Holders interface {
	HolderID(ctx context.Context, s authz.Subject) (HolderID, error)
}

// Department names a department a holder authorises; the app adapts org.
type Department struct {
	ID       string
	Name     string
	Division string
}

// Departments looks departments up by id (i18n.ErrNotFound when unknown).
type Departments interface {
	Department(ctx context.Context, id string) (Department, error)
}

// AuditFunc records one event inside the transaction that makes the change (as org's).
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Node names this dgov node in trust lists and licence files.
type Node struct {
	ID       string `json:"id"`                 // stable, e.g. "sx" or the province's division code
	Name     string `json:"name"`               // e.g. 山西省一体化政务服务平台
	Division string `json:"division,omitempty"` // GB/T 2260 of the node's scope
	// TrustListURL is where the node publishes its signed trust list.
	TrustListURL string `json:"trust_list_url,omitempty"`
}

// Deps are the services the engine works with.
type Deps struct {
	DB          *db.DB
	Policy      *authz.Policy       // with RegisterPermissions' grants
	Fields      *crypto.FieldCipher // seals the content, makes the holder's blind index
	Signer      Signer              // department seal keys
	NodeKey     NodeSigner          // the node's key, signs trust lists
	Holders     Holders
	Departments Departments
}

// Options configure a Service.
type Options struct {
	Audit AuditFunc // called inside the transaction of every change and every staff read
	Now   func() time.Time
	Node  Node
	// VerifyURL is the absolute URL of the public verification page that QR codes open;
	// the identifier and short digest are added as ?id=…&d=….
	VerifyURL string
	// MaxGrantDays caps how long a use authorisation may last; default 365.
	MaxGrantDays int
}

// Audit actions.
const (
	ActionIssue       = "license.issue"
	ActionRenew       = "license.renew"
	ActionChange      = "license.change"
	ActionRevoke      = "license.revoke"
	ActionRead        = "license.read" // a staff member read a licence's content
	ActionGrant       = "license.use_grant"
	ActionGrantRevoke = "license.use_grant.revoke"
	ActionUse         = "license.use"
	ActionType        = "license.type.define"
	ActionIssuer      = "license.issuer.register"
	ActionTrustImport = "license.trust_list.import"
	ActionKeyRetire   = "license.issuer_key.retire"
)

// Event subjects, published in the transaction of the change.
const (
	EventSubjectIssued  = "dgov.license.issued" // also for renewals and changes (PreviousID set)
	EventSubjectRevoked = "dgov.license.revoked"
	EventSubjectUsed    = "dgov.license.used"
)

// Notice is the payload of the engine's events. It carries no personal data.
type Notice struct {
	ID           string `json:"id"`
	TypeCode     string `json:"type_code"`
	Version      int    `json:"version"`
	PreviousID   string `json:"previous_id,omitempty"`
	IssuerDeptID string `json:"issuer_dept_id"`
	HolderKind   string `json:"holder_kind"`
	CaseRef      string `json:"case_ref,omitempty"`
	Action       string `json:"action"`
	DeptID       string `json:"dept_id,omitempty"` // used: the department that used it
	Ref          string `json:"ref,omitempty"`
}

// Errors of this package; compare with errors.Is. Out-of-scope actions return
// i18n.ErrForbidden itself.
var (
	ErrState = &i18n.Error{Code: "license.state", Status: http.StatusConflict,
		Msg: i18n.T("证照当前状态不允许此操作", "the licence's status does not allow this")}
	ErrUnknownType = &i18n.Error{Code: "license.type.unknown", Status: http.StatusBadRequest, Field: "type_code",
		Msg: i18n.T("未知的证照类型", "unknown licence type")}
	ErrNotIssuer = &i18n.Error{Code: "license.issuer.unknown", Status: http.StatusForbidden, Field: "issuer_dept_id",
		Msg: i18n.T("该部门不是登记的发证机构", "this department is not a registered issuing authority")}
	ErrTypeNotIssued = &i18n.Error{Code: "license.issuer.type", Status: http.StatusForbidden, Field: "type_code",
		Msg: i18n.T("该发证机构不签发此类证照", "this authority does not issue this licence type")}
	ErrHolderKind = &i18n.Error{Code: "license.holder.kind", Status: http.StatusBadRequest, Field: "holder.id_type",
		Msg: i18n.T("持证主体类别与证照类型不符", "the holder's kind does not match the licence type")}
	ErrReasonRequired = &i18n.Error{Code: "license.reason_required", Status: http.StatusBadRequest, Field: "reason",
		Msg: i18n.T("请说明理由", "give the reason")}
	ErrNotUsable = &i18n.Error{Code: "license.not_usable", Status: http.StatusConflict,
		Msg: i18n.T("证照已失效（注销、换发或过期），不能使用", "the licence is no longer in force (revoked, superseded or expired)")}
	ErrNoGrant = &i18n.Error{Code: "license.no_grant", Status: http.StatusForbidden,
		Msg: i18n.T("持证人未授权本部门使用该证照", "the holder has not authorised your department to use this licence")}
	ErrHolderUnknown = &i18n.Error{Code: "license.holder.unverified", Status: http.StatusForbidden,
		Msg: i18n.T("请先完成实名认证", "verify your real name first")}
	ErrKeyMismatch = &i18n.Error{Code: "license.key_mismatch", Status: http.StatusInternalServerError,
		Msg: i18n.T("签章密钥与登记的不一致", "the seal key does not match the one on record")}
	ErrSignature = &i18n.Error{Code: "license.signature", Status: http.StatusInternalServerError,
		Msg: i18n.T("签章服务返回的签名无效", "the seal service returned an invalid signature")}
	ErrCorrupt = &i18n.Error{Code: "license.corrupt", Status: http.StatusInternalServerError,
		Msg: i18n.T("证照记录已损坏或被篡改", "a licence record is corrupt or was tampered with")}
)

func invalid(field, code, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(http.StatusBadRequest, code, zh, en, args...).WithField(field)
}

// Service holds the licence engine's rules. It is safe for concurrent use.
type Service struct {
	d       *db.DB
	policy  *authz.Policy
	fc      *crypto.FieldCipher
	signer  Signer
	nodeKey NodeSigner
	holders Holders
	depts   Departments
	opts    Options
	pubKeys sync.Map // PKIX DER (string) → *ecdsa.PublicKey, parsed once
}

// New returns the licence service.
func New(deps Deps, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxGrantDays <= 0 {
		opts.MaxGrantDays = 365
	}
	if opts.Node.ID == "" {
		opts.Node.ID = "dgov"
	}
	return &Service{d: deps.DB, policy: deps.Policy, fc: deps.Fields, signer: deps.Signer, nodeKey: deps.NodeKey,
		holders: deps.Holders, depts: deps.Departments, opts: opts}
}

func (s *Service) clock() time.Time { return db.Now(s.opts.Now()) }

// Node is the node this service speaks for.
func (s *Service) Node() Node { return s.opts.Node }

// publicKey parses a PKIX DER SM2 public key, caching the result.
func (s *Service) publicKey(der []byte) (*ecdsa.PublicKey, error) {
	if v, ok := s.pubKeys.Load(string(der)); ok {
		return v.(*ecdsa.PublicKey), nil
	}
	pub, err := parsePublicKey(der)
	if err != nil {
		return nil, err
	}
	s.pubKeys.Store(string(der), pub)
	return pub, nil
}

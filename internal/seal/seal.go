// Package seal is the electronic-seal engine (电子印章, issue 6 item 4): one seal per
// department (and per special purpose, 专用章) in the GB/T 38540-2019 structure — a picture,
// an SM2 key pair and a certificate of that key, all bound together by the seal maker's
// signature — and the sealing of documents with it.
//
//   - The seal maker (制章者) is the node's seal CA: an SM2 key and a self-signed SM2
//     certificate made at first use (gmsm smx509), its key sealed by crypto.FieldCipher like
//     every private key an engine keeps. It certifies each seal's key (an X.509 SM2
//     certificate, so a verifier can chain a sealing to the node without the database) and
//     signs each SES_Seal. One CA per node, rather than one per department: a department
//     cannot make seals, only use the one made for it, as with physical seals.
//   - A seal is created, rotated (a new key pair, certificate and SES_Seal; the old seal is
//     retired, kept, and still verifies what it sealed) and revoked, by organisation
//     administrators whose division contains the department's.
//   - Officers of the department seal: any file with a detached SES_Signature (DER), or
//     dgov's official-document format (HTML with the seal picture at the seal position and the
//     SES_Signature embedded; see html.go). Every sealing is audited and kept in the sealing
//     register (seal_uses).
//   - Anyone verifies: who sealed (department, seal, key, certificate), when, whether the
//     document changed, and whether the seal was in force at that time.
//   - SignAs signs raw data with a department's official seal key for the licence engine
//     (SM2 with SM3, default user ID), returning the key, its certificate and the signature.
//
// Private keys never leave the process unsealed: rows hold PKCS#8 sealed by FieldCipher
// (SM4-GCM under a field key that the master key wraps), bound to the row and column.
package seal

import (
	"context"
	"embed"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the seal engine's tables. They reference no other engine's tables.
var Migrations = db.Migrations("seal", migrationFiles, "migrations")

// Permissions of the seal engine.
const (
	// PermManage creates, rotates and revokes the seals of departments within the holder's division.
	PermManage authz.Permission = "seal.manage"
	// PermUse seals documents with the seals of the holder's own department.
	PermUse authz.Permission = "seal.use"
	// PermRead lists seals and their sealing register within the holder's division.
	PermRead authz.Permission = "seal.read"
)

// RegisterPermissions gives the seal engine's permissions to the foundation roles:
// organisation administrators manage seals (and read them); officers seal with their own
// department's seals; auditors and system administrators read.
func RegisterPermissions(p *authz.Policy) {
	p.Grant(authz.RoleOrgAdmin, PermManage, PermRead)
	p.Grant(authz.RoleOfficer, PermUse, PermRead)
	p.Grant(authz.RoleAuditor, PermRead)
	p.Grant(authz.RoleSysAdmin, PermRead)
}

// Status is where a seal stands.
type Status string

const (
	StatusActive  Status = "active"  // 启用: seals documents
	StatusRetired Status = "retired" // 已更换: replaced by a rotation; verifies what it sealed
	StatusRevoked Status = "revoked" // 已吊销: ended; what it sealed before still verifies, marked so
)

// StatusNames are the statuses' display names.
var StatusNames = map[Status]i18n.Text{
	StatusActive:  i18n.T("启用", "active"),
	StatusRetired: i18n.T("已更换", "retired"),
	StatusRevoked: i18n.T("已吊销", "revoked"),
}

// Picture types of a seal (SES_ESPictureInfo.type).
const (
	PictureSVG = "SVG"
	PicturePNG = "PNG"
)

// Seal is one department seal (one key pair). Private material is never part of it.
type Seal struct {
	ID          string `json:"id"`
	ESID        string `json:"es_id"` // 印章编码: the esID of the SES_Seal
	DeptID      string `json:"dept_id"`
	DeptName    string `json:"dept_name"`
	Division    string `json:"division"`
	Name        string `json:"name"`    // 印章名称, e.g. 太原市市场监督管理局行政审批专用章
	Purpose     string `json:"purpose"` // "" for the official seal (公章), else e.g. 行政审批专用章
	Type        int    `json:"type"`    // GB/T 38540 property type (1: 单位印章)
	Version     int    `json:"version"` // 1, 2 … per department and purpose, one per rotation
	Status      Status `json:"status"`
	KeyID       string `json:"key_id"`
	PublicKey   []byte `json:"public_key"` // PKIX DER of the SM2 public key
	Cert        []byte `json:"cert"`       // DER X.509 certificate of the key, issued by the seal maker
	CertSerial  string `json:"cert_serial"`
	PictureType string `json:"picture_type"` // PictureSVG or PicturePNG
	Picture     []byte `json:"picture"`
	WidthMM     int    `json:"width_mm"`
	HeightMM    int    `json:"height_mm"`
	// ESeal is the DER SES_Seal (GB/T 38540), signed by the seal maker.
	ESeal        []byte     `json:"eseal"`
	ValidFrom    time.Time  `json:"valid_from"`
	ValidTo      time.Time  `json:"valid_to"`
	CreatedBy    string     `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	RetiredAt    *time.Time `json:"retired_at,omitempty"`
	ReplacedBy   string     `json:"replaced_by,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokedBy    string     `json:"revoked_by,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
}

// InForce reports whether the seal may seal at t: active and within its period.
func (s Seal) InForce(t time.Time) bool {
	return s.Status == StatusActive && !t.Before(s.ValidFrom) && t.Before(s.ValidTo)
}

// InForceAt reports whether the seal was in force at t, as far as its history tells: within
// its period, not yet retired and not yet revoked.
func (s Seal) InForceAt(t time.Time) bool {
	if t.Before(s.ValidFrom) || !t.Before(s.ValidTo) {
		return false
	}
	if s.RetiredAt != nil && !t.Before(*s.RetiredAt) {
		return false
	}
	return s.RevokedAt == nil || t.Before(*s.RevokedAt)
}

// Signature is a raw SM2 signature made by SignAs, with what a verifier needs. Its fields and
// JSON names are those of license.Signature (issue 6 contract); the app converts one to the other.
type Signature struct {
	KeyID     string    `json:"key_id"`
	PublicKey []byte    `json:"public_key"`     // PKIX DER of the SM2 public key
	Cert      []byte    `json:"cert,omitempty"` // DER X.509 certificate of the seal key
	Value     []byte    `json:"value"`          // ASN.1 DER SM2 signature
	SignedAt  time.Time `json:"signed_at"`
}

// Departments is what the seal engine needs of the organisation engine; *org.Service has it.
type Departments interface {
	GetDepartment(ctx context.Context, actor authz.Subject, id string) (org.Department, error)
}

// AuditFunc records one event inside the transaction that makes the change (as catalog's).
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Options configures a Service.
type Options struct {
	Audit AuditFunc        // called inside the transaction of every change and every sealing
	Now   func() time.Time // default time.Now
	// Validity is the period of a new seal and its certificate; default 5 years.
	Validity time.Duration
	// Vendor is the SES_Header Vid (厂商标识); default "dgov".
	Vendor string
	// MakerName is the common name of the seal maker's certificate; default
	// "山西省数字政府 电子印章制作系统".
	MakerName string
	// Province names the province in certificates; default "山西省".
	Province string
}

// Audit actions.
const (
	ActionMakerCreated = "seal.maker_created"
	ActionCreate       = "seal.create"
	ActionRotate       = "seal.rotate"
	ActionRevoke       = "seal.revoke"
	ActionUse          = "seal.use"
)

// Event subjects (published in the transaction of the change).
const (
	EventCreated = "dgov.seal.created"
	EventRotated = "dgov.seal.rotated"
	EventRevoked = "dgov.seal.revoked"
)

// Errors of this package. Out-of-scope actions return i18n.ErrForbidden itself.
var (
	ErrNoSeal = &i18n.Error{Code: "seal.none", Status: http.StatusNotFound,
		Msg: i18n.T("该部门没有启用的电子印章", "the department has no electronic seal in force")}
	ErrExists = &i18n.Error{Code: "seal.exists", Status: http.StatusConflict,
		Msg: i18n.T("该部门已有同类启用的印章；如需换新请使用“更换”", "the department already has such a seal in force; rotate it instead")}
	ErrNotInForce = &i18n.Error{Code: "seal.not_in_force", Status: http.StatusConflict,
		Msg: i18n.T("印章已更换、已吊销或不在有效期内", "the seal was rotated, revoked or is outside its period")}
	ErrInactiveDept = &i18n.Error{Code: "seal.dept_inactive", Status: http.StatusConflict, Field: "dept_id",
		Msg: i18n.T("部门已停用", "the department is inactive")}
	ErrReasonRequired = &i18n.Error{Code: "seal.reason_required", Status: http.StatusBadRequest, Field: "reason",
		Msg: i18n.T("吊销印章须说明理由（最多200字）", "a revocation must give its reason (at most 200 characters)")}
	ErrNotSealed = &i18n.Error{Code: "seal.not_sealed", Status: http.StatusBadRequest, Field: "document",
		Msg: i18n.T("文档中没有（或不止一个）电子签章", "the document carries no electronic signature, or more than one")}
	ErrDocument = &i18n.Error{Code: "seal.document", Status: http.StatusBadRequest, Field: "document",
		Msg: i18n.T("文档格式不符合要求", "the document is not in the expected form")}
)

func invalid(field, code, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(http.StatusBadRequest, code, zh, en, args...).WithField(field)
}

// Service holds the seal engine's rules.
type Service struct {
	d      *db.DB
	policy *authz.Policy
	depts  Departments
	fc     *crypto.FieldCipher
	opts   Options

	makerMu sync.Mutex
	maker   *maker // loaded or created at first use

	keys sync.Map // seal id → *sm2.PrivateKey: a seal's key never changes, so it is cached once opened
}

// New returns the seal service. policy must carry RegisterPermissions' grants and nest
// divisions as divisions.Contains does; depts is the organisation service; fc seals the
// private keys (Keyring.FieldCipher).
func New(d *db.DB, policy *authz.Policy, depts Departments, fc *crypto.FieldCipher, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Validity <= 0 {
		opts.Validity = 5 * 365 * 24 * time.Hour
	}
	if opts.Vendor == "" {
		opts.Vendor = "dgov"
	}
	if opts.MakerName == "" {
		opts.MakerName = "山西省数字政府 电子印章制作系统"
	}
	if opts.Province == "" {
		opts.Province = "山西省"
	}
	return &Service{d: d, policy: policy, depts: depts, fc: fc, opts: opts}
}

func (s *Service) clock() time.Time { return db.Now(s.opts.Now()) }

func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if s.opts.Audit == nil {
		return nil
	}
	if err := s.opts.Audit(ctx, tx, actor, action, object, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

func sm3Sum(b []byte) [32]byte { return crypto.SM3(b) }

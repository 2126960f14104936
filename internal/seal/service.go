package seal

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// CreateInput makes a department's seal.
type CreateInput struct {
	DeptID string
	// Purpose is "" for the department's official seal (公章), or the purpose of a special
	// seal, ending in 章 (e.g. 行政审批专用章). A department has one seal in force per purpose.
	Purpose string
	// Name is the seal's name (印章名称); default the department's name followed by the purpose.
	Name string
	// Picture is an uploaded picture; nil draws the standard round seal (DrawSeal).
	Picture *Picture
	// ValidFor is the seal's period from now; 0 takes Options.Validity.
	ValidFor time.Duration
}

// RotateInput replaces a seal's key pair.
type RotateInput struct {
	Picture  *Picture      // nil keeps the picture
	ValidFor time.Duration // 0 takes Options.Validity
}

func staffOrSystem(actor authz.Subject) error {
	switch actor.Kind {
	case "":
		return i18n.ErrUnauthorized
	case authz.Staff, authz.System:
		return nil
	}
	return i18n.ErrForbidden
}

func cleanText(field, label, v string, maxRunes int) (string, error) {
	v = strings.TrimSpace(v)
	if utf8.RuneCountInString(v) > maxRunes || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return "", i18n.Errorf(http.StatusBadRequest, "seal."+field, label+"最多 %d 个字，且不能含控制字符",
			"the "+field+" is at most %d characters, without control characters", maxRunes).WithField(field)
	}
	return v, nil
}

// diameterOf is the standard diameter of a department's seal (国发〔1999〕25号).
func diameterOf(division string) int {
	if d, ok := divisions.Lookup(division); ok && d.Level == divisions.Province {
		return DiameterProvinceMM
	}
	return DiameterLocalMM
}

// Create makes a department's seal: a new SM2 key pair, its certificate from the seal maker,
// the picture, and the SES_Seal binding them, signed by the maker. Only an organisation
// administrator whose division contains the department's may.
func (s *Service) Create(ctx context.Context, actor authz.Subject, in CreateInput) (Seal, error) {
	if err := staffOrSystem(actor); err != nil {
		return Seal{}, err
	}
	dep, err := s.depts.GetDepartment(ctx, actor, strings.TrimSpace(in.DeptID))
	if err != nil {
		return Seal{}, err
	}
	if err := s.policy.Authorize(actor, PermManage, dep.DivisionCode); err != nil {
		return Seal{}, err
	}
	if !dep.Active {
		return Seal{}, ErrInactiveDept
	}
	purpose, err := cleanText("purpose", "用途", in.Purpose, 16)
	if err != nil {
		return Seal{}, err
	}
	if purpose != "" && !strings.HasSuffix(purpose, "章") {
		return Seal{}, invalid("purpose", "seal.purpose", "专用章的用途应以“章”结尾，如“行政审批专用章”", "a special seal's purpose ends in 章, e.g. 行政审批专用章")
	}
	name := in.Name
	if strings.TrimSpace(name) == "" {
		name = dep.Name + purpose
	}
	if name, err = cleanText("name", "印章名称", name, 40); err != nil {
		return Seal{}, err
	}
	diameter := diameterOf(dep.DivisionCode)
	pic := Picture{Type: PictureSVG, Data: DrawSeal(dep.Name, purpose, diameter), WidthMM: diameter, HeightMM: diameter}
	if in.Picture != nil {
		if pic, err = cleanPicture(*in.Picture, diameter); err != nil {
			return Seal{}, err
		}
	}
	m, err := s.getMaker(ctx)
	if err != nil {
		return Seal{}, err
	}
	now := s.clock()
	sl := Seal{ID: db.NewID(), DeptID: dep.ID, DeptName: dep.Name, Division: dep.DivisionCode, Name: name, Purpose: purpose,
		Type: SealTypeOrganisation, Status: StatusActive, PictureType: pic.Type, Picture: pic.Data, WidthMM: pic.WidthMM,
		HeightMM: pic.HeightMM, CreatedBy: actor.String(), CreatedAt: now}
	sl.ESID = esID(sl)
	var privEnc []byte
	if sl, privEnc, err = s.mint(m, sl, in.ValidFor); err != nil {
		return Seal{}, err
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if sl.Version, err = nextVersion(ctx, tx, sl.DeptID, sl.Purpose); err != nil {
			return fmt.Errorf("seal version: %w", err)
		}
		if err := insertSeal(ctx, tx, sl, privEnc); err != nil {
			if db.IsUniqueViolation(err) {
				return ErrExists.Wrap(err)
			}
			return fmt.Errorf("insert seal: %w", err)
		}
		if err := s.record(ctx, tx, actor, ActionCreate, "seal:"+sl.ID, auditDetail(sl, nil)); err != nil {
			return err
		}
		_, err := bus.Publish(ctx, tx, EventCreated, eventOf(sl))
		return err
	})
	if err != nil {
		return Seal{}, err
	}
	return sl, nil
}

// mint gives sl a new key pair, its certificate and the SES_Seal, returning the seal and its
// sealed private key. The version is not part of what is signed.
func (s *Service) mint(m *maker, sl Seal, validFor time.Duration) (Seal, []byte, error) {
	if validFor <= 0 {
		validFor = s.opts.Validity
	}
	if validFor < time.Hour || validFor > 20*365*24*time.Hour {
		return sl, nil, invalid("valid_for", "seal.valid_for", "印章有效期须在 1 小时到 20 年之间", "a seal's period must be 1 hour to 20 years")
	}
	// Second precision: GeneralizedTime in the seal and the certificate carry no more.
	sl.ValidFrom = sl.CreatedAt.Truncate(time.Second)
	sl.ValidTo = sl.ValidFrom.Add(validFor)
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return sl, nil, fmt.Errorf("seal key: %w", err)
	}
	if sl.PublicKey, err = smx509.MarshalPKIXPublicKey(&key.PublicKey); err != nil {
		return sl, nil, fmt.Errorf("seal key: %w", err)
	}
	sl.KeyID = keyIDOfDER(sl.PublicKey)
	cert, serial, err := m.issueCert(&key.PublicKey, sl, s.opts.Province)
	if err != nil {
		return sl, nil, err
	}
	sl.Cert, sl.CertSerial = cert, fmt.Sprintf("%x", serial)
	sl.ESeal, err = encodeSeal(sealContent{ESID: sl.ESID, Vendor: s.opts.Vendor, Name: sl.Name, Type: sl.Type, SignerCert: cert,
		CreatedAt: sl.ValidFrom, ValidFrom: sl.ValidFrom, ValidTo: sl.ValidTo, PictureType: sl.PictureType, Picture: sl.Picture,
		WidthMM: sl.WidthMM, HeightMM: sl.HeightMM}, m.der, sm2Signer(m.key))
	if err != nil {
		return sl, nil, err
	}
	enc, err := s.sealKey(key, aad("seal_seals", sl.ID, "private_key"))
	if err != nil {
		return sl, nil, err
	}
	s.keys.Store(sl.ID, key)
	return sl, enc, nil
}

// esID is the seal's code (印章编码, the SES_Seal esID, IA5): the department's division code
// and the seal's id without dashes, unique and stable.
func esID(sl Seal) string {
	return sl.Division + strings.ReplaceAll(sl.ID, "-", "")
}

func auditDetail(sl Seal, extra map[string]any) map[string]any {
	d := map[string]any{"es_id": sl.ESID, "dept_id": sl.DeptID, "division": sl.Division, "name": sl.Name,
		"purpose": sl.Purpose, "version": sl.Version, "key_id": sl.KeyID, "cert_serial": sl.CertSerial,
		"valid_from": sl.ValidFrom, "valid_to": sl.ValidTo}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// Event is the payload of the seal engine's events.
type Event struct {
	SealID     string `json:"seal_id"`
	ESID       string `json:"es_id"`
	DeptID     string `json:"dept_id"`
	Division   string `json:"division"`
	Purpose    string `json:"purpose"`
	KeyID      string `json:"key_id"`
	Status     Status `json:"status"`
	ReplacedBy string `json:"replaced_by,omitempty"` // rotated: the new seal
}

func eventOf(sl Seal) Event {
	return Event{SealID: sl.ID, ESID: sl.ESID, DeptID: sl.DeptID, Division: sl.Division, Purpose: sl.Purpose, KeyID: sl.KeyID,
		Status: sl.Status, ReplacedBy: sl.ReplacedBy}
}

// load reads a seal for a management or reading action; missing is i18n.ErrNotFound.
func (s *Service) load(ctx context.Context, q db.Querier, id string) (Seal, error) {
	sl, err := getSeal(ctx, q, `id = ?`, strings.TrimSpace(id))
	if isNoRow(err) {
		return sl, i18n.ErrNotFound
	}
	if err != nil {
		return sl, fmt.Errorf("read seal %s: %w", id, err)
	}
	return sl, nil
}

// Rotate replaces a seal in force with a new one — a new key pair, certificate and SES_Seal,
// the same name, purpose and (unless given) picture — and retires the old, which is kept and
// still verifies the documents it sealed.
func (s *Service) Rotate(ctx context.Context, actor authz.Subject, id string, in RotateInput) (Seal, error) {
	if err := staffOrSystem(actor); err != nil {
		return Seal{}, err
	}
	old, err := s.load(ctx, s.d, id)
	if err != nil {
		return Seal{}, err
	}
	if err := s.policy.Authorize(actor, PermManage, old.Division); err != nil {
		return Seal{}, err
	}
	if old.Status != StatusActive {
		return Seal{}, ErrNotInForce
	}
	// A rotation takes up a renamed department: the default name and the drawn picture follow.
	dep, err := s.depts.GetDepartment(ctx, actor, old.DeptID)
	if err != nil {
		return Seal{}, err
	}
	if !dep.Active {
		return Seal{}, ErrInactiveDept
	}
	sl := Seal{ID: db.NewID(), DeptID: old.DeptID, DeptName: dep.Name, Division: old.Division, Name: old.Name,
		Purpose: old.Purpose, Type: old.Type, Status: StatusActive, PictureType: old.PictureType, Picture: old.Picture,
		WidthMM: old.WidthMM, HeightMM: old.HeightMM, CreatedBy: actor.String(), CreatedAt: s.clock()}
	if dep.Name != old.DeptName {
		if old.Name == old.DeptName+old.Purpose {
			sl.Name = dep.Name + old.Purpose
		}
		if old.PictureType == PictureSVG && bytes.Equal(old.Picture, DrawSeal(old.DeptName, old.Purpose, old.WidthMM)) {
			sl.Picture = DrawSeal(dep.Name, old.Purpose, old.WidthMM)
		}
	}
	if in.Picture != nil {
		pic, err := cleanPicture(*in.Picture, diameterOf(old.Division))
		if err != nil {
			return Seal{}, err
		}
		sl.PictureType, sl.Picture, sl.WidthMM, sl.HeightMM = pic.Type, pic.Data, pic.WidthMM, pic.HeightMM
	}
	sl.ESID = esID(sl)
	m, err := s.getMaker(ctx)
	if err != nil {
		return Seal{}, err
	}
	var privEnc []byte
	if sl, privEnc, err = s.mint(m, sl, in.ValidFor); err != nil {
		return Seal{}, err
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE seal_seals SET status = 'retired', retired_at = ?, replaced_by = ? WHERE id = ? AND status = 'active'`,
			sl.CreatedAt, sl.ID, old.ID)
		if err != nil {
			return fmt.Errorf("retire seal %s: %w", old.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("retire seal %s: %w", old.ID, err)
		} else if n != 1 {
			return ErrNotInForce // rotated or revoked meanwhile
		}
		if sl.Version, err = nextVersion(ctx, tx, sl.DeptID, sl.Purpose); err != nil {
			return fmt.Errorf("seal version: %w", err)
		}
		if err := insertSeal(ctx, tx, sl, privEnc); err != nil {
			if db.IsUniqueViolation(err) {
				return ErrExists.Wrap(err)
			}
			return fmt.Errorf("insert seal: %w", err)
		}
		if err := s.record(ctx, tx, actor, ActionRotate, "seal:"+sl.ID, auditDetail(sl, map[string]any{
			"replaces": old.ID, "old_key_id": old.KeyID})); err != nil {
			return err
		}
		old.Status, old.ReplacedBy = StatusRetired, sl.ID
		_, err = bus.Publish(ctx, tx, EventRotated, eventOf(old))
		return err
	})
	if err != nil {
		return Seal{}, err
	}
	return sl, nil
}

// Revoke ends a seal (active or retired) for good, with a reason. Documents it sealed before
// the revocation still verify and say that the seal was revoked later; nothing can be sealed
// with it after. The department needs a new seal (Create) to seal again.
func (s *Service) Revoke(ctx context.Context, actor authz.Subject, id, reason string) (Seal, error) {
	if err := staffOrSystem(actor); err != nil {
		return Seal{}, err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > 200 || strings.ContainsFunc(reason, unicode.IsControl) {
		return Seal{}, ErrReasonRequired
	}
	sl, err := s.load(ctx, s.d, id)
	if err != nil {
		return Seal{}, err
	}
	if err := s.policy.Authorize(actor, PermManage, sl.Division); err != nil {
		return Seal{}, err
	}
	if sl.Status == StatusRevoked {
		return Seal{}, ErrNotInForce
	}
	now := s.clock()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE seal_seals SET status = 'revoked', revoked_at = ?, revoked_by = ?, revoke_reason = ?
			WHERE id = ? AND status <> 'revoked'`, now, actor.String(), reason, sl.ID)
		if err != nil {
			return fmt.Errorf("revoke seal %s: %w", sl.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("revoke seal %s: %w", sl.ID, err)
		} else if n != 1 {
			return ErrNotInForce
		}
		sl.Status, sl.RevokedAt, sl.RevokedBy, sl.RevokeReason = StatusRevoked, &now, actor.String(), reason
		if err := s.record(ctx, tx, actor, ActionRevoke, "seal:"+sl.ID, auditDetail(sl, map[string]any{"reason": reason})); err != nil {
			return err
		}
		_, err = bus.Publish(ctx, tx, EventRevoked, eventOf(sl))
		return err
	})
	if err != nil {
		return Seal{}, err
	}
	s.keys.Delete(sl.ID)
	return sl, nil
}

// Get returns a seal within the actor's division.
func (s *Service) Get(ctx context.Context, actor authz.Subject, id string) (Seal, error) {
	sl, err := s.load(ctx, s.d, id)
	if err != nil {
		return sl, err
	}
	if err := s.policy.Authorize(actor, PermRead, sl.Division); err != nil {
		return Seal{}, err
	}
	return sl, nil
}

// Current returns the department's seal in force for purpose ("" the official seal), or ErrNoSeal.
func (s *Service) Current(ctx context.Context, actor authz.Subject, deptID, purpose string) (Seal, error) {
	sl, err := getSeal(ctx, s.d, `dept_id = ? AND purpose = ? AND status = 'active'`, deptID, strings.TrimSpace(purpose))
	if isNoRow(err) {
		// Whether the department exists, and may be seen, is the organisation engine's to say.
		dep, err := s.depts.GetDepartment(ctx, actor, deptID)
		if err != nil {
			return Seal{}, err
		}
		if err := s.policy.Authorize(actor, PermRead, dep.DivisionCode); err != nil {
			return Seal{}, err
		}
		return Seal{}, ErrNoSeal
	}
	if err != nil {
		return Seal{}, fmt.Errorf("read seal of %s: %w", deptID, err)
	}
	if err := s.policy.Authorize(actor, PermRead, sl.Division); err != nil {
		return Seal{}, err
	}
	return sl, nil
}

// Filter selects seals.
type Filter struct {
	Division      string // within this division; default the actor's
	DeptID        string // of one department
	Status        Status // "" for any
	Limit, Offset int    // default 100, at most 1000
}

// List lists seals within a division of the actor's scope, newest first.
func (s *Service) List(ctx context.Context, actor authz.Subject, f Filter) ([]Seal, error) {
	div := strings.TrimSpace(f.Division)
	if div == "" {
		div = actor.Division
	}
	if err := s.policy.Authorize(actor, PermRead, div); err != nil {
		return nil, err
	}
	where, args := `WHERE division LIKE ?`, []any{divisionPrefix(div) + "%"}
	if f.DeptID != "" {
		where += ` AND dept_id = ?`
		args = append(args, f.DeptID)
	}
	if f.Status != "" {
		if _, ok := StatusNames[f.Status]; !ok {
			return nil, invalid("status", "seal.status", "未知的状态", "unknown status")
		}
		where += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	args = append(args, f.Limit, max(f.Offset, 0))
	out, err := querySeals(ctx, s.d, where+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list seals: %w", err)
	}
	kept := out[:0]
	for _, sl := range out {
		if divisions.Contains(div, sl.Division) {
			kept = append(kept, sl)
		}
	}
	return kept, nil
}

// divisionPrefix is the leading digits that the codes within a division share (GB/T 2260):
// 2 for a province, 4 for a prefecture, all 6 for a county. Contains refines the match.
func divisionPrefix(code string) string {
	switch {
	case len(code) != 6:
		return code
	case code[2:] == "0000":
		return code[:2]
	case code[4:] == "00":
		return code[:4]
	}
	return code
}

// Uses lists the sealing register of a seal, newest first.
func (s *Service) Uses(ctx context.Context, actor authz.Subject, sealID string, limit, offset int) ([]Use, error) {
	if _, err := s.Get(ctx, actor, sealID); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	out, err := queryUses(ctx, s.d, `WHERE seal_id = ? ORDER BY signed_at DESC, id DESC LIMIT ? OFFSET ?`, sealID, limit, max(offset, 0))
	if err != nil {
		return nil, fmt.Errorf("list sealings of %s: %w", sealID, err)
	}
	return out, nil
}

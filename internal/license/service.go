package license

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// record appends an audit entry inside tx.
func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if s.opts.Audit == nil {
		return nil
	}
	if err := s.opts.Audit(ctx, tx, actor, action, object, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

// adminDivision is the division within which licence types and trust lists are administered.
func (s *Service) adminDivision() string {
	if s.opts.Node.Division != "" {
		return s.opts.Node.Division
	}
	return "140000" // the province this platform serves
}

// ---- types ----

// SeedTypes adds the DefaultTypes that are not defined yet (it never overwrites a type an
// administrator edited) and returns how many it added. The app calls it at start.
func (s *Service) SeedTypes(ctx context.Context) (int, error) {
	now := s.clock()
	n := 0
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		for _, t := range DefaultTypes() {
			if err := t.validate(); err != nil {
				return fmt.Errorf("seed type %s: %w", t.Code, err)
			}
			t.CreatedAt, t.UpdatedAt = now, now
			res, err := tx.Exec(ctx, `INSERT INTO license_types (`+typeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (code) DO NOTHING`, typeArgs(t)...)
			if err != nil {
				return fmt.Errorf("seed type %s: %w", t.Code, err)
			}
			if k, _ := res.RowsAffected(); k > 0 {
				n++
			}
		}
		return nil
	})
	return n, err
}

// Types lists the licence types by code. Anyone may read them: they are public metadata.
func (s *Service) Types(ctx context.Context) ([]Type, error) {
	out, err := db.Collect(ctx, s.d, `SELECT `+typeCols+` FROM license_types ORDER BY code`, nil, scanType)
	if err != nil {
		return nil, fmt.Errorf("list licence types: %w", err)
	}
	return out, nil
}

// Type returns one licence type.
func (s *Service) Type(ctx context.Context, code string) (Type, error) {
	return getType(ctx, s.d, strings.ToUpper(strings.TrimSpace(code)))
}

// DefineType creates or replaces a licence type (a provincial administrator's act).
// Licences already issued keep the items and labels they were signed with.
func (s *Service) DefineType(ctx context.Context, actor authz.Subject, t Type) (Type, error) {
	if err := s.policy.Authorize(actor, PermAdmin, s.adminDivision()); err != nil {
		return Type{}, err
	}
	if err := t.validate(); err != nil {
		return Type{}, err
	}
	now := s.clock()
	t.CreatedAt, t.UpdatedAt = now, now
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO license_types (`+typeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en, holder_kind = excluded.holder_kind,
			issuer_kinds = excluded.issuer_kinds, validity_years = excluded.validity_years, validity_months = excluded.validity_months,
			basis = excluded.basis, items = excluded.items, updated_at = excluded.updated_at`, typeArgs(t)...); err != nil {
			return fmt.Errorf("define type %s: %w", t.Code, err)
		}
		return s.record(ctx, tx, actor, ActionType, "license_type:"+t.Code, map[string]any{"name": t.Name.ZH, "items": len(t.Items)})
	})
	if err != nil {
		return Type{}, err
	}
	return getType(ctx, s.d, t.Code)
}

// ---- issuers ----

// RegisterIssuer registers (or updates) a department as an issuing authority with the credit
// code its licences carry; an administrator within the department's division does it.
// Setting Active false stops new issuance; issued licences stay as they are.
func (s *Service) RegisterIssuer(ctx context.Context, actor authz.Subject, in Issuer) (Issuer, error) {
	in.DeptID, in.Name, in.Kind = strings.TrimSpace(in.DeptID), strings.TrimSpace(in.Name), strings.TrimSpace(in.Kind)
	dv, err := ids.ValidateDivision(in.Division)
	if err != nil {
		return Issuer{}, err
	}
	in.Division = dv.Code
	if err := s.policy.Authorize(actor, PermAdmin, in.Division); err != nil {
		return Issuer{}, err
	}
	cc, err := ids.ValidateCreditCode(in.CreditCode)
	if err != nil {
		return Issuer{}, err
	}
	in.CreditCode = cc.Code
	switch {
	case in.DeptID == "" || len(in.DeptID) > 64:
		return Issuer{}, invalid("dept_id", "license.issuer.dept", "请指定部门", "name the department")
	case in.Name == "" || utf8.RuneCountInString(in.Name) > 100:
		return Issuer{}, invalid("name", "license.issuer.name", "请填写发证机构名称（最多100字）", "name the authority (at most 100 characters)")
	case in.Kind == "" || utf8.RuneCountInString(in.Kind) > 50:
		return Issuer{}, invalid("kind", "license.issuer.kind", "请填写部门类别", "give the department's kind")
	}
	now := s.clock()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO license_issuers (`+issuerCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (dept_id) DO UPDATE SET name = excluded.name, credit_code = excluded.credit_code, division = excluded.division,
			kind = excluded.kind, active = excluded.active, updated_at = excluded.updated_at`,
			in.DeptID, in.Name, in.CreditCode, in.Division, in.Kind, in.Active, now, now)
		if db.IsUniqueViolation(err) {
			return invalid("credit_code", "license.issuer.credit_taken", "该统一社会信用代码已登记给其他部门", "this credit code is registered to another department")
		}
		if err != nil {
			return fmt.Errorf("register issuer %s: %w", in.DeptID, err)
		}
		return s.record(ctx, tx, actor, ActionIssuer, "department:"+in.DeptID, map[string]any{"credit_code": in.CreditCode, "kind": in.Kind, "active": in.Active})
	})
	if err != nil {
		return Issuer{}, err
	}
	return getIssuer(ctx, s.d, in.DeptID)
}

// Issuers lists the registered issuing authorities (public information), by division and
// name; division "" lists all, else those whose division code starts with its significant
// digits (140000 → every Shanxi authority, 140100 → Taiyuan's).
func (s *Service) Issuers(ctx context.Context, division string) ([]Issuer, error) {
	prefix := strings.TrimRight(strings.TrimSpace(division), "0")
	out, err := db.Collect(ctx, s.d, `SELECT `+issuerCols+` FROM license_issuers WHERE substr(division, 1, ?) = ? ORDER BY division, name`,
		[]any{len(prefix), prefix}, scanIssuer)
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	return out, nil
}

// GetIssuer returns a registered issuing authority (public information).
func (s *Service) GetIssuer(ctx context.Context, deptID string) (Issuer, error) {
	return getIssuer(ctx, s.d, deptID)
}

// issuerFor checks that actor may act with perm for issuing department deptID: staff of that
// department, or a system client (the workflow engine closing a case), holding perm within
// the issuer's division.
func (s *Service) issuerFor(ctx context.Context, q db.Querier, actor authz.Subject, deptID string, perm authz.Permission) (Issuer, error) {
	switch actor.Kind {
	case "":
		return Issuer{}, i18n.ErrUnauthorized
	case authz.Staff:
		if actor.Dept != deptID {
			return Issuer{}, i18n.ErrForbidden
		}
	case authz.System:
	default:
		return Issuer{}, i18n.ErrForbidden
	}
	iss, err := getIssuer(ctx, q, deptID)
	if err != nil {
		return Issuer{}, err
	}
	if err := s.policy.Authorize(actor, perm, iss.Division); err != nil {
		return Issuer{}, err
	}
	if !iss.Active {
		return Issuer{}, ErrNotIssuer
	}
	return iss, nil
}

// ---- issuance ----

// IssueInput is a licence to issue.
type IssueInput struct {
	TypeCode     string
	IssuerDeptID string
	Holder       Holder // Kind follows from IDType
	Items        map[string]string
	ValidFrom    *time.Time // default: now
	ValidUntil   *time.Time // default: the type's validity from ValidFrom
	CaseRef      string     // the service case that produced it, if any
}

// Issue issues a licence: validated against its type, given the next serial of its type and
// issuer, signed with the issuing department's seal key, stored with its history, audited and
// announced (EventSubjectIssued) in one transaction. A workflow closing a case "approved"
// calls it with a system subject.
func (s *Service) Issue(ctx context.Context, actor authz.Subject, in IssueInput) (License, error) {
	iss, err := s.issuerFor(ctx, s.d, actor, in.IssuerDeptID, PermIssue)
	if err != nil {
		return License{}, err
	}
	t, err := getType(ctx, s.d, strings.ToUpper(strings.TrimSpace(in.TypeCode)))
	if err != nil {
		return License{}, err
	}
	if !t.mayIssue(iss.Kind) {
		return License{}, ErrTypeNotIssued
	}
	now := s.clock()
	holder, err := t.checkHolder(in.Holder, now)
	if err != nil {
		return License{}, err
	}
	items, err := t.checkItems(in.Items)
	if err != nil {
		return License{}, err
	}
	if utf8.RuneCountInString(in.CaseRef) > 100 {
		return License{}, invalid("case_ref", "license.case_ref", "办件编号最多100字", "the case reference is at most 100 characters")
	}
	from, until, err := validity(t, now, in.ValidFrom, in.ValidUntil)
	if err != nil {
		return License{}, err
	}
	serial, err := s.nextSerial(ctx, t.Code, iss.CreditCode)
	if err != nil {
		return License{}, err
	}
	c := Content{Format: ContentFormat, ID: Identifier{TypeCode: t.Code, CreditCode: iss.CreditCode, Serial: serial, Version: 1}.String(),
		TypeCode: t.Code, TypeName: t.Name.ZH, Holder: holder, Issuer: contentIssuer(iss), Node: s.opts.Node.ID,
		IssuedAt: now, ValidFrom: from, ValidUntil: until, Version: 1, Items: items}
	return s.signAndStore(ctx, actor, iss, c, nil, EventIssued, "", strings.TrimSpace(in.CaseRef))
}

func contentIssuer(iss Issuer) ContentIssuer {
	return ContentIssuer{Name: iss.Name, CreditCode: iss.CreditCode, Division: iss.Division}
}

// validity resolves a licence's validity: from now (or the given start), for the type's
// period (or until the given end).
func validity(t Type, now time.Time, from, until *time.Time) (time.Time, *time.Time, error) {
	vf := now
	if from != nil {
		vf = db.Now(*from)
	}
	vu := t.Validity.Until(vf)
	if until != nil {
		u := db.Now(*until)
		vu = &u
	}
	if vu != nil && !vu.After(vf) {
		return vf, nil, invalid("valid_until", "license.valid_until", "有效期截止时间须晚于起始时间", "the licence must end after it starts")
	}
	if vu != nil && !vu.After(now) {
		return vf, nil, invalid("valid_until", "license.valid_until.past", "有效期截止时间须晚于当前时间", "the licence must end in the future")
	}
	return vf, vu, nil
}

// nextSerial takes the next serial of a type and issuer in its own short transaction, so
// that signing (a call to the seal engine) never runs while the database's writer is held.
func (s *Service) nextSerial(ctx context.Context, typeCode, creditCode string) (string, error) {
	var n int64
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO license_serials (type_code, credit_code, last) VALUES (?, ?, 1)
			ON CONFLICT (type_code, credit_code) DO UPDATE SET last = license_serials.last + 1 RETURNING last`, typeCode, creditCode).Scan(&n)
	})
	if err != nil {
		return "", fmt.Errorf("next serial of %s/%s: %w", typeCode, creditCode, err)
	}
	return fmt.Sprintf("%08d", n), nil
}

// signAndStore signs c through the seal engine, checks what came back, and stores the
// licence; prev is the version it supersedes (renewal, change), if any.
func (s *Service) signAndStore(ctx context.Context, actor authz.Subject, iss Issuer, c Content, prev *row, event, reason, caseRef string) (License, error) {
	if err := c.check(); err != nil {
		return License{}, fmt.Errorf("licence %s: %w", c.ID, err)
	}
	canon := c.Canonical()
	sig, err := s.signer.SignAs(ctx, iss.DeptID, canon)
	if err != nil {
		return License{}, fmt.Errorf("sign licence %s: %w", c.ID, err)
	}
	pub, err := s.publicKey(sig.PublicKey)
	if err != nil {
		return License{}, ErrSignature.Wrap(err)
	}
	if sig.KeyID == "" || len(sig.KeyID) > 200 || !verifySM2(pub, canon, sig.Value) {
		return License{}, ErrSignature
	}
	if sig.SignedAt.IsZero() {
		sig.SignedAt = c.IssuedAt
	}
	sig.SignedAt = db.Now(sig.SignedAt)
	enc, err := s.fc.Seal(string(canon), contentAAD(c.ID))
	if err != nil {
		return License{}, fmt.Errorf("seal licence %s: %w", c.ID, err)
	}
	pid, _ := ParseIdentifier(c.ID) // checked by c.check
	chain := chainOf(pid)
	if prev != nil {
		chain = prev.chain // every version of a licence shares its first version's chain
	}
	r := row{Summary: Summary{ID: c.ID, TypeCode: c.TypeCode, TypeName: c.TypeName, Version: c.Version, HolderName: c.Holder.Name,
		HolderKind: c.Holder.Kind, IssuerDeptID: iss.DeptID, IssuerName: iss.Name, IssuedAt: c.IssuedAt, ValidFrom: c.ValidFrom,
		ValidUntil: c.ValidUntil}, chain: chain, serial: pid.Serial, previousID: c.PreviousID, holderIDType: c.Holder.IDType,
		holderIdx: s.fc.BlindIndex(holderIndexKind(c.Holder.IDType), c.Holder.IDNumber), issuerCredit: iss.CreditCode,
		issuerDiv: iss.Division, stored: StatusValid, contentEnc: enc, digest: crypto.SM3Hex(canon), keyID: sig.KeyID,
		signature: sig.Value, signedAt: sig.SignedAt, caseRef: caseRef, issuedBy: actor.String()}
	action := map[string]string{EventIssued: ActionIssue, EventRenewed: ActionRenew, EventChanged: ActionChange}[event]
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if prev != nil {
			p, err := lockRow(ctx, tx, prev.ID)
			if err != nil {
				return err
			}
			if p.stored != StatusValid {
				return ErrState // revoked or replaced meanwhile
			}
			if _, err := tx.Exec(ctx, `UPDATE licenses SET status = 'superseded', superseded_by = ?, status_at = ?, status_reason = ? WHERE id = ?`,
				c.ID, c.IssuedAt, reason, p.ID); err != nil {
				return fmt.Errorf("supersede licence %s: %w", p.ID, err)
			}
			if err := insertEvent(ctx, tx, p.chain, Event{LicenseID: p.ID, Version: p.Version, Action: EventSuperseded, Actor: actor.String(),
				Reason: reason, RelatedID: c.ID, At: c.IssuedAt}); err != nil {
				return err
			}
		}
		if err := s.recordKey(ctx, tx, iss, sig, c.IssuedAt); err != nil {
			return err
		}
		if err := insertRow(ctx, tx, r); db.IsUniqueViolation(err) {
			return i18n.ErrConflict.Wrap(err) // a concurrent renewal or change made this version first
		} else if err != nil {
			return fmt.Errorf("insert licence %s: %w", c.ID, err)
		}
		if err := insertEvent(ctx, tx, r.chain, Event{LicenseID: c.ID, Version: c.Version, Action: event, Actor: actor.String(),
			Reason: reason, RelatedID: c.PreviousID, At: c.IssuedAt}); err != nil {
			return err
		}
		if err := s.record(ctx, tx, actor, action, "license:"+c.ID, map[string]any{"type": c.TypeCode, "issuer": iss.DeptID,
			"previous_id": c.PreviousID, "case_ref": caseRef, "key_id": sig.KeyID, "digest": r.digest, "reason": reason}); err != nil {
			return err
		}
		_, err := bus.Publish(ctx, tx, EventSubjectIssued, Notice{ID: c.ID, TypeCode: c.TypeCode, Version: c.Version, PreviousID: c.PreviousID,
			IssuerDeptID: iss.DeptID, HolderKind: string(c.Holder.Kind), CaseRef: caseRef, Action: event})
		return err
	})
	if err != nil {
		return License{}, err
	}
	return License{Content: c, Status: StatusValid, Digest: r.digest, Signature: sig, IssuerDeptID: iss.DeptID, CaseRef: caseRef,
		IssuedBy: r.issuedBy}, nil
}

// recordKey keeps the seal key that signed a licence, for the trust list: the first use
// records it; later uses must present the same key for the same issuer, before retirement.
func (s *Service) recordKey(ctx context.Context, tx *db.Tx, iss Issuer, sig Signature, at time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO license_issuer_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)
		ON CONFLICT (key_id) DO NOTHING`, sig.KeyID, iss.DeptID, iss.Name, iss.CreditCode, iss.Division, sig.PublicKey, sig.Cert, at); err != nil {
		return fmt.Errorf("record issuer key %s: %w", sig.KeyID, err)
	}
	k, err := getKey(ctx, tx, sig.KeyID)
	if err != nil {
		return err
	}
	if !bytes.Equal(k.PublicKey, sig.PublicKey) || k.CreditCode != iss.CreditCode || k.DeptID != iss.DeptID {
		return ErrKeyMismatch.Wrap(fmt.Errorf("key %s is on record for %s/%s", sig.KeyID, k.DeptID, k.CreditCode))
	}
	if k.ValidUntil != nil && !at.Before(*k.ValidUntil) {
		return ErrKeyMismatch.Wrap(fmt.Errorf("key %s was retired at %s", sig.KeyID, k.ValidUntil))
	}
	if at.Before(k.ValidFrom) { // an issuance that started earlier committed later
		if _, err := tx.Exec(ctx, `UPDATE license_issuer_keys SET valid_from = ? WHERE key_id = ?`, at, sig.KeyID); err != nil {
			return fmt.Errorf("record issuer key %s: %w", sig.KeyID, err)
		}
	}
	if k.Cert == nil && len(sig.Cert) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE license_issuer_keys SET cert = ? WHERE key_id = ?`, sig.Cert, sig.KeyID); err != nil {
			return fmt.Errorf("record issuer key %s: %w", sig.KeyID, err)
		}
	}
	return nil
}

// RenewInput renews a licence (换证/延续): a new version with a new validity.
type RenewInput struct {
	ValidFrom  *time.Time // default: now
	ValidUntil *time.Time // default: the type's validity from ValidFrom
	Reason     string
}

// Renew issues the next version of a licence with the same data and a new validity; the old
// version is superseded. The licence may have expired, but not been revoked or replaced.
func (s *Service) Renew(ctx context.Context, actor authz.Subject, id string, in RenewInput) (License, error) {
	return s.reissue(ctx, actor, id, EventRenewed, strings.TrimSpace(in.Reason), func(t Type, c *Content, now time.Time) error {
		from, until, err := validity(t, now, in.ValidFrom, in.ValidUntil)
		c.ValidFrom, c.ValidUntil = from, until
		return err
	})
}

// ChangeInput changes a licence (变更): items given replace the old values ("" removes an
// optional one); the holder's name may change (a company renamed), never the holder.
type ChangeInput struct {
	HolderName string // "" keeps it
	Items      map[string]string
	ValidUntil *time.Time // nil keeps it
	Reason     string     // required
}

// Change issues the next version of a licence with changed data; the old version is
// superseded. The validity stays unless ValidUntil is given.
func (s *Service) Change(ctx context.Context, actor authz.Subject, id string, in ChangeInput) (License, error) {
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		return License{}, ErrReasonRequired
	}
	return s.reissue(ctx, actor, id, EventChanged, reason, func(t Type, c *Content, now time.Time) error {
		values := map[string]string{}
		for _, it := range c.Items {
			if _, ok := t.itemDef(it.Key); ok { // items the type no longer has are dropped
				values[it.Key] = it.Value
			}
		}
		for k, v := range in.Items {
			values[k] = v
		}
		items, err := t.checkItems(values)
		if err != nil {
			return err
		}
		c.Items = items
		if n := strings.TrimSpace(in.HolderName); n != "" {
			h := c.Holder
			h.Name = n
			if c.Holder, err = t.checkHolder(h, now); err != nil {
				return err
			}
		}
		if in.ValidUntil != nil {
			u := db.Now(*in.ValidUntil)
			if !u.After(c.ValidFrom) || !u.After(now) {
				return invalid("valid_until", "license.valid_until", "有效期截止时间须晚于起始时间和当前时间", "the licence must end after it starts and in the future")
			}
			c.ValidUntil = &u
		}
		return nil
	})
}

func (t Type) itemDef(key string) (ItemDef, bool) {
	for _, d := range t.Items {
		if d.Key == key {
			return d, true
		}
	}
	return ItemDef{}, false
}

// reissue makes the next version of licence id, edited by edit, and supersedes id.
func (s *Service) reissue(ctx context.Context, actor authz.Subject, id, event, reason string, edit func(Type, *Content, time.Time) error) (License, error) {
	if utf8.RuneCountInString(reason) > 500 {
		return License{}, invalid("reason", "license.reason.too_long", "理由最多500字", "the reason is at most 500 characters")
	}
	pid, err := ParseIdentifier(id)
	if err != nil {
		return License{}, err
	}
	prev, err := getRow(ctx, s.d, pid.String())
	if err != nil {
		return License{}, err
	}
	iss, err := s.issuerFor(ctx, s.d, actor, prev.IssuerDeptID, PermIssue)
	if err != nil {
		return License{}, err
	}
	if prev.stored != StatusValid {
		return License{}, ErrState
	}
	if prev.Version >= MaxVersion {
		return License{}, ErrState.Wrap(fmt.Errorf("licence %s is at the last version", prev.ID))
	}
	c, err := s.open(prev)
	if err != nil {
		return License{}, err
	}
	t, err := getType(ctx, s.d, c.TypeCode)
	if err != nil {
		return License{}, err
	}
	now := s.clock()
	if err := edit(t, &c, now); err != nil {
		return License{}, err
	}
	pid.Version = prev.Version + 1
	// The issuer's name, division or credit code may have changed since: the new version
	// carries them as they are now. Under a new credit code it takes a serial of that code
	// (serials are counted per type and code), and stays in the same chain of versions.
	if pid.CreditCode != iss.CreditCode {
		if pid.Serial, err = s.nextSerial(ctx, pid.TypeCode, iss.CreditCode); err != nil {
			return License{}, err
		}
		pid.CreditCode = iss.CreditCode
	}
	c.ID, c.Version, c.PreviousID, c.IssuedAt, c.Issuer, c.Node, c.TypeName = pid.String(), pid.Version, prev.ID, now, contentIssuer(iss), s.opts.Node.ID, t.Name.ZH
	return s.signAndStore(ctx, actor, iss, c, &prev, event, reason, prev.caseRef)
}

// Revoke revokes a licence (注销、吊销、撤销) with its reason; verification fails from then on,
// showing the reason.
func (s *Service) Revoke(ctx context.Context, actor authz.Subject, id, reason string) (License, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return License{}, ErrReasonRequired
	}
	if utf8.RuneCountInString(reason) > 500 {
		return License{}, invalid("reason", "license.reason.too_long", "理由最多500字", "the reason is at most 500 characters")
	}
	pid, err := ParseIdentifier(id)
	if err != nil {
		return License{}, err
	}
	r, err := getRow(ctx, s.d, pid.String())
	if err != nil {
		return License{}, err
	}
	if _, err := s.issuerFor(ctx, s.d, actor, r.IssuerDeptID, PermRevoke); err != nil {
		return License{}, err
	}
	now := s.clock()
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if r, err = lockRow(ctx, tx, r.ID); err != nil {
			return err
		}
		if r.stored != StatusValid {
			return ErrState
		}
		if _, err := tx.Exec(ctx, `UPDATE licenses SET status = 'revoked', status_reason = ?, status_at = ? WHERE id = ?`, reason, now, r.ID); err != nil {
			return fmt.Errorf("revoke licence %s: %w", r.ID, err)
		}
		r.stored, r.statusReason, r.statusAt = StatusRevoked, reason, &now
		if err := insertEvent(ctx, tx, r.chain, Event{LicenseID: r.ID, Version: r.Version, Action: EventRevoked, Actor: actor.String(), Reason: reason, At: now}); err != nil {
			return err
		}
		if err := s.record(ctx, tx, actor, ActionRevoke, "license:"+r.ID, map[string]any{"reason": reason}); err != nil {
			return err
		}
		_, err := bus.Publish(ctx, tx, EventSubjectRevoked, Notice{ID: r.ID, TypeCode: r.TypeCode, Version: r.Version,
			IssuerDeptID: r.IssuerDeptID, HolderKind: string(r.HolderKind), CaseRef: r.caseRef, Action: EventRevoked})
		return err
	})
	if err != nil {
		return License{}, err
	}
	c, err := s.open(r)
	if err != nil {
		return License{}, err
	}
	return s.license(ctx, r, c, now)
}

// ---- reading ----

// open decrypts a row's content and checks it against its digest and identifier.
func (s *Service) open(r row) (Content, error) {
	pt, err := s.fc.Open(r.contentEnc, contentAAD(r.ID))
	if err != nil {
		return Content{}, ErrCorrupt.Wrap(fmt.Errorf("licence %s: %w", r.ID, err))
	}
	var c Content
	if err := json.Unmarshal([]byte(pt), &c); err != nil {
		return Content{}, ErrCorrupt.Wrap(fmt.Errorf("licence %s: %w", r.ID, err))
	}
	if c.ID != r.ID || crypto.SM3Hex(c.Canonical()) != r.digest {
		return Content{}, ErrCorrupt.Wrap(fmt.Errorf("licence %s: content does not match its record", r.ID))
	}
	return c, nil
}

// license assembles a licence from its row and content, with the signing key on record.
func (s *Service) license(ctx context.Context, r row, c Content, now time.Time) (License, error) {
	k, err := getKey(ctx, s.d, r.keyID)
	if err != nil {
		return License{}, ErrCorrupt.Wrap(fmt.Errorf("licence %s: key %s: %w", r.ID, r.keyID, err))
	}
	return License{Content: c, Status: statusAt(r.stored, r.ValidUntil, now), StatusReason: r.statusReason, StatusAt: r.statusAt,
		SupersededBy: r.SupersededBy, Digest: r.digest,
		Signature:    Signature{KeyID: r.keyID, PublicKey: k.PublicKey, Cert: k.Cert, Value: r.signature, SignedAt: r.signedAt},
		IssuerDeptID: r.IssuerDeptID, CaseRef: r.caseRef, IssuedBy: r.issuedBy}, nil
}

func (s *Service) summary(r row, now time.Time) Summary {
	out := r.Summary
	out.Status = statusAt(r.stored, r.ValidUntil, now)
	return out
}

// holderIndex is the blind index of the identity a citizen or enterprise holds.
func (s *Service) holderIndex(ctx context.Context, actor authz.Subject) (string, error) {
	switch actor.Kind {
	case "":
		return "", i18n.ErrUnauthorized
	case authz.Citizen, authz.Enterprise:
	default:
		return "", i18n.ErrForbidden
	}
	if s.holders == nil {
		return "", ErrHolderUnknown
	}
	h, err := s.holders.HolderID(ctx, actor)
	if err != nil {
		return "", err
	}
	info, ok := IDTypes[h.Type]
	if !ok || (actor.Kind == authz.Citizen) != (info.Kind == NaturalPerson) {
		return "", ErrHolderUnknown
	}
	n, err := normaliseHolderID(h.Type, h.Number, s.clock())
	if err != nil {
		return "", ErrHolderUnknown.Wrap(err)
	}
	return s.fc.BlindIndex(holderIndexKind(h.Type), n), nil
}

// access decides whether actor may read licence r: its holder; staff of the issuing
// department with PermRead; staff with PermInspect over the issuer's division. Staff reads
// are audited (staff reports true). Everyone else needs the holder's authorisation (Use).
func (s *Service) access(ctx context.Context, actor authz.Subject, r row) (staff bool, err error) {
	switch actor.Kind {
	case "":
		return false, i18n.ErrUnauthorized
	case authz.Citizen, authz.Enterprise:
		idx, err := s.holderIndex(ctx, actor)
		if err != nil {
			return false, err
		}
		if idx != r.holderIdx {
			return false, i18n.ErrForbidden
		}
		return false, nil
	}
	if (actor.Dept == r.IssuerDeptID && s.policy.Allowed(actor, PermRead, r.issuerDiv)) || s.policy.Allowed(actor, PermInspect, r.issuerDiv) {
		return true, nil
	}
	return false, ErrNoGrant
}

// Get returns a licence with its content to its holder, or to staff who may read it
// (audited as a read of personal data).
func (s *Service) Get(ctx context.Context, actor authz.Subject, id string) (License, error) {
	r, c, err := s.read(ctx, actor, id, "get")
	if err != nil {
		return License{}, err
	}
	return s.license(ctx, r, c, s.clock())
}

// read authorizes and opens licence id, auditing a staff read.
func (s *Service) read(ctx context.Context, actor authz.Subject, id, what string) (row, Content, error) {
	pid, err := ParseIdentifier(id)
	if err != nil {
		return row{}, Content{}, err
	}
	r, err := getRow(ctx, s.d, pid.String())
	if err != nil {
		return row{}, Content{}, err
	}
	staff, err := s.access(ctx, actor, r)
	if err != nil {
		return row{}, Content{}, err
	}
	c, err := s.open(r)
	if err != nil {
		return row{}, Content{}, err
	}
	if staff && s.opts.Audit != nil {
		if err := s.d.InTx(ctx, func(tx *db.Tx) error {
			return s.record(ctx, tx, actor, ActionRead, "license:"+r.ID, map[string]any{"what": what})
		}); err != nil {
			return row{}, Content{}, err
		}
	}
	return r, c, nil
}

// Filter selects licences of one issuing department.
type Filter struct {
	IssuerDeptID string // required
	TypeCode     string
	Status       Status    // "" any; expired and valid as in effect now
	Holder       *HolderID // exactly this holder
	CaseRef      string
	Limit        int // default 100, at most 1000
	Offset       int
}

// List lists an issuing department's licences, newest first, to its staff (PermRead) or to
// inspectors over its division.
func (s *Service) List(ctx context.Context, actor authz.Subject, f Filter) ([]Summary, error) {
	if actor.Kind != authz.Staff && actor.Kind != authz.System {
		if actor.Kind == "" {
			return nil, i18n.ErrUnauthorized
		}
		return nil, i18n.ErrForbidden
	}
	iss, err := getIssuer(ctx, s.d, f.IssuerDeptID)
	if err != nil {
		return nil, err
	}
	if !(actor.Dept == iss.DeptID && s.policy.Allowed(actor, PermRead, iss.Division)) && !s.policy.Allowed(actor, PermInspect, iss.Division) {
		return nil, i18n.ErrForbidden
	}
	now := s.clock()
	where, args := `WHERE issuer_dept_id = ?`, []any{iss.DeptID}
	if f.TypeCode != "" {
		where += ` AND type_code = ?`
		args = append(args, strings.ToUpper(f.TypeCode))
	}
	switch f.Status {
	case "":
	case StatusValid:
		where += ` AND status = 'valid' AND (valid_until IS NULL OR valid_until > ?)`
		args = append(args, now)
	case StatusExpired:
		where += ` AND status = 'valid' AND valid_until <= ?`
		args = append(args, now)
	case StatusRevoked, StatusSuperseded:
		where += ` AND status = ?`
		args = append(args, string(f.Status))
	default:
		return nil, invalid("status", "license.status", "未知的证照状态", "unknown licence status")
	}
	if f.Holder != nil {
		n, err := normaliseHolderID(f.Holder.Type, f.Holder.Number, now)
		if err != nil {
			return nil, err
		}
		where += ` AND holder_idx = ?`
		args = append(args, s.fc.BlindIndex(holderIndexKind(f.Holder.Type), n))
	}
	if f.CaseRef != "" {
		where += ` AND case_ref = ?`
		args = append(args, f.CaseRef)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	args = append(args, f.Limit, max(f.Offset, 0))
	rows, err := queryRows(ctx, s.d, where+` ORDER BY issued_at DESC, id DESC LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list licences: %w", err)
	}
	out := make([]Summary, 0, len(rows))
	for _, r := range rows {
		out = append(out, s.summary(r, now))
	}
	return out, nil
}

// Mine lists the licences of the signed-in citizen or enterprise (their personal space),
// newest first, every version (superseded ones show what replaced them).
func (s *Service) Mine(ctx context.Context, actor authz.Subject) ([]Summary, error) {
	idx, err := s.holderIndex(ctx, actor)
	if err != nil {
		return nil, err
	}
	rows, err := queryRows(ctx, s.d, `WHERE holder_idx = ? ORDER BY issued_at DESC, id DESC LIMIT 1000`, idx)
	if err != nil {
		return nil, fmt.Errorf("list own licences: %w", err)
	}
	now := s.clock()
	out := make([]Summary, 0, len(rows))
	for _, r := range rows {
		out = append(out, s.summary(r, now))
	}
	return out, nil
}

// History lists every event of every version of a licence, oldest first, to whoever may
// read it.
func (s *Service) History(ctx context.Context, actor authz.Subject, id string) ([]Event, error) {
	r, _, err := s.read(ctx, actor, id, "history")
	if err != nil {
		return nil, err
	}
	rows, err := s.d.Query(ctx, `SELECT license_id, version, action, actor, reason, related_id, at FROM license_events WHERE chain = ? ORDER BY seq`, r.chain)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", r.ID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.LicenseID, &e.Version, &e.Action, &e.Actor, &e.Reason, &e.RelatedID, &e.At); err != nil {
			return nil, fmt.Errorf("history of %s: %w", r.ID, err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

package identity

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Member roles. The legal representative (法定代表人) binds the enterprise and appoints
// administrators; administrators appoint operators (经办人); all of them may act for it.
const (
	RoleLegalRep = "legal_rep"
	RoleAdmin    = "admin"
	RoleOperator = "operator"
)

// Enterprise is a legal person verified against the legal-entity library.
type Enterprise struct {
	ID           string
	CreditCode   string
	Name         string
	DivisionCode string
	VerifiedAt   time.Time
}

// Membership is an enterprise an account may act for, and its role there.
type Membership struct {
	Enterprise
	Role    string
	AddedAt time.Time
}

// Member is a person who may act for an enterprise, as its administrators see them.
type Member struct {
	AccountID    string
	Name         string
	MobileMasked string
	Role         string
	AddedBy      string
	AddedAt      time.Time
}

func enterpriseObject(id string) string { return "enterprise:" + id }

// activeRole is the account's role in the enterprise, or "" when it is no active member.
func activeRole(ctx context.Context, q db.Querier, enterpriseID, accountID string) (string, error) {
	var role string
	err := q.QueryRow(ctx, `SELECT role FROM enterprise_members WHERE enterprise_id = ? AND account_id = ? AND removed_at IS NULL`,
		enterpriseID, accountID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read membership: %w", err)
	}
	return role, nil
}

func getEnterprise(ctx context.Context, q db.Querier, column, value string) (Enterprise, error) {
	var e Enterprise
	err := q.QueryRow(ctx, `SELECT id, credit_code, name, division_code, verified_at FROM enterprises WHERE `+column+` = ?`, value).
		Scan(&e.ID, &e.CreditCode, &e.Name, &e.DivisionCode, &e.VerifiedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return e, i18n.ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("read enterprise: %w", err)
	}
	return e, nil
}

// GetEnterprise returns an enterprise by id, or i18n.ErrNotFound.
func (s *Service) GetEnterprise(ctx context.Context, id string) (Enterprise, error) {
	return getEnterprise(ctx, s.d, "id", id)
}

// BindEnterprise binds an enterprise to its legal representative: the account must be
// real-name verified (level 2), and the legal-entity library must hold the credit code with
// this name and the account's verified name as legal representative (baselib.VerifyEntity)
// — and, where the library records the representative's ID number, that number too (two
// people may share a name). The enterprise is created or re-verified with this account as
// legal_rep; a previous representative (the register changed) loses the role.
func (s *Service) BindEnterprise(ctx context.Context, accountID, creditCode, name string) (Enterprise, error) {
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return Enterprise{}, err
	}
	if acc.Status != StatusActive {
		return Enterprise{}, ErrInactive
	}
	if acc.Level < LevelRealName {
		return Enterprise{}, ErrLevelTooLow
	}
	cc, err := ids.ValidateCreditCode(creditCode)
	if err != nil {
		return Enterprise{}, fieldErr(err, "credit_code")
	}
	actor := citizen(acc.ID, acc.Name)
	ok, err := s.base.VerifyEntity(ctx, cc.Code, name, acc.Name)
	if err != nil {
		return Enterprise{}, err
	}
	var regName, division string
	if ok {
		ent, err := s.base.FindEntityByCreditCode(ctx, cc.Code)
		if err != nil {
			return Enterprise{}, err
		}
		regName, division = ent.Name, ent.DivisionCode
		if ent.LegalRepID != "" {
			own, err := s.idNumber(acc)
			if err != nil {
				return Enterprise{}, fmt.Errorf("account %s id number: %w", acc.ID, err)
			}
			ok = subtle.ConstantTimeCompare([]byte(strings.ToUpper(own)), []byte(strings.ToUpper(ent.LegalRepID))) == 1
		}
	}
	if !ok {
		if err := s.recordAlone(ctx, actor, ActionEnterpriseRefused, "credit_code:"+cc.Code, map[string]any{"name": name}); err != nil {
			return Enterprise{}, err
		}
		return Enterprise{}, ErrEntityMismatch
	}
	now := s.clock()
	var out Enterprise
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		e, err := getEnterprise(ctx, tx, "credit_code", cc.Code)
		switch {
		case errors.Is(err, i18n.ErrNotFound):
			e = Enterprise{ID: db.NewID(), CreditCode: cc.Code, Name: regName, DivisionCode: division, VerifiedAt: now}
			if _, err := tx.Exec(ctx, `INSERT INTO enterprises (id, credit_code, name, division_code, verified_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, e.ID, e.CreditCode, e.Name, e.DivisionCode, now, now, now); err != nil {
				if db.IsUniqueViolation(err) {
					return i18n.ErrConflict.Wrap(err)
				}
				return fmt.Errorf("insert enterprise: %w", err)
			}
		case err != nil:
			return err
		default:
			e.Name, e.DivisionCode, e.VerifiedAt = regName, division, now
			if _, err := tx.Exec(ctx, `UPDATE enterprises SET name = ?, division_code = ?, verified_at = ?, updated_at = ? WHERE id = ?`,
				e.Name, e.DivisionCode, now, now, e.ID); err != nil {
				return fmt.Errorf("update enterprise: %w", err)
			}
		}
		out = e
		role, err := activeRole(ctx, tx, e.ID, acc.ID)
		if err != nil {
			return err
		}
		if role == RoleLegalRep {
			return nil // already bound: re-verified only
		}
		// The representative changed, or this account held a lesser role: end those memberships.
		rows, err := tx.Query(ctx, `SELECT account_id FROM enterprise_members WHERE enterprise_id = ? AND removed_at IS NULL
			AND (role = ? OR account_id = ?)`, e.ID, RoleLegalRep, acc.ID)
		if err != nil {
			return fmt.Errorf("read legal representative: %w", err)
		}
		var ended []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ended = append(ended, id)
		}
		rows.Close()
		for _, id := range ended {
			if err := endMembership(ctx, tx, e.ID, id, acc.ID, now); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO enterprise_members (id, enterprise_id, account_id, role, added_by, added_at)
			VALUES (?, ?, ?, ?, ?, ?)`, db.NewID(), e.ID, acc.ID, RoleLegalRep, acc.ID, now); err != nil {
			return fmt.Errorf("add legal representative: %w", err)
		}
		return s.record(ctx, tx, actor, ActionEnterpriseBound, enterpriseObject(e.ID),
			map[string]any{"credit_code": e.CreditCode, "name": e.Name, "replaced": ended})
	})
	if err != nil {
		return Enterprise{}, err
	}
	return out, nil
}

// endMembership ends an active membership and drops the enterprise from the member's
// sessions acting for it.
func endMembership(ctx context.Context, tx *db.Tx, enterpriseID, accountID, by string, now time.Time) error {
	res, err := tx.Exec(ctx, `UPDATE enterprise_members SET removed_at = ?, removed_by = ? WHERE enterprise_id = ? AND account_id = ?
		AND removed_at IS NULL`, now, by, enterpriseID, accountID)
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return i18n.ErrNotFound
	}
	if _, err := tx.Exec(ctx, `UPDATE sso_sessions SET acting_enterprise_id = NULL WHERE account_id = ? AND acting_enterprise_id = ?`,
		accountID, enterpriseID); err != nil {
		return fmt.Errorf("drop enterprise from sessions: %w", err)
	}
	return nil
}

// AddMember lets a real-name verified account, found by its mobile number, act for the
// enterprise as admin or operator. The actor must be the enterprise's legal representative
// or an administrator; only the legal representative appoints administrators. The answer
// tells the actor whether the number has a verified account (ErrMemberIneligible): they
// are appointing a colleague they know, and need to be told why it failed.
func (s *Service) AddMember(ctx context.Context, actorAccountID, enterpriseID, memberMobile, role string) (Member, error) {
	if role != RoleAdmin && role != RoleOperator {
		return Member{}, ErrBadRole
	}
	mobile, err := ids.ValidateMobile(memberMobile)
	if err != nil {
		return Member{}, fieldErr(err, "mobile")
	}
	actor, err := s.account(ctx, s.d, actorAccountID)
	if err != nil {
		return Member{}, err
	}
	// Check the actor's right first: whether a mobile has a verified account is told only to
	// those who may add members (checked again inside the transaction).
	if actorRole, err := activeRole(ctx, s.d, enterpriseID, actor.ID); err != nil {
		return Member{}, err
	} else if actorRole != RoleLegalRep && (actorRole != RoleAdmin || role == RoleAdmin) {
		return Member{}, i18n.ErrForbidden
	}
	member, err := s.readAccount(ctx, s.d, "mobile_idx", s.fc.BlindIndex(indexMobile, mobile))
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, ErrMemberIneligible
	} else if err != nil {
		return Member{}, fmt.Errorf("add member: %w", err)
	}
	if member.Level < LevelRealName || member.Status != StatusActive {
		return Member{}, ErrMemberIneligible
	}
	now := s.clock()
	out := Member{AccountID: member.ID, Name: member.Name, MobileMasked: ids.MaskMobile(member.Mobile), Role: role,
		AddedBy: actor.ID, AddedAt: now}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		actorRole, err := activeRole(ctx, tx, enterpriseID, actor.ID)
		if err != nil {
			return err
		}
		if actorRole != RoleLegalRep && (actorRole != RoleAdmin || role == RoleAdmin) {
			return i18n.ErrForbidden
		}
		if cur, err := activeRole(ctx, tx, enterpriseID, member.ID); err != nil {
			return err
		} else if cur != "" {
			return ErrMemberExists
		}
		if _, err := tx.Exec(ctx, `INSERT INTO enterprise_members (id, enterprise_id, account_id, role, added_by, added_at)
			VALUES (?, ?, ?, ?, ?, ?)`, db.NewID(), enterpriseID, member.ID, role, actor.ID, now); err != nil {
			if db.IsUniqueViolation(err) {
				return ErrMemberExists.Wrap(err)
			}
			return fmt.Errorf("add member: %w", err)
		}
		return s.record(ctx, tx, citizen(actor.ID, actor.Name), ActionMemberAdded, enterpriseObject(enterpriseID),
			map[string]any{"member": member.ID, "role": role, "mobile": out.MobileMasked})
	})
	if err != nil {
		return Member{}, err
	}
	return out, nil
}

// RemoveMember ends a membership. The legal representative removes anyone but themselves; an
// administrator removes operators; anyone may leave. The legal representative stays until
// another binds the enterprise (ErrLegalRepStays). Sessions acting for the enterprise as
// that member lose it at once.
func (s *Service) RemoveMember(ctx context.Context, actorAccountID, enterpriseID, memberAccountID string) error {
	actor, err := s.account(ctx, s.d, actorAccountID)
	if err != nil {
		return err
	}
	now := s.clock()
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		actorRole, err := activeRole(ctx, tx, enterpriseID, actor.ID)
		if err != nil {
			return err
		}
		target, err := activeRole(ctx, tx, enterpriseID, memberAccountID)
		if err != nil {
			return err
		}
		switch {
		case actorRole == "":
			return ErrNotMember
		case target == "":
			return i18n.ErrNotFound
		case target == RoleLegalRep:
			return ErrLegalRepStays
		case actor.ID == memberAccountID, actorRole == RoleLegalRep, actorRole == RoleAdmin && target == RoleOperator:
		default:
			return i18n.ErrForbidden
		}
		if err := endMembership(ctx, tx, enterpriseID, memberAccountID, actor.ID, now); err != nil {
			return err
		}
		return s.record(ctx, tx, citizen(actor.ID, actor.Name), ActionMemberRemoved, enterpriseObject(enterpriseID),
			map[string]any{"member": memberAccountID, "role": target})
	})
}

// ListMembers lists the enterprise's active members, legal representative first; the actor
// must be one of them.
func (s *Service) ListMembers(ctx context.Context, actorAccountID, enterpriseID string) ([]Member, error) {
	if role, err := activeRole(ctx, s.d, enterpriseID, actorAccountID); err != nil {
		return nil, err
	} else if role == "" {
		return nil, ErrNotMember
	}
	rows, err := s.d.Query(ctx, `SELECT m.account_id, a.name, a.mobile_enc, m.role, m.added_by, m.added_at
		FROM enterprise_members m JOIN accounts a ON a.id = m.account_id
		WHERE m.enterprise_id = ? AND m.removed_at IS NULL
		ORDER BY CASE m.role WHEN 'legal_rep' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, m.added_at, m.id`, enterpriseID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		var m Member
		var enc []byte
		if err := rows.Scan(&m.AccountID, &m.Name, &enc, &m.Role, &m.AddedBy, &m.AddedAt); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		mobile, err := s.fc.Open(enc, fieldAAD("accounts", m.AccountID, "mobile"))
		if err != nil {
			return nil, fmt.Errorf("account %s mobile: %w", m.AccountID, err)
		}
		m.MobileMasked = ids.MaskMobile(mobile)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ListEnterprises lists the enterprises the account may act for.
func (s *Service) ListEnterprises(ctx context.Context, accountID string) ([]Membership, error) {
	rows, err := s.d.Query(ctx, `SELECT e.id, e.credit_code, e.name, e.division_code, e.verified_at, m.role, m.added_at
		FROM enterprise_members m JOIN enterprises e ON e.id = m.enterprise_id
		WHERE m.account_id = ? AND m.removed_at IS NULL ORDER BY e.name, e.id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list enterprises: %w", err)
	}
	defer rows.Close()
	out := []Membership{}
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.ID, &m.CreditCode, &m.Name, &m.DivisionCode, &m.VerifiedAt, &m.Role, &m.AddedAt); err != nil {
			return nil, fmt.Errorf("list enterprises: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ---- claims ----

// Kinds of the Claims subject.
const (
	KindCitizen    = "citizen"
	KindEnterprise = "enterprise"
)

// Claims are what the OpenID Connect provider puts in ID tokens and answers at userinfo.
type Claims struct {
	Subject      string // the account id (stable, opaque)
	Kind         string // KindCitizen, or KindEnterprise when acting for one
	Name         string
	Level        int // the account's assurance level (the session's is the caller's to add)
	Division     string
	MobileMasked string
	Enterprise   *EnterpriseClaim
}

// EnterpriseClaim names the enterprise the person acts for, and their role there.
type EnterpriseClaim struct {
	ID         string
	CreditCode string
	Name       string
	Role       string
}

// Claims describes the account, acting for actingEnterpriseID unless it is "" (which must
// then be an active membership: ErrNotMember otherwise).
func (s *Service) Claims(ctx context.Context, accountID, actingEnterpriseID string) (Claims, error) {
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return Claims{}, err
	}
	if acc.Status != StatusActive {
		return Claims{}, ErrInactive
	}
	c := Claims{Subject: acc.ID, Kind: KindCitizen, Name: acc.Name, Level: acc.Level, Division: acc.DivisionCode,
		MobileMasked: ids.MaskMobile(acc.Mobile)}
	if actingEnterpriseID == "" {
		return c, nil
	}
	role, err := activeRole(ctx, s.d, actingEnterpriseID, acc.ID)
	if err != nil {
		return Claims{}, err
	}
	if role == "" {
		return Claims{}, ErrNotMember
	}
	e, err := getEnterprise(ctx, s.d, "id", actingEnterpriseID)
	if err != nil {
		return Claims{}, err
	}
	c.Kind = KindEnterprise
	c.Enterprise = &EnterpriseClaim{ID: e.ID, CreditCode: e.CreditCode, Name: e.Name, Role: role}
	return c, nil
}

// Subject is the authz subject of the account: the citizen (ID the account id, Division the
// household division), or, acting for an enterprise, the enterprise (ID the enterprise id,
// so authz.Owner matches its records; Division its registration division). Who acted for
// it is in the session and the audit log.
func (s *Service) Subject(ctx context.Context, accountID, actingEnterpriseID string) (authz.Subject, error) {
	c, err := s.Claims(ctx, accountID, actingEnterpriseID)
	if err != nil {
		return authz.Subject{}, err
	}
	if c.Enterprise == nil {
		return authz.Subject{Kind: authz.Citizen, ID: c.Subject, Name: c.Name, Division: c.Division}, nil
	}
	e, err := s.GetEnterprise(ctx, c.Enterprise.ID)
	if err != nil {
		return authz.Subject{}, err
	}
	return authz.Subject{Kind: authz.Enterprise, ID: e.ID, Name: e.Name, Division: e.DivisionCode}, nil
}

package license

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// GrantInput is a holder's authorisation (用证授权).
type GrantInput struct {
	LicenseID  string
	DeptID     string    // the department that may use it
	Purpose    string    // what for, shown to the officer and in the holder's record
	Ref        string    // the application it is for (optional); the use must name it
	ValidUntil time.Time // at most Options.MaxGrantDays ahead
}

// GrantUse lets the holder of a licence authorise a department to read it for one purpose
// until a time: officers of that department then see the verified licence (Use) instead of
// an uploaded scan.
func (s *Service) GrantUse(ctx context.Context, actor authz.Subject, in GrantInput) (UseGrant, error) {
	idx, err := s.holderIndex(ctx, actor)
	if err != nil {
		return UseGrant{}, err
	}
	pid, err := ParseIdentifier(in.LicenseID)
	if err != nil {
		return UseGrant{}, err
	}
	r, err := getRow(ctx, s.d, pid.String())
	if err != nil {
		return UseGrant{}, err
	}
	if r.holderIdx != idx {
		return UseGrant{}, i18n.ErrForbidden
	}
	now := s.clock()
	if statusAt(r.stored, r.ValidUntil, now) != StatusValid {
		return UseGrant{}, ErrNotUsable
	}
	purpose := strings.TrimSpace(in.Purpose)
	ref := strings.TrimSpace(in.Ref)
	until := db.Now(in.ValidUntil)
	switch n := utf8.RuneCountInString(purpose); {
	case n == 0 || n > 500:
		return UseGrant{}, invalid("purpose", "license.grant.purpose", "请说明用途（最多500字）", "state the purpose (at most 500 characters)")
	case utf8.RuneCountInString(ref) > 100:
		return UseGrant{}, invalid("ref", "license.grant.ref", "申请编号最多100字", "the application reference is at most 100 characters")
	case !until.After(now) || until.After(now.AddDate(0, 0, s.opts.MaxGrantDays)):
		return UseGrant{}, invalid("valid_until", "license.grant.until", "授权期限须在当前时间之后%d天以内", "the authorisation must end within %d days from now", s.opts.MaxGrantDays)
	}
	if s.depts == nil {
		return UseGrant{}, i18n.ErrNotFound
	}
	dep, err := s.depts.Department(ctx, strings.TrimSpace(in.DeptID))
	if err != nil {
		return UseGrant{}, err
	}
	g := UseGrant{ID: db.NewID(), LicenseID: r.ID, TypeName: r.TypeName, HolderName: r.HolderName, DeptID: dep.ID, DeptName: dep.Name,
		Division: dep.Division, Purpose: purpose, Ref: ref, ValidUntil: until, CreatedAt: now, CreatedBy: actor.String()}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO license_use_grants (id, license_id, holder_idx, dept_id, dept_name, division, purpose, ref,
			valid_until, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.LicenseID, idx, g.DeptID, g.DeptName, g.Division, g.Purpose, g.Ref, g.ValidUntil, g.CreatedAt, g.CreatedBy); err != nil {
			return fmt.Errorf("insert use grant: %w", err)
		}
		return s.record(ctx, tx, actor, ActionGrant, "license_grant:"+g.ID, map[string]any{"license_id": g.LicenseID, "dept_id": g.DeptID,
			"purpose": g.Purpose, "ref": g.Ref, "valid_until": g.ValidUntil})
	})
	if err != nil {
		return UseGrant{}, err
	}
	return g, nil
}

// RevokeUse ends a holder's authorisation at once.
func (s *Service) RevokeUse(ctx context.Context, actor authz.Subject, grantID string) (UseGrant, error) {
	idx, err := s.holderIndex(ctx, actor)
	if err != nil {
		return UseGrant{}, err
	}
	now := s.clock()
	var out UseGrant
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE license_use_grants SET revoked = revoked WHERE id = ?`, grantID); err != nil {
			return fmt.Errorf("lock use grant %s: %w", grantID, err)
		}
		gs, err := queryGrants(ctx, tx, `WHERE id = ? AND holder_idx = ?`, grantID, idx)
		if err != nil {
			return err
		}
		if len(gs) == 0 {
			return i18n.ErrNotFound // another holder's grant is none of this one's business
		}
		g := gs[0]
		if g.Revoked {
			return ErrState
		}
		if _, err := tx.Exec(ctx, `UPDATE license_use_grants SET revoked = TRUE, revoked_at = ? WHERE id = ?`, now, g.ID); err != nil {
			return fmt.Errorf("revoke use grant %s: %w", g.ID, err)
		}
		g.Revoked, g.RevokedAt, out = true, &now, g
		return s.record(ctx, tx, actor, ActionGrantRevoke, "license_grant:"+g.ID, map[string]any{"license_id": g.LicenseID})
	})
	return out, err
}

// UseGrants lists the holder's authorisations, newest first: of one licence, or all when
// licenseID is "".
func (s *Service) UseGrants(ctx context.Context, actor authz.Subject, licenseID string) ([]UseGrant, error) {
	idx, err := s.holderIndex(ctx, actor)
	if err != nil {
		return nil, err
	}
	if licenseID == "" {
		return queryGrants(ctx, s.d, `WHERE holder_idx = ? ORDER BY created_at DESC, id DESC LIMIT 1000`, idx)
	}
	return queryGrants(ctx, s.d, `WHERE holder_idx = ? AND license_id = ? ORDER BY created_at DESC, id DESC`, idx, licenseID)
}

// GrantsToDept lists the live authorisations given to the officer's department, for the case
// page: the licences applicants let it use. ref narrows them to one application.
func (s *Service) GrantsToDept(ctx context.Context, actor authz.Subject, ref string) ([]UseGrant, error) {
	if err := s.officer(actor); err != nil {
		return nil, err
	}
	where, args := `WHERE dept_id = ? AND revoked = FALSE AND valid_until > ?`, []any{actor.Dept, s.clock()}
	if ref != "" {
		where += ` AND ref = ?`
		args = append(args, ref)
	}
	gs, err := queryGrants(ctx, s.d, where+` ORDER BY created_at DESC, id DESC LIMIT 1000`, args...)
	if err != nil {
		return nil, err
	}
	out := gs[:0]
	for _, g := range gs {
		if s.policy.Allowed(actor, PermUse, g.Division) {
			out = append(out, g)
		}
	}
	return out, nil
}

// officer checks the actor is staff of a department holding PermUse in their division.
func (s *Service) officer(actor authz.Subject) error {
	switch {
	case actor.Kind == "":
		return i18n.ErrUnauthorized
	case actor.Kind != authz.Staff || actor.Dept == "":
		return i18n.ErrForbidden
	}
	return s.policy.Authorize(actor, PermUse, actor.Division)
}

// Use reads a licence on behalf of the officer's department under the holder's live
// authorisation (for ref, when the authorisation names an application): the licence must
// be in force; the use is recorded for the holder to see, audited and announced in one
// transaction. Without an authorisation the answer is ErrNoGrant (403).
//
// A use is recorded once per licence, department and application: reading it again for
// the same application (a case page viewed again, by that officer or another of the
// department — the holder authorised the department, not a person) is checked the same
// way but recorded, audited and announced no more. A read naming no application is
// recorded each time, there being nothing to tell it is the same use.
func (s *Service) Use(ctx context.Context, actor authz.Subject, licenseID, ref string) (License, error) {
	if err := s.officer(actor); err != nil {
		return License{}, err
	}
	pid, err := ParseIdentifier(licenseID)
	if err != nil {
		return License{}, err
	}
	now := s.clock()
	ref = strings.TrimSpace(ref)
	gs, err := queryGrants(ctx, s.d, `WHERE license_id = ? AND dept_id = ? AND revoked = FALSE AND valid_until > ? AND (ref = '' OR ref = ?)
		ORDER BY created_at DESC, id DESC`, pid.String(), actor.Dept, now, ref)
	if err != nil {
		return License{}, err
	}
	var g *UseGrant
	for i := range gs {
		if s.policy.Allowed(actor, PermUse, gs[i].Division) {
			g = &gs[i]
			break
		}
	}
	if g == nil {
		return License{}, ErrNoGrant
	}
	r, err := getRow(ctx, s.d, pid.String())
	if err != nil {
		return License{}, err
	}
	if st := statusAt(r.stored, r.ValidUntil, now); st != StatusValid {
		detail := StatusNames[st].String()
		if r.statusReason != "" {
			detail += ": " + r.statusReason
		}
		if r.SupersededBy != "" {
			detail += " → " + r.SupersededBy
		}
		return License{}, ErrNotUsable.Wrap(errors.New(detail))
	}
	c, err := s.open(r)
	if err != nil {
		return License{}, err
	}
	u := Use{ID: db.NewID(), GrantID: g.ID, LicenseID: r.ID, TypeName: r.TypeName, DeptID: g.DeptID, DeptName: g.DeptName,
		Officer: actor.String(), Purpose: g.Purpose, Ref: ref, At: now}
	if u.Ref == "" {
		u.Ref = g.Ref
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if u.Ref != "" {
			if seen, err := recordedUse(ctx, tx, r, u); err != nil || seen {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO license_uses (id, grant_id, license_id, type_name, holder_idx, dept_id, dept_name, officer,
			purpose, ref, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.GrantID, u.LicenseID, u.TypeName, r.holderIdx, u.DeptID, u.DeptName, u.Officer, u.Purpose, u.Ref, u.At); err != nil {
			return fmt.Errorf("record use of %s: %w", r.ID, err)
		}
		if err := s.record(ctx, tx, actor, ActionUse, "license:"+r.ID, map[string]any{"grant_id": g.ID, "purpose": g.Purpose, "ref": u.Ref}); err != nil {
			return err
		}
		_, err := bus.Publish(ctx, tx, EventSubjectUsed, Notice{ID: r.ID, TypeCode: r.TypeCode, Version: r.Version, IssuerDeptID: r.IssuerDeptID,
			HolderKind: string(r.HolderKind), Action: "used", DeptID: u.DeptID, Ref: u.Ref})
		return err
	})
	if err != nil {
		return License{}, err
	}
	return s.license(ctx, r, c, now)
}

// recordedUse reports whether the department already has a use of the licence for the
// application of u. The licence row is locked first so that two first views racing each
// other record one use: on PostgreSQL the second waits for the first to commit and then
// sees its row; SQLite runs one writer at a time.
func recordedUse(ctx context.Context, tx *db.Tx, r row, u Use) (bool, error) {
	if _, err := tx.Exec(ctx, `UPDATE licenses SET status = status WHERE id = ?`, r.ID); err != nil {
		return false, fmt.Errorf("lock licence %s: %w", r.ID, err)
	}
	var n int
	// holder_idx leads the condition for its index: license_uses has none on license_id.
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM license_uses WHERE holder_idx = ? AND license_id = ? AND dept_id = ? AND ref = ?`,
		r.holderIdx, r.ID, u.DeptID, u.Ref).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("find the use of %s for %s: %w", r.ID, u.Ref, err)
	}
	return n > 0, nil
}

// Uses lists every use of the holder's licences, newest first (their "who used my licence").
func (s *Service) Uses(ctx context.Context, actor authz.Subject) ([]Use, error) {
	idx, err := s.holderIndex(ctx, actor)
	if err != nil {
		return nil, err
	}
	rows, err := s.d.Query(ctx, `SELECT id, grant_id, license_id, type_name, dept_id, dept_name, officer, purpose, ref, at
		FROM license_uses WHERE holder_idx = ? ORDER BY at DESC, id DESC LIMIT 1000`, idx)
	if err != nil {
		return nil, fmt.Errorf("list uses: %w", err)
	}
	defer rows.Close()
	out := []Use{}
	for rows.Next() {
		var u Use
		if err := rows.Scan(&u.ID, &u.GrantID, &u.LicenseID, &u.TypeName, &u.DeptID, &u.DeptName, &u.Officer, &u.Purpose, &u.Ref, &u.At); err != nil {
			return nil, fmt.Errorf("list uses: %w", err)
		}
		u.At = u.At.UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

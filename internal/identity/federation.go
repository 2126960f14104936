package identity

// Federation (issue A1 item 6): a person signs in through an upstream OpenID provider — the
// national government service platform (国家政务服务平台) — and is signed in here as the
// local account that upstream identity is linked to. The protocol (discovery, code exchange,
// ID-token verification) is the portal's; this file holds the links and the policy.
//
// Linking policy. An upstream identity is (issuer, subject). It reaches a local account only
// in one of three ways, each audited (ActionFederationLinked, detail "method"):
//
//   - explicit: the person, signed in locally, signs in upstream and asks to link
//     (LinkFederated, LinkFederatedIdentity). They proved both sides. When the upstream
//     asserts a real-name identity that differs from the account's verified one, the link
//     is refused (ErrFederationMismatch).
//   - id_number: the upstream asserts a real-name verified identity — a name and an ID
//     number, at level 2 or more — and exactly one local account is verified with that ID
//     number and the same registered name (the ID number binds one account, so "exactly
//     one" is "the one"). The two are the same person by the same evidence a local
//     real-name verification uses.
//   - created: the upstream asserts such an identity, no local account has the ID number,
//     and the name and ID number match the population library: a level-2 account is
//     created, bound to the ID number, with no password and no mobile. It signs in only
//     through the upstream until its owner sets a password (SetInitialPassword; then also
//     by ID number and password).
//
// Anything else — no real-name claims, a level below 2, a name that does not match — is
// ErrFederationNotLinked: no account is created silently, and the person signs in locally
// once to link. A federated session's level is min(account level, upstream-asserted level),
// its amr ["fed"].

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// AMRFederated is the amr of a session authenticated by an upstream identity provider.
const AMRFederated = "fed"

// Audit actions of federation. A federated login is ActionLogin (or ActionLoginFailed) with
// detail method "fed".
const (
	ActionFederationLinked   = "identity.federation_linked"
	ActionFederationUnlinked = "identity.federation_unlinked"
	ActionFederationRefused  = "identity.federation_refused"
	ActionPasswordSet        = "identity.password_set"
)

// Ways an upstream identity came to be linked (federated_identities.method).
const (
	LinkExplicit = "explicit"
	LinkIDNumber = "id_number"
	LinkCreated  = "created"
)

// Errors of federation.
var (
	ErrFederationNotLinked = userErr(http.StatusConflict, "identity.federation.not_linked",
		"该账号尚未关联本站账号，请先用本站账号登录一次以完成关联",
		"this account is not linked to an account here yet; sign in here once to link it")
	ErrFederationLinkedElsewhere = userErr(http.StatusConflict, "identity.federation.linked_elsewhere",
		"该外部账号已关联本站的其他账号", "this external account is already linked to another account here")
	ErrFederationIssuerLinked = userErr(http.StatusConflict, "identity.federation.issuer_linked",
		"本账号已关联该平台的另一个账号，请先解除关联", "this account is already linked to another account of that platform; unlink it first")
	ErrFederationMismatch = userErr(http.StatusConflict, "identity.federation.mismatch",
		"外部账号的实名信息与本账号不一致，不能关联", "the external account's verified identity differs from this account's; they cannot be linked")
	ErrFederationLastMethod = userErr(http.StatusConflict, "identity.federation.last_method",
		"本账号尚未设置密码，解除关联后将无法登录；请先设置密码", "this account has no password yet and could not sign in without this link; set a password first")
	ErrFederationInvalid = userErr(http.StatusBadRequest, "identity.federation.invalid",
		"外部身份信息无效", "the external identity is not valid")
	ErrFederationReplay = userErr(http.StatusBadRequest, "identity.federation.replay",
		"该登录请求已使用，请重新登录", "this sign-in was already used; please sign in again")
	ErrPasswordAlreadySet = userErr(http.StatusConflict, "identity.password.set",
		"本账号已设置密码", "this account already has a password")
)

// FederatedIdentity is who an upstream provider says signed in, from its verified ID token.
type FederatedIdentity struct {
	Issuer  string // the upstream's issuer URL
	Subject string // its "sub"
	// Level is the assurance the upstream asserted for this login (acr), 0 when it said none.
	Level int
	// Name and IDNumber are the upstream's real-name claims, "" when absent. They count only
	// with Level ≥ 2.
	Name     string
	IDNumber string
}

// realName is the asserted real-name identity (the ID number normalised), ok only when the
// upstream vouches for it at level 2 or more.
func (fi FederatedIdentity) realName(now time.Time) (name string, id ids.Resident, ok bool) {
	if fi.Level < LevelRealName || fi.Name == "" || fi.IDNumber == "" {
		return "", ids.Resident{}, false
	}
	r, err := ids.ValidateResidentAt(fi.IDNumber, now)
	if err != nil {
		return "", ids.Resident{}, false
	}
	return fi.Name, r, true
}

func cleanFederated(fi FederatedIdentity) (FederatedIdentity, error) {
	fi.Issuer, fi.Subject = strings.TrimSpace(fi.Issuer), strings.TrimSpace(fi.Subject)
	for _, v := range []string{fi.Issuer, fi.Subject} {
		if v == "" || len(v) > 255 || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return fi, ErrFederationInvalid
		}
	}
	fi.Level = max(0, min(fi.Level, LevelStrong))
	if n, err := cleanName(fi.Name); err == nil {
		fi.Name = n
	} else {
		fi.Name = ""
	}
	fi.IDNumber = strings.TrimSpace(fi.IDNumber)
	return fi, nil
}

// FederatedLink is an upstream identity linked to an account.
type FederatedLink struct {
	Issuer      string
	Subject     string
	AccountID   string
	Method      string // LinkExplicit, LinkIDNumber or LinkCreated
	LinkedAt    time.Time
	LastLoginAt *time.Time
}

// FederatedLogin is the outcome of LoginFederated.
type FederatedLogin struct {
	Token   string  // the SSO session token for the browser
	Session Session // the session: level min(account, upstream), amr ["fed"]
	Account Account
	// Linked is "" when the identity was linked before, else how it was linked just now
	// (LinkIDNumber or LinkCreated).
	Linked string
}

func federatedObject(issuer, subject string) string { return "federated:" + issuer + "#" + subject }

const linkSelect = `SELECT issuer, subject, account_id, method, linked_at, last_login_at FROM federated_identities`

func scanLink(sc interface{ Scan(...any) error }) (FederatedLink, error) {
	var l FederatedLink
	var last sql.NullTime
	if err := sc.Scan(&l.Issuer, &l.Subject, &l.AccountID, &l.Method, &l.LinkedAt, &last); err != nil {
		return l, err
	}
	if last.Valid {
		t := last.Time
		l.LastLoginAt = &t
	}
	return l, nil
}

func readLink(ctx context.Context, q db.Querier, issuer, subject string) (FederatedLink, error) {
	l, err := scanLink(q.QueryRow(ctx, linkSelect+` WHERE issuer = ? AND subject = ?`, issuer, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return l, i18n.ErrNotFound
	}
	if err != nil {
		return l, fmt.Errorf("read federated identity: %w", err)
	}
	return l, nil
}

// AccountByFederated returns the account the upstream identity is linked to, or
// i18n.ErrNotFound.
func (s *Service) AccountByFederated(ctx context.Context, issuer, subject string) (Account, error) {
	l, err := readLink(ctx, s.d, issuer, subject)
	if err != nil {
		return Account{}, err
	}
	return s.GetAccount(ctx, l.AccountID)
}

// ListFederated lists the account's upstream identities, oldest link first.
func (s *Service) ListFederated(ctx context.Context, accountID string) ([]FederatedLink, error) {
	rows, err := s.d.Query(ctx, linkSelect+` WHERE account_id = ? ORDER BY linked_at, issuer`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list federated identities: %w", err)
	}
	defer rows.Close()
	out := []FederatedLink{}
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("list federated identities: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// HasPassword tells whether the account has a password of its own (accounts created by a
// federated login have none until SetInitialPassword).
func (s *Service) HasPassword(ctx context.Context, accountID string) (bool, error) {
	var set bool
	err := s.d.QueryRow(ctx, `SELECT password_set FROM accounts WHERE id = ?`, accountID).Scan(&set)
	if errors.Is(err, sql.ErrNoRows) {
		return false, i18n.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("read account: %w", err)
	}
	return set, nil
}

// LinkFederated links an upstream identity to the account explicitly: the caller has
// authenticated the person both locally (their session) and upstream (a verified ID token
// of issuer naming subject). Linking an identity already linked to this account changes
// nothing; one linked to another account is ErrFederationLinkedElsewhere, and an account
// already linked to another identity of the issuer is ErrFederationIssuerLinked.
func (s *Service) LinkFederated(ctx context.Context, accountID, issuer, subject string) (FederatedLink, error) {
	return s.LinkFederatedIdentity(ctx, accountID, FederatedIdentity{Issuer: issuer, Subject: subject})
}

// LinkFederatedIdentity is LinkFederated with the rest of what the upstream asserted: when it
// vouches for a real-name identity (level ≥ 2, name and ID number) and the account is
// verified with another ID number, the link is refused (ErrFederationMismatch) — one of the
// two sides is not this person.
func (s *Service) LinkFederatedIdentity(ctx context.Context, accountID string, fi FederatedIdentity) (FederatedLink, error) {
	fi, err := cleanFederated(fi)
	if err != nil {
		return FederatedLink{}, err
	}
	acc, err := s.account(ctx, s.d, accountID)
	if err != nil {
		return FederatedLink{}, err
	}
	if acc.Status != StatusActive {
		return FederatedLink{}, ErrInactive
	}
	now := s.clock()
	actor := citizen(acc.ID, acc.Name)
	refuse := func(base *i18n.Error, reason string) (FederatedLink, error) {
		if err := s.recordAlone(ctx, actor, ActionFederationRefused, accountObject(acc.ID),
			map[string]any{"issuer": fi.Issuer, "subject": fi.Subject, "reason": reason}); err != nil {
			return FederatedLink{}, err
		}
		return FederatedLink{}, base
	}
	if differs, err := s.identityDiffers(acc, fi, now); err != nil {
		return FederatedLink{}, err
	} else if differs {
		return refuse(ErrFederationMismatch, "id_number_differs")
	}
	var link FederatedLink
	var refused *i18n.Error
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		refused = nil
		existing, err := readLink(ctx, tx, fi.Issuer, fi.Subject)
		switch {
		case err == nil && existing.AccountID == acc.ID:
			link = existing
			return nil
		case err == nil:
			refused = ErrFederationLinkedElsewhere
			return nil
		case !errors.Is(err, i18n.ErrNotFound):
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM federated_identities WHERE account_id = ? AND issuer = ?`,
			acc.ID, fi.Issuer).Scan(&n); err != nil {
			return fmt.Errorf("check federated identities: %w", err)
		}
		if n > 0 {
			refused = ErrFederationIssuerLinked
			return nil
		}
		link, err = s.insertLink(ctx, tx, acc.Account, fi, LinkExplicit, nil, now)
		return err
	})
	if db.IsUniqueViolation(err) {
		// A concurrent link of the same identity or issuer won.
		refused, err = ErrFederationLinkedElsewhere, nil
	}
	if err != nil {
		return FederatedLink{}, err
	}
	if refused != nil {
		reason := "linked_elsewhere"
		if refused == ErrFederationIssuerLinked {
			reason = "issuer_linked"
		}
		return refuse(refused, reason)
	}
	return link, nil
}

// identityDiffers tells whether the upstream vouches for a real-name identity other than the
// one the account is verified with.
func (s *Service) identityDiffers(acc accountRow, fi FederatedIdentity, now time.Time) (bool, error) {
	_, id, ok := fi.realName(now)
	if !ok || acc.idEnc == nil {
		return false, nil
	}
	own, err := s.idNumber(acc)
	if err != nil {
		return false, err
	}
	return own != id.Number, nil
}

// insertLink links fi to acc inside tx and records it.
func (s *Service) insertLink(ctx context.Context, tx *db.Tx, acc Account, fi FederatedIdentity, method string, lastLogin any, now time.Time) (FederatedLink, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO federated_identities (issuer, subject, account_id, method, linked_at, last_login_at)
		VALUES (?, ?, ?, ?, ?, ?)`, fi.Issuer, fi.Subject, acc.ID, method, now, lastLogin); err != nil {
		return FederatedLink{}, fmt.Errorf("link federated identity: %w", err)
	}
	detail := map[string]any{"issuer": fi.Issuer, "subject": fi.Subject, "method": method, "upstream_level": fi.Level}
	if err := s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionFederationLinked, accountObject(acc.ID), detail); err != nil {
		return FederatedLink{}, err
	}
	l := FederatedLink{Issuer: fi.Issuer, Subject: fi.Subject, AccountID: acc.ID, Method: method, LinkedAt: now}
	if t, ok := lastLogin.(time.Time); ok {
		l.LastLoginAt = &t
	}
	return l, nil
}

// UnlinkFederated removes the link of the upstream identity from the account; one that is
// not linked to it is i18n.ErrNotFound. An account without a password of its own keeps its
// last link (ErrFederationLastMethod): it could not sign in otherwise.
func (s *Service) UnlinkFederated(ctx context.Context, accountID, issuer, subject string) error {
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		// Lock the account row first: a concurrent unlink of its other link must not leave it
		// with none.
		if _, err := tx.Exec(ctx, `UPDATE accounts SET updated_at = updated_at WHERE id = ?`, accountID); err != nil {
			return fmt.Errorf("lock account: %w", err)
		}
		l, err := readLink(ctx, tx, issuer, subject)
		if err != nil {
			return err
		}
		if l.AccountID != accountID {
			return i18n.ErrNotFound
		}
		var set bool
		var links int
		if err := tx.QueryRow(ctx, `SELECT a.password_set, (SELECT COUNT(*) FROM federated_identities f WHERE f.account_id = a.id)
			FROM accounts a WHERE a.id = ?`, accountID).Scan(&set, &links); err != nil {
			return fmt.Errorf("read account: %w", err)
		}
		if !set && links <= 1 {
			return ErrFederationLastMethod
		}
		if _, err := tx.Exec(ctx, `DELETE FROM federated_identities WHERE issuer = ? AND subject = ? AND account_id = ?`,
			issuer, subject, accountID); err != nil {
			return fmt.Errorf("unlink federated identity: %w", err)
		}
		return s.record(ctx, tx, citizen(accountID, ""), ActionFederationUnlinked, accountObject(accountID),
			map[string]any{"issuer": issuer, "subject": subject, "linked_at": l.LinkedAt})
	})
}

// SetInitialPassword gives an account created by a federated login its first password (the
// ID number is then its login name too). An account that has one changes it the usual way
// (ErrPasswordAlreadySet).
func (s *Service) SetInitialPassword(ctx context.Context, accountID, password string) error {
	set, err := s.HasPassword(ctx, accountID)
	if err != nil {
		return err
	}
	if set {
		return ErrPasswordAlreadySet
	}
	if err := org.ValidatePassword("", password); err != nil {
		return err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	now := s.clock()
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE accounts SET password_hash = ?, password_set = ?, failed_logins = 0, locked_until = NULL,
			updated_at = ? WHERE id = ? AND password_set = ?`, hash, true, now, accountID, false)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrPasswordAlreadySet
		}
		return s.record(ctx, tx, citizen(accountID, ""), ActionPasswordSet, accountObject(accountID), map[string]any{})
	})
}

// SpendFederationState records that the federated login with this state (the random value
// the portal sent upstream) has come back; a second callback with it is ErrFederationReplay.
// Rows live until expires, the end of the login's validity; expired ones are dropped here.
func (s *Service) SpendFederationState(ctx context.Context, state string, expires time.Time) error {
	if state == "" {
		return ErrFederationReplay
	}
	now := s.clock()
	h := crypto.SM3Hex([]byte("identity-federation-state\x00" + state))
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM federated_states WHERE expires_at < ?`, now); err != nil {
			return fmt.Errorf("sweep federation states: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO federated_states (state_hash, expires_at) VALUES (?, ?)`, h, db.Now(expires))
		return err
	})
	if db.IsUniqueViolation(err) {
		return ErrFederationReplay
	}
	if err != nil {
		return fmt.Errorf("spend federation state: %w", err)
	}
	return nil
}

// LoginFederated signs in the account an upstream identity is linked to — linking or
// creating it first where the policy (see the top of this file) allows — and starts its SSO
// session: level min(account level, fi.Level) (at least 1: the upstream authenticated the
// person), amr ["fed"]. An identity that is not linked and cannot be linked automatically is
// ErrFederationNotLinked; a disabled account is ErrInactive. Every outcome is audited.
func (s *Service) LoginFederated(ctx context.Context, fi FederatedIdentity, ip, ua string) (FederatedLogin, error) {
	fi, err := cleanFederated(fi)
	if err != nil {
		return FederatedLogin{}, err
	}
	for attempt := 0; ; attempt++ {
		out, err := s.loginFederated(ctx, fi, ip, ua)
		// A concurrent first login of the same person linked the identity or created the
		// account meanwhile: the second attempt finds it.
		if attempt == 0 && db.IsUniqueViolation(err) {
			continue
		}
		return out, err
	}
}

// federatedPlan is what loginFederated decided before its transaction.
type federatedPlan struct {
	link     *FederatedLink
	acc      accountRow
	method   string // "" (linked before), LinkIDNumber or LinkCreated
	name     string // LinkCreated: the population library's name, division and ID number
	division string
	number   string
}

func (s *Service) loginFederated(ctx context.Context, fi FederatedIdentity, ip, ua string) (FederatedLogin, error) {
	now := s.clock()
	object := federatedObject(fi.Issuer, fi.Subject)
	failed := func(accountID, reason string, base error) (FederatedLogin, error) {
		obj := object
		if accountID != "" {
			obj = accountObject(accountID)
		}
		if err := s.recordAlone(ctx, authz.Subject{}, ActionLoginFailed, obj,
			map[string]any{"method": AMRFederated, "issuer": fi.Issuer, "subject": fi.Subject, "reason": reason,
				"upstream_level": fi.Level}); err != nil {
			return FederatedLogin{}, err
		}
		return FederatedLogin{}, base
	}
	var p federatedPlan
	l, err := readLink(ctx, s.d, fi.Issuer, fi.Subject)
	switch {
	case err == nil:
		p.link = &l
		if p.acc, err = s.account(ctx, s.d, l.AccountID); err != nil {
			return FederatedLogin{}, err
		}
		// The upstream now vouches for someone else than the account was verified as: one of
		// the two records is wrong, and this login is not the place to guess which.
		if differs, err := s.identityDiffers(p.acc, fi, now); err != nil {
			return FederatedLogin{}, err
		} else if differs {
			return failed(p.acc.ID, "identity_differs", ErrFederationMismatch)
		}
	case !errors.Is(err, i18n.ErrNotFound):
		return FederatedLogin{}, err
	default:
		name, id, ok := fi.realName(now)
		number := id.Number
		if !ok {
			return failed("", "not_linked", ErrFederationNotLinked)
		}
		acc, err := s.readAccount(ctx, s.d, "id_number_idx", s.fc.BlindIndex(indexResident, number))
		switch {
		case err == nil:
			// The one account verified with this ID number: the same person if the
			// registered names agree too.
			if acc.Level < LevelRealName || acc.Name != name {
				return failed(acc.ID, "identity_differs", ErrFederationNotLinked)
			}
			p.acc, p.method = acc, LinkIDNumber
		case !errors.Is(err, sql.ErrNoRows):
			return FederatedLogin{}, fmt.Errorf("federated login: %w", err)
		default:
			ok, err := s.base.VerifyPerson(ctx, name, number)
			if err != nil {
				return FederatedLogin{}, err
			}
			if !ok {
				return failed("", "not_in_population_library", ErrFederationNotLinked)
			}
			p.method, p.name, p.number = LinkCreated, name, number
			p.division = id.Division
			if person, err := s.base.FindPersonByIDNumber(ctx, number); err == nil {
				p.name, p.division = person.Name, person.DivisionCode
			} else if !errors.Is(err, i18n.ErrNotFound) {
				return FederatedLogin{}, err
			}
		}
	}
	if p.method != LinkCreated && p.acc.Status != StatusActive {
		return failed(p.acc.ID, "inactive", ErrInactive)
	}
	var created *accountRow
	if p.method == LinkCreated {
		r, err := s.newFederatedAccount(ctx, p, now)
		if err != nil {
			return FederatedLogin{}, err
		}
		created = &r
	}

	var out FederatedLogin
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		var acc accountRow
		switch {
		case created != nil:
			if err := s.insertFederatedAccount(ctx, tx, *created, p.number, fi, now); err != nil {
				return err
			}
			acc = *created
		default:
			// Lock and re-read: the account may have been disabled, or the link removed, since.
			if _, err := tx.Exec(ctx, `UPDATE accounts SET failed_logins = failed_logins WHERE id = ?`, p.acc.ID); err != nil {
				return fmt.Errorf("lock account: %w", err)
			}
			cur, err := s.account(ctx, tx, p.acc.ID)
			if err != nil {
				return err
			}
			if cur.Status != StatusActive {
				return ErrInactive
			}
			acc = cur
		}
		if p.link != nil {
			res, err := tx.Exec(ctx, `UPDATE federated_identities SET last_login_at = ? WHERE issuer = ? AND subject = ? AND account_id = ?`,
				now, fi.Issuer, fi.Subject, acc.ID)
			if err != nil {
				return fmt.Errorf("record federated login: %w", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return ErrFederationNotLinked // unlinked meanwhile
			}
		} else if _, err := s.insertLink(ctx, tx, acc.Account, fi, p.method, now, now); err != nil {
			return err
		}
		level := max(LevelRegistered, min(acc.Level, fi.Level))
		if err := s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionLogin, accountObject(acc.ID),
			map[string]any{"method": AMRFederated, "issuer": fi.Issuer, "subject": fi.Subject,
				"upstream_level": fi.Level, "level": level}); err != nil {
			return err
		}
		token, ses, err := s.insertSession(ctx, tx, acc.Account, level, []string{AMRFederated}, ip, ua, now)
		if err != nil {
			return err
		}
		out = FederatedLogin{Token: token, Session: ses, Account: acc.Account, Linked: p.method}
		return nil
	})
	if errors.Is(err, ErrInactive) {
		return failed(p.acc.ID, "inactive", ErrInactive)
	}
	if err != nil {
		return FederatedLogin{}, err
	}
	return out, nil
}

// newFederatedAccount prepares the row of an account created by a federated login: sealed
// fields, no mobile (an empty sealed value; mobile_idx a placeholder that no mobile's
// blind index can equal, since those are hex), and as password the hash of a random secret.
func (s *Service) newFederatedAccount(ctx context.Context, p federatedPlan, now time.Time) (accountRow, error) {
	var r accountRow
	r.ID = db.NewID()
	hash, err := s.hash(ctx, newToken())
	if err != nil {
		return r, fmt.Errorf("hash password: %w", err)
	}
	if r.mobileEnc, err = s.fc.Seal("", fieldAAD("accounts", r.ID, "mobile")); err != nil {
		return r, fmt.Errorf("seal mobile: %w", err)
	}
	if r.idEnc, err = s.fc.Seal(p.number, fieldAAD("accounts", r.ID, "id_number")); err != nil {
		return r, fmt.Errorf("seal id number: %w", err)
	}
	t := now
	r.Name, r.DivisionCode, r.Level, r.VerifiedAt, r.Status = p.name, p.division, LevelRealName, &t, StatusActive
	r.IDNumberMasked, r.CreatedAt, r.UpdatedAt, r.hash = ids.MaskResident(p.number), now, now, hash
	return r, nil
}

func (s *Service) insertFederatedAccount(ctx context.Context, tx *db.Tx, r accountRow, number string, fi FederatedIdentity, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, name, mobile_enc, mobile_idx, id_number_enc, id_number_idx, division_code,
		password_hash, password_set, level, verified_at, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.mobileEnc, "none:"+r.ID, r.idEnc, s.fc.BlindIndex(indexResident, number), r.DivisionCode,
		r.hash, false, LevelRealName, now, StatusActive, now, now); err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return s.record(ctx, tx, citizen(r.ID, r.Name), ActionRegister, accountObject(r.ID),
		map[string]any{"via": "federation", "issuer": fi.Issuer, "id_number": r.IDNumberMasked,
			"division": r.DivisionCode, "level": LevelRealName})
}

// insertSession starts an SSO session inside tx (CreateSession's row and audit entry).
func (s *Service) insertSession(ctx context.Context, tx *db.Tx, acc Account, level int, amr []string, ip, ua string, now time.Time) (string, Session, error) {
	token := newToken()
	ses := Session{ID: db.NewID(), AccountID: acc.ID, Level: level, AMR: amr, CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(MaxAge), IP: truncate(ip, 64), UserAgent: truncate(ua, 256)}
	amrJSON, _ := json.Marshal(amr)
	if _, err := tx.Exec(ctx, `INSERT INTO sso_sessions (token_hash, id, account_id, level, amr, created_at, last_seen,
		expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, tokenHash(token), ses.ID, ses.AccountID,
		ses.Level, string(amrJSON), now, now, ses.ExpiresAt, ses.IP, ses.UserAgent); err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	if err := s.record(ctx, tx, citizen(acc.ID, acc.Name), ActionSessionCreated, sessionObject(ses.ID),
		map[string]any{"level": level, "amr": amr, "ip": ses.IP}); err != nil {
		return "", Session{}, err
	}
	return token, ses, nil
}

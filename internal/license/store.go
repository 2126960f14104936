package license

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// IndexResidentID is the blind-index kind of resident ID numbers: the one the population
// library, identity and the exchange use, so one index value finds a person everywhere.
const IndexResidentID = "resident_id"

// holderIndexKind is the blind-index kind of an identity code type.
func holderIndexKind(t IDType) string {
	if t == IDResident {
		return IndexResidentID
	}
	return "license_holder_" + string(t)
}

// contentAAD binds a sealed content to its licence row.
func contentAAD(id string) string { return "license.licenses:" + id + ":content" }

// chainOf names every version of one licence: type, issuer and serial.
func chainOf(id Identifier) string { return id.TypeCode + "." + id.CreditCode + "." + id.Serial }

// ---- types ----

const typeCols = `code, name_zh, name_en, holder_kind, issuer_kinds, validity_years, validity_months, basis, items, created_at, updated_at`

func scanType(sc db.Scanner) (Type, error) {
	var t Type
	var kinds, items string
	if err := sc.Scan(&t.Code, &t.Name.ZH, &t.Name.EN, &t.HolderKind, &kinds, &t.Validity.Years, &t.Validity.Months, &t.Basis, &items,
		&t.CreatedAt, &t.UpdatedAt); err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(kinds), &t.IssuerKinds); err != nil {
		return t, fmt.Errorf("type %s issuer kinds: %w", t.Code, err)
	}
	if err := json.Unmarshal([]byte(items), &t.Items); err != nil {
		return t, fmt.Errorf("type %s items: %w", t.Code, err)
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, nil
}

func typeArgs(t Type) []any {
	kinds := t.IssuerKinds
	if kinds == nil {
		kinds = []string{}
	}
	k, _ := json.Marshal(kinds) // strings: cannot fail
	it, _ := json.Marshal(t.Items)
	return []any{t.Code, t.Name.ZH, t.Name.EN, string(t.HolderKind), string(k), t.Validity.Years, t.Validity.Months, t.Basis, string(it),
		t.CreatedAt, t.UpdatedAt}
}

func getType(ctx context.Context, q db.Querier, code string) (Type, error) {
	t, err := scanType(q.QueryRow(ctx, `SELECT `+typeCols+` FROM license_types WHERE code = ?`, code))
	if isNoRow(err) {
		return t, ErrUnknownType
	}
	if err != nil {
		return t, fmt.Errorf("read licence type %s: %w", code, err)
	}
	return t, nil
}

// ---- issuers ----

const issuerCols = `dept_id, name, credit_code, division, kind, active, created_at, updated_at`

func scanIssuer(sc db.Scanner) (Issuer, error) {
	var i Issuer
	err := sc.Scan(&i.DeptID, &i.Name, &i.CreditCode, &i.Division, &i.Kind, &i.Active, &i.CreatedAt, &i.UpdatedAt)
	i.CreatedAt, i.UpdatedAt = i.CreatedAt.UTC(), i.UpdatedAt.UTC()
	return i, err
}

func getIssuer(ctx context.Context, q db.Querier, deptID string) (Issuer, error) {
	i, err := scanIssuer(q.QueryRow(ctx, `SELECT `+issuerCols+` FROM license_issuers WHERE dept_id = ?`, deptID))
	if isNoRow(err) {
		return i, ErrNotIssuer
	}
	if err != nil {
		return i, fmt.Errorf("read issuer %s: %w", deptID, err)
	}
	return i, nil
}

// ---- licences ----

// row is a licences row, the content still sealed.
type row struct {
	Summary
	chain        string
	serial       string
	previousID   string
	holderIDType IDType
	holderIdx    string
	issuerCredit string
	issuerDiv    string
	stored       Status
	statusReason string
	statusAt     *time.Time
	contentEnc   []byte
	digest       string
	keyID        string
	signature    []byte
	signedAt     time.Time
	caseRef      string
	issuedBy     string
}

const licenseCols = `id, chain, type_code, type_name, serial, version, previous_id, superseded_by, holder_name, holder_kind,
	holder_id_type, holder_idx, issuer_dept_id, issuer_name, issuer_credit_code, issuer_division, issued_at, valid_from,
	valid_until, status, status_reason, status_at, content_enc, digest, key_id, signature, signed_at, case_ref, issued_by`

// licenseColsQualified is licenseCols prefixed with the table, for joins.
var licenseColsQualified = func() string {
	cols := strings.Split(licenseCols, ",")
	for i, c := range cols {
		cols[i] = "licenses." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

func scanRow(sc db.Scanner) (row, error) {
	var r row
	var until, statusAt sql.NullTime
	err := sc.Scan(&r.ID, &r.chain, &r.TypeCode, &r.TypeName, &r.serial, &r.Version, &r.previousID, &r.SupersededBy, &r.HolderName,
		&r.HolderKind, &r.holderIDType, &r.holderIdx, &r.IssuerDeptID, &r.IssuerName, &r.issuerCredit, &r.issuerDiv, &r.IssuedAt,
		&r.ValidFrom, &until, &r.stored, &r.statusReason, &statusAt, &r.contentEnc, &r.digest, &r.keyID, &r.signature, &r.signedAt,
		&r.caseRef, &r.issuedBy)
	if err != nil {
		return r, err
	}
	r.IssuedAt, r.ValidFrom, r.signedAt = r.IssuedAt.UTC(), r.ValidFrom.UTC(), r.signedAt.UTC()
	r.ValidUntil, r.statusAt = db.TimePtr(until), db.TimePtr(statusAt)
	return r, nil
}

func insertRow(ctx context.Context, tx *db.Tx, r row) error {
	_, err := tx.Exec(ctx, `INSERT INTO licenses (`+licenseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.chain, r.TypeCode, r.TypeName, r.serial, r.Version, r.previousID, r.SupersededBy, r.HolderName, string(r.HolderKind),
		string(r.holderIDType), r.holderIdx, r.IssuerDeptID, r.IssuerName, r.issuerCredit, r.issuerDiv, r.IssuedAt, r.ValidFrom,
		db.NullTime(r.ValidUntil), string(r.stored), r.statusReason, db.NullTime(r.statusAt), r.contentEnc, r.digest, r.keyID, r.signature,
		r.signedAt, r.caseRef, r.issuedBy)
	return err
}

func getRow(ctx context.Context, q db.Querier, id string) (row, error) {
	r, err := scanRow(q.QueryRow(ctx, `SELECT `+licenseCols+` FROM licenses WHERE id = ?`, id))
	if isNoRow(err) {
		return r, i18n.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read licence %s: %w", id, err)
	}
	return r, nil
}

// getRowAndKey reads a licence and the key that signed it in one query.
func getRowAndKey(ctx context.Context, q db.Querier, id string) (row, IssuerKey, error) {
	var k IssuerKey
	var until sql.NullTime
	var r row
	var err error
	sc := q.QueryRow(ctx, `SELECT `+licenseColsQualified+`, k.key_id, k.dept_id, k.dept_name, k.credit_code, k.division, k.public_key, k.valid_from, k.valid_until
		FROM licenses JOIN license_issuer_keys k ON k.key_id = licenses.key_id WHERE licenses.id = ?`, id)
	r, err = scanRow(scanFunc(func(dest ...any) error {
		return sc.Scan(append(dest, &k.KeyID, &k.DeptID, &k.DeptName, &k.CreditCode, &k.Division, &k.PublicKey, &k.ValidFrom, &until)...)
	}))
	if isNoRow(err) {
		return r, k, i18n.ErrNotFound
	}
	if err != nil {
		return r, k, fmt.Errorf("read licence %s: %w", id, err)
	}
	k.ValidFrom, k.ValidUntil = k.ValidFrom.UTC(), db.TimePtr(until)
	return r, k, nil
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// lockRow reads a licence for update: on PostgreSQL the no-op update takes the row lock (and
// what follows sees the latest committed version); SQLite runs one writer at a time.
func lockRow(ctx context.Context, tx *db.Tx, id string) (row, error) {
	if _, err := tx.Exec(ctx, `UPDATE licenses SET status = status WHERE id = ?`, id); err != nil {
		return row{}, fmt.Errorf("lock licence %s: %w", id, err)
	}
	return getRow(ctx, tx, id)
}

func queryRows(ctx context.Context, q db.Querier, where string, args ...any) ([]row, error) {
	return db.Collect(ctx, q, `SELECT `+licenseCols+` FROM licenses `+where, args, scanRow)
}

func insertEvent(ctx context.Context, tx *db.Tx, chain string, e Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO license_events (chain, license_id, version, action, actor, reason, related_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		chain, e.LicenseID, e.Version, e.Action, e.Actor, e.Reason, e.RelatedID, e.At)
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", e.Action, e.LicenseID, err)
	}
	return nil
}

// ---- issuer keys ----

// IssuerKey is a seal key that signed licences here, as the trust list publishes it.
type IssuerKey struct {
	KeyID      string     `json:"key_id"`
	DeptID     string     `json:"dept_id"`
	DeptName   string     `json:"dept_name"`
	CreditCode string     `json:"credit_code"`
	Division   string     `json:"division"`
	PublicKey  []byte     `json:"public_key"`     // PKIX DER
	Cert       []byte     `json:"cert,omitempty"` // DER X.509, if the seal key has one
	ValidFrom  time.Time  `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until"`
}

const keyCols = `key_id, dept_id, dept_name, credit_code, division, public_key, cert, valid_from, valid_until`

func scanKey(sc db.Scanner) (IssuerKey, error) {
	var k IssuerKey
	var until sql.NullTime
	err := sc.Scan(&k.KeyID, &k.DeptID, &k.DeptName, &k.CreditCode, &k.Division, &k.PublicKey, &k.Cert, &k.ValidFrom, &until)
	k.ValidFrom, k.ValidUntil = k.ValidFrom.UTC(), db.TimePtr(until)
	if len(k.Cert) == 0 {
		k.Cert = nil
	}
	return k, err
}

func getKey(ctx context.Context, q db.Querier, keyID string) (IssuerKey, error) {
	k, err := scanKey(q.QueryRow(ctx, `SELECT `+keyCols+` FROM license_issuer_keys WHERE key_id = ?`, keyID))
	if isNoRow(err) {
		return k, i18n.ErrNotFound
	}
	if err != nil {
		return k, fmt.Errorf("read issuer key %s: %w", keyID, err)
	}
	return k, nil
}

// ---- use grants ----

const grantCols = `id, license_id, dept_id, dept_name, division, purpose, ref, valid_until, created_at, created_by, revoked, revoked_at,
	(SELECT COUNT(*) FROM license_uses u WHERE u.grant_id = license_use_grants.id),
	(SELECT l.type_name FROM licenses l WHERE l.id = license_use_grants.license_id),
	(SELECT l.holder_name FROM licenses l WHERE l.id = license_use_grants.license_id)`

func scanGrant(sc db.Scanner) (UseGrant, error) {
	var g UseGrant
	var revokedAt sql.NullTime
	err := sc.Scan(&g.ID, &g.LicenseID, &g.DeptID, &g.DeptName, &g.Division, &g.Purpose, &g.Ref, &g.ValidUntil, &g.CreatedAt,
		&g.CreatedBy, &g.Revoked, &revokedAt, &g.Uses, &g.TypeName, &g.HolderName)
	g.ValidUntil, g.CreatedAt, g.RevokedAt = g.ValidUntil.UTC(), g.CreatedAt.UTC(), db.TimePtr(revokedAt)
	return g, err
}

func queryGrants(ctx context.Context, q db.Querier, where string, args ...any) ([]UseGrant, error) {
	out, err := db.Collect(ctx, q, `SELECT `+grantCols+` FROM license_use_grants `+where, args, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("read use grants: %w", err)
	}
	return out, nil
}

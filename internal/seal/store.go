package seal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
)

const sealCols = `id, es_id, dept_id, dept_name, division, name, purpose, seal_type, version, status, key_id,
	public_key, cert, cert_serial, image_type, image, width_mm, height_mm, eseal, valid_from, valid_to,
	created_by, created_at, retired_at, replaced_by, revoked_at, revoked_by, revoke_reason`

type scanner interface{ Scan(dest ...any) error }

func scanSeal(r scanner) (Seal, error) {
	var s Seal
	var status string
	var retired, revoked sql.NullTime
	err := r.Scan(&s.ID, &s.ESID, &s.DeptID, &s.DeptName, &s.Division, &s.Name, &s.Purpose, &s.Type, &s.Version, &status, &s.KeyID,
		&s.PublicKey, &s.Cert, &s.CertSerial, &s.PictureType, &s.Picture, &s.WidthMM, &s.HeightMM, &s.ESeal, &s.ValidFrom, &s.ValidTo,
		&s.CreatedBy, &s.CreatedAt, &retired, &s.ReplacedBy, &revoked, &s.RevokedBy, &s.RevokeReason)
	if err != nil {
		return s, err
	}
	s.Status = Status(status)
	s.ValidFrom, s.ValidTo, s.CreatedAt = s.ValidFrom.UTC(), s.ValidTo.UTC(), s.CreatedAt.UTC()
	if retired.Valid {
		t := retired.Time.UTC()
		s.RetiredAt = &t
	}
	if revoked.Valid {
		t := revoked.Time.UTC()
		s.RevokedAt = &t
	}
	return s, nil
}

// getSeal reads one seal; a missing one is sql.ErrNoRows.
func getSeal(ctx context.Context, q db.Querier, where string, args ...any) (Seal, error) {
	return scanSeal(q.QueryRow(ctx, `SELECT `+sealCols+` FROM seal_seals WHERE `+where, args...))
}

func querySeals(ctx context.Context, q db.Querier, rest string, args ...any) ([]Seal, error) {
	rows, err := q.Query(ctx, `SELECT `+sealCols+` FROM seal_seals `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Seal
	for rows.Next() {
		s, err := scanSeal(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// insertSeal writes a new seal row with its sealed private key.
func insertSeal(ctx context.Context, tx *db.Tx, s Seal, privateEnc []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO seal_seals (id, es_id, dept_id, dept_name, division, name, purpose, seal_type, version, status,
		key_id, public_key, private_enc, cert, cert_serial, image_type, image, width_mm, height_mm, eseal, valid_from, valid_to,
		created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.ESID, s.DeptID, s.DeptName, s.Division, s.Name, s.Purpose, s.Type, s.Version, string(s.Status),
		s.KeyID, s.PublicKey, privateEnc, s.Cert, s.CertSerial, s.PictureType, s.Picture, s.WidthMM, s.HeightMM, s.ESeal,
		s.ValidFrom, s.ValidTo, s.CreatedBy, s.CreatedAt)
	return err
}

// nextVersion is the version of the next seal of a department and purpose.
func nextVersion(ctx context.Context, tx *db.Tx, deptID, purpose string) (int, error) {
	var v int
	err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM seal_seals WHERE dept_id = ? AND purpose = ?`, deptID, purpose).Scan(&v)
	return v + 1, err
}

// signingRow is what signing needs of a seal, read in one query.
type signingRow struct {
	Seal
	privateEnc []byte
}

func getSigning(ctx context.Context, q db.Querier, where string, args ...any) (signingRow, error) {
	var r signingRow
	var status string
	err := q.QueryRow(ctx, `SELECT id, es_id, dept_id, division, status, key_id, public_key, private_enc, cert, eseal, valid_from, valid_to
		FROM seal_seals WHERE `+where, args...).Scan(&r.ID, &r.ESID, &r.DeptID, &r.Division, &status, &r.KeyID, &r.PublicKey,
		&r.privateEnc, &r.Cert, &r.ESeal, &r.ValidFrom, &r.ValidTo)
	r.Status = Status(status)
	r.ValidFrom, r.ValidTo = r.ValidFrom.UTC(), r.ValidTo.UTC()
	return r, err
}

// Use is one entry of the sealing register (用印登记).
type Use struct {
	ID           string    `json:"id"`
	SealID       string    `json:"seal_id"`
	Format       string    `json:"format"` // file, html, pdf
	DocName      string    `json:"doc_name"`
	DocumentSM3  string    `json:"document_sm3"`  // hex SM3 of the content signed
	SignatureSM3 string    `json:"signature_sm3"` // hex SM3 of the SES_Signature DER
	SignedAt     time.Time `json:"signed_at"`
	Actor        string    `json:"actor"`
}

// insertUse registers a sealing, provided the seal is still active when the transaction
// writes (a revocation or rotation committed meanwhile wins: nothing is sealed).
func insertUse(ctx context.Context, tx *db.Tx, u Use) error {
	res, err := tx.Exec(ctx, `INSERT INTO seal_uses (id, seal_id, format, doc_name, doc_sm3, sig_sm3, signed_at, actor)
		SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM seal_seals WHERE id = ? AND status = 'active')`,
		u.ID, u.SealID, u.Format, u.DocName, u.DocumentSM3, u.SignatureSM3, u.SignedAt, u.Actor, u.SealID)
	if err != nil {
		return fmt.Errorf("register sealing: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("register sealing: %w", err)
	} else if n != 1 {
		return ErrNotInForce
	}
	return nil
}

func queryUses(ctx context.Context, q db.Querier, rest string, args ...any) ([]Use, error) {
	rows, err := q.Query(ctx, `SELECT id, seal_id, format, doc_name, doc_sm3, sig_sm3, signed_at, actor FROM seal_uses `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Use
	for rows.Next() {
		var u Use
		if err := rows.Scan(&u.ID, &u.SealID, &u.Format, &u.DocName, &u.DocumentSM3, &u.SignatureSM3, &u.SignedAt, &u.Actor); err != nil {
			return nil, err
		}
		u.SignedAt = u.SignedAt.UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

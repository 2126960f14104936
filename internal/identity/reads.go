package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// ResidentIndex is the blind index of the account's ID number (FieldCipher.BlindIndex of kind
// "resident_id", the population library's), as stored at real-name verification; "" when the
// account is not verified. Other engines that log reads of a resident's records under the same
// index (the exchange's access log) find them with it, so the portal can show a citizen who
// read their data without the ID number leaving this engine. Unknown accounts are
// i18n.ErrNotFound.
func (s *Service) ResidentIndex(ctx context.Context, accountID string) (string, error) {
	var idx sql.NullString
	err := s.d.QueryRow(ctx, `SELECT id_number_idx FROM accounts WHERE id = ?`, accountID).Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", i18n.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read account %s: %w", accountID, err)
	}
	return idx.String, nil
}

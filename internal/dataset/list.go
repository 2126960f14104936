package dataset

import (
	"context"
	"fmt"
)

// List returns the ids of every dataset on record, sorted.
func (s *Service) List(ctx context.Context) ([]string, error) {
	rows, err := s.d.Query(ctx, `SELECT DISTINCT dataset_id FROM dataset_versions ORDER BY dataset_id`)
	if err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list datasets: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

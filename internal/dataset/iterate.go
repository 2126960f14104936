package dataset

import (
	"context"
	"errors"
)

// EachPage is how many rows Each reads per query.
const EachPage = 1000

// ErrStop, returned by the function given to Each, ends the walk early without an error.
var ErrStop = errors.New("dataset: stop")

// Each calls fn with every row of one version of a dataset, in row order, sensitive values
// opened (not masked): it serves engines that check or transform whole datasets (quality
// rules, exports) and must not be handed to a surface as is. Rows are read in pages of
// EachPage by row number, each page's query closed before fn sees its rows, so fn may use
// the database itself and memory stays bounded by one page. fn returning ErrStop ends the walk
// with a nil error; any other error ends it with that error.
func (s *Service) Each(ctx context.Context, datasetID string, version int, fn func(Row) error) error {
	v, err := s.Version(ctx, datasetID, version)
	if err != nil {
		return err
	}
	if v.Format == UpstreamAPI {
		return ErrUpstreamWalk
	}
	after := int64(0)
	for {
		page, err := s.page(ctx, v, after)
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		if len(page) < EachPage {
			return nil
		}
		after = page[len(page)-1].No
	}
}

func (s *Service) page(ctx context.Context, v Version, after int64) ([]Row, error) {
	rows, err := s.d.Query(ctx, `SELECT row_no, line, data FROM dataset_rows WHERE dataset_id = ? AND version = ? AND row_no > ?
		ORDER BY row_no LIMIT ?`, v.DatasetID, v.Version, after, EachPage)
	if err != nil {
		return nil, internal("read rows", err)
	}
	defer rows.Close()
	out := make([]Row, 0, 64)
	for rows.Next() {
		var r Row
		var data string
		if err := rows.Scan(&r.No, &r.Line, &data); err != nil {
			return nil, internal("read rows", err)
		}
		if r.Values, err = s.decode(v, r.No, data, false); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("read rows", err)
	}
	return out, nil
}

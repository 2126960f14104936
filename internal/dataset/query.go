package dataset

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

const versionColumns = `dataset_id, version, status, schema_json, source_name, format, rows_ok, rows_rejected,
	bytes_read, total_bytes, started_at, heartbeat_at, finished_at, error_code, error_zh, error_en`

func scanVersion(sc interface{ Scan(...any) error }) (Version, error) {
	var v Version
	var schema, code, zh, en string
	var finished sql.NullTime
	err := sc.Scan(&v.DatasetID, &v.Version, &v.Status, &schema, &v.SourceName, &v.Format, &v.RowsOK, &v.RowsRejected,
		&v.BytesRead, &v.TotalBytes, &v.StartedAt, &v.HeartbeatAt, &finished, &code, &zh, &en)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(schema), &v.Schema); err != nil {
		return v, fmt.Errorf("schema of %s v%d: %w", v.DatasetID, v.Version, err)
	}
	v.StartedAt, v.HeartbeatAt = v.StartedAt.UTC(), v.HeartbeatAt.UTC()
	if finished.Valid {
		t := finished.Time.UTC()
		v.FinishedAt = &t
	}
	if code != "" {
		v.ErrorCode, v.Error = code, &i18n.Text{ZH: zh, EN: en}
	}
	return v, nil
}

func internal(what string, err error) error {
	if _, ok := i18n.As(err); ok {
		return err
	}
	return i18n.ErrInternal.Wrap(fmt.Errorf("%s: %w", what, err))
}

// Versions lists the versions of a dataset still on record, newest first.
func (s *Service) Versions(ctx context.Context, datasetID string) ([]Version, error) {
	if err := checkID(datasetID); err != nil {
		return nil, err
	}
	rows, err := s.d.Query(ctx, `SELECT `+versionColumns+` FROM dataset_versions WHERE dataset_id = ? ORDER BY version DESC`, datasetID)
	if err != nil {
		return nil, internal("list versions", err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, internal("list versions", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list versions", err)
	}
	return out, nil
}

// Version returns one version (while it loads, its counters show progress).
func (s *Service) Version(ctx context.Context, datasetID string, version int) (Version, error) {
	if err := checkID(datasetID); err != nil {
		return Version{}, err
	}
	v, err := scanVersion(s.d.QueryRow(ctx, `SELECT `+versionColumns+` FROM dataset_versions WHERE dataset_id = ? AND version = ?`, datasetID, version))
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, i18n.ErrNotFound
	}
	if err != nil {
		return Version{}, internal("read version", err)
	}
	return v, nil
}

// Active returns the active version of a dataset, or ErrNoActive.
func (s *Service) Active(ctx context.Context, datasetID string) (Version, error) {
	if err := checkID(datasetID); err != nil {
		return Version{}, err
	}
	v, err := scanVersion(s.d.QueryRow(ctx, `SELECT `+versionColumns+` FROM dataset_versions WHERE dataset_id = ? AND status = 'active'`, datasetID))
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, ErrNoActive
	}
	if err != nil {
		return Version{}, internal("read active version", err)
	}
	return v, nil
}

// Lookup returns the row of the active version whose key column equals key (after the
// column type's normalisation, so a lower-case x of an ID number finds the row). Sensitive
// values are returned in full: Lookup serves whoever already holds the exact identifier.
func (s *Service) Lookup(ctx context.Context, datasetID, key string) (Row, error) {
	v, err := s.Active(ctx, datasetID)
	if err != nil {
		return Row{}, err
	}
	k := v.Schema.column(v.Schema.Key)
	if k < 0 {
		return Row{}, ErrNoKey
	}
	col := v.Schema.Columns[k]
	col.Required = true
	norm, ierr := normalizer{now: s.now}.value(&col, key)
	if ierr != nil {
		return Row{}, ierr.WithField("key")
	}
	if v.Format == UpstreamAPI {
		return s.upstreamLookup(ctx, v, &col, norm)
	}
	var r Row
	var data string
	err = s.d.QueryRow(ctx, `SELECT row_no, line, data FROM dataset_rows WHERE dataset_id = ? AND version = ? AND key_idx = ?`,
		datasetID, v.Version, s.keyIndex(datasetID, &col, norm)).Scan(&r.No, &r.Line, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, i18n.ErrNotFound
	}
	if err != nil {
		return Row{}, internal("lookup", err)
	}
	if r.Values, err = s.decode(v, r.No, data, false); err != nil {
		return Row{}, err
	}
	if r.Values[col.Name] != norm { // the index and the sealed value disagree: edited behind our back
		return Row{}, ErrCorrupt
	}
	return r, nil
}

// MaxQueryLimit caps one page of Query and Select.
const MaxQueryLimit = 1000

// Query returns rows of the active version whose columns equal the filter's values (after
// each column type's normalisation; an empty value matches an empty cell), in row order.
// Sensitive columns cannot be filtered on, and their values come back masked. limit 0 means
// 50. It is Select without a row scope.
func (s *Service) Query(ctx context.Context, datasetID string, filter map[string]string, limit, offset int) ([]Row, error) {
	return s.Select(ctx, datasetID, QueryOptions{Filter: filter, Limit: limit, Offset: offset})
}

// jsonField is the SQL expression (and its argument) for the text of member name of the
// row's JSON object. The one dialect difference of this package; names cannot contain
// quotes (Schema.Validate), so the SQLite path needs no escaping.
func jsonField(d db.Dialect, name string) (string, any) {
	if d == db.Postgres {
		return `(data::jsonb ->> ?)`, name
	}
	return `json_extract(data, ?)`, `$."` + name + `"`
}

// decode turns a stored row into values, opening sealed ones (masked when maskSensitive).
func (s *Service) decode(v Version, rowNo int64, data string, maskSensitive bool) (map[string]string, error) {
	vals := map[string]string{}
	if err := json.Unmarshal([]byte(data), &vals); err != nil {
		return nil, ErrCorrupt.Wrap(err)
	}
	for _, c := range v.Schema.Columns {
		if !c.Sensitive {
			continue
		}
		enc, ok := vals[c.Name]
		if !ok {
			continue
		}
		ct, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, ErrCorrupt.Wrap(err)
		}
		pt, err := s.fc.Open(ct, fieldAAD(v.DatasetID, v.Version, rowNo, c.Name))
		if err != nil {
			return nil, ErrCorrupt.Wrap(err)
		}
		if maskSensitive {
			pt = mask(c.Type, pt)
		}
		vals[c.Name] = pt
	}
	return vals, nil
}

// Rejects lists the faults of rejected rows of a version, in file order (at most
// MaxStoredRejects were kept; Version.RowsRejected has the count). limit 0 means 100.
func (s *Service) Rejects(ctx context.Context, datasetID string, version, limit int) ([]Reject, error) {
	if err := checkID(datasetID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxStoredRejects)
	rows, err := s.d.Query(ctx, `SELECT line, column_name, code, reason_zh, reason_en FROM dataset_rejects
		WHERE dataset_id = ? AND version = ? ORDER BY seq LIMIT ?`, datasetID, version, limit)
	if err != nil {
		return nil, internal("list rejects", err)
	}
	defer rows.Close()
	out := []Reject{}
	for rows.Next() {
		var r Reject
		if err := rows.Scan(&r.Line, &r.Column, &r.Code, &r.Reason.ZH, &r.Reason.EN); err != nil {
			return nil, internal("list rejects", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list rejects", err)
	}
	return out, nil
}

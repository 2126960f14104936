// Package dataset holds tabular datasets behind catalog resources (D2): rows with a declared
// schema, loaded from CSV, Excel (.xlsx) or JSON files — or served live from a registered
// upstream API of the providing department (upstream.go) — looked up by key, queried by exact
// match within a row scope (a division, through an index), and scanned whole for bulk extracts.
//
// A load streams the file: records are read, validated against the schema and written in
// batches of a few thousand rows, each its own transaction, into a new version of the
// dataset, while the previous version stays active and readable. Only when the whole file is
// in does one short transaction make the new version active and the old one superseded. A load
// that fails — the file cannot be read, too many rows are rejected, the context is cancelled —
// marks its version failed and deletes its rows; the previous version is untouched. Memory
// stays bounded by the batch size, plus, for each unique column (the key is one), a 64-bit
// hash and a line number per row, to report duplicates with the line they repeat: a map of
// some 30–40 MB for a million rows (peak heap in use 80 MiB in BenchmarkLoadCSV1M).
//
// All datasets share three tables (see migrations), so a new dataset needs no DDL on either
// database. Sensitive columns are sealed with SM4-GCM and masked in Query; a sensitive key
// column is looked up through a keyed SM3 blind index.
//
// The service takes no acting subject: the engines built on it (catalog, open data, exchange)
// authorize and audit before calling it.
package dataset

import (
	"embed"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations create dataset_versions, dataset_rows and dataset_rejects. They reference no
// other package's tables; apply after crypto.Migrations (the keyring sensitive values use).
var Migrations = db.Migrations("dataset", migrationFiles, "migrations")

// Status of a version.
type Status string

const (
	Loading    Status = "loading"
	Active     Status = "active"
	Failed     Status = "failed"
	Superseded Status = "superseded"
)

// Errors of the service; compare with errors.Is (i18n errors match by code).
var (
	ErrDatasetID = i18n.New("dataset.id", "数据集标识无效（1–128个字母、数字或 . _ : -）",
		"invalid dataset id (1–128 letters, digits or . _ : -)")
	ErrNoActive = &i18n.Error{Code: "dataset.no_active", Status: http.StatusNotFound,
		Msg: i18n.T("数据集尚无可用版本", "the dataset has no active version yet")}
	ErrLoadInProgress = &i18n.Error{Code: "dataset.load_in_progress", Status: http.StatusConflict,
		Msg: i18n.T("该数据集正在导入，请等待完成后再试", "the dataset is being loaded; try again when that load has finished")}
	ErrTooManyRejects = &i18n.Error{Code: "dataset.too_many_rejects", Status: http.StatusUnprocessableEntity,
		Msg: i18n.T("被拒绝的行过多，导入已中止", "too many rows were rejected; the load was stopped")}
	ErrNoRows = &i18n.Error{Code: "dataset.no_rows", Status: http.StatusUnprocessableEntity,
		Msg: i18n.T("文件中没有有效数据行", "the file has no valid data rows")}
	ErrCancelled = &i18n.Error{Code: "dataset.cancelled", Status: 499,
		Msg: i18n.T("导入已取消", "the load was cancelled")}
	ErrNoKey  = i18n.New("dataset.no_key", "该数据集没有主键列，不能按主键查询", "the dataset has no key column to look up by")
	ErrFilter = i18n.New("dataset.filter", "查询条件无效", "invalid query filter")
	// ErrCorrupt: a stored row does not decrypt or does not match its index. Someone edited
	// the table behind the service's back.
	ErrCorrupt = &i18n.Error{Code: "dataset.corrupt", Status: http.StatusInternalServerError,
		Msg: i18n.T("数据集记录已损坏或被篡改", "a dataset row is corrupt or was tampered with")}
)

var datasetIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func checkID(id string) error {
	if !datasetIDPattern.MatchString(id) {
		return ErrDatasetID.WithField("dataset_id")
	}
	return nil
}

// Service stores datasets. It is safe for concurrent use; loads of one dataset are serialised
// (a second concurrent load gets ErrLoadInProgress).
type Service struct {
	d          *db.DB
	fc         *crypto.FieldCipher
	now        func() time.Time
	keep       int
	staleAfter time.Duration
	http       *http.Client
}

// Options tune New.
type Options struct {
	Now func() time.Time // clock for timestamps and "not in the future" checks; default time.Now
	// KeepVersions is how many superseded versions keep their rows after a load (for a quick
	// look back, and so that readers that started on the old version finish); default 1.
	// Older versions are deleted, as are failed versions beyond the same number.
	KeepVersions int
	// StaleAfter: a loading version whose heartbeat (one per batch) is older than this was
	// abandoned by a process that died; the next load fails it and proceeds. Default 10 min.
	StaleAfter time.Duration
	// HTTPClient calls upstream APIs (RegisterUpstream); default a client that follows no
	// redirects (an upstream answers where it was registered, or fails).
	HTTPClient *http.Client
}

// New returns the dataset service on d, sealing sensitive values with fc.
func New(d *db.DB, fc *crypto.FieldCipher, opts ...Options) *Service {
	s := &Service{d: d, fc: fc, now: time.Now, keep: 1, staleAfter: 10 * time.Minute,
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, o := range opts {
		if o.HTTPClient != nil {
			s.http = o.HTTPClient
		}
		if o.Now != nil {
			s.now = o.Now
		}
		if o.KeepVersions > 0 {
			s.keep = o.KeepVersions
		}
		if o.StaleAfter > 0 {
			s.staleAfter = o.StaleAfter
		}
	}
	return s
}

func (s *Service) clock() time.Time { return db.Now(s.now()) }

// Row is one row of a dataset: values by column name, as normalised text (see Type); empty
// values are absent.
type Row struct {
	No     int64             `json:"no"`   // 1, 2, 3 … within the version
	Line   int64             `json:"line"` // where it started in the source file
	Values map[string]string `json:"values"`
	// Subject is what QueryOptions.Subject made of the row's resident ID key: kept inside the
	// node (the access log), never encoded for a consumer.
	Subject string `json:"-"`

	division string // the indexed division, Scan's position
}

// Version describes one load of a dataset; while it is loading, RowsOK, RowsRejected and
// BytesRead advance with every batch (the UI polls them for progress).
type Version struct {
	DatasetID    string     `json:"dataset_id"`
	Version      int        `json:"version"`
	Status       Status     `json:"status"`
	Schema       Schema     `json:"schema"`
	SourceName   string     `json:"source_name"`
	Format       Format     `json:"format"`
	RowsOK       int64      `json:"rows_ok"`
	RowsRejected int64      `json:"rows_rejected"`
	BytesRead    int64      `json:"bytes_read"`
	TotalBytes   int64      `json:"total_bytes"`
	StartedAt    time.Time  `json:"started_at"`
	HeartbeatAt  time.Time  `json:"heartbeat_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	Error        *i18n.Text `json:"error,omitempty"`
	ErrorCode    string     `json:"error_code,omitempty"`
}

// Reject is one fault of one rejected row.
type Reject struct {
	Line   int64     `json:"line"`
	Column string    `json:"column,omitempty"` // empty when the whole record is at fault
	Code   string    `json:"code"`
	Reason i18n.Text `json:"reason"`
}

// String is for logs and the CLI: "第12行 身份证号：身份证号码校验位错误 (line 12 …)".
func (r Reject) String() string {
	col := ""
	if r.Column != "" {
		col = " " + r.Column
	}
	return i18n.T("第"+itoa(r.Line)+"行"+col+"："+r.Reason.ZH, "line "+itoa(r.Line)+col+": "+r.Reason.EN).String()
}

// mask hides most of a sensitive value for list views.
func mask(t Type, v string) string {
	switch t {
	case ResidentID:
		return ids.MaskResident(v)
	case Mobile:
		return ids.MaskMobile(v)
	}
	n := utf8.RuneCountInString(v)
	if n <= 2 {
		return strings.Repeat("*", n)
	}
	r := []rune(v)
	return string(r[0]) + strings.Repeat("*", n-2) + string(r[n-1])
}

package exchange

import (
	"bufio"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/platform/jsontext"
)

// Bulk file extracts (D4: "bulk file extracts for large pulls"). A consumer system asks the
// gateway for an extract under the same rules as a query — token, live grant, granted items
// only, the grant's row scope, a stated purpose, the daily quota — and gets 202 and an id at
// once. A job on the queue then streams the permitted rows into a file in the blob store
// (CSV or JSON Lines, optionally gzip), a page at a time: no extract is ever held in memory.
// The blob store hashes the file (SM3) as it is written; the node signs a receipt over that
// digest, the items, the row count and the purpose, and the system downloads the file with it
// (only the system that asked). The rows are attributed to their residents in the access log
// ("who read my data") and every step is audited. Files expire after ExtractsConfig.TTL.

// ExtractFormat is the file format of an extract.
type ExtractFormat string

const (
	ExtractCSV   ExtractFormat = "csv"   // RFC 4180, a header row of item names, UTF-8
	ExtractJSONL ExtractFormat = "jsonl" // one JSON object per line, items in grant order
)

// ExtractStatus is where an extract stands.
type ExtractStatus string

const (
	ExtractQueued  ExtractStatus = "queued"
	ExtractRunning ExtractStatus = "running"
	ExtractDone    ExtractStatus = "done"
	ExtractFailed  ExtractStatus = "failed"
	ExtractExpired ExtractStatus = "expired" // the file was deleted after its time
)

// ExtractStatusNames are the statuses' display names.
var ExtractStatusNames = map[ExtractStatus]i18n.Text{
	ExtractQueued:  i18n.T("排队中", "queued"),
	ExtractRunning: i18n.T("生成中", "running"),
	ExtractDone:    i18n.T("可下载", "ready"),
	ExtractFailed:  i18n.T("失败", "failed"),
	ExtractExpired: i18n.T("已过期", "expired"),
}

// Extract is one bulk file extract.
type Extract struct {
	ID               string            `json:"id"`
	ResourceID       string            `json:"resource_id"`
	ResourceName     string            `json:"resource_name"`
	GrantID          string            `json:"grant_id"`
	ClientID         string            `json:"client_id"`
	ConsumerDeptID   string            `json:"consumer_dept_id"`
	ConsumerDeptName string            `json:"consumer_dept_name"`
	Purpose          string            `json:"purpose"`
	Fields           []string          `json:"fields"`
	Filter           map[string]string `json:"filter,omitempty"`
	RowScope         string            `json:"row_scope"`
	Format           ExtractFormat     `json:"format"`
	Gzip             bool              `json:"gzip"`
	Status           ExtractStatus     `json:"status"`
	RowsDone         int64             `json:"rows_done"`
	RowsTotal        int64             `json:"rows_total"` // counted when the job starts; -1 unknown (upstream datasets)
	Bytes            int64             `json:"bytes"`
	FileSM3          string            `json:"file_sm3,omitempty"`
	ErrorCode        string            `json:"error_code,omitempty"`
	Error            *i18n.Text        `json:"error,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
	StartedAt        *time.Time        `json:"started_at,omitempty"`
	FinishedAt       *time.Time        `json:"finished_at,omitempty"`
	ExpiresAt        *time.Time        `json:"expires_at,omitempty"`

	accessID, requestID, target, datasetID string
	consumerDivision, divisionColumn       string
	blobKey, receipt                       string
}

// Progress is the share of the rows written, from 0 to 1; 0 while the total is unknown.
func (x Extract) Progress() float64 {
	switch {
	case x.Status == ExtractDone || x.Status == ExtractExpired:
		return 1
	case x.RowsTotal <= 0:
		return 0
	}
	return min(float64(x.RowsDone)/float64(x.RowsTotal), 1)
}

// FileName is the name the file is downloaded as.
func (x Extract) FileName() string {
	n := "extract-" + x.ID + "." + string(x.Format)
	if x.Gzip {
		n += ".gz"
	}
	return n
}

func (x Extract) contentType() string {
	switch {
	case x.Gzip:
		return "application/gzip"
	case x.Format == ExtractJSONL:
		return "application/jsonl; charset=utf-8"
	}
	return "text/csv; charset=utf-8"
}

// Audit actions of extracts (the rows themselves are an ActionCall of kind "extract").
const (
	ActionExtract         = "exchange.extract.request"
	ActionExtractDownload = "exchange.extract.download"
	ActionExtractExpire   = "exchange.extract.expire"
)

// Errors of extracts.
var (
	ErrExtractsOff = &i18n.Error{Code: "exchange.extracts_off", Status: http.StatusNotImplemented,
		Msg: i18n.T("本节点未开启批量导出", "bulk extracts are not enabled on this node")}
	ErrExtractNotReady = &i18n.Error{Code: "exchange.extract.not_ready", Status: http.StatusConflict,
		Msg: i18n.T("导出文件尚未生成完毕，请稍后再试", "the extract is not ready yet; try again later")}
	ErrExtractFailed = &i18n.Error{Code: "exchange.extract.failed", Status: http.StatusConflict,
		Msg: i18n.T("导出失败，没有可下载的文件", "the extract failed; there is no file to download")}
	ErrExtractExpired = &i18n.Error{Code: "exchange.extract.expired", Status: http.StatusGone,
		Msg: i18n.T("导出文件已过期删除，请重新申请导出", "the extract's file has expired and was deleted; ask for a new extract")}
	ErrExtractCorrupt = &i18n.Error{Code: "exchange.extract.corrupt", Status: http.StatusInternalServerError,
		Msg: i18n.T("导出文件与其签名摘要不符（文件被改动）", "the extract's file does not match its signed digest (it was altered)")}
)

// ---- the job ----

// ExtractArgs is the job that writes one extract's file.
type ExtractArgs struct {
	ExtractID string `json:"extract_id"`
}

// Kind names the job.
func (ExtractArgs) Kind() string { return "exchange_extract" }

// ExpireExtractsArgs is the periodic job that deletes files past their time.
type ExpireExtractsArgs struct{}

// Kind names the job.
func (ExpireExtractsArgs) Kind() string { return "exchange_extract_expire" }

// JobQueue queues jobs inside the caller's transaction; *jobs.Queue has it.
type JobQueue interface {
	InsertTx(ctx context.Context, tx *db.Tx, args jobs.JobArgs, opts *jobs.InsertOpts) (*jobs.InsertResult, error)
}

// ExtractsConfig configures NewExtracts.
type ExtractsConfig struct {
	Service *Service
	Blobs   blob.Store
	Signer  Signer
	// Queue is called when an extract is asked for, so the app may start its queue after
	// building the gateway; nil or a nil answer refuses extracts (503).
	Queue func() JobQueue
	// TTL is how long a finished file is kept; default DefaultExtractTTL.
	TTL time.Duration
	// MaxRows bounds one extract; default DefaultMaxExtractRows. (Stored datasets are read by
	// key and never held; the bound is for upstream APIs, which are paged by offset.)
	MaxRows int
	// Attempts: a job that fails this many times (database or upstream trouble) marks the
	// extract failed; default 3.
	Attempts int
	Logger   *slog.Logger
}

// Defaults of extracts.
const (
	DefaultExtractTTL     = 7 * 24 * time.Hour
	DefaultMaxExtractRows = 10_000_000
	// ExtractJobTimeout bounds one attempt at writing a file.
	ExtractJobTimeout = 2 * time.Hour
	// ExpireInterval is how often the leader deletes expired files.
	ExpireInterval   = time.Hour
	extractKeyPrefix = "exchange/extracts/"
	progressEvery    = dataset.ScanPage
	// subjectsPerFlush: residents are attributed in batches this large (about 1.3 MB of
	// indexes), sorted, so each transaction writes the subjects index in order, not a page
	// per row.
	subjectsPerFlush = 20_000
)

// Extracts produces bulk extracts: the gateway asks for them, jobs write them.
type Extracts struct {
	cfg ExtractsConfig
	s   *Service
}

// NewExtracts checks cfg and returns the extract producer.
func NewExtracts(cfg ExtractsConfig) (*Extracts, error) {
	switch {
	case cfg.Service == nil:
		return nil, errors.New("exchange: ExtractsConfig.Service is required")
	case cfg.Blobs == nil:
		return nil, errors.New("exchange: ExtractsConfig.Blobs is required")
	case cfg.Signer == nil:
		return nil, errors.New("exchange: ExtractsConfig.Signer is required")
	case cfg.Service.audit == nil:
		return nil, errors.New("exchange: the service needs an Auditor for extracts: every extract is audited")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultExtractTTL
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = DefaultMaxExtractRows
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Queue == nil {
		cfg.Queue = func() JobQueue { return nil }
	}
	return &Extracts{cfg: cfg, s: cfg.Service}, nil
}

// RegisterJobs adds the extract and expiry workers to workers and returns the periodic expiry
// sweep (every interval; 0 = ExpireInterval; and at once when a node becomes leader).
func (x *Extracts) RegisterJobs(workers *jobs.Workers, interval time.Duration) []*jobs.PeriodicJob {
	if interval <= 0 {
		interval = ExpireInterval
	}
	jobs.AddWorker(workers, &extractWorker{x: x})
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[ExpireExtractsArgs]) error {
		_, err := x.Expire(ctx)
		return err
	}))
	return []*jobs.PeriodicJob{jobs.Every(interval, true, func() (jobs.JobArgs, *jobs.InsertOpts) {
		return ExpireExtractsArgs{}, &jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByPeriod: interval}}
	})}
}

type extractWorker struct {
	jobs.WorkerDefaults[ExtractArgs]
	x *Extracts
}

func (w *extractWorker) Timeout(*jobs.Job[ExtractArgs]) time.Duration { return ExtractJobTimeout }

func (w *extractWorker) Work(ctx context.Context, j *jobs.Job[ExtractArgs]) error {
	err := w.x.Run(ctx, j.Args.ExtractID)
	if err == nil {
		return nil
	}
	e, isUser := i18n.As(err)
	final := j.Attempt >= j.MaxAttempts || (isUser && e.HTTPStatus() < 500)
	if !final {
		w.x.cfg.Logger.Warn("extract attempt failed; retrying", "extract", j.Args.ExtractID, "attempt", j.Attempt, "err", err)
		return err
	}
	w.x.cfg.Logger.Warn("extract failed", "extract", j.Args.ExtractID, "err", err)
	return w.x.fail(context.WithoutCancel(ctx), j.Args.ExtractID, err)
}

// ---- asking for an extract (the gateway's POST) ----

// request records an extract asked for by call c and queues its job, in one transaction with
// the quota count and the audit entry: over quota, nothing is recorded.
func (x *Extracts) request(ctx context.Context, c *call, format ExtractFormat, gz bool, q dataset.QueryOptions, target string) (Extract, error) {
	queue := x.cfg.Queue()
	if queue == nil {
		return Extract{}, i18n.Errorf(http.StatusServiceUnavailable, "exchange.extract.queue", "导出队列尚未就绪，请稍后再试",
			"the extract queue is not running yet; try again later")
	}
	name, err := x.s.resourceName(ctx, c.grant.RequestID)
	if err != nil {
		return Extract{}, err
	}
	ex := Extract{ID: db.NewID(), ResourceID: c.resourceID, ResourceName: name, GrantID: c.grant.ID, ClientID: c.clientID,
		ConsumerDeptID: c.grant.ConsumerDeptID, ConsumerDeptName: c.grant.ConsumerDeptName, Purpose: c.purpose, Fields: c.fields,
		Filter: q.Filter, RowScope: q.Within, Format: format, Gzip: gz, Status: ExtractQueued, RowsTotal: -1, CreatedAt: c.at,
		accessID: db.NewID(), requestID: c.requestID, target: target, datasetID: c.binding.DatasetID,
		consumerDivision: c.grant.ConsumerDivision, divisionColumn: q.WithinColumn}
	day := c.at.In(calendar.Beijing).Format(time.DateOnly)
	var over bool
	err = x.s.d.InTx(ctx, func(tx *db.Tx) error {
		n, err := countCall(ctx, tx, c.grant.ID, day)
		if err != nil {
			return fmt.Errorf("count call: %w", err)
		}
		if n > int64(c.grant.DailyQuota) {
			over = true
			return ErrQuotaExceeded
		}
		if err := insertExtract(ctx, tx, ex); err != nil {
			return fmt.Errorf("record extract: %w", err)
		}
		if _, err := x.s.audit.AppendTx(ctx, tx, c.auditEntry(ActionExtract, audit.OutcomeOK, map[string]any{"extract_id": ex.ID,
			"grant_id": c.grant.ID, "consumer_dept": c.grant.ConsumerDeptID, "client": c.clientID, "purpose": c.purpose,
			"resource": c.resourceID, "fields": ex.Fields, "filter": ex.Filter, "row_scope": ex.RowScope, "format": string(format)})); err != nil {
			return err
		}
		_, err = queue.InsertTx(ctx, tx, ExtractArgs{ExtractID: ex.ID}, &jobs.InsertOpts{MaxAttempts: x.cfg.Attempts})
		return err
	})
	if over {
		return Extract{}, x.s.denyCall(ctx, c, ErrQuotaExceeded)
	}
	return ex, err
}

// ---- writing the file (the job) ----

// Run writes extract id's file and finishes it: the job's work, callable directly (tests,
// benchmarks). An extract already finished is left as it is, so a job run twice is harmless.
func (x *Extracts) Run(ctx context.Context, id string) error {
	d := x.s.d
	ex, err := getExtract(ctx, d, id)
	if isNoRow(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read extract %s: %w", id, err)
	}
	if ex.Status != ExtractQueued && ex.Status != ExtractRunning {
		return nil
	}
	// The grant may have been revoked or expired since the call: nothing leaves then.
	g, err := getGrant(ctx, d, ex.GrantID)
	if err != nil {
		return fmt.Errorf("read grant of extract %s: %w", id, err)
	}
	if !g.Live(x.s.clock()) {
		return ErrNoGrant
	}
	q := dataset.QueryOptions{Filter: ex.Filter, Within: ex.RowScope, WithinColumn: ex.divisionColumn,
		Subject: x.s.ResidentIndex, MaxScan: x.cfg.MaxRows}
	total, err := x.s.data.Count(ctx, ex.datasetID, q)
	if err != nil {
		return err
	}
	started := x.s.clock()
	err = d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE exchange_extracts SET status = 'running', started_at = COALESCE(started_at, ?), rows_done = 0,
			rows_total = ? WHERE id = ?`, started, total, id); err != nil {
			return err
		}
		// The access row that attributes the rows; a retry starts its residents afresh.
		a := access{ID: ex.accessID, RequestID: ex.requestID, GrantID: ex.GrantID, ClientID: ex.ClientID, ResourceID: ex.ResourceID,
			ResourceName: ex.ResourceName, ConsumerDept: ex.ConsumerDeptID, ConsumerDeptName: ex.ConsumerDeptName,
			Purpose: ex.Purpose, Kind: "extract", Fields: ex.Fields, At: started}
		if err := insertAccessOnce(ctx, tx, a); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM exchange_access_subjects WHERE access_id = ?`, ex.accessID)
		return err
	})
	if err != nil {
		return fmt.Errorf("start extract %s: %w", id, err)
	}

	ex.blobKey = extractKeyPrefix + ex.FileName()
	info, rows, err := x.write(ctx, ex, q)
	if err != nil {
		return err
	}

	finished := x.s.clock()
	rc := Receipt{RequestID: ex.requestID, Method: http.MethodPost, Target: ex.target, ClientID: ex.ClientID, Purpose: ex.Purpose,
		Resource: ex.ResourceID, GrantID: ex.GrantID, Fields: ex.Fields, RowCount: int(rows), At: finished}
	if err := rc.signDigest(x.cfg.Signer, info.SM3); err != nil {
		return err
	}
	expires := finished.Add(x.cfg.TTL)
	return d.InTx(ctx, func(tx *db.Tx) error {
		r, err := tx.Exec(ctx, `UPDATE exchange_extracts SET status = 'done', rows_done = ?, bytes = ?, blob_key = ?, file_sm3 = ?, receipt = ?,
			finished_at = ?, expires_at = ? WHERE id = ? AND status = 'running'`, rows, info.Size, ex.blobKey, info.SM3, rc.Encode(), finished, expires, id)
		if err != nil {
			return fmt.Errorf("finish extract %s: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return nil // finished by a twin run meanwhile
		}
		if _, err := tx.Exec(ctx, `UPDATE exchange_access SET row_count = ?, at = ? WHERE id = ?`, rows, finished, ex.accessID); err != nil {
			return fmt.Errorf("access log of extract %s: %w", id, err)
		}
		_, err = x.s.audit.AppendTx(ctx, tx, audit.Entry{Actor: "client:" + ex.ClientID, ActorDivision: ex.consumerDivision,
			Action: ActionCall, Object: "catalog_resource:" + ex.ResourceID, Outcome: audit.OutcomeOK, RequestID: ex.requestID,
			Detail: map[string]any{"access_id": ex.accessID, "extract_id": ex.ID, "grant_id": ex.GrantID, "consumer_dept": ex.ConsumerDeptID,
				"client": ex.ClientID, "purpose": ex.Purpose, "resource": ex.ResourceID, "fields": ex.Fields, "kind": "extract",
				"row_count": rows, "file_sm3": info.SM3, "bytes": info.Size}})
		return err
	})
}

// write streams the rows into the blob store and returns the stored file and the row count.
// Rows pass through a pipe: the store reads (and hashes) what the encoder writes, so memory
// holds one page of rows and a buffer. Every progressEvery rows, the residents of the rows
// written are attributed and the progress recorded.
func (x *Extracts) write(ctx context.Context, ex Extract, q dataset.QueryOptions) (blob.Info, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type put struct {
		info blob.Info
		err  error
	}
	stored := make(chan put, 1)
	go func() {
		info, err := x.cfg.Blobs.Put(ctx, ex.blobKey, pr, -1, ex.contentType())
		pr.CloseWithError(err) // the writer stops at once if the store gave up
		stored <- put{info, err}
	}()
	enc := newRowEncoder(pw, ex.Format, ex.Gzip, ex.Fields)
	var rows int64
	var subjects []string
	flush := func() error {
		err := x.s.d.InTx(ctx, func(tx *db.Tx) error {
			if err := insertSubjects(ctx, tx, ex.accessID, subjects); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE exchange_extracts SET rows_done = ? WHERE id = ?`, rows, ex.ID)
			return err
		})
		subjects = subjects[:0]
		return err
	}
	_, err := x.s.data.Scan(ctx, ex.datasetID, q, func(r dataset.Row) error {
		if err := enc.write(r.Values); err != nil {
			return err
		}
		rows++
		if r.Subject != "" {
			subjects = append(subjects, r.Subject)
		}
		switch {
		case len(subjects) >= subjectsPerFlush:
			return flush()
		case rows%progressEvery == 0:
			_, err := x.s.d.Exec(ctx, `UPDATE exchange_extracts SET rows_done = ? WHERE id = ?`, rows, ex.ID)
			return err
		}
		return nil
	})
	if err == nil {
		err = enc.close()
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		pw.CloseWithError(err)
		<-stored
		return blob.Info{}, 0, err
	}
	if err := pw.Close(); err != nil {
		return blob.Info{}, 0, err
	}
	p := <-stored
	if p.err != nil {
		return blob.Info{}, 0, fmt.Errorf("store extract %s: %w", ex.ID, p.err)
	}
	return p.info, rows, nil
}

// rowEncoder writes rows as CSV or JSON Lines, through gzip when asked, buffered.
type rowEncoder struct {
	buf    *bufio.Writer
	gz     *gzip.Writer
	csv    *csv.Writer
	fields []string
	line   []byte
	cells  []string
}

func newRowEncoder(w io.Writer, f ExtractFormat, gz bool, fields []string) *rowEncoder {
	e := &rowEncoder{fields: fields, cells: make([]string, len(fields))}
	if gz {
		e.gz = gzip.NewWriter(w)
		w = e.gz
	}
	e.buf = bufio.NewWriterSize(w, 64<<10)
	if f == ExtractCSV {
		e.csv = csv.NewWriter(e.buf)
		_ = e.csv.Write(fields) // into the buffer; errors surface at Flush
	}
	return e
}

func (e *rowEncoder) write(vals map[string]string) error {
	if e.csv != nil {
		for i, f := range e.fields {
			e.cells[i] = vals[f]
		}
		return e.csv.Write(e.cells)
	}
	b := append(e.line[:0], '{')
	first := true
	for _, f := range e.fields {
		v, ok := vals[f]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsontext.AppendString(b, f)
		b = append(b, ':')
		b = jsontext.AppendString(b, v)
	}
	b = append(b, '}', '\n')
	e.line = b
	_, err := e.buf.Write(b)
	return err
}

func (e *rowEncoder) close() error {
	if e.csv != nil {
		e.csv.Flush()
		if err := e.csv.Error(); err != nil {
			return err
		}
	}
	if err := e.buf.Flush(); err != nil {
		return err
	}
	if e.gz != nil {
		return e.gz.Close()
	}
	return nil
}

// fail marks an extract failed with err (said to the consumer in its own words when it is a
// user-facing error) and audits the failure.
func (x *Extracts) fail(ctx context.Context, id string, err error) error {
	e, ok := i18n.As(err)
	if !ok {
		e = i18n.ErrInternal
	}
	ex, rerr := getExtract(ctx, x.s.d, id)
	if rerr != nil {
		return fmt.Errorf("read extract %s: %w", id, rerr)
	}
	return x.s.d.InTx(ctx, func(tx *db.Tx) error {
		r, err := tx.Exec(ctx, `UPDATE exchange_extracts SET status = 'failed', error_code = ?, error_zh = ?, error_en = ?, finished_at = ?
			WHERE id = ? AND status IN ('queued', 'running')`, e.Code, e.Msg.ZH, e.Msg.EN, x.s.clock(), id)
		if err != nil {
			return fmt.Errorf("fail extract %s: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return nil
		}
		_, err = x.s.audit.AppendTx(ctx, tx, audit.Entry{Actor: "client:" + ex.ClientID, ActorDivision: ex.consumerDivision,
			Action: ActionCall, Object: "catalog_resource:" + ex.ResourceID, Outcome: audit.OutcomeFailed, RequestID: ex.requestID,
			Detail: map[string]any{"extract_id": ex.ID, "kind": "extract", "code": e.Code, "grant_id": ex.GrantID, "purpose": ex.Purpose}})
		return err
	})
}

// ---- expiry ----

// Expire deletes the files of extracts past their time and marks them expired; the periodic
// job calls it. It returns how many it expired.
func (x *Extracts) Expire(ctx context.Context) (int, error) {
	n := 0
	for {
		now := x.s.clock()
		rows, err := x.s.d.Query(ctx, `SELECT id, blob_key, client_id, resource_id FROM exchange_extracts
			WHERE status = 'done' AND expires_at <= ? ORDER BY expires_at LIMIT 500`, now)
		if err != nil {
			return n, fmt.Errorf("list expired extracts: %w", err)
		}
		type due struct{ id, key, client, resource string }
		var batch []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.id, &d.key, &d.client, &d.resource); err != nil {
				rows.Close()
				return n, fmt.Errorf("list expired extracts: %w", err)
			}
			batch = append(batch, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("list expired extracts: %w", err)
		}
		for _, d := range batch {
			if err := x.cfg.Blobs.Delete(ctx, d.key); err != nil && !errors.Is(err, blob.ErrNotFound) {
				return n, fmt.Errorf("delete extract file %s: %w", d.id, err)
			}
			err := x.s.d.InTx(ctx, func(tx *db.Tx) error {
				r, err := tx.Exec(ctx, `UPDATE exchange_extracts SET status = 'expired' WHERE id = ? AND status = 'done'`, d.id)
				if err != nil {
					return err
				}
				if k, _ := r.RowsAffected(); k == 1 {
					n++
					return x.s.record(ctx, tx, authz.Subject{}, ActionExtractExpire, "exchange_extract:"+d.id,
						map[string]any{"client": d.client, "resource": d.resource})
				}
				return nil
			})
			if err != nil {
				return n, fmt.Errorf("expire extract %s: %w", d.id, err)
			}
		}
		if len(batch) < 500 {
			return n, nil
		}
	}
}

// ---- reading extracts ----

// ExtractFilter selects extracts for the console.
type ExtractFilter struct {
	ConsumerDeptID string // the extracts a department's systems asked for, or
	GrantID        string // those under one grant (its consumer's and provider's staff)
	Limit          int    // default 50, at most 500
}

// Extracts lists extracts, newest first, to staff of the consumer department (or holders of
// PermRead over its division) and, for one grant, to the provider's staff too.
func (s *Service) Extracts(ctx context.Context, actor authz.Subject, f ExtractFilter) ([]Extract, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	var where string
	var arg string
	switch {
	case f.GrantID != "":
		g, err := getGrant(ctx, s.d, f.GrantID)
		if isNoRow(err) {
			return nil, i18n.ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("read grant %s: %w", f.GrantID, err)
		}
		if s.mayReadDept(ctx, actor, g.ConsumerDeptID) != nil {
			if err := s.mayReadDept(ctx, actor, g.ProviderDeptID); err != nil {
				return nil, err
			}
		}
		where, arg = `WHERE grant_id = ?`, f.GrantID
	default:
		if err := s.mayReadDept(ctx, actor, f.ConsumerDeptID); err != nil {
			return nil, err
		}
		where, arg = `WHERE consumer_dept = ?`, f.ConsumerDeptID
	}
	out, err := queryExtracts(ctx, s.d, where+` ORDER BY created_at DESC, id DESC LIMIT ?`, arg, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list extracts: %w", err)
	}
	return out, nil
}

// extractOf reads the extract id for the client that asked for it; anyone else is told it
// does not exist.
func extractOf(ctx context.Context, q db.Querier, id, clientID, resourceID string) (Extract, error) {
	ex, err := getExtract(ctx, q, id)
	if isNoRow(err) || (err == nil && (ex.ClientID != clientID || ex.ResourceID != resourceID)) {
		return Extract{}, i18n.ErrNotFound
	}
	if err != nil {
		return Extract{}, fmt.Errorf("read extract %s: %w", id, err)
	}
	return ex, nil
}

// parseExtractParams reads an extract's own parameters: format (csv, jsonl) and gzip.
func parseExtractParams(format, gz string) (ExtractFormat, bool, error) {
	f := ExtractFormat(strings.ToLower(strings.TrimSpace(format)))
	switch f {
	case "":
		f = ExtractCSV
	case ExtractCSV, ExtractJSONL:
	default:
		return "", false, invalid("format", "exchange.param", "导出格式须为 csv 或 jsonl", "the format must be csv or jsonl")
	}
	switch strings.ToLower(strings.TrimSpace(gz)) {
	case "", "0", "false", "no":
		return f, false, nil
	case "1", "true", "yes":
		return f, true, nil
	}
	return "", false, invalid("gzip", "exchange.param", "gzip 须为 true 或 false", "gzip must be true or false")
}

// ---- store ----

const extractCols = `id, access_id, request_id, target, grant_id, client_id, resource_id, resource_name, dataset_id, consumer_dept,
	consumer_dept_name, consumer_division, purpose, fields, filter, row_scope, division_column, format, gzip, status, rows_done,
	rows_total, bytes, blob_key, file_sm3, receipt, error_code, error_zh, error_en, created_at, started_at, finished_at, expires_at`

func insertExtract(ctx context.Context, tx *db.Tx, x Extract) error {
	_, err := tx.Exec(ctx, `INSERT INTO exchange_extracts (`+extractCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		x.ID, x.accessID, x.requestID, x.target, x.GrantID, x.ClientID, x.ResourceID, x.ResourceName, x.datasetID, x.ConsumerDeptID,
		x.ConsumerDeptName, x.consumerDivision, x.Purpose, jsonList(x.Fields), jsonMap(x.Filter), x.RowScope, x.divisionColumn,
		string(x.Format), x.Gzip, string(x.Status), x.RowsDone, x.RowsTotal, x.Bytes, x.blobKey, x.FileSM3, x.receipt,
		x.ErrorCode, "", "", x.CreatedAt, db.NullTime(x.StartedAt), db.NullTime(x.FinishedAt), db.NullTime(x.ExpiresAt))
	return err
}

func scanExtract(sc db.Scanner) (Extract, error) {
	var x Extract
	var fields, filter, zh, en string
	var started, finished, expires sql.NullTime
	err := sc.Scan(&x.ID, &x.accessID, &x.requestID, &x.target, &x.GrantID, &x.ClientID, &x.ResourceID, &x.ResourceName, &x.datasetID,
		&x.ConsumerDeptID, &x.ConsumerDeptName, &x.consumerDivision, &x.Purpose, &fields, &filter, &x.RowScope, &x.divisionColumn,
		&x.Format, &x.Gzip, &x.Status, &x.RowsDone, &x.RowsTotal, &x.Bytes, &x.blobKey, &x.FileSM3, &x.receipt,
		&x.ErrorCode, &zh, &en, &x.CreatedAt, &started, &finished, &expires)
	if err != nil {
		return x, err
	}
	if x.Fields, err = parseList(fields); err != nil {
		return x, fmt.Errorf("extract %s: %w", x.ID, err)
	}
	if x.Filter, err = parseMap(filter); err != nil {
		return x, fmt.Errorf("extract %s: %w", x.ID, err)
	}
	if x.ErrorCode != "" {
		x.Error = &i18n.Text{ZH: zh, EN: en}
	}
	x.CreatedAt, x.StartedAt, x.FinishedAt, x.ExpiresAt = x.CreatedAt.UTC(), db.TimePtr(started), db.TimePtr(finished), db.TimePtr(expires)
	return x, nil
}

func getExtract(ctx context.Context, q db.Querier, id string) (Extract, error) {
	return scanExtract(q.QueryRow(ctx, `SELECT `+extractCols+` FROM exchange_extracts WHERE id = ?`, id))
}

func queryExtracts(ctx context.Context, q db.Querier, query string, args ...any) ([]Extract, error) {
	return db.Collect(ctx, q, `SELECT `+extractCols+` FROM exchange_extracts `+query, args, scanExtract)
}

// ---- the gateway's routes ----

// ExtractView is the gateway's answer about an extract.
type ExtractView struct {
	ID        string        `json:"id"`
	Resource  string        `json:"resource"`
	Status    ExtractStatus `json:"status"`
	Format    ExtractFormat `json:"format"`
	Gzip      bool          `json:"gzip"`
	Fields    []string      `json:"fields"`
	Purpose   string        `json:"purpose"`
	RowsDone  int64         `json:"rows_done"`
	RowsTotal int64         `json:"rows_total"` // -1 while unknown
	Progress  float64       `json:"progress"`   // 0–1
	RowCount  *int64        `json:"row_count,omitempty"`
	Bytes     int64         `json:"bytes,omitempty"`
	FileSM3   string        `json:"file_sm3,omitempty"`
	File      string        `json:"file,omitempty"` // where to download it, once done
	CreatedAt time.Time     `json:"created_at"`
	Finished  *time.Time    `json:"finished_at,omitempty"`
	ExpiresAt *time.Time    `json:"expires_at,omitempty"`
	Error     *struct {
		Code string `json:"code"`
		ZH   string `json:"zh"`
		EN   string `json:"en"`
	} `json:"error,omitempty"`
}

func (g *Gateway) extractView(x Extract) ExtractView {
	v := ExtractView{ID: x.ID, Resource: x.ResourceID, Status: x.Status, Format: x.Format, Gzip: x.Gzip, Fields: x.Fields,
		Purpose: x.Purpose, RowsDone: x.RowsDone, RowsTotal: x.RowsTotal, Progress: x.Progress(), CreatedAt: x.CreatedAt,
		Finished: x.FinishedAt, ExpiresAt: x.ExpiresAt}
	if x.Status == ExtractDone {
		n := x.RowsDone
		v.RowCount, v.Bytes, v.FileSM3 = &n, x.Bytes, x.FileSM3
		v.File = g.cfg.Prefix + "/" + url.PathEscape(x.ResourceID) + "/extracts/" + x.ID + "/file"
	}
	if x.Error != nil {
		v.Error = &struct {
			Code string `json:"code"`
			ZH   string `json:"zh"`
			EN   string `json:"en"`
		}{x.ErrorCode, x.Error.ZH, x.Error.EN}
	}
	return v
}

// createExtract asks for an extract under the rules of a query (token, purpose, grant, items,
// rate, quota, filters on granted items only, the grant's row scope) and answers 202.
func (g *Gateway) createExtract(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Extracts == nil {
		httpx.WriteError(w, r, ErrExtractsOff)
		return
	}
	c, err := g.begin(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	format, gz, err := parseExtractParams(q.Get("format"), q.Get("gzip"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	filter, err := g.filter(ctx, c, q)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	sel := g.selection(c, filter)
	if err := g.s.data.CheckQuery(ctx, c.binding.DatasetID, sel); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ex, err := g.cfg.Extracts.request(ctx, c, format, gz, sel, canonicalTarget(r.URL))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	view := g.extractView(ex)
	w.Header().Set("Location", g.cfg.Prefix+"/"+url.PathEscape(ex.ResourceID)+"/extracts/"+ex.ID)
	w.Header().Set("Cache-Control", "no-store")
	_ = httpx.WriteJSON(w, http.StatusAccepted, view)
}

// extractOfCall finds the extract in the path for the authenticated client that asked for it.
func (g *Gateway) extractOfCall(w http.ResponseWriter, r *http.Request) (*call, Extract, error) {
	if g.cfg.Extracts == nil {
		return nil, Extract{}, ErrExtractsOff
	}
	c, err := g.authenticate(w, r)
	if err != nil {
		return nil, Extract{}, err
	}
	ex, err := extractOf(r.Context(), g.s.d, r.PathValue("id"), c.clientID, c.resourceID)
	return c, ex, err
}

// extractStatus shows an extract's status and progress to the client that asked for it.
func (g *Gateway) extractStatus(w http.ResponseWriter, r *http.Request) {
	_, ex, err := g.extractOfCall(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	_ = httpx.WriteJSON(w, http.StatusOK, g.extractView(ex))
}

// extractFile sends a finished extract's file, with its receipt, to the client that asked for
// it while its grant is live (a revocation ends downloads too). The download is audited.
func (g *Gateway) extractFile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, ex, err := g.extractOfCall(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c.grant, err = liveGrant(ctx, g.s.d, c.clientID, c.resourceID)
	if isNoRow(err) || (err == nil && (!c.grant.Live(c.at) || c.grant.ID != ex.GrantID)) {
		httpx.WriteError(w, r, g.deny(ctx, c, ErrNoGrant))
		return
	}
	if err != nil {
		httpx.WriteError(w, r, fmt.Errorf("read grant: %w", err))
		return
	}
	switch ex.Status {
	case ExtractDone:
	case ExtractExpired:
		httpx.WriteError(w, r, ErrExtractExpired)
		return
	case ExtractFailed:
		httpx.WriteError(w, r, ErrExtractFailed)
		return
	default:
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, r, ErrExtractNotReady)
		return
	}
	f, info, err := g.cfg.Extracts.cfg.Blobs.Get(ctx, ex.blobKey)
	if errors.Is(err, blob.ErrNotFound) {
		httpx.WriteError(w, r, ErrExtractExpired.Wrap(err))
		return
	}
	if err != nil {
		httpx.WriteError(w, r, fmt.Errorf("open extract file: %w", err))
		return
	}
	defer f.Close()
	if info.SM3 != ex.FileSM3 || info.Size != ex.Bytes {
		// The store's digest no longer matches the one signed: the file was changed at rest.
		httpx.WriteError(w, r, ErrExtractCorrupt)
		return
	}
	c.purpose = ex.Purpose
	err = g.s.d.InTx(ctx, func(tx *db.Tx) error {
		_, err := g.s.audit.AppendTx(ctx, tx, c.auditEntry(ActionExtractDownload, audit.OutcomeOK, map[string]any{"extract_id": ex.ID,
			"grant_id": ex.GrantID, "purpose": ex.Purpose, "row_count": ex.RowsDone, "file_sm3": ex.FileSM3}))
		return err
	})
	if err != nil {
		httpx.WriteError(w, r, fmt.Errorf("audit download: %w", err))
		return
	}
	h := w.Header()
	h.Set(ReceiptHeader, ex.receipt)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", ex.contentType())
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	h.Set("Content-Disposition", `attachment; filename="`+ex.FileName()+`"`)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, f); err != nil {
		g.cfg.Logger.Warn("extract download cut short", "extract", ex.ID, "err", err)
	}
}

// Package backup is what `dgov backup` and `dgov restore` do (S5, backup and disaster
// recovery): one signed file holding every row of the node's database and every file of its
// blob store, restorable into an empty (or explicitly replaced) node on either database.
//
// # The file
//
// A backup is a gzip-compressed tar stream, written as it is read — never the whole database
// in memory:
//
//	tables/<table>.jsonl   one JSON object per row, values in the portable encoding of codec.go
//	blobs/<key>            every object of the blob store, byte for byte
//	manifest.json          Manifest: versions, the schema_migrations rows, and for every table
//	                       and blob its size and SM3 digest (GB/T 32905-2016)
//	manifest.sig           SM2 signature (GB/T 32918.2) of the manifest by the node's key
//
// The manifest comes last because it holds the digests of everything before it, which Create
// learns only while streaming. Verify checks a file offline; Restore checks it completely
// before it changes anything.
//
// # What is not in it
//
// The master key file is never in a backup: the operator keeps it separately. The node's keys
// in crypto_keys (its SM2 signing key, the SM4 field keys, the blind-index key) are in the
// backup only wrapped under the master key, so a stolen backup yields no signing key and no
// encrypted field (ID numbers, mobiles, addresses) — but names and other fields in clear are in
// it: a backup is confidential. A backup restored without the master key is useless. That is the point:
// keep the master key somewhere else than the backups, and keep it.
//
// # Signatures: integrity, not origin
//
// manifest.sig is made by the node key whose public key the manifest itself carries. A
// signature by a key carried inside the file proves integrity (nothing was changed after
// signing, and nobody without that private key can re-sign a changed file under that key), not
// origin: anyone can build a well-formed backup and sign it with a key of their own. Whoever
// restores checks origin against the node's published keys (crypto.Keyring.PublicKeys) by
// passing them as VerifyOptions.TrustedKeysPEM / RestoreOptions.TrustedKeysPEM.
package backup

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/jsontext"
)

// FormatVersion is the version of the file layout and value encoding this package writes and
// reads.
const FormatVersion = 1

// Names inside the archive.
const (
	manifestName = "manifest.json"
	sigName      = "manifest.sig"
	tablesDir    = "tables/"
	tableExt     = ".jsonl"
	blobsDir     = "blobs/"
)

// sigContext is prefixed to the manifest before signing, so that a signature the node key makes
// for anything else (an audit checkpoint, an exchange message) can never pass as a backup's.
const sigContext = "dgov backup manifest v1\x00"

// Manifest describes a backup. It is stored as manifest.json and signed.
type Manifest struct {
	Format int `json:"format"`
	// DgovVersion is the version string of the dgov that made the backup.
	DgovVersion string     `json:"dgov_version"`
	Created     time.Time  `json:"created"`
	Dialect     db.Dialect `json:"dialect"` // the database the backup was taken from
	// PublicKeyPEM is the SM2 public key that signed the manifest (see the package comment on
	// what that does and does not prove).
	PublicKeyPEM string       `json:"public_key_pem"`
	Tables       []TableEntry `json:"tables"`
	Blobs        []BlobEntry  `json:"blobs"`
	// SchemaMigrations are the rows of schema_migrations: a backup restores only into a
	// database migrated to exactly the same versions.
	SchemaMigrations []MigrationEntry `json:"schema_migrations"`
	// RiverMigrations are the rows of River's river_migration, compared the same way.
	RiverMigrations []RiverMigrationEntry `json:"river_migrations,omitempty"`

	// SignedBy is the key id recorded in manifest.sig (not part of the signed manifest).
	SignedBy string `json:"-"`
}

// TableEntry is one table of the backup: its data file tables/<Name>.jsonl.
type TableEntry struct {
	Name    string        `json:"name"`
	Rows    int64         `json:"rows"`
	Size    int64         `json:"size"` // bytes of the data file
	SM3     string        `json:"sm3"`  // lower-case hex SM3 of the data file
	Columns []ColumnEntry `json:"columns"`
}

// ColumnEntry is a column as the source database declared it.
type ColumnEntry struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	Type string `json:"type"` // declared type, for people reading the manifest
}

// BlobEntry is one object of the blob store: the file blobs/<Key>.
type BlobEntry struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	SM3         string `json:"sm3"`
	ContentType string `json:"content_type"`
}

// MigrationEntry is one row of schema_migrations.
type MigrationEntry struct {
	Source    string `json:"source"`
	Version   int    `json:"version"`
	Name      string `json:"name"`
	AppliedAt string `json:"applied_at"`
}

// RiverMigrationEntry is one row of River's river_migration.
type RiverMigrationEntry struct {
	Line    string `json:"line"`
	Version int    `json:"version"`
}

// Signer signs the manifest; *crypto.Keyring is one (its active SM2 node key).
type Signer interface {
	Sign(msg []byte) (sig []byte, keyID string, err error)
}

// Progress stages.
const (
	StageTables  = "tables"  // Create: done and total count tables
	StageBlobs   = "blobs"   // Create and Restore: done and total count bytes of blobs
	StageRead    = "read"    // Restore: bytes of the archive read and checked; total 0 (unknown)
	StageRows    = "rows"    // Restore: rows inserted of all rows
	StageRestore = "restore" // Restore: done == total == 1 once committed
)

// Options configure Create.
type Options struct {
	// Signer signs the manifest with the node key, whose public key PublicKeyPEM is.
	Signer       Signer
	PublicKeyPEM string
	// Version is the dgov version string recorded in the manifest.
	Version string
	// Progress, if set, is called as the work advances (see the Stage constants).
	Progress func(stage string, done, total int64)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// TempDir holds one table's data file at a time while it is written (a tar entry needs its
	// size before its content); empty means os.TempDir().
	TempDir string
}

// Errors. All are *i18n.Error; detailed errors keep the code of one of these, so errors.Is
// matches them.
var (
	ErrCorrupt = &i18n.Error{Code: "backup.corrupt", Status: http.StatusUnprocessableEntity,
		Msg: i18n.T("备份文件已损坏或被篡改", "the backup file is corrupt or was tampered with")}
	ErrUntrustedKey = &i18n.Error{Code: "backup.untrusted_key", Status: http.StatusForbidden,
		Msg: i18n.T("备份的签名密钥不在受信任的密钥之列", "the backup was signed by a key that is not trusted")}
	ErrUnsupportedFormat = &i18n.Error{Code: "backup.unsupported_format", Status: http.StatusUnprocessableEntity,
		Msg: i18n.T("不支持此备份文件的格式版本", "this backup file's format version is not supported")}
	ErrSchemaMismatch = &i18n.Error{Code: "backup.schema_mismatch", Status: http.StatusConflict,
		Msg: i18n.T("备份的数据库结构版本与当前版本不同", "the backup's schema version differs from this dgov's")}
	ErrTargetNotEmpty = &i18n.Error{Code: "backup.target_not_empty", Status: http.StatusConflict,
		Msg: i18n.T("目标数据库已有数据；如确认用备份替换，请使用替换模式", "the target already holds data; to replace it with the backup, restore in replace mode")}
	ErrValue = &i18n.Error{Code: "backup.value", Status: http.StatusUnprocessableEntity,
		Msg: i18n.T("备份中的值无法写入当前数据库", "a value of the backup cannot be stored in this database")}
	ErrRestoreFailed = &i18n.Error{Code: "backup.restore_failed", Status: http.StatusInternalServerError,
		Msg: i18n.T("恢复失败，目标数据库未作任何改动", "restore failed; the target database was not changed")}
	ErrBadOptions = &i18n.Error{Code: "backup.bad_options", Status: http.StatusBadRequest,
		Msg: i18n.T("备份参数无效", "invalid backup options")}
)

// fail builds a detailed error that matches base under errors.Is.
func fail(base *i18n.Error, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(base.HTTPStatus(), base.Code, zh, en, args...)
}

func (o *Options) progress(stage string, done, total int64) {
	if o.Progress != nil {
		o.Progress(stage, done, total)
	}
}

// Create writes a backup of d and blobs to w and returns its manifest. It does not close w.
//
// The rows come from one consistent snapshot of the database (see snapshot); the blob store
// is listed after the snapshot is taken, so every blob a row of the snapshot refers to is in
// the backup as long as blobs are written before the rows that name them and are not deleted
// while the backup runs (objects deleted meanwhile are left out).
func Create(ctx context.Context, d *db.DB, blobs blob.Store, w io.Writer, opts Options) (Manifest, error) {
	if opts.Signer == nil {
		return Manifest{}, fail(ErrBadOptions, "缺少签名密钥", "no signer given")
	}
	if _, err := crypto.ParsePublicKeyPEM(opts.PublicKeyPEM); err != nil {
		return Manifest{}, fail(ErrBadOptions, "签名公钥无效", "the signer's public key PEM is not valid").Wrap(err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m := Manifest{
		Format:       FormatVersion,
		DgovVersion:  opts.Version,
		Created:      now().UTC().Truncate(time.Second),
		Dialect:      d.Dialect,
		PublicKeyPEM: opts.PublicKeyPEM,
		Tables:       []TableEntry{},
		Blobs:        []BlobEntry{},
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	if err := writeTables(ctx, d, tw, &m, &opts); err != nil {
		return Manifest{}, err
	}
	if err := writeBlobs(ctx, blobs, tw, &m, &opts); err != nil {
		return Manifest{}, err
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	raw = append(raw, '\n')
	sig, keyID, err := opts.Signer.Sign(signedMessage(raw))
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: sign manifest: %w", err)
	}
	// A signer whose key is not PublicKeyPEM would write a backup nobody can verify.
	if err := crypto.VerifyWithPublicKeyPEM(opts.PublicKeyPEM, signedMessage(raw), sig); err != nil {
		return Manifest{}, fail(ErrBadOptions, "签名公钥与签名密钥不符", "the public key PEM is not the signer's key").Wrap(err)
	}
	sigRaw, err := json.Marshal(signature{Alg: "SM2-SM3", KeyID: keyID, Signature: base64.StdEncoding.EncodeToString(sig)})
	if err != nil {
		return Manifest{}, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{manifestName, raw}, {sigName, append(sigRaw, '\n')}} {
		if err := tw.WriteHeader(fileHeader(f.name, int64(len(f.data)), m.Created)); err != nil {
			return Manifest{}, fmt.Errorf("backup: write %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return Manifest{}, fmt.Errorf("backup: write %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("backup: finish archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return Manifest{}, fmt.Errorf("backup: finish archive: %w", err)
	}
	m.SignedBy = keyID
	return m, nil
}

// signature is manifest.sig.
type signature struct {
	Alg       string `json:"alg"` // "SM2-SM3": SM2 with SM3, default user ID, ASN.1 DER
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // base64 of the DER signature over sigContext || manifest.json
}

func signedMessage(manifest []byte) []byte {
	return append([]byte(sigContext), manifest...)
}

func fileHeader(name string, size int64, mod time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: mod}
}

// snapshot begins the transaction all of a backup's rows are read in.
//
// PostgreSQL: REPEATABLE READ READ ONLY — every statement of the transaction sees the same
// snapshot, taken at its first statement, so rows of different tables are consistent with each
// other (as pg_dump does) while the node keeps serving writes.
//
// SQLite: one read transaction on one connection of the read pool. In WAL mode a read
// transaction sees the database as of its first read until it ends, whatever the writer commits
// meanwhile; database/sql keeps every statement of a Tx on its one connection. (The read pool's
// connections are query_only, so nothing here can write.)
func snapshot(ctx context.Context, d *db.DB) (*sql.Tx, error) {
	switch d.Dialect {
	case db.Postgres:
		return d.W.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	case db.SQLite:
		return d.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	}
	return nil, fmt.Errorf("backup: unknown dialect %q", d.Dialect)
}

func writeTables(ctx context.Context, d *db.DB, tw *tar.Writer, m *Manifest, opts *Options) error {
	tx, err := snapshot(ctx, d)
	if err != nil {
		return fmt.Errorf("backup: begin snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	s, err := discover(ctx, tx, d.Dialect)
	if err != nil {
		return fmt.Errorf("backup: read schema: %w", err)
	}
	if m.SchemaMigrations, m.RiverMigrations, err = readMigrations(ctx, tx, s); err != nil {
		return err
	}
	spool, err := os.CreateTemp(opts.TempDir, "dgov-backup-*.jsonl")
	if err != nil {
		return fmt.Errorf("backup: temporary file: %w", err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	total := int64(len(s.names))
	for i, name := range s.names {
		opts.progress(StageTables, int64(i), total)
		t := s.tables[name]
		if err := spool.Truncate(0); err != nil {
			return fmt.Errorf("backup: temporary file: %w", err)
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("backup: temporary file: %w", err)
		}
		rows, err := dumpTable(ctx, tx, d.Dialect, t, spool)
		if err != nil {
			return fmt.Errorf("backup: table %s: %w", name, err)
		}
		size, err := spool.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("backup: temporary file: %w", err)
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("backup: temporary file: %w", err)
		}
		// The digest is taken of the bytes as they go into the archive.
		if err := tw.WriteHeader(fileHeader(tablesDir+name+tableExt, size, m.Created)); err != nil {
			return fmt.Errorf("backup: write table %s: %w", name, err)
		}
		h := sm3.New()
		if n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(spool, size)); err != nil || n != size {
			return fmt.Errorf("backup: write table %s: %d of %d bytes: %w", name, n, size, err)
		}
		cols := make([]ColumnEntry, len(t.cols))
		for j, c := range t.cols {
			cols[j] = ColumnEntry{Name: c.name, Kind: c.kind, Type: c.typ}
		}
		m.Tables = append(m.Tables, TableEntry{Name: name, Rows: rows, Size: size, SM3: hex.EncodeToString(h.Sum(nil)), Columns: cols})
	}
	opts.progress(StageTables, total, total)
	return nil
}

// dumpTable writes every row of t, in primary-key order, as JSON lines to w.
func dumpTable(ctx context.Context, tx *sql.Tx, dialect db.Dialect, t *table, w io.Writer) (int64, error) {
	q, extra := selectSQL(dialect, t)
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := len(t.cols)
	vals := make([]any, n+len(extra))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	var count int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return count, err
		}
		line = append(line[:0], '{')
		for i, c := range t.cols {
			if i > 0 {
				line = append(line, ',')
			}
			line = jsontext.AppendString(line, c.name)
			line = append(line, ':')
			var side any
			if j, ok := extra[i]; ok {
				side = vals[n+j]
			}
			if line, err = appendValue(line, dialect, c.kind, vals[i], side); err != nil {
				return count, fmt.Errorf("column %s: %w", c.name, err)
			}
		}
		line = append(line, '}', '\n')
		if _, err := bw.Write(line); err != nil {
			return count, err
		}
		count++
		if count%1024 == 0 && ctx.Err() != nil {
			return count, ctx.Err()
		}
	}
	if err := rows.Err(); err != nil {
		return count, err
	}
	return count, bw.Flush()
}

func readMigrations(ctx context.Context, q queryer, s *schema) ([]MigrationEntry, []RiverMigrationEntry, error) {
	ms := []MigrationEntry{}
	if s.tables[schemaMigrations] != nil {
		rows, err := q.QueryContext(ctx, `SELECT source, version, name, applied_at FROM schema_migrations ORDER BY source, version`)
		if err != nil {
			return nil, nil, fmt.Errorf("backup: read schema_migrations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var e MigrationEntry
			if err := rows.Scan(&e.Source, &e.Version, &e.Name, &e.AppliedAt); err != nil {
				return nil, nil, fmt.Errorf("backup: read schema_migrations: %w", err)
			}
			ms = append(ms, e)
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("backup: read schema_migrations: %w", err)
		}
	}
	var rms []RiverMigrationEntry
	if s.tables[riverMigration] != nil {
		rows, err := q.QueryContext(ctx, `SELECT line, version FROM river_migration ORDER BY line, version`)
		if err != nil {
			return nil, nil, fmt.Errorf("backup: read river_migration: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var e RiverMigrationEntry
			if err := rows.Scan(&e.Line, &e.Version); err != nil {
				return nil, nil, fmt.Errorf("backup: read river_migration: %w", err)
			}
			rms = append(rms, e)
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("backup: read river_migration: %w", err)
		}
	}
	return ms, rms, nil
}

func writeBlobs(ctx context.Context, store blob.Store, tw *tar.Writer, m *Manifest, opts *Options) error {
	if store == nil {
		return nil
	}
	var infos []blob.Info
	var total int64
	if err := store.List(ctx, "", func(i blob.Info) error {
		infos = append(infos, i)
		total += i.Size
		return nil
	}); err != nil {
		return fmt.Errorf("backup: list blobs: %w", err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	var done int64
	for _, listed := range infos {
		opts.progress(StageBlobs, done, total)
		e, err := copyBlob(ctx, store, tw, listed.Key, m.Created)
		if errors.Is(err, blob.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return err
		}
		m.Blobs = append(m.Blobs, e)
		done += listed.Size
	}
	opts.progress(StageBlobs, total, total)
	return nil
}

func copyBlob(ctx context.Context, store blob.Store, tw *tar.Writer, key string, mod time.Time) (BlobEntry, error) {
	rc, info, err := store.Get(ctx, key)
	if err != nil {
		return BlobEntry{}, fmt.Errorf("backup: read blob %s: %w", key, err)
	}
	defer rc.Close()
	if err := tw.WriteHeader(fileHeader(blobsDir+key, info.Size, mod)); err != nil {
		return BlobEntry{}, fmt.Errorf("backup: write blob %s: %w", key, err)
	}
	h := sm3.New()
	n, err := io.Copy(io.MultiWriter(tw, h), rc)
	if err != nil || n != info.Size {
		return BlobEntry{}, fmt.Errorf("backup: blob %s: copied %d of %d bytes: %w", key, n, info.Size, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// The store records each object's digest when it is written: a difference is a file that
	// rotted or was changed on disk, which a backup must not carry on silently.
	if info.SM3 != "" && info.SM3 != sum {
		return BlobEntry{}, fmt.Errorf("backup: blob %s: content does not match its recorded SM3 digest (stored file damaged?)", key)
	}
	return BlobEntry{Key: key, Size: n, SM3: sum, ContentType: info.ContentType}, nil
}

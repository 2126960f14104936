package govservice

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// File types an applicant may upload, recognised by their first bytes (never by the name or
// the browser's word): scans and photos of documents.
var fileTypes = []struct {
	magic       []byte
	contentType string
	ext         string
}{
	{[]byte("%PDF-"), "application/pdf", ".pdf"},
	{[]byte{0xFF, 0xD8, 0xFF}, "image/jpeg", ".jpg"},
	{[]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, "image/png", ".png"},
}

// SniffFileType returns the content type and usual extension of a file's first bytes, or
// ErrFileType (ErrFileEmpty for no bytes).
func SniffFileType(head []byte) (string, string, error) {
	if len(head) == 0 {
		return "", "", ErrFileEmpty
	}
	for _, t := range fileTypes {
		if bytes.HasPrefix(head, t.magic) {
			return t.contentType, t.ext, nil
		}
	}
	return "", "", ErrFileType
}

// maxFileName bounds a stored file name, in characters.
const maxFileName = 120

// CleanFileName makes an uploaded file's name safe to store and show: the last path
// element only, no control or format characters, trimmed to maxFileName characters, with the
// extension of its real type; an empty name becomes "材料" + ext.
func CleanFileName(name, ext string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(strings.TrimRight(name, "/"))
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "")
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '/' || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(strings.TrimLeft(name, "."))
	base := strings.TrimSuffix(name, path.Ext(name))
	if strings.EqualFold(path.Ext(name), ext) || (ext == ".jpg" && strings.EqualFold(path.Ext(name), ".jpeg")) {
		ext = path.Ext(name)
	}
	if r := []rune(base); len(r) > maxFileName-len(ext) {
		base = string(r[:maxFileName-len(ext)])
	}
	base = strings.TrimSpace(base)
	if base == "" || base == "." {
		base = "材料"
	}
	return base + ext
}

// limitReader fails once more than max bytes pass, so a blob Put stores nothing.
type limitReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

var errLimit = errors.New("upload over the size limit")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		l.exceeded = true
		return 0, errLimit
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.exceeded = true
		return n, errLimit
	}
	return n, err
}

// storedFile is a file row to insert with the submission that brought it.
type storedFile struct {
	File
	blobKey string
	dataKey []byte // sealed by the field cipher (apply_files_seal.go)
}

// upload streams one material into the blob store: its type sniffed, its size bounded, its
// SM3 computed over the plaintext, and SM4-encrypted under a data key of its own on the
// way (personal data is never stored in clear). The row is written with the submission, so a refused
// submission leaves only a blob that the caller deletes.
func (a *Applications) upload(ctx context.Context, m MaterialInput) (storedFile, error) {
	if m.Content == nil {
		return storedFile{}, ErrFileEmpty.WithField("materials." + m.Key)
	}
	br := bufio.NewReaderSize(m.Content, 512)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return storedFile{}, fmt.Errorf("read upload %s: %w", m.Key, err)
	}
	ct, ext, err := SniffFileType(head)
	if err != nil {
		e, _ := i18n.As(err)
		return storedFile{}, e.WithField("materials." + m.Key)
	}
	id := db.NewID()
	key := "applications/files/" + id
	aead, dataKey, err := newDataKey(a.fc, id)
	if err != nil {
		return storedFile{}, err
	}
	lr := &limitReader{r: br, left: a.opts.MaxFileSize}
	sr := newSealReader(lr, aead, id)
	_, err = a.blobs.Put(ctx, key, sr, -1, blob.DefaultContentType)
	if lr.exceeded {
		return storedFile{}, ErrFileTooLarge(a.opts.MaxFileSize).WithField("materials." + m.Key)
	}
	if err != nil {
		return storedFile{}, fmt.Errorf("store upload %s: %w", m.Key, err)
	}
	return storedFile{File: File{ID: id, Name: CleanFileName(m.FileName, ext), ContentType: ct, Size: sr.size, SM3: sr.sum(),
		CreatedAt: a.now()}, blobKey: key, dataKey: dataKey}, nil
}

// discard removes uploads whose submission failed; a blob left behind holds no record.
func (a *Applications) discard(uploads []storedFile) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range uploads {
		_ = a.blobs.Delete(ctx, u.blobKey)
	}
}

// insertFiles stores the files uploaded with a submission (or an answer to a correction), in
// the transaction that stores what they belong to.
func insertFiles(ctx context.Context, tx *db.Tx, owner authz.Subject, files []storedFile) error {
	for _, f := range files {
		_, err := tx.Exec(ctx, `INSERT INTO applicant_files (id, owner_kind, owner_id, blob_key, file_name, content_type, size, sm3, created_at, data_key)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, f.ID, string(owner.Kind), owner.ID, f.blobKey, f.Name, f.ContentType, f.Size, f.SM3, f.CreatedAt, f.dataKey)
		if err != nil {
			return fmt.Errorf("record file %s: %w", f.ID, err)
		}
	}
	return nil
}

const fileSelect = `SELECT id, file_name, content_type, size, sm3, created_at, owner_kind, owner_id, blob_key, data_key FROM applicant_files`

type fileRow struct {
	File
	ownerKind authz.Kind
	ownerID   string
	blobKey   string
	dataKey   []byte // nil: stored in clear before materials were encrypted
}

func scanFile(s db.Scanner) (fileRow, error) {
	var r fileRow
	err := s.Scan(&r.ID, &r.Name, &r.ContentType, &r.Size, &r.SM3, &r.CreatedAt, &r.ownerKind, &r.ownerID, &r.blobKey, &r.dataKey)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

// ownFile reads a file of owner's personal space; any other is ErrFileNotFound.
func ownFile(ctx context.Context, q db.Querier, owner authz.Subject, id string) (fileRow, error) {
	r, err := scanFile(q.QueryRow(ctx, fileSelect+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (r.ownerKind != owner.Kind || r.ownerID != owner.ID)) {
		return fileRow{}, ErrFileNotFound
	}
	if err != nil {
		return fileRow{}, fmt.Errorf("read file %s: %w", id, err)
	}
	return r, nil
}

// maxFiles bounds the personal space listing.
const maxFiles = 500

// Files lists the applicant's personal space (我的空间), newest first: every file they
// uploaded, reusable in later applications by its id (source "file").
func (a *Applications) Files(ctx context.Context, ap authz.Subject) ([]File, error) {
	if err := checkApplicantSubject(ap); err != nil {
		return nil, err
	}
	rows, err := db.Collect(ctx, a.d, fileSelect+` WHERE owner_kind = ? AND owner_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
		[]any{string(ap.Kind), ap.ID, maxFiles}, scanFile)
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	out := make([]File, len(rows))
	for i, r := range rows {
		out[i] = r.File
	}
	return out, nil
}

// OpenFile opens a file for its owner, or for staff who may read an application that
// attaches it (the handling department's; each such read is audited). Anyone else gets
// ErrFileNotFound. The reader yields the plaintext; a stored file that does not decrypt or
// does not match its recorded SM3 fails with ErrFileCorrupt (from OpenFile when its start
// is damaged, otherwise from Read). The caller closes the reader.
func (a *Applications) OpenFile(ctx context.Context, actor authz.Subject, fileID string) (File, io.ReadCloser, error) {
	if actor.Kind == "" {
		return File{}, nil, i18n.ErrUnauthorized
	}
	r, err := scanFile(a.d.QueryRow(ctx, fileSelect+` WHERE id = ?`, fileID))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, nil, ErrFileNotFound
	}
	if err != nil {
		return File{}, nil, fmt.Errorf("read file %s: %w", fileID, err)
	}
	owner := r.ownerKind == actor.Kind && r.ownerID == actor.ID
	if !owner {
		appID, err := a.fileReadableBy(ctx, actor, fileID)
		if err != nil {
			return File{}, nil, err
		}
		if err := a.audit(ctx, actor, ActionFileRead, "applicant_file:"+fileID, map[string]any{"application": appID, "sm3": r.SM3}); err != nil {
			return File{}, nil, err
		}
	}
	rc, _, err := a.blobs.Get(ctx, r.blobKey)
	if errors.Is(err, blob.ErrNotFound) {
		return File{}, nil, ErrFileNotFound.Wrap(err)
	}
	if err != nil {
		return File{}, nil, fmt.Errorf("open file %s: %w", fileID, err)
	}
	plain, err := openFileReader(a.fc, r, r.dataKey, rc)
	if err != nil {
		_ = rc.Close()
		return File{}, nil, err
	}
	return r.File, plain, nil
}

// fileReadableBy returns an application attaching the file whose values actor may read.
func (a *Applications) fileReadableBy(ctx context.Context, actor authz.Subject, fileID string) (string, error) {
	if actor.Kind != authz.Staff {
		return "", ErrFileNotFound
	}
	type ref struct{ app, caseID string }
	refs, err := db.Collect(ctx, a.d, `SELECT DISTINCT a.id, a.case_id FROM service_application_materials m
		JOIN service_applications a ON a.id = m.application_id WHERE m.file_id = ? LIMIT 20`, []any{fileID},
		func(s db.Scanner) (ref, error) {
			var r ref
			return r, s.Scan(&r.app, &r.caseID)
		})
	if err != nil {
		return "", fmt.Errorf("file %s: %w", fileID, err)
	}
	for _, r := range refs {
		c, err := a.cases.Get(ctx, actor, r.caseID)
		if err == nil && handlingStaff(actor, c.DeptID) {
			return r.app, nil
		}
	}
	return "", ErrFileNotFound
}

// handlingStaff: staff of the department that handles the case, who may read its personal
// data (the workflow engine has checked their division when it showed them the case).
func handlingStaff(actor authz.Subject, deptID string) bool {
	return actor.Kind == authz.Staff && actor.Dept != "" && actor.Dept == deptID
}

// audit records an event in its own transaction (reads have none of their own).
func (a *Applications) audit(ctx context.Context, actor authz.Subject, action, object string, detail map[string]any) error {
	if a.opts.Audit == nil {
		return nil
	}
	return a.d.InTx(ctx, func(tx *db.Tx) error {
		if err := a.opts.Audit(ctx, tx, actor, action, object, detail); err != nil {
			return fmt.Errorf("audit %s %s: %w", action, object, err)
		}
		return nil
	})
}

func checkApplicantSubject(s authz.Subject) error {
	switch {
	case s.Kind == "" || s.ID == "":
		return i18n.ErrUnauthorized
	case s.Kind != authz.Citizen && s.Kind != authz.Enterprise:
		return i18n.ErrForbidden
	}
	return nil
}

// Package blob stores files — citizens' materials, issued licenses, data exports, backups —
// in a local directory by default or in an S3-compatible bucket (MinIO) by configuration.
//
// Both stores stream: nothing reads a whole object into memory. Every object carries its
// SM3 digest (GB/T 32905-2016), computed while it is written, so callers can check integrity
// and the audit log can cite a file by hash. An object appears under its key only once it
// is complete; a crash mid-write never leaves part of a file there.
package blob

import (
	"context"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Store keeps objects under keys such as "materials/2024/申请表.pdf".
//
// Keys are slash-separated paths checked by ValidateKey; a bad key is an *i18n.Error that
// matches ErrInvalidKey. Reading, stating or deleting a missing object fails with an error
// that matches ErrNotFound. Other errors (disk, network) are internal.
type Store interface {
	// Put stores r under key, replacing any object there. size is the exact number of bytes
	// r yields, or -1 when unknown; a reader that yields more or fewer fails with
	// ErrSizeMismatch and stores nothing. An empty contentType means application/octet-stream.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Info, error)
	// Get opens the object for reading; the caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat describes the object without reading it.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object; a missing one is ErrNotFound.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in byte order of keys.
	// The prefix need not end at a '/': "exports/2024-0" matches "exports/2024-05/a.csv".
	// An error from fn stops the listing and is returned as is.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Info describes a stored object.
type Info struct {
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	SM3         string    `json:"sm3"` // lowercase hex SM3 digest of the content
	ModTime     time.Time `json:"mod_time"`
}

// Errors callers test with errors.Is. Detailed errors keep these codes (see fail).
var (
	ErrNotFound           = &i18n.Error{Code: "blob.not_found", Status: http.StatusNotFound, Msg: i18n.T("文件不存在", "file not found")}
	ErrInvalidKey         = i18n.New("blob.invalid_key", "文件标识无效", "invalid file key").WithField("key")
	ErrInvalidContentType = i18n.New("blob.invalid_content_type", "文件类型无效", "invalid content type").WithField("content_type")
	ErrSizeMismatch       = i18n.New("blob.size_mismatch", "文件大小与声明不符", "file size does not match the declared size").WithField("size")
	// ErrKeyConflict: the local store keeps keys as files, so "a" and "a/b" cannot both exist.
	ErrKeyConflict = &i18n.Error{Code: "blob.key_conflict", Status: http.StatusConflict, Field: "key",
		Msg: i18n.T("文件标识与已有文件或目录冲突", "file key conflicts with an existing file or folder")}
)

// fail builds the detailed error for one rule; it keeps base's code, status and field, so
// errors.Is matches base, but says exactly what was wrong with this input.
func fail(base *i18n.Error, zh, en string, args ...any) error {
	e := i18n.Errorf(base.HTTPStatus(), base.Code, zh, en, args...)
	e.Field = base.Field
	return e
}

// notFound says which key was missing (for logs) and matches ErrNotFound.
func notFound(key string) error { return fmt.Errorf("blob %q: %w", key, ErrNotFound) }

// Limits on keys. 1024 bytes is the S3 limit on object names. A segment becomes a file name
// in the local store, next to its sidecar ".<name>.json"; 200 bytes keeps both under the
// 255-byte NAME_MAX of common file systems.
const (
	MaxKeyLen     = 1024
	MaxSegmentLen = 200
)

// ValidateKey checks a key: 1 to MaxKeyLen bytes of printable UTF-8, segments separated by
// single '/', no leading or trailing '/', no backslash, and no segment that starts with '.'
// — which rules out "." and ".." and leaves dot-names to the stores' own files (sidecars,
// temporary uploads), so a key can never name one of them.
func ValidateKey(key string) error {
	if key == "" {
		return fail(ErrInvalidKey, "文件标识不能为空", "file key is empty")
	}
	if len(key) > MaxKeyLen {
		return fail(ErrInvalidKey, "文件标识过长（最多 %d 字节）", "file key is too long (at most %d bytes)", MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fail(ErrInvalidKey, "文件标识不是有效的 UTF-8 文本", "file key is not valid UTF-8")
	}
	for _, c := range key {
		if c == '\\' {
			return fail(ErrInvalidKey, "文件标识不能包含反斜杠", "file key must not contain a backslash")
		}
		if !unicode.IsPrint(c) {
			return fail(ErrInvalidKey, "文件标识包含不可打印字符 %U", "file key contains the unprintable character %U", c)
		}
	}
	if key[0] == '/' {
		return fail(ErrInvalidKey, "文件标识不能以“/”开头", "file key must not start with '/'")
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fail(ErrInvalidKey, "文件标识不能有空的路径段（“//”或结尾的“/”）", "file key must not have an empty segment ('//' or a trailing '/')")
		case seg[0] == '.':
			return fail(ErrInvalidKey, "文件标识的路径段不能以“.”开头：%q", "file key segment must not start with '.': %q", seg)
		case len(seg) > MaxSegmentLen:
			return fail(ErrInvalidKey, "文件标识的路径段过长（最多 %d 字节）", "file key segment is too long (at most %d bytes)", MaxSegmentLen)
		}
	}
	return nil
}

// validatePrefix accepts "" (everything), a key, a key followed by '/', or the start of a
// key that stops mid-segment.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return ValidateKey(strings.TrimSuffix(prefix, "/"))
}

// DefaultContentType is stored when Put is given none.
const DefaultContentType = "application/octet-stream"

// normalizeContentType checks a MIME type so it can travel in an HTTP header.
func normalizeContentType(ct string) (string, error) {
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return DefaultContentType, nil
	}
	if len(ct) > 255 {
		return "", fail(ErrInvalidContentType, "文件类型过长", "content type is too long")
	}
	for i := 0; i < len(ct); i++ {
		if ct[i] < 0x20 || ct[i] > 0x7e {
			return "", fail(ErrInvalidContentType, "文件类型只能包含可打印的 ASCII 字符", "content type must be printable ASCII")
		}
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return "", fail(ErrInvalidContentType, "文件类型格式错误：%q", "malformed content type: %q", ct)
	}
	return ct, nil
}

// checkPut validates the arguments every Put takes.
func checkPut(key string, size int64, contentType string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if size < -1 {
		return "", fail(ErrSizeMismatch, "文件大小无效：%d", "invalid file size: %d", size)
	}
	return normalizeContentType(contentType)
}

// guessContentType is for objects that arrive without metadata (placed by hand, or whose
// sidecar a crash lost): go by the file extension.
func guessContentType(key string) string {
	if ct := mime.TypeByExtension(filepath.Ext(key)); ct != "" {
		return ct
	}
	return DefaultContentType
}

// meteredReader hashes and counts what passes through, enforces the declared size and
// stops when ctx is cancelled, so a long upload can be abandoned.
type meteredReader struct {
	ctx  context.Context
	r    io.Reader
	size int64 // declared size, -1 if unknown
	n    int64
	h    hash.Hash
	bad  error // the size mismatch, once seen
}

func newMeteredReader(ctx context.Context, r io.Reader, size int64) *meteredReader {
	return &meteredReader{ctx: ctx, r: r, size: size, h: sm3.New()}
}

func (m *meteredReader) Read(p []byte) (int, error) {
	if err := m.ctx.Err(); err != nil {
		return 0, err
	}
	if m.size >= 0 {
		if left := m.size - m.n; left <= 0 {
			// Read past the declared size only to learn whether the reader is really done.
			var one [1]byte
			k, err := io.ReadFull(m.r, one[:])
			if k > 0 {
				return 0, m.tooLong()
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return 0, io.EOF
			}
			return 0, err
		} else if int64(len(p)) > left {
			p = p[:left]
		}
	}
	k, err := m.r.Read(p)
	m.n += int64(k)
	m.h.Write(p[:k])
	if err == io.EOF && m.size >= 0 && m.n < m.size {
		return k, m.tooShort()
	}
	return k, err
}

func (m *meteredReader) tooLong() error {
	m.bad = fail(ErrSizeMismatch, "文件超过声明的 %d 字节", "file is longer than the declared %d bytes", m.size)
	return m.bad
}

func (m *meteredReader) tooShort() error {
	m.bad = fail(ErrSizeMismatch, "文件只有 %d 字节，声明为 %d 字节", "file has %d bytes, declared %d", m.n, m.size)
	return m.bad
}

// finish checks that the whole declared content was read (a copier that stopped at exactly
// size bytes has not yet seen whether more follow) and returns the hex digest.
func (m *meteredReader) finish() (string, error) {
	if m.size >= 0 {
		if m.n < m.size {
			return "", m.tooShort()
		}
		if _, err := m.Read(make([]byte, 1)); err != io.EOF {
			if err == nil {
				err = m.tooLong()
			}
			return "", err
		}
	}
	return fmt.Sprintf("%x", m.h.Sum(nil)), nil
}

// explain returns the size mismatch if the reader raised one — a client library may have
// flattened it into its own error text — and err otherwise.
func (m *meteredReader) explain(err error) error {
	if m.bad != nil {
		return m.bad
	}
	return err
}

// Config chooses and configures the store. Zero value: a local directory under ./data.
type Config struct {
	// Dir is the local store's directory; empty means DataDir/blobs.
	Dir string
	// DataDir is the node's data directory; empty means ./data.
	DataDir string
	// S3, when S3.Endpoint is set, selects the S3 store instead.
	S3 S3Config
}

// Open returns the store the configuration asks for: S3 when an endpoint is set, otherwise
// a directory on local disk. It checks the store is usable (directory writable, bucket
// reachable and present), so a bad configuration fails at start, not at first upload.
func Open(cfg Config) (Store, error) {
	if cfg.S3.Endpoint != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return NewS3(ctx, cfg.S3)
	}
	dir := cfg.Dir
	if dir == "" {
		data := cfg.DataDir
		if data == "" {
			data = "data"
		}
		dir = filepath.Join(data, "blobs")
	}
	return NewLocal(dir)
}

package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/crypto"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// TrustedKeysPEM, when not empty, are the SM2 public keys (PEM) a backup must be signed
	// by — the node's published keys (crypto.Keyring.PublicKeys). Empty checks integrity only:
	// the file is as its signer made it, whoever that was.
	TrustedKeysPEM []string
}

// Limits on the small files of an archive; beyond them a file is not one dgov wrote.
const (
	maxManifest = 256 << 20 // a manifest lists every blob: 256 MiB is ~1 million
	maxSig      = 64 << 10
)

// Verify reads a backup from r and checks it offline: the signature over the manifest (and,
// with TrustedKeysPEM, who made it) and the size and SM3 digest of every table and blob file.
// It returns the manifest of a sound backup; a corrupt or altered file fails with an error
// matching ErrCorrupt, an untrusted signer with ErrUntrustedKey.
func Verify(r io.Reader, opts VerifyOptions) (Manifest, error) {
	a, err := readArchive(context.Background(), r, "", nil)
	if err != nil {
		return Manifest{}, err
	}
	return a.check(opts.TrustedKeysPEM)
}

// archive is what readArchive saw: the manifest and signature, and for every other file its
// size, digest, line count and (when spooling) where its content was saved.
type archive struct {
	manifest, sig []byte
	files         map[string]*archived
}

type archived struct {
	size  int64
	sm3   string
	lines int64
	path  string // the spooled copy; empty when only verifying
}

// readArchive reads the whole tar.gz stream from r. With spoolDir it saves every table and
// blob file there (a tar can be read only once, front to back, and nothing may be restored
// before everything is checked); without, it only digests them.
func readArchive(ctx context.Context, r io.Reader, spoolDir string, progress func(int64)) (*archive, error) {
	cr := &countingReader{r: r}
	gz, err := gzip.NewReader(cr)
	if err != nil {
		return nil, corrupt("不是 gzip 压缩的备份文件", "not a gzip-compressed backup file", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	a := &archive{files: map[string]*archived{}}
	seen := map[string]bool{}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, corrupt("备份文件结构损坏", "the backup archive is damaged", err)
		}
		name := h.Name
		if seen[name] {
			return nil, corrupt("备份文件中有重复的条目 %q", "the backup archive holds %q twice", nil, name)
		}
		seen[name] = true
		if h.Typeflag != tar.TypeReg || isSparse(h) {
			return nil, corrupt("备份文件中有非普通文件条目 %q", "the backup archive holds %q, which is not a regular file", nil, name)
		}
		switch {
		case name == manifestName:
			if a.manifest, err = readSmall(tr, h.Size, maxManifest); err != nil {
				return nil, corrupt("无法读取备份清单", "cannot read the backup manifest", err)
			}
		case name == sigName:
			if a.sig, err = readSmall(tr, h.Size, maxSig); err != nil {
				return nil, corrupt("无法读取备份签名", "cannot read the backup signature", err)
			}
		case strings.HasPrefix(name, tablesDir) && strings.HasSuffix(name, tableExt), strings.HasPrefix(name, blobsDir):
			f, err := digest(tr, h.Size, spoolDir, n, strings.HasPrefix(name, tablesDir))
			if err != nil {
				return nil, err
			}
			a.files[name] = f
		default:
			return nil, corrupt("备份文件中有未知条目 %q", "the backup archive holds an unknown entry %q", nil, name)
		}
		if progress != nil {
			progress(cr.n)
		}
	}
	return a, nil
}

// digest reads one file of the archive, hashing it, counting its lines and, with spoolDir,
// saving it as spoolDir/<n> (never under a name taken from the archive).
func digest(r io.Reader, size int64, spoolDir string, n int, countLines bool) (*archived, error) {
	f := &archived{}
	var w io.Writer = io.Discard
	var out *os.File
	if spoolDir != "" {
		var err error
		f.path = filepath.Join(spoolDir, strconv.Itoa(n))
		if out, err = os.OpenFile(f.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
			return nil, fmt.Errorf("backup: spool: %w", err)
		}
		defer out.Close()
		w = out
	}
	h := sm3.New()
	lc := &lineCounter{}
	ws := []io.Writer{w, h}
	if countLines {
		ws = append(ws, lc)
	}
	copied, err := io.Copy(io.MultiWriter(ws...), r)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("backup: spool: %w", err)
		}
		return nil, corrupt("备份文件结构损坏", "the backup archive is damaged", err)
	}
	if out != nil {
		if err := out.Close(); err != nil {
			return nil, fmt.Errorf("backup: spool: %w", err)
		}
	}
	f.size, f.sm3, f.lines = copied, hex.EncodeToString(h.Sum(nil)), lc.n
	if copied != size {
		return nil, corrupt("备份文件结构损坏", "the backup archive is damaged", io.ErrUnexpectedEOF)
	}
	return f, nil
}

// isSparse reports a PAX GNU sparse file: a few bytes of archive that read as a file of any
// size, mostly zeros. dgov never writes one; accepting one would let a tiny file fill the disk.
func isSparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func readSmall(r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%d bytes, more than the %d allowed", size, limit)
	}
	return io.ReadAll(io.LimitReader(r, limit))
}

// check verifies the signature (and trust) of the manifest, then that the archive holds
// exactly the files the manifest lists, each with its size, digest and row count.
func (a *archive) check(trusted []string) (Manifest, error) {
	if a.manifest == nil {
		return Manifest{}, corrupt("备份文件缺少清单 manifest.json", "the backup has no manifest.json", nil)
	}
	if a.sig == nil {
		return Manifest{}, corrupt("备份文件缺少签名 manifest.sig", "the backup has no manifest.sig", nil)
	}
	var sig signature
	if err := json.Unmarshal(a.sig, &sig); err != nil {
		return Manifest{}, corrupt("备份签名格式错误", "the backup signature is malformed", err)
	}
	sigDER, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil || sig.Alg != "SM2-SM3" {
		return Manifest{}, corrupt("备份签名格式错误", "the backup signature is malformed", err)
	}
	var m Manifest
	if err := json.Unmarshal(a.manifest, &m); err != nil {
		return Manifest{}, corrupt("备份清单格式错误", "the backup manifest is malformed", err)
	}
	if err := crypto.VerifyWithPublicKeyPEM(m.PublicKeyPEM, signedMessage(a.manifest), sigDER); err != nil {
		return Manifest{}, corrupt("备份清单的签名无效", "the backup manifest's signature does not verify", err)
	}
	if len(trusted) > 0 {
		if err := checkTrusted(m.PublicKeyPEM, trusted); err != nil {
			return Manifest{}, err
		}
	}
	if m.Format != FormatVersion {
		return Manifest{}, fail(ErrUnsupportedFormat, "备份格式版本为 %d，本程序支持 %d", "the backup has format version %d; this dgov reads %d", m.Format, FormatVersion)
	}
	m.SignedBy = sig.KeyID
	listed := map[string]bool{}
	want := func(name string, size int64, sum string, lines int64) error {
		if listed[name] {
			return corrupt("备份清单重复列出 %q", "the backup manifest lists %q twice", nil, name)
		}
		listed[name] = true
		f := a.files[name]
		switch {
		case f == nil:
			return corrupt("备份文件缺少 %q", "the backup is missing %q", nil, name)
		case f.size != size || f.sm3 != sum:
			return corrupt("%q 的 SM3 摘要或大小与清单不符", "%q does not match the SM3 digest or size in the manifest", nil, name)
		case lines >= 0 && f.lines != lines:
			return corrupt("%q 的行数与清单不符", "%q does not have the number of rows the manifest lists", nil, name)
		}
		return nil
	}
	for _, t := range m.Tables {
		if t.Name == "" || len(t.Columns) == 0 {
			return Manifest{}, corrupt("备份清单中的表无效", "the backup manifest lists an invalid table", nil)
		}
		if err := want(tablesDir+t.Name+tableExt, t.Size, t.SM3, t.Rows); err != nil {
			return Manifest{}, err
		}
	}
	for _, b := range m.Blobs {
		if err := blob.ValidateKey(b.Key); err != nil {
			return Manifest{}, corrupt("备份清单中的文件标识无效：%q", "the backup manifest lists an invalid file key: %q", err, b.Key)
		}
		if err := want(blobsDir+b.Key, b.Size, b.SM3, -1); err != nil {
			return Manifest{}, err
		}
	}
	for name := range a.files {
		if !listed[name] {
			return Manifest{}, corrupt("备份文件中有清单未列出的 %q", "the backup holds %q, which its manifest does not list", nil, name)
		}
	}
	return m, nil
}

// checkTrusted requires the manifest's key to be one of trusted.
func checkTrusted(pemText string, trusted []string) error {
	pub, err := crypto.ParsePublicKeyPEM(pemText)
	if err != nil {
		return corrupt("备份清单中的公钥无效", "the public key in the backup manifest is not valid", err)
	}
	for i, t := range trusted {
		tp, err := crypto.ParsePublicKeyPEM(t)
		if err != nil {
			return fail(ErrBadOptions, "第 %d 个受信任公钥无效", "trusted key %d is not a valid SM2 public key PEM", i+1).Wrap(err)
		}
		if tp.Equal(pub) {
			return nil
		}
	}
	return ErrUntrustedKey
}

func corrupt(zh, en string, cause error, args ...any) error {
	e := fail(ErrCorrupt, "备份文件已损坏或被篡改："+zh, "the backup file is corrupt or was tampered with: "+en, args...)
	if cause != nil {
		e.Err = cause
	}
	return e
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type lineCounter struct{ n int64 }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

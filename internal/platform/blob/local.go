package blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// Local keeps objects as plain files under a directory, so an operator can see and copy
// them: key "a/b.pdf" is the file a/b.pdf. Beside each file a sidecar ".b.pdf.json" holds
// its content type and SM3 digest (no extended attributes: they are lost by many copy and
// backup tools). Uploads are written to .tmp/ inside the directory, synced, then renamed
// into place, so a key only ever names a complete file.
//
// The sidecar records the size and modification time of the file it describes. A sidecar
// that does not match its file — a crash between the two renames, or a file placed by hand —
// is rebuilt on the next read: the digest recomputed, the type guessed from the extension.
//
// Because keys are files, "a" and "a/b" cannot both exist; Put reports ErrKeyConflict.
// One process at a time should write to a directory: locking is per process (other
// processes' writes stay atomic, but a racing pair may cost a file its recorded type).
type Local struct {
	dir   string
	tmp   string
	locks [64]sync.Mutex // by key hash: makes a file and its sidecar change together
	// tree guards folders: writers (shared) need theirs to stay while they rename into it;
	// Delete (exclusive) removes the folders it emptied.
	tree sync.RWMutex
}

var _ Store = (*Local)(nil)

const (
	tmpDirName = ".tmp"
	// staleTemp: temporary files untouched this long belong to uploads that died with
	// their process; an upload in progress touches its file at every write.
	staleTemp = 24 * time.Hour
)

// NewLocal opens (creating if needed) a local store in dir and removes uploads abandoned by
// a crash.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob directory %s: %w", dir, err)
	}
	l := &Local{dir: abs, tmp: filepath.Join(abs, tmpDirName)}
	if err := os.MkdirAll(l.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("create blob directory: %w", err)
	}
	probe, err := os.CreateTemp(l.tmp, "probe-*")
	if err != nil {
		return nil, fmt.Errorf("blob directory %s is not writable: %w", abs, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	if err := l.removeStaleTemps(time.Now().Add(-staleTemp)); err != nil {
		return nil, err
	}
	return l, nil
}

// Dir is the store's directory (absolute).
func (l *Local) Dir() string { return l.dir }

func (l *Local) removeStaleTemps(before time.Time) error {
	entries, err := os.ReadDir(l.tmp)
	if err != nil {
		return fmt.Errorf("read %s: %w", l.tmp, err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			os.Remove(filepath.Join(l.tmp, e.Name()))
		}
	}
	return nil
}

// sidecar is the JSON file beside each object.
type sidecar struct {
	ContentType string `json:"content_type"`
	SM3         string `json:"sm3"`
	// Size and ModTime of the data file this sidecar describes; a mismatch means stale.
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
}

func (l *Local) path(key string) string { return filepath.Join(l.dir, filepath.FromSlash(key)) }

func (l *Local) sidecarPath(key string) string {
	return filepath.Join(l.dir, filepath.FromSlash(path.Dir(key)), "."+path.Base(key)+".json")
}

func (l *Local) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &l.locks[h.Sum32()%uint32(len(l.locks))]
}

// Put streams r to a temporary file, syncs it, writes the sidecar the same way, then renames
// both into place.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Info, error) {
	ct, err := checkPut(key, size, contentType)
	if err != nil {
		return Info{}, err
	}
	f, err := os.CreateTemp(l.tmp, "put-*")
	if err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	dataTmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(dataTmp)
		}
	}()
	m := newMeteredReader(ctx, r, size)
	if _, err := io.Copy(f, m); err != nil {
		return Info{}, m.explain(fmt.Errorf("put %q: %w", key, err))
	}
	sum, err := m.finish()
	if err != nil {
		return Info{}, err
	}
	if err := f.Sync(); err != nil {
		return Info{}, fmt.Errorf("put %q: sync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	fi, err := os.Stat(dataTmp)
	if err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	meta := sidecar{ContentType: ct, SM3: sum, Size: fi.Size(), ModTime: fi.ModTime()}
	metaTmp, err := l.writeTempSidecar(meta)
	if err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	defer func() {
		if !committed {
			os.Remove(metaTmp)
		}
	}()

	mu := l.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	l.tree.RLock()
	defer l.tree.RUnlock()
	if err := l.renameIn(key, dataTmp, l.path(key)); err != nil {
		return Info{}, err
	}
	committed = true
	if err := os.Rename(metaTmp, l.sidecarPath(key)); err != nil {
		os.Remove(metaTmp)
		// The data is in place; its sidecar will be rebuilt on first read.
		return Info{}, fmt.Errorf("put %q: metadata: %w", key, err)
	}
	if err := syncDir(filepath.Dir(l.path(key))); err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	return meta.info(key), nil
}

// renameIn moves a finished temporary file to dst, creating the key's folders. Another
// process's Delete may remove an emptied folder between our mkdir and rename; then we
// make it again.
func (l *Local) renameIn(key, tmp, dst string) error {
	for attempt := 0; ; attempt++ {
		err := l.mkdirs(key)
		if err == nil {
			if fi, lerr := os.Lstat(dst); lerr == nil && fi.IsDir() {
				return fail(ErrKeyConflict, "“%s”已是一个目录", "%q is already a folder", key)
			}
			if err = os.Rename(tmp, dst); err == nil {
				return nil
			}
		}
		if errors.Is(err, ErrKeyConflict) {
			return err
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return fmt.Errorf("put %q: %w", key, err)
		}
	}
}

// mkdirs creates the directories above key one by one, syncing each parent so the new
// entry survives a crash; a plain file in the way is a key conflict.
func (l *Local) mkdirs(key string) error {
	dir := path.Dir(key)
	if dir == "." {
		return nil
	}
	cur := l.dir
	for seg := range strings.SplitSeq(dir, "/") {
		next := filepath.Join(cur, seg)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(next, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := syncDir(cur); err != nil {
				return err
			}
			fi, err = os.Lstat(next)
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			rel, _ := filepath.Rel(l.dir, next)
			return fail(ErrKeyConflict, "“%s”已是一个文件", "%q is already a file", filepath.ToSlash(rel))
		}
		cur = next
	}
	return nil
}

func (l *Local) writeTempSidecar(meta sidecar) (string, error) {
	b, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(l.tmp, "meta-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes renames and new entries in dir durable. Some file systems cannot sync a
// directory (EINVAL); there, nothing more can be done.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func (m sidecar) info(key string) Info {
	return Info{Key: key, Size: m.Size, ContentType: m.ContentType, SM3: m.SM3, ModTime: m.ModTime.UTC()}
}

// statFile finds the regular file behind key. Directories, symbolic links and other
// special files are not objects.
func (l *Local) statFile(key string) (fs.FileInfo, error) {
	fi, err := os.Lstat(l.path(key))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || err == nil && !fi.Mode().IsRegular() {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, fmt.Errorf("stat %q: %w", key, err)
	}
	return fi, nil
}

// describe returns key's metadata from its sidecar, rebuilding a missing or stale sidecar
// from the file (f if open, else opened here). The caller holds the key's lock.
func (l *Local) describe(key string, f *os.File, fi fs.FileInfo) (Info, error) {
	var meta sidecar
	if b, err := os.ReadFile(l.sidecarPath(key)); err == nil && json.Unmarshal(b, &meta) == nil &&
		meta.SM3 != "" && meta.Size == fi.Size() && meta.ModTime.Equal(fi.ModTime()) {
		return meta.info(key), nil
	}
	if f == nil {
		var err error
		if f, err = os.Open(l.path(key)); err != nil {
			return Info{}, fmt.Errorf("read %q: %w", key, err)
		}
		defer f.Close()
	}
	h := sm3.New()
	// A section reader leaves f's offset alone, so Get can hand f back unread.
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return Info{}, fmt.Errorf("hash %q: %w", key, err)
	}
	meta = sidecar{ContentType: guessContentType(key), SM3: fmt.Sprintf("%x", h.Sum(nil)), Size: fi.Size(), ModTime: fi.ModTime()}
	if tmp, err := l.writeTempSidecar(meta); err == nil {
		if os.Rename(tmp, l.sidecarPath(key)) != nil {
			os.Remove(tmp) // the next read tries again
		}
	}
	return meta.info(key), nil
}

// Get opens the file. Reading continues to see this version even if a Put replaces it
// meanwhile (a rename does not disturb an open file).
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	mu := l.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if _, err := l.statFile(key); err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(l.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, notFound(key)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("get %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notFound(key)
	}
	var info Info
	if err == nil {
		info, err = l.describe(key, f, fi)
	}
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	return f, info, nil
}

// Stat reads the sidecar.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	mu := l.lock(key)
	mu.Lock()
	defer mu.Unlock()
	return l.stat(key)
}

func (l *Local) stat(key string) (Info, error) {
	fi, err := l.statFile(key)
	if err != nil {
		return Info{}, err
	}
	return l.describe(key, nil, fi)
}

// Delete removes the file, then its sidecar (a sidecar left alone by a crash is harmless:
// it is hidden and stale), then any directories the removal left empty.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	mu := l.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if _, err := l.statFile(key); err != nil {
		return err
	}
	if err := l.remove(key); err != nil {
		return err
	}
	l.tree.Lock()
	defer l.tree.Unlock()
	// Remove fails on a folder that still holds anything, which ends the climb.
	for dir := filepath.Dir(l.path(key)); dir != l.dir && os.Remove(dir) == nil; dir = filepath.Dir(dir) {
	}
	return nil
}

func (l *Local) remove(key string) error {
	l.tree.RLock()
	defer l.tree.RUnlock()
	if err := os.Remove(l.path(key)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return notFound(key)
		}
		return fmt.Errorf("delete %q: %w", key, err)
	}
	if err := os.Remove(l.sidecarPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %q: metadata: %w", key, err)
	}
	if err := syncDir(filepath.Dir(l.path(key))); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	return nil
}

// List walks the tree in key order: within a directory, a subdirectory "a" sorts as "a/",
// which is where its keys fall among its siblings' ("a-b" < "a/c" < "a0"). Only the
// directories that can hold matching keys are read.
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	start := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	return l.walk(ctx, start, prefix, fn)
}

func (l *Local) walk(ctx context.Context, dirKey, prefix string, fn func(Info) error) error {
	entries, err := os.ReadDir(l.path(dirKey))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	type entry struct {
		key, order string
		dir        bool
	}
	list := make([]entry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") { // sidecars, .tmp
			continue
		}
		key := path.Join(dirKey, name)
		switch {
		case e.IsDir():
			list = append(list, entry{key: key, order: key + "/", dir: true})
		case e.Type().IsRegular():
			list = append(list, entry{key: key, order: key})
		}
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.order, b.order) })
	for _, e := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.dir {
			if strings.HasPrefix(e.order, prefix) || strings.HasPrefix(prefix, e.order) {
				if err := l.walk(ctx, e.key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(e.key, prefix) || ValidateKey(e.key) != nil {
			continue
		}
		info, err := l.lockedStat(e.key)
		if errors.Is(err, ErrNotFound) { // deleted while we walked
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (l *Local) lockedStat(key string) (Info, error) {
	mu := l.lock(key)
	mu.Lock()
	defer mu.Unlock()
	return l.stat(key)
}

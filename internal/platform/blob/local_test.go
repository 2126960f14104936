package blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func newLocal(t *testing.T) *Local {
	t.Helper()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLocal(t *testing.T) {
	l := newLocal(t)
	testStore(t, l)
	// Whatever the suite did, no upload may be left half-way in the temporary directory.
	if entries, _ := os.ReadDir(l.tmp); len(entries) != 0 {
		t.Errorf("%d temporary files left behind", len(entries))
	}
}

func TestOpenDefaultsToLocal(t *testing.T) {
	data := t.TempDir()
	s, err := Open(Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := s.(*Local)
	if !ok || l.Dir() != filepath.Join(data, "blobs") {
		t.Fatalf("Open = %T %v, want a Local store in %s", s, s, filepath.Join(data, "blobs"))
	}
	dir := filepath.Join(t.TempDir(), "elsewhere")
	if s, err := Open(Config{DataDir: data, Dir: dir}); err != nil || s.(*Local).Dir() != dir {
		t.Fatalf("Open with Dir = %v, %v", s, err)
	}
}

func TestLocalFilesAreBrowsable(t *testing.T) {
	l := newLocal(t)
	mustPut(t, l, "licenses/2024/营业执照.pdf", "%PDF", "application/pdf")
	b, err := os.ReadFile(filepath.Join(l.Dir(), "licenses", "2024", "营业执照.pdf"))
	if err != nil || string(b) != "%PDF" {
		t.Fatalf("file on disk: %q, %v", b, err)
	}
	var meta sidecar
	b, err = os.ReadFile(filepath.Join(l.Dir(), "licenses", "2024", ".营业执照.pdf.json"))
	if err != nil || json.Unmarshal(b, &meta) != nil || meta.ContentType != "application/pdf" || meta.SM3 != sm3Hex([]byte("%PDF")) {
		t.Fatalf("sidecar: %s, %v", b, err)
	}
}

// A crash mid-upload leaves only a file in .tmp: the key does not exist, listings do not
// show it, and the next start removes it once it is old enough to be surely abandoned.
func TestLocalCrashLeavesNoHalfFile(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(l.tmp, "put-12345")
	if err := os.WriteFile(half, []byte("half of a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(l.tmp, "put-67890") // an upload still running in another process
	if err := os.WriteFile(fresh, []byte("in progress"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := l.List(context.Background(), "", func(Info) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("List saw %d objects (%v), want none", n, err)
	}
	old := time.Now().Add(-25 * time.Hour)
	os.Chtimes(half, old, old)
	if _, err := NewLocal(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("abandoned upload still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent upload removed: %v", err)
	}
}

// A crash between renaming the data and its sidecar leaves a sidecar that describes the
// previous content. It must not be believed.
func TestLocalStaleSidecarIsRebuilt(t *testing.T) {
	l := newLocal(t)
	mustPut(t, l, "exports/report.csv", "old,content", "text/csv")
	path := filepath.Join(l.Dir(), "exports", "report.csv")
	// Same size, different content, new modification time: as the data rename would leave it.
	if err := os.WriteFile(path+".new", []byte("new,content"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	os.Chtimes(path+".new", later, later)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	info, err := l.Stat(context.Background(), "exports/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	if info.SM3 != sm3Hex([]byte("new,content")) || info.ContentType != "text/csv; charset=utf-8" {
		t.Errorf("Stat after crash = %+v, want the new content's digest and a type guessed from .csv", info)
	}
	// The rebuilt sidecar is stored: the next read does not hash again.
	b, _ := os.ReadFile(filepath.Join(l.Dir(), "exports", ".report.csv.json"))
	var meta sidecar
	if json.Unmarshal(b, &meta) != nil || meta.SM3 != info.SM3 {
		t.Errorf("sidecar not rebuilt: %s", b)
	}
	if got, info2 := mustGet(t, l, "exports/report.csv"); got != "new,content" || info2.SM3 != info.SM3 {
		t.Errorf("Get = %q %+v", got, info2)
	}
}

// Files an operator copies in by hand are objects too, with a digest computed on first sight.
func TestLocalFilePlacedByHand(t *testing.T) {
	l := newLocal(t)
	if err := os.MkdirAll(filepath.Join(l.Dir(), "imports"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir(), "imports", "readme.txt"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []Info
	if err := l.List(context.Background(), "imports/", func(i Info) error { got = append(got, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "imports/readme.txt" || got[0].SM3 != sm3Hex([]byte("hello")) || !strings.HasPrefix(got[0].ContentType, "text/plain") {
		t.Errorf("List = %+v", got)
	}
}

func TestLocalKeyConflicts(t *testing.T) {
	l := newLocal(t)
	mustPut(t, l, "a", "file", "")
	if _, err := l.Put(context.Background(), "a/b", strings.NewReader("x"), 1, ""); !errors.Is(err, ErrKeyConflict) {
		t.Errorf("Put a/b over file a: %v, want ErrKeyConflict", err)
	}
	mustPut(t, l, "c/d", "file", "")
	if _, err := l.Put(context.Background(), "c", strings.NewReader("x"), 1, ""); !errors.Is(err, ErrKeyConflict) {
		t.Errorf("Put c over folder c: %v, want ErrKeyConflict", err)
	}
	if got, _ := mustGet(t, l, "a"); got != "file" {
		t.Errorf("a = %q", got)
	}
}

func TestLocalDeletePrunesEmptyFolders(t *testing.T) {
	l := newLocal(t)
	mustPut(t, l, "deep/er/still/x", "x", "")
	mustPut(t, l, "deep/y", "y", "")
	if err := l.Delete(context.Background(), "deep/er/still/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "deep", "er")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("emptied folders kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "deep", "y")); err != nil {
		t.Errorf("sibling removed: %v", err)
	}
}

// Writers racing on one key and on keys in one folder (which Delete may remove) leave every
// object whole and its sidecar matching it.
func TestLocalConcurrentWriters(t *testing.T) {
	l := newLocal(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				body := strings.Repeat(fmt.Sprint(i), 1000+j)
				if _, err := l.Put(ctx, "race/same", strings.NewReader(body), int64(len(body)), "text/plain"); err != nil {
					t.Error(err)
				}
				own := fmt.Sprintf("race/dir/%d", i)
				if _, err := l.Put(ctx, own, strings.NewReader(body), int64(len(body)), ""); err != nil {
					t.Error(err)
				}
				if err := l.Delete(ctx, own); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, info := mustGet(t, l, "race/same")
	if info.SM3 != sm3Hex([]byte(got)) || info.Size != int64(len(got)) || info.ContentType != "text/plain" {
		t.Errorf("after the race: %d bytes, info %+v", len(got), info)
	}
}

// Put and Get copy through small buffers: a 20 MB object must not cost anything near 20 MB
// of allocation.
func TestLocalStreamsInConstantMemory(t *testing.T) {
	l := newLocal(t)
	ctx := context.Background()
	const size = 20 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := l.Put(ctx, "backups/big.bin", &patternReader{left: size}, size, ""); err != nil {
		t.Fatal(err)
	}
	rc, _, err := l.Get(ctx, "backups/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("Get: %d bytes, %v", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("Put+Get of %d bytes allocated %d bytes; want well under the object size", size, alloc)
	}
}

package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// testStore is the conformance suite every Store passes. It uses keys under its own names,
// so a store shared with other data (a real bucket) is not disturbed beyond them.
func testStore(t *testing.T, s Store) {
	ctx := context.Background()

	t.Run("round trip", func(t *testing.T) {
		key := "materials/2024/申请表 v1.pdf"
		body := []byte("%PDF-1.7 营业执照 scan")
		before := time.Now().Add(-time.Minute)
		put, err := s.Put(ctx, key, bytes.NewReader(body), int64(len(body)), "application/pdf")
		if err != nil {
			t.Fatal(err)
		}
		want := Info{Key: key, Size: int64(len(body)), ContentType: "application/pdf", SM3: sm3Hex(body)}
		checkInfo(t, "Put", put, want)
		if put.ModTime.Before(before) || put.ModTime.After(time.Now().Add(time.Minute)) || put.ModTime.Location() != time.UTC {
			t.Errorf("Put ModTime = %v, want about now, in UTC", put.ModTime)
		}
		rc, got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc) // a few bytes: fine here
		rc.Close()
		if err != nil || !bytes.Equal(data, body) {
			t.Fatalf("Get = %q, %v; want %q", data, err, body)
		}
		checkInfo(t, "Get", got, want)
		st, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		checkInfo(t, "Stat", st, want)
		if !st.ModTime.Equal(put.ModTime) {
			t.Errorf("Stat ModTime %v, Put said %v", st.ModTime, put.ModTime)
		}
	})

	t.Run("overwrite", func(t *testing.T) {
		key := "licenses/overwrite.txt"
		mustPut(t, s, key, "first version, longer", "text/plain")
		mustPut(t, s, key, "second", "text/csv")
		if got, info := mustGet(t, s, key); got != "second" || info.ContentType != "text/csv" || info.SM3 != sm3Hex([]byte("second")) {
			t.Errorf("after overwrite: %q %+v", got, info)
		}
	})

	t.Run("empty object", func(t *testing.T) {
		info, err := s.Put(ctx, "exports/empty.csv", strings.NewReader(""), 0, "text/csv")
		if err != nil {
			t.Fatal(err)
		}
		checkInfo(t, "Put", info, Info{Key: "exports/empty.csv", Size: 0, ContentType: "text/csv", SM3: sm3Hex(nil)})
		if got, _ := mustGet(t, s, "exports/empty.csv"); got != "" {
			t.Errorf("Get = %q", got)
		}
	})

	t.Run("unknown size", func(t *testing.T) {
		body := strings.Repeat("政务数据 ", 20000)
		info, err := s.Put(ctx, "exports/unknown-size.txt", strings.NewReader(body), -1, "text/plain; charset=utf-8")
		if err != nil {
			t.Fatal(err)
		}
		checkInfo(t, "Put", info, Info{Key: "exports/unknown-size.txt", Size: int64(len(body)), ContentType: "text/plain; charset=utf-8", SM3: sm3Hex([]byte(body))})
		if got, _ := mustGet(t, s, "exports/unknown-size.txt"); got != body {
			t.Errorf("Get returned %d bytes, want %d", len(got), len(body))
		}
	})

	t.Run("default content type", func(t *testing.T) {
		if info := mustPut(t, s, "backups/no-type", "x", ""); info.ContentType != DefaultContentType {
			t.Errorf("ContentType = %q", info.ContentType)
		}
		if info, _ := s.Stat(ctx, "backups/no-type"); info.ContentType != DefaultContentType {
			t.Errorf("Stat ContentType = %q", info.ContentType)
		}
	})

	t.Run("size mismatch stores nothing", func(t *testing.T) {
		mustPut(t, s, "materials/sized-old", "old content", "text/plain")
		for _, tc := range []struct {
			name string
			key  string
			body string
			size int64
		}{
			{"longer than declared", "materials/sized-new", "0123456789", 5},
			{"shorter than declared", "materials/sized-new", "01234", 10},
			{"replacing, longer", "materials/sized-old", "0123456789", 5},
			{"replacing, shorter", "materials/sized-old", "01234", 10},
			{"negative size", "materials/sized-new", "x", -2},
		} {
			_, err := s.Put(ctx, tc.key, strings.NewReader(tc.body), tc.size, "")
			if !errors.Is(err, ErrSizeMismatch) {
				t.Errorf("%s: err = %v, want ErrSizeMismatch", tc.name, err)
			}
			checkUserError(t, tc.name, err, http.StatusBadRequest)
		}
		if _, err := s.Stat(ctx, "materials/sized-new"); !errors.Is(err, ErrNotFound) {
			t.Errorf("failed Put left an object: %v", err)
		}
		if got, _ := mustGet(t, s, "materials/sized-old"); got != "old content" {
			t.Errorf("failed Put changed the old object to %q", got)
		}
	})

	t.Run("failing reader stores nothing", func(t *testing.T) {
		boom := errors.New("client went away")
		r := io.MultiReader(strings.NewReader(strings.Repeat("a", 100_000)), errReader{boom})
		if _, err := s.Put(ctx, "materials/half", r, 200_000, ""); err == nil {
			t.Fatal("Put succeeded with a failing reader")
		}
		if _, err := s.Stat(ctx, "materials/half"); !errors.Is(err, ErrNotFound) {
			t.Errorf("failed Put left an object: %v", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Put(cctx, "materials/cancelled", strings.NewReader("x"), 1, ""); err == nil {
			t.Error("Put succeeded with a cancelled context")
		}
		if _, err := s.Stat(ctx, "materials/cancelled"); !errors.Is(err, ErrNotFound) {
			t.Errorf("cancelled Put left an object: %v", err)
		}
	})

	t.Run("bad content type", func(t *testing.T) {
		for _, ct := range []string{"text/plain; charset", "a\nb", "文本/plain", "/"} {
			_, err := s.Put(ctx, "materials/ct", strings.NewReader("x"), 1, ct)
			if !errors.Is(err, ErrInvalidContentType) {
				t.Errorf("content type %q: err = %v", ct, err)
			}
		}
	})

	t.Run("bad keys rejected", func(t *testing.T) {
		for _, key := range badKeys {
			name := fmt.Sprintf("%q", key)
			_, err := s.Put(ctx, key, strings.NewReader("x"), 1, "")
			checkBadKey(t, "Put "+name, err)
			_, _, err = s.Get(ctx, key)
			checkBadKey(t, "Get "+name, err)
			_, err = s.Stat(ctx, key)
			checkBadKey(t, "Stat "+name, err)
			checkBadKey(t, "Delete "+name, s.Delete(ctx, key))
		}
		for _, prefix := range []string{"../", "/abs", `a\b`, "a//", ".tmp/", "a/../b"} {
			err := s.List(ctx, prefix, func(Info) error { return nil })
			checkBadKey(t, fmt.Sprintf("List %q", prefix), err)
		}
	})

	t.Run("not found", func(t *testing.T) {
		key := "materials/never-stored.pdf"
		_, _, err := s.Get(ctx, key)
		checkNotFound(t, "Get", err)
		_, err = s.Stat(ctx, key)
		checkNotFound(t, "Stat", err)
		checkNotFound(t, "Delete", s.Delete(ctx, key))
		// A "directory" that only exists as the prefix of other keys is not an object.
		mustPut(t, s, "materials/dir/child", "x", "")
		_, err = s.Stat(ctx, "materials/dir")
		checkNotFound(t, "Stat of a prefix", err)
	})

	t.Run("delete", func(t *testing.T) {
		mustPut(t, s, "exports/deleted/once.csv", "a,b", "text/csv")
		if err := s.Delete(ctx, "exports/deleted/once.csv"); err != nil {
			t.Fatal(err)
		}
		_, err := s.Stat(ctx, "exports/deleted/once.csv")
		checkNotFound(t, "Stat after Delete", err)
		checkNotFound(t, "second Delete", s.Delete(ctx, "exports/deleted/once.csv"))
		// The emptied "directory" can now be a key itself.
		mustPut(t, s, "exports/deleted", "now a file", "")
	})

	t.Run("list by prefix", func(t *testing.T) {
		// Stored out of order; "list/a-b" < "list/a/c" < "list/a0" in byte order.
		for _, k := range []string{"list/a0", "list/a/c", "list/b/x/y", "list/a-b", "listing/z", "list/中文.txt"} {
			mustPut(t, s, k, "content of "+k, "text/plain")
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"list/", []string{"list/a-b", "list/a/c", "list/a0", "list/b/x/y", "list/中文.txt"}},
			{"list", []string{"list/a-b", "list/a/c", "list/a0", "list/b/x/y", "list/中文.txt", "listing/z"}},
			{"list/a", []string{"list/a-b", "list/a/c", "list/a0"}},
			{"list/a/", []string{"list/a/c"}},
			{"list/b/x/y", []string{"list/b/x/y"}},
			{"list/中", []string{"list/中文.txt"}},
			{"list/nothing/", nil},
			{"nothing", nil},
		} {
			var got []string
			err := s.List(ctx, tc.prefix, func(info Info) error {
				got = append(got, info.Key)
				body := "content of " + info.Key
				if info.Size != int64(len(body)) || info.SM3 != sm3Hex([]byte(body)) || info.ContentType != "text/plain" || info.ModTime.IsZero() {
					t.Errorf("List(%q): %+v", tc.prefix, info)
				}
				return nil
			})
			if err != nil {
				t.Errorf("List(%q): %v", tc.prefix, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		}

		var all []string
		if err := s.List(ctx, "", func(info Info) error { all = append(all, info.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(all) || !slices.Contains(all, "list/a0") || !slices.Contains(all, "materials/2024/申请表 v1.pdf") {
			t.Errorf("List(\"\") = %q: want every key, sorted", all)
		}

		stop := errors.New("enough")
		calls := 0
		err := s.List(ctx, "list/", func(Info) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("List with a failing callback: err %v after %d calls, want %v after 1", err, calls, stop)
		}
	})

	t.Run("20 MB streams", func(t *testing.T) {
		const size = 20 << 20
		want := sm3OfPattern(t, size)
		info, err := s.Put(ctx, "backups/large.bin", &patternReader{left: size}, size, "application/octet-stream")
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != size || info.SM3 != want {
			t.Fatalf("Put = %+v, want size %d sm3 %s", info, size, want)
		}
		rc, got, err := s.Get(ctx, "backups/large.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		h := sm3.New()
		n, err := io.Copy(h, rc)
		if err != nil || n != size || fmt.Sprintf("%x", h.Sum(nil)) != want || got.SM3 != want {
			t.Fatalf("Get: %d bytes, err %v, content sm3 %x, info %+v; want %d bytes, sm3 %s", n, err, h.Sum(nil), got, size, want)
		}
	})
}

// badKeys are rejected by every store, before any I/O.
var badKeys = []string{
	"",
	"/etc/passwd",
	"../escape",
	"a/../../escape",
	"a/..",
	"./a",
	"a/./b",
	`a\b`,
	`..\..\windows`,
	"a//b",
	"a/",
	"/",
	".hidden",
	"a/.tmp/x",
	"a/.b.json",
	"nul\x00byte",
	"new\nline",
	"tab\tkey",
	"del\x7f",
	"bad\xffutf8",
	"zero\u200bwidth", // a format character: invisible in logs and file listings
	strings.Repeat("k", MaxKeyLen+1),
	"x/" + strings.Repeat("s", MaxSegmentLen+1),
}

func checkInfo(t *testing.T, op string, got, want Info) {
	t.Helper()
	if got.Key != want.Key || got.Size != want.Size || got.ContentType != want.ContentType || got.SM3 != want.SM3 {
		t.Errorf("%s info = %+v, want %+v", op, got, want)
	}
	if got.ModTime.IsZero() {
		t.Errorf("%s info has no ModTime", op)
	}
}

func checkBadKey(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidKey) {
		t.Errorf("%s: err = %v, want ErrInvalidKey", op, err)
		return
	}
	checkUserError(t, op, err, http.StatusBadRequest)
}

func checkNotFound(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", op, err)
		return
	}
	checkUserError(t, op, err, http.StatusNotFound)
}

// checkUserError: the error must reach a person as translated text with the right status.
func checkUserError(t *testing.T, op string, err error, status int) {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok {
		t.Errorf("%s: %v is not an *i18n.Error", op, err)
		return
	}
	if e.HTTPStatus() != status || e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Errorf("%s: status %d, text %+v; want status %d and text in both languages", op, e.HTTPStatus(), e.Msg, status)
	}
}

func mustPut(t *testing.T, s Store, key, body, ct string) Info {
	t.Helper()
	info, err := s.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), ct)
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	return info
}

func mustGet(t *testing.T, s Store, key string) (string, Info) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer rc.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, rc); err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return b.String(), info
}

func sm3Hex(b []byte) string { return fmt.Sprintf("%x", sm3.Sum(b)) }

// patternReader yields left bytes of a fixed pseudo-random sequence without holding them,
// so large-object tests measure the store, not the test.
type patternReader struct {
	left  int64
	state uint64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	for i := range b {
		// xorshift64: cheap, and incompressible enough that no layer can shortcut it.
		if p.state == 0 {
			p.state = 0x9e3779b97f4a7c15
		}
		p.state ^= p.state << 13
		p.state ^= p.state >> 7
		p.state ^= p.state << 17
		b[i] = byte(p.state)
	}
	p.left -= int64(len(b))
	return len(b), nil
}

func sm3OfPattern(t *testing.T, size int64) string {
	t.Helper()
	h := sm3.New()
	if _, err := io.Copy(h, &patternReader{left: size}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

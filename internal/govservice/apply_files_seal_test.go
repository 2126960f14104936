package govservice_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// storedRow is what applicant_files records of a file.
type storedRow struct {
	blobKey, sm3 string
	size         int64
	dataKey      []byte
}

func (f *applyFixture) fileRow(id string) storedRow {
	f.t.Helper()
	var r storedRow
	if err := f.d.QueryRow(f.ctx, `SELECT blob_key, sm3, size, data_key FROM applicant_files WHERE id = ?`, id).
		Scan(&r.blobKey, &r.sm3, &r.size, &r.dataKey); err != nil {
		f.t.Fatal(err)
	}
	return r
}

// blobBytes reads an object as the blob store holds it.
func (f *applyFixture) blobBytes(key string) []byte {
	f.t.Helper()
	rc, _, err := f.blobs.Get(f.ctx, key)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *applyFixture) putBlob(key string, b []byte) {
	f.t.Helper()
	if _, err := f.blobs.Put(f.ctx, key, bytes.NewReader(b), int64(len(b)), ""); err != nil {
		f.t.Fatal(err)
	}
}

// readFile opens a file as its owner and reads it all; an error of either step is returned.
func (f *applyFixture) readFile(ap govservice.Applicant, id string) ([]byte, error) {
	_, rc, err := f.apps.OpenFile(f.ctx, ap.Subject, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// uploadFile submits 个体工商户设立登记 for 张三 with content as the ID scan and returns its file id.
func (f *applyFixture) uploadFile(content []byte) string {
	f.t.Helper()
	d := f.draft(f.zhang, itemGeti)
	if _, err := f.apps.Submit(f.ctx, f.zhang, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105",
		Values: values(d.Form, d.Values), Materials: []govservice.MaterialInput{upload("operator_id", "身份证.pdf", content)}}); err != nil {
		f.t.Fatalf("submit: %v", err)
	}
	files, err := f.apps.Files(f.ctx, f.zhang.Subject)
	if err != nil || len(files) == 0 {
		f.t.Fatalf("files %v %v", files, err)
	}
	return files[0].ID
}

// pdfOfSize is a PDF-looking file of n bytes that does not compress or repeat.
func pdfOfSize(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "%PDF-1.7\n")
	return b
}

// Uploaded materials are SM4-encrypted in the blob store; the recorded size and SM3 are the
// plaintext's, and OpenFile gives the plaintext back, at any size (one chunk, a chunk
// boundary, several chunks).
func TestApplyFilesSealedAtRest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		for name, content := range map[string][]byte{
			"small":          pdfFile,
			"one chunk":      pdfOfSize(64<<10, 1),
			"two chunks":     pdfOfSize(128<<10, 2),
			"several chunks": pdfOfSize(300<<10+17, 3),
		} {
			id := f.uploadFile(content)
			row := f.fileRow(id)
			if row.dataKey == nil {
				t.Errorf("%s: no data key recorded", name)
			}
			if row.size != int64(len(content)) || row.sm3 != crypto.SM3Hex(content) {
				t.Errorf("%s: recorded %d bytes SM3 %s, want the plaintext's %d %s", name, row.size, row.sm3, len(content), crypto.SM3Hex(content))
			}
			at := f.blobBytes(row.blobKey)
			if bytes.Contains(at, content[:32]) || bytes.Contains(at, []byte("%PDF")) || bytes.Contains(at, content[len(content)-16:]) {
				t.Errorf("%s: the blob holds plaintext", name)
			}
			got, err := f.readFile(f.zhang, id)
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("%s: open gives %d bytes (%v), want the %d uploaded", name, len(got), err, len(content))
			}
		}
		// The same content twice is stored under different keys: different ciphertexts.
		a, b := f.fileRow(f.uploadFile(pdfFile)), f.fileRow(f.uploadFile(pdfFile))
		if a.sm3 != b.sm3 || bytes.Equal(f.blobBytes(a.blobKey), f.blobBytes(b.blobKey)) {
			t.Errorf("equal uploads: SM3 %s %s, ciphertexts equal %v", a.sm3, b.sm3, bytes.Equal(f.blobBytes(a.blobKey), f.blobBytes(b.blobKey)))
		}
	}, applySources...)
}

// A damaged or tampered blob fails with ErrFileCorrupt and never yields altered plaintext
// as if it were whole.
func TestApplyFilesTampered(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		big := pdfOfSize(200<<10, 4) // chunks of 64 KiB: 3 full, 1 short
		const chunk = 64<<10 + 16
		small, large := f.uploadFile(pdfFile), f.uploadFile(big)
		smallRow, largeRow := f.fileRow(small), f.fileRow(large)
		smallBlob, largeBlob := f.blobBytes(smallRow.blobKey), f.blobBytes(largeRow.blobKey)
		flip := func(b []byte, i int) []byte {
			c := bytes.Clone(b)
			c[i] ^= 1
			return c
		}
		for _, tc := range []struct {
			name   string
			id     string
			key    string
			stored []byte
			early  bool // detected by OpenFile itself
		}{
			{"a flipped bit", small, smallRow.blobKey, flip(smallBlob, len(smallBlob)/2), true},
			{"a flipped tag bit", small, smallRow.blobKey, flip(smallBlob, len(smallBlob)-1), true},
			{"the header", small, smallRow.blobKey, flip(smallBlob, 0), true},
			{"cut short", small, smallRow.blobKey, smallBlob[:len(smallBlob)-3], true},
			{"emptied", small, smallRow.blobKey, nil, true},
			{"plaintext put in its place", small, smallRow.blobKey, pdfFile, true},
			{"another file's blob", small, smallRow.blobKey, largeBlob, true},
			{"a bit in a later chunk", large, largeRow.blobKey, flip(largeBlob, 4+2*chunk+10), false},
			{"cut at a chunk boundary", large, largeRow.blobKey, largeBlob[:4+3*chunk], false},
			{"chunks swapped", large, largeRow.blobKey, swapChunks(largeBlob, chunk), false},
			{"bytes appended", large, largeRow.blobKey, append(bytes.Clone(largeBlob), 0), false},
		} {
			f.putBlob(tc.key, tc.stored)
			_, rc, err := f.apps.OpenFile(f.ctx, f.zhang.Subject, tc.id)
			if err == nil {
				if tc.early {
					t.Errorf("%s: OpenFile did not notice", tc.name)
				}
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if !errors.Is(err, govservice.ErrFileCorrupt) {
				t.Errorf("%s: %v, want ErrFileCorrupt", tc.name, err)
			}
		}
		// Restored, both open again.
		f.putBlob(smallRow.blobKey, smallBlob)
		f.putBlob(largeRow.blobKey, largeBlob)
		if got, err := f.readFile(f.zhang, large); err != nil || !bytes.Equal(got, big) {
			t.Errorf("restored: %v", err)
		}
		// A data key moved to another file's row does not open (it is bound to its row).
		if _, err := d.Exec(f.ctx, `UPDATE applicant_files SET data_key = ? WHERE id = ?`, largeRow.dataKey, small); err != nil {
			t.Fatal(err)
		}
		if _, err := f.readFile(f.zhang, small); !errors.Is(err, govservice.ErrFileCorrupt) {
			t.Errorf("moved data key: %v", err)
		}
	}, applySources...)
}

func swapChunks(b []byte, chunk int) []byte {
	c := bytes.Clone(b)
	copy(c[4:4+chunk], b[4+chunk:4+2*chunk])
	copy(c[4+chunk:4+2*chunk], b[4:4+chunk])
	return c
}

// Files stored in clear before materials were encrypted (no data key) still open, and still
// fail when they no longer match their recorded SM3.
func TestApplyFilesLegacyClear(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newApplyFixture(t, d)
		id := db.NewID()
		key := "applications/files/" + id
		f.putBlob(key, pdfFile)
		if _, err := d.Exec(f.ctx, `INSERT INTO applicant_files (id, owner_kind, owner_id, blob_key, file_name, content_type, size, sm3, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, string(f.zhang.Subject.Kind), f.zhang.Subject.ID, key, "旧身份证.pdf", "application/pdf",
			len(pdfFile), crypto.SM3Hex(pdfFile), f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if row := f.fileRow(id); row.dataKey != nil {
			t.Fatalf("legacy row has a data key %x", row.dataKey)
		}
		got, err := f.readFile(f.zhang, id)
		if err != nil || !bytes.Equal(got, pdfFile) {
			t.Errorf("legacy file: %q %v", got, err)
		}
		// Listed and reusable beside new, sealed uploads.
		newID := f.uploadFile(pngLikePDF)
		files, err := f.apps.Files(f.ctx, f.zhang.Subject)
		if err != nil || len(files) != 2 {
			t.Fatalf("files %+v %v", files, err)
		}
		if got, err := f.readFile(f.zhang, newID); err != nil || !bytes.Equal(got, pngLikePDF) {
			t.Errorf("new file beside a legacy one: %v", err)
		}
		// Altered in the store: the recorded SM3 catches it at the end of reading.
		f.putBlob(key, append(bytes.Clone(pdfFile[:len(pdfFile)-1]), 'X'))
		if _, err := f.readFile(f.zhang, id); !errors.Is(err, govservice.ErrFileCorrupt) {
			t.Errorf("altered legacy file: %v", err)
		}
	}, applySources...)
}

var pngLikePDF = []byte("%PDF-1.4\n% a second scan\n%%EOF\n")

package govservice

import (
	"bufio"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Uploaded materials are personal data, so they are SM4-encrypted at rest. Each file has
// its own random SM4 data key, stored in applicant_files.data_key sealed by the FieldCipher
// (so rotating the master key never touches a blob); the blob holds
//
//	"DGF1" || chunk 0 || chunk 1 || … || final chunk
//
// where every chunk is SM4-GCM of up to sealChunk plaintext bytes with its 16-byte tag. The
// nonce is the chunk's counter and a final-chunk flag (the key is used for one file only, so
// a counter never repeats under it), and the associated data names the file: a chunk moved,
// reordered, dropped, or a blob cut at a chunk boundary or copied to another file's row
// fails to open (the STREAM construction, Hoang–Reyhanitabar–Rogaway–Vizár 2015). Chunks keep
// memory bounded at any MaxFileSize. A row with no data_key is a file stored in clear before
// encryption; it opens as it is.
const (
	sealMagic = "DGF1"
	sealChunk = 64 << 10
	sealTag   = 16
	sealNonce = 12
	dataKeyLn = 16
)

// ErrFileCorrupt: a stored material does not decrypt or does not match its recorded SM3
// digest — damaged or tampered with in the blob store.
var ErrFileCorrupt = &i18n.Error{Code: "govservice.file_corrupt", Status: http.StatusInternalServerError,
	Msg: i18n.T("材料文件已损坏或被篡改", "the stored file is damaged or was tampered with")}

// dataKeyAAD binds a sealed data key to its file row.
func dataKeyAAD(fileID string) string { return "govservice.applicant_file:" + fileID + ":data_key" }

// chunkAD binds every chunk to the format and the file.
func chunkAD(fileID string) []byte { return []byte(sealMagic + "\x00applicant_file:" + fileID) }

func chunkNonce(seq uint64, final bool) []byte {
	n := make([]byte, sealNonce)
	binary.BigEndian.PutUint64(n, seq)
	if final {
		n[sealNonce-1] = 1
	}
	return n
}

// newFileAEAD is SM4-GCM under key (platform/crypto's, on gmsm's assembly GCM).
func newFileAEAD(key []byte) (cipher.AEAD, error) { return crypto.NewSM4GCM(key) }

// newDataKey makes a file's data key: the AEAD to encrypt with and the key sealed for its row.
func newDataKey(fc *crypto.FieldCipher, fileID string) (cipher.AEAD, []byte, error) {
	key := make([]byte, dataKeyLn)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	sealed, err := fc.Seal(string(key), dataKeyAAD(fileID))
	if err != nil {
		return nil, nil, fmt.Errorf("seal data key of file %s: %w", fileID, err)
	}
	aead, err := newFileAEAD(key)
	if err != nil {
		return nil, nil, fmt.Errorf("data key of file %s: %w", fileID, err)
	}
	return aead, sealed, nil
}

// sealReader yields the encrypted form of src, counting and hashing the plaintext as it goes.
type sealReader struct {
	src   *bufio.Reader
	aead  cipher.AEAD
	ad    []byte
	seq   uint64
	buf   []byte // one chunk, sealed in place
	out   []byte // what is left to hand out
	done  bool
	plain hash.Hash
	size  int64
}

func newSealReader(src io.Reader, aead cipher.AEAD, fileID string) *sealReader {
	return &sealReader{src: bufio.NewReaderSize(src, 4096), aead: aead, ad: chunkAD(fileID),
		buf: make([]byte, sealChunk+sealTag), out: []byte(sealMagic), plain: sm3.New()}
}

func (s *sealReader) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.done {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// next seals the next chunk of plaintext; the last one (possibly short) is flagged final.
func (s *sealReader) next() error {
	n, err := io.ReadFull(s.src, s.buf[:sealChunk])
	switch {
	case err == nil:
		if _, perr := s.src.Peek(1); errors.Is(perr, io.EOF) {
			s.done = true
		} else if perr != nil {
			return perr
		}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		s.done = true
	default:
		return err
	}
	s.plain.Write(s.buf[:n])
	s.size += int64(n)
	s.out = s.aead.Seal(s.buf[:0], chunkNonce(s.seq, s.done), s.buf[:n], s.ad)
	s.seq++
	return nil
}

// sum is the hex SM3 of the plaintext read so far (all of it once Put has returned).
func (s *sealReader) sum() string { return hex.EncodeToString(s.plain.Sum(nil)) }

// openFileReader returns the plaintext of a stored material: decrypted when sealedKey is
// set, as stored otherwise; either way checked at the end against the recorded size and SM3.
// The first chunk is opened before it returns, so a wrong key or a damaged start (and any
// damage at all in a file of one chunk) fails here rather than mid-download.
func openFileReader(fc *crypto.FieldCipher, f fileRow, sealedKey []byte, rc io.ReadCloser) (io.ReadCloser, error) {
	if sealedKey == nil {
		return &checkedReader{r: rc, c: rc, f: f.File, plain: sm3.New()}, nil
	}
	key, err := fc.Open(sealedKey, dataKeyAAD(f.ID))
	if err != nil {
		return nil, ErrFileCorrupt.Wrap(fmt.Errorf("data key of file %s: %w", f.ID, err))
	}
	aead, err := newFileAEAD([]byte(key))
	if err != nil {
		return nil, ErrFileCorrupt.Wrap(fmt.Errorf("data key of file %s: %w", f.ID, err))
	}
	o := &openReader{src: bufio.NewReaderSize(rc, 4096), aead: aead, ad: chunkAD(f.ID), id: f.ID, buf: make([]byte, sealChunk+sealTag)}
	var magic [len(sealMagic)]byte
	if _, err := io.ReadFull(o.src, magic[:]); err != nil || string(magic[:]) != sealMagic {
		return nil, o.corrupt(fmt.Errorf("no %s header (%v)", sealMagic, err))
	}
	if err := o.next(); err != nil {
		return nil, err
	}
	return &checkedReader{r: o, c: rc, f: f.File, plain: sm3.New()}, nil
}

// openReader decrypts the chunks of a sealed material.
type openReader struct {
	src  *bufio.Reader
	aead cipher.AEAD
	ad   []byte
	id   string
	seq  uint64
	buf  []byte
	out  []byte
	done bool
	err  error
}

func (o *openReader) corrupt(cause error) error {
	return ErrFileCorrupt.Wrap(fmt.Errorf("file %s chunk %d: %w", o.id, o.seq, cause))
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.out) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		if o.err = o.next(); o.err != nil {
			return 0, o.err
		}
	}
	n := copy(p, o.out)
	o.out = o.out[n:]
	return n, nil
}

func (o *openReader) next() error {
	n, err := io.ReadFull(o.src, o.buf[:sealChunk+sealTag])
	final := false
	switch {
	case err == nil:
		if _, perr := o.src.Peek(1); errors.Is(perr, io.EOF) {
			final = true
		} else if perr != nil {
			return fmt.Errorf("read file %s: %w", o.id, perr)
		}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		final = true
	default:
		return fmt.Errorf("read file %s: %w", o.id, err)
	}
	if n < sealTag {
		return o.corrupt(errors.New("truncated"))
	}
	pt, err := o.aead.Open(o.buf[:0], chunkNonce(o.seq, final), o.buf[:n], o.ad)
	if err != nil {
		return o.corrupt(crypto.ErrDecrypt.Wrap(err))
	}
	o.out, o.done = pt, final
	o.seq++
	return nil
}

// checkedReader fails at the end of a material whose size or SM3 is not the recorded one,
// instead of ending cleanly: it is the integrity check of files stored in clear, and a
// second one (of the plaintext) for sealed files.
type checkedReader struct {
	r     io.Reader
	c     io.Closer
	f     File
	plain hash.Hash
	n     int64
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.plain.Write(p[:n])
	c.n += int64(n)
	if errors.Is(err, io.EOF) {
		if sum := hex.EncodeToString(c.plain.Sum(nil)); c.n != c.f.Size || sum != c.f.SM3 {
			return n, ErrFileCorrupt.Wrap(fmt.Errorf("file %s: %d bytes with SM3 %s, recorded %d bytes with SM3 %s",
				c.f.ID, c.n, sum, c.f.Size, c.f.SM3))
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.c.Close() }

package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config reaches an S3-compatible service (MinIO in a government data centre).
type S3Config struct {
	// Endpoint is host[:port]. A "https://" or "http://" scheme is accepted and decides TLS.
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	Region    string // empty: the server's default (MinIO: us-east-1)
	TLS       bool
	// Prefix is put before every key, so several nodes or environments can share a bucket.
	Prefix string
	// PartSize is the multipart chunk for large or unknown-size uploads, and so the memory
	// one upload may buffer. Zero means 16 MiB (objects up to 160 GB).
	PartSize uint64
	// Transport, if set, carries the requests: a private CA's roots, a proxy, a test server.
	Transport http.RoundTripper `json:"-"`
}

// S3 keeps objects in a bucket; content type and SM3 digest travel as object metadata.
//
// The digest is known only once the content has passed, but S3 metadata is fixed when an
// upload starts. So Put uploads to a temporary name under "<prefix>.tmp/", then copies it
// server-side to the key with the digest attached and removes the temporary object. The key
// thus never holds an object without its digest. The copy costs the server a second write;
// MinIO does it without the data leaving the cluster. Temporary objects that a crash left
// are removed by NewS3 after a day; a lifecycle rule on ".tmp/" does the same job too, as
// would one that aborts incomplete multipart uploads.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string
	partSize uint64
}

var _ Store = (*S3)(nil)

const (
	metaSM3           = "sm3" // sent as X-Amz-Meta-Sm3
	defaultS3PartSize = 16 << 20
	s3TmpDir          = ".tmp/"
	maxSingleCopy     = 5 << 30 // S3's limit on one CopyObject
)

// NewS3 connects, creates the bucket if it is missing, and clears abandoned uploads.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	endpoint, secure := cfg.Endpoint, cfg.TLS
	switch {
	case strings.HasPrefix(endpoint, "https://"):
		endpoint, secure = strings.TrimPrefix(endpoint, "https://"), true
	case strings.HasPrefix(endpoint, "http://"):
		endpoint, secure = strings.TrimPrefix(endpoint, "http://"), false
	}
	endpoint = strings.TrimSuffix(endpoint, "/")
	if endpoint == "" || strings.Contains(endpoint, "/") {
		return nil, fmt.Errorf("blob S3 endpoint %q: want host[:port]", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("blob S3: bucket is required")
	}
	prefix := strings.TrimPrefix(cfg.Prefix, "/")
	if prefix != "" {
		prefix = strings.TrimSuffix(prefix, "/") + "/"
		if err := ValidateKey(strings.TrimSuffix(prefix, "/")); err != nil {
			return nil, fmt.Errorf("blob S3 prefix %q: %w", cfg.Prefix, err)
		}
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("blob S3 %s: %w", endpoint, err)
	}
	s := &S3{client: client, bucket: cfg.Bucket, prefix: prefix, partSize: cfg.PartSize}
	if s.partSize == 0 {
		s.partSize = defaultS3PartSize
	}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		return nil, err
	}
	if err := s.removeStaleTemps(ctx, time.Now().Add(-staleTemp)); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *S3) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob S3 bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if code := minio.ToErrorResponse(err).Code; code == minio.BucketAlreadyOwnedByYou || code == minio.BucketAlreadyExists {
		return nil // another node made it first
	}
	if err != nil {
		return fmt.Errorf("blob S3 create bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *S3) removeStaleTemps(ctx context.Context, before time.Time) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + s3TmpDir, Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("blob S3 list %s: %w", s3TmpDir, oi.Err)
		}
		if oi.LastModified.Before(before) {
			s.client.RemoveObject(ctx, s.bucket, oi.Key, minio.RemoveObjectOptions{})
		}
	}
	return nil
}

// object is the bucket's name for key. A key passed ValidateKey already; the prefix may
// push it past S3's limit.
func (s *S3) object(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	name := s.prefix + key
	if len(name) > MaxKeyLen {
		return "", fail(ErrInvalidKey, "文件标识过长（加上存储前缀最多 %d 字节）", "file key is too long (at most %d bytes with the storage prefix)", MaxKeyLen)
	}
	return name, nil
}

func isNotFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == minio.NoSuchKey || code == "NotFound"
}

// Put uploads to a temporary object, then copies it to the key with its digest.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Info, error) {
	ct, err := checkPut(key, size, contentType)
	if err != nil {
		return Info{}, err
	}
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	var rnd [16]byte
	rand.Read(rnd[:])
	tmp := s.prefix + s3TmpDir + hex.EncodeToString(rnd[:])
	defer func() {
		// The temporary object goes whatever happens, even if ctx was cancelled.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		s.client.RemoveObject(ctx, s.bucket, tmp, minio.RemoveObjectOptions{})
	}()

	m := newMeteredReader(ctx, r, size)
	up, err := s.client.PutObject(ctx, s.bucket, tmp, m, size, minio.PutObjectOptions{
		ContentType: ct,
		PartSize:    s.partSize,
	})
	if err != nil {
		return Info{}, m.explain(fmt.Errorf("put %q: %w", key, err))
	}
	sum, err := m.finish()
	if err != nil {
		return Info{}, err
	}
	if up.Size != m.n {
		return Info{}, fmt.Errorf("put %q: server stored %d bytes, sent %d", key, up.Size, m.n)
	}
	// Content-Type goes in the metadata map as well as its own field: a multipart copy takes
	// only the map.
	dst := minio.CopyDestOptions{
		Bucket:          s.bucket,
		Object:          name,
		ReplaceMetadata: true,
		UserMetadata:    map[string]string{metaSM3: sum, "Content-Type": ct},
		ContentType:     ct,
	}
	src := minio.CopySrcOptions{Bucket: s.bucket, Object: tmp}
	if m.n <= maxSingleCopy {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		// S3 copies at most 5 GiB in one request; ComposeObject copies in parts.
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return Info{}, fmt.Errorf("put %q: copy into place: %w", key, err)
	}
	// The server's modification time; the copy's answer does not always carry it.
	oi, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	return Info{Key: key, Size: m.n, ContentType: ct, SM3: sum, ModTime: oi.LastModified.UTC()}, nil
}

// userMeta finds a metadata value whether the listing or a HEAD produced it: with or without
// the x-amz-meta- prefix, in any letter case.
func userMeta(oi minio.ObjectInfo, name string) string {
	for _, m := range []minio.StringMap{oi.UserMetadata, oi.UserMetadataStripped} {
		for k, v := range m {
			if strings.EqualFold(k, name) || strings.EqualFold(k, "x-amz-meta-"+name) {
				return v
			}
		}
	}
	return ""
}

func (s *S3) info(oi minio.ObjectInfo) Info {
	ct := oi.ContentType
	if ct == "" {
		ct = userMeta(oi, "content-type")
	}
	return Info{
		Key:         strings.TrimPrefix(oi.Key, s.prefix),
		Size:        oi.Size,
		ContentType: ct,
		SM3:         userMeta(oi, metaSM3),
		ModTime:     oi.LastModified.UTC(),
	}
}

// Get starts the download; the body streams as the caller reads.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, Info{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, fmt.Errorf("get %q: %w", key, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		if isNotFound(err) {
			return nil, Info{}, notFound(key)
		}
		return nil, Info{}, fmt.Errorf("get %q: %w", key, err)
	}
	oi.Key = name
	return obj, s.info(oi), nil
}

// Stat asks for the object's headers.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if isNotFound(err) {
		return Info{}, notFound(key)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat %q: %w", key, err)
	}
	oi.Key = name
	return s.info(oi), nil
}

// Delete removes the object. S3 deletes missing objects without complaint, so a HEAD first
// tells the caller when there was nothing to delete, as the local store does.
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if _, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{}); err != nil {
		if isNotFound(err) {
			return notFound(key)
		}
		return fmt.Errorf("delete %q: %w", key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	return nil
}

// List pages through the bucket in key order. MinIO returns metadata with the listing;
// other servers do not, and each object then costs a HEAD.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx) // stops the lister's goroutine when we return early
	defer cancel()
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{
		Prefix: s.prefix + prefix, Recursive: true, WithMetadata: true,
	}) {
		if oi.Err != nil {
			return fmt.Errorf("list %q: %w", prefix, oi.Err)
		}
		info := s.info(oi)
		if ValidateKey(info.Key) != nil { // temporary uploads, foreign objects
			continue
		}
		if info.SM3 == "" || info.ContentType == "" {
			full, err := s.Stat(ctx, info.Key)
			if errors.Is(err, ErrNotFound) { // deleted while we listed
				continue
			}
			if err != nil {
				return err
			}
			info = full
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return ctx.Err()
}

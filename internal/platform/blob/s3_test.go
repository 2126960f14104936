package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
)

// fakeS3 serves an in-memory S3 on a loopback port for the test's lifetime, and returns a
// configuration that reaches it.
//
// It speaks HTTPS because over plain HTTP minio-go signs uploads in aws-chunked form
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), and gofakes3 v1.2.0 decodes that only for a single
// PUT: it stores a multipart part with its chunk signatures as content, and refuses an empty
// object, which minio-go then sends with Transfer-Encoding: chunked and no Content-Length
// (MissingContentLength). Over TLS minio-go sends the bytes as they are (UNSIGNED-PAYLOAD),
// as it does to MinIO behind TLS. TestS3MinIO covers plain HTTP against a real server.
func fakeS3(t *testing.T, bucket string) S3Config {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewTLSServer(faker.Server())
	t.Cleanup(srv.Close)
	return S3Config{
		Endpoint:  srv.URL, // https://127.0.0.1:port
		Bucket:    bucket,
		AccessKey: "test",
		SecretKey: "test-secret",
		Transport: srv.Client().Transport,
	}
}

func TestS3Fake(t *testing.T) {
	ctx := context.Background()
	cfg := fakeS3(t, "dgov-files")
	cfg.Region = "us-east-1"
	s, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.client.BucketExists(ctx, "dgov-files"); !ok || err != nil {
		t.Fatalf("NewS3 did not create the bucket: %v %v", ok, err)
	}
	testStore(t, s)
	checkNoTempObjects(t, s)

	// A second node on the same bucket finds the bucket there.
	if _, err := NewS3(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// A prefix keeps a node's objects apart, and the store hides what is outside its prefix.
func TestS3Prefix(t *testing.T) {
	ctx := context.Background()
	cfg := fakeS3(t, "shared")
	whole, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = "/taiyuan/"
	city, err := Open(Config{S3: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := city.(*S3); !ok {
		t.Fatalf("Open with an endpoint gave %T", city)
	}
	mustPut(t, city, "licenses/1.pdf", "L1", "application/pdf")
	if got, info := mustGet(t, whole, "taiyuan/licenses/1.pdf"); got != "L1" || info.SM3 != sm3Hex([]byte("L1")) {
		t.Errorf("object in bucket: %q %+v", got, info)
	}
	mustPut(t, whole, "outside.txt", "x", "")
	var keys []string
	if err := city.List(ctx, "", func(i Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "licenses/1.pdf" {
		t.Errorf("prefixed List = %q", keys)
	}
}

// An upload that died leaves a temporary object: invisible to List, and removed by the next
// start once a day old.
func TestS3AbandonedUpload(t *testing.T) {
	ctx := context.Background()
	cfg := fakeS3(t, "bkt")
	s, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.PutObject(ctx, "bkt", ".tmp/dead", strings.NewReader("half"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.List(ctx, "", func(Info) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("List saw %d objects (%v), want none", n, err)
	}
	// Not yet a day old: kept (it may be an upload in progress on another node).
	if _, err := NewS3(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.StatObject(ctx, "bkt", ".tmp/dead", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("fresh temporary object removed: %v", err)
	}
	if err := s.removeStaleTemps(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.StatObject(ctx, "bkt", ".tmp/dead", minio.StatObjectOptions{}); !isNotFound(err) {
		t.Errorf("stale temporary object kept: %v", err)
	}
}

func TestS3Config(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []S3Config{
		{Endpoint: "127.0.0.1:9000"},                          // no bucket
		{Endpoint: "http://127.0.0.1:9000/path", Bucket: "b"}, // a URL path
		{Endpoint: "127.0.0.1:9000", Bucket: "b", Prefix: "../up"},
	} {
		if _, err := NewS3(ctx, cfg); err == nil {
			t.Errorf("NewS3(%+v) accepted a bad configuration", cfg)
		}
	}
}

// TestS3MinIO runs the suite against a real MinIO (or other S3) when one is configured:
//
//	DGOV_TEST_S3_ENDPOINT=127.0.0.1:9000 [DGOV_TEST_S3_ACCESS_KEY=minioadmin]
//	[DGOV_TEST_S3_SECRET_KEY=minioadmin] [DGOV_TEST_S3_BUCKET=dgov-test]
//	[DGOV_TEST_S3_REGION=] [DGOV_TEST_S3_TLS=false]
//
// It works under a fresh prefix and removes what it wrote.
func TestS3MinIO(t *testing.T) {
	endpoint := os.Getenv("DGOV_TEST_S3_ENDPOINT")
	if endpoint == "" {
		t.Skip("DGOV_TEST_S3_ENDPOINT not set: no real S3/MinIO to test against (the in-process fake runs in TestS3Fake)")
	}
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	useTLS, _ := strconv.ParseBool(env("DGOV_TEST_S3_TLS", "false"))
	var rnd [6]byte
	rand.Read(rnd[:])
	cfg := S3Config{
		Endpoint:  endpoint,
		Bucket:    env("DGOV_TEST_S3_BUCKET", "dgov-test"),
		AccessKey: env("DGOV_TEST_S3_ACCESS_KEY", "minioadmin"),
		SecretKey: env("DGOV_TEST_S3_SECRET_KEY", "minioadmin"),
		Region:    os.Getenv("DGOV_TEST_S3_REGION"),
		TLS:       useTLS,
		Prefix:    "dgov-blob-test-" + hex.EncodeToString(rnd[:]),
	}
	ctx := context.Background()
	s, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var keys []string
		s.List(ctx, "", func(i Info) error { keys = append(keys, i.Key); return nil })
		for _, k := range keys {
			s.Delete(ctx, k)
		}
	})
	testStore(t, s)
	checkNoTempObjects(t, s)
}

func checkNoTempObjects(t *testing.T, s *S3) {
	t.Helper()
	for oi := range s.client.ListObjects(context.Background(), s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + s3TmpDir, Recursive: true}) {
		t.Errorf("temporary object left behind: %s %v", oi.Key, oi.Err)
	}
}

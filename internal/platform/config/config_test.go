package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dgov.yaml")
	if err := os.WriteFile(file, []byte("http_addr: \":7000\"\nlog_level: warn\nrate_burst: 7\naudit_checkpoint_interval: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DGOV_CONFIG": file, "DGOV_HTTP_ADDR": ":7100", "DGOV_DATA_DIR": "/env/data"}
	c, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--data-dir", "/flag/data"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":7100" { // env beats file
		t.Errorf("http addr %q", c.HTTPAddr)
	}
	if c.DataDir != "/flag/data" { // flag beats env
		t.Errorf("data dir %q", c.DataDir)
	}
	if c.LogLevel != "warn" || c.RateBurst != 7 || c.AuditCheckpointInterval != 30*time.Second { // file beats defaults
		t.Errorf("file values not applied: %+v", c)
	}
	if c.RateLimit != Defaults().RateLimit {
		t.Errorf("default lost: %v", c.RateLimit)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("no_such_setting: 1\n"), 0o600)
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"unknown file key": {nil, map[string]string{"DGOV_CONFIG": bad}, "no_such_setting"},
		"bad env number":   {nil, map[string]string{"DGOV_RATE_BURST": "many"}, "DGOV_RATE_BURST"},
		"bad duration":     {nil, map[string]string{"DGOV_AUDIT_CHECKPOINT_INTERVAL": "soon"}, "duration"},
		"missing file":     {[]string{"--config", filepath.Join(dir, "nope.yaml")}, nil, "read config file"},
	}
	for name, tc := range cases {
		_, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), tc.args, func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	if ps := Defaults().Check(); len(ps) != 0 {
		t.Fatalf("defaults must be valid: %v", ps)
	}
	c := Defaults()
	c.HTTPAddr = "8080"
	c.DatabaseURL = "mysql://x"
	c.LogLevel = "loud"
	c.NodeDivision = "14"
	c.S3Endpoint = "minio:9000"
	ps := c.Check()
	want := []string{"DGOV_HTTP_ADDR", "DGOV_DATABASE_URL", "DGOV_LOG_LEVEL", "DGOV_NODE_DIVISION", "DGOV_S3_ENDPOINT"}
	if len(ps) != len(want) {
		t.Fatalf("got %v", ps)
	}
	for i, p := range ps {
		if p.Setting != want[i] || p.ZH == "" || p.EN == "" {
			t.Errorf("problem %d: %+v, want %s", i, p, want[i])
		}
	}
}

func TestPublicURLAndRedacted(t *testing.T) {
	c := Defaults()
	if got := c.PublicURL(); got != "http://127.0.0.1:8080" {
		t.Errorf("public url %s", got)
	}
	c.DatabaseURL = "postgres://u:secret@db/x"
	c.S3SecretKey = "s3cret"
	c.NATSURL = "nats://user:natspass@nats:4222"
	r := c.Redacted()
	if strings.Contains(r.DatabaseURL, "secret") || r.S3SecretKey == "s3cret" || strings.Contains(r.NATSURL, "natspass") {
		t.Errorf("secrets shown: %+v", r)
	}
}

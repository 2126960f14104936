// Package config is dgov's typed configuration: defaults, then an optional YAML file, then
// DGOV_* environment variables, then command-line flags (each later source wins). Check
// validates the whole configuration up front, so nothing fails only on first use.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole node configuration. Each field names its environment variable and flag.
type Config struct {
	DataDir                string `yaml:"data_dir" env:"DGOV_DATA_DIR" flag:"data-dir" help:"directory for the embedded database, NATS store, blobs and keys"`
	HTTPAddr               string `yaml:"http_addr" env:"DGOV_HTTP_ADDR" flag:"http-addr" help:"address the HTTP server listens on"`
	BaseURL                string `yaml:"base_url" env:"DGOV_BASE_URL" flag:"base-url" help:"public URL of this node (empty: derived from http-addr)"`
	DatabaseURL            string `yaml:"database_url" env:"DGOV_DATABASE_URL" flag:"database-url" help:"empty = embedded SQLite in the data dir; postgres://… = PostgreSQL"`
	NATSURL                string `yaml:"nats_url" env:"DGOV_NATS_URL" flag:"nats-url" help:"empty = embedded NATS; nats://… = external NATS (JetStream) cluster"`
	NATSListen             string `yaml:"nats_listen" env:"DGOV_NATS_LISTEN" flag:"nats-listen" help:"host:port where the embedded NATS also listens (empty = in-process only)"`
	MasterKeyFile          string `yaml:"master_key_file" env:"DGOV_MASTER_KEY_FILE" flag:"master-key-file" help:"master key file (default: master.key in the data dir, generated on first start)"`
	LogLevel               string `yaml:"log_level" env:"DGOV_LOG_LEVEL" flag:"log-level" help:"debug, info, warn or error"`
	LogFormat              string `yaml:"log_format" env:"DGOV_LOG_FORMAT" flag:"log-format" help:"text or json"`
	ThemeDir               string `yaml:"theme_dir" env:"DGOV_THEME_DIR" flag:"theme-dir" help:"directory whose templates/ and static/ files replace the built-in ones (a province's branding)"`
	FederationIssuer       string `yaml:"federation_issuer" env:"DGOV_FEDERATION_ISSUER" flag:"federation-issuer" help:"upstream OpenID provider citizens may sign in with (国家政务服务平台); empty = off"`
	FederationClientID     string `yaml:"federation_client_id" env:"DGOV_FEDERATION_CLIENT_ID" flag:"federation-client-id" help:"this node's client id at the upstream provider"`
	FederationClientSecret string `yaml:"federation_client_secret" env:"DGOV_FEDERATION_CLIENT_SECRET" flag:"federation-client-secret" help:"this node's client secret at the upstream provider"`
	FederationName         string `yaml:"federation_name" env:"DGOV_FEDERATION_NAME" flag:"federation-name" help:"the upstream's name on the login button"`
	NodeDivision           string `yaml:"node_division" env:"DGOV_NODE_DIVISION" flag:"node-division" help:"GB/T 2260 code of the division this node serves (140000 = Shanxi province)"`

	RateLimit      float64 `yaml:"rate_limit" env:"DGOV_RATE_LIMIT" flag:"rate-limit" help:"requests per second allowed per client address"`
	RateBurst      int     `yaml:"rate_burst" env:"DGOV_RATE_BURST" flag:"rate-burst" help:"burst of requests allowed per client address"`
	TrustedProxies string  `yaml:"trusted_proxies" env:"DGOV_TRUSTED_PROXIES" flag:"trusted-proxies" help:"comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed"`

	AuditCheckpointEvery    int           `yaml:"audit_checkpoint_every" env:"DGOV_AUDIT_CHECKPOINT_EVERY" flag:"audit-checkpoint-every" help:"sign an audit checkpoint every N entries"`
	AuditCheckpointInterval time.Duration `yaml:"audit_checkpoint_interval" env:"DGOV_AUDIT_CHECKPOINT_INTERVAL" flag:"audit-checkpoint-interval" help:"also sign a checkpoint this often when there are new entries"`
	PaySim                  bool          `yaml:"pay_sim" env:"DGOV_PAY_SIM" flag:"pay-sim" help:"serve the development bank simulator as a payment channel (turn off in production: anyone can pay through it)"`
	ExchangeExtractTTL      time.Duration `yaml:"exchange_extract_ttl" env:"DGOV_EXCHANGE_EXTRACT_TTL" flag:"exchange-extract-ttl" help:"how long bulk extract files of the exchange gateway are kept"`

	S3Endpoint  string `yaml:"s3_endpoint" env:"DGOV_S3_ENDPOINT" flag:"s3-endpoint" help:"S3-compatible endpoint host:port for files (empty = the data dir)"`
	S3Bucket    string `yaml:"s3_bucket" env:"DGOV_S3_BUCKET" flag:"s3-bucket" help:"S3 bucket"`
	S3AccessKey string `yaml:"s3_access_key" env:"DGOV_S3_ACCESS_KEY" flag:"s3-access-key" help:"S3 access key"`
	S3SecretKey string `yaml:"s3_secret_key" env:"DGOV_S3_SECRET_KEY" flag:"s3-secret-key" help:"S3 secret key"`
	S3Region    string `yaml:"s3_region" env:"DGOV_S3_REGION" flag:"s3-region" help:"S3 region (empty: the server's default)"`
	S3TLS       bool   `yaml:"s3_tls" env:"DGOV_S3_TLS" flag:"s3-tls" help:"use TLS to reach S3"`
}

// Defaults is the zero-configuration setup: everything embedded, in ./data.
func Defaults() Config {
	return Config{
		DataDir:                 "./data",
		HTTPAddr:                ":8080",
		LogLevel:                "info",
		LogFormat:               "text",
		NodeDivision:            "140000",
		RateLimit:               50,
		RateBurst:               100,
		AuditCheckpointEvery:    1000,
		AuditCheckpointInterval: time.Minute,
		ExchangeExtractTTL:      7 * 24 * time.Hour,
		PaySim:                  true,
		FederationName:          "国家政务服务平台",
	}
}

// Load builds the configuration for a command: defaults < file (--config or DGOV_CONFIG) <
// environment < flags. fs must not be parsed yet; Load registers the flags and parses args.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	c := Defaults()
	var file string
	fs.StringVar(&file, "config", getenv("DGOV_CONFIG"), "YAML configuration file (optional)")
	bindFlags(fs, &c)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// Flags were parsed into c over the defaults; re-apply in precedence order.
	flagVals := map[string]string{}
	fs.Visit(func(f *flag.Flag) { flagVals[f.Name] = f.Value.String() })
	c = Defaults()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("读取配置文件失败 / read config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is fine
			return c, fmt.Errorf("配置文件 / config file %s: %w", file, err)
		}
	}
	if err := eachField(&c, func(f reflect.StructField, v reflect.Value) error {
		if s := getenv(f.Tag.Get("env")); s != "" {
			if err := setValue(v, s); err != nil {
				return fmt.Errorf("%s=%q: %w", f.Tag.Get("env"), s, err)
			}
		}
		if s, ok := flagVals[f.Tag.Get("flag")]; ok {
			if err := setValue(v, s); err != nil {
				return fmt.Errorf("--%s=%q: %w", f.Tag.Get("flag"), s, err)
			}
		}
		return nil
	}); err != nil {
		return c, err
	}
	return c, nil
}

// bindFlags registers one flag per field.
func bindFlags(fs *flag.FlagSet, c *Config) {
	_ = eachField(c, func(f reflect.StructField, v reflect.Value) error {
		name, help := f.Tag.Get("flag"), f.Tag.Get("help")+" (env "+f.Tag.Get("env")+")"
		switch p := v.Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, name, *p, help)
		case *int:
			fs.IntVar(p, name, *p, help)
		case *float64:
			fs.Float64Var(p, name, *p, help)
		case *bool:
			fs.BoolVar(p, name, *p, help)
		case *time.Duration:
			fs.DurationVar(p, name, *p, help)
		}
		return nil
	})
}

func eachField(c *Config, fn func(reflect.StructField, reflect.Value) error) error {
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		if err := fn(rt.Field(i), rv.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

func setValue(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("不是整数 / not a whole number")
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("不是数字 / not a number")
		}
		*p = f
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("应为 true 或 false / not true or false")
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("应为时长，如 30s 或 5m / not a duration such as 30s or 5m")
		}
		*p = d
	}
	return nil
}

// MasterKeyPath is the master key file, defaulting into the data dir.
func (c Config) MasterKeyPath() string {
	if c.MasterKeyFile != "" {
		return c.MasterKeyFile
	}
	return filepath.Join(c.DataDir, "master.key")
}

// PublicURL is where this node is reached, for links in pages and tokens.
func (c Config) PublicURL() string {
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/")
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Problem is one thing wrong with a configuration, in Chinese and English.
type Problem struct {
	Setting string
	ZH, EN  string
}

func (p Problem) String() string { return p.Setting + ": " + p.ZH + " / " + p.EN }

// Check lists everything wrong with c; an empty list means the configuration is usable.
func (c Config) Check() []Problem {
	var ps []Problem
	add := func(setting, zh, en string) { ps = append(ps, Problem{setting, zh, en}) }
	if c.DataDir == "" {
		add("DGOV_DATA_DIR", "数据目录不能为空", "the data directory must not be empty")
	} else if fi, err := os.Stat(c.DataDir); err == nil && !fi.IsDir() {
		add("DGOV_DATA_DIR", "数据目录路径指向一个文件", "the data directory path is a file")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		add("DGOV_HTTP_ADDR", "监听地址应为 host:port，例如 :8080", "the listen address must be host:port, e.g. :8080")
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("DGOV_BASE_URL", "公开地址应为 http(s):// 开头的完整网址", "the public URL must be a full http(s):// URL")
		}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		add("DGOV_DATABASE_URL", "数据库地址应为空（内嵌 SQLite）、sqlite:路径 或 postgres://…", "the database URL must be empty (embedded SQLite), sqlite:PATH or postgres://…")
	}
	if c.NATSURL != "" && !strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://") {
		add("DGOV_NATS_URL", "NATS 地址应为空（内嵌）或 nats://…", "the NATS URL must be empty (embedded) or nats://…")
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			add("DGOV_NATS_LISTEN", "NATS 监听地址应为 host:port", "the NATS listen address must be host:port")
		}
	}
	if c.MasterKeyFile != "" {
		if fi, err := os.Stat(c.MasterKeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			add("DGOV_MASTER_KEY_FILE", "主密钥文件权限过宽，应为 0600", "the master key file is readable by others; make it 0600")
		}
	}
	if c.ThemeDir != "" {
		if fi, err := os.Stat(c.ThemeDir); err != nil || !fi.IsDir() {
			add("DGOV_THEME_DIR", "主题目录不存在", "the theme directory does not exist")
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("DGOV_LOG_LEVEL", "日志级别应为 debug、info、warn 或 error", "the log level must be debug, info, warn or error")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("DGOV_LOG_FORMAT", "日志格式应为 text 或 json", "the log format must be text or json")
	}
	if len(c.NodeDivision) != 6 || strings.Trim(c.NodeDivision, "0123456789") != "" {
		add("DGOV_NODE_DIVISION", "节点行政区划代码应为 6 位数字（GB/T 2260）", "the node division must be a 6-digit GB/T 2260 code")
	}
	if c.RateLimit <= 0 || c.RateBurst <= 0 {
		add("DGOV_RATE_LIMIT", "限流速率和突发量必须大于 0", "rate limit and burst must be above 0")
	}
	if c.AuditCheckpointEvery <= 0 {
		add("DGOV_AUDIT_CHECKPOINT_EVERY", "审计检查点间隔必须大于 0", "the audit checkpoint interval must be above 0")
	}
	if c.ExchangeExtractTTL < time.Minute {
		add("DGOV_EXCHANGE_EXTRACT_TTL", "批量导出文件保存时间至少 1 分钟", "bulk extract files must be kept at least 1m")
	}
	if c.AuditCheckpointInterval < time.Second {
		add("DGOV_AUDIT_CHECKPOINT_INTERVAL", "审计检查点时间间隔至少 1 秒", "the audit checkpoint period must be at least 1s")
	}
	if c.S3Endpoint != "" && (c.S3Bucket == "" || c.S3AccessKey == "" || c.S3SecretKey == "") {
		add("DGOV_S3_ENDPOINT", "使用 S3 时必须同时配置桶、访问密钥和私密密钥", "with S3, the bucket, access key and secret key are all required")
	}
	if c.FederationIssuer != "" {
		if u, err := url.Parse(c.FederationIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("DGOV_FEDERATION_ISSUER", "上游身份提供方地址应为完整的 https:// 网址", "the upstream provider must be a full https:// URL")
		}
		if c.FederationClientID == "" || c.FederationClientSecret == "" {
			add("DGOV_FEDERATION_CLIENT_ID", "配置上游身份提供方时必须同时配置客户端标识和密钥", "with an upstream provider, its client id and secret are required")
		}
	}
	return ps
}

// Redacted returns c with secrets hidden, for `dgov config check` output and logs.
func (c Config) Redacted() Config {
	if c.S3SecretKey != "" {
		c.S3SecretKey = "******"
	}
	if c.FederationClientSecret != "" {
		c.FederationClientSecret = "******"
	}
	for _, p := range []*string{&c.DatabaseURL, &c.NATSURL} {
		if u, err := url.Parse(*p); err == nil && *p != "" {
			*p = u.Redacted()
		}
	}
	return c
}

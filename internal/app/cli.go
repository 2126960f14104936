package app

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dgov/dgov/internal/platform/config"
)

// command is one `dgov` subcommand.
type command struct {
	name, usage, summary string
	run                  func(ctx context.Context, env *cliEnv, args []string) error
	sub                  []string // subcommands with what they do, for commands that have them
}

// cliEnv is what a command gets: its streams and the environment.
type cliEnv struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
}

func commands() []command {
	return []command{
		{"serve", "serve [flags]", "运行节点 / run the node: portal, console, API, jobs, events", cmdServe, nil},
		{"migrate", "migrate [flags]", "应用数据库迁移 / apply database migrations", cmdMigrate, nil},
		{"demo", "demo [--seed N] [--residents N] [--enterprises N] [flags]", "载入演示数据 / load demo data (idempotent)", cmdDemo, nil},
		{"dataset", "dataset load|list [flags]", "数据集导入与列表 / load and list datasets", cmdDataset,
			[]string{"load   --dataset ID --schema schema.json [--format csv|xlsx|json] [--encoding gb18030] FILE  导入新版本 / load a new version",
				"list   列出数据集 / list datasets with active version and last load"}},
		{"backup", "backup [flags] FILE", "备份数据库和文件 / back up the database and files into FILE", cmdBackup, nil},
		{"restore", "restore [--replace] [flags] FILE", "从备份恢复 / restore from a backup FILE", cmdRestore, nil},
		{"audit", "audit verify [flags]", "校验审计日志 / verify the audit log's hash chain and signatures", cmdAudit,
			[]string{"verify      校验哈希链和 SM2 检查点 / check the hash chain and SM2 checkpoints; names the first broken entry"}},
		{"admin", "admin create-admin|rotate-keys|rotate-master-key [flags]", "管理员操作 / first administrator and key rotation", cmdAdmin,
			[]string{"create-admin       创建首个系统管理员 / create the first system administrator",
				"rotate-keys        轮换节点 SM2 签名密钥 / rotate the node's SM2 signing key",
				"rotate-master-key  轮换主密钥 / rotate the master key (rewraps every key)"}},
		{"config", "config check [flags]", "检查配置 / check the configuration", cmdConfig,
			[]string{"check      显示生效配置并列出问题 / print the effective configuration and every problem"}},
		{"pack", "pack load [--dir DIR] [flags]", "载入事项包 / load a service pack: items, bundles, forms, case definitions", cmdPack,
			[]string{"load   [--dir DIR]  校验并载入事项包（默认内置山西包）/ check and load the pack in DIR (default: the embedded Shanxi pack)"}},
		{"verify", verifyUsage, "校验共享交换回执或电子证照文件 / verify a saved exchange receipt or an e-licence file offline", cmdVerify, nil},
		{"version", "version", "显示版本 / print the version", cmdVersion, nil},
	}
}

// Main runs dgov with args (without the program name) and returns the exit code.
func Main(args []string) int {
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, env, args)
}

func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if c.sub != nil && (len(args) < 2 || strings.HasPrefix(args[1], "-")) {
				// A command with subcommands: show them (and exit 0 when help was asked for).
				fmt.Fprintf(env.stderr, "Usage: dgov %s\n\nSubcommands:\n", c.usage)
				for _, s := range c.sub {
					fmt.Fprintf(env.stderr, "  %s\n", s)
				}
				fmt.Fprintf(env.stderr, "\n`dgov %s SUBCOMMAND --help` lists the flags.\n", c.name)
				if len(args) >= 2 && (args[1] == "-h" || args[1] == "--help" || args[1] == "-help") {
					return 0
				}
				return 2
			}
			err := c.run(ctx, env, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(env.stderr, "dgov %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(env.stderr, "dgov: 未知命令 / unknown command %q\n\n", args[0])
	usage(env.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "dgov %s — 山西省数字政府平台 / digital-government platform\n\nUsage: dgov COMMAND [flags]\n\nCommands:\n", Version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-62s %s\n", c.usage, c.summary)
	}
	fmt.Fprintf(w, "\nEvery command takes the configuration flags (see `dgov config check --help`);\nthe same settings come from DGOV_* environment variables or a --config YAML file.\n")
}

// load parses a command's flags (configuration flags plus extra ones registered by setup).
func load(env *cliEnv, name string, args []string, setup func(fs *flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("dgov "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	if setup != nil {
		setup(fs)
	}
	cfg, err := config.Load(fs, args, env.getenv)
	return cfg, fs, err
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func open(ctx context.Context, env *cliEnv, cfg config.Config) (*App, error) {
	return Open(ctx, cfg, newLogger(cfg, env.stderr), Options{})
}

func cmdServe(ctx context.Context, env *cliEnv, args []string) error {
	cfg, _, err := load(env, "serve", args, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	a, err := open(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, func(addr string) {
		a.Log.Info("ready", "addr", addr, "startup", time.Since(start).Round(time.Millisecond),
			"console", cfg.PublicURL()+"/console")
	})
}

func cmdMigrate(ctx context.Context, env *cliEnv, args []string) error {
	cfg, _, err := load(env, "migrate", args, nil)
	if err != nil {
		return err
	}
	a, err := open(ctx, env, cfg) // Open migrates
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(env.stdout, "数据库已是最新结构 / database schema is current (%s)\n", a.DB.Dialect)
	return nil
}

func cmdVersion(_ context.Context, env *cliEnv, _ []string) error {
	fmt.Fprintf(env.stdout, "dgov %s\n", Version)
	return nil
}

func cmdConfig(_ context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: dgov config check [flags]")
	}
	cfg, _, err := load(env, "config check", args[1:], nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "配置 / configuration:")
	r := cfg.Redacted()
	printConfig(env.stdout, r)
	if ps := cfg.Check(); len(ps) > 0 {
		fmt.Fprintln(env.stdout, "\n问题 / problems:")
		for _, p := range ps {
			fmt.Fprintf(env.stdout, "  ✗ %s\n", p)
		}
		return fmt.Errorf("%d 处配置错误 / %d configuration problems", len(ps), len(ps))
	}
	fmt.Fprintln(env.stdout, "\n✓ 配置有效 / configuration is valid")
	return nil
}

func printConfig(w io.Writer, c config.Config) {
	rows := map[string]string{
		"DGOV_DATA_DIR": c.DataDir, "DGOV_HTTP_ADDR": c.HTTPAddr, "DGOV_BASE_URL": c.PublicURL(),
		"DGOV_DATABASE_URL":    orDefault(c.DatabaseURL, "(内嵌 SQLite / embedded SQLite)"),
		"DGOV_NATS_URL":        orDefault(c.NATSURL, "(内嵌 NATS / embedded NATS)"),
		"DGOV_MASTER_KEY_FILE": c.MasterKeyPath(), "DGOV_NODE_DIVISION": c.NodeDivision,
		"DGOV_S3_ENDPOINT": orDefault(c.S3Endpoint, "(数据目录 / data dir)"), "DGOV_LOG_LEVEL": c.LogLevel,
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-22s %s\n", k, rows[k])
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func cmdAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: dgov audit verify [flags]")
	}
	cfg, _, err := load(env, "audit verify", args[1:], nil)
	if err != nil {
		return err
	}
	a, err := open(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := a.Audit.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "entries %d, checkpoints %d, head %d\n", rep.Entries, rep.Checkpoints, rep.Head)
	if rep.LastCheckpoint != nil {
		fmt.Fprintf(env.stdout, "last signed checkpoint: entry %d (key %s)\n", rep.LastCheckpoint.Seq, rep.LastCheckpoint.KeyID)
	}
	if !rep.OK {
		for _, p := range rep.Problems {
			fmt.Fprintf(env.stdout, "  ✗ entry %d [%s]: %s\n", p.Seq, p.Kind, p.Reason)
		}
		return fmt.Errorf("审计日志校验失败：第一处问题在第 %d 条 / audit log verification FAILED: first bad entry %d: %s", rep.FirstBad, rep.FirstBad, rep.Reason)
	}
	fmt.Fprintf(env.stdout, "✓ %s\n", rep.Reason)
	return nil
}

func cmdAdmin(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: dgov admin create-admin|rotate-keys|rotate-master-key [flags]")
	}
	sub, args := args[0], args[1:]
	var username, name, passwordFile string
	cfg, _, err := load(env, "admin "+sub, args, func(fs *flag.FlagSet) {
		if sub == "create-admin" {
			fs.StringVar(&username, "username", "admin", "administrator's username")
			fs.StringVar(&name, "name", "系统管理员", "administrator's name")
			fs.StringVar(&passwordFile, "password-file", "", "read the password from this file (default: DGOV_ADMIN_PASSWORD, else a line on standard input)")
		}
	})
	if err != nil {
		return err
	}
	a, err := open(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "create-admin":
		pw, err := readPassword(env, passwordFile)
		if err != nil {
			return err
		}
		st, err := a.Org.BootstrapAdmin(ctx, username, name, pw)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "✓ 已创建系统管理员 / created administrator %q (%s) — log in at %s/console\n", st.Username, st.ID, cfg.PublicURL())
	case "rotate-keys":
		old := a.Keys.ActiveKeyID()
		if err := a.Keys.Rotate(ctx); err != nil {
			return err
		}
		if _, err := a.Audit.Append(ctx, auditAdmin("admin.rotate_keys", "crypto_key:"+a.Keys.ActiveKeyID(), map[string]any{"retired": old})); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "✓ 新的节点 SM2 密钥 / new node SM2 key %s (retired %s; it still verifies old signatures)\n", a.Keys.ActiveKeyID(), old)
	case "rotate-master-key":
		if err := a.Keys.RotateMasterKeyFile(ctx, cfg.MasterKeyPath()); err != nil {
			return err
		}
		if _, err := a.Audit.Append(ctx, auditAdmin("admin.rotate_master_key", "master_key", nil)); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "✓ 主密钥已轮换 / master key rotated; %s now holds the new key — back it up now\n", cfg.MasterKeyPath())
	default:
		return fmt.Errorf("unknown admin command %q", sub)
	}
	return nil
}

func readPassword(env *cliEnv, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if pw := env.getenv("DGOV_ADMIN_PASSWORD"); pw != "" {
		return pw, nil
	}
	fmt.Fprint(env.stderr, "密码 / password: ")
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password given (use --password-file, DGOV_ADMIN_PASSWORD or standard input)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

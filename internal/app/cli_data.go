package app

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/demo"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/backup"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
)

func auditAdmin(action, object string, detail map[string]any) audit.Entry {
	e := audit.Entry{Actor: audit.ActorSystem, Action: action, Object: object, Outcome: audit.OutcomeOK, IP: "cli"}
	if detail != nil {
		e.Detail = detail
	}
	return e
}

// progress draws a one-line progress bar on a terminal-ish writer.
type progress struct {
	w    io.Writer
	last time.Time
	what string
}

func (p *progress) update(done, total int64, what string) {
	if what != p.what && p.what != "" {
		fmt.Fprintln(p.w)
	}
	p.what = what
	if done < total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	n := 0
	pct := 100.0
	if total > 0 {
		n = int(done * width / total)
		pct = float64(done) * 100 / float64(total)
	}
	fmt.Fprintf(p.w, "\r%-24s [%s%s] %5.1f%% %d/%d", what, strings.Repeat("█", n), strings.Repeat("·", width-n), pct, done, total)
}

func (p *progress) end() {
	if p.what != "" {
		fmt.Fprintln(p.w)
	}
}

func cmdDemo(ctx context.Context, env *cliEnv, args []string) error {
	var seed int64
	var residents, enterprises int
	cfg, _, err := load(env, "demo", args, func(fs *flag.FlagSet) {
		fs.Int64Var(&seed, "seed", demo.DefaultSeed, "random seed: the same seed gives the same demo data")
		fs.IntVar(&residents, "residents", 10000, "synthetic residents for the population library")
		fs.IntVar(&enterprises, "enterprises", 2000, "synthetic enterprises for the legal-entity library")
	})
	if err != nil {
		return err
	}
	a, err := open(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	bar := &progress{w: env.stderr}
	sum, err := demo.Load(ctx, demo.Deps{DB: a.DB, Org: a.Org, Base: a.Base, Now: a.Now}, demo.Options{
		Seed: seed, Residents: residents, Enterprises: enterprises, AdminPassword: demo.DemoPassword,
		Progress: func(done, total int, what string) { bar.update(int64(done), int64(total), what) },
	})
	bar.end()
	if err != nil {
		return err
	}
	if sum.AlreadyLoaded {
		fmt.Fprintf(env.stdout, "演示数据已存在，未做改动 / demo data already loaded; nothing changed\n")
	} else {
		fmt.Fprintf(env.stdout, "✓ 演示数据已载入 / demo data loaded in %s: %d divisions, %d departments, %d staff, %d residents, %d enterprises\n",
			sum.Duration.Round(time.Millisecond), sum.Divisions, sum.Departments, sum.Staff, sum.Residents, sum.Enterprises)
	}
	libs, err := demo.LoadBaseLibraries(ctx, demo.BaseLibDeps{Org: a.Org, Catalog: a.Catalog, Datasets: a.Datasets, Exchange: a.Exchange, Quality: a.Quality},
		demo.BaseLibOptions{Seed: seed, Residents: residents, Enterprises: enterprises,
			Progress: func(done, total int, what string) { bar.update(int64(done), int64(total), what) }})
	bar.end()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "基础库 / base libraries: %d loaded, %d already present\n", len(libs.Loaded), len(libs.Skipped))
	trust, err := demo.LoadTrust(ctx, demo.TrustDeps{Org: a.Org, Seals: a.Seals, Licenses: a.Licenses})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "发证机构与电子印章 / issuing departments: %d (%d registered, %d seals made now)\n", trust.Departments, trust.Issuers, trust.Seals)
	if q := libs.Quality; q != nil {
		fmt.Fprintf(env.stdout, "数据质量演示 / quality demo: %d of %d rows flagged in 城乡最低生活保障对象名册 (see /console/quality)\n",
			q.Report.BadRows, q.Report.TotalRows)
	}
	if s, err := a.servicesSummary(ctx); err == nil {
		fmt.Fprintln(env.stdout, s)
	}
	clients, err := a.registerDemoClients(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "控制台 / console: %s/console  用户 / user: %s  密码 / password: %s\n", cfg.PublicURL(), sum.AdminUser, demo.DemoPassword)
	fmt.Fprintf(env.stdout, "门户 / portal: %s/  短信收件箱 / SMS sink: %s/dev/sms\n", cfg.PublicURL(), cfg.PublicURL())
	fmt.Fprintf(env.stdout, "OpenID 提供方 / provider: %s/.well-known/openid-configuration\n", a.IdP.Issuer())
	fmt.Fprintf(env.stdout, "示例应用 %s（回调 %s）和 %s 的密钥 / secrets of the demo clients: %s\n", DemoRPID, DemoRPCallback, DemoSystemID, clients)
	fmt.Fprintf(env.stdout, "（演示密码仅用于本机试用 / the demo password is for local trials only）\n")
	return nil
}

func cmdBackup(ctx context.Context, env *cliEnv, args []string) error {
	cfg, fs, err := load(env, "backup", args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: dgov backup [flags] FILE")
	}
	out := fs.Arg(0)
	a, err := open(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	bar := &progress{w: env.stderr}
	pub := ""
	for _, k := range a.Keys.PublicKeys() {
		if k.ID == a.Keys.ActiveKeyID() {
			pub = k.PEM
		}
	}
	m, err := backup.Create(ctx, a.DB, a.Blobs, f, backup.Options{Signer: a.Keys, PublicKeyPEM: pub, Version: Version,
		Progress: func(stage string, done, total int64) { bar.update(done, total, stage) }})
	bar.end()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	if _, err := a.Audit.Append(ctx, auditAdmin("admin.backup", "backup:"+filepath.Base(out), map[string]any{"tables": len(m.Tables), "blobs": len(m.Blobs)})); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "✓ 备份完成 / backup written to %s (%d tables, %d files). It holds personal data: store it as confidential. Keep the master key (%s) apart from it: encrypted fields and the node's keys cannot be opened without it.\n",
		out, len(m.Tables), len(m.Blobs), cfg.MasterKeyPath())
	return nil
}

func cmdRestore(ctx context.Context, env *cliEnv, args []string) error {
	var replace, yes bool
	var trusted stringList
	cfg, fs, err := load(env, "restore", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&replace, "replace", false, "replace the data of this node (required unless the database is empty)")
		fs.BoolVar(&yes, "yes", false, "with --replace: do not ask for confirmation")
		fs.Var(&trusted, "trusted-key", "PEM file of a node public key the backup must be signed by (repeatable; from /api/v1/keys of the source node)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: dgov restore [--replace] [flags] FILE")
	}
	in := fs.Arg(0)
	var trustedPEM []string
	for _, p := range trusted {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		trustedPEM = append(trustedPEM, string(b))
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	a, err := open(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if replace && !yes {
		fmt.Fprintf(env.stderr, "将用备份 %s 替换本节点（%s）的全部数据。输入 yes 确认：\nThis replaces ALL data of this node (%s) with the backup %s. Type yes to confirm: ",
			in, a.DB.Dialect, a.DB.Dialect, in)
		line, _ := bufio.NewReader(env.stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("未确认，未做任何改动 / not confirmed; nothing changed")
		}
	}
	bar := &progress{w: env.stderr}
	m, err := backup.Restore(ctx, a.DB, a.Blobs, f, backup.RestoreOptions{Replace: replace, TrustedKeysPEM: trustedPEM,
		Progress: func(stage string, done, total int64) { bar.update(done, total, stage) },
		// The restored keys must open with this node's master key, or the node could not start
		// on the restored data: check inside the restore's transaction, before it commits.
		BeforeCommit: func(ctx context.Context, tx *db.Tx) error { return crypto.CheckMasterKey(ctx, tx, a.master) }})
	bar.end()
	if err != nil {
		return err
	}
	// The keys came back with the data; load them (they are wrapped under the master key).
	if err := a.Keys.Reload(ctx); err != nil {
		return fmt.Errorf("restored keys do not open with this node's master key: %w", err)
	}
	if _, err := a.Audit.Append(ctx, auditAdmin("admin.restore", "backup:"+filepath.Base(in), map[string]any{"created": m.Created})); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "✓ 已从 %s 恢复 / restored from %s (backup of %s)\n", in, in, m.Created.Format(time.RFC3339))
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

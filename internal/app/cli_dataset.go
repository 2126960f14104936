package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgov/dgov/internal/dataset"
)

// cmdDataset: `dgov dataset load|list`.
func cmdDataset(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: dgov dataset load|list [flags]")
	}
	sub, args := args[0], args[1:]
	var id, schemaFile, format, encoding string
	var maxRejects int
	cfg, fs, err := load(env, "dataset "+sub, args, func(fs *flag.FlagSet) {
		if sub == "load" {
			fs.StringVar(&id, "dataset", "", "dataset id (letters, digits . _ : -)")
			fs.StringVar(&schemaFile, "schema", "", "JSON file with the dataset schema {\"columns\": [...], \"key\": ...}")
			fs.StringVar(&format, "format", "", "csv, xlsx or json (default: from the file name)")
			fs.StringVar(&encoding, "encoding", "", "CSV encoding: utf-8, gbk or gb18030 (default: detect)")
			fs.IntVar(&maxRejects, "max-rejects", 0, "fail after this many rejected rows (0: the default, 1000; negative: no limit)")
		}
	})
	if err != nil {
		return err
	}
	switch sub {
	case "load":
		if id == "" || schemaFile == "" || fs.NArg() != 1 {
			return errors.New("usage: dgov dataset load --dataset ID --schema schema.json [--format csv|xlsx|json] [--encoding gb18030] FILE")
		}
		raw, err := os.ReadFile(schemaFile)
		if err != nil {
			return err
		}
		var schema dataset.Schema
		if err := json.Unmarshal(raw, &schema); err != nil {
			return fmt.Errorf("schema %s: %w", schemaFile, err)
		}
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		a, err := open(ctx, env, cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		res, err := a.Datasets.Load(ctx, id, schema, dataset.Source{Name: filepath.Base(fs.Arg(0)), Format: dataset.Format(format),
			Reader: f, Size: st.Size(), Encoding: encoding}, dataset.LoadOptions{MaxRejects: maxRejects, Progress: dataset.ProgressBar(env.stderr)})
		fmt.Fprintln(env.stderr)
		if res.Version > 0 {
			if rej, rerr := a.Datasets.Rejects(ctx, id, res.Version, 20); rerr == nil {
				for _, r := range rej {
					fmt.Fprintf(env.stderr, "  ✗ %s\n", r)
				}
				if res.RowsRejected > int64(len(rej)) {
					fmt.Fprintf(env.stderr, "  … %d 行被拒绝 / rows rejected in all\n", res.RowsRejected)
				}
			}
		}
		if err != nil {
			if active, aerr := a.Datasets.Active(ctx, id); aerr == nil {
				return fmt.Errorf("导入失败，仍使用第 %d 版 / load failed, version %d stays active: %w", active.Version, active.Version, err)
			}
			return fmt.Errorf("导入失败 / load failed: %w", err)
		}
		fmt.Fprintf(env.stdout, "✓ %s 第 %d 版 / version %d active: %d 行 / rows, %d 拒绝 / rejected, %s\n",
			id, res.Version, res.Version, res.RowsOK, res.RowsRejected, res.Duration.Round(1e6))
		return nil
	case "list":
		a, err := open(ctx, env, cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		ids, err := a.Datasets.List(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "%-32s %-8s %-10s %10s %8s  %s\n", "DATASET", "ACTIVE", "LAST", "ROWS", "REJECTED", "SOURCE")
		for _, id := range ids {
			vs, err := a.Datasets.Versions(ctx, id)
			if err != nil || len(vs) == 0 {
				continue
			}
			last, active := vs[0], "-"
			rows := int64(0)
			for _, v := range vs {
				if v.Status == dataset.Active {
					active, rows = fmt.Sprintf("v%d", v.Version), v.RowsOK
					break
				}
			}
			fmt.Fprintf(env.stdout, "%-32s %-8s %-10s %10d %8d  %s\n", id, active, string(last.Status), rows, last.RowsRejected, last.SourceName)
		}
		return nil
	}
	return fmt.Errorf("unknown dataset command %q", sub)
}

package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runDataset runs `dgov dataset ARGS` as run does once the command is in commands().
func runDataset(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cliEnv{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string { return env[k] }}
	if err := cmdDataset(context.Background(), e, args); err != nil {
		fmt.Fprintf(&errb, "dgov dataset: %v\n", err)
		return 1, out.String(), errb.String()
	}
	return 0, out.String(), errb.String()
}

func TestCLIDatasetLoad(t *testing.T) {
	env := cliEnvFor(t, "sqlite")
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema.json")
	os.WriteFile(schema, []byte(`{"columns":[{"name":"代码","type":"string"},{"name":"数量","type":"integer","required":true}],"key":"代码"}`), 0o600)
	var good bytes.Buffer
	good.WriteString("代码,数量\n")
	for i := range 500 {
		fmt.Fprintf(&good, "A%04d,%d\n", i, i)
	}
	goodFile := filepath.Join(dir, "good.csv")
	os.WriteFile(goodFile, good.Bytes(), 0o600)
	code, out, errOut := runDataset(t, env, "load", "--dataset", "t.counts", "--schema", schema, goodFile)
	if code != 0 || !strings.Contains(out, "500") || !strings.Contains(errOut, "100%") {
		t.Fatalf("load: %d\n%s%s", code, out, errOut)
	}

	// A bad row is reported with its line; too many rejects fail the load and keep version 1.
	bad := "代码,数量\nB1,1\nB2,two\nB3,3\n"
	badFile := filepath.Join(dir, "bad.csv")
	os.WriteFile(badFile, []byte(bad), 0o600)
	code, out, errOut = runDataset(t, env, "load", "--dataset", "t.counts", "--schema", schema, "--max-rejects", "0", badFile)
	if code != 0 || !strings.Contains(errOut, "line 3") {
		t.Fatalf("load with a bad row: %d\n%s%s", code, out, errOut)
	}
	// max-rejects 0 means the default; force a failure with an unknown format instead, and with
	// a missing required column.
	noCol := filepath.Join(dir, "nocol.csv")
	os.WriteFile(noCol, []byte("代码\nC1\n"), 0o600)
	code, out, errOut = runDataset(t, env, "load", "--dataset", "t.counts", "--schema", schema, noCol)
	if code != 1 || !strings.Contains(errOut, "version 2 stays active") {
		t.Fatalf("failed load: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runDataset(t, env, "list")
	if code != 0 || !strings.Contains(out, "t.counts") || !strings.Contains(out, "v2") || !strings.Contains(out, "failed") {
		t.Fatalf("list: %d\n%s%s", code, out, errOut)
	}
}

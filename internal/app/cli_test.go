package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// runCLI runs dgov with args and the given environment; it returns the exit code and output.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cliEnv{stdout: &out, stderr: &errb, stdin: strings.NewReader(stdin), getenv: func(k string) string { return env[k] }}
	code := run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

// cliEnvFor is the environment of a node in a temporary data dir, on SQLite or PostgreSQL.
func cliEnvFor(t *testing.T, dialect string) map[string]string {
	env := map[string]string{"DGOV_DATA_DIR": t.TempDir(), "DGOV_LOG_LEVEL": "warn"}
	if dialect == "postgres" {
		env["DGOV_DATABASE_URL"], _ = dbtest.NewSchema(t)
	}
	return env
}

func TestCLIBasics(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		out  string // in stdout or stderr
	}{
		{"help", []string{"help"}, nil, 0, "Commands:"},
		{"version", []string{"version"}, nil, 0, "dgov "},
		{"unknown", []string{"frobnicate"}, nil, 2, "unknown command"},
		{"serve help", []string{"serve", "--help"}, nil, 0, "-database-url"},
		{"admin help", []string{"admin", "--help"}, nil, 0, "rotate-master-key"},
		{"audit without subcommand", []string{"audit"}, nil, 2, "verify"},
		{"config check ok", []string{"config", "check"}, map[string]string{"DGOV_DATA_DIR": t.TempDir()}, 0, "configuration is valid"},
		{"config check bad", []string{"config", "check", "--http-addr", "8080", "--database-url", "mysql://x"}, nil, 1, "DGOV_DATABASE_URL"},
		{"config check bad env", []string{"config", "check"}, map[string]string{"DGOV_RATE_BURST": "lots"}, 1, "DGOV_RATE_BURST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.env, "", tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.out) {
				t.Fatalf("exit %d (want %d); output:\n%s%s", code, tc.code, out, errOut)
			}
		})
	}
}

// `dgov audit verify` passes on an untouched log and names the first broken entry after an
// edit through SQL, on both databases.
func TestCLIAuditVerify(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := cliEnvFor(t, dialect)
			env["DGOV_ADMIN_PASSWORD"] = testAdminPassword
			env["DGOV_AUDIT_CHECKPOINT_EVERY"] = "2"
			if code, out, errOut := runCLI(t, env, "", "admin", "create-admin"); code != 0 {
				t.Fatalf("create-admin: %s%s", out, errOut)
			}
			for i := 0; i < 2; i++ { // more entries: key rotations are audited
				if code, out, errOut := runCLI(t, env, "", "admin", "rotate-keys"); code != 0 {
					t.Fatalf("rotate-keys: %s%s", out, errOut)
				}
			}
			code, out, errOut := runCLI(t, env, "", "audit", "verify")
			if code != 0 || !strings.Contains(out, "✓") {
				t.Fatalf("verify clean log: exit %d\n%s%s", code, out, errOut)
			}
			// Tamper with entry 2 through SQL, as someone with database access would.
			ctx := context.Background()
			a, err := Open(ctx, mustConfig(t, env), discardLogger(), Options{Argon: cheapArgon})
			if err != nil {
				t.Fatal(err)
			}
			n := &node{App: a}
			if _, err := a.DB.W.ExecContext(ctx, disableAuditGuard(n)); err != nil {
				t.Fatal(err)
			}
			if _, err := a.DB.Exec(ctx, `UPDATE audit_log SET actor = 'staff:someone-else' WHERE seq = 2`); err != nil {
				t.Fatal(err)
			}
			a.Close()
			code, out, errOut = runCLI(t, env, "", "audit", "verify")
			if code != 1 || !strings.Contains(errOut, "first bad entry 2") || !strings.Contains(out, "entry 2") {
				t.Fatalf("verify tampered log: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// create-admin refuses a weak password and a second bootstrap, with clear messages.
func TestCLICreateAdmin(t *testing.T) {
	env := cliEnvFor(t, "sqlite")
	code, _, errOut := runCLI(t, env, "short\n", "admin", "create-admin")
	if code != 1 || !strings.Contains(errOut, "10") {
		t.Fatalf("weak password: exit %d %s", code, errOut)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(testAdminPassword+"\n"), 0o600)
	if code, out, errOut := runCLI(t, env, "", "admin", "create-admin", "--password-file", pwFile); code != 0 || !strings.Contains(out, "admin") {
		t.Fatalf("create-admin: %s%s", out, errOut)
	}
	code, _, errOut = runCLI(t, env, "", "admin", "create-admin", "--username", "admin2", "--password-file", pwFile)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second bootstrap: exit %d %s", code, errOut)
	}
}

// A node's backup restores into another node — here from SQLite into PostgreSQL, the
// migration path — with the same master key; afterwards its audit log verifies and its
// people and accounts are there.
func TestCLIBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	master := filepath.Join(t.TempDir(), "master.key")
	src := cliEnvFor(t, "sqlite")
	src["DGOV_MASTER_KEY_FILE"] = master
	if code, out, errOut := runCLI(t, src, "", "demo", "--residents", "40", "--enterprises", "8"); code != 0 || !strings.Contains(out, "demo data loaded") {
		t.Fatalf("demo: %s%s", out, errOut)
	}
	file := filepath.Join(t.TempDir(), "node.tar.gz")
	if code, out, errOut := runCLI(t, src, "", "backup", file); code != 0 {
		t.Fatalf("backup: %s%s", out, errOut)
	}
	dst := cliEnvFor(t, "postgres")
	dst["DGOV_MASTER_KEY_FILE"] = master
	if code, out, errOut := runCLI(t, dst, "", "migrate"); code != 0 {
		t.Fatalf("migrate: %s%s", out, errOut)
	}
	// A started node is not empty: without --replace nothing is touched.
	code, _, errOut := runCLI(t, dst, "", "restore", file)
	if code != 1 || !strings.Contains(errOut, "replace") {
		t.Fatalf("restore without --replace: exit %d %s", code, errOut)
	}
	// --replace asks first; anything but "yes" changes nothing.
	if code, _, errOut := runCLI(t, dst, "no\n", "restore", "--replace", file); code != 1 || !strings.Contains(errOut, "not confirmed") {
		t.Fatalf("unconfirmed restore: exit %d %s", code, errOut)
	}
	// A node with another master key refuses the backup inside the transaction: nothing changes.
	other := cliEnvFor(t, "sqlite")
	if code, _, errOut := runCLI(t, other, "", "restore", "--replace", "--yes", file); code != 1 || !strings.Contains(errOut, "master key") {
		t.Fatalf("restore under another master key: exit %d %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, other, "", "audit", "verify"); code != 0 {
		t.Fatalf("node with another master key damaged by a refused restore: %s%s", out, errOut)
	}
	if code, out, errOut := runCLI(t, dst, "", "restore", "--replace", "--yes", file); code != 0 {
		t.Fatalf("restore: %s%s", out, errOut)
	}
	if code, out, errOut := runCLI(t, dst, "", "audit", "verify"); code != 0 {
		t.Fatalf("audit verify after restore: %s%s", out, errOut)
	}
	ctx := context.Background()
	a, err := Open(ctx, mustConfig(t, dst), discardLogger(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Org.Authenticate(ctx, "admin", "Dgov@Shanxi2026", a.Now()); err != nil {
		t.Fatalf("admin login after restore: %v", err)
	}
	if n, err := a.Base.CountPersons(ctx, baselib.PersonFilter{}); err != nil || n != 40 {
		t.Fatalf("persons after restore: %d %v", n, err)
	}
	// A backup that was tampered with is refused.
	b, _ := os.ReadFile(file)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.tar.gz")
	os.WriteFile(bad, b, 0o600)
	if code, _, errOut := runCLI(t, dst, "", "restore", "--replace", "--yes", bad); code != 1 {
		t.Fatalf("tampered backup restored: %s", errOut)
	}
	if code, out, errOut := runCLI(t, dst, "", "audit", "verify"); code != 0 {
		t.Fatalf("audit after refused restore: %s%s", out, errOut)
	}
}

// `dgov demo` registers demo-rp and demo-system and keeps their secrets in a 0600 file; the
// system client's secret gets a client-credentials token; a second run keeps the secrets.
func TestCLIDemoClients(t *testing.T) {
	env := cliEnvFor(t, "sqlite")
	for i := 0; i < 2; i++ {
		if code, out, errOut := runCLI(t, env, "", "demo", "--residents", "5", "--enterprises", "2"); code != 0 || !strings.Contains(out, "demo-clients.json") {
			t.Fatalf("demo run %d: %s%s", i, out, errOut)
		}
	}
	path := filepath.Join(env["DGOV_DATA_DIR"], "demo-clients.json")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v %v", fi, err)
	}
	var secrets map[string]json.RawMessage
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &secrets); err != nil {
		t.Fatal(err)
	}
	var sys struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(secrets["demo-system"], &sys); err != nil || sys.ClientSecret == "" || secrets["demo-rp"] == nil {
		t.Fatalf("secrets: %s", b)
	}
	ctx := context.Background()
	a, err := Open(ctx, mustConfig(t, env), discardLogger(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler)
	defer ts.Close()
	req, _ := http.NewRequest("POST", ts.URL+"/oidc/oauth/token", strings.NewReader("grant_type=client_credentials&scope=dgov.exchange"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sys.ClientID, sys.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "access_token") {
		t.Fatalf("client credentials with the demo secret: %d %s", res.StatusCode, body)
	}
}

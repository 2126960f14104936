package app

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// `dgov verify`'s arguments and its refusals; a real receipt is verified (and refused once
// its body is changed) in TestExchangeEndToEnd, a real licence file in TestLicenseLifecycle.
func TestCLIVerifyArguments(t *testing.T) {
	dir := t.TempDir()
	file := fileWriter(t, dir)
	body := file("body.json", `{"record":{}}`)
	garbage := file("garbage.txt", "not a receipt")
	// Well-formed JSON of a receipt whose digests do not match: it was altered.
	altered := file("altered.json", `{"v":1,"request_id":"r","method":"POST","target":"/x","client_id":"c","purpose":"p","resource":"res",`+
		`"grant_id":"g","row_count":1,"request_sm3":"00","response_sm3":"00","at":"2026-01-01T00:00:00Z","key_id":"k","signature":"AAEC"}`)
	pem := file("key.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
	licGarbage := file("licence.dgovlic", `{"format":"dgov-license-file/1","content":{}}`)
	env := map[string]string{"DGOV_DATA_DIR": t.TempDir(), "DGOV_LOG_LEVEL": "warn"}

	for _, c := range []struct {
		name string
		args []string
		code int
		want []string // in the output
	}{
		{"no files", []string{"verify"}, 1, []string{"usage: dgov verify RECEIPT_FILE BODY_FILE"}},
		{"one file", []string{"verify", garbage}, 1, []string{"usage"}},
		{"missing receipt file", []string{"verify", filepath.Join(dir, "nope"), body, "--public-key", pem}, 1, []string{"read receipt"}},
		{"malformed receipt", []string{"verify", garbage, body, "--public-key", pem}, 1, []string{"回执格式无效", "malformed"}},
		{"altered receipt, flag first", []string{"verify", "--public-key", pem, altered, body}, 1, []string{"回执被改动", "altered"}},
		{"altered receipt, flag last", []string{"verify", altered, body, "--public-key=" + pem}, 1, []string{"回执被改动", "altered"}},
		{"key not on this node", []string{"verify", altered, body}, 1, []string{"k", "--public-key"}},
		{"help", []string{"verify", "--help"}, 0, []string{"-public-key", "-trust-list"}},
		{"malformed licence file, local trust", []string{"verify", licGarbage}, 1, []string{"证照核验未通过", "not a valid licence identifier or file"}},
		{"trust list without the node key", []string{"verify", licGarbage, "--trust-list", garbage}, 1, []string{"--trust-list needs --public-key"}},
		{"trust list that does not verify", []string{"verify", licGarbage, "--trust-list", garbage, "--public-key", pem}, 1, []string{"信任列表无效"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, env, "", c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
			if c.code != 0 && strings.Contains(out, "✓") {
				t.Error("a failure printed ✓")
			}
		})
	}
	if code, out, _ := runCLI(t, nil, "", "help"); code != 0 || !strings.Contains(out, "verify RECEIPT_FILE BODY_FILE") {
		t.Errorf("verify is not in the help: %s", out)
	}
}

func TestFlagsFirst(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"r", "b"}, []string{"--", "r", "b"}},
		{[]string{"r", "b", "--public-key", "k.pem"}, []string{"--public-key", "k.pem", "--", "r", "b"}},
		{[]string{"--data-dir", "/d", "r", "--public-key=k", "b"}, []string{"--data-dir", "/d", "--public-key=k", "--", "r", "b"}},
		{[]string{"r", "--", "-b"}, []string{"--", "r", "-b"}},
	} {
		if got := flagsFirst(c.in, verifyFlags(new(string), new(string))); !slices.Equal(got, c.want) {
			t.Errorf("flagsFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

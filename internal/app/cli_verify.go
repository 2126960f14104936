package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/config"
	"github.com/dgov/dgov/internal/platform/i18n"
)

const verifyUsage = "verify RECEIPT_FILE BODY_FILE | LICENSE_FILE [flags]"

// cmdVerify checks a saved exchange receipt (the X-Dgov-Receipt header, or its JSON) against
// the response body it came with: offline with the node's public key from a PEM file, or else
// with the keys published by the node whose database the configuration names. Given one file,
// a licence file (.dgovlic), it verifies the licence offline (verifyLicense).
func cmdVerify(ctx context.Context, env *cliEnv, args []string) error {
	var pubFile, trustFile string
	setup := verifyFlags(&pubFile, &trustFile)
	cfg, fs, err := load(env, "verify", flagsFirst(args, setup), setup)
	if err != nil {
		return err
	}
	if fs.NArg() == 1 {
		file, err := readLimited(fs.Arg(0), licenseFileLimit)
		if err != nil {
			return fmt.Errorf("读取证照文件 / read licence file: %w", err)
		}
		if !isLicenseFile(fs.Arg(0), file) {
			return errors.New("usage: dgov " + verifyUsage)
		}
		return verifyLicense(ctx, env, cfg, file, pubFile, trustFile)
	}
	if fs.NArg() != 2 {
		return errors.New("usage: dgov " + verifyUsage)
	}
	rawReceipt, err := readLimited(fs.Arg(0), 1<<20)
	if err != nil {
		return fmt.Errorf("读取回执 / read receipt: %w", err)
	}
	body, err := readLimited(fs.Arg(1), 1<<30)
	if err != nil {
		return fmt.Errorf("读取响应内容 / read body: %w", err)
	}
	rc, err := exchange.ParseReceipt(string(rawReceipt))
	if err != nil {
		return failed(err)
	}
	var pemText string
	if pubFile != "" {
		b, err := readLimited(pubFile, 64<<10)
		if err != nil {
			return fmt.Errorf("读取公钥 / read public key: %w", err)
		}
		pemText = string(b)
	} else {
		if pemText, err = publishedKey(ctx, env, cfg, rc.KeyID); err != nil {
			return err
		}
	}
	if err := exchange.VerifyReceipt(rc, body, pemText); err != nil {
		return failed(err)
	}
	fmt.Fprintf(env.stdout, "✓ 回执有效 / receipt valid: %s %s, client %s, purpose %q, %d row(s), %s, key %s\n",
		rc.Method, rc.Target, rc.ClientID, rc.Purpose, rc.RowCount, rc.At.UTC().Format("2006-01-02T15:04:05Z"), rc.KeyID)
	return nil
}

func verifyFlags(pubFile, trustFile *string) func(*flag.FlagSet) {
	return func(fs *flag.FlagSet) {
		fs.StringVar(pubFile, "public-key", "", "the node's SM2 public key (PEM, as published at /api/v1/keys); without it, the keys in the local database")
		fs.StringVar(trustFile, "trust-list", "", "licence files: the issuing node's trust list (from /api/v1/licenses/trust-list), checked with --public-key; without it, the trust of the local node")
	}
}

// licenseFileLimit is the largest licence file read (the engine refuses more).
const licenseFileLimit = 1 << 20

// isLicenseFile tells a licence file by its name or its format member.
func isLicenseFile(name string, b []byte) bool {
	if strings.EqualFold(filepath.Ext(name), license.FileExt) {
		return true
	}
	var head struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(b, &head) == nil && head.Format == license.FileFormat
}

// verifyLicense verifies a licence file offline: against a trust list file, itself checked
// with the publishing node's public key (nothing but files), or else against the trust of the
// node whose database the configuration names (its own issuers and imported lists). Whether
// the licence was revoked needs the issuing node: its QR code's page says.
func verifyLicense(ctx context.Context, env *cliEnv, cfg config.Config, file []byte, pubFile, trustFile string) error {
	var res license.Result
	if trustFile != "" {
		if pubFile == "" {
			return errors.New("--trust-list 需要 --public-key（签发该列表的节点公钥）/ --trust-list needs --public-key, the key of the node that signed the list")
		}
		doc, err := readLimited(trustFile, 8<<20)
		if err != nil {
			return fmt.Errorf("读取信任列表 / read trust list: %w", err)
		}
		pemText, err := readLimited(pubFile, 64<<10)
		if err != nil {
			return fmt.Errorf("读取公钥 / read public key: %w", err)
		}
		list, err := license.ParseTrustList(doc, string(pemText))
		if err != nil {
			if e, ok := i18n.As(err); ok {
				return fmt.Errorf("✗ 信任列表无效 / trust list NOT valid: %s", e.Msg.String())
			}
			return err
		}
		res = license.VerifyFile(file, license.NewTrust(list), time.Now())
	} else {
		a, err := open(ctx, env, cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		if res, err = a.Licenses.VerifyFile(ctx, file); err != nil {
			return err
		}
	}
	if !res.Valid {
		return fmt.Errorf("✗ 证照核验未通过 / licence NOT valid: %s", res.Message.String())
	}
	fmt.Fprintf(env.stdout, "✓ 证照有效（离线核验）/ licence valid (offline): %s %s, holder %s, issued by %s (%s)",
		res.License.TypeName, res.ID, res.License.HolderName, res.License.IssuerName, res.License.IssuerCreditCode)
	if sb := res.SignedBy; sb != nil {
		fmt.Fprintf(env.stdout, ", seal key %s, trusted through node %s", sb.KeyID, sb.Node)
	}
	fmt.Fprintf(env.stdout, "\n%s\n", res.Message.String())
	return nil
}

// failed is a verification failure as the command reports it: its reason in both languages.
func failed(err error) error {
	if e, ok := i18n.As(err); ok {
		return fmt.Errorf("✗ 回执无效 / receipt NOT valid: %s", e.Msg.String())
	}
	return fmt.Errorf("✗ 回执无效 / receipt NOT valid: %w", err)
}

// publishedKey is the PEM of the node's key keyID (active or retired), from the database.
func publishedKey(ctx context.Context, env *cliEnv, cfg config.Config, keyID string) (string, error) {
	a, err := open(ctx, env, cfg)
	if err != nil {
		return "", err
	}
	defer a.Close()
	for _, k := range a.Keys.PublicKeys() {
		if k.ID == keyID {
			return k.PEM, nil
		}
	}
	return "", failed(&i18n.Error{Code: "exchange.receipt.key", Msg: i18n.T(
		fmt.Sprintf("本节点没有签名密钥 %s，请用 --public-key 指定签发节点的公钥", keyID),
		fmt.Sprintf("this node has no signing key %s; give the issuing node's public key with --public-key", keyID))})
}

func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return b, err
}

// flagsFirst moves flags before the positional arguments, so that they may follow them
// (`dgov verify r.txt body.json --public-key k.pem`); the standard flag package stops at the
// first positional argument. Which flags take a value is read from the command's flag set.
func flagsFirst(args []string, setup func(*flag.FlagSet)) []string {
	probe := flag.NewFlagSet("probe", flag.ContinueOnError)
	probe.SetOutput(io.Discard)
	setup(probe)
	_, _ = config.Load(probe, nil, func(string) string { return "" })
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := probe.Lookup(name); f != nil && !isBool(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), pos...)
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

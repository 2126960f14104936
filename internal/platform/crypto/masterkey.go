package crypto

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// LoadOrCreateMasterKey reads the master key from path: 64 hex digits (32 bytes), optionally
// followed by a newline. When the file does not exist it is created, with its directory
// (0700), holding a new random key, mode 0600. A file of the wrong form, or one that other
// users may read (any group or other permission bit, checked where Unix modes exist), is
// refused with ErrMasterKeyFile: a node must not start on a key others may have copied.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	key, err := readMasterKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create master key directory: %w", err)
	}
	key = make([]byte, MasterKeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	if err := writeNewKeyFile(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it between our read and our write: use theirs.
			return readMasterKey(path)
		}
		return nil, err
	}
	return key, nil
}

func masterKeyFileError(zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(ErrMasterKeyFile.Status, ErrMasterKeyFile.Code, zh, en, args...)
}

func readMasterKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, ErrMasterKeyFile.Wrap(fmt.Errorf("open %s: %w", path, err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, ErrMasterKeyFile.Wrap(fmt.Errorf("stat %s: %w", path, err))
	}
	if !fi.Mode().IsRegular() {
		return nil, masterKeyFileError("主密钥文件 %s 不是普通文件", "master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, masterKeyFileError(
			"主密钥文件 %s 的权限过宽（%04o），其他用户可以读取：请执行 chmod 600",
			"master key file %s is open to other users (mode %04o): run chmod 600", path, perm)
	}
	// A well-formed file is 64 or 65 bytes; read a little more to tell "too long" apart.
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return nil, ErrMasterKeyFile.Wrap(fmt.Errorf("read %s: %w", path, err))
	}
	s := strings.TrimSpace(string(b))
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != MasterKeySize {
		return nil, masterKeyFileError(
			"主密钥文件 %s 格式错误：应为 64 个十六进制字符（32 字节），实际为 %d 个字符",
			"master key file %s is malformed: want 64 hex digits (32 bytes), found %d characters", path, len(s))
	}
	return key, nil
}

// writeNewKeyFile creates path holding key in hex, mode 0600, failing with fs.ErrExist when
// path exists. The key is written to a temporary file and hard-linked into place, so a
// concurrent reader never sees a half-written key.
func writeNewKeyFile(path string, key []byte) error {
	dir := filepath.Dir(path)
	data := []byte(hex.EncodeToString(key) + "\n")
	tmp, err := os.CreateTemp(dir, ".masterkey-*") // CreateTemp makes the file 0600
	if err != nil {
		return fmt.Errorf("write master key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write master key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write master key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write master key: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// No hard links on this file system: create exclusively instead.
		if err := writeExclusive(path, data); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("write master key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write master key: %w", err)
	}
	return f.Close()
}

// syncDir makes a new directory entry durable; best effort (not every system can fsync a
// directory, and the file's own contents are already synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// RotateMasterKeyFile replaces the master key in path with a new random one, crash-safely:
// the new key is written to path+".new" first, every wrapped key in the database is then
// re-encrypted under it in one transaction (RewrapMaster), and only then is path+".new"
// renamed over path. Should the process die between the commit and the rename, the database
// already needs the key in path+".new": move that file over path by hand. A leftover
// path+".new" from such a crash makes the next rotation refuse to start.
//
// Every node sharing the database must get the new file before it next opens the keyring;
// running nodes are unaffected (they hold the unwrapped keys) until they Reload or restart.
func (k *Keyring) RotateMasterKeyFile(ctx context.Context, path string) error {
	pending := path + ".new"
	key := make([]byte, MasterKeySize)
	_, _ = rand.Read(key)
	if err := writeNewKeyFile(pending, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return masterKeyFileError(
				"上次主密钥轮换遗留了 %s：请先确认数据库使用哪个主密钥（用它启动），再删除多余的文件",
				"a previous master key rotation left %s: find which key the database uses (start with it), then remove the other file", pending)
		}
		return err
	}
	if err := k.RewrapMaster(ctx, key); err != nil {
		os.Remove(pending)
		return err
	}
	if err := os.Rename(pending, path); err != nil {
		return fmt.Errorf("the database now uses the master key in %s, but it could not be moved to %s (move it by hand): %w", pending, path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

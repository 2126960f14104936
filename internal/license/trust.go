package license

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// TrustListFormat names the trust-list document below.
const TrustListFormat = "dgov-trust-list/1"

// maxTrustList bounds a trust-list document.
const maxTrustList = 8 << 20

// TrustList is what a node publishes for mutual recognition (互认): every seal key that
// signed licences there, with its department, credit code and period of validity. Its
// canonical form (compact JSON in the declared member order, as Content's) is signed with
// the node's SM2 key.
type TrustList struct {
	Format   string      `json:"format"`
	Node     Node        `json:"node"`
	IssuedAt time.Time   `json:"issued_at"`
	Issuers  []IssuerKey `json:"issuers"`
}

// SignedTrustList is the published document: the list and the node's signature over its
// canonical form.
type SignedTrustList struct {
	List      json.RawMessage `json:"list"`
	KeyID     string          `json:"key_id"`    // the node key that signed
	Signature []byte          `json:"signature"` // ASN.1 DER SM2 over the list's canonical form
}

// Errors of trust lists.
var (
	ErrTrustList = &i18n.Error{Code: "license.trust_list", Status: http.StatusBadRequest,
		Msg: i18n.T("信任列表格式无效或签名验证失败", "the trust list is malformed or its signature does not verify")}
	ErrTrustListStale = &i18n.Error{Code: "license.trust_list.stale", Status: http.StatusConflict,
		Msg: i18n.T("已导入该节点更新的信任列表", "a newer trust list of this node is already imported")}
	ErrTrustListOwn = &i18n.Error{Code: "license.trust_list.own", Status: http.StatusBadRequest,
		Msg: i18n.T("不能导入本节点自己的信任列表", "this is the node's own trust list")}
)

func (l TrustList) canonical() []byte {
	l.IssuedAt = l.IssuedAt.UTC()
	keys := make([]IssuerKey, len(l.Issuers))
	for i, k := range l.Issuers {
		k.ValidFrom = k.ValidFrom.UTC()
		if k.ValidUntil != nil {
			t := k.ValidUntil.UTC()
			k.ValidUntil = &t
		}
		keys[i] = k
	}
	l.Issuers = keys
	return canonicalJSON(l)
}

// IssuerKeys lists every seal key that signed a licence here (public information).
func (s *Service) IssuerKeys(ctx context.Context) ([]IssuerKey, error) {
	out, err := db.Collect(ctx, s.d, `SELECT `+keyCols+` FROM license_issuer_keys ORDER BY key_id`, nil, scanKey)
	if err != nil {
		return nil, fmt.Errorf("list issuer keys: %w", err)
	}
	return out, nil
}

// PublishTrustList returns this node's trust list, signed with the node key: the document
// other nodes import (ImportTrustList) and verifiers load beside licence files.
func (s *Service) PublishTrustList(ctx context.Context) ([]byte, error) {
	keys, err := s.IssuerKeys(ctx)
	if err != nil {
		return nil, err
	}
	l := TrustList{Format: TrustListFormat, Node: s.opts.Node, IssuedAt: s.clock(), Issuers: keys}
	canon := l.canonical()
	sig, keyID, err := s.nodeKey.Sign(canon)
	if err != nil {
		return nil, fmt.Errorf("sign trust list: %w", err)
	}
	b, err := json.Marshal(SignedTrustList{List: canon, KeyID: keyID, Signature: sig})
	if err != nil {
		return nil, fmt.Errorf("encode trust list: %w", err)
	}
	return b, nil
}

// ParseTrustList reads a signed trust list and verifies it, offline, with the publishing
// node's SM2 public key (PKIX PEM, as crypto.Keyring.PublicKeys publishes it) obtained out
// of band. Every entry must be a well-formed SM2 key of a valid credit code.
func ParseTrustList(doc []byte, nodePublicKeyPEM string) (TrustList, error) {
	if len(doc) > maxTrustList {
		return TrustList{}, ErrTrustList.Wrap(fmt.Errorf("%d bytes", len(doc)))
	}
	var st SignedTrustList
	if err := strictDecode(doc, &st); err != nil {
		return TrustList{}, ErrTrustList.Wrap(err)
	}
	var l TrustList
	if err := strictDecode(st.List, &l); err != nil {
		return TrustList{}, ErrTrustList.Wrap(err)
	}
	if l.Format != TrustListFormat || strings.TrimSpace(l.Node.ID) == "" || l.IssuedAt.IsZero() {
		return TrustList{}, ErrTrustList.Wrap(fmt.Errorf("format %q, node %q", l.Format, l.Node.ID))
	}
	if err := crypto.VerifyWithPublicKeyPEM(nodePublicKeyPEM, l.canonical(), st.Signature); err != nil {
		return TrustList{}, ErrTrustList.Wrap(err)
	}
	seen := map[string]bool{}
	for _, k := range l.Issuers {
		if k.KeyID == "" || seen[k.KeyID] {
			return TrustList{}, ErrTrustList.Wrap(fmt.Errorf("key id %q empty or repeated", k.KeyID))
		}
		seen[k.KeyID] = true
		if _, err := ids.ValidateCreditCode(k.CreditCode); err != nil {
			return TrustList{}, ErrTrustList.Wrap(fmt.Errorf("key %s: %w", k.KeyID, err))
		}
		if _, err := parsePublicKey(k.PublicKey); err != nil {
			return TrustList{}, ErrTrustList.Wrap(fmt.Errorf("key %s: %w", k.KeyID, err))
		}
		if k.ValidFrom.IsZero() || (k.ValidUntil != nil && k.ValidUntil.Before(k.ValidFrom)) {
			return TrustList{}, ErrTrustList.Wrap(fmt.Errorf("key %s: validity", k.KeyID))
		}
	}
	return l, nil
}

// strictDecode decodes one JSON value, refusing unknown members and trailing data.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// TrustListInfo describes an imported trust list.
type TrustListInfo struct {
	Node       string    `json:"node"`
	NodeName   string    `json:"node_name"`
	IssuedAt   time.Time `json:"issued_at"`
	Issuers    int       `json:"issuers"`
	ImportedAt time.Time `json:"imported_at"`
	ImportedBy string    `json:"imported_by"`
}

// ImportTrustList verifies another node's trust list with that node's public key (obtained
// out of band, e.g. from the province's published keys) and stores it; licences that node
// issues then verify here. A list older than the one stored is refused (no rollback).
func (s *Service) ImportTrustList(ctx context.Context, actor authz.Subject, doc []byte, trustedNodePublicKeyPEM string) (TrustListInfo, error) {
	if err := s.policy.Authorize(actor, PermAdmin, s.adminDivision()); err != nil {
		return TrustListInfo{}, err
	}
	l, err := ParseTrustList(doc, trustedNodePublicKeyPEM)
	if err != nil {
		return TrustListInfo{}, err
	}
	if l.Node.ID == s.opts.Node.ID {
		return TrustListInfo{}, ErrTrustListOwn
	}
	now := s.clock()
	info := TrustListInfo{Node: l.Node.ID, NodeName: l.Node.Name, IssuedAt: db.Now(l.IssuedAt), Issuers: len(l.Issuers), ImportedAt: now, ImportedBy: actor.String()}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE license_trust_lists SET node_id = node_id WHERE node_id = ?`, l.Node.ID); err != nil {
			return fmt.Errorf("lock trust list %s: %w", l.Node.ID, err)
		}
		var prev time.Time
		switch err := tx.QueryRow(ctx, `SELECT issued_at FROM license_trust_lists WHERE node_id = ?`, l.Node.ID).Scan(&prev); {
		case isNoRow(err):
		case err != nil:
			return fmt.Errorf("read trust list %s: %w", l.Node.ID, err)
		case prev.After(info.IssuedAt):
			return ErrTrustListStale
		}
		if _, err := tx.Exec(ctx, `INSERT INTO license_trust_lists (node_id, node_name, node_key, issued_at, doc, imported_at, imported_by)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET node_name = excluded.node_name, node_key = excluded.node_key,
			issued_at = excluded.issued_at, doc = excluded.doc, imported_at = excluded.imported_at, imported_by = excluded.imported_by`,
			l.Node.ID, l.Node.Name, trustedNodePublicKeyPEM, info.IssuedAt, doc, now, info.ImportedBy); err != nil {
			return fmt.Errorf("store trust list %s: %w", l.Node.ID, err)
		}
		return s.record(ctx, tx, actor, ActionTrustImport, "trust_list:"+l.Node.ID, map[string]any{"issued_at": info.IssuedAt, "issuers": info.Issuers})
	})
	if err != nil {
		return TrustListInfo{}, err
	}
	return info, nil
}

// TrustLists lists the imported trust lists.
func (s *Service) TrustLists(ctx context.Context) ([]TrustListInfo, error) {
	lists, err := s.importedLists(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TrustListInfo, 0, len(lists))
	for _, l := range lists {
		out = append(out, l.info)
	}
	return out, nil
}

type importedList struct {
	info TrustListInfo
	list TrustList
}

// importedLists reads the stored lists and verifies each again with its node key: an edited
// row fails here rather than lending trust.
func (s *Service) importedLists(ctx context.Context) ([]importedList, error) {
	rows, err := s.d.Query(ctx, `SELECT node_id, node_name, node_key, issued_at, doc, imported_at, imported_by FROM license_trust_lists ORDER BY node_id`)
	if err != nil {
		return nil, fmt.Errorf("read trust lists: %w", err)
	}
	defer rows.Close()
	var out []importedList
	for rows.Next() {
		var il importedList
		var key string
		var doc []byte
		if err := rows.Scan(&il.info.Node, &il.info.NodeName, &key, &il.info.IssuedAt, &doc, &il.info.ImportedAt, &il.info.ImportedBy); err != nil {
			return nil, fmt.Errorf("read trust lists: %w", err)
		}
		if il.list, err = ParseTrustList(doc, key); err != nil || il.list.Node.ID != il.info.Node {
			return nil, ErrCorrupt.Wrap(fmt.Errorf("stored trust list of %s: %v", il.info.Node, err))
		}
		il.info.IssuedAt, il.info.ImportedAt, il.info.Issuers = il.info.IssuedAt.UTC(), il.info.ImportedAt.UTC(), len(il.list.Issuers)
		out = append(out, il)
	}
	return out, rows.Err()
}

// Trust is this node's trust for offline verification: its own issuer keys and those of
// every imported trust list.
func (s *Service) Trust(ctx context.Context) (*Trust, error) {
	keys, err := s.IssuerKeys(ctx)
	if err != nil {
		return nil, err
	}
	t := NewTrust(TrustList{Format: TrustListFormat, Node: s.opts.Node, Issuers: keys})
	lists, err := s.importedLists(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range lists {
		t.Add(l.list)
	}
	return t, nil
}

// RetireIssuerKey ends the validity of a seal key in the trust list at at (when the seal
// engine rotated it): licences it signed before stay valid, later signatures do not verify.
func (s *Service) RetireIssuerKey(ctx context.Context, actor authz.Subject, keyID string, at time.Time) (IssuerKey, error) {
	k, err := getKey(ctx, s.d, keyID)
	if err != nil {
		return IssuerKey{}, err
	}
	if err := s.policy.Authorize(actor, PermAdmin, k.Division); err != nil {
		return IssuerKey{}, err
	}
	at = db.Now(at)
	if k.ValidUntil != nil {
		return IssuerKey{}, ErrState
	}
	if at.Before(k.ValidFrom) {
		return IssuerKey{}, invalid("at", "license.key.retire_at", "停用时间不能早于密钥启用时间", "a key cannot be retired before it was first used")
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE license_issuer_keys SET valid_until = ? WHERE key_id = ? AND valid_until IS NULL`, at, keyID)
		if err != nil {
			return fmt.Errorf("retire key %s: %w", keyID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrState
		}
		return s.record(ctx, tx, actor, ActionKeyRetire, "license_key:"+keyID, map[string]any{"at": at, "dept_id": k.DeptID})
	})
	if err != nil {
		return IssuerKey{}, err
	}
	k.ValidUntil = &at
	return k, nil
}

// Trust is a set of trusted issuer keys, from one or more trust lists, against which licence
// files verify offline (VerifyFile). Build it with NewTrust; it is safe for concurrent reads.
type Trust struct {
	byKey map[string][]trustedKey
}

type trustedKey struct {
	IssuerKey
	node Node
	pub  *ecdsa.PublicKey
}

// NewTrust trusts the keys of the given lists (already verified: ParseTrustList).
func NewTrust(lists ...TrustList) *Trust {
	t := &Trust{byKey: map[string][]trustedKey{}}
	for _, l := range lists {
		t.Add(l)
	}
	return t
}

// Add trusts the keys of one more list; keys that do not parse are left out.
func (t *Trust) Add(l TrustList) {
	for _, k := range l.Issuers {
		pub, err := parsePublicKey(k.PublicKey)
		if err != nil {
			continue
		}
		t.byKey[k.KeyID] = append(t.byKey[k.KeyID], trustedKey{IssuerKey: k, node: l.Node, pub: pub})
	}
}

// Nodes lists the nodes whose keys t trusts.
func (t *Trust) Nodes() []string {
	seen := map[string]bool{}
	var out []string
	for _, ks := range t.byKey {
		for _, k := range ks {
			if !seen[k.node.ID] {
				seen[k.node.ID] = true
				out = append(out, k.node.ID)
			}
		}
	}
	sort.Strings(out)
	return out
}

// lookup finds the trusted key keyID of the issuer with creditCode.
func (t *Trust) lookup(keyID, creditCode string) (trustedKey, bool) {
	if t == nil {
		return trustedKey{}, false
	}
	for _, k := range t.byKey[keyID] {
		if k.CreditCode == creditCode {
			return k, true
		}
	}
	return trustedKey{}, false
}

package license

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/crypto"
)

// ContentFormat names the canonical form below; a new form gets a new name.
const ContentFormat = "dgov-license/1"

// Content is what the issuing department signs: the licence as printed on paper, with the
// metadata of GB/T 36903 (identifier, type, holder and its identity code type, issuing
// authority, dates, version and the version it replaces) and the type's data items.
//
// Canonical form (what is signed and what the digest covers): the UTF-8 JSON encoding of
// Content with the members in the order declared here, no white space, no HTML escaping,
// times in UTC as RFC 3339 with only the fractional digits needed (Go's time.RFC3339Nano),
// byte strings as padded base64, valid_until null for a licence valid without limit (长期),
// items as an array in the order of the type's template. Verifiers parse the JSON and
// re-encode it the same way (Canonical), so a file may be re-indented without breaking its
// signature, while any change of a value does.
type Content struct {
	Format     string        `json:"format"`
	ID         string        `json:"id"` // GB/T 36904 licence identifier
	TypeCode   string        `json:"type_code"`
	TypeName   string        `json:"type_name"`
	Holder     Holder        `json:"holder"`
	Issuer     ContentIssuer `json:"issuer"`
	Node       string        `json:"node"` // the node whose trust list carries the issuer's key
	IssuedAt   time.Time     `json:"issued_at"`
	ValidFrom  time.Time     `json:"valid_from"`
	ValidUntil *time.Time    `json:"valid_until"`
	Version    int           `json:"version"`
	PreviousID string        `json:"previous_id"`
	Items      []Item        `json:"items"`
}

// ContentIssuer is the issuing authority as it stands on the licence.
type ContentIssuer struct {
	Name       string `json:"name"`
	CreditCode string `json:"credit_code"`
	Division   string `json:"division"`
}

// Item is one data item of a licence, labelled as its template labels it (in Chinese, the
// language of the document).
type Item struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Value string `json:"value"`
}

// Canonical is the canonical form of c (see Content).
func (c Content) Canonical() []byte {
	c.IssuedAt, c.ValidFrom = c.IssuedAt.UTC(), c.ValidFrom.UTC()
	if c.ValidUntil != nil {
		t := c.ValidUntil.UTC()
		c.ValidUntil = &t
	}
	if c.Items == nil {
		c.Items = []Item{}
	}
	return canonicalJSON(c)
}

// canonicalJSON encodes v compactly without HTML escaping. The values encoded here are
// structs of strings, ints, times and byte strings, which cannot fail to encode.
func canonicalJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("license: canonical encoding: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Digest is the hex SM3 (GB/T 32905) of the canonical form.
func (c Content) Digest() string { return crypto.SM3Hex(c.Canonical()) }

// shortDigest is the first 16 hex digits (64 bits) of a digest: enough for a QR code to
// bind the printed licence to the record, short enough to keep the code small.
func shortDigest(d string) string {
	if len(d) < 16 {
		return d
	}
	return d[:16]
}

// check reports whether the content is consistent with its identifier and well formed.
func (c Content) check() error {
	if c.Format != ContentFormat {
		return fmt.Errorf("content format %q", c.Format)
	}
	id, err := ParseIdentifier(c.ID)
	if err != nil {
		return err
	}
	if id.String() != c.ID {
		return fmt.Errorf("identifier %q is not in canonical form", c.ID)
	}
	switch {
	case id.TypeCode != c.TypeCode:
		return fmt.Errorf("identifier type %s, content type %s", id.TypeCode, c.TypeCode)
	case id.CreditCode != c.Issuer.CreditCode:
		return fmt.Errorf("identifier issuer %s, content issuer %s", id.CreditCode, c.Issuer.CreditCode)
	case id.Version != c.Version:
		return fmt.Errorf("identifier version %d, content version %d", id.Version, c.Version)
	case c.IssuedAt.IsZero() || c.ValidFrom.IsZero():
		return fmt.Errorf("missing dates")
	case c.ValidUntil != nil && !c.ValidUntil.After(c.ValidFrom):
		return fmt.Errorf("valid until %s is not after valid from %s", c.ValidUntil, c.ValidFrom)
	case c.Holder.Name == "" || c.Holder.IDNumber == "":
		return fmt.Errorf("missing holder")
	}
	if info, ok := IDTypes[c.Holder.IDType]; !ok || info.Kind != c.Holder.Kind {
		return fmt.Errorf("holder identity type %q of kind %q", c.Holder.IDType, c.Holder.Kind)
	}
	return nil
}

// statusAt is the status of content whose stored status is stored, at now.
func statusAt(stored Status, validUntil *time.Time, now time.Time) Status {
	if stored == StatusValid && validUntil != nil && !now.Before(*validUntil) {
		return StatusExpired
	}
	return stored
}

// parsePublicKey parses a PKIX DER SM2 public key.
func parsePublicKey(der []byte) (*ecdsa.PublicKey, error) {
	k, err := smx509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return nil, fmt.Errorf("parse public key: not an SM2 key (%T)", k)
	}
	return pub, nil
}

// verifySM2 checks an ASN.1 SM2 signature with the default user ID (GB/T 32918.2, GM/T 0009).
func verifySM2(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	return sm2.VerifyASN1WithSM2(pub, nil, msg, sig)
}

func hexOK(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
